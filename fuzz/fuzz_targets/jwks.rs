//! JWK Sets (RFC 7517) and public keys: a set reads to the keys it can use, which write back to
//! themselves; a SubjectPublicKeyInfo reads to a key with a thumbprint, or to none.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if let Ok(set) = serde_json::from_slice::<grantor::Jwks>(input) {
        let written = serde_json::to_vec(&set).expect("JSON");
        let again: grantor::Jwks = serde_json::from_slice(&written).expect("a written set reads");
        assert_eq!(again, set);
        for key in &set.keys {
            let _ = key.thumbprint();
        }
    }
    for alg in [
        grantor::JwsAlgorithm::Es256,
        grantor::JwsAlgorithm::EdDsa,
        grantor::JwsAlgorithm::Rs256,
    ] {
        if let Some(key) = grantor::Jwk::from_spki_der("k", alg, input) {
            assert_eq!(key.alg, alg);
            assert!(key.thumbprint().is_some());
        }
    }
});
