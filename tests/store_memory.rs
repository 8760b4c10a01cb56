//! The store conformance kit, run against the in-memory stores as a host runs it on its own.

use std::sync::Arc;

use grantor::{
    MemoryAttemptLimiter, MemoryCodeStore, MemoryDeviceCodeStore, MemoryMfaStore, MemoryTokenStore,
};

grantor::token_store_conformance!(Arc::new(MemoryTokenStore::new()));
grantor::attempt_limiter_conformance!(Arc::new(MemoryAttemptLimiter::new()));
grantor::code_store_conformance!(Arc::new(MemoryCodeStore::new()));
grantor::device_code_store_conformance!(Arc::new(MemoryDeviceCodeStore::new()));
grantor::mfa_store_conformance!(Arc::new(MemoryMfaStore::new()));

#[test]
fn suite_hashes_are_distinct() {
    grantor::conformance::hashes_are_distinct();
}
