//! Device user codes (RFC 8628 §6.1): normalising is idempotent, and the displayed form reads
//! back to the same code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|typed: &str| {
    let code = grantor::UserCode::new(typed);
    let normalized = code.normalized();
    assert!(normalized
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
    assert_eq!(
        grantor::UserCode::new(normalized.clone()).normalized(),
        normalized
    );
    assert_eq!(
        grantor::UserCode::new(code.display()).normalized(),
        normalized
    );
    // The hash the store keeps is of the normalised code.
    assert_eq!(
        grantor::UserCodeHash::of(&code),
        grantor::UserCodeHash::of(&grantor::UserCode::new(code.display()))
    );
});
