//! The worked example over real HTTP, against the example's own router started in-process.

mod in_process;
mod postgres_support;
mod redis_support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use in_process::{example, form_body, send_from, HttpResponse};
use std::time::Duration;

/// One request over a fresh connection from 127.0.0.1, read to its end.
async fn send(addr: SocketAddr, request: String) -> HttpResponse {
    send_from(addr, IpAddr::V4(Ipv4Addr::LOCALHOST), request).await
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

/// A form posted with a cookie, as a browser sends one.
fn post_form_with_cookie(path: &str, cookie: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
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
    let storage = match redis_url {
        Some(url) => example::Storage::Redis(url.to_owned()),
        None => example::Storage::Memory,
    };
    start_example_on(&storage).await
}

/// [`start_example`] with its tokens kept in `storage`.
async fn start_example_on(storage: &example::Storage) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = example::demo_server_on(
        &format!("http://{addr}"),
        storage,
        example::DemoSettings::default(),
        std::sync::Arc::new(example::DemoUsers::seeded().expect("users")),
    )
    .await
    .expect("demo server");
    // Served as `main` serves it: each request knows its caller's address.
    tokio::spawn(example::serve(
        listener,
        example::router(server),
        std::future::pending(),
    ));
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

    // Without a token: 401 and a challenge with no error (RFC 6750 §3.1), naming the
    // resource's metadata (RFC 9728 §5.1).
    let r = send(addr, get("/api/users", None)).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            format!(
                "Bearer resource_metadata=\"http://{addr}/.well-known/oauth-protected-resource/api\""
            )
            .as_str()
        )
    );
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

/// `GET /`: a page for a person trying the server, whose commands and link work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_has_a_front_page() {
    let addr = start_example(None).await;
    let base = format!("http://{addr}");
    let r = send(addr, get("/", None)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("X-Frame-Options"), Some("DENY"));
    for shown in [
        "/oauth/token",
        "/oauth/authorize",
        "/oauth/revoke",
        "/oauth/introspect",
        "/oauth/device_authorization",
        "/device",
        "/.well-known/oauth-authorization-server",
        "/api/users",
        "clientapp",
        "service-secret",
        "spa",
        "cli",
        "tom",
        "alice",
        "JBSWY3DPEHPK3PXP",
    ] {
        assert!(r.body.contains(shown), "the front page shows {shown}");
    }
    // The command to copy names this server's token endpoint, and its request gets a token.
    let command = format!(
        "curl -s -u clientapp:123456 -d grant_type=password -d username=tom -d password=123456 \\\n  {base}/oauth/token"
    );
    assert!(r.body.contains(&command), "{}", r.body);
    let token = send(
        addr,
        post_form(
            "/oauth/token",
            Some("Basic Y2xpZW50YXBwOjEyMzQ1Ng=="),
            "grant_type=password&username=tom&password=123456",
        ),
    )
    .await;
    assert_eq!(token.status, 200);
    // The sign-in link opens the login form.
    let marker = "<a href=\"";
    let start = r.body.find(marker).expect("a link") + marker.len();
    let end = start + r.body[start..].find('"').expect("its end");
    let href = r.body[start..end].replace("&amp;", "&");
    let path = href.strip_prefix(&base).expect("a link to this server");
    let page = send(addr, get(path, None)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("name=\"password\""));
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
        j["device_authorization_endpoint"],
        format!("{base}/oauth/device_authorization").as_str()
    );
    assert_eq!(
        j["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "implicit",
            "password",
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
            "http://auth0.com/oauth/grant-type/mfa-otp"
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

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A CLI signs in with the device flow (RFC 8628): it asks for a code, polls, a person approves
/// in a browser, and the next poll (after the interval the server asked for) gets tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_signs_in_with_the_device_flow_over_http() {
    let addr = start_example(None).await;
    let base = format!("http://{addr}");

    // The CLI asks, as the public client `cli`.
    let r = send(
        addr,
        post_form(
            "/oauth/device_authorization",
            None,
            "client_id=cli&scope=read",
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let j = r.json();
    let device_code = j["device_code"].as_str().expect("device_code").to_owned();
    let user_code = j["user_code"].as_str().expect("user_code").to_owned();
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert_eq!(j["verification_uri"], format!("{base}/device").as_str());
    assert_eq!(
        j["verification_uri_complete"],
        format!("{base}/device?user_code={user_code}").as_str()
    );
    assert_eq!(j["expires_in"], 600);
    let interval = j["interval"].as_u64().expect("interval");
    assert_eq!(interval, 5);

    // It polls: nobody has approved yet.
    let poll = || {
        let body = form_body(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", &device_code),
            ("client_id", "cli"),
        ]);
        async move { send(addr, post_form("/oauth/token", None, &body)).await }
    };
    let r = poll().await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("authorization_pending")),
        "{}",
        r.body
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));

    // Meanwhile a person opens the verification_uri_complete in a browser: it shows which
    // application asks for what, and the sign-in form. They approve.
    let page = send(addr, get(&format!("/device?user_code={user_code}"), None)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(
        page.body
            .contains("The application <strong>cli</strong> asks to use your account for:"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<li><code>read</code></li>"),
        "{}",
        page.body
    );
    assert_eq!(page.hidden("user_code"), user_code);
    assert!(page.body.contains("name=\"password\""), "{}", page.body);
    let body = form_body(&[
        ("csrf_token", &page.hidden("csrf_token")),
        ("user_code", &page.hidden("user_code")),
        ("confirmation", &page.hidden("confirmation")),
        ("username", "tom"),
        ("password", "123456"),
        ("decision", "approve"),
    ]);
    let r = send(
        addr,
        post_form_with_cookie("/device", &page.cookie(), &body),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("You can return to your device."),
        "{}",
        r.body
    );

    // The CLI waits the interval, as it was told, and polls again: tokens.
    tokio::time::sleep(Duration::from_secs(interval) + Duration::from_millis(200)).await;
    let r = poll().await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let j = r.json();
    assert_eq!(j["token_type"], "Bearer");
    assert!(j["refresh_token"].is_string(), "{}", r.body);
    let access = j["access_token"].as_str().expect("access_token");

    // The token reads the protected resource.
    let r = send(addr, get("/api/users", Some(&format!("Bearer {access}")))).await;
    assert_eq!((r.status, r.body.as_str()), (200, USERS));

    // The device code is spent.
    let r = poll().await;
    assert_eq!(
        r.json()["error"].as_str(),
        Some("invalid_grant"),
        "{}",
        r.body
    );
}

/// alice's code now, as her authenticator app shows it.
#[allow(clippy::disallowed_methods)] // the server's clock is the real one: so is her phone's
fn alice_code() -> String {
    grantor::Totp::from_base32(example::ALICE_TOTP_SECRET)
        .expect("alice's secret")
        .generate(time::OffsetDateTime::now_utc())
}

/// alice has a second factor: the password grant answers 403 mfa_required, and the mfa-otp
/// grant finishes the sign-in with a code from her authenticator app, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_grant_asks_alice_for_her_one_time_code_over_http() {
    let addr = start_example(None).await;
    let password_grant = || async move {
        send(
            addr,
            post_form(
                "/oauth/token",
                CLIENTAPP,
                "grant_type=password&username=alice&password=123456",
            ),
        )
        .await
    };
    let r = password_grant().await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let j = r.json();
    assert_eq!(j["error"], "mfa_required");
    assert!(j["error_description"].is_string());
    let mfa_token = j["mfa_token"].as_str().expect("mfa_token").to_owned();
    assert!(j.get("access_token").is_none());

    let mfa_otp = |mfa_token: String, otp: String| async move {
        let body = form_body(&[
            ("grant_type", "http://auth0.com/oauth/grant-type/mfa-otp"),
            ("mfa_token", &mfa_token),
            ("otp", &otp),
        ]);
        send(addr, post_form("/oauth/token", CLIENTAPP, &body)).await
    };
    let code = alice_code();
    let r = mfa_otp(mfa_token.clone(), code.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["token_type"], "Bearer");
    assert!(j["refresh_token"].is_string(), "{}", r.body);
    let access = j["access_token"].as_str().expect("access_token");
    let r = send(addr, get("/api/users", Some(&format!("Bearer {access}")))).await;
    assert_eq!((r.status, r.body.as_str()), (200, USERS));

    // The mfa_token is spent.
    let r = mfa_otp(mfa_token, code.clone()).await;
    assert_eq!(
        r.json()["error"].as_str(),
        Some("invalid_grant"),
        "{}",
        r.body
    );

    // A new sign-in with the same code: refused, the code was used (RFC 6238 §5.2).
    let r = password_grant().await;
    assert_eq!(r.status, 403, "{}", r.body);
    let mfa_token = r.json()["mfa_token"]
        .as_str()
        .expect("mfa_token")
        .to_owned();
    let r = mfa_otp(mfa_token, code).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_grant")),
        "{}",
        r.body
    );

    // alice's wrong password is a plain invalid_grant, with no mfa_token.
    let r = send(
        addr,
        post_form(
            "/oauth/token",
            CLIENTAPP,
            "grant_type=password&username=alice&password=wrong",
        ),
    )
    .await;
    assert_eq!(r.json()["error"].as_str(), Some("invalid_grant"));
    assert!(r.json().get("mfa_token").is_none());
}

/// With Redis, device requests and `mfa_token`s are shared too: a device asks at one server, the
/// person approves at the other, and so on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_flow_and_mfa_span_two_servers_on_one_redis() {
    let redis = redis_support::RedisServer::start();
    let a = start_example(Some(&redis.url())).await;
    let b = start_example(Some(&redis.url())).await;

    // The device asks at a; the person approves at b.
    let r = send(
        a,
        post_form("/oauth/device_authorization", None, "client_id=cli"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let device_code = r.json()["device_code"]
        .as_str()
        .expect("device_code")
        .to_owned();
    let user_code = r.json()["user_code"]
        .as_str()
        .expect("user_code")
        .to_owned();
    // The code form at b; the code typed there shows a's request.
    let form = send(b, get("/device", None)).await;
    assert!(!form.body.contains("name=\"password\""), "{}", form.body);
    let body = form_body(&[
        ("csrf_token", &form.hidden("csrf_token")),
        ("user_code", &user_code),
    ]);
    let page = send(b, post_form_with_cookie("/device", &form.cookie(), &body)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<strong>cli</strong>"), "{}", page.body);
    let body = form_body(&[
        ("csrf_token", &page.hidden("csrf_token")),
        ("user_code", &page.hidden("user_code")),
        ("confirmation", &page.hidden("confirmation")),
        ("username", "tom"),
        ("password", "123456"),
        ("decision", "approve"),
    ]);
    let r = send(b, post_form_with_cookie("/device", &page.cookie(), &body)).await;
    assert!(
        r.body.contains("You can return to your device."),
        "{}",
        r.body
    );
    // Its first poll, at a, gets the tokens; a second one, at b, finds the code spent.
    let body = form_body(&[
        ("grant_type", DEVICE_GRANT),
        ("device_code", &device_code),
        ("client_id", "cli"),
    ]);
    let r = send(a, post_form("/oauth/token", None, &body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = send(b, post_form("/oauth/token", None, &body)).await;
    assert_eq!(
        r.json()["error"].as_str(),
        Some("invalid_grant"),
        "{}",
        r.body
    );

    // alice's password at a, her code at b; the same code for a new sign-in at a is refused.
    let password = "grant_type=password&username=alice&password=123456";
    let r = send(a, post_form("/oauth/token", CLIENTAPP, password)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let code = alice_code();
    let finish = |addr, mfa_token: String| {
        let body = form_body(&[
            ("grant_type", "http://auth0.com/oauth/grant-type/mfa-otp"),
            ("mfa_token", &mfa_token),
            ("otp", &code),
        ]);
        async move { send(addr, post_form("/oauth/token", CLIENTAPP, &body)).await }
    };
    let mfa_token = r.json()["mfa_token"]
        .as_str()
        .expect("mfa_token")
        .to_owned();
    let r = finish(b, mfa_token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = send(b, post_form("/oauth/token", CLIENTAPP, password)).await;
    let mfa_token = r.json()["mfa_token"]
        .as_str()
        .expect("mfa_token")
        .to_owned();
    let r = finish(a, mfa_token).await;
    assert_eq!(
        r.json()["error"].as_str(),
        Some("invalid_grant"),
        "{}",
        r.body
    );
}

/// Logs tom in at `addr`: his access and refresh tokens.
async fn tom_logs_in(addr: SocketAddr) -> (String, String) {
    let r = send(
        addr,
        post_form("/oauth/token", CLIENTAPP, &login_body("123456")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    let field = |name: &str| body[name].as_str().expect("a token").to_owned();
    (field("access_token"), field("refresh_token"))
}

/// `DATABASE_URL=sqlite://FILE`: a restarted server still honours every token it issued, and
/// still refuses a rotated refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_example_on_one_sqlite_file_honours_its_tokens() {
    let dir = std::env::temp_dir().join(format!(
        "grantor-example-{}-{}",
        std::process::id(),
        grantor::FamilyId::generate()
    ));
    std::fs::create_dir_all(&dir).expect("folder");
    let storage = example::Storage::Database(format!("sqlite://{}", dir.join("demo.db").display()));
    let first = start_example_on(&storage).await;
    let (access, refresh) = tom_logs_in(first).await;
    let rotate = format!("grant_type=refresh_token&refresh_token={refresh}");
    let r = send(first, post_form("/oauth/token", CLIENTAPP, &rotate)).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Another server on the same file, as after a restart.
    let second = start_example_on(&storage).await;
    let r = send(second, get("/api/users", Some(&format!("Bearer {access}")))).await;
    assert_eq!((r.status, r.body.as_str()), (200, USERS));
    let r = send(second, post_form("/oauth/token", CLIENTAPP, &rotate)).await;
    assert_eq!(r.json()["error"].as_str(), Some("invalid_grant"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `DATABASE_URL=postgres://…`: two servers on one database behave as one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_example_servers_on_one_postgres_database_behave_as_one() {
    let url = postgres_support::PostgresServer::shared().url().to_owned();
    let storage = example::Storage::Database(url);
    let a = start_example_on(&storage).await;
    let b = start_example_on(&storage).await;
    let (access, refresh) = tom_logs_in(a).await;
    let r = send(b, get("/api/users", Some(&format!("Bearer {access}")))).await;
    assert_eq!((r.status, r.body.as_str()), (200, USERS));
    let rotate = format!("grant_type=refresh_token&refresh_token={refresh}");
    let r = send(b, post_form("/oauth/token", CLIENTAPP, &rotate)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let new_access = r.json()["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    // The old refresh token is a replay at the other server, which revokes the family there too.
    let r = send(a, post_form("/oauth/token", CLIENTAPP, &rotate)).await;
    assert_eq!(r.json()["error"].as_str(), Some("invalid_grant"));
    let r = send(b, get("/api/users", Some(&format!("Bearer {new_access}")))).await;
    assert_eq!(r.status, 401);
}

/// `REDIS_URL` and `DATABASE_URL` together: the example refuses to start, and says why.
#[test]
fn redis_and_a_database_together_are_refused() {
    let env = |redis: Option<&str>, db: Option<&str>| {
        let (redis, db) = (redis.map(str::to_owned), db.map(str::to_owned));
        example::Storage::from_lookup(move |name| match name {
            "REDIS_URL" => redis.clone(),
            "DATABASE_URL" => db.clone(),
            _ => None,
        })
    };
    assert!(env(Some("redis://h"), Some("sqlite://f"))
        .is_err_and(|why| why.contains("REDIS_URL and DATABASE_URL")));
    assert_eq!(env(None, None), Ok(example::Storage::Memory));
    assert_eq!(
        env(Some(""), Some("sqlite://f")),
        Ok(example::Storage::Database("sqlite://f".to_owned()))
    );
    assert_eq!(
        env(Some("redis://h"), None),
        Ok(example::Storage::Redis("redis://h".to_owned()))
    );
}
