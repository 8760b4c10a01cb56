//! Token revocation (RFC 7009): a client gives a token back.
//!
//! `POST /revoke` with `token` and an optional `token_type_hint`, the client authenticated as at
//! the token endpoint. RFC 7009 §2.2: "The authorization server responds with HTTP status code
//! 200 if the token has been revoked successfully or if the client submitted an invalid token."
//!
//! Revoking a refresh token revokes its whole family (every access and refresh token of that
//! grant, §2.1: the server "SHOULD also invalidate all access tokens based on the same
//! authorization grant"); revoking an access token revokes that token, as does revoking a token
//! that stands alone (no family: the client credentials grant's).

use time::OffsetDateTime;

use crate::client::Client;
use crate::error::OAuthError;
use crate::grant::context::revoke_family;
use crate::reason::Reason;
use crate::request::Params;
use crate::store::{TokenKind, TokenLookup, TokenStore};
use crate::token::TokenHash;
use crate::types::FamilyId;

/// Revokes the token in `params` for `client`.
pub(crate) async fn revoke(
    tokens: &dyn TokenStore,
    client: &Client,
    params: &Params<'_>,
    now: OffsetDateTime,
) -> Result<(), OAuthError> {
    let token = params.require("token")?;
    // RFC 7009 §2.1: `token_type_hint` is only a hint, and a server that cannot find the token
    // with it "MUST extend its search across all of its supported token types": so grantor
    // ignores it. Both token types it issues can be revoked, so `unsupported_token_type`
    // never applies.
    // Access and refresh tokens hash alike, so the hash finds either kind.
    let hash = TokenHash::of_presented(token);
    let not_yours = || {
        OAuthError::unauthorized_client("the token was not issued to this client")
            .with_reason(Reason::RevokeOtherClient)
    };
    match tokens.find_token(&hash, now).await? {
        TokenLookup::Live(record) => {
            // §2.1: the server "verifies whether the token was issued to the client making the
            // revocation request. If this validation fails, the request is refused".
            if record.client_id != client.id {
                return Err(not_yours());
            }
            // A token that stands alone (no family) is revoked by itself.
            match (record.kind, &record.family_id) {
                (TokenKind::Refresh, Some(family)) => {
                    revoke_family(tokens, family, now).await?;
                }
                _ => {
                    tokens.revoke_token(&hash, now).await?;
                }
            }
            tracing::info!(
                client_id = %client.id,
                family_id = record.family_id.as_ref().map(FamilyId::as_str),
                "token revoked"
            );
        }
        TokenLookup::Rotated {
            client_id,
            family_id,
            ..
        } => {
            // A spent refresh token: giving it back ends its grant.
            if client_id != client.id {
                return Err(not_yours());
            }
            revoke_family(tokens, &family_id, now).await?;
            tracing::info!(client_id = %client.id, family_id = %family_id, "grant revoked");
        }
        _ => {}
    }
    Ok(())
}
