//! grantor in an axum 0.8 service (feature `axum`).
//!
//! - [`router`]: the machine endpoints (token, revocation, introspection, device authorization
//!   when that grant is on, and the metadata document when an issuer is set) at the paths the
//!   server was built with, ready to merge into the host's own router;
//! - extractors that read an axum request into grantor's: [`TokenRequest`] and
//!   [`AuthorizationRequest`] (whole bodies, at most [`MAX_BODY_BYTES`]), and [`Caller`], the
//!   address the login and device pages count failed attempts against;
//! - [`RequireScope`], an extractor for the host's own routes that checks the bearer token and
//!   its scope, and answers the RFC 6750 challenge itself;
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
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Deref;

use ::axum::body::Body;
use ::axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request, State};
use ::axum::http::request::Parts;
use ::axum::response::IntoResponse;
use ::axum::routing::{get, post};
use ::axum::Router;

use crate::authorize::{AuthorizationRequest, Redirect};
use crate::bearer::{AccessGrant, BearerError, BearerValidator, Presented};
use crate::error::OAuthError;
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
/// | `GET /.well-known/oauth-authorization-server` (only with an issuer) | [`AuthorizationServer::metadata`] |
///
/// The paths are the server's [`endpoint_paths`](AuthorizationServer::endpoint_paths), below
/// the issuer's own path, so they are exactly where the metadata document says they are; the
/// metadata document itself is where RFC 8414 §3.1 puts it (for an issuer with a path, such as
/// `https://example.com/tenant`, at `/.well-known/oauth-authorization-server/tenant`). Any
/// other method on these paths is answered `405 Method Not Allowed`.
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
    if server.issuer().is_some() {
        router = router.route(
            &format!("/.well-known/oauth-authorization-server{base}"),
            get(metadata),
        );
    }
    router.with_state(server)
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

/// A body too large to read: the error every grantor endpoint answers for a malformed request.
fn body_too_large() -> Response {
    OAuthError::invalid_request(format!(
        "the request body is larger than {MAX_BODY_BYTES} bytes"
    ))
    .into_token_response()
}

/// The whole body, at most [`MAX_BODY_BYTES`] of it.
async fn read_body(body: Body) -> Result<::axum::body::Bytes, Response> {
    ::axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| body_too_large())
}

/// A token, revocation, introspection or device authorization request: method, headers and the
/// whole body (kept, not copied). A body over [`MAX_BODY_BYTES`] is refused with the JSON
/// `invalid_request` error the endpoint itself would answer.
impl<S: Send + Sync> FromRequest<S> for TokenRequest {
    type Rejection = Response;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let body = read_body(body).await?;
        Ok(TokenRequest::from(http::Request::from_parts(parts, body)))
    }
}

/// An authorization request (RFC 6749 §4.1.1, §4.2.1): the query of a `GET`, or the form body
/// of a `POST` (§3.1: the endpoint "MAY support the use of the HTTP POST method"), at most
/// [`MAX_BODY_BYTES`]. Any other method, or a larger body, is refused with `400` and a plain
/// text reason: the request is not yet known to come from a client, so nothing redirects.
impl<S: Send + Sync> FromRequest<S> for AuthorizationRequest {
    type Rejection = (::axum::http::StatusCode, &'static str);

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        const BAD_REQUEST: ::axum::http::StatusCode = ::axum::http::StatusCode::BAD_REQUEST;
        if request.method() == http::Method::GET {
            return Ok(AuthorizationRequest::from_query(
                request.uri().query().unwrap_or_default(),
            ));
        }
        if request.method() != http::Method::POST {
            return Err((
                BAD_REQUEST,
                "the authorization endpoint takes GET or POST requests",
            ));
        }
        match ::axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES).await {
            Ok(body) => Ok(AuthorizationRequest::from_form(body)),
            Err(_) => Err((BAD_REQUEST, "the request body is too large")),
        }
    }
}

/// The address of whoever sent the request, as the host's login and device pages hand it to
/// [`AuthorizationServer::verify_user`] and [`AuthorizationServer::device_request`], which count
/// failed sign-ins and wrong codes against it.
///
/// Read from [`ConnectInfo<SocketAddr>`](ConnectInfo), which axum sets when the router is
/// served with `into_make_service_with_connect_info::<SocketAddr>()`. Without it (a router
/// served some other way, or in tests) every caller is the unspecified address `0.0.0.0`, and
/// all of them share its limits. Behind a reverse proxy the address is the proxy's: take the
/// client's from the proxy's header instead, trusted only from the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Caller(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(address)| {
                    address.ip()
                }),
        ))
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
    /// Empty: any valid access token will do.
    const SCOPE: &'static str;
}

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
/// [`Query`](crate::TokenLocation::Query)). A token in a form body (§2.2) is not looked for,
/// since an extractor of the request's parts cannot read the body; a route that takes those
/// calls [`BearerValidator::validate_http`] itself.
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
        let validator = BearerValidator::from_ref(state);
        let required = required_scope::<R>().map_err(|error| validator.refusal(error))?;
        let presented = Presented {
            method: Some(Method::parse(parts.method.as_str())),
            authorization: crate::http::header(&parts.headers, http::header::AUTHORIZATION),
            query: parts.uri.query().map(str::as_bytes),
            content_type: None::<BodyType>,
            body: &[],
        };
        let grant = validator.validate_presented(presented, &required).await?;
        Ok(RequireScope {
            grant,
            required: PhantomData,
        })
    }
}

/// `R`'s scope, parsed. A requirement that is no scope at all is the host's mistake: every
/// request to its route is refused with `500 server_error`, and the log says why.
fn required_scope<R: ScopeRequirement>() -> Result<Scope, OAuthError> {
    if R::SCOPE.is_empty() {
        return Ok(Scope::default());
    }
    R::SCOPE.parse().map_err(|error| {
        tracing::error!(
            scope = R::SCOPE,
            %error,
            "a route's ScopeRequirement is not a valid scope"
        );
        OAuthError::server_error("the route's required scope is misconfigured")
    })
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

impl IntoResponse for BearerError {
    fn into_response(self) -> ::axum::response::Response {
        IntoResponse::into_response(BearerError::into_response(&self))
    }
}
