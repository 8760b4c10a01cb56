//! Protected resource metadata (RFC 9728): the document, where it is served, and the
//! `resource_metadata` parameter of the challenges that point to it.

mod common;

use common::*;
use grantor::{ProtectedResourceMetadata, ResourceRequest, Scope};

#[test]
fn the_document_and_where_it_lives() {
    let metadata = ProtectedResourceMetadata::new("https://api.example.com/reports")
        .with_authorization_servers(["https://auth.example.com"])
        .with_scopes_supported("reports:read reports:write".parse().expect("scope"))
        .with_resource_name("Reports");
    let response = metadata.into_response();
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_slice(response.body()).expect("JSON");
    assert_eq!(
        json,
        serde_json::json!({
            "resource": "https://api.example.com/reports",
            "authorization_servers": ["https://auth.example.com"],
            "scopes_supported": ["reports:read", "reports:write"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Reports",
        })
    );
    // §3.1: the well-known part goes between the host and the resource's path.
    assert_eq!(
        metadata.well_known_url().as_deref(),
        Some("https://api.example.com/.well-known/oauth-protected-resource/reports")
    );
    for (resource, path) in [
        (
            "https://api.example.com",
            Some("/.well-known/oauth-protected-resource"),
        ),
        (
            "https://api.example.com/",
            Some("/.well-known/oauth-protected-resource"),
        ),
        (
            "http://127.0.0.1:8080/api",
            Some("/.well-known/oauth-protected-resource/api"),
        ),
        ("https://api.example.com/a?x=1", None),
        ("https://api.example.com/a#f", None),
        ("not a url", None),
    ] {
        assert_eq!(
            ProtectedResourceMetadata::new(resource)
                .well_known_path()
                .as_deref(),
            path,
            "{resource}"
        );
    }
    // Only RFC 6750's methods are listed.
    let methods = ProtectedResourceMetadata::new("https://api.example.com")
        .with_bearer_methods(["header", "query", "cookie"])
        .bearer_methods_supported;
    assert_eq!(methods, ["header", "query"]);
}

/// RFC 9728 §5.1: every challenge names where the metadata is, so that a refused client learns
/// which authorization server to ask.
#[tokio::test]
async fn the_challenges_name_the_metadata() {
    let f = fixture();
    let url = "https://api.example.com/.well-known/oauth-protected-resource/reports";
    let validator = f.server.bearer_validator().with_resource_metadata(url);
    let read: Scope = "read".parse().expect("scope");
    let admin: Scope = "admin".parse().expect("scope");
    let token = f.login().await.str("access_token");
    let named = format!("resource_metadata=\"{url}\"");
    for (request, scope, status) in [
        (ResourceRequest::new(), &read, 401),
        (
            ResourceRequest::new().with_authorization("Bearer unknown"),
            &read,
            401,
        ),
        (
            ResourceRequest::new().with_authorization(format!("Bearer {token}")),
            &admin,
            403,
        ),
    ] {
        let refusal = validator
            .validate(&request, scope)
            .await
            .expect_err("refused");
        assert_eq!(refusal.status(), status);
        let challenge = refusal.challenge().expect("a challenge");
        assert!(challenge.contains(&named), "{challenge}");
    }
    // No token at all: the bare challenge, but for the pointer (RFC 6750 §3 gives no error).
    let bare = validator
        .validate(&ResourceRequest::new(), &read)
        .await
        .expect_err("refused");
    assert_eq!(
        bare.challenge().as_deref(),
        Some(format!("Bearer {named}").as_str())
    );
    // A URL that cannot be quoted is not named.
    let odd = f
        .server
        .bearer_validator()
        .with_resource_metadata("https://api.example.com/\"x");
    let refusal = odd
        .validate(&ResourceRequest::new(), &read)
        .await
        .expect_err("refused");
    assert_eq!(refusal.challenge().as_deref(), Some("Bearer"));
}
