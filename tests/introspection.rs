//! Token introspection (RFC 7662).

mod common;

use std::time::Duration;

use common::*;
use grantor::TokenRequest;

async fn introspect(f: &Fixture, caller: (&str, &str), body: &str) -> Answer {
    answer(
        f.server
            .introspect(
                TokenRequest::form(body.to_owned()).with_authorization(basic(caller.0, caller.1)),
            )
            .await,
    )
}

const RS: (&str, &str) = ("service", "service-secret");

#[tokio::test]
async fn a_live_token_is_active_with_what_it_grants() {
    let f = fixture();
    let a = f.login().await;
    let i = introspect(&f, RS, &format!("token={}", a.str("access_token"))).await;
    assert_eq!(i.status, 200);
    i.assert_no_store();
    assert_eq!(i.json["active"], true);
    assert_eq!(i.json["scope"], "read");
    assert_eq!(i.json["client_id"], "clientapp");
    assert_eq!(i.json["token_type"], "Bearer");
    assert_eq!(i.json["sub"], "user-tom");
    assert_eq!(i.json["iss"], ISSUER);
    assert_eq!(i.json["iat"], START.unix_timestamp());
    assert_eq!(i.json["exp"], START.unix_timestamp() + 3600);
    // A refresh token is live too, without a token type.
    let i = introspect(
        &f,
        RS,
        &format!(
            "token={}&token_type_hint=refresh_token",
            a.str("refresh_token")
        ),
    )
    .await;
    assert_eq!(i.json["active"], true);
    assert!(i.json.get("token_type").is_none());
}

#[tokio::test]
async fn anything_else_is_exactly_inactive() {
    let f = fixture();
    let a = f.login().await;
    let refreshed = f
        .refresh(("clientapp", "123456"), &a.str("refresh_token"), "")
        .await;
    let revoked = f.login().await;
    f.server
        .revoke(
            TokenRequest::form(format!("token={}", revoked.str("access_token")))
                .with_authorization(basic("clientapp", "123456")),
        )
        .await;
    let cases = [
        "never-issued".to_owned(),
        "%20%00weird".to_owned(),
        a.str("refresh_token"),      // rotated
        revoked.str("access_token"), // revoked
    ];
    for token in cases {
        let i = introspect(&f, RS, &format!("token={token}")).await;
        assert_eq!(i.status, 200);
        assert_eq!(
            String::from_utf8_lossy(i.response.body()),
            r#"{"active":false}"#,
            "{token}"
        );
    }
    // Expired.
    f.clock.advance(Duration::from_secs(3600));
    let i = introspect(&f, RS, &format!("token={}", refreshed.str("access_token"))).await;
    assert_eq!(
        String::from_utf8_lossy(i.response.body()),
        r#"{"active":false}"#
    );
}

#[tokio::test]
async fn callers_must_authenticate_as_confidential_clients() {
    let f = fixture();
    let a = f.login().await;
    let body = format!("token={}", a.str("access_token"));
    let r = answer(f.server.introspect(TokenRequest::form(body.clone())).await);
    assert_eq!((r.status, r.error()), (401, "invalid_client"));
    let r = answer(
        f.server
            .introspect(TokenRequest::form(format!("{body}&client_id=spa")))
            .await,
    );
    assert_eq!((r.status, r.error()), (401, "invalid_client"));
    let r = introspect(&f, ("service", "wrong"), &body).await;
    assert_eq!((r.status, r.error()), (401, "invalid_client"));
    let r = introspect(&f, RS, "token_type_hint=access_token").await;
    assert_eq!((r.status, r.error()), (400, "invalid_request"));
    r.assert_no_store();
}
