//! [`AttemptLimiter`] in SQL: `grantor_attempts` (failures in a window) and
//! `grantor_attempt_leases` (checks in flight).

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{at, lock_key, Arg, Dialect, SqlStore, Tx};
use crate::error::StoreError;
use crate::store::attempt::{
    AttemptKey, AttemptLease, AttemptLimiter, AttemptRule, AttemptVerdict,
};

impl SqlStore {
    /// `key` as the tables keep it (see [`stored_name`](SqlStore::stored_name)). A username
    /// someone typed (a password, typed into the wrong field) is not kept as typed.
    fn stored(&self, key: &AttemptKey) -> String {
        self.stored_name(&key.storage_key())
    }
}

/// A lease id as the table keeps it (the same 64 bits, as a signed `BIGINT`).
fn lease_id(lease: &AttemptLease) -> i64 {
    i64::from_be_bytes(lease.id.to_be_bytes())
}

fn nanos(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// `key`'s failures brought up to `now` (its lock held): a closed window is forgotten, and each
/// lease lapsed at `now` is removed and counted as a failure, opening a window of `window` if
/// none is open. Answers the failures and the open window's end, if one is open.
async fn settle(
    tx: &mut Tx,
    key: &str,
    now: i64,
    window: i64,
) -> Result<(i64, Option<i64>), StoreError> {
    let sql = match tx.dialect() {
        Dialect::Postgres => {
            "SELECT failures, window_ends FROM grantor_attempts WHERE attempt_key = $1 FOR UPDATE"
        }
        Dialect::Sqlite => {
            "SELECT failures, window_ends FROM grantor_attempts WHERE attempt_key = $1"
        }
    };
    let (mut failures, mut ends) = match tx.fetch_optional(sql, &[Arg::Text(key)]).await? {
        Some(row) => (row.int(0)?, row.opt_int(1)?),
        None => (0, None),
    };
    if ends.is_none_or(|ends| ends <= now) {
        failures = 0;
        ends = None;
    }
    let lapsed = tx
        .execute(
            "DELETE FROM grantor_attempt_leases WHERE attempt_key = $1 AND until_at <= $2",
            &[Arg::Text(key), Arg::Int(now)],
        )
        .await?;
    if lapsed > 0 {
        failures = failures.saturating_add(i64::try_from(lapsed).unwrap_or(i64::MAX));
        let window_ends = *ends.get_or_insert(now.saturating_add(window));
        write(tx, key, failures, window_ends).await?;
    }
    Ok((failures, ends))
}

/// Sets `key`'s failures and window end.
async fn write(tx: &mut Tx, key: &str, failures: i64, ends: i64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO grantor_attempts (attempt_key, failures, window_ends) VALUES ($1, $2, $3)
         ON CONFLICT (attempt_key) DO UPDATE SET failures = excluded.failures,
             window_ends = excluded.window_ends",
        &[Arg::Text(key), Arg::Int(failures), Arg::Int(ends)],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl AttemptLimiter for SqlStore {
    async fn reserve_attempt(
        &self,
        key: &AttemptKey,
        rule: &AttemptRule,
        lease: &AttemptLease,
        now: OffsetDateTime,
    ) -> Result<AttemptVerdict, StoreError> {
        let (now, window) = (at(now), nanos(rule.window));
        let key = self.stored(key);
        let max = i64::from(rule.max_failures);
        let mut tx = self.db.begin().await?;
        tx.lock(vec![lock_key("attempt", key.as_bytes())]).await?;
        let (failures, ends) = settle(&mut tx, &key, now, window).await?;
        let verdict = if failures >= max {
            let left = ends.map_or(window, |ends| ends.saturating_sub(now));
            AttemptVerdict::Refused {
                retry_after: std::time::Duration::from_nanos(
                    u64::try_from(left).unwrap_or_default(),
                ),
            }
        } else {
            let held = tx
                .fetch_optional(
                    "SELECT COUNT(*) FROM grantor_attempt_leases WHERE attempt_key = $1",
                    &[Arg::Text(&key)],
                )
                .await?
                .map(|row| row.int(0))
                .transpose()?
                .unwrap_or_default();
            if failures.saturating_add(held) >= max {
                AttemptVerdict::Busy
            } else {
                tx.execute(
                    "INSERT INTO grantor_attempt_leases (attempt_key, lease_id, until_at)
                     VALUES ($1, $2, $3)
                     ON CONFLICT (attempt_key, lease_id) DO UPDATE SET until_at = excluded.until_at",
                    &[
                        Arg::Text(&key),
                        Arg::Int(lease_id(lease)),
                        Arg::Int(at(lease.until)),
                    ],
                )
                .await?;
                AttemptVerdict::Allowed
            }
        };
        // What settling counted stays counted, whatever the verdict.
        tx.commit().await?;
        Ok(verdict)
    }

    async fn release_attempt(
        &self,
        key: &AttemptKey,
        lease: &AttemptLease,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        // A lapsed lease stays, to be counted as a failure.
        self.db
            .execute(
                "DELETE FROM grantor_attempt_leases
                 WHERE attempt_key = $1 AND lease_id = $2 AND until_at > $3",
                &[
                    Arg::Text(&self.stored(key)),
                    Arg::Int(lease_id(lease)),
                    Arg::Int(at(now)),
                ],
            )
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
        let (now, window) = (at(now), nanos(rule.window));
        let key = self.stored(key);
        let mut tx = self.db.begin().await?;
        tx.lock(vec![lock_key("attempt", key.as_bytes())]).await?;
        // The lease ends here, lapsed or not, and counts once: as this failure.
        tx.execute(
            "DELETE FROM grantor_attempt_leases WHERE attempt_key = $1 AND lease_id = $2",
            &[Arg::Text(&key), Arg::Int(lease_id(lease))],
        )
        .await?;
        let (failures, ends) = settle(&mut tx, &key, now, window).await?;
        let ends = ends.unwrap_or(now.saturating_add(window));
        write(&mut tx, &key, failures.saturating_add(1), ends).await?;
        tx.commit().await
    }
}
