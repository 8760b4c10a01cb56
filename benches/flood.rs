//! The authorization endpoint under a flood: 20,000 requests for the public PKCE client, each
//! with a 3 KB `state`, from 8 concurrent tasks, while another client keeps asking the token
//! endpoint for client-credentials tokens. Prints how many requests were kept, how many were
//! refused (503 with `Retry-After`), how much resident memory grew, and the token endpoint's
//! latency during the flood next to its latency with no flood; once with the default
//! `PendingLimits`, once with limits high enough to keep every request.
//!
//! Each run is a process of its own (the bench starts itself again), so the second run does not
//! reuse memory the first one gave back to the allocator, and each starts from the same RSS.
//!
//! `cargo bench --bench flood` (set `FLOOD` for another count of requests)
#![allow(clippy::disallowed_methods)] // a benchmark reads the wall clock

use std::alloc::System;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use grantor::{
    AuthorizationRequest, AuthorizationServer, AuthorizeOutcome, Client, ClientSecret, GrantType,
    MemoryClientStore, MemoryCodeStore, MemoryTokenStore, PendingLimits, SecretHash, TokenRequest,
};
use sha2::{Digest as _, Sha256};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Set in the child processes: which run to make.
const RUN: &str = "GRANTOR_FLOOD_RUN";
const CALLBACK: &str = "http://localhost:3000/callback";
/// `Authorization` for the service client, `service:service-secret`.
const SERVICE_BASIC: &str = "Basic c2VydmljZTpzZXJ2aWNlLXNlY3JldA==";
/// The size of each flood request's `state`.
const STATE_BYTES: usize = 3 * 1024;
/// Tasks sending the flood, like as many connections.
const FLOODERS: usize = 8;
/// The pause between two token requests: a steady client, not a second flood.
const PACE: Duration = Duration::from_micros(250);
/// How long the token endpoint is measured with no flood.
const QUIET: Duration = Duration::from_secs(1);

fn main() {
    let count: u32 = std::env::var("FLOOD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    if let Ok(run) = std::env::var(RUN) {
        let limits = match run.as_str() {
            "default" => PendingLimits::default(),
            _ => PendingLimits {
                per_client: count,
                total: count,
            },
        };
        flood(count, limits);
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    for run in ["default", "raised"] {
        let status = Command::new(&exe)
            .env(RUN, run)
            .status()
            .expect("run a flood");
        assert!(status.success(), "the {run} run failed: {status}");
    }
}

/// One flood of `count` requests against a server with `limits`, printing what it did.
fn flood(count: u32, limits: PendingLimits) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let codes = Arc::new(MemoryCodeStore::new());
    let tokens = Arc::new(MemoryTokenStore::new());
    let server = server(codes.clone(), tokens.clone(), limits);
    println!(
        "== pending limits {} per client, {} in all ({} worker threads)",
        limits.per_client,
        limits.total,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    rt.block_on(async {
        for _ in 0..1_000 {
            assert_eq!(server.token(token_request()).await.status(), 200);
        }
    });

    // The token endpoint alone.
    let stop = Arc::new(AtomicBool::new(false));
    let quiet = probe(rt.handle().clone(), server.clone(), stop.clone());
    std::thread::sleep(QUIET);
    stop.store(true, Ordering::Relaxed);
    let quiet = quiet.join().expect("probe");

    // The flood, with the token client still asking.
    // Memory is read with the token store emptied, so that it counts only the flood.
    drop_tokens(&tokens);
    let (rss_before, heap_before) = (rss_bytes(), heap_bytes());
    let stop = Arc::new(AtomicBool::new(false));
    let busy = probe(rt.handle().clone(), server.clone(), stop.clone());
    let start = Instant::now();
    let tally = rt.block_on(async {
        let flooders: Vec<_> = (0..FLOODERS)
            .map(|task| tokio::spawn(send(server.clone(), task, count)))
            .collect();
        let mut tally = Tally::default();
        for flooder in flooders {
            tally.add(&flooder.await.expect("flooder"));
        }
        tally
    });
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let busy = busy.join().expect("probe");
    let issued = tokens.len();
    drop_tokens(&tokens);
    let (rss_after, heap_after) = (rss_bytes(), heap_bytes());

    println!(
        "flood: {count} authorize requests with a {STATE_BYTES}-byte state in {:.2} s ({:.0}/s)",
        elapsed.as_secs_f64(),
        f64::from(count) / elapsed.as_secs_f64()
    );
    println!(
        "  kept (pending): {}, refused (503, Retry-After {}): {}, other: {}",
        tally.kept,
        tally.retry_after_range(),
        tally.refused,
        tally.other
    );
    println!("  code store holds {} pending requests", codes.len());
    let heap = (heap_after - heap_before) as f64;
    println!(
        "  resident memory: {:.1} MiB before, {:.1} MiB after: grew {:.1} MiB",
        mib(rss_before as f64),
        mib(rss_after as f64),
        mib((rss_after - rss_before) as f64),
    );
    println!(
        "  heap: grew {:.1} MiB, {:.0} bytes per kept request \
         (the {issued} tokens issued meanwhile purged first)",
        mib(heap),
        heap / f64::from(tally.kept.max(1)),
    );
    println!("  token endpoint, no flood:     {}", latency(quiet));
    println!("  token endpoint, during flood: {}", latency(busy));
}

/// A server with the authorization code grant for the public client `spa` and the client
/// credentials grant for the confidential client `service`, on in-memory stores.
fn server(
    codes: Arc<MemoryCodeStore>,
    tokens: Arc<MemoryTokenStore>,
    limits: PendingLimits,
) -> AuthorizationServer {
    let clients = MemoryClientStore::new();
    clients.insert(
        Client::public("spa")
            .with_redirect_uris([CALLBACK])
            .with_grant_types([GrantType::AuthorizationCode])
            .with_allowed_scope("read write".parse().unwrap_or_default())
            .with_default_scope("read".parse().unwrap_or_default()),
    );
    clients.insert(
        Client::confidential(
            "service",
            SecretHash::new(&ClientSecret::new("service-secret")),
        )
        .with_grant_types([GrantType::ClientCredentials])
        .with_allowed_scope("read".parse().unwrap_or_default())
        .with_default_scope("read".parse().unwrap_or_default()),
    );
    AuthorizationServer::builder(Arc::new(clients), tokens)
        .issuer("https://auth.example.com")
        .enable_authorization_code_grant(codes)
        .enable_client_credentials_grant()
        .pending_request_limits(limits)
        .build()
        .expect("server")
}

fn token_request() -> TokenRequest {
    TokenRequest::form("grant_type=client_credentials").with_authorization(SERVICE_BASIC)
}

/// From a thread of its own, asks for a token every [`PACE`] until `stop`, each in a task of
/// its own handed to the runtime from outside (as a request arriving on a socket), timed from
/// then to its response: so the time it waits behind the flood's tasks counts.
fn probe(
    runtime: tokio::runtime::Handle,
    server: AuthorizationServer,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Duration>> {
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let server = server.clone();
            let start = Instant::now();
            let task = runtime.spawn(async move { server.token(token_request()).await });
            let response = runtime.block_on(task).expect("token task");
            samples.push(start.elapsed());
            assert_eq!(response.status(), 200);
            std::thread::sleep(PACE);
        }
        samples
    })
}

/// What the authorization endpoint answered.
#[derive(Default)]
struct Tally {
    kept: u32,
    refused: u32,
    other: u32,
    retry_after: Option<(u64, u64)>,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.kept += other.kept;
        self.refused += other.refused;
        self.other += other.other;
        if let Some((low, high)) = other.retry_after {
            self.retry_after(low);
            self.retry_after(high);
        }
    }

    fn retry_after(&mut self, seconds: u64) {
        let (low, high) = self.retry_after.unwrap_or((seconds, seconds));
        self.retry_after = Some((low.min(seconds), high.max(seconds)));
    }

    fn retry_after_range(&self) -> String {
        match self.retry_after {
            None => "-".to_owned(),
            Some((low, high)) if low == high => format!("{low} s"),
            Some((low, high)) => format!("{low}-{high} s"),
        }
    }
}

/// Task `task`'s share of the flood: every [`FLOODERS`]th request, each with a state of its own.
async fn send(server: AuthorizationServer, task: usize, count: u32) -> Tally {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(
        b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    ));
    let callback: String = url::form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect();
    let mut tally = Tally::default();
    for i in (0..count).skip(task).step_by(FLOODERS) {
        let mut state = format!("{i:08}");
        state.extend(std::iter::repeat_n('x', STATE_BYTES - state.len()));
        let query = format!(
            "response_type=code&client_id=spa&redirect_uri={callback}&state={state}\
             &code_challenge={challenge}&code_challenge_method=S256"
        );
        match server
            .authorize(AuthorizationRequest::from_query(query))
            .await
        {
            AuthorizeOutcome::Pending { .. } => tally.kept += 1,
            AuthorizeOutcome::Unavailable(error) if error.code().status() == 503 => {
                tally.refused += 1;
                tally.retry_after(error.retry_after().expect("Retry-After"));
            }
            _ => tally.other += 1,
        }
        // A connection waits for its next request: let the other tasks run.
        tokio::task::yield_now().await;
    }
    tally
}

/// p50, p99, max and count of the samples.
fn latency(mut samples: Vec<Duration>) -> String {
    if samples.is_empty() {
        return "no requests".to_owned();
    }
    samples.sort_unstable();
    let at = |p: usize| samples[(samples.len() - 1) * p / 100].as_secs_f64() * 1e6;
    format!(
        "p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs, {} requests",
        at(50),
        at(99),
        at(100),
        samples.len()
    )
}

/// Empties the token store (every token has expired a day from now) and gives its memory back.
fn drop_tokens(tokens: &MemoryTokenStore) {
    tokens.purge_expired(time::OffsetDateTime::now_utc() + time::Duration::days(1));
    assert!(tokens.is_empty());
}

/// The process's resident set (`VmRSS` in `/proc/self/status`), in bytes.
fn rss_bytes() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: i64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// Bytes currently allocated by the whole process.
fn heap_bytes() -> i64 {
    let stats = GLOBAL.stats();
    i64::try_from(stats.bytes_allocated).unwrap_or(i64::MAX)
        - i64::try_from(stats.bytes_deallocated).unwrap_or(i64::MAX)
}

fn mib(bytes: f64) -> f64 {
    bytes / 1_048_576.0
}
