//! oauth-as 1.0.1 through its `http` entry point, `AuthorizationService::handle` (an
//! `http::Request` in, an `http::Response` out, no server), over its `MemoryStorage`. The
//! authorization endpoint approves through the host's two seams (a subject resolver naming the
//! user and an approval resolver that approves), in one request. It has no resource-server
//! validator: a host validates a bearer token with `AuthorizationServer::introspect` (the
//! in-process form of RFC 7662) and checks the scope itself, which is what this does.

use std::sync::Arc;

use oauth_as::client::{Client, ClientAuth, ClientId, SecretHash};
use oauth_as::grant::GrantType;
use oauth_as::http::{ApprovalDecision, AuthorizationService, ServiceBuilder};
use oauth_as::scope::ScopeSet;
use oauth_as::server::{AuthorizationServer, ServerConfig, SystemClock};
use oauth_as::store::MemoryStorage;

use crate::harness::{HttpRequest, Reply, CALLBACK, ISSUER, SERVICE_ID, SERVICE_SECRET, USER};
use crate::harness::{WEBAPP_ID, WEBAPP_SECRET};
use crate::Side;

pub struct OauthAs {
    server: Arc<AuthorizationServer<MemoryStorage, SystemClock>>,
    service: AuthorizationService<MemoryStorage, SystemClock>,
}

impl OauthAs {
    pub async fn new() -> Self {
        // Opaque access tokens for an hour (the defaults), refresh rotation on (the default).
        let config = ServerConfig::new(ISSUER, format!("{ISSUER}/device"));
        let server = Arc::new(AuthorizationServer::new(config, MemoryStorage::new()));
        let read = ScopeSet::from_tokens(["read"]).expect("scope");
        for (id, secret, grants, redirects) in [
            (
                SERVICE_ID,
                SERVICE_SECRET,
                vec![GrantType::ClientCredentials],
                vec![],
            ),
            (
                WEBAPP_ID,
                WEBAPP_SECRET,
                vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
                vec![CALLBACK.to_owned()],
            ),
        ] {
            server
                .register_client(Client {
                    client_id: ClientId::new(id),
                    // Its built-in scheme: a SHA-256 of the secret.
                    auth: ClientAuth::ConfidentialSecretHash {
                        hash: SecretHash::sha256(secret),
                    },
                    grant_types: grants,
                    redirect_uris: redirects,
                    allowed_scopes: read.clone(),
                    default_scopes: read.clone(),
                    name: None,
                    registration: None,
                })
                .await
                .expect("register client");
        }
        let service = ServiceBuilder::new(server.clone())
            .with_subject_resolver(|_headers| Some(USER.to_owned()))
            .with_approval_resolver(|_request| ApprovalDecision::Approve)
            .build()
            .expect("oauth-as service");
        OauthAs { server, service }
    }
}

impl Side for OauthAs {
    const NAME: &'static str = "oauth-as 1.0.1";

    async fn token(&self, request: HttpRequest) -> Reply {
        let (parts, body) = self.service.handle(request).await.into_parts();
        Reply {
            status: parts.status.as_u16(),
            body: Vec::from(body.into_bytes()),
        }
    }

    async fn authorize(&self, request: HttpRequest) -> Option<String> {
        let response = self.service.handle(request).await;
        if !response.status().is_redirection() {
            return None;
        }
        let location = response.headers().get(http::header::LOCATION)?;
        Some(location.to_str().ok()?.to_owned())
    }

    async fn validate(&self, request: &HttpRequest) -> bool {
        let Some(token) = crate::bearer_of(request) else {
            return false;
        };
        matches!(
            self.server.introspect(token).await,
            Ok(Some(issued)) if issued.scope.contains("read")
        )
    }
}
