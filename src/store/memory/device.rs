//! [`MemoryDeviceCodeStore`]: device authorization requests kept in maps.

use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::digest::DigestMap;
use super::{lock, shrink_if_sparse, wait_until, whole_seconds, ClientCounts};
use crate::error::StoreError;
use crate::store::expiry::{ExpiryQueue, SWEEP_BATCH};
use crate::store::{
    DeviceAuthorization, DeviceCodeStore, DeviceDecided, DeviceDecision, DevicePace, DeviceRestore,
    DeviceSave, DeviceStatus, DeviceUpdate, PendingLimits,
};
use crate::token::{DeviceCodeHash, UserCodeHash};

/// A device authorization, until when it is kept, and whether it still counts against the
/// limits on pending requests (until it expires, or it is taken).
struct HeldDevice {
    request: DeviceAuthorization,
    keep_until: OffsetDateTime,
    counted: bool,
}

/// What happens to a device authorization at a due time.
#[derive(Clone, Copy)]
enum DeviceStage {
    /// It expires: it stops counting, and its user code stops working.
    Expire,
    /// It is forgotten (its `keep_until`).
    Forget,
}

#[derive(Default)]
struct DeviceState {
    /// Requests by device code hash.
    requests: DigestMap<DeviceCodeHash, HeldDevice>,
    /// Device code hash by user code hash.
    user_codes: DigestMap<UserCodeHash, DeviceCodeHash>,
    counts: ClientCounts,
    expiry: ExpiryQueue<(DeviceCodeHash, DeviceStage, Option<UserCodeHash>)>,
}

impl DeviceState {
    fn sweep(&mut self, now: OffsetDateTime, max: usize) {
        let mut due = Vec::new();
        self.expiry.pop_due(now, max, |event| due.push(event));
        for (device, stage, user_code) in due {
            match stage {
                DeviceStage::Expire => {
                    if let Some(user_code) = user_code {
                        if self.user_codes.get(&user_code) == Some(&device) {
                            self.user_codes.remove(&user_code);
                        }
                    }
                    if let Some(held) = self.requests.get_mut(&device) {
                        if held.counted && held.request.expires_at <= now {
                            held.counted = false;
                            self.counts.remove(&held.request.client_id);
                        }
                    }
                }
                DeviceStage::Forget => {
                    let gone = self
                        .requests
                        .get(&device)
                        .is_some_and(|h| h.keep_until <= now);
                    if gone {
                        self.remove(&device);
                    }
                }
            }
        }
        shrink_if_sparse(&mut self.requests);
        shrink_if_sparse(&mut self.user_codes);
    }

    fn insert(
        &mut self,
        device: DeviceCodeHash,
        user_code: Option<UserCodeHash>,
        request: DeviceAuthorization,
        keep_until: OffsetDateTime,
        now: OffsetDateTime,
    ) {
        let counted = request.expires_at > now;
        if counted {
            self.counts.add(&request.client_id);
        }
        self.expiry
            .push(request.expires_at, (device, DeviceStage::Expire, user_code));
        self.expiry
            .push(keep_until, (device, DeviceStage::Forget, None));
        if let Some(user_code) = user_code {
            self.user_codes.insert(user_code, device);
        }
        let held = HeldDevice {
            request,
            keep_until,
            counted,
        };
        if let Some(old) = self.requests.insert(device, held) {
            if old.counted {
                self.counts.remove(&old.request.client_id);
            }
        }
    }

    fn remove(&mut self, device: &DeviceCodeHash) -> Option<DeviceAuthorization> {
        let held = self.requests.remove(device)?;
        if held.counted {
            self.counts.remove(&held.request.client_id);
        }
        Some(held.request)
    }

    /// The request under a device code, while it is kept.
    fn kept_mut(
        &mut self,
        device: &DeviceCodeHash,
        now: OffsetDateTime,
    ) -> Option<&mut DeviceAuthorization> {
        self.requests
            .get_mut(device)
            .filter(|h| h.keep_until > now)
            .map(|h| &mut h.request)
    }

    /// The pending, unexpired request behind a user code.
    fn pending_mut(
        &mut self,
        user_code: &UserCodeHash,
        now: OffsetDateTime,
    ) -> Option<&mut DeviceAuthorization> {
        let device = self.user_codes.get(user_code)?;
        self.requests
            .get_mut(device)
            .map(|h| &mut h.request)
            .filter(|r| r.expires_at > now && r.status == DeviceStatus::Pending)
    }
}

/// Device authorization requests (RFC 8628) kept in maps.
#[derive(Default)]
pub struct MemoryDeviceCodeStore {
    state: Mutex<DeviceState>,
}

impl MemoryDeviceCodeStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many device authorizations (pending, decided or expired) the store holds.
    pub fn len(&self) -> usize {
        lock(&self.state).requests.len()
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for MemoryDeviceCodeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryDeviceCodeStore")
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl DeviceCodeStore for MemoryDeviceCodeStore {
    async fn save_device_authorization(
        &self,
        device_code: &DeviceCodeHash,
        user_code: &UserCodeHash,
        request: &DeviceAuthorization,
        keep_until: OffsetDateTime,
        limits: &PendingLimits,
        now: OffsetDateTime,
    ) -> Result<DeviceSave, StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        let in_use = state
            .user_codes
            .get(user_code)
            .and_then(|device| state.requests.get(device))
            .is_some_and(|h| h.request.expires_at > now);
        if in_use {
            return Ok(DeviceSave::UserCodeInUse);
        }
        if state.counts.full(&request.client_id, limits) {
            state.sweep(now, usize::MAX);
            if state.counts.full(&request.client_id, limits) {
                return Ok(DeviceSave::Full {
                    retry_after: wait_until(state.expiry.earliest(), now),
                });
            }
        }
        state.insert(
            *device_code,
            Some(*user_code),
            request.clone(),
            keep_until,
            now,
        );
        Ok(DeviceSave::Saved)
    }

    async fn find_device_authorization(
        &self,
        user_code: &UserCodeHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let mut state = lock(&self.state);
        Ok(state.pending_mut(user_code, now).map(|r| r.clone()))
    }

    async fn find_device(
        &self,
        device_code: &DeviceCodeHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let mut state = lock(&self.state);
        Ok(state.kept_mut(device_code, now).map(|r| r.clone()))
    }

    async fn record_poll(
        &self,
        device_code: &DeviceCodeHash,
        expected: &DevicePace,
        pace: &DevicePace,
        now: OffsetDateTime,
    ) -> Result<DeviceUpdate, StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        let expected_last_poll = expected.last_poll.map(whole_seconds);
        let Some(request) = state.kept_mut(device_code, now).filter(|r| {
            r.status == DeviceStatus::Pending
                && r.last_poll.map(whole_seconds) == expected_last_poll
                && r.interval == expected.interval
        }) else {
            return Ok(DeviceUpdate::Conflict);
        };
        request.last_poll = pace.last_poll.map(whole_seconds);
        request.interval = pace.interval;
        Ok(DeviceUpdate::Applied)
    }

    async fn decide_device_authorization(
        &self,
        user_code: &UserCodeHash,
        decision: &DeviceDecision,
        now: OffsetDateTime,
    ) -> Result<DeviceDecided, StoreError> {
        let mut state = lock(&self.state);
        let Some(request) = state.pending_mut(user_code, now) else {
            return Ok(DeviceDecided::NotPending);
        };
        request.status = decision.status();
        state.user_codes.remove(user_code);
        Ok(DeviceDecided::Decided)
    }

    async fn take_approved(
        &self,
        device_code: &DeviceCodeHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        let approved = state
            .kept_mut(device_code, now)
            .is_some_and(|r| matches!(r.status, DeviceStatus::Approved { .. }));
        Ok(if approved {
            state.remove(device_code)
        } else {
            None
        })
    }

    async fn restore_device_approval(
        &self,
        device_code: &DeviceCodeHash,
        request: &DeviceAuthorization,
        keep_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<DeviceRestore, StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        if state.kept_mut(device_code, now).is_some() {
            return Ok(DeviceRestore::Occupied);
        }
        if keep_until <= now {
            return Ok(DeviceRestore::Lapsed);
        }
        state.insert(*device_code, None, request.clone(), keep_until, now);
        Ok(DeviceRestore::Restored)
    }
}
