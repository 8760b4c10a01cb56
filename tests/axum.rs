//! The axum adapter (`grantor::axum`): the router, the extractors and the scope guard, driven
//! through axum's own service interface.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use axum::Router;
use common::*;
use grantor::axum::{AnyScope, Caller, RequireScope, ScopeRequirement, MAX_BODY_BYTES};
use grantor::{
    AuthorizationRequest, AuthorizationServer, AuthorizeOutcome, BuildError, EndpointPaths,
    MemoryTokenStore, TokenLocation,
};
use http::{Method, Request, StatusCode};
use tower::ServiceExt as _;

/// What a router answered: status, headers and the body read whole.
struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn call(router: &Router, request: Request<Body>) -> Reply {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("a body");
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.to_vec(),
    }
}

fn form(path: &str, authorization: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut request =
        Request::post(path).header("Content-Type", "application/x-www-form-urlencoded");
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    request.body(body.into()).expect("a request")
}

fn get_with(path: &str, authorization: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    request.body(Body::empty()).expect("a request")
}

const SERVICE: (&str, &str) = ("service", "service-secret");

/// `body`, posted to `path` by `service` (HTTP Basic).
fn from_service(path: &str, body: impl Into<Body>) -> Request<Body> {
    form(path, Some(&basic(SERVICE.0, SERVICE.1)), body)
}

/// A client credentials request from `service`, posted to `path`.
fn service_cc(path: &str) -> Request<Body> {
    from_service(path, "grant_type=client_credentials")
}

/// A client credentials token for `service` (scope `read`) through the router.
async fn service_token(router: &Router) -> String {
    let reply = call(router, service_cc("/oauth/token")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["access_token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

#[tokio::test]
async fn the_router_serves_the_machine_endpoints_at_their_paths() {
    let f = fixture();
    let router: Router = grantor::axum::router(f.server.clone());

    let reply = call(&router, service_cc("/oauth/token")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("Content-Type"), Some("application/json"));
    assert_eq!(reply.header("Cache-Control"), Some("no-store"));
    let token = reply.json()["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();

    // Introspection and revocation take the same requests the engine does.
    let reply = call(
        &router,
        from_service("/oauth/introspect", format!("token={token}")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["active"], true);
    let reply = call(
        &router,
        from_service("/oauth/revoke", format!("token={token}")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = call(
        &router,
        from_service("/oauth/introspect", format!("token={token}")),
    )
    .await;
    assert_eq!(reply.json()["active"], false);

    // The device authorization endpoint (the grant is on in the fixture).
    let reply = call(
        &router,
        form("/oauth/device_authorization", None, "client_id=cli"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.json()["user_code"].is_string());

    // The metadata document, where RFC 8414 §3 puts it, listing the paths routed here.
    let reply = call(
        &router,
        get_with("/.well-known/oauth-authorization-server", None),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json()["token_endpoint"],
        format!("{ISSUER}/oauth/token")
    );

    // An error is the engine's own: the JSON body and its status.
    let reply = call(
        &router,
        form(
            "/oauth/token",
            Some(&basic(SERVICE.0, "wrong")),
            "grant_type=client_credentials",
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["error"], "invalid_client");
    assert!(reply.header("WWW-Authenticate").is_some());
}

#[tokio::test]
async fn other_methods_and_other_paths_are_not_served() {
    let router: Router = grantor::axum::router(fixture().server);
    for path in [
        "/oauth/token",
        "/oauth/revoke",
        "/oauth/introspect",
        "/oauth/device_authorization",
    ] {
        let reply = call(&router, get_with(path, None)).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
    let reply = call(
        &router,
        form("/.well-known/oauth-authorization-server", None, ""),
    )
    .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    // The pages are the host's: the router has none of them.
    for path in ["/oauth/authorize", "/device", "/"] {
        let reply = call(&router, get_with(path, None)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn the_routes_follow_the_endpoint_paths_below_the_issuers_path() {
    let f = fixture_with(|b| {
        b.issuer("https://as.example.com/tenant/")
            .endpoint_paths(EndpointPaths {
                token: "/v2/token".into(),
                introspection: "/v2/introspect".into(),
                ..EndpointPaths::default()
            })
    });
    let router: Router = grantor::axum::router(f.server.clone());
    // RFC 8414 §3.1: the well-known part goes between the host and the issuer's path.
    let reply = call(
        &router,
        get_with("/.well-known/oauth-authorization-server/tenant", None),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let metadata = reply.json();
    assert_eq!(
        metadata["token_endpoint"],
        "https://as.example.com/tenant/v2/token"
    );
    let reply = call(
        &router,
        get_with("/.well-known/oauth-authorization-server", None),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    // Each endpoint is where the document says it is, and nowhere else.
    for (field, path) in [
        ("token_endpoint", "/tenant/v2/token"),
        ("introspection_endpoint", "/tenant/v2/introspect"),
        ("revocation_endpoint", "/tenant/oauth/revoke"),
        (
            "device_authorization_endpoint",
            "/tenant/oauth/device_authorization",
        ),
    ] {
        assert_eq!(
            metadata[field],
            format!("https://as.example.com{path}"),
            "{field}"
        );
        let reply = call(&router, form(path, None, "client_id=nobody")).await;
        assert_ne!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(reply.json()["error"].is_string(), "{path}");
    }
    for path in ["/v2/token", "/oauth/token", "/tenant/oauth/token"] {
        let reply = call(&router, form(path, None, "grant_type=client_credentials")).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn endpoints_the_server_does_not_have_are_not_routed() {
    // No device grant, no issuer: no device authorization endpoint, no metadata document.
    let server =
        AuthorizationServer::builder(Arc::new(clients()), Arc::new(MemoryTokenStore::new()))
            .enable_client_credentials_grant()
            .build()
            .expect("a valid configuration");
    let router: Router = grantor::axum::router(server);
    let reply = call(
        &router,
        form("/oauth/device_authorization", None, "client_id=cli"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = call(
        &router,
        get_with("/.well-known/oauth-authorization-server", None),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(!service_token(&router).await.is_empty());
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_as_the_endpoint_refuses_a_bad_request() {
    let f = fixture();
    let router: Router = grantor::axum::router(f.server.clone());
    let auth = basic(SERVICE.0, SERVICE.1);

    // A parameter over grantor's own bound, in a body within the adapter's: the engine's
    // answer, which names the parameter.
    let long = format!(
        "grant_type=client_credentials&scope={}",
        "r".repeat(grantor::MAX_PARAMETER_LENGTH + 1)
    );
    let reply = call(&router, form("/oauth/token", Some(&auth), long)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "invalid_request");

    // A body over the adapter's bound: the same error, before any of it is kept.
    for path in [
        "/oauth/token",
        "/oauth/revoke",
        "/oauth/introspect",
        "/oauth/device_authorization",
    ] {
        let body = format!(
            "grant_type=client_credentials&x={}",
            "a".repeat(MAX_BODY_BYTES)
        );
        let reply = call(&router, form(path, Some(&auth), body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        let error = reply.json();
        assert_eq!(error["error"], "invalid_request", "{path}");
        assert!(
            error["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("larger than 65536 bytes")),
            "{path}: {error}"
        );
        assert_eq!(reply.header("Cache-Control"), Some("no-store"));
    }

    // Exactly at the bound it is read, and the engine answers.
    let prefix = "grant_type=client_credentials&x=";
    let body = format!("{prefix}{}", "a".repeat(MAX_BODY_BYTES - prefix.len()));
    let reply = call(&router, form("/oauth/token", Some(&auth), body)).await;
    assert_eq!(reply.json()["error"], "invalid_request");
    assert!(!reply.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .contains("larger than"));
}

#[tokio::test]
async fn the_builder_refuses_paths_no_router_can_serve() {
    let build = |paths: EndpointPaths| {
        AuthorizationServer::builder(Arc::new(clients()), Arc::new(MemoryTokenStore::new()))
            .enable_client_credentials_grant()
            .endpoint_paths(paths)
            .build()
            .map(|_| ())
    };
    for bad in [
        "oauth/token",
        "",
        "/oauth/{token}",
        "/oauth/*token",
        "/oauth/token?x=1",
        "/oauth/token#x",
        "/oauth/to ken",
        "/oauth/to\nken",
    ] {
        assert_eq!(
            build(EndpointPaths {
                token: bad.into(),
                ..EndpointPaths::default()
            }),
            Err(BuildError::InvalidEndpointPath(bad.to_owned())),
            "{bad:?}"
        );
    }
    // Two endpoints on one path: the second is named.
    assert_eq!(
        build(EndpointPaths {
            introspection: "/oauth/revoke".into(),
            ..EndpointPaths::default()
        }),
        Err(BuildError::InvalidEndpointPath("/oauth/revoke".to_owned()))
    );
    assert_eq!(build(EndpointPaths::default()), Ok(()));
}

/// The scopes the test routes need.
struct Read;
impl ScopeRequirement for Read {
    const SCOPE: &'static str = "read";
}
struct ReadWrite;
impl ScopeRequirement for ReadWrite {
    const SCOPE: &'static str = "read write";
}

async fn whoami<R: ScopeRequirement>(token: RequireScope<R>) -> String {
    let located = match token.presented_in {
        TokenLocation::Query => "query",
        TokenLocation::Header => "header",
        _ => "elsewhere",
    };
    format!("{} {} {located}", token.client_id.as_str(), token.scope)
}

/// The host's own routes behind `RequireScope`, with the server as their state.
fn guarded(server: AuthorizationServer) -> Router {
    grantor::axum::router(server.clone())
        .route("/read", get(whoami::<Read>))
        .route("/read-write", get(whoami::<ReadWrite>))
        .route("/any", get(whoami::<AnyScope>).post(whoami::<AnyScope>))
        .with_state(server)
}

#[tokio::test]
async fn require_scope_answers_the_rfc_6750_challenges() {
    let f = fixture();
    let router = guarded(f.server.clone());
    let token = service_token(&router).await;
    let bearer = format!("Bearer {token}");

    let reply = call(&router, get_with("/read", Some(&bearer))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "service read header");
    let reply = call(&router, get_with("/any", Some(&bearer))).await;
    assert_eq!(reply.text(), "service read header");

    // §3: no token at all: 401 and a bare challenge, no error.
    let reply = call(&router, get_with("/read", None)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.header("WWW-Authenticate"), Some("Bearer"));
    assert!(reply.body.is_empty());
    let reply = call(&router, get_with("/read", Some("Basic c2VydmljZTp4"))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.header("WWW-Authenticate"), Some("Bearer"));

    // §3.1 invalid_token: unknown, or revoked.
    let reply = call(&router, get_with("/read", Some("Bearer not-a-token"))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["error"], "invalid_token");
    assert!(reply
        .header("WWW-Authenticate")
        .is_some_and(|c| c.starts_with("Bearer error=\"invalid_token\"")));

    // §3.1 insufficient_scope: 403, naming the scope the route needs.
    let reply = call(&router, get_with("/read-write", Some(&bearer))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json()["error"], "insufficient_scope");
    assert!(reply
        .header("WWW-Authenticate")
        .is_some_and(|c| c.contains("scope=\"read write\"")));

    // §3.1 invalid_request: a malformed header.
    let reply = call(&router, get_with("/read", Some("Bearer "))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "invalid_request");
    assert!(reply
        .header("WWW-Authenticate")
        .is_some_and(|c| c.starts_with("Bearer error=\"invalid_request\"")));

    // A query token is not read while the server does not accept them (§2.3 is off).
    let reply = call(
        &router,
        get_with(&format!("/read?access_token={token}"), None),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.header("WWW-Authenticate"), Some("Bearer"));

    // A body token is not looked for: the extractor reads the request's parts only.
    let reply = call(&router, form("/any", None, format!("access_token={token}"))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    // Revoked: refused from then on.
    f.server
        .revoke(
            grantor::TokenRequest::form(format!("token={token}"))
                .with_authorization(basic(SERVICE.0, SERVICE.1)),
        )
        .await;
    let reply = call(&router, get_with("/read", Some(&bearer))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["error"], "invalid_token");
}

#[tokio::test]
async fn require_scope_reads_a_query_token_when_the_server_accepts_them() {
    let f = fixture_with(|b| b.allow_query_access_tokens(true));
    let router = guarded(f.server.clone());
    let token = service_token(&router).await;
    let reply = call(
        &router,
        get_with(&format!("/read?access_token={token}"), None),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "service read query");
    // In the query and the header at once: more than one method (§3.1 invalid_request).
    let reply = call(
        &router,
        get_with(
            &format!("/read?access_token={token}"),
            Some(&format!("Bearer {token}")),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "invalid_request");
}

/// A host's state of its own, which hands `RequireScope` its validator.
#[derive(Clone)]
struct HostState {
    validator: grantor::BearerValidator,
    greeting: &'static str,
}

impl axum::extract::FromRef<HostState> for grantor::BearerValidator {
    fn from_ref(state: &HostState) -> Self {
        state.validator.clone()
    }
}

async fn greet(
    axum::extract::State(state): axum::extract::State<HostState>,
    token: RequireScope<Read>,
) -> String {
    format!("{} {}", state.greeting, token.client_id.as_str())
}

#[tokio::test]
async fn the_router_merges_into_a_host_router_with_its_own_state() {
    let f = fixture();
    let router: Router = grantor::axum::router(f.server.clone())
        .route("/greet", get(greet))
        .with_state(HostState {
            validator: f.server.bearer_validator(),
            greeting: "hello",
        });
    let token = service_token(&router).await;
    let reply = call(
        &router,
        get_with("/greet", Some(&format!("Bearer {token}"))),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "hello service");
}

async fn caller(Caller(address): Caller) -> String {
    address.to_string()
}

#[tokio::test]
async fn the_caller_is_the_connection_address_and_never_a_shared_one() {
    let router: Router = Router::new().route("/", get(caller));
    let mut request = get_with("/", None);
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 7], 40_000))));
    assert_eq!(call(&router, request).await.text(), "192.0.2.7");
    // A Caller the host's middleware inserted (the address a proxy reports) comes first.
    let mut request = get_with("/", None);
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 40_000))));
    request
        .extensions_mut()
        .insert(Caller(std::net::IpAddr::from([198, 51, 100, 4])));
    assert_eq!(call(&router, request).await.text(), "198.51.100.4");
    // Served without connection info: refused, rather than every caller counted as one
    // address (one person's wrong guesses would lock everyone out).
    let reply = call(&router, get_with("/", None)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
}

/// The router's token endpoint reads the caller from `ConnectInfo`: wrong client secrets are
/// counted per client and caller, so one caller's guesses do not hold back another.
#[tokio::test]
async fn token_requests_carry_the_connection_address() {
    let rule = grantor::AttemptRule {
        max_failures: 2,
        window: std::time::Duration::from_secs(600),
    };
    let f = fixture_with(|b| {
        b.client_secret_limits(grantor::ClientSecretLimits::new(Some(rule), None))
    });
    let router: Router = grantor::axum::router(f.server.clone());
    let at = |address: [u8; 4], secret: &str| {
        let mut request = form(
            "/oauth/token",
            Some(&basic(SERVICE.0, secret)),
            "grant_type=client_credentials",
        );
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((address, 40_000))));
        request
    };
    for _ in 0..2 {
        let reply = call(&router, at([203, 0, 113, 9], "guess")).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.header("Retry-After"), None);
    }
    let reply = call(&router, at([203, 0, 113, 9], SERVICE.1)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    assert!(reply.header("Retry-After").is_some());
    let reply = call(&router, at([198, 51, 100, 7], SERVICE.1)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    // Behind a proxy, all of them connect from the proxy: the Caller a middleware inserted
    // from the proxy's header is the one counted.
    let mut proxied = at([203, 0, 113, 9], SERVICE.1);
    proxied
        .extensions_mut()
        .insert(Caller(std::net::IpAddr::from([198, 51, 100, 8])));
    let reply = call(&router, proxied).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    // Without connection info there is no caller, and with no rule for that case nothing
    // is counted.
    for _ in 0..3 {
        call(
            &router,
            form("/oauth/token", Some(&basic(SERVICE.0, "guess")), "x=1"),
        )
        .await;
    }
    let reply = call(&router, service_cc("/oauth/token")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

async fn authorize(
    axum::extract::State(server): axum::extract::State<AuthorizationServer>,
    request: AuthorizationRequest,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    match server.authorize(request).await {
        AuthorizeOutcome::Pending { request, .. } => {
            format!("pending {} {}", request.client_id.as_str(), request.scope).into_response()
        }
        AuthorizeOutcome::Redirect(redirect) => {
            axum::response::IntoResponse::into_response(redirect)
        }
        AuthorizeOutcome::Invalid(error) => {
            (StatusCode::BAD_REQUEST, error.description().to_owned()).into_response()
        }
        _ => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

#[tokio::test]
async fn an_authorization_request_is_read_from_a_query_or_a_form() {
    let f = fixture();
    let router: Router = Router::new()
        .route(
            "/oauth/authorize",
            get(authorize).post(authorize).put(authorize),
        )
        .with_state(f.server.clone());
    let params = "response_type=code&client_id=webapp&scope=read\
                  &redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Ftenant%3D7&state=s1";

    let reply = call(
        &router,
        get_with(&format!("/oauth/authorize?{params}"), None),
    )
    .await;
    assert_eq!(reply.text(), "pending webapp read");
    let reply = call(&router, form("/oauth/authorize", None, params)).await;
    assert_eq!(reply.text(), "pending webapp read");
    // HEAD, which axum routes to the GET handler, reads the query as GET does.
    let request = Request::head(format!("/oauth/authorize?{params}"))
        .body(Body::empty())
        .expect("a request");
    assert_eq!(call(&router, request).await.status, StatusCode::OK);

    // A redirect: 302 with Location and no-store, as `Redirect::into_response` writes it.
    let reply = call(
        &router,
        get_with(
            "/oauth/authorize?response_type=nope&client_id=webapp&state=s2\
             &redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Ftenant%3D7",
            None,
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert!(reply
        .header("Location")
        .is_some_and(|l| l.starts_with("https://app.example.com/cb?tenant=7&error=")));
    assert_eq!(reply.header("Cache-Control"), Some("no-store"));

    // Another method, or a body over the bound: refused, never redirected.
    let request = Request::builder()
        .method(Method::PUT)
        .uri("/oauth/authorize")
        .body(Body::from(params))
        .expect("a request");
    let reply = call(&router, request).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.header("Location"), None);
    let big = format!("{params}&x={}", "a".repeat(MAX_BODY_BYTES));
    let reply = call(&router, form("/oauth/authorize", None, big)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.header("Location"), None);
}

#[tokio::test]
async fn a_token_request_is_extracted_whole_on_any_route() {
    async fn echo(
        axum::extract::State(server): axum::extract::State<AuthorizationServer>,
        request: grantor::TokenRequest,
    ) -> grantor::Response {
        server.token(request).await
    }
    let f = fixture();
    let router: Router = Router::new()
        .route("/elsewhere", post(echo))
        .with_state(f.server.clone());
    // JSON bodies are off: the Content-Type reached the engine.
    let request = Request::post("/elsewhere")
        .header("Content-Type", "application/json")
        .header("Authorization", basic(SERVICE.0, SERVICE.1))
        .body(Body::from(r#"{"grant_type":"client_credentials"}"#))
        .expect("a request");
    let reply = call(&router, request).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.json()["error_description"]
        .as_str()
        .is_some_and(|d| d.contains("x-www-form-urlencoded")));
    let reply = call(&router, service_cc("/elsewhere")).await;
    assert_eq!(reply.status, StatusCode::OK);
}

/// The README's quick start is `examples/minimal.rs`, word for word (CI builds the example, so
/// the README's code compiles).
#[test]
fn the_readme_quick_start_is_the_minimal_example() {
    let readme = include_str!("../README.md");
    let minimal = include_str!("../examples/minimal.rs");
    assert!(
        minimal.lines().count() <= 30,
        "the minimal example grew past 30 lines"
    );
    let block = format!("```rust\n{minimal}```\n");
    let quick_start = readme
        .split("## Quick start")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Quick start section");
    assert!(
        quick_start.contains(&block),
        "README's quick start differs from examples/minimal.rs"
    );
}

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    /// A path or issuer path drawn from the characters that trip routers.
    fn path_like() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("/".to_owned()),
                Just(":".to_owned()),
                Just("*".to_owned()),
                Just("{".to_owned()),
                Just("}".to_owned()),
                Just("%2F".to_owned()),
                Just(".well-known".to_owned()),
                Just("oauth-authorization-server".to_owned()),
                Just("token".to_owned()),
                Just("a".to_owned()),
                Just("@".to_owned()),
                Just("é".to_owned()),
                Just(" ".to_owned()),
            ],
            0..8,
        )
        .prop_map(|parts| format!("/{}", parts.concat()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever paths and issuer the builder accepts, the router is built, and merged into
        /// another, without a panic.
        #[test]
        fn a_server_that_builds_gets_a_router(
            token in path_like(),
            revocation in path_like(),
            device in path_like(),
            issuer_path in path_like(),
        ) {
            let built = AuthorizationServer::builder(
                Arc::new(clients()),
                Arc::new(MemoryTokenStore::new()),
            )
            .enable_client_credentials_grant()
            .enable_device_code_grant(Arc::new(grantor::MemoryDeviceCodeStore::new()))
            .issuer(format!("https://as.example.com{issuer_path}"))
            .endpoint_paths(EndpointPaths {
                token,
                revocation,
                device_authorization: device,
                ..EndpointPaths::default()
            })
            .build();
            if let Ok(server) = built {
                let router: Router = grantor::axum::router(server.clone());
                let _merged: Router = Router::new()
                    .route("/elsewhere", get(|| async { "" }))
                    .merge(grantor::axum::router(server));
                drop(router);
            }
        }
    }
}

#[test]
fn paths_that_routers_read_as_captures_are_refused() {
    let build = |issuer: &str, token: &str| {
        AuthorizationServer::builder(Arc::new(clients()), Arc::new(MemoryTokenStore::new()))
            .enable_client_credentials_grant()
            .issuer(issuer)
            .endpoint_paths(EndpointPaths {
                token: token.into(),
                ..EndpointPaths::default()
            })
            .build()
            .map(|_| ())
    };
    for token in [
        "/oauth/:token",
        "/*",
        "/.well-known/oauth-authorization-server",
        "/tök",
    ] {
        assert_eq!(
            build(ISSUER, token),
            Err(BuildError::InvalidEndpointPath(token.to_owned())),
            "{token:?}"
        );
    }
    for issuer in [
        "https://as.example.com/:tenant",
        "https://as.example.com/*x",
    ] {
        assert_eq!(
            build(issuer, "/oauth/token"),
            Err(BuildError::InvalidIssuer(issuer.to_owned())),
            "{issuer:?}"
        );
    }
    // What routers take literally is fine: a colon or a star inside a segment, an @.
    assert_eq!(
        build("https://as.example.com/t:1", "/oauth/to:ken*@"),
        Ok(())
    );
}

#[tokio::test]
async fn a_wrong_method_is_told_which_one_to_use() {
    let router: Router = grantor::axum::router(fixture().server);
    let reply = call(&router, get_with("/oauth/token", None)).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("Allow"), Some("POST"));
}

#[tokio::test]
async fn the_router_merges_into_a_host_router() {
    let f = fixture();
    let router: Router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(grantor::axum::router(f.server.clone()));
    assert_eq!(call(&router, get_with("/health", None)).await.text(), "ok");
    assert!(!service_token(&router).await.is_empty());
}

/// `RequireScope` answers what `validate_http` answers for the same request's parts: a header
/// once, twice, malformed, with another scheme, absent, and an unknown token.
#[tokio::test]
async fn require_scope_answers_as_validate_http() {
    let f = fixture();
    let router = guarded(f.server.clone());
    let token = service_token(&router).await;
    let bearer = format!("Bearer {token}");
    let cases: [&[&str]; 6] = [
        &[&bearer],
        &[&bearer, &bearer],
        &["Bearer "],
        &["Basic c2VydmljZTp4"],
        &[],
        &["Bearer unknown"],
    ];
    for (i, headers) in cases.iter().enumerate() {
        let request = || {
            let mut request = Request::get("/read");
            for header in headers.iter() {
                request = request.header("Authorization", *header);
            }
            request
        };
        let direct = f
            .server
            .bearer_validator()
            .validate_http(
                &request().body(Vec::<u8>::new()).expect("a request"),
                &"read".parse().expect("a scope"),
            )
            .await;
        let reply = call(&router, request().body(Body::empty()).expect("a request")).await;
        match direct {
            Ok(_) => assert_eq!(reply.status, StatusCode::OK, "case {i}"),
            Err(refusal) => {
                assert_eq!(reply.status.as_u16(), refusal.status(), "case {i}");
                assert_eq!(
                    reply.header("WWW-Authenticate").map(str::to_owned),
                    refusal.challenge(),
                    "case {i}"
                );
            }
        }
    }
}

async fn reported(axum::Extension(grant): axum::Extension<grantor::AccessGrant>) -> String {
    format!("report for {}", grant.client_id.as_str())
}

/// `RequireScopeLayer` guards a group of routes as `RequireScope` guards one, hands the grant to
/// the handler, and marks a response to a query token `Cache-Control: private` (RFC 6750 §2.3).
#[tokio::test]
async fn a_scope_layer_guards_a_group_of_routes() {
    use grantor::axum::RequireScopeLayer;

    let f = fixture_with(|b| b.allow_query_access_tokens(true));
    let reports = Router::new()
        .route("/reports/daily", get(reported))
        .route("/reports/weekly", get(reported))
        .route_layer(RequireScopeLayer::new(
            f.server.bearer_validator(),
            "read".parse().expect("a scope"),
        ));
    let admin = Router::new()
        .route("/admin", get(reported))
        .route_layer(RequireScopeLayer::new(
            f.server.bearer_validator(),
            "admin".parse().expect("a scope"),
        ));
    let router: Router = grantor::axum::router(f.server.clone())
        .merge(reports)
        .merge(admin);
    let token = service_token(&router).await;
    let bearer = format!("Bearer {token}");

    for path in ["/reports/daily", "/reports/weekly"] {
        let reply = call(&router, get_with(path, Some(&bearer))).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.text(), "report for service");
        assert_eq!(reply.header("Cache-Control"), None);
        let reply = call(&router, get_with(path, None)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(reply.header("WWW-Authenticate"), Some("Bearer"));
    }
    let reply = call(&router, get_with("/admin", Some(&bearer))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply
        .header("WWW-Authenticate")
        .is_some_and(|c| c.contains("insufficient_scope") && c.contains("scope=\"admin\"")));
    let reply = call(&router, get_with("/reports/daily", Some("Bearer nope"))).await;
    assert_eq!(reply.json()["error"], "invalid_token");

    // A query token (accepted by this server): the answer must not be cached by others.
    let reply = call(
        &router,
        get_with(&format!("/reports/daily?access_token={token}"), None),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("Cache-Control"), Some("private"));
    // A path the layer does not cover is not found, not refused.
    let reply = call(&router, get_with("/reports/monthly", None)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

/// One HTTP/1.1 request over a fresh connection, read to its end: the status and the body.
async fn over_http(addr: SocketAddr, request: String) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Stops the child process when dropped, whatever the test's end.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `examples/minimal.rs` (the README's quick start), run as `cargo run --example minimal`: a
/// client credentials token, then `/hello` with it, and without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::disallowed_methods)] // waiting for a real process needs the real clock
async fn the_minimal_example_serves_a_token_and_a_guarded_route() {
    // `cargo test` builds the examples beside the test binaries: target/<profile>/examples.
    let exe = std::env::current_exe().expect("this test's path");
    let minimal = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| {
            dir.join("examples")
                .join(format!("minimal{}", std::env::consts::EXE_SUFFIX))
        })
        .expect("the target folder");
    assert!(
        minimal.exists(),
        "{minimal:?} is missing: `cargo test` builds it (or `cargo build --example minimal`)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let _server = Running(
        std::process::Command::new(&minimal)
            .env("ADDR", addr.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the example"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the example never listened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let body = "grant_type=client_credentials";
    let (status, answer) = over_http(
        addr,
        format!(
            "POST /oauth/token HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Authorization: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{body}",
            basic("service", "service-secret"),
            body.len()
        ),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let json: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
    let token = json["access_token"].as_str().expect("a token");
    // No scope asked for: the client's default, named in the answer (RFC 6749 §5.1).
    assert_eq!(json["scope"], "read");
    let (status, hello) = over_http(
        addr,
        format!(
            "GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Authorization: Bearer {token}\r\n\r\n"
        ),
    )
    .await;
    assert_eq!((status, hello.as_str()), (200, "hello, service\n"));
    let (status, _) = over_http(
        addr,
        "GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_owned(),
    )
    .await;
    assert_eq!(status, 401);
}

/// With signing keys, the router serves the JWK Set where the metadata's `jwks_uri` says, and a
/// token signed with the active key checks against it; without keys there is no such route.
#[tokio::test]
async fn the_jwk_set_is_served_where_the_metadata_says() {
    use grantor::{JwsAlgorithm, LocalKeys, TokenSigner};

    let keys = Arc::new(LocalKeys::new());
    keys.generate("k1", JwsAlgorithm::Es256).expect("a key");
    let signer: Arc<dyn TokenSigner> = keys.clone();
    let f = fixture_with(move |b| b.token_signer(signer));
    let router: Router = grantor::axum::router(f.server.clone());
    let metadata = call(
        &router,
        get_with("/.well-known/oauth-authorization-server", None),
    )
    .await
    .json();
    assert_eq!(metadata["jwks_uri"], format!("{ISSUER}/oauth/jwks"));
    let reply = call(&router, get_with("/oauth/jwks", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("Content-Type"), Some("application/json"));
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(&reply.body).expect("a JWK Set");
    let jwt = grantor::sign_compact(keys.as_ref(), "at+jwt", &serde_json::json!({"sub": "u"}))
        .await
        .expect("signed");
    let kid = jsonwebtoken::decode_header(&jwt)
        .expect("header")
        .kid
        .expect("kid");
    let key =
        jsonwebtoken::DecodingKey::from_jwk(set.find(&kid).expect("published")).expect("a key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    assert!(jsonwebtoken::decode::<serde_json::Value>(&jwt, &key, &validation).is_ok());

    // No signer: no JWK Set, and no jwks_uri.
    let plain: Router = grantor::axum::router(fixture().server);
    assert_eq!(
        call(&plain, get_with("/oauth/jwks", None)).await.status,
        StatusCode::NOT_FOUND
    );
    let metadata = call(
        &plain,
        get_with("/.well-known/oauth-authorization-server", None),
    )
    .await
    .json();
    assert!(metadata.get("jwks_uri").is_none());
}

/// `RequireScope` takes a resource server's own JWT validator as its state: the JWT is checked
/// there, with no call to the authorization server.
#[tokio::test]
async fn require_scope_checks_jwts_with_a_local_validator() {
    use grantor::{AccessTokenFormat, BearerValidator, JwsAlgorithm, LocalKeys, TokenSigner};

    let keys = Arc::new(LocalKeys::new());
    keys.generate("k1", JwsAlgorithm::Es256).expect("a key");
    let signer: Arc<dyn TokenSigner> = keys.clone();
    let f = fixture_with(move |b| {
        b.token_signer(signer)
            .jwt_audience("https://api.example.com")
            .access_token_format(AccessTokenFormat::Jwt)
    });
    let token = service_token(&grantor::axum::router(f.server.clone())).await;
    // The resource server: only the JWK Set, on the fixture's clock.
    let api: Router = Router::new()
        .route("/read", get(whoami::<Read>))
        .with_state(
            BearerValidator::jwt(keys.jwks(), ISSUER, "https://api.example.com")
                .with_clock(f.clock.clone()),
        );
    let reply = call(&api, get_with("/read", Some(&format!("Bearer {token}")))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "service read header");
    let reply = call(&api, get_with("/read", Some("Bearer a.b.c"))).await;
    assert_eq!(reply.json()["error"], "invalid_token");
}

/// RFC 9728 in an axum resource server: the metadata where §3.1 puts it, and a 401 from a
/// guarded route naming it.
#[tokio::test]
async fn a_resource_server_publishes_its_metadata() {
    let f = fixture();
    let metadata = grantor::ProtectedResourceMetadata::new("http://localhost/api")
        .with_authorization_servers([ISSUER]);
    let url = metadata.well_known_url().expect("a URL");
    let validator = f.server.bearer_validator().with_resource_metadata(&url);
    let api: Router = Router::new()
        .route("/api/read", get(whoami::<Read>))
        .with_state(validator)
        .merge(grantor::axum::resource_metadata_router(metadata));
    let reply = call(
        &api,
        get_with("/.well-known/oauth-protected-resource/api", None),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["resource"], "http://localhost/api");
    assert_eq!(reply.json()["authorization_servers"][0], ISSUER);
    let reply = call(&api, get_with("/api/read", None)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("WWW-Authenticate"),
        Some(format!("Bearer resource_metadata=\"{url}\"").as_str())
    );
}
