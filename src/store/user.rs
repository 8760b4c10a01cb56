//! Resource owners: checking a password, and a second factor.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::types::{ClientId, OneTimeCode, Password, UserId, Username};

/// The answer of [`UserVerifier::verify_password`].
///
/// `#[non_exhaustive]`: later versions may add answers, and the engine treats any answer it
/// does not know as a refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserVerdict {
    /// The credentials are right; this is the user.
    Authenticated(UserId),
    /// The password is right, and the user has a second factor that must be checked too
    /// ([`UserVerifier::verify_otp`]). The password grant answers `403 mfa_required` with an
    /// `mfa_token`; the client finishes with the `mfa-otp` grant.
    ///
    /// Answer this only for a right password: a wrong one is [`Refused`](UserVerdict::Refused)
    /// whether or not the user has a second factor, so that nobody learns which users have one.
    SecondFactorRequired(UserId),
    /// Wrong password, unknown user, locked or disabled account: the client is told only
    /// `invalid_grant`, the same for each, so users cannot be enumerated.
    Refused,
}

/// The answer of [`UserVerifier::verify_otp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtpVerdict {
    /// The code is right. `counter` names it (a TOTP time step, an HOTP counter) and it stays
    /// acceptable until `valid_until`: the engine refuses the same `counter` for this user until
    /// then (RFC 6238 §5.2).
    Accepted {
        /// Which code was accepted: the TOTP time step it belongs to.
        counter: u64,
        /// Until when the code would otherwise still be accepted (with clock drift allowed).
        valid_until: OffsetDateTime,
    },
    /// Wrong code.
    Refused,
}

/// Checks a resource owner's credentials for the password grant (RFC 6749 §4.3.2).
///
/// Called by: the `password` grant, only after the client is authenticated and the
/// [`AttemptLimiter`](super::AttemptLimiter) has let the attempt through.
///
/// # Security
///
/// Hash user passwords with a slow password KDF (argon2, scrypt, bcrypt). Take the same time for
/// an unknown user as for a wrong password (verify against a decoy hash), so that timing does not
/// tell which usernames exist.
#[async_trait]
pub trait UserVerifier: Send + Sync {
    /// Whether `password` is `username`'s password. `client` is the authenticated client that
    /// asks, for hosts that restrict which users may sign in to which app.
    ///
    /// A read: nothing here needs to be atomic. Return `Err` only when the check could not be
    /// made (database down); a wrong password is `Ok(UserVerdict::Refused)`.
    async fn verify_password(
        &self,
        username: &Username,
        password: &Password,
        client: &ClientId,
    ) -> Result<UserVerdict, StoreError>;

    /// Whether `otp` is a right one-time code for `user` at `now`: the second step after
    /// [`verify_password`](UserVerifier::verify_password) answered
    /// [`UserVerdict::SecondFactorRequired`]. With the `totp` feature, `Totp::verify` answers
    /// exactly this.
    ///
    /// The default answers [`OtpVerdict::Refused`]: a verifier that never asks for a second
    /// factor need not implement it. A read; the engine itself refuses a code used twice.
    async fn verify_otp(
        &self,
        user: &UserId,
        otp: &OneTimeCode,
        now: OffsetDateTime,
    ) -> Result<OtpVerdict, StoreError> {
        let _ = (user, otp, now);
        Ok(OtpVerdict::Refused)
    }

    /// Whether this verifier checks one-time codes ([`verify_otp`](UserVerifier::verify_otp)),
    /// and so may answer [`UserVerdict::SecondFactorRequired`]. The default is `false`: the
    /// `mfa-otp` grant is then not enabled, and a `SecondFactorRequired` answer, which no code
    /// could ever finish, is refused as a configuration fault (`server_error`, logged with
    /// reason `second_factor_unchecked`) instead of leaving the user stuck. Answer `true` when
    /// you implement `verify_otp`.
    fn checks_one_time_codes(&self) -> bool {
        false
    }
}
