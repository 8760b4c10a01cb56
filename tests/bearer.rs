//! Bearer token validation for resource servers (RFC 6750).

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use grantor::{BearerError, ErrorCode, ResourceRequest, Scope, TokenLocation};

fn read() -> Scope {
    "read".parse().expect("scope")
}

async fn check(
    f: &Fixture,
    req: ResourceRequest,
    scope: &str,
) -> Result<grantor::AccessGrant, BearerError> {
    f.server
        .bearer_validator()
        .validate(&req, &scope.parse().expect("scope"))
        .await
}

#[tokio::test]
async fn a_valid_token_in_the_header_answers_its_grant() {
    let f = fixture();
    let token = f.login().await.str("access_token");
    for scheme in ["Bearer", "bearer"] {
        let grant = check(
            &f,
            ResourceRequest::new().with_authorization(format!("{scheme} {token}")),
            "read",
        )
        .await
        .expect("valid");
        assert_eq!(grant.client_id.as_str(), "clientapp");
        assert_eq!(grant.user_id.as_ref().map(|u| u.as_str()), Some("user-tom"));
        assert_eq!(grant.scope, read());
        assert_eq!(grant.expires_at, START + time::Duration::hours(1));
    }
    // An empty required scope asks only for a valid token.
    assert!(check(
        &f,
        ResourceRequest::new().with_authorization(format!("Bearer {token}")),
        ""
    )
    .await
    .is_ok());
}

#[tokio::test]
async fn a_token_in_a_form_body_is_accepted_but_not_with_get() {
    let f = fixture();
    let token = f.login().await.str("access_token");
    let body = format!("access_token={token}&other=1");
    let post = ResourceRequest::new()
        .with_method("POST")
        .with_content_type("application/x-www-form-urlencoded")
        .with_body(body.clone());
    assert!(check(&f, post, "read").await.is_ok());
    let get = ResourceRequest::new()
        .with_method("GET")
        .with_content_type("application/x-www-form-urlencoded")
        .with_body(body);
    let e = check(&f, get, "read").await.expect_err("GET body");
    assert_eq!(
        (e.status(), e.code()),
        (400, Some(ErrorCode::InvalidRequest))
    );
}

/// Only a form body is read for a token: the same bytes under another media type are not a
/// token at all (RFC 6750 §2.2). A GET whose form body holds no token is not refused for it.
#[tokio::test]
async fn only_a_form_body_is_read_and_a_get_body_without_a_token_is_no_error() {
    let f = fixture();
    let token = f.login().await.str("access_token");
    let json = ResourceRequest::new()
        .with_method("POST")
        .with_content_type("application/json")
        .with_body(format!("access_token={token}"));
    let e = check(&f, json, "read").await.expect_err("not a form");
    assert_eq!((e.status(), e.code()), (401, None));
    let get = ResourceRequest::new()
        .with_method("GET")
        .with_authorization(format!("Bearer {token}"))
        .with_content_type("application/x-www-form-urlencoded")
        .with_body("page=2");
    assert!(check(&f, get, "read").await.is_ok());
}

/// A validator's refusal reads as its error's description, or "no access token"; a
/// validator's `Debug` shows its settings.
#[tokio::test]
async fn errors_and_validators_print_what_they_are() {
    let f = fixture();
    let e = check(&f, ResourceRequest::new(), "read")
        .await
        .expect_err("no token");
    assert_eq!(e.to_string(), "no access token");
    let e = check(
        &f,
        ResourceRequest::new().with_authorization("Bearer unknown"),
        "read",
    )
    .await
    .expect_err("unknown");
    assert!(e.to_string().starts_with("invalid_token: "), "{e}");
    let validator = f.server.bearer_validator().with_realm("api");
    let shown = format!("{validator:?}");
    assert!(shown.starts_with("BearerValidator {"), "{shown}");
    assert!(shown.contains("allow_query: false"), "{shown}");
    assert!(shown.contains("\"api\""), "{shown}");
}

#[tokio::test]
async fn query_tokens_only_when_enabled() {
    // Off: a query token is an unsupported method, answered like no token at all (RFC 6750 §3).
    let off = fixture();
    let token = off.login().await.str("access_token");
    let e = check(
        &off,
        ResourceRequest::new().with_query(format!("access_token={token}")),
        "read",
    )
    .await
    .expect_err("query disabled");
    assert_eq!((e.status(), e.code()), (401, None));
    assert_eq!(e.challenge().as_deref(), Some("Bearer"));

    let on = fixture_with(|b| b.allow_query_access_tokens(true));
    let token = on.login().await.str("access_token");
    let grant = check(
        &on,
        ResourceRequest::new().with_query(format!("page=2&access_token={token}")),
        "read",
    )
    .await
    .expect("query token");
    assert_eq!(grant.presented_in, TokenLocation::Query);
    let grant = check(
        &on,
        ResourceRequest::new().with_authorization(format!("Bearer {token}")),
        "read",
    )
    .await
    .expect("header token");
    assert_eq!(grant.presented_in, TokenLocation::Header);
}

#[tokio::test]
async fn tokens_that_are_not_b64token_never_reach_the_store() {
    let f = fixture();
    f.login().await;
    let before = f.store.finds.load(Ordering::SeqCst);
    for header in [
        "Bearer not*a*b64token",
        "Bearer a=b",
        "Bearer ====",
        "Bearer a b",
    ] {
        let e = check(
            &f,
            ResourceRequest::new().with_authorization(header),
            "read",
        )
        .await
        .expect_err("malformed");
        assert_eq!(e.code(), Some(ErrorCode::InvalidToken), "{header}");
    }
    assert_eq!(f.store.finds.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn the_engine_checks_expiry_even_if_the_store_does_not() {
    let f = fixture();
    let token = f.login().await.str("access_token");
    // The store now judges expiry at START forever; only the engine's own check is left.
    *f.store.frozen_now.lock().expect("lock") = Some(START);
    f.clock.advance(Duration::from_secs(3600));
    let e = check(
        &f,
        ResourceRequest::new().with_authorization(format!("Bearer {token}")),
        "read",
    )
    .await
    .expect_err("expired");
    assert_eq!(e.code(), Some(ErrorCode::InvalidToken));
}

#[tokio::test]
async fn no_token_is_a_bare_401_challenge() {
    let f = fixture();
    for req in [
        ResourceRequest::new(),
        ResourceRequest::new().with_authorization("Basic dXNlcjpwYXNz"),
        ResourceRequest::new().with_query("page=2"),
    ] {
        let e = check(&f, req, "read").await.expect_err("no token");
        assert_eq!((e.status(), e.code()), (401, None));
        let r = e.into_response();
        assert_eq!(r.status(), 401);
        assert_eq!(r.header("WWW-Authenticate"), Some("Bearer"));
        assert!(r.body().is_empty());
    }
}

#[tokio::test]
async fn bad_expired_or_refresh_tokens_are_invalid_token() {
    let f = fixture();
    let login = f.login().await;
    let cases = [
        format!("Bearer {}", "x".repeat(43)),
        "Bearer not*a*b64token".to_owned(),
        format!("Bearer {}", login.str("refresh_token")),
    ];
    for header in cases {
        let e = check(
            &f,
            ResourceRequest::new().with_authorization(&header),
            "read",
        )
        .await
        .expect_err("invalid");
        assert_eq!(
            (e.status(), e.code()),
            (401, Some(ErrorCode::InvalidToken)),
            "{header}"
        );
        let r = e.into_response();
        let challenge = r.header("WWW-Authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\", error_description=\""),
            "{challenge}"
        );
    }
    // Expiry, by the server's clock.
    f.clock.advance(Duration::from_secs(3600));
    let e = check(
        &f,
        ResourceRequest::new().with_authorization(format!("Bearer {}", login.str("access_token"))),
        "read",
    )
    .await
    .expect_err("expired");
    assert_eq!(e.code(), Some(ErrorCode::InvalidToken));
}

#[tokio::test]
async fn a_revoked_family_is_invalid_token() {
    let f = fixture();
    let token = f.login().await.str("access_token");
    let grant = check(
        &f,
        ResourceRequest::new().with_authorization(format!("Bearer {token}")),
        "read",
    )
    .await
    .expect("valid");
    use grantor::TokenStore;
    f.tokens
        .revoke_family(
            grant
                .family_id
                .as_ref()
                .expect("a password grant's token has a family"),
            START + time::Duration::hours(1),
            START,
        )
        .await
        .expect("revoke");
    let e = check(
        &f,
        ResourceRequest::new().with_authorization(format!("Bearer {token}")),
        "read",
    )
    .await
    .expect_err("revoked");
    assert_eq!(e.code(), Some(ErrorCode::InvalidToken));
}

#[tokio::test]
async fn missing_scope_is_403_insufficient_scope_naming_it() {
    let f = fixture();
    let token = f.login().await.str("access_token");
    let e = check(
        &f,
        ResourceRequest::new().with_authorization(format!("Bearer {token}")),
        "admin",
    )
    .await
    .expect_err("scope");
    assert_eq!(
        (e.status(), e.code()),
        (403, Some(ErrorCode::InsufficientScope))
    );
    let r = e.into_response();
    assert_eq!(r.status(), 403);
    let challenge = r.header("WWW-Authenticate").unwrap_or_default();
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.ends_with("scope=\"admin\""),
        "{challenge}"
    );
}

#[tokio::test]
async fn more_than_one_token_is_invalid_request() {
    let f = fixture_with(|b| b.allow_query_access_tokens(true));
    let token = f.login().await.str("access_token");
    let cases = [
        ResourceRequest::new()
            .with_authorization(format!("Bearer {token}"))
            .with_query(format!("access_token={token}")),
        ResourceRequest::new().with_query(format!("access_token={token}&access_token={token}")),
        ResourceRequest::new()
            .with_method("POST")
            .with_authorization(format!("Bearer {token}"))
            .with_content_type("application/x-www-form-urlencoded")
            .with_body(format!("access_token={token}")),
        ResourceRequest::new().with_authorization("Bearer"),
    ];
    for req in cases {
        let e = check(&f, req, "read").await.expect_err("two tokens");
        assert_eq!(
            (e.status(), e.code()),
            (400, Some(ErrorCode::InvalidRequest))
        );
        let challenge = e.challenge().unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer error=\"invalid_request\""),
            "{challenge}"
        );
    }
}

#[tokio::test]
async fn a_realm_appears_in_every_challenge() {
    let f = fixture();
    let v = f.server.bearer_validator().with_realm("api \"v1\"");
    let e = v
        .validate(&ResourceRequest::new(), &read())
        .await
        .expect_err("none");
    assert_eq!(e.challenge().as_deref(), Some("Bearer realm=\"api v1\""));
    let e = v
        .validate(
            &ResourceRequest::new().with_authorization("Bearer abc"),
            &read(),
        )
        .await
        .expect_err("bad");
    assert!(e
        .challenge()
        .unwrap_or_default()
        .starts_with("Bearer realm=\"api v1\", error=\"invalid_token\""));
}

#[tokio::test]
async fn a_failing_store_is_a_server_error_without_a_challenge() {
    let f = fixture();
    let token = f.login().await.str("access_token");
    f.store.fail.store(true, Ordering::SeqCst);
    let e = check(
        &f,
        ResourceRequest::new().with_authorization(format!("Bearer {token}")),
        "read",
    )
    .await
    .expect_err("store down");
    assert_eq!((e.status(), e.code()), (500, Some(ErrorCode::ServerError)));
    assert!(e.into_response().header("WWW-Authenticate").is_none());
}

/// `validate_http` reads an `http::Request` where it lies and answers exactly what `validate`
/// answers for the same request converted: in the header (once, twice), in a form body (with
/// POST and with GET), in the query (refused by default), and absent.
#[tokio::test]
async fn validating_an_http_request_in_place_answers_as_a_converted_one() {
    let f = fixture();
    let token = f.login().await.str("access_token");
    let validator = f.server.bearer_validator();
    let form = "application/x-www-form-urlencoded";
    let requests = [
        http::Request::get("/api").header("Authorization", format!("Bearer {token}")),
        http::Request::get("/api")
            .header("Authorization", format!("Bearer {token}"))
            .header("Authorization", format!("Bearer {token}")),
        http::Request::post("/api").header("Content-Type", form),
        http::Request::get("/api").header("Content-Type", form),
        http::Request::get(format!("/api?access_token={token}")),
        http::Request::get("/api"),
        http::Request::get("/api").header("Authorization", "Bearer not-a-token"),
    ];
    for (i, builder) in requests.into_iter().enumerate() {
        let body = if i == 2 || i == 3 {
            format!("access_token={token}").into_bytes()
        } else {
            Vec::new()
        };
        let request = builder.body(body).expect("request");
        let in_place = validator.validate_http(&request, &read()).await;
        let converted = validator
            .validate(&ResourceRequest::from_http(&request), &read())
            .await;
        assert_eq!(
            in_place.as_ref().map(|g| g.client_id.clone()).ok(),
            converted.as_ref().map(|g| g.client_id.clone()).ok(),
            "request {i}"
        );
        assert_eq!(
            in_place.as_ref().err().map(|e| e.code()),
            converted.as_ref().err().map(|e| e.code()),
            "request {i}"
        );
        assert_eq!(in_place.is_ok(), i == 0 || i == 2, "request {i}");
    }
}
