//! Authorization server metadata (RFC 8414): what a client library reads to find the endpoints.
//!
//! Everything here is derived from the builder's settings, so the document cannot drift from
//! what the server does.

use serde::Serialize;

/// Where the host serves each endpoint, as paths below the issuer.
///
/// The defaults are the example server's: `/oauth/authorize`, `/oauth/token`, `/oauth/revoke`,
/// `/oauth/introspect`, `/oauth/device_authorization`, `/device` and `/oauth/jwks`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointPaths {
    /// The authorization endpoint (RFC 6749 §3.1).
    pub authorization: String,
    /// The token endpoint (RFC 6749 §3.2).
    pub token: String,
    /// The revocation endpoint (RFC 7009).
    pub revocation: String,
    /// The introspection endpoint (RFC 7662).
    pub introspection: String,
    /// The device authorization endpoint (RFC 8628 §3.1).
    pub device_authorization: String,
    /// The end-user verification page, the `verification_uri` of RFC 8628 §3.2.
    pub device_verification: String,
    /// The JWK Set (RFC 7517), the `jwks_uri` of RFC 8414 §2, served when the server has a
    /// [`token_signer`](crate::AuthorizationServerBuilder::token_signer).
    pub jwks: String,
}

impl EndpointPaths {
    /// The paths, in declaration order.
    fn all(&self) -> [&str; 7] {
        [
            &self.authorization,
            &self.token,
            &self.revocation,
            &self.introspection,
            &self.device_authorization,
            &self.device_verification,
            &self.jwks,
        ]
    }

    /// The first path a router could not serve (see
    /// [`BuildError::InvalidEndpointPath`](crate::BuildError::InvalidEndpointPath)): one that
    /// does not start with `/`, is not [routable](is_routable_path), is the metadata document's,
    /// or repeats an earlier one.
    pub(crate) fn first_unroutable(&self) -> Option<&str> {
        let all = self.all();
        all.iter().enumerate().find_map(|(i, path)| {
            let routable =
                path.starts_with('/') && is_routable_path(path) && *path != METADATA_PATH;
            (!routable || all.iter().take(i).any(|earlier| earlier == path)).then_some(*path)
        })
    }
}

/// Where RFC 8414 §3.1 puts the metadata document, before the issuer's own path.
pub(crate) const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// Whether every segment of `path` is made of RFC 3986 path characters (unreserved,
/// percent-encoded, sub-delims, `:` and `@`) and starts with neither `:` nor `*`, which routers
/// read as captures and wildcards (axum 0.8 refuses them outright).
pub(crate) fn is_routable_path(path: &str) -> bool {
    path.split('/').all(|segment| {
        !segment.starts_with([':', '*'])
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:@".contains(&b))
    })
}

impl Default for EndpointPaths {
    fn default() -> Self {
        Self {
            authorization: "/oauth/authorize".into(),
            token: "/oauth/token".into(),
            revocation: "/oauth/revoke".into(),
            introspection: "/oauth/introspect".into(),
            device_authorization: "/oauth/device_authorization".into(),
            device_verification: "/device".into(),
            jwks: "/oauth/jwks".into(),
        }
    }
}

/// The metadata document (RFC 8414 §2).
#[derive(Serialize)]
pub(crate) struct Metadata {
    pub(crate) issuer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) authorization_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) device_authorization_endpoint: Option<String>,
    pub(crate) token_endpoint: String,
    pub(crate) revocation_endpoint: String,
    pub(crate) revocation_endpoint_auth_methods_supported: &'static [&'static str],
    pub(crate) introspection_endpoint: String,
    pub(crate) introspection_endpoint_auth_methods_supported: &'static [&'static str],
    pub(crate) token_endpoint_auth_methods_supported: &'static [&'static str],
    pub(crate) grant_types_supported: Vec<&'static str>,
    pub(crate) response_types_supported: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) code_challenge_methods_supported: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) scopes_supported: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) authorization_response_iss_parameter_supported: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) jwks_uri: Option<String>,
}

/// Joins the issuer and a path without doubling or dropping the slash.
pub(crate) fn endpoint(issuer: &str, path: &str) -> String {
    format!(
        "{}/{}",
        issuer.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}
