//! The example server's JWT access tokens and resources (in-process), as its contract says: the
//! `api` client's JWTs (RFC 9068) checked against `/oauth/jwks` by an independent library, the
//! two resources (RFC 8707) as the tokens' audience, and `/api/users`, which belongs to
//! `<issuer>/api` (RFC 9728) and refuses tokens meant for another API.

mod in_process;

use in_process::*;
use serde_json::Value;

const OWN_API: &str = "http://127.0.0.1:8080/api";
const OTHER_API: &str = "https://api.example.com";
const METADATA_URL: &str = "http://127.0.0.1:8080/.well-known/oauth-protected-resource/api";

async fn token(app: &axum::Router, form: &[(&str, &str)]) -> (u16, Value) {
    let page = post(app, "/oauth/token", None, form).await;
    let json = serde_json::from_str(&page.body).expect("json");
    (page.status, json)
}

/// A client credentials token for `client`, with `extra` parameters.
async fn client_token(app: &axum::Router, client: (&str, &str), extra: &[(&str, &str)]) -> Value {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", client.0),
        ("client_secret", client.1),
    ];
    form.extend_from_slice(extra);
    let (status, json) = token(app, &form).await;
    assert_eq!(status, 200, "{json}");
    json
}

/// The claims of `jwt`, checked by `jsonwebtoken` against the server's `/oauth/jwks` for
/// `audience`.
async fn verified_claims(app: &axum::Router, jwt: &str, audience: &str) -> Value {
    let jwks = get(app, "/oauth/jwks").await;
    assert_eq!(jwks.status, 200, "{}", jwks.body);
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&jwks.body).expect("a JWK Set");
    let header = jsonwebtoken::decode_header(jwt).expect("a JWS");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = set
        .find(header.kid.as_deref().expect("kid"))
        .expect("published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("a key");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .expect("a valid JWT")
        .claims
}

/// `GET /api/users` with `token`.
async fn users(app: &axum::Router, token: Option<&str>) -> Page {
    let mut request = http::Request::get("/api/users");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    call(
        app,
        request.body(axum::body::Body::empty()).expect("request"),
    )
    .await
}

#[tokio::test]
async fn the_api_client_gets_jwts_for_the_issuers_api_by_default() {
    let app = app().await;
    let metadata = get(&app, "/.well-known/oauth-authorization-server").await;
    let metadata: Value = serde_json::from_str(&metadata.body).expect("json");
    assert_eq!(metadata["jwks_uri"], format!("{ISSUER}/oauth/jwks"));

    let answer = client_token(&app, ("api", "api-secret"), &[]).await;
    let jwt = answer["access_token"].as_str().expect("a token");
    let claims = verified_claims(&app, jwt, OWN_API).await;
    assert_eq!(claims["aud"], OWN_API, "the default resource (RFC 9068 §3)");
    assert_eq!(claims["sub"], "api");
    assert_eq!(claims["client_id"], "api");
    assert_eq!(claims["scope"], "read");
    // /api/users takes it; introspection names its audience.
    let page = users(&app, Some(jwt)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        introspect(&app, "service", "service-secret", jwt).await["aud"],
        OWN_API
    );

    // Other clients' tokens stay opaque.
    let opaque = client_token(&app, ("service", "service-secret"), &[]).await;
    assert_eq!(
        opaque["access_token"]
            .as_str()
            .expect("a token")
            .split('.')
            .count(),
        1
    );
}

#[tokio::test]
async fn a_token_for_the_other_api_is_refused_by_api_users() {
    let app = app().await;
    for client in [("api", "api-secret"), ("service", "service-secret")] {
        let other = client_token(&app, client, &[("resource", OTHER_API)]).await;
        let other = other["access_token"].as_str().expect("a token").to_owned();
        assert_eq!(
            introspect(&app, "service", "service-secret", &other).await["aud"],
            OTHER_API
        );
        let refused = users(&app, Some(&other)).await;
        assert_eq!(refused.status, 401, "{}", refused.body);
        let challenge = refused.header("www-authenticate").expect("a challenge");
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
        assert!(
            challenge.contains(&format!(r#"resource_metadata="{METADATA_URL}""#)),
            "{challenge}"
        );

        // Asked for the issuer's API, it is taken.
        let own = client_token(&app, client, &[("resource", OWN_API)]).await;
        let page = users(&app, own["access_token"].as_str()).await;
        assert_eq!(page.status, 200, "{}", page.body);
    }
    // An opaque token asked for no resource is taken too.
    let plain = client_token(&app, ("service", "service-secret"), &[]).await;
    assert_eq!(
        users(&app, plain["access_token"].as_str()).await.status,
        200
    );
    // The JWT for the other API checks against the JWK Set for that audience.
    let other = client_token(&app, ("api", "api-secret"), &[("resource", OTHER_API)]).await;
    let claims = verified_claims(
        &app,
        other["access_token"].as_str().expect("jwt"),
        OTHER_API,
    )
    .await;
    assert_eq!(claims["aud"], OTHER_API);
}

#[tokio::test]
async fn api_users_names_its_resource_metadata() {
    let app = app().await;
    let page = get(&app, "/.well-known/oauth-protected-resource/api").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let document: Value = serde_json::from_str(&page.body).expect("json");
    assert_eq!(document["resource"], OWN_API);
    assert_eq!(
        document["authorization_servers"],
        serde_json::json!([ISSUER])
    );
    let scopes = document["scopes_supported"].as_array().expect("scopes");
    assert!(scopes.contains(&Value::from("read")), "{document}");
    assert_eq!(
        document["bearer_methods_supported"],
        serde_json::json!(["header", "query"])
    );

    // A request without a token is told where to look (RFC 9728 §5.1).
    let refused = users(&app, None).await;
    assert_eq!(refused.status, 401);
    let challenge = refused.header("www-authenticate").expect("a challenge");
    assert!(
        challenge.contains(&format!(r#"resource_metadata="{METADATA_URL}""#)),
        "{challenge}"
    );
}

#[tokio::test]
async fn an_unknown_resource_is_invalid_target() {
    let app = app().await;
    for resource in [
        "https://evil.example",
        "not-a-uri",
        "https://api.example.com#x",
    ] {
        let (status, json) = token(
            &app,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "api"),
                ("client_secret", "api-secret"),
                ("resource", resource),
            ],
        )
        .await;
        assert_eq!(
            (status, json["error"].as_str()),
            (400, Some("invalid_target")),
            "{json}"
        );
    }
    // At the authorization endpoint, with a trusted redirect URI: back to the client.
    let page = get(
        &app,
        &format!(
            "/oauth/authorize?response_type=code&client_id=api&state=s&resource={}",
            url::form_urlencoded::byte_serialize(b"https://evil.example").collect::<String>()
        ),
    )
    .await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(page.location_params()["error"], "invalid_target");
}

/// `SIGNING_KEY_FILE`: copies of the server starting together on a missing file make one key
/// between them, written whole and readable by its owner only; a restart reads it back; the
/// key's id is its JWK thumbprint (RFC 7638), so they all publish the same JWK Set.
#[test]
fn copies_starting_together_share_one_signing_key() {
    use grantor::TokenSigner as _;

    let dir = std::env::temp_dir().join(format!("grantor-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let path = dir.join("signing.der");
    let _ = std::fs::remove_file(&path);
    let sets: Vec<grantor::Jwks> = std::thread::scope(|scope| {
        let copies: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    example::signing_keys_from(Some(&path))
                        .expect("keys")
                        .jwks()
                })
            })
            .collect();
        copies
            .into_iter()
            .map(|c| c.join().expect("joined"))
            .collect()
    });
    for set in &sets {
        assert_eq!(set, &sets[0]);
    }
    let key = &sets[0].keys[0];
    assert_eq!(Some(key.kid.clone()), key.thumbprint());
    let restarted = example::signing_keys_from(Some(&path))
        .expect("keys")
        .jwks();
    assert_eq!(restarted, sets[0]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path)
            .expect("the file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Nothing but the key file is left in the folder.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .expect("the folder")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    assert_eq!(names, ["signing.der"]);
    let _ = std::fs::remove_dir_all(&dir);
    // Without a file, each start makes a key of its own.
    let a = example::signing_keys_from(None).expect("keys").jwks();
    let b = example::signing_keys_from(None).expect("keys").jwks();
    assert_ne!(a, b);
}
