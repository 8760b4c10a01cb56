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
        let reserved = self.admit(ctx, client, &username).await?;

        let verdict = self
            .verifier
            .verify_password(&username, &password, &client.id)
            .await;
        drop(password);
        let user_id = match verdict {
            Ok(UserVerdict::Authenticated(user_id)) => {
                self.give_back(ctx, reserved).await;
                user_id
            }
            Ok(_) => {
                self.count_client_failure(ctx, client).await;
                // Wrong password, unknown user, or an answer this version does not know: the
                // same words for each, so usernames cannot be enumerated.
                return Err(
                    OAuthError::invalid_grant("the username or password is incorrect")
                        .with_reason("user_refused"),
                );
            }
            Err(e) => {
                // The check was never made: it is not a failure of the credentials.
                self.give_back(ctx, reserved).await;
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

    /// Lets the attempt through, or refuses it: the client must not be over its failure limit,
    /// and the username gets a reservation (counted now, given back on success). Answers the
    /// reserved key.
    async fn admit(
        &self,
        ctx: &Context<'_>,
        client: &Client,
        username: &Username,
    ) -> Result<Option<AttemptKey>, OAuthError> {
        let Some((limiter, limits)) = &self.limiter else {
            return Ok(None);
        };
        if let Some(rule) = limits.per_client {
            let key = AttemptKey::Client(client.id.clone());
            let verdict = limiter.check_attempts(&key, &rule, ctx.now).await?;
            if verdict != AttemptVerdict::Allowed {
                return Err(too_many(verdict, &rule, "client_attempts_exceeded"));
            }
        }
        if let Some(rule) = limits.per_username {
            let key = AttemptKey::username(username);
            let verdict = limiter.reserve_attempt(&key, &rule, ctx.now).await?;
            if verdict != AttemptVerdict::Allowed {
                return Err(too_many(verdict, &rule, "username_attempts_exceeded"));
            }
            return Ok(Some(key));
        }
        Ok(None)
    }

    /// Gives the username's reservation back. A failure is logged (by the conversion) and does
    /// not undo a good sign-in.
    async fn give_back(&self, ctx: &Context<'_>, reserved: Option<AttemptKey>) {
        if let (Some((limiter, _)), Some(key)) = (&self.limiter, reserved) {
            if let Err(e) = limiter.release_attempt(&key, ctx.now).await {
                let _: OAuthError = e.into(); // the conversion logs the cause
            }
        }
    }

    /// Counts a failed sign-in against the client.
    async fn count_client_failure(&self, ctx: &Context<'_>, client: &Client) {
        if let Some((
            limiter,
            LoginLimits {
                per_client: Some(rule),
                ..
            },
        )) = &self.limiter
        {
            let key = AttemptKey::Client(client.id.clone());
            if let Err(e) = limiter.reserve_attempt(&key, rule, ctx.now).await {
                let _: OAuthError = e.into(); // the conversion logs the cause
            }
        }
    }
}

/// The refusal for a limit reached: `invalid_grant` with `Retry-After`.
fn too_many(verdict: AttemptVerdict, rule: &AttemptRule, reason: &'static str) -> OAuthError {
    let retry_after = match verdict {
        AttemptVerdict::Refused { retry_after } => retry_after,
        _ => rule.window,
    };
    OAuthError::invalid_grant("too many failed sign-in attempts; try again later")
        .with_reason(reason)
        .with_retry_after(retry_after.as_secs().max(1))
}
