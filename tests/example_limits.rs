//! The example server's limits (`example-server.md`, "Limits"), over HTTP: concurrent sign-ins,
//! bounded password hashing, failed sign-ins per caller address, parameter length, and the bound
//! on waiting requests.

mod in_process;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use grantor::{AttemptRule, LoginLimits, PendingLimits};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use in_process::*;

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

fn seeded() -> Arc<example::DemoUsers> {
    Arc::new(example::DemoUsers::seeded().expect("users"))
}

const TOM: &str = "grant_type=password&username=tom&password=123456";

/// 12 clients, each on its own keep-alive connection, sign tom in 10 times in a row: 120
/// sign-ins of one user, 12 at a time. Concurrent right passwords all succeed (the engine queues
/// them instead of refusing them as if they were guesses), and each gets its own tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_120_sign_ins_as_one_user_over_12_connections_all_succeed() {
    let users = seeded();
    let addr = serve_example(example::DemoSettings::default(), users.clone()).await;
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            tokio::spawn(async move {
                // One client per task, so one connection per task, reused for its 10 requests.
                let client: Client<_, Body> = Client::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(1)
                    .build_http();
                let mut answers = Vec::new();
                for _ in 0..10 {
                    let request = http::Request::post(format!("http://{addr}/oauth/token"))
                        .header("authorization", CLIENTAPP_BASIC)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(Body::from(TOM))
                        .expect("request");
                    let response = client.request(request).await.expect("response");
                    let status = response.status().as_u16();
                    let body = axum::body::to_bytes(Body::new(response.into_body()), 1 << 16)
                        .await
                        .expect("body");
                    answers.push((status, String::from_utf8_lossy(&body).into_owned()));
                }
                answers
            })
        })
        .collect();
    let mut tokens = HashSet::new();
    let mut count = 0;
    for task in tasks {
        for (status, body) in task.await.expect("task") {
            assert_eq!(status, 200, "{body}");
            let json: serde_json::Value = serde_json::from_str(&body).expect("json");
            tokens.insert(json["access_token"].as_str().expect("token").to_owned());
            count += 1;
        }
    }
    assert_eq!(count, 120);
    assert_eq!(tokens.len(), 120, "every sign-in gets its own access token");
    assert!(users.peak_concurrent_hashes() <= users.hashing_permits());
}

/// 64 people sign in at once: at most one argon2 hash per core runs at a time (each takes 19 MiB),
/// the others wait their turn, and every sign-in succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sign_ins_never_run_more_password_hashes_than_the_machine_has_cores() {
    let mut users = example::DemoUsers::seeded().expect("users");
    for i in 0..64 {
        users = users
            .with_user(
                &format!("user{i}"),
                &format!("user-{i}"),
                &format!("pw-{i}"),
            )
            .expect("user");
    }
    let users = Arc::new(users);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    assert_eq!(users.hashing_permits(), cores);
    assert_eq!(users.peak_concurrent_hashes(), 0);
    let addr = serve_example(example::DemoSettings::default(), users.clone()).await;

    let sign_ins: Vec<_> = (0..64)
        .map(|i| {
            let body = format!("grant_type=password&username=user{i}&password=pw-{i}");
            tokio::spawn(async move {
                send_from(
                    addr,
                    loopback(1),
                    http_post("/oauth/token", Some(CLIENTAPP_BASIC), None, &body),
                )
                .await
            })
        })
        .collect();
    for sign_in in sign_ins {
        let response = sign_in.await.expect("task");
        assert_eq!(response.status, 200, "{}", response.body);
        assert!(response.json()["access_token"].is_string());
    }
    let peak = users.peak_concurrent_hashes();
    assert!(peak <= cores, "{peak} hashes ran at once on {cores} cores");
    // They did run side by side, up to the bound.
    assert!(peak >= cores.min(2), "peak {peak}");
}

/// A GET of the login form, and a POST of `username`/`password` to it, both from `from`.
async fn sign_in_on_login_page(
    addr: std::net::SocketAddr,
    from: IpAddr,
    username: &str,
    password: &str,
) -> HttpResponse {
    let form = send_from(addr, from, http_get(&authorize_uri("spa", "st8"), None)).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let body = form_body(&[
        ("request_id", &form.hidden("request_id")),
        ("csrf_token", &form.hidden("csrf_token")),
        ("username", username),
        ("password", password),
        ("decision", "approve"),
    ]);
    send_from(
        addr,
        from,
        http_post("/oauth/authorize", None, Some(&form.cookie()), &body),
    )
    .await
}

/// One password sprayed over many usernames from one address: after the per-address limit (3
/// here; 100 per 15 minutes by default), that address is refused even for a username that never
/// failed, on the login page and the device page alike; another address is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_count_per_caller_address_across_usernames() {
    let settings = example::DemoSettings {
        login_limits: LoginLimits {
            per_address: Some(AttemptRule {
                max_failures: 3,
                window: Duration::from_secs(15 * 60),
            }),
            ..LoginLimits::default()
        },
        ..example::DemoSettings::default()
    };
    let addr = serve_example(settings, seeded()).await;
    let (sprayer, neighbour) = (loopback(1), loopback(2));

    for username in ["alice", "admin", "nobody"] {
        let answer = sign_in_on_login_page(addr, sprayer, username, "password1").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(
            answer.body.contains("Wrong username or password."),
            "{}",
            answer.body
        );
    }
    // tom never failed, but his right password from that address is refused now, unchecked.
    let answer = sign_in_on_login_page(addr, sprayer, "tom", "123456").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.header("location").is_none());
    assert!(
        answer.body.contains("Too many failed sign-in attempts"),
        "{}",
        answer.body
    );
    // On the device page too.
    let started = send_from(
        addr,
        sprayer,
        http_post("/oauth/device_authorization", None, None, "client_id=cli"),
    )
    .await;
    let user_code = started.json()["user_code"]
        .as_str()
        .expect("user_code")
        .to_owned();
    let page = send_from(
        addr,
        sprayer,
        http_get(&format!("/device?user_code={user_code}"), None),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let decide = |page: &HttpResponse| {
        let body = form_body(&[
            ("csrf_token", &page.hidden("csrf_token")),
            ("user_code", &page.hidden("user_code")),
            ("confirmation", &page.hidden("confirmation")),
            ("username", "tom"),
            ("password", "123456"),
            ("decision", "approve"),
        ]);
        http_post("/device", None, Some(&page.cookie()), &body)
    };
    let answer = send_from(addr, sprayer, decide(&page)).await;
    assert!(
        answer.body.contains("Too many failed sign-in attempts"),
        "{}",
        answer.body
    );
    assert!(!answer.body.contains("Device connected"), "{}", answer.body);

    // Another address signs tom in, on both pages.
    let answer = sign_in_on_login_page(addr, neighbour, "tom", "123456").await;
    assert_eq!(answer.status, 302, "{}", answer.body);
    assert!(answer
        .header("location")
        .is_some_and(|l| l.starts_with(CALLBACK) && l.contains("code=")));
    let answer = send_from(addr, neighbour, decide(&page)).await;
    assert!(answer.body.contains("Device connected"), "{}", answer.body);
}

/// A parameter of 4097 bytes is refused at every endpoint, and nothing is stored for it: with
/// room for one waiting request per client, the refused request does not take it.
#[tokio::test]
async fn a_parameter_longer_than_4096_bytes_is_refused_and_nothing_is_stored() {
    assert_eq!(grantor::MAX_PARAMETER_LENGTH, 4096);
    let app = app_with(example::DemoSettings {
        pending_limits: PendingLimits {
            per_client: 1,
            total: 100,
        },
        ..example::DemoSettings::default()
    })
    .await;
    let long = "x".repeat(4097);

    // The token endpoint: a 4097-byte password is not even checked; 4096 bytes are (and wrong).
    let token = |password: String| {
        let app = app.clone();
        async move {
            post(
                &app,
                "/oauth/token",
                None,
                &[
                    ("grant_type", "password"),
                    ("username", "tom"),
                    ("password", &password),
                    ("client_id", "clientapp"),
                    ("client_secret", "123456"),
                ],
            )
            .await
        }
    };
    let page = token(long.clone()).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.body.contains("\"error\":\"invalid_request\""),
        "{}",
        page.body
    );
    let page = token("x".repeat(4096)).await;
    assert!(
        page.body.contains("\"error\":\"invalid_grant\""),
        "{}",
        page.body
    );

    // The authorization endpoint: an HTML error page, never a redirect; nothing waits for it.
    let page = get(&app, &authorize_uri("spa", &long)).await;
    assert_eq!(page.status, 400, "{}", page.body);
    page.assert_page_headers();
    assert!(page.header("location").is_none());
    assert!(page.body.contains("4096"), "{}", page.body);
    let page = post(
        &app,
        "/oauth/authorize",
        None,
        &[
            ("response_type", "code"),
            ("client_id", "spa"),
            ("redirect_uri", CALLBACK),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", &long),
        ],
    )
    .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.header("location").is_none());
    // So spa's one place is still free, and then taken.
    let form = get(&app, &authorize_uri("spa", "st8")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let page = get(&app, &authorize_uri("spa", "st9")).await;
    assert_eq!(page.status, 503, "{}", page.body);
    // The login form does not pass on a longer password either.
    let answer = answer_form(&app, &form, "tom", &long, "approve").await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.header("location").is_none());
    assert!(answer.body.contains("too long"), "{}", answer.body);

    // The device authorization endpoint.
    let page = post(
        &app,
        "/oauth/device_authorization",
        None,
        &[("client_id", "cli"), ("scope", &long)],
    )
    .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.body.contains("\"error\":\"invalid_request\""),
        "{}",
        page.body
    );
    let (_, user_code) = start_device(&app).await;
    let page = post(
        &app,
        "/oauth/device_authorization",
        None,
        &[("client_id", "cli")],
    )
    .await;
    assert_eq!(page.status, 503, "{}", page.body);
    // And the device page.
    let page = confirm_device(&app, &user_code).await;
    let answer = decide_device(&app, &page, "tom", &long, "approve").await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("too long"), "{}", answer.body);
}

fn retry_after(page: &Page) -> u64 {
    page.header("retry-after")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", page.headers))
}

/// Anyone can open the authorization endpoint or ask for a device code: past the bound (5 per
/// client here; 1,000 by default), the endpoint answers 503 with Retry-After instead of storing
/// more; other clients go on until the total bound.
#[tokio::test]
async fn flooding_one_client_is_refused_with_503_and_retry_after() {
    let app = app_with(example::DemoSettings {
        pending_limits: PendingLimits {
            per_client: 5,
            total: 7,
        },
        ..example::DemoSettings::default()
    })
    .await;
    for i in 0..5 {
        let page = get(&app, &authorize_uri("spa", &format!("s{i}"))).await;
        assert_eq!(page.status, 200, "{}", page.body);
    }
    let page = get(&app, &authorize_uri("spa", "s5")).await;
    assert_eq!(page.status, 503, "{}", page.body);
    page.assert_page_headers();
    assert!(page.header("location").is_none());
    assert!(
        page.body.contains("too many sign-in requests"),
        "{}",
        page.body
    );
    assert!(retry_after(&page) >= 1);
    // Another client still gets its form, until the total bound.
    for state in ["c0", "c1"] {
        let page = get(&app, &authorize_uri("clientapp", state)).await;
        assert_eq!(page.status, 200, "{}", page.body);
    }
    let page = get(&app, &authorize_uri("clientapp", "c2")).await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(retry_after(&page) >= 1);

    // Device requests: the JSON error of RFC 6749 §5.2.
    for _ in 0..5 {
        start_device(&app).await;
    }
    let page = post(
        &app,
        "/oauth/device_authorization",
        None,
        &[("client_id", "cli")],
    )
    .await;
    assert_eq!(page.status, 503, "{}", page.body);
    let json: serde_json::Value = serde_json::from_str(&page.body).expect("json");
    assert_eq!(json["error"], "temporarily_unavailable", "{json}");
    assert!(retry_after(&page) >= 1);
    assert_eq!(page.header("cache-control"), Some("no-store"));
}

/// The defaults are the engine's: nothing in the demo lowers a limit unless a test asks.
#[test]
fn the_demo_keeps_the_engines_default_limits() {
    let settings = example::DemoSettings::default();
    assert_eq!(settings.login_limits, LoginLimits::default());
    assert_eq!(settings.pending_limits, PendingLimits::default());
    assert_eq!(settings.refresh_grace, Duration::ZERO);
    let fifteen_minutes = Duration::from_secs(15 * 60);
    assert_eq!(
        LoginLimits::default().per_address,
        Some(AttemptRule {
            max_failures: 100,
            window: fifteen_minutes
        })
    );
    assert_eq!(
        PendingLimits::default(),
        PendingLimits {
            per_client: 1_000,
            total: 10_000
        }
    );
}
