//! grantor behind axum: the demo authorization server of `../shared/example-server.md`.
//!
//! ```sh
//! cargo run --example axum_server --features http
//! curl -s -u clientapp:123456 -d grant_type=password -d username=tom -d password=123456 \
//!      http://127.0.0.1:8080/oauth/token
//! ```
//!
//! Everything OAuth is in grantor; this file is glue: it seeds the demo clients and users, turns
//! axum requests into grantor requests and grantor responses back into axum responses.
//!
//! Settings (environment):
//! - `ADDR`: the address to listen on, default `127.0.0.1:8080`;
//! - `ISSUER`: the issuer identifier, default `http://<ADDR>`;
//! - `REDIS_URL`: keep tokens and failed-login counts in Redis (e.g. `redis://127.0.0.1:6379`),
//!   so that several copies of the server behind one address behave as one;
//! - `RUST_LOG`: log filter, default `info`.

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use grantor::{
    async_trait, AuthorizationServer, BearerValidator, Client, ClientId, ClientSecret, GrantType,
    MemoryClientStore, MemoryTokenStore, Password, RedisStore, ResourceRequest, Scope, SecretHash,
    StoreError, TokenLocation, TokenRequest, UserId, UserVerdict, UserVerifier, Username,
};
use serde::Serialize;

/// The largest request body the demo reads.
const MAX_BODY: usize = 64 * 1024;

/// The demo's users, with argon2id password hashes. A real app reads these from its database.
pub struct DemoUsers {
    users: HashMap<String, (UserId, String)>,
    decoy: String,
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
    /// `tom`, `admin` and `alice`, each with password `123456`.
    pub fn seeded() -> Result<Self, Box<dyn Error>> {
        let mut users = HashMap::new();
        for (name, id) in [
            ("tom", "user-tom"),
            ("admin", "user-admin"),
            ("alice", "user-alice"),
        ] {
            users.insert(name.to_owned(), (UserId::new(id), argon2_hash("123456")?));
        }
        Ok(Self {
            users,
            decoy: argon2_hash("decoy password that nobody has")?,
        })
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
        let password = password.secret().to_owned();
        // argon2 is deliberately slow: keep it off the async workers.
        let matches = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(StoreError::backend)?;
        Ok(match (user, matches) {
            (Some(id), true) => UserVerdict::Authenticated(id),
            _ => UserVerdict::Refused,
        })
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
    Ok(clients)
}

/// The demo authorization server: tokens and failed-login counts in memory, or in Redis when
/// `redis_url` is given (so that several copies behind one address behave as one).
pub async fn demo_server(
    issuer: &str,
    redis_url: Option<&str>,
) -> Result<AuthorizationServer, Box<dyn Error>> {
    let clients = Arc::new(demo_clients()?);
    let builder = match redis_url {
        Some(url) => {
            let redis = Arc::new(RedisStore::connect(url).await?);
            AuthorizationServer::builder(clients, redis.clone()).attempt_limiter(redis)
        }
        None => AuthorizationServer::builder(clients, Arc::new(MemoryTokenStore::new())),
    };
    let server = builder
        .issuer(issuer)
        .enable_password_grant(Arc::new(DemoUsers::seeded()?))
        .enable_refresh_token_grant()
        // The worked example this demo follows passes the token as ?access_token=…
        .allow_query_access_tokens(true)
        .build()?;
    Ok(server)
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
}

/// The HTTP routes over a server.
pub fn router(server: AuthorizationServer) -> Router {
    let resources = server.bearer_validator();
    Router::new()
        .route("/oauth/token", post(token))
        .route("/api/users", get(users))
        .with_state(App { server, resources })
}

/// Reads the whole body, so grantor sees exactly what arrived.
async fn buffered(request: Request) -> Result<http::Request<Bytes>, axum::response::Response> {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => Ok(http::Request::from_parts(parts, bytes)),
        Err(_) => Err(StatusCode::PAYLOAD_TOO_LARGE.into_response()),
    }
}

fn respond(response: grantor::Response) -> axum::response::Response {
    http::Response::<Vec<u8>>::from(response)
        .map(Body::from)
        .into_response()
}

async fn token(State(app): State<App>, request: Request) -> axum::response::Response {
    match buffered(request).await {
        Ok(request) => respond(app.server.token(TokenRequest::from_http(&request)).await),
        Err(response) => response,
    }
}

async fn users(State(app): State<App>, request: Request) -> axum::response::Response {
    let request = match buffered(request).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let read = Scope::parse("read").unwrap_or_default();
    match app
        .resources
        .validate(&ResourceRequest::from_http(&request), &read)
        .await
    {
        Ok(grant) => {
            let mut response = Json(DEMO_USERS).into_response();
            if grant.presented_in == TokenLocation::Query {
                // RFC 6750 §2.3: a response to a query-token request "SHOULD contain a
                // Cache-Control header with the "private" option".
                response.headers_mut().insert(
                    http::header::CACHE_CONTROL,
                    http::HeaderValue::from_static("private"),
                );
            }
            response
        }
        Err(refusal) => respond(refusal.into_response()),
    }
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let local = listener.local_addr()?;
    let issuer = std::env::var("ISSUER").unwrap_or_else(|_| format!("http://{local}"));
    let redis_url = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty());
    let app = router(demo_server(&issuer, redis_url.as_deref()).await?);
    if let Some(url) = &redis_url {
        // The URL may carry a password: name only where it points.
        let host = url.rsplit('@').next().unwrap_or(url);
        eprintln!("keeping tokens in Redis at {host}");
    }

    println!("listening on http://{local}");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}
