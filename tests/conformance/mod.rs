//! One conformance suite for every store: each check is a generic async function over the
//! store traits, and `conformance_suite!` turns them into tests for one store factory.
//!
//! Time is an argument of every store method, so the checks move `now` forward instead of
//! sleeping; a store with real TTLs (Redis) still sees consistent answers, because it judges
//! expiry by the `now` it is given.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use grantor::{
    AttemptKey, AttemptLimiter, AttemptRule, AttemptVerdict, ClientId, CodeChallenge,
    CodeChallengeMethod, CodeGrant, CodeRedemption, CodeStore, DeviceAuthorization,
    DeviceCodeStore, DeviceDecision, DevicePoll, DeviceStatus, FamilyId, MfaChallenge, MfaStore,
    PendingAuthorization, RedirectUri, ResponseType, Rotation, Scope, TokenHash, TokenKind,
    TokenLookup, TokenRecord, TokenStore, UserId, EXPIRED_DEVICE_CODE_MEMORY,
};
use time::OffsetDateTime;
use tokio::sync::Barrier;

/// The stores under test.
pub struct Stores {
    pub tokens: Arc<dyn TokenStore>,
    pub limiter: Arc<dyn AttemptLimiter>,
    pub codes: Arc<dyn CodeStore>,
    pub devices: Arc<dyn DeviceCodeStore>,
    pub mfa: Arc<dyn MfaStore>,
    /// Whatever must live as long as the stores (a server process), dropped with them.
    pub guard: Option<Box<dyn std::any::Any + Send + Sync>>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A hash no other check uses, so checks can share one backend.
pub fn fresh_hash(label: &str) -> TokenHash {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    TokenHash::of(&format!("{label}-{n}-{}", FamilyId::generate()))
}

/// "Now" for the checks: the real time, so that a store with real TTLs keeps the entries.
#[allow(clippy::disallowed_methods)]
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Runs `n` futures on the runtime's threads, released together by a barrier, and answers
/// their outputs.
pub async fn race<T, F, Fut>(n: usize, make: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, run) = (barrier.clone(), make(i));
            tokio::spawn(async move {
                barrier.wait().await;
                run.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

pub fn record(
    kind: TokenKind,
    client: &str,
    family: &FamilyId,
    now: OffsetDateTime,
    ttl: i64,
) -> TokenRecord {
    TokenRecord {
        kind,
        client_id: ClientId::new(client),
        user_id: Some(UserId::new("user-1")),
        scope: Scope::parse("read write").unwrap_or_default(),
        issued_at: now,
        expires_at: now + time::Duration::seconds(ttl),
        family_id: family.clone(),
    }
}

const HOUR: i64 = 3600;

pub async fn save_and_find(s: Stores) {
    let now = now();
    let fam = FamilyId::generate();
    let (a, r) = (fresh_hash("a"), fresh_hash("r"));
    let ra = record(TokenKind::Access, "c", &fam, now, HOUR);
    let rr = record(TokenKind::Refresh, "c", &fam, now, 24 * HOUR);
    s.tokens
        .save_tokens(&[(a, ra.clone()), (r, rr.clone())], now)
        .await
        .expect("save");
    assert_eq!(
        s.tokens.find_token(&a, now).await.expect("find"),
        TokenLookup::Live(ra)
    );
    assert_eq!(
        s.tokens.find_token(&r, now).await.expect("find"),
        TokenLookup::Live(rr)
    );
    assert_eq!(
        s.tokens
            .find_token(&fresh_hash("x"), now)
            .await
            .expect("find"),
        TokenLookup::Unknown
    );
    // A record without a user round-trips too.
    let mut no_user = record(TokenKind::Access, "c", &fam, now, HOUR);
    no_user.user_id = None;
    let h = fresh_hash("nu");
    s.tokens
        .save_tokens(&[(h, no_user.clone())], now)
        .await
        .expect("save");
    assert_eq!(
        s.tokens.find_token(&h, now).await.expect("find"),
        TokenLookup::Live(no_user)
    );
}

pub async fn expiry_is_judged_by_now(s: Stores) {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let fam = FamilyId::generate();
    let (a, r) = (fresh_hash("a"), fresh_hash("r"));
    s.tokens
        .save_tokens(
            &[
                (a, record(TokenKind::Access, "c", &fam, now, 60)),
                (r, record(TokenKind::Refresh, "c", &fam, now, 120)),
            ],
            now,
        )
        .await
        .expect("save");
    assert!(matches!(
        s.tokens.find_token(&a, at(59)).await,
        Ok(TokenLookup::Live(_))
    ));
    assert_eq!(
        s.tokens.find_token(&a, at(60)).await.ok(),
        Some(TokenLookup::Unknown)
    );
    assert_eq!(s.tokens.revoke_token(&a, at(60)).await.ok(), Some(None));
    let new = [(
        fresh_hash("n"),
        record(TokenKind::Refresh, "c", &fam, at(120), 120),
    )];
    assert_eq!(
        s.tokens
            .rotate_refresh_token(&r, &ClientId::new("c"), &new, true, at(120))
            .await
            .ok(),
        Some(Rotation::NotFound)
    );
    assert_eq!(
        s.tokens.find_token(&new[0].0, at(120)).await.ok(),
        Some(TokenLookup::Unknown)
    );
}

pub async fn rotation_spends_the_old_token_once(s: Stores) {
    let now = now();
    let fam = FamilyId::generate();
    let client = ClientId::new("c");
    let old = fresh_hash("old");
    let rec = record(TokenKind::Refresh, "c", &fam, now, 24 * HOUR);
    s.tokens
        .save_tokens(&[(old, rec.clone())], now)
        .await
        .expect("save");
    let new = [
        (
            fresh_hash("na"),
            record(TokenKind::Access, "c", &fam, now, HOUR),
        ),
        (
            fresh_hash("nr"),
            record(TokenKind::Refresh, "c", &fam, now, 24 * HOUR),
        ),
    ];
    assert_eq!(
        s.tokens
            .rotate_refresh_token(&old, &client, &new, true, now)
            .await
            .expect("rotate"),
        Rotation::Issued(rec)
    );
    for (h, r) in &new {
        assert_eq!(
            s.tokens.find_token(h, now).await.expect("find"),
            TokenLookup::Live(r.clone())
        );
    }
    let spent = TokenLookup::Rotated {
        client_id: client.clone(),
        family_id: fam.clone(),
    };
    assert_eq!(s.tokens.find_token(&old, now).await.expect("find"), spent);
    let again = [(
        fresh_hash("x"),
        record(TokenKind::Refresh, "c", &fam, now, HOUR),
    )];
    assert_eq!(
        s.tokens
            .rotate_refresh_token(&old, &client, &again, true, now)
            .await
            .expect("rotate"),
        Rotation::Reused {
            client_id: client.clone(),
            family_id: fam.clone()
        }
    );
    assert_eq!(
        s.tokens.find_token(&again[0].0, now).await.expect("find"),
        TokenLookup::Unknown
    );
    // A spent token cannot be revoked again, and its mark lasts until its own expiry.
    assert_eq!(
        s.tokens.revoke_token(&old, now).await.expect("revoke"),
        None
    );
    let later = now + time::Duration::seconds(24 * HOUR - 1);
    assert!(matches!(
        s.tokens.find_token(&old, later).await,
        Ok(TokenLookup::Rotated { .. })
    ));
    // At its own expiry the mark is gone: no longer a replay, just unknown.
    let expired = now + time::Duration::seconds(24 * HOUR);
    assert_eq!(
        s.tokens.find_token(&old, expired).await.ok(),
        Some(TokenLookup::Unknown)
    );
    assert_eq!(
        s.tokens
            .rotate_refresh_token(&old, &client, &[], true, expired)
            .await
            .ok(),
        Some(Rotation::NotFound)
    );
}

pub async fn rotation_checks_client_and_kind(s: Stores) {
    let now = now();
    let fam = FamilyId::generate();
    let (refresh, access) = (fresh_hash("r"), fresh_hash("a"));
    let rr = record(TokenKind::Refresh, "c", &fam, now, HOUR);
    s.tokens
        .save_tokens(
            &[
                (refresh, rr.clone()),
                (access, record(TokenKind::Access, "c", &fam, now, HOUR)),
            ],
            now,
        )
        .await
        .expect("save");
    let new = [(
        fresh_hash("n"),
        record(TokenKind::Access, "c", &fam, now, HOUR),
    )];
    let other = ClientId::new("other");
    let c = ClientId::new("c");
    assert_eq!(
        s.tokens
            .rotate_refresh_token(&refresh, &other, &new, true, now)
            .await
            .ok(),
        Some(Rotation::NotFound)
    );
    assert_eq!(
        s.tokens
            .rotate_refresh_token(&access, &c, &new, true, now)
            .await
            .ok(),
        Some(Rotation::NotFound)
    );
    assert_eq!(
        s.tokens
            .rotate_refresh_token(&fresh_hash("u"), &c, &new, true, now)
            .await
            .ok(),
        Some(Rotation::NotFound)
    );
    assert_eq!(
        s.tokens.find_token(&new[0].0, now).await.ok(),
        Some(TokenLookup::Unknown)
    );
    assert_eq!(
        s.tokens.find_token(&refresh, now).await.ok(),
        Some(TokenLookup::Live(rr))
    );
}

pub async fn rotation_can_keep_the_old_token(s: Stores) {
    let now = now();
    let fam = FamilyId::generate();
    let c = ClientId::new("c");
    let old = fresh_hash("old");
    let rr = record(TokenKind::Refresh, "c", &fam, now, HOUR);
    s.tokens
        .save_tokens(&[(old, rr.clone())], now)
        .await
        .expect("save");
    for _ in 0..3 {
        let new = [(
            fresh_hash("n"),
            record(TokenKind::Access, "c", &fam, now, HOUR),
        )];
        assert_eq!(
            s.tokens
                .rotate_refresh_token(&old, &c, &new, false, now)
                .await
                .ok(),
            Some(Rotation::Issued(rr.clone()))
        );
        assert!(matches!(
            s.tokens.find_token(&new[0].0, now).await,
            Ok(TokenLookup::Live(_))
        ));
    }
    assert_eq!(
        s.tokens.find_token(&old, now).await.ok(),
        Some(TokenLookup::Live(rr))
    );
}

pub async fn revoke_one(s: Stores) {
    let now = now();
    let fam = FamilyId::generate();
    let a = fresh_hash("a");
    let ra = record(TokenKind::Access, "c", &fam, now, HOUR);
    s.tokens
        .save_tokens(&[(a, ra.clone())], now)
        .await
        .expect("save");
    assert_eq!(
        s.tokens.revoke_token(&a, now).await.expect("revoke"),
        Some(ra)
    );
    assert_eq!(s.tokens.revoke_token(&a, now).await.expect("revoke"), None);
    assert_eq!(
        s.tokens.find_token(&a, now).await.expect("find"),
        TokenLookup::Unknown
    );
    assert_eq!(
        s.tokens
            .revoke_token(&fresh_hash("u"), now)
            .await
            .expect("revoke"),
        None
    );
}

pub async fn revoke_a_family(s: Stores) {
    let now = now();
    let (fam, other) = (FamilyId::generate(), FamilyId::generate());
    let c = ClientId::new("c");
    let (a, r, o) = (fresh_hash("a"), fresh_hash("r"), fresh_hash("o"));
    s.tokens
        .save_tokens(
            &[
                (a, record(TokenKind::Access, "c", &fam, now, HOUR)),
                (r, record(TokenKind::Refresh, "c", &fam, now, HOUR)),
                (o, record(TokenKind::Access, "c", &other, now, HOUR)),
            ],
            now,
        )
        .await
        .expect("save");
    // Rotate r so the family also holds a rotation mark.
    let (na, nr) = (fresh_hash("na"), fresh_hash("nr"));
    let new = [
        (na, record(TokenKind::Access, "c", &fam, now, HOUR)),
        (nr, record(TokenKind::Refresh, "c", &fam, now, HOUR)),
    ];
    assert!(matches!(
        s.tokens.rotate_refresh_token(&r, &c, &new, true, now).await,
        Ok(Rotation::Issued(_))
    ));
    assert_eq!(s.tokens.revoke_family(&fam, now).await.expect("revoke"), 3);
    for h in [a, na, nr] {
        assert_eq!(
            s.tokens.find_token(&h, now).await.ok(),
            Some(TokenLookup::Unknown)
        );
    }
    // The mark stays: a replay is still recognised.
    assert!(matches!(
        s.tokens.find_token(&r, now).await,
        Ok(TokenLookup::Rotated { .. })
    ));
    assert!(matches!(
        s.tokens.find_token(&o, now).await,
        Ok(TokenLookup::Live(_))
    ));
    assert_eq!(s.tokens.revoke_family(&fam, now).await.expect("revoke"), 0);
    assert_eq!(
        s.tokens
            .revoke_family(&FamilyId::generate(), now)
            .await
            .expect("revoke"),
        0
    );
    // Nothing can be issued from a revoked family's refresh token.
    assert_eq!(
        s.tokens
            .rotate_refresh_token(
                &nr,
                &c,
                &[(
                    fresh_hash("z"),
                    record(TokenKind::Access, "c", &fam, now, HOUR)
                )],
                true,
                now
            )
            .await
            .ok(),
        Some(Rotation::NotFound)
    );
}

pub async fn revoke_a_family_counts_only_unexpired_tokens(s: Stores) {
    let now = now();
    let fam = FamilyId::generate();
    let (short, long) = (fresh_hash("s"), fresh_hash("l"));
    s.tokens
        .save_tokens(
            &[
                (short, record(TokenKind::Access, "c", &fam, now, 10)),
                (long, record(TokenKind::Refresh, "c", &fam, now, HOUR)),
            ],
            now,
        )
        .await
        .expect("save");
    let later = now + time::Duration::seconds(20);
    assert_eq!(
        s.tokens.revoke_family(&fam, later).await.expect("revoke"),
        1
    );
    assert_eq!(
        s.tokens.find_token(&long, later).await.ok(),
        Some(TokenLookup::Unknown)
    );
}

pub async fn a_revoked_family_takes_no_new_tokens_for_a_while(s: Stores) {
    let now = now();
    let (fam, other) = (FamilyId::generate(), FamilyId::generate());
    s.tokens
        .save_tokens(
            &[(
                fresh_hash("a"),
                record(TokenKind::Access, "c", &fam, now, HOUR),
            )],
            now,
        )
        .await
        .expect("save");
    assert_eq!(s.tokens.revoke_family(&fam, now).await.expect("revoke"), 1);
    // A grant that raced the revocation: its tokens are refused, all of them.
    let late = [
        (
            fresh_hash("la"),
            record(TokenKind::Access, "c", &other, now, HOUR),
        ),
        (
            fresh_hash("lb"),
            record(TokenKind::Access, "c", &fam, now, HOUR),
        ),
    ];
    assert!(!s.tokens.save_tokens(&late, now).await.expect("save"));
    for (h, _) in &late {
        assert_eq!(
            s.tokens.find_token(h, now).await.ok(),
            Some(TokenLookup::Unknown)
        );
    }
    // Other families are unaffected.
    assert!(s.tokens.save_tokens(&late[..1], now).await.expect("save"));
    // Rotation cannot bring tokens into it either.
    let old = fresh_hash("old");
    s.tokens
        .save_tokens(
            &[(old, record(TokenKind::Refresh, "c", &other, now, HOUR))],
            now,
        )
        .await
        .expect("save");
    let into_revoked = [(
        fresh_hash("n"),
        record(TokenKind::Access, "c", &fam, now, HOUR),
    )];
    assert_eq!(
        s.tokens
            .rotate_refresh_token(&old, &ClientId::new("c"), &into_revoked, true, now)
            .await
            .ok(),
        Some(Rotation::NotFound)
    );
    assert!(
        matches!(
            s.tokens.find_token(&old, now).await,
            Ok(TokenLookup::Live(_))
        ),
        "nothing spent"
    );
    // The memory of it fades after an hour.
    let later = now + time::Duration::seconds(grantor::REVOKED_FAMILY_MEMORY);
    let again = [(
        fresh_hash("ag"),
        record(TokenKind::Access, "c", &fam, later, HOUR),
    )];
    assert!(s.tokens.save_tokens(&again, later).await.expect("save"));
}

/// 100 tasks on several threads rotate one refresh token at once: exactly one wins.
pub async fn rotation_race_has_one_winner(s: Stores) {
    let now = now();
    let fam = FamilyId::generate();
    let old = fresh_hash("old");
    s.tokens
        .save_tokens(
            &[(old, record(TokenKind::Refresh, "c", &fam, now, HOUR))],
            now,
        )
        .await
        .expect("save");
    let outcomes = race(100, |i| {
        let tokens = s.tokens.clone();
        let new = [(
            fresh_hash(&format!("n{i}")),
            record(TokenKind::Refresh, "c", &fam, now, HOUR),
        )];
        async move {
            let outcome = tokens
                .rotate_refresh_token(&old, &ClientId::new("c"), &new, true, now)
                .await;
            (new[0].0, outcome)
        }
    })
    .await;
    let mut winners = Vec::new();
    let mut reused = 0;
    for outcome in outcomes {
        match outcome {
            (h, Ok(Rotation::Issued(_))) => winners.push(h),
            (_, Ok(Rotation::Reused { family_id, .. })) => {
                assert_eq!(family_id, fam);
                reused += 1;
            }
            (_, other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((winners.len(), reused), (1, 99));
    assert!(matches!(
        s.tokens.find_token(&winners[0], now).await,
        Ok(TokenLookup::Live(_))
    ));
    // What the engine does with a replay: revoke the family, which takes the winner's token too.
    assert_eq!(s.tokens.revoke_family(&fam, now).await.expect("revoke"), 1);
    assert_eq!(
        s.tokens.find_token(&winners[0], now).await.ok(),
        Some(TokenLookup::Unknown)
    );
}

/// Revoking a family while its refresh token is being rotated leaves no live token behind.
pub async fn revoke_family_races_rotation(s: Stores) {
    let now = now();
    for _ in 0..20 {
        let fam = FamilyId::generate();
        let old = fresh_hash("old");
        s.tokens
            .save_tokens(
                &[(old, record(TokenKind::Refresh, "c", &fam, now, HOUR))],
                now,
            )
            .await
            .expect("save");
        let new_hash = fresh_hash("new");
        let new = [(new_hash, record(TokenKind::Refresh, "c", &fam, now, HOUR))];
        let barrier = Arc::new(Barrier::new(2));
        let (t1, b1) = (s.tokens.clone(), barrier.clone());
        let fam1 = fam.clone();
        let revoke = tokio::spawn(async move {
            b1.wait().await;
            t1.revoke_family(&fam1, now).await
        });
        let (t2, b2) = (s.tokens.clone(), barrier.clone());
        let rotate = tokio::spawn(async move {
            b2.wait().await;
            t2.rotate_refresh_token(&old, &ClientId::new("c"), &new, true, now)
                .await
        });
        let revoked = revoke.await.expect("task").expect("revoke");
        let rotated = rotate.await.expect("task").expect("rotate");
        let new_live = matches!(
            s.tokens.find_token(&new_hash, now).await,
            Ok(TokenLookup::Live(_))
        );
        match rotated {
            // Rotation first: the revocation took the new token (and counted it).
            Rotation::Issued(_) if !new_live => assert_eq!(revoked, 1),
            // Rotation first but the new token survived: only if revoke ran before it... which
            // would mean the old one was gone, so rotation could not have issued.
            Rotation::Issued(_) => panic!("a token was issued into a revoked family"),
            Rotation::NotFound => assert!(!new_live),
            other => panic!("unexpected {other:?}"),
        }
    }
}

pub async fn limiter_windows(s: Stores) {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let key = AttemptKey::Client(ClientId::new(format!("c-{}", FamilyId::generate())));
    let rule = AttemptRule {
        max_failures: 2,
        window: Duration::from_secs(60),
    };
    let l = &s.limiter;
    // Checking counts nothing.
    for _ in 0..5 {
        assert_eq!(
            l.check_attempts(&key, &rule, at(0)).await.ok(),
            Some(AttemptVerdict::Allowed)
        );
    }
    assert_eq!(
        l.reserve_attempt(&key, &rule, at(0)).await.ok(),
        Some(AttemptVerdict::Allowed)
    );
    assert_eq!(
        l.reserve_attempt(&key, &rule, at(1)).await.ok(),
        Some(AttemptVerdict::Allowed)
    );
    match l.reserve_attempt(&key, &rule, at(10)).await {
        Ok(AttemptVerdict::Refused { retry_after }) => {
            assert!(
                retry_after <= Duration::from_secs(50) && retry_after >= Duration::from_secs(49),
                "{retry_after:?}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Once full, checking refuses too, with the same time left.
    match l.check_attempts(&key, &rule, at(10)).await {
        Ok(AttemptVerdict::Refused { retry_after }) => {
            assert!(
                retry_after >= Duration::from_secs(49) && retry_after <= Duration::from_secs(50)
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A released attempt frees a place.
    l.release_attempt(&key, at(11)).await.expect("release");
    assert_eq!(
        l.reserve_attempt(&key, &rule, at(12)).await.ok(),
        Some(AttemptVerdict::Allowed)
    );
    // The window is still closed one second before its end, to reserving and to checking…
    assert!(matches!(
        l.reserve_attempt(&key, &rule, at(59)).await,
        Ok(AttemptVerdict::Refused { .. })
    ));
    assert!(matches!(
        l.check_attempts(&key, &rule, at(59)).await,
        Ok(AttemptVerdict::Refused { .. })
    ));
    // …and open again at its end, 60 s after it opened.
    assert_eq!(
        l.check_attempts(&key, &rule, at(60)).await.ok(),
        Some(AttemptVerdict::Allowed)
    );
    assert_eq!(
        l.reserve_attempt(&key, &rule, at(60)).await.ok(),
        Some(AttemptVerdict::Allowed)
    );
    // Releases never go below zero.
    for _ in 0..5 {
        l.release_attempt(&key, at(61)).await.expect("release");
    }
    assert_eq!(
        l.reserve_attempt(&key, &rule, at(62)).await.ok(),
        Some(AttemptVerdict::Allowed)
    );
    assert_eq!(
        l.reserve_attempt(&key, &rule, at(63)).await.ok(),
        Some(AttemptVerdict::Allowed)
    );
    assert!(matches!(
        l.reserve_attempt(&key, &rule, at(64)).await,
        Ok(AttemptVerdict::Refused { .. })
    ));
    // Keys are independent, and a username key is not a client key of the same name.
    let user = AttemptKey::username(&grantor::Username::new(key.storage_key()));
    assert_eq!(
        l.reserve_attempt(&user, &rule, at(64)).await.ok(),
        Some(AttemptVerdict::Allowed)
    );
}

/// 100 concurrent reservations against a limit of 5: exactly 5 are allowed.
pub async fn limiter_race_allows_exactly_the_limit(s: Stores) {
    let now = now();
    let key = AttemptKey::username(&grantor::Username::new(format!(
        "u-{}",
        FamilyId::generate()
    )));
    let rule = AttemptRule {
        max_failures: 5,
        window: Duration::from_secs(600),
    };
    let verdicts = race(100, |_| {
        let (l, key) = (s.limiter.clone(), key.clone());
        async move { l.reserve_attempt(&key, &rule, now).await.expect("reserve") }
    })
    .await;
    let allowed = verdicts
        .iter()
        .filter(|v| **v == AttemptVerdict::Allowed)
        .count();
    assert_eq!(allowed, 5);
}

pub fn pending(now: OffsetDateTime, ttl: i64) -> PendingAuthorization {
    PendingAuthorization {
        client_id: ClientId::new("spa"),
        response_type: ResponseType::Code,
        redirect_uri: RedirectUri::new("http://localhost:3000/callback?x=1"),
        redirect_uri_in_request: true,
        scope: Scope::parse("read").unwrap_or_default(),
        state: Some("st\u{e9}te &=+".to_owned()),
        code_challenge: Some(CodeChallenge {
            challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
            method: CodeChallengeMethod::S256,
        }),
        expires_at: now + time::Duration::seconds(ttl),
    }
}

pub fn code_grant(now: OffsetDateTime, ttl: i64) -> CodeGrant {
    CodeGrant {
        client_id: ClientId::new("spa"),
        user_id: UserId::new("user-1"),
        redirect_uri: RedirectUri::new("http://localhost:3000/callback"),
        redirect_uri_in_request: false,
        scope: Scope::parse("read write").unwrap_or_default(),
        code_challenge: None,
        family_id: FamilyId::generate(),
        issued_at: now,
        expires_at: now + time::Duration::seconds(ttl),
    }
}

pub async fn pending_requests_are_read_then_taken_once(s: Stores) {
    let now = now();
    let id = fresh_hash("p");
    let request = pending(now, 600);
    s.codes
        .save_pending(&id, &request, now)
        .await
        .expect("save");
    for _ in 0..2 {
        assert_eq!(
            s.codes.find_pending(&id, now).await.expect("find"),
            Some(request.clone())
        );
    }
    assert_eq!(
        s.codes.take_pending(&id, now).await.expect("take"),
        Some(request)
    );
    assert_eq!(s.codes.take_pending(&id, now).await.expect("take"), None);
    assert_eq!(s.codes.find_pending(&id, now).await.expect("find"), None);
    assert_eq!(
        s.codes
            .find_pending(&fresh_hash("u"), now)
            .await
            .expect("find"),
        None
    );
    // Expiry, judged by now.
    let short = fresh_hash("s");
    s.codes
        .save_pending(&short, &pending(now, 60), now)
        .await
        .expect("save");
    let at = |secs| now + time::Duration::seconds(secs);
    assert!(s
        .codes
        .find_pending(&short, at(59))
        .await
        .expect("find")
        .is_some());
    assert_eq!(
        s.codes.find_pending(&short, at(60)).await.expect("find"),
        None
    );
    assert_eq!(
        s.codes.take_pending(&short, at(60)).await.expect("take"),
        None
    );
}

pub async fn codes_are_spent_once_and_remember_their_family(s: Stores) {
    let now = now();
    let code = fresh_hash("c");
    let grant = code_grant(now, 60);
    s.codes.save_code(&code, &grant, now).await.expect("save");
    assert_eq!(
        s.codes.take_code(&code, now).await.expect("take"),
        CodeRedemption::Redeemed(grant.clone())
    );
    for _ in 0..2 {
        assert_eq!(
            s.codes.take_code(&code, now).await.expect("take"),
            CodeRedemption::AlreadyUsed {
                family_id: grant.family_id.clone()
            }
        );
    }
    assert_eq!(
        s.codes
            .take_code(&fresh_hash("u"), now)
            .await
            .expect("take"),
        CodeRedemption::Unknown
    );
    // An expired code, spent or not, is unknown.
    let later = now + time::Duration::seconds(60);
    assert_eq!(
        s.codes.take_code(&code, later).await.expect("take"),
        CodeRedemption::Unknown
    );
    let fresh = fresh_hash("f");
    s.codes
        .save_code(&fresh, &code_grant(now, 60), now)
        .await
        .expect("save");
    assert_eq!(
        s.codes.take_code(&fresh, later).await.expect("take"),
        CodeRedemption::Unknown
    );
}

/// 100 tasks on several threads redeem one code at once: exactly one gets it.
pub async fn code_race_has_one_winner(s: Stores) {
    let now = now();
    let code = fresh_hash("c");
    s.codes
        .save_code(&code, &code_grant(now, 60), now)
        .await
        .expect("save");
    let outcomes = race(100, |_| {
        let codes = s.codes.clone();
        async move { codes.take_code(&code, now).await.expect("take") }
    })
    .await;
    let (mut redeemed, mut used) = (0, 0);
    for outcome in outcomes {
        match outcome {
            CodeRedemption::Redeemed(_) => redeemed += 1,
            CodeRedemption::AlreadyUsed { .. } => used += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((redeemed, used), (1, 99));
}

/// 100 tasks take one pending request at once: exactly one decision.
pub async fn pending_race_has_one_winner(s: Stores) {
    let now = now();
    let id = fresh_hash("p");
    s.codes
        .save_pending(&id, &pending(now, 600), now)
        .await
        .expect("save");
    let taken = race(100, |_| {
        let codes = s.codes.clone();
        async move { codes.take_pending(&id, now).await.expect("take") }
    })
    .await;
    let won = taken.iter().filter(|t| t.is_some()).count();
    assert_eq!(won, 1);
}

pub fn device_request(now: OffsetDateTime, ttl: i64) -> DeviceAuthorization {
    DeviceAuthorization {
        client_id: ClientId::new("tv"),
        scope: Scope::parse("read write").unwrap_or_default(),
        status: DeviceStatus::Pending,
        interval: 5,
        last_poll: None,
        issued_at: now,
        expires_at: now + time::Duration::seconds(ttl),
    }
}

pub fn approve(user: &str, scope: &str) -> DeviceDecision {
    DeviceDecision::Approve {
        user_id: UserId::new(user),
        scope: Scope::parse(scope).unwrap_or_default(),
    }
}

/// Saves a fresh device request, answering its device code and user code hashes.
pub async fn saved_device(
    s: &Stores,
    request: &DeviceAuthorization,
    now: OffsetDateTime,
) -> (TokenHash, TokenHash) {
    let (device, user) = (fresh_hash("dc"), fresh_hash("uc"));
    assert!(s
        .devices
        .save_device_authorization(&device, &user, request, now)
        .await
        .expect("save"));
    (device, user)
}

pub async fn device_requests_are_found_by_their_user_code(s: Stores) {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let request = device_request(now, 600);
    let (device, user) = saved_device(&s, &request, now).await;
    for _ in 0..2 {
        assert_eq!(
            s.devices
                .find_device_authorization(&user, now)
                .await
                .expect("find"),
            Some(request.clone())
        );
    }
    // Only by its user code: not by the device code, nor any other hash.
    for other in [device, fresh_hash("u")] {
        assert_eq!(
            s.devices
                .find_device_authorization(&other, now)
                .await
                .expect("find"),
            None
        );
    }
    // Expiry, judged by now.
    assert!(s
        .devices
        .find_device_authorization(&user, at(599))
        .await
        .expect("find")
        .is_some());
    assert_eq!(
        s.devices
            .find_device_authorization(&user, at(600))
            .await
            .expect("find"),
        None
    );
}

pub async fn a_live_user_code_is_not_given_twice(s: Stores) {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let first = device_request(now, 600);
    let (device, user) = saved_device(&s, &first, now).await;
    // Another request drawing the same user code while the first is live: refused, not saved.
    let second = fresh_hash("dc2");
    let mut other = device_request(at(10), 600);
    other.client_id = ClientId::new("other-tv");
    assert!(!s
        .devices
        .save_device_authorization(&second, &user, &other, at(10))
        .await
        .expect("save"));
    assert_eq!(
        s.devices
            .poll_device_authorization(&second, &other.client_id, at(10))
            .await
            .expect("poll"),
        DevicePoll::Unknown
    );
    assert_eq!(
        s.devices
            .find_device_authorization(&user, at(10))
            .await
            .expect("find"),
        Some(first.clone())
    );
    // Still refused one second before the first expires; taken once it has.
    assert!(!s
        .devices
        .save_device_authorization(&second, &user, &device_request(at(599), 600), at(599))
        .await
        .expect("save"));
    let third = device_request(at(600), 600);
    assert!(s
        .devices
        .save_device_authorization(&second, &user, &third, at(600))
        .await
        .expect("save"));
    assert_eq!(
        s.devices
            .find_device_authorization(&user, at(600))
            .await
            .expect("find"),
        Some(third)
    );
    // The first request is still there for its device, expired.
    assert_eq!(
        s.devices
            .poll_device_authorization(&device, &first.client_id, at(600))
            .await
            .expect("poll"),
        DevicePoll::Expired
    );
}

pub async fn device_decisions_are_made_once(s: Stores) {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let request = device_request(now, 600);
    let (device, user) = saved_device(&s, &request, now).await;
    assert!(s
        .devices
        .decide_device_authorization(&user, &approve("user-1", "read"), at(1))
        .await
        .expect("decide"));
    // Decided: the user code stops working, and no second decision is taken.
    assert_eq!(
        s.devices
            .find_device_authorization(&user, at(1))
            .await
            .expect("find"),
        None
    );
    for decision in [approve("user-2", "read write"), DeviceDecision::Deny] {
        assert!(!s
            .devices
            .decide_device_authorization(&user, &decision, at(2))
            .await
            .expect("decide"));
    }
    // The first decision stands.
    match s
        .devices
        .poll_device_authorization(&device, &request.client_id, at(3))
        .await
        .expect("poll")
    {
        DevicePoll::Approved(r) => assert_eq!(
            r.status,
            DeviceStatus::Approved {
                user_id: UserId::new("user-1"),
                scope: Scope::parse("read").unwrap_or_default()
            }
        ),
        other => panic!("expected an approval, got {other:?}"),
    }
    // No request, and an expired one, take no decision.
    assert!(!s
        .devices
        .decide_device_authorization(&fresh_hash("u"), &DeviceDecision::Deny, now)
        .await
        .expect("decide"));
    let (late_device, late_user) = saved_device(&s, &device_request(now, 60), now).await;
    assert!(!s
        .devices
        .decide_device_authorization(&late_user, &approve("user-1", "read"), at(60))
        .await
        .expect("decide"));
    assert_eq!(
        s.devices
            .poll_device_authorization(&late_device, &request.client_id, at(59))
            .await
            .expect("poll"),
        DevicePoll::Pending,
        "nothing was decided"
    );
    // A decided request no longer holds its user code, even before its device hears the
    // decision: a new request may draw it.
    let (denied_device, denied_user) = saved_device(&s, &request, now).await;
    assert!(s
        .devices
        .decide_device_authorization(&denied_user, &DeviceDecision::Deny, at(4))
        .await
        .expect("decide"));
    let next = device_request(at(5), 600);
    assert!(s
        .devices
        .save_device_authorization(&fresh_hash("dc"), &denied_user, &next, at(5))
        .await
        .expect("save"));
    assert_eq!(
        s.devices
            .find_device_authorization(&denied_user, at(5))
            .await
            .expect("find"),
        Some(next)
    );
    assert_eq!(
        s.devices
            .poll_device_authorization(&denied_device, &request.client_id, at(6))
            .await
            .expect("poll"),
        DevicePoll::Denied
    );
}

pub async fn device_polls_keep_the_pace(s: Stores) {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let request = device_request(now, 600);
    let (device, user) = saved_device(&s, &request, now).await;
    let client = &request.client_id;
    let poll = |secs: i64| {
        let (devices, client) = (s.devices.clone(), client.clone());
        async move {
            devices
                .poll_device_authorization(&device, &client, at(secs))
                .await
                .expect("poll")
        }
    };
    // The first poll is never too soon.
    assert_eq!(poll(0).await, DevicePoll::Pending);
    // Too soon, and again too soon: the interval grows by 5 each time.
    assert_eq!(poll(1).await, DevicePoll::SlowDown { interval: 10 });
    assert_eq!(poll(2).await, DevicePoll::SlowDown { interval: 15 });
    // After waiting the new interval, the pace is right again.
    assert_eq!(poll(17).await, DevicePoll::Pending);
    // One second short of it is too soon (whole seconds count).
    assert_eq!(poll(31).await, DevicePoll::SlowDown { interval: 20 });
    assert_eq!(poll(51).await, DevicePoll::Pending);
    assert_eq!(poll(71).await, DevicePoll::Pending);
    // The polls are kept: the request shows its interval and last poll.
    assert_eq!(
        s.devices
            .find_device_authorization(&user, at(72))
            .await
            .expect("find"),
        Some(DeviceAuthorization {
            interval: 20,
            last_poll: Some(at(71)),
            ..request.clone()
        })
    );
    // Unknown device codes are unknown.
    assert_eq!(
        s.devices
            .poll_device_authorization(&fresh_hash("d"), client, at(72))
            .await
            .expect("poll"),
        DevicePoll::Unknown
    );
}

pub async fn another_clients_poll_changes_nothing(s: Stores) {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let request = device_request(now, 600);
    let (device, user) = saved_device(&s, &request, now).await;
    let (client, other) = (&request.client_id, ClientId::new("other-tv"));
    assert_eq!(
        s.devices
            .poll_device_authorization(&device, client, at(0))
            .await
            .expect("poll"),
        DevicePoll::Pending
    );
    for secs in [1, 3] {
        assert_eq!(
            s.devices
                .poll_device_authorization(&device, &other, at(secs))
                .await
                .expect("poll"),
            DevicePoll::OtherClient
        );
    }
    // Had the other client's polls counted, this one would be too soon.
    assert_eq!(
        s.devices
            .poll_device_authorization(&device, client, at(5))
            .await
            .expect("poll"),
        DevicePoll::Pending
    );
    // An approval is not handed to another client, and stays for the right one.
    assert!(s
        .devices
        .decide_device_authorization(&user, &approve("user-1", "read"), at(6))
        .await
        .expect("decide"));
    assert_eq!(
        s.devices
            .poll_device_authorization(&device, &other, at(7))
            .await
            .expect("poll"),
        DevicePoll::OtherClient
    );
    assert!(matches!(
        s.devices
            .poll_device_authorization(&device, client, at(7))
            .await,
        Ok(DevicePoll::Approved(_))
    ));
}

pub async fn a_denied_device_hears_so_until_expiry(s: Stores) {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let request = device_request(now, 600);
    let (device, user) = saved_device(&s, &request, now).await;
    assert!(s
        .devices
        .decide_device_authorization(&user, &DeviceDecision::Deny, at(1))
        .await
        .expect("decide"));
    // Denied, as often as it polls, however fast.
    for secs in [1, 1, 2] {
        assert_eq!(
            s.devices
                .poll_device_authorization(&device, &request.client_id, at(secs))
                .await
                .expect("poll"),
            DevicePoll::Denied
        );
    }
    assert_eq!(
        s.devices
            .poll_device_authorization(&device, &request.client_id, at(600))
            .await
            .expect("poll"),
        DevicePoll::Expired
    );
}

pub async fn an_approval_is_collected_once(s: Stores) {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let request = device_request(now, 600);
    let (device, user) = saved_device(&s, &request, now).await;
    let client = &request.client_id;
    assert_eq!(
        s.devices
            .poll_device_authorization(&device, client, at(0))
            .await
            .expect("poll"),
        DevicePoll::Pending
    );
    assert!(s
        .devices
        .decide_device_authorization(&user, &approve("user-1", "read"), at(2))
        .await
        .expect("decide"));
    // Collected even by a poll that comes too soon; what it was, with its approval.
    assert_eq!(
        s.devices
            .poll_device_authorization(&device, client, at(3))
            .await
            .expect("poll"),
        DevicePoll::Approved(DeviceAuthorization {
            status: DeviceStatus::Approved {
                user_id: UserId::new("user-1"),
                scope: Scope::parse("read").unwrap_or_default(),
            },
            last_poll: Some(at(0)),
            ..request.clone()
        })
    );
    // Spent: the device code is gone, even before it would have expired.
    for secs in [3, 10, 600] {
        assert_eq!(
            s.devices
                .poll_device_authorization(&device, client, at(secs))
                .await
                .expect("poll"),
            DevicePoll::Unknown
        );
    }
    assert_eq!(
        s.devices
            .find_device_authorization(&user, at(3))
            .await
            .expect("find"),
        None
    );
}

pub async fn expired_device_codes_are_remembered_for_a_while(s: Stores) {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let request = device_request(now, 600);
    let (device, _) = saved_device(&s, &request, now).await;
    let client = &request.client_id;
    let poll = |secs: i64, client: ClientId| {
        let devices = s.devices.clone();
        async move {
            devices
                .poll_device_authorization(&device, &client, at(secs))
                .await
                .expect("poll")
        }
    };
    assert_eq!(poll(599, client.clone()).await, DevicePoll::Pending);
    assert_eq!(poll(600, client.clone()).await, DevicePoll::Expired);
    assert_eq!(
        poll(600, ClientId::new("other-tv")).await,
        DevicePoll::OtherClient
    );
    let memory = EXPIRED_DEVICE_CODE_MEMORY;
    assert_eq!(
        poll(600 + memory - 1, client.clone()).await,
        DevicePoll::Expired
    );
    assert_eq!(
        poll(600 + memory, client.clone()).await,
        DevicePoll::Unknown
    );
    // An approved request that expired before its device collected it is expired too.
    let (device, user) = saved_device(&s, &request, now).await;
    assert!(s
        .devices
        .decide_device_authorization(&user, &approve("user-1", "read"), at(10))
        .await
        .expect("decide"));
    assert_eq!(
        s.devices
            .poll_device_authorization(&device, client, at(600))
            .await
            .expect("poll"),
        DevicePoll::Expired
    );
}

/// 100 polls race for one approval: exactly one collects it.
pub async fn device_poll_race_collects_one_approval(s: Stores) {
    let now = now();
    let request = device_request(now, 600);
    let (device, user) = saved_device(&s, &request, now).await;
    assert!(s
        .devices
        .decide_device_authorization(&user, &approve("user-1", "read"), now)
        .await
        .expect("decide"));
    let polls = race(100, |_| {
        let (devices, client) = (s.devices.clone(), request.client_id.clone());
        async move {
            devices
                .poll_device_authorization(&device, &client, now)
                .await
                .expect("poll")
        }
    })
    .await;
    let (mut approved, mut unknown) = (0, 0);
    for poll in polls {
        match poll {
            DevicePoll::Approved(_) => approved += 1,
            DevicePoll::Unknown => unknown += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((approved, unknown), (1, 99));
}

/// 100 decisions, half approvals and half denials, race on one request: exactly one is taken,
/// and it is the one the device hears.
pub async fn device_decision_race_has_one_winner(s: Stores) {
    let now = now();
    let request = device_request(now, 600);
    let (device, user) = saved_device(&s, &request, now).await;
    let decisions = race(100, |i| {
        let devices = s.devices.clone();
        let decision = if i.is_multiple_of(2) {
            approve(&format!("user-{i}"), "read")
        } else {
            DeviceDecision::Deny
        };
        async move {
            let taken = devices
                .decide_device_authorization(&user, &decision, now)
                .await
                .expect("decide");
            (i, taken)
        }
    })
    .await;
    let winners: Vec<usize> = decisions
        .into_iter()
        .filter_map(|(i, taken)| taken.then_some(i))
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let winner = winners[0];
    let poll = s
        .devices
        .poll_device_authorization(&device, &request.client_id, now)
        .await
        .expect("poll");
    if winner.is_multiple_of(2) {
        assert!(
            matches!(&poll, DevicePoll::Approved(r) if r.status == DeviceStatus::Approved {
                user_id: UserId::new(format!("user-{winner}")),
                scope: Scope::parse("read").unwrap_or_default(),
            }),
            "{poll:?}"
        );
    } else {
        assert_eq!(poll, DevicePoll::Denied);
    }
}

pub fn mfa_challenge(now: OffsetDateTime, ttl: i64) -> MfaChallenge {
    MfaChallenge {
        client_id: ClientId::new("clientapp"),
        user_id: UserId::new("user-1"),
        scope: Scope::parse("read write").unwrap_or_default(),
        show_scope: true,
        expires_at: now + time::Duration::seconds(ttl),
    }
}

pub async fn mfa_tokens_are_read_then_taken_once(s: Stores) {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let token = fresh_hash("m");
    let challenge = mfa_challenge(now, 300);
    s.mfa
        .save_mfa_token(&token, &challenge, now)
        .await
        .expect("save");
    // Reading leaves it in place (a wrong one-time code does not spend it).
    for _ in 0..2 {
        assert_eq!(
            s.mfa.find_mfa_token(&token, now).await.expect("find"),
            Some(challenge.clone())
        );
    }
    assert_eq!(
        s.mfa.take_mfa_token(&token, at(1)).await.expect("take"),
        Some(challenge)
    );
    assert_eq!(
        s.mfa.take_mfa_token(&token, at(1)).await.expect("take"),
        None
    );
    assert_eq!(
        s.mfa.find_mfa_token(&token, at(1)).await.expect("find"),
        None
    );
    assert_eq!(
        s.mfa
            .find_mfa_token(&fresh_hash("u"), now)
            .await
            .expect("find"),
        None
    );
    // Expiry, judged by now.
    let short = fresh_hash("s");
    let mut other = mfa_challenge(now, 60);
    other.show_scope = false;
    other.user_id = UserId::new("user-2");
    s.mfa
        .save_mfa_token(&short, &other, now)
        .await
        .expect("save");
    assert_eq!(
        s.mfa.find_mfa_token(&short, at(59)).await.expect("find"),
        Some(other)
    );
    assert_eq!(
        s.mfa.find_mfa_token(&short, at(60)).await.expect("find"),
        None
    );
    assert_eq!(
        s.mfa.take_mfa_token(&short, at(60)).await.expect("take"),
        None
    );
}

/// 100 tasks take one `mfa_token` at once: exactly one gets it.
pub async fn mfa_token_race_has_one_winner(s: Stores) {
    let now = now();
    let token = fresh_hash("m");
    s.mfa
        .save_mfa_token(&token, &mfa_challenge(now, 300), now)
        .await
        .expect("save");
    let taken = race(100, |_| {
        let mfa = s.mfa.clone();
        async move { mfa.take_mfa_token(&token, now).await.expect("take") }
    })
    .await;
    assert_eq!(taken.iter().filter(|t| t.is_some()).count(), 1);
}

pub async fn one_time_codes_are_used_once(s: Stores) {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let user = UserId::new(format!("user-{}", FamilyId::generate()));
    let mark = |user: &UserId, counter: u64, until: OffsetDateTime, now: OffsetDateTime| {
        let (mfa, user) = (s.mfa.clone(), user.clone());
        async move {
            mfa.mark_otp_used(&user, counter, until, now)
                .await
                .expect("mark")
        }
    };
    assert!(mark(&user, 7, at(30), now).await);
    // Refused until `until`, whatever until is asked the second time.
    assert!(!mark(&user, 7, at(30), now).await);
    assert!(!mark(&user, 7, at(90), at(29)).await);
    // At `until` the mark has lapsed: the code may be marked again.
    assert!(mark(&user, 7, at(90), at(30)).await);
    assert!(!mark(&user, 7, at(90), at(89)).await);
    // Another counter, or another user, is independent.
    assert!(mark(&user, 8, at(30), now).await);
    let other = UserId::new(format!("{}-other", user.as_str()));
    assert!(mark(&other, 7, at(30), now).await);
    assert!(!mark(&other, 7, at(30), now).await);
    assert!(!mark(&user, 8, at(30), now).await);
    // An `until` between two seconds is kept at least that long.
    let half = at(10) + time::Duration::milliseconds(500);
    assert!(mark(&user, 9, half, now).await);
    assert!(!mark(&user, 9, half, at(10)).await);
    assert!(mark(&user, 9, at(20), at(11)).await);
}

/// 100 tasks mark one code used at once: exactly one is told it was the first.
pub async fn one_time_code_race_has_one_winner(s: Stores) {
    let now = now();
    let user = UserId::new(format!("user-{}", FamilyId::generate()));
    let until = now + time::Duration::seconds(30);
    let marks = race(100, |_| {
        let (mfa, user) = (s.mfa.clone(), user.clone());
        async move {
            mfa.mark_otp_used(&user, 42, until, now)
                .await
                .expect("mark")
        }
    })
    .await;
    assert_eq!(marks.iter().filter(|m| **m).count(), 1);
}

/// Checks that hashes, not tokens, are what a store is handed: the suite's own sanity check.
pub fn hashes_are_distinct() {
    let set: HashSet<_> = (0..100)
        .map(|i| fresh_hash(&i.to_string()).to_hex())
        .collect();
    assert_eq!(set.len(), 100);
}

/// Expands to one `#[tokio::test]` per check, each with stores from `$factory` (an async
/// expression answering `Stores`).
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@tests $factory;
            save_and_find, expiry_is_judged_by_now, rotation_spends_the_old_token_once,
            rotation_checks_client_and_kind, rotation_can_keep_the_old_token, revoke_one,
            revoke_a_family, revoke_a_family_counts_only_unexpired_tokens,
            a_revoked_family_takes_no_new_tokens_for_a_while,
            rotation_race_has_one_winner, revoke_family_races_rotation,
            limiter_windows, limiter_race_allows_exactly_the_limit,
            pending_requests_are_read_then_taken_once,
            codes_are_spent_once_and_remember_their_family, code_race_has_one_winner,
            pending_race_has_one_winner,
            device_requests_are_found_by_their_user_code,
            a_live_user_code_is_not_given_twice, device_decisions_are_made_once,
            device_polls_keep_the_pace, another_clients_poll_changes_nothing,
            a_denied_device_hears_so_until_expiry, an_approval_is_collected_once,
            expired_device_codes_are_remembered_for_a_while,
            device_poll_race_collects_one_approval, device_decision_race_has_one_winner,
            mfa_tokens_are_read_then_taken_once, mfa_token_race_has_one_winner,
            one_time_codes_are_used_once, one_time_code_race_has_one_winner);
    };
    (@tests $factory:expr; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let stores = $factory.await;
                conformance::$check(stores).await;
            }
        )*
    };
}
