//! [`CodeStore`] in SQL: `grantor_pending` (requests awaiting a decision) and `grantor_codes`.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{at, lock_key, Arg, SqlStore, Tx};
use crate::error::StoreError;
use crate::store::code::{
    CodeGrant, CodeLookup, CodeRestore, CodeSpend, CodeStore, PendingAuthorization, SpentCode,
};
use crate::store::pending::{Admission, PendingLimits};
use crate::store::record::{decode_record, encode_record};
use crate::token::{AuthorizationCodeHash, RequestIdHash};
use crate::types::{ClientId, FamilyId};

const LIVE: i64 = 0;
const SPENT: i64 = 1;

/// Whether `table` holds as many rows counted at `now` as `limits` allow (of `client`, or in
/// all): then how long until the oldest of them lapses. `table` has `client_id` and
/// `expires_at` columns; the caller holds the bound's lock.
pub(super) async fn bound_reached(
    tx: &mut Tx,
    table: &str,
    client: &ClientId,
    limits: &PendingLimits,
    now: i64,
) -> Result<Option<std::time::Duration>, StoreError> {
    let per_client = format!(
        "SELECT COUNT(*), MIN(expires_at) FROM {table} WHERE client_id = $1 AND expires_at > $2"
    );
    let total = format!("SELECT COUNT(*), MIN(expires_at) FROM {table} WHERE expires_at > $1");
    let counts = [
        (
            per_client,
            vec![Arg::Text(client.as_str()), Arg::Int(now)],
            limits.per_client,
        ),
        (total, vec![Arg::Int(now)], limits.total),
    ];
    for (sql, args, limit) in counts {
        let row = tx.fetch_optional(&sql, &args).await?;
        let (count, oldest) = match row {
            Some(row) => (row.int(0)?, row.opt_int(1)?),
            None => (0, None),
        };
        if count >= i64::from(limit) {
            let wait = oldest.map_or(0, |oldest| oldest.saturating_sub(now).max(0));
            return Ok(Some(std::time::Duration::from_nanos(
                u64::try_from(wait).unwrap_or_default(),
            )));
        }
    }
    Ok(None)
}

#[async_trait]
impl CodeStore for SqlStore {
    async fn save_pending(
        &self,
        id: &RequestIdHash,
        request: &PendingAuthorization,
        limits: &PendingLimits,
        now: OffsetDateTime,
    ) -> Result<Admission, StoreError> {
        let now = at(now);
        let record = encode_record(request)?;
        let mut tx = self.db.begin().await?;
        // Saves count and save one after another, so that none overruns a bound.
        tx.lock(vec![lock_key("pending", b"")]).await?;
        if let Some(retry_after) =
            bound_reached(&mut tx, "grantor_pending", &request.client_id, limits, now).await?
        {
            return Ok(Admission::Full { retry_after });
        }
        tx.execute(
            "INSERT INTO grantor_pending (hash, client_id, expires_at, record)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (hash) DO UPDATE SET client_id = excluded.client_id,
                 expires_at = excluded.expires_at, record = excluded.record",
            &[
                Arg::Bytes(id.as_bytes()),
                Arg::Text(request.client_id.as_str()),
                Arg::Int(at(request.expires_at)),
                Arg::Text(&record),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(Admission::Admitted)
    }

    async fn find_pending(
        &self,
        id: &RequestIdHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        self.db
            .record(
                "SELECT record FROM grantor_pending WHERE hash = $1 AND expires_at > $2",
                &[Arg::Bytes(id.as_bytes()), Arg::Int(at(now))],
            )
            .await
    }

    async fn take_pending(
        &self,
        id: &RequestIdHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        self.db
            .record(
                "DELETE FROM grantor_pending WHERE hash = $1 AND expires_at > $2 RETURNING record",
                &[Arg::Bytes(id.as_bytes()), Arg::Int(at(now))],
            )
            .await
    }

    async fn save_code(
        &self,
        code: &AuthorizationCodeHash,
        grant: &CodeGrant,
        _now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let expires_at = at(grant.expires_at);
        self.db
            .execute(
                "INSERT INTO grantor_codes
                     (hash, state, client_id, family_id, expires_at, lapse_at, record)
                 VALUES ($1, $2, $3, $4, $5, $5, $6)
                 ON CONFLICT (hash) DO UPDATE SET state = excluded.state,
                     client_id = excluded.client_id, family_id = excluded.family_id,
                     expires_at = excluded.expires_at, lapse_at = excluded.lapse_at,
                     record = excluded.record",
                &[
                    Arg::Bytes(code.as_bytes()),
                    Arg::Int(LIVE),
                    Arg::Text(grant.client_id.as_str()),
                    Arg::Text(grant.family_id.as_str()),
                    Arg::Int(expires_at),
                    Arg::Text(&encode_record(grant)?),
                ],
            )
            .await?;
        Ok(())
    }

    async fn find_code(
        &self,
        code: &AuthorizationCodeHash,
        now: OffsetDateTime,
    ) -> Result<CodeLookup, StoreError> {
        let row = self
            .db
            .fetch_optional(
                "SELECT state, client_id, family_id, record FROM grantor_codes
                 WHERE hash = $1 AND lapse_at > $2",
                &[Arg::Bytes(code.as_bytes()), Arg::Int(at(now))],
            )
            .await?;
        let Some(row) = row else {
            return Ok(CodeLookup::Unknown);
        };
        if row.int(0)? == SPENT {
            return Ok(CodeLookup::Spent {
                client_id: ClientId::new(row.text(1)?),
                family_id: FamilyId::new(row.text(2)?),
            });
        }
        Ok(CodeLookup::Live(decode_record(&row.text(3)?)?))
    }

    async fn spend_code(
        &self,
        code: &AuthorizationCodeHash,
        mark: &SpentCode,
        now: OffsetDateTime,
    ) -> Result<CodeSpend, StoreError> {
        // One compare-and-set: of concurrent spends, one finds the row live.
        let row = self
            .db
            .fetch_optional(
                "UPDATE grantor_codes SET state = $2, client_id = $3, family_id = $4,
                     lapse_at = $5
                 WHERE hash = $1 AND state = $6 AND expires_at > $7
                 RETURNING record",
                &[
                    Arg::Bytes(code.as_bytes()),
                    Arg::Int(SPENT),
                    Arg::Text(mark.client_id.as_str()),
                    Arg::Text(mark.family_id.as_str()),
                    Arg::Int(at(mark.keep_until)),
                    Arg::Int(LIVE),
                    Arg::Int(at(now)),
                ],
            )
            .await?;
        match row {
            Some(row) => Ok(CodeSpend::Spent(decode_record(&row.text(0)?)?)),
            None => Ok(CodeSpend::Conflict),
        }
    }

    async fn restore_code(
        &self,
        code: &AuthorizationCodeHash,
        grant: &CodeGrant,
        now: OffsetDateTime,
    ) -> Result<CodeRestore, StoreError> {
        let restored = self
            .db
            .execute(
                "UPDATE grantor_codes SET state = $2, client_id = $3, lapse_at = expires_at,
                     record = $4
                 WHERE hash = $1 AND state = $5 AND family_id = $6 AND lapse_at > $7
                     AND expires_at > $7",
                &[
                    Arg::Bytes(code.as_bytes()),
                    Arg::Int(LIVE),
                    Arg::Text(grant.client_id.as_str()),
                    Arg::Text(&encode_record(grant)?),
                    Arg::Int(SPENT),
                    Arg::Text(grant.family_id.as_str()),
                    Arg::Int(at(now)),
                ],
            )
            .await?;
        Ok(if restored == 1 {
            CodeRestore::Restored
        } else {
            CodeRestore::Gone
        })
    }
}
