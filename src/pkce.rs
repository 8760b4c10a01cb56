//! Proof Key for Code Exchange (RFC 7636).
//!
//! The client makes a random `code_verifier`, sends its SHA-256 as `code_challenge` with the
//! authorization request, and the verifier itself with the token request. A code stolen on its
//! way back through the browser is useless without the verifier.
//!
//! grantor requires PKCE from public clients (and, with
//! [`require_pkce`](crate::AuthorizationServerBuilder::require_pkce), from every client),
//! accepts only `S256` unless `plain` is enabled, and refuses a verifier for a code that was
//! issued without a challenge (RFC 9700 §4.8.2).

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::error::OAuthError;
use crate::reason::Reason;
use crate::types::CodeVerifier;

/// How the challenge was derived from the verifier (RFC 7636 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CodeChallengeMethod {
    /// `S256`: `BASE64URL(SHA256(ASCII(code_verifier)))`.
    #[serde(rename = "S256")]
    S256,
    /// `plain`: the challenge is the verifier. Refused unless the server enables it.
    #[serde(rename = "plain")]
    Plain,
}

impl CodeChallengeMethod {
    /// The value as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::S256 => "S256",
            Self::Plain => "plain",
        }
    }
}

/// A code challenge and its method, as bound to an authorization code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeChallenge {
    /// The `code_challenge` value (shared text: a copy of the record copies a pointer).
    pub challenge: Arc<str>,
    /// The `code_challenge_method`.
    pub method: CodeChallengeMethod,
}

impl CodeChallenge {
    /// Whether `verifier` answers this challenge, compared in constant time.
    pub fn is_answered_by(&self, verifier: &CodeVerifier) -> bool {
        self.is_answered_by_presented(verifier.secret())
    }

    /// [`is_answered_by`](Self::is_answered_by), for a verifier as the client sent it (borrowed
    /// from the request, not copied into a [`CodeVerifier`] first).
    pub(crate) fn is_answered_by_presented(&self, verifier: &str) -> bool {
        match self.method {
            CodeChallengeMethod::S256 => {
                // 32 bytes are 43 base64url characters: encoded on the stack.
                let mut expected = [0u8; 43];
                let digest = Sha256::digest(verifier.as_bytes());
                match URL_SAFE_NO_PAD.encode_slice(digest, &mut expected) {
                    Ok(43) => expected.ct_eq(self.challenge.as_bytes()).into(),
                    _ => false,
                }
            }
            CodeChallengeMethod::Plain => {
                verifier.as_bytes().ct_eq(self.challenge.as_bytes()).into()
            }
        }
    }
}

/// RFC 7636 §4.1: `code-verifier = 43*128unreserved`, `unreserved = ALPHA / DIGIT / "-" / "." /
/// "_" / "~"`. The challenge has the same syntax (§4.2).
pub(crate) fn is_valid_verifier_syntax(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Parses `code_challenge` and `code_challenge_method` from an authorization request.
///
/// RFC 7636 §4.3: the method "defaults to "plain" if not present in the request".
pub(crate) fn parse_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
    allow_plain: bool,
) -> Result<Option<CodeChallenge>, OAuthError> {
    let Some(challenge) = challenge else {
        if method.is_some() {
            return Err(OAuthError::invalid_request(
                "code_challenge_method was sent without code_challenge",
            )
            .with_reason(Reason::PkceMethodWithoutChallenge));
        }
        return Ok(None);
    };
    let method = match method.unwrap_or("plain") {
        "S256" => CodeChallengeMethod::S256,
        "plain" if allow_plain => CodeChallengeMethod::Plain,
        _ => {
            // RFC 7636 §4.4.1: an unsupported transformation is invalid_request.
            return Err(
                OAuthError::invalid_request("code_challenge_method must be S256")
                    .with_reason(Reason::PkceMethodUnsupported),
            );
        }
    };
    // RFC 7636 §4.2: for S256 the challenge is BASE64URL(SHA256(verifier)) without padding,
    // exactly 43 characters; anything else could never be answered.
    let well_formed = match method {
        CodeChallengeMethod::S256 => {
            challenge.len() == 43
                && challenge
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }
        CodeChallengeMethod::Plain => is_valid_verifier_syntax(challenge),
    };
    if !well_formed {
        return Err(OAuthError::invalid_request(match method {
            CodeChallengeMethod::S256 => {
                "code_challenge must be the 43-character base64url SHA-256 of the verifier"
            }
            CodeChallengeMethod::Plain => {
                "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~"
            }
        })
        .with_reason(Reason::PkceChallengeMalformed));
    }
    Ok(Some(CodeChallenge {
        challenge: challenge.into(),
        method,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_written_as_rfc_7636_names_them() {
        for (method, name) in [
            (CodeChallengeMethod::S256, "S256"),
            (CodeChallengeMethod::Plain, "plain"),
        ] {
            assert_eq!(method.as_str(), name);
            assert_eq!(
                serde_json::to_value(method).ok(),
                Some(serde_json::Value::from(name))
            );
        }
    }

    #[test]
    fn rfc7636_appendix_b_vector() {
        let challenge = CodeChallenge {
            challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            method: CodeChallengeMethod::S256,
        };
        let verifier = CodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert!(challenge.is_answered_by(&verifier));
        assert!(!challenge.is_answered_by(&CodeVerifier::new(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj"
        )));
        // The same check on the verifier as presented, for both methods.
        assert!(challenge.is_answered_by_presented("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!challenge.is_answered_by_presented("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj"));
        let plain = CodeChallenge {
            challenge: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
            method: CodeChallengeMethod::Plain,
        };
        assert!(plain.is_answered_by_presented("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!plain.is_answered_by_presented("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj"));
    }

    #[test]
    fn verifier_syntax() {
        assert!(is_valid_verifier_syntax(&"a".repeat(43)));
        assert!(is_valid_verifier_syntax(&"-._~".repeat(32)));
        assert!(!is_valid_verifier_syntax(&"a".repeat(42)));
        assert!(!is_valid_verifier_syntax(&"a".repeat(129)));
        assert!(!is_valid_verifier_syntax(&format!("{}+", "a".repeat(43))));
    }

    #[test]
    fn method_defaults_to_plain_which_is_off_unless_enabled() {
        let c = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(parse_challenge(Some(c), None, false).is_err());
        assert_eq!(
            parse_challenge(Some(c), None, true)
                .ok()
                .flatten()
                .map(|c| c.method),
            Some(CodeChallengeMethod::Plain)
        );
        assert!(parse_challenge(Some(c), Some("S512"), true).is_err());
        assert!(parse_challenge(None, Some("S256"), false).is_err());
        assert!(parse_challenge(Some("short"), Some("S256"), false).is_err());
        // A hex SHA-256 (64 characters) is not what S256 produces.
        assert!(parse_challenge(Some(&"ab".repeat(32)), Some("S256"), false).is_err());
        assert!(parse_challenge(Some(&format!("{}.", &c[..42])), Some("S256"), false).is_err());
    }
}
