//! A resource request (RFC 6750 §2): header, query and body tokens, against an empty store,
//! never validate, and are refused with one of RFC 6750's answers.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;

fn validator() -> &'static grantor::BearerValidator {
    static VALIDATOR: OnceLock<grantor::BearerValidator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        grantor::BearerValidator::new(Arc::new(grantor::MemoryTokenStore::new()))
            .allow_query_parameter(true)
    })
}

fuzz_target!(|input: &[u8]| {
    let mut parts = input.splitn(4, |b| *b == 0);
    let (authorization, query, content_type, body) =
        (parts.next(), parts.next(), parts.next(), parts.next());
    let mut request = grantor::ResourceRequest::new();
    if let Some(a) = authorization.filter(|a| !a.is_empty()) {
        request = request.with_authorization(a);
    }
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        request = request.with_query(q);
    }
    if let Some(c) = content_type.filter(|c| !c.is_empty()) {
        request = request.with_content_type(c);
    }
    if let Some(b) = body {
        request = request.with_method("POST").with_body(b.to_vec());
    }
    let refused =
        grantor::fuzzing::block_on(validator().validate(&request, &"read".parse().expect("scope")))
            .expect_err("no token is valid in an empty store");
    assert!(
        matches!(refused.status(), 400 | 401),
        "{}",
        refused.status()
    );
    let _ = refused.challenge();
});
