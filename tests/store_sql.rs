//! The store conformance kit, run against `SqlStore` on SQLite (a fresh file per check) and on
//! PostgreSQL (a private server for this test binary), as a host runs it on its own store; plus
//! what is particular to SQL: two servers on one database, a restart on one SQLite file, the
//! schema and the expiry sweep, and nothing recoverable in any row.
#![cfg(all(feature = "postgres", feature = "sqlite", feature = "jwt"))]

mod common;
mod postgres_support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{answer, basic};
use grantor::{AuthorizationServer, SqlStore, TokenRequest};
use postgres_support::PostgresServer;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqlitePoolOptions;

/// A folder removed when dropped: the SQLite file of one check.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "grantor-sqlite-{}-{}",
            std::process::id(),
            grantor::FamilyId::generate()
        ));
        std::fs::create_dir_all(&dir).expect("temporary folder");
        Self(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("grantor.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A pool on the SQLite file at `path`, as a host opens one: WAL, a busy timeout, a few
/// connections.
async fn sqlite_pool(path: &std::path::Path) -> sqlx::SqlitePool {
    let options = SqlStore::sqlite_options(path.to_str().expect("a UTF-8 path")).expect("options");
    SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .expect("sqlite pool")
}

/// A store on a fresh SQLite file, with its folder as the guard that outlives it.
async fn sqlite() -> (Arc<SqlStore>, TempDir) {
    let dir = TempDir::new();
    let store = SqlStore::sqlite(sqlite_pool(&dir.file()).await);
    store.migrate().await.expect("migrate");
    (Arc::new(store), dir)
}

/// A pool on this binary's PostgreSQL server (started on first use).
async fn pg_pool() -> sqlx::PgPool {
    let url = PostgresServer::shared().url();
    PgPoolOptions::new()
        .max_connections(20)
        .connect(url)
        .await
        .expect("a pool on the test cluster")
}

/// A store on the shared PostgreSQL database (the checks draw fresh keys, so they may share it).
async fn postgres() -> Arc<SqlStore> {
    let store = SqlStore::postgres(pg_pool().await);
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

/// A store on a PostgreSQL database of its own (for a check that counts or deletes every row).
async fn postgres_alone() -> Arc<SqlStore> {
    postgres_alone_with_pool().await.0
}

/// [`postgres_alone`], with its pool.
async fn postgres_alone_with_pool() -> (Arc<SqlStore>, sqlx::PgPool) {
    let shared = pg_pool().await;
    let name = format!(
        "grantor_{}",
        grantor::FamilyId::generate().as_str().to_lowercase()
    );
    let name: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&shared)
        .await
        .expect("create database");
    let url = PostgresServer::shared()
        .url()
        .replace("/postgres", &format!("/{name}"));
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .expect("connect");
    let store = SqlStore::postgres(pool.clone());
    store.migrate().await.expect("migrate");
    (Arc::new(store), pool)
}

mod on_sqlite {
    use super::*;

    grantor::token_store_conformance!(sqlite().await);
    grantor::attempt_limiter_conformance!(sqlite().await);
    grantor::code_store_conformance!(sqlite().await);
    grantor::device_code_store_conformance!(sqlite().await);
    grantor::mfa_store_conformance!(sqlite().await);
}

/// Each check on a database of its own: the bound checks count every request in the store.
mod on_postgres {
    use super::*;

    grantor::token_store_conformance!(postgres_alone().await);
    grantor::attempt_limiter_conformance!(postgres_alone().await);
    grantor::code_store_conformance!(postgres_alone().await);
    grantor::device_code_store_conformance!(postgres_alone().await);
    grantor::mfa_store_conformance!(postgres_alone().await);
}

use common::{
    bearer_status as bearer, others_refresh as refresh, server_on_shared_store as server_on,
    tom_signs_in as login,
};

/// Two servers, each with its own pool, on one PostgreSQL database behave as one: a token
/// issued by one works at the other, a refresh token rotated at one is a replay at the other
/// (which revokes the family everywhere), and a hundred concurrent refreshes of one token
/// across both succeed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_postgres_database_behave_as_one() {
    let a = server_on(postgres().await);
    let b = server_on(postgres().await);

    let first = login(&a).await;
    assert_eq!(first.status, 200, "{}", first.json);
    assert_eq!(bearer(&b, &first.str("access_token")).await, Ok(()));

    let rotated = refresh(&b, &first.str("refresh_token")).await;
    assert_eq!(rotated.status, 200, "{}", rotated.json);
    let replay = refresh(&a, &first.str("refresh_token")).await;
    assert_eq!(replay.status, 400);
    assert_eq!(replay.error(), "invalid_grant");
    // The replay revoked the family, on both servers.
    assert_eq!(bearer(&a, &rotated.str("access_token")).await, Err(401));
    assert_eq!(bearer(&b, &rotated.str("access_token")).await, Err(401));

    let fresh = login(&a).await;
    let token = fresh.str("refresh_token");
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let server = if i % 2 == 0 { a.clone() } else { b.clone() };
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            refresh(&server, &token).await.status
        }));
    }
    let mut ok = 0;
    for task in tasks {
        if task.await.expect("task") == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 1, "one of a hundred concurrent refreshes succeeds");
}

/// A server restarted on the same SQLite file honours every token it issued, and refuses a
/// rotated refresh token as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_on_one_sqlite_file_keeps_its_tokens() {
    let dir = TempDir::new();
    let (access, refresh_token, rotated_from) = {
        let store = SqlStore::sqlite(sqlite_pool(&dir.file()).await);
        store.migrate().await.expect("migrate");
        let server = server_on(Arc::new(store));
        let first = login(&server).await;
        let second = refresh(&server, &first.str("refresh_token")).await;
        assert_eq!(second.status, 200, "{}", second.json);
        (
            second.str("access_token"),
            second.str("refresh_token"),
            first.str("refresh_token"),
        )
    };
    // A new pool and a new server, as after a restart; migrating again changes nothing.
    let store = SqlStore::sqlite(sqlite_pool(&dir.file()).await);
    store.migrate().await.expect("migrate again");
    let server = server_on(Arc::new(store));
    assert_eq!(bearer(&server, &access).await, Ok(()));
    let replay = refresh(&server, &rotated_from).await;
    assert_eq!(replay.error(), "invalid_grant");
    // The replay revoked the family it belongs to.
    assert_eq!(bearer(&server, &access).await, Err(401));
    assert_eq!(
        refresh(&server, &refresh_token).await.error(),
        "invalid_grant"
    );
}

/// The rows hold hashes and records, never a token, code or request id as issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_recoverable_is_stored() {
    let (store, dir) = sqlite().await;
    let server = server_on(store);
    let mut issued = common::issue_every_kind(&server).await;
    // A password typed into the username field, refused: counted against that username, which
    // is kept only hashed.
    let typo = answer(
        server
            .token(
                TokenRequest::form("grant_type=password&username=s3cret-typed-here&password=x")
                    .with_authorization(basic("other", "other-secret")),
            )
            .await,
    );
    assert_eq!(typo.error(), "invalid_grant");
    issued.push("s3cret-typed-here".to_owned());
    // The whole file, including what the write-ahead log holds.
    drop(server);
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(&dir.0).expect("folder") {
        bytes.extend(std::fs::read(entry.expect("entry").path()).expect("file"));
    }
    let text = String::from_utf8_lossy(&bytes);
    for secret in &issued {
        assert!(
            !text.contains(secret.as_str()),
            "a secret is stored as issued"
        );
    }
    assert!(text.contains("user-1"), "the records are there");
}

/// The sweep deletes what has expired, in batches, and leaves what lives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_deletes_what_has_expired() {
    let (on_sqlite, _dir) = sqlite().await;
    for store in [on_sqlite, postgres_alone().await] {
        let server = server_on(store.clone());
        let live = login(&server).await;
        assert_eq!(live.status, 200);
        #[allow(clippy::disallowed_methods)] // the server's clock is the real one
        let now = time::OffsetDateTime::now_utc();
        // An hour on, the access token has expired; a year on, everything has.
        let gone_soon = store
            .purge_expired(now + Duration::from_secs(3_601), 1)
            .await
            .expect("purge");
        assert!(gone_soon >= 1, "the access token's row goes");
        assert_eq!(bearer(&server, &live.str("access_token")).await, Err(401));
        let still = refresh(&server, &live.str("refresh_token")).await;
        assert_eq!(
            still.status, 200,
            "the refresh token's row stays: {}",
            still.json
        );
        let later = store
            .purge_expired(now + Duration::from_secs(400 * 24 * 3_600), 2)
            .await
            .expect("purge");
        assert!(later >= 2);
    }
}

/// A database whose schema a newer grantor wrote is refused, not misread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let dir = TempDir::new();
    let pool = sqlite_pool(&dir.file()).await;
    SqlStore::sqlite(pool.clone())
        .migrate()
        .await
        .expect("migrate");
    sqlx::query("INSERT INTO grantor_schema (version) VALUES (99)")
        .execute(&pool)
        .await
        .expect("insert");
    let refused = SqlStore::sqlite(pool).migrate().await;
    assert!(refused.is_err_and(|e| format!("{e:?}").contains("version 99")));
}

/// A database of schema version 1 (before clients had resources) is brought to version 2 in
/// place: its clients keep working, and may be given resources; migrating again changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_1_database_is_migrated_to_2() {
    use grantor::{Client, ClientId, ClientStore};

    let dir = TempDir::new();
    let pool = sqlite_pool(&dir.file()).await;
    // The version 1 clients table, and a client registered by version 1.
    for statement in [
        "CREATE TABLE grantor_schema (version BIGINT NOT NULL)",
        "INSERT INTO grantor_schema (version) VALUES (1)",
        "CREATE TABLE grantor_clients (
            client_id TEXT PRIMARY KEY,
            secret_hash TEXT,
            grant_types TEXT NOT NULL,
            allowed_scope TEXT NOT NULL,
            default_scope TEXT NOT NULL,
            redirect_uris TEXT NOT NULL,
            access_token_format TEXT
        )",
        "INSERT INTO grantor_clients VALUES ('old', NULL, 'implicit', 'read', 'read', '[]', NULL)",
    ] {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .expect(statement);
    }
    let store = SqlStore::sqlite(pool.clone());
    // Version 1's other tables are the same in version 2: made by the first migration, as the
    // version 1 database had them.
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrate again");
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM grantor_schema ORDER BY 1")
        .fetch_all(&pool)
        .await
        .expect("versions");
    assert_eq!(versions, [1, 2]);
    let old = store
        .find_client(&ClientId::new("old"))
        .await
        .expect("find")
        .expect("kept");
    assert!(old.is_public());
    assert_eq!(old.allowed_resources, None);
    store
        .save_client(
            &Client::public("old").with_resources(["urn:example:ledger".parse().expect("uri")]),
        )
        .await
        .expect("save");
    let updated = store
        .find_client(&ClientId::new("old"))
        .await
        .expect("find")
        .expect("kept");
    assert_eq!(updated.allowed_resources.as_ref().map(Vec::len), Some(1));
}

/// A version 1 database made before version 1 had the clients table gets every table it lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_1_database_without_clients_is_completed() {
    use grantor::{Client, ClientId, ClientStore};

    let dir = TempDir::new();
    let pool = sqlite_pool(&dir.file()).await;
    for statement in [
        "CREATE TABLE grantor_schema (version BIGINT NOT NULL)",
        "INSERT INTO grantor_schema (version) VALUES (1)",
    ] {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .expect(statement);
    }
    let store = SqlStore::sqlite(pool);
    store.migrate().await.expect("migrate");
    store
        .save_client(&Client::public("new").with_resources(["urn:example:a".parse().expect("uri")]))
        .await
        .expect("save");
    let found = store
        .find_client(&ClientId::new("new"))
        .await
        .expect("find")
        .expect("saved");
    assert_eq!(found.allowed_resources.as_ref().map(Vec::len), Some(1));
}

/// On PostgreSQL too, and with two servers migrating at once: one migrates, the other finds
/// version 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_1_postgres_database_is_migrated_once_by_two_servers() {
    use grantor::{ClientId, ClientStore};

    let (_, pool) = postgres_alone_with_pool().await;
    // Back to version 1: no allowed_resources column, a client registered by version 1.
    for statement in [
        "ALTER TABLE grantor_clients DROP COLUMN allowed_resources",
        "DELETE FROM grantor_schema",
        "INSERT INTO grantor_schema (version) VALUES (1)",
        "INSERT INTO grantor_clients VALUES ('old', NULL, 'implicit', 'read', 'read', '[]', NULL)",
    ] {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .expect(statement);
    }
    let (a, b) = (
        SqlStore::postgres(pool.clone()),
        SqlStore::postgres(pool.clone()),
    );
    let (first, second) = tokio::join!(a.migrate(), b.migrate());
    first.expect("migrate");
    second.expect("migrate");
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM grantor_schema ORDER BY 1")
        .fetch_all(&pool)
        .await
        .expect("versions");
    assert_eq!(versions, [1, 2]);
    let old = a
        .find_client(&ClientId::new("old"))
        .await
        .expect("find")
        .expect("kept");
    assert_eq!(old.allowed_resources, None);
}

/// Clients registered in the database: saved, found as saved (only the secret's hash kept),
/// replaced, removed; and a server reads them there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_registered_in_the_database() {
    use grantor::{Client, ClientId, ClientSecret, ClientStore, GrantType, SecretHash};

    let (on_sqlite, _dir) = sqlite().await;
    for store in [on_sqlite, postgres().await] {
        let id = format!("app-{}", grantor::FamilyId::generate());
        let secret = ClientSecret::new("s3cret-of-the-app");
        let client = Client::confidential(id.as_str(), SecretHash::new(&secret))
            .with_grant_types([GrantType::ClientCredentials, GrantType::AuthorizationCode])
            .with_allowed_scope("read write".parse().expect("scope"))
            .with_default_scope("read".parse().expect("scope"))
            .with_redirect_uris(["https://app.example.com/cb?x=1 2", "com.example:/cb"])
            .with_access_token_format(grantor::AccessTokenFormat::Jwt)
            .with_resources(["https://api.example.com".parse().expect("resource")]);
        store.save_client(&client).await.expect("save");
        let found = store
            .find_client(&ClientId::new(id.as_str()))
            .await
            .expect("find")
            .expect("a client");
        assert_eq!(found.id.as_str(), id);
        assert!(!found.is_public());
        let grantor::ClientKind::Confidential { secret: hash } = &found.kind else {
            panic!("a confidential client");
        };
        assert!(hash.verify(&secret));
        assert!(!hash.verify(&ClientSecret::new("wrong")));
        assert_eq!(
            found.grant_types,
            [GrantType::ClientCredentials, GrantType::AuthorizationCode]
        );
        assert_eq!(found.allowed_scope.as_str(), "read write");
        assert_eq!(found.default_scope.as_str(), "read");
        let uris: Vec<&str> = found.redirect_uris.iter().map(|u| u.as_str()).collect();
        assert_eq!(
            found.access_token_format,
            Some(grantor::AccessTokenFormat::Jwt)
        );
        assert_eq!(
            uris,
            ["https://app.example.com/cb?x=1 2", "com.example:/cb"]
        );
        assert_eq!(
            found.allowed_resources,
            Some(vec!["https://api.example.com".parse().expect("resource")])
        );

        // A server authenticates it from the database, and gives it the JWT it asks for.
        let keys = Arc::new(grantor::LocalKeys::new());
        keys.generate("k1", grantor::JwsAlgorithm::Es256)
            .expect("a key");
        let server = AuthorizationServer::builder(store.clone(), store.clone())
            .enable_client_credentials_grant()
            .issuer("https://auth.example.com")
            .token_signer(keys)
            .jwt_audience("https://api.example.com")
            .build()
            .expect("server");
        let issued = answer(
            server
                .token(
                    TokenRequest::form(
                        "grant_type=client_credentials&resource=https%3A%2F%2Fapi.example.com",
                    )
                    .with_authorization(basic(&id, "s3cret-of-the-app")),
                )
                .await,
        );
        assert_eq!(issued.status, 200, "{}", issued.json);
        // The list kept in the database decides: the server itself knows no resource.
        let elsewhere = answer(
            server
                .token(
                    TokenRequest::form(
                        "grant_type=client_credentials&resource=https%3A%2F%2Fother.example.com",
                    )
                    .with_authorization(basic(&id, "s3cret-of-the-app")),
                )
                .await,
        );
        assert_eq!(elsewhere.error(), "invalid_target", "{}", elsewhere.json);
        assert_eq!(issued.str("access_token").split('.').count(), 3, "a JWT");

        // Replaced by a public registration under the same id; then removed.
        store
            .save_client(&Client::public(id.as_str()).with_grant_types([GrantType::Implicit]))
            .await
            .expect("replace");
        let replaced = store
            .find_client(&ClientId::new(id.as_str()))
            .await
            .expect("find")
            .expect("a client");
        assert!(replaced.is_public());
        assert_eq!(replaced.grant_types, [GrantType::Implicit]);
        assert!(replaced.redirect_uris.is_empty());
        assert_eq!(replaced.access_token_format, None, "the server's default");
        assert_eq!(replaced.allowed_resources, None, "the server's resources");
        assert!(store
            .remove_client(&ClientId::new(id.as_str()))
            .await
            .expect("remove"));
        assert!(!store
            .remove_client(&ClientId::new(id.as_str()))
            .await
            .expect("remove"));
        assert!(store
            .find_client(&ClientId::new(id.as_str()))
            .await
            .expect("find")
            .is_none());
    }
}

/// Failed-login keys are kept hashed: plain SHA-256 by default, HMAC-SHA256 under the key
/// secret when one is given (then a list of likely usernames cannot be matched against them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_login_keys_are_hashed_and_keyed_by_the_secret() {
    use grantor::{AttemptKey, AttemptLease, AttemptLimiter, AttemptRule, Username};
    use sha2::Digest as _;

    let dir = TempDir::new();
    let pool = sqlite_pool(&dir.file()).await;
    let plain = SqlStore::sqlite(pool.clone());
    plain.migrate().await.expect("migrate");
    let keyed = SqlStore::sqlite(pool.clone()).with_key_secret("a secret of the deployment");
    assert!(format!("{keyed:?}").contains("[redacted]"));
    assert!(!format!("{keyed:?}").contains("a secret of the deployment"));
    let rule = AttemptRule {
        max_failures: 5,
        window: Duration::from_secs(900),
    };
    #[allow(clippy::disallowed_methods)] // the store judges by the `now` it is given
    let now = time::OffsetDateTime::now_utc();
    let lease = AttemptLease::new(now + Duration::from_secs(30));
    let keys = |name: &str| AttemptKey::username(&Username::new(name));
    plain
        .record_failure(&keys("plain-tom"), &rule, &lease, now)
        .await
        .expect("failure");
    keyed
        .record_failure(&keys("keyed-tom"), &rule, &lease, now)
        .await
        .expect("failure");
    let stored: Vec<String> = sqlx::query_scalar("SELECT attempt_key FROM grantor_attempts")
        .fetch_all(&pool)
        .await
        .expect("keys");
    let sha = |name: &str| {
        sha2::Sha256::digest(format!("user:{name}").as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(stored.len(), 2);
    assert!(stored.contains(&sha("plain-tom")));
    assert!(!stored.contains(&sha("keyed-tom")));
    assert!(stored.iter().all(|k| k.len() == 64 && !k.contains("tom")));
}

/// The sweep never deletes what a request has just written: a one-time code counter whose hold
/// had lapsed, rewritten by a transaction that commits while the sweep runs, stays (else the same
/// code would be accepted twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sweep_never_undoes_a_write_it_races() {
    use grantor::{MfaStore, OtpAdvance, UserId};

    let (store, pool) = postgres_alone_with_pool().await;
    #[allow(clippy::disallowed_methods)] // the store judges by the `now` it is given
    let now = time::OffsetDateTime::now_utc();
    let later = now + Duration::from_secs(60);
    let user = UserId::new("racer");
    // A counter held until `now`: lapsed at `now`, so the sweep may take it.
    assert_eq!(
        store
            .advance_otp_counter(&user, 10, now, now - Duration::from_secs(1))
            .await
            .expect("advance"),
        OtpAdvance::Advanced
    );
    // Another server moves it forward, in a transaction still open while the sweep starts.
    let mut writer = pool.begin().await.expect("begin");
    let held_until = i64::try_from(later.unix_timestamp_nanos()).expect("nanoseconds");
    // (The table keys the counter by the SHA-256 of the user id.)
    let stored_user: String = <sha2::Sha256 as sha2::Digest>::digest(b"racer")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let updated = sqlx::query(
        "UPDATE grantor_otp_counters SET counter = 11, until_at = $1 WHERE user_id = $2",
    )
    .bind(held_until)
    .bind(&stored_user)
    .execute(&mut *writer)
    .await
    .expect("update");
    assert_eq!(updated.rows_affected(), 1);
    // The sweep ends while the writer still holds the row: it passes it by rather than wait
    // (and then delete what the writer commits).
    tokio::time::timeout(Duration::from_secs(10), store.purge_expired(now, 1_000))
        .await
        .expect("the sweep waited on a request's row")
        .expect("purge");
    writer.commit().await.expect("commit");
    // The counter 11 is held: 11 again is refused.
    assert_eq!(
        store
            .advance_otp_counter(&user, 11, later, now)
            .await
            .expect("advance"),
        OtpAdvance::NotHigher,
        "the sweep deleted a counter written while it ran"
    );
}

/// The sweep deletes in batches until nothing expired is left, and counts what it deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_deletes_every_batch() {
    use grantor::{TokenHash, TokenKind, TokenRecord, TokenStore};

    let (on_sqlite, _dir) = sqlite().await;
    for store in [on_sqlite, postgres_alone().await] {
        #[allow(clippy::disallowed_methods)] // the store judges by the `now` it is given
        let now = time::OffsetDateTime::now_utc();
        let family = grantor::FamilyId::generate();
        let record =
            |ttl| grantor::conformance::record(TokenKind::Access, "app", &family, now, ttl);
        let tokens: Vec<(TokenHash, TokenRecord)> = (0..7)
            .map(|i| {
                (
                    grantor::conformance::fresh_hash(&format!("sweep-{i}")),
                    record(60),
                )
            })
            .chain(std::iter::once((
                grantor::conformance::fresh_hash("stays"),
                record(3_600),
            )))
            .collect();
        assert_eq!(
            store.save_tokens(&tokens, now).await.expect("save"),
            grantor::TokenSave::Saved
        );
        let later = now + Duration::from_secs(120);
        // Seven expired rows, two a statement: four statements, seven rows.
        assert_eq!(store.purge_expired(later, 2).await.expect("purge"), 7);
        assert_eq!(store.purge_expired(later, 2).await.expect("purge"), 0);
        let (last, _) = tokens.split_last().expect("tokens");
        assert!(matches!(
            store.find_token(&last.0, later).await.expect("find"),
            grantor::TokenLookup::Live(_)
        ));
    }
}

/// `SqlStore::sqlite_options` makes a missing file and turns on WAL, from a path or a URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_options_create_the_file_in_wal_mode() {
    let dir = TempDir::new();
    let file = dir.file();
    let url = format!("sqlite://{}", dir.0.join("by-url.db").display());
    for name in [file.to_str().expect("a UTF-8 path"), url.as_str()] {
        let pool = sqlx::SqlitePool::connect_with(SqlStore::sqlite_options(name).expect("options"))
            .await
            .expect("a pool on a file that was not there");
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .expect("journal mode");
        assert_eq!(mode, "wal", "{name}");
    }
    assert!(file.exists());
}
