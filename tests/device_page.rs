//! The example's device verification page (`/device`, RFC 8628 §3.3), driven in-process: a
//! device asks as `cli`; a person enters its user code, sees which application asks for what
//! (§5.4), signs in and decides; the device polls.
//!
//! The page takes two steps: `GET /device` is a form with only `user_code`; posting a code (or
//! opening `/device?user_code=…`) shows the confirmation page, with the client, its scope and the
//! sign-in form; only a decision posted from that page, with its `confirmation`, counts.

mod in_process;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use grantor::{
    async_trait, AuthorizationServer, Client, ClientId, GrantType, MemoryClientStore,
    MemoryDeviceCodeStore, MemoryTokenStore, MemoryUserVerifier, OneTimeCode, OtpVerdict, Password,
    Scope, StoreError, UserId, UserVerdict, UserVerifier, Username,
};
use in_process::*;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What the pages say.
const IN_FRONT: &str = "Approve only if this code is shown on a device in front of you.";
const UNKNOWN: &str = "This code is unknown, expired or already used.";
const TOO_MANY_CODES: &str = "Too many wrong codes were entered from your network.";
const DONE: &str = "You can return to your device.";
const ANOTHER_REQUEST: &str = "This code now stands for another request than the one you saw.";

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

/// The first step's form: one visible input, `user_code`, and no way to sign in or decide.
fn assert_code_form(page: &Page) {
    page.assert_page_headers();
    assert!(
        page.body
            .contains("<form method=\"post\" action=\"/device\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("name=\"user_code\""), "{}", page.body);
    assert!(page.body.contains("name=\"csrf_token\""), "{}", page.body);
    for absent in [
        "name=\"password\"",
        "type=\"password\"",
        "name=\"username\"",
        "name=\"otp\"",
        "name=\"decision\"",
        "name=\"confirmation\"",
        ASKS,
    ] {
        assert!(!page.body.contains(absent), "{absent} in {}", page.body);
    }
}

/// The confirmation page of `cli`'s request for `user_code`.
fn assert_confirmation_page(page: &Page, user_code: &str) {
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_page_headers();
    assert_eq!(page.header("cache-control"), Some("no-store"));
    for needle in [
        "The application <strong>cli</strong> asks to use your account for:",
        IN_FRONT,
        "<form method=\"post\" action=\"/device\"",
        "name=\"username\"",
        "name=\"password\"",
        "name=\"otp\"",
        "name=\"decision\" value=\"approve\"",
        "name=\"decision\" value=\"deny\"",
        "name=\"csrf_token\"",
        "name=\"confirmation\"",
    ] {
        assert!(
            page.body.contains(needle),
            "{needle} missing: {}",
            page.body
        );
    }
    assert_eq!(page.hidden("user_code"), user_code);
    assert!(!page.hidden("confirmation").is_empty());
    // What is asked comes before the form that decides.
    let info = page.body.find(ASKS).expect("info");
    assert!(
        info < page.body.find("<form").expect("form"),
        "{}",
        page.body
    );
}

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

async fn assert_pending(app: &axum::Router, device_code: &str) {
    let (status, json) = poll_device(app, device_code).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("authorization_pending")),
        "{json}"
    );
}

#[tokio::test]
async fn the_first_step_is_a_code_form_without_a_password_field() {
    let app = app().await;
    let page = open(&app, None).await;
    assert_code_form(&page);
    assert!(page.body.contains("value=\"\""), "{}", page.body);
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
    // An empty code given in the address is the same form, with nothing said about it.
    for uri in ["/device?user_code=", "/device?user_code=+-+"] {
        let page = get(&app, uri).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_code_form(&page);
        assert!(!page.body.contains(UNKNOWN), "{uri}: {}", page.body);
        assert!(!page.body.contains("p class=\"error\""), "{}", page.body);
    }
}

#[tokio::test]
async fn posting_a_code_shows_the_client_its_scope_and_the_sign_in_form() {
    let app = app().await;
    let (device_code, user_code) = start_device_for(&app, "read write").await;
    let form = open(&app, None).await;
    // Typed as read: lower case, a space for the dash.
    let typed = user_code.replace('-', " ").to_lowercase();
    let page = answer_device(&app, &form, &[("user_code", &typed)]).await;
    assert_confirmation_page(&page, &user_code);
    for needle in [
        "<li><code>read</code></li>",
        "<li><code>write</code></li>",
        &format!("<strong class=\"code\">{user_code}</strong>"),
    ] {
        assert!(
            page.body.contains(needle),
            "{needle} missing: {}",
            page.body
        );
    }
    // The same CSRF token throughout: the cookie stays the browser's.
    assert_eq!(page.hidden("csrf_token"), form.hidden("csrf_token"));
    assert_eq!(page.cookie(), form.cookie());
    // Looking decided nothing.
    assert_pending(&app, &device_code).await;

    // A decision from it approves what `cli` asked for.
    let answer = decide_device(&app, &page, "tom", "123456", "approve").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains(DONE), "{}", answer.body);
    assert!(answer.body.contains("read write"), "{}", answer.body);
    let (status, json) = poll_device(&app, &device_code).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["scope"], "read write");

    // Once decided, the code leads back to the code form.
    let page = answer_device(&app, &form, &[("user_code", &user_code)]).await;
    assert_code_form(&page);
    assert!(page.body.contains(UNKNOWN), "{}", page.body);
}

#[tokio::test]
async fn the_verification_uri_complete_opens_the_confirmation_page() {
    let app = app().await;
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
    assert_confirmation_page(&page, user_code);
    // No scope asked: cli's default, `read`, and only that.
    assert!(
        page.body.contains("<li><code>read</code></li>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<code>write</code>"), "{}", page.body);
    // As typed by hand, too: lower case, no dash.
    let typed = user_code.replace('-', "").to_lowercase();
    let page = open(&app, Some(&typed)).await;
    assert_confirmation_page(&page, user_code);
}

#[tokio::test]
async fn an_unknown_code_shows_the_code_form_again_with_a_message_and_no_password_field() {
    let app = app().await;
    let _live = start_device(&app).await;
    // Typed into the form.
    let form = open(&app, None).await;
    let page = answer_device(&app, &form, &[("user_code", "BCDF-GHJK")]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_code_form(&page);
    assert!(page.body.contains(UNKNOWN), "{}", page.body);
    assert!(
        page.body.contains("name=\"user_code\" value=\"BCDF-GHJK\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<strong>cli</strong>"), "{}", page.body);
    // In the address.
    let page = open(&app, Some("BCDF-GHJK")).await;
    assert_code_form(&page);
    assert!(page.body.contains(UNKNOWN), "{}", page.body);
    // Nothing typed: asked for again.
    let page = answer_device(&app, &form, &[("user_code", " - ")]).await;
    assert_code_form(&page);
    assert!(
        page.body.contains("Enter the code your device shows."),
        "{}",
        page.body
    );
    // With sign-in fields and a decision but an unknown code: still only the code form.
    let page = answer_device(
        &app,
        &form,
        &[
            ("user_code", "BCDF-GHJK"),
            ("username", "tom"),
            ("password", "123456"),
            ("decision", "approve"),
        ],
    )
    .await;
    assert_code_form(&page);
    assert!(page.body.contains(UNKNOWN), "{}", page.body);
}

#[tokio::test]
async fn a_decision_without_the_confirmation_decides_nothing() {
    let app = app().await;
    let (device_code, user_code) = start_device(&app).await;
    let form = open(&app, None).await;
    // The old one-POST form: code, credentials and decision, for approve and for deny, without
    // or with an empty confirmation. Each only shows the request.
    for decision in ["approve", "deny"] {
        for confirmation in [None, Some("")] {
            let mut fields = vec![
                ("user_code", user_code.as_str()),
                ("username", "tom"),
                ("password", "123456"),
                ("decision", decision),
            ];
            if let Some(c) = confirmation {
                fields.push(("confirmation", c));
            }
            let page = answer_device(&app, &form, &fields).await;
            assert_confirmation_page(&page, &user_code);
            assert!(!page.body.contains(DONE), "{}", page.body);
        }
    }
    assert_pending(&app, &device_code).await;
    // The page it showed does decide.
    let page = answer_device(&app, &form, &[("user_code", &user_code)]).await;
    let answer = decide_device(&app, &page, "tom", "123456", "approve").await;
    assert!(answer.body.contains(DONE), "{}", answer.body);
}

#[tokio::test]
async fn a_decision_with_the_confirmation_of_another_request_is_refused() {
    let app = app().await;
    let (first_device, first_code) = start_device_for(&app, "read").await;
    let (second_device, second_code) = start_device_for(&app, "read write").await;
    let first = confirm_device(&app, &first_code).await;
    let second = confirm_device(&app, &second_code).await;
    assert_ne!(first.hidden("confirmation"), second.hidden("confirmation"));

    // The first page's confirmation, with the second request's code.
    let forged = [
        first.hidden("confirmation"),
        "0".repeat(64),
        "forged".to_owned(),
    ];
    for confirmation in &forged {
        let answer = answer_device(
            &app,
            &second,
            &[
                ("user_code", &second_code),
                ("confirmation", confirmation),
                ("username", "tom"),
                ("password", "123456"),
                ("decision", "approve"),
            ],
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(!answer.body.contains(DONE), "{}", answer.body);
        assert!(answer.body.contains(ANOTHER_REQUEST), "{}", answer.body);
        // It shows the request the code names, to be decided anew.
        assert_confirmation_page(&answer, &second_code);
        assert_eq!(answer.hidden("confirmation"), second.hidden("confirmation"));
        assert!(
            answer.body.contains("<code>write</code>"),
            "{}",
            answer.body
        );
    }
    // Deny too.
    let answer = answer_device(
        &app,
        &second,
        &[
            ("user_code", &second_code),
            ("confirmation", &first.hidden("confirmation")),
            ("username", "tom"),
            ("password", "123456"),
            ("decision", "deny"),
        ],
    )
    .await;
    assert!(answer.body.contains(ANOTHER_REQUEST), "{}", answer.body);
    assert_pending(&app, &first_device).await;
    assert_pending(&app, &second_device).await;

    // Each page decides its own request.
    let answer = decide_device(&app, &second, "tom", "123456", "deny").await;
    assert!(
        answer.body.contains("was refused access"),
        "{}",
        answer.body
    );
    let answer = decide_device(&app, &first, "tom", "123456", "approve").await;
    assert!(answer.body.contains(DONE), "{}", answer.body);
}

#[tokio::test]
async fn a_post_without_or_with_a_wrong_csrf_token_is_refused() {
    let app = app().await;
    let (device_code, user_code) = start_device(&app).await;
    let page = confirm_device(&app, &user_code).await;
    let csrf = page.hidden("csrf_token");
    let confirmation = page.hidden("confirmation");
    let other = open(&app, None).await; // another browser's token
    let cases: [(Option<String>, &str); 5] = [
        (None, ""),
        (None, csrf.as_str()),
        (Some(page.cookie()), ""),
        (Some(page.cookie()), "forged"),
        (Some(other.cookie()), csrf.as_str()),
    ];
    for (cookie, token) in cases {
        // Step 2 and step 1 alike.
        for with_confirmation in [true, false] {
            let mut fields = vec![
                ("csrf_token", token),
                ("user_code", user_code.as_str()),
                ("username", "tom"),
                ("password", "123456"),
                ("decision", "approve"),
            ];
            if with_confirmation {
                fields.push(("confirmation", confirmation.as_str()));
            }
            let answer = post(&app, "/device", cookie.as_deref(), &fields).await;
            assert_eq!(answer.status, 400, "{cookie:?} {token}: {}", answer.body);
            answer.assert_page_headers();
            assert!(
                answer.body.contains("not sent from this site"),
                "{}",
                answer.body
            );
            assert!(!answer.body.contains(ASKS), "{}", answer.body);
        }
    }
    // Nothing was approved.
    assert_pending(&app, &device_code).await;
}

#[tokio::test]
async fn a_wrong_password_shows_the_confirmation_page_again_and_approves_nothing() {
    let app = app().await;
    let (device_code, user_code) = start_device(&app).await;
    let page = confirm_device(&app, &user_code).await;
    let answer = decide_device(&app, &page, "tom", "wrong", "approve").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.body.contains("Wrong username or password."),
        "{}",
        answer.body
    );
    // Still the same request, the username filled in, the same CSRF token and confirmation.
    assert_confirmation_page(&answer, &user_code);
    assert!(answer.body.contains("name=\"username\" value=\"tom\""));
    assert_eq!(answer.hidden("csrf_token"), page.hidden("csrf_token"));
    assert_eq!(answer.hidden("confirmation"), page.hidden("confirmation"));
    // An unknown user reads the same.
    let answer = decide_device(&app, &page, "nobody", "123456", "approve").await;
    assert!(answer.body.contains("Wrong username or password."));
    assert_pending(&app, &device_code).await;

    // The same page, with the right password, still works.
    let answer = decide_device(&app, &page, "tom", "123456", "approve").await;
    assert!(answer.body.contains(DONE), "{}", answer.body);
}

#[tokio::test]
async fn approving_gives_the_polling_device_its_tokens_for_the_person_who_approved() {
    let app = app().await;
    let (device_code, user_code) = start_device(&app).await;
    assert_pending(&app, &device_code).await;
    // Polling again at once is too fast (RFC 8628 §3.5).
    let (status, json) = poll_device(&app, &device_code).await;
    assert_eq!((status, json["error"].as_str()), (400, Some("slow_down")));

    let page = confirm_device(&app, &user_code).await;
    let answer = decide_device(&app, &page, "tom", "123456", "approve").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.assert_page_headers();
    assert!(answer.body.contains(DONE), "{}", answer.body);
    assert!(answer.body.contains("<h1>Device connected</h1>"));
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
    // The token is tom's, and says so to the resource server.
    let info = introspect(&app, "service", "service-secret", access).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], "cli", "{info}");
    assert_eq!(info["username"], "tom", "{info}");
    assert_eq!(info["sub"], "user-tom", "{info}");

    // The device code works once, and the user code is spent: the same page decides nothing.
    let (_, json) = poll_device(&app, &device_code).await;
    assert_eq!(json["error"], "invalid_grant");
    let answer = decide_device(&app, &page, "tom", "123456", "approve").await;
    assert!(answer.body.contains(UNKNOWN), "{}", answer.body);
    assert!(
        !answer.body.contains("name=\"password\""),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn denying_answers_the_device_access_denied() {
    let app = app().await;
    let (device_code, user_code) = start_device(&app).await;
    let page = open(&app, Some(&user_code)).await;
    let answer = decide_device(&app, &page, "tom", "123456", "deny").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.body.contains("was refused access"),
        "{}",
        answer.body
    );
    assert!(answer.body.contains(DONE));
    let (status, json) = poll_device(&app, &device_code).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("access_denied"))
    );
    // A denied code reads as used.
    let again = open(&app, Some(&user_code)).await;
    assert_code_form(&again);
    assert!(again.body.contains(UNKNOWN), "{}", again.body);

    // Deciding needs a signed-in person, like approving.
    let (device_code, user_code) = start_device(&app).await;
    let page = confirm_device(&app, &user_code).await;
    for (username, password) in [("tom", "wrong"), ("", "")] {
        let answer = decide_device(&app, &page, username, password, "deny").await;
        assert!(
            answer.body.contains("Wrong username or password."),
            "{}",
            answer.body
        );
    }
    assert_pending(&app, &device_code).await;
    // And a decision is one of the two buttons.
    let answer = decide_device(&app, &page, "tom", "123456", "maybe").await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(!answer.body.contains(DONE), "{}", answer.body);
}

#[tokio::test]
async fn a_user_with_a_second_factor_enters_a_one_time_code() {
    let app = app().await;
    let (device_code, user_code) = start_device(&app).await;
    let page = confirm_device(&app, &user_code).await;

    // The right password alone: asked for the code, nothing decided.
    let answer = decide_device(&app, &page, "alice", "123456", "approve").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer
            .body
            .contains("This account also needs a one-time code."),
        "{}",
        answer.body
    );
    assert_confirmation_page(&answer, &user_code);
    assert!(answer.body.contains("name=\"username\" value=\"alice\""));
    assert_pending(&app, &device_code).await;

    // A wrong code, then the wrong password with a right code: refused.
    let wrong = if alice_code() == "000000" {
        "111111"
    } else {
        "000000"
    };
    let mut fields = vec![
        ("username", "alice"),
        ("password", "123456"),
        ("otp", wrong),
        ("decision", "approve"),
    ];
    let answer = decide_device_with(&app, &page, &fields).await;
    assert!(
        answer.body.contains("Wrong one-time code."),
        "{}",
        answer.body
    );
    let code = alice_code();
    fields[1].1 = "wrong";
    fields[2].1 = &code;
    let answer = decide_device_with(&app, &page, &fields).await;
    assert!(answer.body.contains("Wrong username or password."));

    // The password and the code her app shows now: approved.
    fields[1].1 = "123456";
    let answer = decide_device_with(&app, &page, &fields).await;
    assert!(answer.body.contains(DONE), "{}", answer.body);
    let (status, json) = poll_device(&app, &device_code).await;
    assert_eq!(status, 200, "{json}");

    // The same code does not work twice (RFC 6238 §5.2).
    let (_, user_code) = start_device(&app).await;
    let page = confirm_device(&app, &user_code).await;
    let answer = decide_device_with(&app, &page, &fields).await;
    assert!(
        answer.body.contains("That one-time code was already used."),
        "{}",
        answer.body
    );
}

/// A user verifier that remembers which client each password check was for.
struct RecordingVerifier {
    users: MemoryUserVerifier,
    clients: Mutex<Vec<String>>,
}

#[async_trait]
impl UserVerifier for RecordingVerifier {
    async fn verify_password(
        &self,
        username: &Username,
        password: &Password,
        client: &ClientId,
    ) -> Result<UserVerdict, StoreError> {
        self.clients
            .lock()
            .expect("lock")
            .push(client.as_str().to_owned());
        self.users.verify_password(username, password, client).await
    }

    async fn verify_otp(
        &self,
        _user: &UserId,
        _otp: &OneTimeCode,
        _now: time::OffsetDateTime,
    ) -> Result<OtpVerdict, StoreError> {
        Ok(OtpVerdict::Refused)
    }

    fn checks_one_time_codes(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn the_sign_in_is_for_the_device_that_asks() {
    let users = MemoryUserVerifier::new();
    users.add_user("tom", "user-tom", "123456");
    let verifier = Arc::new(RecordingVerifier {
        users,
        clients: Mutex::new(Vec::new()),
    });
    let app = example::router(
        AuthorizationServer::builder(
            Arc::new(example::demo_clients().expect("clients")),
            Arc::new(MemoryTokenStore::new()),
        )
        .issuer(ISSUER)
        .enable_device_code_grant(Arc::new(MemoryDeviceCodeStore::new()))
        .user_verifier(verifier.clone())
        .build()
        .expect("server"),
    );
    let (device_code, user_code) = start_device(&app).await;
    let page = confirm_device(&app, &user_code).await;
    let answer = decide_device(&app, &page, "tom", "wrong", "approve").await;
    assert!(answer.body.contains("Wrong username or password."));
    let answer = decide_device(&app, &page, "tom", "123456", "approve").await;
    assert!(answer.body.contains(DONE), "{}", answer.body);
    assert_eq!(*verifier.clients.lock().expect("lock"), ["cli", "cli"]);
    let (status, _) = poll_device(&app, &device_code).await;
    assert_eq!(status, 200);
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
    let page = open(&app, Some(&user_code)).await;
    let set = page.header("set-cookie").expect("set-cookie");
    assert!(set.starts_with("__Host-device_csrf="), "{set}");
    assert!(
        set.contains("; Path=/;") && set.contains("Secure") && set.contains("HttpOnly"),
        "{set}"
    );
    let answer = decide_device(&app, &page, "tom", "123456", "approve").await;
    assert!(answer.body.contains(DONE), "{}", answer.body);
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
    let (_, user_code) = start_device(&app).await;
    let page = answer_device(&app, &first, &[("user_code", &user_code)]).await;
    assert_confirmation_page(&page, &user_code);
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

#[tokio::test]
async fn reflected_values_are_escaped() {
    let app = app().await;
    // A code in the address, reflected into the code form.
    let page = open(&app, Some("\"><script>alert(1)</script>")).await;
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(
        page.body.contains("value=\"&quot;&gt;&lt;script&gt;"),
        "{}",
        page.body
    );
    // A typed code, reflected too.
    let form = open(&app, None).await;
    let page = answer_device(&app, &form, &[("user_code", "<script>x</script>")]).await;
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;"), "{}", page.body);

    // The confirmation page redrawn after a wrong sign-in: the username escaped, never the
    // password.
    let (_, user_code) = start_device(&app).await;
    let page = confirm_device(&app, &user_code).await;
    let answer = decide_device(
        &app,
        &page,
        "<b>tom</b>",
        "<i>secret-password</i>",
        "approve",
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    for raw in ["<b>", "<i>", "secret-password"] {
        assert!(!answer.body.contains(raw), "{raw} in {}", answer.body);
    }
    assert!(answer.body.contains("&lt;b&gt;tom&lt;/b&gt;"));

    // And both pages drawn on their own.
    let html = example::device_code_form(example::DeviceCodeForm {
        user_code: "<script>",
        csrf: "\"><u>",
        message: Some("<em>message</em>"),
    })
    .into_string();
    for raw in ["<script>", "<u>", "<em>"] {
        assert!(!html.contains(raw), "{raw} in {html}");
    }
    let client_id = ClientId::new("<b>evil</b>");
    let scope = Scope::parse("<i>all</i> read").expect("a scope may hold < and >");
    let html = example::device_confirm_form(example::DeviceConfirmForm {
        user_code: "<script>",
        csrf: "\"><u>",
        client_id: &client_id,
        scope: &scope,
        confirmation: "\"><s>",
        retry: example::Retry {
            message: Some("<em>message</em>"),
            username: "<q>",
        },
    })
    .into_string();
    for raw in ["<script>", "<u>", "<em>", "<s>", "<q>", "<b>", "<i>"] {
        assert!(!html.contains(raw), "{raw} in {html}");
    }
    assert!(html.contains("&lt;b&gt;evil&lt;/b&gt;"), "{html}");
    assert!(
        html.contains("<code>&lt;i&gt;all&lt;/i&gt;</code>"),
        "{html}"
    );
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
// Wrong codes count per caller address (RFC 8628 §5.1), whichever step looks the code up.

/// tom approves from a confirmation page, as if from `peer`.
async fn decide_from(app: &axum::Router, page: &Page, peer: &str) -> Page {
    let fields = [
        ("csrf_token", page.hidden("csrf_token")),
        ("user_code", page.hidden("user_code")),
        ("confirmation", page.hidden("confirmation")),
        ("username", "tom".to_owned()),
        ("password", "123456".to_owned()),
        ("decision", "approve".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    post_as(app, "/device", Some(&page.cookie()), &fields, Some(peer)).await
}

#[tokio::test]
async fn too_many_wrong_codes_from_one_address_stop_its_lookups_and_decisions() {
    let app = app().await;
    let (device_code, user_code) = start_device(&app).await;
    let live = format!("/device?user_code={user_code}");
    // A confirmation page opened from the address before it is stopped.
    let page = get_from(&app, &live, "192.0.2.1:40000").await;
    assert_confirmation_page(&page, &user_code);

    // The limit on wrong codes (10 per 15 minutes) counts per address: in the address and typed.
    for i in 0..10 {
        let wrong = if i % 2 == 0 {
            get_from(&app, "/device?user_code=BCDF-GHJK", "192.0.2.1:40000").await
        } else {
            post_as(
                &app,
                "/device",
                Some(&page.cookie()),
                &[
                    ("csrf_token", &page.hidden("csrf_token")),
                    ("user_code", "BCDF-GHJK"),
                ],
                Some("192.0.2.1:40001"),
            )
            .await
        };
        assert_eq!(wrong.status, 200, "{}", wrong.body);
        assert!(wrong.body.contains(UNKNOWN), "{}", wrong.body);
    }
    // Now even the live code shows nothing about itself to that address (any port): the code
    // form, with a message, 429 and Retry-After.
    let stopped = get_from(&app, &live, "192.0.2.1:40002").await;
    assert_eq!(stopped.status, 429, "{}", stopped.body);
    assert_code_form(&stopped);
    assert!(stopped.body.contains(TOO_MANY_CODES), "{}", stopped.body);
    assert!(stopped
        .header("retry-after")
        .and_then(|s| s.parse::<u64>().ok())
        .is_some_and(|s| s > 0));
    // A decision from the page it opened before is refused the same way, deciding nothing.
    let answer = decide_from(&app, &page, "192.0.2.1:40003").await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert!(answer.body.contains(TOO_MANY_CODES), "{}", answer.body);
    assert!(!answer.body.contains(DONE), "{}", answer.body);
    assert_pending(&app, &device_code).await;

    // Another address still sees it; an IPv4 address written as IPv6 is the same address.
    let page = get_from(&app, &live, "192.0.2.2:40000").await;
    assert_confirmation_page(&page, &user_code);
    let page = get_from(&app, &live, "[::ffff:192.0.2.1]:40000").await;
    assert_eq!(page.status, 429, "{}", page.body);

    // An IPv6 caller is counted by its /64: another address in it is stopped too, one outside
    // is not.
    for i in 0..10 {
        let peer = format!("[2001:db8:1:2::{i:x}]:40000");
        get_from(&app, "/device?user_code=BCDF-GHJK", &peer).await;
    }
    let page = get_from(&app, &live, "[2001:db8:1:2:ffff::1]:40000").await;
    assert_eq!(page.status, 429, "{}", page.body);
    assert!(!page.body.contains(ASKS), "{}", page.body);
    let page = get_from(&app, &live, "[2001:db8:1:3::1]:40000").await;
    assert_confirmation_page(&page, &user_code);

    // A person at another address decides.
    let answer = decide_from(&app, &page, "192.0.2.2:40001").await;
    assert!(answer.body.contains(DONE), "{}", answer.body);
    let (status, _) = poll_device(&app, &device_code).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_as_main_serves_it_wrong_codes_count_per_caller_address() {
    let addr = serve_example(
        example::DemoSettings::default(),
        Arc::new(example::DemoUsers::seeded().expect("users")),
    )
    .await;
    let loopback = |last: u8| IpAddr::from([127, 0, 0, last]);
    let started = send_from(
        addr,
        loopback(1),
        http_post("/oauth/device_authorization", None, None, "client_id=cli"),
    )
    .await;
    let user_code = started.json()["user_code"]
        .as_str()
        .expect("user_code")
        .to_owned();
    let live = format!("/device?user_code={user_code}");

    let page = send_from(addr, loopback(1), http_get(&live, None)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<strong>cli</strong>"), "{}", page.body);
    for _ in 0..10 {
        let page = send_from(
            addr,
            loopback(1),
            http_get("/device?user_code=BCDF-GHJK", None),
        )
        .await;
        assert!(page.body.contains(UNKNOWN), "{}", page.body);
    }
    let page = send_from(addr, loopback(1), http_get(&live, None)).await;
    assert_eq!(page.status, 429, "{}", page.body);
    assert!(!page.body.contains(ASKS), "{}", page.body);
    assert!(!page.body.contains("name=\"password\""), "{}", page.body);
    assert!(page.body.contains("name=\"user_code\""), "{}", page.body);
    // Another loopback address is another caller.
    let page = send_from(addr, loopback(2), http_get(&live, None)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<strong>cli</strong>"), "{}", page.body);
}
