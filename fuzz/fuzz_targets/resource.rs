//! Resource indicators (RFC 8707 §2): what parses is an absolute URI without a fragment, kept
//! exactly as given.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(resource) = text.parse::<grantor::Resource>() else {
        return;
    };
    assert_eq!(resource.as_str(), text);
    assert!(!text.contains('#'));
    assert!(text.len() <= grantor::MAX_PARAMETER_LENGTH);
    assert!(text.bytes().all(|b| b.is_ascii_graphic()));
    assert!(url::Url::parse(text).is_ok());
});
