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

use std::borrow::Cow;
use std::sync::Arc;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

use crate::client::{Client, ClientKind};
use crate::error::OAuthError;
use crate::reason::Reason;
use crate::request::{form_decode, Params};
use crate::store::ClientStore;
use crate::token::SecretHash;
use crate::types::{ClientId, ClientSecret};

const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

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
/// unknown.
pub(crate) async fn authenticate(
    clients: &dyn ClientStore,
    creds: Credentials,
) -> Result<Arc<Client>, OAuthError> {
    let found = clients.find_client(&creds.client_id).await?;
    let Some(client) = found else {
        if let Some(secret) = &creds.secret {
            let _ = SecretHash::decoy().verify(secret);
        }
        return Err(invalid_client(Reason::UnknownClient));
    };
    match (&client.kind, &creds.secret) {
        (ClientKind::Confidential { secret: hash }, Some(secret)) => {
            if hash.verify(secret) {
                Ok(client)
            } else {
                Err(invalid_client(Reason::WrongClientSecret))
            }
        }
        (ClientKind::Confidential { .. }, None) => {
            Err(invalid_client(Reason::ConfidentialWithoutSecret))
        }
        // A public client has no secret; Basic with an empty password is how some libraries say
        // "none".
        (ClientKind::Public, None) => Ok(client),
        (ClientKind::Public, Some(secret)) if secret.secret().is_empty() => Ok(client),
        (ClientKind::Public, Some(_)) => Err(invalid_client(Reason::PublicClientSentSecret)),
    }
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
