//! Errors: the protocol's, and the host's.
//!
//! Two kinds of failure leave the engine:
//!
//! - [`OAuthError`]: the request was refused for a reason the RFCs name. It carries an
//!   [`ErrorCode`], a human-readable description, and optionally an error URI. The HTTP status and
//!   headers are derived from the code in one place ([`ErrorCode::status`] and the response
//!   builders), never chosen at the call site.
//! - [`StoreError`]: a hook (database, cache, network) failed. The engine logs the cause with
//!   `tracing` and answers `server_error` (500) or `temporarily_unavailable` (503) with a generic
//!   description, so no internal detail reaches the client.

use std::borrow::Cow;
use std::fmt;

use crate::reason::Reason;

/// Every error code defined by the OAuth 2.0 RFCs grantor implements.
///
/// | code | where | status |
/// |---|---|---|
/// | `invalid_request` | RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1 | 400 |
/// | `invalid_client` | RFC 6749 §5.2 | 401 |
/// | `invalid_grant` | RFC 6749 §5.2 | 400 |
/// | `unauthorized_client` | RFC 6749 §4.1.2.1, §5.2 | 400 |
/// | `unsupported_grant_type` | RFC 6749 §5.2 | 400 |
/// | `invalid_scope` | RFC 6749 §4.1.2.1, §5.2 | 400 |
/// | `access_denied` | RFC 6749 §4.1.2.1; RFC 8628 §3.5 | 400 |
/// | `unsupported_response_type` | RFC 6749 §4.1.2.1 | 400 |
/// | `server_error` | RFC 6749 §4.1.2.1 | 500 |
/// | `temporarily_unavailable` | RFC 6749 §4.1.2.1 | 503 |
/// | `invalid_token` | RFC 6750 §3.1 | 401 |
/// | `insufficient_scope` | RFC 6750 §3.1 | 403 |
/// | `authorization_pending` | RFC 8628 §3.5 | 400 |
/// | `slow_down` | RFC 8628 §3.5 | 400 |
/// | `expired_token` | RFC 8628 §3.5 | 400 |
/// | `unsupported_token_type` | RFC 7009 §2.2.1 | 400 |
/// | `invalid_target` | RFC 8707 §2 | 400 |
///
/// On the authorization endpoint these codes travel in a redirect, where the status does not apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request is missing a required parameter, repeats one, has an invalid value, or is
    /// otherwise malformed.
    InvalidRequest,
    /// Client authentication failed: unknown client, no authentication, wrong secret, or an
    /// unsupported authentication method.
    InvalidClient,
    /// The grant (code, password, refresh token, …) is invalid, expired, revoked, or was issued to
    /// another client.
    InvalidGrant,
    /// The authenticated client may not use this grant type or response type.
    UnauthorizedClient,
    /// The authorization server does not support this grant type.
    UnsupportedGrantType,
    /// The requested scope is invalid, unknown, malformed, or exceeds what the client may ask for.
    InvalidScope,
    /// The resource owner or the authorization server denied the request.
    AccessDenied,
    /// The authorization server does not support this response type.
    UnsupportedResponseType,
    /// The authorization server met an unexpected condition.
    ServerError,
    /// The authorization server cannot handle the request now (overload, maintenance, storage down).
    TemporarilyUnavailable,
    /// The access token is expired, revoked, malformed, or invalid (resource servers).
    InvalidToken,
    /// The access token lacks the scope the resource needs (resource servers).
    InsufficientScope,
    /// Device flow: the user has not yet finished the authorization step.
    AuthorizationPending,
    /// Device flow: the client polls too often and must add 5 seconds to its interval.
    SlowDown,
    /// Device flow: the device code expired.
    ExpiredToken,
    /// Revocation: the server cannot revoke this type of token.
    UnsupportedTokenType,
    /// Resource indicators (RFC 8707 §2): a requested resource is invalid, unknown, malformed,
    /// not one this client may ask for, or not among those originally granted.
    InvalidTarget,
    /// Password grant: the password is right, and a second factor is needed. Answered with 403
    /// and an `mfa_token` to finish with the `mfa-otp` grant (Auth0's "Resource Owner Password
    /// Flow with MFA").
    MfaRequired,
}

impl ErrorCode {
    /// The code as it appears on the wire, e.g. `"invalid_grant"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidTarget => "invalid_target",
            Self::MfaRequired => "mfa_required",
        }
    }

    /// The HTTP status this code is answered with when it is not carried in a redirect.
    ///
    /// RFC 6749 §5.2: "The authorization server responds with an HTTP 400 (Bad Request) status
    /// code (unless specified otherwise)"; `invalid_client` is 401; RFC 6750 §3.1 gives
    /// `invalid_token` 401 and `insufficient_scope` 403.
    pub const fn status(self) -> u16 {
        match self {
            Self::InvalidClient | Self::InvalidToken => 401,
            Self::InsufficientScope | Self::MfaRequired => 403,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            Self::InvalidRequest
            | Self::InvalidGrant
            | Self::UnauthorizedClient
            | Self::UnsupportedGrantType
            | Self::InvalidScope
            | Self::AccessDenied
            | Self::UnsupportedResponseType
            | Self::AuthorizationPending
            | Self::SlowDown
            | Self::ExpiredToken
            | Self::UnsupportedTokenType
            | Self::InvalidTarget => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal the client is told about: an [`ErrorCode`], a description and an optional URI.
///
/// The description is meant for the client's developer. It never names which of several secret
/// checks failed (an unknown user and a wrong password read the same); the finer
/// [`reason`](OAuthError::reason) goes only to `tracing` and to tests.
///
/// ```
/// use grantor::{ErrorCode, OAuthError};
///
/// let e = OAuthError::invalid_grant("the refresh token is invalid");
/// assert_eq!(e.code(), ErrorCode::InvalidGrant);
/// assert_eq!(e.code().status(), 400);
/// ```
#[derive(Clone, Debug)]
pub struct OAuthError {
    code: ErrorCode,
    description: Cow<'static, str>,
    uri: Option<String>,
    reason: Option<Reason>,
    retry_after: Option<u64>,
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $fn_name:ident => $code:ident;)*) => {
        impl OAuthError {
            $(
                $(#[$doc])*
                pub fn $fn_name(description: impl Into<Cow<'static, str>>) -> Self {
                    Self::new(ErrorCode::$code, description)
                }
            )*
        }
    };
}

constructors! {
    /// An `invalid_request` error.
    invalid_request => InvalidRequest;
    /// An `invalid_client` error (401).
    invalid_client => InvalidClient;
    /// An `invalid_grant` error.
    invalid_grant => InvalidGrant;
    /// An `unauthorized_client` error.
    unauthorized_client => UnauthorizedClient;
    /// An `unsupported_grant_type` error.
    unsupported_grant_type => UnsupportedGrantType;
    /// An `invalid_scope` error.
    invalid_scope => InvalidScope;
    /// An `invalid_target` error (RFC 8707 §2).
    invalid_target => InvalidTarget;
    /// An `access_denied` error.
    access_denied => AccessDenied;
    /// An `unsupported_response_type` error.
    unsupported_response_type => UnsupportedResponseType;
    /// A `server_error` error (500).
    server_error => ServerError;
    /// A `temporarily_unavailable` error (503).
    temporarily_unavailable => TemporarilyUnavailable;
    /// An `invalid_token` error (401, resource servers).
    invalid_token => InvalidToken;
    /// An `insufficient_scope` error (403, resource servers).
    insufficient_scope => InsufficientScope;
    /// An `authorization_pending` error (device flow).
    authorization_pending => AuthorizationPending;
    /// A `slow_down` error (device flow).
    slow_down => SlowDown;
    /// An `expired_token` error (device flow).
    expired_token => ExpiredToken;
    /// An `unsupported_token_type` error (revocation).
    unsupported_token_type => UnsupportedTokenType;
}

impl OAuthError {
    /// An error with the given code and description.
    ///
    /// Characters that RFC 6749 §5.2 does not allow in `error_description` (anything outside
    /// `%x20-21 / %x23-5B / %x5D-7E`, so also `"` and `\`) are replaced by `?`.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        let description = description.into();
        let description = if description.chars().all(allowed_in_description) {
            description
        } else {
            Cow::Owned(
                description
                    .chars()
                    .map(|c| if allowed_in_description(c) { c } else { '?' })
                    .collect(),
            )
        };
        Self {
            code,
            description,
            uri: None,
            reason: None,
            retry_after: None,
        }
    }

    /// Adds an `error_uri` pointing to a page that explains the error.
    pub fn with_uri(mut self, uri: impl Into<String>) -> Self {
        self.uri = Some(uri.into());
        self
    }

    /// Adds the internal reason, for logs and the host's own pages; it is never sent to the
    /// client.
    pub fn with_reason(mut self, reason: Reason) -> Self {
        self.reason = Some(reason);
        self
    }

    /// Asks the client to wait this many seconds before trying again (`Retry-After`).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The `error_description` sent to the client.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The `error_uri`, if any.
    pub fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }

    /// The internal reason (never sent to the client), if one was given.
    pub fn reason(&self) -> Option<Reason> {
        self.reason
    }

    /// Seconds the client should wait before retrying, if any.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }
}

fn allowed_in_description(c: char) -> bool {
    matches!(c, '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for OAuthError {}

/// A boxed error from a host's storage or verification backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure of a hook (client store, token store, user verifier, attempt limiter).
///
/// Hooks return this when *they* fail, not when the answer is "no": an unknown client is
/// `Ok(None)`, a wrong password is `Ok(UserVerdict::Refused)`. The engine turns a `StoreError`
/// into `server_error` (500) or, for [`StoreError::Unavailable`], `temporarily_unavailable`
/// (503); the cause is logged with `tracing` and never sent to the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend cannot be reached right now (connection refused, timeout); retrying later may
    /// succeed.
    #[error("storage backend unavailable")]
    Unavailable(#[source] BoxError),
    /// The backend failed in any other way (corrupt data, a bug, a constraint violation).
    #[error("storage backend failed")]
    Backend(#[source] BoxError),
}

impl StoreError {
    /// A [`StoreError::Unavailable`] with the given cause.
    pub fn unavailable(cause: impl Into<BoxError>) -> Self {
        Self::Unavailable(cause.into())
    }

    /// A [`StoreError::Backend`] with the given cause.
    pub fn backend(cause: impl Into<BoxError>) -> Self {
        Self::Backend(cause.into())
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        let cause = match &e {
            StoreError::Unavailable(c) | StoreError::Backend(c) => c.to_string(),
        };
        tracing::error!(error = %e, cause = %cause, "storage hook failed");
        match e {
            StoreError::Unavailable(_) => OAuthError::temporarily_unavailable(
                "the service is temporarily unavailable; try again later",
            )
            .with_reason(Reason::StoreUnavailable),
            StoreError::Backend(_) => {
                OAuthError::server_error("the server met an unexpected condition")
                    .with_reason(Reason::StoreFailed)
            }
        }
    }
}

#[cfg(test)]
mod tests;
