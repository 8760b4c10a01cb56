//! Tokens per second and store memory per live token: issues 1,000,000 client-credentials
//! tokens into the in-memory store, prints the rate and the bytes the store holds per token,
//! then moves time past their expiry and shows the memory given back by the purge.
//!
//! `cargo bench --bench memory` (set `TOKENS` for another count)

use std::alloc::System;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grantor::{
    AuthorizationServer, Client, ClientSecret, GrantType, ManualClock, MemoryClientStore,
    MemoryTokenStore, SecretHash, TokenRequest,
};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes currently allocated by the whole process.
fn live_bytes() -> i64 {
    // stats_alloc already counts a reallocation's change in bytes_allocated/deallocated.
    let stats = GLOBAL.stats();
    i64::try_from(stats.bytes_allocated).unwrap_or(i64::MAX)
        - i64::try_from(stats.bytes_deallocated).unwrap_or(i64::MAX)
}

#[allow(clippy::disallowed_methods)] // a benchmark reads the wall clock
fn main() {
    let count: usize = std::env::var("TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
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
    let clock = Arc::new(ManualClock::new(
        time::OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ));
    let tokens = Arc::new(MemoryTokenStore::new());
    let server = AuthorizationServer::builder(Arc::new(clients), tokens.clone())
        .enable_client_credentials_grant()
        .clock(clock.clone())
        .build()
        .expect("server");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let request = || {
        TokenRequest::form("grant_type=client_credentials")
            .with_authorization("Basic c2VydmljZTpzZXJ2aWNlLXNlY3JldA==")
    };

    let before = live_bytes();
    let start = Instant::now();
    rt.block_on(async {
        for _ in 0..count {
            let response = server.token(request()).await;
            assert_eq!(response.status(), 200);
        }
    });
    let elapsed = start.elapsed();
    let after = live_bytes();
    let per_token = (after - before) as f64 / count as f64;
    println!(
        "issued {count} tokens in {:.2} s: {:.0} tokens/s",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    println!(
        "store holds {} entries, {:.0} bytes per live token ({:.1} MiB in all)",
        tokens.len(),
        per_token,
        (after - before) as f64 / 1_048_576.0
    );

    // An hour later every token has expired; the purge gives the memory back.
    clock.advance(Duration::from_secs(3601));
    tokens.purge_expired(
        time::OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + 3601),
    );
    let purged = live_bytes();
    println!(
        "after expiry and purge: {} entries, {:.1} MiB still held by the store",
        tokens.len(),
        (purged - before).max(0) as f64 / 1_048_576.0
    );
}
