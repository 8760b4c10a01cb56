//! Timing, allocation counting and the request shapes every implementation is handed.

use std::alloc::System;
use std::time::{Duration, Instant};

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// How long and how often to measure: `RUNS` runs of about `SECS` seconds each, and `TOKENS` live
/// tokens for the memory and validation scenarios (environment variables of the same names).
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub runs: usize,
    pub run_time: Duration,
    pub tokens: usize,
}

impl Settings {
    pub fn from_env() -> Self {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        }
        Settings {
            runs: var("RUNS", 5usize).max(1),
            run_time: Duration::from_secs_f64(var("SECS", 1.0f64).max(0.01)),
            tokens: var("TOKENS", 1_000_000usize).max(1_000),
        }
    }
}

/// Bytes the whole process holds right now.
pub fn live_bytes() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// Allocation calls so far (reallocations counted apart).
pub fn allocations() -> (usize, usize) {
    let s = GLOBAL.stats();
    (s.allocations, s.reallocations)
}

/// Operations per second of `batch(n)` (which does `n` operations): first doubles `n` until a
/// batch takes 100 ms (a warm-up that also sizes the runs), then `runs` timed batches of about
/// `run_time` each. One figure per run.
pub fn rates(settings: &Settings, mut batch: impl FnMut(u64)) -> Vec<f64> {
    timed_rates(settings, |n| {
        let start = Instant::now();
        batch(n);
        start.elapsed()
    })
}

/// As [`rates`], for a batch that times itself and answers how long its `n` operations took
/// (so that it can build their inputs first, outside the time).
pub fn timed_rates(settings: &Settings, mut batch: impl FnMut(u64) -> Duration) -> Vec<f64> {
    let mut n = 8u64;
    let rate = loop {
        let took = batch(n);
        if took >= Duration::from_millis(100) || n >= 1 << 30 {
            break n as f64 / took.as_secs_f64();
        }
        n *= 2;
    };
    let per_run = ((rate * settings.run_time.as_secs_f64()) as u64).max(1);
    (0..settings.runs)
        .map(|_| per_run as f64 / batch(per_run).as_secs_f64())
        .collect()
}

/// Operations per second of `runs` batches of exactly `per_run` operations.
pub fn fixed_rates(runs: usize, per_run: u64, mut batch: impl FnMut(u64)) -> Vec<f64> {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            batch(per_run);
            per_run as f64 / start.elapsed().as_secs_f64()
        })
        .collect()
}

/// Allocation calls per operation of `batch(n)`, less `baseline(n)`'s (the requests the harness
/// builds for it), over `n` operations after one warm-up batch.
pub fn allocs_per_op(n: u64, mut batch: impl FnMut(u64), mut baseline: impl FnMut(u64)) -> f64 {
    batch(n.min(64));
    let (a0, r0) = allocations();
    batch(n);
    let (a1, r1) = allocations();
    baseline(n);
    let (a2, r2) = allocations();
    let op = (a1 - a0 + r1 - r0) as f64;
    let harness = (a2 - a1 + r2 - r1) as f64;
    (op - harness) / n as f64
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        len if len % 2 == 1 => v[len / 2],
        len => (v[len / 2 - 1] + v[len / 2]) / 2.0,
    }
}

/// The demo's clients, as every implementation registers them.
pub const SERVICE_ID: &str = "service";
pub const SERVICE_SECRET: &str = "service-secret";
/// `service:service-secret`.
pub const SERVICE_BASIC: &str = "Basic c2VydmljZTpzZXJ2aWNlLXNlY3JldA==";
/// `service:wrong-secret`.
pub const WRONG_BASIC: &str = "Basic c2VydmljZTp3cm9uZy1zZWNyZXQ=";
pub const WEBAPP_ID: &str = "webapp";
pub const WEBAPP_SECRET: &str = "web-secret";
/// `webapp:web-secret`.
pub const WEBAPP_BASIC: &str = "Basic d2ViYXBwOndlYi1zZWNyZXQ=";
pub const CALLBACK: &str = "https://app.example.com/cb";
pub const CALLBACK_ENCODED: &str = "https%3A%2F%2Fapp.example.com%2Fcb";
/// RFC 7636 appendix B (its challenge, `E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM`, is in
/// [`authorize_request`]).
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const USER: &str = "user-tom";
pub const ISSUER: &str = "https://auth.example.com";

pub type HttpRequest = http::Request<String>;

/// `POST /token` with a form body, as a server framework hands it over.
pub fn token_request(form: String, authorization: &str) -> HttpRequest {
    http::Request::builder()
        .method(http::Method::POST)
        .uri("/token")
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::AUTHORIZATION, authorization)
        .body(form)
        .expect("request")
}

pub fn cc_request(authorization: &str) -> HttpRequest {
    token_request("grant_type=client_credentials".to_owned(), authorization)
}

/// `GET /authorize?…`: a code request for `webapp` with a PKCE S256 challenge.
pub fn authorize_request() -> HttpRequest {
    http::Request::builder()
        .method(http::Method::GET)
        .uri(concat!(
            "/authorize?response_type=code&client_id=webapp",
            "&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&scope=read&state=xyz",
            "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "&code_challenge_method=S256"
        ))
        .body(String::new())
        .expect("request")
}

pub fn exchange_request(code: &str) -> HttpRequest {
    token_request(
        format!(
            "grant_type=authorization_code&code={}&redirect_uri={CALLBACK_ENCODED}&code_verifier={VERIFIER}",
            encode(code)
        ),
        WEBAPP_BASIC,
    )
}

pub fn refresh_request(refresh_token: &str) -> HttpRequest {
    token_request(
        format!(
            "grant_type=refresh_token&refresh_token={}",
            encode(refresh_token)
        ),
        WEBAPP_BASIC,
    )
}

/// `GET /api/users` with a bearer token.
pub fn resource_request(access_token: &str) -> HttpRequest {
    http::Request::builder()
        .method(http::Method::GET)
        .uri("/api/users")
        .header(
            http::header::AUTHORIZATION,
            format!("Bearer {access_token}"),
        )
        .body(String::new())
        .expect("request")
}

/// Percent-encoding for a form value (oxide-auth's tokens are standard base64: `+`, `/`, `=`).
pub fn encode(value: &str) -> std::borrow::Cow<'_, str> {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// What a token endpoint answered: the status and the body as written to the wire.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    /// A string member of the JSON body, found without parsing the whole document (every
    /// implementation here writes compact JSON).
    pub fn field(&self, name: &str) -> Option<&str> {
        json_field(&self.body, name)
    }
}

pub fn json_field<'a>(body: &'a [u8], name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(body).ok()?;
    let mut from = 0;
    while let Some(at) = text[from..].find(name) {
        let start = from + at;
        let end = start + name.len();
        if text[..start].ends_with('"') && text[end..].starts_with("\":\"") {
            let value = &text[end + 3..];
            return value.find('"').map(|len| &value[..len]);
        }
        from = end;
    }
    None
}

/// The `code` parameter of a redirect's `Location`.
pub fn code_of(location: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
}
