//! Client authentication at the token endpoint (RFC 6749 §2.3, §3.2.1).
//!
//! Three methods, one per request:
//!
//! | method | how | for |
//! |---|---|---|
//! | `client_secret_basic` | `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))` | confidential clients |
//! | `client_secret_post` | `client_id` and `client_secret` in the body | confidential clients |
//! | `none` | `client_id` in the body, no secret | public clients |
//!
//! RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in each request."
//!
//! RFC 6749 §2.3.1: a client secret is a password, so "the authorization server MUST protect
//! any endpoint utilizing it against brute force attacks": wrong secrets are counted per client
//! and caller address ([`ClientSecretLimits`]), with the limiter that counts wrong passwords.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

use crate::attempts::{AttemptGate, Count, Held};
use crate::client::{Client, ClientKind};
use crate::error::OAuthError;
use crate::reason::Reason;
use crate::request::{form_decode, Params};
use crate::store::{AttemptKey, AttemptRule, ClientStore};
use crate::token::SecretHash;
use crate::types::{ClientId, ClientSecret};

const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Brute-force limits on client secrets (RFC 6749 §2.3.1: "the authorization server MUST
/// protect any endpoint utilizing it against brute force attacks"), set with
/// [`AuthorizationServerBuilder::client_secret_limits`](crate::AuthorizationServerBuilder::client_secret_limits).
///
/// Every request that presents a client secret (at the token, revocation, introspection and
/// device authorization endpoints) holds a place on one count while the secret is checked; a
/// wrong secret turns it into a failure. A secret sent for an unknown client, or for a public
/// client (which has none), is counted as a wrong one, so that the answers do not tell these
/// apart. Past the limit the request is refused with `invalid_client` and `Retry-After`,
/// without the secret being checked, even when it is right; while as many checks are in flight
/// as failures remain, others wait up to `max_wait`, then get `503 temporarily_unavailable`
/// (an RFC 6749 §5.2 extension, as for sign-ins). A public client that sends no secret is
/// never counted.
///
/// The count is per client **and caller address** when the request names its caller
/// ([`TokenRequest::with_caller`](crate::TokenRequest::with_caller); the axum adapter does so
/// when the router is served with `ConnectInfo`, or when a middleware of the host's put a
/// `grantor::axum::Caller` in the request's extensions), so one caller's wrong guesses
/// never hold back the client's own servers. Requests that name no caller share one count per
/// client, which anyone who knows the client id can run down: pass the caller's address. Behind
/// a reverse proxy, pass the address the proxy reports, never the proxy's own, or every caller
/// shares one count.
///
/// The count is kept in this process by default (no store round trip on the hot path); servers
/// behind one address each keep their own, unless they share a
/// [`client_secret_limiter`](crate::AuthorizationServerBuilder::client_secret_limiter).
///
/// A limit slows one caller down; it cannot stop many callers guessing a short secret. An IPv6
/// caller is counted by its /64, and one /48 holds 65,536 of them: 10 guesses each is 655,360
/// guesses per window. Give confidential clients generated secrets of 128 bits or more (RFC
/// 6749 §10.10), which no number of callers can guess.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientSecretLimits {
    /// Wrong secrets allowed for one client from one caller address (an IPv6 caller by its
    /// /64). Default: 10 in 15 minutes.
    pub per_caller: Option<AttemptRule>,
    /// Wrong secrets allowed for one client across every request that names no caller.
    /// Default: 100 in 15 minutes.
    pub per_client_without_caller: Option<AttemptRule>,
    /// How long a check may wait for a place while other checks of the same count are in
    /// flight (then `503 temporarily_unavailable`). Default: 10 s.
    pub max_wait: Duration,
}

impl Default for ClientSecretLimits {
    fn default() -> Self {
        let fifteen_minutes = Duration::from_secs(15 * 60);
        Self {
            per_caller: Some(AttemptRule {
                max_failures: 10,
                window: fifteen_minutes,
            }),
            per_client_without_caller: Some(AttemptRule {
                max_failures: 100,
                window: fifteen_minutes,
            }),
            max_wait: Duration::from_secs(10),
        }
    }
}

impl ClientSecretLimits {
    /// Limits with the given rules and the default wait: `per_caller` for requests that name
    /// their caller, `per_client_without_caller` for the rest (`None`: not counted).
    pub fn new(
        per_caller: Option<AttemptRule>,
        per_client_without_caller: Option<AttemptRule>,
    ) -> Self {
        Self {
            per_caller,
            per_client_without_caller,
            ..Self::default()
        }
    }

    /// The same limits, waiting at most `max_wait` for a place.
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }
}

/// The limiter and the limits that count wrong client secrets.
pub(crate) struct SecretGate {
    pub(crate) gate: AttemptGate,
    pub(crate) limits: ClientSecretLimits,
}

impl SecretGate {
    /// The count a secret for `client` from `caller` is held on, if its rule is set.
    fn count(&self, client: &ClientId, caller: Option<IpAddr>) -> Option<Count> {
        let rule = match caller {
            Some(_) => self.limits.per_caller,
            None => self.limits.per_client_without_caller,
        }?;
        Some(Count {
            key: AttemptKey::client_secret(client, caller),
            rule,
            refusal: secret_refusal,
        })
    }
}

fn secret_refusal(retry_after: u64) -> OAuthError {
    OAuthError::invalid_client("too many failed client authentications; try again later")
        .with_reason(Reason::ClientSecretAttemptsExceeded)
        .with_retry_after(retry_after)
}

fn secret_busy() -> OAuthError {
    OAuthError::temporarily_unavailable(
        "too many authentications of this client are being checked at once; try again in a moment",
    )
    .with_reason(Reason::ClientSecretBusy)
    .with_retry_after(1)
}

/// The credentials a request presents.
#[derive(Debug)]
pub(crate) struct Credentials {
    pub(crate) client_id: ClientId,
    pub(crate) secret: Option<ClientSecret>,
    pub(crate) method: AuthMethod,
}

/// How the client presented its credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthMethod {
    Basic,
    Post,
    None,
}

impl AuthMethod {
    /// The method's name in RFC 7591 §2 terms.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "client_secret_basic",
            Self::Post => "client_secret_post",
            Self::None => "none",
        }
    }
}

/// The client authentication methods of the token and revocation endpoints, as the metadata
/// names them (RFC 8414 §2).
pub(crate) const CLIENT_AUTH_METHODS: [&str; 3] = [
    AuthMethod::Basic.as_str(),
    AuthMethod::Post.as_str(),
    AuthMethod::None.as_str(),
];
/// Introspection's: it needs a confidential caller.
pub(crate) const INTROSPECTION_AUTH_METHODS: [&str; 2] =
    [AuthMethod::Basic.as_str(), AuthMethod::Post.as_str()];

fn invalid_client(reason: Reason) -> OAuthError {
    OAuthError::invalid_client("client authentication failed").with_reason(reason)
}

/// Reads the client's credentials from the `Authorization` header and the body.
pub(crate) fn credentials(
    authorization: Option<&[u8]>,
    params: &Params<'_>,
) -> Result<Credentials, OAuthError> {
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");

    if let Some(header) = authorization {
        let (client_id, secret) = parse_basic(header)?;
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "the client authenticated with both HTTP Basic and client_secret in the body; use one method",
            )
            .with_reason(Reason::TwoAuthMethods));
        }
        if body_id.is_some_and(|b| b != client_id.as_str()) {
            return Err(OAuthError::invalid_request(
                "the client_id in the body differs from the one in the Authorization header",
            )
            .with_reason(Reason::ClientIdMismatch));
        }
        return Ok(Credentials {
            client_id,
            secret: Some(secret),
            method: AuthMethod::Basic,
        });
    }

    match (body_id, body_secret) {
        (Some(id), Some(secret)) => Ok(Credentials {
            client_id: ClientId::new(id),
            secret: Some(ClientSecret::new(secret)),
            method: AuthMethod::Post,
        }),
        (Some(id), None) => Ok(Credentials {
            client_id: ClientId::new(id),
            secret: None,
            method: AuthMethod::None,
        }),
        (None, _) => Err(OAuthError::invalid_client(
            "client authentication is required: use HTTP Basic, or send client_id",
        )
        .with_reason(Reason::NoClientAuthentication)),
    }
}

/// Parses `Basic <base64(urlencode(id):urlencode(secret))>` (RFC 6749 §2.3.1, RFC 7617).
pub(crate) fn parse_basic(header: &[u8]) -> Result<(ClientId, ClientSecret), OAuthError> {
    let header =
        std::str::from_utf8(header).map_err(|_| invalid_client(Reason::AuthorizationNotUtf8))?;
    let (scheme, rest) = header
        .trim()
        .split_once(' ')
        .ok_or_else(|| invalid_client(Reason::AuthorizationMalformed))?;
    if !scheme.eq_ignore_ascii_case("Basic") {
        return Err(OAuthError::invalid_client(
            "unsupported authentication scheme; the token endpoint accepts HTTP Basic",
        )
        .with_reason(Reason::UnsupportedAuthScheme));
    }
    let decoded = BASE64_LENIENT
        .decode(rest.trim())
        .map_err(|_| invalid_client(Reason::BasicNotBase64))?;
    let mut decoded =
        String::from_utf8(decoded).map_err(|_| invalid_client(Reason::BasicNotUtf8))?;
    let colon = decoded
        .find(':')
        .ok_or_else(|| invalid_client(Reason::BasicNoColon))?;
    let (id, secret) = decoded.split_at(colon);
    let secret = secret.get(1..).unwrap_or_default();
    // RFC 6749 §2.3.1: both are "encoded using the application/x-www-form-urlencoded encoding
    // algorithm".
    let bad_encoding = |_| invalid_client(Reason::BasicBadEncoding);
    let id = form_decode(id.as_bytes()).map_err(bad_encoding)?;
    if id.is_empty() {
        return Err(invalid_client(Reason::BasicEmptyClientId));
    }
    let id = ClientId::new(id.as_ref());
    let secret = match form_decode(secret.as_bytes()).map_err(bad_encoding)? {
        Cow::Owned(decoded_secret) => decoded_secret,
        // Nothing to decode: the secret is the tail of the buffer, kept without a copy.
        Cow::Borrowed(_) => {
            decoded.drain(..=colon);
            decoded
        }
    };
    Ok((id, ClientSecret::new(secret)))
}

/// Authenticates the client, answering its registration.
///
/// Every failure is `invalid_client` with the same description, so a caller learns nothing about
/// which clients exist; the secret is checked in constant time, against a decoy when the client is
/// unknown. A secret sent for a confidential or unknown client is counted by `limits` (per
/// client and `caller`), known and unknown clients alike.
pub(crate) async fn authenticate(
    clients: &dyn ClientStore,
    limits: Option<&SecretGate>,
    caller: Option<IpAddr>,
    creds: Credentials,
) -> Result<Arc<Client>, OAuthError> {
    let found = clients.find_client(&creds.client_id).await?;
    let Some(secret) = &creds.secret else {
        return match found {
            None => Err(invalid_client(Reason::UnknownClient)),
            Some(client) => match client.kind {
                ClientKind::Confidential { .. } => {
                    Err(invalid_client(Reason::ConfidentialWithoutSecret))
                }
                ClientKind::Public => Ok(client),
            },
        };
    };
    // A secret is checked against the client's hash; for an unknown client, or a public one
    // (which has no secret), against a decoy, and counted as wrong all the same, so that the
    // answer (and its timing) does not tell them apart.
    let decoy;
    let (hash, counted_as) = match &found {
        Some(client) => match &client.kind {
            ClientKind::Confidential { secret: hash } => (hash, &client.id),
            // A public client has no secret; Basic with an empty password is how some
            // libraries say "none".
            ClientKind::Public if secret.secret().is_empty() => return Ok(client.clone()),
            ClientKind::Public => {
                decoy = SecretHash::decoy();
                (&decoy, &client.id)
            }
        },
        None => {
            decoy = SecretHash::decoy();
            (&decoy, &creds.client_id)
        }
    };
    // RFC 6749 §2.3.1: a client secret is a password; guesses are counted against the client
    // as the store knows it (its own id, however the request spelled it).
    let held = match limits.and_then(|l| Some((&l.gate, l.count(counted_as, caller)?))) {
        Some((gate, count)) => gate.admit(vec![count], secret_busy).await?,
        None => Held::nothing(),
    };
    let right = hash.verify(secret);
    let refusal = match found {
        Some(client) => match client.kind {
            ClientKind::Confidential { .. } if right => {
                held.succeeded().await;
                return Ok(client);
            }
            ClientKind::Confidential { .. } => Reason::WrongClientSecret,
            ClientKind::Public => Reason::PublicClientSentSecret,
        },
        None => Reason::UnknownClient,
    };
    held.failed().await;
    Err(invalid_client(refusal))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn basic(s: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(s)).into_bytes()
    }

    #[test]
    fn basic_is_percent_decoded() {
        let creds = credentials(
            Some(&basic("my%20client:p%40ss%3Aword+%2B")),
            &Params::default(),
        );
        let creds = creds.ok();
        assert_eq!(
            creds.as_ref().map(|c| c.client_id.as_str()),
            Some("my client")
        );
        assert_eq!(
            creds
                .as_ref()
                .and_then(|c| c.secret.as_ref())
                .map(|s| s.secret()),
            Some("p@ss:word +")
        );
    }

    #[test]
    fn basic_without_encoding_keeps_the_secret_whole() {
        let creds = credentials(
            Some(&basic("service:s3cret:with=colon")),
            &Params::default(),
        );
        let creds = creds.ok();
        assert_eq!(
            creds.as_ref().map(|c| c.client_id.as_str()),
            Some("service")
        );
        assert_eq!(
            creds
                .as_ref()
                .and_then(|c| c.secret.as_ref())
                .map(|s| s.secret()),
            Some("s3cret:with=colon")
        );
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        for h in [
            &b"Basic"[..],
            b"Basic !!!",
            b"Basic \xff",
            b"Bearer abc",
            &basic("nocolon"),
            &basic(":secret"),
            &basic("a%zz:b"),
        ] {
            let e = credentials(Some(h), &Params::default())
                .err()
                .map(|e| e.code());
            assert_eq!(
                e,
                Some(crate::ErrorCode::InvalidClient),
                "{}",
                String::from_utf8_lossy(h)
            );
        }
    }
}
