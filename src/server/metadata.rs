//! The authorization server metadata document (RFC 8414), derived from the enabled grants and
//! the builder's settings, so that it cannot drift from what the server does.

use super::AuthorizationServer;
use crate::client_auth::{CLIENT_AUTH_METHODS, INTROSPECTION_AUTH_METHODS};
use crate::metadata::{endpoint, Metadata};
use crate::response::Response;
use crate::types::GrantType;

impl AuthorizationServer {
    /// The authorization server metadata document (RFC 8414 §3), for
    /// `/.well-known/oauth-authorization-server`. Derived from the builder's settings. Answers
    /// 404 when no issuer is set.
    pub fn metadata(&self) -> Response {
        let inner = &*self.inner;
        let Some(issuer) = inner.issuer.as_deref() else {
            return Response::new(404);
        };
        let paths = &inner.paths;
        let grants: Vec<GrantType> = inner.grants.types().collect();
        let code_flow = inner.grants.authorization_code();
        let endpoint_on = code_flow.is_some();
        let metadata = Metadata {
            issuer: issuer.to_owned(),
            authorization_endpoint: endpoint_on.then(|| endpoint(issuer, &paths.authorization)),
            device_authorization_endpoint: inner
                .grants
                .device_code()
                .is_some()
                .then(|| endpoint(issuer, &paths.device_authorization)),
            token_endpoint: endpoint(issuer, &paths.token),
            revocation_endpoint: endpoint(issuer, &paths.revocation),
            revocation_endpoint_auth_methods_supported: &CLIENT_AUTH_METHODS,
            introspection_endpoint: endpoint(issuer, &paths.introspection),
            introspection_endpoint_auth_methods_supported: &INTROSPECTION_AUTH_METHODS,
            token_endpoint_auth_methods_supported: &CLIENT_AUTH_METHODS,
            grant_types_supported: grants.iter().map(|g| g.as_str()).collect(),
            response_types_supported: inner.grants.response_types().collect(),
            code_challenge_methods_supported: code_flow.map(|code| {
                use crate::pkce::CodeChallengeMethod::{Plain, S256};
                if code.endpoint.allow_plain_pkce {
                    vec![S256.as_str(), Plain.as_str()]
                } else {
                    vec![S256.as_str()]
                }
            }),
            scopes_supported: inner
                .scopes_supported
                .as_ref()
                .map(|s| s.iter().map(str::to_owned).collect()),
            authorization_response_iss_parameter_supported: endpoint_on.then_some(true),
            jwks_uri: inner.signer.as_ref().map(|_| endpoint(issuer, &paths.jwks)),
        };
        Response::json(200, &metadata)
    }

    /// The server's JWK Set (RFC 7517 §5), for its `jwks_uri`: the public keys of its
    /// [`token_signer`](crate::AuthorizationServerBuilder::token_signer), public members only.
    /// Answers 404 when the server has no signer. Resource servers and caches may keep it five
    /// minutes (`Cache-Control: public, max-age=300`): publish a new key that long before it
    /// signs ([`LocalKeys::stage_pkcs8`](crate::LocalKeys::stage_pkcs8)).
    pub fn jwks(&self) -> Response {
        match &self.inner.signer {
            Some(signer) => Response::json(200, &signer.jwks())
                .with_header("Cache-Control", "public, max-age=300"),
            None => Response::new(404),
        }
    }
}

/// In the server's own process, a resource server's JWT validator reads the JWK Set straight
/// from the server.
#[cfg(feature = "jwt")]
#[async_trait::async_trait]
impl crate::jwt::JwksSource for AuthorizationServer {
    async fn fetch(&self) -> Result<crate::jose::Jwks, crate::error::BoxError> {
        match &self.inner.signer {
            Some(signer) => Ok(signer.jwks()),
            None => Err("the authorization server has no token_signer".into()),
        }
    }
}
