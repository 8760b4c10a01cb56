//! A second factor on the password grant: `mfa_required` with an `mfa_token`, then the `mfa-otp`
//! grant (Auth0's "Resource Owner Password Flow with MFA"), and one-time codes accepted once
//! (RFC 6238 §5.2).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use grantor::{ClientId, OneTimeCode, Password, Reason, ResourceRequest, Scope, UserId, Username};

const MFA_GRANT: &str = "http%3A%2F%2Fauth0.com%2Foauth%2Fgrant-type%2Fmfa-otp";

impl Fixture {
    /// alice's password grant as clientapp: answers the mfa_token.
    async fn alice(&self, extra: &str) -> String {
        let a = self
            .post(
                ("clientapp", "123456"),
                &format!("grant_type=password&username=alice&password=123456{extra}"),
            )
            .await;
        assert_eq!((a.status, a.error()), (403, "mfa_required"), "{}", a.json);
        a.str("mfa_token")
    }

    async fn otp(&self, client: (&str, &str), mfa_token: &str, otp: &str) -> Answer {
        self.post(
            client,
            &format!("grant_type={MFA_GRANT}&mfa_token={mfa_token}&otp={otp}"),
        )
        .await
    }

    fn code_now(&self) -> String {
        otp_at(self.clock_now())
    }

    fn clock_now(&self) -> time::OffsetDateTime {
        use grantor::Clock as _;
        self.clock.now()
    }
}

#[tokio::test]
async fn a_right_password_with_a_second_factor_answers_mfa_required() {
    let f = fixture();
    let a = f
        .post(
            ("clientapp", "123456"),
            "grant_type=password&username=alice&password=123456",
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.json);
    a.assert_no_store();
    assert_eq!(a.error(), "mfa_required");
    assert!(!a.str("error_description").is_empty());
    assert_eq!(a.str("mfa_token").len(), 43, "256 bits, base64url");
    assert!(a.json.get("access_token").is_none());
}

#[tokio::test]
async fn a_wrong_password_never_tells_whether_there_is_a_second_factor() {
    let f = fixture();
    let wrong = |user: &str| format!("grant_type=password&username={user}&password=wrong");
    let alice = f.post(("clientapp", "123456"), &wrong("alice")).await;
    let tom = f.post(("clientapp", "123456"), &wrong("tom")).await;
    let nobody = f.post(("clientapp", "123456"), &wrong("nobody")).await;
    assert_eq!((alice.status, alice.error()), (400, "invalid_grant"));
    assert!(alice.json.get("mfa_token").is_none());
    assert_eq!(alice.json, tom.json);
    assert_eq!(alice.json, nobody.json);
}

#[tokio::test]
async fn the_right_one_time_code_finishes_the_sign_in_once() {
    let f = fixture();
    let mfa_token = f.alice("&scope=read%20write").await;
    let a = f
        .otp(("clientapp", "123456"), &mfa_token, &f.code_now())
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
    a.assert_no_store();
    assert!(a.json["refresh_token"].is_string());
    assert!(a.json.get("scope").is_none(), "the scope asked for");
    let grant = f
        .server
        .bearer_validator()
        .validate(
            &ResourceRequest::new().with_authorization(format!("Bearer {}", a.str("access_token"))),
            &"read write".parse::<Scope>().expect("scope"),
        )
        .await
        .expect("valid");
    assert_eq!(grant.user_id, Some(UserId::new("user-alice")));
    assert_eq!(grant.client_id.as_str(), "clientapp");
    // The mfa_token is single use.
    f.clock.advance(Duration::from_secs(30));
    let a = f
        .otp(("clientapp", "123456"), &mfa_token, &f.code_now())
        .await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"), "{}", a.json);
}

#[tokio::test]
async fn the_default_scope_is_reported_as_for_the_password_grant() {
    let f = fixture();
    let mfa_token = f.alice("").await;
    let a = f
        .otp(("clientapp", "123456"), &mfa_token, &f.code_now())
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["scope"], "read");
}

#[tokio::test]
async fn a_wrong_code_is_refused_and_the_mfa_token_stays_usable() {
    let f = fixture();
    let mfa_token = f.alice("").await;
    let a = f.otp(("clientapp", "123456"), &mfa_token, "000000").await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"), "{}", a.json);
    let a = f
        .otp(("clientapp", "123456"), &mfa_token, &f.code_now())
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
}

#[tokio::test]
async fn codes_from_one_step_either_side_are_accepted_and_further_ones_are_not() {
    let f = fixture();
    let step = step_of(f.clock_now());
    for (s, ok) in [
        (step - 2, false),
        (step + 2, false),
        (step - 1, true),
        (step + 1, true),
    ] {
        let mfa_token = f.alice("").await;
        let a = f
            .otp(("clientapp", "123456"), &mfa_token, &otp_for(s))
            .await;
        assert_eq!(a.status == 200, ok, "step {s}: {}", a.json);
    }
}

#[tokio::test]
async fn wrong_codes_are_limited_per_user_across_mfa_tokens() {
    let f = fixture();
    // Five wrong codes, spread over fresh sign-ins and both of alice's usernames: the count is
    // the user's, not the token's or the alias's.
    for i in 0..5 {
        let mfa_token = if i % 2 == 0 {
            f.alice("").await
        } else {
            let a = f
                .post(
                    ("clientapp", "123456"),
                    "grant_type=password&username=alice%40example.com&password=123456",
                )
                .await;
            assert_eq!(a.error(), "mfa_required", "{}", a.json);
            a.str("mfa_token")
        };
        let a = f.otp(("clientapp", "123456"), &mfa_token, "000000").await;
        assert_eq!(a.error(), "invalid_grant");
    }
    // The right code is refused now, without asking the verifier, with a time to wait.
    let mfa_token = f.alice("").await;
    let before = f.users.otp_calls.load(std::sync::atomic::Ordering::SeqCst);
    let a = f
        .otp(("clientapp", "123456"), &mfa_token, &f.code_now())
        .await;
    assert_eq!(a.error(), "invalid_grant");
    assert!(a.header("Retry-After").is_some(), "{:?}", a.response);
    assert_eq!(
        f.users.otp_calls.load(std::sync::atomic::Ordering::SeqCst),
        before
    );
    // The login page's variant shares the count.
    let err = f
        .server
        .verify_user_with_otp(
            &ClientId::new("pkce-app"),
            CALLER,
            &Username::new("alice"),
            Password::new("123456"),
            Some(OneTimeCode::new(f.code_now())),
        )
        .await
        .expect_err("limited");
    assert_eq!(err.reason(), Some(Reason::UsernameAttemptsExceeded));
    // Other users are not affected, and once the window closes alice can finish.
    f.login().await;
    f.clock.advance(Duration::from_secs(15 * 60));
    let a = f
        .otp(("clientapp", "123456"), &f.alice("").await, &f.code_now())
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
}

#[tokio::test]
async fn wrong_codes_count_against_the_client_too() {
    let f = fixture_with(|b| {
        b.login_limits(grantor::LoginLimits {
            per_username: None,
            per_client: Some(grantor::AttemptRule {
                max_failures: 3,
                window: Duration::from_secs(60),
            }),
            ..grantor::LoginLimits::default()
        })
    });
    let mfa_token = f.alice("").await;
    for _ in 0..3 {
        let a = f.otp(("clientapp", "123456"), &mfa_token, "000000").await;
        assert_eq!(a.error(), "invalid_grant");
    }
    let a = f
        .otp(("clientapp", "123456"), &mfa_token, &f.code_now())
        .await;
    assert_eq!(a.error(), "invalid_grant");
    assert!(a.header("Retry-After").is_some(), "{:?}", a.response);
}

#[tokio::test]
async fn a_code_accepted_once_is_refused_for_the_rest_of_its_window() {
    let f = fixture();
    let code = f.code_now();
    let first = f.alice("").await;
    assert_eq!(
        f.otp(("clientapp", "123456"), &first, &code).await.status,
        200
    );
    // A new sign-in with the same code, in the same step and in the next (drift), is refused.
    for _ in 0..2 {
        let again = f.alice("").await;
        let a = f.otp(("clientapp", "123456"), &again, &code).await;
        assert_eq!((a.status, a.error()), (400, "invalid_grant"), "{}", a.json);
        f.clock.advance(Duration::from_secs(30));
    }
    // The next code works.
    let again = f.alice("").await;
    let a = f.otp(("clientapp", "123456"), &again, &f.code_now()).await;
    assert_eq!(a.status, 200, "{}", a.json);
}

#[tokio::test]
async fn the_mfa_token_is_bound_to_its_client_and_expires() {
    let f = fixture();
    let mfa_token = f.alice("").await;
    let a = f
        .otp(("other", "other-secret"), &mfa_token, &f.code_now())
        .await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"), "{}", a.json);
    // Still usable by its own client.
    let a = f
        .otp(("clientapp", "123456"), &mfa_token, &f.code_now())
        .await;
    assert_eq!(a.status, 200, "{}", a.json);

    let mfa_token = f.alice("").await;
    f.clock.advance(Duration::from_secs(300));
    let a = f
        .otp(("clientapp", "123456"), &mfa_token, &f.code_now())
        .await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"), "{}", a.json);
}

#[tokio::test]
async fn bad_mfa_requests_get_the_rfc_errors() {
    let f = fixture();
    let a = f
        .post(
            ("clientapp", "123456"),
            &format!("grant_type={MFA_GRANT}&otp=123456"),
        )
        .await;
    assert_eq!(
        (a.status, a.error()),
        (400, "invalid_request"),
        "{}",
        a.json
    );
    let a = f
        .post(
            ("clientapp", "123456"),
            &format!("grant_type={MFA_GRANT}&mfa_token=x"),
        )
        .await;
    assert_eq!((a.status, a.error()), (400, "invalid_request"));
    let a = f.otp(("clientapp", "123456"), "unknown", "123456").await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"));
    // A client without the password grant may not take its second step.
    let a = f
        .otp(("service", "service-secret"), "unknown", "123456")
        .await;
    assert_eq!((a.status, a.error()), (400, "unauthorized_client"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_mfa_token_yields_tokens_once_under_concurrency() {
    let f = Arc::new(fixture());
    let mfa_token = f.alice("").await;
    let step = step_of(f.clock_now());
    // Three different right codes (drift either side), each sent several times at once.
    let mut tasks = Vec::new();
    for i in 0..30 {
        let f = f.clone();
        let mfa_token = mfa_token.clone();
        let code = otp_for(step - 1 + i % 3);
        tasks.push(tokio::spawn(async move {
            f.otp(("clientapp", "123456"), &mfa_token, &code)
                .await
                .status
        }));
    }
    let mut issued = 0;
    for t in tasks {
        if t.await.expect("task") == 200 {
            issued += 1;
        }
    }
    assert_eq!(issued, 1);
}

#[tokio::test]
async fn the_mfa_token_never_shows_in_debug_output() {
    let f = fixture();
    let a = f
        .post(
            ("clientapp", "123456"),
            "grant_type=password&username=alice&password=123456",
        )
        .await;
    let token = a.str("mfa_token");
    let mfa_token = grantor::MfaToken::new(token.clone());
    assert!(!format!("{mfa_token:?}").contains(&token));
    assert!(!format!("{:?}", f.server).contains(&token));
}

#[tokio::test]
async fn a_login_page_asks_for_the_code_too() {
    let f = fixture();
    let client = ClientId::new("pkce-app");
    let alice = Username::new("alice");
    let err = f
        .server
        .verify_user(&client, CALLER, &alice, Password::new("123456"))
        .await
        .expect_err("needs a code");
    assert_eq!(err.reason(), Some(Reason::OtpRequired));
    let err = f
        .server
        .verify_user_with_otp(
            &client,
            CALLER,
            &alice,
            Password::new("123456"),
            Some(OneTimeCode::new("000000")),
        )
        .await
        .expect_err("wrong code");
    assert_eq!(err.reason(), Some(Reason::OtpRefused));
    let user = f
        .server
        .verify_user_with_otp(
            &client,
            CALLER,
            &alice,
            Password::new("123456"),
            Some(OneTimeCode::new(f.code_now())),
        )
        .await
        .expect("signed in");
    assert_eq!(user.id.as_str(), "user-alice");
    assert_eq!(user.username, Some(Username::new("alice")));
    // A wrong password with a code is a wrong password.
    let err = f
        .server
        .verify_user_with_otp(
            &client,
            CALLER,
            &alice,
            Password::new("nope"),
            Some(OneTimeCode::new(f.code_now())),
        )
        .await
        .expect_err("wrong password");
    assert_eq!(err.reason(), Some(Reason::UserRefused));
    // Users without a second factor ignore the code.
    let tom = f
        .server
        .verify_user_with_otp(
            &client,
            CALLER,
            &Username::new("tom"),
            Password::new("123456"),
            Some(OneTimeCode::new("whatever")),
        )
        .await
        .expect("tom");
    assert_eq!(tom.id.as_str(), "user-tom");
}

#[tokio::test]
async fn the_metadata_lists_the_mfa_grant() {
    let f = fixture();
    let j = answer(f.server.metadata()).json;
    let grants = j["grant_types_supported"].as_array().expect("list");
    assert!(
        grants
            .iter()
            .any(|g| g == "http://auth0.com/oauth/grant-type/mfa-otp"),
        "{j}"
    );
}

#[tokio::test]
async fn store_failures_while_saving_the_mfa_token_are_server_errors() {
    struct Broken;
    #[grantor::async_trait]
    impl grantor::MfaStore for Broken {
        async fn save_mfa_token(
            &self,
            _: &grantor::MfaTokenHash,
            _: &grantor::MfaChallenge,
            _: time::OffsetDateTime,
        ) -> Result<(), grantor::StoreError> {
            Err(grantor::StoreError::unavailable("down"))
        }
        async fn find_mfa_token(
            &self,
            _: &grantor::MfaTokenHash,
            _: time::OffsetDateTime,
        ) -> Result<Option<grantor::MfaChallenge>, grantor::StoreError> {
            Err(grantor::StoreError::unavailable("down"))
        }
        async fn take_mfa_token(
            &self,
            _: &grantor::MfaTokenHash,
            _: time::OffsetDateTime,
        ) -> Result<Option<grantor::MfaChallenge>, grantor::StoreError> {
            Err(grantor::StoreError::unavailable("down"))
        }
        async fn advance_otp_counter(
            &self,
            _: &UserId,
            _: u64,
            _: time::OffsetDateTime,
            _: time::OffsetDateTime,
        ) -> Result<grantor::OtpAdvance, grantor::StoreError> {
            Err(grantor::StoreError::unavailable("down"))
        }
    }
    let f = fixture_with(|b| b.mfa_store(Arc::new(Broken)));
    let a = f
        .post(
            ("clientapp", "123456"),
            "grant_type=password&username=alice&password=123456",
        )
        .await;
    assert_eq!(
        (a.status, a.error()),
        (503, "temporarily_unavailable"),
        "{}",
        a.json
    );
    assert!(a.json.get("mfa_token").is_none());
    // Users without a second factor are not affected.
    f.login().await;
}

/// A verifier whose one user has TOTP with RFC 6238's test seed.
struct TotpVerifier(grantor::Totp);

#[grantor::async_trait]
impl grantor::UserVerifier for TotpVerifier {
    async fn verify_password(
        &self,
        username: &Username,
        password: &Password,
        _: &ClientId,
    ) -> Result<grantor::UserVerdict, grantor::StoreError> {
        Ok(
            if username.as_str() == "alice" && password.secret() == "123456" {
                grantor::UserVerdict::SecondFactorRequired(UserId::new("user-alice"))
            } else {
                grantor::UserVerdict::Refused
            },
        )
    }

    async fn verify_otp(
        &self,
        _: &UserId,
        otp: &OneTimeCode,
        now: time::OffsetDateTime,
    ) -> Result<grantor::OtpVerdict, grantor::StoreError> {
        Ok(self.0.verify(otp, now))
    }

    fn checks_one_time_codes(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn real_totp_codes_through_the_engine_on_the_replaceable_clock() {
    let totp = grantor::Totp::from_bytes(b"12345678901234567890".to_vec()).expect("seed");
    let f = fixture_with(|b| b.enable_password_grant(Arc::new(TotpVerifier(totp))));
    // RFC 6238 Appendix B: at 1111111109 the SHA-1 code is 07081804 (six digits: 081804).
    f.clock
        .set(time::OffsetDateTime::from_unix_timestamp(1_111_111_109).expect("time"));
    let mfa_token = f.alice("").await;
    let a = f.otp(("clientapp", "123456"), &mfa_token, "123456").await;
    assert_eq!(a.error(), "invalid_grant");
    let a = f.otp(("clientapp", "123456"), &mfa_token, "081804").await;
    assert_eq!(a.status, 200, "{}", a.json);
    // 1111111111 is the next step (050471); the previous code still passes the drift check
    // but was used, so it is refused; the new one is accepted.
    f.clock
        .set(time::OffsetDateTime::from_unix_timestamp(1_111_111_111).expect("time"));
    let mfa_token = f.alice("").await;
    let a = f.otp(("clientapp", "123456"), &mfa_token, "081804").await;
    assert_eq!(a.error(), "invalid_grant", "{}", a.json);
    let a = f.otp(("clientapp", "123456"), &mfa_token, "050471").await;
    assert_eq!(a.status, 200, "{}", a.json);
}

/// RFC 6238 §5.2 ("the verifier MUST NOT accept the second attempt of the OTP after the
/// successful validation has been issued for the first OTP"), carried forward: once a code of
/// one step was accepted, no code of that step or an earlier one is, though drift would still
/// allow it. A code read over someone's shoulder is useless once the user's own went in.
#[tokio::test]
async fn once_a_code_is_accepted_earlier_codes_are_refused() {
    let f = fixture();
    let step = step_of(f.clock_now());
    // The authenticator runs a little fast: the next step's code goes in first.
    let first = f.alice("").await;
    let a = f
        .otp(("clientapp", "123456"), &first, &otp_for(step + 1))
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
    for earlier in [step, step - 1] {
        let mfa_token = f.alice("").await;
        let a = f
            .otp(("clientapp", "123456"), &mfa_token, &otp_for(earlier))
            .await;
        assert_eq!((a.status, a.error()), (400, "invalid_grant"), "{}", a.json);
        assert_eq!(
            a.str("error_description"),
            "the one-time code was already used; wait for the next one"
        );
    }
    // The login page's variant refuses them too.
    let e = f
        .server
        .verify_user_with_otp(
            &ClientId::new("pkce-app"),
            CALLER,
            &Username::new("alice"),
            Password::new("123456"),
            Some(OneTimeCode::new(otp_for(step))),
        )
        .await
        .expect_err("earlier code");
    assert_eq!(e.reason(), Some(Reason::OtpReused));
    // A later step's code still works.
    f.clock.advance(Duration::from_secs(60));
    let mfa_token = f.alice("").await;
    let a = f
        .otp(("clientapp", "123456"), &mfa_token, &otp_for(step + 2))
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
}

/// A store failure after the mfa_token was spent keeps it: the user finishes with the next
/// one-time code instead of typing the password again.
#[tokio::test]
async fn the_mfa_token_survives_a_failed_save() {
    let f = fixture();
    let mfa_token = f.alice("").await;
    f.store
        .fail_saves
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let a = f
        .otp(("clientapp", "123456"), &mfa_token, &f.code_now())
        .await;
    assert_eq!((a.status, a.error()), (503, "temporarily_unavailable"));
    f.store
        .fail_saves
        .store(false, std::sync::atomic::Ordering::SeqCst);
    f.clock.advance(Duration::from_secs(30));
    let a = f
        .otp(("clientapp", "123456"), &mfa_token, &f.code_now())
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
}

/// A verifier that asks for a second factor but checks no one-time codes.
struct NoCodesVerifier;

#[grantor::async_trait]
impl grantor::UserVerifier for NoCodesVerifier {
    async fn verify_password(
        &self,
        _: &Username,
        _: &Password,
        _: &ClientId,
    ) -> Result<grantor::UserVerdict, grantor::StoreError> {
        Ok(grantor::UserVerdict::SecondFactorRequired(UserId::new(
            "user-alice",
        )))
    }
}

/// With a verifier that cannot check one-time codes, the mfa-otp grant is not enabled (nor
/// listed), and a second factor asked for is refused as a fault of the set-up, never an
/// mfa_token that no code could finish.
#[tokio::test]
async fn without_a_verifier_that_checks_codes_there_is_no_mfa_otp_grant() {
    let f = fixture_with(|b| b.enable_password_grant(Arc::new(NoCodesVerifier)));
    let metadata: serde_json::Value =
        serde_json::from_slice(f.server.metadata().body()).expect("json");
    assert!(!metadata["grant_types_supported"]
        .as_array()
        .expect("grants")
        .iter()
        .any(|g| g.as_str() == Some("http://auth0.com/oauth/grant-type/mfa-otp")));
    let a = f
        .post(
            ("clientapp", "123456"),
            "grant_type=password&username=alice&password=123456",
        )
        .await;
    assert_eq!((a.status, a.error()), (500, "server_error"), "{}", a.json);
    assert!(a.json.get("mfa_token").is_none());
    let err = f
        .server
        .verify_user(
            &ClientId::new("pkce-app"),
            CALLER,
            &Username::new("alice"),
            Password::new("123456"),
        )
        .await
        .expect_err("refused");
    assert_eq!(err.reason(), Some(Reason::SecondFactorUnchecked));
}

/// A token request that names its caller counts wrong one-time codes against that address,
/// as it counts wrong passwords.
#[tokio::test]
async fn wrong_codes_count_against_the_callers_address() {
    let f = fixture_with(|b| {
        b.login_limits(grantor::LoginLimits {
            per_address: Some(grantor::AttemptRule {
                max_failures: 2,
                window: Duration::from_secs(600),
            }),
            ..grantor::LoginLimits::default()
        })
    });
    let mfa_token = f.alice("").await;
    let from = |caller, body: String| {
        grantor::TokenRequest::form(body)
            .with_authorization(basic("clientapp", "123456"))
            .with_caller(caller)
    };
    for _ in 0..2 {
        let a = f
            .token(from(
                CALLER,
                format!("grant_type={MFA_GRANT}&mfa_token={mfa_token}&otp=000000"),
            ))
            .await;
        assert_eq!(a.error(), "invalid_grant", "{}", a.json);
    }
    // The address has had its two failures: tom's right password from it is refused.
    let tom = "grant_type=password&username=tom&password=123456".to_owned();
    let a = f.token(from(CALLER, tom.clone())).await;
    assert_eq!(a.error(), "invalid_grant", "{}", a.json);
    assert!(a.str("error_description").contains("too many"));
    let a = f.token(from(OTHER_CALLER, tom)).await;
    assert_eq!(a.status, 200, "{}", a.json);
}
