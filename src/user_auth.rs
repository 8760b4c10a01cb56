//! Checking a resource owner's username and password, with brute-force protection: shared by
//! the password grant and a host's login page
//! ([`AuthorizationServer::verify_user`](crate::AuthorizationServer::verify_user)).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::attempts::{timed_out, within_deadline, AttemptGate, Count};
use crate::error::OAuthError;
use crate::reason::Reason;
use crate::store::{
    AttemptKey, AttemptRule, MfaStore, OtpAdvance, OtpVerdict, UserVerdict, UserVerifier,
};
use crate::types::{ClientId, OneTimeCode, Password, ResourceOwner, UserId, Username};

/// Brute-force limits for checking user passwords and one-time codes (the password and
/// `mfa-otp` grants, and a login page through
/// [`verify_user`](crate::AuthorizationServer::verify_user)).
///
/// The default: 5 failures per username per 15 minutes, 100 failures per client per 15
/// minutes (only where the client is authenticated: the token endpoint), and 100 failures per
/// caller address per 15 minutes (where the host passes the address: its login and device
/// pages, and token requests built with
/// [`TokenRequest::with_caller`](crate::TokenRequest::with_caller), as the axum adapter builds
/// them). Wrong one-time codes are counted with the `per_username` rule against the user's
/// id, and against the client and the address like wrong passwords.
///
/// Every check holds a place on each of its keys while it runs, and a key admits a check only
/// while its failures and the checks in flight are fewer than its limit: so concurrent guesses
/// never reach the [`UserVerifier`] more often than a limit allows, and concurrent right
/// passwords (a retry storm, a pool of workers sharing one account) all succeed, queueing for
/// places for at most `max_wait` (then `503 temporarily_unavailable`).
///
/// # Security
///
/// A hard limit is also a lever for denial of service: anyone who can act as a client allowed
/// the password grant (for a public client, anyone who knows its `client_id`) can keep a
/// username locked by failing five times every 15 minutes, and can lock a whole client's sign-ins
/// the same way; anyone sharing an address (a NAT, a proxy) with others can lock them out of the
/// login pages and the password grant. Behind a reverse proxy, pass the address the proxy
/// reports, never the proxy's own, or every caller shares one count. That is the price of RFC 6749 §4.3.2's brute-force protection; keep the
/// password grant to confidential first-party clients, watch the `tracing` events
/// (`reason = "username_attempts_exceeded"`), and tune or disable a rule if that trade is wrong
/// for you.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures allowed per username (normalised: trimmed and lower-cased).
    pub per_username: Option<AttemptRule>,
    /// Failures allowed per authenticated client, across all usernames.
    pub per_client: Option<AttemptRule>,
    /// Failures allowed per caller address (an IPv6 caller by its /64), across all usernames:
    /// one password sprayed over many users. Counted where the host passes the address.
    pub per_address: Option<AttemptRule>,
    /// How long a check may wait for a place while other checks of the same username, client
    /// or address are in flight.
    pub max_wait: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        let fifteen_minutes = Duration::from_secs(15 * 60);
        Self {
            per_username: Some(AttemptRule {
                max_failures: 5,
                window: fifteen_minutes,
            }),
            per_client: Some(AttemptRule {
                max_failures: 100,
                window: fifteen_minutes,
            }),
            per_address: Some(AttemptRule {
                max_failures: 100,
                window: fifteen_minutes,
            }),
            max_wait: Duration::from_secs(10),
        }
    }
}

/// Who asks for a check: the client, whether it was authenticated (the token endpoint) or only
/// named (a login page), and the caller's address, when the host passes it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Asker<'a> {
    pub(crate) client: &'a ClientId,
    pub(crate) authenticated: bool,
    pub(crate) caller: Option<IpAddr>,
}

/// A user verifier behind an attempt limiter, with the store that remembers used one-time codes.
pub(crate) struct UserAuthenticator {
    pub(crate) verifier: Arc<dyn UserVerifier>,
    pub(crate) limits: Option<(AttemptGate, LoginLimits)>,
    pub(crate) mfa: Arc<dyn MfaStore>,
}

/// The outcome of a right password.
#[derive(Debug)]
pub(crate) enum SignIn {
    /// The user is signed in.
    Complete(ResourceOwner),
    /// The password is right; a one-time code is still owed.
    SecondFactorRequired(ResourceOwner),
}

fn too_many(reason: Reason, retry_after: u64) -> OAuthError {
    OAuthError::invalid_grant("too many failed sign-in attempts; try again later")
        .with_reason(reason)
        .with_retry_after(retry_after)
}

fn username_refusal(retry_after: u64) -> OAuthError {
    too_many(Reason::UsernameAttemptsExceeded, retry_after)
}

fn client_refusal(retry_after: u64) -> OAuthError {
    too_many(Reason::ClientAttemptsExceeded, retry_after)
}

fn address_refusal(retry_after: u64) -> OAuthError {
    too_many(Reason::AddressAttemptsExceeded, retry_after)
}

fn busy() -> OAuthError {
    OAuthError::temporarily_unavailable(
        "too many sign-ins for this account are being checked at once; try again in a moment",
    )
    .with_reason(Reason::SignInBusy)
    .with_retry_after(1)
}

impl UserAuthenticator {
    /// Checks `username` and `password` for `asker`: refused without asking the verifier when a
    /// limit is reached; `invalid_grant` with the same words for a wrong password and an
    /// unknown user.
    pub(crate) async fn authenticate(
        &self,
        asker: Asker<'_>,
        username: &Username,
        password: Password,
    ) -> Result<SignIn, OAuthError> {
        // RFC 6749 §4.3.2: "the authorization server MUST protect the endpoint against brute
        // force attacks (e.g., using rate-limitation or generating alerts)."
        let held = self
            .admit(asker, AttemptKey::username(username), username_refusal)
            .await?;
        let check = self
            .verifier
            .verify_password(username, &password, asker.client);
        let Some(verdict) = within_deadline(check).await else {
            held.not_made().await;
            return Err(timed_out());
        };
        drop(password);
        let owner = |id| ResourceOwner::new(id).with_username(username.clone());
        match verdict {
            Ok(UserVerdict::Authenticated(user_id)) => {
                held.succeeded().await;
                Ok(SignIn::Complete(owner(user_id)))
            }
            Ok(UserVerdict::SecondFactorRequired(user_id)) => {
                held.succeeded().await;
                if !self.verifier.checks_one_time_codes() {
                    // No one-time code could ever finish this sign-in: a fault of the set-up,
                    // not of the user.
                    tracing::error!(
                        "the user verifier answered SecondFactorRequired but does not check \
                         one-time codes (implement UserVerifier::checks_one_time_codes)"
                    );
                    return Err(OAuthError::server_error(
                        "the server cannot check this account's second factor",
                    )
                    .with_reason(Reason::SecondFactorUnchecked));
                }
                Ok(SignIn::SecondFactorRequired(owner(user_id)))
            }
            Ok(_) => {
                held.failed().await;
                // Wrong password, unknown user, or an answer this version does not know: the
                // same words for each, so usernames cannot be enumerated.
                Err(
                    OAuthError::invalid_grant("the username or password is incorrect")
                        .with_reason(Reason::UserRefused),
                )
            }
            Err(e) => {
                // The check was never made: it is not a failure of the credentials.
                held.not_made().await;
                Err(e.into())
            }
        }
    }

    /// Checks a one-time code for `user` (who has just given a right password), counted
    /// against the user id with the per-username rule (so aliases share it), and against the
    /// client and address like a password; refusing a code already used, or older than one
    /// used (RFC 6238 §5.2). A wrong or reused code counts as a failed attempt.
    pub(crate) async fn check_otp(
        &self,
        asker: Asker<'_>,
        user: &UserId,
        otp: OneTimeCode,
        now: OffsetDateTime,
    ) -> Result<(), OAuthError> {
        let held = self
            .admit(
                asker,
                AttemptKey::SecondFactor(user.clone()),
                username_refusal,
            )
            .await?;
        let Some(verdict) = within_deadline(self.verifier.verify_otp(user, &otp, now)).await else {
            held.not_made().await;
            return Err(timed_out());
        };
        drop(otp);
        match verdict {
            Ok(OtpVerdict::Accepted {
                counter,
                valid_until,
            }) => match self
                .mfa
                .advance_otp_counter(user, counter, valid_until, now)
                .await
            {
                Ok(OtpAdvance::Advanced) => {
                    held.succeeded().await;
                    Ok(())
                }
                Ok(OtpAdvance::NotHigher) => {
                    held.failed().await;
                    Err(OAuthError::invalid_grant(
                        "the one-time code was already used; wait for the next one",
                    )
                    .with_reason(Reason::OtpReused))
                }
                Err(e) => {
                    held.not_made().await;
                    Err(e.into())
                }
            },
            Ok(_) => {
                held.failed().await;
                Err(OAuthError::invalid_grant("the one-time code is incorrect")
                    .with_reason(Reason::OtpRefused))
            }
            Err(e) => {
                held.not_made().await;
                Err(e.into())
            }
        }
    }

    /// Holds places for one check: on the client (when authenticated), on `key` with the
    /// per-username rule, and on the caller's address (when known).
    async fn admit(
        &self,
        asker: Asker<'_>,
        key: AttemptKey,
        key_refusal: fn(u64) -> OAuthError,
    ) -> Result<crate::attempts::Held<'_>, OAuthError> {
        let Some((gate, limits)) = &self.limits else {
            return Ok(crate::attempts::Held::nothing());
        };
        let mut counts = Vec::with_capacity(3);
        if let (Some(rule), true) = (limits.per_client, asker.authenticated) {
            counts.push(Count {
                key: AttemptKey::Client(asker.client.clone()),
                rule,
                refusal: client_refusal,
            });
        }
        if let Some(rule) = limits.per_username {
            counts.push(Count {
                key,
                rule,
                refusal: key_refusal,
            });
        }
        if let (Some(rule), Some(caller)) = (limits.per_address, asker.caller) {
            counts.push(Count {
                key: AttemptKey::address(caller),
                rule,
                refusal: address_refusal,
            });
        }
        gate.admit(counts, busy).await
    }
}
