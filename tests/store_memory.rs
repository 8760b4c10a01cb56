//! The store conformance suite, run against the in-memory stores.

mod conformance;

use std::sync::Arc;

use conformance::Stores;
use grantor::{MemoryAttemptLimiter, MemoryCodeStore, MemoryTokenStore};

async fn memory() -> Stores {
    Stores {
        tokens: Arc::new(MemoryTokenStore::new()),
        limiter: Arc::new(MemoryAttemptLimiter::new()),
        codes: Arc::new(MemoryCodeStore::new()),
        guard: None,
    }
}

conformance_suite!(memory());

#[test]
fn suite_hashes_are_distinct() {
    conformance::hashes_are_distinct();
}
