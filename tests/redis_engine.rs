//! Whole flows through two servers that share one `RedisStore`, as two copies of a service
//! behind one address would: the device flow, MFA with one-time codes accepted once across
//! servers, and client credentials with introspection and revocation.
#![cfg(feature = "redis")]

mod common;
mod redis_support;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use grantor::{
    AuthorizationServer, Clock as _, ManualClock, Reason, RedisStore, ResourceRequest, Scope,
    TokenRequest, UserCode, UserId,
};
use redis_support::RedisServer;

const DEVICE_GRANT: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code";
const MFA_GRANT: &str = "http%3A%2F%2Fauth0.com%2Foauth%2Fgrant-type%2Fmfa-otp";

struct Pair {
    a: AuthorizationServer,
    b: AuthorizationServer,
    clock: Arc<ManualClock>,
    _redis: RedisServer,
}

async fn pair() -> Pair {
    let redis = RedisServer::start();
    let clock = Arc::new(ManualClock::new(START));
    let server = |store: Arc<RedisStore>| {
        AuthorizationServer::builder(Arc::new(clients()), store.clone())
            .enable_password_grant(verifier())
            .enable_refresh_token_grant()
            .enable_client_credentials_grant()
            .enable_device_code_grant(store.clone())
            .mfa_store(store.clone())
            .attempt_limiter(store)
            .issuer(ISSUER)
            .clock(clock.clone())
            .build()
            .expect("server")
    };
    // Two connections, as two processes would have.
    let a = server(Arc::new(
        RedisStore::connect(&redis.url()).await.expect("redis"),
    ));
    let b = server(Arc::new(
        RedisStore::connect(&redis.url()).await.expect("redis"),
    ));
    Pair {
        a,
        b,
        clock,
        _redis: redis,
    }
}

async fn post(server: &AuthorizationServer, client: (&str, &str), body: &str) -> Answer {
    answer(
        server
            .token(
                TokenRequest::form(body.to_owned()).with_authorization(basic(client.0, client.1)),
            )
            .await,
    )
}

/// A client-credentials token request from the demo's service client.
async fn client_credentials(server: &AuthorizationServer) -> Answer {
    post(
        server,
        ("service", "service-secret"),
        "grant_type=client_credentials",
    )
    .await
}

async fn poll(server: &AuthorizationServer, device_code: &str) -> Answer {
    answer(
        server
            .token(TokenRequest::form(format!(
                "grant_type={DEVICE_GRANT}&client_id=cli&device_code={device_code}"
            )))
            .await,
    )
}

#[tokio::test]
async fn the_device_flow_spans_servers() {
    let p = pair().await;
    let codes = answer(
        p.a.device_authorization(TokenRequest::form("client_id=cli&scope=read%20write"))
            .await,
    );
    assert_eq!(codes.status, 200, "{}", codes.json);
    let (device_code, user_code) = (codes.str("device_code"), codes.str("user_code"));
    assert_eq!(
        poll(&p.a, &device_code).await.error(),
        "authorization_pending"
    );
    // The pace is shared: polling the other server at once is too soon.
    assert_eq!(poll(&p.b, &device_code).await.error(), "slow_down");

    // The person uses the other server's page.
    let request =
        p.b.device_request(&UserCode::new(user_code.to_lowercase()), CALLER)
            .await
            .expect("pending on b");
    assert_eq!(request.authorization.client_id.as_str(), "cli");
    // The confirmation shown by one server is honoured by the other.
    p.a.approve_device(
        &UserCode::new(&user_code),
        &request.confirmation,
        CALLER,
        UserId::new("user-tom"),
        None,
    )
    .await
    .expect("approved on a");

    p.clock.advance(Duration::from_secs(10));
    let tokens = poll(&p.a, &device_code).await;
    assert_eq!(tokens.status, 200, "{}", tokens.json);
    // Once only, whichever server is asked.
    p.clock.advance(Duration::from_secs(10));
    assert_eq!(poll(&p.b, &device_code).await.error(), "invalid_grant");
    let grant =
        p.b.bearer_validator()
            .validate(
                &ResourceRequest::new()
                    .with_authorization(format!("Bearer {}", tokens.str("access_token"))),
                &"write".parse::<Scope>().expect("scope"),
            )
            .await
            .expect("valid on b");
    assert_eq!(grant.user_id, Some(UserId::new("user-tom")));

    // Denial and expiry span servers too.
    let codes = answer(
        p.b.device_authorization(TokenRequest::form("client_id=cli"))
            .await,
    );
    let user_code = UserCode::new(codes.str("user_code"));
    let shown =
        p.b.device_request(&user_code, CALLER)
            .await
            .expect("pending on b");
    p.a.deny_device(&user_code, &shown.confirmation, CALLER)
        .await
        .expect("denied on a");
    assert_eq!(
        poll(&p.b, &codes.str("device_code")).await.error(),
        "access_denied"
    );
    let codes = answer(
        p.b.device_authorization(TokenRequest::form("client_id=cli"))
            .await,
    );
    p.clock.advance(Duration::from_secs(600));
    assert_eq!(
        poll(&p.a, &codes.str("device_code")).await.error(),
        "expired_token"
    );
}

#[tokio::test]
async fn wrong_user_codes_are_counted_across_servers() {
    let p = pair().await;
    for (i, server) in [&p.a, &p.b].into_iter().cycle().take(10).enumerate() {
        let err = server
            .device_request(&UserCode::new(format!("BBBB-BBB{i}")), CALLER)
            .await
            .expect_err("wrong code");
        assert_eq!(err.reason(), Some(Reason::UserCodeUnknown));
    }
    let err =
        p.a.device_request(&UserCode::new("BBBB-BBBB"), CALLER)
            .await
            .expect_err("limited");
    assert_eq!(err.reason(), Some(Reason::UserCodeAttemptsExceeded));
}

#[tokio::test]
async fn a_one_time_code_is_accepted_once_across_servers() {
    let p = pair().await;
    let alice = "grant_type=password&username=alice&password=123456";
    let mfa = post(&p.a, ("clientapp", "123456"), alice).await;
    assert_eq!(
        (mfa.status, mfa.error()),
        (403, "mfa_required"),
        "{}",
        mfa.json
    );
    let mfa_token = mfa.str("mfa_token");
    let code = otp_at(p.clock.now());
    // Finished on the other server.
    let body =
        |token: &str, otp: &str| format!("grant_type={MFA_GRANT}&mfa_token={token}&otp={otp}");
    let tokens = post(&p.b, ("clientapp", "123456"), &body(&mfa_token, &code)).await;
    assert_eq!(tokens.status, 200, "{}", tokens.json);
    // The mfa_token is spent everywhere.
    let again = post(&p.a, ("clientapp", "123456"), &body(&mfa_token, &code)).await;
    assert_eq!(again.error(), "invalid_grant");
    // A new sign-in on server a with the same code is refused: the code was used on b.
    let mfa = post(&p.a, ("clientapp", "123456"), alice).await;
    let reused = post(
        &p.a,
        ("clientapp", "123456"),
        &body(&mfa.str("mfa_token"), &code),
    )
    .await;
    assert_eq!(
        (reused.status, reused.error()),
        (400, "invalid_grant"),
        "{}",
        reused.json
    );
    // The next step's code works.
    p.clock.advance(Duration::from_secs(30));
    let next = otp_at(p.clock.now());
    let ok = post(
        &p.a,
        ("clientapp", "123456"),
        &body(&mfa.str("mfa_token"), &next),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.json);
}

#[tokio::test]
async fn client_credentials_introspection_and_revocation_on_redis() {
    let p = pair().await;
    let issued = client_credentials(&p.a).await;
    assert_eq!(issued.status, 200, "{}", issued.json);
    let token = issued.str("access_token");
    let introspect = |server: &AuthorizationServer| {
        let body = format!("token={token}");
        let server = server.clone();
        async move {
            answer(
                server
                    .introspect(
                        TokenRequest::form(body)
                            .with_authorization(basic("service", "service-secret")),
                    )
                    .await,
            )
        }
    };
    let live = introspect(&p.b).await;
    assert_eq!(live.json["active"], true, "{}", live.json);
    assert_eq!(live.json["client_id"], "service");
    let revoked = answer(
        p.b.revoke(
            TokenRequest::form(format!("token={token}"))
                .with_authorization(basic("service", "service-secret")),
        )
        .await,
    );
    assert_eq!(revoked.status, 200);
    assert_eq!(
        introspect(&p.a).await.json,
        serde_json::json!({"active": false})
    );
    assert!(p
        .a
        .bearer_validator()
        .validate(
            &ResourceRequest::new().with_authorization(format!("Bearer {token}")),
            &Scope::empty(),
        )
        .await
        .is_err());
}

/// A burst of right passwords spread over two servers sharing one Redis limiter: all 120 get
/// tokens (the places are shared, and queue), and concurrent wrong guesses over both reach the
/// verifier at most the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bursts_and_guesses_are_told_apart_across_servers() {
    let p = Arc::new(pair().await);
    let tasks: Vec<_> = (0..120)
        .map(|i| {
            let p = p.clone();
            tokio::spawn(async move {
                let server = if i % 2 == 0 { &p.a } else { &p.b };
                post(
                    server,
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
    // 50 concurrent wrong guesses for admin over both servers: at most 5 are checked.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let p = p.clone();
            tokio::spawn(async move {
                let server = if i % 2 == 0 { &p.a } else { &p.b };
                post(
                    server,
                    ("clientapp", "123456"),
                    "grant_type=password&username=admin&password=guess",
                )
                .await
            })
        })
        .collect();
    let mut checked = 0;
    for t in tasks {
        let a = t.await.expect("task");
        assert_eq!(a.error(), "invalid_grant", "{}", a.json);
        if a.str("error_description") == "the username or password is incorrect" {
            checked += 1;
        }
    }
    assert_eq!(checked, 5, "exactly the limit was checked");
}

/// One round trip per issued token and per validation (the issue's bound on the Redis store):
/// client credentials is one script that checks the family and saves the token, and bearer
/// validation one `HMGET`.
#[tokio::test]
async fn an_issued_token_and_a_validation_are_one_round_trip_each() {
    let p = pair().await;
    let url = p._redis.url();
    let validator = p.a.bearer_validator();
    let read: Scope = "read".parse().expect("scope");
    // Warm: the store loads its scripts once.
    let first = client_credentials(&p.a).await;
    let bearer =
        ResourceRequest::new().with_authorization(format!("Bearer {}", first.str("access_token")));
    assert!(validator.validate(&bearer, &read).await.is_ok());

    let mut monitor = redis_support::Monitor::start(&url).await;
    for _ in 0..10 {
        let issued = client_credentials(&p.a).await;
        assert_eq!(issued.status, 200, "{}", issued.json);
    }
    monitor.mark().await;
    for _ in 0..10 {
        assert!(validator.validate(&bearer, &read).await.is_ok());
    }
    assert_eq!(monitor.stop().await, vec![10, 10]);
}
