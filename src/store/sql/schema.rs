//! The tables, their creation ([`migrate`]) and the expiry sweep ([`purge`]).

use super::{lock_key, Arg, Db, Dialect};
use crate::error::StoreError;

/// The schema version this grantor creates and reads.
const SCHEMA_VERSION: i64 = 2;

/// The tables of the current schema version, with `{bytes}` for the binary type of the dialect.
///
/// Every time is nanoseconds since the Unix epoch; every hash is the 32 bytes of a SHA-256.
const TABLES: &[&str] = &[
    // Tokens and spent marks (`state` 0: live, with its record; 1: spent, with the mark's
    // fields). `expires_at`: the token's expiry, or the mark's `keep_until`.
    "CREATE TABLE IF NOT EXISTS grantor_tokens (
        hash {bytes} PRIMARY KEY,
        state BIGINT NOT NULL,
        client_id TEXT NOT NULL,
        family_id TEXT,
        expires_at BIGINT NOT NULL,
        spent_at BIGINT,
        successor {bytes},
        record TEXT
    )",
    "CREATE INDEX IF NOT EXISTS grantor_tokens_family ON grantor_tokens (family_id)",
    "CREATE INDEX IF NOT EXISTS grantor_tokens_expires ON grantor_tokens (expires_at)",
    // Families marked revoked, until when.
    "CREATE TABLE IF NOT EXISTS grantor_revoked_families (
        family_id TEXT PRIMARY KEY,
        until_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS grantor_revoked_families_until
        ON grantor_revoked_families (until_at)",
    // Authorization requests awaiting a decision.
    "CREATE TABLE IF NOT EXISTS grantor_pending (
        hash {bytes} PRIMARY KEY,
        client_id TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        record TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS grantor_pending_client ON grantor_pending (client_id, expires_at)",
    "CREATE INDEX IF NOT EXISTS grantor_pending_expires ON grantor_pending (expires_at)",
    // Authorization codes (`state` 0: live; 1: spent into the used mark of `client_id` and
    // `family_id`). `expires_at`: the code's own; `lapse_at`: when the row means nothing
    // (the code's expiry while live, the mark's `keep_until` once spent).
    "CREATE TABLE IF NOT EXISTS grantor_codes (
        hash {bytes} PRIMARY KEY,
        state BIGINT NOT NULL,
        client_id TEXT NOT NULL,
        family_id TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        lapse_at BIGINT NOT NULL,
        record TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS grantor_codes_lapse ON grantor_codes (lapse_at)",
    // Device authorization requests (`status` 0: pending, 1: approved, 2: denied), and the user
    // codes that find them while they are pending.
    "CREATE TABLE IF NOT EXISTS grantor_devices (
        device_code {bytes} PRIMARY KEY,
        client_id TEXT NOT NULL,
        status BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        keep_until BIGINT NOT NULL,
        record TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS grantor_devices_client ON grantor_devices (client_id, expires_at)",
    "CREATE INDEX IF NOT EXISTS grantor_devices_expires ON grantor_devices (expires_at)",
    "CREATE INDEX IF NOT EXISTS grantor_devices_keep ON grantor_devices (keep_until)",
    "CREATE TABLE IF NOT EXISTS grantor_device_user_codes (
        user_code {bytes} PRIMARY KEY,
        device_code {bytes} NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS grantor_device_user_codes_expires
        ON grantor_device_user_codes (expires_at)",
    // Password sign-ins owing a second factor, and each user's last accepted one-time code.
    "CREATE TABLE IF NOT EXISTS grantor_mfa_tokens (
        hash {bytes} PRIMARY KEY,
        expires_at BIGINT NOT NULL,
        record TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS grantor_mfa_tokens_expires ON grantor_mfa_tokens (expires_at)",
    "CREATE TABLE IF NOT EXISTS grantor_otp_counters (
        user_id TEXT PRIMARY KEY,
        counter BIGINT NOT NULL,
        until_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS grantor_otp_counters_until ON grantor_otp_counters (until_at)",
    // Registered clients: the secret's hash (NULL for a public client), grant types separated by
    // spaces, scopes, the redirect URIs as a JSON array, the access token format (`opaque`,
    // `jwt`; NULL: the server's default), and the resources it may name as a JSON array (NULL:
    // the server's).
    "CREATE TABLE IF NOT EXISTS grantor_clients (
        client_id TEXT PRIMARY KEY,
        secret_hash TEXT,
        grant_types TEXT NOT NULL,
        allowed_scope TEXT NOT NULL,
        default_scope TEXT NOT NULL,
        redirect_uris TEXT NOT NULL,
        access_token_format TEXT,
        allowed_resources TEXT
    )",
    // Failed sign-ins per key in their window, and the checks in flight (leases).
    "CREATE TABLE IF NOT EXISTS grantor_attempts (
        attempt_key TEXT PRIMARY KEY,
        failures BIGINT NOT NULL,
        window_ends BIGINT
    )",
    "CREATE INDEX IF NOT EXISTS grantor_attempts_window ON grantor_attempts (window_ends)",
    "CREATE TABLE IF NOT EXISTS grantor_attempt_leases (
        attempt_key TEXT NOT NULL,
        lease_id BIGINT NOT NULL,
        until_at BIGINT NOT NULL,
        PRIMARY KEY (attempt_key, lease_id)
    )",
    "CREATE INDEX IF NOT EXISTS grantor_attempt_leases_until ON grantor_attempt_leases (until_at)",
];

/// Creates the tables of [`SCHEMA_VERSION`] unless the database has them.
pub(super) async fn migrate(db: &Db) -> Result<(), StoreError> {
    let bytes = match db.dialect() {
        Dialect::Postgres => "BYTEA",
        Dialect::Sqlite => "BLOB",
    };
    let mut tx = db.begin().await?;
    // Servers starting together migrate one after another.
    tx.lock(vec![lock_key("migrate", b"")]).await?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS grantor_schema (version BIGINT NOT NULL)",
        &[],
    )
    .await?;
    let found = tx
        .fetch_optional("SELECT MAX(version) FROM grantor_schema", &[])
        .await?
        .map(|row| row.opt_int(0))
        .transpose()?
        .flatten();
    match found {
        Some(version) if version > SCHEMA_VERSION => {
            return Err(StoreError::backend(format!(
                "the database holds grantor schema version {version}, written by a newer \
                 grantor; this one reads up to version {SCHEMA_VERSION}"
            )))
        }
        Some(version) if version == SCHEMA_VERSION => {}
        Some(1) => {
            // Version 2 added the clients' resources (RFC 8707); every record written by
            // version 1 reads as before. A version 1 database from before the clients table
            // lacks it: every table missing is made first (with the column, if it is the
            // clients'), then the column is added where it is missing.
            for table in TABLES {
                tx.execute(&table.replace("{bytes}", bytes), &[]).await?;
            }
            let has_column = match db.dialect() {
                Dialect::Postgres => {
                    "SELECT COUNT(*) FROM information_schema.columns
                     WHERE table_name = 'grantor_clients' AND column_name = 'allowed_resources'
                     AND table_schema = current_schema()"
                }
                Dialect::Sqlite => {
                    "SELECT COUNT(*) FROM pragma_table_info('grantor_clients')
                     WHERE name = 'allowed_resources'"
                }
            };
            let found = tx
                .fetch_optional(has_column, &[])
                .await?
                .map(|row| row.opt_int(0))
                .transpose()?
                .flatten()
                .unwrap_or(0);
            if found == 0 {
                tx.execute(
                    "ALTER TABLE grantor_clients ADD COLUMN allowed_resources TEXT",
                    &[],
                )
                .await?;
            }
            tx.execute(
                "INSERT INTO grantor_schema (version) VALUES ($1)",
                &[Arg::Int(SCHEMA_VERSION)],
            )
            .await?;
        }
        _ => {
            for table in TABLES {
                tx.execute(&table.replace("{bytes}", bytes), &[]).await?;
            }
            tx.execute(
                "INSERT INTO grantor_schema (version) VALUES ($1)",
                &[Arg::Int(SCHEMA_VERSION)],
            )
            .await?;
        }
    }
    tx.commit().await
}

/// How long a lapsed lease is kept for the next check of its key to count as a failure: longer
/// than any sign-in window a server would set.
const LEASE_MEMORY_NANOS: i64 = 24 * 60 * 60 * 1_000_000_000;

/// Deletes, `batch` rows per statement, every row that means nothing at `now`.
///
/// Each statement tests its condition twice: in the subquery that picks the rows, and again on
/// the row it deletes, so that a row rewritten meanwhile by another request (a counter moved
/// forward, a family's mark extended) is left alone. In PostgreSQL the subquery skips rows that
/// others hold locked (`FOR UPDATE SKIP LOCKED`): the sweep never waits on a request, and no
/// request waits on it in a circle.
pub(super) async fn purge(db: &Db, now: i64, batch: i64) -> Result<u64, StoreError> {
    let sweeps: [(&str, &str, &str, i64); 10] = [
        ("grantor_tokens", "hash", "expires_at <= $1", now),
        (
            "grantor_revoked_families",
            "family_id",
            "until_at <= $1",
            now,
        ),
        ("grantor_pending", "hash", "expires_at <= $1", now),
        ("grantor_codes", "hash", "lapse_at <= $1", now),
        ("grantor_devices", "device_code", "keep_until <= $1", now),
        (
            "grantor_device_user_codes",
            "user_code",
            "expires_at <= $1",
            now,
        ),
        ("grantor_mfa_tokens", "hash", "expires_at <= $1", now),
        ("grantor_otp_counters", "user_id", "until_at <= $1", now),
        (
            "grantor_attempt_leases",
            "attempt_key, lease_id",
            "until_at <= $1",
            now.saturating_sub(LEASE_MEMORY_NANOS),
        ),
        (
            "grantor_attempts",
            "attempt_key",
            "(window_ends IS NULL OR window_ends <= $1) AND NOT EXISTS \
             (SELECT 1 FROM grantor_attempt_leases l \
              WHERE l.attempt_key = grantor_attempts.attempt_key)",
            now,
        ),
    ];
    let skip_locked = match db.dialect() {
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    };
    let mut total = 0;
    for (table, key, lapsed, when) in sweeps {
        let sql = format!(
            "DELETE FROM {table} WHERE ({key}) IN \
             (SELECT {key} FROM {table} WHERE {lapsed} LIMIT $2{skip_locked}) AND {lapsed}"
        );
        loop {
            let gone = db.execute(&sql, &[Arg::Int(when), Arg::Int(batch)]).await?;
            total += gone;
            if gone < u64::try_from(batch).unwrap_or(u64::MAX) {
                break;
            }
        }
    }
    Ok(total)
}
