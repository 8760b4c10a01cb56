//! [`AuthorizationServerBuilder`]: the settings every endpoint shares.
//!
//! Each grant's own settings live with the grant: its module (`src/grant/…`) adds its
//! `enable_…` and tuning methods to the builder in an `impl AuthorizationServerBuilder` block,
//! and keeps what they set in a setup of its own type ([`Setups`]), which it turns into its
//! handler when the server is built. So adding a grant adds no field here.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::client::AccessTokenFormat;
use crate::client_auth::ClientSecretLimits;
use crate::clock::{Clock, SystemClock};
use crate::jose::TokenSigner;
use crate::metadata::EndpointPaths;
use crate::resource::Resource;
use crate::scope::Scope;
use crate::store::{
    AttemptLimiter, ClientStore, MfaStore, PendingLimits, TokenStore, UserVerifier,
};
use crate::types::ClientId;
use crate::user_auth::LoginLimits;

/// Why [`AuthorizationServerBuilder::build`] refused a configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The issuer is not an `http`/`https` URL without query or fragment (RFC 8414 §2), or its
    /// path has a segment starting with `:` or `*` (which routers read as a capture or a
    /// wildcard).
    #[error(
        "invalid issuer {0:?}: it must be an http(s) URL with no query or fragment, and no path \
         segment starting with ':' or '*'"
    )]
    InvalidIssuer(String),
    /// A token lifetime is zero.
    #[error("token lifetimes must be at least one second")]
    ZeroLifetime,
    /// No grant type is enabled, so the token endpoint could issue nothing.
    #[error("no grant type is enabled")]
    NoGrantEnabled,
    /// The refresh token grant is the only one enabled: refresh tokens come only with the
    /// tokens of another grant, so it could never be used.
    #[error(
        "the refresh token grant alone can never be used: enable a grant that issues refresh \
         tokens too (authorization code, password or device code)"
    )]
    RefreshGrantAlone,
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
    /// JWT access tokens need a signer, an issuer (`iss`) and an audience (`aud`).
    #[error("JWT access tokens need a token_signer, an issuer and a jwt_audience; missing: {0}")]
    JwtNeeds(&'static str),
    /// An endpoint path of [`EndpointPaths`] does not start with `/`, holds a character outside
    /// RFC 3986's path characters (a space, `?`, `#`, `{`, non-ASCII…), has a segment starting
    /// with `:` or `*` (which routers read as a capture or a wildcard), is the metadata
    /// document's path, or is the path of another endpoint too.
    #[error(
        "invalid endpoint path {0:?}: each must start with '/', hold only RFC 3986 path \
         characters, have no segment starting with ':' or '*', and differ from the others and \
         from /.well-known/oauth-authorization-server"
    )]
    InvalidEndpointPath(String),
}

/// Each enabled grant's own settings, by their type: a grant's module keeps one value of its
/// setup type here, made on first use from `Default`.
#[derive(Default)]
pub(crate) struct Setups(HashMap<TypeId, Box<dyn Any + Send + Sync>>);

impl Setups {
    /// The setup of type `T`, made from `Default` if there is none yet.
    pub(crate) fn get_mut<T: Default + Send + Sync + 'static>(&mut self) -> &mut T {
        let slot = self
            .0
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()));
        if !slot.is::<T>() {
            *slot = Box::new(T::default());
        }
        // ok: keyed by its own TypeId, and checked just above.
        slot.downcast_mut::<T>()
            .unwrap_or_else(|| unreachable!("the setup is a T")) // ok: see above
    }

    /// A copy of the setup of type `T`, or its default if no builder method made one.
    pub(crate) fn read<T: Default + Clone + Send + Sync + 'static>(&self) -> T {
        self.get::<T>().cloned().unwrap_or_default()
    }

    /// The setup of type `T`, if a builder method made one.
    pub(crate) fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|setup| setup.downcast_ref::<T>())
    }
}

/// Builds an [`AuthorizationServer`](crate::AuthorizationServer). Start with
/// [`AuthorizationServer::builder`](crate::AuthorizationServer::builder), enable at least one
/// grant, and [`build`](Self::build).
///
/// # Servers that share a token store
///
/// Several servers behind one address that share a [`TokenStore`] (Redis, a database) must
/// share everything else that holds state too, or each server keeps its own view:
/// [`attempt_limiter`](Self::attempt_limiter) (else each server allows its own count of
/// password guesses; client secrets are counted per process unless
/// [`client_secret_limiter`](Self::client_secret_limiter) says otherwise), [`mfa_store`](Self::mfa_store) (else an `mfa_token` issued by one server
/// is unknown to the others, and a one-time code used on one is accepted again on another), and
/// the code and device stores of those grants. The defaults are per process.
#[must_use]
pub struct AuthorizationServerBuilder {
    pub(crate) clients: Arc<dyn ClientStore>,
    pub(crate) tokens: Arc<dyn TokenStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) verifier: Option<Arc<dyn UserVerifier>>,
    pub(crate) access_ttl: Duration,
    pub(crate) issuer: Option<String>,
    pub(crate) limiter: Option<Arc<dyn AttemptLimiter>>,
    pub(crate) login_limits: Option<LoginLimits>,
    pub(crate) client_secret_limits: Option<ClientSecretLimits>,
    pub(crate) client_secret_limiter: Option<Arc<dyn AttemptLimiter>>,
    pub(crate) json_token_requests: bool,
    pub(crate) query_access_tokens: bool,
    pub(crate) paths: EndpointPaths,
    pub(crate) scopes_supported: Option<Scope>,
    pub(crate) mfa: Option<Arc<dyn MfaStore>>,
    pub(crate) pending_limits: PendingLimits,
    pub(crate) resource_servers: HashSet<ClientId>,
    pub(crate) signer: Option<Arc<dyn TokenSigner>>,
    pub(crate) access_token_format: AccessTokenFormat,
    pub(crate) jwt_audience: Option<String>,
    pub(crate) resources: Vec<Resource>,
    pub(crate) setups: Setups,
}

impl AuthorizationServerBuilder {
    /// A builder over the two stores every server needs, with every default.
    pub(crate) fn new(clients: Arc<dyn ClientStore>, tokens: Arc<dyn TokenStore>) -> Self {
        Self {
            clients,
            tokens,
            clock: Arc::new(SystemClock),
            verifier: None,
            access_ttl: Duration::from_secs(3600),
            issuer: None,
            limiter: None,
            login_limits: Some(LoginLimits::default()),
            client_secret_limits: Some(ClientSecretLimits::default()),
            client_secret_limiter: None,
            json_token_requests: false,
            query_access_tokens: false,
            paths: EndpointPaths::default(),
            scopes_supported: None,
            mfa: None,
            pending_limits: PendingLimits::default(),
            resource_servers: HashSet::new(),
            signer: None,
            access_token_format: AccessTokenFormat::Opaque,
            jwt_audience: None,
            resources: Vec::new(),
            setups: Setups::default(),
        }
    }

    /// The keys the server signs with ([`LocalKeys`](crate::LocalKeys) with the `jwt` feature,
    /// or a KMS of your own), published as its JWK Set
    /// ([`jwks`](crate::AuthorizationServer::jwks)) and named by `jwks_uri` in the metadata.
    pub fn token_signer(mut self, signer: Arc<dyn TokenSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The format of access tokens for clients that name none
    /// ([`Client::with_access_token_format`](crate::Client::with_access_token_format)).
    /// Default: [`AccessTokenFormat::Opaque`]. JWTs need a
    /// [`token_signer`](Self::token_signer), an [`issuer`](Self::issuer) and a
    /// [`jwt_audience`](Self::jwt_audience).
    pub fn access_token_format(mut self, format: AccessTokenFormat) -> Self {
        self.access_token_format = format;
        self
    }

    /// The audience (`aud`) of JWT access tokens (RFC 9068 §2.2: required; §3: a token asked
    /// for without a `resource` gets a default one): the identifier of the resource server that
    /// accepts them, such as `https://api.example.com`.
    pub fn jwt_audience(mut self, audience: impl Into<String>) -> Self {
        self.jwt_audience = Some(audience.into());
        self
    }

    /// The protected resources (RFC 8707) clients may name in `resource` at the authorization
    /// and token endpoints, unless a client has a list of its own
    /// ([`Client::with_resources`](crate::Client::with_resources)). A token asked for with
    /// `resource` has those resources as its audience (`aud` in a JWT and in introspection),
    /// and a [`BearerValidator::with_audience`](crate::BearerValidator::with_audience) of
    /// another resource refuses it. Default: none, so `resource` is `invalid_target` for
    /// clients without a list.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use grantor::{AuthorizationServer, MemoryClientStore, MemoryTokenStore, Resource};
    ///
    /// let server = AuthorizationServer::builder(
    ///     Arc::new(MemoryClientStore::new()),
    ///     Arc::new(MemoryTokenStore::new()),
    /// )
    /// .enable_client_credentials_grant()
    /// .resources([
    ///     "https://api.example.com".parse::<Resource>().unwrap(),
    ///     "https://billing.example.com".parse().unwrap(),
    /// ])
    /// .build()
    /// .unwrap();
    /// ```
    pub fn resources(mut self, resources: impl IntoIterator<Item = Resource>) -> Self {
        self.resources.extend(resources);
        self
    }

    /// The setup of a grant's own settings, made from `Default` on first use.
    pub(crate) fn setup<T: Default + Send + Sync + 'static>(&mut self) -> &mut T {
        self.setups.get_mut::<T>()
    }

    /// Bounds on the requests anyone can make without credentials: pending authorization
    /// requests (the authorization endpoint) and device authorization requests, each counted
    /// per client and in all while they wait. Past a bound the endpoint answers `503
    /// temporarily_unavailable` with `Retry-After` instead of storing more. Default:
    /// [`PendingLimits::default`] (1,000 per client, 10,000 in all, for each kind).
    pub fn pending_request_limits(mut self, limits: PendingLimits) -> Self {
        self.pending_limits = limits;
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

    /// Where `mfa_token`s and used one-time codes are kept (default: a
    /// [`MemoryMfaStore`](crate::MemoryMfaStore), per process). Servers that share a token
    /// store must share this too.
    pub fn mfa_store(mut self, store: Arc<dyn MfaStore>) -> Self {
        self.mfa = Some(store);
        self
    }

    /// Where the host serves each endpoint, for the metadata document (RFC 8414) and the axum
    /// router. Defaults to [`EndpointPaths::default`]. Each path starts with `/`, and no two
    /// are the same ([`build`](Self::build) checks).
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

    /// Sets the user verifier behind
    /// [`AuthorizationServer::verify_user`](crate::AuthorizationServer::verify_user), for a
    /// login page in front of the authorization endpoint, without enabling the password grant.
    /// (Enabling the password grant sets it too.)
    pub fn user_verifier(mut self, verifier: Arc<dyn UserVerifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// How long access tokens live. Default: one hour.
    pub fn access_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.access_ttl = lifetime;
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

    /// Replaces the attempt limiter (default: a
    /// [`MemoryAttemptLimiter`](crate::MemoryAttemptLimiter), per process). Servers that share
    /// a token store must share this too.
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

    /// Sets the brute-force limits on client secrets (default: [`ClientSecretLimits::default`]),
    /// counted by the [`client_secret_limiter`](Self::client_secret_limiter).
    pub fn client_secret_limits(mut self, limits: ClientSecretLimits) -> Self {
        self.client_secret_limits = Some(limits);
        self
    }

    /// Replaces the limiter that counts wrong client secrets (default: a
    /// [`MemoryAttemptLimiter`](crate::MemoryAttemptLimiter) of their own, per process).
    ///
    /// Every request that presents a client secret holds a place on it and gives it back, so a
    /// shared limiter (Redis, SQL) costs two store round trips on every such request, where the
    /// default costs none. With the default, several servers behind one address each allow
    /// their own count: an attacker spreading guesses over `n` servers gets `n` times the
    /// allowance. Share the [`attempt_limiter`](Self::attempt_limiter) here when that matters
    /// more than the round trips.
    pub fn client_secret_limiter(mut self, limiter: Arc<dyn AttemptLimiter>) -> Self {
        self.client_secret_limiter = Some(limiter);
        self
    }

    /// Stops counting wrong client secrets. RFC 6749 §2.3.1 says an endpoint that takes them
    /// MUST be protected against brute force: do this only when something in front of grantor
    /// already does it, or when every client secret is a generated one too long to guess.
    pub fn disable_client_secret_limits(mut self) -> Self {
        self.client_secret_limits = None;
        self
    }

    /// Also accepts token requests with an `application/json` body whose members are the usual
    /// string parameters. Not part of RFC 6749; off by default.
    pub fn accept_json_token_requests(mut self, accept: bool) -> Self {
        self.json_token_requests = accept;
        self
    }

    /// Lets [`AuthorizationServer::bearer_validator`](crate::AuthorizationServer::bearer_validator)
    /// accept the `access_token` query parameter (RFC 6750 §2.3). Off by default.
    pub fn allow_query_access_tokens(mut self, allow: bool) -> Self {
        self.query_access_tokens = allow;
        self
    }
}
