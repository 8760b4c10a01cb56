//! The store conformance kit: the checks every store must pass, for a store of your own.
//!
//! The server relies on more than the store traits' signatures: each method is one atomic step
//! (a token is spent once however many updates race for it, a code is spent once, a
//! revoked family takes no new tokens), expiry is judged by the `now` it is given, and bounds
//! are kept. Each check here drives one store through one of those promises: a broken promise
//! fails an assertion, like any test, and a store call that answers an error ends the check
//! with a [`Failure`] naming the step. [`MemoryTokenStore`](crate::MemoryTokenStore) and friends and
//! `RedisStore` and `SqlStore` (on PostgreSQL and on SQLite) pass all of them.
//!
//! Enable the `conformance` feature in your dev-dependencies, and call one macro per trait your
//! store implements, in an integration test (`tests/conformance.rs`):
//!
//! ```toml
//! [dev-dependencies]
//! grantor = { version = "0.1", features = ["conformance"] }
//! ```
//!
//! ```
//! # mod my_app { pub use grantor::MemoryTokenStore as MyTokenStore; }
//! use std::sync::Arc;
//!
//! use my_app::MyTokenStore;
//!
//! /// The store under test (connect to your test database here: this may `.await`).
//! async fn store() -> Arc<MyTokenStore> {
//!     Arc::new(MyTokenStore::new())
//! }
//!
//! grantor::token_store_conformance!(store().await);
//! // And one line per other store trait it implements:
//! // grantor::code_store_conformance!(store().await);
//! # fn main() {}
//! ```
//!
//! `cargo test` then runs `token_store::save_and_find`, `token_store::revoke_a_family` and the
//! rest, each in a `#[test]` of its own on a multi-threaded Tokio runtime that the kit builds:
//! you need no `tokio` dependency of your own for it.
//!
//! # The macros
//!
//! Each macro takes a factory expression, evaluated afresh inside every test it generates
//! (inside an `async` block, so it may `.await`), and expands to a module of `#[test]`s named
//! after the trait. The expression answers an `Arc` of your store, or a tuple of one and a
//! guard kept alive until the check ends (a server process, a temporary directory): see
//! [`UnderTest`].
//!
//! - [`token_store_conformance!`](crate::token_store_conformance), in `token_store`:
//!   [`TokenStore`]: saving and finding, expiry, updates (a token spent once, every expectation
//!   checked before anything is written, spent marks), revoking tokens and families, tokens
//!   that stand alone, and races between them.
//! - [`attempt_limiter_conformance!`](crate::attempt_limiter_conformance), in
//!   `attempt_limiter`: [`AttemptLimiter`]: leases, failure windows, and a race against the
//!   limit.
//! - [`code_store_conformance!`](crate::code_store_conformance), in `code_store`: [`CodeStore`]:
//!   pending requests taken once, codes spent once into the used mark asked for, a spent code
//!   given back, bounds, and races.
//! - [`device_code_store_conformance!`](crate::device_code_store_conformance), in
//!   `device_code_store`: [`DeviceCodeStore`]: user codes, decisions, polls recorded by
//!   compare-and-set, taking approvals, keeping requests past expiry, bounds, and races.
//! - [`mfa_store_conformance!`](crate::mfa_store_conformance), in `mfa_store`: [`MfaStore`]:
//!   `mfa_token`s taken once, one-time codes only moving forward, and races.
//!
//! Every check is also a public `async fn` taking the one store it needs (such as
//! [`save_and_find`]) and answering `Result<(), Failure>`, for a host with a test harness of
//! its own.
//!
//! # One backend for all
//!
//! Every check draws fresh keys ([`fresh_hash`], [`FamilyId::generate`]), so the checks never
//! see each other's entries: they may run in parallel on one database, and the factory may hand
//! every check a handle to the same one. Clean it between runs as you like; the checks do not.
//!
//! Two checks are the exception: `code_store::pending_requests_are_bounded` and
//! `device_code_store::device_requests_are_bounded` count every request in the store against a
//! total bound, so other checks' requests, saved meanwhile in the same database, would make them
//! fail. Hand every check a store of its own (a fresh database or schema, as grantor's own
//! PostgreSQL tests do), or run those two alone.
//!
//! # Time
//!
//! Time is an argument of every store method, so the checks move `now` forward instead of
//! sleeping: a check passes `now + 60 s` to see an entry expire, and takes no longer for it. A
//! store with real TTLs (Redis) still sees consistent answers, because it judges expiry by the
//! `now` it is given; [`now`] starts each check from the real time, so such a store keeps the
//! entries meanwhile.

// This is test code shipped for hosts: a failed assertion is how a check reports a store that
// breaks its contract, and the checks index the outcomes they collected.
#![allow(clippy::indexing_slicing)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::{
    AccessToken, Admission, AttemptKey, AttemptLease, AttemptLimiter, AttemptRule, AttemptVerdict,
    AuthorizationCode, AuthorizationCodeHash, AuthorizationRequestId, ClientId, CodeChallenge,
    CodeChallengeMethod, CodeGrant, CodeLookup, CodeRestore, CodeSpend, CodeStore,
    DeviceAuthorization, DeviceCode, DeviceCodeHash, DeviceCodeStore, DeviceDecided,
    DeviceDecision, DevicePace, DeviceRestore, DeviceSave, DeviceStatus, DeviceUpdate, FamilyId,
    MfaChallenge, MfaStore, MfaToken, MfaTokenHash, OtpAdvance, PendingAuthorization,
    PendingLimits, RedirectUri, RequestIdHash, ResponseType, Scope, SpentCode, SpentMark,
    TokenChange, TokenExpectation, TokenHash, TokenKind, TokenLookup, TokenRecord, TokenSave,
    TokenStore, TokenUpdate, UserCode, UserCodeHash, UserId, Username,
};
use time::OffsetDateTime;
use tokio::sync::Barrier;

/// Why a check failed before it could judge the store: a store call answered an error (a
/// [`StoreError`](crate::StoreError)), or answered something the check did not expect. A
/// broken promise fails an assertion instead, as in any test.
pub struct Failure(String);

impl Failure {
    /// A failure saying `what` went wrong.
    pub fn new(what: impl Into<String>) -> Self {
        Self(what.into())
    }
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// Turns a store call's error, or a missing value, into a [`Failure`] naming the step.
pub trait Must<T> {
    /// The value, or a [`Failure`] saying which step (`doing`) failed and why.
    fn must(self, doing: &str) -> Result<T, Failure>;
}

impl<T, E: std::fmt::Debug> Must<T> for Result<T, E> {
    fn must(self, doing: &str) -> Result<T, Failure> {
        self.map_err(|e| Failure(format!("{doing}: {e:?}")))
    }
}

impl<T> Must<T> for Option<T> {
    fn must(self, doing: &str) -> Result<T, Failure> {
        self.ok_or_else(|| Failure(format!("{doing}: nothing was answered")))
    }
}

/// What a conformance macro's factory expression answers: the store under test, as the
/// `Arc<dyn Trait>` (`T`) its checks take.
///
/// Implemented for `Arc<S>` of every store `S`, for each store trait `S` implements, and for a
/// tuple `(store, guard)`: the guard (anything, say the server process the store talks to) lives
/// until the check ends, and is dropped after the store.
pub trait UnderTest<T: ?Sized> {
    /// The store, as the checks take it.
    fn store(&self) -> Arc<T>;
}

macro_rules! under_test {
    ($($store:ident),*) => {
        $(
            impl<S: $store + 'static> UnderTest<dyn $store> for Arc<S> {
                fn store(&self) -> Arc<dyn $store> {
                    self.clone()
                }
            }
        )*
    };
}

under_test!(
    TokenStore,
    AttemptLimiter,
    CodeStore,
    DeviceCodeStore,
    MfaStore
);

impl<T: ?Sized, S: UnderTest<T>, G> UnderTest<T> for (S, G) {
    fn store(&self) -> Arc<T> {
        self.0.store()
    }
}

/// What the macros expand to, not for direct use.
#[doc(hidden)]
pub mod __private {
    use std::future::Future;

    /// Runs one check to completion on a multi-threaded runtime of its own, as
    /// `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]` would: the racing checks
    /// need tasks on several threads.
    pub fn run(
        check: impl Future<Output = Result<(), super::Failure>>,
    ) -> Result<(), super::Failure> {
        use super::Must as _;
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .must("a Tokio runtime for the check")?
            .block_on(check)
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A hash of the kind a call site needs, made from a value of its secret's type.
pub trait FreshHash {
    /// The hash of a secret whose value is `value`.
    fn from_value(value: String) -> Self;
}

impl FreshHash for TokenHash {
    fn from_value(value: String) -> Self {
        TokenHash::of_access_token(&AccessToken::new(value))
    }
}

impl FreshHash for AuthorizationCodeHash {
    fn from_value(value: String) -> Self {
        AuthorizationCodeHash::of(&AuthorizationCode::new(value))
    }
}

impl FreshHash for RequestIdHash {
    fn from_value(value: String) -> Self {
        RequestIdHash::of(&AuthorizationRequestId::new(value))
    }
}

impl FreshHash for DeviceCodeHash {
    fn from_value(value: String) -> Self {
        DeviceCodeHash::of(&DeviceCode::new(value))
    }
}

impl FreshHash for UserCodeHash {
    fn from_value(value: String) -> Self {
        UserCodeHash::of(&UserCode::new(value))
    }
}

impl FreshHash for MfaTokenHash {
    fn from_value(value: String) -> Self {
        MfaTokenHash::of(&MfaToken::new(value))
    }
}

/// A hash no other check uses, so checks can share one backend.
pub fn fresh_hash<H: FreshHash>(label: &str) -> H {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    H::from_value(format!("{label}-{n}-{}", FamilyId::generate()))
}

/// "Now" for the checks: the real time, so that a store with real TTLs keeps the entries.
// The server reads time from its injected `Clock`; the checks are not the server, and a store
// with real TTLs must see the real time.
#[allow(clippy::disallowed_methods)]
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Runs `n` futures on the runtime's threads, released together by a barrier, and answers
/// their outputs (a [`Failure`] if a task panicked).
pub async fn race<T, F, Fut>(n: usize, make: F) -> Result<Vec<T>, Failure>
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
        out.push(t.await.must("task")?);
    }
    Ok(out)
}

/// [`race`] for futures that may fail: their outputs, or the first [`Failure`].
pub async fn race_ok<T, F, Fut>(n: usize, make: F) -> Result<Vec<T>, Failure>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>> + Send + 'static,
    T: Send + 'static,
{
    race(n, make).await?.into_iter().collect()
}

/// A token record of `kind` for `client` in `family`, issued at `now` and living `ttl` seconds.
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
        username: Some(Username::new("tom")),
        scope: Scope::parse("read write").unwrap_or_default(),
        issued_at: now,
        expires_at: now + time::Duration::seconds(ttl),
        family_id: Some(family.clone()),
        // Two resources (RFC 8707): every check that reads a record back sees them kept.
        audience: vec![
            "https://api.example.com".to_owned(),
            "https://billing.example.com/v1".to_owned(),
        ],
    }
}

/// An access token record for `client` in no family (one that stands alone, as the client
/// credentials grant issues), with no user, issued at `now` and living `ttl` seconds.
pub fn standalone_record(client: &str, now: OffsetDateTime, ttl: i64) -> TokenRecord {
    TokenRecord {
        kind: TokenKind::Access,
        client_id: ClientId::new(client),
        user_id: None,
        username: None,
        scope: Scope::parse("read").unwrap_or_default(),
        issued_at: now,
        expires_at: now + time::Duration::seconds(ttl),
        family_id: None,
        audience: vec!["https://api.example.com".to_owned()],
    }
}

const HOUR: i64 = 3600;

/// Saved tokens are found by their hash with the very record saved; an unknown hash is unknown.
pub async fn save_and_find(tokens: Arc<dyn TokenStore>) -> Result<(), Failure> {
    let now = now();
    let fam = FamilyId::generate();
    let (a, r) = (fresh_hash("a"), fresh_hash("r"));
    let ra = record(TokenKind::Access, "c", &fam, now, HOUR);
    let rr = record(TokenKind::Refresh, "c", &fam, now, 24 * HOUR);
    tokens
        .save_tokens(&[(a, ra.clone()), (r, rr.clone())], now)
        .await
        .must("save")?;
    assert_eq!(
        tokens.find_token(&a, now).await.must("find")?,
        TokenLookup::Live(ra)
    );
    assert_eq!(
        tokens.find_token(&r, now).await.must("find")?,
        TokenLookup::Live(rr)
    );
    assert_eq!(
        tokens
            .find_token(&fresh_hash("x"), now)
            .await
            .must("find")?,
        TokenLookup::Unknown
    );
    // A record without a user round-trips too.
    let mut no_user = record(TokenKind::Access, "c", &fam, now, HOUR);
    no_user.user_id = None;
    let h = fresh_hash("nu");
    tokens
        .save_tokens(&[(h, no_user.clone())], now)
        .await
        .must("save")?;
    assert_eq!(
        tokens.find_token(&h, now).await.must("find")?,
        TokenLookup::Live(no_user)
    );
    Ok(())
}

/// A token spent at `now` in favour of `successor`, by `client` in `fam`, kept `keep` seconds.
pub fn spent_mark(
    client: &str,
    fam: &FamilyId,
    now: OffsetDateTime,
    successor: Option<TokenHash>,
    keep: i64,
) -> SpentMark {
    SpentMark {
        client_id: ClientId::new(client),
        family_id: fam.clone(),
        spent_at: now,
        successor,
        keep_until: now + time::Duration::seconds(keep),
    }
}

/// What [`TokenStore::find_token`] answers for a token marked with `mark`.
pub fn lookup_of(mark: &SpentMark) -> TokenLookup {
    TokenLookup::Rotated {
        client_id: mark.client_id.clone(),
        family_id: mark.family_id.clone(),
        rotated_at: mark.spent_at,
        successor: mark.successor,
        keep_until: mark.keep_until,
    }
}

/// The change that spends `old` (expected live) in favour of the refresh token among `new`, and
/// saves `new`.
pub fn spend(old: TokenHash, mark: SpentMark, new: &[(TokenHash, TokenRecord)]) -> TokenChange {
    TokenChange {
        expect: vec![(old, TokenExpectation::Live)],
        mark: vec![(old, mark)],
        insert: new.to_vec(),
    }
}

/// A token expires at its `expires_at` by the `now` passed in: then it is unknown, not revocable
/// and not expected live.
pub async fn expiry_is_judged_by_now(tokens: Arc<dyn TokenStore>) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let fam = FamilyId::generate();
    let (a, r) = (fresh_hash("a"), fresh_hash("r"));
    tokens
        .save_tokens(
            &[
                (a, record(TokenKind::Access, "c", &fam, now, 60)),
                (r, record(TokenKind::Refresh, "c", &fam, now, 120)),
            ],
            now,
        )
        .await
        .must("save")?;
    assert!(matches!(
        tokens.find_token(&a, at(59)).await,
        Ok(TokenLookup::Live(_))
    ));
    assert_eq!(
        tokens.find_token(&a, at(60)).await.ok(),
        Some(TokenLookup::Unknown)
    );
    assert_eq!(tokens.revoke_token(&a, at(60)).await.ok(), Some(None));
    let new = [(
        fresh_hash("n"),
        record(TokenKind::Refresh, "c", &fam, at(120), 120),
    )];
    assert_eq!(
        tokens
            .update_tokens(
                &spend(r, spent_mark("c", &fam, at(120), Some(new[0].0), 1), &new),
                at(120)
            )
            .await
            .ok(),
        Some(TokenUpdate::Conflict)
    );
    assert_eq!(
        tokens.find_token(&new[0].0, at(120)).await.ok(),
        Some(TokenLookup::Unknown)
    );
    Ok(())
}

/// An update that expects a token live, marks it spent and saves new tokens applies once: the
/// mark is found in the token's place until its `keep_until`, and a second update expecting the
/// token live is a conflict that changes nothing.
pub async fn an_update_spends_a_token_once(tokens: Arc<dyn TokenStore>) -> Result<(), Failure> {
    let now = now();
    let fam = FamilyId::generate();
    let old = fresh_hash("old");
    let rec = record(TokenKind::Refresh, "c", &fam, now, 24 * HOUR);
    tokens
        .save_tokens(&[(old, rec.clone())], now)
        .await
        .must("save")?;
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
    let mark = spent_mark("c", &fam, now, Some(new[1].0), 24 * HOUR);
    assert_eq!(
        tokens
            .update_tokens(&spend(old, mark.clone(), &new), now)
            .await
            .must("update")?,
        TokenUpdate::Applied
    );
    for (h, r) in &new {
        assert_eq!(
            tokens.find_token(h, now).await.must("find")?,
            TokenLookup::Live(r.clone())
        );
    }
    assert_eq!(
        tokens.find_token(&old, now).await.must("find")?,
        lookup_of(&mark)
    );
    let again = [(
        fresh_hash("x"),
        record(TokenKind::Refresh, "c", &fam, now, HOUR),
    )];
    assert_eq!(
        tokens
            .update_tokens(
                &spend(
                    old,
                    spent_mark("c", &fam, now, Some(again[0].0), HOUR),
                    &again
                ),
                now
            )
            .await
            .must("update")?,
        TokenUpdate::Conflict
    );
    assert_eq!(
        tokens.find_token(&again[0].0, now).await.must("find")?,
        TokenLookup::Unknown
    );
    assert_eq!(
        tokens.find_token(&old, now).await.must("find")?,
        lookup_of(&mark),
        "the mark is unchanged"
    );
    // A spent token cannot be revoked, and its mark lasts until its `keep_until`.
    assert_eq!(tokens.revoke_token(&old, now).await.must("revoke")?, None);
    let later = now + time::Duration::seconds(24 * HOUR - 1);
    assert_eq!(
        tokens.find_token(&old, later).await.must("find")?,
        lookup_of(&mark)
    );
    // At its `keep_until` the mark is gone: the token is unknown, and no longer spent.
    let expired = now + time::Duration::seconds(24 * HOUR);
    assert_eq!(
        tokens.find_token(&old, expired).await.ok(),
        Some(TokenLookup::Unknown)
    );
    let spent_expected = TokenChange {
        expect: vec![(
            old,
            TokenExpectation::Spent {
                successor: Some(new[1].0),
            },
        )],
        ..TokenChange::default()
    };
    assert_eq!(
        tokens.update_tokens(&spent_expected, expired).await.ok(),
        Some(TokenUpdate::Conflict)
    );
    // A mark kept for less time than the token would have lived lapses at its own `keep_until`.
    let short = fresh_hash("short");
    tokens
        .save_tokens(
            &[(short, record(TokenKind::Refresh, "c", &fam, now, HOUR))],
            now,
        )
        .await
        .must("save")?;
    let short_mark = spent_mark("c", &fam, now, None, 60);
    assert_eq!(
        tokens
            .update_tokens(&spend(short, short_mark.clone(), &[]), now)
            .await
            .must("update")?,
        TokenUpdate::Applied
    );
    let at = |secs: i64| now + time::Duration::seconds(secs);
    assert_eq!(
        tokens.find_token(&short, at(59)).await.must("find")?,
        lookup_of(&short_mark)
    );
    assert_eq!(
        tokens.find_token(&short, at(60)).await.must("find")?,
        TokenLookup::Unknown
    );
    Ok(())
}

/// Every expectation is checked before anything is written: one that fails (a token unknown, of
/// the other state, or naming another successor) leaves every token, mark and insert as it was.
pub async fn an_update_checks_every_expectation_first(
    tokens: Arc<dyn TokenStore>,
) -> Result<(), Failure> {
    let now = now();
    let fam = FamilyId::generate();
    let (live, spent, other) = (fresh_hash("live"), fresh_hash("spent"), fresh_hash("o"));
    let live_record = record(TokenKind::Refresh, "c", &fam, now, HOUR);
    tokens
        .save_tokens(
            &[
                (live, live_record.clone()),
                (spent, record(TokenKind::Refresh, "c", &fam, now, HOUR)),
            ],
            now,
        )
        .await
        .must("save")?;
    let mark = spent_mark("c", &fam, now, Some(other), HOUR);
    assert_eq!(
        tokens
            .update_tokens(&spend(spent, mark.clone(), &[]), now)
            .await
            .must("update")?,
        TokenUpdate::Applied
    );
    let spent_as = |successor| TokenExpectation::Spent { successor };
    let failing = [
        (fresh_hash("unknown"), TokenExpectation::Live),
        (fresh_hash("unknown"), spent_as(None)),
        (spent, TokenExpectation::Live),
        (spent, spent_as(None)),
        (spent, spent_as(Some(fresh_hash("x")))),
        (live, spent_as(None)),
        (live, spent_as(Some(other))),
    ];
    for failing in failing {
        let inserted = fresh_hash("n");
        let change = TokenChange {
            // One expectation that holds, and the failing one.
            expect: vec![(live, TokenExpectation::Live), failing],
            mark: vec![(live, spent_mark("c", &fam, now, Some(inserted), HOUR))],
            insert: vec![(inserted, record(TokenKind::Refresh, "c", &fam, now, HOUR))],
        };
        assert_eq!(
            tokens.update_tokens(&change, now).await.must("update")?,
            TokenUpdate::Conflict,
            "{failing:?}"
        );
        assert_eq!(
            tokens.find_token(&inserted, now).await.must("find")?,
            TokenLookup::Unknown
        );
        assert_eq!(
            tokens.find_token(&live, now).await.must("find")?,
            TokenLookup::Live(live_record.clone())
        );
        assert_eq!(
            tokens.find_token(&spent, now).await.must("find")?,
            lookup_of(&mark)
        );
    }
    // Expectations that hold, with nothing to write, change nothing either.
    let holding = TokenChange {
        expect: vec![
            (live, TokenExpectation::Live),
            (spent, spent_as(Some(other))),
        ],
        ..TokenChange::default()
    };
    assert_eq!(
        tokens.update_tokens(&holding, now).await.must("update")?,
        TokenUpdate::Applied
    );
    assert_eq!(
        tokens.find_token(&live, now).await.must("find")?,
        TokenLookup::Live(live_record)
    );
    Ok(())
}

/// An update with no marks leaves the expected token live, however often it is applied.
pub async fn an_update_without_marks_spends_nothing(
    tokens: Arc<dyn TokenStore>,
) -> Result<(), Failure> {
    let now = now();
    let fam = FamilyId::generate();
    let old = fresh_hash("old");
    let rr = record(TokenKind::Refresh, "c", &fam, now, HOUR);
    tokens
        .save_tokens(&[(old, rr.clone())], now)
        .await
        .must("save")?;
    for _ in 0..3 {
        let new = (
            fresh_hash("n"),
            record(TokenKind::Access, "c", &fam, now, HOUR),
        );
        let change = TokenChange {
            expect: vec![(old, TokenExpectation::Live)],
            mark: Vec::new(),
            insert: vec![new.clone()],
        };
        assert_eq!(
            tokens.update_tokens(&change, now).await.ok(),
            Some(TokenUpdate::Applied)
        );
        assert_eq!(
            tokens.find_token(&new.0, now).await.ok(),
            Some(TokenLookup::Live(new.1))
        );
    }
    assert_eq!(
        tokens.find_token(&old, now).await.ok(),
        Some(TokenLookup::Live(rr))
    );
    Ok(())
}

/// Revoking a token answers its record once; afterwards it is unknown.
pub async fn revoke_one(tokens: Arc<dyn TokenStore>) -> Result<(), Failure> {
    let now = now();
    let fam = FamilyId::generate();
    let a = fresh_hash("a");
    let ra = record(TokenKind::Access, "c", &fam, now, HOUR);
    tokens
        .save_tokens(&[(a, ra.clone())], now)
        .await
        .must("save")?;
    assert_eq!(tokens.revoke_token(&a, now).await.must("revoke")?, Some(ra));
    assert_eq!(tokens.revoke_token(&a, now).await.must("revoke")?, None);
    assert_eq!(
        tokens.find_token(&a, now).await.must("find")?,
        TokenLookup::Unknown
    );
    assert_eq!(
        tokens
            .revoke_token(&fresh_hash("u"), now)
            .await
            .must("revoke")?,
        None
    );
    Ok(())
}

/// A token that stands alone (no family) is saved, found with its very record, and revoked by
/// [`TokenStore::revoke_token`]; no family's revocation touches it, and a revoked family in the
/// same save refuses it with the rest.
pub async fn a_standalone_token_stands_alone(tokens: Arc<dyn TokenStore>) -> Result<(), Failure> {
    let now = now();
    let fam = FamilyId::generate();
    let (s, a) = (fresh_hash("s"), fresh_hash("a"));
    let rs = standalone_record("c", now, HOUR);
    assert_eq!(
        tokens
            .save_tokens(
                &[
                    (s, rs.clone()),
                    (a, record(TokenKind::Access, "c", &fam, now, HOUR))
                ],
                now
            )
            .await
            .must("save")?,
        TokenSave::Saved
    );
    assert_eq!(
        tokens.find_token(&s, now).await.must("find")?,
        TokenLookup::Live(rs.clone())
    );
    // Revoking another family, or one never used, leaves it.
    let until = an_hour_after(now);
    assert_eq!(
        tokens
            .revoke_family(&fam, until, now)
            .await
            .must("revoke")?,
        1
    );
    assert_eq!(
        tokens
            .revoke_family(&FamilyId::generate(), until, now)
            .await
            .must("revoke")?,
        0
    );
    assert_eq!(
        tokens.find_token(&s, now).await.must("find")?,
        TokenLookup::Live(rs.clone())
    );
    // A save with a token of a revoked family saves nothing, standalone tokens included.
    let refused = fresh_hash("x");
    assert_eq!(
        tokens
            .save_tokens(
                &[
                    (refused, standalone_record("c", now, HOUR)),
                    (
                        fresh_hash("y"),
                        record(TokenKind::Access, "c", &fam, now, HOUR)
                    ),
                ],
                now
            )
            .await
            .must("save")?,
        TokenSave::FamilyRevoked
    );
    assert_eq!(
        tokens.find_token(&refused, now).await.must("find")?,
        TokenLookup::Unknown
    );
    // An update may insert one too.
    let inserted = (fresh_hash("i"), standalone_record("c", now, 60));
    let insert = TokenChange {
        insert: vec![inserted.clone()],
        ..TokenChange::default()
    };
    assert_eq!(
        tokens.update_tokens(&insert, now).await.must("update")?,
        TokenUpdate::Applied
    );
    assert_eq!(
        tokens.find_token(&inserted.0, now).await.must("find")?,
        TokenLookup::Live(inserted.1)
    );
    // Its own revocation ends it, once.
    assert_eq!(tokens.revoke_token(&s, now).await.must("revoke")?, Some(rs));
    assert_eq!(tokens.revoke_token(&s, now).await.must("revoke")?, None);
    assert_eq!(
        tokens.find_token(&s, now).await.must("find")?,
        TokenLookup::Unknown
    );
    Ok(())
}

/// [`TokenStore::find_token_in_memory`], when it answers, answers what
/// [`TokenStore::find_token`] does: for a live token, a spent mark, an unknown hash, an expired
/// token and a revoked one.
pub async fn an_in_memory_answer_is_find_tokens(
    tokens: Arc<dyn TokenStore>,
) -> Result<(), Failure> {
    let now = now();
    let fam = FamilyId::generate();
    let (a, r, n, short, alone, gone) = (
        fresh_hash("a"),
        fresh_hash("r"),
        fresh_hash("n"),
        fresh_hash("short"),
        fresh_hash("alone"),
        fresh_hash("gone"),
    );
    tokens
        .save_tokens(
            &[
                (a, record(TokenKind::Access, "c", &fam, now, HOUR)),
                (r, record(TokenKind::Refresh, "c", &fam, now, HOUR)),
                (short, record(TokenKind::Access, "c", &fam, now, 10)),
                (alone, standalone_record("c", now, HOUR)),
                (gone, standalone_record("c", now, HOUR)),
            ],
            now,
        )
        .await
        .must("save")?;
    let new = [(n, record(TokenKind::Refresh, "c", &fam, now, HOUR))];
    assert_eq!(
        tokens
            .update_tokens(
                &spend(r, spent_mark("c", &fam, now, Some(n), HOUR), &new),
                now
            )
            .await
            .must("update")?,
        TokenUpdate::Applied
    );
    tokens.revoke_token(&gone, now).await.must("revoke")?;
    let later = now + time::Duration::seconds(20);
    for at in [now, later] {
        for h in [a, r, n, short, alone, gone, fresh_hash("u")] {
            let answered = tokens.find_token_in_memory(&h, at);
            let found = tokens.find_token(&h, at).await.must("find")?;
            if let Some(answer) = answered {
                assert_eq!(answer.must("find in memory")?, found);
            }
            // Asking twice changes nothing.
            if let Some(answer) = tokens.find_token_in_memory(&h, at) {
                assert_eq!(answer.must("find in memory")?, found);
            }
        }
    }
    Ok(())
}

/// Until when the checks ask a revoked family to be remembered: an hour from `now`.
fn an_hour_after(now: OffsetDateTime) -> OffsetDateTime {
    now + time::Duration::seconds(HOUR)
}

/// Revoking a family revokes every live token in it, and its spent marks stay.
pub async fn revoke_a_family(tokens: Arc<dyn TokenStore>) -> Result<(), Failure> {
    let now = now();
    let (fam, other) = (FamilyId::generate(), FamilyId::generate());
    let (a, r, o) = (fresh_hash("a"), fresh_hash("r"), fresh_hash("o"));
    tokens
        .save_tokens(
            &[
                (a, record(TokenKind::Access, "c", &fam, now, HOUR)),
                (r, record(TokenKind::Refresh, "c", &fam, now, HOUR)),
                (o, record(TokenKind::Access, "c", &other, now, HOUR)),
            ],
            now,
        )
        .await
        .must("save")?;
    // Spend r so the family also holds a spent mark.
    let (na, nr) = (fresh_hash("na"), fresh_hash("nr"));
    let new = [
        (na, record(TokenKind::Access, "c", &fam, now, HOUR)),
        (nr, record(TokenKind::Refresh, "c", &fam, now, HOUR)),
    ];
    let mark = spent_mark("c", &fam, now, Some(nr), HOUR);
    assert_eq!(
        tokens
            .update_tokens(&spend(r, mark.clone(), &new), now)
            .await
            .must("update")?,
        TokenUpdate::Applied
    );
    let until = an_hour_after(now);
    assert_eq!(
        tokens
            .revoke_family(&fam, until, now)
            .await
            .must("revoke")?,
        3
    );
    for h in [a, na, nr] {
        assert_eq!(
            tokens.find_token(&h, now).await.ok(),
            Some(TokenLookup::Unknown)
        );
    }
    // The mark stays: a replay is still recognised.
    assert_eq!(
        tokens.find_token(&r, now).await.must("find")?,
        lookup_of(&mark)
    );
    assert!(matches!(
        tokens.find_token(&o, now).await,
        Ok(TokenLookup::Live(_))
    ));
    assert_eq!(
        tokens
            .revoke_family(&fam, until, now)
            .await
            .must("revoke")?,
        0
    );
    assert_eq!(
        tokens
            .revoke_family(&FamilyId::generate(), until, now)
            .await
            .must("revoke")?,
        0
    );
    // A revoked token is no longer live, so no update expecting it is applied.
    let from_revoked = TokenChange {
        expect: vec![(nr, TokenExpectation::Live)],
        mark: vec![(nr, spent_mark("c", &fam, now, None, HOUR))],
        insert: Vec::new(),
    };
    assert_eq!(
        tokens.update_tokens(&from_revoked, now).await.ok(),
        Some(TokenUpdate::Conflict)
    );
    assert_eq!(
        tokens.find_token(&nr, now).await.ok(),
        Some(TokenLookup::Unknown)
    );
    Ok(())
}

/// Revoking a family counts only the tokens still unexpired at `now`.
pub async fn revoke_a_family_counts_only_unexpired_tokens(
    tokens: Arc<dyn TokenStore>,
) -> Result<(), Failure> {
    let now = now();
    let fam = FamilyId::generate();
    let (short, long) = (fresh_hash("s"), fresh_hash("l"));
    tokens
        .save_tokens(
            &[
                (short, record(TokenKind::Access, "c", &fam, now, 10)),
                (long, record(TokenKind::Refresh, "c", &fam, now, HOUR)),
            ],
            now,
        )
        .await
        .must("save")?;
    let later = now + time::Duration::seconds(20);
    assert_eq!(
        tokens
            .revoke_family(&fam, an_hour_after(later), later)
            .await
            .must("revoke")?,
        1
    );
    assert_eq!(
        tokens.find_token(&long, later).await.ok(),
        Some(TokenLookup::Unknown)
    );
    Ok(())
}

/// A revoked family takes no new tokens, by save or by update, until the `remember_until` it was
/// revoked with (a later revocation with an earlier one does not shorten it); an update whose
/// expectation fails is a conflict even then.
pub async fn a_revoked_family_takes_no_new_tokens_until_it_is_forgotten(
    tokens: Arc<dyn TokenStore>,
) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let (fam, other) = (FamilyId::generate(), FamilyId::generate());
    tokens
        .save_tokens(
            &[(
                fresh_hash("a"),
                record(TokenKind::Access, "c", &fam, now, HOUR),
            )],
            now,
        )
        .await
        .must("save")?;
    assert_eq!(
        tokens
            .revoke_family(&fam, at(600), now)
            .await
            .must("revoke")?,
        1
    );
    // An earlier `remember_until` later on does not shorten the memory.
    tokens
        .revoke_family(&fam, at(300), at(1))
        .await
        .must("revoke")?;
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
    assert_eq!(
        tokens.save_tokens(&late, now).await.must("save")?,
        TokenSave::FamilyRevoked
    );
    for (h, _) in &late {
        assert_eq!(
            tokens.find_token(h, now).await.ok(),
            Some(TokenLookup::Unknown)
        );
    }
    // Other families are unaffected.
    assert_eq!(
        tokens.save_tokens(&late[..1], now).await.must("save")?,
        TokenSave::Saved
    );
    // An update cannot bring tokens into it either, and then writes no mark.
    let old = fresh_hash("old");
    let old_record = record(TokenKind::Refresh, "c", &other, now, HOUR);
    tokens
        .save_tokens(&[(old, old_record.clone())], now)
        .await
        .must("save")?;
    let into_revoked = [(
        fresh_hash("n"),
        record(TokenKind::Access, "c", &fam, now, HOUR),
    )];
    let change = spend(
        old,
        spent_mark("c", &other, now, Some(into_revoked[0].0), HOUR),
        &into_revoked,
    );
    assert_eq!(
        tokens.update_tokens(&change, at(599)).await.ok(),
        Some(TokenUpdate::FamilyRevoked)
    );
    assert_eq!(
        tokens.find_token(&old, at(599)).await.ok(),
        Some(TokenLookup::Live(old_record)),
        "nothing spent"
    );
    assert_eq!(
        tokens.find_token(&into_revoked[0].0, at(599)).await.ok(),
        Some(TokenLookup::Unknown)
    );
    // An expectation that fails is a conflict, whatever the families.
    let unknown = TokenChange {
        expect: vec![(fresh_hash("u"), TokenExpectation::Live)],
        ..change.clone()
    };
    assert_eq!(
        tokens.update_tokens(&unknown, at(599)).await.ok(),
        Some(TokenUpdate::Conflict)
    );
    // At `remember_until` the family takes tokens again.
    let again = [(
        fresh_hash("ag"),
        record(TokenKind::Access, "c", &fam, at(600), HOUR),
    )];
    assert_eq!(
        tokens.save_tokens(&again, at(600)).await.must("save")?,
        TokenSave::Saved
    );
    assert_eq!(
        tokens.update_tokens(&change, at(600)).await.ok(),
        Some(TokenUpdate::Applied)
    );
    Ok(())
}

/// Saves a refresh token and spends it once in favour of a new one, answering (old, successor,
/// the successor's record, old's mark).
async fn rotated_once(
    tokens: &Arc<dyn TokenStore>,
    now: OffsetDateTime,
    fam: &FamilyId,
) -> Result<(TokenHash, TokenHash, TokenRecord, SpentMark), Failure> {
    let old = fresh_hash("old");
    tokens
        .save_tokens(
            &[(old, record(TokenKind::Refresh, "c", fam, now, 24 * HOUR))],
            now,
        )
        .await
        .must("save")?;
    let successor = fresh_hash("s1");
    let successor_record = record(TokenKind::Refresh, "c", fam, now, 24 * HOUR);
    let new = [
        (
            fresh_hash("a1"),
            record(TokenKind::Access, "c", fam, now, HOUR),
        ),
        (successor, successor_record.clone()),
    ];
    let mark = spent_mark("c", fam, now, Some(successor), 24 * HOUR);
    assert_eq!(
        tokens
            .update_tokens(&spend(old, mark.clone(), &new), now)
            .await
            .must("update")?,
        TokenUpdate::Applied
    );
    Ok((old, successor, successor_record, mark))
}

/// New tokens for a reissue: an access token and a refresh token of the family.
fn pair_of(label: &str, fam: &FamilyId, now: OffsetDateTime) -> [(TokenHash, TokenRecord); 2] {
    [
        (
            fresh_hash(&format!("{label}-a")),
            record(TokenKind::Access, "c", fam, now, HOUR),
        ),
        (
            fresh_hash(&format!("{label}-r")),
            record(TokenKind::Refresh, "c", fam, now, 24 * HOUR),
        ),
    ]
}

/// The change that replaces `successor` (unused) of the spent `old` with the refresh token of
/// `new`: `old` keeps its mark but names the new successor, and `successor` is spent with none.
fn reissue(
    old: TokenHash,
    old_mark: &SpentMark,
    successor: TokenHash,
    new: &[(TokenHash, TokenRecord); 2],
    now: OffsetDateTime,
) -> TokenChange {
    TokenChange {
        expect: vec![
            (
                old,
                TokenExpectation::Spent {
                    successor: Some(successor),
                },
            ),
            (successor, TokenExpectation::Live),
        ],
        mark: vec![
            (
                old,
                SpentMark {
                    successor: Some(new[1].0),
                    ..old_mark.clone()
                },
            ),
            (
                successor,
                spent_mark("c", &old_mark.family_id, now, None, HOUR),
            ),
        ],
        insert: new.to_vec(),
    }
}

/// A spent token's mark may be rewritten while it names the expected successor: an update that
/// expects `Spent { successor }` applies once, after which the mark names another.
pub async fn spent_expectations_name_the_successor(
    tokens: Arc<dyn TokenStore>,
) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let fam = FamilyId::generate();
    let (old, s1, s1_record, old_mark) = rotated_once(&tokens, now, &fam).await?;
    // Expecting another successor changes nothing.
    let second = pair_of("second", &fam, at(2));
    let mut wrong = reissue(old, &old_mark, s1, &second, at(2));
    wrong.expect[0].1 = TokenExpectation::Spent {
        successor: Some(fresh_hash("x")),
    };
    assert_eq!(
        tokens.update_tokens(&wrong, at(2)).await.ok(),
        Some(TokenUpdate::Conflict)
    );
    assert_eq!(
        tokens.find_token(&second[1].0, at(2)).await.ok(),
        Some(TokenLookup::Unknown)
    );
    assert_eq!(
        tokens.find_token(&s1, at(2)).await.ok(),
        Some(TokenLookup::Live(s1_record))
    );
    // The expected successor: both marks are written and the new tokens saved.
    let change = reissue(old, &old_mark, s1, &second, at(2));
    assert_eq!(
        tokens.update_tokens(&change, at(2)).await.ok(),
        Some(TokenUpdate::Applied)
    );
    for (h, r) in &second {
        assert_eq!(
            tokens.find_token(h, at(2)).await.ok(),
            Some(TokenLookup::Live(r.clone()))
        );
    }
    assert_eq!(
        tokens.find_token(&s1, at(2)).await.ok(),
        Some(lookup_of(&change.mark[1].1))
    );
    assert_eq!(
        tokens.find_token(&old, at(2)).await.ok(),
        Some(lookup_of(&change.mark[0].1))
    );
    // Applied once: the same change again is a conflict.
    assert_eq!(
        tokens.update_tokens(&change, at(3)).await.ok(),
        Some(TokenUpdate::Conflict)
    );
    // A mark with no successor is expected as such.
    let no_successor = TokenChange {
        expect: vec![(s1, TokenExpectation::Spent { successor: None })],
        ..TokenChange::default()
    };
    assert_eq!(
        tokens.update_tokens(&no_successor, at(3)).await.ok(),
        Some(TokenUpdate::Applied)
    );
    // Once the new successor is spent too, the old token's mark can no longer be rewritten.
    let third = pair_of("third", &fam, at(4));
    let (s2, s2_mark) = (
        second[1].0,
        spent_mark("c", &fam, at(4), Some(third[1].0), HOUR),
    );
    assert_eq!(
        tokens
            .update_tokens(&spend(s2, s2_mark, &third), at(4))
            .await
            .ok(),
        Some(TokenUpdate::Applied)
    );
    let fourth = pair_of("fourth", &fam, at(5));
    assert_eq!(
        tokens
            .update_tokens(&reissue(old, &old_mark, s2, &fourth, at(5)), at(5))
            .await
            .ok(),
        Some(TokenUpdate::Conflict)
    );
    assert_eq!(
        tokens.find_token(&fourth[1].0, at(5)).await.ok(),
        Some(TokenLookup::Unknown)
    );
    Ok(())
}

/// 100 concurrent updates that each expect a spent token to name one successor, and that
/// successor live: one is applied, and of the refresh tokens they insert exactly one is live.
pub async fn reissue_race_has_one_winner(tokens: Arc<dyn TokenStore>) -> Result<(), Failure> {
    let now = now();
    let fam = FamilyId::generate();
    let (old, s1, _, old_mark) = rotated_once(&tokens, now, &fam).await?;
    let outcomes = race_ok(100, |i| {
        let tokens = tokens.clone();
        let new = pair_of(&format!("r{i}"), &fam, now);
        let change = reissue(old, &old_mark, s1, &new, now);
        async move {
            let outcome = tokens.update_tokens(&change, now).await.must("update")?;
            Ok((outcome, new[1].0))
        }
    })
    .await?;
    let winners: Vec<TokenHash> = outcomes
        .iter()
        .filter(|(o, _)| *o == TokenUpdate::Applied)
        .map(|(_, refresh)| *refresh)
        .collect();
    assert_eq!(winners.len(), 1);
    assert!(outcomes
        .iter()
        .all(|(o, _)| matches!(o, TokenUpdate::Applied | TokenUpdate::Conflict)));
    let mut live = 0;
    for (_, refresh) in &outcomes {
        if matches!(
            tokens.find_token(refresh, now).await,
            Ok(TokenLookup::Live(_))
        ) {
            live += 1;
        }
    }
    assert_eq!(live, 1);
    match tokens.find_token(&old, now).await.must("find")? {
        TokenLookup::Rotated { successor, .. } => assert_eq!(successor, Some(winners[0])),
        other => return Err(Failure::new(format!("unexpected {other:?}"))),
    }
    Ok(())
}

/// 100 tasks on several threads each expect one token live and mark it spent, at once: exactly
/// one update is applied, the others are conflicts.
pub async fn update_race_has_one_winner(tokens: Arc<dyn TokenStore>) -> Result<(), Failure> {
    let now = now();
    let fam = FamilyId::generate();
    let old = fresh_hash("old");
    tokens
        .save_tokens(
            &[(old, record(TokenKind::Refresh, "c", &fam, now, HOUR))],
            now,
        )
        .await
        .must("save")?;
    let outcomes = race(100, |i| {
        let tokens = tokens.clone();
        let new = [(
            fresh_hash(&format!("n{i}")),
            record(TokenKind::Refresh, "c", &fam, now, HOUR),
        )];
        let change = spend(old, spent_mark("c", &fam, now, Some(new[0].0), HOUR), &new);
        async move { (new[0].0, tokens.update_tokens(&change, now).await) }
    })
    .await?;
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for outcome in outcomes {
        match outcome {
            (h, Ok(TokenUpdate::Applied)) => winners.push(h),
            (h, Ok(TokenUpdate::Conflict)) => {
                assert_eq!(
                    tokens.find_token(&h, now).await.ok(),
                    Some(TokenLookup::Unknown)
                );
                conflicts += 1;
            }
            (_, other) => return Err(Failure::new(format!("unexpected {other:?}"))),
        }
    }
    assert_eq!((winners.len(), conflicts), (1, 99));
    assert!(matches!(
        tokens.find_token(&winners[0], now).await,
        Ok(TokenLookup::Live(_))
    ));
    match tokens.find_token(&old, now).await.must("find")? {
        TokenLookup::Rotated { successor, .. } => assert_eq!(successor, Some(winners[0])),
        other => return Err(Failure::new(format!("unexpected {other:?}"))),
    }
    // What the engine does with a replay: revoke the family, which takes the winner's token too.
    assert_eq!(
        tokens
            .revoke_family(&fam, an_hour_after(now), now)
            .await
            .must("revoke")?,
        1
    );
    assert_eq!(
        tokens.find_token(&winners[0], now).await.ok(),
        Some(TokenLookup::Unknown)
    );
    Ok(())
}

/// Revoking a family while an update spends one of its tokens and inserts another leaves no live
/// token behind.
pub async fn revoke_family_races_update(tokens: Arc<dyn TokenStore>) -> Result<(), Failure> {
    let now = now();
    for _ in 0..20 {
        let fam = FamilyId::generate();
        let old = fresh_hash("old");
        tokens
            .save_tokens(
                &[(old, record(TokenKind::Refresh, "c", &fam, now, HOUR))],
                now,
            )
            .await
            .must("save")?;
        let new_hash = fresh_hash("new");
        let new = [(new_hash, record(TokenKind::Refresh, "c", &fam, now, HOUR))];
        let change = spend(old, spent_mark("c", &fam, now, Some(new_hash), HOUR), &new);
        let barrier = Arc::new(Barrier::new(2));
        let (t1, b1) = (tokens.clone(), barrier.clone());
        let fam1 = fam.clone();
        let revoke = tokio::spawn(async move {
            b1.wait().await;
            t1.revoke_family(&fam1, an_hour_after(now), now).await
        });
        let (t2, b2) = (tokens.clone(), barrier.clone());
        let update = tokio::spawn(async move {
            b2.wait().await;
            t2.update_tokens(&change, now).await
        });
        let revoked = revoke.await.must("task")?.must("revoke")?;
        let updated = update.await.must("task")?.must("update")?;
        let new_live = matches!(
            tokens.find_token(&new_hash, now).await,
            Ok(TokenLookup::Live(_))
        );
        assert!(!new_live, "a token was issued into a revoked family");
        // The update first: the revocation took the new token (and counted it). The revocation
        // first: it took the old token, and the update found it gone (or its family refused).
        assert_eq!(revoked, 1, "{updated:?}");
        assert!(!matches!(
            tokens.find_token(&old, now).await,
            Ok(TokenLookup::Live(_))
        ));
    }
    Ok(())
}

/// A lease that lasts `secs` from `now`.
pub fn lease(now: OffsetDateTime, secs: i64) -> AttemptLease {
    AttemptLease::new(now + time::Duration::seconds(secs))
}

/// The attempt limiter: concurrent checks hold leases, failures open a window, lapsed leases count
/// as failures, and windows close by `now`.
pub async fn limiter_leases_and_windows(limiter: Arc<dyn AttemptLimiter>) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let client = ClientId::new(format!("c-{}", FamilyId::generate()));
    let key = AttemptKey::Client(client.clone());
    let rule = AttemptRule {
        max_failures: 2,
        window: Duration::from_secs(60),
    };
    let l = &limiter;
    let reserve = |lease: AttemptLease, when: OffsetDateTime| {
        let (l, key) = (l.clone(), key.clone());
        async move {
            l.reserve_attempt(&key, &rule, &lease, when)
                .await
                .must("reserve")
        }
    };
    // Two checks may run at once; a third waits for one of them.
    let (a, b, c) = (lease(now, 30), lease(now, 30), lease(now, 30));
    assert_eq!(reserve(a, at(0)).await?, AttemptVerdict::Allowed);
    assert_eq!(reserve(b, at(0)).await?, AttemptVerdict::Allowed);
    assert_eq!(reserve(c, at(0)).await?, AttemptVerdict::Busy);
    // A right answer gives its place back and counts nothing; a release twice is harmless.
    l.release_attempt(&key, &a, at(1)).await.must("release")?;
    l.release_attempt(&key, &a, at(1)).await.must("release")?;
    assert_eq!(reserve(c, at(1)).await?, AttemptVerdict::Allowed);
    // A wrong answer turns its place into a failure, opening the window at that moment.
    l.record_failure(&key, &rule, &b, at(10))
        .await
        .must("fail")?;
    let d = lease(now, 100);
    assert_eq!(
        reserve(d, at(11)).await?,
        AttemptVerdict::Busy,
        "1 failure + c"
    );
    l.record_failure(&key, &rule, &c, at(12))
        .await
        .must("fail")?;
    // Two failures: refused, with the time until the window (opened at 10 s) closes.
    match reserve(d, at(20)).await? {
        AttemptVerdict::Refused { retry_after } => assert!(
            retry_after >= Duration::from_secs(49) && retry_after <= Duration::from_secs(50),
            "{retry_after:?}"
        ),
        other => return Err(Failure::new(format!("expected a refusal, got {other:?}"))),
    }
    assert!(matches!(
        reserve(d, at(69)).await?,
        AttemptVerdict::Refused { .. }
    ));
    // At its end the window is gone, and so are its failures.
    assert_eq!(reserve(d, at(70)).await?, AttemptVerdict::Allowed);
    // A lease that lapses counts as a failure: its check's request was dropped (or outlived its
    // lease), and dropping requests must not buy guesses beyond the limit.
    let e = AttemptLease::new(at(75));
    assert_eq!(reserve(e, at(71)).await?, AttemptVerdict::Allowed);
    let f = lease(now, 100);
    assert_eq!(reserve(f, at(72)).await?, AttemptVerdict::Busy, "d and e");
    assert_eq!(
        reserve(f, at(75)).await?,
        AttemptVerdict::Busy,
        "e lapsed: one failure, and d"
    );
    // Ending a lapsed lease changes nothing more.
    l.release_attempt(&key, &e, at(76)).await.must("release")?;
    l.release_attempt(&key, &d, at(76)).await.must("release")?;
    assert_eq!(
        reserve(f, at(77)).await?,
        AttemptVerdict::Allowed,
        "1 failure"
    );
    // A failure recorded for a lapsed or unknown lease still counts.
    l.record_failure(&key, &rule, &lease(now, 0), at(78))
        .await
        .must("fail")?;
    assert!(matches!(
        reserve(lease(now, 200), at(78)).await?,
        AttemptVerdict::Refused { .. }
    ));
    // A lease that lapses with no request coming meanwhile is still counted later, within its
    // window; the failures it opened end with that window.
    let other = AttemptKey::Client(ClientId::new(format!("c-{}", FamilyId::generate())));
    let g = AttemptLease::new(at(80));
    assert_eq!(
        l.reserve_attempt(&other, &rule, &g, at(79)).await.ok(),
        Some(AttemptVerdict::Allowed)
    );
    assert_eq!(
        l.reserve_attempt(&other, &rule, &lease(now, 300), at(100))
            .await
            .ok(),
        Some(AttemptVerdict::Allowed),
        "one failure of two"
    );
    assert_eq!(
        l.reserve_attempt(&other, &rule, &lease(now, 300), at(100))
            .await
            .ok(),
        Some(AttemptVerdict::Busy),
        "the lapsed lease counted, and one lease held"
    );
    // The window the lapse opened ends 60 s after it was counted: then only the lease is left.
    assert_eq!(
        l.reserve_attempt(&other, &rule, &lease(now, 300), at(160))
            .await
            .ok(),
        Some(AttemptVerdict::Allowed)
    );
    assert_eq!(
        l.reserve_attempt(&other, &rule, &lease(now, 300), at(160))
            .await
            .ok(),
        Some(AttemptVerdict::Busy)
    );
    // Keys are independent, and a username key is not a client key of the same name; nor is
    // the client's secret, counted per caller or for callers of unknown address.
    let user = AttemptKey::username(&crate::Username::new(key.storage_key()));
    let caller = |ip: [u8; 4]| Some(std::net::IpAddr::from(ip));
    let secret_from_one = AttemptKey::client_secret(&client, caller([192, 0, 2, 1]));
    for other in [
        user,
        AttemptKey::client_secret(&client, None),
        secret_from_one.clone(),
    ] {
        assert_eq!(
            l.reserve_attempt(&other, &rule, &lease(now, 200), at(77))
                .await
                .ok(),
            Some(AttemptVerdict::Allowed),
            "{other:?}"
        );
    }
    for _ in 0..2 {
        l.record_failure(&secret_from_one, &rule, &lease(now, 0), at(77))
            .await
            .must("fail")?;
    }
    assert!(matches!(
        l.reserve_attempt(&secret_from_one, &rule, &lease(now, 200), at(77))
            .await
            .must("reserve")?,
        AttemptVerdict::Refused { .. }
    ));
    let secret_from_another = AttemptKey::client_secret(&client, caller([192, 0, 2, 2]));
    assert_eq!(
        l.reserve_attempt(&secret_from_another, &rule, &lease(now, 200), at(77))
            .await
            .ok(),
        Some(AttemptVerdict::Allowed)
    );
    Ok(())
}

/// 100 concurrent reservations against a limit of 5: exactly 5 are allowed, the others are
/// told to wait; once the 5 fail, everyone is refused.
pub async fn limiter_race_allows_exactly_the_limit(
    limiter: Arc<dyn AttemptLimiter>,
) -> Result<(), Failure> {
    let now = now();
    let key = AttemptKey::username(&crate::Username::new(format!("u-{}", FamilyId::generate())));
    let rule = AttemptRule {
        max_failures: 5,
        window: Duration::from_secs(600),
    };
    let verdicts = race_ok(100, |_| {
        let (l, key) = (limiter.clone(), key.clone());
        async move {
            let lease = lease(now, 30);
            let verdict = l
                .reserve_attempt(&key, &rule, &lease, now)
                .await
                .must("reserve")?;
            Ok((lease, verdict))
        }
    })
    .await?;
    let allowed: Vec<_> = verdicts
        .iter()
        .filter(|(_, v)| *v == AttemptVerdict::Allowed)
        .map(|(lease, _)| *lease)
        .collect();
    assert_eq!(allowed.len(), 5);
    assert!(verdicts
        .iter()
        .all(|(_, v)| matches!(v, AttemptVerdict::Allowed | AttemptVerdict::Busy)));
    for lease in &allowed {
        limiter
            .record_failure(&key, &rule, lease, now)
            .await
            .must("fail")?;
    }
    assert!(matches!(
        limiter
            .reserve_attempt(&key, &rule, &lease(now, 30), now)
            .await,
        Ok(AttemptVerdict::Refused { .. })
    ));
    Ok(())
}

/// A pending authorization request of the client `spa`, living `ttl` seconds from `now`.
pub fn pending(now: OffsetDateTime, ttl: i64) -> PendingAuthorization {
    PendingAuthorization {
        client_id: ClientId::new("spa"),
        response_type: ResponseType::Code,
        redirect_uri: RedirectUri::new("http://localhost:3000/callback?x=1"),
        redirect_uri_in_request: true,
        scope: Scope::parse("read").unwrap_or_default(),
        state: Some("st\u{e9}te &=+".to_owned()),
        code_challenge: Some(CodeChallenge {
            challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            method: CodeChallengeMethod::S256,
        }),
        resources: vec![
            "https://api.example.com".to_owned(),
            "urn:example:ledger".to_owned(),
        ],
        expires_at: now + time::Duration::seconds(ttl),
    }
}

/// An authorization code grant of the client `spa`, living `ttl` seconds from `now`.
pub fn code_grant(now: OffsetDateTime, ttl: i64) -> CodeGrant {
    CodeGrant {
        client_id: ClientId::new("spa"),
        user_id: UserId::new("user-1"),
        username: Some(Username::new("tom")),
        redirect_uri: RedirectUri::new("http://localhost:3000/callback"),
        redirect_uri_in_request: false,
        scope: Scope::parse("read write").unwrap_or_default(),
        code_challenge: None,
        resources: vec!["https://api.example.com".to_owned()],
        family_id: FamilyId::generate(),
        issued_at: now,
        expires_at: now + time::Duration::seconds(ttl),
    }
}

/// A pending authorization request is read as often as asked, taken once, and expires by `now`.
pub async fn pending_requests_are_read_then_taken_once(
    codes: Arc<dyn CodeStore>,
) -> Result<(), Failure> {
    let now = now();
    let id = fresh_hash("p");
    let request = pending(now, 600);
    codes
        .save_pending(&id, &request, &PendingLimits::default(), now)
        .await
        .must("save")?;
    for _ in 0..2 {
        assert_eq!(
            codes.find_pending(&id, now).await.must("find")?,
            Some(request.clone())
        );
    }
    assert_eq!(
        codes.take_pending(&id, now).await.must("take")?,
        Some(request)
    );
    assert_eq!(codes.take_pending(&id, now).await.must("take")?, None);
    assert_eq!(codes.find_pending(&id, now).await.must("find")?, None);
    assert_eq!(
        codes
            .find_pending(&fresh_hash("u"), now)
            .await
            .must("find")?,
        None
    );
    // Expiry, judged by now.
    let short = fresh_hash("s");
    codes
        .save_pending(&short, &pending(now, 60), &PendingLimits::default(), now)
        .await
        .must("save")?;
    let at = |secs| now + time::Duration::seconds(secs);
    assert!(codes
        .find_pending(&short, at(59))
        .await
        .must("find")?
        .is_some());
    assert_eq!(codes.find_pending(&short, at(60)).await.must("find")?, None);
    assert_eq!(codes.take_pending(&short, at(60)).await.must("take")?, None);
    Ok(())
}

/// The used mark [`spend_code`](CodeStore::spend_code) is asked to leave on `grant`'s code:
/// its client and family, kept `keep` seconds from `now`.
pub fn used_mark(grant: &CodeGrant, now: OffsetDateTime, keep: i64) -> SpentCode {
    SpentCode::new(
        grant.client_id.clone(),
        grant.family_id.clone(),
        now + time::Duration::seconds(keep),
    )
}

/// A code is read as often as asked, spent once (a compare-and-set from live to the used mark
/// asked for), and then read as that mark; an unknown or expired code is neither read nor spent.
pub async fn codes_are_read_then_spent_once(codes: Arc<dyn CodeStore>) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let code = fresh_hash("c");
    let grant = code_grant(now, 60);
    codes.save_code(&code, &grant, now).await.must("save")?;
    // Reads change nothing.
    for _ in 0..2 {
        assert_eq!(
            codes.find_code(&code, at(1)).await.must("find")?,
            CodeLookup::Live(grant.clone())
        );
    }
    let mark = used_mark(&grant, now, 3600);
    assert_eq!(
        codes.spend_code(&code, &mark, at(1)).await.must("spend")?,
        CodeSpend::Spent(grant.clone())
    );
    // Spent: read as the mark, and not spent again.
    for _ in 0..2 {
        assert_eq!(
            codes.find_code(&code, at(2)).await.must("find")?,
            CodeLookup::Spent {
                client_id: grant.client_id.clone(),
                family_id: grant.family_id.clone(),
            }
        );
        assert_eq!(
            codes.spend_code(&code, &mark, at(2)).await.must("spend")?,
            CodeSpend::Conflict
        );
    }
    // Unknown codes.
    let unknown = fresh_hash("u");
    assert_eq!(
        codes.find_code(&unknown, now).await.must("find")?,
        CodeLookup::Unknown
    );
    assert_eq!(
        codes.spend_code(&unknown, &mark, now).await.must("spend")?,
        CodeSpend::Conflict
    );
    assert_eq!(
        codes.find_code(&unknown, now).await.must("find")?,
        CodeLookup::Unknown
    );
    // A code never spent is unknown from its expiry on, and cannot be spent then.
    let fresh = fresh_hash("f");
    let short = code_grant(now, 60);
    codes.save_code(&fresh, &short, now).await.must("save")?;
    assert_eq!(
        codes.find_code(&fresh, at(59)).await.must("find")?,
        CodeLookup::Live(short.clone())
    );
    assert_eq!(
        codes.find_code(&fresh, at(60)).await.must("find")?,
        CodeLookup::Unknown
    );
    assert_eq!(
        codes
            .spend_code(&fresh, &used_mark(&short, now, 3600), at(60))
            .await
            .must("spend")?,
        CodeSpend::Conflict
    );
    assert_eq!(
        codes.find_code(&fresh, at(60)).await.must("find")?,
        CodeLookup::Unknown
    );
    Ok(())
}

/// A used mark is stored as asked: its client and family are read back as given (the store
/// compares neither with the grant's), until its `keep_until`, however long after the code's
/// own expiry that is.
pub async fn a_used_mark_is_kept_as_asked(codes: Arc<dyn CodeStore>) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let code = fresh_hash("c");
    let grant = code_grant(now, 60);
    codes.save_code(&code, &grant, now).await.must("save")?;
    let mark = SpentCode::new(ClientId::new("another"), FamilyId::generate(), at(3600));
    assert_eq!(
        codes.spend_code(&code, &mark, now).await.must("spend")?,
        CodeSpend::Spent(grant.clone())
    );
    let spent = CodeLookup::Spent {
        client_id: mark.client_id.clone(),
        family_id: mark.family_id.clone(),
    };
    for secs in [0, 59, 60, 3599] {
        assert_eq!(
            codes.find_code(&code, at(secs)).await.must("find")?,
            spent,
            "at now + {secs} s"
        );
    }
    assert_eq!(
        codes
            .spend_code(&code, &mark, at(3599))
            .await
            .must("spend")?,
        CodeSpend::Conflict
    );
    // At `keep_until` the mark is gone.
    assert_eq!(
        codes.find_code(&code, at(3600)).await.must("find")?,
        CodeLookup::Unknown
    );
    assert_eq!(
        codes
            .spend_code(&code, &mark, at(3600))
            .await
            .must("spend")?,
        CodeSpend::Conflict
    );
    Ok(())
}

/// A code spent by an exchange whose tokens could not be saved is given back, once, and only
/// to that exchange's family; a live, replaced or expired one is not.
pub async fn a_spent_code_can_be_given_back(codes: Arc<dyn CodeStore>) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let code = fresh_hash("c");
    let grant = code_grant(now, 60);
    let mark = used_mark(&grant, now, 3600);
    codes.save_code(&code, &grant, now).await.must("save")?;
    // A live code cannot be "given back".
    assert_eq!(
        codes
            .restore_code(&code, &grant, at(1))
            .await
            .must("restore")?,
        CodeRestore::Gone
    );
    assert_eq!(
        codes.spend_code(&code, &mark, at(1)).await.must("spend")?,
        CodeSpend::Spent(grant.clone())
    );
    // Another grant's family cannot claim it.
    let other = code_grant(now, 60);
    assert_eq!(
        codes
            .restore_code(&code, &other, at(2))
            .await
            .must("restore")?,
        CodeRestore::Gone
    );
    assert_eq!(
        codes
            .restore_code(&code, &grant, at(2))
            .await
            .must("restore")?,
        CodeRestore::Restored
    );
    // Live again, once.
    assert_eq!(
        codes.find_code(&code, at(2)).await.must("find")?,
        CodeLookup::Live(grant.clone())
    );
    assert_eq!(
        codes
            .restore_code(&code, &grant, at(2))
            .await
            .must("restore")?,
        CodeRestore::Gone
    );
    assert_eq!(
        codes.spend_code(&code, &mark, at(3)).await.must("spend")?,
        CodeSpend::Spent(grant.clone())
    );
    // Not once the code itself has expired, though its mark is kept: it stays spent.
    assert_eq!(
        codes
            .restore_code(&code, &grant, at(60))
            .await
            .must("restore")?,
        CodeRestore::Gone
    );
    assert_eq!(
        codes.find_code(&code, at(61)).await.must("find")?,
        CodeLookup::Spent {
            client_id: grant.client_id.clone(),
            family_id: grant.family_id.clone(),
        }
    );
    assert_eq!(
        codes.spend_code(&code, &mark, at(61)).await.must("spend")?,
        CodeSpend::Conflict
    );
    // An unknown code is not given back, nor made up.
    let unknown = fresh_hash("u");
    assert_eq!(
        codes
            .restore_code(&unknown, &grant, at(1))
            .await
            .must("restore")?,
        CodeRestore::Gone
    );
    assert_eq!(
        codes.find_code(&unknown, at(1)).await.must("find")?,
        CodeLookup::Unknown
    );
    Ok(())
}

/// 100 tasks on several threads spend one code at once, each with a mark of its own: exactly
/// one spends it, and its mark is the one kept.
pub async fn code_race_has_one_winner(codes: Arc<dyn CodeStore>) -> Result<(), Failure> {
    let now = now();
    let code = fresh_hash("c");
    let grant = code_grant(now, 60);
    codes.save_code(&code, &grant, now).await.must("save")?;
    let keep = now + time::Duration::seconds(3600);
    let mark = |i: usize| {
        SpentCode::new(
            ClientId::new(format!("client-{i}")),
            grant.family_id.clone(),
            keep,
        )
    };
    let outcomes = race_ok(100, |i| {
        let (codes, mark) = (codes.clone(), mark(i));
        async move { codes.spend_code(&code, &mark, now).await.must("spend") }
    })
    .await?;
    let mut winners = Vec::new();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            CodeSpend::Spent(spent) => {
                assert_eq!(spent, grant);
                winners.push(i);
            }
            CodeSpend::Conflict => {}
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let winner = mark(winners[0]);
    assert_eq!(
        codes.find_code(&code, now).await.must("find")?,
        CodeLookup::Spent {
            client_id: winner.client_id,
            family_id: winner.family_id,
        }
    );
    Ok(())
}

/// 100 tasks give back one spent code at once: exactly one does. Then 50 tasks give it back
/// while 50 spend it: every give-back answered `Restored` undid one spend, and the code ends in
/// the state the answers add up to.
pub async fn give_back_race_has_one_winner(codes: Arc<dyn CodeStore>) -> Result<(), Failure> {
    let now = now();
    let code = fresh_hash("c");
    let grant = code_grant(now, 60);
    let mark = used_mark(&grant, now, 3600);
    codes.save_code(&code, &grant, now).await.must("save")?;
    assert_eq!(
        codes.spend_code(&code, &mark, now).await.must("spend")?,
        CodeSpend::Spent(grant.clone())
    );
    let restored = race_ok(100, |_| {
        let (codes, grant) = (codes.clone(), grant.clone());
        async move { codes.restore_code(&code, &grant, now).await.must("restore") }
    })
    .await?;
    let won = restored
        .iter()
        .filter(|r| **r == CodeRestore::Restored)
        .count();
    assert_eq!(won, 1);
    assert_eq!(
        codes.find_code(&code, now).await.must("find")?,
        CodeLookup::Live(grant.clone())
    );
    // Mixed: spends (of a live code) and give-backs (of a spent one) alternate.
    let outcomes = race_ok(100, |i| {
        let (codes, grant, mark) = (codes.clone(), grant.clone(), mark.clone());
        async move {
            if i % 2 == 0 {
                let spent = codes.spend_code(&code, &mark, now).await.must("spend")?;
                Ok((matches!(spent, CodeSpend::Spent(_)), false))
            } else {
                let restored = codes
                    .restore_code(&code, &grant, now)
                    .await
                    .must("restore")?;
                Ok((false, restored == CodeRestore::Restored))
            }
        }
    })
    .await?;
    let spent = outcomes.iter().filter(|(s, _)| *s).count();
    let restored = outcomes.iter().filter(|(_, r)| *r).count();
    // The code started live: each spend needed a live code, each give-back a spent one.
    let expected = if spent == restored {
        CodeLookup::Live(grant.clone())
    } else {
        assert_eq!(spent, restored + 1, "{spent} spent, {restored} given back");
        CodeLookup::Spent {
            client_id: grant.client_id.clone(),
            family_id: grant.family_id.clone(),
        }
    };
    assert!(spent >= 1, "a live code raced by 50 spends is spent");
    assert_eq!(codes.find_code(&code, now).await.must("find")?, expected);
    Ok(())
}

/// 100 tasks take one pending request at once: exactly one decision.
pub async fn pending_race_has_one_winner(codes: Arc<dyn CodeStore>) -> Result<(), Failure> {
    let now = now();
    let id = fresh_hash("p");
    codes
        .save_pending(&id, &pending(now, 600), &PendingLimits::default(), now)
        .await
        .must("save")?;
    let taken = race_ok(100, |_| {
        let codes = codes.clone();
        async move { codes.take_pending(&id, now).await.must("take") }
    })
    .await?;
    let won = taken.iter().filter(|t| t.is_some()).count();
    assert_eq!(won, 1);
    Ok(())
}

/// A pending device authorization request of the client `tv`, living `ttl` seconds from `now`.
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

/// Until when the checks ask a store to keep `request`: 10 minutes past its expiry, as the
/// engine does (a store must keep whatever time it is given; one check gives others).
pub fn device_keep_until(request: &DeviceAuthorization) -> OffsetDateTime {
    request.expires_at + time::Duration::seconds(600)
}

/// An approval by `user` of `scope`.
pub fn approve(user: &str, scope: &str) -> DeviceDecision {
    DeviceDecision::Approve {
        user_id: UserId::new(user),
        username: Some(Username::new(format!("{user}-name"))),
        scope: Scope::parse(scope).unwrap_or_default(),
    }
}

/// Saves a fresh device request, kept until [`device_keep_until`], answering its device code
/// and user code hashes.
pub async fn saved_device(
    devices: &Arc<dyn DeviceCodeStore>,
    request: &DeviceAuthorization,
    now: OffsetDateTime,
) -> Result<(DeviceCodeHash, UserCodeHash), Failure> {
    let (device, user) = (fresh_hash("dc"), fresh_hash("uc"));
    assert_eq!(
        devices
            .save_device_authorization(
                &device,
                &user,
                request,
                device_keep_until(request),
                &PendingLimits::default(),
                now
            )
            .await
            .must("save")?,
        DeviceSave::Saved
    );
    Ok((device, user))
}

/// `request` with the status `decision` gives it.
fn decided(request: &DeviceAuthorization, decision: &DeviceDecision) -> DeviceAuthorization {
    DeviceAuthorization {
        status: decision.status(),
        ..request.clone()
    }
}

/// A device request is found by its user code, and only by it, until it expires; and by its
/// device code.
pub async fn device_requests_are_found_by_their_user_code(
    devices: Arc<dyn DeviceCodeStore>,
) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let request = device_request(now, 600);
    let (device, user) = saved_device(&devices, &request, now).await?;
    for _ in 0..2 {
        assert_eq!(
            devices
                .find_device_authorization(&user, now)
                .await
                .must("find")?,
            Some(request.clone())
        );
        assert_eq!(
            devices.find_device(&device, now).await.must("find")?,
            Some(request.clone())
        );
    }
    // Only by its user code: not by the device code, nor any other hash.
    for other in [
        UserCodeHash::from_bytes(*device.as_bytes()),
        fresh_hash("u"),
    ] {
        assert_eq!(
            devices
                .find_device_authorization(&other, now)
                .await
                .must("find")?,
            None
        );
    }
    // And by its device code only: not by the user code, nor any other hash.
    for other in [
        DeviceCodeHash::from_bytes(*user.as_bytes()),
        fresh_hash("d"),
    ] {
        assert_eq!(devices.find_device(&other, now).await.must("find")?, None);
    }
    // Expiry ends the user code index, judged by now.
    assert!(devices
        .find_device_authorization(&user, at(599))
        .await
        .must("find")?
        .is_some());
    assert_eq!(
        devices
            .find_device_authorization(&user, at(600))
            .await
            .must("find")?,
        None
    );
    Ok(())
}

/// A user code held by a live request is not given to another one until the first expires.
pub async fn a_live_user_code_is_not_given_twice(
    devices: Arc<dyn DeviceCodeStore>,
) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let first = device_request(now, 600);
    let (device, user) = saved_device(&devices, &first, now).await?;
    // Another request drawing the same user code while the first is live: refused, not saved.
    let second = fresh_hash("dc2");
    let mut other = device_request(at(10), 600);
    other.client_id = ClientId::new("other-tv");
    assert_eq!(
        devices
            .save_device_authorization(
                &second,
                &user,
                &other,
                device_keep_until(&other),
                &PendingLimits::default(),
                at(10)
            )
            .await
            .must("save")?,
        DeviceSave::UserCodeInUse
    );
    assert_eq!(
        devices.find_device(&second, at(10)).await.must("find")?,
        None
    );
    assert_eq!(
        devices
            .find_device_authorization(&user, at(10))
            .await
            .must("find")?,
        Some(first.clone())
    );
    // Still refused one second before the first expires; taken once it has.
    let early = device_request(at(599), 600);
    assert_eq!(
        devices
            .save_device_authorization(
                &second,
                &user,
                &early,
                device_keep_until(&early),
                &PendingLimits::default(),
                at(599)
            )
            .await
            .must("save")?,
        DeviceSave::UserCodeInUse
    );
    let third = device_request(at(600), 600);
    assert_eq!(
        devices
            .save_device_authorization(
                &second,
                &user,
                &third,
                device_keep_until(&third),
                &PendingLimits::default(),
                at(600)
            )
            .await
            .must("save")?,
        DeviceSave::Saved
    );
    assert_eq!(
        devices
            .find_device_authorization(&user, at(600))
            .await
            .must("find")?,
        Some(third)
    );
    // The first request is still kept for its device, expired.
    assert_eq!(
        devices.find_device(&device, at(600)).await.must("find")?,
        Some(first)
    );
    Ok(())
}

/// A device request takes one decision: the first stands and the user code stops working.
pub async fn device_decisions_are_made_once(
    devices: Arc<dyn DeviceCodeStore>,
) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let request = device_request(now, 600);
    let (device, user) = saved_device(&devices, &request, now).await?;
    let approval = approve("user-1", "read");
    assert_eq!(
        devices
            .decide_device_authorization(&user, &approval, at(1))
            .await
            .must("decide")?,
        DeviceDecided::Decided
    );
    // Decided: the user code stops working, and no second decision is taken.
    assert_eq!(
        devices
            .find_device_authorization(&user, at(1))
            .await
            .must("find")?,
        None
    );
    for decision in [approve("user-2", "read write"), DeviceDecision::Deny] {
        assert_eq!(
            devices
                .decide_device_authorization(&user, &decision, at(2))
                .await
                .must("decide")?,
            DeviceDecided::NotPending
        );
    }
    // The first decision stands, as read and as taken.
    let approved = decided(&request, &approval);
    assert_eq!(
        devices.find_device(&device, at(3)).await.must("find")?,
        Some(approved.clone())
    );
    assert_eq!(
        devices.take_approved(&device, at(3)).await.must("take")?,
        Some(approved)
    );
    // No request, and an expired one, take no decision.
    assert_eq!(
        devices
            .decide_device_authorization(&fresh_hash("u"), &DeviceDecision::Deny, now)
            .await
            .must("decide")?,
        DeviceDecided::NotPending
    );
    let late = device_request(now, 60);
    let (late_device, late_user) = saved_device(&devices, &late, now).await?;
    assert_eq!(
        devices
            .decide_device_authorization(&late_user, &approve("user-1", "read"), at(60))
            .await
            .must("decide")?,
        DeviceDecided::NotPending
    );
    assert_eq!(
        devices
            .find_device(&late_device, at(60))
            .await
            .must("find")?,
        Some(late),
        "nothing was decided"
    );
    // A decided request no longer holds its user code, even before its device hears the
    // decision: a new request may draw it.
    let (denied_device, denied_user) = saved_device(&devices, &request, now).await?;
    assert_eq!(
        devices
            .decide_device_authorization(&denied_user, &DeviceDecision::Deny, at(4))
            .await
            .must("decide")?,
        DeviceDecided::Decided
    );
    let next = device_request(at(5), 600);
    assert_eq!(
        devices
            .save_device_authorization(
                &fresh_hash("dc"),
                &denied_user,
                &next,
                device_keep_until(&next),
                &PendingLimits::default(),
                at(5)
            )
            .await
            .must("save")?,
        DeviceSave::Saved
    );
    assert_eq!(
        devices
            .find_device_authorization(&denied_user, at(5))
            .await
            .must("find")?,
        Some(next)
    );
    assert_eq!(
        devices
            .find_device(&denied_device, at(6))
            .await
            .must("find")?,
        Some(decided(&request, &DeviceDecision::Deny))
    );
    Ok(())
}

/// A poll is recorded by compare-and-set on the last poll: the values given are stored when
/// the request is pending with the last poll expected, and nothing changes otherwise.
pub async fn polls_are_recorded_by_compare_and_set(
    devices: Arc<dyn DeviceCodeStore>,
) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let request = device_request(now, 600);
    let (device, user) = saved_device(&devices, &request, now).await?;
    let record = |expected: (Option<i64>, u64), last: i64, interval: u64, when: i64| {
        let devices = devices.clone();
        async move {
            let (expected, pace) = (
                DevicePace::new(expected.0.map(at), expected.1),
                DevicePace::new(Some(at(last)), interval),
            );
            devices
                .record_poll(&device, &expected, &pace, at(when))
                .await
                .must("record a poll")
        }
    };
    let found = |when: i64| {
        let devices = devices.clone();
        async move { devices.find_device(&device, at(when)).await.must("find") }
    };
    let polled = |last: i64, interval: u64| {
        Some(DeviceAuthorization {
            last_poll: Some(at(last)),
            interval,
            ..request.clone()
        })
    };
    // The first poll: the request had none.
    assert_eq!(record((None, 5), 0, 5, 0).await?, DeviceUpdate::Applied);
    assert_eq!(found(0).await?, polled(0, 5));
    // A write from a stale read (expecting no poll yet) changes nothing.
    assert_eq!(record((None, 5), 1, 10, 1).await?, DeviceUpdate::Conflict);
    assert_eq!(
        record((Some(3), 5), 1, 10, 1).await?,
        DeviceUpdate::Conflict
    );
    assert_eq!(found(1).await?, polled(0, 5));
    // Expecting the pace stored: the values given are stored, whatever they are (the store
    // applies no pace of its own).
    assert_eq!(record((Some(0), 5), 1, 10, 1).await?, DeviceUpdate::Applied);
    assert_eq!(found(1).await?, polled(1, 10));
    // Two polls in the same second leave the last poll as it was: the interval tells a write
    // from a stale read.
    assert_eq!(
        record((Some(1), 10), 1, 15, 1).await?,
        DeviceUpdate::Applied
    );
    assert_eq!(
        record((Some(1), 10), 1, 15, 1).await?,
        DeviceUpdate::Conflict
    );
    assert_eq!(found(1).await?, polled(1, 15));
    assert_eq!(record((Some(1), 15), 2, 3, 2).await?, DeviceUpdate::Applied);
    assert_eq!(found(2).await?, polled(2, 3));
    // The verification page sees the same.
    assert_eq!(
        devices
            .find_device_authorization(&user, at(2))
            .await
            .must("find")?,
        polled(2, 3)
    );
    // No such request: nothing is recorded, nor created.
    let unknown: DeviceCodeHash = fresh_hash("d");
    assert_eq!(
        devices
            .record_poll(
                &unknown,
                &DevicePace::new(None, 5),
                &DevicePace::new(Some(at(2)), 5),
                at(2),
            )
            .await
            .must("record a poll")?,
        DeviceUpdate::Conflict
    );
    assert_eq!(
        devices.find_device(&unknown, at(2)).await.must("find")?,
        None
    );
    // A decided request takes no poll, approved or denied.
    for decision in [approve("user-1", "read"), DeviceDecision::Deny] {
        let (device, user) = saved_device(&devices, &request, now).await?;
        assert_eq!(
            devices
                .decide_device_authorization(&user, &decision, at(1))
                .await
                .must("decide")?,
            DeviceDecided::Decided
        );
        assert_eq!(
            devices
                .record_poll(
                    &device,
                    &DevicePace::new(None, 5),
                    &DevicePace::new(Some(at(2)), 5),
                    at(2),
                )
                .await
                .must("record a poll")?,
            DeviceUpdate::Conflict
        );
        assert_eq!(
            devices.find_device(&device, at(2)).await.must("find")?,
            Some(decided(&request, &decision))
        );
    }
    // Nor does one no longer kept.
    let keep_until = device_keep_until(&request);
    assert_eq!(
        devices
            .record_poll(
                &device,
                &DevicePace::new(Some(at(2)), 3),
                &DevicePace::new(Some(keep_until), 5),
                keep_until,
            )
            .await
            .must("record a poll")?,
        DeviceUpdate::Conflict
    );
    Ok(())
}

/// Reading a device request by its device code changes nothing: it answers the request as
/// saved, with its client, as often as asked.
pub async fn reading_a_device_request_changes_nothing(
    devices: Arc<dyn DeviceCodeStore>,
) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let mut request = device_request(now, 600);
    request.client_id = ClientId::new("other-tv");
    let (device, user) = saved_device(&devices, &request, now).await?;
    for secs in [0, 0, 1, 3] {
        assert_eq!(
            devices.find_device(&device, at(secs)).await.must("find")?,
            Some(request.clone())
        );
    }
    // The reads were no polls: a write expecting none still applies.
    assert_eq!(
        devices
            .record_poll(
                &device,
                &DevicePace::new(None, 5),
                &DevicePace::new(Some(at(4)), 5),
                at(4),
            )
            .await
            .must("record a poll")?,
        DeviceUpdate::Applied
    );
    // An approval is read, not taken, and the user code index is unaffected by the reads.
    let approval = approve("user-1", "read");
    assert_eq!(
        devices
            .decide_device_authorization(&user, &approval, at(5))
            .await
            .must("decide")?,
        DeviceDecided::Decided
    );
    let approved = DeviceAuthorization {
        last_poll: Some(at(4)),
        ..decided(&request, &approval)
    };
    for secs in [6, 7] {
        assert_eq!(
            devices.find_device(&device, at(secs)).await.must("find")?,
            Some(approved.clone())
        );
    }
    assert_eq!(
        devices.take_approved(&device, at(8)).await.must("take")?,
        Some(approved)
    );
    Ok(())
}

/// A denied request is read as denied until it is no longer kept, takes no poll, and is not
/// taken as an approval.
pub async fn a_denied_request_stays_denied_while_kept(
    devices: Arc<dyn DeviceCodeStore>,
) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let request = device_request(now, 600);
    let (device, user) = saved_device(&devices, &request, now).await?;
    assert_eq!(
        devices
            .decide_device_authorization(&user, &DeviceDecision::Deny, at(1))
            .await
            .must("decide")?,
        DeviceDecided::Decided
    );
    let denied = decided(&request, &DeviceDecision::Deny);
    for secs in [1, 1, 2, 599, 600, 1199] {
        assert_eq!(
            devices.find_device(&device, at(secs)).await.must("find")?,
            Some(denied.clone())
        );
        assert_eq!(
            devices
                .take_approved(&device, at(secs))
                .await
                .must("take")?,
            None
        );
    }
    assert_eq!(
        devices.find_device(&device, at(1200)).await.must("find")?,
        None
    );
    Ok(())
}

/// An approval is taken once, whatever the last poll; then the device code is gone. A pending
/// request is not taken.
pub async fn an_approval_is_taken_once(devices: Arc<dyn DeviceCodeStore>) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let request = device_request(now, 600);
    let (device, user) = saved_device(&devices, &request, now).await?;
    assert_eq!(
        devices
            .record_poll(
                &device,
                &DevicePace::new(None, 5),
                &DevicePace::new(Some(at(0)), 5),
                at(0),
            )
            .await
            .must("record a poll")?,
        DeviceUpdate::Applied
    );
    // Pending: not taken, and still there.
    assert_eq!(
        devices.take_approved(&device, at(1)).await.must("take")?,
        None
    );
    assert!(devices
        .find_device(&device, at(1))
        .await
        .must("find")?
        .is_some());
    let approval = approve("user-1", "read");
    assert_eq!(
        devices
            .decide_device_authorization(&user, &approval, at(2))
            .await
            .must("decide")?,
        DeviceDecided::Decided
    );
    // Taken: what it was, with its approval and last poll.
    assert_eq!(
        devices.take_approved(&device, at(3)).await.must("take")?,
        Some(DeviceAuthorization {
            last_poll: Some(at(0)),
            ..decided(&request, &approval)
        })
    );
    // Spent: the device code is gone, even before it would have expired.
    for secs in [3, 10, 600] {
        assert_eq!(
            devices
                .take_approved(&device, at(secs))
                .await
                .must("take")?,
            None
        );
        assert_eq!(
            devices.find_device(&device, at(secs)).await.must("find")?,
            None
        );
    }
    assert_eq!(
        devices
            .find_device_authorization(&user, at(3))
            .await
            .must("find")?,
        None
    );
    Ok(())
}

/// A device request is kept, and found by its device code, past its expiry until the
/// `keep_until` it was saved with, whatever that is; its user code index ends at its expiry.
pub async fn device_requests_are_kept_until_they_were_told(
    devices: Arc<dyn DeviceCodeStore>,
) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let request = device_request(now, 600);
    for kept in [120, 900] {
        let (device, user) = (fresh_hash("dc"), fresh_hash("uc"));
        assert_eq!(
            devices
                .save_device_authorization(
                    &device,
                    &user,
                    &request,
                    at(600 + kept),
                    &PendingLimits::default(),
                    now
                )
                .await
                .must("save")?,
            DeviceSave::Saved
        );
        assert_eq!(
            devices
                .find_device_authorization(&user, at(599))
                .await
                .must("find")?,
            Some(request.clone())
        );
        assert_eq!(
            devices
                .find_device_authorization(&user, at(600))
                .await
                .must("find")?,
            None
        );
        for secs in [599, 600, 600 + kept - 1] {
            assert_eq!(
                devices.find_device(&device, at(secs)).await.must("find")?,
                Some(request.clone()),
                "kept {kept} s past expiry, read at {secs} s"
            );
        }
        assert_eq!(
            devices
                .find_device(&device, at(600 + kept))
                .await
                .must("find")?,
            None
        );
    }
    // An approved request that expired before its device collected it is still read, with
    // its approval (the engine tells the device the code expired).
    let (device, user) = saved_device(&devices, &request, now).await?;
    let approval = approve("user-1", "read");
    assert_eq!(
        devices
            .decide_device_authorization(&user, &approval, at(10))
            .await
            .must("decide")?,
        DeviceDecided::Decided
    );
    assert_eq!(
        devices.find_device(&device, at(600)).await.must("find")?,
        Some(decided(&request, &approval))
    );
    Ok(())
}

/// An approval that was taken is put back when its tokens could not be saved: once, not over
/// anything stored since, nor when there is nothing left to keep; and then kept as told.
pub async fn a_collected_approval_can_be_put_back(
    devices: Arc<dyn DeviceCodeStore>,
) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let request = device_request(now, 600);
    let (device, user) = saved_device(&devices, &request, now).await?;
    let keep_until = device_keep_until(&request);
    // Nothing to put back while the request is stored.
    assert_eq!(
        devices
            .restore_device_approval(&device, &request, keep_until, at(1))
            .await
            .must("restore")?,
        DeviceRestore::Occupied
    );
    assert_eq!(
        devices
            .decide_device_authorization(&user, &approve("user-1", "read"), at(1))
            .await
            .must("decide")?,
        DeviceDecided::Decided
    );
    let collected = devices
        .take_approved(&device, at(2))
        .await
        .must("take")?
        .must("an approval to take")?;
    // Nothing is put back when there is nothing left to keep.
    assert_eq!(
        devices
            .restore_device_approval(&device, &collected, at(3), at(3))
            .await
            .must("restore")?,
        DeviceRestore::Lapsed
    );
    assert_eq!(
        devices.find_device(&device, at(3)).await.must("find")?,
        None
    );
    assert_eq!(
        devices
            .restore_device_approval(&device, &collected, at(700), at(3))
            .await
            .must("restore")?,
        DeviceRestore::Restored
    );
    assert_eq!(
        devices
            .restore_device_approval(&device, &collected, keep_until, at(3))
            .await
            .must("restore")?,
        DeviceRestore::Occupied
    );
    // Put back as it was, without its user code, and kept until the time given with it.
    assert_eq!(
        devices.find_device(&device, at(699)).await.must("find")?,
        Some(collected.clone())
    );
    assert_eq!(
        devices.find_device(&device, at(700)).await.must("find")?,
        None
    );
    assert_eq!(
        devices
            .find_device_authorization(&user, at(4))
            .await
            .must("find")?,
        None
    );
    assert_eq!(
        devices.take_approved(&device, at(4)).await.must("take")?,
        Some(collected.clone())
    );
    assert_eq!(
        devices.take_approved(&device, at(5)).await.must("take")?,
        None
    );
    Ok(())
}

/// Pending authorization requests are bounded per client and in total, and a refused one stores
/// nothing.
pub async fn pending_requests_are_bounded(codes: Arc<dyn CodeStore>) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let limits = PendingLimits {
        per_client: 3,
        total: 5,
    };
    let of = |client: &str, when: OffsetDateTime| {
        let mut request = pending(when, 600);
        request.client_id = ClientId::new(client);
        request
    };
    let save = |id: RequestIdHash, request: PendingAuthorization, when: OffsetDateTime| {
        let codes = codes.clone();
        async move {
            codes
                .save_pending(&id, &request, &limits, when)
                .await
                .must("save")
        }
    };
    let a: Vec<RequestIdHash> = (0..4).map(|i| fresh_hash(&format!("a{i}"))).collect();
    for id in a.iter().take(3) {
        assert_eq!(save(*id, of("a", now), now).await?, Admission::Admitted);
    }
    // The client's bound: refused, with the time until its oldest request expires, and nothing
    // stored.
    match save(a[3], of("a", at(10)), at(10)).await? {
        Admission::Full { retry_after } => assert!(
            retry_after >= Duration::from_secs(1) && retry_after <= Duration::from_secs(600),
            "{retry_after:?}"
        ),
        other => return Err(Failure::new(format!("expected the bound, got {other:?}"))),
    }
    assert_eq!(codes.find_pending(&a[3], at(10)).await.ok(), Some(None));
    // Another client may still, up to the total.
    let b: Vec<RequestIdHash> = (0..3).map(|i| fresh_hash(&format!("b{i}"))).collect();
    assert_eq!(save(b[0], of("b", now), now).await?, Admission::Admitted);
    assert_eq!(save(b[1], of("b", now), now).await?, Admission::Admitted);
    assert!(matches!(
        save(b[2], of("b", now), now).await?,
        Admission::Full { .. }
    ));
    // A decided (taken) request frees its place.
    assert!(codes
        .take_pending(&a[0], at(20))
        .await
        .must("take")?
        .is_some());
    assert_eq!(
        save(b[2], of("b", at(20)), at(20)).await?,
        Admission::Admitted
    );
    assert!(matches!(
        save(a[3], of("a", at(20)), at(20)).await?,
        Admission::Full { .. }
    ));
    // So does expiry.
    assert_eq!(
        save(a[3], of("a", at(600)), at(600)).await?,
        Admission::Admitted
    );
    Ok(())
}

/// Device requests are bounded per client and in total, and a refused one stores nothing.
pub async fn device_requests_are_bounded(devices: Arc<dyn DeviceCodeStore>) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let limits = PendingLimits {
        per_client: 2,
        total: 3,
    };
    let of = |client: &str, when: OffsetDateTime| {
        let mut request = device_request(when, 600);
        request.client_id = ClientId::new(client);
        request
    };
    let save = |request: DeviceAuthorization, when: OffsetDateTime| {
        let devices = devices.clone();
        async move {
            let (device, user) = (fresh_hash("dc"), fresh_hash("uc"));
            let saved = devices
                .save_device_authorization(
                    &device,
                    &user,
                    &request,
                    device_keep_until(&request),
                    &limits,
                    when,
                )
                .await
                .must("save")?;
            Ok((saved, device, user))
        }
    };
    let (saved, tv1, tv1_user) = save(of("tv", now), now).await?;
    assert_eq!(saved, DeviceSave::Saved);
    assert_eq!(save(of("tv", now), now).await?.0, DeviceSave::Saved);
    let (refused, device, user) = save(of("tv", at(1)), at(1)).await?;
    match refused {
        DeviceSave::Full { retry_after } => assert!(
            retry_after >= Duration::from_secs(1) && retry_after <= Duration::from_secs(600),
            "{retry_after:?}"
        ),
        other => return Err(Failure::new(format!("expected the bound, got {other:?}"))),
    }
    // Nothing was stored for it.
    assert_eq!(
        devices.find_device_authorization(&user, at(1)).await.ok(),
        Some(None)
    );
    assert_eq!(devices.find_device(&device, at(1)).await.ok(), Some(None));
    assert_eq!(save(of("other-tv", now), now).await?.0, DeviceSave::Saved);
    assert!(matches!(
        save(of("third-tv", now), now).await?.0,
        DeviceSave::Full { .. }
    ));
    // Taking an approval frees its place (a denied or pending request keeps it).
    assert_eq!(
        devices
            .decide_device_authorization(&tv1_user, &approve("user-1", "read"), at(2))
            .await
            .must("decide")?,
        DeviceDecided::Decided
    );
    assert!(devices
        .take_approved(&tv1, at(3))
        .await
        .must("take")?
        .is_some());
    assert_eq!(save(of("tv", at(4)), at(4)).await?.0, DeviceSave::Saved);
    assert!(matches!(
        save(of("tv", at(5)), at(5)).await?.0,
        DeviceSave::Full { .. }
    ));
    // Expiry frees them all, though expired requests are still kept for late polls.
    assert_eq!(save(of("tv", at(604)), at(604)).await?.0, DeviceSave::Saved);
    assert_eq!(
        save(of("third-tv", at(604)), at(604)).await?.0,
        DeviceSave::Saved
    );
    Ok(())
}

/// An approval for no particular scope (the trait allows it) is taken like any other.
pub async fn an_approval_of_an_empty_scope_is_collected(
    devices: Arc<dyn DeviceCodeStore>,
) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let request = device_request(now, 600);
    let (device, user) = saved_device(&devices, &request, now).await?;
    let approval = approve("user-1", "");
    assert_eq!(
        devices
            .decide_device_authorization(&user, &approval, at(1))
            .await
            .must("decide")?,
        DeviceDecided::Decided
    );
    let approved = decided(&request, &approval);
    assert_eq!(
        devices.find_device(&device, at(2)).await.must("find")?,
        Some(approved.clone())
    );
    assert_eq!(
        devices.take_approved(&device, at(2)).await.must("take")?,
        Some(approved)
    );
    Ok(())
}

/// 100 polls of one pending request, all read before any wrote, race to record themselves:
/// exactly one applies, and its values are the ones stored.
pub async fn poll_record_race_has_one_winner(
    devices: Arc<dyn DeviceCodeStore>,
) -> Result<(), Failure> {
    let now = now();
    let request = device_request(now, 600);
    let (device, _) = saved_device(&devices, &request, now).await?;
    let outcomes = race_ok(100, |i| {
        let devices = devices.clone();
        async move {
            let interval = 100 + u64::try_from(i).unwrap_or(0);
            let update = devices
                .record_poll(
                    &device,
                    &DevicePace::new(None, 5),
                    &DevicePace::new(Some(now), interval),
                    now,
                )
                .await
                .must("record a poll")?;
            Ok((interval, update))
        }
    })
    .await?;
    let winners: Vec<u64> = outcomes
        .iter()
        .filter(|(_, update)| *update == DeviceUpdate::Applied)
        .map(|(interval, _)| *interval)
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        devices.find_device(&device, now).await.must("find")?,
        Some(DeviceAuthorization {
            last_poll: Some(now),
            interval: winners[0],
            ..request
        })
    );
    Ok(())
}

/// 100 polls race to take one approval: exactly one gets it.
pub async fn approval_take_race_has_one_winner(
    devices: Arc<dyn DeviceCodeStore>,
) -> Result<(), Failure> {
    let now = now();
    let request = device_request(now, 600);
    let (device, user) = saved_device(&devices, &request, now).await?;
    assert_eq!(
        devices
            .decide_device_authorization(&user, &approve("user-1", "read"), now)
            .await
            .must("decide")?,
        DeviceDecided::Decided
    );
    let taken = race_ok(100, |_| {
        let devices = devices.clone();
        async move { devices.take_approved(&device, now).await.must("take") }
    })
    .await?;
    let won = taken.iter().filter(|t| t.is_some()).count();
    assert_eq!(won, 1);
    assert_eq!(devices.find_device(&device, now).await.must("find")?, None);
    Ok(())
}

/// 100 decisions, half approvals and half denials, race on one request: exactly one is taken,
/// and it is the one the request shows.
pub async fn device_decision_race_has_one_winner(
    devices: Arc<dyn DeviceCodeStore>,
) -> Result<(), Failure> {
    let now = now();
    let request = device_request(now, 600);
    let (device, user) = saved_device(&devices, &request, now).await?;
    let decisions = race_ok(100, |i| {
        let devices = devices.clone();
        let decision = if i.is_multiple_of(2) {
            approve(&format!("user-{i}"), "read")
        } else {
            DeviceDecision::Deny
        };
        async move {
            let outcome = devices
                .decide_device_authorization(&user, &decision, now)
                .await
                .must("decide")?;
            Ok((decision, outcome))
        }
    })
    .await?;
    let winners: Vec<DeviceDecision> = decisions
        .into_iter()
        .filter(|(_, outcome)| *outcome == DeviceDecided::Decided)
        .map(|(decision, _)| decision)
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        devices.find_device(&device, now).await.must("find")?,
        Some(decided(&request, &winners[0]))
    );
    Ok(())
}

/// A challenge owing a second factor, of the client `clientapp`, living `ttl` seconds from `now`.
pub fn mfa_challenge(now: OffsetDateTime, ttl: i64) -> MfaChallenge {
    MfaChallenge {
        client_id: ClientId::new("clientapp"),
        user_id: UserId::new("user-1"),
        username: Some(Username::new("tom")),
        scope: Scope::parse("read write").unwrap_or_default(),
        show_scope: true,
        resources: vec!["https://api.example.com".to_owned()],
        expires_at: now + time::Duration::seconds(ttl),
    }
}

/// An `mfa_token` is read as often as asked, taken once, and expires by `now`.
pub async fn mfa_tokens_are_read_then_taken_once(mfa: Arc<dyn MfaStore>) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let token = fresh_hash("m");
    let challenge = mfa_challenge(now, 300);
    mfa.save_mfa_token(&token, &challenge, now)
        .await
        .must("save")?;
    // Reading leaves it in place (a wrong one-time code does not spend it).
    for _ in 0..2 {
        assert_eq!(
            mfa.find_mfa_token(&token, now).await.must("find")?,
            Some(challenge.clone())
        );
    }
    assert_eq!(
        mfa.take_mfa_token(&token, at(1)).await.must("take")?,
        Some(challenge)
    );
    assert_eq!(mfa.take_mfa_token(&token, at(1)).await.must("take")?, None);
    assert_eq!(mfa.find_mfa_token(&token, at(1)).await.must("find")?, None);
    assert_eq!(
        mfa.find_mfa_token(&fresh_hash("u"), now)
            .await
            .must("find")?,
        None
    );
    // Expiry, judged by now.
    let short = fresh_hash("s");
    let mut other = mfa_challenge(now, 60);
    other.show_scope = false;
    other.user_id = UserId::new("user-2");
    mfa.save_mfa_token(&short, &other, now).await.must("save")?;
    assert_eq!(
        mfa.find_mfa_token(&short, at(59)).await.must("find")?,
        Some(other)
    );
    assert_eq!(mfa.find_mfa_token(&short, at(60)).await.must("find")?, None);
    assert_eq!(mfa.take_mfa_token(&short, at(60)).await.must("take")?, None);
    Ok(())
}

/// 100 tasks take one `mfa_token` at once: exactly one gets it.
pub async fn mfa_token_race_has_one_winner(mfa: Arc<dyn MfaStore>) -> Result<(), Failure> {
    let now = now();
    let token = fresh_hash("m");
    mfa.save_mfa_token(&token, &mfa_challenge(now, 300), now)
        .await
        .must("save")?;
    let taken = race_ok(100, |_| {
        let mfa = mfa.clone();
        async move { mfa.take_mfa_token(&token, now).await.must("take") }
    })
    .await?;
    assert_eq!(taken.iter().filter(|t| t.is_some()).count(), 1);
    Ok(())
}

/// A one-time code is accepted once, and then no earlier one, until its mark lapses.
pub async fn one_time_codes_only_move_forward(mfa: Arc<dyn MfaStore>) -> Result<(), Failure> {
    let now = now();
    let at = |secs: i64| now + time::Duration::seconds(secs);
    let user = UserId::new(format!("user-{}", FamilyId::generate()));
    let advance = |user: &UserId, counter: u64, until: OffsetDateTime, now: OffsetDateTime| {
        let (mfa, user) = (mfa.clone(), user.clone());
        async move {
            let advance = mfa
                .advance_otp_counter(&user, counter, until, now)
                .await
                .must("advance")?;
            Ok::<_, Failure>(advance == OtpAdvance::Advanced)
        }
    };
    assert!(advance(&user, 7, at(30), now).await?);
    // The same code is refused until `until`, whatever until is asked the second time.
    assert!(!advance(&user, 7, at(30), now).await?);
    assert!(!advance(&user, 7, at(90), at(29)).await?);
    // So is any earlier code: one seen over a shoulder is useless once the user's own is in.
    assert!(!advance(&user, 6, at(30), at(1)).await?);
    // A later code is accepted, and from then on nothing up to it.
    assert!(advance(&user, 9, at(40), at(2)).await?);
    for counter in [7, 8, 9] {
        assert!(!advance(&user, counter, at(90), at(3)).await?, "{counter}");
    }
    // The mark holds until the later of the two ends.
    assert!(!advance(&user, 9, at(90), at(39)).await?);
    // At `until` the mark has lapsed: a code may be taken again.
    assert!(advance(&user, 8, at(90), at(40)).await?);
    assert!(!advance(&user, 8, at(90), at(89)).await?);
    // Another user is independent.
    let other = UserId::new(format!("{}-other", user.as_str()));
    assert!(advance(&other, 3, at(30), now).await?);
    assert!(!advance(&other, 3, at(30), now).await?);
    // An `until` between two seconds is kept at least that long.
    let third = UserId::new(format!("{}-third", user.as_str()));
    let half = at(10) + time::Duration::milliseconds(500);
    assert!(advance(&third, 9, half, now).await?);
    assert!(!advance(&third, 9, half, at(10)).await?);
    assert!(advance(&third, 9, at(20), at(11)).await?);
    Ok(())
}

/// 100 tasks accept one code at once: exactly one is told it was the first; and of codes
/// racing with different counters, only ever higher ones are accepted.
pub async fn one_time_code_race_has_one_winner(mfa: Arc<dyn MfaStore>) -> Result<(), Failure> {
    let now = now();
    let user = UserId::new(format!("user-{}", FamilyId::generate()));
    let until = now + time::Duration::seconds(30);
    let marks = race_ok(100, |_| {
        let (mfa, user) = (mfa.clone(), user.clone());
        async move {
            mfa.advance_otp_counter(&user, 42, until, now)
                .await
                .must("advance")
        }
    })
    .await?;
    assert_eq!(
        marks.iter().filter(|m| **m == OtpAdvance::Advanced).count(),
        1
    );
    let other = UserId::new(format!("user-{}", FamilyId::generate()));
    let accepted = race_ok(20, |i| {
        let (mfa, user) = (mfa.clone(), other.clone());
        let counter = 100 + (i as u64 % 4);
        async move {
            let ok = mfa
                .advance_otp_counter(&user, counter, until, now)
                .await
                .must("advance")?;
            Ok((ok == OtpAdvance::Advanced).then_some(counter))
        }
    })
    .await?;
    let accepted: Vec<u64> = accepted.into_iter().flatten().collect();
    // Each counter at most once, and the highest one always, whatever the order.
    let distinct: HashSet<_> = accepted.iter().collect();
    assert_eq!(distinct.len(), accepted.len(), "{accepted:?}");
    assert!(accepted.contains(&103), "{accepted:?}");
    Ok(())
}

/// Checks that hashes, not tokens, are what a store is handed: the suite's own sanity check.
pub fn hashes_are_distinct() {
    let set: HashSet<_> = (0..100)
        .map(|i| fresh_hash::<TokenHash>(&i.to_string()).to_hex())
        .collect();
    assert_eq!(set.len(), 100);
}

/// Expands to a module `$group` of `#[test]`s, one per check, each running the check on the store
/// `$factory` answers (see [`UnderTest`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($group:ident, $store:ty, $factory:expr; $($check:ident),* $(,)?) => {
        mod $group {
            // The factory expression was written in the enclosing module.
            #[allow(unused_imports)]
            use super::*;

            $(
                #[test]
                fn $check() -> ::std::result::Result<(), $crate::conformance::Failure> {
                    $crate::conformance::__private::run(async {
                        let under_test = $factory;
                        let store: ::std::sync::Arc<$store> =
                            $crate::conformance::UnderTest::<$store>::store(&under_test);
                        $crate::conformance::$check(store).await
                    })
                }
            )*
        }
    };
}

/// Runs the [`TokenStore`](crate::TokenStore) checks on a store: expands to a module
/// `token_store` of `#[test]`s, one per check, each on the store `$factory` answers afresh.
///
/// `$factory` is an expression evaluated inside each test's `async` block (it may `.await`),
/// answering an `Arc` of the store or a tuple `(store, guard)` (see
/// [`UnderTest`](crate::conformance::UnderTest)). Needs the `conformance` feature; see
/// [`conformance`](crate::conformance) for an example.
///
/// The checks: saving and finding (and that an answer of
/// [`find_token_in_memory`](crate::TokenStore::find_token_in_memory), when there is one, is
/// `find_token`'s), expiry by `now`, updates (spending a token once, checking
/// every expectation before writing, inserting without spending, rewriting a spent mark that
/// names the expected successor), revoking one token and whole families (counting only
/// unexpired tokens, refusing new tokens until `remember_until`), tokens that stand alone (in no
/// family), and races: 100 updates of one
/// live token, 100 rewrites of one spent mark, and revocation against an update.
#[macro_export]
macro_rules! token_store_conformance {
    ($factory:expr) => {
        $crate::__conformance_tests!(token_store, dyn $crate::TokenStore, $factory;
            save_and_find, an_in_memory_answer_is_find_tokens, expiry_is_judged_by_now,
            an_update_spends_a_token_once,
            an_update_checks_every_expectation_first, an_update_without_marks_spends_nothing,
            revoke_one, a_standalone_token_stands_alone, revoke_a_family,
            revoke_a_family_counts_only_unexpired_tokens,
            a_revoked_family_takes_no_new_tokens_until_it_is_forgotten,
            update_race_has_one_winner, revoke_family_races_update,
            spent_expectations_name_the_successor, reissue_race_has_one_winner);
    };
}

/// Runs the [`AttemptLimiter`](crate::AttemptLimiter) checks on a limiter: expands to a module
/// `attempt_limiter` of `#[test]`s, one per check, each on the limiter `$factory` answers afresh.
///
/// `$factory` is as for [`token_store_conformance!`](crate::token_store_conformance). The
/// checks: leases of checks in flight, failure windows judged by `now`, lapsed leases counted as
/// failures, and 100 concurrent reservations against a limit of 5.
#[macro_export]
macro_rules! attempt_limiter_conformance {
    ($factory:expr) => {
        $crate::__conformance_tests!(attempt_limiter, dyn $crate::AttemptLimiter, $factory;
            limiter_leases_and_windows, limiter_race_allows_exactly_the_limit);
    };
}

/// Runs the [`CodeStore`](crate::CodeStore) checks on a store: expands to a module `code_store`
/// of `#[test]`s, one per check, each on the store `$factory` answers afresh.
///
/// `$factory` is as for [`token_store_conformance!`](crate::token_store_conformance). The
/// checks: pending authorization requests read, then taken once; codes read, then spent once;
/// used marks kept as asked, until their `keep_until`; a spent code given back once to its
/// family; the bounds on pending requests; and races: spends of one code, give-backs of it,
/// and takes of one pending request.
#[macro_export]
macro_rules! code_store_conformance {
    ($factory:expr) => {
        $crate::__conformance_tests!(code_store, dyn $crate::CodeStore, $factory;
            pending_requests_are_read_then_taken_once, codes_are_read_then_spent_once,
            a_used_mark_is_kept_as_asked, a_spent_code_can_be_given_back,
            code_race_has_one_winner, give_back_race_has_one_winner,
            pending_race_has_one_winner, pending_requests_are_bounded);
    };
}

/// Runs the [`DeviceCodeStore`](crate::DeviceCodeStore) checks on a store: expands to a module
/// `device_code_store` of `#[test]`s, one per check, each on the store `$factory` answers afresh.
///
/// `$factory` is as for [`token_store_conformance!`](crate::token_store_conformance). The
/// checks: requests found by their user code and by their device code, a live user code not
/// given twice, decisions made once (ending the user code), polls recorded by compare-and-set,
/// reads that change nothing, denials kept, approvals taken once (and put back once), an
/// approval of an empty scope, requests kept until the time they were saved with, the bounds
/// on device requests, and races of poll records, of takes and of decisions.
#[macro_export]
macro_rules! device_code_store_conformance {
    ($factory:expr) => {
        $crate::__conformance_tests!(device_code_store, dyn $crate::DeviceCodeStore, $factory;
            device_requests_are_bounded, a_collected_approval_can_be_put_back,
            an_approval_of_an_empty_scope_is_collected,
            device_requests_are_found_by_their_user_code,
            a_live_user_code_is_not_given_twice, device_decisions_are_made_once,
            polls_are_recorded_by_compare_and_set, reading_a_device_request_changes_nothing,
            a_denied_request_stays_denied_while_kept, an_approval_is_taken_once,
            device_requests_are_kept_until_they_were_told, poll_record_race_has_one_winner,
            approval_take_race_has_one_winner, device_decision_race_has_one_winner);
    };
}

/// Runs the [`MfaStore`](crate::MfaStore) checks on a store: expands to a module `mfa_store` of
/// `#[test]`s, one per check, each on the store `$factory` answers afresh.
///
/// `$factory` is as for [`token_store_conformance!`](crate::token_store_conformance). The
/// checks: `mfa_token`s read, then taken once; one-time codes only moving forward; and races
/// for one `mfa_token` and for one code.
#[macro_export]
macro_rules! mfa_store_conformance {
    ($factory:expr) => {
        $crate::__conformance_tests!(mfa_store, dyn $crate::MfaStore, $factory;
            mfa_tokens_are_read_then_taken_once, mfa_token_race_has_one_winner,
            one_time_codes_only_move_forward, one_time_code_race_has_one_winner);
    };
}
