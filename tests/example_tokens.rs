//! The example server's tokens over HTTP (in-process): who may introspect what (RFC 7662 §4),
//! and the refresh grace period (`REFRESH_GRACE_SECONDS`).

mod in_process;

use std::time::Duration;

use in_process::*;
use serde_json::Value;

async fn token(app: &axum::Router, form: &[(&str, &str)]) -> (u16, Value) {
    let page = post(app, "/oauth/token", None, form).await;
    let json = serde_json::from_str(&page.body).expect("json");
    (page.status, json)
}

/// tom's password grant at clientapp: the token response.
async fn tom_signs_in(app: &axum::Router) -> Value {
    let (status, json) = token(
        app,
        &[
            ("grant_type", "password"),
            ("username", "tom"),
            ("password", "123456"),
            ("client_id", "clientapp"),
            ("client_secret", "123456"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{json}");
    json
}

async fn refresh(app: &axum::Router, refresh_token: &str) -> (u16, Value) {
    token(
        app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "clientapp"),
            ("client_secret", "123456"),
        ],
    )
    .await
}

fn str_of<'a>(json: &'a Value, field: &str) -> &'a str {
    json[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {json}"))
}

/// The status of `GET /api/users` with `access_token`.
async fn users_status(app: &axum::Router, access_token: &str) -> u16 {
    call(
        app,
        http::Request::get("/api/users")
            .header("authorization", format!("Bearer {access_token}"))
            .body(axum::body::Body::empty())
            .expect("request"),
    )
    .await
    .status
}

const INACTIVE: &str = r#"{"active":false}"#;

#[tokio::test]
async fn service_may_introspect_every_access_token_and_other_clients_only_their_own() {
    let app = app().await;
    let tom = tom_signs_in(&app).await;
    let (access, refresh_token) = (str_of(&tom, "access_token"), str_of(&tom, "refresh_token"));
    let (status, service) = token(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "service"),
            ("client_secret", "service-secret"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{service}");
    let service_access = str_of(&service, "access_token");

    // service, the demo resource server, sees clientapp's access token, and whose it is.
    let info = introspect(&app, "service", "service-secret", access).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["username"], "tom", "{info}");
    assert_eq!(info["sub"], "user-tom", "{info}");
    assert_eq!(info["client_id"], "clientapp", "{info}");
    assert_eq!(info["scope"], "read", "{info}");
    // clientapp sees its own.
    let info = introspect(&app, "clientapp", "123456", access).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["username"], "tom", "{info}");
    // clientapp does not see service's: exactly inactive.
    let info = introspect(&app, "clientapp", "123456", service_access).await;
    assert_eq!(info.to_string(), INACTIVE);
    // service sees its own.
    let info = introspect(&app, "service", "service-secret", service_access).await;
    assert_eq!(info["active"], true, "{info}");

    // A refresh token is active only for the client it was issued to, resource server or not.
    let info = introspect(&app, "clientapp", "123456", refresh_token).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], "clientapp", "{info}");
    let info = introspect(&app, "service", "service-secret", refresh_token).await;
    assert_eq!(info.to_string(), INACTIVE);
}

#[tokio::test]
async fn a_token_from_the_login_page_names_the_user_who_signed_in() {
    let app = app().await;
    let (_, answer) = submit(&app, "tom", "123456", "approve").await;
    assert_eq!(answer.status, 302, "{}", answer.body);
    let params = answer.location_params();
    let (status, json) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", params.get("code").expect("code")),
            ("redirect_uri", CALLBACK),
            ("client_id", "spa"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{json}");
    let info = introspect(
        &app,
        "service",
        "service-secret",
        str_of(&json, "access_token"),
    )
    .await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], "spa", "{info}");
    assert_eq!(info["username"], "tom", "{info}");
    assert_eq!(info["sub"], "user-tom", "{info}");
}

/// Settings as `main` reads them, with `REFRESH_GRACE_SECONDS` set to `seconds`.
fn with_grace(seconds: &str) -> example::DemoSettings {
    example::DemoSettings::from_lookup(|name| {
        (name == "REFRESH_GRACE_SECONDS").then(|| seconds.to_owned())
    })
    .expect("settings")
}

#[tokio::test]
async fn with_a_refresh_grace_a_retried_refresh_gets_a_fresh_pair() {
    let settings = with_grace("30");
    assert_eq!(settings.refresh_grace, Duration::from_secs(30));
    let app = app_with(settings).await;
    let first = tom_signs_in(&app).await;
    let spent = str_of(&first, "refresh_token");

    // The rotation's reply is lost on the way...
    let (status, lost) = refresh(&app, spent).await;
    assert_eq!(status, 200, "{lost}");
    // ...so the client retries with the token it still has, and gets a fresh pair.
    let (status, retried) = refresh(&app, spent).await;
    assert_eq!(status, 200, "{retried}");
    for field in ["access_token", "refresh_token"] {
        assert_ne!(str_of(&retried, field), str_of(&lost, field), "{field}");
    }
    assert_eq!(
        users_status(&app, str_of(&retried, "access_token")).await,
        200
    );
    // The family lives on: the fresh refresh token rotates as usual.
    let (status, next) = refresh(&app, str_of(&retried, "refresh_token")).await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(users_status(&app, str_of(&next, "access_token")).await, 200);
    // The lost reply's refresh token is spent: presented after all, it is a replay, even within
    // the grace period, and revokes the family.
    let (status, json) = refresh(&app, str_of(&lost, "refresh_token")).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(users_status(&app, str_of(&next, "access_token")).await, 401);
}

#[tokio::test]
async fn without_a_refresh_grace_a_retried_refresh_revokes_the_family() {
    for settings in [example::DemoSettings::default(), with_grace("0")] {
        assert_eq!(settings.refresh_grace, Duration::ZERO);
        let app = app_with(settings).await;
        let first = tom_signs_in(&app).await;
        let spent = str_of(&first, "refresh_token");
        let (status, rotated) = refresh(&app, spent).await;
        assert_eq!(status, 200, "{rotated}");
        assert_eq!(
            users_status(&app, str_of(&rotated, "access_token")).await,
            200
        );

        let (status, json) = refresh(&app, spent).await;
        assert_eq!(
            (status, json["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        // The replay revoked what the rotation issued.
        assert_eq!(
            users_status(&app, str_of(&rotated, "access_token")).await,
            401
        );
        let (status, json) = refresh(&app, str_of(&rotated, "refresh_token")).await;
        assert_eq!(
            (status, json["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }
}

#[test]
fn refresh_grace_seconds_is_read_as_main_reads_it() {
    let read = |value: Option<&str>| {
        example::DemoSettings::from_lookup(|name| {
            value
                .filter(|_| name == "REFRESH_GRACE_SECONDS")
                .map(str::to_owned)
        })
    };
    assert_eq!(read(None).expect("unset").refresh_grace, Duration::ZERO);
    assert_eq!(read(Some("")).expect("empty").refresh_grace, Duration::ZERO);
    assert_eq!(
        read(Some(" 5 ")).expect("five").refresh_grace,
        Duration::from_secs(5)
    );
    for bad in ["-1", "1.5", "5s", "soon"] {
        let error = read(Some(bad)).expect_err(bad);
        assert!(error.contains("REFRESH_GRACE_SECONDS"), "{error}");
    }
}

/// The code a login through the page gives `spa`.
async fn spa_code(app: &axum::Router) -> String {
    let (_, answer) = submit(app, "tom", "123456", "approve").await;
    assert_eq!(answer.status, 302, "{}", answer.body);
    answer
        .location_params()
        .get("code")
        .cloned()
        .expect("a code")
}

fn exchange_form<'a>(code: &'a str, client: &'a [(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", VERIFIER),
    ];
    form.extend_from_slice(client);
    form
}

/// RFC 6749 §4.1.3 over HTTP: `clientapp` (which has the same redirect URI) presenting the code
/// issued to `spa` is refused without spending it, and once `spa` redeemed it, revokes nothing.
#[tokio::test]
async fn a_code_presented_by_another_client_is_refused_and_stays_usable() {
    let app = app().await;
    let code = spa_code(&app).await;
    let clientapp = [("client_id", "clientapp"), ("client_secret", "123456")];
    let (status, json) = token(&app, &exchange_form(&code, &clientapp)).await;
    assert_eq!((status, str_of(&json, "error")), (400, "invalid_grant"));
    let (status, tokens) = token(&app, &exchange_form(&code, &[("client_id", "spa")])).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, _) = token(&app, &exchange_form(&code, &clientapp)).await;
    assert_eq!(status, 400);
    assert_eq!(
        users_status(&app, str_of(&tokens, "access_token")).await,
        200
    );
    // A replay by spa itself revokes what the code issued.
    let (status, _) = token(&app, &exchange_form(&code, &[("client_id", "spa")])).await;
    assert_eq!(status, 400);
    assert_eq!(
        users_status(&app, str_of(&tokens, "access_token")).await,
        401
    );
}

/// RFC 6238 §5.2 over HTTP: once alice's authenticator code for one step went in, codes of that
/// step and earlier ones are refused, though clock drift would still allow them.
#[tokio::test]
#[allow(clippy::disallowed_methods)] // alice's phone and the server share the real clock
async fn once_a_one_time_code_went_in_earlier_ones_are_refused() {
    let app = app().await;
    let totp = grantor::Totp::from_base32(example::ALICE_TOTP_SECRET).expect("secret");
    let now = time::OffsetDateTime::now_utc();
    let (next, current) = (
        totp.generate(now + time::Duration::seconds(30)),
        totp.generate(now),
    );
    let mfa_token = |app: axum::Router| async move {
        let (status, json) = token(
            &app,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "123456"),
                ("client_id", "clientapp"),
                ("client_secret", "123456"),
            ],
        )
        .await;
        assert_eq!(status, 403, "{json}");
        str_of(&json, "mfa_token").to_owned()
    };
    let mfa = |mfa_token: String, otp: String| {
        let app = app.clone();
        async move {
            token(
                &app,
                &[
                    ("grant_type", "http://auth0.com/oauth/grant-type/mfa-otp"),
                    ("mfa_token", &mfa_token),
                    ("otp", &otp),
                    ("client_id", "clientapp"),
                    ("client_secret", "123456"),
                ],
            )
            .await
        }
    };
    let (status, json) = mfa(mfa_token(app.clone()).await, next).await;
    assert_eq!(status, 200, "{json}");
    let (status, json) = mfa(mfa_token(app.clone()).await, current).await;
    assert_eq!(
        (status, str_of(&json, "error")),
        (400, "invalid_grant"),
        "{json}"
    );
}
