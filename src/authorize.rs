//! The authorization endpoint (RFC 6749 §3.1, §4.1.1, §4.2.1): validating a request, and
//! answering it with a redirect.
//!
//! ```text
//!  browser ── GET /authorize?response_type=code&client_id=…&redirect_uri=…&state=…
//!     │             &code_challenge=…&code_challenge_method=S256
//!     ▼
//!  server.authorize(request) ──► Invalid(error)     untrusted redirect URI: show an error page
//!                            ──► Redirect(error)    trusted: send the browser back with ?error=…
//!                            ──► Pending { id, … }  host: log the user in, ask for consent
//!                                    │
//!             server.approve(id, user, scope) ──► Redirect  ?code=…&state=…&iss=…
//!             server.deny(id)                 ──► Redirect  ?error=access_denied&state=…&iss=…
//! ```
//!
//! The engine never renders HTML and keeps no browser session: the host draws its own login and
//! consent page and carries only the opaque [`AuthorizationRequestId`] through it.
//!
//! A host that may decide without its page (a signed-in user who already agreed) splits
//! `authorize` in two: [`validate_authorization`](crate::AuthorizationServer::validate_authorization)
//! answers a [`ValidAuthorization`] (or the refusal to send), the host looks at it, and
//! [`decide`](crate::AuthorizationServer::decide) answers it with a [`Decision`]: ask (the
//! request waits for the page, as above), approve or deny at once.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::client::grant_scope;
use crate::client::Client;
use crate::error::OAuthError;
use crate::pkce::parse_challenge;
use crate::reason::Reason;
use crate::request::decode_form;
use crate::response::Response;
use crate::scope::Scope;
use crate::store::{ClientStore, PendingAuthorization};
use crate::types::{
    AuthorizationRequestId, ClientId, GrantType, RedirectUri, ResourceOwner, ResponseType,
};

/// An authorization request as read off the wire: the query string of a `GET`, or the form body
/// of a `POST` (RFC 6749 §3.1: the server "MUST support the use of the HTTP "GET" method … and
/// MAY support the use of the "POST" method").
#[derive(Clone, Default)]
pub struct AuthorizationRequest {
    params: Vec<u8>,
}

impl AuthorizationRequest {
    /// A request from a raw query string (without the `?`).
    pub fn from_query(query: impl AsRef<[u8]>) -> Self {
        Self {
            params: query.as_ref().to_vec(),
        }
    }

    /// A request from an `application/x-www-form-urlencoded` body.
    pub fn from_form(body: impl AsRef<[u8]>) -> Self {
        Self::from_query(body)
    }
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("len", &self.params.len())
            .finish()
    }
}

/// A redirect back to the client: `302 Found` with a `Location`.
#[derive(Clone, PartialEq, Eq)]
pub struct Redirect {
    location: String,
}

impl Redirect {
    /// Where the browser goes. It may carry a code or (implicit) an access token: do not log it.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// `302 Found` with `Location`, `Cache-Control: no-store` and `Pragma: no-cache`.
    pub fn into_response(self) -> Response {
        Response::new(302)
            .with_header("Location", self.location)
            .no_store()
    }
}

impl fmt::Debug for Redirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The query or fragment may hold a code or a token: show where it goes, not what.
        let end = self
            .location
            .find(['?', '#'])
            .unwrap_or(self.location.len());
        f.debug_struct("Redirect")
            .field("to", &self.location.get(..end).unwrap_or_default())
            .finish_non_exhaustive()
    }
}

/// The answer of [`AuthorizationServer::authorize`](crate::AuthorizationServer::authorize) and
/// [`decide`](crate::AuthorizationServer::decide).
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthorizeOutcome {
    /// A valid request: authenticate the user, ask for consent, then call
    /// [`approve`](crate::AuthorizationServer::approve) or
    /// [`deny`](crate::AuthorizationServer::deny) with `id`.
    Pending {
        /// The handle to carry through the login page (a hidden field).
        id: AuthorizationRequestId,
        /// What is asked, to show the user.
        request: PendingAuthorization,
    },
    /// Send the browser on (the redirect URI is trusted): an error for the client, or, after
    /// [`decide`](crate::AuthorizationServer::decide) approved or denied the request, the code
    /// (or implicit token) or `access_denied`.
    Redirect(Redirect),
    /// An error to show the user as a page: the client or redirect URI cannot be trusted, so
    /// RFC 6749 §4.1.2.1 forbids redirecting ("MUST NOT automatically redirect"); or, from
    /// [`decide`](crate::AuthorizationServer::decide), a request whose client changed since it
    /// was validated, or a mistake of the host's (an approved scope wider than the request, a
    /// validated request kept past its lifetime or handed to another server).
    Invalid(OAuthError),
    /// The server takes no more requests for now (too many are waiting, see
    /// [`pending_request_limits`](crate::AuthorizationServerBuilder::pending_request_limits)):
    /// answer a page with status 503 and `Retry-After` (the error's
    /// [`retry_after`](OAuthError::retry_after)). Nothing was stored.
    Unavailable(OAuthError),
}

/// An authorization request grantor has validated, with its client, waiting for
/// [`AuthorizationServer::decide`](crate::AuthorizationServer::decide) in the host's memory (not
/// in the store). Only
/// [`validate_authorization`](crate::AuthorizationServer::validate_authorization) makes one, and
/// `decide` takes it: each is decided once, by the server that validated it.
#[derive(Debug)]
pub struct ValidAuthorization {
    pub(crate) request: PendingAuthorization,
    pub(crate) client: Arc<Client>,
    /// The mark of the server that validated it.
    pub(crate) validated_by: Arc<()>,
}

impl ValidAuthorization {
    /// What is asked: client, scope, response type, redirect URI, state.
    pub fn request(&self) -> &PendingAuthorization {
        &self.request
    }

    /// The client that asks, as registered.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// How [`AuthorizationServer::decide`](crate::AuthorizationServer::decide) answers a validated
/// authorization request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Show the login and consent page: the request waits in the store, as
    /// [`authorize`](crate::AuthorizationServer::authorize) keeps it
    /// ([`AuthorizeOutcome::Pending`]).
    Ask,
    /// Approve now for `user`, who is signed in: the redirect carries the code (or, for
    /// `response_type=token`, the access token). Made by [`Decision::approve_scope`] or
    /// [`Decision::approve_all`].
    #[non_exhaustive]
    Approve {
        /// The signed-in user.
        user: ResourceOwner,
        /// What is granted, within what was asked; `None` for all of it.
        scope: Option<Scope>,
    },
    /// Deny now (say, the user declined this client before): the redirect carries
    /// `error=access_denied`.
    Deny,
}

impl Decision {
    /// Approve `scope` of what was asked (say, what the user agreed to before), for `user`. A
    /// scope wider than the request is refused as a page
    /// ([`Reason::ApprovedScopeTooWide`]).
    pub fn approve_scope(user: impl Into<ResourceOwner>, scope: Scope) -> Self {
        Decision::Approve {
            user: user.into(),
            scope: Some(scope),
        }
    }

    /// Approve everything asked, for `user`: compare the request's scope with what the user
    /// agreed to first.
    pub fn approve_all(user: impl Into<ResourceOwner>) -> Self {
        Decision::Approve {
            user: user.into(),
            scope: None,
        }
    }
}

/// The settings the authorization endpoint needs.
#[derive(Clone, Debug)]
pub(crate) struct AuthorizeSettings {
    pub(crate) implicit: bool,
    pub(crate) require_pkce: bool,
    pub(crate) allow_plain_pkce: bool,
    pub(crate) request_ttl: time::Duration,
    pub(crate) issuer: String,
    /// The resources clients without a list of their own may name (RFC 8707).
    pub(crate) resources: Arc<[crate::resource::Resource]>,
}

/// Why a request was refused, and whether the refusal may travel to the redirect URI.
pub(crate) enum Refusal {
    Untrusted(OAuthError),
    Redirect {
        to: RedirectUri,
        in_fragment: bool,
        state: Option<String>,
        error: OAuthError,
    },
}

fn untrusted(description: &'static str, reason: Reason) -> Refusal {
    Refusal::Untrusted(OAuthError::invalid_request(description).with_reason(reason))
}

/// Whether a registered redirect URI can be redirected to: absolute, http(s) or a custom scheme,
/// no fragment (RFC 6749 §3.1.2).
fn usable(uri: &RedirectUri) -> bool {
    plainly_usable(uri.as_str())
        || url::Url::parse(uri.as_str())
            .is_ok_and(|u| u.fragment().is_none() && !u.cannot_be_a_base())
}

/// Whether `uri` is an `http` or `https` URL so plain that the URL standard's parser surely
/// takes it, with no fragment: a lower-case host name whose last label starts with a letter (so
/// it is neither an IP address nor punycode), an optional port, and a path and query of printable
/// ASCII with nothing that is escaped, rewritten or ends them. Most registered redirect URIs are,
/// and they skip the full parse; any other answers `false` and is parsed.
fn plainly_usable(uri: &str) -> bool {
    let Some(rest) = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
    else {
        return false;
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let label_ok = |label: &str| {
        !label.is_empty()
            && !label.starts_with("xn--")
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let last_label_named = host
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().next().is_some_and(|b| b.is_ascii_lowercase()));
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= 65_535)
    });
    host.len() <= 253
        && host.split('.').all(label_ok)
        && last_label_named
        && port_ok
        && tail.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'#' | b'%' | b'\\' | b'"' | b'<' | b'>' | b'`' | b'{' | b'}' | b'|' | b'^'
                )
        })
}

/// Validates an authorization request into what will wait for the user's decision, and the
/// client it names.
pub(crate) async fn validate(
    clients: &dyn ClientStore,
    settings: &AuthorizeSettings,
    request: &AuthorizationRequest,
    now: OffsetDateTime,
) -> Result<(PendingAuthorization, Arc<Client>), Refusal> {
    // Malformed, too long or too many: nothing about the request can be trusted yet.
    let pairs = decode_form(&request.params).map_err(Refusal::Untrusted)?;
    let count = |name: &str| pairs.iter().filter(|(k, _)| k == name).count();
    // RFC 6749 §3.1: parameters without a value are treated as omitted.
    let one = |name: &str| -> Option<&str> {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
            .filter(|v| !v.is_empty())
    };

    // Until the client and its redirect URI are known good, every error is a page.
    if count("client_id") > 1 {
        return Err(untrusted("client_id is repeated", Reason::RepeatedClientId));
    }
    if count("redirect_uri") > 1 {
        return Err(untrusted(
            "redirect_uri is repeated",
            Reason::RepeatedRedirectUri,
        ));
    }
    let Some(client_id) = one("client_id") else {
        return Err(untrusted(
            "the client_id parameter is required",
            Reason::MissingClientId,
        ));
    };
    let client = match clients.find_client(&ClientId::new(client_id)).await {
        Ok(Some(client)) => client,
        Ok(None) => return Err(untrusted("unknown client", Reason::UnknownClient)),
        Err(e) => return Err(Refusal::Untrusted(e.into())),
    };
    let requested_uri = one("redirect_uri");
    let redirect_uri = match (requested_uri, client.redirect_uris.as_slice()) {
        // RFC 9700 §4.1.3: "exact string matching".
        (Some(sent), registered) => match registered.iter().find(|r| r.as_str() == sent) {
            Some(r) => r.clone(),
            None => {
                return Err(untrusted(
                    "redirect_uri is not registered for this client",
                    Reason::RedirectUriMismatch,
                ))
            }
        },
        // RFC 6749 §3.1.2.3: with one registered URI the parameter may be omitted.
        (None, [only]) => only.clone(),
        (None, []) => {
            return Err(untrusted(
                "this client has no registered redirect_uri",
                Reason::NoRedirectUri,
            ))
        }
        (None, _) => {
            return Err(untrusted(
                "redirect_uri is required: the client has several registered",
                Reason::RedirectUriAmbiguous,
            ))
        }
    };
    if !usable(&redirect_uri) {
        return Err(untrusted(
            "the registered redirect_uri is not an absolute URI without a fragment",
            Reason::RedirectUriUnusable,
        ));
    }

    // From here on the redirect URI is trusted: errors go back to the client.
    let state = one("state").map(str::to_owned);
    let response_type = one("response_type");
    let in_fragment = response_type == Some("token");
    let refuse = |error: OAuthError| Refusal::Redirect {
        to: redirect_uri.clone(),
        in_fragment,
        state: state.clone(),
        error,
    };
    // RFC 6749 §3.1: parameters "MUST NOT be included more than once", and unrecognized ones
    // "MUST" be ignored: so only the parameters this endpoint understands are checked.
    const KNOWN: [&str; 5] = [
        "response_type",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
    ];
    if let Some(name) = KNOWN.iter().find(|name| count(name) > 1) {
        return Err(refuse(
            OAuthError::invalid_request(format!(
                "the {name} parameter is repeated; each parameter may appear only once"
            ))
            .with_reason(Reason::RepeatedParameter),
        ));
    }
    let response_type = match response_type {
        None => {
            return Err(refuse(
                OAuthError::invalid_request("the response_type parameter is required")
                    .with_reason(Reason::MissingResponseType),
            ))
        }
        Some("code") => ResponseType::Code,
        Some("token") => ResponseType::Token,
        Some(_) => {
            return Err(refuse(
                OAuthError::unsupported_response_type("response_type must be code or token")
                    .with_reason(Reason::UnsupportedResponseType),
            ))
        }
    };
    let grant = match response_type {
        ResponseType::Code => GrantType::AuthorizationCode,
        ResponseType::Token => GrantType::Implicit,
    };
    // The implicit grant is off unless the server enables it and the client is allowed it.
    let server_allows = response_type == ResponseType::Code || settings.implicit;
    if !server_allows || !client.allows(grant) {
        return Err(refuse(
            OAuthError::unauthorized_client(format!(
                "this client is not allowed the {grant} grant"
            ))
            .with_reason(Reason::GrantNotAllowed),
        ));
    }
    let scope = grant_scope(&client, one("scope")).map_err(&refuse)?.scope;
    let code_challenge = match response_type {
        ResponseType::Code => pkce(
            &client,
            settings,
            one("code_challenge"),
            one("code_challenge_method"),
        )
        .map_err(&refuse)?,
        ResponseType::Token => None,
    };
    // RFC 8707 §2.1: the resources the code's tokens will be for; `invalid_target` otherwise.
    let resources = crate::resource::audience(
        pairs
            .iter()
            .filter(|(k, v)| k == "resource" && !v.is_empty())
            .map(|(_, v)| v.as_ref()),
        &[],
        client.own_resources(),
        &settings.resources,
    )
    .map_err(&refuse)?;
    let pending = PendingAuthorization {
        client_id: client.id.clone(),
        response_type,
        redirect_uri,
        redirect_uri_in_request: requested_uri.is_some(),
        scope,
        state,
        code_challenge,
        resources,
        // Whole seconds, as every record keeps, so all stores agree on the instant.
        expires_at: now
            .replace_nanosecond(0)
            .unwrap_or(now)
            .saturating_add(settings.request_ttl),
    };
    Ok((pending, client))
}

/// The PKCE part of a code request: required for public clients (and for all with
/// `require_pkce`).
fn pkce(
    client: &Client,
    settings: &AuthorizeSettings,
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<crate::pkce::CodeChallenge>, OAuthError> {
    let parsed = parse_challenge(challenge, method, settings.allow_plain_pkce)?;
    if parsed.is_none() && (client.is_public() || settings.require_pkce) {
        // RFC 7636 §4.4.1: a server that requires PKCE answers a request without it with
        // invalid_request; RFC 9700 §2.1.1: public clients MUST use it.
        return Err(OAuthError::invalid_request(
            "code_challenge is required (PKCE, RFC 7636) with code_challenge_method=S256",
        )
        .with_reason(Reason::PkceRequired));
    }
    Ok(parsed)
}

/// A redirect to `to` carrying `params` in its query or fragment. Parameters already in the
/// registered URI's query are kept (RFC 6749 §3.1.2).
pub(crate) fn redirect(to: &RedirectUri, in_fragment: bool, params: &[(&str, &str)]) -> Redirect {
    // The registered string exactly as registered (no normalisation), which has no fragment.
    let base = to.as_str();
    let separator = if in_fragment {
        Some('#')
    } else if !base.contains('?') {
        Some('?')
    } else if base.ends_with('?') || base.ends_with('&') {
        None
    } else {
        Some('&')
    };
    // The location is written once, into room for what a code or token redirect carries.
    let mut location = String::with_capacity(base.len() + 256);
    location.push_str(base);
    location.extend(separator);
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            location.push('&');
        }
        // Form-urlencoded as the WHATWG URL standard writes it (`url` copies plain runs whole).
        location.extend(url::form_urlencoded::byte_serialize(k.as_bytes()));
        location.push('=');
        location.extend(url::form_urlencoded::byte_serialize(v.as_bytes()));
    }
    Redirect { location }
}

/// An error redirect (RFC 6749 §4.1.2.1, §4.2.2.1) with `iss` (RFC 9207).
pub(crate) fn error_redirect(
    to: &RedirectUri,
    in_fragment: bool,
    error: &OAuthError,
    state: Option<&str>,
    issuer: &str,
) -> Redirect {
    let mut params = vec![
        ("error", error.code().as_str()),
        ("error_description", error.description()),
    ];
    if let Some(uri) = error.uri() {
        params.push(("error_uri", uri));
    }
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", issuer));
    redirect(to, in_fragment, &params)
}

#[cfg(test)]
mod tests {
    use super::plainly_usable;

    /// What the full check answers.
    fn parsed_usable(uri: &str) -> bool {
        url::Url::parse(uri).is_ok_and(|u| u.fragment().is_none() && !u.cannot_be_a_base())
    }

    #[test]
    fn plain_redirect_uris_skip_the_parse_and_the_parser_agrees() {
        for plain in [
            "http://localhost:3000/callback",
            "https://app.example.com/oauth/cb?tenant=a-1&x=~",
            "https://example.com",
            "http://a-b.c0/",
        ] {
            assert!(plainly_usable(plain), "{plain}");
            assert!(parsed_usable(plain), "{plain}");
        }
        // Left to the parser (usable or not): addresses, upper case, punycode, odd ports,
        // escapes, fragments, other schemes.
        for other in [
            "http://127.0.0.1/cb",
            "http://[::1]/cb",
            "http://Example.com/",
            "http://xn--nxasmq6b.com/",
            "http://host:65536/",
            "http://host:/",
            "http://host/a%20b",
            "http://host/#x",
            "com.example.app:/callback",
            "http://user@host/",
        ] {
            assert!(!plainly_usable(other), "{other}");
        }
        // Generated near-URLs: whatever is taken as plain, the parser takes too.
        let schemes = ["http://", "https://", "HTTP://", "http:/", "ftp://", ""];
        let host_bytes = b"ab0-.xn9";
        let tail_bytes = b"/?=&a#%\\ <.~:@[]";
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |modulo: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % modulo) as usize
        };
        let mut plain = 0;
        for _ in 0..100_000 {
            let mut uri = String::from(schemes[next(schemes.len() as u64)]);
            for _ in 0..next(12) {
                uri.push(char::from(host_bytes[next(host_bytes.len() as u64)]));
            }
            if next(3) == 0 {
                uri.push(':');
                for _ in 0..next(7) {
                    uri.push(char::from(b'0' + next(10) as u8));
                }
            }
            for _ in 0..next(10) {
                uri.push(char::from(tail_bytes[next(tail_bytes.len() as u64)]));
            }
            if plainly_usable(&uri) {
                plain += 1;
                assert!(parsed_usable(&uri), "{uri}");
            }
        }
        assert!(
            plain > 1_000,
            "the generator reaches the plain case ({plain})"
        );
    }

    #[test]
    fn redirect_values_are_encoded_as_the_url_standard_encodes_them() {
        let samples = [
            "",
            "plain",
            "a b+c&d=e",
            "http://localhost:8080/",
            "xyz~!*'();:@$,/?#[]",
            "état—ok 🎉",
            "\u{0}\u{7f}%",
            "QpS3bX-_.*4",
        ];
        let every_ascii: String = (0u8..128).map(char::from).collect();
        let to = crate::types::RedirectUri::new("https://app.example/cb");
        for value in samples.iter().copied().chain([every_ascii.as_str()]) {
            let ours = super::redirect(&to, false, &[("v", value)]);
            let theirs: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
            assert_eq!(
                ours.location(),
                format!("https://app.example/cb?v={theirs}"),
                "{value:?}"
            );
        }
    }
}
