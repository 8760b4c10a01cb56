//! Bearer token validation for resource servers (RFC 6750).
//!
//! A resource server hands a [`ResourceRequest`] and the scope it needs to a [`BearerValidator`]
//! and gets back either the [`AccessGrant`] the token stands for or a [`BearerError`] that
//! already knows its status and `WWW-Authenticate` challenge:
//!
//! | situation | answer |
//! |---|---|
//! | no token at all (or another auth scheme, or a query token when those are off) | 401, `WWW-Authenticate: Bearer` with no error (§3) |
//! | malformed request, or more than one token | 400 `invalid_request` |
//! | unknown, expired, revoked token, or a refresh token | 401 `invalid_token` |
//! | valid token without the needed scope | 403 `insufficient_scope`, with `scope="…"` |
//!
//! Tokens are accepted from the `Authorization: Bearer` header (§2.1), a form-encoded body
//! (§2.2, never with GET), and — only when enabled — the `access_token` query parameter (§2.3),
//! which RFC 6750 and RFC 9700 §4.3.2 discourage because URLs end up in logs and `Referer`s.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::clock::{Clock, SystemClock};
use crate::error::{ErrorCode, OAuthError, StoreError};
use crate::reason::Reason;
use crate::request::{form_decode, raw_pairs, BodyType, Method};
use crate::response::Response;
use crate::scope::Scope;
use crate::store::{TokenKind, TokenLookup, TokenStore};
use crate::token::TokenHash;
use crate::types::{ClientId, FamilyId, UserId};

/// A request to a protected resource, as read off the wire.
///
/// ```
/// use grantor::ResourceRequest;
///
/// let request = ResourceRequest::new()
///     .with_method("GET")
///     .with_authorization("Bearer mF_9.B5f-4.1JqM");
/// ```
#[derive(Clone, Default)]
pub struct ResourceRequest {
    method: Option<Method>,
    authorization: Option<Vec<u8>>,
    query: Option<Vec<u8>>,
    content_type: Option<BodyType>,
    body: Vec<u8>,
}

impl ResourceRequest {
    /// A request with nothing in it yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the HTTP method (a body token is refused with `GET`, RFC 6750 §2.2).
    pub fn with_method(mut self, method: impl AsRef<str>) -> Self {
        self.method = Some(Method::parse(method.as_ref()));
        self
    }

    /// Sets the `Authorization` header's value.
    pub fn with_authorization(mut self, value: impl AsRef<[u8]>) -> Self {
        self.authorization = Some(value.as_ref().to_vec());
        self
    }

    /// Sets the `Authorization` header's value, kept as it is (for the `http` conversions).
    #[cfg(feature = "http")]
    pub(crate) fn with_authorization_bytes(mut self, value: Vec<u8>) -> Self {
        self.authorization = Some(value);
        self
    }

    /// Sets the raw query string (without the `?`).
    pub fn with_query(mut self, query: impl AsRef<[u8]>) -> Self {
        self.query = Some(query.as_ref().to_vec());
        self
    }

    /// Sets the `Content-Type` header's value.
    pub fn with_content_type(mut self, value: impl AsRef<[u8]>) -> Self {
        self.content_type = Some(BodyType::of(value.as_ref()));
        self
    }

    /// Sets the body. Only a form-encoded body is searched for `access_token`.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

impl ResourceRequest {
    /// What the request carries, borrowed, as the validator reads it.
    fn presented(&self) -> Presented<'_> {
        Presented {
            method: self.method,
            authorization: self.authorization.as_deref().map(Cow::Borrowed),
            query: self.query.as_deref(),
            content_type: self.content_type,
            body: &self.body,
        }
    }
}

/// What a resource needs of a token's scope: a parsed [`Scope`], or a scope written as text (a
/// route's `ScopeRequirement`, checked when compiled), read without parsing it into a `Scope`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Needed<'a> {
    Scope(&'a Scope),
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    Text(&'a str),
}

impl Needed<'_> {
    /// Whether `granted` holds every token needed.
    fn granted_by(self, granted: &Scope) -> bool {
        match self {
            Needed::Scope(needed) => needed.is_subset_of(granted),
            Needed::Text(needed) => needed
                .split(' ')
                .filter(|token| !token.is_empty())
                .all(|token| granted.contains(token)),
        }
    }

    /// What is needed, as a scope (for a refusal's challenge).
    fn to_scope(self) -> Scope {
        match self {
            Needed::Scope(needed) => needed.clone(),
            Needed::Text(needed) => Scope::parse(needed).unwrap_or_default(),
        }
    }
}

/// What a request to a protected resource carries that the validator reads, borrowed from
/// wherever the request is kept (a [`ResourceRequest`], or an `http::Request`).
pub(crate) struct Presented<'r> {
    pub(crate) method: Option<Method>,
    /// `Authorization`'s value; owned only when repeated headers had to be joined.
    pub(crate) authorization: Option<Cow<'r, [u8]>>,
    pub(crate) query: Option<&'r [u8]>,
    pub(crate) content_type: Option<BodyType>,
    pub(crate) body: &'r [u8],
}

impl fmt::Debug for ResourceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceRequest")
            .field("method", &self.method)
            .field("has_authorization", &self.authorization.is_some())
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// What a valid access token stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessGrant {
    /// The client the token was issued to.
    pub client_id: ClientId,
    /// The resource owner, if the grant has one.
    pub user_id: Option<UserId>,
    /// The scope granted.
    pub scope: Scope,
    /// When the token expires.
    pub expires_at: OffsetDateTime,
    /// The token's family; `None` for a token that stands alone (the client credentials
    /// grant's, which no other token shares).
    pub family_id: Option<FamilyId>,
    /// The resources the token is for (RFC 8707); empty for a token for no resource in
    /// particular.
    pub audience: Vec<String>,
    /// Where the request carried the token.
    pub presented_in: TokenLocation,
}

/// Where a resource request carried its access token (RFC 6750 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenLocation {
    /// The `Authorization: Bearer` header (§2.1).
    Header,
    /// A form-encoded body (§2.2).
    Body,
    /// The `access_token` query parameter (§2.3). RFC 6750 §2.3: a successful response "SHOULD
    /// contain a Cache-Control header with the "private" option".
    Query,
}

/// A refused resource request: an RFC 6750 error, or none when no token was sent.
#[derive(Clone, Debug)]
pub struct BearerError {
    error: Option<OAuthError>,
    required_scope: Option<Scope>,
    /// What every challenge of its validator names.
    named: Arc<Named>,
}

/// What a validator's challenges name besides the error: a realm (RFC 6750 §3), and where the
/// resource's metadata is (RFC 9728 §5.1). Shared by a validator and its refusals.
#[derive(Clone, Debug, Default)]
struct Named {
    realm: Option<String>,
    resource_metadata: Option<String>,
}

impl BearerError {
    /// The error code; `None` when the request carried no token at all (RFC 6750 §3: "the
    /// resource server SHOULD NOT include an error code or other error information").
    pub fn code(&self) -> Option<ErrorCode> {
        self.error.as_ref().map(OAuthError::code)
    }

    /// The description, if any.
    pub fn description(&self) -> Option<&str> {
        self.error.as_ref().map(OAuthError::description)
    }

    /// The HTTP status: 401 with no token, else the code's.
    pub fn status(&self) -> u16 {
        self.code().map_or(401, ErrorCode::status)
    }

    /// The value of the `WWW-Authenticate` header (RFC 6750 §3), if the status calls for one.
    pub fn challenge(&self) -> Option<String> {
        let mut params = Vec::new();
        if let Some(realm) = &self.named.realm {
            params.push(format!("realm=\"{realm}\""));
        }
        match &self.error {
            None => {}
            Some(e) => match e.code() {
                ErrorCode::InvalidRequest
                | ErrorCode::InvalidToken
                | ErrorCode::InsufficientScope => {
                    params.push(format!("error=\"{}\"", e.code()));
                    params.push(format!("error_description=\"{}\"", e.description()));
                    if let Some(scope) = &self.required_scope {
                        params.push(format!("scope=\"{scope}\""));
                    }
                }
                _ => return None,
            },
        }
        if let Some(url) = &self.named.resource_metadata {
            // RFC 9728 §5.1: where the resource's metadata is.
            params.push(format!("resource_metadata=\"{url}\""));
        }
        Some(if params.is_empty() {
            "Bearer".to_owned()
        } else {
            format!("Bearer {}", params.join(", "))
        })
    }

    /// This refusal as a response: the status, the `WWW-Authenticate` challenge, and (when there
    /// is an error) a JSON error body.
    pub fn into_response(&self) -> Response {
        let mut response = match &self.error {
            Some(e) => e.json_response(),
            None => Response::new(401),
        };
        if let Some(challenge) = self.challenge() {
            response = response.with_header("WWW-Authenticate", challenge);
        }
        response
    }
}

impl fmt::Display for BearerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error {
            Some(e) => e.fmt(f),
            None => f.write_str("no access token"),
        }
    }
}

impl std::error::Error for BearerError {}

/// Validates bearer tokens against a [`TokenStore`].
///
/// ```no_run
/// # async fn demo(server: grantor::AuthorizationServer) {
/// use grantor::{ResourceRequest, Scope};
///
/// let validator = server.bearer_validator();
/// let request = ResourceRequest::new().with_authorization("Bearer abc");
/// match validator.validate(&request, &"read".parse().unwrap()).await {
///     Ok(grant) => println!("user {:?}", grant.user_id),
///     Err(refusal) => { let response = refusal.into_response(); /* write it out */ }
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct BearerValidator {
    source: Source,
    clock: Arc<dyn Clock>,
    allow_query: bool,
    named: Arc<Named>,
    audience: AudienceCheck,
}

/// Which audiences (RFC 8707) a validator takes.
#[derive(Clone, Debug, Default)]
enum AudienceCheck {
    /// Every token, whatever its audience.
    #[default]
    Any,
    /// Tokens naming this resource, and, unless `strict`, tokens for no resource in particular.
    Of { resource: Arc<str>, strict: bool },
}

impl AudienceCheck {
    fn admits(&self, audience: &[String]) -> bool {
        match self {
            AudienceCheck::Any => true,
            AudienceCheck::Of { resource, strict } => {
                (audience.is_empty() && !strict) || audience.iter().any(|a| **a == **resource)
            }
        }
    }
}

impl fmt::Debug for BearerValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerValidator")
            .field("allow_query", &self.allow_query)
            .field("realm", &self.named.realm)
            .field("resource_metadata", &self.named.resource_metadata)
            .finish_non_exhaustive()
    }
}

/// Whether `c` may stand in a challenge's quoted string as it is (RFC 9110 §5.6.4's `qdtext`,
/// printable ASCII; no `"` or `\\` to escape).
fn is_quotable(c: char) -> bool {
    matches!(c, ' '..='~') && c != '"' && c != '\\'
}

/// Where a validator learns what a token stands for.
#[derive(Clone)]
enum Source {
    /// The token store the authorization server saves tokens in.
    Store(Arc<dyn TokenStore>),
    /// The token itself: a JWT access token checked against the server's published keys.
    #[cfg(feature = "jwt")]
    Jwt(Arc<crate::jwt::JwtCheck>),
}

impl BearerValidator {
    /// A validator over `tokens` on the system clock, header and body tokens only.
    pub fn new(tokens: Arc<dyn TokenStore>) -> Self {
        Self {
            source: Source::Store(tokens),
            clock: Arc::new(SystemClock),
            allow_query: false,
            named: Arc::default(),
            audience: AudienceCheck::Any,
        }
    }

    /// A validator for a resource server that checks JWT access tokens (RFC 9068) alone, with
    /// no call to the authorization server: against `keys` (the server's JWK Set, fetched from
    /// its `jwks_uri`), from `issuer`, for `audience` (this resource server's identifier), on
    /// the system clock with a leeway of 60 seconds. It answers as any validator: the
    /// [`AccessGrant`] (its `family_id` is `None`: a JWT does not say), or the RFC 6750
    /// refusal. A token the server revoked still checks until it expires: a JWT is checked
    /// where it is, which is its point; keep its lifetime short, or introspect.
    ///
    /// Refresh the keys with [`set_jwks`](Self::set_jwks) (on a timer, or when a token names a
    /// `kid` the set lacks), so that a rotated key is known before tokens signed by it come.
    #[cfg(feature = "jwt")]
    pub fn jwt(
        keys: crate::jose::Jwks,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            source: Source::Jwt(Arc::new(crate::jwt::JwtCheck {
                keys: Arc::new(std::sync::RwLock::new(Arc::new(keys))),
                issuer: issuer.into(),
                audience: audience.into(),
                leeway: time::Duration::seconds(60),
                refresher: None,
            })),
            clock: Arc::new(SystemClock),
            allow_query: false,
            named: Arc::default(),
            audience: AudienceCheck::Any,
        }
    }

    /// Replaces the JWK Set of a [`jwt`](Self::jwt) validator (and of its clones); answers
    /// `false`, changing nothing, for a validator over a token store.
    #[cfg(feature = "jwt")]
    pub fn set_jwks(&self, keys: crate::jose::Jwks) -> bool {
        match &self.source {
            Source::Jwt(check) => {
                check.replace_keys(keys);
                true
            }
            Source::Store(_) => false,
        }
    }

    /// Has a [`jwt`](Self::jwt) validator (and its clones) fetch its JWK Set from `source` as
    /// `refresh` says: at the first validation, then before use when the set is older than
    /// `max_age`, and at once when a token names a key the set lacks (a key the server just
    /// rotated to); never twice within `min_interval`. While one request fetches, the others are
    /// checked against the set in use; a failed fetch keeps it (the set given to `jwt`, which
    /// may be empty, until a fetch succeeds). No effect on a validator over a token store.
    #[cfg(feature = "jwt")]
    pub fn with_jwks_source(
        mut self,
        source: Arc<dyn crate::jwt::JwksSource>,
        refresh: crate::jwt::JwksRefresh,
    ) -> Self {
        if let Source::Jwt(check) = &mut self.source {
            Arc::make_mut(check).refresher = Some(crate::jwt::Refresher::new(source, refresh));
        }
        self
    }

    /// How far a [`jwt`](Self::jwt) validator's clock may differ from the server's: a token
    /// is taken until `leeway` after its `exp`, and from `leeway` before its `nbf`. Default 60
    /// seconds; no effect on a validator over a token store.
    #[cfg(feature = "jwt")]
    pub fn with_leeway(mut self, leeway: std::time::Duration) -> Self {
        if let Source::Jwt(check) = &mut self.source {
            Arc::make_mut(check).leeway = crate::clock::to_time_duration(leeway);
        }
        self
    }

    /// Refuses (`invalid_token`) a token whose audience (RFC 8707) does not name `resource`,
    /// this resource server's identifier, such as `https://api.example.com`: a token asked for
    /// another resource. A token for no resource in particular (asked for without `resource`)
    /// is taken, as it is everywhere; [`with_strict_audience`](Self::with_strict_audience)
    /// refuses those too. A [`jwt`](Self::jwt) validator checks its own audience already.
    pub fn with_audience(mut self, resource: impl AsRef<str>) -> Self {
        self.audience = AudienceCheck::Of {
            resource: resource.as_ref().into(),
            strict: false,
        };
        self
    }

    /// As [`with_audience`](Self::with_audience), and refuses tokens for no resource in
    /// particular too: only tokens asked for `resource` are taken.
    pub fn with_strict_audience(mut self, resource: impl AsRef<str>) -> Self {
        self.audience = AudienceCheck::Of {
            resource: resource.as_ref().into(),
            strict: true,
        };
        self
    }

    /// Uses `clock` to decide expiry.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Also accepts the `access_token` query parameter (RFC 6750 §2.3). Off by default: URLs
    /// are logged and leak through `Referer`.
    pub fn allow_query_parameter(mut self, allow: bool) -> Self {
        self.allow_query = allow;
        self
    }

    /// Names the resource's metadata document (RFC 9728) in every `WWW-Authenticate` challenge,
    /// as `resource_metadata="…"` (§5.1), so that a client refused here can find which
    /// authorization server to ask, and for what. Usually
    /// [`ProtectedResourceMetadata::well_known_url`](crate::ProtectedResourceMetadata::well_known_url).
    /// A URL holding `"`, `\\` or a control character is not named.
    pub fn with_resource_metadata(mut self, url: impl AsRef<str>) -> Self {
        let url = url.as_ref();
        let quotable = url.chars().all(is_quotable);
        Arc::make_mut(&mut self.named).resource_metadata = quotable.then(|| url.to_owned());
        self
    }

    /// Names a realm in the `WWW-Authenticate` challenges (RFC 6750 §3). Characters that may not
    /// appear in a quoted string (`"`, `\`, controls) are dropped.
    pub fn with_realm(mut self, realm: impl Into<String>) -> Self {
        let realm: String = realm.into().chars().filter(|c| is_quotable(*c)).collect();
        Arc::make_mut(&mut self.named).realm = Some(realm);
        self
    }

    fn refuse(&self, error: Option<OAuthError>) -> BearerError {
        BearerError {
            error,
            required_scope: None,
            named: self.named.clone(),
        }
    }

    /// Validates the request's bearer token and checks that it grants every token of `required`.
    ///
    /// # Errors
    ///
    /// A [`BearerError`] with no code (no token), `invalid_request`, `invalid_token`,
    /// `insufficient_scope`, or `server_error`/`temporarily_unavailable` when the store fails.
    pub async fn validate(
        &self,
        request: &ResourceRequest,
        required: &Scope,
    ) -> Result<AccessGrant, BearerError> {
        self.validate_presented(request.presented(), Needed::Scope(required))
            .await
    }

    /// [`validate`](Self::validate), for what a request carries, borrowed.
    pub(crate) async fn validate_presented(
        &self,
        request: Presented<'_>,
        required: Needed<'_>,
    ) -> Result<AccessGrant, BearerError> {
        let now = self.clock.now();
        let tokens = match &self.source {
            Source::Store(tokens) => tokens,
            #[cfg(feature = "jwt")]
            Source::Jwt(check) => {
                let (token, location) = self.presented_token(&request)?;
                let record = check
                    .verify(&token, now)
                    .await
                    .ok_or_else(|| self.invalid())?;
                // The expiry, judged with the leeway.
                let then = now.saturating_sub(check.leeway);
                return self.judge(Ok(TokenLookup::Live(record)), then, required, location);
            }
        };
        let (hash, location) = self.token_hash(&request)?;
        // An in-process store answers without a (boxed) future.
        let lookup = match tokens.find_token_in_memory(&hash, now) {
            Some(answer) => answer,
            None => tokens.find_token(&hash, now).await,
        };
        self.judge(lookup, now, required, location)
    }

    /// The hash of the one well-formed token the request carries, and where it was.
    fn token_hash(
        &self,
        request: &Presented<'_>,
    ) -> Result<(TokenHash, TokenLocation), BearerError> {
        let (token, location) = self.presented_token(request)?;
        Ok((TokenHash::of_presented(&token), location))
    }

    /// The one well-formed token (RFC 6750 `b64token`) the request carries, and where it was.
    fn presented_token<'r>(
        &self,
        request: &'r Presented<'_>,
    ) -> Result<(Cow<'r, str>, TokenLocation), BearerError> {
        let (token, location) = self.extract(request).map_err(|e| self.refuse(e))?;
        if !is_b64token(&token) {
            return Err(self.invalid());
        }
        Ok((token, location))
    }

    fn invalid(&self) -> BearerError {
        self.refuse(Some(
            OAuthError::invalid_token("the access token is invalid, expired, or revoked")
                .with_reason(Reason::TokenRejected),
        ))
    }

    /// What the store's answer means for a request that needs `required`.
    fn judge(
        &self,
        lookup: Result<TokenLookup, StoreError>,
        now: OffsetDateTime,
        required: Needed<'_>,
        location: TokenLocation,
    ) -> Result<AccessGrant, BearerError> {
        let record = match lookup.map_err(|e| self.refuse(Some(e.into())))? {
            TokenLookup::Live(r) if r.kind == TokenKind::Access && !r.is_expired(now) => r,
            _ => return Err(self.invalid()),
        };
        if !self.audience.admits(&record.audience) {
            // RFC 8707 §2: a token for other resources is not valid here (RFC 6750 §3.1:
            // "invalid for other reasons").
            return Err(self.refuse(Some(
                OAuthError::invalid_token("the access token is not meant for this resource")
                    .with_reason(Reason::TokenOtherAudience),
            )));
        }
        if !required.granted_by(&record.scope) {
            let mut refusal = self.refuse(Some(
                OAuthError::insufficient_scope(
                    "the access token does not grant the scope this resource requires",
                )
                .with_reason(Reason::InsufficientScope),
            ));
            refusal.required_scope = Some(required.to_scope());
            return Err(refusal);
        }
        Ok(AccessGrant {
            client_id: record.client_id,
            user_id: record.user_id,
            scope: record.scope,
            expires_at: record.expires_at,
            family_id: record.family_id,
            audience: record.audience,
            presented_in: location,
        })
    }

    /// Finds the one token the request carries. `Err(None)` means no token at all.
    fn extract<'r>(
        &self,
        request: &'r Presented<'_>,
    ) -> Result<(Cow<'r, str>, TokenLocation), Option<OAuthError>> {
        let bad = |msg: &'static str| {
            Some(OAuthError::invalid_request(msg).with_reason(Reason::BadBearerRequest))
        };
        let mut found = Found::default();

        if let Some(header) = &request.authorization {
            let header = std::str::from_utf8(header.as_ref())
                .map_err(|_| bad("the Authorization header is not valid UTF-8"))?;
            let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
            // Another scheme is an unsupported authentication method: no error information.
            if scheme.eq_ignore_ascii_case("Bearer") {
                let token = rest.trim();
                if token.is_empty() {
                    return Err(bad("the Authorization header has no bearer token"));
                }
                found.add(Cow::Borrowed(token), TokenLocation::Header);
            }
        }

        // `validate_http` leaves the type unread for an empty body: it matters only with one.
        let in_body = request.content_type == Some(BodyType::Form) && !request.body.is_empty();
        if in_body {
            let before = found.count;
            access_token_params(request.body, |t| found.add(t, TokenLocation::Body))
                .map_err(Some)?;
            if found.count > before && request.method == Some(Method::Get) {
                return Err(bad("an access token in the body cannot be sent with GET"));
            }
        }

        // A query token where they are not accepted is an unsupported authentication method:
        // RFC 6750 §3 says to answer as if there were no credentials, without error details.
        if let (Some(query), true) = (request.query, self.allow_query) {
            access_token_params(query, |t| found.add(t, TokenLocation::Query)).map_err(Some)?;
        }

        // RFC 6750 §2: "Clients MUST NOT use more than one method to transmit the token in each
        // request."
        match (found.first, found.count) {
            (None, _) => Err(None),
            (Some(token), 1) => Ok(token),
            (Some(_), _) => Err(bad("the request carries more than one access token")),
        }
    }
}

/// The tokens a request carries: the first, and how many.
#[derive(Default)]
struct Found<'r> {
    first: Option<(Cow<'r, str>, TokenLocation)>,
    count: usize,
}

impl<'r> Found<'r> {
    fn add(&mut self, token: Cow<'r, str>, location: TokenLocation) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some((token, location));
        }
    }
}

/// Hands `found` every non-empty `access_token` value in a form-encoded string. Other
/// parameters are the resource's business and are not judged.
fn access_token_params<'r>(
    raw: &'r [u8],
    mut found: impl FnMut(Cow<'r, str>),
) -> Result<(), OAuthError> {
    for (name, value) in raw_pairs(raw) {
        if form_decode(name).ok().as_deref() == Some("access_token") {
            let value = form_decode(value)?;
            if !value.is_empty() {
                found(value);
            }
        }
    }
    Ok(())
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=').as_bytes();
    !body.is_empty()
        && body.iter().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::{is_b64token, Needed, ResourceRequest, Scope};

    /// A resource request's `Debug` says whether a token came, never the token (nor the query,
    /// which may hold one).
    #[test]
    fn debug_never_shows_the_token() {
        let request = ResourceRequest::new()
            .with_authorization("Bearer secret-token")
            .with_query("access_token=secret-token")
            .with_body("x=1");
        let shown = format!("{request:?}");
        assert!(shown.starts_with("ResourceRequest {"), "{shown}");
        assert!(shown.contains("has_authorization: true"), "{shown}");
        assert!(shown.contains("body_len: 3"), "{shown}");
        assert!(!shown.contains("secret-token"), "{shown}");
    }

    /// A need written as text is judged as the same need parsed.
    #[test]
    fn a_need_as_text_is_judged_as_the_parsed_scope() {
        let granted = ["", "read", "read write", "admin read write", "a:b c"];
        let needed = [
            "",
            "read",
            "write read",
            "read write admin",
            "c",
            "a:b",
            "x",
        ];
        for g in granted {
            let g = Scope::parse(g).expect("scope");
            for n in needed {
                let parsed = Scope::parse(n).expect("scope");
                assert_eq!(
                    Needed::Text(n).granted_by(&g),
                    Needed::Scope(&parsed).granted_by(&g),
                    "{n:?} of {g:?}"
                );
                assert_eq!(Needed::Text(n).to_scope(), parsed);
            }
        }
    }

    #[test]
    fn b64token_is_as_rfc_6750_writes_it() {
        for b in 0..=255u8 {
            let allowed =
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            let mut token = vec![b'a', b];
            token.extend_from_slice(b"==");
            if let Ok(token) = std::str::from_utf8(&token) {
                assert_eq!(is_b64token(token), allowed || b == b'=', "{b}");
            }
        }
        for ok in ["a", "a=", "A-._~+/9==", "x".repeat(500).as_str()] {
            assert!(is_b64token(ok), "{ok}");
        }
        for bad in ["", "=", "==", "a=b", "a b", "é", "a\u{0}"] {
            assert!(!is_b64token(bad), "{bad}");
        }
    }
}
