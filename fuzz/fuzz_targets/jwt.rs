//! A resource server checking JWT access tokens alone (RFC 9068 §4): whatever it is given, it
//! never panics, and it takes nothing but a token whose header and claims are those the key
//! signed (the seed below; its signature may only be re-encoded as ECDSA allows).
#![no_main]

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use grantor::{
    BearerValidator, JwsAlgorithm, LocalKeys, ManualClock, ResourceRequest, TokenSigner,
};
use libfuzzer_sys::fuzz_target;

/// A token signed by the tests' P-256 key under `kid` `fuzz`, for the audience and issuer
/// below, valid until 2100: the seed corpus holds it.
const SIGNED: &str = "eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJFUzI1NiIsImtpZCI6ImZ1enoifQ.eyJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZS5jb20iLCJleHAiOjQxMDI0NDQ4MDAsImF1ZCI6Imh0dHBzOi8vYXBpLmV4YW1wbGUuY29tIiwic3ViIjoidXNlci0xIiwiY2xpZW50X2lkIjoiYXBwIiwiaWF0IjoxNzAwMDAwMDAwLCJqdGkiOiJmdXp6LXNlZWQtMSIsInNjb3BlIjoicmVhZCB3cml0ZSJ9.8eXZWj3qMPhhpDYpeMD_lC3M22gDs-7JGClpkPdnPMN1j8wVlSKnlh0-0qsGxYnN_TS1mQuTNxpfhzN58z89zw";

fn validator() -> &'static BearerValidator {
    static VALIDATOR: OnceLock<BearerValidator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let pkcs8 = base64::engine::general_purpose::STANDARD
            .decode(include_str!("../../tests/keys/p256-test-only.pkcs8.b64").trim())
            .expect("the test key");
        let keys = LocalKeys::new();
        keys.add_pkcs8("fuzz", JwsAlgorithm::Es256, &pkcs8)
            .expect("the test key");
        let clock = ManualClock::new(
            time::OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("an instant"),
        );
        BearerValidator::jwt(
            keys.jwks(),
            "https://auth.example.com",
            "https://api.example.com",
        )
        .with_clock(Arc::new(clock))
    })
}

fuzz_target!(|token: &[u8]| {
    let mut authorization = b"Bearer ".to_vec();
    authorization.extend_from_slice(token);
    let request = ResourceRequest::new().with_authorization(authorization);
    let checked =
        grantor::fuzzing::block_on(validator().validate(&request, &"read".parse().expect("scope")));
    if let Ok(grant) = checked {
        let signed_part = |t: &str| t.rsplit_once('.').map(|(head, _)| head.to_owned());
        let token = std::str::from_utf8(token).expect("a taken token is text");
        assert_eq!(signed_part(token.trim()), signed_part(SIGNED), "{token}");
        assert_eq!(grant.client_id.as_str(), "app");
    }
});
