//! grantor in an axum 0.8 service (feature `axum`).
//!
//! - [`router`]: the machine endpoints (token, revocation, introspection, device authorization
//!   when that grant is on, and the metadata document when an issuer is set) at the paths the
//!   server was built with, ready to merge into the host's own router;
//! - extractors that read an axum request into grantor's: [`TokenRequest`] and
//!   [`AuthorizationRequest`] (whole bodies, at most [`MAX_BODY_BYTES`]), and [`Caller`], the
//!   address the login and device pages count failed attempts against;
//! - [`RequireScope`], an extractor for the host's own routes that checks the bearer token and
//!   its scope, and answers the RFC 6750 challenge itself; [`RequireScopeLayer`], the same as a
//!   tower layer over a group of routes;
//! - `IntoResponse` for grantor's [`Response`], [`Redirect`] and [`BearerError`].
//!
//! The login, consent and device pages stay the host's: their look, their sessions and their
//! CSRF protection are its own (`examples/axum_server.rs` draws them).
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::routing::get;
//! use grantor::axum::{RequireScope, ScopeRequirement};
//! use grantor::{AuthorizationServer, MemoryClientStore, MemoryTokenStore};
//!
//! /// The scope `/hello` needs.
//! struct Read;
//! impl ScopeRequirement for Read {
//!     const SCOPE: &'static str = "read";
//! }
//!
//! async fn hello(token: RequireScope<Read>) -> String {
//!     format!("hello, {}", token.client_id.as_str())
//! }
//!
//! # async fn demo(clients: MemoryClientStore) -> std::io::Result<()> {
//! let server = AuthorizationServer::builder(Arc::new(clients), Arc::new(MemoryTokenStore::new()))
//!     .enable_client_credentials_grant()
//!     .build()
//!     .expect("a valid configuration");
//! let app = grantor::axum::router(server.clone())
//!     .route("/hello", get(hello))
//!     .with_state(server);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;

use ::axum::body::Body;
use ::axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request, State};
use ::axum::http::request::Parts;
use ::axum::response::IntoResponse;
use ::axum::routing::{get, post};
use ::axum::Router;

use crate::authorize::{AuthorizationRequest, Redirect};
use crate::bearer::{AccessGrant, BearerError, BearerValidator, Needed, Presented};
use crate::error::OAuthError;
use crate::metadata::METADATA_PATH;
use crate::request::{BodyType, Method, TokenRequest};
use crate::response::Response;
use crate::scope::Scope;
use crate::server::AuthorizationServer;

/// The largest request body the extractors read (64 KiB): far more than any request within
/// grantor's own bounds on parameters needs. A larger body is refused with
/// `400 invalid_request` before any of it is kept.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The machine endpoints of `server`, as an axum router the host merges routes of its own into
/// (it takes any state, since it carries its own):
///
/// | method, path | answered by |
/// |---|---|
/// | `POST` token path | [`AuthorizationServer::token`] |
/// | `POST` revocation path | [`AuthorizationServer::revoke`] |
/// | `POST` introspection path | [`AuthorizationServer::introspect`] |
/// | `POST` device authorization path (only with the device grant on) | [`AuthorizationServer::device_authorization`] |
/// | `GET` JWK Set path (only with a [`token_signer`](crate::AuthorizationServerBuilder::token_signer)) | [`AuthorizationServer::jwks`] |
/// | `GET /.well-known/oauth-authorization-server` (only with an issuer) | [`AuthorizationServer::metadata`] |
///
/// The paths are the server's [`endpoint_paths`](AuthorizationServer::endpoint_paths), below
/// the issuer's own path ([`routed_path`]), so they are exactly where the metadata document says
/// they are; the metadata document itself is where RFC 8414 §3.1 puts it (for an issuer with a
/// path, such as `https://example.com/tenant`, at
/// `/.well-known/oauth-authorization-server/tenant`). Any other method on these paths is
/// answered `405 Method Not Allowed`.
///
/// Serve the router at the root of the issuer's host, as the requests arrive there: merge it
/// into the host's router rather than nesting it, and do not let a proxy strip a prefix from
/// the path (the metadata document would then name endpoints the router does not serve). Route
/// the host's own pages with [`routed_path`] too, so that they are where the document says.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()`, or behind a reverse
/// proxy insert a [`Caller`] for the address the proxy reports (a middleware of the host's):
/// token requests then carry their caller, and wrong client secrets and passwords are counted
/// per caller ([`ClientSecretLimits`](crate::ClientSecretLimits)). Otherwise every request
/// shares one count per client.
///
/// Building the router cannot panic: the builder refused every path and issuer that axum would
/// refuse to route.
pub fn router<S>(server: AuthorizationServer) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let base = issuer_path(server.issuer());
    let paths = server.endpoint_paths();
    let mut router = Router::new()
        .route(&format!("{base}{}", paths.token), post(token))
        .route(&format!("{base}{}", paths.revocation), post(revoke))
        .route(&format!("{base}{}", paths.introspection), post(introspect));
    if server.device_grant_enabled() {
        router = router.route(
            &format!("{base}{}", paths.device_authorization),
            post(device_authorization),
        );
    }
    if server.signs() {
        router = router.route(&format!("{base}{}", paths.jwks), get(jwks));
    }
    if server.issuer().is_some() {
        router = router.route(&format!("{METADATA_PATH}{base}"), get(metadata));
    }
    router.with_state(server)
}

/// Where [`router`] serves an endpoint path of the server (one of its
/// [`endpoint_paths`](AuthorizationServer::endpoint_paths)): below the issuer's own path, as the
/// metadata document names it. For the host's own pages:
///
/// ```
/// # fn demo(server: grantor::AuthorizationServer) -> axum::Router {
/// # async fn login_page() {}
/// let login = grantor::axum::routed_path(&server, &server.endpoint_paths().authorization);
/// grantor::axum::router(server).route(&login, axum::routing::get(login_page))
/// # }
/// ```
pub fn routed_path(server: &AuthorizationServer, path: &str) -> String {
    format!("{}{path}", issuer_path(server.issuer()))
}

/// The issuer's path without its final `/` (empty for an issuer with no path): the paths of the
/// endpoints are below it.
fn issuer_path(issuer: Option<&str>) -> String {
    issuer
        .and_then(|issuer| url::Url::parse(issuer).ok())
        .map(|url| url.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

async fn token(State(server): State<AuthorizationServer>, request: TokenRequest) -> Response {
    server.token(request).await
}

async fn revoke(State(server): State<AuthorizationServer>, request: TokenRequest) -> Response {
    server.revoke(request).await
}

async fn introspect(State(server): State<AuthorizationServer>, request: TokenRequest) -> Response {
    server.introspect(request).await
}

async fn device_authorization(
    State(server): State<AuthorizationServer>,
    request: TokenRequest,
) -> Response {
    server.device_authorization(request).await
}

async fn metadata(State(server): State<AuthorizationServer>) -> Response {
    server.metadata()
}

async fn jwks(State(server): State<AuthorizationServer>) -> Response {
    server.jwks()
}

/// Why a body could not be read.
enum Unread {
    /// It is longer than [`MAX_BODY_BYTES`].
    TooLarge,
    /// The connection failed, or the body was malformed, before it ended.
    Broken,
}

impl Unread {
    fn description(&self) -> &'static str {
        match self {
            Unread::TooLarge => "the request body is larger than 65536 bytes",
            Unread::Broken => "the request body could not be read",
        }
    }
}

/// The whole body, at most [`MAX_BODY_BYTES`] of it.
async fn read_body(body: Body) -> Result<::axum::body::Bytes, Unread> {
    ::axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|error| {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|cause| cause.is::<http_body_util::LengthLimitError>());
            if too_large {
                Unread::TooLarge
            } else {
                Unread::Broken
            }
        })
}

/// A token, revocation, introspection or device authorization request: method, headers, the
/// whole body (kept, not copied), and the caller's address, read as [`Caller`] reads it when
/// it is known (wrong client secrets and passwords are then counted per caller, see
/// [`ClientSecretLimits`](crate::ClientSecretLimits)). A body over
/// [`MAX_BODY_BYTES`] is refused with the JSON `invalid_request` error the endpoint itself
/// would answer.
impl<S: Send + Sync> FromRequest<S> for TokenRequest {
    type Rejection = Response;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let caller = caller_of(&parts);
        let body = read_body(body).await.map_err(|unread| {
            // The error every grantor endpoint answers for a malformed request.
            OAuthError::invalid_request(unread.description()).into_token_response()
        })?;
        let request = TokenRequest::from(http::Request::from_parts(parts, body));
        Ok(match caller {
            Some(caller) => request.with_caller(caller),
            None => request,
        })
    }
}

/// An authorization request (RFC 6749 §4.1.1, §4.2.1): the query of a `GET` (or `HEAD`), or
/// the form body of a `POST` (§3.1: the endpoint "MAY support the use of the HTTP POST
/// method"), at most [`MAX_BODY_BYTES`]. Any other method, or a body that cannot be read, is
/// refused with `400` and a plain text reason: the request is not yet known to come from a
/// client, so nothing redirects.
impl<S: Send + Sync> FromRequest<S> for AuthorizationRequest {
    type Rejection = (::axum::http::StatusCode, &'static str);

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        const BAD_REQUEST: ::axum::http::StatusCode = ::axum::http::StatusCode::BAD_REQUEST;
        let method = request.method();
        if method == http::Method::GET || method == http::Method::HEAD {
            return Ok(AuthorizationRequest::from_query(
                request.uri().query().unwrap_or_default(),
            ));
        }
        if method != http::Method::POST {
            return Err((
                BAD_REQUEST,
                "the authorization endpoint takes GET or POST requests",
            ));
        }
        match read_body(request.into_body()).await {
            Ok(body) => Ok(AuthorizationRequest::from_form(body)),
            Err(unread) => Err((BAD_REQUEST, unread.description())),
        }
    }
}

/// The address of whoever sent the request, as the host's login and device pages hand it to
/// [`AuthorizationServer::verify_user`] and [`AuthorizationServer::device_request`], which count
/// failed sign-ins and wrong codes against it.
///
/// A `Caller` in the request's extensions comes first: behind a reverse proxy the connection's
/// address is the proxy's, so a middleware of the host's takes the client's from the proxy's
/// header (trusted only from the proxy) and inserts a `Caller` for it. Otherwise it is read
/// from [`ConnectInfo<SocketAddr>`](ConnectInfo), which axum sets when the router is served
/// with `into_make_service_with_connect_info::<SocketAddr>()`. Without either (a router served
/// some other way) the request is refused with `500 Internal Server Error` and an error in the
/// log, as axum's own `ConnectInfo` extractor does: counting every caller as one address would
/// let one person's wrong guesses lock everyone out. The [`TokenRequest`] extractor reads the
/// caller the same way, and goes on without one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller(pub IpAddr);

/// The caller a request names: a `Caller` the host inserted, else the connection's address.
fn caller_of(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<Caller>()
        .map(|Caller(address)| *address)
        .or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip())
        })
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = (::axum::http::StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match caller_of(parts) {
            Some(address) => Ok(Caller(address)),
            None => {
                tracing::error!(
                    "grantor::axum::Caller needs the connection's address: serve the router \
                     with into_make_service_with_connect_info::<SocketAddr>()"
                );
                Err((
                    ::axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "the server does not know the caller's address",
                ))
            }
        }
    }
}

/// The scope a route needs, for [`RequireScope`]: a type of the host's own naming it.
///
/// ```
/// use grantor::axum::ScopeRequirement;
///
/// /// The scope the reports need.
/// struct ReadReports;
/// impl ScopeRequirement for ReadReports {
///     const SCOPE: &'static str = "reports:read";
/// }
/// ```
pub trait ScopeRequirement: Send + Sync + 'static {
    /// The scope, as space-separated tokens (RFC 6749 §3.3): the token must grant every one.
    /// Empty: any valid access token will do. A value that is no scope (two spaces in a row, a
    /// `"`, a `\\`, a character outside ASCII) fails to build where a route uses it (a full
    /// build: `cargo check` does not evaluate the check).
    const SCOPE: &'static str;
}

/// Whether `scope` is a scope as RFC 6749 §3.3 writes one (what [`Scope::parse`] takes): empty,
/// or tokens of `%x21 / %x23-5B / %x5D-7E` separated by single spaces.
const fn is_scope(scope: &str) -> bool {
    let mut rest = scope.as_bytes();
    // Whether the byte before is a token's: a space must follow one and precede one.
    let mut after_token = false;
    while let [b, tail @ ..] = rest {
        if *b == b' ' {
            if !after_token || tail.is_empty() {
                return false;
            }
            after_token = false;
        } else if crate::scope::is_scope_char(*b) {
            after_token = true;
        } else {
            return false;
        }
        rest = tail;
    }
    true
}

/// A requirement that is no scope does not compile where a route uses it:
///
/// ```compile_fail
/// use grantor::axum::{RequireScope, ScopeRequirement};
///
/// struct Typo;
/// impl ScopeRequirement for Typo {
///     const SCOPE: &'static str = "read  write"; // two spaces
/// }
///
/// async fn reports(_: RequireScope<Typo>) {}
///
/// fn main() {
///     let server = grantor::AuthorizationServer::builder(
///         std::sync::Arc::new(grantor::MemoryClientStore::new()),
///         std::sync::Arc::new(grantor::MemoryTokenStore::new()),
///     )
///     .enable_client_credentials_grant()
///     .build()
///     .expect("a valid configuration");
///     let _app: axum::Router = grantor::axum::router(server.clone())
///         .route("/reports", axum::routing::get(reports))
///         .with_state(server);
/// }
/// ```
///
/// No scope at all: `RequireScope<AnyScope>` takes any valid access token.
#[derive(Debug)]
pub struct AnyScope;

impl ScopeRequirement for AnyScope {
    const SCOPE: &'static str = "";
}

/// An extractor for the host's own routes: the request's bearer token is valid, and grants
/// every scope token of `R` (RFC 6750). It dereferences to the [`AccessGrant`] the token stands
/// for.
///
/// The token is read from the `Authorization: Bearer` header (RFC 6750 §2.1), and from the
/// `access_token` query parameter only when the server accepts those (off by default, §2.3: a
/// response to such a request "SHOULD contain a Cache-Control header with the "private"
/// option", which the handler adds when [`presented_in`](AccessGrant::presented_in) says
/// [`Query`](crate::TokenLocation::Query), and [`RequireScopeLayer`] adds by itself). A token in
/// a form body (§2.2) is not looked for, since an extractor of the request's parts cannot read
/// the body; a route that takes those calls [`BearerValidator::validate_http`] itself.
///
/// The validator comes from the router's state: [`BearerValidator`] must be
/// [`FromRef`] of it. It is for an [`AuthorizationServer`] (its
/// [`bearer_validator`](AuthorizationServer::bearer_validator)) and for a validator itself; a
/// state of the host's own implements `FromRef` (or derives it with axum's `macros` feature).
///
/// A refusal answers the RFC 6750 §3 challenge: `401` with `WWW-Authenticate: Bearer` and no
/// error when the request carried no token, `400 invalid_request`, `401 invalid_token`, or
/// `403 insufficient_scope` naming the scope the route needs.
pub struct RequireScope<R: ScopeRequirement> {
    grant: AccessGrant,
    required: PhantomData<fn() -> R>,
}

impl<R: ScopeRequirement> RequireScope<R> {
    /// The grant the token stands for.
    pub fn into_grant(self) -> AccessGrant {
        self.grant
    }
}

impl<R: ScopeRequirement> Deref for RequireScope<R> {
    type Target = AccessGrant;

    fn deref(&self) -> &AccessGrant {
        &self.grant
    }
}

impl<R: ScopeRequirement> fmt::Debug for RequireScope<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScope")
            .field("scope", &R::SCOPE)
            .field("grant", &self.grant)
            .finish()
    }
}

impl<S, R> FromRequestParts<S> for RequireScope<R>
where
    S: Send + Sync,
    R: ScopeRequirement,
    BearerValidator: FromRef<S>,
{
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        const {
            assert!(
                is_scope(R::SCOPE),
                "a ScopeRequirement's SCOPE is not a scope (RFC 6749 §3.3)"
            );
        }
        // Checked when compiled (above), and read as text: no scope is built per request.
        let grant = BearerValidator::from_ref(state)
            .validate_presented(presented(parts), Needed::Text(R::SCOPE))
            .await?;
        Ok(RequireScope {
            grant,
            required: PhantomData,
        })
    }
}

/// A tower layer for a group of the host's own routes (`Router::route_layer`): each request's
/// bearer token must be valid and grant the scope, as [`RequireScope`] checks it; a refusal is
/// answered with the RFC 6750 challenge, and the handler never runs. A request let through
/// carries its [`AccessGrant`] in its extensions (`Extension<AccessGrant>` reads it), and when the
/// token came in the query (RFC 6750 §2.3, if the server accepts those) its response gets the
/// `Cache-Control: private` the RFC asks for.
///
/// ```
/// use axum::{routing::get, Extension, Router};
/// use grantor::axum::RequireScopeLayer;
/// use grantor::AccessGrant;
///
/// async fn report(Extension(grant): Extension<AccessGrant>) -> String {
///     format!("for {}", grant.client_id.as_str())
/// }
///
/// # fn demo(server: grantor::AuthorizationServer) -> Router {
/// let reports: Router = Router::new()
///     .route("/reports/daily", get(report))
///     .route("/reports/weekly", get(report))
///     .route_layer(RequireScopeLayer::new(
///         server.bearer_validator(),
///         "reports:read".parse().expect("a scope"),
///     ));
/// # reports }
/// ```
#[derive(Clone, Debug)]
pub struct RequireScopeLayer {
    validator: BearerValidator,
    required: Scope,
}

impl RequireScopeLayer {
    /// Requires a valid token that grants every token of `required` (empty: any valid token).
    pub fn new(validator: BearerValidator, required: Scope) -> Self {
        Self {
            validator,
            required,
        }
    }
}

impl<S> tower_layer::Layer<S> for RequireScopeLayer {
    type Service = RequireScopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopeService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`RequireScopeLayer`] wraps around a route.
#[derive(Clone, Debug)]
pub struct RequireScopeService<S> {
    inner: S,
    layer: RequireScopeLayer,
}

impl<S> tower_service::Service<Request> for RequireScopeService<S>
where
    S: tower_service::Service<Request, Response = ::axum::response::Response>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = ::axum::response::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone that was made ready is the one to call; a fresh clone stays behind.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let checked = layer
                .validator
                .validate_presented(presented(&parts), Needed::Scope(&layer.required))
                .await;
            let grant = match checked {
                Ok(grant) => grant,
                Err(refusal) => return Ok(IntoResponse::into_response(refusal)),
            };
            let in_query = grant.presented_in == crate::TokenLocation::Query;
            parts.extensions.insert(grant);
            let mut response = inner.call(Request::from_parts(parts, body)).await?;
            if in_query {
                response.headers_mut().insert(
                    http::header::CACHE_CONTROL,
                    http::HeaderValue::from_static("private"),
                );
            }
            Ok(response)
        })
    }
}

/// What a request's parts present to the validator: the `Authorization` header, and the query
/// (a form body is not read: see [`RequireScope`]).
fn presented(parts: &Parts) -> Presented<'_> {
    Presented {
        method: Some(Method::parse(parts.method.as_str())),
        authorization: crate::http::header(&parts.headers, http::header::AUTHORIZATION),
        query: parts.uri.query().map(str::as_bytes),
        content_type: None::<BodyType>,
        body: &[],
    }
}

impl FromRef<AuthorizationServer> for BearerValidator {
    fn from_ref(server: &AuthorizationServer) -> Self {
        server.bearer_validator()
    }
}

impl IntoResponse for Response {
    fn into_response(self) -> ::axum::response::Response {
        http::Response::<Vec<u8>>::from(self)
            .map(Body::from)
            .into_response()
    }
}

impl IntoResponse for Redirect {
    fn into_response(self) -> ::axum::response::Response {
        IntoResponse::into_response(Redirect::into_response(self))
    }
}

impl IntoResponse for crate::ProtectedResourceMetadata {
    fn into_response(self) -> ::axum::response::Response {
        IntoResponse::into_response(crate::ProtectedResourceMetadata::into_response(&self))
    }
}

/// A router serving `metadata` (RFC 9728) where §3.1 puts it, on the resource's own host: merge
/// it into the resource server's router. Empty if the resource identifier is no URL without a
/// query or a fragment.
pub fn resource_metadata_router<S>(metadata: crate::ProtectedResourceMetadata) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let Some(path) = metadata
        .well_known_path()
        .filter(|path| crate::metadata::is_routable_path(path))
    else {
        return Router::new();
    };
    let document = crate::ProtectedResourceMetadata::into_response(&metadata);
    Router::new().route(
        &path,
        get(move || {
            let document = document.clone();
            async move { document }
        }),
    )
}

impl IntoResponse for BearerError {
    fn into_response(self) -> ::axum::response::Response {
        IntoResponse::into_response(BearerError::into_response(&self))
    }
}

#[cfg(test)]
mod tests {
    use super::is_scope;
    use crate::scope::Scope;

    /// The compile-time check takes exactly what `Scope::parse` takes.
    #[test]
    fn the_compile_time_scope_check_agrees_with_the_parser() {
        for candidate in [
            "",
            "read",
            "read write",
            "a:b/c",
            "!#[]~",
            " read",
            "read ",
            "read  write",
            "re\"ad",
            "re\\ad",
            "réad",
            "read\twrite",
            "\u{7f}",
            "a b c d",
        ] {
            assert_eq!(
                is_scope(candidate),
                Scope::parse(candidate).is_ok(),
                "{candidate:?}"
            );
        }
    }
}
