//! The example's device verification page (`/device`, RFC 8628 §3.3), driven in-process: a
//! device asks as `cli`, a person enters its user code, signs in and decides, the device polls.

mod in_process;

use in_process::*;

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

    // And the page drawn on its own.
    let html = example::device_form(example::DeviceForm {
        user_code: "<script>",
        csrf: "\"><u>",
        retry: example::Retry {
            message: Some("<em>message</em>"),
            username: "<s>",
        },
    })
    .into_string();
    for raw in ["<script>", "<u>", "<em>", "<s>"] {
        assert!(!html.contains(raw), "{raw} in {html}");
    }
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
