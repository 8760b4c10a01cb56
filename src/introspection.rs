//! Token introspection (RFC 7662): a resource server asks whether a token is live.
//!
//! `POST /introspect` with `token` (and an optional `token_type_hint`), the caller authenticated
//! as a confidential client (register a resource server as a confidential client with no grant
//! types). A live token answers `active: true` with what it grants; anything else answers
//! exactly `{"active":false}` (§2.2), so a caller learns nothing about why.

use serde::Serialize;
use time::OffsetDateTime;

use crate::error::OAuthError;
use crate::request::Params;
use crate::resource::Audience;
use crate::response::Response;
use crate::store::{TokenKind, TokenLookup, TokenRecord, TokenStore};
use crate::token::TokenHash;
use crate::types::ClientId;

#[derive(Serialize)]
struct Introspection<'a> {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<Audience<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
}

const INACTIVE: Introspection<'static> = Introspection {
    active: false,
    scope: None,
    client_id: None,
    token_type: None,
    exp: None,
    iat: None,
    sub: None,
    username: None,
    aud: None,
    iss: None,
};

/// Who asks: the authenticated client, and whether the host declared it a resource server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caller<'a> {
    pub(crate) client: &'a ClientId,
    pub(crate) resource_server: bool,
}

impl Caller<'_> {
    /// RFC 7662 §4: "the authorization server MAY ... determine whether or not the protected
    /// resource is allowed to know about the token". A client may know about its own tokens; a
    /// resource server about every access token, which it is presented by clients; nobody but
    /// its own client about a refresh token, which is never presented to a resource server.
    fn may_see(&self, record: &TokenRecord) -> bool {
        &record.client_id == self.client
            || (self.resource_server && record.kind == TokenKind::Access)
    }
}

/// Answers the introspection response for the token in `params`.
pub(crate) async fn introspect(
    tokens: &dyn TokenStore,
    issuer: Option<&str>,
    caller: Caller<'_>,
    params: &Params<'_>,
    now: OffsetDateTime,
) -> Result<Response, OAuthError> {
    // RFC 7662 §2.1: token REQUIRED.
    let token = params.require("token")?;
    // Access and refresh tokens hash alike, so the hash finds either kind.
    let hash = TokenHash::of_presented(token);
    let record = match tokens.find_token(&hash, now).await? {
        TokenLookup::Live(record) if !record.is_expired(now) && caller.may_see(&record) => record,
        _ => return Ok(Response::json(200, &INACTIVE).no_store()),
    };
    let body = Introspection {
        active: true,
        scope: Some(record.scope.to_string()),
        client_id: Some(record.client_id.as_str()),
        // RFC 7662 §2.2: the type "as defined in Section 5.1 of OAuth 2.0"; a refresh token has
        // none there.
        token_type: (record.kind == TokenKind::Access).then_some("Bearer"),
        exp: Some(record.expires_at.unix_timestamp()),
        iat: Some(record.issued_at.unix_timestamp()),
        sub: record.user_id.as_ref().map(|u| u.as_str()),
        // RFC 7662 §2.2: "Human-readable identifier for the resource owner who authorized this
        // token", when the grant had one.
        username: record.username.as_ref().map(|u| u.as_str()),
        // RFC 7662 §2.2, RFC 8707 §2: the resources the token is for, as a JWT would say.
        aud: (!record.audience.is_empty()).then_some(Audience(&record.audience)),
        iss: issuer,
    };
    Ok(Response::json(200, &body).no_store())
}
