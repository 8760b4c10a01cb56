//! Checking a resource owner's username and password, with brute-force protection: shared by
//! the password grant and a host's login page
//! ([`AuthorizationServer::verify_user`](crate::AuthorizationServer::verify_user)).

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::error::OAuthError;
use crate::store::{
    AttemptKey, AttemptLimiter, AttemptRule, AttemptVerdict, MfaStore, OtpVerdict, UserVerdict,
    UserVerifier,
};
use crate::types::{ClientId, OneTimeCode, Password, UserId, Username};

/// Brute-force limits for checking user passwords (the password grant and a login page).
///
/// The default: 5 failures per username per 15 minutes, and 100 failures per client per
/// 15 minutes. Wrong one-time codes (a second factor) are counted with the `per_username` rule
/// against the user's id, and against the client like wrong passwords.
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

/// A user verifier behind an attempt limiter, with the store that remembers used one-time codes.
pub(crate) struct UserAuthenticator {
    pub(crate) verifier: Arc<dyn UserVerifier>,
    pub(crate) limiter: Option<(Arc<dyn AttemptLimiter>, LoginLimits)>,
    pub(crate) mfa: Arc<dyn MfaStore>,
}

/// The outcome of a right password.
#[derive(Debug)]
pub(crate) enum SignIn {
    /// The user is signed in.
    Complete(UserId),
    /// The password is right; a one-time code is still owed.
    SecondFactorRequired(UserId),
}

impl UserAuthenticator {
    /// Checks `username` and `password` for `client`: refused without asking the verifier when
    /// a limit is reached; `invalid_grant` with the same words for a wrong password and an
    /// unknown user.
    ///
    /// `client_authenticated` says whether the client was authenticated (the password grant):
    /// only then do failures count against it. A login page's client is only named in the
    /// request, so counting there would let anyone lock a client out.
    pub(crate) async fn authenticate(
        &self,
        client: &ClientId,
        client_authenticated: bool,
        username: &Username,
        password: Password,
        now: OffsetDateTime,
    ) -> Result<SignIn, OAuthError> {
        // RFC 6749 §4.3.2: "the authorization server MUST protect the endpoint against brute
        // force attacks (e.g., using rate-limitation or generating alerts)."
        let reserved = self
            .admit(
                client,
                client_authenticated,
                AttemptKey::username(username),
                now,
            )
            .await?;
        let verdict = self
            .verifier
            .verify_password(username, &password, client)
            .await;
        drop(password);
        match verdict {
            Ok(UserVerdict::Authenticated(user_id)) => {
                self.give_back(reserved, now).await;
                Ok(SignIn::Complete(user_id))
            }
            Ok(UserVerdict::SecondFactorRequired(user_id)) => {
                self.give_back(reserved, now).await;
                Ok(SignIn::SecondFactorRequired(user_id))
            }
            Ok(_) => {
                if client_authenticated {
                    self.count_client_failure(client, now).await;
                }
                // Wrong password, unknown user, or an answer this version does not know: the
                // same words for each, so usernames cannot be enumerated.
                Err(
                    OAuthError::invalid_grant("the username or password is incorrect")
                        .with_reason("user_refused"),
                )
            }
            Err(e) => {
                // The check was never made: it is not a failure of the credentials.
                self.give_back(reserved, now).await;
                Err(e.into())
            }
        }
    }

    /// Checks a one-time code for `user` (who has just given a right password): through a
    /// limit per user id with the per-username rule (so aliases share it), and the per-client
    /// limit when the client is authenticated; refusing a code already used (RFC 6238 §5.2). A
    /// wrong or reused code counts as a failed attempt.
    pub(crate) async fn check_otp(
        &self,
        client: &ClientId,
        client_authenticated: bool,
        user: &UserId,
        otp: OneTimeCode,
        now: OffsetDateTime,
    ) -> Result<(), OAuthError> {
        let reserved = self
            .admit(
                client,
                client_authenticated,
                AttemptKey::SecondFactor(user.clone()),
                now,
            )
            .await?;
        let verdict = self.verifier.verify_otp(user, &otp, now).await;
        drop(otp);
        let accepted = match verdict {
            Ok(OtpVerdict::Accepted {
                counter,
                valid_until,
            }) => {
                match self
                    .mfa
                    .mark_otp_used(user, counter, valid_until, now)
                    .await
                {
                    Ok(true) => true,
                    Ok(false) => {
                        if client_authenticated {
                            self.count_client_failure(client, now).await;
                        }
                        return Err(OAuthError::invalid_grant(
                            "the one-time code was already used; wait for the next one",
                        )
                        .with_reason("otp_reused"));
                    }
                    Err(e) => {
                        self.give_back(reserved, now).await;
                        return Err(e.into());
                    }
                }
            }
            Ok(_) => false,
            Err(e) => {
                self.give_back(reserved, now).await;
                return Err(e.into());
            }
        };
        if accepted {
            self.give_back(reserved, now).await;
            Ok(())
        } else {
            if client_authenticated {
                self.count_client_failure(client, now).await;
            }
            Err(OAuthError::invalid_grant("the one-time code is incorrect")
                .with_reason("otp_refused"))
        }
    }

    /// Lets the attempt through, or refuses it: the client must not be over its failure limit,
    /// and the username gets a reservation (counted now, given back on success). Answers the
    /// reserved key.
    async fn admit(
        &self,
        client: &ClientId,
        client_authenticated: bool,
        key: AttemptKey,
        now: OffsetDateTime,
    ) -> Result<Option<AttemptKey>, OAuthError> {
        let Some((limiter, limits)) = &self.limiter else {
            return Ok(None);
        };
        if let (Some(rule), true) = (limits.per_client, client_authenticated) {
            let key = AttemptKey::Client(client.clone());
            let verdict = limiter.check_attempts(&key, &rule, now).await?;
            if verdict != AttemptVerdict::Allowed {
                return Err(too_many(verdict, &rule, "client_attempts_exceeded"));
            }
        }
        if let Some(rule) = limits.per_username {
            let verdict = limiter.reserve_attempt(&key, &rule, now).await?;
            if verdict != AttemptVerdict::Allowed {
                return Err(too_many(verdict, &rule, "username_attempts_exceeded"));
            }
            return Ok(Some(key));
        }
        Ok(None)
    }

    /// Gives the username's reservation back. A failure is logged (by the conversion) and does
    /// not undo a good sign-in.
    async fn give_back(&self, reserved: Option<AttemptKey>, now: OffsetDateTime) {
        if let (Some((limiter, _)), Some(key)) = (&self.limiter, reserved) {
            release(&**limiter, &key, now).await;
        }
    }

    /// Counts a failed sign-in against the client.
    async fn count_client_failure(&self, client: &ClientId, now: OffsetDateTime) {
        if let Some((
            limiter,
            LoginLimits {
                per_client: Some(rule),
                ..
            },
        )) = &self.limiter
        {
            let key = AttemptKey::Client(client.clone());
            if let Err(e) = limiter.reserve_attempt(&key, rule, now).await {
                let _: OAuthError = e.into(); // the conversion logs the cause
            }
        }
    }
}

/// The refusal for a limit reached: `invalid_grant` with `Retry-After`.
fn too_many(verdict: AttemptVerdict, rule: &AttemptRule, reason: &'static str) -> OAuthError {
    OAuthError::invalid_grant("too many failed sign-in attempts; try again later")
        .with_reason(reason)
        .with_retry_after(retry_after(verdict, rule))
}

/// Whole seconds (at least one) until a refused attempt may be tried again.
pub(crate) fn retry_after(verdict: AttemptVerdict, rule: &AttemptRule) -> u64 {
    let wait = match verdict {
        AttemptVerdict::Refused { retry_after } => retry_after,
        _ => rule.window,
    };
    wait.as_secs().max(1)
}

/// Gives back an attempt reserved for a check that succeeded or was never made. A store failure
/// is logged (by the conversion) and does not undo the success.
pub(crate) async fn release(limiter: &dyn AttemptLimiter, key: &AttemptKey, now: OffsetDateTime) {
    if let Err(e) = limiter.release_attempt(key, now).await {
        let _: OAuthError = e.into(); // the conversion logs the cause
    }
}
