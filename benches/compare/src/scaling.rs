//! grantor alone: what a request costs with 1,000 live tokens against 1,000,000 (client
//! credentials issue and bearer validation, with the floor's validation beside it for what any
//! hash table pays once it outgrows the caches), and two threads against one on its memory
//! store.

use std::fmt::Write as _;
use std::sync::Barrier;
use std::time::Instant;

use crate::floor::Floor;
use crate::grantor_side::Grantor;
use crate::harness::{
    cc_request, fixed_rates, median, rates, resource_request, HttpRequest, Settings, SERVICE_BASIC,
};
use crate::{ensure, fill, must, Failed, Side};

/// Client credentials requests timed per run at a given store size: few enough that the store
/// stays near its size (1,000 live tokens grow to at most 3,000).
const ISSUES_PER_RUN: u64 = 2_000;

pub struct Scaling {
    cc_small: Vec<f64>,
    cc_large: Vec<f64>,
    validate_small: Vec<f64>,
    validate_large: Vec<f64>,
    floor_small: Vec<f64>,
    floor_large: Vec<f64>,
    cc_one: Vec<f64>,
    cc_two: Vec<f64>,
    validate_one: Vec<f64>,
    validate_two: Vec<f64>,
    small: usize,
    large: usize,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

/// A server holding `tokens` live client credentials tokens, and validation requests for one in
/// `every` of them.
fn filled(tokens: usize, every: usize) -> (Grantor, Vec<HttpRequest>) {
    let rt = runtime();
    let grantor = Grantor::new();
    let mut i = 0usize;
    let (_, pool) = fill(tokens, |_| {
        i += 1;
        rt.block_on(async {
            let r = grantor.token(cc_request(SERVICE_BASIC)).await;
            must(r.status == 200, "a client credentials request was refused");
            i.is_multiple_of(every)
                .then(|| resource_request(r.field("access_token").unwrap_or_default()))
        })
    });
    (grantor, pool)
}

/// The floor holding `tokens` live tokens, and validation requests for one in `every` of them.
fn floor_filled(tokens: usize, every: usize) -> (Floor, Vec<HttpRequest>) {
    let mut floor = Floor::default();
    let mut pool = Vec::with_capacity(tokens / every + 1);
    for i in 1..=tokens {
        let body = floor.issue();
        if i.is_multiple_of(every) {
            let token = crate::harness::json_field(body.as_bytes(), "access_token");
            pool.push(resource_request(token.unwrap_or_default()));
        }
    }
    (floor, pool)
}

fn floor_batch(floor: &Floor, pool: &[HttpRequest], next: &mut usize, n: u64) {
    for _ in 0..n {
        *next = (*next + 1) % pool.len();
        must(
            floor.validate(&pool[*next]),
            "floor: a live token did not validate",
        );
    }
}

fn issue_batch(rt: &tokio::runtime::Runtime, grantor: &Grantor, n: u64) {
    rt.block_on(async {
        for _ in 0..n {
            let r = grantor.token(cc_request(SERVICE_BASIC)).await;
            must(r.status == 200, "a client credentials request was refused");
        }
    })
}

fn validate_batch(
    rt: &tokio::runtime::Runtime,
    grantor: &Grantor,
    pool: &[HttpRequest],
    next: &mut usize,
    n: u64,
) {
    rt.block_on(async {
        for _ in 0..n {
            *next = (*next + 1) % pool.len();
            must(
                grantor.validate(&pool[*next]).await,
                "a live token did not validate",
            );
        }
    })
}

/// Operations per second over `threads` threads, each with its own current-thread runtime,
/// running `op` batches until `settings.run_time` has passed.
fn threaded(
    settings: &Settings,
    threads: usize,
    op: impl Fn(&tokio::runtime::Runtime, usize, &mut usize) + Sync,
) -> f64 {
    let barrier = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                let op = &op;
                scope.spawn(move || {
                    let rt = runtime();
                    let mut cursor = t * 7919;
                    let mut done = 0u64;
                    barrier.wait();
                    let start = Instant::now();
                    while start.elapsed() < settings.run_time {
                        op(&rt, t, &mut cursor);
                        done += 64;
                    }
                    done as f64 / start.elapsed().as_secs_f64()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    })
}

pub fn run(settings: &Settings) -> Result<Scaling, Failed> {
    let rt = runtime();
    let small = 1_000;
    let large = settings.tokens;
    let runs = settings.runs * 3;

    eprintln!("grantor: {small} against {large} live tokens");
    // Small and large runs alternate, so drift in the machine's load falls on both.
    let (grantor, pool) = filled(large, 8);
    let one_run = Settings {
        runs: 1,
        ..*settings
    };
    let (mut cc_small, mut cc_large) = (Vec::new(), Vec::new());
    let (mut validate_small, mut validate_large) = (Vec::new(), Vec::new());
    let (mut next_small, mut next_large) = (0, 0);
    let (floor, floor_pool) = floor_filled(large, 8);
    let (small_floor, small_floor_pool) = floor_filled(small, 1);
    let (mut floor_small, mut floor_large) = (Vec::new(), Vec::new());
    let (mut floor_next_small, mut floor_next_large) = (0, 0);
    for run in 0..runs {
        let (small_server, small_pool) = filled(small, 1);
        ensure(small_pool.len() == small, || {
            "the small pool is short".into()
        })?;
        cc_small.extend(fixed_rates(1, ISSUES_PER_RUN, |n| {
            issue_batch(&rt, &small_server, n)
        }));
        cc_large.extend(fixed_rates(1, ISSUES_PER_RUN, |n| {
            issue_batch(&rt, &grantor, n)
        }));
        if run < settings.runs {
            validate_small.extend(rates(&one_run, |n| {
                validate_batch(&rt, &small_server, &small_pool, &mut next_small, n)
            }));
            validate_large.extend(rates(&one_run, |n| {
                validate_batch(&rt, &grantor, &pool, &mut next_large, n)
            }));
            floor_small.extend(rates(&one_run, |n| {
                floor_batch(&small_floor, &small_floor_pool, &mut floor_next_small, n)
            }));
            floor_large.extend(rates(&one_run, |n| {
                floor_batch(&floor, &floor_pool, &mut floor_next_large, n)
            }));
        }
    }
    drop((floor, floor_pool));

    eprintln!("grantor: two threads against one");
    let mut validate_one = Vec::new();
    let mut validate_two = Vec::new();
    for _ in 0..settings.runs {
        for (threads, out) in [(1, &mut validate_one), (2, &mut validate_two)] {
            out.push(threaded(settings, threads, |rt, _, cursor| {
                validate_batch(rt, &grantor, &pool, cursor, 64)
            }));
        }
    }
    drop((grantor, pool));
    let mut cc_one = Vec::new();
    let mut cc_two = Vec::new();
    for _ in 0..settings.runs {
        for (threads, out) in [(1, &mut cc_one), (2, &mut cc_two)] {
            // A fresh, empty store for every run, so both start alike.
            let grantor = Grantor::new();
            out.push(threaded(settings, threads, |rt, _, _| {
                issue_batch(rt, &grantor, 64)
            }));
        }
    }
    Ok(Scaling {
        cc_small,
        cc_large,
        validate_small,
        validate_large,
        floor_small,
        floor_large,
        cc_one,
        cc_two,
        validate_one,
        validate_two,
        small,
        large,
    })
}

fn per_sec(values: &[f64]) -> String {
    format!("{:.0}", median(values))
}

impl Scaling {
    pub fn table(&self, settings: &Settings) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## grantor: store size and threads (medians; {} runs of {ISSUES_PER_RUN} issues, \
             otherwise {} runs of ~{:.1} s)\n",
            settings.runs * 3,
            settings.runs,
            settings.run_time.as_secs_f64()
        );
        let _ = writeln!(out, "| grantor, memory store | a | b | b / a |");
        let _ = writeln!(out, "|---|---:|---:|---:|");
        let rows: [(&str, &Vec<f64>, &Vec<f64>); 5] = [
            (
                "cc issue (req/s): a = 1k live, b = 1M live",
                &self.cc_small,
                &self.cc_large,
            ),
            (
                "validation (/s): a = 1k live, b = 1M live",
                &self.validate_small,
                &self.validate_large,
            ),
            (
                "floor validation (/s): a = 1k live, b = 1M live",
                &self.floor_small,
                &self.floor_large,
            ),
            (
                "cc issue (req/s): a = 1 thread, b = 2 threads",
                &self.cc_one,
                &self.cc_two,
            ),
            (
                "validation at 1M live (/s): a = 1 thread, b = 2 threads",
                &self.validate_one,
                &self.validate_two,
            ),
        ];
        for (label, a, b) in rows {
            let label = label
                .replace("1k", &crate::count(self.small))
                .replace("1M", &crate::count(self.large));
            let _ = writeln!(
                out,
                "| {label} | {} | {} | {:.2} |",
                per_sec(a),
                per_sec(b),
                median(b) / median(a)
            );
        }
        out
    }

    pub fn raw(&self) -> String {
        let mut out = String::new();
        for (label, values) in [
            ("grantor cc issue, small store", &self.cc_small),
            ("grantor cc issue, large store", &self.cc_large),
            ("grantor validation, small store", &self.validate_small),
            ("grantor validation, large store", &self.validate_large),
            ("floor validation, small store", &self.floor_small),
            ("floor validation, large store", &self.floor_large),
            ("grantor cc issue, 1 thread", &self.cc_one),
            ("grantor cc issue, 2 threads", &self.cc_two),
            ("grantor validation, 1 thread", &self.validate_one),
            ("grantor validation, 2 threads", &self.validate_two),
        ] {
            let list: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
            let _ = writeln!(out, "- {label}: {}", list.join(", "));
        }
        out
    }
}
