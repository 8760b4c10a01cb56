//! The worked example over real HTTP, against the example's own router started in-process.

#[allow(dead_code)]
#[path = "../examples/axum_server.rs"]
mod example;
mod redis_support;

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A minimal HTTP/1.1 client: one request per connection.
async fn send(addr: std::net::SocketAddr, request: String) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
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

fn post_form(path: &str, authorization: Option<&str>, body: &str) -> String {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn get(path: &str, authorization: Option<&str>) -> String {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\r\n")
}

const USERS: &str = r#"[{"name":"adolfo","email":"adolfo@mailinator.com"},{"name":"demigreite","email":"demigreite@mailinator.com"},{"name":"jujuba","email":"jujuba@mailinator.com"}]"#;

/// Starts the example's router on a free port, as `cargo run --example axum_server` would.
async fn start_example(redis_url: Option<&str>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = example::demo_server(&format!("http://{addr}"), redis_url)
        .await
        .expect("demo server");
    tokio::spawn(async move { axum::serve(listener, example::router(server)).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worked_example_runs_over_http() {
    let addr = start_example(None).await;

    // POST /oauth/token with Basic clientapp:123456.
    let r = send(
        addr,
        post_form(
            "/oauth/token",
            Some("Basic Y2xpZW50YXBwOjEyMzQ1Ng=="),
            "grant_type=password&username=tom&password=123456",
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    let body = r.json();
    let keys: Vec<&str> = body
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(keys.len(), 5);
    assert!(r.body.starts_with("{\"access_token\":\""), "{}", r.body);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "read");
    let access = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    assert!(body["refresh_token"].as_str().is_some());

    // GET /api/users?access_token=…
    let r = send(
        addr,
        get(&format!("/api/users?access_token={access}"), None),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (200, USERS));
    // … and with Authorization: Bearer.
    let r = send(addr, get("/api/users", Some(&format!("Bearer {access}")))).await;
    assert_eq!((r.status, r.body.as_str()), (200, USERS));

    // Without a token: 401 and a bare challenge.
    let r = send(addr, get("/api/users", None)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    // A bad token: 401 invalid_token.
    let r = send(addr, get("/api/users", Some("Bearer bogus"))).await;
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap_or_default()
        .contains("error=\"invalid_token\""));

    // A wrong password: 400 invalid_grant, no-store.
    let r = send(
        addr,
        post_form(
            "/oauth/token",
            Some("Basic Y2xpZW50YXBwOjEyMzQ1Ng=="),
            "grant_type=password&username=tom&password=wrong",
        ),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // A wrong client secret: 401 invalid_client with a Basic challenge.
    let r = send(
        addr,
        post_form(
            "/oauth/token",
            Some("Basic Y2xpZW50YXBwOndyb25n"),
            "grant_type=password&username=tom&password=123456",
        ),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(r
        .header("www-authenticate")
        .unwrap_or_default()
        .starts_with("Basic "));
}

fn login_body(password: &str) -> String {
    format!("grant_type=password&username=tom&password={password}")
}

const CLIENTAPP: Option<&str> = Some("Basic Y2xpZW50YXBwOjEyMzQ1Ng==");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_example_servers_on_one_redis_behave_as_one() {
    let redis = redis_support::RedisServer::start();
    let a = start_example(Some(&redis.url())).await;
    let b = start_example(Some(&redis.url())).await;

    // A token issued by one is accepted by the other.
    let r = send(
        a,
        post_form("/oauth/token", CLIENTAPP, &login_body("123456")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    let access = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let refresh = body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    let r = send(b, get("/api/users", Some(&format!("Bearer {access}")))).await;
    assert_eq!((r.status, r.body.as_str()), (200, USERS));

    // A refresh token issued by one rotates at the other; the old one is then refused at both.
    let rotate = |addr| {
        let body = format!("grant_type=refresh_token&refresh_token={refresh}");
        async move { send(addr, post_form("/oauth/token", CLIENTAPP, &body)).await }
    };
    let r = rotate(b).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let new_access = r.json()["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    let r = send(a, get("/api/users", Some(&format!("Bearer {new_access}")))).await;
    assert_eq!(r.status, 200);
    for addr in [a, b] {
        let r = rotate(addr).await;
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }
    // That replay revoked the family everywhere.
    let r = send(a, get("/api/users", Some(&format!("Bearer {new_access}")))).await;
    assert_eq!(r.status, 401);

    // Failed logins count across both servers: five failures, alternating, lock tom out of both.
    for i in 0..5 {
        let addr = if i % 2 == 0 { a } else { b };
        let r = send(
            addr,
            post_form("/oauth/token", CLIENTAPP, &login_body("wrong")),
        )
        .await;
        assert_eq!(r.json()["error"].as_str(), Some("invalid_grant"));
        assert!(!r.body.contains("too many"), "{}", r.body);
    }
    for addr in [a, b] {
        let r = send(
            addr,
            post_form("/oauth/token", CLIENTAPP, &login_body("123456")),
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains("too many"), "{}", r.body);
        assert!(r.header("retry-after").is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_serves_its_metadata() {
    let addr = start_example(None).await;
    let r = send(addr, get("/.well-known/oauth-authorization-server", None)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    let base = format!("http://{addr}");
    assert_eq!(j["issuer"], base.as_str());
    for (field, path) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("introspection_endpoint", "/oauth/introspect"),
    ] {
        assert_eq!(j[field], format!("{base}{path}").as_str(), "{field}");
    }
    assert_eq!(
        j["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "implicit",
            "password",
            "client_credentials",
            "refresh_token"
        ])
    );
    // And the endpoints it names answer.
    let r = send(addr, post_form("/oauth/revoke", CLIENTAPP, "token=unknown")).await;
    assert_eq!(r.status, 200);
    let r = send(
        addr,
        post_form(
            "/oauth/introspect",
            Some("Basic c2VydmljZTpzZXJ2aWNlLXNlY3JldA=="),
            "token=unknown",
        ),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (200, r#"{"active":false}"#));
}
