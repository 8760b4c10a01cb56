//! PKCE (RFC 7636): a parsed S256 challenge is 43 base64url characters; a verifier of §4.1's
//! syntax answers the S256 challenge made from it, and nothing else does.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use sha2::Digest as _;

fuzz_target!(|input: &[u8]| {
    let Some((&flags, rest)) = input.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut fields = text.splitn(3, '\n');
    let (challenge, method, verifier) = (fields.next(), fields.next(), fields.next());
    let (challenge, method) = (
        challenge.filter(|_| flags & 1 == 0),
        method.filter(|_| flags & 2 == 0),
    );
    if let Ok(Some(parsed)) = grantor::fuzzing::challenge(challenge, method, flags & 4 != 0) {
        if parsed.method == grantor::CodeChallengeMethod::S256 {
            assert_eq!(parsed.challenge.len(), 43);
        } else {
            assert!(flags & 4 != 0, "plain only when allowed");
            assert!(grantor::fuzzing::verifier_syntax(&parsed.challenge));
        }
        if let Some(verifier) = verifier {
            let answered = grantor::fuzzing::answers(&parsed, verifier);
            if answered && parsed.method == grantor::CodeChallengeMethod::Plain {
                assert_eq!(verifier, &*parsed.challenge);
            }
        }
    }
    if let Some(verifier) = verifier {
        if grantor::fuzzing::verifier_syntax(verifier) {
            let made = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()));
            let parsed = grantor::fuzzing::challenge(Some(&made), Some("S256"), false)
                .expect("a made challenge parses")
                .expect("a challenge");
            assert!(grantor::fuzzing::answers(&parsed, verifier));
            let mut other = verifier.to_owned();
            other.push('~');
            assert!(!grantor::fuzzing::answers(&parsed, &other));
        }
    }
});
