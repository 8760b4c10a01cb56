//! [`AttemptLimiter`](crate::AttemptLimiter) in Redis: failed-attempt counts and leases.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{ceil_secs, RedisStore};
use crate::error::StoreError;
use crate::store::{AttemptKey, AttemptLease, AttemptLimiter, AttemptRule, AttemptVerdict};

/// A window in whole seconds, rounded up, and at least one.
fn window_secs(window: Duration) -> u64 {
    (window.as_secs() + u64::from(window.subsec_nanos() > 0)).max(1)
}

#[async_trait]
impl AttemptLimiter for RedisStore {
    async fn reserve_attempt(
        &self,
        key: &AttemptKey,
        rule: &AttemptRule,
        lease: &AttemptLease,
        now: OffsetDateTime,
    ) -> Result<AttemptVerdict, StoreError> {
        let mut invocation = self.scripts.reserve.prepare_invoke();
        invocation
            .key(self.limiter_key(key))
            .key(self.lease_key(key))
            .arg(now.unix_timestamp())
            .arg(rule.max_failures)
            .arg(window_secs(rule.window))
            .arg(lease.id)
            .arg(ceil_secs(lease.until));
        let (verdict, left): (i64, i64) = self.invoke(false, &invocation).await?;
        Ok(match verdict {
            1 => AttemptVerdict::Allowed,
            2 => AttemptVerdict::Busy,
            _ => AttemptVerdict::Refused {
                retry_after: Duration::from_secs(u64::try_from(left).unwrap_or(0)),
            },
        })
    }

    async fn release_attempt(
        &self,
        key: &AttemptKey,
        lease: &AttemptLease,
        _now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut command = redis::cmd("ZREM");
        command.arg(self.lease_key(key)).arg(lease.id);
        let command = &command;
        self.run(true, |mut conn| async move {
            command.query_async::<i64>(&mut conn).await
        })
        .await?;
        Ok(())
    }

    async fn record_failure(
        &self,
        key: &AttemptKey,
        rule: &AttemptRule,
        lease: &AttemptLease,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut invocation = self.scripts.record_failure.prepare_invoke();
        invocation
            .key(self.limiter_key(key))
            .key(self.lease_key(key))
            .arg(now.unix_timestamp())
            .arg(window_secs(rule.window))
            .arg(lease.id);
        self.invoke::<i64>(false, &invocation).await?;
        Ok(())
    }
}
