//! The example's device verification page (`/device`, RFC 8628 §3.3), driven in-process: a
//! device asks as `cli`, a person enters its user code, signs in and decides, the device polls.

mod in_process;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use grantor::{
    AuthorizationServer, Client, GrantType, MemoryClientStore, MemoryDeviceCodeStore,
    MemoryTokenStore, Scope,
};
use in_process::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Opens `/device` (with `?user_code=` when given) and checks it is a well-protected page.
async fn open(app: &axum::Router, user_code: Option<&str>) -> Page {
    let uri = match user_code {
        Some(code) => format!(
            "/device?user_code={}",
            url::form_urlencoded::byte_serialize(code.as_bytes()).collect::<String>()
        ),
        None => "/device".to_owned(),
    };
    let page = get(app, &uri).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_page_headers();
    assert_eq!(page.header("cache-control"), Some("no-store"));
    page
}

/// Fills in the form: `user_code`, tom's or alice's credentials and the decision.
async fn decide(
    app: &axum::Router,
    form: &Page,
    user_code: &str,
    username: &str,
    password: &str,
    decision: &str,
) -> Page {
    answer_device(
        app,
        form,
        &[
            ("user_code", user_code),
            ("username", username),
            ("password", password),
            ("decision", decision),
        ],
    )
    .await
}

#[tokio::test]
async fn the_device_page_has_the_contracted_fields_and_headers() {
    let app = app().await;
    let page = open(&app, None).await;
    for needle in [
        "<form method=\"post\" action=\"/device\"",
        "name=\"user_code\"",
        "name=\"username\"",
        "name=\"password\"",
        "name=\"otp\"",
        "name=\"decision\" value=\"approve\"",
        "name=\"decision\" value=\"deny\"",
        "name=\"csrf_token\"",
    ] {
        assert!(
            page.body.contains(needle),
            "{needle} missing from {}",
            page.body
        );
    }
    // The CSRF token is in the cookie and the hidden field, and is long and random.
    let set = page.header("set-cookie").expect("set-cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/device"),
        "{set}"
    );
    let csrf = page.hidden("csrf_token");
    assert!(csrf.len() >= 32, "{csrf}");
    assert_eq!(page.cookie(), format!("device_csrf={csrf}"));
    assert_ne!(open(&app, None).await.hidden("csrf_token"), csrf);
}

#[tokio::test]
async fn the_verification_uri_complete_fills_the_code_in() {
    let app = app().await;
    let page = open(&app, Some("WDJB-MJHT")).await;
    assert!(
        page.body.contains("name=\"user_code\" value=\"WDJB-MJHT\""),
        "{}",
        page.body
    );
    // And what the device answered is exactly such an address.
    let answer = post(
        &app,
        "/oauth/device_authorization",
        None,
        &[("client_id", "cli")],
    )
    .await;
    let json: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
    let complete = json["verification_uri_complete"]
        .as_str()
        .expect("complete");
    let user_code = json["user_code"].as_str().expect("user_code");
    assert_eq!(complete, format!("{ISSUER}/device?user_code={user_code}"));
    let path = complete.strip_prefix(ISSUER).expect("below the issuer");
    let page = get(&app, path).await;
    assert!(page
        .body
        .contains(&format!("name=\"user_code\" value=\"{user_code}\"")));
}

#[tokio::test]
async fn a_reflected_user_code_is_escaped() {
    let app = app().await;
    let page = open(&app, Some("\"><script>alert(1)</script>")).await;
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;"), "{}", page.body);
    assert!(
        page.body.contains("value=\"&quot;&gt;&lt;script&gt;"),
        "{}",
        page.body
    );

    // Redrawn after a POST, too (with the username), and never the password.
    let form = open(&app, None).await;
    let answer = decide(
        &app,
        &form,
        "<script>x</script>",
        "<b>tom</b>",
        "<i>secret-password</i>",
        "approve",
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    for raw in ["<script>", "<b>", "<i>", "secret-password"] {
        assert!(!answer.body.contains(raw), "{raw} in {}", answer.body);
    }
    assert!(answer.body.contains("&lt;b&gt;tom&lt;/b&gt;"));

    // And the page drawn on its own, with what a looked-up request shows.
    let client_id = grantor::ClientId::new("<b>evil</b>");
    let scope = grantor::Scope::parse("<i>all</i> read").expect("a scope may hold < and >");
    let html = example::device_form(example::DeviceForm {
        user_code: "<script>",
        csrf: "\"><u>",
        retry: example::Retry {
            message: Some("<em>message</em>"),
            username: "<s>",
        },
        lookup: example::CodeLookup::Pending {
            client_id: &client_id,
            scope: &scope,
        },
    })
    .into_string();
    for raw in ["<script>", "<u>", "<em>", "<s>", "<b>", "<i>"] {
        assert!(!html.contains(raw), "{raw} in {html}");
    }
    assert!(html.contains("&lt;b&gt;evil&lt;/b&gt;"), "{html}");
    assert!(
        html.contains("<code>&lt;i&gt;all&lt;/i&gt;</code>"),
        "{html}"
    );
}

#[tokio::test]
async fn a_post_without_or_with_a_wrong_csrf_token_is_refused() {
    let app = app().await;
    let (device_code, user_code) = start_device(&app).await;
    let form = open(&app, None).await;
    let csrf = form.hidden("csrf_token");
    let other = open(&app, None).await; // another browser's token
    let cases: [(Option<String>, &str); 5] = [
        (None, ""),
        (None, csrf.as_str()),
        (Some(form.cookie()), ""),
        (Some(form.cookie()), "forged"),
        (Some(other.cookie()), csrf.as_str()),
    ];
    for (cookie, token) in cases {
        let page = post(
            &app,
            "/device",
            cookie.as_deref(),
            &[
                ("csrf_token", token),
                ("user_code", &user_code),
                ("username", "tom"),
                ("password", "123456"),
                ("decision", "approve"),
            ],
        )
        .await;
        assert_eq!(page.status, 400, "{cookie:?} {token}: {}", page.body);
        page.assert_page_headers();
        assert!(
            page.body.contains("not sent from this site"),
            "{}",
            page.body
        );
    }
    // Nothing was approved.
    let (status, json) = poll_device(&app, &device_code).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("authorization_pending"))
    );
}

#[tokio::test]
async fn a_wrong_password_shows_the_page_again_and_approves_nothing() {
    let app = app().await;
    let (device_code, user_code) = start_device(&app).await;
    let form = open(&app, Some(&user_code)).await;
    let answer = decide(&app, &form, &user_code, "tom", "wrong", "approve").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.assert_page_headers();
    assert!(
        answer.body.contains("Wrong username or password."),
        "{}",
        answer.body
    );
    // The code and the username stay filled in; the CSRF token stays the same.
    assert!(answer
        .body
        .contains(&format!("name=\"user_code\" value=\"{user_code}\"")));
    assert!(answer.body.contains("name=\"username\" value=\"tom\""));
    assert_eq!(answer.hidden("csrf_token"), form.hidden("csrf_token"));
    // An unknown user reads the same.
    let answer = decide(&app, &form, &user_code, "nobody", "123456", "approve").await;
    assert!(answer.body.contains("Wrong username or password."));
    let (_, json) = poll_device(&app, &device_code).await;
    assert_eq!(json["error"], "authorization_pending");

    // The same form, with the right password, still works.
    let answer = decide(&app, &form, &user_code, "tom", "123456", "approve").await;
    assert!(
        answer.body.contains("You can return to your device"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn a_wrong_code_shows_the_page_again_and_too_many_are_refused() {
    let app = app().await;
    let (device_code, user_code) = start_device(&app).await;
    let form = open(&app, None).await;
    let answer = decide(&app, &form, "BCDF-GHJK", "tom", "123456", "approve").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer
            .body
            .contains("That code is wrong, expired or already used."),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("value=\"BCDF-GHJK\""));
    // An empty code is asked for again without signing in.
    let answer = decide(&app, &form, " - ", "tom", "123456", "approve").await;
    assert!(
        answer.body.contains("Enter the code your device shows."),
        "{}",
        answer.body
    );

    // The limit on wrong codes (10 per 15 minutes per user): tom is stopped, and then even the
    // right code is refused for him, without deciding anything.
    for _ in 1..10 {
        let answer = decide(&app, &form, "BCDF-GHJK", "tom", "123456", "approve").await;
        assert!(
            answer.body.contains("That code is wrong"),
            "{}",
            answer.body
        );
    }
    let answer = decide(&app, &form, &user_code, "tom", "123456", "approve").await;
    assert!(
        answer.body.contains("Too many wrong codes were entered."),
        "{}",
        answer.body
    );
    let (_, json) = poll_device(&app, &device_code).await;
    assert_eq!(json["error"], "authorization_pending");
    // Another person is not stopped by tom's mistakes.
    let answer = decide(&app, &form, &user_code, "admin", "123456", "approve").await;
    assert!(
        answer.body.contains("You can return to your device"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn approving_gives_the_polling_device_its_tokens() {
    let app = app().await;
    let (device_code, user_code) = start_device(&app).await;
    let (status, json) = poll_device(&app, &device_code).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    // Polling again at once is too fast (RFC 8628 §3.5).
    let (status, json) = poll_device(&app, &device_code).await;
    assert_eq!((status, json["error"].as_str()), (400, Some("slow_down")));

    // The person types the code as they read it: lower case, no dash.
    let form = open(&app, None).await;
    let typed = user_code.replace('-', " ").to_lowercase();
    let answer = decide(&app, &form, &typed, "tom", "123456", "approve").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.assert_page_headers();
    assert!(
        answer.body.contains("You can return to your device."),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("<strong>cli</strong>"),
        "{}",
        answer.body
    );

    let (status, json) = poll_device(&app, &device_code).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["token_type"], "Bearer");
    assert!(json["refresh_token"].is_string(), "{json}");
    let access = json["access_token"].as_str().expect("access_token");
    let users = call(
        &app,
        http::Request::get("/api/users")
            .header("authorization", format!("Bearer {access}"))
            .body(axum::body::Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(users.status, 200, "{}", users.body);

    // The device code works once, and the user code is spent.
    let (_, json) = poll_device(&app, &device_code).await;
    assert_eq!(json["error"], "invalid_grant");
    let answer = decide(&app, &form, &user_code, "tom", "123456", "approve").await;
    assert!(answer
        .body
        .contains("That code is wrong, expired or already used."));
}

#[tokio::test]
async fn denying_answers_the_device_access_denied() {
    let app = app().await;
    let (device_code, user_code) = start_device(&app).await;
    let form = open(&app, Some(&user_code)).await;
    let answer = decide(&app, &form, &user_code, "tom", "123456", "deny").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.body.contains("was refused access"),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("You can return to your device."));
    let (status, json) = poll_device(&app, &device_code).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("access_denied"))
    );
    // Deciding needs a signed-in person, like approving.
    let (device_code, user_code) = start_device(&app).await;
    let answer = decide(&app, &form, &user_code, "tom", "wrong", "deny").await;
    assert!(answer.body.contains("Wrong username or password."));
    let (_, json) = poll_device(&app, &device_code).await;
    assert_eq!(json["error"], "authorization_pending");
}

#[tokio::test]
async fn a_user_with_a_second_factor_enters_a_one_time_code() {
    let app = app().await;
    let (device_code, user_code) = start_device(&app).await;
    let form = open(&app, Some(&user_code)).await;

    // The right password alone: asked for the code, nothing decided.
    let answer = decide(&app, &form, &user_code, "alice", "123456", "approve").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer
            .body
            .contains("This account also needs a one-time code."),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("name=\"username\" value=\"alice\""));
    assert!(answer.body.contains("name=\"otp\""));
    let (_, json) = poll_device(&app, &device_code).await;
    assert_eq!(json["error"], "authorization_pending");

    // A wrong code, then the wrong password with a right code: refused.
    let wrong = if alice_code() == "000000" {
        "111111"
    } else {
        "000000"
    };
    let mut fields = vec![
        ("user_code", user_code.as_str()),
        ("username", "alice"),
        ("password", "123456"),
        ("otp", wrong),
        ("decision", "approve"),
    ];
    let answer = answer_device(&app, &form, &fields).await;
    assert!(
        answer.body.contains("Wrong one-time code."),
        "{}",
        answer.body
    );
    let code = alice_code();
    fields[2].1 = "wrong";
    fields[3].1 = &code;
    let answer = answer_device(&app, &form, &fields).await;
    assert!(answer.body.contains("Wrong username or password."));

    // The password and the code her app shows now: approved.
    fields[2].1 = "123456";
    let answer = answer_device(&app, &form, &fields).await;
    assert!(
        answer.body.contains("You can return to your device."),
        "{}",
        answer.body
    );
    let (status, json) = poll_device(&app, &device_code).await;
    assert_eq!(status, 200, "{json}");

    // The same code does not work twice (RFC 6238 §5.2).
    let (_, user_code) = start_device(&app).await;
    fields[0].1 = &user_code;
    let answer = answer_device(&app, &form, &fields).await;
    assert!(
        answer.body.contains("That one-time code was already used."),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn the_device_grant_is_refused_to_other_clients_and_checks_its_parameters() {
    let app = app().await;
    // clientapp is not registered for the device grant.
    let page = post(
        &app,
        "/oauth/device_authorization",
        None,
        &[("client_id", "clientapp"), ("client_secret", "123456")],
    )
    .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("unauthorized_client"), "{}", page.body);
    // An unknown client.
    let page = post(
        &app,
        "/oauth/device_authorization",
        None,
        &[("client_id", "nobody")],
    )
    .await;
    assert_eq!(page.status, 401, "{}", page.body);
    // A scope beyond the client's.
    let page = post(
        &app,
        "/oauth/device_authorization",
        None,
        &[("client_id", "cli"), ("scope", "admin")],
    )
    .await;
    assert!(page.body.contains("invalid_scope"), "{}", page.body);
    // A device code polled by another client is not its own.
    let (device_code, _) = start_device(&app).await;
    let page = post(
        &app,
        "/oauth/token",
        None,
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", &device_code),
            ("client_id", "spa"),
        ],
    )
    .await;
    assert_eq!(page.status, 400, "{}", page.body);
}

#[tokio::test]
async fn over_https_the_device_csrf_cookie_is_host_only_and_secure() {
    let app = example::router(
        example::demo_server("https://auth.example.com", None)
            .await
            .expect("demo server"),
    );
    let (device_code, user_code) = start_device(&app).await;
    let form = open(&app, Some(&user_code)).await;
    let set = form.header("set-cookie").expect("set-cookie");
    assert!(set.starts_with("__Host-device_csrf="), "{set}");
    assert!(
        set.contains("; Path=/;") && set.contains("Secure") && set.contains("HttpOnly"),
        "{set}"
    );
    let answer = decide(&app, &form, &user_code, "tom", "123456", "approve").await;
    assert!(
        answer.body.contains("You can return to your device."),
        "{}",
        answer.body
    );
    let (status, _) = poll_device(&app, &device_code).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_second_tab_reuses_the_browsers_csrf_token() {
    let app = app().await;
    let first = open(&app, None).await;
    let second = call(
        &app,
        http::Request::get("/device")
            .header("cookie", first.cookie())
            .body(axum::body::Body::empty())
            .expect("request"),
    )
    .await;
    // So the first tab's form still works after the second was opened.
    assert_eq!(second.hidden("csrf_token"), first.hidden("csrf_token"));
    // A cookie that is not one of the page's own tokens is not reused.
    let planted = call(
        &app,
        http::Request::get("/device")
            .header("cookie", "device_csrf=x")
            .body(axum::body::Body::empty())
            .expect("request"),
    )
    .await;
    assert_ne!(planted.hidden("csrf_token"), "x");
}

// ---------------------------------------------------------------------------------------------
// Opened with a code (the `verification_uri_complete`), the page shows which client asks for
// what before the person approves (RFC 8628 §5.4).

/// What the page says about a pending request, and about a code that leads nowhere.
const ASKS: &str = "asks to use your account for:";
const IN_FRONT: &str = "Approve only if this code is shown on a device in front of you.";
const UNKNOWN: &str = "This code is unknown, expired or already used.";

/// A device authorization request as `cli` for `scope`: `(device_code, user_code)`.
async fn start_device_for(app: &axum::Router, scope: &str) -> (String, String) {
    let page = post(
        app,
        "/oauth/device_authorization",
        None,
        &[("client_id", "cli"), ("scope", scope)],
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

/// `GET uri` as if from `peer` (what `serve` gives each request).
async fn get_from(app: &axum::Router, uri: &str, peer: &str) -> Page {
    let peer: SocketAddr = peer.parse().expect("socket address");
    let mut request = http::Request::get(uri)
        .body(axum::body::Body::empty())
        .expect("request");
    request.extensions_mut().insert(ConnectInfo(peer));
    let page = call(app, request).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page
}

#[tokio::test]
async fn opened_with_a_live_code_the_page_shows_the_client_and_each_scope_token() {
    let app = app().await;
    let (device_code, user_code) = start_device_for(&app, "read write").await;
    let page = open(&app, Some(&user_code)).await;
    for needle in [
        "The application <strong>cli</strong> asks to use your account for:",
        "<li><code>read</code></li>",
        "<li><code>write</code></li>",
        IN_FRONT,
    ] {
        assert!(
            page.body.contains(needle),
            "{needle} missing: {}",
            page.body
        );
    }
    assert!(!page.body.contains(UNKNOWN), "{}", page.body);
    // Above the form, and the code is still filled in.
    let info = page.body.find(ASKS).expect("info");
    assert!(
        info < page.body.find("<form").expect("form"),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains(&format!("name=\"user_code\" value=\"{user_code}\"")));
    // As typed by hand, too: lower case, no dash.
    let typed = user_code.replace('-', "").to_lowercase();
    let page = open(&app, Some(&typed)).await;
    assert!(page.body.contains("<strong>cli</strong>"), "{}", page.body);

    // Looking did not decide anything, and the same one POST approves (as `cli` asked).
    let (_, json) = poll_device(&app, &device_code).await;
    assert_eq!(json["error"], "authorization_pending");
    let answer = decide(&app, &page, &user_code, "tom", "123456", "approve").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.body.contains("You can return to your device."),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("read write"), "{}", answer.body);
    let (status, json) = poll_device(&app, &device_code).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["scope"], "read write");

    // Once decided, the same address shows the neutral note instead.
    let page = open(&app, Some(&user_code)).await;
    assert!(page.body.contains(UNKNOWN), "{}", page.body);
    assert!(!page.body.contains(ASKS), "{}", page.body);
}

#[tokio::test]
async fn a_denied_code_reads_as_used_and_the_default_scope_is_shown() {
    let app = app().await;
    let (_, user_code) = start_device(&app).await; // no scope: cli's default, `read`
    let page = open(&app, Some(&user_code)).await;
    assert!(
        page.body.contains("<li><code>read</code></li>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<code>write</code>"), "{}", page.body);
    let answer = decide(&app, &page, &user_code, "tom", "123456", "deny").await;
    assert!(
        answer.body.contains("was refused access"),
        "{}",
        answer.body
    );
    let page = open(&app, Some(&user_code)).await;
    assert!(page.body.contains(UNKNOWN), "{}", page.body);
    assert!(!page.body.contains("<strong>cli</strong>"), "{}", page.body);
}

#[tokio::test]
async fn opened_with_an_unknown_code_the_page_shows_a_neutral_note_and_no_client() {
    let app = app().await;
    let _live = start_device(&app).await;
    let page = open(&app, Some("BCDF-GHJK")).await;
    assert!(page.body.contains(UNKNOWN), "{}", page.body);
    for absent in [ASKS, IN_FRONT, "<strong>cli</strong>", "<code>"] {
        assert!(!page.body.contains(absent), "{absent} in {}", page.body);
    }
    // The form is all there, with the code as given.
    assert!(page.body.contains("name=\"user_code\" value=\"BCDF-GHJK\""));
    assert!(page.body.contains("name=\"decision\" value=\"approve\""));
    // Without a code (or an empty one) nothing is looked up, and nothing is said about it.
    for uri in ["/device", "/device?user_code=", "/device?user_code=+-+"] {
        let page = get(&app, uri).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(!page.body.contains(UNKNOWN), "{uri}: {}", page.body);
        assert!(!page.body.contains(ASKS), "{uri}: {}", page.body);
    }
}

#[tokio::test]
async fn too_many_wrong_codes_from_one_address_leave_the_information_out_but_not_the_form() {
    let app = app().await;
    let (device_code, user_code) = start_device(&app).await;
    let live = format!("/device?user_code={user_code}");
    // The limit on wrong codes (10 per 15 minutes) counts per address.
    for _ in 0..10 {
        let page = get_from(&app, "/device?user_code=BCDF-GHJK", "192.0.2.1:40000").await;
        assert!(page.body.contains(UNKNOWN), "{}", page.body);
    }
    // Now even a live code shows nothing about itself, nor the note, to that address (any port).
    let page = get_from(&app, &live, "192.0.2.1:40001").await;
    page.assert_page_headers();
    assert!(!page.body.contains(ASKS), "{}", page.body);
    assert!(!page.body.contains(UNKNOWN), "{}", page.body);
    assert!(page.body.contains("name=\"decision\" value=\"approve\""));
    // Another address still sees it; in-process requests without an address share one key.
    let page = get_from(&app, &live, "192.0.2.2:40000").await;
    assert!(page.body.contains("<strong>cli</strong>"), "{}", page.body);
    let page = open(&app, Some(&user_code)).await;
    assert!(page.body.contains("<strong>cli</strong>"), "{}", page.body);

    // An IPv6 caller is counted by its /64: another address in it is stopped too, one outside
    // is not.
    for i in 0..10 {
        let peer = format!("[2001:db8:1:2::{i:x}]:40000");
        get_from(&app, "/device?user_code=BCDF-GHJK", &peer).await;
    }
    let page = get_from(&app, &live, "[2001:db8:1:2:ffff::1]:40000").await;
    assert!(!page.body.contains(ASKS), "{}", page.body);
    let page = get_from(&app, &live, "[2001:db8:1:3::1]:40000").await;
    assert!(page.body.contains(ASKS), "{}", page.body);
    // An IPv4 address written as IPv6 is the IPv4 address.
    let page = get_from(&app, &live, "[::ffff:192.0.2.1]:40000").await;
    assert!(!page.body.contains(ASKS), "{}", page.body);

    // The person's POST is counted per user, not per address: it still approves.
    let mut request = http::Request::get(live.as_str())
        .body(axum::body::Body::empty())
        .expect("request");
    request.extensions_mut().insert(ConnectInfo::<SocketAddr>(
        "192.0.2.1:40002".parse().expect("addr"),
    ));
    let form = call(&app, request).await;
    let answer = decide(&app, &form, &user_code, "tom", "123456", "approve").await;
    assert!(
        answer.body.contains("You can return to your device."),
        "{}",
        answer.body
    );
    let (status, _) = poll_device(&app, &device_code).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_client_id_and_scope_from_the_store_are_shown_escaped() {
    // A server whose device client has an id and a scope full of markup.
    let evil = "<script>alert(1)</script>";
    let clients = MemoryClientStore::new();
    clients.insert(
        Client::public(evil)
            .with_grant_types([GrantType::DeviceCode])
            .with_allowed_scope(Scope::parse("<b>x</b> 'q'&lt; read").expect("scope"))
            .with_default_scope(Scope::parse("read").expect("scope")),
    );
    let server = AuthorizationServer::builder(Arc::new(clients), Arc::new(MemoryTokenStore::new()))
        .issuer(ISSUER)
        .enable_device_code_grant(Arc::new(MemoryDeviceCodeStore::new()))
        .build()
        .expect("server");
    let app = example::router(server);
    let answer = post(
        &app,
        "/oauth/device_authorization",
        None,
        &[("client_id", evil), ("scope", "<b>x</b> 'q'&lt; read")],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let json: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
    let user_code = json["user_code"].as_str().expect("user_code");
    let page = open(&app, Some(user_code)).await;
    assert!(page.body.contains(ASKS), "{}", page.body);
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(!page.body.contains("<b>"), "{}", page.body);
    assert!(
        page.body
            .contains("<strong>&lt;script&gt;alert(1)&lt;/script&gt;</strong>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<li><code>&lt;b&gt;x&lt;/b&gt;</code></li>"),
        "{}",
        page.body
    );
    // An entity in a token is shown as typed, not decoded.
    assert!(
        page.body.contains("<li><code>'q'&amp;lt;</code></li>"),
        "{}",
        page.body
    );
}

// ---------------------------------------------------------------------------------------------
// Over real HTTP, served as `main` serves it, the caller's address is known.

/// One `GET path` over a fresh connection from the local address `from`, answering the body.
async fn http_get_from(server: SocketAddr, from: &str, path: &str) -> String {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{from}:0").parse().expect("local addr"))
        .expect("bind");
    let mut stream = socket.connect(server).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8(raw).expect("utf-8");
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_as_main_serves_it_wrong_codes_count_per_caller_address() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = example::demo_server(&format!("http://{addr}"), None)
        .await
        .expect("demo server");
    let app = example::router(server);
    let (_, user_code) = start_device(&app).await;
    tokio::spawn(example::serve(listener, app, std::future::pending()));
    let live = format!("/device?user_code={user_code}");

    let page = http_get_from(addr, "127.0.0.1", &live).await;
    assert!(page.contains("<strong>cli</strong>"), "{page}");
    for _ in 0..10 {
        let page = http_get_from(addr, "127.0.0.1", "/device?user_code=BCDF-GHJK").await;
        assert!(page.contains(UNKNOWN), "{page}");
    }
    let page = http_get_from(addr, "127.0.0.1", &live).await;
    assert!(!page.contains(ASKS), "{page}");
    assert!(page.contains("name=\"user_code\""), "{page}");
    // Another loopback address is another caller.
    let page = http_get_from(addr, "127.0.0.2", &live).await;
    assert!(page.contains("<strong>cli</strong>"), "{page}");
}
