//! The engine's own cost per request: the password grant (with a verifier that does no hashing),
//! the refresh grant (rotation on), and bearer validation, on the in-memory stores.
//!
//! `cargo bench --bench grants`

use std::sync::{Arc, Mutex};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use grantor::{
    async_trait, AuthorizationServer, Client, ClientId, ClientSecret, GrantType, MemoryClientStore,
    MemoryTokenStore, Password, ResourceRequest, Scope, SecretHash, StoreError, TokenRequest,
    UserId, UserVerdict, UserVerifier, Username,
};

/// Accepts tom/123456 with a plain comparison, so the numbers show grantor and not a KDF.
struct PlainVerifier;

#[async_trait]
impl UserVerifier for PlainVerifier {
    async fn verify_password(
        &self,
        username: &Username,
        password: &Password,
        _client: &ClientId,
    ) -> Result<UserVerdict, StoreError> {
        Ok(
            if username.as_str() == "tom" && password.secret() == "123456" {
                UserVerdict::Authenticated(UserId::new("user-tom"))
            } else {
                UserVerdict::Refused
            },
        )
    }
}

fn server() -> AuthorizationServer {
    let clients = MemoryClientStore::new();
    clients.insert(
        Client::confidential("clientapp", SecretHash::new(&ClientSecret::new("123456")))
            .with_grant_types([GrantType::Password, GrantType::RefreshToken])
            .with_allowed_scope("read write".parse().unwrap_or_default())
            .with_default_scope("read".parse().unwrap_or_default()),
    );
    AuthorizationServer::builder(Arc::new(clients), Arc::new(MemoryTokenStore::new()))
        .enable_password_grant(Arc::new(PlainVerifier))
        .enable_refresh_token_grant()
        .build()
        .expect("server")
}

const BASIC: &str = "Basic Y2xpZW50YXBwOjEyMzQ1Ng==";

fn field(response: &grantor::Response, name: &str) -> String {
    let json: serde_json::Value = serde_json::from_slice(response.body()).expect("json");
    json[name].as_str().expect("field").to_owned()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let server = server();
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
}

criterion_group!(grants, benches);
criterion_main!(grants);
