//! Scopes (RFC 6749 §3.3): what parses is in its written form, and reads back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(scope) = text.parse::<grantor::Scope>() else {
        return;
    };
    let written = scope.to_string();
    assert!(!written.starts_with(' ') && !written.ends_with(' ') && !written.contains("  "));
    let again: grantor::Scope = written.parse().expect("a written scope parses");
    assert_eq!(again, scope);
    assert_eq!(again.to_string(), written);
    assert!(scope.is_subset_of(&again) && again.is_subset_of(&scope));
});
