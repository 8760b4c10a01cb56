//! grantor behind axum: the demo authorization server of `../shared/example-server.md`.
//!
//! ```sh
//! cargo run --example axum_server
//! curl -s -u clientapp:123456 -d grant_type=password -d username=tom -d password=123456 \
//!      http://127.0.0.1:8080/oauth/token
//! ```
//!
//! The device flow (RFC 8628) for the public client `cli`: `POST /oauth/device_authorization`
//! answers a user code; a person enters it at `/device`, sees which application asks for what,
//! signs in and decides; the device's polls of `/oauth/token` then get tokens. The demo user
//! `alice` has a second factor (TOTP): the password grant answers her `403 mfa_required`, and the
//! login pages ask for her one-time code.
//!
//! The confidential client `api` gets JWT access tokens (RFC 9068) signed with the key at
//! `/oauth/jwks`. Every client may ask for a token for one of the two resources (RFC 8707
//! `resource`): `<issuer>/api`, which `/api/users` belongs to (its metadata, RFC 9728, at
//! `/.well-known/oauth-protected-resource/api`), and `https://api.example.com`, another API;
//! `/api/users` refuses a token meant for that other one.
//!
//! Everything OAuth is in grantor, and the HTTP side of its machine endpoints in
//! `grantor::axum`; this file is what a host writes: it seeds the demo clients and users, draws
//! the front page and the login, consent and device pages, and wires the stores.
//!
//! Settings (environment):
//! - `ADDR`: the address to listen on, default `127.0.0.1:8080`;
//! - `ISSUER`: the issuer identifier, default `http://<ADDR>`; with no path (the pages are at the
//!   root of the host);
//! - `REDIS_URL`: keep tokens, codes, device requests, `mfa_token`s and failed-login counts in
//!   Redis (e.g. `redis://127.0.0.1:6379`), so that several copies of the server behind one
//!   address behave as one;
//! - `DATABASE_URL`: keep them in a SQL database instead: `postgres://…` (several copies of the
//!   server on one database behave as one) or `sqlite://FILE` (an embedded file, created if
//!   missing: a restarted server still honours every token it issued). The tables are created at
//!   start, and expired rows deleted a minute apart. Not together with `REDIS_URL`;
//! - `SIGNING_KEY_FILE`: the PKCS#8 file of the ES256 key that signs the `api` client's JWT
//!   access tokens (created if missing, readable by its owner only), so that several copies of
//!   the server, or a restarted one, publish the same key at `/oauth/jwks` (its `kid` is its
//!   RFC 7638 thumbprint); default: a key made at start, in memory (with `REDIS_URL` or
//!   `DATABASE_URL`, the server warns that copies will not share it);
//! - `REFRESH_GRACE_SECONDS`: how long a just-rotated refresh token may be presented again by
//!   its own client (a retry after a lost reply) and get a fresh pair instead of revoking its
//!   family; default `0`, off;
//! - `RUST_LOG`: log filter, default `info`.
//!
//! Every other limit is the engine's default: sign-in failures (5 per username, 100 per client at
//! the token endpoint, 100 per caller address on the login and device pages, each per 15
//! minutes), wrong device codes (10 per address per 15 minutes), pending authorization and device
//! requests (1,000 per client, 10,000 in all), parameters (4096 bytes, 64 of them). Tests lower
//! some of them through [`DemoSettings`] and [`demo_server_with`]; `main` never does.

use std::collections::HashMap;
use std::error::Error;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::body::Bytes;
use axum::extract::{FromRef, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use grantor::axum::{Caller, RequireScope, ScopeRequirement};
use grantor::{
    async_trait, AccessTokenFormat, AuthorizationRequest, AuthorizationRequestId,
    AuthorizationServer, AuthorizeOutcome, BearerValidator, Client, ClientId, ClientSecret,
    DeviceConfirmation, DeviceRequest, ErrorCode, GrantType, JwsAlgorithm, LocalKeys, LoginLimits,
    MemoryClientStore, MemoryCodeStore, MemoryDeviceCodeStore, MemoryTokenStore, OAuthError,
    OneTimeCode, OtpVerdict, Password, PendingAuthorization, PendingLimits,
    ProtectedResourceMetadata, Reason, RedisStore, RequestIdHash, Resource, Scope, SecretHash,
    SqlStore, StoreError, TokenLocation, Totp, UserCode, UserId, UserVerdict, UserVerifier,
    Username,
};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Serialize;
use subtle::ConstantTimeEq as _;

/// The largest request body the demo reads.
const MAX_BODY: usize = 64 * 1024;

/// The base32 TOTP secret of the demo user `alice` (RFC 6238): add it to an authenticator app,
/// or compute her codes with `grantor::Totp::from_base32(ALICE_TOTP_SECRET)?.generate(now)`.
pub const ALICE_TOTP_SECRET: &str = "JBSWY3DPEHPK3PXP";

/// How long a sign-in waits for a free argon2 slot before it is told to come back (503).
const HASH_QUEUE_WAIT: Duration = Duration::from_secs(10);

/// The demo's users, with argon2id password hashes, and the TOTP secrets of those who have a
/// second factor. A real app reads these from its database.
///
/// argon2 is slow and takes memory (19 MiB a hash) on purpose: at most
/// [`hashing_permits`](Self::hashing_permits) hashes (one per core) run at once, and the other
/// sign-ins wait their turn, so a burst of sign-ins cannot exhaust the machine's memory.
pub struct DemoUsers {
    users: HashMap<String, (UserId, String)>,
    /// Second factors, by user id.
    totp: HashMap<String, Totp>,
    decoy: String,
    /// One permit per hash allowed to run.
    hashing: Arc<tokio::sync::Semaphore>,
    permits: usize,
    gauge: Arc<HashGauge>,
}

/// How many hashes run now, and the most that ever ran at once.
#[derive(Default)]
struct HashGauge {
    running: AtomicUsize,
    peak: AtomicUsize,
}

fn argon2_hash(password: &str) -> Result<String, Box<dyn Error>> {
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| e.to_string())?
        .to_string())
}

impl DemoUsers {
    /// `tom`, `admin` and `alice`, each with password `123456`; `alice` also has TOTP with
    /// [`ALICE_TOTP_SECRET`].
    pub fn seeded() -> Result<Self, Box<dyn Error>> {
        let permits = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let mut users = Self {
            users: HashMap::new(),
            totp: HashMap::from([(
                "user-alice".to_owned(),
                Totp::from_base32(ALICE_TOTP_SECRET)?,
            )]),
            decoy: argon2_hash("decoy password that nobody has")?,
            hashing: Arc::new(tokio::sync::Semaphore::new(permits)),
            permits,
            gauge: Arc::default(),
        };
        for (name, id) in [
            ("tom", "user-tom"),
            ("admin", "user-admin"),
            ("alice", "user-alice"),
        ] {
            users = users.with_user(name, id, "123456")?;
        }
        Ok(users)
    }

    /// One more user (tests seed more than the demo's three this way).
    pub fn with_user(
        mut self,
        username: &str,
        id: &str,
        password: &str,
    ) -> Result<Self, Box<dyn Error>> {
        self.users.insert(
            username.to_owned(),
            (UserId::new(id), argon2_hash(password)?),
        );
        Ok(self)
    }

    /// How many password hashes may run at once: the machine's available parallelism.
    pub fn hashing_permits(&self) -> usize {
        self.permits
    }

    /// The most password checks that ever ran at once (never more than
    /// [`hashing_permits`](Self::hashing_permits)).
    pub fn peak_concurrent_hashes(&self) -> usize {
        self.gauge.peak.load(Ordering::SeqCst)
    }

    /// Checks `password` against `hash` on a blocking thread, once a permit is free.
    async fn check(&self, hash: String, password: String) -> Result<bool, StoreError> {
        // Owned, and moved into the blocking task: it is released when the hash ends, even if
        // the request that asked for it is dropped first.
        // The wait is bounded well inside the engine's deadline for a check: a sign-in that
        // cannot be checked soon is answered 503 (not made), never counted as a failure.
        let permit = tokio::time::timeout(HASH_QUEUE_WAIT, self.hashing.clone().acquire_owned())
            .await
            .map_err(|_| StoreError::unavailable("too many passwords are being checked"))?
            .map_err(StoreError::backend)?;
        let gauge = self.gauge.clone();
        // argon2 is deliberately slow: keep it off the async workers.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let running = gauge.running.fetch_add(1, Ordering::SeqCst) + 1;
            gauge.peak.fetch_max(running, Ordering::SeqCst);
            let matches = PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false);
            gauge.running.fetch_sub(1, Ordering::SeqCst);
            matches
        })
        .await
        .map_err(StoreError::backend)
    }
}

#[async_trait]
impl UserVerifier for DemoUsers {
    async fn verify_password(
        &self,
        username: &Username,
        password: &Password,
        _client: &ClientId,
    ) -> Result<UserVerdict, StoreError> {
        let (user, hash) = match self.users.get(username.as_str()) {
            Some((id, hash)) => (Some(id.clone()), hash.clone()),
            // An unknown user costs the same argon2 run as a known one.
            None => (None, self.decoy.clone()),
        };
        let matches = self.check(hash, password.secret().to_owned()).await?;
        Ok(match (user, matches) {
            // A right password is only half of the sign-in for a user with a second factor.
            (Some(id), true) if self.totp.contains_key(id.as_str()) => {
                UserVerdict::SecondFactorRequired(id)
            }
            (Some(id), true) => UserVerdict::Authenticated(id),
            _ => UserVerdict::Refused,
        })
    }

    async fn verify_otp(
        &self,
        user: &UserId,
        otp: &OneTimeCode,
        now: time::OffsetDateTime,
    ) -> Result<OtpVerdict, StoreError> {
        // The engine refuses a code used twice; this only says whether it is right now.
        Ok(match self.totp.get(user.as_str()) {
            Some(totp) => totp.verify(otp, now),
            None => OtpVerdict::Refused,
        })
    }

    fn checks_one_time_codes(&self) -> bool {
        true
    }
}

fn scope(s: &str) -> Result<Scope, Box<dyn Error>> {
    Ok(s.parse()?)
}
/// The demo clients of `example-server.md`, with secrets stored as salted hashes.
pub fn demo_clients() -> Result<MemoryClientStore, Box<dyn Error>> {
    let clients = MemoryClientStore::new();
    let callback = "http://localhost:3000/callback";
    let secret = |s: &str| SecretHash::new(&ClientSecret::new(s));
    clients.insert(
        Client::confidential("clientapp", secret("123456"))
            .with_grant_types([
                GrantType::Password,
                GrantType::RefreshToken,
                GrantType::ClientCredentials,
                GrantType::AuthorizationCode,
            ])
            .with_allowed_scope(scope("read write admin")?)
            .with_default_scope(scope("read")?)
            .with_redirect_uris([callback]),
    );
    clients.insert(
        Client::public("spa")
            .with_grant_types([
                GrantType::AuthorizationCode,
                GrantType::Implicit,
                GrantType::RefreshToken,
            ])
            .with_allowed_scope(scope("read write")?)
            .with_default_scope(scope("read")?)
            .with_redirect_uris([callback]),
    );
    clients.insert(
        Client::public("cli")
            .with_grant_types([GrantType::DeviceCode, GrantType::RefreshToken])
            .with_allowed_scope(scope("read write")?)
            .with_default_scope(scope("read")?),
    );
    clients.insert(
        Client::confidential("service", secret("service-secret"))
            .with_grant_types([GrantType::ClientCredentials])
            .with_allowed_scope(scope("read")?)
            .with_default_scope(scope("read")?),
    );
    clients.insert(
        Client::confidential("api", secret("api-secret"))
            .with_grant_types([
                GrantType::ClientCredentials,
                GrantType::AuthorizationCode,
                GrantType::RefreshToken,
            ])
            .with_allowed_scope(scope("read write")?)
            .with_default_scope(scope("read")?)
            .with_redirect_uris([callback])
            .with_access_token_format(AccessTokenFormat::Jwt),
    );
    Ok(clients)
}

/// The demo server's settings beyond its clients and users. [`Default`] is the engine's
/// defaults with no refresh grace; `main` reads [`from_env`](Self::from_env). Tests lower the
/// limits to reach them quickly.
#[derive(Clone, Copy, Debug, Default)]
pub struct DemoSettings {
    /// `REFRESH_GRACE_SECONDS`: see the settings in this file's header. Zero is off.
    pub refresh_grace: Duration,
    /// The sign-in limits (per username, client and caller address).
    pub login_limits: LoginLimits,
    /// The bounds on waiting authorization requests and device requests.
    pub pending_limits: PendingLimits,
}

impl DemoSettings {
    /// The settings from the environment (`REFRESH_GRACE_SECONDS`).
    ///
    /// # Errors
    ///
    /// When a variable is set to something that is not a whole number of seconds.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The settings from variables looked up with `var` (as [`from_env`](Self::from_env) does
    /// with the environment).
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let grace = match var("REFRESH_GRACE_SECONDS") {
            Some(value) if !value.trim().is_empty() => {
                value.trim().parse::<u64>().map_err(|_| {
                    format!(
                        "REFRESH_GRACE_SECONDS must be a whole number of seconds, not {value:?}"
                    )
                })?
            }
            _ => 0,
        };
        Ok(Self {
            refresh_grace: Duration::from_secs(grace),
            ..Self::default()
        })
    }
}

/// The demo authorization server: tokens, codes, device requests, `mfa_token`s and failed-login
/// counts in memory, or in Redis when `redis_url` is given (so that several copies behind one
/// address behave as one). The engine's default limits, no refresh grace.
pub async fn demo_server(
    issuer: &str,
    redis_url: Option<&str>,
) -> Result<AuthorizationServer, Box<dyn Error>> {
    demo_server_with(
        issuer,
        redis_url,
        DemoSettings::default(),
        Arc::new(DemoUsers::seeded()?),
    )
    .await
}

/// [`demo_server`] with `settings`, checking passwords with `users`.
pub async fn demo_server_with(
    issuer: &str,
    redis_url: Option<&str>,
    settings: DemoSettings,
    users: Arc<DemoUsers>,
) -> Result<AuthorizationServer, Box<dyn Error>> {
    let storage = match redis_url {
        Some(url) => Storage::Redis(url.to_owned()),
        None => Storage::Memory,
    };
    demo_server_on(issuer, &storage, settings, users).await
}

/// Where the demo keeps tokens, codes, device requests, `mfa_token`s and failed-login counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// In this process (the crate's in-memory stores).
    Memory,
    /// In Redis at this URL (`REDIS_URL`).
    Redis(String),
    /// In the SQL database at this URL (`DATABASE_URL`): `postgres://…`, or `sqlite://FILE`.
    Database(String),
}

impl Storage {
    /// The storage the environment asks for: `REDIS_URL` or `DATABASE_URL` (not both), or
    /// memory.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        match (set("REDIS_URL"), set("DATABASE_URL")) {
            (Some(_), Some(_)) => Err("REDIS_URL and DATABASE_URL are both set: keep tokens in \
                 one place, and set only one of them"
                .to_owned()),
            (Some(url), None) => Ok(Storage::Redis(url)),
            (None, Some(url)) => Ok(Storage::Database(url)),
            (None, None) => Ok(Storage::Memory),
        }
    }
}

/// The SQL store at `url` (`postgres://…` or `sqlite://FILE`, the file created if missing), its
/// tables created.
pub async fn sql_store(url: &str) -> Result<SqlStore, Box<dyn Error>> {
    let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        SqlStore::postgres(sqlx::PgPool::connect(url).await?)
    } else if url.starts_with("sqlite:") {
        SqlStore::sqlite(sqlx::SqlitePool::connect_with(SqlStore::sqlite_options(url)?).await?)
    } else {
        return Err("DATABASE_URL must start with postgres:// or sqlite://".into());
    };
    store.migrate().await?;
    Ok(store)
}

/// [`demo_server`] on `storage`, with `settings`, checking passwords with `users`.
pub async fn demo_server_on(
    issuer: &str,
    storage: &Storage,
    settings: DemoSettings,
    users: Arc<DemoUsers>,
) -> Result<AuthorizationServer, Box<dyn Error>> {
    let clients = Arc::new(demo_clients()?);
    let builder = match storage {
        Storage::Redis(url) => {
            let redis = Arc::new(RedisStore::connect(url).await?);
            AuthorizationServer::builder(clients, redis.clone())
                .attempt_limiter(redis.clone())
                .enable_authorization_code_grant(redis.clone())
                .enable_device_code_grant(redis.clone())
                .mfa_store(redis)
        }
        Storage::Database(url) => {
            let sql = Arc::new(sql_store(url).await?);
            // Deletes what has expired, a minute apart (nothing depends on it but table sizes).
            let sweeper = Arc::downgrade(&sql);
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    every.tick().await;
                    let Some(sql) = sweeper.upgrade() else { break };
                    #[allow(clippy::disallowed_methods)] // the server's clock is the real one
                    let now = time::OffsetDateTime::now_utc();
                    if let Err(error) = sql.purge_expired(now, 1_000).await {
                        tracing::warn!(%error, "could not delete expired rows");
                    }
                }
            });
            AuthorizationServer::builder(clients, sql.clone())
                .attempt_limiter(sql.clone())
                .enable_authorization_code_grant(sql.clone())
                .enable_device_code_grant(sql.clone())
                .mfa_store(sql)
        }
        // (Without `mfa_store`, the engine keeps `mfa_token`s and used codes in memory.)
        Storage::Memory => AuthorizationServer::builder(clients, Arc::new(MemoryTokenStore::new()))
            .enable_authorization_code_grant(Arc::new(MemoryCodeStore::new()))
            .enable_device_code_grant(Arc::new(MemoryDeviceCodeStore::new())),
    };
    let server = builder
        .issuer(issuer)
        .enable_implicit_grant()
        .enable_client_credentials_grant()
        .enable_password_grant(users)
        .enable_refresh_token_grant()
        .refresh_token_grace_period(settings.refresh_grace)
        .login_limits(settings.login_limits)
        .pending_request_limits(settings.pending_limits)
        // The demo resource server may introspect every access token (RFC 7662 §4).
        .resource_servers(["service"])
        // The `api` client's JWTs, and the resources tokens may be asked for (RFC 8707); a JWT
        // asked for none is for `<issuer>/api` (RFC 9068 §3).
        .token_signer(signing_keys()?)
        .jwt_audience(own_api(issuer))
        .resources([
            own_api(issuer).parse::<Resource>()?,
            OTHER_API.parse::<Resource>()?,
        ])
        // The worked example this demo follows passes the token as ?access_token=…
        .allow_query_access_tokens(true)
        .build()?;
    Ok(server)
}

/// The identifier of the demo's own API, which `/api/users` belongs to: `<issuer>/api`.
pub fn own_api(issuer: &str) -> String {
    format!("{}/api", issuer.trim_end_matches('/'))
}

/// Another API tokens may be asked for (RFC 8707): `/api/users` refuses tokens meant for it.
pub const OTHER_API: &str = "https://api.example.com";

/// The keys that sign JWT access tokens: the ES256 key in `SIGNING_KEY_FILE` (PKCS#8, made and
/// written there if missing), or one made now, in memory. Its `kid` is its JWK thumbprint (RFC
/// 7638), so every copy of the server that loads the file publishes the same.
fn signing_keys() -> Result<Arc<LocalKeys>, Box<dyn Error>> {
    let path = std::env::var_os("SIGNING_KEY_FILE");
    signing_keys_from(path.as_deref().map(std::path::Path::new))
}

/// [`signing_keys`] from the file at `path`, if given.
pub fn signing_keys_from(path: Option<&std::path::Path>) -> Result<Arc<LocalKeys>, Box<dyn Error>> {
    let pkcs8 = match path {
        Some(path) => key_file(path)?,
        None => LocalKeys::new().generate("new", JwsAlgorithm::Es256)?,
    };
    // The thumbprint of the key's public half, read off a set holding it alone.
    let probe = LocalKeys::new();
    probe.add_pkcs8("probe", JwsAlgorithm::Es256, &pkcs8)?;
    let kid = grantor::TokenSigner::jwks(&probe)
        .keys
        .first()
        .and_then(grantor::Jwk::thumbprint)
        .ok_or("the signing key has no thumbprint")?;
    let keys = Arc::new(LocalKeys::new());
    keys.add_pkcs8(&kid, JwsAlgorithm::Es256, &pkcs8)?;
    Ok(keys)
}

/// The PKCS#8 key in the file at `path`; if there is none, a new key, written there whole
/// before anyone can read it (a file of its own first, then linked to `path`, which fails if
/// another copy of the server got there first: then that one's key is read).
fn key_file(path: &std::path::Path) -> Result<Vec<u8>, Box<dyn Error>> {
    match std::fs::read(path) {
        Ok(pkcs8) => return Ok(pkcs8),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        Err(_) => {}
    }
    let pkcs8 = LocalKeys::new().generate("new", JwsAlgorithm::Es256)?;
    let draft = path.with_extension(format!("new-{}", grantor::FamilyId::generate()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&draft)
        .and_then(|mut file| std::io::Write::write_all(&mut file, &pkcs8).and(file.sync_all()))
        .and_then(|()| std::fs::hard_link(&draft, path));
    let _ = std::fs::remove_file(&draft);
    match written {
        Ok(()) => Ok(pkcs8),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(std::fs::read(path)?),
        Err(e) => Err(e.into()),
    }
}

/// One entry of the protected `/api/users` list.
#[derive(Serialize)]
struct Person {
    name: &'static str,
    email: &'static str,
}

const DEMO_USERS: [Person; 3] = [
    Person {
        name: "adolfo",
        email: "adolfo@mailinator.com",
    },
    Person {
        name: "demigreite",
        email: "demigreite@mailinator.com",
    },
    Person {
        name: "jujuba",
        email: "jujuba@mailinator.com",
    },
];

#[derive(Clone)]
struct App {
    server: AuthorizationServer,
    resources: BearerValidator,
    /// `/api/users`'s answer, serialized once.
    users_json: Bytes,
}

/// `RequireScope` finds the validator in the app's state.
impl FromRef<App> for BearerValidator {
    fn from_ref(app: &App) -> Self {
        app.resources.clone()
    }
}

/// The scope `/api/users` needs.
struct Read;

impl ScopeRequirement for Read {
    const SCOPE: &'static str = "read";
}

/// The HTTP routes over a server: grantor's machine endpoints (token, revocation,
/// introspection, device authorization, metadata) from `grantor::axum::router`, and the demo's
/// own pages and resource.
pub fn router(server: AuthorizationServer) -> Router {
    let issuer = server.issuer().unwrap_or_default().to_owned();
    // `/api/users` belongs to `<issuer>/api` (RFC 9728): its metadata names this server, and
    // its refusals name the metadata.
    let metadata = ProtectedResourceMetadata::new(own_api(&issuer))
        .with_authorization_servers([issuer.as_str()])
        .with_scopes_supported(Scope::parse("read write").unwrap_or_default())
        .with_resource_name("grantor demo API")
        // The demo takes `?access_token=…` too (see `allow_query_access_tokens` above).
        .with_bearer_methods(["header", "query"]);
    let mut resources = server.bearer_validator().with_audience(own_api(&issuer));
    if let Some(url) = metadata.well_known_url() {
        resources = resources.with_resource_metadata(url);
    }
    // The pages are where the metadata document says: below the issuer's path, if it has one.
    let at = |path: &str| grantor::axum::routed_path(&server, path);
    let paths = server.endpoint_paths();
    let (device, authorize) = (at(&paths.device_verification), at(&paths.authorization));
    let (root, users_path) = (at("/"), at("/api/users"));
    grantor::axum::router(server.clone())
        .merge(grantor::axum::resource_metadata_router(metadata))
        .route(&root, get(front_page))
        .route(&device, get(device_page).post(device_decision))
        .route(&authorize, get(authorize_page).post(authorize_decision))
        .route(&users_path, get(users))
        .with_state(App {
            server,
            resources,
            users_json: Bytes::from(serde_json::to_vec(&DEMO_USERS).unwrap_or_default()),
        })
}

/// Reads the whole body of a page's form.
async fn buffered(request: Request) -> Result<http::Request<Bytes>, axum::response::Response> {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => Ok(http::Request::from_parts(parts, bytes)),
        Err(_) => Err(StatusCode::PAYLOAD_TOO_LARGE.into_response()),
    }
}

fn respond(response: grantor::Response) -> axum::response::Response {
    IntoResponse::into_response(response)
}

/// `GET /api/users`: the protected resource, for a token with scope `read`.
async fn users(State(app): State<App>, token: RequireScope<Read>) -> axum::response::Response {
    let mut response = (
        [(http::header::CONTENT_TYPE, "application/json")],
        app.users_json.clone(),
    )
        .into_response();
    if token.presented_in == TokenLocation::Query {
        // RFC 6750 §2.3: a response to a query-token request "SHOULD contain a Cache-Control
        // header with the "private" option".
        response.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("private"),
        );
    }
    response
}

// ---------------------------------------------------------------------------------------------
// The front page: what a person trying the server needs, on one page.

/// The demo clients, as the front page lists them: id, secret, type, grants, scopes.
const FRONT_CLIENTS: [[&str; 5]; 5] = [
    [
        "clientapp",
        "123456",
        "confidential",
        "password, refresh_token, client_credentials, authorization_code",
        "read write admin",
    ],
    [
        "spa",
        "(none)",
        "public, PKCE S256",
        "authorization_code, implicit, refresh_token",
        "read write",
    ],
    [
        "cli",
        "(none)",
        "public",
        "device_code, refresh_token",
        "read write",
    ],
    [
        "service",
        "service-secret",
        "confidential, may introspect",
        "client_credentials",
        "read",
    ],
    [
        "api",
        "api-secret",
        "confidential, JWT access tokens",
        "client_credentials, authorization_code, refresh_token",
        "read write",
    ],
];

/// `GET /`: the endpoints, the demo clients and users, and commands to try.
async fn front_page(State(app): State<App>) -> axum::response::Response {
    let base = app
        .server
        .issuer()
        .unwrap_or_default()
        .trim_end_matches('/');
    let paths = app.server.endpoint_paths();
    // Where each is routed: below the issuer's own path, if it has one.
    let at = |path: &str| grantor::axum::routed_path(&app.server, path);
    let endpoints = [
        (
            "POST",
            at(&paths.token),
            "token endpoint, every grant (RFC 6749 §3.2)",
        ),
        (
            "GET",
            at(&paths.authorization),
            "authorization endpoint: sign-in and consent page",
        ),
        ("POST", at(&paths.revocation), "token revocation (RFC 7009)"),
        (
            "POST",
            at(&paths.introspection),
            "token introspection (RFC 7662)",
        ),
        (
            "POST",
            at(&paths.device_authorization),
            "device authorization (RFC 8628)",
        ),
        (
            "GET",
            at(&paths.device_verification),
            "where a person enters a device's user code",
        ),
        (
            "GET",
            format!("/.well-known/oauth-authorization-server{}", at("")),
            "server metadata (RFC 8414)",
        ),
        (
            "GET",
            at(&paths.jwks),
            "the keys that sign JWT access tokens (RFC 7517)",
        ),
        (
            "GET",
            ProtectedResourceMetadata::new(own_api(base))
                .well_known_path()
                .unwrap_or_default(),
            "metadata of the protected resource <issuer>/api (RFC 9728)",
        ),
        (
            "GET",
            at("/api/users"),
            "a protected resource of <issuer>/api: a bearer token with scope read",
        ),
    ];
    let jwt = format!(
        "curl -s -u api:api-secret -d grant_type=client_credentials \\\n  -d resource={} {base}{}",
        own_api(base),
        paths.token
    );
    let password = format!(
        "curl -s -u clientapp:123456 -d grant_type=password -d username=tom -d password=123456 \\\n  {base}{}",
        paths.token
    );
    let resource = format!("curl -s -H \"Authorization: Bearer $ACCESS_TOKEN\" {base}/api/users");
    let authorize = format!(
        "{base}{}?response_type=code&client_id=spa&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback\
         &scope=read&state=xyz&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
         &code_challenge_method=S256",
        paths.authorization
    );
    let exchange = format!(
        "curl -s {base}{} -d grant_type=authorization_code -d code=$CODE \\\n  \
         -d redirect_uri=http://localhost:3000/callback -d client_id=spa \\\n  \
         -d code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        paths.token
    );
    html_response(
        StatusCode::OK,
        layout(
            "grantor demo authorization server",
            html! {
                style { "main{max-width:52rem}table{border-collapse:collapse;margin:.5rem 0 1.5rem}\
                         td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;\
                         vertical-align:top}pre{background:#eef2fb;padding:.8rem;overflow-x:auto}" }
                h1 { "grantor demo authorization server" }
                p.note { "An OAuth 2.0 authorization server built with the grantor crate. Issuer: "
                    code { (base) } }
                h2 { "Try it" }
                p { "A token for the user tom with the password grant:" }
                pre { (password) }
                p { "Then call the protected resource with the access_token from the answer:" }
                pre { (resource) }
                p { "A JWT access token (RFC 9068) for the resource " code { (own_api(base)) }
                    " (RFC 8707), which /api/users takes too; its signature checks against "
                    code { (paths.jwks) } ":" }
                pre { (jwt) }
                p { "Or sign in through the browser as the public client spa (authorization code \
                     with PKCE, RFC 7636 appendix B's verifier and challenge):" }
                p { a href=(authorize) { "Sign in as spa" } " (tom / 123456), then exchange the \
                    code from the address bar within a minute:" }
                pre { (exchange) }
                h2 { "Endpoints" }
                table {
                    tr { th { "method" } th { "path" } th { "what" } }
                    @for (method, path, what) in &endpoints {
                        tr { td { (method) } td { code { (path) } } td { (what) } }
                    }
                }
                h2 { "Demo clients" }
                table {
                    tr { th { "client_id" } th { "secret" } th { "type" } th { "grants" } th { "scopes" } }
                    @for row in FRONT_CLIENTS {
                        tr { @for cell in row { td { (cell) } } }
                    }
                }
                p.note { "clientapp and spa redirect to http://localhost:3000/callback; nothing \
                          needs to listen there: the code is in the browser's address bar." }
                h2 { "Demo users" }
                table {
                    tr { th { "username" } th { "password" } th { "notes" } }
                    tr { td { "tom" } td { "123456" } td {} }
                    tr { td { "admin" } td { "123456" } td {} }
                    tr { td { "alice" } td { "123456" } td { "second factor: TOTP, base32 secret " (ALICE_TOTP_SECRET) } }
                }
            },
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// The login and consent page. grantor validates and answers; the page, its CSRF protection and
// its look are the host's, here drawn with maud (which escapes every interpolated value).

/// Headers on every page: no framing (clickjacking), no caching.
fn html_response(status: StatusCode, markup: Markup) -> axum::response::Response {
    let mut response = (status, axum::response::Html(markup.into_string())).into_response();
    let headers = response.headers_mut();
    headers.insert(
        http::header::X_FRAME_OPTIONS,
        http::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        http::header::REFERRER_POLICY,
        http::HeaderValue::from_static("no-referrer"),
    );
    response
}

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { main { (body) } }
        }
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}\
main{max-width:24rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;\
box-shadow:0 1px 4px rgba(0,0,0,.1)}label{display:block;margin:.8rem 0}\
input{display:block;width:100%;padding:.5rem;box-sizing:border-box}\
.error{color:#b00020}.note{color:#555}button{margin:1rem .5rem 0 0;padding:.5rem 1rem}\
.request{background:#eef2fb;padding:.5rem 1rem;border-radius:6px}";

/// An error page: for requests whose redirect URI cannot be trusted, and for stale forms.
fn error_page(status: StatusCode, message: &str) -> axum::response::Response {
    html_response(
        status,
        layout(
            "Sign-in error",
            html! {
                h1 { "Something went wrong" }
                p.error { (message) }
                p { "Return to the application and start again." }
            },
        ),
    )
}

/// The cookie that carries one request's CSRF token (double submit), named for the request so
/// that two sign-ins in two tabs do not overwrite each other. Over https it takes the
/// `__Host-` prefix, which browsers only accept from this very host with `Secure` and `Path=/`,
/// so a sibling subdomain cannot plant one.
fn csrf_cookie_name(request_id: &str, https: bool) -> String {
    let digest = RequestIdHash::of(&AuthorizationRequestId::new(request_id)).to_hex();
    let prefix = if https { "__Host-" } else { "" };
    format!("{prefix}csrf_{}", digest.get(..16).unwrap_or(&digest))
}

fn is_https(server: &AuthorizationServer) -> bool {
    server.issuer().is_some_and(|i| i.starts_with("https://"))
}

/// What a redrawn form shows again: never the password or the one-time code.
#[derive(Clone, Copy, Debug, Default)]
pub struct Retry<'a> {
    /// The message above the form.
    pub message: Option<&'a str>,
    /// The username as typed.
    pub username: &'a str,
}

/// The username, password and one-time code inputs both sign-in pages share.
fn credentials(username: &str) -> Markup {
    html! {
        label { "Username" input type="text" name="username" value=(username) autocomplete="username"; }
        label { "Password" input type="password" name="password" autocomplete="current-password"; }
        label {
            "One-time code " small { "(only if your account has an authenticator app)" }
            input type="text" name="otp" inputmode="numeric" pattern="[0-9]*" maxlength="8"
                autocomplete="one-time-code";
        }
    }
}

pub fn login_form(
    request: &PendingAuthorization,
    request_id: &str,
    csrf: &str,
    retry: Retry<'_>,
) -> Markup {
    layout(
        "Sign in",
        html! {
            h1 { "Sign in" }
            p { "The application " strong { (request.client_id) } " asks for access: " em { (request.scope) } "." }
            @if let Some(message) = retry.message {
                p.error role="alert" { (message) }
            }
            form method="post" action="/oauth/authorize" {
                input type="hidden" name="request_id" value=(request_id);
                input type="hidden" name="csrf_token" value=(csrf);
                (credentials(retry.username))
                button type="submit" name="decision" value="approve" { "Approve" }
                button type="submit" name="decision" value="deny" { "Deny" }
            }
        },
    )
}

fn show_form(
    https: bool,
    status: StatusCode,
    request: &PendingAuthorization,
    request_id: &str,
    csrf: &str,
    retry: Retry<'_>,
) -> axum::response::Response {
    let mut response = html_response(status, login_form(request, request_id, csrf, retry));
    let scope = if https {
        "Path=/; Secure"
    } else {
        "Path=/oauth/authorize"
    };
    let cookie = format!(
        "{}={csrf}; {scope}; HttpOnly; SameSite=Strict; Max-Age=600",
        csrf_cookie_name(request_id, https)
    );
    if let Ok(value) = http::HeaderValue::from_str(&cookie) {
        response
            .headers_mut()
            .insert(http::header::SET_COOKIE, value);
    }
    response
}

/// Answers what `authorize` said: the form, an error redirect, or an error page.
fn answer_authorize(https: bool, outcome: AuthorizeOutcome) -> axum::response::Response {
    match outcome {
        AuthorizeOutcome::Pending { id, request } => {
            let csrf = AuthorizationRequestId::generate();
            show_form(
                https,
                StatusCode::OK,
                &request,
                id.secret(),
                csrf.secret(),
                Retry::default(),
            )
        }
        AuthorizeOutcome::Redirect(redirect) => respond(redirect.into_response()),
        AuthorizeOutcome::Invalid(error) => {
            error_page(StatusCode::BAD_REQUEST, error.description())
        }
        // Too many sign-ins are waiting: nothing was stored; come back later.
        AuthorizeOutcome::Unavailable(error) => with_retry_after(
            &error,
            error_page(StatusCode::SERVICE_UNAVAILABLE, error.description()),
        ),
        _ => error_page(StatusCode::BAD_REQUEST, "unsupported request"),
    }
}

/// `GET /oauth/authorize?…`: validate the request and draw the login and consent form.
async fn authorize_page(
    State(app): State<App>,
    request: AuthorizationRequest,
) -> axum::response::Response {
    answer_authorize(is_https(&app.server), app.server.authorize(request).await)
}

/// What the pages say about a form beyond the engine's bounds on parameters.
const FORM_TOO_LONG: &str = "A form field is too long, or the form has too many fields.";

/// A posted form's fields, or `None` beyond the bounds the engine keeps on every parameter
/// ([`grantor::MAX_PARAMETERS`] fields of at most [`grantor::MAX_PARAMETER_LENGTH`] bytes), so
/// that the pages hand it no longer a username or password than its endpoints would take.
fn read_form(body: &[u8]) -> Option<HashMap<String, String>> {
    let mut fields = HashMap::new();
    for (i, (name, value)) in url::form_urlencoded::parse(body).enumerate() {
        if i >= grantor::MAX_PARAMETERS
            || name.len() > grantor::MAX_PARAMETER_LENGTH
            || value.len() > grantor::MAX_PARAMETER_LENGTH
        {
            return None;
        }
        fields.insert(name.into_owned(), value.into_owned());
    }
    Some(fields)
}

fn cookie_value(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// `POST /oauth/authorize`: the form's answer (or an authorization request sent as a form).
async fn authorize_decision(
    State(app): State<App>,
    Caller(caller): Caller,
    request: Request,
) -> axum::response::Response {
    let Ok(request) = buffered(request).await else {
        return error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let Some(form) = read_form(request.body()) else {
        return error_page(StatusCode::BAD_REQUEST, FORM_TOO_LONG);
    };
    let Some(request_id) = form.get("request_id") else {
        // RFC 6749 §3.1: the authorization endpoint MAY accept POST.
        return answer_authorize(
            is_https(&app.server),
            app.server
                .authorize(AuthorizationRequest::from_form(request.body()))
                .await,
        );
    };
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();

    // CSRF: the hidden field must match the cookie set with the form.
    let https = is_https(&app.server);
    let cookie =
        cookie_value(request.headers(), &csrf_cookie_name(request_id, https)).unwrap_or_default();
    let csrf = field("csrf_token");
    if csrf.is_empty() || !bool::from(cookie.as_bytes().ct_eq(csrf.as_bytes())) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This form was not sent from this site, or it expired.",
        );
    }
    let id = AuthorizationRequestId::new(request_id.clone());
    let pending = match app.server.authorization_request(&id).await {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in request expired or was already answered.",
            )
        }
        Err(error) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, error.description()),
    };
    let decided = match field("decision") {
        "deny" => app.server.deny(&id).await,
        "approve" => {
            // Failures count per username, and per caller address across usernames.
            let verified = app
                .server
                .verify_user_with_otp(
                    &pending.client_id,
                    caller,
                    &Username::new(field("username")),
                    Password::new(field("password")),
                    one_time_code(field("otp")),
                )
                .await;
            match verified {
                // The signed-in user, with their username (introspection shows it).
                Ok(user) => app.server.approve(&id, user, None).await,
                Err(error) if error.code() == ErrorCode::InvalidGrant => {
                    // Wrong credentials, a missing or wrong one-time code, or too many tries:
                    // the form again, nothing issued.
                    let retry = Retry {
                        message: Some(sign_in_refusal(&error)),
                        username: field("username"),
                    };
                    return show_form(https, StatusCode::OK, &pending, request_id, csrf, retry);
                }
                // Too many checks of this username or address in flight (503 with
                // Retry-After), or a store failed.
                Err(error) => {
                    return with_retry_after(
                        &error,
                        error_page(status_of(&error), error.description()),
                    )
                }
            }
        }
        _ => return error_page(StatusCode::BAD_REQUEST, "Choose approve or deny."),
    };
    match decided {
        Ok(redirect) => respond(redirect.into_response()),
        Err(error) => error_page(StatusCode::BAD_REQUEST, error.description()),
    }
}

/// The `otp` field: `None` when left empty.
fn one_time_code(typed: &str) -> Option<OneTimeCode> {
    let typed = typed.trim();
    (!typed.is_empty()).then(|| OneTimeCode::new(typed))
}

/// What the sign-in form says when `verify_user_with_otp` refused (`invalid_grant`).
fn sign_in_refusal(error: &OAuthError) -> &'static str {
    if error.retry_after().is_some() {
        return "Too many failed sign-in attempts. Try again later.";
    }
    match error.reason() {
        Some(Reason::OtpRequired) => {
            "This account also needs a one-time code. Enter your password again, with the \
             code your authenticator app shows now."
        }
        Some(Reason::OtpReused) => {
            "That one-time code was already used. Enter your password again, with the next \
             code your authenticator app shows."
        }
        Some(Reason::OtpRefused) => {
            "Wrong one-time code. Enter your password again, with the code your authenticator \
             app shows now."
        }
        // The same words for an unknown user and a wrong password.
        _ => "Wrong username or password.",
    }
}

// ---------------------------------------------------------------------------------------------
// The device verification page (RFC 8628 §3.3), in two steps so that a person always sees which
// application asks for what before deciding (§5.4):
//
//   GET /device                   the code form: one field, `user_code`
//   POST /device (a code)         the confirmation page: the client, its scope, the sign-in form
//   GET /device?user_code=…       the same (the `verification_uri_complete`)
//   POST /device (a decision)     from the confirmation page only: sign in, approve or deny
//
// Same look and protections as the login page.

/// The longest user code reflected back into the page; real ones have 9 characters.
const MAX_USER_CODE: usize = 32;

/// What the code form and a confirmation page say about a code that leads nowhere.
const UNKNOWN_CODE: &str =
    "This code is unknown, expired or already used. Check the code your device shows.";

/// The device page's CSRF cookie (double submit). One per browser, not per request: the page
/// has no request until the code is typed. `__Host-` over https, as for the login page.
fn device_csrf_cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-device_csrf"
    } else {
        "device_csrf"
    }
}

/// What the first step shows: the code form.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeviceCodeForm<'a> {
    /// The user code as typed, filled in again.
    pub user_code: &'a str,
    /// The CSRF token, also in the cookie.
    pub csrf: &'a str,
    /// Why the form is shown again: an unknown code, too many wrong codes.
    pub message: Option<&'a str>,
}

/// The first step: a form with one input, `user_code`. Never a password field: nobody signs in
/// before seeing which application asks.
pub fn device_code_form(form: DeviceCodeForm<'_>) -> Markup {
    layout(
        "Connect a device",
        html! {
            h1 { "Connect a device" }
            p { "Enter the code your device shows." }
            @if let Some(message) = form.message {
                p.error role="alert" { (message) }
            }
            p { small { "Only enter a code shown on a device in front of you, never one that someone sent you." } }
            form method="post" action="/device" {
                input type="hidden" name="csrf_token" value=(form.csrf);
                label {
                    "Code"
                    input type="text" name="user_code" value=(form.user_code) placeholder="XXXX-XXXX"
                        autocomplete="off" autocapitalize="characters" spellcheck="false" autofocus;
                }
                button type="submit" { "Continue" }
            }
        },
    )
}

/// What the second step shows: the request behind the code, and the sign-in form.
#[derive(Clone, Copy, Debug)]
pub struct DeviceConfirmForm<'a> {
    /// The user code, as the device shows it (`XXXX-XXXX`).
    pub user_code: &'a str,
    /// The CSRF token, also in the cookie.
    pub csrf: &'a str,
    /// The client (the device) that asks.
    pub client_id: &'a ClientId,
    /// What it asks for.
    pub scope: &'a Scope,
    /// What binds the decision to this request ([`DeviceConfirmation`]).
    pub confirmation: &'a str,
    /// What a redrawn form shows again.
    pub retry: Retry<'a>,
}

/// The second step: which client asks for what, and the sign-in form with the two buttons.
pub fn device_confirm_form(form: DeviceConfirmForm<'_>) -> Markup {
    layout(
        "Connect a device",
        html! {
            h1 { "Connect a device" }
            section.request aria-label="The request" {
                p { "The application " strong { (form.client_id) } " asks to use your account for:" }
                @if form.scope.is_empty() {
                    p { em { "no particular scope" } }
                } @else {
                    ul.scope {
                        @for token in form.scope.iter() {
                            li { code { (token) } }
                        }
                    }
                }
                p { "Code: " strong.code { (form.user_code) } }
                p { strong { "Approve only if this code is shown on a device in front of you." } }
            }
            @if let Some(message) = form.retry.message {
                p.error role="alert" { (message) }
            }
            form method="post" action="/device" {
                input type="hidden" name="csrf_token" value=(form.csrf);
                input type="hidden" name="user_code" value=(form.user_code);
                input type="hidden" name="confirmation" value=(form.confirmation);
                (credentials(form.retry.username))
                button type="submit" name="decision" value="approve" { "Approve" }
                button type="submit" name="decision" value="deny" { "Deny" }
            }
            p { a href="/device" { "Enter another code" } }
        },
    )
}

/// A device page with the browser's CSRF cookie set (again, so it lives 10 more minutes).
fn with_device_cookie(
    https: bool,
    csrf: &str,
    mut response: axum::response::Response,
) -> axum::response::Response {
    let scope = if https {
        "Path=/; Secure"
    } else {
        "Path=/device"
    };
    let cookie = format!(
        "{}={csrf}; {scope}; HttpOnly; SameSite=Strict; Max-Age=600",
        device_csrf_cookie_name(https),
    );
    if let Ok(value) = http::HeaderValue::from_str(&cookie) {
        response
            .headers_mut()
            .insert(http::header::SET_COOKIE, value);
    }
    response
}

fn show_code_form(
    https: bool,
    status: StatusCode,
    form: DeviceCodeForm<'_>,
) -> axum::response::Response {
    with_device_cookie(
        https,
        form.csrf,
        html_response(status, device_code_form(form)),
    )
}

fn show_confirm_form(https: bool, form: DeviceConfirmForm<'_>) -> axum::response::Response {
    with_device_cookie(
        https,
        form.csrf,
        html_response(StatusCode::OK, device_confirm_form(form)),
    )
}

/// Whether a cookie value looks like a token this page made (so it can be reused when the page
/// is opened in a second tab, instead of breaking the first tab's form).
fn is_csrf_token(value: &str) -> bool {
    value.len() >= 32
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The page after a decision: nothing more to do here.
fn device_done(approved: bool, client: &ClientId, scope: &Scope) -> axum::response::Response {
    let title = if approved {
        "Device connected"
    } else {
        "Device refused"
    };
    html_response(
        StatusCode::OK,
        layout(
            title,
            html! {
                h1 { (title) }
                @if approved {
                    p { "The application " strong { (client) } " on your device can now use your account: " em { (scope) } "." }
                } @else {
                    p { "The application " strong { (client) } " on your device was refused access." }
                }
                p { "You can return to your device." }
            },
        ),
    )
}

/// An error page for the device page, with a way back to a fresh form.
fn device_error_page(status: StatusCode, message: &str) -> axum::response::Response {
    html_response(
        status,
        layout(
            "Connect a device",
            html! {
                h1 { "Something went wrong" }
                p.error role="alert" { (message) }
                p { a href="/device" { "Enter the code again" } }
            },
        ),
    )
}

fn status_of(error: &OAuthError) -> StatusCode {
    StatusCode::from_u16(error.code().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Adds `Retry-After` (seconds) when the error says when to try again.
fn with_retry_after(
    error: &OAuthError,
    mut response: axum::response::Response,
) -> axum::response::Response {
    if let Some(seconds) = error.retry_after() {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
    }
    response
}

/// The device page's answer to a code it could not look up, or a decision it could not record:
/// the code form again with a message (never a password field), or an error page.
fn code_refused(
    https: bool,
    csrf: &str,
    typed: &str,
    error: &OAuthError,
) -> axum::response::Response {
    let (status, message) = match error.reason() {
        Some(Reason::UserCodeUnknown) => (StatusCode::OK, UNKNOWN_CODE),
        Some(Reason::UserCodeAttemptsExceeded) => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong codes were entered from your network. Try again later.",
        ),
        Some(Reason::DeviceConfirmationMismatch) => (
            StatusCode::OK,
            "The request behind this code changed while you were signing in. Enter the code \
             again to see what it asks for now.",
        ),
        _ => {
            return with_retry_after(
                error,
                device_error_page(status_of(error), error.description()),
            )
        }
    };
    let form = DeviceCodeForm {
        user_code: typed,
        csrf,
        message: Some(message),
    };
    with_retry_after(error, show_code_form(https, status, form))
}

/// Step 2 shown: the request behind a code that was just looked up.
fn confirm(
    https: bool,
    csrf: &str,
    user_code: &UserCode,
    found: &DeviceRequest,
    retry: Retry<'_>,
) -> axum::response::Response {
    show_confirm_form(
        https,
        DeviceConfirmForm {
            user_code: &user_code.display(),
            csrf,
            client_id: &found.authorization.client_id,
            scope: &found.authorization.scope,
            confirmation: found.confirmation.as_str(),
            retry,
        },
    )
}

/// The code as typed, at most [`MAX_USER_CODE`] characters of it.
fn typed_code(raw: &str) -> String {
    raw.trim().chars().take(MAX_USER_CODE).collect()
}

/// Step 1 answered: looks the code up (wrong codes count against `caller`, RFC 8628 §5.1) and
/// shows the confirmation page, or the code form again. Decides nothing.
async fn look_up(
    app: &App,
    https: bool,
    csrf: &str,
    typed: &str,
    caller: IpAddr,
    empty_message: Option<&str>,
) -> axum::response::Response {
    let user_code = UserCode::new(typed);
    if user_code.normalized().is_empty() {
        let form = DeviceCodeForm {
            user_code: typed,
            csrf,
            message: empty_message,
        };
        return show_code_form(https, StatusCode::OK, form);
    }
    match app.server.device_request(&user_code, caller).await {
        Ok(found) => confirm(https, csrf, &user_code, &found, Retry::default()),
        Err(error) => code_refused(https, csrf, typed, &error),
    }
}

/// `GET /device` (the code form), or `GET /device?user_code=WDJB-MJHT` (the
/// `verification_uri_complete`: straight to the confirmation page).
async fn device_page(
    State(app): State<App>,
    Caller(caller): Caller,
    request: Request,
) -> axum::response::Response {
    let https = is_https(&app.server);
    let query = request.uri().query().unwrap_or_default();
    let typed = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "user_code")
        .map(|(_, v)| typed_code(&v))
        .unwrap_or_default();
    let csrf = cookie_value(request.headers(), device_csrf_cookie_name(https))
        .filter(|c| is_csrf_token(c))
        .unwrap_or_else(|| AuthorizationRequestId::generate().into_secret());
    look_up(&app, https, &csrf, &typed, caller, None).await
}

/// `POST /device`: a code typed into the code form (step 1), or a decision from the
/// confirmation page (step 2, recognised by its `confirmation` field).
async fn device_decision(
    State(app): State<App>,
    Caller(caller): Caller,
    request: Request,
) -> axum::response::Response {
    let Ok(request) = buffered(request).await else {
        return device_error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let Some(form) = read_form(request.body()) else {
        return device_error_page(StatusCode::BAD_REQUEST, FORM_TOO_LONG);
    };
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();

    // CSRF: the hidden field must match the cookie set with the form.
    let https = is_https(&app.server);
    let cookie =
        cookie_value(request.headers(), device_csrf_cookie_name(https)).unwrap_or_default();
    let csrf = field("csrf_token");
    if csrf.is_empty() || !bool::from(cookie.as_bytes().ct_eq(csrf.as_bytes())) {
        return device_error_page(
            StatusCode::BAD_REQUEST,
            "This form was not sent from this site, or it expired.",
        );
    }
    let typed = typed_code(field("user_code"));

    // Only a decision posted from a confirmation page counts: anything else is step 1, which
    // shows the person the request before they can decide (or asks for the code again).
    let confirmation = form
        .get("confirmation")
        .filter(|c| !c.is_empty() && !UserCode::new(typed.as_str()).normalized().is_empty());
    let Some(confirmation) = confirmation else {
        return look_up(
            &app,
            https,
            csrf,
            &typed,
            caller,
            Some("Enter the code your device shows."),
        )
        .await;
    };
    let confirmation = DeviceConfirmation::new(confirmation.as_str());
    let approve = match field("decision") {
        "approve" => true,
        "deny" => false,
        _ => return device_error_page(StatusCode::BAD_REQUEST, "Choose approve or deny."),
    };
    let user_code = UserCode::new(typed.as_str());
    let found = match app.server.device_request(&user_code, caller).await {
        Ok(found) => found,
        Err(error) => return code_refused(https, csrf, &typed, &error),
    };
    let username = field("username");
    if found.confirmation != confirmation {
        // The code now names another request than the page showed (the one shown expired and
        // the code was issued again, or the form was forged): show this one, decide nothing.
        let retry = Retry {
            message: Some(
                "This code now stands for another request than the one you saw. Check what it \
                 asks for, then decide again.",
            ),
            username,
        };
        return confirm(https, csrf, &user_code, &found, retry);
    }

    // Deciding, either way, takes a signed-in person: as the device's client, now that it is
    // known, and counted against the caller's address too.
    let verified = app
        .server
        .verify_user_with_otp(
            &found.authorization.client_id,
            caller,
            &Username::new(username),
            Password::new(field("password")),
            one_time_code(field("otp")),
        )
        .await;
    let user = match verified {
        Ok(user) => user,
        Err(error) if error.code() == ErrorCode::InvalidGrant => {
            let retry = Retry {
                message: Some(sign_in_refusal(&error)),
                username,
            };
            return confirm(https, csrf, &user_code, &found, retry);
        }
        Err(error) => {
            return with_retry_after(
                &error,
                device_error_page(status_of(&error), error.description()),
            )
        }
    };
    let decided = if approve {
        app.server
            .approve_device(&user_code, &confirmation, caller, user, None)
            .await
    } else {
        app.server
            .deny_device(&user_code, &confirmation, caller)
            .await
    };
    match decided {
        Ok(()) => device_done(
            approve,
            &found.authorization.client_id,
            &found.authorization.scope,
        ),
        Err(error) => code_refused(https, csrf, &typed, &error),
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, giving each request its caller's address
/// ([`ConnectInfo`]), which the login and device pages count failed sign-ins and wrong codes
/// against.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Runs the server; a setting that cannot work (a Redis that may evict keys, an unreachable
/// one, a bad `REFRESH_GRACE_SECONDS`) stops it with the reason and its causes, not a debug dump.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            let mut message = error.to_string();
            let mut cause = error.source();
            while let Some(c) = cause {
                message.push_str(": ");
                message.push_str(&c.to_string());
                cause = c.source();
            }
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let settings = DemoSettings::from_env()?;
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    let issuer = std::env::var("ISSUER").unwrap_or_else(|_| format!("http://{local}"));
    // The demo's pages post their forms and scope their cookies to fixed paths at the root.
    if url::Url::parse(&issuer).is_ok_and(|url| url.path() != "/") {
        return Err(format!(
            "ISSUER {issuer:?} has a path: the demo serves its endpoints and pages at the root of \
             its host, so its issuer has no path (grantor::axum::routed_path shows how an app of \
             your own would route below one)"
        )
        .into());
    }
    let storage = Storage::from_lookup(|name| std::env::var(name).ok())?;
    let users = Arc::new(DemoUsers::seeded()?);
    let app = router(demo_server_on(&issuer, &storage, settings, users).await?);
    // A URL may carry a password: name only where it points.
    let place = |url: &str| url.rsplit('@').next().unwrap_or(url).to_owned();
    match &storage {
        Storage::Redis(url) => eprintln!("keeping tokens in Redis at {}", place(url)),
        Storage::Database(url) => eprintln!("keeping tokens in the database at {}", place(url)),
        Storage::Memory => {}
    }
    if !matches!(storage, Storage::Memory) && std::env::var_os("SIGNING_KEY_FILE").is_none() {
        eprintln!(
            "warning: no SIGNING_KEY_FILE: this copy signs JWTs with a key of its own, so copies \
             sharing the store publish different keys at /oauth/jwks (a restart, a new one)"
        );
    }
    if !settings.refresh_grace.is_zero() {
        eprintln!(
            "a just-rotated refresh token may be presented again for {} s",
            settings.refresh_grace.as_secs()
        );
    }

    println!("listening on http://{local}");
    serve(listener, app, shutdown_signal()).await?;
    Ok(())
}
