//! The example's login and consent page, driven in-process, and the Rust `oauth2` crate running
//! the code + PKCE flow against it as a real client would.

#[allow(dead_code)]
#[path = "../examples/axum_server.rs"]
mod example;

use std::collections::HashMap;

use axum::body::Body;
use axum::Router;
use tower::ServiceExt as _;

const ISSUER: &str = "http://127.0.0.1:8080";
const CALLBACK: &str = "http://localhost:3000/callback";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

struct Page {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The value of a hidden input.
    fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .map(|i| i + marker.len())
            .expect(name);
        let end = self.body[start..].find('"').expect("closing quote") + start;
        self.body[start..end].to_owned()
    }
    /// The cookie the page set, as `name=value`.
    fn cookie(&self) -> String {
        let set = self.header("set-cookie").expect("set-cookie");
        set.split(';').next().expect("cookie").to_owned()
    }
    fn location_params(&self) -> HashMap<String, String> {
        let location = self.header("location").expect("location");
        let url = url::Url::parse(location).expect("absolute location");
        url.query_pairs().into_owned().collect()
    }
    fn assert_page_headers(&self) {
        assert_eq!(self.header("x-frame-options"), Some("DENY"));
        assert!(self
            .header("content-security-policy")
            .is_some_and(|v| v.contains("frame-ancestors 'none'")));
        assert!(self
            .header("content-type")
            .is_some_and(|v| v.starts_with("text/html")));
    }
}

async fn call(app: &Router, request: http::Request<Body>) -> Page {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(app: &Router, uri: &str) -> Page {
    call(
        app,
        http::Request::get(uri)
            .body(Body::empty())
            .expect("request"),
    )
    .await
}

async fn post(app: &Router, uri: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Page {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut request =
        http::Request::post(uri).header("content-type", "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    call(app, request.body(Body::from(body)).expect("request")).await
}

async fn app() -> Router {
    example::router(
        example::demo_server(ISSUER, None)
            .await
            .expect("demo server"),
    )
}

fn authorize_uri(client: &str, state: &str) -> String {
    format!(
        "/oauth/authorize?response_type=code&client_id={client}&redirect_uri={}&state={state}&code_challenge={CHALLENGE}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect::<String>()
    )
}

/// Answers an open form.
async fn answer_form(
    app: &Router,
    form: &Page,
    username: &str,
    password: &str,
    decision: &str,
) -> Page {
    post(
        app,
        "/oauth/authorize",
        Some(&form.cookie()),
        &[
            ("request_id", &form.hidden("request_id")),
            ("csrf_token", &form.hidden("csrf_token")),
            ("username", username),
            ("password", password),
            ("decision", decision),
        ],
    )
    .await
}

/// Opens the form and answers it.
async fn submit(app: &Router, username: &str, password: &str, decision: &str) -> (Page, Page) {
    let form = get(app, &authorize_uri("spa", "st8")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let answer = answer_form(app, &form, username, password, decision).await;
    (form, answer)
}

#[tokio::test]
async fn the_form_has_the_contracted_fields_and_headers() {
    let app = app().await;
    let form = get(&app, &authorize_uri("spa", "st8")).await;
    assert_eq!(form.status, 200);
    form.assert_page_headers();
    for needle in [
        "<form method=\"post\" action=\"/oauth/authorize\"",
        "name=\"username\"",
        "name=\"password\"",
        "name=\"decision\" value=\"approve\"",
        "name=\"decision\" value=\"deny\"",
        "name=\"csrf_token\"",
    ] {
        assert!(
            form.body.contains(needle),
            "{needle} missing from {}",
            form.body
        );
    }
    assert!(form
        .header("set-cookie")
        .is_some_and(|c| c.contains("HttpOnly") && c.contains("SameSite=Strict")));
}

#[tokio::test]
async fn approving_redirects_with_code_state_and_iss_and_the_code_works() {
    let app = app().await;
    let (_, answer) = submit(&app, "tom", "123456", "approve").await;
    assert_eq!(answer.status, 302, "{}", answer.body);
    let location = answer.header("location").expect("location");
    assert!(location.starts_with(&format!("{CALLBACK}?")), "{location}");
    let p = answer.location_params();
    assert_eq!(p.get("state").map(String::as_str), Some("st8"));
    assert_eq!(p.get("iss").map(String::as_str), Some(ISSUER));
    let code = p.get("code").expect("code");
    let token = post(
        &app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("client_id", "spa"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(token.status, 200, "{}", token.body);
    assert!(token.body.contains("\"token_type\":\"Bearer\""));
}

#[tokio::test]
async fn denying_redirects_with_access_denied() {
    let app = app().await;
    let (_, answer) = submit(&app, "", "", "deny").await;
    assert_eq!(answer.status, 302);
    let p = answer.location_params();
    assert_eq!(p.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(p.get("state").map(String::as_str), Some("st8"));
    assert_eq!(p.get("iss").map(String::as_str), Some(ISSUER));
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_and_issues_nothing() {
    let app = app().await;
    let (form, answer) = submit(&app, "tom", "wrong", "approve").await;
    assert_eq!(answer.status, 200);
    assert!(answer.header("location").is_none());
    answer.assert_page_headers();
    assert!(
        answer.body.contains("Wrong username or password."),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("name=\"password\""));
    // The same request can still be answered, with the right password.
    let again = answer_form(&app, &form, "tom", "123456", "approve").await;
    assert_eq!(again.status, 302);
    assert!(again.location_params().contains_key("code"));
}

#[tokio::test]
async fn the_login_page_shares_the_password_grants_attempt_limiter() {
    let app = app().await;
    for _ in 0..5 {
        let (_, answer) = submit(&app, "admin", "wrong", "approve").await;
        assert!(answer.body.contains("Wrong username or password."));
    }
    let (_, answer) = submit(&app, "admin", "123456", "approve").await;
    assert_eq!(answer.status, 200);
    assert!(
        answer.body.contains("Too many failed sign-in attempts"),
        "{}",
        answer.body
    );
    // And the token endpoint counts the same failures.
    let token = post(
        &app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", "123456"),
            ("client_id", "clientapp"),
            ("client_secret", "123456"),
        ],
    )
    .await;
    assert!(token.body.contains("too many"), "{}", token.body);
}

#[tokio::test]
async fn a_bad_csrf_token_or_stale_request_is_an_error_page() {
    let app = app().await;
    let form = get(&app, &authorize_uri("spa", "st8")).await;
    let id = form.hidden("request_id");
    let cases = [
        (Some(form.cookie()), "forged".to_owned(), id.clone()),
        (None, form.hidden("csrf_token"), id.clone()),
        (
            Some(form.cookie()),
            form.hidden("csrf_token"),
            "made-up".to_owned(),
        ),
    ];
    for (cookie, csrf, request_id) in cases {
        let page = post(
            &app,
            "/oauth/authorize",
            cookie.as_deref(),
            &[
                ("request_id", &request_id),
                ("csrf_token", &csrf),
                ("username", "tom"),
                ("password", "123456"),
                ("decision", "approve"),
            ],
        )
        .await;
        assert_eq!(page.status, 400, "{}", page.body);
        assert!(page.header("location").is_none());
        page.assert_page_headers();
    }
}

#[tokio::test]
async fn untrusted_requests_get_an_html_error_page() {
    let app = app().await;
    for uri in [
        "/oauth/authorize?response_type=code&client_id=nobody".to_owned(),
        authorize_uri("spa", "s").replace("localhost%3A3000", "evil.example"),
        "/oauth/authorize?response_type=code".to_owned(),
    ] {
        let page = get(&app, &uri).await;
        assert_eq!(page.status, 400, "{uri}");
        assert!(page.header("location").is_none());
        page.assert_page_headers();
    }
    // A trusted error goes back to the client.
    let page = get(
        &app,
        &authorize_uri("spa", "s").replace("code_challenge=", "x="),
    )
    .await;
    assert_eq!(page.status, 302);
    assert_eq!(
        page.location_params().get("error").map(String::as_str),
        Some("invalid_request")
    );
}

#[test]
fn reflected_values_are_escaped() {
    let request = grantor::PendingAuthorization {
        client_id: grantor::ClientId::new("<script>alert(1)</script>"),
        response_type: grantor::ResponseType::Code,
        redirect_uri: grantor::RedirectUri::new(CALLBACK),
        redirect_uri_in_request: true,
        scope: "read".parse().expect("scope"),
        state: None,
        code_challenge: None,
        expires_at: time::OffsetDateTime::UNIX_EPOCH,
    };
    let html = example::login_form(&request, "\"><b>", "x", Some("<i>message</i>")).into_string();
    assert!(
        !html.contains("<script>") && !html.contains("<b>") && !html.contains("<i>"),
        "{html}"
    );
    assert!(html.contains("&lt;script&gt;"));
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
    let path = format!(
        "{}?{}",
        auth_url.path(),
        auth_url.query().unwrap_or_default()
    );
    let form = get(&app, &path).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let answer = answer_form(&app, &form, "tom", "123456", "approve").await;
    let p = answer.location_params();
    assert_eq!(p.get("state"), Some(state.secret()));
    assert_eq!(p.get("iss").map(String::as_str), Some(ISSUER));

    // The client: exchange the code, sending its verifier.
    let http = |request: oauth2::HttpRequest| {
        let app = app.clone();
        async move {
            let (parts, body) = request.into_parts();
            let request = http::Request::from_parts(parts, Body::from(body));
            let Ok(response) = app.oneshot(request).await;
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20)
                .await
                .map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>(http::Response::from_parts(parts, bytes.to_vec()))
        }
    };
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
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(users.status, 200);
    assert!(users.body.contains("adolfo"));
}

#[tokio::test]
async fn over_https_the_csrf_cookie_is_host_only_and_secure() {
    let app = example::router(
        example::demo_server("https://auth.example.com", None)
            .await
            .expect("demo server"),
    );
    let form = get(&app, &authorize_uri("spa", "st8")).await;
    let set = form.header("set-cookie").expect("set-cookie");
    assert!(set.starts_with("__Host-csrf_"), "{set}");
    assert!(
        set.contains("; Path=/;") && set.contains("Secure") && set.contains("HttpOnly"),
        "{set}"
    );
    let answer = answer_form(&app, &form, "tom", "123456", "approve").await;
    assert_eq!(answer.status, 302, "{}", answer.body);
}
