//! What the benchmarks share: a verifier that does no hashing, and the server they drive.
#![allow(dead_code)] // each benchmark uses a part

use std::sync::Arc;

use grantor::{
    async_trait, AttemptLimiter, AuthorizationServer, Client, ClientId, ClientSecret, GrantType,
    MemoryClientStore, Password, SecretHash, StoreError, TokenStore, UserId, UserVerdict,
    UserVerifier, Username,
};

/// Accepts any username with password `123456` by plain comparison, so the figures show grantor
/// and its store, not a password KDF.
pub struct PlainVerifier;

#[async_trait]
impl UserVerifier for PlainVerifier {
    async fn verify_password(
        &self,
        username: &Username,
        password: &Password,
        _client: &ClientId,
    ) -> Result<UserVerdict, StoreError> {
        Ok(if password.secret() == "123456" {
            UserVerdict::Authenticated(UserId::new(username.as_str()))
        } else {
            UserVerdict::Refused
        })
    }
}

/// `Authorization` for the password client, `clientapp:123456`.
pub const BASIC: &str = "Basic Y2xpZW50YXBwOjEyMzQ1Ng==";

/// `Authorization` for the service client, `service:service-secret`.
pub const SERVICE_BASIC: &str = "Basic c2VydmljZTpzZXJ2aWNlLXNlY3JldA==";

/// A server with the password, refresh, client credentials and device grants over the given
/// stores (device requests in memory).
pub fn server(
    tokens: Arc<dyn TokenStore>,
    limiter: Arc<dyn AttemptLimiter>,
) -> AuthorizationServer {
    let clients = MemoryClientStore::new();
    clients.insert(
        Client::confidential("clientapp", SecretHash::new(&ClientSecret::new("123456")))
            .with_grant_types([GrantType::Password, GrantType::RefreshToken])
            .with_allowed_scope("read write".parse().unwrap_or_default())
            .with_default_scope("read".parse().unwrap_or_default()),
    );
    clients.insert(
        Client::confidential(
            "service",
            SecretHash::new(&ClientSecret::new("service-secret")),
        )
        .with_grant_types([GrantType::ClientCredentials])
        .with_allowed_scope("read".parse().unwrap_or_default())
        .with_default_scope("read".parse().unwrap_or_default()),
    );
    clients.insert(
        Client::public("cli")
            .with_grant_types([GrantType::DeviceCode])
            .with_allowed_scope("read".parse().unwrap_or_default())
            .with_default_scope("read".parse().unwrap_or_default()),
    );
    AuthorizationServer::builder(Arc::new(clients), tokens)
        .issuer("https://auth.example.com")
        .enable_device_code_grant(Arc::new(grantor::MemoryDeviceCodeStore::new()))
        .attempt_limiter(limiter)
        .enable_client_credentials_grant()
        .enable_password_grant(Arc::new(PlainVerifier))
        .enable_refresh_token_grant()
        .build()
        .expect("server")
}

/// A field of a JSON token response.
pub fn field(response: &grantor::Response, name: &str) -> String {
    let json: serde_json::Value = serde_json::from_slice(response.body()).expect("json");
    json[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {json}"))
        .to_owned()
}
