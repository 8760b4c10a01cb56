//! `Authorization: Basic` at the token endpoint (RFC 6749 §2.3.1): what parses writes back, as
//! a client encodes it, to the same client id and secret.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|header: &[u8]| {
    let Some((id, secret)) = grantor::fuzzing::basic(header) else {
        return;
    };
    assert!(!id.is_empty());
    let encode =
        |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    let written = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            encode(&id),
            encode(&secret)
        ))
    );
    assert_eq!(
        grantor::fuzzing::basic(written.as_bytes()),
        Some((id, secret))
    );
});
