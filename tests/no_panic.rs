//! Property tests: no byte string as body, `Authorization` header, content type or query makes
//! the library panic, and every answer is a well-formed RFC response.

mod common;

use common::*;
use grantor::{ResourceRequest, Scope, TokenRequest};
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    // Timers on: the test verifier takes a moment, as a real password KDF does.
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

/// Bodies assembled from pieces that reach deep into the grants, plus raw noise.
fn form_body() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"grant_type=password".to_vec()),
        Just(b"grant_type=refresh_token".to_vec()),
        Just(b"grant_type=".to_vec()),
        Just(b"username=tom".to_vec()),
        Just(b"password=123456".to_vec()),
        Just(b"client_id=clientapp".to_vec()),
        Just(b"client_id=spa".to_vec()),
        Just(b"client_secret=123456".to_vec()),
        Just(b"scope=read".to_vec()),
        Just(b"scope=read+%22".to_vec()),
        Just(b"refresh_token=abc".to_vec()),
        Just(b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code".to_vec()),
        Just(b"device_code=abc".to_vec()),
        Just(b"client_id=cli".to_vec()),
        Just(b"grant_type=http%3A%2F%2Fauth0.com%2Foauth%2Fgrant-type%2Fmfa-otp".to_vec()),
        Just(b"username=alice".to_vec()),
        Just(b"mfa_token=abc".to_vec()),
        Just(b"otp=123456".to_vec()),
        Just(b"resource=https%3A%2F%2Fapi.example.com".to_vec()),
        Just(b"resource=https%3A%2F%2Fapi.example.com%23x".to_vec()),
        Just(b"resource=urn%3A%5C%20".to_vec()),
        Just(b"%".to_vec()),
        Just(b"%ff".to_vec()),
        Just(b"=".to_vec()),
        Just(b"&".to_vec()),
        Just(b"+".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..16),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.join(&b'&'))
}

/// The resources (RFC 8707) the fuzzed servers know.
fn known_resources() -> [grantor::Resource; 1] {
    ["https://api.example.com".parse().expect("a resource")]
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        Just(b"Basic Y2xpZW50YXBwOjEyMzQ1Ng==".to_vec()),
        "(Basic|basic|Bearer|bearer|BASIC) [A-Za-z0-9+/=:%._~-]{0,40}".prop_map(String::into_bytes),
    ]
}

fn content_type() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        Just(Some(b"application/x-www-form-urlencoded".to_vec())),
        Just(Some(b"application/json".to_vec())),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Some),
    ]
}

fn check_token_response(r: &grantor::Response) {
    assert!(
        matches!(r.status(), 200 | 400 | 401 | 403 | 500 | 503),
        "{r:?}"
    );
    if r.status() == 403 {
        // Only the password grant's mfa_required, with its mfa_token.
        let json: serde_json::Value = serde_json::from_slice(r.body()).expect("JSON body");
        assert_eq!(json["error"], "mfa_required");
        assert!(json["mfa_token"].is_string());
    }
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    assert_eq!(r.header("Pragma"), Some("no-cache"));
    let json: serde_json::Value = serde_json::from_slice(r.body()).expect("JSON body");
    if r.status() != 200 {
        assert!(json["error"].is_string() && json["error_description"].is_string());
    }
    if r.status() == 401 {
        assert!(r.header("WWW-Authenticate").is_some());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn token_endpoint_never_panics(
        body in prop_oneof![form_body(), proptest::collection::vec(any::<u8>(), 0..256)],
        auth in proptest::option::of(header_value()),
        ct in content_type(),
        json in any::<bool>(),
    ) {
        let f = fixture_with(|b| b.accept_json_token_requests(json).resources(known_resources()));
        let mut req = TokenRequest::new(body);
        if let Some(ct) = ct { req = req.with_content_type(ct); }
        if let Some(auth) = auth { req = req.with_authorization(auth); }
        let r = runtime().block_on(f.server.token(req));
        check_token_response(&r);
    }

    #[test]
    fn the_device_endpoints_never_panic(
        body in prop_oneof![form_body(), proptest::collection::vec(any::<u8>(), 0..256)],
        auth in proptest::option::of(header_value()),
        ct in content_type(),
        typed in prop_oneof![any::<String>(), "[a-zA-Z -]{0,12}"],
        approve in any::<bool>(),
    ) {
        let f = fixture();
        let rt = runtime();
        let mut req = TokenRequest::new(body);
        if let Some(ct) = ct { req = req.with_content_type(ct); }
        if let Some(auth) = auth { req = req.with_authorization(auth); }
        let r = rt.block_on(f.server.device_authorization(req));
        check_token_response(&r);
        let code = grantor::UserCode::new(typed.clone());
        let _ = rt.block_on(f.server.device_request(&code, CALLER));
        let confirmation = grantor::DeviceConfirmation::new(typed);
        let decided = if approve {
            rt.block_on(f.server.approve_device(&code, &confirmation, CALLER, grantor::UserId::new("u"), None))
        } else {
            rt.block_on(f.server.deny_device(&code, &confirmation, CALLER))
        };
        prop_assert!(decided.is_err(), "no request was pending under a random code");
    }

    #[test]
    fn json_bodies_never_panic(body in "\\{(\"[a-z_]{0,12}\":(\"[a-z0-9 ]{0,8}\"|[0-9]+|null|\\[\\]),?){0,6}\\}?") {
        let f = fixture_with(|b| b.accept_json_token_requests(true));
        let req = TokenRequest::new(body).with_content_type("application/json").with_authorization(basic("clientapp", "123456"));
        let r = runtime().block_on(f.server.token(req));
        check_token_response(&r);
    }

    #[test]
    fn bearer_validation_never_panics(
        auth in proptest::option::of(header_value()),
        query in proptest::option::of(prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            "(access_token=[A-Za-z0-9%+._~-]{0,20}&?){0,3}".prop_map(String::into_bytes),
        ]),
        ct in content_type(),
        body in prop_oneof![form_body(), "access_token=[A-Za-z0-9%]{0,10}".prop_map(String::into_bytes)],
        method in prop_oneof![Just("GET"), Just("POST"), Just("")],
        allow_query in any::<bool>(),
    ) {
        let f = fixture_with(|b| b.allow_query_access_tokens(allow_query));
        let mut req = ResourceRequest::new().with_method(method).with_body(body);
        if let Some(a) = auth { req = req.with_authorization(a); }
        if let Some(q) = query { req = req.with_query(q); }
        if let Some(ct) = ct { req = req.with_content_type(ct); }
        let result = runtime().block_on(f.server.bearer_validator().validate(&req, &Scope::empty()));
        if let Err(e) = result {
            let r = e.into_response();
            prop_assert!(matches!(r.status(), 400 | 401 | 403 | 500 | 503));
            if r.status() == 401 {
                prop_assert!(r.header("WWW-Authenticate").is_some_and(|v| v.starts_with("Bearer")));
            }
        }
    }

    #[test]
    fn the_authorization_endpoint_never_panics(
        query in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256),
            proptest::collection::vec(prop_oneof![
                Just(b"response_type=code".to_vec()),
                Just(b"response_type=token".to_vec()),
                Just(b"client_id=pkce-app".to_vec()),
                Just(b"client_id=webapp".to_vec()),
                Just(b"redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback".to_vec()),
                Just(b"redirect_uri=%zz".to_vec()),
                Just(b"scope=read+write".to_vec()),
                Just(b"state=%E2%9C%93".to_vec()),
                Just(b"code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_vec()),
                Just(b"code_challenge_method=S256".to_vec()),
                Just(b"code_challenge_method=plain".to_vec()),
                Just(b"resource=https%3A%2F%2Fapi.example.com".to_vec()),
                Just(b"resource=relative%23".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..16),
            ], 0..10).prop_map(|pieces| pieces.join(&b'&')),
        ],
        decision in 0u8..3,
        implicit in any::<bool>(),
    ) {
        let f = fixture_with(|b| {
            let b = b.resources(known_resources());
            if implicit { b.enable_implicit_grant() } else { b }
        });
        let rt = runtime();
        match rt.block_on(f.server.authorize(grantor::AuthorizationRequest::from_query(query))) {
            grantor::AuthorizeOutcome::Pending { id, .. } => {
                let answer = match decision {
                    0 => rt.block_on(f.server.approve(&id, grantor::UserId::new("u"), None)),
                    1 => rt.block_on(f.server.deny(&id)),
                    _ => rt.block_on(f.server.approve(&id, grantor::UserId::new("u"), Some(Scope::empty()))),
                };
                let redirect = answer.expect("a pending request can be decided");
                let response = redirect.into_response();
                prop_assert_eq!(response.status(), 302);
                prop_assert!(response.header("Location").is_some_and(|l| l.contains("iss=")));
            }
            grantor::AuthorizeOutcome::Redirect(r) => {
                prop_assert!(r.location().contains("error="));
            }
            grantor::AuthorizeOutcome::Invalid(e) => {
                prop_assert!(!e.description().is_empty());
            }
            _ => {}
        }
    }

    #[test]
    fn scope_parsing_never_panics(s in any::<String>()) {
        let _ = Scope::parse(&s);
    }
}
