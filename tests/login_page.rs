//! The example's login and consent page, driven in-process.

mod in_process;

use in_process::*;

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
        "name=\"otp\"",
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
    let mut request = grantor::conformance::pending(time::OffsetDateTime::UNIX_EPOCH, 0);
    request.client_id = grantor::ClientId::new("<script>alert(1)</script>");
    request.redirect_uri = grantor::RedirectUri::new(CALLBACK);
    request.scope = "read".parse().expect("scope");
    request.state = None;
    request.code_challenge = None;
    let retry = example::Retry {
        message: Some("<i>message</i>"),
        username: "<u>name</u>",
    };
    let html = example::login_form(&request, "\"><b>", "x", retry).into_string();
    assert!(
        !html.contains("<script>")
            && !html.contains("<b>")
            && !html.contains("<i>")
            && !html.contains("<u>"),
        "{html}"
    );
    assert!(html.contains("&lt;script&gt;"));
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

#[tokio::test]
async fn a_user_with_a_second_factor_is_asked_for_a_one_time_code() {
    let app = app().await;
    // alice's right password alone: the form again, asking for the code, her name kept.
    let (form, answer) = submit(&app, "alice", "123456", "approve").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.header("location").is_none());
    answer.assert_page_headers();
    assert!(
        answer
            .body
            .contains("This account also needs a one-time code."),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("name=\"username\" value=\"alice\""));
    assert!(answer.body.contains("name=\"otp\""));

    // A wrong code: the form again.
    let wrong = if alice_code() == "000000" {
        "111111"
    } else {
        "000000"
    };
    let again = answer_form_with_otp(&app, &form, "alice", "123456", wrong, "approve").await;
    assert_eq!(again.status, 200);
    assert!(
        again.body.contains("Wrong one-time code."),
        "{}",
        again.body
    );

    // The code her app shows now: the code for the client, as for anyone.
    let code = alice_code();
    let again = answer_form_with_otp(&app, &form, "alice", "123456", &code, "approve").await;
    assert_eq!(again.status, 302, "{}", again.body);
    let p = again.location_params();
    let token = post(
        &app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", p.get("code").expect("code")),
            ("redirect_uri", CALLBACK),
            ("client_id", "spa"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(token.status, 200, "{}", token.body);

    // The same code again, on a new sign-in: refused as used.
    let form = get(&app, &authorize_uri("spa", "st9")).await;
    let again = answer_form_with_otp(&app, &form, "alice", "123456", &code, "approve").await;
    assert_eq!(again.status, 200);
    assert!(
        again.body.contains("That one-time code was already used."),
        "{}",
        again.body
    );
    // tom has no second factor: a code he sends is not needed and does not matter.
    let form = get(&app, &authorize_uri("spa", "st10")).await;
    let again = answer_form_with_otp(&app, &form, "tom", "123456", "999999", "approve").await;
    assert_eq!(again.status, 302, "{}", again.body);
}
