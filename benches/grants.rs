//! The engine's own cost per request: the password grant (with a verifier that does no hashing),
//! the client credentials grant, a whole code flow with PKCE (authorize, approve, exchange; and
//! again decided at once, `validate_authorization` and `decide`), the refresh
//! grant (rotation on), a whole device flow (codes, an approval, the poll that gets tokens), and
//! bearer validation, on the in-memory stores.
//!
//! A second group, `store_call`, prices the store traits' `dyn` + `async_trait` shape: one token
//! lookup through `TokenStore::find_token` (a boxed future) against the same lookup through
//! `find_token_in_memory` (a plain call). A request makes a handful of store calls (a code flow
//! ten), so the difference times that is what static dispatch could save.
//!
//! A third group, `jwt`, issues client credentials tokens as JWTs (RFC 9068) signed with ES256,
//! EdDSA and RS256 keys, and checks one as a resource server does with no call back
//! (`BearerValidator::jwt`), beside the opaque figures above.
//!
//! `cargo bench --bench grants`

mod support;

use std::sync::{Arc, Mutex};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use grantor::{
    AccessToken, MemoryAttemptLimiter, MemoryTokenStore, ResourceRequest, Scope, TokenHash,
    TokenLookup, TokenRequest, TokenStore,
};
use support::{field, BASIC, SERVICE_BASIC};

fn server(tokens: Arc<MemoryTokenStore>) -> grantor::AuthorizationServer {
    support::server(tokens, Arc::new(MemoryAttemptLimiter::new()))
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let tokens = Arc::new(MemoryTokenStore::new());
    let server = server(Arc::clone(&tokens));
    let login = || {
        TokenRequest::form("grant_type=password&username=tom&password=123456")
            .with_authorization(BASIC)
    };

    let mut group = c.benchmark_group("grants");
    group.throughput(Throughput::Elements(1));

    group.bench_function("password_grant", |b| {
        b.to_async(&rt).iter(|| async {
            let r = server.token(login()).await;
            assert_eq!(r.status(), 200);
        })
    });

    group.bench_function("client_credentials_grant", |b| {
        b.to_async(&rt).iter(|| async {
            let r = server
                .token(
                    TokenRequest::form("grant_type=client_credentials")
                        .with_authorization(SERVICE_BASIC),
                )
                .await;
            assert_eq!(r.status(), 200);
        })
    });

    group.bench_function("code_flow_pkce", |b| {
        b.to_async(&rt).iter(|| async {
            let r = support::code_flow(&server, true).await;
            assert_eq!(r.status(), 200);
        })
    });

    group.bench_function("code_flow_pkce_decided_at_once", |b| {
        b.to_async(&rt).iter(|| async {
            let r = support::code_flow(&server, false).await;
            assert_eq!(r.status(), 200);
        })
    });

    let first = rt.block_on(server.token(login()));
    let current = Mutex::new(field(&first, "refresh_token"));
    group.bench_function("refresh_grant_rotating", |b| {
        b.to_async(&rt).iter(|| async {
            let token = current.lock().expect("lock").clone();
            let r = server
                .token(
                    TokenRequest::form(format!("grant_type=refresh_token&refresh_token={token}"))
                        .with_authorization(BASIC),
                )
                .await;
            assert_eq!(r.status(), 200);
            *current.lock().expect("lock") = field(&r, "refresh_token");
        })
    });

    group.bench_function("device_flow_round_trip", |b| {
        b.to_async(&rt).iter(|| async {
            let codes = server
                .device_authorization(TokenRequest::form("client_id=cli"))
                .await;
            let user_code = grantor::UserCode::new(field(&codes, "user_code"));
            let caller = std::net::IpAddr::from([192, 0, 2, 1]);
            let shown = server
                .device_request(&user_code, caller)
                .await
                .expect("pending");
            server
                .approve_device(
                    &user_code,
                    &shown.confirmation,
                    caller,
                    grantor::UserId::new("tom"),
                    None,
                )
                .await
                .expect("approved");
            let r = server
                .token(TokenRequest::form(format!(
                    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=cli&device_code={}",
                    field(&codes, "device_code")
                )))
                .await;
            assert_eq!(r.status(), 200);
        })
    });

    let access = field(&rt.block_on(server.token(login())), "access_token");
    let validator = server.bearer_validator();
    let request = ResourceRequest::new().with_authorization(format!("Bearer {access}"));
    let read: Scope = "read".parse().unwrap_or_default();
    group.bench_function("bearer_validation", |b| {
        b.to_async(&rt).iter(|| async {
            assert!(validator.validate(&request, &read).await.is_ok());
        })
    });
    group.finish();

    let mut group = c.benchmark_group("store_call");
    let store: Arc<dyn TokenStore> = tokens;
    let hash = TokenHash::of_access_token(&AccessToken::new(access));
    let now = grantor::Clock::now(&grantor::SystemClock);
    group.bench_function("find_token_boxed_future", |b| {
        b.to_async(&rt).iter(|| async {
            let found = store.find_token(&hash, now).await;
            assert!(matches!(found, Ok(TokenLookup::Live(_))));
        })
    });
    group.bench_function("find_token_in_memory_direct", |b| {
        b.iter(|| {
            let found = store.find_token_in_memory(&hash, now);
            assert!(matches!(found, Some(Ok(TokenLookup::Live(_)))));
        })
    });
    group.finish();
}

/// A 2048-bit RSA private key (PKCS#8, DER), the tests' own: `ring` makes no RSA keys.
fn test_rsa_pkcs8() -> Vec<u8> {
    let encoded = include_str!("../tests/keys/rsa2048-test-only.pkcs8.b64");
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded.trim())
        .unwrap_or_default()
}

fn jwt_benches(c: &mut Criterion) {
    use grantor::{AccessTokenFormat, BearerValidator, JwsAlgorithm, LocalKeys, TokenSigner};

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("jwt");
    group.throughput(Throughput::Elements(1));
    let read: Scope = "read".parse().unwrap_or_default();
    for (alg, name) in [
        (JwsAlgorithm::Es256, "es256"),
        (JwsAlgorithm::EdDsa, "eddsa"),
        (JwsAlgorithm::Rs256, "rs256"),
    ] {
        let keys = Arc::new(LocalKeys::new());
        if alg == JwsAlgorithm::Rs256 {
            keys.add_pkcs8("k1", alg, &test_rsa_pkcs8())
                .expect("the RSA key");
        } else {
            keys.generate("k1", alg).expect("a key");
        }
        let signer: Arc<dyn TokenSigner> = keys.clone();
        let server = support::server_with(
            Arc::new(MemoryTokenStore::new()),
            Arc::new(MemoryAttemptLimiter::new()),
            |b| {
                b.token_signer(signer)
                    .jwt_audience("https://api.example.com")
                    .access_token_format(AccessTokenFormat::Jwt)
            },
        );
        let cc = || {
            TokenRequest::form("grant_type=client_credentials").with_authorization(SERVICE_BASIC)
        };
        group.bench_function(format!("client_credentials_jwt_{name}"), |b| {
            b.to_async(&rt).iter(|| async {
                assert_eq!(server.token(cc()).await.status(), 200);
            })
        });
        let jwt = field(&rt.block_on(server.token(cc())), "access_token");
        let local = BearerValidator::jwt(
            keys.jwks(),
            "https://auth.example.com",
            "https://api.example.com",
        );
        let request = ResourceRequest::new().with_authorization(format!("Bearer {jwt}"));
        group.bench_function(format!("validation_jwt_local_{name}"), |b| {
            b.to_async(&rt).iter(|| async {
                assert!(local.validate(&request, &read).await.is_ok());
            })
        });
    }
    group.finish();
}

criterion_group!(grants, benches, jwt_benches);
criterion_main!(grants);
