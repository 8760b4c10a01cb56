//! Token revocation (RFC 7009).

mod common;

use common::*;
use grantor::{ResourceRequest, Scope, TokenRequest};

async fn revoke(f: &Fixture, client: (&str, &str), body: &str) -> Answer {
    answer(
        f.server
            .revoke(
                TokenRequest::form(body.to_owned()).with_authorization(basic(client.0, client.1)),
            )
            .await,
    )
}

async fn valid(f: &Fixture, token: &str) -> bool {
    f.server
        .bearer_validator()
        .validate(
            &ResourceRequest::new().with_authorization(format!("Bearer {token}")),
            &Scope::empty(),
        )
        .await
        .is_ok()
}

const APP: (&str, &str) = ("clientapp", "123456");

#[tokio::test]
async fn revoking_an_access_token_revokes_that_token_only() {
    let f = fixture();
    let a = f.login().await;
    let r = revoke(
        &f,
        APP,
        &format!(
            "token={}&token_type_hint=access_token",
            a.str("access_token")
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.response.body().is_empty());
    assert!(!valid(&f, &a.str("access_token")).await);
    // The refresh token still works.
    assert_eq!(
        f.refresh(APP, &a.str("refresh_token"), "").await.status,
        200
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_grant() {
    let f = fixture();
    let a = f.login().await;
    let refreshed = f.refresh(APP, &a.str("refresh_token"), "").await;
    // A wrong hint still finds it.
    let r = revoke(
        &f,
        APP,
        &format!(
            "token={}&token_type_hint=access_token",
            refreshed.str("refresh_token")
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    for token in [a.str("access_token"), refreshed.str("access_token")] {
        assert!(!valid(&f, &token).await);
    }
    assert_eq!(
        f.refresh(APP, &refreshed.str("refresh_token"), "")
            .await
            .error(),
        "invalid_grant"
    );
}

#[tokio::test]
async fn unknown_tokens_are_200() {
    let f = fixture();
    let r = revoke(&f, APP, "token=never-issued").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn another_clients_token_is_refused_and_stays_valid() {
    let f = fixture();
    let a = f.login().await;
    let r = revoke(
        &f,
        ("other", "other-secret"),
        &format!("token={}", a.str("access_token")),
    )
    .await;
    assert_eq!((r.status, r.error()), (400, "unauthorized_client"));
    r.assert_no_store();
    assert!(valid(&f, &a.str("access_token")).await);
    let r = revoke(
        &f,
        ("other", "other-secret"),
        &format!("token={}", a.str("refresh_token")),
    )
    .await;
    assert_eq!(r.error(), "unauthorized_client");
    assert_eq!(
        f.refresh(APP, &a.str("refresh_token"), "").await.status,
        200
    );
}

#[tokio::test]
async fn bad_requests_get_the_token_endpoint_errors() {
    let f = fixture();
    let r = revoke(&f, APP, "token_type_hint=access_token").await;
    assert_eq!((r.status, r.error()), (400, "invalid_request"));
    let r = revoke(&f, APP, "token=a&token=b").await;
    assert_eq!((r.status, r.error()), (400, "invalid_request"));
    let r = revoke(&f, ("clientapp", "wrong"), "token=x").await;
    assert_eq!((r.status, r.error()), (401, "invalid_client"));
    assert!(r.header("WWW-Authenticate").is_some());
    let r = answer(f.server.revoke(TokenRequest::form("token=x")).await);
    assert_eq!((r.status, r.error()), (401, "invalid_client"));
}

#[tokio::test]
async fn a_public_client_revokes_its_own_tokens_with_client_id() {
    let f = fixture();
    let a = f
        .token(TokenRequest::form(
            "grant_type=password&username=tom&password=123456&client_id=spa",
        ))
        .await;
    let r = answer(
        f.server
            .revoke(TokenRequest::form(format!(
                "token={}&client_id=spa",
                a.str("refresh_token")
            )))
            .await,
    );
    assert_eq!(r.status, 200);
    assert!(!valid(&f, &a.str("access_token")).await);
}

#[tokio::test]
async fn an_unknown_hint_is_ignored() {
    let f = fixture();
    let a = f.login().await;
    let r = revoke(
        &f,
        APP,
        &format!("token={}&token_type_hint=id_token", a.str("access_token")),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(!valid(&f, &a.str("access_token")).await);
}

#[tokio::test]
async fn revoking_a_spent_refresh_token_ends_its_grant_for_its_owner_only() {
    let f = fixture();
    let a = f.login().await;
    let b = f.refresh(APP, &a.str("refresh_token"), "").await;
    let r = revoke(
        &f,
        ("other", "other-secret"),
        &format!("token={}", a.str("refresh_token")),
    )
    .await;
    assert_eq!(r.error(), "unauthorized_client");
    assert!(valid(&f, &b.str("access_token")).await);
    let r = revoke(&f, APP, &format!("token={}", a.str("refresh_token"))).await;
    assert_eq!(r.status, 200);
    assert!(!valid(&f, &b.str("access_token")).await);
}

/// RFC 7009 §2.2.1: a server that cannot revoke now answers 503 `temporarily_unavailable`, and
/// the client may retry: the token is revoked once the store is back.
#[tokio::test]
async fn a_store_outage_is_temporarily_unavailable_and_the_retry_revokes() {
    use std::sync::atomic::Ordering;

    let f = fixture();
    let token = f.login().await.str("access_token");
    f.store.unavailable.store(true, Ordering::SeqCst);
    let a = revoke(&f, APP, &format!("token={token}")).await;
    assert_eq!(
        (a.status, a.error()),
        (503, "temporarily_unavailable"),
        "{}",
        a.json
    );
    f.store.unavailable.store(false, Ordering::SeqCst);
    assert!(valid(&f, &token).await, "nothing was revoked");
    assert_eq!(revoke(&f, APP, &format!("token={token}")).await.status, 200);
    assert!(!valid(&f, &token).await);
}
