//! Driving the example's router in-process: requests, pages, and an HTTP client for the
//! `oauth2` crate.
#![allow(dead_code)]

#[allow(dead_code)]
#[path = "../../examples/axum_server.rs"]
pub mod example;

use std::collections::HashMap;

use axum::body::Body;
use axum::Router;
use tower::ServiceExt as _;

pub const ISSUER: &str = "http://127.0.0.1:8080";
pub const CALLBACK: &str = "http://localhost:3000/callback";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub struct Page {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The value of a hidden input.
    pub fn hidden(&self, name: &str) -> String {
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
    pub fn cookie(&self) -> String {
        let set = self.header("set-cookie").expect("set-cookie");
        set.split(';').next().expect("cookie").to_owned()
    }
    pub fn location_params(&self) -> HashMap<String, String> {
        let location = self.header("location").expect("location");
        let url = url::Url::parse(location).expect("absolute location");
        url.query_pairs().into_owned().collect()
    }
    pub fn assert_page_headers(&self) {
        assert_eq!(self.header("x-frame-options"), Some("DENY"));
        assert!(self
            .header("content-security-policy")
            .is_some_and(|v| v.contains("frame-ancestors 'none'")));
        assert!(self
            .header("content-type")
            .is_some_and(|v| v.starts_with("text/html")));
    }
}

pub async fn call(app: &Router, request: http::Request<Body>) -> Page {
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

pub async fn get(app: &Router, uri: &str) -> Page {
    call(
        app,
        http::Request::get(uri)
            .body(Body::empty())
            .expect("request"),
    )
    .await
}

pub async fn post(app: &Router, uri: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Page {
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

pub async fn app() -> Router {
    example::router(
        example::demo_server(ISSUER, None)
            .await
            .expect("demo server"),
    )
}

pub fn authorize_uri(client: &str, state: &str) -> String {
    format!(
        "/oauth/authorize?response_type=code&client_id={client}&redirect_uri={}&state={state}&code_challenge={CHALLENGE}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect::<String>()
    )
}

/// Answers an open login form with a one-time code too.
pub async fn answer_form_with_otp(
    app: &Router,
    form: &Page,
    username: &str,
    password: &str,
    otp: &str,
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
            ("otp", otp),
            ("decision", decision),
        ],
    )
    .await
}

/// The code alice's authenticator app shows now (her TOTP secret is the example's).
#[allow(clippy::disallowed_methods)] // the server's clock is the real one: so is her phone's
pub fn alice_code() -> String {
    grantor::Totp::from_base32(example::ALICE_TOTP_SECRET)
        .expect("alice's secret")
        .generate(time::OffsetDateTime::now_utc())
}

/// A device authorization request as the `cli` client: `(device_code, user_code)`.
pub async fn start_device(app: &Router) -> (String, String) {
    let page = post(
        app,
        "/oauth/device_authorization",
        None,
        &[("client_id", "cli")],
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let json: serde_json::Value = serde_json::from_str(&page.body).expect("json");
    (
        json["device_code"]
            .as_str()
            .expect("device_code")
            .to_owned(),
        json["user_code"].as_str().expect("user_code").to_owned(),
    )
}

/// One poll of the token endpoint by `cli`, as JSON with the status.
pub async fn poll_device(app: &Router, device_code: &str) -> (u16, serde_json::Value) {
    let page = post(
        app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
            ("client_id", "cli"),
        ],
    )
    .await;
    let json = serde_json::from_str(&page.body).expect("json");
    (page.status, json)
}

/// Answers an open `/device` form: its CSRF cookie and field, and `fields`.
pub async fn answer_device(app: &Router, form: &Page, fields: &[(&str, &str)]) -> Page {
    let csrf = form.hidden("csrf_token");
    let mut all = vec![("csrf_token", csrf.as_str())];
    all.extend_from_slice(fields);
    post(app, "/device", Some(&form.cookie()), &all).await
}

/// Answers an open form.
pub async fn answer_form(
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
pub async fn submit(app: &Router, username: &str, password: &str, decision: &str) -> (Page, Page) {
    let form = get(app, &authorize_uri("spa", "st8")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let answer = answer_form(app, &form, username, password, decision).await;
    (form, answer)
}

/// An HTTP client for the `oauth2` crate that calls `app` in-process.
pub fn oauth2_client(
    app: &Router,
) -> impl Fn(
    oauth2::HttpRequest,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, std::io::Error>> + Send>,
> + '_ {
    move |request: oauth2::HttpRequest| {
        let app = app.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let request = http::Request::from_parts(parts, Body::from(body));
            let Ok(response) = app.oneshot(request).await;
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20)
                .await
                .map_err(std::io::Error::other)?;
            Ok(http::Response::from_parts(parts, bytes.to_vec()))
        })
    }
}
