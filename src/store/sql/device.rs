//! [`DeviceCodeStore`] in SQL: `grantor_devices` (requests, by device code) and
//! `grantor_device_user_codes` (the user codes that find pending ones).

use async_trait::async_trait;
use time::OffsetDateTime;

use super::codes::bound_reached;
use super::{at, lock_key, Arg, Dialect, SqlStore};
use crate::error::StoreError;
use crate::store::device::{
    DeviceAuthorization, DeviceCodeStore, DeviceDecided, DeviceDecision, DevicePace, DeviceRestore,
    DeviceSave, DeviceStatus, DeviceUpdate,
};
use crate::store::pending::PendingLimits;
use crate::store::record::{decode_record, encode_record};
use crate::token::{DeviceCodeHash, UserCodeHash};

/// The `status` column: what the queries compare of a request's [`DeviceStatus`].
fn status(request: &DeviceAuthorization) -> i64 {
    match request.status {
        DeviceStatus::Pending => PENDING,
        DeviceStatus::Approved { .. } => APPROVED,
        DeviceStatus::Denied => 2,
    }
}

const PENDING: i64 = 0;
const APPROVED: i64 = 1;

/// Whole seconds, as the engine compares polls.
fn seconds(t: Option<OffsetDateTime>) -> Option<i64> {
    t.map(OffsetDateTime::unix_timestamp)
}

#[async_trait]
impl DeviceCodeStore for SqlStore {
    async fn save_device_authorization(
        &self,
        device_code: &DeviceCodeHash,
        user_code: &UserCodeHash,
        request: &DeviceAuthorization,
        keep_until: OffsetDateTime,
        limits: &PendingLimits,
        now: OffsetDateTime,
    ) -> Result<DeviceSave, StoreError> {
        let now = at(now);
        let expires_at = at(request.expires_at);
        let record = encode_record(request)?;
        let mut tx = self.db.begin().await?;
        // Saves check the user code, count and save one after another.
        tx.lock(vec![lock_key("devices", b"")]).await?;
        let taken = tx
            .fetch_optional(
                "SELECT 1 FROM grantor_device_user_codes WHERE user_code = $1 AND expires_at > $2",
                &[Arg::Bytes(user_code.as_bytes()), Arg::Int(now)],
            )
            .await?;
        if taken.is_some() {
            return Ok(DeviceSave::UserCodeInUse);
        }
        if let Some(retry_after) =
            bound_reached(&mut tx, "grantor_devices", &request.client_id, limits, now).await?
        {
            return Ok(DeviceSave::Full { retry_after });
        }
        tx.execute(
            "INSERT INTO grantor_devices
                 (device_code, client_id, status, expires_at, keep_until, record)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (device_code) DO UPDATE SET client_id = excluded.client_id,
                 status = excluded.status, expires_at = excluded.expires_at,
                 keep_until = excluded.keep_until, record = excluded.record",
            &[
                Arg::Bytes(device_code.as_bytes()),
                Arg::Text(request.client_id.as_str()),
                Arg::Int(status(request)),
                Arg::Int(expires_at),
                Arg::Int(at(keep_until)),
                Arg::Text(&record),
            ],
        )
        .await?;
        tx.execute(
            "INSERT INTO grantor_device_user_codes (user_code, device_code, expires_at)
             VALUES ($1, $2, $3)
             ON CONFLICT (user_code) DO UPDATE SET device_code = excluded.device_code,
                 expires_at = excluded.expires_at",
            &[
                Arg::Bytes(user_code.as_bytes()),
                Arg::Bytes(device_code.as_bytes()),
                Arg::Int(expires_at),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(DeviceSave::Saved)
    }

    async fn find_device_authorization(
        &self,
        user_code: &UserCodeHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        self.db
            .record(
                "SELECT d.record FROM grantor_device_user_codes u
                 JOIN grantor_devices d ON d.device_code = u.device_code
                 WHERE u.user_code = $1 AND u.expires_at > $2 AND d.status = $3
                     AND d.expires_at > $2 AND d.keep_until > $2",
                &[
                    Arg::Bytes(user_code.as_bytes()),
                    Arg::Int(at(now)),
                    Arg::Int(PENDING),
                ],
            )
            .await
    }

    async fn find_device(
        &self,
        device_code: &DeviceCodeHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        self.db
            .record(
                "SELECT record FROM grantor_devices WHERE device_code = $1 AND keep_until > $2",
                &[Arg::Bytes(device_code.as_bytes()), Arg::Int(at(now))],
            )
            .await
    }

    async fn record_poll(
        &self,
        device_code: &DeviceCodeHash,
        expected: &DevicePace,
        pace: &DevicePace,
        now: OffsetDateTime,
    ) -> Result<DeviceUpdate, StoreError> {
        let mut tx = self.db.begin().await?;
        let sql = match tx.dialect() {
            Dialect::Postgres => {
                "SELECT record FROM grantor_devices
                 WHERE device_code = $1 AND status = $2 AND keep_until > $3 FOR UPDATE"
            }
            Dialect::Sqlite => {
                "SELECT record FROM grantor_devices
                 WHERE device_code = $1 AND status = $2 AND keep_until > $3"
            }
        };
        let row = tx
            .fetch_optional(
                sql,
                &[
                    Arg::Bytes(device_code.as_bytes()),
                    Arg::Int(PENDING),
                    Arg::Int(at(now)),
                ],
            )
            .await?;
        let Some(row) = row else {
            return Ok(DeviceUpdate::Conflict);
        };
        let mut request: DeviceAuthorization = decode_record(&row.text(0)?)?;
        let held = DevicePace::of(&request);
        if held.interval != expected.interval
            || seconds(held.last_poll) != seconds(expected.last_poll)
        {
            return Ok(DeviceUpdate::Conflict);
        }
        request.interval = pace.interval;
        request.last_poll = pace.last_poll;
        tx.execute(
            "UPDATE grantor_devices SET record = $2 WHERE device_code = $1",
            &[
                Arg::Bytes(device_code.as_bytes()),
                Arg::Text(&encode_record(&request)?),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(DeviceUpdate::Applied)
    }

    async fn decide_device_authorization(
        &self,
        user_code: &UserCodeHash,
        decision: &DeviceDecision,
        now: OffsetDateTime,
    ) -> Result<DeviceDecided, StoreError> {
        let now = at(now);
        let mut tx = self.db.begin().await?;
        let lock = match tx.dialect() {
            Dialect::Postgres => " FOR UPDATE OF d",
            Dialect::Sqlite => "",
        };
        let row = tx
            .fetch_optional(
                &format!(
                    "SELECT d.device_code, d.record FROM grantor_device_user_codes u
                     JOIN grantor_devices d ON d.device_code = u.device_code
                     WHERE u.user_code = $1 AND u.expires_at > $2 AND d.status = $3
                         AND d.expires_at > $2{lock}"
                ),
                &[
                    Arg::Bytes(user_code.as_bytes()),
                    Arg::Int(now),
                    Arg::Int(PENDING),
                ],
            )
            .await?;
        let Some(row) = row else {
            return Ok(DeviceDecided::NotPending);
        };
        let device_code = row
            .opt_bytes(0)?
            .ok_or_else(|| StoreError::backend("a device request's row has no device code"))?;
        let mut request: DeviceAuthorization = decode_record(&row.text(1)?)?;
        request.status = decision.status();
        tx.execute(
            "UPDATE grantor_devices SET status = $2, record = $3 WHERE device_code = $1",
            &[
                Arg::Bytes(&device_code),
                Arg::Int(status(&request)),
                Arg::Text(&encode_record(&request)?),
            ],
        )
        .await?;
        // The user code stops working, and may be drawn again.
        tx.execute(
            "DELETE FROM grantor_device_user_codes WHERE user_code = $1 AND device_code = $2",
            &[Arg::Bytes(user_code.as_bytes()), Arg::Bytes(&device_code)],
        )
        .await?;
        tx.commit().await?;
        Ok(DeviceDecided::Decided)
    }

    async fn take_approved(
        &self,
        device_code: &DeviceCodeHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        self.db
            .record(
                "DELETE FROM grantor_devices
                 WHERE device_code = $1 AND status = $2 AND keep_until > $3
                 RETURNING record",
                &[
                    Arg::Bytes(device_code.as_bytes()),
                    Arg::Int(APPROVED),
                    Arg::Int(at(now)),
                ],
            )
            .await
    }

    async fn restore_device_approval(
        &self,
        device_code: &DeviceCodeHash,
        request: &DeviceAuthorization,
        keep_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<DeviceRestore, StoreError> {
        let (now, keep_until) = (at(now), at(keep_until));
        if keep_until <= now {
            return Ok(DeviceRestore::Lapsed);
        }
        let mut tx = self.db.begin().await?;
        // A row that has lapsed is nothing: it gives way.
        tx.execute(
            "DELETE FROM grantor_devices WHERE device_code = $1 AND keep_until <= $2",
            &[Arg::Bytes(device_code.as_bytes()), Arg::Int(now)],
        )
        .await?;
        let inserted = tx
            .execute(
                "INSERT INTO grantor_devices
                     (device_code, client_id, status, expires_at, keep_until, record)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (device_code) DO NOTHING",
                &[
                    Arg::Bytes(device_code.as_bytes()),
                    Arg::Text(request.client_id.as_str()),
                    Arg::Int(status(request)),
                    Arg::Int(at(request.expires_at)),
                    Arg::Int(keep_until),
                    Arg::Text(&encode_record(request)?),
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(if inserted == 1 {
            DeviceRestore::Restored
        } else {
            DeviceRestore::Occupied
        })
    }
}
