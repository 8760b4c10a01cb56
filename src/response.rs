//! Framework-neutral responses: status, headers and body, ready to be written out as they are.

use std::borrow::Cow;
use std::fmt;
use std::io::Write as _;

use serde::Serialize;

use crate::error::{ErrorCode, OAuthError};
use crate::scope::Scope;
use crate::types::{AccessToken, MfaToken, RefreshToken};

/// An HTTP response for the host to write out unchanged.
///
/// `Debug` shows the status and header names only: a body may hold tokens.
///
/// ```
/// # async fn demo(server: grantor::AuthorizationServer) {
/// let response = server.token(grantor::TokenRequest::form("grant_type=password")).await;
/// let status: u16 = response.status();
/// for (name, value) in response.headers() { /* copy each header */ }
/// let body: &[u8] = response.body();
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(&'static str, Cow<'static, str>)>,
    body: Vec<u8>,
}

impl Response {
    /// A response with this status, no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header. A `&'static str` value is kept without a copy.
    pub fn with_header(mut self, name: &'static str, value: impl Into<Cow<'static, str>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// A JSON response: `Content-Type: application/json` and the serialized body.
    pub(crate) fn json(status: u16, body: &impl Serialize) -> Self {
        // Serializing these plain structs of strings and numbers cannot fail; an empty object
        // would still be valid JSON if it ever did. Room for most answers, so that they are
        // written without growing.
        let mut buf = Vec::with_capacity(256);
        let body = match serde_json::to_writer(&mut buf, body) {
            Ok(()) => buf,
            Err(_) => b"{}".to_vec(),
        };
        Self::json_bytes(status, body)
    }

    /// A JSON response of a body already written: `Content-Type: application/json`.
    fn json_bytes(status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            // Room for the no-store pair, the headers every JSON answer of the token,
            // revocation and introspection endpoints carries, and one more.
            headers: Vec::with_capacity(4),
            body,
        }
        .with_header("Content-Type", "application/json")
    }

    /// Adds `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
    pub(crate) fn no_store(self) -> Self {
        self.with_header("Cache-Control", "no-store")
            .with_header("Pragma", "no-cache")
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The headers, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(k, v)| (*k, v.as_ref()))
    }

    /// The first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Status, headers and body, by value. A header value is borrowed when it is a constant.
    #[allow(clippy::type_complexity)] // the three parts, as `Response`'s fields hold them
    pub fn into_parts(self) -> (u16, Vec<(&'static str, Cow<'static, str>)>, Vec<u8>) {
        (self.status, self.headers, self.body)
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A successful access token response (RFC 6749 §5.1), before it is written out.
pub(crate) struct TokenResponse {
    pub(crate) access_token: AccessToken,
    pub(crate) expires_in: i64,
    pub(crate) refresh_token: Option<RefreshToken>,
    /// Present when the granted scope must be told (it differs from the request).
    pub(crate) scope: Option<Scope>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.is_some())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)] // written by hand (`to_json`); serde_json checks it in the tests
struct TokenBody<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

impl TokenResponse {
    /// RFC 6749 §5.1: 200, JSON, `Cache-Control: no-store`, `Pragma: no-cache`.
    pub(crate) fn into_response(self) -> Response {
        let body = TokenBody {
            access_token: self.access_token.secret(),
            token_type: "Bearer",
            expires_in: self.expires_in,
            refresh_token: self.refresh_token.as_ref().map(RefreshToken::secret),
            scope: self.scope.as_ref().map(Scope::as_str),
        };
        Response::json_bytes(200, body.to_json()).no_store()
    }
}

impl TokenBody<'_> {
    /// The body as `serde_json` would write it (the same fields, order and escaping), written
    /// directly: the tokens are base64url and a scope has no character JSON escapes, so the
    /// strings are copied as they are (a string that did need escaping is left to `serde_json`).
    fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"{\"access_token\":");
        json_string(&mut out, self.access_token);
        out.extend_from_slice(b",\"token_type\":");
        json_string(&mut out, self.token_type);
        out.extend_from_slice(b",\"expires_in\":");
        // Writing into a `Vec` cannot fail.
        let _ = write!(out, "{}", self.expires_in);
        if let Some(refresh_token) = self.refresh_token {
            out.extend_from_slice(b",\"refresh_token\":");
            json_string(&mut out, refresh_token);
        }
        if let Some(scope) = self.scope {
            out.extend_from_slice(b",\"scope\":");
            json_string(&mut out, scope);
        }
        out.push(b'}');
        out
    }
}

/// Writes `value` as a JSON string: as it is when nothing in it needs escaping (no control
/// character, quote or backslash), else by `serde_json`.
fn json_string(out: &mut Vec<u8>, value: &str) {
    if value.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, value).is_err() {
        // Writing a string into a `Vec` cannot fail; should it, the value is left out.
        out.extend_from_slice(b"null");
    }
}

/// What a grant answers at the token endpoint: tokens, or, from the password grant for a user
/// with a second factor, the challenge to finish with the `mfa-otp` grant. Neither is an error.
pub(crate) enum TokenOutcome {
    /// An access token response (RFC 6749 §5.1).
    Tokens(TokenResponse),
    /// `403 mfa_required` with the `mfa_token` the client finishes the sign-in with.
    MfaRequired(MfaToken),
}

impl From<TokenResponse> for TokenOutcome {
    fn from(tokens: TokenResponse) -> Self {
        Self::Tokens(tokens)
    }
}

impl TokenOutcome {
    /// The response to send, with `Cache-Control: no-store`.
    pub(crate) fn into_response(self) -> Response {
        match self {
            Self::Tokens(tokens) => tokens.into_response(),
            Self::MfaRequired(mfa_token) => {
                let code = ErrorCode::MfaRequired;
                let body = ErrorBody {
                    error: code.as_str(),
                    error_description: "multi-factor authentication required: send the \
                                        one-time code with the mfa_token",
                    error_uri: None,
                    mfa_token: Some(mfa_token.secret()),
                };
                Response::json(code.status(), &body).no_store()
            }
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    error_description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_uri: Option<&'a str>,
    /// The `mfa_token` of an `mfa_required` answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    mfa_token: Option<&'a str>,
}

/// The token endpoint's `WWW-Authenticate` challenge: the realm `oauth2`.
const BASIC_CHALLENGE: &str = "Basic realm=\"oauth2\", charset=\"UTF-8\"";

impl OAuthError {
    /// This error as a token-endpoint response (RFC 6749 §5.2): the JSON error body with
    /// `Cache-Control: no-store` and `Pragma: no-cache`; 401 with `WWW-Authenticate: Basic` for
    /// `invalid_client`; `Retry-After` when set.
    pub fn into_token_response(&self) -> Response {
        let mut response = self.json_response();
        if self.code() == ErrorCode::InvalidClient {
            // RFC 6749 §5.2: with a failed Basic authentication the server "MUST respond with an
            // HTTP 401 (Unauthorized) status code and include the "WWW-Authenticate" response
            // header field matching the authentication scheme used by the client"; RFC 9110
            // §15.5.2 requires the challenge on every 401.
            response = response.with_header("WWW-Authenticate", BASIC_CHALLENGE);
        }
        response
    }

    /// The JSON error body with its status and no-store headers.
    pub(crate) fn json_response(&self) -> Response {
        let body = ErrorBody {
            error: self.code().as_str(),
            error_description: self.description(),
            error_uri: self.uri(),
            mfa_token: None,
        };
        let mut response = Response::json(self.code().status(), &body).no_store();
        if let Some(secs) = self.retry_after() {
            response = response.with_header("Retry-After", secs.to_string());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bodies_are_written_as_serde_json_writes_them() {
        let cases = [
            ("tok", None, None, 3600),
            ("tok", Some("ref"), None, 0),
            ("tok", None, Some("read write"), -1),
            (
                "tok-_~",
                Some("r"),
                Some("a!#$%&'()*+,-./:;<=>?@[]^_`{|}~"),
                i64::MAX,
            ),
            ("t\"q\\b\u{1}", Some("é"), Some("x\ny"), i64::MIN),
        ];
        for (access, refresh, scope, expires_in) in cases {
            let body = TokenBody {
                access_token: access,
                token_type: "Bearer",
                expires_in,
                refresh_token: refresh,
                scope,
            };
            let expected = serde_json::to_vec(&body).unwrap_or_default();
            assert_eq!(
                String::from_utf8_lossy(&body.to_json()),
                String::from_utf8_lossy(&expected)
            );
        }
    }
}
