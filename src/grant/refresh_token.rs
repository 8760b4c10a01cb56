//! Refreshing an access token (RFC 6749 §6), with refresh-token rotation and replay detection
//! (RFC 9700 §4.14.2).
//!
//! ```text
//! +--------+                                           +---------------+
//! |        |--(A)------- Authorization Grant --------->|               |
//! |        |<-(B)----------- Access Token -------------|               |
//! |        |               & Refresh Token             |               |
//! |        |                   ...                     | Authorization |
//! | Client |  (access token expires)                   |     Server    |
//! |        |--(G)----------- Refresh Token ----------->|               |
//! |        |<-(H)----------- Access Token -------------|               |
//! +--------+           & Optional Refresh Token        +---------------+
//! ```
//!
//! (G) is `grant_type=refresh_token&refresh_token=…[&scope=…]`. With rotation (the default) (H)
//! carries a new refresh token in the same family and the presented one is spent; presenting a
//! spent refresh token again revokes the whole family, because either the client or an attacker
//! holds a stolen copy (RFC 9700 §4.14.2).

use crate::error::OAuthError;
use crate::grant::{ensure_allowed, Context, Grant};
use crate::request::Params;
use crate::response::TokenResponse;
use crate::scope::parse_requested;
use crate::store::{Client, Rotation, TokenKind, TokenLookup};
use crate::token::TokenHash;
use crate::types::GrantType;

fn invalid() -> OAuthError {
    OAuthError::invalid_grant(
        "the refresh token is invalid, expired, revoked, or was issued to another client",
    )
}

/// The refresh grant's handler: it needs nothing beyond the token store in its context.
pub(crate) struct RefreshTokenGrant;

impl RefreshTokenGrant {
    /// Handles `grant_type=refresh_token` (RFC 6749 §6).
    pub(crate) async fn handle(
        &self,
        ctx: &Context<'_>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        ensure_allowed(client, GrantType::RefreshToken)?;
        let presented = TokenHash::of(params.require("refresh_token")?);

        // A read to validate the request before anything is spent: bad input must not cost the
        // client its refresh token. The spending itself is the atomic rotate below.
        let record = match ctx.tokens.find_token(&presented).await? {
            TokenLookup::Live(record) => record,
            TokenLookup::Rotated(family) => {
                // RFC 9700 §4.14.2: a spent refresh token came back, so one of two parties holds a
                // stolen copy; "the authorization server cannot determine which party submitted
                // the invalid refresh token, it will revoke the active refresh token".
                let revoked = ctx.tokens.revoke_family(&family).await?;
                tracing::warn!(client_id = %client.id, family_id = %family, revoked, "refresh token replayed; family revoked");
                return Err(invalid().with_reason("refresh_token_replayed"));
            }
            _ => return Err(invalid().with_reason("refresh_token_unknown")),
        };
        if record.kind != TokenKind::Refresh {
            return Err(invalid().with_reason("not_a_refresh_token"));
        }
        if record.is_expired(ctx.now) {
            return Err(invalid().with_reason("refresh_token_expired"));
        }
        // RFC 6749 §6: the server MUST "validate the refresh token" and "ensure that the refresh
        // token was issued to the authenticated client".
        if record.client_id != client.id {
            return Err(invalid().with_reason("refresh_token_other_client"));
        }

        // RFC 6749 §6: "The requested scope MUST NOT include any scope not originally granted by
        // the resource owner, and if omitted is treated as equal to the scope originally granted".
        // What the client may ask for today bounds it too.
        let (scope, show_scope) = match params.get("scope") {
            Some(raw) => {
                let asked = parse_requested(raw)?;
                if !asked.is_subset_of(&record.scope) || !asked.is_subset_of(&client.allowed_scope)
                {
                    return Err(OAuthError::invalid_scope(
                        "the requested scope exceeds the scope originally granted",
                    )
                    .with_reason("scope_widened"));
                }
                (asked, false)
            }
            None => {
                let scope = record.scope.intersection(&client.allowed_scope);
                let narrowed = scope != record.scope;
                (scope, narrowed)
            }
        };
        if scope.is_empty() && !record.scope.is_empty() {
            return Err(OAuthError::invalid_scope("no scope remains to be granted")
                .with_reason("scope_empty"));
        }

        let rotate = ctx.settings.rotate_refresh_tokens;
        let minted = ctx.mint(
            Grant {
                client,
                user_id: record.user_id.clone(),
                scope,
                // RFC 6749 §6: "If a new refresh token is issued, the refresh token scope MUST be
                // identical to that of the refresh token included by the client in the request."
                refresh_scope: record.scope.clone(),
                family_id: record.family_id.clone(),
                show_scope,
            },
            rotate,
        );

        if !rotate {
            ctx.tokens.save_tokens(&minted.entries).await?;
            return Ok(minted.response);
        }
        match ctx
            .tokens
            .rotate_refresh_token(&presented, &minted.entries)
            .await?
        {
            Rotation::Rotated(_) => Ok(minted.response),
            Rotation::Reused(family) => {
                // Another request spent it between our read and now: a replay race.
                let revoked = ctx.tokens.revoke_family(&family).await?;
                tracing::warn!(client_id = %client.id, family_id = %family, revoked, "refresh token replayed; family revoked");
                Err(invalid().with_reason("refresh_token_replayed"))
            }
            _ => Err(invalid().with_reason("refresh_token_unknown")),
        }
    }
}
