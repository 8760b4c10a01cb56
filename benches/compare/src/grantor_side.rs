//! grantor, driven as its axum example drives it: `TokenRequest::from(request)`, `server.token`, the
//! response turned into an `http::Response`; `validate_authorization`, then `decide` approving, for a signed-in user who
//! needs no consent page (or, `with_consent_step`, `authorize` then `approve`, the consent page
//! between them skipped); the bearer validator's `validate_http`.

use std::sync::Arc;

use grantor::{
    AuthorizationRequest, AuthorizationServer, AuthorizeOutcome, BearerValidator, Client,
    ClientSecret, Decision, GrantType, MemoryClientStore, MemoryCodeStore, MemoryTokenStore, Scope,
    SecretHash, TokenRequest, UserId,
};

use crate::harness::{HttpRequest, Reply, CALLBACK, SERVICE_ID, SERVICE_SECRET, USER};
use crate::harness::{WEBAPP_ID, WEBAPP_SECRET};
use crate::Side;

pub struct Grantor {
    server: AuthorizationServer,
    validator: BearerValidator,
    read: Scope,
    /// Whether an approval is two calls, `authorize` then `approve`.
    consent_step: bool,
}

impl Grantor {
    /// Approving inside the authorization request, as the peers do.
    pub fn new() -> Self {
        Self::build(false)
    }

    /// Approving in a second call, as a host with a consent page does.
    pub fn with_consent_step() -> Self {
        Self::build(true)
    }

    fn build(consent_step: bool) -> Self {
        let read: Scope = "read".parse().expect("scope");
        let clients = MemoryClientStore::new();
        clients.insert(
            Client::confidential(
                SERVICE_ID,
                SecretHash::new(&ClientSecret::new(SERVICE_SECRET)),
            )
            .with_grant_types([GrantType::ClientCredentials])
            .with_allowed_scope(read.clone())
            .with_default_scope(read.clone()),
        );
        clients.insert(
            Client::confidential(
                WEBAPP_ID,
                SecretHash::new(&ClientSecret::new(WEBAPP_SECRET)),
            )
            .with_grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
            .with_redirect_uris([CALLBACK])
            .with_allowed_scope(read.clone())
            .with_default_scope(read.clone()),
        );
        let server =
            AuthorizationServer::builder(Arc::new(clients), Arc::new(MemoryTokenStore::new()))
                .issuer(crate::harness::ISSUER)
                .enable_client_credentials_grant()
                .enable_authorization_code_grant(Arc::new(MemoryCodeStore::new()))
                .enable_refresh_token_grant()
                .build()
                .expect("grantor server");
        let validator = server.bearer_validator();
        Grantor {
            server,
            validator,
            read,
            consent_step,
        }
    }
}

fn reply(response: grantor::Response) -> Reply {
    let response = http::Response::<Vec<u8>>::from(response);
    Reply {
        status: response.status().as_u16(),
        body: response.into_body(),
    }
}

impl Side for Grantor {
    const NAME: &'static str = "grantor";

    async fn token(&self, request: HttpRequest) -> Reply {
        reply(self.server.token(TokenRequest::from(request)).await)
    }

    async fn authorize(&self, request: HttpRequest) -> Option<String> {
        let query = AuthorizationRequest::from_query(request.uri().query().unwrap_or(""));
        let redirect = if self.consent_step {
            let AuthorizeOutcome::Pending { id, .. } = self.server.authorize(query).await else {
                return None;
            };
            self.server
                .approve(&id, UserId::new(USER), None)
                .await
                .ok()?
        } else {
            let valid = self.server.validate_authorization(query).await.ok()?;
            let approve = Decision::approve_all(UserId::new(USER));
            let AuthorizeOutcome::Redirect(redirect) = self.server.decide(valid, approve).await
            else {
                return None;
            };
            redirect
        };
        let response = http::Response::<Vec<u8>>::from(redirect.into_response());
        let location = response.headers().get(http::header::LOCATION)?;
        Some(location.to_str().ok()?.to_owned())
    }

    async fn validate(&self, request: &HttpRequest) -> bool {
        self.validator
            .validate_http(request, &self.read)
            .await
            .is_ok()
    }
}
