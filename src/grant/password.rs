//! The resource owner password credentials grant (RFC 6749 §4.3).
//!
//! ```text
//! +----------+
//! | Resource |
//! |  Owner   |
//! +----------+
//!      v
//!      |    Resource Owner
//!     (A) Password Credentials
//!      |
//!      v
//! +---------+                                  +---------------+
//! |         |>--(B)---- Resource Owner ------->|               |
//! |         |         Password Credentials     | Authorization |
//! | Client  |                                  |     Server    |
//! |         |<--(C)---- Access Token ---------<|               |
//! |         |    (w/ Optional Refresh Token)   |               |
//! +---------+                                  +---------------+
//! ```
//!
//! (B) is `grant_type=password&username=…&password=…[&scope=…]` at the token endpoint
//! ([§4.3.2](https://www.rfc-editor.org/rfc/rfc6749#section-4.3.2)); (C) is the access token
//! response ([§5.1](https://www.rfc-editor.org/rfc/rfc6749#section-5.1)).
//!
//! RFC 9700 §2.4 says this grant "MUST NOT be used": the client sees the user's password, and
//! there is no room for a second factor or a consent screen. It exists for first-party apps
//! migrating from a login form; prefer the authorization code grant with PKCE.

use std::sync::Arc;
use std::time::Duration;

use crate::error::OAuthError;
use crate::grant::{ensure_allowed, Context, Grant};
use crate::request::Params;
use crate::response::TokenResponse;
use crate::scope::grant_scope;
use crate::store::{
    AttemptKey, AttemptLimiter, AttemptRule, AttemptVerdict, Client, UserVerdict, UserVerifier,
};
use crate::types::{FamilyId, GrantType, Password, Username};

/// Brute-force limits for the password grant.
///
/// The default: 5 failures per username per 15 minutes, and 100 failures per client per
/// 15 minutes.
///
/// # Security
///
/// A hard limit is also a lever for denial of service: anyone who can act as a client allowed
/// the password grant (for a public client, anyone who knows its `client_id`) can keep a
/// username locked by failing five times every 15 minutes, and can lock a whole client's sign-ins
/// the same way. That is the price of RFC 6749 §4.3.2's brute-force protection; keep the
/// password grant to confidential first-party clients, watch the `tracing` events
/// (`reason = "username_attempts_exceeded"`), and tune or disable `per_client` if that trade is
/// wrong for you.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures allowed per username (normalised: trimmed and lower-cased).
    pub per_username: Option<AttemptRule>,
    /// Failures allowed per client, across all usernames.
    pub per_client: Option<AttemptRule>,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_username: Some(AttemptRule {
                max_failures: 5,
                window: Duration::from_secs(15 * 60),
            }),
            per_client: Some(AttemptRule {
                max_failures: 100,
                window: Duration::from_secs(15 * 60),
            }),
        }
    }
}

/// The password grant's handler: a user verifier and, unless disabled, an attempt limiter.
pub(crate) struct PasswordGrant {
    pub(crate) verifier: Arc<dyn UserVerifier>,
    pub(crate) limiter: Option<(Arc<dyn AttemptLimiter>, LoginLimits)>,
}

impl PasswordGrant {
    /// Handles `grant_type=password` (RFC 6749 §4.3.2).
    pub(crate) async fn handle(
        &self,
        ctx: &Context<'_>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        ensure_allowed(client, GrantType::Password)?;
        // RFC 6749 §4.3.2: username REQUIRED, password REQUIRED, scope OPTIONAL.
        let username = Username::new(params.require("username")?);
        let password = Password::new(params.require("password")?);
        let granted = grant_scope(client, params.get("scope"))?;

        // RFC 6749 §4.3.2: "the authorization server MUST protect the endpoint against brute
        // force attacks (e.g., using rate-limitation or generating alerts)."
        let reserved = self.reserve(ctx, client, &username).await?;

        let verdict = self
            .verifier
            .verify_password(&username, &password, &client.id)
            .await;
        drop(password);
        let user_id = match verdict {
            Ok(UserVerdict::Authenticated(user_id)) => {
                // A failure to give the count back is logged and does not undo a good sign-in.
                let _ = self.release(ctx, &reserved).await;
                user_id
            }
            Ok(_) => {
                // Wrong password, unknown user, or an answer this version does not know: the
                // same words for each, so usernames cannot be enumerated.
                return Err(
                    OAuthError::invalid_grant("the username or password is incorrect")
                        .with_reason("user_refused"),
                );
            }
            Err(e) => {
                // The check was never made: it is not a failure of the credentials.
                let _ = self.release(ctx, &reserved).await;
                return Err(e.into());
            }
        };

        let with_refresh = ctx.issues_refresh_token(client);
        let minted = ctx.mint(
            Grant {
                client,
                user_id: Some(user_id),
                refresh_scope: granted.scope.clone(),
                scope: granted.scope,
                family_id: FamilyId::generate(),
                show_scope: granted.differs_from_request,
            },
            with_refresh,
        );
        ctx.tokens.save_tokens(&minted.entries, ctx.now).await?;
        Ok(minted.response)
    }

    /// Counts this attempt against the client and the username; refuses if either is over its
    /// limit. Answers the keys it counted, to release on success.
    async fn reserve(
        &self,
        ctx: &Context<'_>,
        client: &Client,
        username: &Username,
    ) -> Result<Vec<AttemptKey>, OAuthError> {
        let Some((limiter, limits)) = &self.limiter else {
            return Ok(Vec::new());
        };
        let rules = [
            (AttemptKey::Client(client.id.clone()), limits.per_client),
            (AttemptKey::username(username), limits.per_username),
        ];
        let mut reserved = Vec::with_capacity(2);
        for (key, rule) in rules {
            let Some(rule) = rule else { continue };
            match limiter.reserve_attempt(&key, &rule, ctx.now).await {
                Ok(AttemptVerdict::Allowed) => reserved.push(key),
                Ok(verdict) => {
                    let _ = self.release(ctx, &reserved).await;
                    let retry_after = match verdict {
                        AttemptVerdict::Refused { retry_after } => retry_after.as_secs().max(1),
                        _ => rule.window.as_secs().max(1),
                    };
                    return Err(OAuthError::invalid_grant(
                        "too many failed sign-in attempts; try again later",
                    )
                    .with_reason(match key {
                        AttemptKey::Client(_) => "client_attempts_exceeded",
                        _ => "username_attempts_exceeded",
                    })
                    .with_retry_after(retry_after));
                }
                Err(e) => {
                    let _ = self.release(ctx, &reserved).await;
                    return Err(e.into());
                }
            }
        }
        Ok(reserved)
    }

    async fn release(&self, ctx: &Context<'_>, keys: &[AttemptKey]) -> Result<(), OAuthError> {
        if let Some((limiter, _)) = &self.limiter {
            for key in keys {
                limiter.release_attempt(key, ctx.now).await?;
            }
        }
        Ok(())
    }
}
