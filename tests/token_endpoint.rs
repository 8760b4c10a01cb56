//! The token endpoint's request rules and error responses (RFC 6749 §3.2, §5.2).

mod common;

use common::*;
use grantor::TokenRequest;

const LOGIN: &str = "grant_type=password&username=tom&password=123456";

#[tokio::test]
async fn a_repeated_parameter_is_invalid_request() {
    let f = fixture();
    for body in [
        "grant_type=password&username=tom&password=123456&username=tom",
        "grant_type=password&grant_type=password&username=tom&password=123456",
        "grant_type=password&username=tom&password=123456&scope=&scope=read",
    ] {
        let a = f.post(("clientapp", "123456"), body).await;
        assert_eq!((a.status, a.error()), (400, "invalid_request"), "{body}");
        assert!(a.str("error_description").contains("repeated"));
        a.assert_no_store();
    }
}

#[tokio::test]
async fn a_body_that_is_not_a_form_is_invalid_request() {
    let f = fixture();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/json"),
        Some("multipart/form-data"),
    ] {
        let mut req = TokenRequest::new(LOGIN).with_authorization(basic("clientapp", "123456"));
        if let Some(ct) = ct {
            req = req.with_content_type(ct);
        }
        let a = f.token(req).await;
        assert_eq!((a.status, a.error()), (400, "invalid_request"), "{ct:?}");
        a.assert_no_store();
    }
    // Parameters on the media type are fine.
    let a = f
        .token(
            TokenRequest::new(LOGIN)
                .with_content_type("application/x-www-form-urlencoded;charset=UTF-8")
                .with_authorization(basic("clientapp", "123456")),
        )
        .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn only_post_is_accepted_when_the_method_is_known() {
    let f = fixture();
    let a = f
        .token(
            TokenRequest::form(LOGIN)
                .with_authorization(basic("clientapp", "123456"))
                .with_method("GET"),
        )
        .await;
    assert_eq!((a.status, a.error()), (400, "invalid_request"));
}

#[tokio::test]
async fn malformed_encoding_is_invalid_request() {
    let f = fixture();
    for body in [
        "grant_type=password&username=%zz&password=1",
        "grant_type=password&username=%ff&password=1",
    ] {
        let a = f.post(("clientapp", "123456"), body).await;
        assert_eq!((a.status, a.error()), (400, "invalid_request"), "{body}");
    }
}

#[tokio::test]
async fn grant_type_is_required_and_must_be_supported() {
    let f = fixture();
    let a = f
        .post(("clientapp", "123456"), "username=tom&password=123456")
        .await;
    assert_eq!((a.status, a.error()), (400, "invalid_request"));
    for grant in [
        "magic",
        "PASSWORD",
        "implicit",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ] {
        let a = f
            .post(("clientapp", "123456"), &format!("grant_type={grant}"))
            .await;
        assert_eq!(
            (a.status, a.error()),
            (400, "unsupported_grant_type"),
            "{grant}"
        );
        a.assert_no_store();
    }
}

#[tokio::test]
async fn json_bodies_are_refused_unless_enabled() {
    let body = r#"{"grant_type":"password","username":"tom","password":"123456","scope":"read"}"#;
    let req = || {
        TokenRequest::new(body)
            .with_content_type("application/json")
            .with_authorization(basic("clientapp", "123456"))
    };
    let off = fixture();
    let a = off.token(req()).await;
    assert_eq!((a.status, a.error()), (400, "invalid_request"));

    let on = fixture_with(|b| b.accept_json_token_requests(true));
    let a = on.token(req()).await;
    assert_eq!(a.status, 200, "{}", a.json);
    a.assert_no_store();
    // The same rules hold: repeated members and non-string values are invalid_request.
    for bad in [
        r#"{"grant_type":"password","username":"tom","username":"x","password":"123456"}"#,
        r#"{"grant_type":"password","username":"tom","password":123456}"#,
        r#"["grant_type"]"#,
    ] {
        let a = on
            .token(
                TokenRequest::new(bad)
                    .with_content_type("application/json")
                    .with_authorization(basic("clientapp", "123456")),
            )
            .await;
        assert_eq!((a.status, a.error()), (400, "invalid_request"), "{bad}");
    }
    // Forms still work.
    let a = on.post(("clientapp", "123456"), LOGIN).await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn a_failing_store_is_a_generic_server_error() {
    let f = fixture();
    f.store
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let a = f.post(("clientapp", "123456"), LOGIN).await;
    assert_eq!((a.status, a.error()), (500, "server_error"));
    a.assert_no_store();
    let body = String::from_utf8_lossy(a.response.body()).into_owned();
    assert!(
        !body.contains("secret detail") && !body.contains("tokens_pkey"),
        "{body}"
    );
}

#[tokio::test]
async fn an_unreachable_store_is_temporarily_unavailable() {
    let f = fixture();
    f.store
        .unavailable
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let a = f.post(("clientapp", "123456"), LOGIN).await;
    assert_eq!((a.status, a.error()), (503, "temporarily_unavailable"));
    a.assert_no_store();
    assert!(!String::from_utf8_lossy(a.response.body()).contains("10.0.0.9"));
    // Back again: works without a rebuild.
    f.store
        .unavailable
        .store(false, std::sync::atomic::Ordering::SeqCst);
    f.login().await;
}

#[tokio::test]
async fn error_bodies_have_exactly_the_rfc_members() {
    let f = fixture();
    let a = f.post(("clientapp", "123456"), "grant_type=nope").await;
    let keys: Vec<&String> = a
        .json
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["error", "error_description"]);
}

#[test]
fn the_builder_refuses_inconsistent_settings() {
    use grantor::{AuthorizationServer, BuildError, MemoryTokenStore};
    use std::sync::Arc;
    let b = || AuthorizationServer::builder(Arc::new(clients()), Arc::new(MemoryTokenStore::new()));
    assert_eq!(b().build().err(), Some(BuildError::NoGrantEnabled));
    for bad in ["not a url", "ftp://x", "https://x/?q=1", "https://x/#f"] {
        assert!(
            matches!(
                b().enable_refresh_token_grant().issuer(bad).build().err(),
                Some(BuildError::InvalidIssuer(_))
            ),
            "{bad}"
        );
    }
    assert_eq!(
        b().enable_refresh_token_grant()
            .access_token_lifetime(std::time::Duration::ZERO)
            .build()
            .err(),
        Some(BuildError::ZeroLifetime)
    );
    // Refresh tokens only come with another grant's tokens: alone, the refresh grant is useless.
    assert_eq!(
        b().enable_refresh_token_grant().build().err(),
        Some(BuildError::RefreshGrantAlone)
    );
    let ok = b()
        .enable_client_credentials_grant()
        .enable_refresh_token_grant()
        .issuer("https://auth.example.com")
        .build();
    assert_eq!(
        ok.ok()
            .and_then(|s| s.issuer().map(str::to_owned))
            .as_deref(),
        Some("https://auth.example.com")
    );
}

/// Every value anyone can send is bounded: a parameter up to 4096 bytes is read, a longer one
/// (or more than 64 parameters) is `invalid_request`, before any client is looked up.
#[tokio::test]
async fn parameters_are_bounded_in_length_and_number() {
    let f = fixture();
    let max = grantor::MAX_PARAMETER_LENGTH;
    // 4096 bytes: read (a wrong password, as far as the verifier can tell).
    let a = f
        .post(
            ("clientapp", "123456"),
            &format!(
                "grant_type=password&username=tom&password={}",
                "p".repeat(max)
            ),
        )
        .await;
    assert_eq!(a.error(), "invalid_grant", "{}", a.json);
    let calls = f.users.calls();
    for body in [
        format!(
            "grant_type=password&username=tom&password={}",
            "p".repeat(max + 1)
        ),
        // Decoded length counts: 2049 percent-encoded pairs of bytes are 4098 bytes.
        format!(
            "grant_type=password&username=tom&password={}",
            "%C3%A9".repeat(2049)
        ),
        format!("grant_type=password&{}=x", "n".repeat(max + 1)),
        format!(
            "grant_type=password&username=tom&password=p{}",
            "&x=1".repeat(grantor::MAX_PARAMETERS)
        ),
    ] {
        let a = f.post(("clientapp", "123456"), &body).await;
        assert_eq!(
            (a.status, a.error()),
            (400, "invalid_request"),
            "{}",
            a.json
        );
        a.assert_no_store();
    }
    assert_eq!(f.users.calls(), calls, "nothing reached the verifier");
    // The JSON variant too.
    let f = fixture_with(|b| b.accept_json_token_requests(true));
    let a = f
        .token(
            TokenRequest::new(format!(
                r#"{{"grant_type":"password","username":"tom","password":"{}"}}"#,
                "p".repeat(max + 1)
            ))
            .with_content_type("application/json")
            .with_authorization(basic("clientapp", "123456")),
        )
        .await;
    assert_eq!(
        (a.status, a.error()),
        (400, "invalid_request"),
        "{}",
        a.json
    );
}

/// `Debug`, the metadata document and the token endpoint read one list of enabled grants: with
/// every grant on, each of them names every grant type, and none is left out.
#[tokio::test]
async fn debug_and_metadata_name_every_enabled_grant() {
    let f = fixture_with(|b| b.enable_implicit_grant());
    let debug = format!("{:?}", f.server);
    let metadata: serde_json::Value =
        serde_json::from_slice(f.server.metadata().body()).expect("json");
    let listed: Vec<&str> = metadata["grant_types_supported"]
        .as_array()
        .expect("grant_types_supported")
        .iter()
        .filter_map(|g| g.as_str())
        .collect();
    for grant in grantor::GrantType::ALL {
        assert!(
            debug.contains(grant.as_str()),
            "{grant} missing from {debug}"
        );
        assert!(
            listed.contains(&grant.as_str()),
            "{grant} missing from {listed:?}"
        );
    }
    assert_eq!(listed.len(), grantor::GrantType::ALL.len());
}

/// RFC 6749 §3.2: parameters the endpoint does not know are ignored (once each; a repeated one
/// is still `invalid_request`).
#[tokio::test]
async fn unrecognized_parameters_are_ignored() {
    let f = fixture();
    let a = f
        .post(
            ("clientapp", "123456"),
            &format!("{LOGIN}&ui_locales=fr&claims=%7B%7D&x-trace=1&empty="),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
}
