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

/// `Authorization` for the code-flow client, `webapp:web-secret`.
pub const WEB_BASIC: &str = "Basic d2ViYXBwOndlYi1zZWNyZXQ=";

/// The code-flow client's redirect URI.
pub const CALLBACK: &str = "http://localhost:3000/callback";

/// A PKCE verifier (RFC 7636 Appendix B) and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// The S256 challenge of [`VERIFIER`].
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// `Authorization` for the service client, `service:service-secret`.
pub const SERVICE_BASIC: &str = "Basic c2VydmljZTpzZXJ2aWNlLXNlY3JldA==";

/// A server with the password, refresh, client credentials and device grants over the given
/// stores (device requests in memory).
pub fn server(
    tokens: Arc<dyn TokenStore>,
    limiter: Arc<dyn AttemptLimiter>,
) -> AuthorizationServer {
    server_with(tokens, limiter, |builder| builder)
}

/// [`server`], with more settings.
pub fn server_with(
    tokens: Arc<dyn TokenStore>,
    limiter: Arc<dyn AttemptLimiter>,
    configure: impl FnOnce(grantor::AuthorizationServerBuilder) -> grantor::AuthorizationServerBuilder,
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
        Client::confidential("webapp", SecretHash::new(&ClientSecret::new("web-secret")))
            .with_grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
            .with_redirect_uris([CALLBACK])
            .with_allowed_scope("read write".parse().unwrap_or_default())
            .with_default_scope("read".parse().unwrap_or_default()),
    );
    clients.insert(
        Client::public("cli")
            .with_grant_types([GrantType::DeviceCode])
            .with_allowed_scope("read".parse().unwrap_or_default())
            .with_default_scope("read".parse().unwrap_or_default()),
    );
    let builder = AuthorizationServer::builder(Arc::new(clients), tokens)
        .issuer("https://auth.example.com")
        .enable_authorization_code_grant(Arc::new(grantor::MemoryCodeStore::new()))
        .enable_device_code_grant(Arc::new(grantor::MemoryDeviceCodeStore::new()))
        .attempt_limiter(limiter)
        .enable_client_credentials_grant()
        .enable_password_grant(Arc::new(PlainVerifier))
        .enable_refresh_token_grant();
    configure(builder).build().expect("server")
}

/// One whole code flow with PKCE S256 for `webapp`: authorize, approve (in a second call with
/// `consent_step`, as a host with a consent page does, or in the authorization request itself
/// through `validate_authorization` and `decide`), exchange the code. Answers the token response.
pub async fn code_flow(server: &AuthorizationServer, consent_step: bool) -> grantor::Response {
    let query = format!(
        "response_type=code&client_id=webapp&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback&state=xyz&code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let request = grantor::AuthorizationRequest::from_query(query);
    let user = UserId::new("user-tom");
    let redirect = if consent_step {
        let grantor::AuthorizeOutcome::Pending { id, .. } = server.authorize(request).await else {
            panic!("a pending request");
        };
        server.approve(&id, user, None).await.expect("approved")
    } else {
        let valid = server.validate_authorization(request).await.expect("valid");
        match server
            .decide(valid, grantor::Decision::approve_all(user))
            .await
        {
            grantor::AuthorizeOutcome::Redirect(redirect) => redirect,
            other => panic!("approved: {other:?}"),
        }
    };
    let location = redirect.location();
    let code = location
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .expect("a code");
    server
        .token(
            grantor::TokenRequest::form(format!(
                "grant_type=authorization_code&code={code}&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback&code_verifier={VERIFIER}"
            ))
            .with_authorization(WEB_BASIC),
        )
        .await
}

/// A field of a JSON token response.
pub fn field(response: &grantor::Response, name: &str) -> String {
    let json: serde_json::Value = serde_json::from_slice(response.body()).expect("json");
    json[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {json}"))
        .to_owned()
}
