//! Checking a JWT access token without the authorization server (RFC 9068 §4), for a
//! [`BearerValidator::jwt`](crate::BearerValidator::jwt) (feature `jwt`).
//!
//! What is checked, in RFC 9068 §4's order: the header's `typ` is `at+jwt` (or
//! `application/at+jwt`) and names no `crit` extension; the key is the JWK Set's key of the
//! header's `kid`, and the algorithm is that key's own (never `none`, never the header's choice
//! alone); the signature; `iss` is the issuer; `aud` names the audience; `exp` (required) has not
//! passed and `nbf` (if present) has, each with a small leeway for clocks that differ. The scope
//! is then checked by the validator as for any access token.
//!
//! The JWK Set is given, and replaced with `set_jwks`; or it comes from a [`JwksSource`] (the
//! server's `jwks_uri` through the host's HTTP client, or the server itself in-process), fetched
//! again when it is older than its [`JwksRefresh::max_age`], or at once when a token names a key
//! it lacks (a rotation), never more often than [`JwksRefresh::min_interval`]: a stream of tokens
//! naming made-up keys costs one fetch per interval, not one each.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{self, UnparsedPublicKey};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::error::BoxError;
use crate::jose::{Jwk, Jwks, JwsAlgorithm};
use crate::scope::Scope;
use crate::store::{TokenKind, TokenRecord};
use crate::types::{ClientId, UserId};

/// The largest JWT read: far above any access token grantor issues (a few hundred bytes).
const MAX_JWT_BYTES: usize = 8 * 1024;

/// Where a resource server gets the authorization server's JWK Set (RFC 7517) for a
/// [`BearerValidator::jwt`](crate::BearerValidator::jwt), which fetches it again as its
/// [`JwksRefresh`] says ([`with_jwks_source`](crate::BearerValidator::with_jwks_source)).
///
/// grantor has no HTTP client: fetch the server's `jwks_uri` with yours, in a closure; or, in
/// the server's own process, hand it the [`AuthorizationServer`](crate::AuthorizationServer).
///
/// ```
/// use std::sync::Arc;
/// use grantor::{BearerValidator, BoxError, Jwks, JwksRefresh, JwksSource};
///
/// let source: Arc<dyn JwksSource> = Arc::new(|| async {
///     // GET https://auth.example.com/oauth/jwks with your HTTP client, then:
///     let body = br#"{"keys":[]}"#;
///     Ok::<_, BoxError>(serde_json::from_slice::<Jwks>(body)?)
/// });
/// let validator = BearerValidator::jwt(Jwks::default(), "https://auth.example.com", "https://api.example.com")
///     .with_jwks_source(source, JwksRefresh::default());
/// ```
#[async_trait]
pub trait JwksSource: Send + Sync {
    /// The JWK Set as the authorization server publishes it now.
    async fn fetch(&self) -> Result<Jwks, BoxError>;
}

#[async_trait]
impl<F, Fut> JwksSource for F
where
    F: Fn() -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Result<Jwks, BoxError>> + Send,
{
    async fn fetch(&self) -> Result<Jwks, BoxError> {
        self().await
    }
}

/// When a validator with a [`JwksSource`] fetches the JWK Set again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwksRefresh {
    /// A set older than this is fetched again before it is used (default 5 minutes): a key
    /// unpublished by the server is refused here at most this long after (while the source
    /// answers).
    pub max_age: Duration,
    /// No fetch starts sooner than this after the last one began, whatever tokens come
    /// (default 30 seconds, at least 1): a token naming a key the set lacks fetches it at once,
    /// unless a fetch began this recently.
    pub min_interval: Duration,
    /// How long a fetch may take before it counts as failed (default 10 seconds).
    pub fetch_timeout: Duration,
}

impl Default for JwksRefresh {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(300),
            min_interval: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(10),
        }
    }
}

impl JwksRefresh {
    /// Fetch a set older than `max_age`, and never twice within `min_interval`.
    pub fn new(max_age: Duration, min_interval: Duration) -> Self {
        Self {
            max_age,
            min_interval,
            ..Self::default()
        }
    }

    /// Gives up a fetch that takes longer than `timeout`.
    pub fn with_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }
}

/// The longest a check waits for a fetch another request has in flight, when the set in use
/// cannot check its token (a first check, a key just rotated to).
const WAIT_FOR_FETCH: Duration = Duration::from_secs(2);

/// Never: the instant before any other, as nanoseconds since the epoch.
const NEVER: i64 = i64::MIN;

/// A validator's JWK Set source, its policy, and its fetches (shared by clones).
#[derive(Clone)]
pub(crate) struct Refresher {
    pub(crate) source: Arc<dyn JwksSource>,
    pub(crate) policy: JwksRefresh,
    /// When the last fetch began, and when the set in use was fetched (Unix nanoseconds).
    began: Arc<AtomicI64>,
    fetched: Arc<AtomicI64>,
    /// Whether a fetch is under way: at most one is.
    in_flight: Arc<AtomicBool>,
}

impl Refresher {
    pub(crate) fn new(source: Arc<dyn JwksSource>, mut policy: JwksRefresh) -> Self {
        policy.min_interval = policy.min_interval.max(Duration::from_secs(1));
        Self {
            source,
            policy,
            began: Arc::new(AtomicI64::new(NEVER)),
            fetched: Arc::new(AtomicI64::new(NEVER)),
            in_flight: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether `at` (a stored instant) is at least `span` before `now`. An instant after `now`
    /// (the clock was set back) counts as long past: a clock set back never freezes fetches.
    fn long_past(at: i64, now: i64, span: Duration) -> bool {
        at == NEVER || now < at || now.saturating_sub(at) >= duration_nanos(span)
    }

    fn is_stale(&self, now: i64) -> bool {
        Self::long_past(
            self.fetched.load(Ordering::Acquire),
            now,
            self.policy.max_age,
        )
    }
}

/// A fetch under way. Dropped (the fetch done, failed, or its request abandoned), it lets
/// another begin; abandoned before it finished, it also gives back the interval it claimed,
/// so that a request cancelled mid-fetch holds up nobody's keys.
struct FetchClaim<'a> {
    refresher: &'a Refresher,
    previous: i64,
    finished: bool,
}

impl Drop for FetchClaim<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.refresher.began.store(self.previous, Ordering::Release);
        }
        self.refresher.in_flight.store(false, Ordering::Release);
    }
}

/// `future`'s output, or `None` if `limit` passes first.
async fn within<F: Future>(future: F, limit: Duration) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut deadline = futures_timer::Delay::new(limit);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        if Pin::new(&mut deadline).poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

fn nanos(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

fn duration_nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// What checking a JWT came to.
enum Verdict {
    Valid(TokenRecord),
    /// Its header names a key the set lacks: a fetch may find it.
    UnknownKey,
    Invalid,
}

/// What a JWT access token is checked against. Clones share the key set (so that `set_jwks`
/// reaches every clone of a validator), and its source's fetch times.
#[derive(Clone)]
pub(crate) struct JwtCheck {
    /// The set in use, swapped whole: a check takes it out of the lock and verifies without
    /// holding it.
    pub(crate) keys: Arc<RwLock<Arc<Jwks>>>,
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) leeway: time::Duration,
    pub(crate) refresher: Option<Refresher>,
}

#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: Option<String>,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// `aud`: one string, or several (RFC 7519 §4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn names(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|a| a == audience),
        }
    }

    fn into_vec(self) -> Vec<String> {
        match self {
            Audience::One(one) => vec![one],
            Audience::Many(many) => many,
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    sub: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
}

impl JwtCheck {
    /// The record `token` stands for, if it is a JWT access token this check accepts at `now`
    /// (its expiry judged with the leeway); `None` for anything else. With a source, the set is
    /// fetched first if it is too old, or after a first check if the token names a key it
    /// lacks, as the policy allows.
    pub(crate) async fn verify(&self, token: &str, now: OffsetDateTime) -> Option<TokenRecord> {
        let Some(refresher) = &self.refresher else {
            return self.check(token, now).into_record();
        };
        // A set too old is fetched again first (or, if another request is fetching it, or one
        // began too recently, the set in use serves meanwhile).
        if refresher.is_stale(nanos(now)) {
            self.refresh(refresher, now, false).await;
        }
        match self.check(token, now) {
            Verdict::UnknownKey if self.refresh(refresher, now, true).await => {
                self.check(token, now).into_record()
            }
            verdict => verdict.into_record(),
        }
    }

    /// Fetches the set if no fetch is under way and none began within the policy's interval;
    /// or, if one is under way and `wait`, waits for it (a little). Answers whether another set
    /// may be in use since the call began. A failed fetch keeps the set in use.
    async fn refresh(&self, refresher: &Refresher, now: OffsetDateTime, wait: bool) -> bool {
        let now_nanos = nanos(now);
        let before = refresher.fetched.load(Ordering::Acquire);
        let may_begin = |refresher: &Refresher| {
            Refresher::long_past(
                refresher.began.load(Ordering::Acquire),
                now_nanos,
                refresher.policy.min_interval,
            )
        };
        if may_begin(refresher)
            && refresher
                .in_flight
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // A fetch ended between the look and the claim: the caller checks again with the
            // set now in use (a check costs less than telling whether that fetch succeeded).
            if !may_begin(refresher) {
                refresher.in_flight.store(false, Ordering::Release);
                return true;
            }
            let mut claim = FetchClaim {
                refresher,
                previous: refresher.began.swap(now_nanos, Ordering::AcqRel),
                finished: false,
            };
            let fetched = within(refresher.source.fetch(), refresher.policy.fetch_timeout).await;
            // Done or failed, the fetch counts for the interval.
            claim.finished = true;
            return match fetched {
                Some(Ok(keys)) => {
                    self.replace_keys(keys);
                    refresher.fetched.store(now_nanos, Ordering::Release);
                    true
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "the JWK Set could not be fetched; the one in use is kept");
                    false
                }
                None => {
                    tracing::warn!("fetching the JWK Set timed out; the one in use is kept");
                    false
                }
            };
        }
        if !wait {
            return false;
        }
        // Another request is fetching, or has just fetched: wait for it, a little (not at all if
        // it is done), and tell whether another set came meanwhile.
        // Mutation testing skips `<` written `<=` below (`.cargo/mutants.toml`): a waiter
        // whose fetch outlasts the bound would sleep one more step, 5 ms, and answer the same.
        let step = Duration::from_millis(5);
        let mut waited = Duration::ZERO;
        while refresher.in_flight.load(Ordering::Acquire) && waited < WAIT_FOR_FETCH {
            futures_timer::Delay::new(step).await;
            waited += step;
        }
        refresher.fetched.load(Ordering::Acquire) != before
    }

    /// Puts `keys` in use (for this check's clones too).
    pub(crate) fn replace_keys(&self, keys: Jwks) {
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
    }

    /// The check itself, against the set in use.
    fn check(&self, token: &str, now: OffsetDateTime) -> Verdict {
        let mut unknown_key = false;
        match self.check_with(token, now, &mut unknown_key) {
            Some(record) => Verdict::Valid(record),
            None if unknown_key => Verdict::UnknownKey,
            None => Verdict::Invalid,
        }
    }

    fn check_with(
        &self,
        token: &str,
        now: OffsetDateTime,
        unknown_key: &mut bool,
    ) -> Option<TokenRecord> {
        if token.len() > MAX_JWT_BYTES {
            return None;
        }
        let mut parts = token.split('.');
        let (header_b64, claims_b64, signature_b64) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Header =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).ok()?).ok()?;
        let typ = header.typ?;
        if !(typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt"))
            || header.crit.is_some()
        {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).ok()?;
        let signing_input = token.get(..header_b64.len() + 1 + claims_b64.len())?;
        {
            let keys = Arc::clone(
                &self
                    .keys
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            let kid = header.kid?;
            // A key published for encryption checks no signature.
            let Some(key) = keys.keys.iter().find(|k| k.kid == kid && k.use_ == "sig") else {
                *unknown_key = true;
                return None;
            };
            // The key's algorithm decides; a header naming another is refused.
            if header.alg.as_deref() != Some(key.alg.as_str()) {
                return None;
            }
            verify_signature(key, signing_input.as_bytes(), &signature)?;
        }
        let claims: Claims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims_b64).ok()?).ok()?;
        if claims.iss.as_deref() != Some(self.issuer.as_str())
            || !claims.aud.as_ref()?.names(&self.audience)
        {
            return None;
        }
        let exp = OffsetDateTime::from_unix_timestamp(claims.exp?).ok()?;
        if now >= exp.saturating_add(self.leeway) {
            return None;
        }
        if let Some(nbf) = claims.nbf {
            if now.saturating_add(self.leeway) < OffsetDateTime::from_unix_timestamp(nbf).ok()? {
                return None;
            }
        }
        let client_id = ClientId::new(claims.client_id?);
        // RFC 9068 §2.2: with no resource owner, `sub` is the client's id.
        let user_id = claims
            .sub
            .filter(|sub| sub != client_id.as_str())
            .map(UserId::new);
        let scope = match claims.scope {
            Some(scope) => Scope::parse(&scope).ok()?,
            None => Scope::default(),
        };
        let issued_at = claims
            .iat
            .and_then(|iat| OffsetDateTime::from_unix_timestamp(iat).ok())
            .unwrap_or(now);
        Some(TokenRecord {
            kind: TokenKind::Access,
            client_id,
            user_id,
            username: None,
            scope,
            issued_at,
            expires_at: exp,
            family_id: None,
            audience: claims.aud.map(Audience::into_vec).unwrap_or_default(),
        })
    }
}

impl Verdict {
    fn into_record(self) -> Option<TokenRecord> {
        match self {
            Verdict::Valid(record) => Some(record),
            _ => None,
        }
    }
}

/// Whether `signature` over `input` is `key`'s.
fn verify_signature(key: &Jwk, input: &[u8], signature: &[u8]) -> Option<()> {
    let b64 = |member: &Option<String>| URL_SAFE_NO_PAD.decode(member.as_deref()?).ok();
    match key.alg {
        JwsAlgorithm::Es256 => {
            if key.kty != "EC" || key.crv.as_deref() != Some("P-256") {
                return None;
            }
            let (x, y) = (b64(&key.x)?, b64(&key.y)?);
            if (x.len(), y.len()) != (32, 32) {
                return None;
            }
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(input, signature)
                .ok()
        }
        JwsAlgorithm::EdDsa => {
            if key.kty != "OKP" || key.crv.as_deref() != Some("Ed25519") {
                return None;
            }
            UnparsedPublicKey::new(&signature::ED25519, b64(&key.x)?)
                .verify(input, signature)
                .ok()
        }
        JwsAlgorithm::Rs256 => {
            if key.kty != "RSA" {
                return None;
            }
            signature::RsaPublicKeyComponents {
                n: b64(&key.n)?,
                e: b64(&key.e)?,
            }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, input, signature)
            .ok()
        }
    }
}
