//! The front door: [`AuthorizationServer`] and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::bearer::BearerValidator;
use crate::client_auth::{authenticate, credentials};
use crate::clock::{Clock, SystemClock};
use crate::error::OAuthError;
use crate::grant::password::{LoginLimits, PasswordGrant};
use crate::grant::refresh_token::RefreshTokenGrant;
use crate::grant::{Context, TokenSettings};
use crate::request::{token_params, TokenRequest};
use crate::response::{Response, TokenResponse};
use crate::store::{AttemptLimiter, ClientStore, MemoryAttemptLimiter, TokenStore, UserVerifier};
use crate::token::to_time_duration;
use crate::types::{ClientId, GrantType};

/// Why [`AuthorizationServerBuilder::build`] refused a configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The issuer is not an `http`/`https` URL without query or fragment (RFC 8414 §2).
    #[error("invalid issuer {0:?}: it must be an http(s) URL with no query or fragment")]
    InvalidIssuer(String),
    /// A token lifetime is zero.
    #[error("token lifetimes must be at least one second")]
    ZeroLifetime,
    /// No grant type is enabled, so the token endpoint could issue nothing.
    #[error("no grant type is enabled")]
    NoGrantEnabled,
}

/// Builds an [`AuthorizationServer`]. Start with [`AuthorizationServer::builder`].
#[must_use]
pub struct AuthorizationServerBuilder {
    clients: Arc<dyn ClientStore>,
    tokens: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    password: Option<Arc<dyn UserVerifier>>,
    refresh_grant: bool,
    rotate_refresh_tokens: bool,
    access_ttl: Duration,
    refresh_ttl: Duration,
    issuer: Option<String>,
    limiter: Option<Arc<dyn AttemptLimiter>>,
    login_limits: Option<LoginLimits>,
    json_token_requests: bool,
    query_access_tokens: bool,
}

impl AuthorizationServerBuilder {
    /// Enables the password grant (RFC 6749 §4.3), checking credentials with `verifier`.
    ///
    /// Brute-force protection is on unless [`disable_login_limits`](Self::disable_login_limits)
    /// is called.
    pub fn enable_password_grant(mut self, verifier: Arc<dyn UserVerifier>) -> Self {
        self.password = Some(verifier);
        self
    }

    /// Enables the refresh token grant (RFC 6749 §6). Clients allowed `refresh_token` then get
    /// refresh tokens with their access tokens.
    pub fn enable_refresh_token_grant(mut self) -> Self {
        self.refresh_grant = true;
        self
    }

    /// Whether each refresh issues a new refresh token and spends the old one (RFC 9700
    /// §4.14.2). On by default; turn it off only for sender-constrained refresh tokens.
    pub fn refresh_token_rotation(mut self, rotate: bool) -> Self {
        self.rotate_refresh_tokens = rotate;
        self
    }

    /// How long access tokens live. Default: one hour.
    pub fn access_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.access_ttl = lifetime;
        self
    }

    /// How long refresh tokens live. Default: 30 days.
    pub fn refresh_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_ttl = lifetime;
        self
    }

    /// The issuer identifier (RFC 8414 §2), e.g. `https://auth.example.com`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Replaces the clock (tests use a [`ManualClock`](crate::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the attempt limiter (default: a [`MemoryAttemptLimiter`], per process).
    pub fn attempt_limiter(mut self, limiter: Arc<dyn AttemptLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Sets the brute-force limits of the password grant (default: [`LoginLimits::default`]).
    pub fn login_limits(mut self, limits: LoginLimits) -> Self {
        self.login_limits = Some(limits);
        self
    }

    /// Turns brute-force protection off. RFC 6749 §4.3.2 says the endpoint MUST be protected:
    /// do this only when something in front of grantor already does it.
    pub fn disable_login_limits(mut self) -> Self {
        self.login_limits = None;
        self
    }

    /// Also accepts token requests with an `application/json` body whose members are the usual
    /// string parameters. Not part of RFC 6749; off by default.
    pub fn accept_json_token_requests(mut self, accept: bool) -> Self {
        self.json_token_requests = accept;
        self
    }

    /// Lets [`AuthorizationServer::bearer_validator`] accept the `access_token` query parameter
    /// (RFC 6750 §2.3). Off by default.
    pub fn allow_query_access_tokens(mut self, allow: bool) -> Self {
        self.query_access_tokens = allow;
        self
    }

    /// Checks the configuration and builds the server.
    ///
    /// # Errors
    ///
    /// [`BuildError`] for an invalid issuer, a zero lifetime, or no grant enabled.
    pub fn build(self) -> Result<AuthorizationServer, BuildError> {
        if let Some(issuer) = &self.issuer {
            let ok = url::Url::parse(issuer).is_ok_and(|u| {
                matches!(u.scheme(), "https" | "http")
                    && u.has_host()
                    && u.query().is_none()
                    && u.fragment().is_none()
            });
            if !ok {
                return Err(BuildError::InvalidIssuer(issuer.clone()));
            }
        }
        if self.access_ttl.as_secs() == 0 || self.refresh_ttl.as_secs() == 0 {
            return Err(BuildError::ZeroLifetime);
        }
        if self.password.is_none() && !self.refresh_grant {
            return Err(BuildError::NoGrantEnabled);
        }
        let limiter = self.login_limits.map(|limits| {
            let limiter = self
                .limiter
                .unwrap_or_else(|| Arc::new(MemoryAttemptLimiter::new()));
            (limiter, limits)
        });
        Ok(AuthorizationServer {
            inner: Arc::new(Inner {
                clients: self.clients,
                tokens: self.tokens,
                clock: self.clock,
                password: self
                    .password
                    .map(|verifier| PasswordGrant { verifier, limiter }),
                refresh: self.refresh_grant.then_some(RefreshTokenGrant),
                settings: TokenSettings {
                    access_ttl: to_time_duration(self.access_ttl),
                    refresh_ttl: to_time_duration(self.refresh_ttl),
                    refresh_grant: self.refresh_grant,
                    rotate_refresh_tokens: self.rotate_refresh_tokens,
                },
                issuer: self.issuer,
                json_token_requests: self.json_token_requests,
                query_access_tokens: self.query_access_tokens,
            }),
        })
    }
}

struct Inner {
    clients: Arc<dyn ClientStore>,
    tokens: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    password: Option<PasswordGrant>,
    refresh: Option<RefreshTokenGrant>,
    settings: TokenSettings,
    issuer: Option<String>,
    json_token_requests: bool,
    query_access_tokens: bool,
}

/// An OAuth 2.0 authorization server: every endpoint is a method that takes a framework-neutral
/// request and answers a [`Response`].
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
        f.debug_struct("AuthorizationServer")
            .field("issuer", &self.inner.issuer)
            .field("password_grant", &self.inner.password.is_some())
            .field("refresh_token_grant", &self.inner.refresh.is_some())
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// What is known about a token request so far, for the log line.
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
        AuthorizationServerBuilder {
            clients,
            tokens,
            clock: Arc::new(SystemClock),
            password: None,
            refresh_grant: false,
            rotate_refresh_tokens: true,
            access_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            issuer: None,
            limiter: None,
            login_limits: Some(LoginLimits::default()),
            json_token_requests: false,
            query_access_tokens: false,
        }
    }

    /// The issuer identifier, if one was set.
    pub fn issuer(&self) -> Option<&str> {
        self.inner.issuer.as_deref()
    }

    /// The token endpoint (RFC 6749 §3.2): answers an access token response (§5.1) or an error
    /// response (§5.2), both with `Cache-Control: no-store` and `Pragma: no-cache`.
    pub async fn token(&self, request: TokenRequest) -> Response {
        let now = self.inner.clock.now();
        let mut trace = Trace::default();
        match self.handle_token(&request, now, &mut trace).await {
            Ok(response) => {
                tracing::info!(
                    client_id = trace.client_id.as_ref().map(ClientId::as_str),
                    grant_type = trace.grant_type.map(GrantType::as_str),
                    auth_method = trace.auth_method,
                    "token issued"
                );
                response.into_response()
            }
            Err(error) => {
                tracing::warn!(
                    client_id = trace.client_id.as_ref().map(ClientId::as_str),
                    grant_type = trace.grant_type.map(GrantType::as_str),
                    auth_method = trace.auth_method,
                    error = error.code().as_str(),
                    reason = error.reason(),
                    "token request refused"
                );
                error.into_token_response()
            }
        }
    }

    async fn handle_token(
        &self,
        request: &TokenRequest,
        now: OffsetDateTime,
        trace: &mut Trace,
    ) -> Result<TokenResponse, OAuthError> {
        let inner = &*self.inner;
        let params = token_params(request, inner.json_token_requests)?;
        let raw_grant = params.get("grant_type");
        trace.grant_type = raw_grant.and_then(GrantType::parse);
        let creds = credentials(request.authorization.as_deref(), &params)?;
        trace.client_id = Some(creds.client_id.clone());
        trace.auth_method = Some(creds.method.as_str());
        let client = authenticate(&*inner.clients, creds).await?;

        let raw_grant = params.require("grant_type")?;
        let grant = GrantType::parse(raw_grant);
        let ctx = Context {
            tokens: &*inner.tokens,
            settings: &inner.settings,
            now,
        };
        match grant {
            Some(GrantType::Password) => {
                if let Some(handler) = &inner.password {
                    return handler.handle(&ctx, &client, &params).await;
                }
            }
            Some(GrantType::RefreshToken) => {
                if let Some(handler) = &inner.refresh {
                    return handler.handle(&ctx, &client, &params).await;
                }
            }
            _ => {}
        }
        Err(OAuthError::unsupported_grant_type(format!(
            "the grant type {raw_grant} is not supported by this server"
        ))
        .with_reason("grant_not_enabled"))
    }

    /// A validator for resource servers that shares this server's token store and clock.
    pub fn bearer_validator(&self) -> BearerValidator {
        BearerValidator::new(self.inner.tokens.clone())
            .with_clock(self.inner.clock.clone())
            .allow_query_parameter(self.inner.query_access_tokens)
    }
}
