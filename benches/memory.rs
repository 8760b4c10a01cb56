//! Tokens per second and store memory per live token: issues 1,000,000 client-credentials
//! tokens into the in-memory store, and prints
//!
//! - the issue and validation rates with 1,000 tokens live and with the full count (so a store
//!   that slows down as it grows shows it),
//! - the bytes the store holds per live token,
//! - how much faster two threads validate, and issue and validate, on the one store than one
//!   thread does,
//! - and, once time has moved past every token's expiry, the memory the purge gave back.
//!
//! `cargo bench --bench memory` (set `TOKENS` for another count)

// A benchmark reads the wall clock.
#![allow(clippy::disallowed_methods)]

use std::alloc::System;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grantor::{
    AccessToken, AuthorizationServer, Client, ClientSecret, GrantType, ManualClock,
    MemoryClientStore, MemoryTokenStore, ResourceRequest, Scope, SecretHash, TokenHash,
    TokenLookup, TokenRequest, TokenSave, TokenStore,
};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// How many tokens each timed batch issues or validates.
const BATCH: usize = 20_000;
/// How many requests each thread makes when one and two threads are compared.
const PER_THREAD: usize = 50_000;

/// Bytes currently allocated by the whole process.
fn live_bytes() -> i64 {
    // stats_alloc already counts a reallocation's change in bytes_allocated/deallocated.
    let stats = GLOBAL.stats();
    i64::try_from(stats.bytes_allocated).unwrap_or(i64::MAX)
        - i64::try_from(stats.bytes_deallocated).unwrap_or(i64::MAX)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

fn request() -> TokenRequest {
    TokenRequest::form("grant_type=client_credentials")
        .with_authorization("Basic c2VydmljZTpzZXJ2aWNlLXNlY3JldA==")
}

/// Issues one token, answering it.
async fn issue(server: &AuthorizationServer) -> String {
    let response = server.token(request()).await;
    assert_eq!(response.status(), 200);
    let json: serde_json::Value = serde_json::from_slice(response.body()).expect("json");
    json["access_token"].as_str().expect("token").to_owned()
}

/// Issues `n` tokens, keeping every `keep_every`-th; answers the seconds it took.
fn issue_many(
    rt: &tokio::runtime::Runtime,
    server: &AuthorizationServer,
    n: usize,
    keep_every: usize,
    kept: &mut Vec<String>,
) -> f64 {
    let start = Instant::now();
    rt.block_on(async {
        for i in 0..n {
            let response = server.token(request()).await;
            assert_eq!(response.status(), 200);
            if i % keep_every == 0 && kept.len() < kept.capacity() {
                let json: serde_json::Value =
                    serde_json::from_slice(response.body()).expect("json");
                kept.push(json["access_token"].as_str().expect("token").to_owned());
            }
        }
    });
    start.elapsed().as_secs_f64()
}

/// A validation request for each token, carrying it in the `Authorization` header.
fn bearer_requests(tokens: &[String]) -> Vec<ResourceRequest> {
    tokens
        .iter()
        .map(|t| ResourceRequest::new().with_authorization(format!("Bearer {t}")))
        .collect()
}

/// Validates each of `tokens` once; answers the seconds it took.
fn validate_all(
    rt: &tokio::runtime::Runtime,
    server: &AuthorizationServer,
    tokens: &[String],
) -> f64 {
    let validator = server.bearer_validator();
    let read: Scope = "read".parse().expect("scope");
    let requests = bearer_requests(tokens);
    let start = Instant::now();
    rt.block_on(async {
        for request in &requests {
            assert!(validator.validate(request, &read).await.is_ok());
        }
    });
    start.elapsed().as_secs_f64()
}

/// Issues a token and validates it, `n` times on each of `threads` threads; answers requests
/// (issues and validations) per second.
fn issue_and_validate(server: &AuthorizationServer, threads: usize, n: usize) -> f64 {
    let read: Scope = "read".parse().expect("scope");
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let rt = runtime();
                let validator = server.bearer_validator();
                rt.block_on(async {
                    for _ in 0..n {
                        let token = issue(server).await;
                        let request =
                            ResourceRequest::new().with_authorization(format!("Bearer {token}"));
                        assert!(validator.validate(&request, &read).await.is_ok());
                    }
                });
            });
        }
    });
    (2 * threads * n) as f64 / start.elapsed().as_secs_f64()
}

/// Validates each of `tokens` `passes` times on each of `threads` threads, every thread starting
/// at a point of its own; answers validations per second. The same tokens over and over stay in
/// the caches: this shows what the threads share (locks, reference counts), not memory misses.
fn validate_threads(
    server: &AuthorizationServer,
    tokens: &[String],
    threads: usize,
    passes: usize,
) -> f64 {
    let read: Scope = "read".parse().expect("scope");
    let requests = bearer_requests(tokens);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (requests, read) = (&requests, &read);
            s.spawn(move || {
                let rt = runtime();
                let validator = server.bearer_validator();
                let offset = t * requests.len() / threads.max(1);
                rt.block_on(async {
                    for _ in 0..passes {
                        for request in requests.iter().cycle().skip(offset).take(requests.len()) {
                            assert!(validator.validate(request, read).await.is_ok());
                        }
                    }
                });
            });
        }
    });
    (threads * passes * requests.len()) as f64 / start.elapsed().as_secs_f64()
}

/// Saves a client-credentials token's record and looks it up, `n` times on each of `threads`
/// threads, on the store alone; answers steps (saves and lookups) per second.
fn save_and_find(
    store: &MemoryTokenStore,
    threads: usize,
    n: usize,
    now: time::OffsetDateTime,
) -> f64 {
    let record = grantor::conformance::standalone_record("service", now, 3600);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let rt = runtime();
                for _ in 0..n {
                    let hash = TokenHash::of_access_token(&AccessToken::generate());
                    let saved = rt.block_on(store.save_tokens(&[(hash, record.clone())], now));
                    assert_eq!(saved.ok(), Some(TokenSave::Saved));
                    let found = store.find_token_in_memory(&hash, now);
                    assert!(matches!(found, Some(Ok(TokenLookup::Live(_)))));
                }
            });
        }
    });
    (2 * threads * n) as f64 / start.elapsed().as_secs_f64()
}

fn rate(n: usize, secs: f64) -> f64 {
    n as f64 / secs
}

fn main() {
    let count: usize = std::env::var("TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
        .max(2_000);
    let clients = MemoryClientStore::new();
    clients.insert(
        Client::confidential(
            "service",
            SecretHash::new(&ClientSecret::new("service-secret")),
        )
        .with_grant_types([GrantType::ClientCredentials])
        .with_allowed_scope("read".parse().unwrap_or_default())
        .with_default_scope("read".parse().unwrap_or_default()),
    );
    let start_time = time::OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let clock = Arc::new(ManualClock::new(start_time));
    let tokens = Arc::new(MemoryTokenStore::new());
    let server = AuthorizationServer::builder(Arc::new(clients), tokens.clone())
        .enable_client_credentials_grant()
        .clock(clock.clone())
        .build()
        .expect("server");
    let rt = runtime();

    // Tokens kept to validate later: a batch issued at 1,000 live, and a batch drawn evenly
    // from the whole fill. Their room is taken before counting; their strings are subtracted.
    let mut early = Vec::with_capacity(BATCH);
    let mut spread = Vec::with_capacity(BATCH);
    let before = live_bytes();

    // With 1,000 live: issue a batch, then validate it.
    let mut ignored = Vec::new();
    let mut fill_secs = issue_many(&rt, &server, 1_000, usize::MAX, &mut ignored);
    let issue_small = issue_many(&rt, &server, BATCH, 1, &mut early);
    fill_secs += issue_small;
    let validate_small = validate_all(&rt, &server, &early);

    // Fill to the full count, keeping tokens from all along it.
    let rest = count.saturating_sub(1_000 + BATCH);
    fill_secs += issue_many(&rt, &server, rest, (rest / BATCH).max(1), &mut spread);
    let issued = tokens.len();
    let kept_bytes: usize = early
        .iter()
        .chain(&spread)
        .map(String::capacity)
        .sum::<usize>();
    let after = live_bytes() - i64::try_from(kept_bytes).unwrap_or(0);
    println!(
        "issued {issued} tokens in {fill_secs:.2} s: {:.0} tokens/s",
        rate(issued, fill_secs)
    );
    println!(
        "store holds {issued} entries, {:.0} bytes per live token ({:.1} MiB in all)",
        (after - before) as f64 / issued as f64,
        (after - before) as f64 / 1_048_576.0
    );

    // With the full count live: validate tokens from all along the fill, then issue a batch.
    let validate_full = validate_all(&rt, &server, &spread);
    let mut more = Vec::new();
    let issue_full = issue_many(&rt, &server, BATCH, usize::MAX, &mut more);
    println!(
        "issue: {:.0}/s with 1000 live, {:.0}/s with {issued} live ({:.2}x the cost)",
        rate(BATCH, issue_small),
        rate(BATCH, issue_full),
        issue_full / issue_small
    );
    println!(
        "validation: {:.0}/s with 1000 live, {:.0}/s with {issued} live ({:.2}x the cost)",
        rate(early.len(), validate_small),
        rate(spread.len(), validate_full),
        (validate_full / spread.len() as f64) / (validate_small / early.len() as f64)
    );

    // One thread, then two, on the one store: the store alone saving and finding tokens, then
    // whole requests through the server; the best of three runs each, taken in turns (a shared
    // machine is noisy). Every allocation updates the counting allocator's counters, which the
    // threads share; whole requests make dozens, so for them that sharing, not the store, caps
    // the figure.
    let best = |f: &dyn Fn(usize) -> f64| {
        (0..3).fold((0.0f64, 0.0f64), |(one, two), _| {
            (one.max(f(1)), two.max(f(2)))
        })
    };
    let (one, two) = best(&|threads| validate_threads(&server, &spread, threads, 5));
    println!(
        "server, validate with {issued} live: one thread {one:.0}/s, two threads {two:.0}/s ({:.2}x)",
        two / one
    );
    let now = grantor::Clock::now(clock.as_ref());
    let (one, two) = best(&|threads| save_and_find(&tokens, threads, 4 * PER_THREAD, now));
    println!(
        "store alone, save+find: one thread {one:.0} steps/s, two threads {two:.0} steps/s ({:.2}x)",
        two / one
    );
    let (one, two) = best(&|threads| issue_and_validate(&server, threads, PER_THREAD));
    println!(
        "server, issue+validate: one thread {one:.0} requests/s, two threads {two:.0} requests/s ({:.2}x)",
        two / one
    );

    // An hour later every token has expired; the purge gives the memory back.
    // (The kept tokens go too; the room for them was taken before counting.)
    early.clear();
    spread.clear();
    drop(more);
    clock.advance(Duration::from_secs(3601));
    tokens.purge_expired(start_time + Duration::from_secs(3601));
    let purged = live_bytes();
    println!(
        "after expiry and purge: {} entries, {:.1} MiB still held by the store",
        tokens.len(),
        (purged - before).max(0) as f64 / 1_048_576.0
    );
}
