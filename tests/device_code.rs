//! The device authorization grant (RFC 8628), through the engine: the device authorization
//! endpoint (§3.1, §3.2), the verification page's methods (§3.3, §5.1) and polling (§3.4, §3.5).

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use grantor::{
    AuthorizationServer, Client, DeviceConfirmation, ErrorCode, GrantType, MemoryClientStore,
    MemoryTokenStore, Reason, ResourceRequest, Scope, TokenRequest, UserCode, UserId,
};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn scope(s: &str) -> Scope {
    s.parse().expect("scope")
}

impl Fixture {
    /// A device authorization request as the public client `cli`.
    async fn device_authorization(&self, body: &str) -> Answer {
        answer(
            self.server
                .device_authorization(TokenRequest::form(body.to_owned()))
                .await,
        )
    }

    /// `cli` asks for codes; answers (device_code, user_code).
    async fn cli_codes(&self, extra: &str) -> (String, String) {
        let a = self
            .device_authorization(&format!("client_id=cli{extra}"))
            .await;
        assert_eq!(a.status, 200, "{}", a.json);
        (a.str("device_code"), a.str("user_code"))
    }

    /// One poll of the token endpoint by `client` (a public client id).
    async fn poll(&self, client: &str, device_code: &str) -> Answer {
        self.token(TokenRequest::form(format!(
            "grant_type={DEVICE_GRANT}&device_code={device_code}&client_id={client}"
        )))
        .await
    }

    /// The confirmation the page would show for `user_code`, looked up from `caller`.
    async fn confirmation(
        &self,
        user_code: &str,
        caller: IpAddr,
    ) -> Result<DeviceConfirmation, grantor::OAuthError> {
        Ok(self
            .server
            .device_request(&UserCode::new(user_code), caller)
            .await?
            .confirmation)
    }

    /// tom, at `caller`, looks the code up and approves what he was shown.
    async fn approve(&self, user_code: &str, caller: IpAddr) -> Result<(), grantor::OAuthError> {
        let shown = self.confirmation(user_code, caller).await?;
        // As a page does: written into the form, read back from the post.
        let posted = DeviceConfirmation::new(shown.as_str());
        self.server
            .approve_device(
                &UserCode::new(user_code),
                &posted,
                caller,
                UserId::new("user-tom"),
                None,
            )
            .await
    }
}

fn wait(f: &Fixture, secs: u64) {
    f.clock.advance(Duration::from_secs(secs));
}

#[tokio::test]
async fn the_device_authorization_response_has_every_field_of_section_3_2() {
    let f = fixture();
    let a = f
        .device_authorization("client_id=cli&scope=read%20write")
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
    a.assert_no_store();
    let device_code = a.str("device_code");
    assert_eq!(device_code.len(), 43, "256 bits, base64url");
    let user_code = a.str("user_code");
    let (left, right) = user_code.split_once('-').expect("XXXX-XXXX");
    for half in [left, right] {
        assert_eq!(half.len(), 4, "{user_code}");
        assert!(
            half.bytes()
                .all(|b| grantor::USER_CODE_ALPHABET.contains(&b)),
            "{user_code}"
        );
    }
    assert_eq!(a.str("verification_uri"), format!("{ISSUER}/device"));
    assert_eq!(
        a.str("verification_uri_complete"),
        format!("{ISSUER}/device?user_code={user_code}")
    );
    assert_eq!(a.json["expires_in"], 600);
    assert_eq!(a.json["interval"], 5);
    // The store is keyed by hashes: the device code's and the normalised user code's.
    use grantor::DeviceCodeStore as _;
    let now = grantor::Clock::now(&*f.clock);
    let by_user_code = f
        .devices
        .find_device_authorization(
            &grantor::UserCodeHash::of(&grantor::UserCode::new(user_code.replace('-', ""))),
            now,
        )
        .await
        .expect("find");
    assert_eq!(
        by_user_code.map(|r| r.client_id.into_string()),
        Some("cli".to_owned())
    );
    let by_device_code = f
        .devices
        .find_device(
            &grantor::DeviceCodeHash::of(&grantor::DeviceCode::new(device_code.as_str())),
            now,
        )
        .await
        .expect("find");
    assert_eq!(
        by_device_code.map(|r| (r.client_id.into_string(), r.status)),
        Some(("cli".to_owned(), grantor::DeviceStatus::Pending))
    );
}

#[tokio::test]
async fn clients_authenticate_as_at_the_token_endpoint() {
    let f = fixture();
    // A confidential client with Basic.
    let a = answer(
        f.server
            .device_authorization(
                TokenRequest::form("scope=read").with_authorization(basic("tv", "tv-secret")),
            )
            .await,
    );
    assert_eq!(a.status, 200, "{}", a.json);
    // A confidential client without its secret, or with a wrong one.
    let a = f.device_authorization("client_id=tv").await;
    assert_eq!((a.status, a.error()), (401, "invalid_client"), "{}", a.json);
    let a = answer(
        f.server
            .device_authorization(
                TokenRequest::form("scope=read").with_authorization(basic("tv", "wrong")),
            )
            .await,
    );
    assert_eq!((a.status, a.error()), (401, "invalid_client"));
    a.assert_no_store();
    // No client at all.
    let a = f.device_authorization("scope=read").await;
    assert_eq!((a.status, a.error()), (401, "invalid_client"));
    // An unknown client.
    let a = f.device_authorization("client_id=nobody").await;
    assert_eq!((a.status, a.error()), (401, "invalid_client"));
}

#[tokio::test]
async fn a_client_not_registered_for_the_grant_or_asking_too_much_is_refused() {
    let f = fixture();
    let a = f.device_authorization("client_id=spa").await;
    assert_eq!(
        (a.status, a.error()),
        (400, "unauthorized_client"),
        "{}",
        a.json
    );
    let a = f.device_authorization("client_id=cli&scope=admin").await;
    assert_eq!((a.status, a.error()), (400, "invalid_scope"));
    let a = f
        .device_authorization("client_id=cli&scope=read%20%20write")
        .await;
    assert_eq!((a.status, a.error()), (400, "invalid_scope"));
    assert!(f.devices.is_empty(), "nothing saved for refused requests");
    // Parameters sent twice are refused (RFC 6749 §3.2).
    let a = f
        .device_authorization("client_id=cli&scope=read&scope=write")
        .await;
    assert_eq!((a.status, a.error()), (400, "invalid_request"));
}

#[tokio::test]
async fn without_the_grant_enabled_the_endpoint_refuses() {
    let clients = Arc::new(clients());
    let server = AuthorizationServer::builder(clients, Arc::new(MemoryTokenStore::new()))
        .enable_client_credentials_grant()
        .issuer(ISSUER)
        .build()
        .expect("server");
    let a = answer(
        server
            .device_authorization(TokenRequest::form("client_id=cli"))
            .await,
    );
    assert_eq!(a.error(), "unauthorized_client");
    let a = answer(
        server
            .token(TokenRequest::form(format!(
                "grant_type={DEVICE_GRANT}&device_code=x&client_id=cli"
            )))
            .await,
    );
    assert_eq!(a.error(), "unsupported_grant_type");
    // And the device grant needs an issuer for its verification URI.
    let built = AuthorizationServer::builder(
        Arc::new(MemoryClientStore::new()),
        Arc::new(MemoryTokenStore::new()),
    )
    .enable_device_code_grant(Arc::new(grantor::MemoryDeviceCodeStore::new()))
    .build();
    assert_eq!(
        built.err(),
        Some(grantor::BuildError::DeviceGrantNeedsIssuer)
    );
}

#[tokio::test]
async fn polling_before_the_decision_is_pending_and_too_fast_is_slow_down() {
    let f = fixture();
    let (device_code, _) = f.cli_codes("").await;
    let a = f.poll("cli", &device_code).await;
    assert_eq!(
        (a.status, a.error()),
        (400, "authorization_pending"),
        "{}",
        a.json
    );
    a.assert_no_store();
    // Polled again at once: slow down, and the interval is now 10 s.
    let a = f.poll("cli", &device_code).await;
    assert_eq!((a.status, a.error()), (400, "slow_down"));
    assert!(
        a.str("error_description").contains("10 seconds"),
        "{}",
        a.json
    );
    // 5 s later is still too soon for the new interval: it grows again, to 15 s.
    wait(&f, 5);
    let a = f.poll("cli", &device_code).await;
    assert_eq!(a.error(), "slow_down");
    assert!(
        a.str("error_description").contains("15 seconds"),
        "{}",
        a.json
    );
    // Waiting the whole new interval is fine.
    wait(&f, 15);
    let a = f.poll("cli", &device_code).await;
    assert_eq!(a.error(), "authorization_pending");
    // And the interval stays 15 s for this device code.
    wait(&f, 14);
    assert_eq!(f.poll("cli", &device_code).await.error(), "slow_down");
}

#[tokio::test]
async fn an_approved_device_gets_tokens_once() {
    let f = fixture();
    let (device_code, user_code) = f.cli_codes("&scope=read%20write").await;
    assert_eq!(
        f.poll("cli", &device_code).await.error(),
        "authorization_pending"
    );

    let request = f
        .server
        .device_request(&UserCode::new(&user_code), CALLER)
        .await
        .expect("pending request")
        .authorization;
    assert_eq!(request.client_id.as_str(), "cli");
    assert_eq!(request.scope, scope("read write"));
    f.approve(&user_code, CALLER).await.expect("approved");

    wait(&f, 5);
    let a = f.poll("cli", &device_code).await;
    assert_eq!(a.status, 200, "{}", a.json);
    a.assert_no_store();
    assert_eq!(a.json["token_type"], "Bearer");
    let refresh_token = a.str("refresh_token");
    let grant = f
        .server
        .bearer_validator()
        .validate(
            &ResourceRequest::new().with_authorization(format!("Bearer {}", a.str("access_token"))),
            &scope("write"),
        )
        .await
        .expect("valid token");
    assert_eq!(grant.user_id, Some(UserId::new("user-tom")));
    assert_eq!(grant.client_id.as_str(), "cli");

    // The device code is spent.
    wait(&f, 5);
    let a = f.poll("cli", &device_code).await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"));
    // The refresh token works as for any other grant.
    let a = f
        .token(TokenRequest::form(format!(
            "grant_type=refresh_token&client_id=cli&refresh_token={refresh_token}"
        )))
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
}

#[tokio::test]
async fn the_person_may_grant_less_than_was_asked() {
    let f = fixture();
    let (device_code, user_code) = f.cli_codes("&scope=read%20write").await;
    // More than asked is refused, and the request stays pending.
    let confirmation = f.confirmation(&user_code, CALLER).await.expect("shown");
    let err = f
        .server
        .approve_device(
            &UserCode::new(&user_code),
            &confirmation,
            CALLER,
            UserId::new("user-tom"),
            Some(scope("read write admin")),
        )
        .await
        .expect_err("too wide");
    assert_eq!(err.code(), ErrorCode::InvalidScope);
    f.server
        .approve_device(
            &UserCode::new(&user_code),
            &confirmation,
            CALLER,
            UserId::new("user-tom"),
            Some(scope("read")),
        )
        .await
        .expect("narrower scope");
    let a = f.poll("cli", &device_code).await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["scope"], "read", "a narrower scope is returned");
}

#[tokio::test]
async fn a_denied_device_hears_access_denied() {
    let f = fixture();
    let (device_code, user_code) = f.cli_codes("").await;
    let confirmation = f.confirmation(&user_code, CALLER).await.expect("shown");
    f.server
        .deny_device(&UserCode::new(&user_code), &confirmation, CALLER)
        .await
        .expect("denied");
    let a = f.poll("cli", &device_code).await;
    assert_eq!((a.status, a.error()), (400, "access_denied"), "{}", a.json);
    wait(&f, 5);
    assert_eq!(f.poll("cli", &device_code).await.error(), "access_denied");
    // A decided code cannot be decided again.
    let err = f.approve(&user_code, CALLER).await.expect_err("decided");
    assert_eq!(err.code(), ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn an_expired_device_code_hears_expired_token() {
    let f = fixture();
    let (device_code, user_code) = f.cli_codes("").await;
    wait(&f, 600);
    let a = f.poll("cli", &device_code).await;
    assert_eq!((a.status, a.error()), (400, "expired_token"), "{}", a.json);
    // The user code stopped working too.
    let err = f.approve(&user_code, CALLER).await.expect_err("expired");
    assert_eq!(err.code(), ErrorCode::InvalidRequest);
    // Approving just before expiry and polling after it is still expired.
    let (device_code, user_code) = f.cli_codes("").await;
    wait(&f, 599);
    f.approve(&user_code, CALLER)
        .await
        .expect("approved in time");
    wait(&f, 1);
    assert_eq!(f.poll("cli", &device_code).await.error(), "expired_token");
}

#[tokio::test]
async fn the_device_lifetime_and_interval_can_be_set() {
    let f = fixture_with(|b| {
        b.device_code_lifetime(Duration::from_secs(120))
            .device_polling_interval(Duration::from_secs(2))
    });
    let a = f.device_authorization("client_id=cli").await;
    assert_eq!(a.json["expires_in"], 120);
    assert_eq!(a.json["interval"], 2);
    let device_code = a.str("device_code");
    assert_eq!(
        f.poll("cli", &device_code).await.error(),
        "authorization_pending"
    );
    wait(&f, 2);
    assert_eq!(
        f.poll("cli", &device_code).await.error(),
        "authorization_pending"
    );
    wait(&f, 118);
    assert_eq!(f.poll("cli", &device_code).await.error(), "expired_token");
}

#[tokio::test]
async fn a_device_code_polled_by_another_client_is_invalid_grant_and_changes_nothing() {
    let f = fixture();
    let (device_code, user_code) = f.cli_codes("").await;
    assert_eq!(
        f.poll("cli", &device_code).await.error(),
        "authorization_pending"
    );
    wait(&f, 5);
    let a = f
        .token(
            TokenRequest::form(format!(
                "grant_type={DEVICE_GRANT}&device_code={device_code}"
            ))
            .with_authorization(basic("tv", "tv-secret")),
        )
        .await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"), "{}", a.json);
    // cli's pace was not disturbed: its poll is not "too soon".
    assert_eq!(
        f.poll("cli", &device_code).await.error(),
        "authorization_pending"
    );
    // Nor can another client take the tokens after approval.
    f.approve(&user_code, CALLER).await.expect("approved");
    let a = f
        .token(
            TokenRequest::form(format!(
                "grant_type={DEVICE_GRANT}&device_code={device_code}"
            ))
            .with_authorization(basic("tv", "tv-secret")),
        )
        .await;
    assert_eq!(a.error(), "invalid_grant");
    assert_eq!(f.poll("cli", &device_code).await.status, 200);
}

#[tokio::test]
async fn bad_polls_get_the_rfc_errors() {
    let f = fixture();
    let a = f
        .token(TokenRequest::form(format!(
            "grant_type={DEVICE_GRANT}&client_id=cli"
        )))
        .await;
    assert_eq!(
        (a.status, a.error()),
        (400, "invalid_request"),
        "{}",
        a.json
    );
    let a = f.poll("cli", "not-a-device-code").await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"));
    // A client not registered for the grant.
    let a = f
        .post(
            ("clientapp", "123456"),
            &format!("grant_type={DEVICE_GRANT}&device_code=x"),
        )
        .await;
    assert_eq!((a.status, a.error()), (400, "unauthorized_client"));
}

#[tokio::test]
async fn typed_user_codes_ignore_case_spaces_and_dashes() {
    let f = fixture();
    let (device_code, user_code) = f.cli_codes("").await;
    let typed = format!(" {} ", user_code.replace('-', " ").to_lowercase());
    f.server
        .device_request(&UserCode::new(&typed), CALLER)
        .await
        .expect("found as typed");
    f.approve(&user_code.replace('-', ""), CALLER)
        .await
        .expect("approved without the dash");
    let a = f.poll("cli", &device_code).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json["scope"], "read", "the default scope is named");
}

#[tokio::test]
async fn wrong_user_codes_are_limited_per_caller_address() {
    let f = fixture();
    let (_, user_code) = f.cli_codes("").await;
    for i in 0..10 {
        let err = f
            .server
            .device_request(&UserCode::new(format!("BBBB-BBB{i}")), CALLER)
            .await
            .expect_err("wrong code");
        assert_eq!(err.reason(), Some(Reason::UserCodeUnknown));
    }
    // The eleventh attempt is refused even with the right code, with a time to wait.
    let err = f
        .server
        .device_request(&UserCode::new(&user_code), CALLER)
        .await
        .expect_err("limited");
    assert_eq!(err.reason(), Some(Reason::UserCodeAttemptsExceeded));
    assert!(err.retry_after().is_some_and(|s| s > 0));
    let err = f.approve(&user_code, CALLER).await.expect_err("limited");
    assert_eq!(err.reason(), Some(Reason::UserCodeAttemptsExceeded));
    // Someone else is not affected, and the window closes.
    f.server
        .device_request(&UserCode::new(&user_code), OTHER_CALLER)
        .await
        .expect("another person");
    wait(&f, 15 * 60);
    let (_, user_code) = f.cli_codes("").await;
    f.approve(&user_code, CALLER)
        .await
        .expect("after the window");
}

#[tokio::test]
async fn right_codes_do_not_count_toward_the_limit() {
    let f = fixture();
    for _ in 0..12 {
        let (_, user_code) = f.cli_codes("").await;
        f.server
            .device_request(&UserCode::new(&user_code), CALLER)
            .await
            .expect("found");
    }
}

#[tokio::test]
async fn a_client_that_lost_the_grant_cannot_be_approved() {
    let f = fixture();
    let (_, user_code) = f.cli_codes("").await;
    f.clients.insert(
        Client::public("cli")
            .with_grant_types([GrantType::RefreshToken])
            .with_allowed_scope(scope("read"))
            .with_default_scope(scope("read")),
    );
    let err = f.approve(&user_code, CALLER).await.expect_err("withdrawn");
    assert_eq!(err.reason(), Some(Reason::GrantWithdrawn));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_polls_after_approval_yield_one_token_response() {
    let f = Arc::new(fixture());
    let (device_code, user_code) = f.cli_codes("").await;
    f.approve(&user_code, CALLER).await.expect("approved");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let f = f.clone();
        let device_code = device_code.clone();
        tasks.push(tokio::spawn(
            async move { f.poll("cli", &device_code).await },
        ));
    }
    let mut issued = 0;
    for t in tasks {
        let a = t.await.expect("task");
        if a.status == 200 {
            issued += 1;
        } else {
            assert_eq!(a.error(), "invalid_grant", "{}", a.json);
        }
    }
    assert_eq!(issued, 1);
}

/// Polls of one pending device code that arrive together answer as the same polls one after
/// another would: the first `authorization_pending`, every other `slow_down`, each with the
/// interval 5 s longer than the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_polls_of_a_pending_code_answer_as_sequential_ones() {
    let f = Arc::new(fixture());
    let (device_code, _) = f.cli_codes("").await;
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (f, barrier, device_code) = (f.clone(), barrier.clone(), device_code.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            f.poll("cli", &device_code).await
        }));
    }
    let (mut pending, mut intervals) = (0, Vec::new());
    for t in tasks {
        let a = t.await.expect("task");
        assert_eq!(a.status, 400, "{}", a.json);
        match a.error() {
            "authorization_pending" => pending += 1,
            "slow_down" => {
                let description = a.str("error_description");
                let interval: u64 = description
                    .split_whitespace()
                    .find_map(|word| word.parse().ok())
                    .expect("an interval");
                intervals.push(interval);
            }
            other => panic!("unexpected {other}: {}", a.json),
        }
    }
    assert_eq!((pending, intervals.len()), (1, 19));
    intervals.sort_unstable();
    assert_eq!(intervals, (2..=20).map(|n| n * 5).collect::<Vec<u64>>());
    // Every one was recorded: waiting the last interval less a second is still too soon.
    wait(&f, 99);
    assert_eq!(f.poll("cli", &device_code).await.error(), "slow_down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decisions_have_one_winner() {
    let f = Arc::new(fixture());
    let (device_code, user_code) = f.cli_codes("").await;
    let confirmation = f.confirmation(&user_code, CALLER).await.expect("shown");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let f = f.clone();
        let user_code = user_code.clone();
        let confirmation = confirmation.clone();
        tasks.push(tokio::spawn(async move {
            let code = UserCode::new(&user_code);
            if i % 2 == 0 {
                f.server
                    .approve_device(&code, &confirmation, CALLER, UserId::new("user-tom"), None)
                    .await
                    .is_ok()
            } else {
                f.server
                    .deny_device(&code, &confirmation, CALLER)
                    .await
                    .is_ok()
            }
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.expect("task") {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
    let a = f.poll("cli", &device_code).await;
    assert!(
        a.status == 200 || a.error() == "access_denied",
        "{}",
        a.json
    );
}

#[tokio::test]
async fn the_metadata_lists_the_device_endpoint_and_grant() {
    let f = fixture();
    let j = answer(f.server.metadata()).json;
    assert_eq!(
        j["device_authorization_endpoint"],
        format!("{ISSUER}/oauth/device_authorization")
    );
    let grants = j["grant_types_supported"].as_array().expect("list");
    assert!(grants.iter().any(|g| g == DEVICE_GRANT), "{j}");
}

/// RFC 8628 §5.4: the decision counts only for the request the person was shown. A
/// confirmation that is not the one of the request behind the code is refused, and the request
/// stays pending.
#[tokio::test]
async fn a_decision_needs_the_confirmation_of_the_request_shown() {
    let f = fixture();
    let (device_code, user_code) = f.cli_codes("").await;
    let (_, other_code) = f.cli_codes("&scope=write").await;
    let other_confirmation = f.confirmation(&other_code, CALLER).await.expect("shown");
    for confirmation in [
        DeviceConfirmation::new("made-up"),
        DeviceConfirmation::new(""),
        other_confirmation,
    ] {
        let err = f
            .server
            .approve_device(
                &UserCode::new(&user_code),
                &confirmation,
                CALLER,
                UserId::new("user-tom"),
                None,
            )
            .await
            .expect_err("not what was shown");
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
        assert_eq!(err.reason(), Some(Reason::DeviceConfirmationMismatch));
        let err = f
            .server
            .deny_device(&UserCode::new(&user_code), &confirmation, CALLER)
            .await
            .expect_err("not what was shown");
        assert_eq!(err.reason(), Some(Reason::DeviceConfirmationMismatch));
    }
    assert_eq!(
        f.poll("cli", &device_code).await.error(),
        "authorization_pending"
    );
    // The confirmation is the same however the code is typed, and every time it is shown.
    let shown = f.confirmation(&user_code, CALLER).await.expect("shown");
    let typed = user_code.to_lowercase().replace('-', " ");
    assert_eq!(
        f.confirmation(&typed, OTHER_CALLER).await.expect("shown"),
        shown
    );
    f.server
        .approve_device(
            &UserCode::new(typed),
            &shown,
            CALLER,
            grantor::ResourceOwner::new(UserId::new("user-tom")).with_username("tom"),
            None,
        )
        .await
        .expect("approved");
    wait(&f, 5);
    assert_eq!(f.poll("cli", &device_code).await.status, 200);
}

/// A store failure between collecting the approval and saving the tokens keeps the approval:
/// the device's next poll gets its tokens, and the person does not start again.
#[tokio::test]
async fn an_approval_survives_a_failed_save() {
    let f = fixture();
    let (device_code, user_code) = f.cli_codes("").await;
    f.approve(&user_code, CALLER).await.expect("approved");
    f.store
        .fail_saves
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let a = f.poll("cli", &device_code).await;
    assert_eq!((a.status, a.error()), (503, "temporarily_unavailable"));
    f.store
        .fail_saves
        .store(false, std::sync::atomic::Ordering::SeqCst);
    wait(&f, 5);
    let a = f.poll("cli", &device_code).await;
    assert_eq!(a.status, 200, "{}", a.json);
    wait(&f, 5);
    assert_eq!(f.poll("cli", &device_code).await.error(), "invalid_grant");
}

/// Anyone who knows a public client's id can ask for device codes: the requests waiting are
/// bounded per client and in all, and past a bound the endpoint answers 503
/// temporarily_unavailable with Retry-After, storing nothing.
#[tokio::test]
async fn device_requests_are_bounded() {
    let f = fixture_with(|b| {
        b.pending_request_limits(grantor::PendingLimits {
            per_client: 2,
            total: 3,
        })
    });
    for _ in 0..2 {
        f.cli_codes("").await;
    }
    let a = f.device_authorization("client_id=cli").await;
    assert_eq!((a.status, a.error()), (503, "temporarily_unavailable"));
    a.assert_no_store();
    let retry: u64 = a
        .header("Retry-After")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=600).contains(&retry), "{retry}");
    assert_eq!(f.devices.len(), 2);
    let tv = answer(
        f.server
            .device_authorization(
                TokenRequest::form("scope=read").with_authorization(basic("tv", "tv-secret")),
            )
            .await,
    );
    assert_eq!(tv.status, 200, "{}", tv.json);
    let tv = answer(
        f.server
            .device_authorization(
                TokenRequest::form("scope=read").with_authorization(basic("tv", "tv-secret")),
            )
            .await,
    );
    assert_eq!(tv.error(), "temporarily_unavailable");
    // Once they expire there is room again.
    wait(&f, 600);
    f.cli_codes("").await;
}

#[tokio::test]
async fn an_overlong_parameter_is_refused_and_nothing_is_stored() {
    let f = fixture();
    let scope = "r".repeat(grantor::MAX_PARAMETER_LENGTH + 1);
    let a = f
        .device_authorization(&format!("client_id=cli&scope={scope}"))
        .await;
    assert_eq!(
        (a.status, a.error()),
        (400, "invalid_request"),
        "{}",
        a.json
    );
    assert!(f.devices.is_empty());
}

/// The confirmation is derived from the user code: it never shows in `Debug` output (a log line
/// must not let anyone search for the code).
#[tokio::test]
async fn the_confirmation_is_redacted_in_debug_output() {
    let f = fixture();
    let (_, user_code) = f.cli_codes("").await;
    let shown = f
        .server
        .device_request(&UserCode::new(&user_code), CALLER)
        .await
        .expect("shown");
    let debug = format!("{shown:?}");
    assert!(!debug.contains(shown.confirmation.as_str()), "{debug}");
    assert!(debug.contains("DeviceConfirmation([redacted])"), "{debug}");
}
