//! The store conformance suite, run against `RedisStore` on a private redis-server, plus what
//! is particular to Redis: nothing recoverable in any key or value, TTLs, and outages.
#![cfg(feature = "redis")]

mod common;
mod conformance;
mod redis_support;

use std::sync::Arc;

use conformance::Stores;
use grantor::RedisStore;
use redis_support::RedisServer;

/// The stores, with the server process they talk to as their guard.
async fn redis() -> Stores {
    let server = RedisServer::start();
    let store = Arc::new(RedisStore::connect(&server.url()).await.expect("connect"));
    Stores {
        tokens: store.clone(),
        limiter: store,
        guard: Some(Box::new(server)),
    }
}

conformance_suite!(redis());

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{answer, basic, clients, Answer};
use grantor::{AuthorizationServer, MemoryUserVerifier, ResourceRequest, Scope, TokenRequest};

fn server_on(store: Arc<RedisStore>) -> AuthorizationServer {
    let users = MemoryUserVerifier::new();
    users.add_user("tom-the-user", "user-1", "distinct-password-9f8e");
    AuthorizationServer::builder(Arc::new(clients()), store.clone())
        .attempt_limiter(store)
        .enable_password_grant(Arc::new(users))
        .enable_refresh_token_grant()
        .build()
        .expect("server")
}

async fn login(server: &AuthorizationServer) -> Answer {
    answer(
        server
            .token(
                TokenRequest::form(
                    "grant_type=password&username=tom-the-user&password=distinct-password-9f8e",
                )
                .with_authorization(basic("other", "other-secret")),
            )
            .await,
    )
}

async fn refresh(server: &AuthorizationServer, token: &str) -> Answer {
    answer(
        server
            .token(
                TokenRequest::form(format!("grant_type=refresh_token&refresh_token={token}"))
                    .with_authorization(basic("other", "other-secret")),
            )
            .await,
    )
}

async fn bearer(server: &AuthorizationServer, token: &str) -> Result<(), u16> {
    server
        .bearer_validator()
        .validate(
            &ResourceRequest::new().with_authorization(format!("Bearer {token}")),
            &Scope::empty(),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.status())
}

/// Every key and value in the database, as text.
async fn dump(url: &str) -> Vec<(String, String, i64)> {
    let client = redis::Client::open(url).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .expect("keys");
    let mut out = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("type");
        let value = match kind.as_str() {
            "hash" => {
                let v: Vec<String> = redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .expect("hgetall");
                v.join(" ")
            }
            "set" => {
                let v: Vec<String> = redis::cmd("SMEMBERS")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .expect("smembers");
                v.join(" ")
            }
            other => panic!("unexpected key type {other} for {key}"),
        };
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("ttl");
        out.push((key, value, ttl));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_recoverable_is_stored_and_every_key_expires() {
    let redis_server = RedisServer::start();
    let store = Arc::new(
        RedisStore::connect(&redis_server.url())
            .await
            .expect("connect"),
    );
    let server = server_on(store);
    let mut issued = Vec::new();
    for _ in 0..3 {
        let a = login(&server).await;
        assert_eq!(a.status, 200, "{}", a.json);
        let r = refresh(&server, &a.str("refresh_token")).await;
        assert_eq!(r.status, 200, "{}", r.json);
        issued.extend([
            a.str("access_token"),
            a.str("refresh_token"),
            r.str("access_token"),
            r.str("refresh_token"),
        ]);
    }
    // A failed login, so the limiter has keys too.
    let bad = answer(
        server
            .token(
                TokenRequest::form(
                    "grant_type=password&username=tom-the-user&password=wrong-guess-7c1d",
                )
                .with_authorization(basic("other", "other-secret")),
            )
            .await,
    );
    assert_eq!(bad.error(), "invalid_grant");

    let entries = dump(&redis_server.url()).await;
    assert!(entries.len() >= 12 + 1 + 2, "{entries:?}");
    for (key, value, ttl) in &entries {
        assert!(key.starts_with("{grantor}:"), "{key}");
        assert!(*ttl > 0, "{key} has no expiry ({ttl})");
        let secrets = [
            "distinct-password-9f8e",
            "wrong-guess-7c1d",
            "other-secret",
            "tom-the-user",
        ];
        for secret in issued.iter().map(String::as_str).chain(secrets) {
            assert!(!key.contains(secret), "{secret} in key {key}");
            assert!(
                !value.contains(secret),
                "{secret} in the value of {key}: {value}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_a_503_and_service_resumes_without_a_restart() {
    let mut redis_server = RedisServer::start();
    let store = Arc::new(
        RedisStore::connect(&redis_server.url())
            .await
            .expect("connect"),
    );
    let server = server_on(store);

    // Issued before the outage.
    let mut before = Vec::new();
    for _ in 0..10 {
        let a = login(&server).await;
        assert_eq!(a.status, 200, "{}", a.json);
        before.push((a.str("access_token"), a.str("refresh_token")));
    }

    // Requests keep running through the outage.
    let stop = Arc::new(AtomicBool::new(false));
    let background = {
        let (server, stop, token) = (server.clone(), stop.clone(), before[0].0.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                seen.push(bearer(&server, &token).await.err().unwrap_or(200));
                seen.push(login(&server).await.status);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seen
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;

    tokio::task::block_in_place(|| redis_server.stop());
    let down = login(&server).await;
    assert_eq!(
        (down.status, down.error()),
        (503, "temporarily_unavailable"),
        "{}",
        down.json
    );
    down.assert_no_store();
    let body = String::from_utf8_lossy(down.response.body()).into_owned();
    assert!(
        !body.contains("127.0.0.1") && !body.to_lowercase().contains("redis"),
        "{body}"
    );
    assert_eq!(bearer(&server, &before[1].0).await, Err(503));
    let r = refresh(&server, &before[1].1).await;
    assert_eq!(r.status, 503);

    tokio::task::block_in_place(|| redis_server.restart());
    // The same server, not rebuilt, works again once the connection is back.
    let mut up = false;
    for _ in 0..200 {
        if login(&server).await.status == 200 {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "service did not resume after Redis came back");
    stop.store(true, Ordering::SeqCst);
    let seen = background.await.expect("background task");
    assert!(seen.iter().all(|s| matches!(s, 200 | 503)), "{seen:?}");
    assert!(seen.contains(&503) && seen.contains(&200), "{seen:?}");

    // Nothing issued before the outage was lost, and nothing can be redeemed twice.
    for (access, refresh_token) in &before {
        assert_eq!(bearer(&server, access).await, Ok(()));
        let first = refresh(&server, refresh_token).await;
        assert_eq!(first.status, 200, "{}", first.json);
        let second = refresh(&server, refresh_token).await;
        assert_eq!((second.status, second.error()), (400, "invalid_grant"));
    }
}

#[tokio::test]
async fn connecting_to_nothing_is_an_unavailable_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let e = RedisStore::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .err();
    assert!(
        matches!(e, Some(grantor::StoreError::Unavailable(_))),
        "{e:?}"
    );
    let e = RedisStore::connect_with_prefix("redis://127.0.0.1:1", "a{b}")
        .await
        .err();
    assert!(matches!(e, Some(grantor::StoreError::Backend(_))), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_lives_exactly_as_long_as_its_entry() {
    use grantor::{ClientId, FamilyId, TokenHash, TokenKind, TokenRecord, TokenStore};
    let redis_server = RedisServer::start();
    let store = RedisStore::connect(&redis_server.url())
        .await
        .expect("connect");
    let now = conformance::now();
    let family = FamilyId::generate();
    let record = |kind, ttl: i64| TokenRecord {
        kind,
        client_id: ClientId::new("c"),
        user_id: None,
        scope: Scope::parse("read").unwrap_or_default(),
        issued_at: now,
        expires_at: now + time::Duration::seconds(ttl),
        family_id: family.clone(),
    };
    let (short, hour, month) = (
        TokenHash::of("short"),
        TokenHash::of("hour"),
        TokenHash::of("month"),
    );
    store
        .save_tokens(
            &[
                (short, record(TokenKind::Access, 1)),
                (hour, record(TokenKind::Access, 3600)),
                (month, record(TokenKind::Refresh, 30 * 24 * 3600)),
            ],
            now,
        )
        .await
        .expect("save");
    let ttls: std::collections::HashMap<String, i64> = dump(&redis_server.url())
        .await
        .into_iter()
        .map(|(k, _, ttl)| (k, ttl))
        .collect();
    let ttl = |key: String| ttls.get(&key).copied().unwrap_or(-3);
    let hour_ttl = ttl(format!("{{grantor}}:t:{}", hour.to_hex()));
    assert!((3598..=3600).contains(&hour_ttl), "{hour_ttl}");
    let month_ttl = ttl(format!("{{grantor}}:t:{}", month.to_hex()));
    assert!(
        (30 * 24 * 3600 - 2..=30 * 24 * 3600).contains(&month_ttl),
        "{month_ttl}"
    );
    // The family set lives as long as its longest-lived token.
    let family_ttl = ttl(format!("{{grantor}}:f:{family}"));
    assert!(
        (30 * 24 * 3600 - 2..=30 * 24 * 3600).contains(&family_ttl),
        "{family_ttl}"
    );

    // And Redis purges by itself: the one-second token is gone from the database, not just
    // judged expired.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let keys: Vec<String> = dump(&redis_server.url())
        .await
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    assert!(
        !keys.contains(&format!("{{grantor}}:t:{}", short.to_hex())),
        "{keys:?}"
    );
    assert!(keys.contains(&format!("{{grantor}}:t:{}", hour.to_hex())));
}
