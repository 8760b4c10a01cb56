//! The authorization code grant (RFC 6749 §4.1), with PKCE (RFC 7636).
//!
//! ```text
//! +----------+
//! | Resource |
//! |   Owner  |
//! +----------+
//!      ^
//!      |
//!     (B)
//! +----|-----+          Client Identifier      +---------------+
//! |         -+----(A)-- & Redirection URI ---->|               |
//! |  User-   |                                 | Authorization |
//! |  Agent  -+----(B)-- User authenticates --->|     Server    |
//! |          |                                 |               |
//! |         -+----(C)-- Authorization Code ---<|               |
//! +-|----|---+                                 +---------------+
//!   |    |                                         ^      v
//!  (A)  (C)                                        |      |
//!   |    |                                         |      |
//!   ^    v                                         |      |
//! +---------+                                      |      |
//! |         |>---(D)-- Authorization Code ---------'      |
//! |  Client |          & Redirection URI                  |
//! |         |                                             |
//! |         |<---(E)----- Access Token -------------------'
//! +---------+       (w/ Optional Refresh Token)
//! ```
//!
//! (A) is [`authorize`](crate::AuthorizationServer::authorize); (B) is the host's login and
//! consent page; (C) is [`approve`](crate::AuthorizationServer::approve), which issues the code
//! here; (D) and (E) are `grant_type=authorization_code` at the token endpoint
//! ([§4.1.3](https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3)), handled here.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::authorize::{redirect, Redirect};
use crate::client::Client;
use crate::error::OAuthError;
use crate::grant::{ensure_allowed, Context, Grant};
use crate::pkce::is_valid_verifier_syntax;
use crate::request::Params;
use crate::response::TokenResponse;
use crate::scope::Scope;
use crate::store::{CodeGrant, CodeRedemption, CodeStore, PendingAuthorization};
use crate::token::TokenHash;
use crate::types::{AuthorizationCode, CodeVerifier, FamilyId, GrantType, ResourceOwner};

fn invalid() -> OAuthError {
    OAuthError::invalid_grant(
        "the authorization code is invalid, expired, already used, or was issued to another client",
    )
}

/// The authorization code grant: issues codes on approval and exchanges them for tokens.
pub(crate) struct AuthorizationCodeGrant {
    pub(crate) codes: Arc<dyn CodeStore>,
    pub(crate) code_ttl: time::Duration,
}

impl AuthorizationCodeGrant {
    /// Step (C): issues a code for an approved request and answers the redirect carrying it
    /// (RFC 6749 §4.1.2), with `iss` (RFC 9207).
    pub(crate) async fn issue(
        &self,
        request: PendingAuthorization,
        owner: ResourceOwner,
        scope: Scope,
        issuer: &str,
        now: OffsetDateTime,
    ) -> Result<Redirect, OAuthError> {
        let code = AuthorizationCode::generate();
        let issued_at = now.replace_nanosecond(0).unwrap_or(now);
        let grant = CodeGrant {
            client_id: request.client_id,
            user_id: owner.id,
            username: owner.username,
            redirect_uri: request.redirect_uri.clone(),
            redirect_uri_in_request: request.redirect_uri_in_request,
            scope,
            code_challenge: request.code_challenge,
            family_id: FamilyId::generate(),
            issued_at,
            expires_at: issued_at.saturating_add(self.code_ttl),
        };
        self.codes
            .save_code(&TokenHash::of(code.secret()), &grant, now)
            .await?;
        let mut params = vec![("code", code.secret())];
        if let Some(state) = request.state.as_deref() {
            params.push(("state", state));
        }
        params.push(("iss", issuer));
        Ok(redirect(&request.redirect_uri, false, &params))
    }

    /// Steps (D) and (E): handles `grant_type=authorization_code` (RFC 6749 §4.1.3).
    pub(crate) async fn handle(
        &self,
        ctx: &Context<'_>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        ensure_allowed(client, GrantType::AuthorizationCode)?;
        let code = params.require("code")?;
        let verifier = match params.get("code_verifier") {
            // RFC 7636 §4.1: 43 to 128 unreserved characters. Checked before the code is spent.
            Some(v) if !is_valid_verifier_syntax(v) => {
                return Err(OAuthError::invalid_request(
                    "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
                )
                .with_reason("pkce_verifier_malformed"))
            }
            Some(v) => Some(CodeVerifier::new(v)),
            None => None,
        };

        // RFC 6749 §4.1.3: "ensure that the authorization code was issued to the authenticated
        // confidential client, or if the client is public, ensure that the code was issued to
        // "client_id" in the request". The store checks it in the same step that spends the code,
        // so a code leaked to another client can neither be spent nor revoke anything.
        //
        // RFC 6749 §4.1.2: "The client MUST NOT use the authorization code more than once." The
        // code is spent now, whatever follows: a failed check below leaves it spent, so a
        // verifier cannot be guessed one try at a time. The used mark lasts as long as the
        // tokens it issues now can live, so a replay can revoke them (and, with them, the
        // family) until then.
        let with_refresh = ctx.issues_refresh_token(client);
        let tokens_live = if with_refresh {
            ctx.settings.access_ttl.max(ctx.settings.refresh_ttl)
        } else {
            ctx.settings.access_ttl
        };
        let code_hash = TokenHash::of(code);
        let keep_used_until = ctx.now.saturating_add(tokens_live);
        let redemption = self
            .codes
            .take_code(&code_hash, &client.id, keep_used_until, ctx.now)
            .await?;
        let grant = match redemption {
            CodeRedemption::Redeemed(grant) => grant,
            CodeRedemption::AlreadyUsed { family_id } => {
                // "If an authorization code is used more than once, the authorization server MUST
                // deny the request and SHOULD revoke (when possible) all tokens previously issued
                // based on that authorization code."
                let revoked = ctx.tokens.revoke_family(&family_id, ctx.now).await?;
                tracing::warn!(client_id = %client.id, family_id = %family_id, revoked, "authorization code used twice; its tokens are revoked");
                return Err(invalid().with_reason("code_reused"));
            }
            CodeRedemption::OtherClient => return Err(invalid().with_reason("code_other_client")),
            _ => return Err(invalid().with_reason("code_unknown")),
        };
        if grant.expires_at <= ctx.now {
            return Err(invalid().with_reason("code_expired"));
        }
        if grant.client_id != client.id {
            // The store answered another client's code as redeemed: refuse it all the same.
            return Err(invalid().with_reason("code_other_client"));
        }
        // "ensure that the "redirect_uri" parameter is present if the "redirect_uri" parameter
        // was included in the initial authorization request …, and if included ensure that
        // their values are identical."
        match params.get("redirect_uri") {
            Some(sent) if sent != grant.redirect_uri.as_str() => {
                return Err(OAuthError::invalid_grant(
                    "redirect_uri differs from the one in the authorization request",
                )
                .with_reason("redirect_uri_mismatch"))
            }
            None if grant.redirect_uri_in_request => {
                return Err(OAuthError::invalid_request(
                    "redirect_uri is required: the authorization request carried one",
                )
                .with_reason("redirect_uri_missing"))
            }
            _ => {}
        }
        match (&grant.code_challenge, &verifier) {
            (Some(challenge), Some(verifier)) => {
                // RFC 7636 §4.6: "If the values are not equal, an error response indicating
                // "invalid_grant" … MUST be returned."
                if !challenge.is_answered_by(verifier) {
                    return Err(OAuthError::invalid_grant(
                        "the code_verifier does not match the code_challenge",
                    )
                    .with_reason("pkce_mismatch"));
                }
            }
            (Some(_), None) => {
                return Err(OAuthError::invalid_grant(
                    "code_verifier is required: the authorization request carried a code_challenge",
                )
                .with_reason("pkce_verifier_missing"))
            }
            (None, Some(_)) => {
                // RFC 9700 §4.8.2: servers "MUST … reject token requests containing a
                // "code_verifier" … if the corresponding authorization request did not contain a
                // "code_challenge"".
                return Err(OAuthError::invalid_grant(
                    "code_verifier was sent, but the authorization request carried no code_challenge",
                )
                .with_reason("pkce_unexpected_verifier"));
            }
            (None, None) => {}
        }

        let minted = ctx.mint(
            Grant {
                client,
                owner: Some(ResourceOwner {
                    id: grant.user_id.clone(),
                    username: grant.username.clone(),
                }),
                refresh_scope: grant.scope.clone(),
                scope: grant.scope.clone(),
                family_id: grant.family_id.clone(),
                show_scope: true,
            },
            with_refresh,
        );
        // If the code was replayed meanwhile, the replay revoked this family and the store
        // refuses the tokens: none of them ever becomes valid. If saving fails, the code is
        // given back for the client's retry.
        let give_back = async {
            self.codes
                .restore_code(&code_hash, &grant, ctx.now)
                .await
                .map(|_| ())
        };
        ctx.save_or_give_back(
            minted,
            || invalid().with_reason("code_reused_during_exchange"),
            "authorization code",
            give_back,
        )
        .await
    }
}
