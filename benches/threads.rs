//! One thread against two on one server with in-memory stores: client credentials requests, and
//! bearer validations, each thread with a current-thread runtime of its own. No counting
//! allocator here (the memory bench has one, and its counters, shared by every thread, would be
//! what the threads wait on).
//!
//! `cargo bench --bench threads` (set `REQUESTS` for the requests each thread makes)

#![allow(clippy::disallowed_methods)] // a benchmark reads the wall clock

mod support;

use std::sync::Arc;
use std::time::Instant;

use grantor::{
    AuthorizationServer, MemoryAttemptLimiter, MemoryTokenStore, ResourceRequest, Scope,
    TokenRequest,
};

fn server() -> AuthorizationServer {
    support::server(
        Arc::new(MemoryTokenStore::new()),
        Arc::new(MemoryAttemptLimiter::new()),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

fn request() -> TokenRequest {
    TokenRequest::form("grant_type=client_credentials").with_authorization(support::SERVICE_BASIC)
}

/// Requests per second of `threads` threads each running `work` on its own runtime.
fn rate(threads: usize, n: usize, work: impl Fn(&tokio::runtime::Runtime) + Sync) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| work(&runtime()));
        }
    });
    (threads * n) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let n: usize = std::env::var("REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let read: Scope = "read".parse().unwrap_or_default();
    for round in 1..=3 {
        // Issuing: each thread asks for `n` tokens, on a fresh server for each count.
        let [one, two] = [1, 2].map(|threads| {
            let issuing = server();
            let issue = |rt: &tokio::runtime::Runtime| {
                rt.block_on(async {
                    for _ in 0..n {
                        assert_eq!(issuing.token(request()).await.status(), 200);
                    }
                })
            };
            rate(threads, n, issue)
        });
        println!(
            "round {round}: client credentials: one thread {one:.0}/s, two threads {two:.0}/s ({:.2}x)",
            two / one
        );

        // Validating: 10,000 tokens, each thread validating all of them over and over.
        let validating = server();
        let rt = runtime();
        let requests: Vec<ResourceRequest> = (0..10_000)
            .map(|_| {
                let r = rt.block_on(validating.token(request()));
                let json: serde_json::Value = serde_json::from_slice(r.body()).expect("json");
                let token = json["access_token"].as_str().expect("token").to_owned();
                ResourceRequest::new().with_authorization(format!("Bearer {token}"))
            })
            .collect();
        let validator = validating.bearer_validator();
        let validate = |rt: &tokio::runtime::Runtime| {
            rt.block_on(async {
                for i in 0..n {
                    let request = &requests[i % requests.len()];
                    assert!(validator.validate(request, &read).await.is_ok());
                }
            })
        };
        let one = rate(1, n, validate);
        let two = rate(2, n, validate);
        println!(
            "round {round}: bearer validation: one thread {one:.0}/s, two threads {two:.0}/s ({:.2}x)",
            two / one
        );
    }
}
