//! `tracing` events: every issued and refused grant is logged with client id, grant type and
//! reason, and no token, secret or password ever appears.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use grantor::{ResourceRequest, Scope};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn grants_are_logged_without_secrets() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let f = fixture();
    let login = f.login().await;
    let refreshed = f
        .refresh(("clientapp", "123456"), &login.str("refresh_token"), "")
        .await;
    let replay = f
        .refresh(("clientapp", "123456"), &login.str("refresh_token"), "")
        .await;
    assert_eq!(replay.error(), "invalid_grant");
    f.post(
        ("clientapp", "123456"),
        "grant_type=password&username=tom&password=hunter2",
    )
    .await;
    f.post(
        ("clientapp", "s3cr3t-wrong"),
        "grant_type=password&username=tom&password=123456",
    )
    .await;
    f.store
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    f.post(
        ("clientapp", "123456"),
        "grant_type=password&username=tom&password=123456",
    )
    .await;
    f.store
        .fail
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let _ = f
        .server
        .bearer_validator()
        .validate(
            &ResourceRequest::new()
                .with_authorization(format!("Bearer {}", refreshed.str("access_token"))),
            &Scope::empty(),
        )
        .await;

    // The code flow: a request, an approval, an exchange and a replay.
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let grantor::AuthorizeOutcome::Pending { id, .. } = f
        .server
        .authorize(grantor::AuthorizationRequest::from_query(
            "response_type=code&client_id=pkce-app&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        ))
        .await
    else {
        panic!("expected a pending request");
    };
    let redirect = f
        .server
        .approve(&id, grantor::UserId::new("user-tom"), None)
        .await
        .expect("approve");
    let code = redirect_params(redirect.location(), false)
        .get("code")
        .cloned()
        .expect("code");
    let body = format!("grant_type=authorization_code&code={code}&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback&client_id=pkce-app&code_verifier={verifier}");
    let exchanged = f.token(grantor::TokenRequest::form(body.clone())).await;
    assert_eq!(exchanged.status, 200);
    f.token(grantor::TokenRequest::form(body)).await;

    // An approval and a denial decided at once, without a pending request.
    let at_once = |decision: grantor::Decision| {
        let server = f.server.clone();
        async move {
            let valid = server
                .validate_authorization(grantor::AuthorizationRequest::from_query(
                    "response_type=code&client_id=webapp&state=at-once",
                ))
                .await
                .expect("valid");
            match server.decide(valid, decision).await {
                grantor::AuthorizeOutcome::Redirect(r) => r,
                other => panic!("expected a redirect, got {other:?}"),
            }
        }
    };
    let approved_at_once = at_once(grantor::Decision::approve_all(grantor::UserId::new(
        "user-tom",
    )))
    .await;
    let at_once_code = redirect_params(approved_at_once.location(), false)
        .get("code")
        .cloned()
        .expect("code");
    at_once(grantor::Decision::Deny).await;

    let log = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf-8");
    for secret in [
        id.secret().to_owned(),
        code.clone(),
        at_once_code,
        verifier.to_owned(),
        exchanged.str("access_token"),
        exchanged.str("refresh_token"),
        redirect.location().to_owned(),
    ] {
        assert!(
            !log.contains(secret.as_str()),
            "{secret} leaked into the log:\n{log}"
        );
    }
    for needle in [
        "authorization request pending",
        "authorization approved",
        "reason=\"code_reused\"",
    ] {
        assert!(log.contains(needle), "{needle:?} missing from:\n{log}");
    }
    // Which decisions waited in the store and which were made at once, in order: the approval
    // after `authorize`, then the approval and the denial by `decide`.
    let decisions: Vec<(&str, &str)> = log
        .lines()
        .filter_map(|line| {
            let what = ["authorization approved", "authorization denied"]
                .into_iter()
                .find(|what| line.contains(what))?;
            let waited = ["waited=true", "waited=false"]
                .into_iter()
                .find(|w| line.contains(w))?;
            Some((what, waited))
        })
        .collect();
    assert_eq!(
        decisions,
        [
            ("authorization approved", "waited=true"),
            ("authorization approved", "waited=false"),
            ("authorization denied", "waited=false"),
        ],
        "{log}"
    );
    // What must be there.
    for needle in [
        "token issued",
        "token request refused",
        "client_id=\"clientapp\"",
        "grant_type=\"password\"",
        "grant_type=\"refresh_token\"",
        "reason=\"user_refused\"",
        "reason=\"wrong_client_secret\"",
        "reason=\"refresh_token_replayed\"",
        "family is revoked",
        "storage hook failed",
    ] {
        assert!(log.contains(needle), "{needle:?} missing from:\n{log}");
    }
    // One line per issued token is at `debug` (a server logging at `info` formats nothing per
    // token); refusals are at `warn`.
    let levels = |needle: &str| -> Vec<&str> {
        log.lines()
            .filter(|l| l.contains(needle))
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect()
    };
    assert!(levels("token issued").iter().all(|l| *l == "DEBUG"));
    assert!(!levels("token issued").is_empty());
    assert!(levels("token request refused").iter().all(|l| *l == "WARN"));
    // The refused client authentication still names the grant type it was for.
    assert!(log
        .lines()
        .any(|l| l.contains("wrong_client_secret") && l.contains("grant_type=\"password\"")));
    // What must never be there.
    let secrets = [
        "123456".to_owned(),
        "hunter2".to_owned(),
        "s3cr3t-wrong".to_owned(),
        login.str("access_token"),
        login.str("refresh_token"),
        refreshed.str("access_token"),
        refreshed.str("refresh_token"),
    ];
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "{secret} leaked into the log:\n{log}"
        );
    }
}

#[tokio::test]
async fn the_device_flow_and_mfa_are_logged_without_secrets() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let f = fixture();

    // The device flow: codes, a poll, an approval, tokens.
    let codes = answer(
        f.server
            .device_authorization(grantor::TokenRequest::form("client_id=cli"))
            .await,
    );
    let (device_code, user_code) = (codes.str("device_code"), codes.str("user_code"));
    let poll = |device_code: String| {
        grantor::TokenRequest::form(format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=cli&device_code={device_code}"
        ))
    };
    assert_eq!(
        f.token(poll(device_code.clone())).await.error(),
        "authorization_pending"
    );
    let typed = grantor::UserCode::new(&user_code);
    let shown = f
        .server
        .device_request(&typed, CALLER)
        .await
        .expect("pending");
    f.server
        .approve_device(
            &typed,
            &shown.confirmation,
            CALLER,
            grantor::UserId::new("user-tom"),
            None,
        )
        .await
        .expect("approved");
    let device_tokens = f.token(poll(device_code.clone())).await;
    assert_eq!(device_tokens.status, 200);

    // MFA: mfa_required, a wrong code, the right one.
    let mfa = f
        .post(
            ("clientapp", "123456"),
            "grant_type=password&username=alice&password=123456",
        )
        .await;
    let mfa_token = mfa.str("mfa_token");
    let mfa_grant = "http%3A%2F%2Fauth0.com%2Foauth%2Fgrant-type%2Fmfa-otp";
    f.post(
        ("clientapp", "123456"),
        &format!("grant_type={mfa_grant}&mfa_token={mfa_token}&otp=000000"),
    )
    .await;
    use grantor::Clock as _;
    let otp = otp_at(f.clock.now());
    let mfa_tokens = f
        .post(
            ("clientapp", "123456"),
            &format!("grant_type={mfa_grant}&mfa_token={mfa_token}&otp={otp}"),
        )
        .await;
    assert_eq!(mfa_tokens.status, 200, "{}", mfa_tokens.json);

    let log = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf-8");
    for needle in [
        "device authorization issued",
        "device authorization approved",
        "reason=\"device_pending\"",
        "reason=\"mfa_required\"",
        "reason=\"otp_refused\"",
        "grant_type=\"http://auth0.com/oauth/grant-type/mfa-otp\"",
        "grant_type=\"urn:ietf:params:oauth:grant-type:device_code\"",
    ] {
        assert!(log.contains(needle), "{needle:?} missing from:\n{log}");
    }
    for secret in [
        device_code,
        user_code.clone(),
        user_code.replace('-', ""),
        device_tokens.str("access_token"),
        device_tokens.str("refresh_token"),
        mfa_token,
        otp,
        mfa_tokens.str("access_token"),
        "123456".to_owned(),
    ] {
        assert!(
            !log.contains(secret.as_str()),
            "{secret} leaked into the log:\n{log}"
        );
    }
}
