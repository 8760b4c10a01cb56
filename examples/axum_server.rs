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
    async_trait, AuthorizationRequest, AuthorizationRequestId, AuthorizationServer,
    AuthorizeOutcome, BearerValidator, Client, ClientId, ClientSecret, ErrorCode, GrantType,
    MemoryClientStore, MemoryCodeStore, MemoryTokenStore, Password, PendingAuthorization,
    RedisStore, ResourceRequest, Scope, SecretHash, StoreError, TokenHash, TokenLocation,
    TokenRequest, UserId, UserVerdict, UserVerifier, Username,
};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Serialize;
use subtle::ConstantTimeEq as _;

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
            AuthorizationServer::builder(clients, redis.clone())
                .attempt_limiter(redis.clone())
                .enable_authorization_code_grant(redis)
        }
        None => AuthorizationServer::builder(clients, Arc::new(MemoryTokenStore::new()))
            .enable_authorization_code_grant(Arc::new(MemoryCodeStore::new())),
    };
    let server = builder
        .issuer(issuer)
        .enable_implicit_grant()
        .enable_client_credentials_grant()
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
        .route("/oauth/revoke", post(revoke))
        .route("/oauth/introspect", post(introspect))
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route(
            "/oauth/authorize",
            get(authorize_page).post(authorize_decision),
        )
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

async fn revoke(State(app): State<App>, request: Request) -> axum::response::Response {
    match buffered(request).await {
        Ok(request) => respond(app.server.revoke(TokenRequest::from_http(&request)).await),
        Err(response) => response,
    }
}

async fn introspect(State(app): State<App>, request: Request) -> axum::response::Response {
    match buffered(request).await {
        Ok(request) => respond(
            app.server
                .introspect(TokenRequest::from_http(&request))
                .await,
        ),
        Err(response) => response,
    }
}

async fn metadata(State(app): State<App>) -> axum::response::Response {
    respond(app.server.metadata())
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
.error{color:#b00020}button{margin:1rem .5rem 0 0;padding:.5rem 1rem}";

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
    let digest = TokenHash::of(request_id).to_hex();
    let prefix = if https { "__Host-" } else { "" };
    format!("{prefix}csrf_{}", digest.get(..16).unwrap_or(&digest))
}

fn is_https(server: &AuthorizationServer) -> bool {
    server.issuer().is_some_and(|i| i.starts_with("https://"))
}

pub fn login_form(
    request: &PendingAuthorization,
    request_id: &str,
    csrf: &str,
    message: Option<&str>,
) -> Markup {
    layout(
        "Sign in",
        html! {
            h1 { "Sign in" }
            p { "The application " strong { (request.client_id) } " asks for access: " em { (request.scope) } "." }
            @if let Some(message) = message {
                p.error role="alert" { (message) }
            }
            form method="post" action="/oauth/authorize" {
                input type="hidden" name="request_id" value=(request_id);
                input type="hidden" name="csrf_token" value=(csrf);
                label { "Username" input type="text" name="username" autocomplete="username"; }
                label { "Password" input type="password" name="password" autocomplete="current-password"; }
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
    message: Option<&str>,
) -> axum::response::Response {
    let mut response = html_response(status, login_form(request, request_id, csrf, message));
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
                None,
            )
        }
        AuthorizeOutcome::Redirect(redirect) => respond(redirect.into_response()),
        AuthorizeOutcome::Invalid(error) => {
            error_page(StatusCode::BAD_REQUEST, error.description())
        }
        _ => error_page(StatusCode::BAD_REQUEST, "unsupported request"),
    }
}

/// `GET /oauth/authorize?…`: validate the request and draw the login and consent form.
async fn authorize_page(State(app): State<App>, request: Request) -> axum::response::Response {
    let query = request.uri().query().unwrap_or_default().to_owned();
    answer_authorize(
        is_https(&app.server),
        app.server
            .authorize(AuthorizationRequest::from_query(query))
            .await,
    )
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
async fn authorize_decision(State(app): State<App>, request: Request) -> axum::response::Response {
    let Ok(request) = buffered(request).await else {
        return error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let form: HashMap<String, String> = url::form_urlencoded::parse(request.body())
        .into_owned()
        .collect();
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
            let verified = app
                .server
                .verify_user(
                    &pending.client_id,
                    &Username::new(field("username")),
                    Password::new(field("password")),
                )
                .await;
            match verified {
                Ok(user) => app.server.approve(&id, user, None).await,
                Err(error) if error.code() == ErrorCode::InvalidGrant => {
                    // Wrong credentials (or too many tries): the form again, nothing issued.
                    let message = if error.retry_after().is_some() {
                        "Too many failed sign-in attempts. Try again later."
                    } else {
                        "Wrong username or password."
                    };
                    return show_form(
                        https,
                        StatusCode::OK,
                        &pending,
                        request_id,
                        csrf,
                        Some(message),
                    );
                }
                Err(error) => Err(error),
            }
        }
        _ => return error_page(StatusCode::BAD_REQUEST, "Choose approve or deny."),
    };
    match decided {
        Ok(redirect) => respond(redirect.into_response()),
        Err(error) => error_page(StatusCode::BAD_REQUEST, error.description()),
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
