//! Resource indicators (RFC 8707): the `resource` parameter at the authorization and token
//! endpoints, and the audience it gives the tokens.
//!
//! A client names the protected resource(s) a token is for; the token's audience is then those
//! resources only (`aud` in a JWT and in introspection), and a resource server refuses a token
//! whose audience is not its own ([`BearerValidator::with_audience`](crate::BearerValidator::with_audience)).
//!
//! The rules grantor keeps:
//! - Every value is an absolute URI without a fragment (§2); anything else is `invalid_target`.
//! - A client may name the resources the server knows
//!   ([`resources`](crate::AuthorizationServerBuilder::resources)), or, if it has a list of its
//!   own ([`Client::with_resources`](crate::Client::with_resources)), those; any other is
//!   `invalid_target`. Values are matched as exact strings, as redirect URIs are.
//! - A token request for a grant made earlier (a code, a refresh token, an `mfa_token`) may
//!   narrow the resources that grant was given for, never widen them (§2.2): "the authorization
//!   server will issue an access token based on that subset of requested resources, whereas any
//!   refresh token that is returned is bound to the full original grant".
//! - A grant made without `resource` was given for no resource in particular: a token from it
//!   may name any resource the client may ask for (a token without an audience is accepted
//!   everywhere, so naming one only narrows it).
//! - A client with a list of its own never gets a token for no resource in particular: a
//!   request that names none is for every resource on its list. (With an empty list it may name
//!   none, and its tokens are for no resource in particular.)
//! - A grant whose resources the client may no longer ask for (its list or the server's changed)
//!   gets no token at all, rather than one without an audience, which would be wider.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::OAuthError;
use crate::reason::Reason;

/// The identifier of a protected resource (RFC 8707 §2): an absolute URI without a fragment,
/// such as `https://api.example.com`. Requests name it in `resource`; tokens issued for it carry
/// it as their audience.
///
/// ```
/// use grantor::Resource;
///
/// let api: Resource = "https://api.example.com".parse().unwrap();
/// assert_eq!(api.as_str(), "https://api.example.com");
/// assert!("api.example.com".parse::<Resource>().is_err()); // not absolute
/// assert!("https://api.example.com/#top".parse::<Resource>().is_err()); // a fragment
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Resource(String);

/// Why a string is not a [`Resource`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a resource must be an absolute URI without a fragment (RFC 8707 §2): {0:?}")]
pub struct InvalidResource(pub String);

impl Resource {
    /// Checks `uri` is an absolute URI without a fragment.
    pub fn parse(uri: impl Into<String>) -> Result<Self, InvalidResource> {
        let uri = uri.into();
        if is_resource_uri(&uri) {
            Ok(Self(uri))
        } else {
            Err(InvalidResource(uri))
        }
    }

    /// The identifier, exactly as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `uri` is an absolute URI (RFC 3986 §4.3: a scheme, then the rest) with no fragment
/// and no more than [`MAX_PARAMETER_LENGTH`](crate::request::MAX_PARAMETER_LENGTH) bytes. A URI
/// is printable ASCII with no space, `"`, `<`, `>`, `\`, `^`, `` ` ``, `{`, `|` or `}` (RFC 3986
/// §2), which the URL standard's lenient parser would otherwise take (and strip or rewrite).
fn is_resource_uri(uri: &str) -> bool {
    uri.len() <= crate::request::MAX_PARAMETER_LENGTH
        && uri.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'#' | b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
                )
        })
        && url::Url::parse(uri).is_ok()
}

impl FromStr for Resource {
    type Err = InvalidResource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Resource {
    type Error = InvalidResource;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl From<Resource> for String {
    fn from(resource: Resource) -> Self {
        resource.0
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Whether a client may name `resource`: it is on the client's `own` list if it has one
/// ([`Client::allowed_resources`](crate::Client::allowed_resources)), or else among the
/// server's `known` resources.
pub(crate) fn may_ask_for(own: Option<&[Resource]>, known: &[Resource], resource: &str) -> bool {
    own.unwrap_or(known).iter().any(|r| r.as_str() == resource)
}

/// The `resource` values of a request, each checked (RFC 8707 §2): an absolute URI without a
/// fragment, and one the client (with its `own` list, if any) may ask for. Repeats are dropped; the order is kept. Since each
/// value is a resource the server was configured with, what is kept is bounded by the
/// configuration, whatever the request sends.
pub(crate) fn requested<'v>(
    values: impl Iterator<Item = &'v str>,
    own: Option<&[Resource]>,
    known: &[Resource],
) -> Result<Vec<String>, OAuthError> {
    let mut resources: Vec<String> = Vec::new();
    for value in values {
        // A value on the list is a resource the configuration parsed: no parse needed here.
        if !may_ask_for(own, known, value) {
            if !is_resource_uri(value) {
                return Err(OAuthError::invalid_target(
                    "resource must be an absolute URI without a fragment",
                )
                .with_reason(Reason::ResourceMalformed));
            }
            return Err(OAuthError::invalid_target(
                "the requested resource is unknown, or not one this client may ask for",
            )
            .with_reason(Reason::ResourceNotAllowed));
        }
        if !resources.iter().any(|r| r == value) {
            resources.push(value.to_owned());
        }
    }
    Ok(resources)
}

/// The audience of tokens for a request's `resource` `values` (checked as [`requested`] does)
/// on a grant made for `granted` resources (empty for a grant made by this very request, or
/// for no resource in particular): see [`narrowed`].
pub(crate) fn audience<'v>(
    values: impl Iterator<Item = &'v str>,
    granted: &[String],
    own: Option<&[Resource]>,
    known: &[Resource],
) -> Result<Vec<String>, OAuthError> {
    narrowed(requested(values, own, known)?, granted, own, known)
}

/// The access token's audience for a token request on a grant made earlier for `granted`
/// resources, given the request's own checked `requested` ones (RFC 8707 §2.2).
///
/// - `granted` empty (a grant for no resource in particular): what is requested; if nothing
///   is, the client's own list if it has one (such a client's tokens are always for some of
///   its resources), or none.
/// - Requested ones: each must be among `granted` (`invalid_target` otherwise).
/// - None requested: those of `granted` the client may still ask for; if none remain, the
///   request is refused, since a token without an audience would be wider than the grant.
pub(crate) fn narrowed(
    requested: Vec<String>,
    granted: &[String],
    own: Option<&[Resource]>,
    known: &[Resource],
) -> Result<Vec<String>, OAuthError> {
    if granted.is_empty() {
        if requested.is_empty() {
            if let Some(own) = own {
                return Ok(own.iter().map(|r| r.as_str().to_owned()).collect());
            }
        }
        return Ok(requested);
    }
    if !requested.is_empty() {
        if requested.iter().all(|r| granted.contains(r)) {
            return Ok(requested);
        }
        return Err(OAuthError::invalid_target(
            "the requested resource is not among the resources originally granted",
        )
        .with_reason(Reason::ResourceNotGranted));
    }
    let remaining: Vec<String> = granted
        .iter()
        .filter(|r| may_ask_for(own, known, r))
        .cloned()
        .collect();
    if remaining.is_empty() {
        return Err(OAuthError::invalid_target(
            "none of the resources originally granted may be asked for any more",
        )
        .with_reason(Reason::ResourceNoneLeft));
    }
    Ok(remaining)
}

/// A token's audience as JWT and introspection write it (RFC 7519 §4.1.3): one string for one
/// resource, an array of strings for several.
pub(crate) struct Audience<'a>(pub(crate) &'a [String]);

impl serde::Serialize for Audience<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            [one] => serializer.serialize_str(one),
            many => many.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Client, ErrorCode};

    fn own(client: &Client) -> Option<&[Resource]> {
        client.allowed_resources.as_deref()
    }

    fn known() -> Vec<Resource> {
        vec![
            Resource::parse("https://a.example").unwrap(),
            Resource::parse("https://b.example/api").unwrap(),
        ]
    }

    fn reason(result: Result<Vec<String>, OAuthError>) -> Option<Reason> {
        let error = result.err()?;
        assert_eq!(error.code(), ErrorCode::InvalidTarget);
        error.reason()
    }

    #[test]
    fn a_resource_writes_and_reads_as_its_text() {
        let api = Resource::parse("https://api.example.com/v1").unwrap();
        assert_eq!(api.to_string(), "https://api.example.com/v1");
        assert_eq!(format!("{api:?}"), "\"https://api.example.com/v1\"");
        assert_eq!(String::from(api.clone()), "https://api.example.com/v1");
        let json = serde_json::to_string(&api).unwrap();
        assert_eq!(json, "\"https://api.example.com/v1\"");
        assert_eq!(serde_json::from_str::<Resource>(&json).unwrap(), api);
        // Stored text that is no resource is refused when read back.
        assert!(serde_json::from_str::<Resource>("\"relative\"").is_err());
    }

    #[test]
    fn a_resource_is_an_absolute_uri_without_a_fragment() {
        for good in [
            "https://api.example.com",
            "https://api.example.com/v1?tenant=a",
            "urn:example:resource",
            "http://127.0.0.1:8080/api",
        ] {
            assert!(Resource::parse(good).is_ok(), "{good}");
        }
        let too_long = format!("https://a.example/{}", "x".repeat(4096));
        for bad in [
            "",
            "api",
            "/api",
            "//api.example.com",
            "https://api.example.com#",
            "https://api.example.com/#x",
            " https://api.example.com",
            "https://api.example.com/a b",
            "https://api.example.com/a\tb",
            "https://api.example.com\\api",
            "https://api.example.com/\u{e9}",
            too_long.as_str(),
        ] {
            assert!(Resource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn requested_values_are_checked_and_repeats_dropped() {
        let client = Client::public("c");
        let values = [
            "https://a.example",
            "https://b.example/api",
            "https://a.example",
        ];
        assert_eq!(
            requested(values.into_iter(), own(&client), &known()).unwrap(),
            ["https://a.example", "https://b.example/api"]
        );
        assert_eq!(
            reason(requested(["not a uri"].into_iter(), own(&client), &known())),
            Some(Reason::ResourceMalformed)
        );
        assert_eq!(
            reason(requested(
                ["https://a.example#f"].into_iter(),
                own(&client),
                &known()
            )),
            Some(Reason::ResourceMalformed)
        );
        // Exact strings: a trailing slash is another resource.
        assert_eq!(
            reason(requested(
                ["https://a.example/"].into_iter(),
                own(&client),
                &known()
            )),
            Some(Reason::ResourceNotAllowed)
        );
        // A client with a list of its own may name those only, known to the server or not.
        let listed =
            Client::public("c").with_resources([Resource::parse("https://c.example").unwrap()]);
        assert_eq!(
            reason(requested(
                ["https://a.example"].into_iter(),
                own(&listed),
                &known()
            )),
            Some(Reason::ResourceNotAllowed)
        );
        assert_eq!(
            requested(["https://c.example"].into_iter(), own(&listed), &known()).unwrap(),
            ["https://c.example"]
        );
        let none: Vec<Resource> = Vec::new();
        assert_eq!(
            reason(requested(
                ["https://a.example"].into_iter(),
                own(&client),
                &none
            )),
            Some(Reason::ResourceNotAllowed)
        );
    }

    #[test]
    fn a_later_request_narrows_the_grant_and_never_widens_it() {
        let client = Client::public("c");
        let granted = vec![
            "https://a.example".to_owned(),
            "https://b.example/api".to_owned(),
        ];
        let a = vec!["https://a.example".to_owned()];
        assert_eq!(
            narrowed(a.clone(), &granted, own(&client), &known()).unwrap(),
            a
        );
        assert_eq!(
            narrowed(Vec::new(), &granted, own(&client), &known()).unwrap(),
            granted
        );
        assert_eq!(
            reason(narrowed(a.clone(), &granted[1..], own(&client), &known())),
            Some(Reason::ResourceNotGranted)
        );
        // A grant for no resource in particular: any the client may name.
        assert_eq!(narrowed(a.clone(), &[], own(&client), &known()).unwrap(), a);
        // ... but a client with a list of its own is never for no resource in particular.
        let listed = Client::public("c").with_resources(known());
        assert_eq!(
            narrowed(Vec::new(), &[], own(&listed), &[]).unwrap(),
            granted
        );
        assert_eq!(narrowed(a.clone(), &[], own(&listed), &[]).unwrap(), a);
        assert!(narrowed(Vec::new(), &[], own(&client), &known())
            .unwrap()
            .is_empty());
        // What the client may no longer name drops out; if nothing is left, no token.
        let only_b = vec![Resource::parse("https://b.example/api").unwrap()];
        assert_eq!(
            narrowed(Vec::new(), &granted, own(&client), &only_b).unwrap(),
            ["https://b.example/api"]
        );
        assert_eq!(
            reason(narrowed(Vec::new(), &granted, own(&client), &[])),
            Some(Reason::ResourceNoneLeft)
        );
    }
}
