//! The store conformance kit, run against `RedisStore` on a private redis-server as a host runs
//! it on its own store, plus what is particular to Redis: nothing recoverable in any key or
//! value, TTLs, and outages.
#![cfg(feature = "redis")]

mod common;
mod redis_support;

use std::sync::Arc;

use grantor::conformance;
use grantor::RedisStore;
use redis_support::RedisServer;

/// A store on a redis-server of its own, with the server process as the guard that outlives it.
async fn redis() -> (Arc<RedisStore>, RedisServer) {
    let server = RedisServer::start();
    let store = Arc::new(RedisStore::connect(&server.url()).await.expect("connect"));
    (store, server)
}

grantor::token_store_conformance!(redis().await);
grantor::attempt_limiter_conformance!(redis().await);
grantor::code_store_conformance!(redis().await);
grantor::device_code_store_conformance!(redis().await);
grantor::mfa_store_conformance!(redis().await);

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{answer, basic};
use grantor::TokenRequest;

use common::{
    bearer_status as bearer, others_refresh as refresh, server_on_shared_store as server_on,
    tom_signs_in as login,
};

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
            "zset" => {
                let v: Vec<String> = redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut conn)
                    .await
                    .expect("zrange");
                v.join(" ")
            }
            "string" => redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .expect("get"),
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
    let issued = common::issue_every_kind(&server).await;
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
    assert!(entries.len() >= 12 + 1 + 2 + 4, "{entries:?}");
    assert!(
        entries
            .iter()
            .any(|(k, _, _)| k.starts_with("{grantor}:p:")),
        "a pending request"
    );
    assert!(
        entries
            .iter()
            .any(|(k, _, _)| k.starts_with("{grantor}:c:")),
        "a code"
    );
    for (key, value, ttl) in &entries {
        assert!(key.starts_with("{grantor}:"), "{key}");
        assert!(*ttl > 0, "{key} has no expiry ({ttl})");
        let secrets = [
            "distinct-password-9f8e",
            "wrong-guess-7c1d",
            "other-secret",
            "web-secret",
        ];
        for secret in issued.iter().map(String::as_str).chain(secrets) {
            assert!(!key.contains(secret), "{secret} in key {key}");
            assert!(
                !value.contains(secret),
                "{secret} in the value of {key}: {value}"
            );
        }
        // The username is kept only in the grant records of its tokens (introspection answers
        // it, RFC 7662 §2.2), never in a key: failed-login counts name it by a digest.
        assert!(!key.contains("tom-the-user"), "{key}");
        if value.contains("tom-the-user") {
            assert!(key.starts_with("{grantor}:t:"), "{key}: {value}");
            assert!(
                value.contains(r#""username":"tom-the-user""#),
                "{key}: {value}"
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
    // Every refresh and check tried during the outage fails cleanly, spending nothing.
    for (access, refresh_token) in &before {
        assert_eq!(bearer(&server, access).await, Err(503));
        let r = refresh(&server, refresh_token).await;
        assert_eq!((r.status, r.error()), (503, "temporarily_unavailable"));
    }

    tokio::task::block_in_place(|| redis_server.restart());
    // The same server, not rebuilt, works again: the very first request after Redis is back.
    let first = login(&server).await;
    assert_eq!(first.status, 200, "{}", first.json);
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
    use grantor::{AccessToken, FamilyId, TokenHash, TokenKind, TokenStore};
    let redis_server = RedisServer::start();
    let store = RedisStore::connect(&redis_server.url())
        .await
        .expect("connect");
    let now = conformance::now();
    let family = FamilyId::generate();
    let record = |kind, ttl| conformance::record(kind, "c", &family, now, ttl);
    let (short, hour, month) = (
        TokenHash::of_access_token(&AccessToken::new("short")),
        TokenHash::of_access_token(&AccessToken::new("hour")),
        TokenHash::of_access_token(&AccessToken::new("month")),
    );
    store
        .save_tokens(
            &[
                // Longest-lived first: the family must keep the longest lifetime, not the last.
                (month, record(TokenKind::Refresh, 30 * 24 * 3600)),
                (short, record(TokenKind::Access, 1)),
                (hour, record(TokenKind::Access, 3600)),
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

/// A token that stands alone (no family) is one key: no family set and no revoked-family marker
/// is written for it, alone or saved beside a token of a family.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_stands_alone_has_no_family_key() {
    use grantor::{AccessToken, FamilyId, TokenHash, TokenKind, TokenLookup, TokenStore};
    let redis_server = RedisServer::start();
    let store = RedisStore::connect(&redis_server.url())
        .await
        .expect("connect");
    let now = conformance::now();
    let family = FamilyId::generate();
    let (alone, member) = (
        TokenHash::of_access_token(&AccessToken::new("alone")),
        TokenHash::of_access_token(&AccessToken::new("member")),
    );
    let record = conformance::standalone_record("c", now, 3600);
    store
        .save_tokens(
            &[
                (alone, record.clone()),
                (
                    member,
                    conformance::record(TokenKind::Access, "c", &family, now, 3600),
                ),
            ],
            now,
        )
        .await
        .expect("save");
    let keys: Vec<(String, String)> = dump(&redis_server.url())
        .await
        .into_iter()
        .map(|(k, v, _)| (k, v))
        .collect();
    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    let mut expected = vec![
        format!("{{grantor}}:t:{}", alone.to_hex()),
        format!("{{grantor}}:t:{}", member.to_hex()),
        format!("{{grantor}}:f:{family}"),
    ];
    expected.sort();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected);
    let alone_fields = &keys
        .iter()
        .find(|(k, _)| k.ends_with(&alone.to_hex()))
        .expect("the token's key")
        .1;
    assert!(!alone_fields.split(' ').any(|f| f == "f"), "{alone_fields}");
    assert_eq!(
        store.find_token(&alone, now).await.expect("find"),
        TokenLookup::Live(record.clone())
    );
    assert_eq!(
        store.revoke_token(&alone, now).await.expect("revoke"),
        Some(record)
    );
}

/// Codes saved and spent by the previous release (one hash per code: state `s`, client `c`,
/// family `f`, expiry `e`, grant `r`, and once spent the mark's end `u`) read, spend and give
/// back as before; a code spent now keeps its mark exactly as long as asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_in_the_existing_layout_keep_working() {
    use grantor::{
        AuthorizationCode, AuthorizationCodeHash, CodeLookup, CodeRestore, CodeSpend, CodeStore,
    };
    let redis_server = RedisServer::start();
    let store = RedisStore::connect(&redis_server.url())
        .await
        .expect("connect");
    let client = redis::Client::open(redis_server.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let now = conformance::now();
    let (e, u) = (now.unix_timestamp() + 60, now.unix_timestamp() + 3600);
    let grant = conformance::code_grant(now, 60);
    let json = grantor::encode_record(&grant).expect("encode");

    // A live code, as the previous release's save script wrote it.
    let live = AuthorizationCodeHash::of(&AuthorizationCode::new("live"));
    let _: () = redis::cmd("HSET")
        .arg(format!("{{grantor}}:c:{}", live.to_hex()))
        .arg(&["s", "live", "c", "spa", "f", grant.family_id.as_str()])
        .arg("e")
        .arg(e)
        .arg("r")
        .arg(&json)
        .query_async(&mut conn)
        .await
        .expect("hset");
    assert_eq!(
        store.find_code(&live, now).await.ok(),
        Some(CodeLookup::Live(grant.clone()))
    );
    let keep = now + time::Duration::seconds(7200);
    let mark = grantor::SpentCode::new(grant.client_id.clone(), grant.family_id.clone(), keep);
    assert_eq!(
        store.spend_code(&live, &mark, now).await.ok(),
        Some(CodeSpend::Spent(grant.clone()))
    );
    let ttls: std::collections::HashMap<String, i64> = dump(&redis_server.url())
        .await
        .into_iter()
        .map(|(k, _, ttl)| (k, ttl))
        .collect();
    let ttl = ttls
        .get(&format!("{{grantor}}:c:{}", live.to_hex()))
        .copied()
        .unwrap_or(-3);
    assert!(
        (7198..=7200).contains(&ttl),
        "the mark lives as asked: {ttl}"
    );

    // A code spent by the previous release's take script: a used mark kept until `u`.
    let used = AuthorizationCodeHash::of(&AuthorizationCode::new("used"));
    let _: () = redis::cmd("HSET")
        .arg(format!("{{grantor}}:c:{}", used.to_hex()))
        .arg(&["s", "used", "c", "spa", "f", grant.family_id.as_str()])
        .arg("e")
        .arg(e)
        .arg("u")
        .arg(u)
        .query_async(&mut conn)
        .await
        .expect("hset");
    let spent = CodeLookup::Spent {
        client_id: grant.client_id.clone(),
        family_id: grant.family_id.clone(),
    };
    assert_eq!(store.find_code(&used, now).await.ok(), Some(spent.clone()));
    let at = |secs: i64| now + time::Duration::seconds(secs);
    assert_eq!(store.find_code(&used, at(3599)).await.ok(), Some(spent));
    assert_eq!(
        store.find_code(&used, at(3600)).await.ok(),
        Some(CodeLookup::Unknown)
    );
    assert_eq!(
        store.spend_code(&used, &mark, now).await.ok(),
        Some(CodeSpend::Conflict)
    );
    assert_eq!(
        store.restore_code(&used, &grant, now).await.ok(),
        Some(CodeRestore::Restored)
    );
    assert_eq!(
        store.find_code(&used, now).await.ok(),
        Some(CodeLookup::Live(grant))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_family_keeps_only_its_unexpired_members() {
    use grantor::{
        AccessToken, ClientId, FamilyId, RefreshToken, TokenHash, TokenKind, TokenStore,
    };
    let redis_server = RedisServer::start();
    let store = RedisStore::connect(&redis_server.url())
        .await
        .expect("connect");
    let start = conformance::now();
    let family = FamilyId::generate();
    let client = ClientId::new("c");
    let record = |kind, at, ttl| conformance::record(kind, "c", &family, at, ttl);
    let mut refresh_hash = TokenHash::of_refresh_token(&RefreshToken::new("r0"));
    store
        .save_tokens(
            &[(refresh_hash, record(TokenKind::Refresh, start, 150))],
            start,
        )
        .await
        .expect("save");
    // Six rotations, 100 s apart: access tokens live 10 s, refresh tokens 150 s.
    for i in 1..=6 {
        let at = start + time::Duration::seconds(100 * i);
        let next = TokenHash::of_refresh_token(&RefreshToken::new(format!("r{i}")));
        let new = [
            (
                TokenHash::of_access_token(&AccessToken::new(format!("a{i}"))),
                record(TokenKind::Access, at, 10),
            ),
            (next, record(TokenKind::Refresh, at, 150)),
        ];
        let mark = conformance::spent_mark(client.as_str(), &family, at, Some(next), 50);
        let rotated = store
            .update_tokens(&conformance::spend(refresh_hash, mark, &new), at)
            .await;
        assert!(
            matches!(rotated, Ok(grantor::TokenUpdate::Applied)),
            "{rotated:?}"
        );
        refresh_hash = next;
    }
    // At the last rotation only three entries are unexpired: a6, r6, and the mark of r5.
    let client = redis::Client::open(redis_server.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let members: u64 = redis::cmd("ZCARD")
        .arg(format!("{{grantor}}:f:{family}"))
        .query_async(&mut conn)
        .await
        .expect("zcard");
    assert_eq!(members, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_secret_keeps_usernames_from_being_matched() {
    use sha2::{Digest, Sha256};
    let redis_server = RedisServer::start();
    let plain = Arc::new(
        RedisStore::connect(&redis_server.url())
            .await
            .expect("connect"),
    );
    let keyed = Arc::new(
        RedisStore::connect_with_prefix(&redis_server.url(), "keyed")
            .await
            .expect("connect")
            .with_key_secret(b"from the secret manager"),
    );
    for store in [plain, keyed] {
        let server = server_on(store);
        let a = answer(
            server
                .token(
                    TokenRequest::form("grant_type=password&username=tom-the-user&password=nope")
                        .with_authorization(basic("other", "other-secret")),
                )
                .await,
        );
        assert_eq!(a.error(), "invalid_grant");
    }
    let keys: Vec<String> = dump(&redis_server.url())
        .await
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    let guessable = |name: &str| format!("{:x}", Sha256::digest(name.as_bytes()));
    let plain_key = format!("{{grantor}}:l:{}", guessable("user:tom-the-user"));
    // Without a secret the name is a plain SHA-256: hidden, but a guess confirms it.
    assert!(keys.contains(&plain_key), "{keys:?}");
    // With one, the same guess finds nothing.
    let keyed: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("{keyed}:l:"))
        .collect();
    assert_eq!(keyed.len(), 2, "{keys:?}"); // the username's and the client's counts
    for k in keyed {
        assert!(!k.ends_with(&guessable("user:tom-the-user")));
        assert!(!k.ends_with(&guessable("client:other")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_entries_are_errors_or_misses_never_half_done() {
    use grantor::{
        AccessToken, FamilyId, RefreshToken, TokenHash, TokenKind, TokenLookup, TokenStore,
    };
    let redis_server = RedisServer::start();
    let store = RedisStore::connect(&redis_server.url())
        .await
        .expect("connect");
    let now = conformance::now();
    let family = FamilyId::generate();
    let good = TokenHash::of_refresh_token(&RefreshToken::new("good"));
    store
        .save_tokens(
            &[(
                good,
                conformance::record(TokenKind::Refresh, "c", &family, now, 3600),
            )],
            now,
        )
        .await
        .expect("save");
    let client = redis::Client::open(redis_server.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let bad = TokenHash::of_refresh_token(&RefreshToken::new("bad"));
    let bad_key = format!("{{grantor}}:t:{}", bad.to_hex());
    let family_key = format!("{{grantor}}:f:{family}");
    // A live entry with no expiry and no record, listed in the family.
    let _: () = redis::cmd("HSET")
        .arg(&bad_key)
        .arg(&["s", "live", "k", "refresh", "c", "c"])
        .query_async(&mut conn)
        .await
        .expect("hset");
    let _: () = redis::cmd("ZADD")
        .arg(&family_key)
        .arg(now.unix_timestamp() + 3600)
        .arg(bad.to_hex())
        .query_async(&mut conn)
        .await
        .expect("zadd");

    assert_eq!(
        store.find_token(&bad, now).await.ok(),
        Some(TokenLookup::Unknown)
    );
    let new = TokenHash::of_access_token(&AccessToken::new("new"));
    let rotated = store
        .update_tokens(
            &conformance::spend(
                bad,
                conformance::spent_mark("c", &family, now, Some(new), 60),
                &[(
                    new,
                    conformance::record(TokenKind::Access, "c", &family, now, 60),
                )],
            ),
            now,
        )
        .await;
    assert_eq!(rotated.ok(), Some(grantor::TokenUpdate::Conflict));
    assert_eq!(
        store.find_token(&new, now).await.ok(),
        Some(TokenLookup::Unknown),
        "nothing saved"
    );
    assert_eq!(store.revoke_token(&bad, now).await.ok(), Some(None));
    // Revoking the family gets past the bad entry and revokes the good one.
    assert!(store
        .revoke_family(&family, now + time::Duration::hours(1), now)
        .await
        .is_ok());
    assert_eq!(
        store.find_token(&good, now).await.ok(),
        Some(TokenLookup::Unknown)
    );
    // A record that is not JSON is a backend error, not a panic.
    let _: () = redis::cmd("HSET")
        .arg(&bad_key)
        .arg(&[
            "s",
            "live",
            "e",
            &(now.unix_timestamp() + 60).to_string(),
            "r",
            "{not json",
        ])
        .query_async(&mut conn)
        .await
        .expect("hset");
    assert!(matches!(
        store.find_token(&bad, now).await,
        Err(grantor::StoreError::Backend(_))
    ));
}

/// Two servers, each with its own connection to one Redis: a one-time code used through one is
/// refused through the other, and a device approved through one is collected through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_share_otp_marks_and_device_approvals() {
    use grantor::{
        DeviceCodeStore, DeviceDecided, DevicePace, DeviceUpdate, MfaStore, OtpAdvance, UserId,
    };
    let redis_server = RedisServer::start();
    let one = RedisStore::connect(&redis_server.url())
        .await
        .expect("connect");
    let two = RedisStore::connect(&redis_server.url())
        .await
        .expect("connect");
    let now = conformance::now();
    let at = |secs: i64| now + time::Duration::seconds(secs);

    let user = UserId::new("user-1");
    assert_eq!(
        one.advance_otp_counter(&user, 7, at(30), now).await.ok(),
        Some(OtpAdvance::Advanced)
    );
    assert_eq!(
        two.advance_otp_counter(&user, 7, at(30), now).await.ok(),
        Some(OtpAdvance::NotHigher)
    );
    assert_eq!(
        two.advance_otp_counter(&user, 8, at(30), now).await.ok(),
        Some(OtpAdvance::Advanced)
    );
    assert_eq!(
        one.advance_otp_counter(&user, 8, at(30), at(1)).await.ok(),
        Some(OtpAdvance::NotHigher)
    );
    assert_eq!(
        one.advance_otp_counter(&user, 7, at(30), at(1)).await.ok(),
        Some(OtpAdvance::NotHigher),
        "an earlier code, after a later one was used through the other handle"
    );

    let request = conformance::device_request(now, 600);
    let (device, user_code) = (conformance::fresh_hash("dc"), conformance::fresh_hash("uc"));
    let limits = grantor::PendingLimits::default();
    let keep_until = conformance::device_keep_until(&request);
    assert_eq!(
        one.save_device_authorization(&device, &user_code, &request, keep_until, &limits, now)
            .await
            .ok(),
        Some(grantor::DeviceSave::Saved)
    );
    // The user code is taken for both.
    assert_eq!(
        two.save_device_authorization(
            &conformance::fresh_hash("dc"),
            &user_code,
            &request,
            keep_until,
            &limits,
            now
        )
        .await
        .ok(),
        Some(grantor::DeviceSave::UserCodeInUse)
    );
    // Polls are shared: a poll recorded through one makes a write through the other from an
    // older read conflict, and is what the other reads.
    assert_eq!(
        one.record_poll(
            &device,
            &DevicePace::new(None, 5),
            &DevicePace::new(Some(at(0)), 5),
            at(0)
        )
        .await
        .ok(),
        Some(DeviceUpdate::Applied)
    );
    assert_eq!(
        two.record_poll(
            &device,
            &DevicePace::new(None, 5),
            &DevicePace::new(Some(at(1)), 10),
            at(1)
        )
        .await
        .ok(),
        Some(DeviceUpdate::Conflict)
    );
    assert_eq!(
        two.find_device(&device, at(1))
            .await
            .ok()
            .flatten()
            .and_then(|r| r.last_poll),
        Some(at(0))
    );
    assert_eq!(
        two.record_poll(
            &device,
            &DevicePace::new(Some(at(0)), 5),
            &DevicePace::new(Some(at(1)), 10),
            at(1)
        )
        .await
        .ok(),
        Some(DeviceUpdate::Applied)
    );
    assert_eq!(
        two.find_device_authorization(&user_code, at(2))
            .await
            .ok()
            .flatten()
            .map(|r| r.interval),
        Some(10)
    );
    assert_eq!(
        two.decide_device_authorization(&user_code, &conformance::approve("user-1", "read"), at(2))
            .await
            .ok(),
        Some(DeviceDecided::Decided)
    );
    assert_eq!(
        one.decide_device_authorization(&user_code, &grantor::DeviceDecision::Deny, at(2))
            .await
            .ok(),
        Some(DeviceDecided::NotPending)
    );
    assert!(matches!(
        one.take_approved(&device, at(3)).await,
        Ok(Some(_))
    ));
    assert_eq!(two.take_approved(&device, at(3)).await.ok(), Some(None));
}

/// The device, mfa and one-time-code keys: where they are, how long they live, and that no key
/// names a user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_and_mfa_keys_live_as_long_as_their_entries() {
    use grantor::{
        DeviceCode, DeviceCodeHash, DeviceCodeStore, MfaStore, MfaToken, MfaTokenHash, UserCode,
        UserCodeHash, UserId,
    };
    let redis_server = RedisServer::start();
    let store = RedisStore::connect(&redis_server.url())
        .await
        .expect("connect");
    let now = conformance::now();
    let (device, user_code, mfa_token) = (
        DeviceCodeHash::of(&DeviceCode::new("device")),
        UserCodeHash::of(&UserCode::new("user-code")),
        MfaTokenHash::of(&MfaToken::new("mfa")),
    );
    let request = conformance::device_request(now, 600);
    assert_eq!(
        store
            .save_device_authorization(
                &device,
                &user_code,
                &request,
                conformance::device_keep_until(&request),
                &grantor::PendingLimits::default(),
                now
            )
            .await
            .ok(),
        Some(grantor::DeviceSave::Saved)
    );
    store
        .save_mfa_token(&mfa_token, &conformance::mfa_challenge(now, 300), now)
        .await
        .expect("save");
    let user = UserId::new("user-1");
    assert_eq!(
        store
            .advance_otp_counter(&user, 1234, now + time::Duration::seconds(90), now)
            .await
            .ok(),
        Some(grantor::OtpAdvance::Advanced)
    );
    let entries = dump(&redis_server.url()).await;
    let ttl = |key: &str| {
        entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, _, ttl)| *ttl)
            .unwrap_or(-3)
    };
    // Kept until the time it was saved with: 10 minutes past its expiry.
    let memory = 600;
    let device_ttl = ttl(&format!("{{grantor}}:d:{}", device.to_hex()));
    assert!(
        (600 + memory - 2..=600 + memory).contains(&device_ttl),
        "{device_ttl} {entries:?}"
    );
    let index_ttl = ttl(&format!("{{grantor}}:u:{}", user_code.to_hex()));
    assert!((598..=600).contains(&index_ttl), "{index_ttl}");
    let mfa_ttl = ttl(&format!("{{grantor}}:m:{}", mfa_token.to_hex()));
    assert!((298..=300).contains(&mfa_ttl), "{mfa_ttl}");
    let marks: Vec<_> = entries
        .iter()
        .filter(|(k, _, _)| k.starts_with("{grantor}:o:"))
        .collect();
    assert_eq!(marks.len(), 1, "{entries:?}");
    // One mark per user (the last counter accepted), named by a digest of the user id.
    let (mark, value, mark_ttl) = marks[0];
    assert_eq!(mark.len(), "{grantor}:o:".len() + 64, "{mark}");
    assert!(value.split(' ').any(|v| v == "1234"), "{value}");
    assert!((88..=90).contains(mark_ttl), "{mark_ttl}");
    for (key, _, ttl) in &entries {
        assert!(!key.contains("user-1"), "{key}");
        assert!(*ttl > 0, "{key} has no expiry ({ttl})");
    }
    // Deciding removes the user code index at once; the request stays until collected.
    assert_eq!(
        store
            .decide_device_authorization(&user_code, &grantor::DeviceDecision::Deny, now)
            .await
            .ok(),
        Some(grantor::DeviceDecided::Decided)
    );
    let keys: Vec<String> = dump(&redis_server.url())
        .await
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    assert!(!keys.contains(&format!("{{grantor}}:u:{}", user_code.to_hex())));
    assert!(keys.contains(&format!("{{grantor}}:d:{}", device.to_hex())));
    // The index held the request's device code hash, nothing more.
    let index = entries
        .iter()
        .find(|(k, _, _)| *k == format!("{{grantor}}:u:{}", user_code.to_hex()))
        .map(|(_, v, _)| v.clone());
    assert_eq!(index, Some(device.to_hex()));
}

/// A device request written before requests kept the time they are kept until (no `k` field,
/// only a TTL) is kept as long as its key lives: read, polled, decided and taken as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_request_written_without_its_keep_time_is_kept_while_its_key_lives() {
    use grantor::{DeviceCodeStore, DeviceDecided, DeviceUpdate};
    let redis_server = RedisServer::start();
    let store = RedisStore::connect(&redis_server.url())
        .await
        .expect("connect");
    let now = conformance::now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let request = conformance::device_request(now, 600);
    let (device, user_code): (grantor::DeviceCodeHash, grantor::UserCodeHash) =
        (conformance::fresh_hash("dc"), conformance::fresh_hash("uc"));
    // The hash and index as an earlier version wrote them.
    let client = redis::Client::open(redis_server.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let device_key = format!("{{grantor}}:d:{}", device.to_hex());
    let expires = request.expires_at.unix_timestamp().to_string();
    let json = grantor::encode_record(&request).expect("record");
    let _: () = redis::cmd("HSET")
        .arg(&device_key)
        .arg(&[
            "c", "tv", "e", &expires, "s", "pending", "i", "5", "r", &json,
        ])
        .query_async(&mut conn)
        .await
        .expect("hset");
    let _: () = redis::cmd("EXPIRE")
        .arg(&device_key)
        .arg(1200)
        .query_async(&mut conn)
        .await
        .expect("expire");
    let _: () = redis::cmd("SET")
        .arg(format!("{{grantor}}:u:{}", user_code.to_hex()))
        .arg(device.to_hex())
        .arg("EX")
        .arg(600)
        .query_async(&mut conn)
        .await
        .expect("set");

    assert_eq!(
        store.find_device(&device, now).await.ok(),
        Some(Some(request.clone()))
    );
    // Its key lives: it is read past its expiry, however late the now given.
    assert_eq!(
        store.find_device(&device, at(5000)).await.ok(),
        Some(Some(request.clone()))
    );
    assert_eq!(
        store
            .record_poll(
                &device,
                &grantor::DevicePace::new(None, 5),
                &grantor::DevicePace::new(Some(at(1)), 5),
                at(1)
            )
            .await
            .ok(),
        Some(DeviceUpdate::Applied)
    );
    assert_eq!(
        store
            .decide_device_authorization(&user_code, &conformance::approve("user-1", "read"), at(2))
            .await
            .ok(),
        Some(DeviceDecided::Decided)
    );
    let taken = store
        .take_approved(&device, at(3))
        .await
        .expect("take")
        .expect("an approval");
    assert_eq!(taken.last_poll, Some(at(1)));
    assert_eq!(store.find_device(&device, at(3)).await.ok(), Some(None));
}

/// A Redis that may evict keys would silently drop failed sign-in counts, revoked families and
/// spent codes under memory pressure: the store refuses to start on one, naming `noeviction`,
/// unless the host opts out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_may_evict_keys_is_refused_unless_the_host_opts_out() {
    let evicting = RedisServer::start_configured(&["--maxmemory-policy", "allkeys-lru"]);
    let error = RedisStore::connect(&evicting.url())
        .await
        .expect_err("refused");
    let text = std::error::Error::source(&error)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(text.contains("`allkeys-lru`"), "{text}");
    assert!(text.contains("noeviction"), "{text}");
    assert!(text.contains("allow_eviction"), "{text}");
    // Even the volatile policies: every grantor key has a TTL.
    let volatile = RedisServer::start_configured(&["--maxmemory-policy", "volatile-lru"]);
    assert!(RedisStore::connect_with_prefix(&volatile.url(), "x")
        .await
        .is_err());
    // Opting out connects.
    let store = RedisStore::builder()
        .allow_eviction(true)
        .connect(&evicting.url())
        .await
        .expect("opted out");
    assert!(format!("{store:?}").contains("grantor"));
    // A noeviction Redis (the default) is accepted, and so is a policy changed to it.
    let strict = RedisServer::start();
    RedisStore::connect(&strict.url())
        .await
        .expect("noeviction");
    let client = redis::Client::open(evicting.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("noeviction")
        .query_async(&mut conn)
        .await
        .expect("config set");
    RedisStore::connect(&evicting.url())
        .await
        .expect("noeviction now");
}
