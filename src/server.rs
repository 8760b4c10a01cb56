//! The front door: [`AuthorizationServer`] and its builder.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::attempts::AttemptGate;
use crate::authorize::{
    error_redirect, validate, AuthorizationRequest, AuthorizeOutcome, AuthorizeSettings, Redirect,
    Refusal, ResponseType,
};
use crate::bearer::BearerValidator;
use crate::client::Client;
use crate::client_auth::{authenticate, credentials};
use crate::clock::{Clock, SystemClock};
use crate::error::OAuthError;
use crate::grant::authorization_code::AuthorizationCodeGrant;
use crate::grant::client_credentials::ClientCredentialsGrant;
use crate::grant::device_code::{
    approved_scope, DeviceCodeGrant, DeviceConfirmation, DeviceRequest,
};
use crate::grant::implicit::ImplicitGrant;
use crate::grant::mfa_otp::MfaOtpGrant;
use crate::grant::password::PasswordGrant;
use crate::grant::refresh_token::RefreshTokenGrant;
use crate::grant::{Context, TokenSettings};
use crate::metadata::{
    endpoint, EndpointPaths, Metadata, CLIENT_AUTH_METHODS, INTROSPECTION_AUTH_METHODS,
};
use crate::request::{token_params, TokenRequest};
use crate::response::{Response, TokenResponse};
use crate::scope::Scope;
use crate::store::{
    Admission, AttemptLimiter, AttemptRule, ClientStore, CodeStore, DeviceCodeStore,
    DeviceDecision, MemoryAttemptLimiter, MemoryMfaStore, MfaStore, PendingAuthorization,
    PendingLimits, TokenStore, UserVerifier,
};
use crate::token::{to_time_duration, TokenHash};
use crate::types::{
    AuthorizationRequestId, ClientId, GrantType, OneTimeCode, Password, ResourceOwner, UserCode,
    Username,
};
use crate::user_auth::{Asker, LoginLimits, SignIn, UserAuthenticator};

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
    /// The authorization endpoint needs an issuer for `iss` (RFC 9207).
    #[error("the authorization code and implicit grants need an issuer (RFC 9207 iss)")]
    IssuerRequired,
    /// The implicit grant needs the authorization endpoint, enabled with
    /// `enable_authorization_code_grant`.
    #[error("the implicit grant needs enable_authorization_code_grant (its code store)")]
    ImplicitWithoutAuthorizationEndpoint,
    /// Authorization codes may live at most 10 minutes (RFC 6749 §4.1.2).
    #[error("authorization codes may live at most 10 minutes")]
    CodeLifetimeTooLong,
    /// The device grant's `verification_uri` is built from the issuer.
    #[error("the device authorization grant needs an issuer (for its verification_uri)")]
    DeviceGrantNeedsIssuer,
}

/// Builds an [`AuthorizationServer`]. Start with [`AuthorizationServer::builder`].
#[must_use]
pub struct AuthorizationServerBuilder {
    clients: Arc<dyn ClientStore>,
    tokens: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    verifier: Option<Arc<dyn UserVerifier>>,
    password_grant: bool,
    client_credentials: bool,
    codes: Option<Arc<dyn CodeStore>>,
    implicit: bool,
    require_pkce: bool,
    allow_plain_pkce: bool,
    code_ttl: Duration,
    request_ttl: Duration,
    refresh_grant: bool,
    rotate_refresh_tokens: bool,
    access_ttl: Duration,
    refresh_ttl: Duration,
    issuer: Option<String>,
    limiter: Option<Arc<dyn AttemptLimiter>>,
    login_limits: Option<LoginLimits>,
    json_token_requests: bool,
    query_access_tokens: bool,
    paths: EndpointPaths,
    scopes_supported: Option<Scope>,
    devices: Option<Arc<dyn DeviceCodeStore>>,
    device_ttl: Duration,
    device_interval: Duration,
    user_code_limit: Option<AttemptRule>,
    mfa: Option<Arc<dyn MfaStore>>,
    mfa_ttl: Duration,
    pending_limits: PendingLimits,
    refresh_grace: Duration,
    resource_servers: HashSet<ClientId>,
}

impl AuthorizationServerBuilder {
    /// Bounds on the requests anyone can make without credentials: pending authorization
    /// requests (the authorization endpoint) and device authorization requests, each counted
    /// per client and in all while they wait. Past a bound the endpoint answers `503
    /// temporarily_unavailable` with `Retry-After` instead of storing more. Default:
    /// [`PendingLimits::default`] (1,000 per client, 10,000 in all, for each kind).
    pub fn pending_request_limits(mut self, limits: PendingLimits) -> Self {
        self.pending_limits = limits;
        self
    }

    /// How long a just-rotated refresh token may be presented again by the client it was
    /// issued to, without counting as a replay: for a reply lost in transit. Within it, the
    /// client gets a fresh pair (and the refresh token the lost reply carried stops working; its
    /// access token lives out its lifetime), as long as it never used that refresh token; after
    /// it, or if it did, reuse revokes the family as usual
    /// (RFC 9700 §4.14.2). Default: zero, off. A few seconds is enough for a retry; every
    /// second widens the window in which a stolen refresh token goes unnoticed. Counted in
    /// whole seconds, rounded in the client's favour.
    pub fn refresh_token_grace_period(mut self, grace: Duration) -> Self {
        self.refresh_grace = grace;
        self
    }

    /// Declares clients as resource servers (RFC 7662 §4): they may introspect every access
    /// token. Any other client sees `"active": true` only for tokens issued to itself, and a
    /// refresh token is shown active only to its own client, whoever asks.
    pub fn resource_servers<I, C>(mut self, clients: I) -> Self
    where
        I: IntoIterator<Item = C>,
        C: Into<ClientId>,
    {
        self.resource_servers = clients.into_iter().map(Into::into).collect();
        self
    }

    /// Enables the device authorization grant (RFC 8628) for clients registered for it,
    /// keeping requests in `devices`. Needs an [`issuer`](Self::issuer): the
    /// `verification_uri` is the issuer joined with [`EndpointPaths::device_verification`].
    pub fn enable_device_code_grant(mut self, devices: Arc<dyn DeviceCodeStore>) -> Self {
        self.devices = Some(devices);
        self
    }

    /// How long device codes and user codes live (`expires_in`). Default 10 minutes.
    pub fn device_code_lifetime(mut self, lifetime: Duration) -> Self {
        self.device_ttl = lifetime;
        self
    }

    /// The minimum time between polls handed to devices (`interval`, whole seconds). Default 5 s
    /// (RFC 8628 §3.2's default).
    pub fn device_polling_interval(mut self, interval: Duration) -> Self {
        self.device_interval = interval;
        self
    }

    /// The limit on wrong user codes entered on the verification page (RFC 8628 §5.1), counted
    /// per the caller address the page passes. Default: 10 per 15 minutes. `None` turns it off.
    pub fn device_user_code_limit(mut self, rule: Option<AttemptRule>) -> Self {
        self.user_code_limit = rule;
        self
    }

    /// Where `mfa_token`s and used one-time codes are kept (default: a [`MemoryMfaStore`], per
    /// process). Servers that share a token store must share this too.
    pub fn mfa_store(mut self, store: Arc<dyn MfaStore>) -> Self {
        self.mfa = Some(store);
        self
    }

    /// How long an `mfa_token` lives. Default 5 minutes.
    pub fn mfa_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.mfa_ttl = lifetime;
        self
    }

    /// Where the host serves each endpoint, for the metadata document (RFC 8414). Defaults to
    /// [`EndpointPaths::default`].
    pub fn endpoint_paths(mut self, paths: EndpointPaths) -> Self {
        self.paths = paths;
        self
    }

    /// The scopes to list as `scopes_supported` in the metadata document (RFC 8414 §2). Not
    /// listed unless set.
    pub fn scopes_supported(mut self, scopes: Scope) -> Self {
        self.scopes_supported = Some(scopes);
        self
    }

    /// Enables the password grant (RFC 6749 §4.3), checking credentials with `verifier`.
    ///
    /// Brute-force protection is on unless [`disable_login_limits`](Self::disable_login_limits)
    /// is called.
    pub fn enable_password_grant(mut self, verifier: Arc<dyn UserVerifier>) -> Self {
        self.verifier = Some(verifier);
        self.password_grant = true;
        self
    }

    /// Enables the client credentials grant (RFC 6749 §4.4) for confidential clients registered
    /// for it.
    pub fn enable_client_credentials_grant(mut self) -> Self {
        self.client_credentials = true;
        self
    }

    /// Sets the user verifier behind [`AuthorizationServer::verify_user`], for a login page in
    /// front of the authorization endpoint, without enabling the password grant. (Enabling the
    /// password grant sets it too.)
    pub fn user_verifier(mut self, verifier: Arc<dyn UserVerifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Enables the authorization endpoint and the authorization code grant (RFC 6749 §4.1),
    /// keeping pending requests and codes in `codes`. Needs an [`issuer`](Self::issuer).
    pub fn enable_authorization_code_grant(mut self, codes: Arc<dyn CodeStore>) -> Self {
        self.codes = Some(codes);
        self
    }

    /// Enables the implicit grant (RFC 6749 §4.2) for clients registered for it. Off by
    /// default: RFC 9700 §2.1.2 says clients SHOULD NOT use it.
    pub fn enable_implicit_grant(mut self) -> Self {
        self.implicit = true;
        self
    }

    /// Requires PKCE from every client, confidential ones too (RFC 9700 §2.1.1 recommends it).
    /// Public clients always need it.
    pub fn require_pkce(mut self, require: bool) -> Self {
        self.require_pkce = require;
        self
    }

    /// Accepts `code_challenge_method=plain` (RFC 7636 §4.2). Off by default: only `S256`.
    pub fn allow_plain_pkce(mut self, allow: bool) -> Self {
        self.allow_plain_pkce = allow;
        self
    }

    /// How long authorization codes live. Default 60 s; at most 10 minutes (RFC 6749 §4.1.2).
    pub fn authorization_code_lifetime(mut self, lifetime: Duration) -> Self {
        self.code_ttl = lifetime;
        self
    }

    /// How long a validated authorization request waits for the user's decision. Default 10
    /// minutes.
    pub fn authorization_request_lifetime(mut self, lifetime: Duration) -> Self {
        self.request_ttl = lifetime;
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
        if [
            self.access_ttl,
            self.refresh_ttl,
            self.code_ttl,
            self.request_ttl,
            self.device_ttl,
            self.device_interval,
            self.mfa_ttl,
        ]
        .iter()
        .any(|d| d.as_secs() == 0)
        {
            return Err(BuildError::ZeroLifetime);
        }
        if !self.password_grant
            && !self.refresh_grant
            && !self.client_credentials
            && self.codes.is_none()
            && self.devices.is_none()
        {
            return Err(BuildError::NoGrantEnabled);
        }
        if self.implicit && self.codes.is_none() {
            return Err(BuildError::ImplicitWithoutAuthorizationEndpoint);
        }
        if self.code_ttl > Duration::from_secs(600) {
            return Err(BuildError::CodeLifetimeTooLong);
        }
        let authorize = match (&self.codes, &self.issuer) {
            (None, _) => None,
            (Some(_), None) => return Err(BuildError::IssuerRequired),
            (Some(_), Some(issuer)) => Some(AuthorizeSettings {
                implicit: self.implicit,
                require_pkce: self.require_pkce,
                allow_plain_pkce: self.allow_plain_pkce,
                request_ttl: to_time_duration(self.request_ttl),
                issuer: issuer.clone(),
            }),
        };
        let device = match (self.devices, &self.issuer) {
            (None, _) => None,
            (Some(_), None) => return Err(BuildError::DeviceGrantNeedsIssuer),
            (Some(devices), Some(issuer)) => Some((devices, issuer.clone())),
        };
        let shared_limiter: Arc<dyn AttemptLimiter> = self
            .limiter
            .unwrap_or_else(|| Arc::new(MemoryAttemptLimiter::new()));
        let gate = |max_wait| AttemptGate {
            limiter: shared_limiter.clone(),
            clock: self.clock.clone(),
            max_wait,
        };
        let limits = self
            .login_limits
            .map(|limits| (gate(limits.max_wait), limits));
        let mfa: Arc<dyn MfaStore> = self.mfa.unwrap_or_else(|| Arc::new(MemoryMfaStore::new()));
        let users = self.verifier.map(|verifier| {
            Arc::new(UserAuthenticator {
                verifier,
                limits,
                mfa,
            })
        });
        let (password, mfa_otp) = match (&users, self.password_grant) {
            (Some(users), true) => (
                Some(PasswordGrant {
                    users: users.clone(),
                    mfa_ttl: to_time_duration(self.mfa_ttl),
                }),
                Some(MfaOtpGrant {
                    users: users.clone(),
                }),
            ),
            _ => (None, None),
        };
        let device = device.map(|(devices, issuer)| DeviceCodeGrant {
            devices,
            ttl: to_time_duration(self.device_ttl),
            interval: self.device_interval.as_secs(),
            verification_uri: endpoint(&issuer, &self.paths.device_verification),
            user_code_limit: self.user_code_limit.map(|rule| {
                let max_wait = self
                    .login_limits
                    .map_or(LoginLimits::default().max_wait, |l| l.max_wait);
                (gate(max_wait), rule)
            }),
            limits: self.pending_limits,
        });
        Ok(AuthorizationServer {
            inner: Arc::new(Inner {
                clients: self.clients,
                tokens: self.tokens,
                clock: self.clock,
                password,
                mfa_otp,
                device,
                users,
                code: self.codes.map(|codes| AuthorizationCodeGrant {
                    codes,
                    code_ttl: to_time_duration(self.code_ttl),
                }),
                implicit: self.implicit.then_some(ImplicitGrant),
                client_credentials: self.client_credentials.then_some(ClientCredentialsGrant),
                authorize,
                refresh: self.refresh_grant.then_some(RefreshTokenGrant),
                settings: TokenSettings {
                    access_ttl: to_time_duration(self.access_ttl),
                    refresh_ttl: to_time_duration(self.refresh_ttl),
                    refresh_grant: self.refresh_grant,
                    rotate_refresh_tokens: self.rotate_refresh_tokens,
                    refresh_grace: to_time_duration(self.refresh_grace),
                },
                pending_limits: self.pending_limits,
                resource_servers: self.resource_servers,
                issuer: self.issuer,
                json_token_requests: self.json_token_requests,
                query_access_tokens: self.query_access_tokens,
                paths: self.paths,
                scopes_supported: self.scopes_supported,
                allow_plain_pkce: self.allow_plain_pkce,
            }),
        })
    }
}

struct Inner {
    clients: Arc<dyn ClientStore>,
    tokens: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    password: Option<PasswordGrant>,
    mfa_otp: Option<MfaOtpGrant>,
    device: Option<DeviceCodeGrant>,
    users: Option<Arc<UserAuthenticator>>,
    code: Option<AuthorizationCodeGrant>,
    implicit: Option<ImplicitGrant>,
    client_credentials: Option<ClientCredentialsGrant>,
    authorize: Option<AuthorizeSettings>,
    refresh: Option<RefreshTokenGrant>,
    settings: TokenSettings,
    issuer: Option<String>,
    json_token_requests: bool,
    query_access_tokens: bool,
    paths: EndpointPaths,
    scopes_supported: Option<Scope>,
    allow_plain_pkce: bool,
    pending_limits: PendingLimits,
    resource_servers: HashSet<ClientId>,
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
            .field("authorization_code_grant", &self.inner.code.is_some())
            .field("implicit_grant", &self.inner.implicit.is_some())
            .field(
                "client_credentials_grant",
                &self.inner.client_credentials.is_some(),
            )
            .field("device_code_grant", &self.inner.device.is_some())
            .field("mfa_otp_grant", &self.inner.mfa_otp.is_some())
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

fn pending_unknown() -> OAuthError {
    OAuthError::invalid_request("the authorization request is unknown, expired, or already decided")
        .with_reason("pending_unknown")
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
            verifier: None,
            password_grant: false,
            client_credentials: false,
            codes: None,
            implicit: false,
            require_pkce: false,
            allow_plain_pkce: false,
            code_ttl: Duration::from_secs(60),
            request_ttl: Duration::from_secs(600),
            refresh_grant: false,
            rotate_refresh_tokens: true,
            access_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            issuer: None,
            limiter: None,
            login_limits: Some(LoginLimits::default()),
            json_token_requests: false,
            query_access_tokens: false,
            paths: EndpointPaths::default(),
            scopes_supported: None,
            devices: None,
            device_ttl: Duration::from_secs(600),
            device_interval: Duration::from_secs(5),
            user_code_limit: Some(AttemptRule {
                max_failures: 10,
                window: Duration::from_secs(15 * 60),
            }),
            mfa: None,
            mfa_ttl: Duration::from_secs(300),
            pending_limits: PendingLimits::default(),
            refresh_grace: Duration::ZERO,
            resource_servers: HashSet::new(),
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
            Some(GrantType::AuthorizationCode) => {
                if let Some(handler) = &inner.code {
                    return handler.handle(&ctx, &client, &params).await;
                }
            }
            Some(GrantType::ClientCredentials) => {
                if let Some(handler) = &inner.client_credentials {
                    return handler.handle(&ctx, &client, &params).await;
                }
            }
            Some(GrantType::DeviceCode) => {
                if let Some(handler) = &inner.device {
                    return handler.handle(&ctx, &client, &params).await;
                }
            }
            Some(GrantType::MfaOtp) => {
                if let Some(handler) = &inner.mfa_otp {
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

    /// The authorization endpoint (RFC 6749 §3.1, §4.1.1, §4.2.1): validates the request.
    ///
    /// Answers [`AuthorizeOutcome::Pending`] for a valid request (draw the login and consent
    /// page), [`AuthorizeOutcome::Redirect`] for an error the client must hear, and
    /// [`AuthorizeOutcome::Invalid`] for an error to show as a page, because the client or its
    /// redirect URI cannot be trusted.
    pub async fn authorize(&self, request: AuthorizationRequest) -> AuthorizeOutcome {
        let inner = &*self.inner;
        let now = inner.clock.now();
        let (Some(settings), Some(code)) = (&inner.authorize, &inner.code) else {
            return AuthorizeOutcome::Invalid(
                OAuthError::unsupported_response_type(
                    "this server has no authorization endpoint enabled",
                )
                .with_reason("authorization_endpoint_disabled"),
            );
        };
        match validate(&*inner.clients, settings, &request, now).await {
            Ok(pending) => {
                let id = AuthorizationRequestId::generate();
                let saved = code
                    .codes
                    .save_pending(
                        &TokenHash::of(id.secret()),
                        &pending,
                        &inner.pending_limits,
                        now,
                    )
                    .await;
                match saved {
                    Ok(Admission::Admitted) => {}
                    Ok(full) => {
                        // Anyone can make these requests: past the bound, refuse rather than
                        // store more, without sending the browser on to the client.
                        let retry_after = match full {
                            Admission::Full { retry_after } => retry_after.as_secs().max(1),
                            _ => 1,
                        };
                        tracing::warn!(client_id = %pending.client_id, "authorization request refused: too many are waiting");
                        return AuthorizeOutcome::Unavailable(
                            OAuthError::temporarily_unavailable(
                                "too many sign-in requests are waiting; try again later",
                            )
                            .with_reason("pending_requests_full")
                            .with_retry_after(retry_after),
                        );
                    }
                    Err(e) => {
                        // The redirect URI is trusted: the client hears server_error or
                        // temporarily_unavailable (RFC 6749 §4.1.2.1).
                        let error: OAuthError = e.into();
                        return AuthorizeOutcome::Redirect(error_redirect(
                            &pending.redirect_uri,
                            pending.response_type == ResponseType::Token,
                            &error,
                            pending.state.as_deref(),
                            &settings.issuer,
                        ));
                    }
                }
                tracing::info!(client_id = %pending.client_id, "authorization request pending");
                AuthorizeOutcome::Pending {
                    id,
                    request: pending,
                }
            }
            Err(Refusal::Untrusted(error)) => {
                tracing::warn!(
                    error = error.code().as_str(),
                    reason = error.reason(),
                    "authorization request refused (shown as a page)"
                );
                AuthorizeOutcome::Invalid(error)
            }
            Err(Refusal::Redirect {
                to,
                in_fragment,
                state,
                error,
            }) => {
                tracing::warn!(
                    error = error.code().as_str(),
                    reason = error.reason(),
                    "authorization request refused (redirected)"
                );
                AuthorizeOutcome::Redirect(error_redirect(
                    &to,
                    in_fragment,
                    &error,
                    state.as_deref(),
                    &settings.issuer,
                ))
            }
        }
    }

    /// The pending authorization request behind `id`, if it is still waiting: for drawing the
    /// consent page (again, after a wrong password). A read; nothing is spent.
    ///
    /// # Errors
    ///
    /// `server_error`/`temporarily_unavailable` when the store fails.
    pub async fn authorization_request(
        &self,
        id: &AuthorizationRequestId,
    ) -> Result<Option<PendingAuthorization>, OAuthError> {
        let Some(code) = &self.inner.code else {
            return Ok(None);
        };
        let now = self.inner.clock.now();
        Ok(code
            .codes
            .find_pending(&TokenHash::of(id.secret()), now)
            .await?)
    }

    /// The user approved: answers the redirect with a code (`?code=…&state=…&iss=…`) or, for
    /// the implicit grant, an access token in the fragment. `scope` narrows what was asked
    /// (`None` grants it all). The request is spent.
    ///
    /// # Errors
    ///
    /// To show as a page, never to redirect: `invalid_request` when the request is unknown,
    /// expired or already decided; `invalid_scope` when `scope` exceeds what was asked.
    pub async fn approve(
        &self,
        id: &AuthorizationRequestId,
        user: impl Into<ResourceOwner>,
        scope: Option<Scope>,
    ) -> Result<Redirect, OAuthError> {
        let user = user.into();
        let inner = &*self.inner;
        let now = inner.clock.now();
        let (settings, code) = self.endpoint()?;
        let hash = TokenHash::of(id.secret());
        // Check first and spend after, so that a refused approval leaves the request waiting.
        let request = code
            .codes
            .find_pending(&hash, now)
            .await?
            .ok_or_else(pending_unknown)?;
        let scope = match scope {
            None => request.scope.clone(),
            Some(scope) if scope.is_subset_of(&request.scope) => scope,
            Some(_) => {
                return Err(OAuthError::invalid_scope(
                    "the approved scope exceeds the scope the client asked for",
                )
                .with_reason("approved_scope_too_wide"))
            }
        };
        // The client may have changed while the user was signing in.
        let client = self.still_allowed(&request).await?;
        let request = code
            .codes
            .take_pending(&hash, now)
            .await?
            .ok_or_else(pending_unknown)?;

        // The request is spent: from here a failure goes back to the client as a redirect.
        let (to, in_fragment) = (
            request.redirect_uri.clone(),
            request.response_type == ResponseType::Token,
        );
        let state = request.state.clone();
        let issued = match (request.response_type, &inner.implicit) {
            (ResponseType::Token, Some(implicit)) => {
                let ctx = Context {
                    tokens: &*inner.tokens,
                    settings: &inner.settings,
                    now,
                };
                implicit
                    .issue(&ctx, &client, request, user, scope, &settings.issuer)
                    .await
            }
            (ResponseType::Token, None) => Err(OAuthError::unauthorized_client(
                "the implicit grant is not enabled",
            )),
            _ => {
                code.issue(request, user, scope, &settings.issuer, now)
                    .await
            }
        };
        match issued {
            Ok(redirect) => {
                tracing::info!(client_id = %client.id, "authorization approved");
                Ok(redirect)
            }
            Err(error) => {
                tracing::warn!(client_id = %client.id, error = error.code().as_str(), reason = error.reason(), "approved authorization failed");
                Ok(error_redirect(
                    &to,
                    in_fragment,
                    &error,
                    state.as_deref(),
                    &settings.issuer,
                ))
            }
        }
    }

    /// The client of a pending request, if it still exists, may still use the grant, and still
    /// has the redirect URI registered.
    async fn still_allowed(&self, request: &PendingAuthorization) -> Result<Client, OAuthError> {
        let changed = |reason| {
            OAuthError::invalid_request("the client's registration changed; start again")
                .with_reason(reason)
        };
        let client = self
            .inner
            .clients
            .find_client(&request.client_id)
            .await?
            .ok_or_else(|| changed("client_gone"))?;
        let grant = match request.response_type {
            ResponseType::Token => GrantType::Implicit,
            _ => GrantType::AuthorizationCode,
        };
        if !client.allows(grant) {
            return Err(changed("grant_withdrawn"));
        }
        if !client.redirect_uris.contains(&request.redirect_uri) {
            return Err(changed("redirect_uri_withdrawn"));
        }
        Ok(client)
    }

    fn endpoint(&self) -> Result<(&AuthorizeSettings, &AuthorizationCodeGrant), OAuthError> {
        match (&self.inner.authorize, &self.inner.code) {
            (Some(settings), Some(code)) => Ok((settings, code)),
            _ => Err(OAuthError::invalid_request(
                "this server has no authorization endpoint enabled",
            )),
        }
    }

    /// The user declined: answers the redirect with `error=access_denied`, `state` and `iss`
    /// (RFC 6749 §4.1.2.1). The request is spent.
    ///
    /// # Errors
    ///
    /// `invalid_request`, to show as a page, when the request is unknown, expired or already
    /// decided, or when the client's registration changed (it no longer has the redirect URI,
    /// or the grant): the request then stays waiting, and nothing is redirected.
    pub async fn deny(&self, id: &AuthorizationRequestId) -> Result<Redirect, OAuthError> {
        let now = self.inner.clock.now();
        let (_, code) = self.endpoint()?;
        // As for an approval: the redirect goes only to a URI the client still has registered.
        let request = code
            .codes
            .find_pending(&TokenHash::of(id.secret()), now)
            .await?
            .ok_or_else(pending_unknown)?;
        self.still_allowed(&request).await?;
        let (request, settings, _) = self.take_pending(id, now).await?;
        tracing::info!(client_id = %request.client_id, "authorization denied");
        let error = OAuthError::access_denied("the resource owner denied the request");
        Ok(error_redirect(
            &request.redirect_uri,
            request.response_type == ResponseType::Token,
            &error,
            request.state.as_deref(),
            &settings.issuer,
        ))
    }

    async fn take_pending(
        &self,
        id: &AuthorizationRequestId,
        now: OffsetDateTime,
    ) -> Result<
        (
            PendingAuthorization,
            &AuthorizeSettings,
            &AuthorizationCodeGrant,
        ),
        OAuthError,
    > {
        let (settings, code) = self.endpoint()?;
        let request = code
            .codes
            .take_pending(&TokenHash::of(id.secret()), now)
            .await?
            .ok_or_else(pending_unknown)?;
        Ok((request, settings, code))
    }

    /// Checks a user's password for a login page, through the same [`UserVerifier`] and
    /// brute-force limits as the password grant: per username, and per `caller` (the address
    /// the request came from, as the host knows it: behind a reverse proxy, the client's
    /// address the proxy reports) so that one password sprayed over many usernames is limited
    /// too. Failures here do not count against `client`: a login page's client is only named,
    /// not authenticated, so counting them would let anyone lock that client's password grant
    /// out.
    ///
    /// Answers the signed-in user, with the username they gave, ready for
    /// [`approve`](Self::approve).
    ///
    /// # Errors
    ///
    /// `invalid_grant` for wrong credentials or too many failures (the same words whether the
    /// user exists or not; a refusal carries [`retry_after`](OAuthError::retry_after)),
    /// `temporarily_unavailable` when too many checks of the same username or address are in
    /// flight for too long, `server_error` when no verifier is configured or a hook fails.
    pub async fn verify_user(
        &self,
        client: &ClientId,
        caller: IpAddr,
        username: &Username,
        password: Password,
    ) -> Result<ResourceOwner, OAuthError> {
        self.verify_user_with_otp(client, caller, username, password, None)
            .await
    }

    /// [`verify_user`](Self::verify_user) for users who may have a second factor: when the
    /// [`UserVerifier`] answers
    /// [`SecondFactorRequired`](crate::UserVerdict::SecondFactorRequired), `otp` is checked
    /// with [`UserVerifier::verify_otp`] (a code is accepted once, and never after a later one,
    /// RFC 6238 §5.2).
    ///
    /// # Errors
    ///
    /// As `verify_user`; and `invalid_grant` with reason `otp_required` when the password is
    /// right but no `otp` was given (show the one-time code field), or `otp_refused` /
    /// `otp_reused` for a wrong or spent code (counted like a wrong password).
    pub async fn verify_user_with_otp(
        &self,
        client: &ClientId,
        caller: IpAddr,
        username: &Username,
        password: Password,
        otp: Option<OneTimeCode>,
    ) -> Result<ResourceOwner, OAuthError> {
        let Some(users) = &self.inner.users else {
            return Err(OAuthError::server_error("no user verifier is configured")
                .with_reason("no_user_verifier"));
        };
        let asker = Asker {
            client,
            authenticated: false,
            caller: Some(caller),
        };
        match users.authenticate(asker, username, password).await? {
            SignIn::Complete(user) => Ok(user),
            SignIn::SecondFactorRequired(user) => match otp {
                Some(otp) => {
                    let now = self.inner.clock.now();
                    users.check_otp(asker, &user.id, otp, now).await?;
                    Ok(user)
                }
                None => Err(OAuthError::invalid_grant(
                    "this account needs a one-time code from its authenticator app",
                )
                .with_reason("otp_required")),
            },
        }
    }

    /// The device authorization endpoint (RFC 8628 §3.1): the client authenticates as at the
    /// token endpoint (a public client sends `client_id`) and may send `scope`. Answers the §3.2
    /// response (`device_code`, `user_code` as `XXXX-XXXX`, `verification_uri`,
    /// `verification_uri_complete`, `expires_in`, `interval`) or the RFC 6749 §5.2 error
    /// response, both with `Cache-Control: no-store`.
    pub async fn device_authorization(&self, request: TokenRequest) -> Response {
        let now = self.inner.clock.now();
        let mut trace = Trace::default();
        let result = match (
            &self.inner.device,
            self.client_request(&request, &mut trace).await,
        ) {
            (None, _) => Err(OAuthError::unauthorized_client(
                "the device authorization grant is not enabled on this server",
            )
            .with_reason("device_grant_disabled")),
            (Some(device), Ok((client, params))) => device.authorize(&client, &params, now).await,
            (Some(_), Err(e)) => Err(e),
        };
        result.unwrap_or_else(|error| {
            tracing::warn!(
                client_id = trace.client_id.as_ref().map(ClientId::as_str),
                error = error.code().as_str(),
                reason = error.reason(),
                "device authorization refused"
            );
            error.into_token_response()
        })
    }

    fn device(&self) -> Result<&DeviceCodeGrant, OAuthError> {
        self.inner.device.as_ref().ok_or_else(|| {
            OAuthError::invalid_request("the device authorization grant is not enabled")
                .with_reason("device_grant_disabled")
        })
    }

    /// The pending device request behind a user code typed on the verification page (RFC 8628
    /// §3.3), for the confirmation page that shows which client asks for which scope before
    /// the person signs in and decides (§5.4). Case, spaces and dashes in the code do not
    /// matter.
    ///
    /// `caller` is the address the page's request came from: wrong codes count against it, a
    /// lookup holding a place until it is answered, so concurrent guesses are bounded too
    /// (§5.1). Put the answer's [`confirmation`](DeviceRequest::confirmation) in the page's
    /// form: [`approve_device`](Self::approve_device) and [`deny_device`](Self::deny_device)
    /// take it back, so that a decision counts only for the request that was shown.
    ///
    /// # Errors
    ///
    /// `invalid_request` for an unknown, expired or already decided code, or too many wrong
    /// codes (with `retry_after`); `server_error`/`temporarily_unavailable` when a store fails.
    pub async fn device_request(
        &self,
        user_code: &UserCode,
        caller: IpAddr,
    ) -> Result<DeviceRequest, OAuthError> {
        self.device()?
            .find(user_code, caller, self.inner.clock.now())
            .await
    }

    /// `user` approves the device request behind `user_code` that the confirmation page showed
    /// (`confirmation`, from [`device_request`](Self::device_request)), for `scope` (a part of
    /// what the device asked for; `None` grants it all). The device's next poll gets its
    /// tokens.
    ///
    /// # Errors
    ///
    /// As [`device_request`](Self::device_request); `invalid_request` (reason
    /// `device_confirmation_mismatch`) when the code now names another request than the one
    /// shown; `invalid_scope` when `scope` is not a part of what was asked; `invalid_request`
    /// when the client may no longer use the grant.
    pub async fn approve_device(
        &self,
        user_code: &UserCode,
        confirmation: &DeviceConfirmation,
        caller: IpAddr,
        user: impl Into<ResourceOwner>,
        scope: Option<Scope>,
    ) -> Result<(), OAuthError> {
        let user = user.into();
        let device = self.device()?;
        let now = self.inner.clock.now();
        let request = device
            .find_confirmed(user_code, confirmation, caller, now)
            .await?;
        let scope = approved_scope(&request.scope, scope)?;
        let client = self.inner.clients.find_client(&request.client_id).await?;
        if !client.is_some_and(|c| c.allows(GrantType::DeviceCode)) {
            return Err(OAuthError::invalid_request(
                "the client's registration changed; start again",
            )
            .with_reason("grant_withdrawn"));
        }
        device
            .decide(
                user_code,
                DeviceDecision::Approve {
                    user_id: user.id,
                    username: user.username,
                    scope,
                },
                now,
            )
            .await?;
        tracing::info!(client_id = %request.client_id, "device authorization approved");
        Ok(())
    }

    /// The person denies the device request behind `user_code` that the confirmation page
    /// showed: the device's next poll gets `access_denied`.
    ///
    /// # Errors
    ///
    /// As [`approve_device`](Self::approve_device).
    pub async fn deny_device(
        &self,
        user_code: &UserCode,
        confirmation: &DeviceConfirmation,
        caller: IpAddr,
    ) -> Result<(), OAuthError> {
        let device = self.device()?;
        let now = self.inner.clock.now();
        let request = device
            .find_confirmed(user_code, confirmation, caller, now)
            .await?;
        device.decide(user_code, DeviceDecision::Deny, now).await?;
        tracing::info!(client_id = %request.client_id, "device authorization denied");
        Ok(())
    }

    /// Authenticates the client of a revocation or introspection request, as at the token
    /// endpoint.
    async fn client_request(
        &self,
        request: &TokenRequest,
        trace: &mut Trace,
    ) -> Result<(Client, crate::request::Params), OAuthError> {
        let params = token_params(request, false)?;
        let creds = credentials(request.authorization.as_deref(), &params)?;
        trace.client_id = Some(creds.client_id.clone());
        trace.auth_method = Some(creds.method.as_str());
        let client = authenticate(&*self.inner.clients, creds).await?;
        Ok((client, params))
    }

    /// The revocation endpoint (RFC 7009): the client authenticates as at the token endpoint
    /// and gives a token back. Answers 200 with an empty body for a revoked or unknown token,
    /// and the RFC 6749 §5.2 error response otherwise (`unauthorized_client` for a token issued
    /// to another client, which stays valid).
    pub async fn revoke(&self, request: TokenRequest) -> Response {
        let now = self.inner.clock.now();
        let mut trace = Trace::default();
        let result = match self.client_request(&request, &mut trace).await {
            Ok((client, params)) => {
                crate::revocation::revoke(&*self.inner.tokens, &client, &params, now).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => Response::new(200).no_store(),
            Err(error) => {
                tracing::warn!(
                    client_id = trace.client_id.as_ref().map(ClientId::as_str),
                    error = error.code().as_str(),
                    reason = error.reason(),
                    "revocation refused"
                );
                error.into_token_response()
            }
        }
    }

    /// The introspection endpoint (RFC 7662): a confidential client asks whether a token is
    /// live. Answers `active: true` with the token's scope, client, subject, username, type,
    /// issue and expiry times, or exactly `{"active":false}`.
    ///
    /// Who sees what (RFC 7662 §4): a client declared with
    /// [`resource_servers`](AuthorizationServerBuilder::resource_servers) sees every access
    /// token; any other client only tokens issued to itself; a refresh token is shown only to
    /// its own client. Everything else is answered as inactive, so a caller cannot scan for
    /// tokens it has no business with.
    pub async fn introspect(&self, request: TokenRequest) -> Response {
        let now = self.inner.clock.now();
        let mut trace = Trace::default();
        let result = match self.client_request(&request, &mut trace).await {
            // RFC 7662 §2.1: the endpoint "MUST require some form of authorization"; a public
            // client proves nothing.
            Ok((client, _)) if client.is_public() => Err(OAuthError::invalid_client(
                "introspection needs an authenticated confidential client",
            )
            .with_reason("public_introspection")),
            Ok((client, params)) => {
                let caller = crate::introspection::Caller {
                    client: &client.id,
                    resource_server: self.inner.resource_servers.contains(&client.id),
                };
                crate::introspection::introspect(
                    &*self.inner.tokens,
                    self.inner.issuer.as_deref(),
                    caller,
                    &params,
                    now,
                )
                .await
            }
            Err(e) => Err(e),
        };
        result.unwrap_or_else(|error| {
            tracing::warn!(
                client_id = trace.client_id.as_ref().map(ClientId::as_str),
                error = error.code().as_str(),
                reason = error.reason(),
                "introspection refused"
            );
            error.into_token_response()
        })
    }

    /// The authorization server metadata document (RFC 8414 §3), for
    /// `/.well-known/oauth-authorization-server`. Derived from the builder's settings. Answers
    /// 404 when no issuer is set.
    pub fn metadata(&self) -> Response {
        let inner = &*self.inner;
        let Some(issuer) = inner.issuer.as_deref() else {
            return Response::new(404);
        };
        let paths = &inner.paths;
        let mut grants = Vec::new();
        if inner.code.is_some() {
            grants.push(GrantType::AuthorizationCode.as_str());
        }
        if inner.implicit.is_some() {
            grants.push(GrantType::Implicit.as_str());
        }
        if inner.password.is_some() {
            grants.push(GrantType::Password.as_str());
        }
        if inner.client_credentials.is_some() {
            grants.push(GrantType::ClientCredentials.as_str());
        }
        if inner.refresh.is_some() {
            grants.push(GrantType::RefreshToken.as_str());
        }
        if inner.device.is_some() {
            grants.push(GrantType::DeviceCode.as_str());
        }
        if inner.mfa_otp.is_some() {
            grants.push(GrantType::MfaOtp.as_str());
        }
        let mut response_types = Vec::new();
        if inner.code.is_some() {
            response_types.push("code");
        }
        if inner.implicit.is_some() {
            response_types.push("token");
        }
        let endpoint_on = inner.authorize.is_some();
        let metadata = Metadata {
            issuer: issuer.to_owned(),
            authorization_endpoint: endpoint_on.then(|| endpoint(issuer, &paths.authorization)),
            device_authorization_endpoint: inner
                .device
                .is_some()
                .then(|| endpoint(issuer, &paths.device_authorization)),
            token_endpoint: endpoint(issuer, &paths.token),
            revocation_endpoint: endpoint(issuer, &paths.revocation),
            revocation_endpoint_auth_methods_supported: &CLIENT_AUTH_METHODS,
            introspection_endpoint: endpoint(issuer, &paths.introspection),
            introspection_endpoint_auth_methods_supported: &INTROSPECTION_AUTH_METHODS,
            token_endpoint_auth_methods_supported: &CLIENT_AUTH_METHODS,
            grant_types_supported: grants,
            response_types_supported: response_types,
            code_challenge_methods_supported: endpoint_on.then(|| {
                if inner.allow_plain_pkce {
                    vec!["S256", "plain"]
                } else {
                    vec!["S256"]
                }
            }),
            scopes_supported: inner
                .scopes_supported
                .as_ref()
                .map(|s| s.iter().map(str::to_owned).collect()),
            authorization_response_iss_parameter_supported: endpoint_on.then_some(true),
        };
        Response::json(200, &metadata)
    }

    /// A validator for resource servers that shares this server's token store and clock.
    pub fn bearer_validator(&self) -> BearerValidator {
        BearerValidator::new(self.inner.tokens.clone())
            .with_clock(self.inner.clock.clone())
            .allow_query_parameter(self.inner.query_access_tokens)
    }
}
