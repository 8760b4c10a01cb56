//! grantor, oauth-as 1.0.1, oxide-auth 0.6.1 and a floor, side by side: one process, one
//! thread, no HTTP server, in-memory stores. Every implementation is handed the same
//! `http::Request`s and answers what would be written to the wire. See README.md.
//!
//! `cargo run --release` (settings: `RUNS`, `SECS`, `TOKENS`)

// A benchmark reads the wall clock (the repository's clippy.toml reserves it for the engine's
// injected `Clock`).
#![allow(clippy::disallowed_methods)]

mod floor;
mod grantor_side;
mod harness;
mod oauth_as_side;
mod oxide_side;
mod scaling;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use harness::{
    allocs_per_op, authorize_request, cc_request, code_of, exchange_request, live_bytes, median,
    rates, refresh_request, resource_request, timed_rates, HttpRequest, Reply, Settings,
    SERVICE_BASIC, WRONG_BASIC,
};
use tokio::runtime::Runtime;

/// One implementation, driven through what a host hands it.
pub(crate) trait Side {
    const NAME: &'static str;
    /// `POST /token`.
    async fn token(&self, request: HttpRequest) -> Reply;
    /// `GET /authorize?…` for a signed-in user who approves: the redirect's `Location`.
    async fn authorize(&self, request: HttpRequest) -> Option<String>;
    /// Whether the request's bearer token is live and carries scope `read`.
    async fn validate(&self, request: &HttpRequest) -> bool;
}

/// The bearer token of a request's `Authorization` header, if it has one.
pub fn bearer_of(request: &HttpRequest) -> Option<&str> {
    request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
}

/// The token of an `Authorization: Bearer …` value (scheme matched without regard to case).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim_start())
}

/// A failed check: say what and stop with a non-zero status.
#[derive(Debug)]
pub struct Failed(String);

pub fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), Failed> {
    if ok {
        Ok(())
    } else {
        Err(Failed(what()))
    }
}

/// Like [`ensure`], inside a timed loop, where a refusal means the figures would be wrong.
pub fn must(ok: bool, what: &str) {
    if !ok {
        eprintln!("error: {what}");
        std::process::exit(1);
    }
}

pub const COLUMNS: [&str; 4] = [
    grantor_side::Grantor::NAME,
    oauth_as_side::OauthAs::NAME,
    oxide_side::Oxide::NAME,
    "floor",
];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Row {
    ClientCredentials,
    CodeFlow,
    Refresh,
    Validation,
    Memory,
    AllocCc,
    AllocCode,
    AllocRefresh,
    AllocValidation,
}

impl Row {
    fn label(self, tokens: usize) -> String {
        match self {
            Row::ClientCredentials => "1. client credentials, HTTP Basic (req/s)".into(),
            Row::CodeFlow => {
                "2. authorization approved in the request + code exchange, PKCE S256 (flows/s)"
                    .into()
            }
            Row::Refresh => "3. refresh with rotation (req/s)".into(),
            Row::Validation => {
                format!(
                    "4. bearer validation, {} live tokens (validations/s)",
                    count(tokens)
                )
            }
            Row::Memory => format!(
                "5. heap per live token, {} cc tokens (bytes)",
                count(tokens)
            ),
            Row::AllocCc => "6a. allocations per cc request".into(),
            Row::AllocCode => "6b. allocations per code flow (authorization + exchange)".into(),
            Row::AllocRefresh => "6c. allocations per refresh".into(),
            Row::AllocValidation => "6d. allocations per validation".into(),
        }
    }

    fn is_rate(self) -> bool {
        matches!(
            self,
            Row::ClientCredentials | Row::CodeFlow | Row::Refresh | Row::Validation
        )
    }
}

fn count(n: usize) -> String {
    if n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

/// The figures: per row and column, the runs (one value for counts and bytes).
#[derive(Default)]
pub struct Results {
    cells: BTreeMap<(Row, usize), Vec<f64>>,
    notes: Vec<String>,
}

impl Results {
    fn put(&mut self, row: Row, column: usize, values: Vec<f64>) {
        self.cells.insert((row, column), values);
    }

    fn cell(&self, row: Row, column: usize) -> String {
        match self.cells.get(&(row, column)) {
            None => "—".into(),
            Some(values) if row.is_rate() => thousands(median(values)),
            Some(values) if row == Row::Memory => format!("{:.0}", median(values)),
            Some(values) => format!("{:.1}", median(values)),
        }
    }
}

fn thousands(value: f64) -> String {
    let n = value.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Tokens kept aside as validation requests: one in this many issued.
const SAMPLE_EVERY: usize = 8;

/// Every scenario for one implementation; `column` is its place in the table.
fn run_side<S: Side>(
    rt: &Runtime,
    settings: &Settings,
    column: usize,
    create: impl Fn() -> S,
    results: &mut Results,
) -> Result<(), Failed> {
    let name = S::NAME;
    eprintln!("{name}: checks");
    let side = create();
    let family_revoked = rt.block_on(checks(&side))?;
    if !family_revoked {
        results.notes.push(format!(
            "{name}: replaying a rotated refresh token is refused, but the token that replaced it \
             stays valid (no reuse detection revoking the family)."
        ));
    }

    eprintln!("{name}: client credentials");
    let cc = |n: u64| {
        rt.block_on(async {
            for _ in 0..n {
                let r = side.token(cc_request(SERVICE_BASIC)).await;
                must(r.status == 200, "a client credentials request was refused");
            }
        })
    };
    // Timed: the requests are built first, outside the time, and each batch runs on a fresh
    // instance (built before its time starts, dropped after it ends).
    let cc_timed = |n: u64| {
        let requests: Vec<HttpRequest> = (0..n).map(|_| cc_request(SERVICE_BASIC)).collect();
        let side = create();
        rt.block_on(async {
            let start = std::time::Instant::now();
            for request in requests {
                let r = side.token(request).await;
                must(r.status == 200, "a client credentials request was refused");
            }
            start.elapsed()
        })
    };
    results.put(
        Row::ClientCredentials,
        column,
        timed_rates(settings, cc_timed),
    );
    let allocs = allocs_per_op(10_000, cc, |n| {
        for _ in 0..n {
            drop(cc_request(SERVICE_BASIC));
        }
    });
    results.put(Row::AllocCc, column, vec![allocs]);

    eprintln!("{name}: code flow");
    let sample_location = RefCell::new(String::new());
    let flow = |n: u64| {
        rt.block_on(async {
            for _ in 0..n {
                let Some(location) = side.authorize(authorize_request()).await else {
                    must(false, "an authorization request was not approved");
                    return;
                };
                let code = code_of(&location).unwrap_or_default();
                let r = side.token(exchange_request(&code)).await;
                must(r.status == 200, "a code exchange was refused");
                *sample_location.borrow_mut() = location;
            }
        })
    };
    results.put(
        Row::CodeFlow,
        column,
        code_flow_rates(rt, settings, &create),
    );
    let location = sample_location.borrow().clone();
    let allocs = allocs_per_op(2_000, flow, |n| {
        for _ in 0..n {
            // What the flow builds besides the implementation's own work: the two requests
            // and the code read out of the redirect (the `Location` itself is the side's).
            drop(authorize_request());
            let code = code_of(&location).unwrap_or_default();
            drop(exchange_request(&code));
        }
    });
    results.put(Row::AllocCode, column, vec![allocs]);

    eprintln!("{name}: refresh");
    // On a fresh instance, as every timed scenario is: the store the rows above filled (larger
    // for a faster implementation) must not weigh on this one.
    drop(side);
    let side = create();
    let first = rt.block_on(async {
        let location = side
            .authorize(authorize_request())
            .await
            .unwrap_or_default();
        side.token(exchange_request(&code_of(&location).unwrap_or_default()))
            .await
    });
    let current = RefCell::new(first.field("refresh_token").unwrap_or_default().to_owned());
    let refresh = |n: u64| {
        rt.block_on(async {
            for _ in 0..n {
                let request = refresh_request(&current.borrow());
                let r = side.token(request).await;
                must(r.status == 200, "a refresh was refused");
                *current.borrow_mut() = r.field("refresh_token").unwrap_or_default().to_owned();
            }
        })
    };
    results.put(Row::Refresh, column, rates(settings, refresh));
    let token = current.borrow().clone();
    let allocs = allocs_per_op(10_000, refresh, |n| {
        for _ in 0..n {
            drop(refresh_request(&token));
            drop(token.clone());
        }
    });
    results.put(Row::AllocRefresh, column, vec![allocs]);
    drop(side);

    eprintln!("{name}: {} live tokens", settings.tokens);
    let side = create();
    let (per_token, pool) = fill(settings.tokens, |pool_entry| {
        rt.block_on(async {
            let r = side.token(cc_request(SERVICE_BASIC)).await;
            must(r.status == 200, "a client credentials request was refused");
            if pool_entry {
                Some(resource_request(
                    r.field("access_token").unwrap_or_default(),
                ))
            } else {
                None
            }
        })
    });
    results.put(Row::Memory, column, vec![per_token]);
    rt.block_on(async {
        ensure(side.validate(&pool[pool.len() - 1]).await, || {
            format!(
                "{name}: a token issued among {} does not validate",
                settings.tokens
            )
        })?;
        ensure(
            !side.validate(&resource_request("not-a-token")).await,
            || format!("{name}: an unknown bearer token was accepted"),
        )
    })?;
    let next = RefCell::new(0usize);
    let validate = |n: u64| {
        rt.block_on(async {
            for _ in 0..n {
                let i = {
                    let mut next = next.borrow_mut();
                    *next = (*next + 1) % pool.len();
                    *next
                };
                must(
                    side.validate(&pool[i]).await,
                    "a live token did not validate",
                );
            }
        })
    };
    results.put(Row::Validation, column, rates(settings, validate));
    let allocs = allocs_per_op(10_000, validate, |_| {});
    results.put(Row::AllocValidation, column, vec![allocs]);
    Ok(())
}

/// Row 2's rates. The authorization requests are built first; each exchange request needs the
/// code just issued, so it is built in the loop (the same work for every side). Each batch runs
/// on a fresh instance (built before its time starts, dropped after it ends).
fn code_flow_rates<S: Side>(rt: &Runtime, settings: &Settings, create: impl Fn() -> S) -> Vec<f64> {
    timed_rates(settings, |n: u64| {
        let requests: Vec<HttpRequest> = (0..n).map(|_| authorize_request()).collect();
        let side = create();
        rt.block_on(async {
            let start = std::time::Instant::now();
            for request in requests {
                let Some(location) = side.authorize(request).await else {
                    must(false, "an authorization request was not approved");
                    break;
                };
                let code = code_of(&location).unwrap_or_default();
                let r = side.token(exchange_request(&code)).await;
                must(r.status == 200, "a code exchange was refused");
            }
            start.elapsed()
        })
    })
}

/// grantor's code flow with its consent step (`authorize`, the request waiting in the store,
/// then `approve`), beside row 2's decision at once: a note under the table.
fn consent_step_note(rt: &Runtime, settings: &Settings, results: &mut Results) {
    eprintln!("grantor: code flow with a consent step");
    let two_calls = median(&code_flow_rates(
        rt,
        settings,
        grantor_side::Grantor::with_consent_step,
    ));
    let one_call = results
        .cells
        .get(&(Row::CodeFlow, 0))
        .map_or(f64::NAN, |runs| median(runs));
    results.notes.push(format!(
        "grantor's code flow with its consent step (`authorize`, the request waiting in the \
         store, then `approve`: two calls, as a host with a consent page makes them): {} \
         flows/s, {:.2}× its figure decided at once in row 2.",
        thousands(two_calls),
        two_calls / one_call
    ));
}

/// Issues `tokens` tokens through `issue` (which answers a validation request when asked to keep
/// one); answers the live heap bytes per token, less the kept requests, and the kept requests.
pub fn fill(
    tokens: usize,
    mut issue: impl FnMut(bool) -> Option<HttpRequest>,
) -> (f64, Vec<HttpRequest>) {
    let mut pool = Vec::with_capacity(tokens / SAMPLE_EVERY + 1);
    let before = live_bytes();
    for i in 0..tokens {
        if let Some(request) = issue(i.is_multiple_of(SAMPLE_EVERY)) {
            pool.push(request);
        }
    }
    let after = live_bytes();
    // The pool's own array was allocated before `before`; its requests were not.
    let per_token = (after - before - pool_bytes(&pool)) as f64 / tokens as f64;
    (per_token, pool)
}

/// Heap bytes held by the kept requests: measured by building copies of them.
fn pool_bytes(pool: &[HttpRequest]) -> i64 {
    let before = live_bytes();
    let copies: Vec<HttpRequest> = pool
        .iter()
        .map(|r| resource_request(bearer_of(r).unwrap_or_default()))
        .collect();
    let held =
        live_bytes() - before - (copies.capacity() * std::mem::size_of::<HttpRequest>()) as i64;
    drop(copies);
    held
}

/// The checks every implementation must pass before it is timed. Answers whether replaying a
/// rotated refresh token also revoked the token that replaced it.
async fn checks<S: Side>(side: &S) -> Result<bool, Failed> {
    let name = S::NAME;
    let r = side.token(cc_request(SERVICE_BASIC)).await;
    ensure(r.status == 200, || {
        format!(
            "{name}: client credentials answered {}: {}",
            r.status,
            text(&r)
        )
    })?;
    let access = r.field("access_token").unwrap_or_default().to_owned();
    ensure(side.validate(&resource_request(&access)).await, || {
        format!("{name}: its client credentials token does not validate")
    })?;
    let wrong = side.token(cc_request(WRONG_BASIC)).await;
    ensure(
        (400..500).contains(&wrong.status) && wrong.field("error") == Some("invalid_client"),
        || {
            format!(
                "{name}: a wrong client secret was not refused: {} {}",
                wrong.status,
                text(&wrong)
            )
        },
    )?;

    let location = side.authorize(authorize_request()).await;
    let location = location.ok_or_else(|| Failed(format!("{name}: authorization not approved")))?;
    ensure(location.starts_with(harness::CALLBACK), || {
        format!("{name}: redirected to {location}")
    })?;
    let code = code_of(&location)
        .ok_or_else(|| Failed(format!("{name}: no code in the redirect {location}")))?;
    let r = side.token(exchange_request(&code)).await;
    ensure(r.status == 200, || {
        format!(
            "{name}: the code exchange answered {}: {}",
            r.status,
            text(&r)
        )
    })?;
    let access = r.field("access_token").unwrap_or_default().to_owned();
    ensure(side.validate(&resource_request(&access)).await, || {
        format!("{name}: its code flow token does not validate")
    })?;
    let replay = side.token(exchange_request(&code)).await;
    ensure(replay.status >= 400, || {
        format!(
            "{name}: a replayed authorization code was accepted: {}",
            text(&replay)
        )
    })?;
    let code2 = side
        .authorize(authorize_request())
        .await
        .and_then(|l| code_of(&l))
        .unwrap_or_default();
    let mut wrong_verifier = exchange_request(&code2);
    *wrong_verifier.body_mut() = wrong_verifier
        .body()
        .replace("code_verifier=dB", "code_verifier=xB");
    let r2 = side.token(wrong_verifier).await;
    ensure(r2.status >= 400, || {
        format!(
            "{name}: a code was exchanged with the wrong PKCE verifier: {}",
            text(&r2)
        )
    })?;

    // A code replay revokes what the code gave (RFC 6749 §4.1.2): refresh from a fresh flow.
    let fresh = side
        .authorize(authorize_request())
        .await
        .and_then(|l| code_of(&l))
        .unwrap_or_default();
    let r = side.token(exchange_request(&fresh)).await;
    let first = r.field("refresh_token").unwrap_or_default().to_owned();
    ensure(!first.is_empty(), || {
        format!("{name}: the code exchange gave no refresh token")
    })?;
    let rotated = side.token(refresh_request(&first)).await;
    ensure(rotated.status == 200, || {
        format!(
            "{name}: the refresh answered {}: {}",
            rotated.status,
            text(&rotated)
        )
    })?;
    let second = rotated
        .field("refresh_token")
        .unwrap_or_default()
        .to_owned();
    ensure(!second.is_empty() && second != first, || {
        format!("{name}: the refresh did not rotate the refresh token")
    })?;
    let access = rotated.field("access_token").unwrap_or_default().to_owned();
    ensure(side.validate(&resource_request(&access)).await, || {
        format!("{name}: its refreshed token does not validate")
    })?;
    let replay = side.token(refresh_request(&first)).await;
    ensure(replay.status >= 400, || {
        format!(
            "{name}: a rotated refresh token was accepted again: {}",
            text(&replay)
        )
    })?;
    let after = side.token(refresh_request(&second)).await;
    Ok(after.status >= 400)
}

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

fn run_floor(settings: &Settings, column: usize, results: &mut Results) -> Result<(), Failed> {
    eprintln!("floor");
    let floor = RefCell::new(floor::Floor::default());
    let body = floor.borrow_mut().issue();
    let token = harness::json_field(body.as_bytes(), "access_token").unwrap_or_default();
    ensure(floor.borrow().validate(&resource_request(token)), || {
        "floor: its token does not validate".into()
    })?;
    let issue = |n: u64| {
        let mut floor = floor.borrow_mut();
        for _ in 0..n {
            drop(floor.issue());
        }
    };
    results.put(Row::ClientCredentials, column, rates(settings, issue));
    results.put(
        Row::AllocCc,
        column,
        vec![allocs_per_op(10_000, issue, |_| {})],
    );
    drop(floor);

    let floor = RefCell::new(floor::Floor::default());
    let (per_token, pool) = fill(settings.tokens, |keep| {
        let body = floor.borrow_mut().issue();
        keep.then(|| {
            resource_request(
                harness::json_field(body.as_bytes(), "access_token").unwrap_or_default(),
            )
        })
    });
    results.put(Row::Memory, column, vec![per_token]);
    let floor = floor.into_inner();
    ensure(!floor.validate(&resource_request("not-a-token")), || {
        "floor: an unknown token was accepted".into()
    })?;
    let mut next = 0usize;
    let validate = |n: u64| {
        for _ in 0..n {
            next = (next + 1) % pool.len();
            must(
                floor.validate(&pool[next]),
                "floor: a live token did not validate",
            );
        }
    };
    let runs = rates(settings, validate);
    results.put(Row::Validation, column, runs);
    let mut next = 0usize;
    let validate = |n: u64| {
        for _ in 0..n {
            next = (next + 1) % pool.len();
            must(
                floor.validate(&pool[next]),
                "floor: a live token did not validate",
            );
        }
    };
    results.put(
        Row::AllocValidation,
        column,
        vec![allocs_per_op(10_000, validate, |_| {})],
    );
    Ok(())
}

/// The machine's one-minute load average, to read the figures by (`/proc/loadavg`).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn main() -> ExitCode {
    let settings = Settings::from_env();
    let load_before = load();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut results = Results::default();
    let outcome = (|| -> Result<scaling::Scaling, Failed> {
        run_side(&rt, &settings, 0, grantor_side::Grantor::new, &mut results)?;
        consent_step_note(&rt, &settings, &mut results);
        run_side(
            &rt,
            &settings,
            1,
            || rt.block_on(oauth_as_side::OauthAs::new()),
            &mut results,
        )?;
        run_side(&rt, &settings, 2, oxide_side::Oxide::new, &mut results)?;
        run_floor(&settings, 3, &mut results)?;
        scaling::run(&settings)
    })();
    let scaling = match outcome {
        Ok(scaling) => scaling,
        Err(Failed(what)) => {
            eprintln!("error: {what}");
            return ExitCode::FAILURE;
        }
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "Machine: {cores} cores; one-minute load average {load_before} at the start, {} at the \
         end (anything above 1 is other work competing for the cores).\n",
        load()
    );
    print!("{}", report(&settings, &results, &scaling));
    ExitCode::SUCCESS
}

const ROWS: [Row; 9] = [
    Row::ClientCredentials,
    Row::CodeFlow,
    Row::Refresh,
    Row::Validation,
    Row::Memory,
    Row::AllocCc,
    Row::AllocCode,
    Row::AllocRefresh,
    Row::AllocValidation,
];

fn report(settings: &Settings, results: &Results, scaling: &scaling::Scaling) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Side by side (median of {} runs of ~{:.1} s; one thread; no HTTP server)\n",
        settings.runs,
        settings.run_time.as_secs_f64()
    );
    let _ = writeln!(out, "| scenario | {} |", COLUMNS.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(COLUMNS.len()));
    for row in ROWS {
        let cells: Vec<String> = (0..COLUMNS.len()).map(|c| results.cell(row, c)).collect();
        let _ = writeln!(
            out,
            "| {} | {} |",
            row.label(settings.tokens),
            cells.join(" | ")
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", scaling.table(settings));
    let _ = writeln!(out, "Notes:");
    for note in FOOTNOTES {
        let _ = writeln!(out, "- {note}");
    }
    for note in &results.notes {
        let _ = writeln!(out, "- {note}");
    }
    let _ = writeln!(out, "\n## Raw figures\n");
    for row in ROWS {
        for (c, column) in COLUMNS.iter().enumerate() {
            if let Some(values) = results.cells.get(&(row, c)) {
                let list: Vec<String> = values.iter().map(|v| format!("{v:.1}")).collect();
                let _ = writeln!(
                    out,
                    "- {} / {column}: {}",
                    row.label(settings.tokens),
                    list.join(", ")
                );
            }
        }
    }
    let _ = write!(out, "{}", scaling.raw());
    out
}

const FOOTNOTES: [&str; 9] = [
    "Every implementation is handed the same `http::Request` values (built by the harness, the \
     same for all) and answers an `http::Response`; grantor through `TokenRequest::from` (by value) \
     and `BearerValidator::validate_http` as its axum example does, oauth-as through its `http` feature's \
     `AuthorizationService::handle`, oxide-auth through a host adapter to its \
     `frontends::simple` request type.",
    "Floor: 32 CSPRNG bytes, base64url, SHA-256, `HashMap` insert of a 16-byte record, the JSON \
     body (issue); SHA-256, lookup, expiry and scope check (validate). It parses no request and \
     authenticates no client; there is no floor for the code and refresh flows.",
    "Code flow: each approves inside the one authorization request, for a signed-in user who \
     needs no consent page: grantor through `validate_authorization` and `decide`, oauth-as and \
     oxide-auth \
     through host callbacks. All three check PKCE S256 (oxide-auth through its \
     `Pkce::required()` addon, not its plain `Generic` endpoint).",
    "Storage: oauth-as's `MemoryStorage` and oxide-auth's `TokenMap` key tokens by the token \
     itself, in plaintext; grantor and the floor keep only a SHA-256 of each token (and pay a \
     SHA-256 per validation that the other two skip). oxide-auth's `TokenMap` also stores a \
     refresh token for every client credentials token (the flow then drops it from the \
     response), so its memory per token counts two tokens.",
    "Client secrets: grantor a salted SHA-256, oauth-as an unsalted SHA-256 (`sha256-hex`, its \
     built-in), oxide-auth a salted SHA-256 `PasswordPolicy` written here (its only built-in \
     policy is Argon2, a KDF). Tokens: 32 random bytes everywhere; grantor draws them from \
     `rand`'s thread-local CSPRNG, oauth-as from one `getrandom` call per issuance \
     (hex-encoded), oxide-auth's `RandomGenerator::new(32)` from the OS RNG per token (standard \
     base64).",
    "Validation: grantor's `BearerValidator`; oauth-as has no bearer validator, so its in-process \
     introspection (`AuthorizationServer::introspect`) plus a scope check; oxide-auth's \
     `ResourceFlow`. Requests cycle through one in eight of the live tokens, in issue order.",
    "Allocations are calls to the allocator (reallocations included) per operation, less those \
     of building the harness's requests; rates leave out building the requests that do not \
     depend on an answer (client credentials, authorization requests).",
    "oxide-auth's primitives need `&mut` to issue, so they sit behind one `Mutex`; grantor's and \
     oauth-as's memory stores lock internally.",
    "grantor logs one `debug` event per token response through `tracing`; no subscriber is \
     installed here, so it costs a disabled callsite check. The peers log nothing.",
];
