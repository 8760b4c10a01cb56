//! Heap allocations per request, counted by a counting global allocator: the client credentials
//! grant, the code flow with PKCE (authorize, approve, exchange), the refresh grant with
//! rotation, and bearer validation, on the in-memory stores. Each ceiling is what the engine
//! does today; a change that allocates more fails here. (No other test shares this binary, so
//! nothing else allocates while a request is counted.)

use std::alloc::System;
use std::sync::Arc;

use grantor::{
    AuthorizationRequest, AuthorizationServer, AuthorizeOutcome, Client, ClientSecret, Decision,
    GrantType, MemoryClientStore, MemoryCodeStore, MemoryTokenStore, ResourceRequest, Scope,
    SecretHash, TokenRequest, UserId,
};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use tokio::runtime::Runtime;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Requests of each kind; the fewest allocations one of them made is its count. The stores keep
/// some things per shard (a shard's first token of a client and scope makes the shard's own
/// copy of them), so the count settles once the first requests have reached every shard.
const RUNS: usize = 400;

const CALLBACK: &str = "http://localhost:3000/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const SERVICE_BASIC: &str = "Basic c2VydmljZTpzZXJ2aWNlLXNlY3JldA==";
const WEB_BASIC: &str = "Basic d2ViYXBwOndlYi1zZWNyZXQ=";

fn server() -> AuthorizationServer {
    let read: Scope = "read".parse().expect("scope");
    let clients = MemoryClientStore::new();
    clients.insert(
        Client::confidential(
            "service",
            SecretHash::new(&ClientSecret::new("service-secret")),
        )
        .with_grant_types([GrantType::ClientCredentials])
        .with_allowed_scope(read.clone())
        .with_default_scope(read.clone()),
    );
    clients.insert(
        Client::confidential("webapp", SecretHash::new(&ClientSecret::new("web-secret")))
            .with_grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
            .with_redirect_uris([CALLBACK])
            .with_allowed_scope("read write".parse().expect("scope"))
            .with_default_scope(read),
    );
    AuthorizationServer::builder(Arc::new(clients), Arc::new(MemoryTokenStore::new()))
        .issuer("https://auth.example.com")
        .enable_client_credentials_grant()
        .enable_authorization_code_grant(Arc::new(MemoryCodeStore::new()))
        .enable_refresh_token_grant()
        .build()
        .expect("server")
}

fn field(response: &grantor::Response, name: &str) -> String {
    let json: serde_json::Value = serde_json::from_slice(response.body()).expect("json");
    json[name].as_str().expect(name).to_owned()
}

/// Runs `future` to completion and answers the allocations it made. The count starts inside
/// the runtime, so that what the runtime does with the future itself (a debug build boxes a large
/// one) is not counted as the engine's.
fn counted<F: std::future::Future>(rt: &Runtime, future: F) -> (usize, F::Output) {
    rt.block_on(async {
        let region = Region::new(GLOBAL);
        let out = future.await;
        (region.change().allocations, out)
    })
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let server = server();

    // Client credentials: each request is built before counting, as an HTTP adapter hands it in.
    let mut cc_allocs = usize::MAX;
    let mut access = String::new();
    for _ in 0..RUNS {
        let request =
            TokenRequest::form("grant_type=client_credentials").with_authorization(SERVICE_BASIC);
        let (allocs, r) = counted(&rt, server.token(request));
        cc_allocs = cc_allocs.min(allocs);
        assert_eq!(r.status(), 200);
        access = field(&r, "access_token");
    }

    // Bearer validation of a live token.
    let validator = server.bearer_validator();
    let request = ResourceRequest::new().with_authorization(format!("Bearer {access}"));
    let read: Scope = "read".parse().expect("scope");
    let mut validation_allocs = usize::MAX;
    for _ in 0..50 {
        let (allocs, grant) = counted(&rt, validator.validate(&request, &read));
        validation_allocs = validation_allocs.min(allocs);
        assert!(grant.is_ok(), "the token validates");
    }

    // The code flow with PKCE: authorize, approve, exchange.
    let query = format!(
        "response_type=code&client_id=webapp&redirect_uri={}&state=xyz&code_challenge={CHALLENGE}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect::<String>()
    );
    let mut code_allocs = usize::MAX;
    let mut refresh = String::new();
    for _ in 0..RUNS {
        let authorize = AuthorizationRequest::from_query(&query);
        let user = UserId::new("user-tom");
        let (during, redirect) = counted(&rt, async {
            let AuthorizeOutcome::Pending { id, .. } = server.authorize(authorize).await else {
                panic!("a pending request");
            };
            server.approve(&id, user, None).await.expect("approved")
        });
        let location = redirect.location().to_owned();
        let code = url::Url::parse(&location)
            .expect("url")
            .query_pairs()
            .find(|(k, _)| k == "code")
            .expect("code")
            .1
            .into_owned();
        let exchange = TokenRequest::form(format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={VERIFIER}",
            url::form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect::<String>()
        ))
        .with_authorization(WEB_BASIC);
        let (exchanged, r) = counted(&rt, server.token(exchange));
        assert_eq!(r.status(), 200, "{}", String::from_utf8_lossy(r.body()));
        refresh = field(&r, "refresh_token");
        code_allocs = code_allocs.min(during + exchanged);
    }

    // The authorization approved at once (`validate_authorization`, then `decide`): the
    // request never waits in the store.
    let mut one_call_allocs = usize::MAX;
    for _ in 0..RUNS {
        let authorize = AuthorizationRequest::from_query(&query);
        let user = UserId::new("user-tom");
        let (allocs, outcome) = counted(&rt, async {
            let valid = server
                .validate_authorization(authorize)
                .await
                .expect("valid");
            server.decide(valid, Decision::approve_all(user)).await
        });
        one_call_allocs = one_call_allocs.min(allocs);
        let AuthorizeOutcome::Redirect(redirect) = outcome else {
            panic!("approved");
        };
        assert!(redirect.location().contains("code="));
    }

    // The refresh grant with rotation.
    let mut refresh_allocs = usize::MAX;
    for _ in 0..RUNS {
        let request =
            TokenRequest::form(format!("grant_type=refresh_token&refresh_token={refresh}"))
                .with_authorization(WEB_BASIC);
        let (allocs, r) = counted(&rt, server.token(request));
        refresh_allocs = refresh_allocs.min(allocs);
        assert_eq!(r.status(), 200);
        refresh = field(&r, "refresh_token");
    }

    println!(
        "allocations per request: client credentials {cc_allocs}, code flow {code_allocs}, \
         authorization approved at once {one_call_allocs}, refresh {refresh_allocs}, validation \
         {validation_allocs}"
    );
    // Ceilings: what the engine does today (validation allocates nothing at all). A request
    // that presents a client secret spends four of them on counting it (RFC 6749 §2.3.1's
    // brute-force limit): the limiter's two calls (each a boxed future), the count's copy of the
    // client id, and the list of counts the check holds.
    assert!(
        cc_allocs <= 13,
        "client credentials: {cc_allocs} allocations"
    );
    assert!(code_allocs <= 38, "code flow: {code_allocs} allocations");
    assert!(
        one_call_allocs <= 12,
        "authorization approved at once: {one_call_allocs} allocations"
    );
    assert!(
        refresh_allocs <= 20,
        "refresh: {refresh_allocs} allocations"
    );
    assert_eq!(validation_allocs, 0, "validation allocates");
}
