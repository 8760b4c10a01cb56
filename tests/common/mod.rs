//! Shared test fixture: a server on a manual clock with a known set of clients and users.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use grantor::{
    async_trait, AuthorizationServer, AuthorizationServerBuilder, Client, ClientId, ClientSecret,
    FamilyId, GrantType, ManualClock, MemoryClientStore, MemoryTokenStore, MemoryUserVerifier,
    OneTimeCode, OtpVerdict, Password, Response, SecretHash, SpentMark, StoreError, TokenChange,
    TokenExpectation, TokenHash, TokenLookup, TokenRecord, TokenRequest, TokenSave, TokenStore,
    TokenUpdate, UserId, UserVerdict, UserVerifier, Username,
};
use serde_json::Value;
use time::macros::datetime;

pub const START: time::OffsetDateTime = datetime!(2026-01-01 0:00 UTC);
pub const ISSUER: &str = "https://auth.example.com";
/// The address a login or device page's request came from (RFC 5737 documentation addresses).
pub const CALLER: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
pub const OTHER_CALLER: std::net::IpAddr =
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));

/// Counts calls to the inner verifier, so tests can see which attempts reached it.
///
/// `alice` (password `123456`, id `user-alice`) has a second factor: a stand-in for TOTP whose
/// code for a 30-second step is [`otp_for`] of it, with one step of drift either way.
pub struct CountingVerifier {
    inner: MemoryUserVerifier,
    pub calls: AtomicUsize,
    pub otp_calls: AtomicUsize,
}

impl CountingVerifier {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// alice's one-time code for the 30-second step containing `at`.
pub fn otp_at(at: time::OffsetDateTime) -> String {
    otp_for(step_of(at))
}

/// The stand-in code of a step: six digits derived from the step number.
pub fn otp_for(step: i64) -> String {
    format!("{:06}", (step * 7919 + 12345).rem_euclid(1_000_000))
}

pub fn step_of(at: time::OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(30)
}

#[async_trait]
impl UserVerifier for CountingVerifier {
    async fn verify_password(
        &self,
        username: &Username,
        password: &Password,
        client: &ClientId,
    ) -> Result<UserVerdict, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        // Take a while, as a real KDF does, so concurrent attempts overlap.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        match self
            .inner
            .verify_password(username, password, client)
            .await?
        {
            UserVerdict::Authenticated(user) if user.as_str() == "user-alice" => {
                Ok(UserVerdict::SecondFactorRequired(user))
            }
            other => Ok(other),
        }
    }

    async fn verify_otp(
        &self,
        user: &UserId,
        otp: &OneTimeCode,
        now: time::OffsetDateTime,
    ) -> Result<OtpVerdict, StoreError> {
        self.otp_calls.fetch_add(1, Ordering::SeqCst);
        if user.as_str() != "user-alice" {
            return Ok(OtpVerdict::Refused);
        }
        let step = step_of(now);
        for s in [step - 1, step, step + 1] {
            if otp.secret() == otp_for(s) {
                return Ok(OtpVerdict::Accepted {
                    counter: u64::try_from(s).expect("positive step"),
                    valid_until: time::OffsetDateTime::from_unix_timestamp((s + 2) * 30)
                        .expect("time"),
                });
            }
        }
        Ok(OtpVerdict::Refused)
    }

    fn checks_one_time_codes(&self) -> bool {
        true
    }
}

/// A token store wrapper that can be told to fail, to lose every update to a request that spent
/// its tokens first (a replay race), or to judge expiry at a frozen instant (so only the
/// engine's own checks remain).
pub struct FlakyStore {
    pub inner: Arc<MemoryTokenStore>,
    pub fail: AtomicBool,
    pub unavailable: AtomicBool,
    /// Makes every update lose to another request, which spends the tokens it expects live.
    pub force_reused: AtomicBool,
    pub frozen_now: std::sync::Mutex<Option<time::OffsetDateTime>>,
    pub finds: AtomicUsize,
    /// Makes saving slow, to open a window for a race.
    pub save_delay: std::sync::Mutex<Option<std::time::Duration>>,
    /// Makes saving new tokens fail (Redis gone between taking a code and saving its tokens),
    /// while reads and other writes go on.
    pub fail_saves: AtomicBool,
}

impl FlakyStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable(
                "connection refused to 10.0.0.9:6379",
            ));
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::backend(
                "constraint tokens_pkey violated (secret detail)",
            ));
        }
        Ok(())
    }

    fn now(&self, now: time::OffsetDateTime) -> time::OffsetDateTime {
        self.frozen_now.lock().ok().and_then(|f| *f).unwrap_or(now)
    }
}

#[async_trait]
impl TokenStore for FlakyStore {
    async fn save_tokens(
        &self,
        tokens: &[(TokenHash, TokenRecord)],
        now: time::OffsetDateTime,
    ) -> Result<TokenSave, StoreError> {
        self.check()?;
        if self.fail_saves.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("timed out saving tokens"));
        }
        let delay = *self.save_delay.lock().expect("lock");
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        self.inner.save_tokens(tokens, self.now(now)).await
    }
    async fn find_token(
        &self,
        hash: &TokenHash,
        now: time::OffsetDateTime,
    ) -> Result<TokenLookup, StoreError> {
        self.check()?;
        self.finds.fetch_add(1, Ordering::SeqCst);
        self.inner.find_token(hash, self.now(now)).await
    }
    async fn update_tokens(
        &self,
        change: &TokenChange,
        now: time::OffsetDateTime,
    ) -> Result<TokenUpdate, StoreError> {
        self.check()?;
        let now = self.now(now);
        if self.force_reused.load(Ordering::SeqCst) {
            // Another request gets there first: it spends every token this change expects live,
            // and this change finds them spent.
            for (hash, expected) in &change.expect {
                if *expected != TokenExpectation::Live {
                    continue;
                }
                if let TokenLookup::Live(TokenRecord {
                    client_id,
                    expires_at,
                    family_id: Some(family_id),
                    ..
                }) = self.inner.find_token(hash, now).await?
                {
                    let spent = SpentMark {
                        client_id,
                        family_id,
                        spent_at: now,
                        successor: None,
                        keep_until: expires_at,
                    };
                    let winner = TokenChange {
                        expect: vec![(*hash, TokenExpectation::Live)],
                        mark: vec![(*hash, spent)],
                        insert: Vec::new(),
                    };
                    self.inner.update_tokens(&winner, now).await?;
                }
            }
            return Ok(TokenUpdate::Conflict);
        }
        self.inner.update_tokens(change, now).await
    }
    async fn revoke_token(
        &self,
        hash: &TokenHash,
        now: time::OffsetDateTime,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.check()?;
        self.inner.revoke_token(hash, self.now(now)).await
    }
    async fn revoke_family(
        &self,
        family: &FamilyId,
        remember_until: time::OffsetDateTime,
        now: time::OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.check()?;
        self.inner
            .revoke_family(family, remember_until, self.now(now))
            .await
    }
}

pub struct Fixture {
    pub server: AuthorizationServer,
    pub clients: Arc<MemoryClientStore>,
    pub codes: Arc<grantor::MemoryCodeStore>,
    pub devices: Arc<grantor::MemoryDeviceCodeStore>,
    pub clock: Arc<ManualClock>,
    pub tokens: Arc<MemoryTokenStore>,
    pub store: Arc<FlakyStore>,
    pub users: Arc<CountingVerifier>,
}

fn scope(s: &str) -> grantor::Scope {
    s.parse().expect("test scope")
}

pub fn clients() -> MemoryClientStore {
    let secret = |s: &str| SecretHash::new(&ClientSecret::new(s));
    let pw_refresh = [GrantType::Password, GrantType::RefreshToken];
    [
        Client::confidential("clientapp", secret("123456"))
            .with_grant_types(pw_refresh)
            .with_allowed_scope(scope("read write admin"))
            .with_default_scope(scope("read")),
        Client::confidential("other", secret("other-secret"))
            .with_grant_types(pw_refresh)
            .with_allowed_scope(scope("read write admin"))
            .with_default_scope(scope("read")),
        Client::public("spa")
            .with_grant_types(pw_refresh)
            .with_allowed_scope(scope("read write"))
            .with_default_scope(scope("read")),
        Client::confidential("norefresh", secret("x"))
            .with_grant_types([GrantType::Password])
            .with_allowed_scope(scope("read"))
            .with_default_scope(scope("read")),
        Client::confidential("service", secret("service-secret"))
            .with_grant_types([GrantType::ClientCredentials])
            .with_allowed_scope(scope("read"))
            .with_default_scope(scope("read")),
        Client::confidential("my client", secret("p@ss:word +"))
            .with_grant_types(pw_refresh)
            .with_allowed_scope(scope("read"))
            .with_default_scope(scope("read")),
        Client::confidential("nodefault", secret("x"))
            .with_grant_types(pw_refresh)
            .with_allowed_scope(scope("read")),
        Client::confidential("webapp", secret("web-secret"))
            .with_grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
            .with_allowed_scope(scope("read write"))
            .with_default_scope(scope("read"))
            .with_redirect_uris(["https://app.example.com/cb?tenant=7"]),
        Client::public("public-cc")
            .with_grant_types([GrantType::ClientCredentials])
            .with_allowed_scope(scope("read"))
            .with_default_scope(scope("read")),
        Client::confidential("service-rw", secret("rw-secret"))
            .with_grant_types([GrantType::ClientCredentials])
            .with_allowed_scope(scope("read write")),
        Client::public("cli")
            .with_grant_types([GrantType::DeviceCode, GrantType::RefreshToken])
            .with_allowed_scope(scope("read write"))
            .with_default_scope(scope("read")),
        Client::confidential("tv", secret("tv-secret"))
            .with_grant_types([GrantType::DeviceCode])
            .with_allowed_scope(scope("read write"))
            .with_default_scope(scope("read")),
        Client::public("pkce-app")
            .with_grant_types([
                GrantType::AuthorizationCode,
                GrantType::Implicit,
                GrantType::RefreshToken,
            ])
            .with_allowed_scope(scope("read write"))
            .with_default_scope(scope("read"))
            .with_redirect_uris(["http://localhost:3000/callback", "com.example.app:/oauth"]),
    ]
    .into_iter()
    .collect()
}

/// The test users: tom and admin, and alice with a second factor (all with password `123456`).
pub fn verifier() -> Arc<CountingVerifier> {
    let verifier = MemoryUserVerifier::new();
    verifier.add_user("tom", "user-tom", "123456");
    verifier.add_user("admin", "user-admin", "123456");
    verifier.add_user("alice", "user-alice", "123456");
    // An alias: another username for the same user.
    verifier.add_user("alice@example.com", "user-alice", "123456");
    Arc::new(CountingVerifier {
        inner: verifier,
        calls: AtomicUsize::new(0),
        otp_calls: AtomicUsize::new(0),
    })
}

pub fn fixture() -> Fixture {
    fixture_with(|b| b)
}

pub fn fixture_with(
    configure: impl FnOnce(AuthorizationServerBuilder) -> AuthorizationServerBuilder,
) -> Fixture {
    let clock = Arc::new(ManualClock::new(START));
    let tokens = Arc::new(MemoryTokenStore::new());
    let store = Arc::new(FlakyStore {
        inner: tokens.clone(),
        fail: AtomicBool::new(false),
        unavailable: AtomicBool::new(false),
        force_reused: AtomicBool::new(false),
        frozen_now: std::sync::Mutex::new(None),
        finds: AtomicUsize::new(0),
        save_delay: std::sync::Mutex::new(None),
        fail_saves: AtomicBool::new(false),
    });
    let users = verifier();
    let clients = Arc::new(clients());
    let codes = Arc::new(grantor::MemoryCodeStore::new());
    let devices = Arc::new(grantor::MemoryDeviceCodeStore::new());
    let builder = AuthorizationServer::builder(clients.clone(), store.clone())
        .enable_password_grant(users.clone())
        .enable_refresh_token_grant()
        .enable_authorization_code_grant(codes.clone())
        .enable_device_code_grant(devices.clone())
        .enable_client_credentials_grant()
        .issuer(ISSUER)
        .clock(clock.clone());
    let server = configure(builder)
        .build()
        .expect("valid test configuration");
    Fixture {
        server,
        clients,
        codes,
        devices,
        clock,
        tokens,
        store,
        users,
    }
}

pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// A decoded response: status, the response, and the JSON body (Null if none).
pub struct Answer {
    pub status: u16,
    pub response: Response,
    pub json: Value,
}

impl Answer {
    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.response.header(name)
    }
    pub fn str(&self, field: &str) -> String {
        self.json[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {}", self.json))
            .to_owned()
    }
    /// Asserts the no-store headers that every token response and token error carries.
    pub fn assert_no_store(&self) {
        assert_eq!(
            self.header("Cache-Control"),
            Some("no-store"),
            "{:?}",
            self.response
        );
        assert_eq!(self.header("Pragma"), Some("no-cache"));
        assert_eq!(self.header("Content-Type"), Some("application/json"));
    }
}

pub fn answer(response: Response) -> Answer {
    let json = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    Answer {
        status: response.status(),
        response,
        json,
    }
}

impl Fixture {
    pub async fn token(&self, request: TokenRequest) -> Answer {
        answer(self.server.token(request).await)
    }

    /// A form token request authenticated with Basic.
    pub async fn post(&self, client: (&str, &str), body: &str) -> Answer {
        self.token(
            TokenRequest::form(body.to_owned()).with_authorization(basic(client.0, client.1)),
        )
        .await
    }

    /// tom's password grant as clientapp.
    pub async fn login(&self) -> Answer {
        let a = self
            .post(
                ("clientapp", "123456"),
                "grant_type=password&username=tom&password=123456",
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.json);
        a
    }

    pub async fn refresh(&self, client: (&str, &str), refresh_token: &str, extra: &str) -> Answer {
        self.post(
            client,
            &format!("grant_type=refresh_token&refresh_token={refresh_token}{extra}"),
        )
        .await
    }
}

/// The parameters of a redirect's query (or, with `fragment`, its fragment).
pub fn redirect_params(
    location: &str,
    fragment: bool,
) -> std::collections::HashMap<String, String> {
    let url = url::Url::parse(location).expect("absolute redirect");
    let part = if fragment {
        url.fragment().unwrap_or("")
    } else {
        url.query().unwrap_or("")
    };
    url::form_urlencoded::parse(part.as_bytes())
        .into_owned()
        .collect()
}

/// A server keeping everything in one shared store (Redis, SQL): tokens, failed logins, codes
/// and second factors, with tom-the-user (password `distinct-password-9f8e`, as `user-1`).
pub fn server_on_shared_store<S>(store: Arc<S>) -> AuthorizationServer
where
    S: TokenStore + grantor::AttemptLimiter + grantor::CodeStore + grantor::MfaStore + 'static,
{
    let users = MemoryUserVerifier::new();
    users.add_user("tom-the-user", "user-1", "distinct-password-9f8e");
    AuthorizationServer::builder(Arc::new(clients()), store.clone())
        .attempt_limiter(store.clone())
        .mfa_store(store.clone())
        .enable_authorization_code_grant(store)
        .issuer(ISSUER)
        .enable_password_grant(Arc::new(users))
        .enable_refresh_token_grant()
        .build()
        .expect("server")
}

/// tom-the-user signs in with the password grant, as client `other`.
pub async fn tom_signs_in(server: &AuthorizationServer) -> Answer {
    answer(
        server
            .token(
                TokenRequest::form(
                    "grant_type=password&username=tom-the-user&password=distinct-password-9f8e",
                )
                .with_authorization(basic("other", "other-secret")),
            )
            .await,
    )
}

/// `other` refreshes `token`.
pub async fn others_refresh(server: &AuthorizationServer, token: &str) -> Answer {
    answer(
        server
            .token(
                TokenRequest::form(format!("grant_type=refresh_token&refresh_token={token}"))
                    .with_authorization(basic("other", "other-secret")),
            )
            .await,
    )
}

/// Whether `token` is a valid access token at `server` (else the refusal's status).
pub async fn bearer_status(server: &AuthorizationServer, token: &str) -> Result<(), u16> {
    server
        .bearer_validator()
        .validate(
            &grantor::ResourceRequest::new().with_authorization(format!("Bearer {token}")),
            &grantor::Scope::empty(),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.status())
}

/// Issues through `server` (one of [`server_on_shared_store`]) a secret of every kind a store
/// keeps the hash of, answering them as issued: three sign-ins and their refreshes, an
/// authorization request left pending, and one approved and exchanged (its request id, code and
/// tokens).
pub async fn issue_every_kind(server: &AuthorizationServer) -> Vec<String> {
    let mut issued = Vec::new();
    for _ in 0..3 {
        let a = tom_signs_in(server).await;
        assert_eq!(a.status, 200, "{}", a.json);
        let r = others_refresh(server, &a.str("refresh_token")).await;
        assert_eq!(r.status, 200, "{}", r.json);
        issued.extend([
            a.str("access_token"),
            a.str("refresh_token"),
            r.str("access_token"),
            r.str("refresh_token"),
        ]);
    }
    for redeem in [false, true] {
        let grantor::AuthorizeOutcome::Pending { id, .. } = server
            .authorize(grantor::AuthorizationRequest::from_query(
                "response_type=code&client_id=webapp&state=st",
            ))
            .await
        else {
            panic!("expected a pending request");
        };
        issued.push(id.secret().to_owned());
        if redeem {
            let r = server
                .approve(&id, UserId::new("user-1"), None)
                .await
                .expect("approve");
            let code = redirect_params(r.location(), false)
                .get("code")
                .cloned()
                .expect("code");
            let t = answer(
                server
                    .token(
                        TokenRequest::form(format!("grant_type=authorization_code&code={code}"))
                            .with_authorization(basic("webapp", "web-secret")),
                    )
                    .await,
            );
            assert_eq!(t.status, 200, "{}", t.json);
            issued.extend([code, t.str("access_token"), t.str("refresh_token")]);
        }
    }
    issued
}
