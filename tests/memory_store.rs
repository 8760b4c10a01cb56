//! The in-memory stores: nothing recoverable at rest, atomic rotation, expiry, limiter windows.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use grantor::{
    AttemptKey, AttemptLimiter, AttemptRule, AttemptVerdict, ClientId, FamilyId,
    MemoryAttemptLimiter, MemoryTokenStore, Rotation, Scope, TokenHash, TokenKind, TokenLookup,
    TokenRecord, TokenStore,
};

fn record(kind: TokenKind, family: &FamilyId, ttl: i64) -> TokenRecord {
    TokenRecord {
        kind,
        client_id: ClientId::new("c"),
        user_id: None,
        scope: Scope::parse("read").expect("scope"),
        issued_at: START,
        expires_at: START + time::Duration::seconds(ttl),
        family_id: family.clone(),
    }
}

#[tokio::test]
async fn the_store_holds_no_recoverable_token_or_secret() {
    let f = fixture();
    let login = f.login().await;
    let refreshed = f
        .refresh(("clientapp", "123456"), &login.str("refresh_token"), "")
        .await;
    let issued = [
        login.str("access_token"),
        login.str("refresh_token"),
        refreshed.str("access_token"),
        refreshed.str("refresh_token"),
    ];
    let snapshot = f.tokens.snapshot();
    assert_eq!(snapshot.len(), 4);
    let dump = format!("{snapshot:?}");
    for token in &issued {
        assert!(!dump.contains(token.as_str()));
        let hash = TokenHash::of(token);
        assert!(
            snapshot.iter().any(|(h, _)| *h == hash),
            "kept under its SHA-256"
        );
        assert!(!hash.to_hex().contains(token.as_str()));
        for (h, entry) in &snapshot {
            assert_ne!(h.as_bytes().as_slice(), token.as_bytes());
            let json = match entry {
                TokenLookup::Live(r) => serde_json::to_string(r).unwrap_or_default(),
                other => format!("{other:?}"),
            };
            assert!(!json.contains(token.as_str()));
        }
    }
    // Nor do Debug outputs of the server, the stores or the clients leak secrets.
    let debug = format!("{:?} {:?} {:?}", f.server, f.tokens, clients());
    for secret in ["123456", "other-secret", "service-secret"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    for token in &issued {
        assert!(!debug.contains(token.as_str()));
    }
}

#[tokio::test]
async fn rotation_has_exactly_one_winner_among_100_tasks() {
    let store = Arc::new(MemoryTokenStore::new());
    let family = FamilyId::generate();
    let old = TokenHash::of("old");
    store
        .save_tokens(&[(
            old,
            record(TokenKind::Refresh, &family, 3600 * 24 * 365 * 100),
        )])
        .await
        .expect("save");
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = store.clone();
        let family = family.clone();
        tasks.push(tokio::spawn(async move {
            let new = [(
                TokenHash::of(&format!("new-{i}")),
                record(TokenKind::Refresh, &family, 3600 * 24 * 365 * 100),
            )];
            store.rotate_refresh_token(&old, &new).await
        }));
    }
    let (mut rotated, mut reused) = (0, 0);
    for t in tasks {
        match t.await.ok().and_then(Result::ok) {
            Some(Rotation::Rotated(_)) => rotated += 1,
            Some(Rotation::Reused(f)) => {
                assert_eq!(f, family);
                reused += 1
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((rotated, reused), (1, 99));
    // Only the winner's token was saved.
    let live = store
        .snapshot()
        .into_iter()
        .filter(|(_, e)| matches!(e, TokenLookup::Live(_)))
        .count();
    assert_eq!(live, 1);
}

#[tokio::test]
async fn rotate_refuses_access_tokens_and_unknown_hashes() {
    let store = MemoryTokenStore::new();
    let family = FamilyId::generate();
    let at = TokenHash::of("access");
    store
        .save_tokens(&[(at, record(TokenKind::Access, &family, i64::from(i32::MAX)))])
        .await
        .expect("save");
    assert_eq!(
        store.rotate_refresh_token(&at, &[]).await.ok(),
        Some(Rotation::NotFound)
    );
    assert_eq!(
        store
            .rotate_refresh_token(&TokenHash::of("x"), &[])
            .await
            .ok(),
        Some(Rotation::NotFound)
    );
    assert!(matches!(
        store.find_token(&at).await,
        Ok(TokenLookup::Live(_))
    ));
}

#[tokio::test]
async fn expired_entries_vanish_and_are_purged() {
    let clock = Arc::new(grantor::ManualClock::new(START));
    let store = MemoryTokenStore::new().with_clock(clock.clone());
    let family = FamilyId::generate();
    let short = TokenHash::of("short");
    let long = TokenHash::of("long");
    store
        .save_tokens(&[
            (short, record(TokenKind::Access, &family, 60)),
            (long, record(TokenKind::Refresh, &family, 600)),
        ])
        .await
        .expect("save");
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        store.find_token(&short).await.ok(),
        Some(TokenLookup::Unknown)
    );
    assert!(matches!(
        store.find_token(&long).await,
        Ok(TokenLookup::Live(_))
    ));
    clock.advance(Duration::from_secs(600));
    store.purge_expired();
    assert!(store.is_empty());
}

#[tokio::test]
async fn writes_purge_expired_entries_by_themselves() {
    let clock = Arc::new(grantor::ManualClock::new(START));
    let store = MemoryTokenStore::new().with_clock(clock.clone());
    let family = FamilyId::generate();
    for i in 0..100 {
        store
            .save_tokens(&[(
                TokenHash::of(&i.to_string()),
                record(TokenKind::Access, &family, 60),
            )])
            .await
            .expect("save");
    }
    clock.advance(Duration::from_secs(3600));
    store
        .save_tokens(&[(
            TokenHash::of("fresh"),
            record(TokenKind::Access, &family, 7200),
        )])
        .await
        .expect("save");
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn revoke_one_and_revoke_a_family() {
    let store = MemoryTokenStore::new();
    let fam = FamilyId::generate();
    let other = FamilyId::generate();
    let forever = i64::from(i32::MAX);
    let (a, b, c) = (TokenHash::of("a"), TokenHash::of("b"), TokenHash::of("c"));
    store
        .save_tokens(&[
            (a, record(TokenKind::Access, &fam, forever)),
            (b, record(TokenKind::Refresh, &fam, forever)),
            (c, record(TokenKind::Access, &other, forever)),
        ])
        .await
        .expect("save");
    assert!(store.revoke_token(&a).await.ok().flatten().is_some());
    assert!(store.revoke_token(&a).await.ok().flatten().is_none());
    // Rotate b so the family has a rotation mark, then revoke the family.
    let d = TokenHash::of("d");
    assert!(matches!(
        store
            .rotate_refresh_token(&b, &[(d, record(TokenKind::Refresh, &fam, forever))])
            .await,
        Ok(Rotation::Rotated(_))
    ));
    assert_eq!(store.revoke_family(&fam).await.ok(), Some(1));
    assert_eq!(store.find_token(&d).await.ok(), Some(TokenLookup::Unknown));
    // The rotation mark stays, so a replay is still recognised.
    assert_eq!(
        store.find_token(&b).await.ok(),
        Some(TokenLookup::Rotated(fam.clone()))
    );
    assert!(matches!(
        store.find_token(&c).await,
        Ok(TokenLookup::Live(_))
    ));
}

#[tokio::test]
async fn limiter_windows() {
    let limiter = MemoryAttemptLimiter::new();
    let key = AttemptKey::Client(ClientId::new("c"));
    let rule = AttemptRule {
        max_failures: 2,
        window: Duration::from_secs(60),
    };
    let at = |s: i64| START + time::Duration::seconds(s);
    assert_eq!(
        limiter.reserve_attempt(&key, &rule, at(0)).await.ok(),
        Some(AttemptVerdict::Allowed)
    );
    assert_eq!(
        limiter.reserve_attempt(&key, &rule, at(1)).await.ok(),
        Some(AttemptVerdict::Allowed)
    );
    assert_eq!(
        limiter.reserve_attempt(&key, &rule, at(10)).await.ok(),
        Some(AttemptVerdict::Refused {
            retry_after: Duration::from_secs(50)
        })
    );
    // A released attempt frees a place.
    limiter
        .release_attempt(&key, at(11))
        .await
        .expect("release");
    assert_eq!(
        limiter.reserve_attempt(&key, &rule, at(12)).await.ok(),
        Some(AttemptVerdict::Allowed)
    );
    // The window closes 60 s after it opened.
    assert_eq!(
        limiter.reserve_attempt(&key, &rule, at(60)).await.ok(),
        Some(AttemptVerdict::Allowed)
    );
    // Releases never go below zero.
    for _ in 0..5 {
        limiter
            .release_attempt(&key, at(61))
            .await
            .expect("release");
    }
    assert_eq!(
        limiter.reserve_attempt(&key, &rule, at(62)).await.ok(),
        Some(AttemptVerdict::Allowed)
    );
    assert_eq!(
        limiter.reserve_attempt(&key, &rule, at(63)).await.ok(),
        Some(AttemptVerdict::Allowed)
    );
    assert!(matches!(
        limiter.reserve_attempt(&key, &rule, at(64)).await,
        Ok(AttemptVerdict::Refused { .. })
    ));
}
