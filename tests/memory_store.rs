//! What is particular to the in-memory stores: nothing recoverable at rest, and purging.
//! (Every store's behaviour is checked by the conformance suite in `store_memory.rs`.)

mod common;

use std::time::Duration;

use common::*;
use grantor::{
    AccessToken, FamilyId, MemoryTokenStore, RefreshToken, Scope, TokenHash, TokenKind,
    TokenLookup, TokenRecord, TokenStore,
};

fn record(kind: TokenKind, family: &FamilyId, ttl: i64) -> TokenRecord {
    let mut record = grantor::conformance::record(kind, "c", family, START, ttl);
    record.user_id = None;
    record.username = None;
    record.scope = Scope::parse("read").expect("scope");
    record
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
        let hash = TokenHash::of_access_token(&AccessToken::new(token));
        assert!(
            snapshot.iter().any(|(h, _)| *h == hash),
            "kept under its SHA-256"
        );
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
async fn purge_drops_expired_entries() {
    let store = MemoryTokenStore::new();
    let family = FamilyId::generate();
    store
        .save_tokens(
            &[
                (
                    TokenHash::of_access_token(&AccessToken::new("short")),
                    record(TokenKind::Access, &family, 60),
                ),
                (
                    TokenHash::of_refresh_token(&RefreshToken::new("long")),
                    record(TokenKind::Refresh, &family, 600),
                ),
            ],
            START,
        )
        .await
        .expect("save");
    store.purge_expired(START + time::Duration::seconds(60));
    assert_eq!(store.len(), 1);
    store.purge_expired(START + time::Duration::seconds(600));
    assert!(store.is_empty());
}

#[tokio::test]
async fn writes_purge_expired_entries_by_themselves() {
    let store = MemoryTokenStore::new();
    let family = FamilyId::generate();
    for i in 0..100 {
        store
            .save_tokens(
                &[(
                    TokenHash::of_access_token(&AccessToken::new(i.to_string())),
                    record(TokenKind::Access, &family, 60),
                )],
                START,
            )
            .await
            .expect("save");
    }
    let later = START + Duration::from_secs(3600);
    let mut fresh = record(TokenKind::Access, &family, 7200);
    fresh.issued_at = later;
    store
        .save_tokens(
            &[(
                TokenHash::of_access_token(&AccessToken::new("fresh")),
                fresh,
            )],
            later,
        )
        .await
        .expect("save");
    assert_eq!(store.len(), 1);
}

/// Expired entries are dropped a bounded batch per write, from an index by expiry: a write after
/// a mass expiry never walks (or empties) the whole map at once, and a few writes later
/// everything expired is gone.
#[tokio::test]
async fn writes_sweep_expired_entries_a_batch_at_a_time() {
    let store = MemoryTokenStore::new();
    let family = FamilyId::generate();
    let batch: Vec<_> = (0..2000)
        .map(|i| {
            (
                TokenHash::of_access_token(&AccessToken::new(format!("t{i}"))),
                record(TokenKind::Access, &family, 60),
            )
        })
        .collect();
    store.save_tokens(&batch, START).await.expect("save");
    let later = START + Duration::from_secs(3600);
    let write = |n: usize| {
        let mut fresh = record(TokenKind::Access, &FamilyId::generate(), 7200);
        fresh.issued_at = later;
        (
            TokenHash::of_access_token(&AccessToken::new(format!("fresh{n}"))),
            fresh,
        )
    };
    store.save_tokens(&[write(0)], later).await.expect("save");
    let after_one = store.len();
    assert!(
        after_one > 1000 && after_one < 2001,
        "one write swept part of the backlog, not all of it: {after_one}"
    );
    for n in 1..8 {
        store.save_tokens(&[write(n)], later).await.expect("save");
    }
    assert_eq!(store.len(), 8, "a few writes later the backlog is gone");
    // Lookups of expired entries never answered them meanwhile.
    assert_eq!(
        store
            .find_token(
                &TokenHash::of_access_token(&AccessToken::new("t1999")),
                later
            )
            .await
            .ok(),
        Some(TokenLookup::Unknown)
    );
}

#[tokio::test]
async fn a_code_saved_over_its_used_mark_is_held_once() {
    use grantor::conformance::{code_grant, fresh_hash, used_mark};
    use grantor::{CodeLookup, CodeSpend, CodeStore, MemoryCodeStore};
    let codes = MemoryCodeStore::new();
    let code = fresh_hash("c");
    let grant = code_grant(START, 60);
    codes.save_code(&code, &grant, START).await.expect("save");
    let spent = codes
        .spend_code(&code, &used_mark(&grant, START, 3600), START)
        .await
        .expect("spend");
    assert_eq!(spent, CodeSpend::Spent(grant.clone()));
    // Saving replaces what the code held, its used mark included: live again, and held once.
    codes.save_code(&code, &grant, START).await.expect("save");
    assert_eq!(
        codes.find_code(&code, START).await.expect("find"),
        CodeLookup::Live(grant)
    );
    assert_eq!(codes.len(), 1);
}
