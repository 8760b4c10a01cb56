//! The front door: [`AuthorizationServer`], one method per endpoint, over the modules that do
//! the work.
//!
//! | module | endpoints |
//! |---|---|
//! | `token` | the token endpoint, dispatching to the enabled grants (`src/grant/`) |
//! | `authorization` | the authorization endpoint and the user's decision (the code flow) |
//! | `device` | the device authorization endpoint and the verification page's calls |
//! | `sign_in` | a login page's password and one-time-code checks |
//! | `tokens` | revocation and introspection |
//! | `metadata` | the RFC 8414 document |
//!
//! The builder ([`AuthorizationServerBuilder`]) lives in `src/builder.rs`, and each grant's own
//! settings with the grant; [`build`](AuthorizationServerBuilder::build) is here.

mod authorization;
mod device;
mod metadata;
mod sign_in;
mod token;
mod tokens;

use crate::resource::Resource;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::bearer::BearerValidator;
use crate::builder::{AuthorizationServerBuilder, BuildError};
use crate::client::AccessTokenFormat;
use crate::client::Client;
use crate::client_auth::{authenticate, credentials};
use crate::clock::Clock;
use crate::error::OAuthError;
use crate::grant::context::JwtSettings;
use crate::grant::context::{nonzero, Context, Shared, TokenSettings};
use crate::grant::Grants;
use crate::jose::TokenSigner;
use crate::metadata::EndpointPaths;
use crate::request::{token_params, Params, TokenRequest};
use crate::scope::Scope;
use crate::store::{
    AttemptLimiter, ClientStore, MemoryAttemptLimiter, MemoryMfaStore, MfaStore, TokenStore,
};
use crate::types::{ClientId, GrantType};
use crate::user_auth::UserAuthenticator;

impl AuthorizationServerBuilder {
    /// Checks the configuration and builds the server.
    ///
    /// # Errors
    ///
    /// [`BuildError`] for an invalid issuer, a zero lifetime, no usable grant enabled, or a
    /// grant that lacks what it needs (an issuer, the authorization endpoint).
    pub fn build(self) -> Result<AuthorizationServer, BuildError> {
        if let Some(issuer) = &self.issuer {
            let ok = url::Url::parse(issuer).is_ok_and(|u| {
                matches!(u.scheme(), "https" | "http")
                    && u.has_host()
                    && u.query().is_none()
                    && u.fragment().is_none()
                    && crate::metadata::is_routable_path(u.path())
            });
            if !ok {
                return Err(BuildError::InvalidIssuer(issuer.clone()));
            }
        }
        if let Some(path) = self.paths.first_unroutable() {
            return Err(BuildError::InvalidEndpointPath(path.to_owned()));
        }
        let access_ttl = nonzero(self.access_ttl)?;
        let limiter: Arc<dyn AttemptLimiter> = self
            .limiter
            .unwrap_or_else(|| Arc::new(MemoryAttemptLimiter::new()));
        let mfa: Arc<dyn MfaStore> = self.mfa.unwrap_or_else(|| Arc::new(MemoryMfaStore::new()));
        let users = self.verifier.map(|verifier| {
            Arc::new(UserAuthenticator {
                verifier,
                limits: self.login_limits.map(|limits| {
                    (
                        crate::attempts::AttemptGate {
                            limiter: limiter.clone(),
                            clock: self.clock.clone(),
                            max_wait: limits.max_wait,
                        },
                        limits,
                    )
                }),
                mfa,
            })
        });
        let secret_limiter = self.client_secret_limiter;
        let client_secrets =
            self.client_secret_limits
                .map(|limits| crate::client_auth::SecretGate {
                    gate: crate::attempts::AttemptGate {
                        // Per process unless shared: a shared limiter is two round trips on
                        // every request that presents a secret.
                        limiter: secret_limiter
                            .unwrap_or_else(|| Arc::new(MemoryAttemptLimiter::new())),
                        clock: self.clock.clone(),
                        max_wait: limits.max_wait,
                    },
                    limits,
                });
        let resources: Arc<[Resource]> = self.resources.into();
        let grants = Grants::build(
            &self.setups,
            &Shared {
                resources: &resources,
                issuer: self.issuer.as_deref(),
                paths: &self.paths,
                users: users.as_ref(),
                limiter: &limiter,
                clock: &self.clock,
                login_limits: self.login_limits,
                pending_limits: self.pending_limits,
            },
        )?;
        let jwt = match (&self.signer, &self.issuer, &self.jwt_audience) {
            (Some(signer), Some(issuer), Some(audience)) => Some(JwtSettings {
                signer: signer.clone(),
                issuer: issuer.clone(),
                audience: audience.clone(),
            }),
            (signer, issuer, audience) => {
                if self.access_token_format == AccessTokenFormat::Jwt {
                    let missing = if signer.is_none() {
                        "token_signer"
                    } else if issuer.is_none() {
                        "issuer"
                    } else {
                        "jwt_audience"
                    };
                    let _ = audience;
                    return Err(BuildError::JwtNeeds(missing));
                }
                None
            }
        };
        let settings = TokenSettings {
            access_ttl,
            refresh: grants.refresh_policy(),
            access_token_format: self.access_token_format,
            jwt,
            resources,
        };
        Ok(AuthorizationServer {
            inner: Arc::new(Inner {
                clients: self.clients,
                tokens: self.tokens,
                clock: self.clock,
                grants,
                users,
                client_secrets,
                settings,
                resource_servers: self.resource_servers,
                issuer: self.issuer,
                json_token_requests: self.json_token_requests,
                query_access_tokens: self.query_access_tokens,
                paths: self.paths,
                scopes_supported: self.scopes_supported,
                signer: self.signer,
            }),
        })
    }
}

struct Inner {
    clients: Arc<dyn ClientStore>,
    tokens: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    /// The enabled grants: dispatch, metadata and `Debug` read this one list.
    grants: Grants,
    users: Option<Arc<UserAuthenticator>>,
    /// Counts wrong client secrets (RFC 6749 §2.3.1).
    client_secrets: Option<crate::client_auth::SecretGate>,
    settings: TokenSettings,
    issuer: Option<String>,
    json_token_requests: bool,
    query_access_tokens: bool,
    paths: EndpointPaths,
    scopes_supported: Option<Scope>,
    resource_servers: HashSet<ClientId>,
    signer: Option<Arc<dyn TokenSigner>>,
}

/// An OAuth 2.0 authorization server: every endpoint is a method that takes a framework-neutral
/// request and answers a [`Response`](crate::Response).
///
/// Cheap to clone (one `Arc`); share it across tasks and threads.
///
/// ```
/// use std::sync::Arc;
/// use grantor::{AuthorizationServer, MemoryClientStore, MemoryTokenStore, MemoryUserVerifier};
///
/// let server = AuthorizationServer::builder(
///     Arc::new(MemoryClientStore::new()),
///     Arc::new(MemoryTokenStore::new()),
/// )
/// .enable_password_grant(Arc::new(MemoryUserVerifier::new()))
/// .enable_refresh_token_grant()
/// .build()
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct AuthorizationServer {
    inner: Arc<Inner>,
}

impl fmt::Debug for AuthorizationServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let grants: Vec<&str> = self.inner.grants.types().map(GrantType::as_str).collect();
        f.debug_struct("AuthorizationServer")
            .field("issuer", &self.inner.issuer)
            .field("grants", &grants)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// What is known about a request so far, for the log line.
#[derive(Default)]
struct Trace {
    client_id: Option<ClientId>,
    grant_type: Option<GrantType>,
    auth_method: Option<&'static str>,
}

impl AuthorizationServer {
    /// A builder over the two stores every server needs. Enable at least one grant on it.
    pub fn builder(
        clients: Arc<dyn ClientStore>,
        tokens: Arc<dyn TokenStore>,
    ) -> AuthorizationServerBuilder {
        AuthorizationServerBuilder::new(clients, tokens)
    }

    /// The issuer identifier, if one was set.
    pub fn issuer(&self) -> Option<&str> {
        self.inner.issuer.as_deref()
    }

    /// Where the host serves each endpoint (the builder's
    /// [`endpoint_paths`](AuthorizationServerBuilder::endpoint_paths)), below the issuer's own
    /// path.
    pub fn endpoint_paths(&self) -> &EndpointPaths {
        &self.inner.paths
    }

    /// Whether the server has signing keys (its JWK Set is served).
    #[cfg(feature = "axum")]
    pub(crate) fn signs(&self) -> bool {
        self.inner.signer.is_some()
    }

    /// Whether the device authorization grant is on (its endpoint is served).
    #[cfg(feature = "axum")]
    pub(crate) fn device_grant_enabled(&self) -> bool {
        self.inner.grants.device_code().is_some()
    }

    /// A validator for resource servers that shares this server's token store and clock.
    pub fn bearer_validator(&self) -> BearerValidator {
        BearerValidator::new(self.inner.tokens.clone())
            .with_clock(self.inner.clock.clone())
            .allow_query_parameter(self.inner.query_access_tokens)
    }

    /// The context a grant handles a request in, at `now`.
    fn context(&self, now: OffsetDateTime) -> Context<'_> {
        Context {
            clients: &*self.inner.clients,
            tokens: &*self.inner.tokens,
            settings: &self.inner.settings,
            now,
            caller: None,
        }
    }

    /// Authenticates the client of a revocation or introspection request, as at the token
    /// endpoint.
    async fn client_request<'r>(
        &self,
        request: &'r TokenRequest,
        trace: &mut Trace,
    ) -> Result<(std::sync::Arc<Client>, Params<'r>), OAuthError> {
        let params = token_params(request, false)?;
        let creds = credentials(request.authorization.as_deref(), &params)?;
        trace.client_id = Some(creds.client_id.clone());
        trace.auth_method = Some(creds.method.as_str());
        let client = authenticate(
            &*self.inner.clients,
            self.inner.client_secrets.as_ref(),
            request.caller,
            creds,
        )
        .await?;
        Ok((client, params))
    }
}
