//! `SqlStore`: the token, code, device, second-factor and attempt stores in PostgreSQL or SQLite,
//! through sqlx (features `postgres` and `sqlite`).
//!
//! One type, two databases: [`SqlStore::postgres`] over a `PgPool`, [`SqlStore::sqlite`] over a
//! `SqlitePool`, both passed in by the host (grantor opens no connection of its own). Its tables
//! are created by [`SqlStore::migrate`]; expired rows are deleted by
//! [`SqlStore::purge_expired`], in batches.
//!
//! # How each step is atomic
//!
//! Every method is one statement, or one transaction:
//!
//! - a compare-and-set on one row is one statement (`UPDATE … WHERE state = … RETURNING`,
//!   `DELETE … RETURNING`, `INSERT … ON CONFLICT`), which both databases apply atomically (in
//!   PostgreSQL an `UPDATE` waiting on a row lock checks its `WHERE` again on the row it gets);
//! - a step over several rows (counting requests against a bound before saving one, checking a
//!   family before saving into it, spending a refresh token and saving its successors) is one
//!   transaction. In SQLite it begins with `BEGIN IMMEDIATE`, which takes the database's write
//!   lock at once, so such transactions run one after another. In PostgreSQL it first takes
//!   transaction-scoped advisory locks (`pg_advisory_xact_lock`) on what it reads and writes (a
//!   token, a family, a bound), in a fixed order, so that two steps over the same thing run one
//!   after another and steps over different things run side by side.
//!
//! Records are kept whole ([`encode_record`](crate::encode_record)) in a `record` column, beside
//! the columns the queries compare; only hashes of secrets are stored. Times are nanoseconds
//! since the Unix epoch (`BIGINT`), compared with the `now` each method is given.

mod attempts;
mod clients;
mod codes;
mod device;
mod mfa;
mod schema;
mod tokens;

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::store::record::{decode_record, Record};

/// grantor's stores in a SQL database: [`TokenStore`](crate::TokenStore),
/// [`CodeStore`](crate::CodeStore), [`DeviceCodeStore`](crate::DeviceCodeStore),
/// [`MfaStore`](crate::MfaStore) and [`AttemptLimiter`](crate::AttemptLimiter), each step one
/// statement or one transaction, so that several servers on one database behave as one; and
/// [`ClientStore`](crate::ClientStore), over clients registered with
/// [`save_client`](Self::save_client).
///
/// ```no_run
/// # #[cfg(feature = "postgres")]
/// # async fn demo(clients: grantor::MemoryClientStore) -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use grantor::{AuthorizationServer, SqlStore};
///
/// let pool = sqlx::PgPool::connect("postgres://grantor@localhost/grantor").await?;
/// let store = Arc::new(SqlStore::postgres(pool));
/// store.migrate().await?; // creates grantor's tables, if they are not there yet
/// let server = AuthorizationServer::builder(Arc::new(clients), store.clone())
///     .attempt_limiter(store.clone())
///     .mfa_store(store.clone())
///     .enable_client_credentials_grant()
///     .build()?;
/// # Ok(()) }
/// ```
///
/// Call [`purge_expired`](Self::purge_expired) now and then (once a minute, say) to delete what
/// has expired; nothing depends on it but the size of the tables.
#[derive(Clone)]
pub struct SqlStore {
    db: Db,
    /// The secret failed-login keys are keyed by, if any.
    key_secret: Option<Arc<[u8]>>,
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("database", &self.db.dialect())
            .field(
                "key_secret",
                &self.key_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

/// The pool, of one database or the other.
#[derive(Clone)]
enum Db {
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
}

/// Which SQL a statement is written in, where the two differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// With one database's feature alone, the other's variant is never made.
#[cfg_attr(not(all(feature = "postgres", feature = "sqlite")), allow(dead_code))]
enum Dialect {
    Postgres,
    Sqlite,
}

impl SqlStore {
    /// A store in the PostgreSQL database of `pool` (call [`migrate`](Self::migrate) once to
    /// create its tables).
    #[cfg(feature = "postgres")]
    pub fn postgres(pool: sqlx::PgPool) -> Self {
        Self {
            db: Db::Postgres(pool),
            key_secret: None,
        }
    }

    /// A store in the SQLite database of `pool` (call [`migrate`](Self::migrate) once to create
    /// its tables). Make the pool with [`sqlite_options`](Self::sqlite_options) (WAL, a busy
    /// timeout), or options of your own to the same effect.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(pool: sqlx::SqlitePool) -> Self {
        Self {
            db: Db::Sqlite(pool),
            key_secret: None,
        }
    }

    /// Connection options for an SQLite file as this store wants it, for the pool the host
    /// makes: the file created if missing, WAL (reads go on while a write transaction runs) and
    /// a 30-second busy timeout (writers wait their turn). sqlx sets none of them by itself.
    /// `path` is a file path or a `sqlite://FILE` URL.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] for a URL sqlx cannot read.
    #[cfg(feature = "sqlite")]
    pub fn sqlite_options(path: &str) -> Result<sqlx::sqlite::SqliteConnectOptions, StoreError> {
        let options = if path.starts_with("sqlite:") {
            <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(path)
                .map_err(StoreError::backend)?
        } else {
            sqlx::sqlite::SqliteConnectOptions::new().filename(path)
        };
        Ok(options
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(30)))
    }

    /// Keeps failed-login keys (which hold usernames as typed, and caller addresses) and the
    /// user ids of one-time code counters as HMAC-SHA256s under `secret` instead of plain
    /// SHA-256s, so that a copy of the database cannot be matched against a list of likely
    /// usernames, addresses or user ids. Every server sharing
    /// the database must use the same secret (from your secret manager, say): with another one
    /// it would count failed logins apart.
    pub fn with_key_secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.key_secret = Some(secret.as_ref().into());
        self
    }

    /// A name from what people type or are (a failed-login key, a user id) as the tables key
    /// it: its SHA-256, or its HMAC-SHA256 under the key secret, in hex.
    fn stored_name(&self, name: &str) -> String {
        crate::store::keyed::name_digest(self.key_secret.as_deref(), name)
    }

    /// Creates grantor's tables and indexes (all named `grantor_…`) if they are not there yet,
    /// and records the schema version in `grantor_schema`. Safe to call at every start, from
    /// several servers at once.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] if the database refuses, or holds a schema newer than this grantor's.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        schema::migrate(&self.db).await
    }

    /// Deletes what has expired at `now` (tokens and spent marks, codes, requests, device
    /// requests, `mfa_token`s, one-time code counters, revoked-family marks, closed attempt
    /// windows), at most `batch` rows per statement, so that no statement holds its locks long.
    /// Answers how many rows went.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] if the database refuses.
    pub async fn purge_expired(&self, now: OffsetDateTime, batch: u32) -> Result<u64, StoreError> {
        schema::purge(&self.db, at(now), i64::from(batch.max(1))).await
    }
}

impl Db {
    fn dialect(&self) -> Dialect {
        match self {
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "sqlite")]
            Db::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Begins a write transaction (SQLite: `BEGIN IMMEDIATE`, the database's write lock at once).
    async fn begin(&self) -> Result<Tx, StoreError> {
        match self {
            #[cfg(feature = "postgres")]
            // READ COMMITTED whatever the server's default: each statement sees what the
            // transactions it waited for (on a lock) committed.
            Db::Postgres(pool) => Ok(Tx::Postgres(
                pool.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
                    .await
                    .map_err(failed)?,
            )),
            #[cfg(feature = "sqlite")]
            Db::Sqlite(pool) => Ok(Tx::Sqlite(
                pool.begin_with("BEGIN IMMEDIATE").await.map_err(failed)?,
            )),
        }
    }

    /// Runs one statement, answering the rows it changed.
    async fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        match self {
            #[cfg(feature = "postgres")]
            Db::Postgres(pool) => run!(execute, pg, sql, args, pool),
            #[cfg(feature = "sqlite")]
            Db::Sqlite(pool) => run!(execute, lite, sql, args, pool),
        }
    }

    /// Runs one statement, answering its first row, if any.
    async fn fetch_optional(&self, sql: &str, args: &[Arg<'_>]) -> Result<Option<Row>, StoreError> {
        match self {
            #[cfg(feature = "postgres")]
            Db::Postgres(pool) => run!(fetch_optional, pg, Postgres, sql, args, pool),
            #[cfg(feature = "sqlite")]
            Db::Sqlite(pool) => run!(fetch_optional, lite, Sqlite, sql, args, pool),
        }
    }

    /// Runs one statement whose first column is a record (as [`encode_record`] wrote it),
    /// answering the record of its first row, if one came back.
    async fn record<R: Record>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<R>, StoreError> {
        self.fetch_optional(sql, args)
            .await?
            .map(|row| decode_record(&row.text(0)?))
            .transpose()
    }
}

/// Runs a statement for the database at hand, on `$on` (a pool, or a transaction's connection):
/// `execute` answers the rows it changed, `fetch_optional` its first row.
macro_rules! run {
    (execute, $db:ident, $sql:expr, $args:expr, $on:expr) => {
        $db::query($sql, $args)
            .execute($on)
            .await
            .map(|done| done.rows_affected())
            .map_err(failed)
    };
    (fetch_optional, $db:ident, $row:ident, $sql:expr, $args:expr, $on:expr) => {
        $db::query($sql, $args)
            .fetch_optional($on)
            .await
            .map(|row| row.map(Row::$row))
            .map_err(failed)
    };
}
use run;

/// A write transaction; rolled back if dropped before [`commit`](Tx::commit).
enum Tx {
    #[cfg(feature = "postgres")]
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

impl Tx {
    fn dialect(&self) -> Dialect {
        match self {
            #[cfg(feature = "postgres")]
            Tx::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Takes the locks of `keys` (see [`lock_key`]) for the rest of the transaction, in
    /// ascending order, so that two transactions wanting some of the same never wait on each
    /// other in a circle. PostgreSQL: advisory locks; SQLite holds the whole database already.
    async fn lock(&mut self, mut keys: Vec<i64>) -> Result<(), StoreError> {
        match self {
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx) => {
                keys.sort_unstable();
                keys.dedup();
                for key in keys {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(key)
                        .execute(&mut **tx)
                        .await
                        .map_err(failed)?;
                }
                Ok(())
            }
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(_) => {
                keys.clear();
                Ok(())
            }
        }
    }

    async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        match self {
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx) => run!(execute, pg, sql, args, &mut **tx),
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx) => run!(execute, lite, sql, args, &mut **tx),
        }
    }

    async fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<Row>, StoreError> {
        match self {
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx) => run!(fetch_optional, pg, Postgres, sql, args, &mut **tx),
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx) => run!(fetch_optional, lite, Sqlite, sql, args, &mut **tx),
        }
    }

    async fn commit(self) -> Result<(), StoreError> {
        match self {
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx) => tx.commit().await.map_err(failed),
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx) => tx.commit().await.map_err(failed),
        }
    }
}

/// A value bound to a statement's `$n`.
#[derive(Clone, Copy, Debug)]
enum Arg<'a> {
    Int(i64),
    Text(&'a str),
    OptText(Option<&'a str>),
    Bytes(&'a [u8]),
    OptBytes(Option<&'a [u8]>),
}

/// A row a statement answered.
enum Row {
    #[cfg(feature = "postgres")]
    Postgres(sqlx::postgres::PgRow),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::sqlite::SqliteRow),
}

macro_rules! column {
    ($self:ident, $i:ident, $t:ty) => {
        match $self {
            #[cfg(feature = "postgres")]
            Row::Postgres(row) => sqlx::Row::try_get::<$t, usize>(row, $i).map_err(failed),
            #[cfg(feature = "sqlite")]
            Row::Sqlite(row) => sqlx::Row::try_get::<$t, usize>(row, $i).map_err(failed),
        }
    };
}

impl Row {
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        column!(self, i, i64)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        column!(self, i, Option<i64>)
    }

    fn text(&self, i: usize) -> Result<String, StoreError> {
        column!(self, i, String)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        column!(self, i, Option<String>)
    }

    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        column!(self, i, Option<Vec<u8>>)
    }
}

/// A module `$name` whose `query` builds a statement of `$db` with `args` bound to `$1`, `$2`…
macro_rules! binder {
    ($name:ident, $db:ty, $arguments:ty) => {
        mod $name {
            use super::Arg;
            use sqlx::query::Query;

            pub(super) fn query<'q>(sql: &'q str, args: &[Arg<'q>]) -> Query<'q, $db, $arguments> {
                let mut query = sqlx::query(sql);
                for arg in args {
                    query = match *arg {
                        Arg::Int(v) => query.bind(v),
                        Arg::Text(v) => query.bind(v),
                        Arg::OptText(v) => query.bind(v),
                        Arg::Bytes(v) => query.bind(v),
                        Arg::OptBytes(v) => query.bind(v),
                    };
                }
                query
            }
        }
    };
}

#[cfg(feature = "postgres")]
binder!(pg, sqlx::Postgres, sqlx::postgres::PgArguments);
#[cfg(feature = "sqlite")]
binder!(lite, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>);

/// A database error as a store error: a connection that cannot be had (refused, timed out, the
/// pool closed, SQLite busy) is [`StoreError::Unavailable`]; anything else
/// [`StoreError::Backend`].
fn failed(error: sqlx::Error) -> StoreError {
    let busy = match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => busy_database(db.as_ref()),
        _ => false,
    };
    if busy {
        StoreError::unavailable(error)
    } else {
        StoreError::backend(error)
    }
}

/// Whether a database's own error says it cannot serve now.
fn busy_database(db: &dyn sqlx::error::DatabaseError) -> bool {
    #[cfg(feature = "sqlite")]
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // An extended code, whose low byte is the primary one: SQLITE_BUSY (5) and SQLITE_LOCKED
        // (6), whatever their variant (BUSY_TIMEOUT, LOCKED_SHAREDCACHE…).
        return db
            .code()
            .and_then(|code| code.parse::<u32>().ok())
            .is_some_and(|code| matches!(code & 0xff, 5 | 6));
    }
    // PostgreSQL: too many connections, or the server is shutting down or starting up.
    matches!(db.code().as_deref(), Some("53300" | "57P01" | "57P03"))
}

/// `t` as the tables keep times: nanoseconds since the Unix epoch (clamped to what `BIGINT`
/// holds: the years 1678 to 2262).
fn at(t: OffsetDateTime) -> i64 {
    let nanos = t.unix_timestamp_nanos();
    i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
}

/// The instant `nanos` (as [`at`] wrote it) stands for.
fn instant(nanos: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).map_err(StoreError::backend)
}

/// The advisory lock of `id` in `domain` (a token's hash, a family, a bound): the first eight
/// bytes of a SHA-256 over both. Two different ids sharing a lock only wait for each other.
fn lock_key(domain: &str, id: &[u8]) -> i64 {
    let digest = Sha256::new()
        .chain_update(domain.as_bytes())
        .chain_update([0])
        .chain_update(id)
        .finalize();
    let mut first = [0u8; 8];
    for (out, byte) in first.iter_mut().zip(digest.iter()) {
        *out = *byte;
    }
    i64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_in_nanoseconds() {
        let t = time::macros::datetime!(2026-11-26 10:30:00.123456789 UTC);
        assert_eq!(instant(at(t)).ok(), Some(t));
        assert_eq!(at(OffsetDateTime::UNIX_EPOCH), 0);
        // Beyond BIGINT: clamped, never wrapped.
        let far = time::macros::datetime!(9999-01-01 0:00 UTC);
        assert_eq!(at(far), i64::MAX);
    }

    #[test]
    fn lock_keys_tell_domains_and_ids_apart() {
        assert_ne!(lock_key("token", b"a"), lock_key("family", b"a"));
        assert_ne!(lock_key("token", b"a"), lock_key("token", b"b"));
        assert_eq!(lock_key("token", b"a"), lock_key("token", b"a"));
    }
}
