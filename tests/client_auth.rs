//! Client authentication at the token endpoint (RFC 6749 §2.3.1, §3.2.1).

mod common;

use common::*;
use grantor::TokenRequest;

const LOGIN: &str = "grant_type=password&username=tom&password=123456";

fn assert_invalid_client(a: &Answer) {
    assert_eq!((a.status, a.error()), (401, "invalid_client"), "{}", a.json);
    assert!(
        a.header("WWW-Authenticate")
            .is_some_and(|v| v.starts_with("Basic ")),
        "{:?}",
        a.response
    );
    a.assert_no_store();
}

#[tokio::test]
async fn basic_credentials_are_form_url_decoded() {
    let f = fixture();
    // "my client" / "p@ss:word +", each form-urlencoded before base64 (RFC 6749 §2.3.1).
    let a = f.post(("my+client", "p%40ss%3Aword+%2B"), LOGIN).await;
    assert_eq!(a.status, 200, "{}", a.json);
    // Unencoded, the secret's colon would split wrongly, and "+" would mean a space.
    let a = f.post(("my client", "p@ss:word +"), LOGIN).await;
    assert_invalid_client(&a);
}

#[tokio::test]
async fn client_secret_post_works() {
    let f = fixture();
    let a = f
        .token(TokenRequest::form(format!(
            "{LOGIN}&client_id=clientapp&client_secret=123456"
        )))
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
}

#[tokio::test]
async fn basic_and_body_credentials_at_once_are_invalid_request() {
    let f = fixture();
    let a = f
        .token(
            TokenRequest::form(format!("{LOGIN}&client_id=clientapp&client_secret=123456"))
                .with_authorization(basic("clientapp", "123456")),
        )
        .await;
    assert_eq!((a.status, a.error()), (400, "invalid_request"));
    a.assert_no_store();
    // A client_id that disagrees with the header is refused too; one that agrees is fine.
    let a = f
        .token(
            TokenRequest::form(format!("{LOGIN}&client_id=other"))
                .with_authorization(basic("clientapp", "123456")),
        )
        .await;
    assert_eq!((a.status, a.error()), (400, "invalid_request"));
    let a = f
        .token(
            TokenRequest::form(format!("{LOGIN}&client_id=clientapp"))
                .with_authorization(basic("clientapp", "123456")),
        )
        .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn failed_authentication_is_401_invalid_client_with_a_basic_challenge() {
    let f = fixture();
    // Wrong secret, unknown client: the same answer.
    let wrong = f.post(("clientapp", "nope"), LOGIN).await;
    let unknown = f.post(("ghost", "nope"), LOGIN).await;
    assert_invalid_client(&wrong);
    assert_invalid_client(&unknown);
    assert_eq!(wrong.json, unknown.json);
    // Through the body, too.
    let a = f
        .token(TokenRequest::form(format!(
            "{LOGIN}&client_id=clientapp&client_secret=nope"
        )))
        .await;
    assert_invalid_client(&a);
    // No client authentication at all.
    let a = f.token(TokenRequest::form(LOGIN)).await;
    assert_invalid_client(&a);
    // A confidential client must send its secret.
    let a = f
        .token(TokenRequest::form(format!("{LOGIN}&client_id=clientapp")))
        .await;
    assert_invalid_client(&a);
    // A public client must not pretend to have one.
    let a = f.post(("spa", "made-up"), LOGIN).await;
    assert_invalid_client(&a);
    // Malformed or foreign Authorization headers.
    for header in ["Basic", "Basic !!!!", "Bearer abc", "Basic Y2xpZW50YXBw"] {
        let a = f
            .token(TokenRequest::form(LOGIN).with_authorization(header))
            .await;
        assert_invalid_client(&a);
    }
    // None of these reached the user verifier.
    assert_eq!(f.users.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn basic_scheme_is_case_insensitive_and_padding_optional() {
    let f = fixture();
    let a = f
        .token(TokenRequest::form(LOGIN).with_authorization("basic Y2xpZW50YXBwOjEyMzQ1Ng"))
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
}

/// A public client has no secret: `client_id` alone, or Basic with an empty password (as some
/// libraries send "none"), identifies it; Basic with any password is refused.
#[tokio::test]
async fn a_public_client_may_send_basic_with_an_empty_password() {
    let f = fixture();
    let a = f.post(("spa", ""), LOGIN).await;
    assert_eq!(a.status, 200, "{}", a.json);
    let a = f.post(("spa", "a-secret"), LOGIN).await;
    assert_invalid_client(&a);
}

// RFC 6749 §2.3.1: "Since this client authentication method involves a password, the
// authorization server MUST protect any endpoint utilizing it against brute force attacks."

const CC: &str = "grant_type=client_credentials&scope=read";

fn from(caller: [u8; 4], client: (&str, &str)) -> TokenRequest {
    TokenRequest::form(CC)
        .with_authorization(basic(client.0, client.1))
        .with_caller(std::net::IpAddr::from(caller))
}

fn three_per_caller() -> grantor::ClientSecretLimits {
    let rule = grantor::AttemptRule {
        max_failures: 3,
        window: std::time::Duration::from_secs(15 * 60),
    };
    grantor::ClientSecretLimits::new(Some(rule), Some(rule))
}

/// The refusal once a limit is reached: `invalid_client` (the client is not authenticated),
/// told when to come back.
fn assert_too_many(a: &Answer) {
    assert_invalid_client(a);
    assert!(
        a.json["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("too many failed client authentications")),
        "{}",
        a.json
    );
    let retry: u64 = a
        .header("Retry-After")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header");
    assert!(retry > 0 && retry <= 15 * 60, "Retry-After {retry}");
}

fn assert_wrong_secret(a: &Answer) {
    assert_invalid_client(a);
    assert_eq!(a.json["error_description"], "client authentication failed");
    assert!(a.header("Retry-After").is_none(), "{:?}", a.response);
}

#[tokio::test]
async fn wrong_client_secrets_are_limited_per_client_and_caller() {
    let f = fixture_with(|b| b.client_secret_limits(three_per_caller()));
    let attacker = [203, 0, 113, 9];
    for _ in 0..3 {
        assert_wrong_secret(&f.token(from(attacker, ("service", "guess"))).await);
    }
    // The limit is reached: the attacker is refused without the secret being checked, even
    // when it guesses right.
    assert_too_many(&f.token(from(attacker, ("service", "guess"))).await);
    assert_too_many(&f.token(from(attacker, ("service", "service-secret"))).await);
    // The client's own servers, elsewhere, are not held back; nor is another client from
    // the attacker's address.
    let own = f
        .token(from([198, 51, 100, 7], ("service", "service-secret")))
        .await;
    assert_eq!(own.status, 200, "{}", own.json);
    let other = f.token(from(attacker, ("service-rw", "rw-secret"))).await;
    assert_eq!(other.status, 200, "{}", other.json);
    // The window closes: the right secret works again from the attacker's address.
    f.clock.advance(std::time::Duration::from_secs(15 * 60));
    let again = f.token(from(attacker, ("service", "service-secret"))).await;
    assert_eq!(again.status, 200, "{}", again.json);
}

#[tokio::test]
async fn right_client_secrets_are_not_counted() {
    let f = fixture_with(|b| b.client_secret_limits(three_per_caller()));
    let caller = [192, 0, 2, 1];
    for _ in 0..2 {
        assert_wrong_secret(&f.token(from(caller, ("service", "guess"))).await);
    }
    for _ in 0..10 {
        let a = f.token(from(caller, ("service", "service-secret"))).await;
        assert_eq!(a.status, 200, "{}", a.json);
    }
    // Two failures so far: one more wrong secret is checked, the next is refused.
    assert_wrong_secret(&f.token(from(caller, ("service", "guess"))).await);
    assert_too_many(&f.token(from(caller, ("service", "guess"))).await);
}

#[tokio::test]
async fn requests_without_a_caller_share_one_count_per_client() {
    let f = fixture_with(|b| b.client_secret_limits(three_per_caller()));
    let anonymous =
        |secret: &str| TokenRequest::form(CC).with_authorization(basic("service", secret));
    for _ in 0..3 {
        assert_wrong_secret(&f.token(anonymous("guess")).await);
    }
    assert_too_many(&f.token(anonymous("service-secret")).await);
    // Through the body too: the count is the client's, whatever the method.
    let post = f
        .token(TokenRequest::form(format!(
            "{CC}&client_id=service&client_secret=service-secret"
        )))
        .await;
    assert_too_many(&post);
    // A request that names its caller has a count of its own.
    let named = f
        .token(from([192, 0, 2, 1], ("service", "service-secret")))
        .await;
    assert_eq!(named.status, 200, "{}", named.json);
}

/// Guesses for a client id that does not exist are counted like any other, so that the answer
/// does not tell which clients exist.
#[tokio::test]
async fn secrets_for_unknown_clients_are_counted_alike() {
    let f = fixture_with(|b| b.client_secret_limits(three_per_caller()));
    let caller = [192, 0, 2, 1];
    for _ in 0..3 {
        assert_wrong_secret(&f.token(from(caller, ("ghost", "guess"))).await);
    }
    let ghost = f.token(from(caller, ("ghost", "guess"))).await;
    assert_too_many(&ghost);
    for _ in 0..3 {
        f.token(from(caller, ("service", "guess"))).await;
    }
    let known = f.token(from(caller, ("service", "guess"))).await;
    assert_eq!(known.json, ghost.json);
    assert_eq!(known.header("Retry-After"), ghost.header("Retry-After"));
}

/// The default limits: ten wrong secrets per client and caller.
#[tokio::test]
async fn client_secrets_are_limited_by_default() {
    let f = fixture();
    let caller = [192, 0, 2, 1];
    for _ in 0..10 {
        assert_wrong_secret(&f.token(from(caller, ("service", "guess"))).await);
    }
    assert_too_many(&f.token(from(caller, ("service", "service-secret"))).await);
}

#[tokio::test]
async fn client_secret_limits_may_be_turned_off() {
    let f = fixture_with(|b| b.disable_client_secret_limits());
    let caller = [192, 0, 2, 1];
    for _ in 0..30 {
        assert_wrong_secret(&f.token(from(caller, ("service", "guess"))).await);
    }
    let a = f.token(from(caller, ("service", "service-secret"))).await;
    assert_eq!(a.status, 200, "{}", a.json);
}

/// A hundred wrong secrets at once from one caller: exactly as many are checked as the limit
/// allows, as if they had come one after another; the rest are refused unchecked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_secrets_are_checked_at_most_the_limit() {
    let f = fixture_with(|b| b.client_secret_limits(three_per_caller()));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let server = f.server.clone();
            tokio::spawn(async move {
                answer(
                    server
                        .token(from([192, 0, 2, 1], ("service", "guess")))
                        .await,
                )
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    let checked = answers
        .iter()
        .filter(|a| a.header("Retry-After").is_none())
        .count();
    assert_eq!(checked, 3);
    for a in &answers {
        if a.header("Retry-After").is_some() {
            assert_too_many(a);
        } else {
            assert_wrong_secret(a);
        }
    }
}

/// Revocation and introspection take client secrets too, and share the count.
#[tokio::test]
async fn revocation_and_introspection_share_the_count() {
    let f = fixture_with(|b| b.client_secret_limits(three_per_caller()));
    let caller = std::net::IpAddr::from([192, 0, 2, 1]);
    let revoke = |secret: &str| {
        TokenRequest::form("token=anything")
            .with_authorization(basic("service", secret))
            .with_caller(caller)
    };
    for _ in 0..2 {
        assert_wrong_secret(&answer(f.server.revoke(revoke("guess")).await));
    }
    assert_wrong_secret(&answer(f.server.introspect(revoke("guess")).await));
    assert_too_many(&answer(f.server.revoke(revoke("service-secret")).await));
    assert_too_many(&answer(f.server.introspect(revoke("service-secret")).await));
    assert_too_many(
        &f.token(from([192, 0, 2, 1], ("service", "service-secret")))
            .await,
    );
}

/// A public client has no secret: one sent for it is counted like a wrong one (so the answers
/// do not tell public clients from unknown ones), while the client's own requests, which send
/// none, are never held back.
#[tokio::test]
async fn a_public_client_sending_a_secret_is_counted_but_never_held_back() {
    let f = fixture_with(|b| b.client_secret_limits(three_per_caller()));
    let caller = std::net::IpAddr::from([192, 0, 2, 1]);
    let spa = |authorization: Option<&str>| {
        let body = match authorization {
            Some(_) => LOGIN.to_owned(),
            None => format!("{LOGIN}&client_id=spa"),
        };
        let request = TokenRequest::form(body).with_caller(caller);
        match authorization {
            Some(a) => request.with_authorization(a),
            None => request,
        }
    };
    for _ in 0..3 {
        assert_wrong_secret(&f.token(spa(Some(&basic("spa", "made-up")))).await);
    }
    assert_too_many(&f.token(spa(Some(&basic("spa", "made-up")))).await);
    let a = f.token(spa(None)).await;
    assert_eq!(a.status, 200, "{}", a.json);
    let a = f.token(spa(Some(&basic("spa", "")))).await;
    assert_eq!(a.status, 200, "{}", a.json);
}

/// An IPv6 caller is counted by its /64, as the sign-in limits count it.
#[tokio::test]
async fn an_ipv6_caller_is_counted_by_its_64() {
    let f = fixture_with(|b| b.client_secret_limits(three_per_caller()));
    let at = |caller: &str, secret: &str| {
        TokenRequest::form(CC)
            .with_authorization(basic("service", secret))
            .with_caller(caller.parse().expect("an address"))
    };
    for host in ["2001:db8::1", "2001:db8::2", "2001:db8::ffff:3"] {
        assert_wrong_secret(&f.token(at(host, "guess")).await);
    }
    assert_too_many(&f.token(at("2001:db8::9", "service-secret")).await);
    let a = f.token(at("2001:db8:0:1::9", "service-secret")).await;
    assert_eq!(a.status, 200, "{}", a.json);
    // An IPv4-mapped address is the IPv4 caller.
    for _ in 0..3 {
        assert_wrong_secret(&f.token(from([192, 0, 2, 5], ("service", "guess"))).await);
    }
    assert_too_many(&f.token(at("::ffff:192.0.2.5", "service-secret")).await);
}

/// The device authorization endpoint takes client secrets too.
#[tokio::test]
async fn device_authorization_counts_client_secrets() {
    let f = fixture_with(|b| b.client_secret_limits(three_per_caller()));
    let caller = std::net::IpAddr::from([192, 0, 2, 1]);
    let ask = |secret: &str| {
        TokenRequest::form("scope=read")
            .with_authorization(basic("tv", secret))
            .with_caller(caller)
    };
    for _ in 0..3 {
        assert_wrong_secret(&answer(f.server.device_authorization(ask("guess")).await));
    }
    assert_too_many(&answer(
        f.server.device_authorization(ask("tv-secret")).await,
    ));
}

/// A client store that finds ids whatever their case, as some SQL collations do.
struct AnyCase(grantor::MemoryClientStore);

#[grantor::async_trait]
impl grantor::ClientStore for AnyCase {
    async fn find_client(
        &self,
        id: &grantor::ClientId,
    ) -> Result<Option<std::sync::Arc<grantor::Client>>, grantor::StoreError> {
        self.0
            .find_client(&grantor::ClientId::new(id.as_str().to_lowercase()))
            .await
    }
}

/// Wrong secrets are counted against the client the store found, however the request spelled
/// its id: `Service` and `SERVICE` do not get counts of their own.
#[tokio::test]
async fn the_count_is_the_stored_clients_whatever_the_spelling() {
    let server = grantor::AuthorizationServer::builder(
        std::sync::Arc::new(AnyCase(clients())),
        std::sync::Arc::new(grantor::MemoryTokenStore::new()),
    )
    .enable_client_credentials_grant()
    .client_secret_limits(three_per_caller())
    .build()
    .expect("a server");
    let caller = [192, 0, 2, 1];
    for id in ["service", "Service", "SERVICE"] {
        assert_wrong_secret(&answer(server.token(from(caller, (id, "guess"))).await));
    }
    assert_too_many(&answer(
        server
            .token(from(caller, ("sErViCe", "service-secret")))
            .await,
    ));
}

/// A limiter that cannot be reached.
struct DownLimiter;

#[grantor::async_trait]
impl grantor::AttemptLimiter for DownLimiter {
    async fn reserve_attempt(
        &self,
        _: &grantor::AttemptKey,
        _: &grantor::AttemptRule,
        _: &grantor::AttemptLease,
        _: time::OffsetDateTime,
    ) -> Result<grantor::AttemptVerdict, grantor::StoreError> {
        Err(grantor::StoreError::Unavailable("limiter down".into()))
    }

    async fn release_attempt(
        &self,
        _: &grantor::AttemptKey,
        _: &grantor::AttemptLease,
        _: time::OffsetDateTime,
    ) -> Result<(), grantor::StoreError> {
        Err(grantor::StoreError::Unavailable("limiter down".into()))
    }

    async fn record_failure(
        &self,
        _: &grantor::AttemptKey,
        _: &grantor::AttemptRule,
        _: &grantor::AttemptLease,
        _: time::OffsetDateTime,
    ) -> Result<(), grantor::StoreError> {
        Err(grantor::StoreError::Unavailable("limiter down".into()))
    }
}

/// With the limiter unreachable, a secret is not checked at all (a guess that cannot be
/// counted is not made): the answer is the store error's, never a token; a public client
/// that sends no secret is not affected.
#[tokio::test]
async fn an_unreachable_limiter_checks_no_secret() {
    let f = fixture_with(|b| b.client_secret_limiter(std::sync::Arc::new(DownLimiter)));
    let a = f
        .token(from([192, 0, 2, 1], ("service", "service-secret")))
        .await;
    assert_eq!(
        (a.status, a.error()),
        (503, "temporarily_unavailable"),
        "{}",
        a.json
    );
    let revoke =
        TokenRequest::form("token=anything&client_id=spa").with_caller([192, 0, 2, 1].into());
    assert_eq!(f.server.revoke(revoke).await.status(), 200);
}

#[test]
fn limits_are_built_from_their_rules() {
    let rule = grantor::AttemptRule {
        max_failures: 4,
        window: std::time::Duration::from_secs(60),
    };
    let limits = grantor::ClientSecretLimits::new(Some(rule), None)
        .with_max_wait(std::time::Duration::from_millis(5));
    assert_eq!(limits.per_caller, Some(rule));
    assert_eq!(limits.per_client_without_caller, None);
    assert_eq!(limits.max_wait, std::time::Duration::from_millis(5));
    let default = grantor::ClientSecretLimits::default();
    assert_eq!(default.max_wait, std::time::Duration::from_secs(10));
    assert_eq!(default.per_caller.map(|r| r.max_failures), Some(10));
    assert_eq!(
        default.per_client_without_caller.map(|r| r.max_failures),
        Some(100)
    );
}

/// Wrong secrets are counted per process by default; servers that share a client-secret
/// limiter share one count.
#[tokio::test]
async fn servers_sharing_a_client_secret_limiter_share_the_count() {
    let shared = std::sync::Arc::new(grantor::MemoryAttemptLimiter::new());
    let on = |limiter: Option<std::sync::Arc<grantor::MemoryAttemptLimiter>>| {
        fixture_with(move |b| {
            let b = b.client_secret_limits(three_per_caller());
            match limiter {
                Some(limiter) => b.client_secret_limiter(limiter),
                None => b,
            }
        })
    };
    let caller = [192, 0, 2, 1];
    let (a, b) = (on(Some(shared.clone())), on(Some(shared)));
    for f in [&a, &b, &a] {
        assert_wrong_secret(&f.token(from(caller, ("service", "guess"))).await);
    }
    assert_too_many(&b.token(from(caller, ("service", "service-secret"))).await);
    // Each with its own (the default): three more guesses on a fresh server are checked.
    let c = on(None);
    for _ in 0..3 {
        assert_wrong_secret(&c.token(from(caller, ("service", "guess"))).await);
    }
    assert_too_many(&c.token(from(caller, ("service", "guess"))).await);
}
