//! Grants per second on each store: the client credentials grant, the password grant (with a
//! verifier that does no hashing), the refresh grant (rotating) and bearer validation, against the
//! in-memory store, Redis on loopback (in memory, no append-only file), PostgreSQL on loopback (a
//! temporary cluster, fsync off) and an SQLite file (WAL), one request at a time and 32 at once.
//! The SQL stores run twice: on a pool of one connection, and on a pool of 16. For Redis it also
//! prints the round trips each request takes (the commands its connection sends, as `redis-cli
//! monitor` sees them). Prints a table.
//!
//! `cargo bench --bench stores` (starts its own redis-server and PostgreSQL cluster: Debian's
//! redis-server and postgresql must be installed)

#![allow(clippy::disallowed_methods)] // a benchmark reads the wall clock

#[path = "../tests/postgres_support/mod.rs"]
mod postgres_support;
#[path = "../tests/redis_support/mod.rs"]
mod redis_support;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use grantor::{
    AuthorizationServer, MemoryAttemptLimiter, MemoryTokenStore, RedisStore, ResourceRequest,
    Scope, SqlStore, TokenRequest,
};
use support::{field, server, BASIC, SERVICE_BASIC};

/// A login as `user`: each worker signs in as its own user, as real traffic would.
fn login(user: usize) -> TokenRequest {
    TokenRequest::form(format!(
        "grant_type=password&username=user{user}&password=123456"
    ))
    .with_authorization(BASIC)
}

#[derive(Clone, Copy)]
enum Op {
    ClientCredentials,
    Password,
    Refresh,
    Bearer,
}

/// One worker: `n` requests of `op`, one after another.
async fn worker(server: AuthorizationServer, op: Op, user: usize, n: usize) {
    let first = server.token(login(user)).await;
    let mut refresh = field(&first, "refresh_token");
    let access = field(&first, "access_token");
    let validator = server.bearer_validator();
    let bearer = ResourceRequest::new().with_authorization(format!("Bearer {access}"));
    let read: Scope = "read".parse().unwrap_or_default();
    for _ in 0..n {
        match op {
            Op::ClientCredentials => assert_eq!(
                server
                    .token(
                        TokenRequest::form("grant_type=client_credentials")
                            .with_authorization(SERVICE_BASIC)
                    )
                    .await
                    .status(),
                200
            ),
            Op::Password => assert_eq!(server.token(login(user)).await.status(), 200),
            Op::Refresh => {
                let r = server
                    .token(
                        TokenRequest::form(format!(
                            "grant_type=refresh_token&refresh_token={refresh}"
                        ))
                        .with_authorization(BASIC),
                    )
                    .await;
                assert_eq!(r.status(), 200);
                refresh = field(&r, "refresh_token");
            }
            Op::Bearer => assert!(validator.validate(&bearer, &read).await.is_ok()),
        }
    }
}

/// Requests per second with `concurrency` workers doing `total` requests between them.
async fn measure(server: &AuthorizationServer, op: Op, concurrency: usize, total: usize) -> f64 {
    let per = total / concurrency;
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|user| tokio::spawn(worker(server.clone(), op, user, per)))
        .collect();
    for t in tasks {
        t.await.expect("worker");
    }
    let elapsed = start.elapsed().max(Duration::from_micros(1));
    (per * concurrency) as f64 / elapsed.as_secs_f64()
}

/// The round trips one `op` takes on `server` (a Redis one), over 200 requests after a worker's
/// own sign-in.
async fn round_trips(server: &AuthorizationServer, url: &str, op: Op) -> f64 {
    const REQUESTS: usize = 200;
    let mut monitor = redis_support::Monitor::start(url).await;
    worker(server.clone(), op, 0, 0).await;
    monitor.mark().await;
    worker(server.clone(), op, 0, REQUESTS).await;
    let counts = monitor.stop().await;
    let (sign_in, with_requests) = (counts[0], counts[1]);
    with_requests.saturating_sub(sign_in) as f64 / REQUESTS as f64
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let redis_server = redis_support::RedisServer::start_ephemeral();
    rt.block_on(async {
        let redis = Arc::new(
            RedisStore::connect(&redis_server.url())
                .await
                .expect("redis"),
        );
        let memory = Arc::new(MemoryTokenStore::new());
        let sqlite_dir = std::env::temp_dir().join(format!("grantor-bench-{}", std::process::id()));
        std::fs::create_dir_all(&sqlite_dir).expect("folder");
        let mut backends = vec![
            (
                "memory",
                server(memory, Arc::new(MemoryAttemptLimiter::new())),
            ),
            ("redis", server(redis.clone(), redis)),
        ];
        for (name, connections) in [("postgres 1", 1), ("postgres 16", 16)] {
            let store = Arc::new(postgres(connections).await);
            backends.push((name, server(store.clone(), store)));
        }
        for (name, connections) in [("sqlite 1", 1), ("sqlite 16", 16)] {
            let file = sqlite_dir.join(format!("{connections}.db"));
            let store = Arc::new(sqlite(&file, connections).await);
            backends.push((name, server(store.clone(), store)));
        }
        println!(
            "{:<12} {:<22} {:>14} {:>14} {:>18}",
            "store", "request", "1 at a time/s", "32 at once/s", "round trips"
        );
        for (name, server) in &backends {
            for (label, op, total) in [
                ("client credentials", Op::ClientCredentials, 20_000),
                ("password grant", Op::Password, 20_000),
                ("refresh grant", Op::Refresh, 20_000),
                ("bearer validation", Op::Bearer, 50_000),
            ] {
                let sequential = measure(server, op, 1, total / 4).await;
                let concurrent = measure(server, op, 32, total).await;
                let per = if *name == "redis" {
                    format!("{:.2}", round_trips(server, &redis_server.url(), op).await)
                } else {
                    "-".to_owned()
                };
                println!("{name:<12} {label:<22} {sequential:>14.0} {concurrent:>14.0} {per:>18}");
            }
        }
    });
    let _ = std::fs::remove_dir_all(
        std::env::temp_dir().join(format!("grantor-bench-{}", std::process::id())),
    );
}

/// A store on the bench's PostgreSQL cluster, on a pool of `connections`.
async fn postgres(connections: u32) -> SqlStore {
    let url = postgres_support::PostgresServer::shared().url();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(connections)
        .connect(url)
        .await
        .expect("a pool on the bench's cluster");
    let store = SqlStore::postgres(pool);
    store.migrate().await.expect("migrate");
    store
}

/// A store on the SQLite file `file`, on a pool of `connections`.
async fn sqlite(file: &std::path::Path, connections: u32) -> SqlStore {
    let options = SqlStore::sqlite_options(file.to_str().expect("a UTF-8 path"))
        .expect("options")
        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(connections)
        .connect_with(options)
        .await
        .expect("sqlite");
    let store = SqlStore::sqlite(pool);
    store.migrate().await.expect("migrate");
    store
}
