//! Authorization server metadata (RFC 8414).

mod common;

use common::*;
use grantor::EndpointPaths;
use serde_json::json;

#[tokio::test]
async fn the_document_follows_the_settings() {
    let f = fixture_with(|b| {
        b.enable_implicit_grant()
            .scopes_supported("read write admin".parse().expect("scope"))
    });
    let m = answer(f.server.metadata());
    assert_eq!(m.status, 200);
    assert_eq!(m.header("Content-Type"), Some("application/json"));
    let j = &m.json;
    assert_eq!(j["issuer"], ISSUER);
    assert_eq!(
        j["authorization_endpoint"],
        format!("{ISSUER}/oauth/authorize")
    );
    assert_eq!(j["token_endpoint"], format!("{ISSUER}/oauth/token"));
    assert_eq!(j["revocation_endpoint"], format!("{ISSUER}/oauth/revoke"));
    assert_eq!(
        j["introspection_endpoint"],
        format!("{ISSUER}/oauth/introspect")
    );
    assert_eq!(
        j["grant_types_supported"],
        json!([
            "authorization_code",
            "implicit",
            "password",
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
            "http://auth0.com/oauth/grant-type/mfa-otp"
        ])
    );
    assert_eq!(
        j["device_authorization_endpoint"],
        format!("{ISSUER}/oauth/device_authorization")
    );
    assert_eq!(j["response_types_supported"], json!(["code", "token"]));
    assert_eq!(j["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        j["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(
        j["introspection_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(j["scopes_supported"], json!(["admin", "read", "write"]));
    assert_eq!(j["authorization_response_iss_parameter_supported"], true);
}

#[tokio::test]
async fn paths_and_options_change_the_document() {
    let f = fixture_with(|b| {
        b.allow_plain_pkce(true).endpoint_paths(EndpointPaths {
            token: "/v2/token".into(),
            ..EndpointPaths::default()
        })
    });
    let j = answer(f.server.metadata()).json;
    assert_eq!(j["token_endpoint"], format!("{ISSUER}/v2/token"));
    assert_eq!(
        j["code_challenge_methods_supported"],
        json!(["S256", "plain"])
    );
    assert_eq!(j["response_types_supported"], json!(["code"]));
    assert!(j.get("scopes_supported").is_none());

    // Without the authorization endpoint, nothing about it is claimed.
    use grantor::{AuthorizationServer, MemoryTokenStore};
    use std::sync::Arc;
    let server =
        AuthorizationServer::builder(Arc::new(clients()), Arc::new(MemoryTokenStore::new()))
            .enable_client_credentials_grant()
            .issuer(ISSUER)
            .build()
            .expect("server");
    let j = answer(server.metadata()).json;
    assert!(j.get("authorization_endpoint").is_none());
    assert!(j.get("device_authorization_endpoint").is_none());
    assert!(j
        .get("authorization_response_iss_parameter_supported")
        .is_none());
    assert_eq!(j["grant_types_supported"], json!(["client_credentials"]));
    assert_eq!(j["response_types_supported"], json!([]));
}

/// `jwks_uri` (RFC 8414 §2) names the JWK Set when the server signs, and `jwks` answers it;
/// without a signer there is neither.
#[tokio::test]
async fn the_jwk_set_is_named_only_when_the_server_signs() {
    use std::sync::Arc;

    let plain = fixture();
    assert!(answer(plain.server.metadata())
        .json
        .get("jwks_uri")
        .is_none());
    assert_eq!(plain.server.jwks().status(), 404);

    let keys = Arc::new(grantor::LocalKeys::new());
    keys.generate("k1", grantor::JwsAlgorithm::EdDsa)
        .expect("a key");
    let f = fixture_with(move |b| {
        b.token_signer(keys).endpoint_paths(EndpointPaths {
            jwks: "/keys.json".into(),
            ..EndpointPaths::default()
        })
    });
    let m = answer(f.server.metadata());
    assert_eq!(m.json["jwks_uri"], format!("{ISSUER}/keys.json"));
    let set = answer(f.server.jwks());
    assert_eq!(set.status, 200);
    assert_eq!(set.json["keys"][0]["kid"], "k1");
    assert_eq!(set.json["keys"][0]["kty"], "OKP");
}
