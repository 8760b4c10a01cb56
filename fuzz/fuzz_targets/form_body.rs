//! The token endpoint's form body parser: what parses is held to the bounds, reads as the URL
//! standard's parser reads it, and writes back to the same pairs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Some(pairs) = grantor::fuzzing::form(body) else {
        return;
    };
    assert!(pairs.len() <= grantor::MAX_PARAMETERS);
    for (name, value) in &pairs {
        assert!(name.len() <= grantor::MAX_PARAMETER_LENGTH);
        assert!(value.len() <= grantor::MAX_PARAMETER_LENGTH);
    }
    // The lenient reading of the same bytes agrees wherever the strict one accepts.
    let lenient: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(pairs, lenient);
    // What parses writes back to a body that parses to the same pairs.
    let written = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    assert_eq!(grantor::fuzzing::form(written.as_bytes()), Some(pairs));
});
