//! Driving the example's router in-process: requests, pages, and an HTTP client for the
//! `oauth2` crate.
#![allow(dead_code)]

#[allow(dead_code)]
#[path = "../../examples/axum_server.rs"]
pub mod example;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
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

/// Where a request comes from when a test names no peer: `serve` gives every request its
/// caller's address, and the pages refuse a request without one.
pub const DEFAULT_PEER: &str = "198.51.100.1:40000";

pub async fn call(app: &Router, mut request: http::Request<Body>) -> Page {
    if request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_none()
    {
        let peer: SocketAddr = DEFAULT_PEER.parse().expect("socket address");
        request.extensions_mut().insert(ConnectInfo(peer));
    }
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
    post_as(app, uri, cookie, form, None).await
}

/// `GET uri` as if from `peer` (what `serve` gives each request).
pub async fn get_from(app: &Router, uri: &str, peer: &str) -> Page {
    let peer: SocketAddr = peer.parse().expect("socket address");
    let mut request = http::Request::get(uri)
        .body(Body::empty())
        .expect("request");
    request.extensions_mut().insert(ConnectInfo(peer));
    call(app, request).await
}

/// A form POST, as if from `peer` when given.
pub async fn post_as(
    app: &Router,
    uri: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
    peer: Option<&str>,
) -> Page {
    let body = form_body(form);
    let mut request =
        http::Request::post(uri).header("content-type", "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let mut request = request.body(Body::from(body)).expect("request");
    if let Some(peer) = peer {
        let peer: SocketAddr = peer.parse().expect("socket address");
        request.extensions_mut().insert(ConnectInfo(peer));
    }
    call(app, request).await
}

pub fn form_body(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub async fn app() -> Router {
    example::router(
        example::demo_server(ISSUER, None)
            .await
            .expect("demo server"),
    )
}

/// The example's router over a demo server built with `settings`.
pub async fn app_with(settings: example::DemoSettings) -> Router {
    let users = Arc::new(example::DemoUsers::seeded().expect("users"));
    example::router(
        example::demo_server_with(ISSUER, None, settings, users)
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

/// What the device confirmation page says about the request it shows.
pub const ASKS: &str = "asks to use your account for:";

/// Step 1 of the device page: opens `/device`, types `user_code` and continues; answers the
/// confirmation page.
pub async fn confirm_device(app: &Router, user_code: &str) -> Page {
    let form = get(app, "/device").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let page = answer_device(app, &form, &[("user_code", user_code)]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(ASKS), "{}", page.body);
    page
}

/// Step 2: answers a confirmation page with its hidden fields, the credentials and the decision.
pub async fn decide_device(
    app: &Router,
    page: &Page,
    username: &str,
    password: &str,
    decision: &str,
) -> Page {
    decide_device_with(
        app,
        page,
        &[
            ("username", username),
            ("password", password),
            ("decision", decision),
        ],
    )
    .await
}

/// Step 2 with `fields` besides the page's own hidden ones.
pub async fn decide_device_with(app: &Router, page: &Page, fields: &[(&str, &str)]) -> Page {
    let user_code = page.hidden("user_code");
    let confirmation = page.hidden("confirmation");
    let mut all = vec![
        ("user_code", user_code.as_str()),
        ("confirmation", confirmation.as_str()),
    ];
    all.extend_from_slice(fields);
    answer_device(app, page, &all).await
}

/// Introspects `token` as `client` (with its secret, in the form): the JSON answer.
pub async fn introspect(
    app: &Router,
    client: &str,
    secret: &str,
    token: &str,
) -> serde_json::Value {
    let page = post(
        app,
        "/oauth/introspect",
        None,
        &[
            ("token", token),
            ("client_id", client),
            ("client_secret", secret),
        ],
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    serde_json::from_str(&page.body).expect("json")
}

// ---------------------------------------------------------------------------------------------
// The example served over real HTTP, as `main` serves it (with each caller's address).

/// Serves the example's router, over a demo server built with `settings` and `users`, on a
/// free loopback port, as `main` does.
pub async fn serve_example(
    settings: example::DemoSettings,
    users: Arc<example::DemoUsers>,
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = example::demo_server_with(&format!("http://{addr}"), None, settings, users)
        .await
        .expect("demo server");
    tokio::spawn(example::serve(
        listener,
        example::router(server),
        std::future::pending(),
    ));
    addr
}

/// A response read off a socket.
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The value of a hidden input of an HTML page.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker).expect(name) + marker.len();
        let end = self.body[start..].find('"').expect("closing quote") + start;
        self.body[start..end].to_owned()
    }
    /// The cookie the page set, as `name=value`.
    pub fn cookie(&self) -> String {
        let set = self.header("set-cookie").expect("set-cookie");
        set.split(';').next().expect("cookie").to_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One request over a fresh connection from the local address `from` (any loopback address
/// works on Linux), read to its end.
pub async fn send_from(server: SocketAddr, from: IpAddr, request: String) -> HttpResponse {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bind");
    let mut stream = socket.connect(server).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// `GET path`, with a cookie when given.
pub fn http_get(path: &str, cookie: Option<&str>) -> String {
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{cookie}\r\n")
}

/// A form `POST`, with an `Authorization` header and a cookie when given.
pub fn http_post(
    path: &str,
    authorization: Option<&str>,
    cookie: Option<&str>,
    body: &str,
) -> String {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}{cookie}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// `Authorization: Basic` for clientapp:123456.
pub const CLIENTAPP_BASIC: &str = "Basic Y2xpZW50YXBwOjEyMzQ1Ng==";

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
