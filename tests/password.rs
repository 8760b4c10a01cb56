//! The password grant (RFC 6749 §4.3) and its brute-force protection.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use grantor::{AttemptRule, LoginLimits, Reason, ResourceRequest, Scope, TokenKind, TokenLookup};

#[tokio::test]
async fn the_worked_example_issues_tokens() {
    let f = fixture();
    let a = f.login().await;
    a.assert_no_store();
    assert_eq!(a.json["token_type"], "Bearer");
    assert_eq!(a.json["expires_in"], 3600);
    // No scope asked: the default is granted and, differing from the request, returned.
    assert_eq!(a.json["scope"], "read");
    assert_eq!(a.str("access_token").len(), 43);
    assert_eq!(a.str("refresh_token").len(), 43);
    assert_eq!(
        a.json.as_object().map(|o| o.len()),
        Some(5),
        "only the RFC's fields: {}",
        a.json
    );
}

#[tokio::test]
async fn a_requested_scope_within_the_allowed_is_granted_and_not_echoed() {
    let f = fixture();
    let a = f
        .post(
            ("clientapp", "123456"),
            "grant_type=password&username=tom&password=123456&scope=write+read",
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(
        a.json.get("scope").is_none(),
        "identical scope need not be returned"
    );
    let grant = f
        .server
        .bearer_validator()
        .validate(
            &ResourceRequest::new().with_authorization(format!("Bearer {}", a.str("access_token"))),
            &"read write".parse().expect("scope"),
        )
        .await
        .expect("token grants read write");
    assert_eq!(
        grant.user_id.map(|u| u.into_string()),
        Some("user-tom".into())
    );
    assert_eq!(grant.client_id.as_str(), "clientapp");
}

#[tokio::test]
async fn scope_beyond_the_client_or_malformed_is_invalid_scope() {
    let f = fixture();
    for scope in ["delete", "read+delete", "read++write", "%22quoted%22"] {
        let a = f
            .post(
                ("clientapp", "123456"),
                &format!("grant_type=password&username=tom&password=123456&scope={scope}"),
            )
            .await;
        assert_eq!((a.status, a.error()), (400, "invalid_scope"), "{scope}");
        a.assert_no_store();
    }
    // No scope asked and no default scope registered.
    let a = f
        .post(
            ("nodefault", "x"),
            "grant_type=password&username=tom&password=123456",
        )
        .await;
    assert_eq!((a.status, a.error()), (400, "invalid_scope"));
}

#[tokio::test]
async fn username_and_password_are_required() {
    let f = fixture();
    for body in [
        "grant_type=password&password=123456",
        "grant_type=password&username=tom",
        "grant_type=password&username=&password=123456",
    ] {
        let a = f.post(("clientapp", "123456"), body).await;
        assert_eq!((a.status, a.error()), (400, "invalid_request"), "{body}");
        assert!(a.str("error_description").contains("required"));
    }
    assert_eq!(f.users.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_read_the_same() {
    let f = fixture();
    let wrong = f
        .post(
            ("clientapp", "123456"),
            "grant_type=password&username=tom&password=nope",
        )
        .await;
    let unknown = f
        .post(
            ("clientapp", "123456"),
            "grant_type=password&username=nobody&password=nope",
        )
        .await;
    assert_eq!((wrong.status, wrong.error()), (400, "invalid_grant"));
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.json, unknown.json);
    let headers = |a: &Answer| {
        a.response
            .headers()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(headers(&wrong), headers(&unknown));
}

#[tokio::test]
async fn a_client_not_allowed_the_grant_is_unauthorized_client() {
    let f = fixture();
    let a = f
        .post(
            ("service", "service-secret"),
            "grant_type=password&username=tom&password=123456",
        )
        .await;
    assert_eq!((a.status, a.error()), (400, "unauthorized_client"));
    a.assert_no_store();
    assert_eq!(f.users.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_client_without_the_refresh_grant_gets_no_refresh_token() {
    let f = fixture();
    let a = f
        .post(
            ("norefresh", "x"),
            "grant_type=password&username=tom&password=123456",
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(a.json.get("refresh_token").is_none());
}

#[tokio::test]
async fn a_public_client_identifies_with_client_id_alone() {
    let f = fixture();
    let a = f
        .token(grantor::TokenRequest::form(
            "grant_type=password&username=tom&password=123456&client_id=spa",
        ))
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
}

#[tokio::test]
async fn the_limiter_refuses_a_username_after_five_failures_without_asking_the_verifier() {
    let f = fixture();
    for _ in 0..5 {
        let a = f
            .post(
                ("clientapp", "123456"),
                "grant_type=password&username=tom&password=bad",
            )
            .await;
        assert_eq!(a.error(), "invalid_grant");
    }
    assert_eq!(f.users.calls.load(Ordering::SeqCst), 5);
    // Even the right password is refused now, and the verifier is not asked; case and spaces
    // do not make a new username.
    for username in ["tom", "TOM", "%20Tom"] {
        let a = f
            .post(
                ("clientapp", "123456"),
                &format!("grant_type=password&username={username}&password=123456"),
            )
            .await;
        assert_eq!((a.status, a.error()), (400, "invalid_grant"), "{username}");
        assert!(a.str("error_description").contains("too many"));
        let retry: u64 = a
            .header("Retry-After")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(retry > 0 && retry <= 15 * 60, "Retry-After {retry}");
        a.assert_no_store();
    }
    assert_eq!(f.users.calls.load(Ordering::SeqCst), 5);
    // Another user is unaffected.
    let a = f
        .post(
            ("clientapp", "123456"),
            "grant_type=password&username=admin&password=123456",
        )
        .await;
    assert_eq!(a.status, 200);
    // The window closes.
    f.clock.advance(Duration::from_secs(15 * 60));
    f.login().await;
}

#[tokio::test]
async fn successes_do_not_count_as_failures() {
    let f = fixture();
    for _ in 0..20 {
        f.login().await;
    }
}

#[tokio::test]
async fn the_limiter_also_limits_per_client() {
    let f = fixture_with(|b| {
        b.login_limits(LoginLimits {
            per_username: None,
            per_client: Some(AttemptRule {
                max_failures: 3,
                window: Duration::from_secs(60),
            }),
            ..LoginLimits::default()
        })
    });
    for user in ["a", "b", "c"] {
        let a = f
            .post(
                ("clientapp", "123456"),
                &format!("grant_type=password&username={user}&password=x"),
            )
            .await;
        assert!(!a.str("error_description").contains("too many"));
    }
    let a = f
        .post(
            ("clientapp", "123456"),
            "grant_type=password&username=tom&password=123456",
        )
        .await;
    assert!(
        a.str("error_description").contains("too many"),
        "{}",
        a.json
    );
    // Another client is unaffected.
    let a = f
        .post(
            ("other", "other-secret"),
            "grant_type=password&username=tom&password=123456",
        )
        .await;
    assert_eq!(a.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_reach_the_verifier_at_most_the_limit() {
    let f = std::sync::Arc::new(fixture());
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            f.post(
                ("clientapp", "123456"),
                "grant_type=password&username=tom&password=guess",
            )
            .await
            .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.ok(), Some(400));
    }
    assert!(f.users.calls.load(Ordering::SeqCst) <= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_ins_in_flight_do_not_count_against_the_client() {
    let f = std::sync::Arc::new(fixture_with(|b| {
        b.login_limits(LoginLimits {
            per_username: None,
            per_client: Some(AttemptRule {
                max_failures: 3,
                window: Duration::from_secs(60),
            }),
            ..LoginLimits::default()
        })
    }));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            f.post(
                ("clientapp", "123456"),
                "grant_type=password&username=tom&password=123456",
            )
            .await
            .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.ok(), Some(200));
    }
}

#[tokio::test]
async fn the_limiter_can_be_disabled() {
    let f = fixture_with(|b| b.disable_login_limits());
    for _ in 0..10 {
        f.post(
            ("clientapp", "123456"),
            "grant_type=password&username=tom&password=bad",
        )
        .await;
    }
    f.login().await;
    assert_eq!(f.users.calls.load(Ordering::SeqCst), 11);
}

#[tokio::test]
async fn lifetimes_are_configurable_and_recorded() {
    let f = fixture_with(|b| {
        b.access_token_lifetime(Duration::from_secs(60))
            .refresh_token_lifetime(Duration::from_secs(600))
    });
    let a = f.login().await;
    assert_eq!(a.json["expires_in"], 60);
    let mut kinds = Vec::new();
    for (_, entry) in f.tokens.snapshot() {
        if let TokenLookup::Live(r) = entry {
            let ttl = r.expires_at - r.issued_at;
            match r.kind {
                TokenKind::Access => assert_eq!(ttl.whole_seconds(), 60),
                _ => assert_eq!(ttl.whole_seconds(), 600),
            }
            assert_eq!(r.scope, "read".parse::<Scope>().expect("scope"));
            kinds.push(r.kind);
        }
    }
    assert_eq!(kinds.len(), 2);
}

/// A pool of workers sharing one account, or a retry storm: 120 right passwords at once all
/// succeed, each with its own tokens, though the username allows 5 failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_right_passwords_all_succeed() {
    let f = std::sync::Arc::new(fixture());
    let tasks: Vec<_> = (0..120)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move {
                f.post(
                    ("clientapp", "123456"),
                    "grant_type=password&username=tom&password=123456",
                )
                .await
            })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        let a = t.await.expect("task");
        assert_eq!(a.status, 200, "{}", a.json);
        tokens.insert(a.str("access_token"));
    }
    assert_eq!(tokens.len(), 120);
    assert_eq!(f.users.calls(), 120);
}

/// The per-client limit is reserved before the verifier, like the username's: 50 wrong
/// passwords for 50 usernames at once reach the verifier at most `per_client` times.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_over_many_usernames_reach_the_verifier_at_most_the_client_limit() {
    let f = std::sync::Arc::new(fixture_with(|b| {
        b.login_limits(LoginLimits {
            per_client: Some(AttemptRule {
                max_failures: 10,
                window: Duration::from_secs(600),
            }),
            ..LoginLimits::default()
        })
    }));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let f = f.clone();
            tokio::spawn(async move {
                f.post(
                    ("clientapp", "123456"),
                    &format!("grant_type=password&username=user{i}&password=guess"),
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        let a = t.await.expect("task");
        assert_eq!((a.status, a.error()), (400, "invalid_grant"), "{}", a.json);
    }
    assert_eq!(f.users.calls(), 10);
}

/// A verifier that takes `delay` for every password, and never answers for the password `hang`.
struct SlowVerifier {
    inner: std::sync::Arc<CountingVerifier>,
    delay: Duration,
}

#[grantor::async_trait]
impl grantor::UserVerifier for SlowVerifier {
    async fn verify_password(
        &self,
        username: &grantor::Username,
        password: &grantor::Password,
        client: &grantor::ClientId,
    ) -> Result<grantor::UserVerdict, grantor::StoreError> {
        if password.secret() == "hang" {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(self.delay).await;
        self.inner.verify_password(username, password, client).await
    }
}

fn one_at_a_time(delay: Duration) -> Fixture {
    fixture_with(|b| {
        b.enable_password_grant(std::sync::Arc::new(SlowVerifier {
            inner: verifier(),
            delay,
        }))
        .login_limits(LoginLimits {
            per_username: Some(AttemptRule {
                max_failures: 1,
                window: Duration::from_secs(600),
            }),
            max_wait: Duration::from_millis(100),
            ..LoginLimits::default()
        })
    })
}

/// A sign-in that must wait for checks in flight waits, but not forever: past `max_wait` it is
/// told to come back (503 temporarily_unavailable, Retry-After), not that it failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waiting_for_a_place_is_bounded() {
    let f = std::sync::Arc::new(one_at_a_time(Duration::from_millis(500)));
    let tom = "grant_type=password&username=tom&password=123456";
    let first = {
        let f = f.clone();
        tokio::spawn(async move { f.post(("clientapp", "123456"), tom).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = f.post(("clientapp", "123456"), tom).await;
    assert_eq!(
        (second.status, second.error()),
        (503, "temporarily_unavailable"),
        "{}",
        second.json
    );
    assert_eq!(second.header("Retry-After"), Some("1"));
    second.assert_no_store();
    let first = first.await.expect("task");
    assert_eq!(first.status, 200, "{}", first.json);
    // Once the first is done, the place is free again.
    let third = f.post(("clientapp", "123456"), tom).await;
    assert_eq!(third.status, 200, "{}", third.json);
}

/// A sign-in whose request is dropped mid-check (the client hung up) holds its place until its
/// lease lapses, and then counts as a failure: dropping requests buys no guesses beyond the
/// limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_sign_in_counts_as_a_failure_once_its_lease_lapses() {
    let inner = verifier();
    let f = std::sync::Arc::new(fixture_with(|b| {
        b.enable_password_grant(std::sync::Arc::new(SlowVerifier {
            inner: inner.clone(),
            delay: Duration::ZERO,
        }))
        .login_limits(LoginLimits {
            per_username: Some(AttemptRule {
                max_failures: 2,
                window: Duration::from_secs(600),
            }),
            max_wait: Duration::from_millis(100),
            ..LoginLimits::default()
        })
    }));
    let guess = |f: std::sync::Arc<Fixture>| {
        tokio::spawn(async move {
            f.post(
                ("clientapp", "123456"),
                "grant_type=password&username=tom&password=hang",
            )
            .await
        })
    };
    let hung = [guess(f.clone()), guess(f.clone())];
    tokio::time::sleep(Duration::from_millis(50)).await;
    for task in hung {
        task.abort();
    }
    let tom = "grant_type=password&username=tom&password=123456";
    // While the dropped checks hold their places, others wait (and are told to come back).
    let a = f.post(("clientapp", "123456"), tom).await;
    assert_eq!(a.error(), "temporarily_unavailable", "{}", a.json);
    // Once the leases lapse they are two failures: the limit is reached.
    f.clock.advance(Duration::from_secs(31));
    let a = f.post(("clientapp", "123456"), tom).await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"), "{}", a.json);
    assert!(a.str("error_description").contains("too many"));
    assert_eq!(inner.calls(), 0, "the right password was never checked");
    // The window closes as usual.
    f.clock.advance(Duration::from_secs(600));
    let a = f.post(("clientapp", "123456"), tom).await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(inner.calls(), 1);
}

/// A fixture whose sign-ins allow three failures per caller address in ten minutes.
fn three_failures_per_address() -> Fixture {
    fixture_with(|b| {
        b.login_limits(LoginLimits {
            per_address: Some(AttemptRule {
                max_failures: 3,
                window: Duration::from_secs(600),
            }),
            ..LoginLimits::default()
        })
    })
}

/// A token request that names its caller (`TokenRequest::with_caller`) counts the password
/// grant's failures against that address too, across usernames.
#[tokio::test]
async fn the_password_grant_limits_failures_per_caller_address() {
    let f = three_failures_per_address();
    let sign_in = |caller: std::net::IpAddr, user: &str, password: &str| {
        grantor::TokenRequest::form(format!(
            "grant_type=password&username={user}&password={password}"
        ))
        .with_authorization(basic("clientapp", "123456"))
        .with_caller(caller)
    };
    for user in ["ann", "bob", "cid"] {
        let a = f.token(sign_in(CALLER, user, "Summer2026")).await;
        assert_eq!(a.error(), "invalid_grant", "{}", a.json);
    }
    let calls = f.users.calls();
    let a = f.token(sign_in(CALLER, "tom", "123456")).await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"), "{}", a.json);
    assert!(a.str("error_description").contains("too many"));
    assert_eq!(
        f.users.calls(),
        calls,
        "refused without asking the verifier"
    );
    let a = f.token(sign_in(OTHER_CALLER, "tom", "123456")).await;
    assert_eq!(a.status, 200, "{}", a.json);
}

/// A login page passes the caller's address: failures count against it across usernames, so
/// one password sprayed over many users is limited too (an IPv6 caller by its /64).
#[tokio::test]
async fn the_login_page_limits_failures_per_caller_address() {
    use std::net::IpAddr;
    let f = three_failures_per_address();
    let client = grantor::ClientId::new("pkce-app");
    let check = |caller: IpAddr, user: &str, password: &str| {
        let (f, client) = (&f, client.clone());
        let (user, password) = (user.to_owned(), password.to_owned());
        async move {
            f.server
                .verify_user(
                    &client,
                    caller,
                    &grantor::Username::new(user),
                    grantor::Password::new(password),
                )
                .await
        }
    };
    for user in ["ann", "bob", "cid"] {
        let e = check(CALLER, user, "Summer2026!").await.expect_err("wrong");
        assert_eq!(e.reason(), Some(Reason::UserRefused));
    }
    let calls = f.users.calls();
    // A fourth username from the same address is refused without asking the verifier, even
    // with the right password; other addresses are not affected.
    let e = check(CALLER, "tom", "123456").await.expect_err("limited");
    assert_eq!(e.reason(), Some(Reason::AddressAttemptsExceeded));
    assert!(e.retry_after().is_some_and(|s| s > 0 && s <= 600));
    assert_eq!(f.users.calls(), calls);
    let tom = check(OTHER_CALLER, "tom", "123456").await.expect("tom");
    assert_eq!(tom.id.as_str(), "user-tom");
    assert_eq!(tom.username.as_ref().map(|u| u.as_str()), Some("tom"));
    // IPv6: a /64 is one caller.
    let v6 = |s: &str| s.parse::<IpAddr>().expect("address");
    for (i, user) in ["ann", "bob", "cid"].into_iter().enumerate() {
        let caller = v6(&format!("2001:db8:1:2::{i}"));
        check(caller, user, "nope").await.expect_err("wrong");
    }
    let e = check(v6("2001:db8:1:2:ffff::9"), "tom", "123456")
        .await
        .expect_err("same /64");
    assert_eq!(e.reason(), Some(Reason::AddressAttemptsExceeded));
    check(v6("2001:db8:1:3::1"), "tom", "123456")
        .await
        .expect("another /64");
    // An IPv4-mapped address is the IPv4 caller.
    let e = check(v6("::ffff:192.0.2.1"), "tom", "123456")
        .await
        .expect_err("mapped");
    assert_eq!(e.reason(), Some(Reason::AddressAttemptsExceeded));
    // The window closes.
    f.clock.advance(Duration::from_secs(600));
    check(CALLER, "tom", "123456")
        .await
        .expect("after the window");
}
