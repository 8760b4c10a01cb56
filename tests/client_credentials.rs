//! The client credentials grant (RFC 6749 §4.4).

mod common;

use common::*;
use grantor::{ResourceRequest, Scope, TokenRequest};

#[tokio::test]
async fn a_confidential_client_gets_a_token_for_itself_and_no_refresh_token() {
    let f = fixture();
    let a = f
        .post(
            ("service", "service-secret"),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
    a.assert_no_store();
    assert_eq!(a.json["token_type"], "Bearer");
    assert_eq!(a.json["scope"], "read");
    assert!(a.json.get("refresh_token").is_none());
    let grant = f
        .server
        .bearer_validator()
        .validate(
            &ResourceRequest::new().with_authorization(format!("Bearer {}", a.str("access_token"))),
            &"read".parse::<Scope>().expect("scope"),
        )
        .await
        .expect("valid");
    assert_eq!(grant.client_id.as_str(), "service");
    assert_eq!(grant.user_id, None);
    // client_secret_post works too.
    let a = f
        .token(TokenRequest::form(
            "grant_type=client_credentials&client_id=service&client_secret=service-secret",
        ))
        .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn scope_rules_are_the_same_as_for_other_grants() {
    let f = fixture();
    let a = f
        .post(
            ("service-rw", "rw-secret"),
            "grant_type=client_credentials&scope=write",
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(
        a.json.get("scope").is_none(),
        "identical scope need not be returned"
    );
    let a = f
        .post(
            ("service-rw", "rw-secret"),
            "grant_type=client_credentials&scope=admin",
        )
        .await;
    assert_eq!((a.status, a.error()), (400, "invalid_scope"));
    // No scope asked and no default registered.
    let a = f
        .post(("service-rw", "rw-secret"), "grant_type=client_credentials")
        .await;
    assert_eq!((a.status, a.error()), (400, "invalid_scope"));
}

#[tokio::test]
async fn public_clients_and_clients_not_registered_for_it_are_refused() {
    let f = fixture();
    let a = f
        .token(TokenRequest::form(
            "grant_type=client_credentials&client_id=public-cc",
        ))
        .await;
    assert_eq!((a.status, a.error()), (400, "unauthorized_client"));
    let a = f
        .post(("clientapp", "123456"), "grant_type=client_credentials")
        .await;
    assert_eq!((a.status, a.error()), (400, "unauthorized_client"));
    let a = f
        .post(("service", "wrong"), "grant_type=client_credentials")
        .await;
    assert_eq!((a.status, a.error()), (401, "invalid_client"));
}

#[tokio::test]
async fn off_unless_enabled() {
    use grantor::{AuthorizationServer, MemoryTokenStore, MemoryUserVerifier};
    use std::sync::Arc;
    // Another grant is enabled (the refresh grant alone is refused at build time).
    let server =
        AuthorizationServer::builder(Arc::new(clients()), Arc::new(MemoryTokenStore::new()))
            .enable_password_grant(Arc::new(MemoryUserVerifier::new()))
            .enable_refresh_token_grant()
            .build()
            .expect("server");
    let a = answer(
        server
            .token(
                TokenRequest::form("grant_type=client_credentials")
                    .with_authorization(basic("service", "service-secret")),
            )
            .await,
    );
    assert_eq!((a.status, a.error()), (400, "unsupported_grant_type"));
}

#[tokio::test]
async fn no_refresh_token_even_for_a_client_allowed_the_refresh_grant() {
    let f = fixture();
    f.clients.insert(
        grantor::Client::confidential(
            "cc-refresh",
            grantor::SecretHash::new(&grantor::ClientSecret::new("s")),
        )
        .with_grant_types([
            grantor::GrantType::ClientCredentials,
            grantor::GrantType::RefreshToken,
        ])
        .with_allowed_scope("read".parse().expect("scope"))
        .with_default_scope("read".parse().expect("scope")),
    );
    let a = f
        .post(("cc-refresh", "s"), "grant_type=client_credentials")
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert!(a.json.get("refresh_token").is_none());
}

/// A client-credentials token stands alone: it is in no family (nothing but its own revocation
/// ends it), and revoking it revokes just it.
#[tokio::test]
async fn a_client_credentials_token_stands_alone() {
    use grantor::TokenLookup;
    let f = fixture();
    let a = f
        .post(
            ("service", "service-secret"),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
    let b = f
        .post(
            ("service", "service-secret"),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(b.status, 200, "{}", b.json);
    let snapshot = f.tokens.snapshot();
    assert_eq!(snapshot.len(), 2);
    for (_, lookup) in &snapshot {
        match lookup {
            TokenLookup::Live(record) => assert_eq!(record.family_id, None),
            other => panic!("not live: {other:?}"),
        }
    }
    let validate = |token: String| {
        let validator = f.server.bearer_validator();
        async move {
            validator
                .validate(
                    &ResourceRequest::new().with_authorization(format!("Bearer {token}")),
                    &"read".parse::<Scope>().expect("scope"),
                )
                .await
        }
    };
    let grant = validate(a.str("access_token")).await.expect("valid");
    assert_eq!(grant.family_id, None);
    let revoked = f
        .server
        .revoke(
            TokenRequest::form(format!("token={}", a.str("access_token")))
                .with_authorization(basic("service", "service-secret")),
        )
        .await;
    assert_eq!(revoked.status(), 200);
    assert!(validate(a.str("access_token")).await.is_err());
    assert!(validate(b.str("access_token")).await.is_ok());
}
