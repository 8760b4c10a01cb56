//! The store conformance suite, run against the in-memory stores.

mod conformance;

use std::sync::Arc;

use conformance::Stores;
use grantor::{
    MemoryAttemptLimiter, MemoryCodeStore, MemoryDeviceCodeStore, MemoryMfaStore, MemoryTokenStore,
};

async fn memory() -> Stores {
    Stores {
        tokens: Arc::new(MemoryTokenStore::new()),
        limiter: Arc::new(MemoryAttemptLimiter::new()),
        codes: Arc::new(MemoryCodeStore::new()),
        devices: Arc::new(MemoryDeviceCodeStore::new()),
        mfa: Arc::new(MemoryMfaStore::new()),
        guard: None,
    }
}

conformance_suite!(memory());

#[test]
fn suite_hashes_are_distinct() {
    conformance::hashes_are_distinct();
}
