//! [`TokenStore`] in SQL: `grantor_tokens` (live tokens and spent marks) and
//! `grantor_revoked_families`.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{at, instant, lock_key, Arg, Dialect, Row, SqlStore, Tx};
use crate::error::StoreError;
use crate::store::record::{decode_record, encode_record};
use crate::store::token::{
    SpentMark, TokenChange, TokenExpectation, TokenLookup, TokenRecord, TokenSave, TokenStore,
    TokenUpdate,
};
use crate::token::TokenHash;
use crate::types::{ClientId, FamilyId};

const LIVE: i64 = 0;
const SPENT: i64 = 1;

/// The columns every token read takes, in this order.
const COLUMNS: &str = "state, client_id, family_id, expires_at, spent_at, successor, record";

/// What a token's row holds, read with [`COLUMNS`].
fn lookup(row: &Row) -> Result<TokenLookup, StoreError> {
    if row.int(0)? == LIVE {
        let record = row
            .opt_text(6)?
            .ok_or_else(|| StoreError::backend("a live token's row has no record"))?;
        return Ok(TokenLookup::Live(decode_record(&record)?));
    }
    let family_id = row
        .opt_text(2)?
        .ok_or_else(|| StoreError::backend("a spent mark's row has no family"))?;
    Ok(TokenLookup::Rotated {
        client_id: ClientId::new(row.text(1)?),
        family_id: FamilyId::new(family_id),
        rotated_at: instant(row.opt_int(4)?.unwrap_or_default())?,
        successor: row.opt_bytes(5)?.map(hash).transpose()?,
        keep_until: instant(row.int(3)?)?,
    })
}

/// A hash read back from a `BYTEA`/`BLOB` column.
fn hash(bytes: Vec<u8>) -> Result<TokenHash, StoreError> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::backend("a stored hash is not 32 bytes"))?;
    Ok(TokenHash::from_bytes(bytes))
}

/// `SELECT … FOR UPDATE` in PostgreSQL (the row stays as read until the transaction ends); SQLite
/// holds the whole database already.
fn for_update(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => " FOR UPDATE",
        Dialect::Sqlite => "",
    }
}

fn family_lock(family: &FamilyId) -> i64 {
    lock_key("family", family.as_str().as_bytes())
}

/// Whether any of `families` is marked revoked at `now` (their locks held).
async fn any_revoked<'f>(
    tx: &mut Tx,
    families: impl Iterator<Item = &'f FamilyId>,
    now: i64,
) -> Result<bool, StoreError> {
    for family in families {
        let found = tx
            .fetch_optional(
                "SELECT 1 FROM grantor_revoked_families WHERE family_id = $1 AND until_at > $2",
                &[Arg::Text(family.as_str()), Arg::Int(now)],
            )
            .await?;
        if found.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Saves a live token, replacing what was under its hash: `$1` hash, `$2` state, `$3` client,
/// `$4` family, `$5` expiry, `$6` record.
const SAVE_LIVE: &str = "INSERT INTO grantor_tokens
         (hash, state, client_id, family_id, expires_at, spent_at, successor, record)
     VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6)
     ON CONFLICT (hash) DO UPDATE SET
         state = excluded.state, client_id = excluded.client_id,
         family_id = excluded.family_id, expires_at = excluded.expires_at,
         spent_at = NULL, successor = NULL, record = excluded.record";

/// Leaves nothing under `$1`.
const DELETE: &str = "DELETE FROM grantor_tokens WHERE hash = $1";

/// [`SAVE_LIVE`]'s values for `record` under `hash`, written as `encoded`.
fn live_args<'a>(hash: &'a TokenHash, record: &'a TokenRecord, encoded: &'a str) -> [Arg<'a>; 6] {
    [
        Arg::Bytes(hash.as_bytes()),
        Arg::Int(LIVE),
        Arg::Text(record.client_id.as_str()),
        Arg::OptText(record.family_id.as_ref().map(FamilyId::as_str)),
        Arg::Int(at(record.expires_at)),
        Arg::Text(encoded),
    ]
}

/// Saves `tokens` (their families' locks held, none revoked): each replaces what was under its
/// hash; one already expired at `now` leaves nothing there.
async fn save(
    tx: &mut Tx,
    tokens: &[(TokenHash, TokenRecord)],
    now: i64,
) -> Result<(), StoreError> {
    for (hash, record) in tokens {
        if at(record.expires_at) <= now {
            tx.execute(DELETE, &[Arg::Bytes(hash.as_bytes())]).await?;
            continue;
        }
        let encoded = encode_record(record)?;
        tx.execute(SAVE_LIVE, &live_args(hash, record, &encoded))
            .await?;
    }
    Ok(())
}

/// Writes `mark` in place of the token under `hash` (nothing, if it has lapsed at `now`).
async fn write_mark(
    tx: &mut Tx,
    hash: &TokenHash,
    mark: &SpentMark,
    now: i64,
) -> Result<(), StoreError> {
    let keep_until = at(mark.keep_until);
    if keep_until <= now {
        tx.execute(DELETE, &[Arg::Bytes(hash.as_bytes())]).await?;
        return Ok(());
    }
    tx.execute(
        "INSERT INTO grantor_tokens
             (hash, state, client_id, family_id, expires_at, spent_at, successor, record)
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)
         ON CONFLICT (hash) DO UPDATE SET
             state = excluded.state, client_id = excluded.client_id,
             family_id = excluded.family_id, expires_at = excluded.expires_at,
             spent_at = excluded.spent_at, successor = excluded.successor, record = NULL",
        &[
            Arg::Bytes(hash.as_bytes()),
            Arg::Int(SPENT),
            Arg::Text(mark.client_id.as_str()),
            Arg::Text(mark.family_id.as_str()),
            Arg::Int(keep_until),
            Arg::Int(at(mark.spent_at)),
            Arg::OptBytes(mark.successor.as_ref().map(|s| &s.as_bytes()[..])),
        ],
    )
    .await?;
    Ok(())
}

/// Whether the token under `hash` is as `expected` at `now` (its row locked until the
/// transaction ends, in PostgreSQL).
async fn holds(
    tx: &mut Tx,
    hash: &TokenHash,
    expected: &TokenExpectation,
    now: i64,
) -> Result<bool, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM grantor_tokens WHERE hash = $1{}",
        for_update(tx.dialect())
    );
    let Some(row) = tx
        .fetch_optional(&sql, &[Arg::Bytes(hash.as_bytes())])
        .await?
    else {
        return Ok(false);
    };
    if row.int(3)? <= now {
        return Ok(false);
    }
    let state = row.int(0)?;
    Ok(match expected {
        TokenExpectation::Live => state == LIVE && row.opt_text(6)?.is_some(),
        TokenExpectation::Spent { successor } => {
            state == SPENT
                && row.opt_bytes(5)?.as_deref() == successor.as_ref().map(|s| &s.as_bytes()[..])
        }
    })
}

#[async_trait]
impl TokenStore for SqlStore {
    async fn save_tokens(
        &self,
        tokens: &[(TokenHash, TokenRecord)],
        now: OffsetDateTime,
    ) -> Result<TokenSave, StoreError> {
        let now = at(now);
        if let [(hash, record)] = tokens {
            if record.family_id.is_none() {
                // One token that stands alone (client credentials): no family to check, so one
                // statement.
                if at(record.expires_at) <= now {
                    self.db
                        .execute(DELETE, &[Arg::Bytes(hash.as_bytes())])
                        .await?;
                } else {
                    let encoded = encode_record(record)?;
                    self.db
                        .execute(SAVE_LIVE, &live_args(hash, record, &encoded))
                        .await?;
                }
                return Ok(TokenSave::Saved);
            }
        }
        let families = || tokens.iter().filter_map(|(_, r)| r.family_id.as_ref());
        let mut tx = self.db.begin().await?;
        tx.lock(families().map(family_lock).collect()).await?;
        if any_revoked(&mut tx, families(), now).await? {
            return Ok(TokenSave::FamilyRevoked);
        }
        save(&mut tx, tokens, now).await?;
        tx.commit().await?;
        Ok(TokenSave::Saved)
    }

    async fn find_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<TokenLookup, StoreError> {
        let row = self
            .db
            .fetch_optional(
                &format!(
                    "SELECT {COLUMNS} FROM grantor_tokens WHERE hash = $1 AND expires_at > $2"
                ),
                &[Arg::Bytes(hash.as_bytes()), Arg::Int(at(now))],
            )
            .await?;
        row.map_or(Ok(TokenLookup::Unknown), |row| lookup(&row))
    }

    async fn update_tokens(
        &self,
        change: &TokenChange,
        now: OffsetDateTime,
    ) -> Result<TokenUpdate, StoreError> {
        let now = at(now);
        let inserted = || {
            change
                .insert
                .iter()
                .filter_map(|(_, r)| r.family_id.as_ref())
        };
        let marked = change.mark.iter().map(|(_, m)| &m.family_id);
        let mut tx = self.db.begin().await?;
        tx.lock(inserted().chain(marked).map(family_lock).collect())
            .await?;
        for (hash, expected) in &change.expect {
            if !holds(&mut tx, hash, expected, now).await? {
                return Ok(TokenUpdate::Conflict);
            }
        }
        if any_revoked(&mut tx, inserted(), now).await? {
            return Ok(TokenUpdate::FamilyRevoked);
        }
        for (hash, mark) in &change.mark {
            write_mark(&mut tx, hash, mark, now).await?;
        }
        save(&mut tx, &change.insert, now).await?;
        tx.commit().await?;
        Ok(TokenUpdate::Applied)
    }

    async fn revoke_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<TokenRecord>, StoreError> {
        // One statement: a spent mark, or a token spent meanwhile, is left as it is.
        self.db
            .record(
                "DELETE FROM grantor_tokens
                 WHERE hash = $1 AND state = $2 AND expires_at > $3
                 RETURNING record",
                &[
                    Arg::Bytes(hash.as_bytes()),
                    Arg::Int(LIVE),
                    Arg::Int(at(now)),
                ],
            )
            .await
    }

    async fn revoke_family(
        &self,
        family: &FamilyId,
        remember_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let (now, until) = (at(now), at(remember_until));
        let mut tx = self.db.begin().await?;
        tx.lock(vec![family_lock(family)]).await?;
        if until > now {
            tx.execute(
                "INSERT INTO grantor_revoked_families (family_id, until_at) VALUES ($1, $2)
                 ON CONFLICT (family_id) DO UPDATE SET until_at = CASE
                     WHEN grantor_revoked_families.until_at > excluded.until_at
                     THEN grantor_revoked_families.until_at ELSE excluded.until_at END",
                &[Arg::Text(family.as_str()), Arg::Int(until)],
            )
            .await?;
        }
        // Live tokens that have expired are left to the sweep (which would otherwise wait on
        // this transaction's row locks, or it on the sweep's).
        let revoked = tx
            .execute(
                "DELETE FROM grantor_tokens WHERE family_id = $1 AND state = $2 AND expires_at > $3",
                &[Arg::Text(family.as_str()), Arg::Int(LIVE), Arg::Int(now)],
            )
            .await?;
        tx.commit().await?;
        Ok(revoked)
    }
}
