//! Time-based one-time codes (RFC 6238) for a second factor: [`Totp`].
//!
//! This module is private and its items are re-exported at the crate root, so the documentation
//! (settings, replay, an example verifier) is on [`Totp`] itself.

use std::fmt;

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use time::OffsetDateTime;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::store::OtpVerdict;
use crate::types::OneTimeCode;

/// Length of a time step, in seconds (RFC 6238 §5.2).
const STEP_SECONDS: u64 = 30;

/// Digits of a code unless [`Totp::with_digits`] says otherwise.
const DEFAULT_DIGITS: usize = 6;

/// The shortest secret accepted: 80 bits, the length of the common 16-character base32 secrets.
/// RFC 4226 §4 asks for at least 128 bits and recommends 160; issue new secrets that long.
const MIN_SECRET_BYTES: usize = 10;

/// Why a [`Totp`] could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TotpError {
    /// The secret is empty (or only spaces and padding).
    #[error("the TOTP secret is empty")]
    EmptySecret,
    /// The secret is not RFC 4648 base32: a character outside `A`–`Z` and `2`–`7`, a length no
    /// encoder produces, or misplaced padding.
    #[error("the TOTP secret is not valid base32")]
    InvalidBase32,
    /// The secret is shorter than 80 bits.
    #[error("the TOTP secret has {bits} bits; at least 80 are needed")]
    SecretTooShort {
        /// How many bits the secret has.
        bits: usize,
    },
    /// A code length other than 6, 7 or 8 digits.
    #[error("TOTP codes have 6 to 8 digits, not {0}")]
    UnsupportedDigits(usize),
}

/// A TOTP generator/checker (RFC 6238): HMAC-SHA-1, 6 digits, 30-second steps, one step of
/// drift either way.
///
/// A `Totp` holds one user's shared secret (the base32 text an enrolment page showed, or the raw
/// bytes) and answers [`UserVerifier::verify_otp`](crate::UserVerifier::verify_otp) with
/// [`Totp::verify`]: it is the part of a verifier that checks the six digits of an
/// authenticator app. Its `Debug` output is redacted (`Totp([redacted])`) and it has no
/// `Display`, so the secret cannot end up in a log by accident.
///
/// The settings are the ones every authenticator app uses (RFC 6238 §5.2 and the defaults of
/// `otpauth://` URIs):
///
/// - HMAC-SHA-1 over the time-step counter (RFC 4226 HOTP);
/// - 6 digits ([`with_digits`](Totp::with_digits) allows 7 or 8);
/// - 30-second time steps counted from the Unix epoch (`T0 = 0`);
/// - one step of clock drift either way: at step `T`, the codes of steps `T - 1`, `T` and
///   `T + 1` are accepted, so a code works for between 60 and 90 seconds.
///
/// The code computation is the `totp-rs` crate's; the comparison is done here, in constant time.
///
/// # Replay
///
/// [`Totp::verify`] is a pure check: it says whether a code is right at an instant and which
/// time step it belongs to, and remembers nothing. The engine refuses a code used twice
/// (RFC 6238 §5.2): when a verifier answers [`OtpVerdict::Accepted`], the engine marks its
/// `counter` as used for that user until `valid_until`, the end of the last step in which drift
/// still accepts it, and refuses the same counter again before then.
///
/// # Example
///
/// The part of a verifier that checks a second factor:
///
/// ```
/// use grantor::{OneTimeCode, OtpVerdict, StoreError, Totp};
/// use time::OffsetDateTime;
///
/// /// The body of `UserVerifier::verify_otp`, once the user's secret has been read from the
/// /// host's database (where the enrolment page stored it).
/// fn check_otp(
///     stored_secret: Option<&str>,
///     otp: &OneTimeCode,
///     now: OffsetDateTime,
/// ) -> Result<OtpVerdict, StoreError> {
///     let Some(secret) = stored_secret else {
///         // No authenticator enrolled: no code is right.
///         return Ok(OtpVerdict::Refused);
///     };
///     // A stored secret that does not parse is corrupt data, not a wrong code.
///     let totp = Totp::from_base32(secret).map_err(StoreError::backend)?;
///     Ok(totp.verify(otp, now))
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let now = time::macros::datetime!(2026-03-01 12:00:10 UTC);
/// let totp = Totp::from_base32("JBSWY3DPEHPK3PXP")?;
///
/// // What the user's authenticator app shows now.
/// let code = totp.generate(now);
/// assert_eq!(code.len(), 6);
///
/// let verdict = check_otp(Some("JBSWY3DPEHPK3PXP"), &OneTimeCode::new(code.clone()), now)?;
/// assert!(matches!(verdict, OtpVerdict::Accepted { .. }));
/// if let OtpVerdict::Accepted { counter, valid_until } = verdict {
///     // The 30-second step the code belongs to, and when drift stops accepting it.
///     assert_eq!(counter, now.unix_timestamp() as u64 / 30);
///     assert_eq!(valid_until, time::macros::datetime!(2026-03-01 12:01:00 UTC));
/// }
///
/// // Two minutes later the same code is refused.
/// let later = now + time::Duration::minutes(2);
/// assert_eq!(totp.verify(&OneTimeCode::new(code), later), OtpVerdict::Refused);
///
/// // So is anything that is not six digits, and a user with no authenticator.
/// assert_eq!(totp.verify(&OneTimeCode::new("12 34 56"), now), OtpVerdict::Refused);
/// assert_eq!(check_otp(None, &OneTimeCode::new("123456"), now)?, OtpVerdict::Refused);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Totp {
    inner: TOTP,
}

impl fmt::Debug for Totp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Totp([redacted])")
    }
}

impl Totp {
    /// A checker for the secret written in RFC 4648 base32, as authenticator apps show and take
    /// it (`JBSWY3DPEHPK3PXP`).
    ///
    /// Case does not matter, spaces (any ASCII whitespace) anywhere are ignored, and trailing `=`
    /// padding may be given or left out; when given it must be complete. Bits left over after
    /// the last whole byte are ignored, as authenticator apps do.
    ///
    /// # Errors
    ///
    /// [`TotpError::EmptySecret`] for nothing but spaces and padding,
    /// [`TotpError::InvalidBase32`] for anything that is not base32, and
    /// [`TotpError::SecretTooShort`] for a secret of fewer than 80 bits (16 characters).
    pub fn from_base32(secret: &str) -> Result<Totp, TotpError> {
        let symbols: String = secret
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let data = symbols.trim_end_matches('=');
        let padding = symbols.len() - data.len();
        if data.is_empty() {
            return if padding == 0 {
                Err(TotpError::EmptySecret)
            } else {
                Err(TotpError::InvalidBase32)
            };
        }
        // Padding, when present, fills the last 8-character block exactly.
        if padding > 0 && (padding >= 8 || !symbols.len().is_multiple_of(8)) {
            return Err(TotpError::InvalidBase32);
        }
        // 1, 3 or 6 characters in the last block hold no whole byte: no encoder writes them.
        if matches!(data.len() % 8, 1 | 3 | 6) {
            return Err(TotpError::InvalidBase32);
        }
        if !data
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        {
            return Err(TotpError::InvalidBase32);
        }
        let bytes = Secret::Encoded(data.to_owned())
            .to_bytes()
            .map_err(|_| TotpError::InvalidBase32)?;
        Totp::from_bytes(bytes)
    }

    /// A checker for the raw secret bytes (the RFC 6238 test seed is
    /// `b"12345678901234567890"`).
    ///
    /// # Errors
    ///
    /// [`TotpError::EmptySecret`] for no bytes, [`TotpError::SecretTooShort`] for fewer than 10.
    pub fn from_bytes(secret: impl Into<Vec<u8>>) -> Result<Totp, TotpError> {
        let secret = secret.into();
        if secret.is_empty() {
            return Err(TotpError::EmptySecret);
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(TotpError::SecretTooShort {
                bits: secret.len().saturating_mul(8),
            });
        }
        Ok(Totp {
            inner: TOTP::new_unchecked(Algorithm::SHA1, DEFAULT_DIGITS, 0, STEP_SECONDS, secret),
        })
    }

    /// The same secret with codes of `digits` digits instead of 6 (RFC 4226 §5.3 allows 6 to 8;
    /// RFC 6238 Appendix B's test vectors have 8).
    ///
    /// # Errors
    ///
    /// [`TotpError::UnsupportedDigits`] for a length outside `6..=8`.
    pub fn with_digits(mut self, digits: usize) -> Result<Totp, TotpError> {
        if !(6..=8).contains(&digits) {
            return Err(TotpError::UnsupportedDigits(digits));
        }
        self.inner.digits = digits;
        Ok(self)
    }

    /// How many digits a code has.
    pub fn digits(&self) -> usize {
        self.inner.digits
    }

    /// The code for the time step containing `at`: what the user's authenticator app shows then.
    ///
    /// For an instant before the Unix epoch, which has no step, the code of step 0.
    pub fn generate(&self, at: OffsetDateTime) -> String {
        self.code(step_of(at).unwrap_or(0))
    }

    /// Whether `otp` is a right code at `at`, allowing one step of drift either way.
    ///
    /// `otp` is compared in constant time with the codes of steps `T - 1`, `T` and `T + 1`,
    /// where `T` is the step containing `at`. A match is
    /// [`OtpVerdict::Accepted`] with `counter` the step the code belongs to
    /// (`unix_time / 30` when it was shown) and `valid_until` the start of step `counter + 2`:
    /// the end of the last step in which drift still accepts it. If a code happens to match two
    /// of those steps, the earlier one is reported, so that a replay maps to the counter already
    /// marked as used.
    ///
    /// Surrounding whitespace is ignored; anything else that is not exactly
    /// [`digits`](Totp::digits) ASCII digits is [`OtpVerdict::Refused`], as is every code at an
    /// instant before the Unix epoch. This is a pure check: refusing a code used twice is the
    /// engine's job (see [replay](Totp#replay)).
    pub fn verify(&self, otp: &OneTimeCode, at: OffsetDateTime) -> OtpVerdict {
        let Some(now) = step_of(at) else {
            return OtpVerdict::Refused;
        };
        let given = otp.secret().trim().as_bytes();
        if given.len() != self.inner.digits || !given.iter().all(u8::is_ascii_digit) {
            return OtpVerdict::Refused;
        }

        let mut matched = Choice::from(0);
        let mut counter = 0u64;
        let candidates = [now.checked_sub(1), Some(now), now.checked_add(1)];
        for step in candidates.into_iter().flatten() {
            let is_match = self.code(step).as_bytes().ct_eq(given);
            counter.conditional_assign(&step, is_match & !matched);
            matched |= is_match;
        }
        if !bool::from(matched) {
            return OtpVerdict::Refused;
        }
        match step_start(counter.saturating_add(2)) {
            Some(valid_until) => OtpVerdict::Accepted {
                counter,
                valid_until,
            },
            // Beyond the last instant `time` can represent: nothing to mark, so accept nothing.
            None => OtpVerdict::Refused,
        }
    }

    /// The code of time step `step`.
    fn code(&self, step: u64) -> String {
        // totp-rs takes a Unix time and divides it by the step length again.
        self.inner.generate(step.saturating_mul(STEP_SECONDS))
    }
}

/// The time step containing `at`, or `None` before the Unix epoch.
fn step_of(at: OffsetDateTime) -> Option<u64> {
    u64::try_from(at.unix_timestamp())
        .ok()
        .map(|secs| secs / STEP_SECONDS)
}

/// The first instant of time step `step`, if `time` can represent it.
fn step_start(step: u64) -> Option<OffsetDateTime> {
    let secs = i64::try_from(step.checked_mul(STEP_SECONDS)?).ok()?;
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SEED: &[u8] = b"12345678901234567890";

    /// RFC 6238 Appendix B, SHA-1 rows: (Unix time, 8-digit code).
    const RFC_VECTORS: [(i64, &str); 6] = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    fn code(s: &str) -> OneTimeCode {
        OneTimeCode::new(s)
    }

    fn rfc_totp() -> Totp {
        Totp::from_bytes(RFC_SEED).unwrap()
    }

    fn accepted(counter: u64) -> OtpVerdict {
        OtpVerdict::Accepted {
            counter,
            valid_until: at(i64::try_from((counter + 2) * 30).unwrap()),
        }
    }

    #[test]
    fn rfc_6238_vectors_with_8_digits() {
        let totp = rfc_totp().with_digits(8).unwrap();
        assert_eq!(totp.digits(), 8);
        for (time, expected) in RFC_VECTORS {
            assert_eq!(totp.generate(at(time)), expected, "T = {time}");
            assert_eq!(
                totp.verify(&code(expected), at(time)),
                accepted(u64::try_from(time).unwrap() / 30),
                "T = {time}"
            );
        }
    }

    #[test]
    fn rfc_6238_vectors_with_6_digits() {
        let totp = rfc_totp();
        assert_eq!(totp.digits(), 6);
        let six = ["287082", "081804", "050471", "005924", "279037", "353130"];
        for ((time, eight), expected) in RFC_VECTORS.into_iter().zip(six) {
            assert_eq!(&eight[2..], expected);
            assert_eq!(totp.generate(at(time)), expected, "T = {time}");
            assert_eq!(
                totp.verify(&code(expected), at(time)),
                accepted(u64::try_from(time).unwrap() / 30),
                "T = {time}"
            );
        }
    }

    #[test]
    fn seven_digits_are_the_last_seven() {
        let totp = rfc_totp().with_digits(7).unwrap();
        assert_eq!(totp.generate(at(59)), "4287082");
    }

    #[test]
    fn digits_outside_6_to_8_are_refused() {
        for digits in [0, 1, 5, 9, 10, usize::MAX] {
            assert_eq!(
                rfc_totp().with_digits(digits).unwrap_err(),
                TotpError::UnsupportedDigits(digits)
            );
        }
    }

    #[test]
    fn one_step_of_drift_either_way_is_accepted_with_its_own_counter() {
        let totp = rfc_totp();
        let now = at(1_234_567_890 + 7); // 7 s into step 41152263
        let t = 41_152_263_u64;
        assert_eq!(now.unix_timestamp() / 30, 41_152_263);

        for (offset, expected) in [(-1_i64, t - 1), (0, t), (1, t + 1)] {
            let shown = totp.generate(now + time::Duration::seconds(30 * offset));
            let verdict = totp.verify(&code(&shown), now);
            assert_eq!(verdict, accepted(expected), "offset {offset}");
        }
        for offset in [-3_i64, -2, 2, 3] {
            let shown = totp.generate(now + time::Duration::seconds(30 * offset));
            // Guard against a chance collision with an accepted step (one in a million).
            let window: Vec<String> = (-1..=1)
                .map(|o| totp.generate(now + time::Duration::seconds(30 * o)))
                .collect();
            if window.contains(&shown) {
                continue;
            }
            assert_eq!(
                totp.verify(&code(&shown), now),
                OtpVerdict::Refused,
                "offset {offset}"
            );
        }
    }

    #[test]
    fn valid_until_is_the_start_of_step_counter_plus_two() {
        let totp = rfc_totp();
        // A code of step 100 (3000..3030 s) is accepted from 2970 s (step 99) to 3059 s (step 101).
        let shown = totp.generate(at(3_000));
        for time in [2_970, 2_999, 3_000, 3_029, 3_030, 3_059] {
            assert_eq!(
                totp.verify(&code(&shown), at(time)),
                OtpVerdict::Accepted {
                    counter: 100,
                    valid_until: at(3_060)
                },
                "at {time}"
            );
        }
        for time in [2_969, 3_060] {
            // The steps just outside; skip a chance collision.
            if totp.generate(at(time - 30)) == shown
                || totp.generate(at(time)) == shown
                || totp.generate(at(time + 30)) == shown
            {
                continue;
            }
            assert_eq!(
                totp.verify(&code(&shown), at(time)),
                OtpVerdict::Refused,
                "at {time}"
            );
        }
    }

    #[test]
    fn sub_second_instants_and_other_offsets_count_by_their_unix_time() {
        let totp = rfc_totp().with_digits(8).unwrap();
        let t = at(59) + time::Duration::milliseconds(999);
        assert_eq!(totp.generate(t), "94287082");
        let elsewhere = t.to_offset(time::macros::offset!(+5:30));
        assert_eq!(totp.generate(elsewhere), "94287082");
        assert_eq!(totp.verify(&code("94287082"), elsewhere), accepted(1));
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        let totp = rfc_totp();
        for given in [" 287082 ", "287082\n", "\t287082", "\u{a0}287082"] {
            assert_eq!(totp.verify(&code(given), at(59)), accepted(1), "{given:?}");
        }
    }

    #[test]
    fn malformed_codes_are_refused_without_panicking() {
        let totp = rfc_totp();
        let now = at(59);
        for given in [
            "",
            " ",
            "12345",
            "1234567",
            "28708",
            "2870820",
            "abcdef",
            "28708a",
            "+28708",
            "-28708",
            "287 082",
            "287-082",
            "２８７０８２", // full-width digits
            "٢٨٧٠٨٢",       // Arabic-Indic digits
            "\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}",
            "2870822870822870822870822870822870822870822870822870822870822870822870",
        ] {
            assert_eq!(
                totp.verify(&code(given), now),
                OtpVerdict::Refused,
                "{given:?}"
            );
        }
        // 8-digit checker: the 6-digit form is refused, and vice versa.
        let eight = rfc_totp().with_digits(8).unwrap();
        assert_eq!(eight.verify(&code("287082"), now), OtpVerdict::Refused);
        assert_eq!(totp.verify(&code("94287082"), now), OtpVerdict::Refused);
    }

    #[test]
    fn instants_around_and_before_the_epoch_do_not_panic() {
        let totp = rfc_totp();
        let step0 = totp.generate(at(0));
        // Step 0 has no previous step; its code is accepted at step 0 and 1.
        assert_eq!(totp.verify(&code(&step0), at(0)), accepted(0));
        assert_eq!(totp.verify(&code(&step0), at(59)), accepted(0));
        for secs in [-1, -29, -30, -31, -1_000_000_000] {
            assert_eq!(totp.generate(at(secs)), step0, "{secs}");
            assert_eq!(
                totp.verify(&code(&step0), at(secs)),
                OtpVerdict::Refused,
                "{secs}"
            );
        }
        // The extremes `time` can represent.
        let _ = totp.generate(OffsetDateTime::new_utc(
            time::Date::MIN,
            time::Time::MIDNIGHT,
        ));
        let last = OffsetDateTime::new_utc(time::Date::MAX, time::Time::MAX);
        let shown = totp.generate(last);
        assert!(matches!(
            totp.verify(&code(&shown), last),
            OtpVerdict::Refused | OtpVerdict::Accepted { .. }
        ));
        assert_eq!(
            totp.verify(
                &code(&step0),
                OffsetDateTime::new_utc(time::Date::MIN, time::Time::MIDNIGHT)
            ),
            OtpVerdict::Refused
        );
    }

    #[test]
    fn base32_secrets_parse_in_any_case_with_spaces_and_padding() {
        let expected = b"Hello!\xde\xad\xbe\xef".to_vec();
        let reference = Totp::from_bytes(expected.clone()).unwrap();
        for text in [
            "JBSWY3DPEHPK3PXP",
            "jbswy3dpehpk3pxp",
            "JbSwY3dPeHpK3pXp",
            "jbsw y3dp ehpk 3pxp",
            " JBSW Y3DP EHPK 3PXP \n",
            "JBSWY3DPEHPK3PXP\t",
        ] {
            let totp = Totp::from_base32(text).unwrap();
            assert_eq!(totp.inner.secret, expected, "{text:?}");
            assert_eq!(totp.generate(at(59)), reference.generate(at(59)));
        }

        // The RFC seed in base32, with and without padding (32 characters: none needed).
        let seed = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(Totp::from_base32(seed).unwrap().inner.secret, RFC_SEED);
        // 11 bytes: 18 characters, padded to 24.
        let eleven = "JBSWY3DPEHPK3PXPEE";
        let padded = "JBSWY3DPEHPK3PXPEE======";
        let a = Totp::from_base32(eleven).unwrap();
        let b = Totp::from_base32(padded).unwrap();
        assert_eq!(a.inner.secret.len(), 11);
        assert_eq!(a.inner.secret, b.inner.secret);
        assert_eq!(
            Totp::from_base32("jbsw y3dp ehpk 3pxp ee== ====")
                .unwrap()
                .inner
                .secret,
            a.inner.secret
        );
    }

    #[test]
    fn invalid_base32_is_refused() {
        assert_eq!(Totp::from_base32("").unwrap_err(), TotpError::EmptySecret);
        assert_eq!(
            Totp::from_base32("   ").unwrap_err(),
            TotpError::EmptySecret
        );
        for text in [
            "========",
            "=",
            "JBSWY3DPEHPK3PX1",         // 1 is not base32
            "JBSWY3DPEHPK3PX8",         // nor is 8
            "JBSWY3DPEHPK3PX0",         // nor 0
            "JBSWY3DPEHPK3PX-",         // nor -
            "JBSWY3DP=EHPK3PXP",        // padding in the middle
            "JBSWY3DPEHPK3PXP=",        // padding that does not fill a block
            "JBSWY3DPEHPK3PXPEE==",     // incomplete padding
            "JBSWY3DPEHPK3PXP========", // a whole block of padding
            "JBSWY3DPEHPK3PXPE",        // 17 characters: no encoder writes 1 in a block
            "JBSWY3DPEHPK3PXPEEE",      // 19: nor 3
            "JBSWY3DPEHPK3PXPEEEEEE",   // 22: nor 6
            "JBSWY3DPÉHPK3PXP",         // not ASCII
            "ＪBSWY3DPEHPK3PXP",        // full-width letter
        ] {
            assert_eq!(
                Totp::from_base32(text).unwrap_err(),
                TotpError::InvalidBase32,
                "{text:?}"
            );
        }
        // Valid base32 but under 80 bits.
        assert_eq!(
            Totp::from_base32("JBSWY3DP").unwrap_err(),
            TotpError::SecretTooShort { bits: 40 }
        );
        assert_eq!(
            Totp::from_base32("JBSWY3DPEHPK3").unwrap_err(),
            TotpError::SecretTooShort { bits: 64 }
        );
    }

    #[test]
    fn short_raw_secrets_are_refused() {
        assert_eq!(
            Totp::from_bytes(Vec::new()).unwrap_err(),
            TotpError::EmptySecret
        );
        assert_eq!(
            Totp::from_bytes(&b"123456789"[..]).unwrap_err(),
            TotpError::SecretTooShort { bits: 72 }
        );
        assert!(Totp::from_bytes(&b"1234567890"[..]).is_ok());
    }

    #[test]
    fn debug_is_redacted() {
        let totp = Totp::from_base32("JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(format!("{totp:?}"), "Totp([redacted])");
        assert_eq!(format!("{totp:#?}"), "Totp([redacted])");
        let rfc = rfc_totp();
        let shown = format!("{rfc:?}");
        assert!(!shown.contains("49, 50, 51"), "{shown}");
        assert!(!shown.contains("1234567890"), "{shown}");
    }

    #[test]
    fn errors_display_without_the_secret() {
        assert_eq!(
            TotpError::SecretTooShort { bits: 40 }.to_string(),
            "the TOTP secret has 40 bits; at least 80 are needed"
        );
        assert_eq!(
            TotpError::InvalidBase32.to_string(),
            "the TOTP secret is not valid base32"
        );
    }
}
