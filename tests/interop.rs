//! Interoperability: the Rust `oauth2` crate (5.x) as a real client against the example router
//! in-process, for every flow it speaks.

mod in_process;

use in_process::*;
use oauth2::basic::BasicClient;
use oauth2::{
    AccessToken, ClientId, ClientSecret, IntrospectionUrl, ResourceOwnerPassword,
    ResourceOwnerUsername, RevocationUrl, Scope, StandardRevocableToken,
    TokenIntrospectionResponse, TokenResponse, TokenUrl,
};

/// A confidential client with every endpoint set.
fn confidential(
    id: &str,
    secret: &str,
) -> oauth2::basic::BasicClient<
    oauth2::EndpointNotSet, // authorization
    oauth2::EndpointNotSet, // device authorization
    oauth2::EndpointSet,    // introspection
    oauth2::EndpointSet,    // revocation
    oauth2::EndpointSet,    // token
> {
    BasicClient::new(ClientId::new(id.to_owned()))
        .set_client_secret(ClientSecret::new(secret.to_owned()))
        .set_token_uri(TokenUrl::new(format!("{ISSUER}/oauth/token")).expect("url"))
        // oauth2 insists on https for revocation (RFC 7009 §2); the in-process client ignores
        // scheme and host and routes by path.
        .set_revocation_url(
            RevocationUrl::new("https://127.0.0.1:8080/oauth/revoke".to_owned()).expect("url"),
        )
        .set_introspection_url(
            IntrospectionUrl::new(format!("{ISSUER}/oauth/introspect")).expect("url"),
        )
}

/// The user agent at `auth_url` (the client's authorization URL): it opens the login page, tom
/// signs in and approves; the parameters of the redirect back.
async fn tom_approves(
    app: &axum::Router,
    auth_url: &url::Url,
) -> std::collections::HashMap<String, String> {
    let path = format!(
        "{}?{}",
        auth_url.path(),
        auth_url.query().unwrap_or_default()
    );
    let form = get(app, &path).await;
    assert_eq!(form.status, 200, "{}", form.body);
    answer_form(app, &form, "tom", "123456", "approve")
        .await
        .location_params()
}

async fn active(app: &axum::Router, token: &AccessToken) -> bool {
    let http = oauth2_client(app);
    confidential("service", "service-secret")
        .introspect(token)
        .request_async(&http)
        .await
        .expect("introspection")
        .active()
}

#[tokio::test]
async fn client_credentials_then_introspection() {
    let app = app().await;
    let http = oauth2_client(&app);
    let service = confidential("service", "service-secret");
    let token = service
        .exchange_client_credentials()
        .add_scope(Scope::new("read".to_owned()))
        .request_async(&http)
        .await
        .expect("client credentials token");
    assert!(token.refresh_token().is_none());
    assert_eq!(token.expires_in().map(|d| d.as_secs()), Some(3600));

    let info = service
        .introspect(token.access_token())
        .request_async(&http)
        .await
        .expect("introspection");
    assert!(info.active());
    assert_eq!(info.client_id().map(|c| c.as_str()), Some("service"));
    assert_eq!(info.scopes().map(|s| s.len()), Some(1));
    assert_eq!(info.iss(), Some(ISSUER));
    assert!(info.sub().is_none());
}

#[tokio::test]
async fn password_refresh_and_revocation() {
    let app = app().await;
    let http = oauth2_client(&app);
    let clientapp = confidential("clientapp", "123456");
    let first = clientapp
        .exchange_password(
            &ResourceOwnerUsername::new("tom".to_owned()),
            &ResourceOwnerPassword::new("123456".to_owned()),
        )
        .request_async(&http)
        .await
        .expect("password token");
    assert_eq!(
        first.scopes().map(|s| s[0].as_str().to_owned()),
        Some("read".to_owned())
    );
    let refresh = first.refresh_token().expect("refresh token").clone();

    // Refresh: a new pair; the old refresh token is spent.
    let second = clientapp
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .expect("refreshed");
    assert_ne!(
        second.access_token().secret(),
        first.access_token().secret()
    );
    let replay = clientapp
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await;
    assert!(replay.is_err(), "a spent refresh token is refused");

    // That replay revoked the whole family.
    assert!(!active(&app, second.access_token()).await);

    // Revocation of a fresh grant's refresh token ends its access token too.
    let third = clientapp
        .exchange_password(
            &ResourceOwnerUsername::new("tom".to_owned()),
            &ResourceOwnerPassword::new("123456".to_owned()),
        )
        .request_async(&http)
        .await
        .expect("password token");
    assert!(active(&app, third.access_token()).await);
    clientapp
        .revoke_token(StandardRevocableToken::RefreshToken(
            third.refresh_token().expect("refresh").clone(),
        ))
        .expect("revocation configured")
        .request_async(&http)
        .await
        .expect("revoked");
    assert!(!active(&app, third.access_token()).await);

    // Revoking an unknown token is fine.
    clientapp
        .revoke_token(StandardRevocableToken::AccessToken(AccessToken::new(
            "nope".to_owned(),
        )))
        .expect("revocation configured")
        .request_async(&http)
        .await
        .expect("unknown tokens revoke quietly");
}

#[tokio::test]
async fn wrong_credentials_are_errors_the_client_understands() {
    let app = app().await;
    let http = oauth2_client(&app);
    let wrong = confidential("clientapp", "wrong");
    let err = wrong
        .exchange_client_credentials()
        .request_async(&http)
        .await
        .expect_err("refused");
    match err {
        oauth2::RequestTokenError::ServerResponse(r) => {
            assert_eq!(
                r.error(),
                &oauth2::basic::BasicErrorResponseType::InvalidClient
            )
        }
        other => panic!("expected an invalid_client response, got {other:?}"),
    }
}

/// The `oauth2` crate's client, over the example router in-process.
#[tokio::test]
async fn the_oauth2_crate_runs_code_with_pkce() {
    use oauth2::basic::BasicClient;
    use oauth2::{
        AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope,
        TokenResponse, TokenUrl,
    };

    let app = app().await;
    let client = BasicClient::new(ClientId::new("spa".to_owned()))
        .set_auth_uri(AuthUrl::new(format!("{ISSUER}/oauth/authorize")).expect("url"))
        .set_token_uri(TokenUrl::new(format!("{ISSUER}/oauth/token")).expect("url"))
        .set_redirect_uri(RedirectUrl::new(CALLBACK.to_owned()).expect("url"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".to_owned()))
        .add_scope(Scope::new("write".to_owned()))
        .set_pkce_challenge(challenge)
        .url();

    // The user agent: open the page, sign in, approve.
    let p = tom_approves(&app, &auth_url).await;
    assert_eq!(p.get("state"), Some(state.secret()));
    assert_eq!(p.get("iss").map(String::as_str), Some(ISSUER));

    // The client: exchange the code, sending its verifier.
    let http = oauth2_client(&app);
    let token = client
        .exchange_code(AuthorizationCode::new(p.get("code").expect("code").clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("token response");
    assert_eq!(token.scopes().map(|s| s.len()), Some(2));
    assert!(token.refresh_token().is_some());

    // And the token opens the protected resource.
    let users = call(
        &app,
        http::Request::get("/api/users")
            .header(
                "authorization",
                format!("Bearer {}", token.access_token().secret()),
            )
            .body(axum::body::Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(users.status, 200);
    assert!(users.body.contains("adolfo"));
}

/// The `oauth2` crate runs the code flow for the `api` client, whose access tokens are JWTs
/// (RFC 9068), naming a resource (RFC 8707) on both requests; `jsonwebtoken` checks the JWT
/// against the server's published keys; a refresh keeps the resource; introspection agrees.
#[tokio::test]
async fn the_oauth2_crate_gets_a_jwt_for_a_resource() {
    use oauth2::{
        AuthUrl, AuthorizationCode, CsrfToken, PkceCodeChallenge, RedirectUrl, RefreshToken,
    };

    const RESOURCE: &str = "http://127.0.0.1:8080/api";
    let app = app().await;
    let client = confidential("api", "api-secret")
        .set_auth_uri(AuthUrl::new(format!("{ISSUER}/oauth/authorize")).expect("url"))
        .set_redirect_uri(RedirectUrl::new(CALLBACK.to_owned()).expect("url"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".to_owned()))
        .add_extra_param("resource", RESOURCE)
        .set_pkce_challenge(challenge)
        .url();
    let code = tom_approves(&app, &auth_url).await["code"].clone();

    let http = oauth2_client(&app);
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .add_extra_param("resource", RESOURCE)
        .request_async(&http)
        .await
        .expect("token response");
    let jwt = token.access_token().secret().clone();

    // Checked by an independent library against /oauth/jwks.
    let jwks = get(&app, "/oauth/jwks").await;
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&jwks.body).expect("a JWK Set");
    let header = jsonwebtoken::decode_header(&jwt).expect("a JWS");
    let key = jsonwebtoken::DecodingKey::from_jwk(
        set.find(header.kid.as_deref().expect("kid"))
            .expect("published"),
    )
    .expect("a key");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[RESOURCE]);
    validation.set_issuer(&[ISSUER]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(&jwt, &key, &validation)
        .expect("a valid JWT")
        .claims;
    assert_eq!(claims["sub"], "user-tom");
    assert_eq!(claims["client_id"], "api");

    // The refresh keeps the resource; introspection names it.
    let refreshed = client
        .exchange_refresh_token(&RefreshToken::new(
            token
                .refresh_token()
                .expect("a refresh token")
                .secret()
                .clone(),
        ))
        .request_async(&http)
        .await
        .expect("refresh");
    let info = confidential("service", "service-secret")
        .introspect(refreshed.access_token())
        .request_async(&http)
        .await
        .expect("introspection");
    assert!(info.active());
    assert_eq!(
        info.aud().map(|a| a.as_slice()),
        Some([RESOURCE.to_owned()].as_slice())
    );
}
