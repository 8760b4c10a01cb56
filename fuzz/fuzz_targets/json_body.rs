//! The token endpoint's JSON body parser (when enabled): what parses is held to the bounds and
//! writes back to the same pairs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Some(pairs) = grantor::fuzzing::json(body) else {
        return;
    };
    assert!(pairs.len() <= grantor::MAX_PARAMETERS);
    for (name, value) in &pairs {
        assert!(name.len() <= grantor::MAX_PARAMETER_LENGTH);
        assert!(value.len() <= grantor::MAX_PARAMETER_LENGTH);
    }
    let object: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    // No name repeats but `resource`; a JSON object keeps one value per name.
    if object.len() == pairs.len() {
        let written = serde_json::to_vec(&object).expect("JSON");
        let mut again = grantor::fuzzing::json(&written).expect("what parsed, parses again");
        let mut expected = pairs;
        again.sort();
        expected.sort();
        assert_eq!(again, expected);
    }
});
