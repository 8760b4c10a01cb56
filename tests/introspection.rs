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

/// The fixture, with `service` declared a resource server (RFC 7662 §4).
fn with_resource_server() -> Fixture {
    fixture_with(|b| b.resource_servers(["service"]))
}

#[tokio::test]
async fn a_live_token_is_active_with_what_it_grants() {
    let f = with_resource_server();
    let a = f.login().await;
    let i = introspect(&f, RS, &format!("token={}", a.str("access_token"))).await;
    assert_eq!(i.status, 200);
    i.assert_no_store();
    assert_eq!(i.json["active"], true);
    assert_eq!(i.json["scope"], "read");
    assert_eq!(i.json["client_id"], "clientapp");
    assert_eq!(i.json["token_type"], "Bearer");
    assert_eq!(i.json["sub"], "user-tom");
    // RFC 7662 §2.2: the username the resource owner signed in with.
    assert_eq!(i.json["username"], "tom");
    assert_eq!(i.json["iss"], ISSUER);
    assert_eq!(i.json["iat"], START.unix_timestamp());
    assert_eq!(i.json["exp"], START.unix_timestamp() + 3600);
    // A refresh token is live too, without a token type, to the client it was issued to.
    let i = introspect(
        &f,
        ("clientapp", "123456"),
        &format!(
            "token={}&token_type_hint=refresh_token",
            a.str("refresh_token")
        ),
    )
    .await;
    assert_eq!(i.json["active"], true, "{}", i.json);
    assert_eq!(i.json["username"], "tom");
    assert!(i.json.get("token_type").is_none());
    // The username survives a refresh.
    let r = f
        .refresh(("clientapp", "123456"), &a.str("refresh_token"), "")
        .await;
    let i = introspect(&f, RS, &format!("token={}", r.str("access_token"))).await;
    assert_eq!(i.json["username"], "tom", "{}", i.json);
}

/// RFC 7662 §4: "the authorization server MAY ... determine whether or not the protected
/// resource is allowed to know about the token" — grantor answers as inactive what a caller
/// has no business with, so that no client can scan for other clients' tokens.
#[tokio::test]
async fn callers_see_only_what_they_may_know_about() {
    let f = with_resource_server();
    let a = f.login().await;
    let (access, refresh) = (a.str("access_token"), a.str("refresh_token"));
    let inactive = |i: &Answer| String::from_utf8_lossy(i.response.body()) == r#"{"active":false}"#;
    // A declared resource server sees every access token, and no refresh token.
    let i = introspect(&f, RS, &format!("token={access}")).await;
    assert_eq!(i.json["active"], true);
    let i = introspect(&f, RS, &format!("token={refresh}")).await;
    assert!(inactive(&i), "{}", i.json);
    // Another client sees neither.
    for token in [&access, &refresh] {
        let i = introspect(&f, ("other", "other-secret"), &format!("token={token}")).await;
        assert!(inactive(&i), "{}", i.json);
    }
    // The client itself sees both.
    for token in [&access, &refresh] {
        let i = introspect(&f, ("clientapp", "123456"), &format!("token={token}")).await;
        assert_eq!(i.json["active"], true, "{}", i.json);
    }
    // Without the declaration, `service` is just another client: only its own tokens.
    let plain = fixture();
    let a = plain.login().await;
    let i = introspect(&plain, RS, &format!("token={}", a.str("access_token"))).await;
    assert!(inactive(&i), "{}", i.json);
    let own = plain.post(RS, "grant_type=client_credentials").await;
    let i = introspect(&plain, RS, &format!("token={}", own.str("access_token"))).await;
    assert_eq!(i.json["active"], true, "{}", i.json);
    // A token without a resource owner has no subject and no username.
    assert!(i.json.get("sub").is_none() && i.json.get("username").is_none());
}

#[tokio::test]
async fn anything_else_is_exactly_inactive() {
    let f = with_resource_server();
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
