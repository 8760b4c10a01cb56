//! JWT access tokens (RFC 9068), per client: what they hold, checked by an independent JOSE
//! library against the server's JWK Set; and that the store keeps their records, so bearer
//! validation, introspection and revocation treat them as any access token.
#![cfg(feature = "jwt")]

mod common;

use std::sync::Arc;

use common::*;
use grantor::{
    AccessTokenFormat, BuildError, Client, ClientSecret, GrantType, JwsAlgorithm, LocalKeys,
    MemoryClientStore, MemoryTokenStore, SecretHash, TokenRequest,
};

const AUDIENCE: &str = "https://api.example.com";

fn keys() -> Arc<LocalKeys> {
    let keys = Arc::new(LocalKeys::new());
    keys.generate("k1", JwsAlgorithm::Es256).expect("a key");
    keys
}

/// The claims of `jwt`, checked as a resource server would: signature against the server's JWK
/// Set, `typ`, `iss`, `aud` and `exp`.
fn check(server: &grantor::AuthorizationServer, jwt: &str) -> serde_json::Value {
    let header = jsonwebtoken::decode_header(jwt).expect("a JWS header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_slice(server.jwks().body()).expect("a JWK Set");
    let jwk = set
        .find(header.kid.as_deref().expect("kid"))
        .expect("published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("a key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // The fixture's clock stands at 2026-01-01; the library reads the real one.
    validation.validate_exp = false;
    jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &validation)
        .expect("a valid token")
        .claims
}

fn jwt_fixture() -> Fixture {
    jwt_fixture_signed_by(keys())
}

/// The fixture's server issuing JWTs signed by `keys` (which the test keeps, to rotate them).
fn jwt_fixture_signed_by(keys: Arc<LocalKeys>) -> Fixture {
    fixture_with(move |b| {
        b.token_signer(keys)
            .jwt_audience(AUDIENCE)
            .access_token_format(AccessTokenFormat::Jwt)
    })
}

#[tokio::test]
async fn a_jwt_access_token_holds_what_rfc_9068_names() {
    let f = jwt_fixture();
    // The password grant: the user is the subject.
    let a = f.login().await;
    assert_eq!(a.status, 200, "{}", a.json);
    let jwt = a.str("access_token");
    assert_eq!(jwt.split('.').count(), 3, "a compact JWS");
    let claims = check(&f.server, &jwt);
    assert_eq!(claims["sub"], "user-tom");
    assert_eq!(claims["client_id"], "clientapp");
    assert_eq!(claims["scope"], "read");
    let (iat, exp) = (
        claims["iat"].as_i64().expect("iat"),
        claims["exp"].as_i64().expect("exp"),
    );
    assert_eq!(iat, START.unix_timestamp());
    assert_eq!(exp - iat, 3600);
    assert_eq!(a.json["expires_in"], 3600);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 32));
    // The refresh token stays opaque.
    assert_eq!(a.str("refresh_token").split('.').count(), 1);

    // Client credentials: no user, so the client is the subject (§2.2).
    let cc = f
        .post(
            ("service", "service-secret"),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(cc.status, 200, "{}", cc.json);
    let claims = check(&f.server, &cc.str("access_token"));
    assert_eq!(claims["sub"], "service");
    assert_eq!(claims["client_id"], "service");

    // Every token has its own jti.
    let again = check(&f.server, &f.login().await.str("access_token"));
    assert_ne!(again["jti"], check(&f.server, &jwt)["jti"]);

    // A refresh gives a JWT too, with the new token's times.
    let r = f
        .refresh(("clientapp", "123456"), &a.str("refresh_token"), "")
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(check(&f.server, &r.str("access_token"))["sub"], "user-tom");
}

#[tokio::test]
async fn a_jwt_is_validated_introspected_and_revoked_as_any_access_token() {
    let f = jwt_fixture();
    let jwt = f.login().await.str("access_token");
    let validator = f.server.bearer_validator();
    let request = grantor::ResourceRequest::new().with_authorization(format!("Bearer {jwt}"));
    let grant = validator
        .validate(&request, &"read".parse().expect("scope"))
        .await
        .expect("valid");
    assert_eq!(grant.user_id.expect("a user").as_str(), "user-tom");

    // The client introspects its own token (RFC 7662 §4).
    let introspect = |token: String| {
        let server = f.server.clone();
        async move {
            answer(
                server
                    .introspect(
                        TokenRequest::form(format!("token={token}"))
                            .with_authorization(basic("clientapp", "123456")),
                    )
                    .await,
            )
        }
    };
    assert_eq!(introspect(jwt.clone()).await.json["active"], true);
    let revoked = f
        .server
        .revoke(
            TokenRequest::form(format!("token={jwt}"))
                .with_authorization(basic("clientapp", "123456")),
        )
        .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(introspect(jwt.clone()).await.json["active"], false);
    assert!(validator
        .validate(&request, &"read".parse().expect("scope"))
        .await
        .is_err());
}

/// The format is chosen per client: a client that names none gets the server's default.
#[tokio::test]
async fn the_format_is_chosen_per_client() {
    let keys = keys();
    let clients = MemoryClientStore::new();
    let secret = || SecretHash::new(&ClientSecret::new("s"));
    for (id, format) in [
        ("jwt-app", Some(AccessTokenFormat::Jwt)),
        ("opaque-app", Some(AccessTokenFormat::Opaque)),
        ("default-app", None),
    ] {
        let mut client = Client::confidential(id, secret())
            .with_grant_types([GrantType::ClientCredentials])
            .with_allowed_scope("read".parse().expect("scope"))
            .with_default_scope("read".parse().expect("scope"));
        if let Some(format) = format {
            client = client.with_access_token_format(format);
        }
        clients.insert(client);
    }
    let server =
        grantor::AuthorizationServer::builder(Arc::new(clients), Arc::new(MemoryTokenStore::new()))
            .enable_client_credentials_grant()
            .issuer(ISSUER)
            .token_signer(keys)
            .jwt_audience(AUDIENCE)
            .build()
            .expect("server");
    let token_of = |id: &'static str| {
        let server = server.clone();
        async move {
            answer(
                server
                    .token(
                        TokenRequest::form("grant_type=client_credentials")
                            .with_authorization(basic(id, "s")),
                    )
                    .await,
            )
            .str("access_token")
        }
    };
    assert_eq!(token_of("jwt-app").await.split('.').count(), 3);
    assert_eq!(token_of("opaque-app").await.split('.').count(), 1);
    // The server's default here is opaque.
    assert_eq!(token_of("default-app").await.split('.').count(), 1);
}

#[test]
fn jwt_by_default_needs_a_signer_an_issuer_and_an_audience() {
    let build = |signer: bool, issuer: bool, audience: bool| {
        let mut b = grantor::AuthorizationServer::builder(
            Arc::new(clients()),
            Arc::new(MemoryTokenStore::new()),
        )
        .enable_client_credentials_grant()
        .access_token_format(AccessTokenFormat::Jwt);
        if signer {
            b = b.token_signer(keys());
        }
        if issuer {
            b = b.issuer(ISSUER);
        }
        if audience {
            b = b.jwt_audience(AUDIENCE);
        }
        b.build().map(|_| ())
    };
    assert_eq!(build(true, true, true), Ok(()));
    assert_eq!(
        build(false, true, true),
        Err(BuildError::JwtNeeds("token_signer"))
    );
    assert_eq!(
        build(true, false, true),
        Err(BuildError::JwtNeeds("issuer"))
    );
    assert_eq!(
        build(true, true, false),
        Err(BuildError::JwtNeeds("jwt_audience"))
    );
}

/// A client whose tokens are JWTs, on a server that cannot sign: refused with `server_error`,
/// nothing issued; and a code spent for it is given back (the user need not start over).
#[tokio::test]
async fn a_jwt_the_server_cannot_sign_is_refused_and_gives_back_what_it_spent() {
    let f = fixture();
    f.clients.insert(
        Client::confidential("jwt-only", SecretHash::new(&ClientSecret::new("s")))
            .with_grant_types([GrantType::ClientCredentials])
            .with_allowed_scope("read".parse().expect("scope"))
            .with_default_scope("read".parse().expect("scope"))
            .with_access_token_format(AccessTokenFormat::Jwt),
    );
    let refused = f
        .post(("jwt-only", "s"), "grant_type=client_credentials")
        .await;
    assert_eq!(refused.status, 500, "{}", refused.json);
    assert_eq!(refused.error(), "server_error");
    assert!(f.tokens.is_empty(), "nothing was saved");

    // A code exchange: the code, spent before the token is minted, is live again afterwards.
    f.clients.insert(
        Client::confidential("jwt-web", SecretHash::new(&ClientSecret::new("s")))
            .with_grant_types([GrantType::AuthorizationCode])
            .with_redirect_uris(["https://app.example.com/cb"])
            .with_allowed_scope("read".parse().expect("scope"))
            .with_default_scope("read".parse().expect("scope"))
            .with_access_token_format(AccessTokenFormat::Jwt),
    );
    let grantor::AuthorizeOutcome::Pending { id, .. } = f
        .server
        .authorize(grantor::AuthorizationRequest::from_query(
            "response_type=code&client_id=jwt-web&state=s",
        ))
        .await
    else {
        panic!("a pending request");
    };
    let redirect = f
        .server
        .approve(&id, grantor::UserId::new("user-tom"), None)
        .await
        .expect("approved");
    let code = redirect_params(redirect.location(), false)
        .get("code")
        .cloned()
        .expect("a code");
    let exchange = f
        .post(
            ("jwt-web", "s"),
            &format!("grant_type=authorization_code&code={code}"),
        )
        .await;
    assert_eq!(exchange.error(), "server_error");
    let hash = grantor::AuthorizationCodeHash::of(&grantor::AuthorizationCode::new(code.clone()));
    assert!(matches!(
        grantor::CodeStore::find_code(f.codes.as_ref(), &hash, START)
            .await
            .expect("find"),
        grantor::CodeLookup::Live(_)
    ));
}

/// A resource server checks the server's JWTs alone (RFC 9068 §4), against its JWK Set: the
/// grant it stands for, and every refusal §4 asks for.
#[tokio::test]
async fn a_resource_server_checks_a_jwt_alone() {
    use grantor::{BearerValidator, Jwks, ResourceRequest};

    let keys = keys();
    let f = jwt_fixture_signed_by(keys.clone());
    let published: Jwks = serde_json::from_slice(f.server.jwks().body()).expect("a JWK Set");
    let api = BearerValidator::jwt(published.clone(), ISSUER, AUDIENCE).with_clock(f.clock.clone());
    let read: grantor::Scope = "read".parse().expect("scope");
    let bearer = |token: &str| ResourceRequest::new().with_authorization(format!("Bearer {token}"));

    let jwt = f.login().await.str("access_token");
    let grant = api.validate(&bearer(&jwt), &read).await.expect("valid");
    assert_eq!(grant.client_id.as_str(), "clientapp");
    assert_eq!(grant.user_id.expect("a user").as_str(), "user-tom");
    assert_eq!(grant.scope.as_str(), "read");
    assert_eq!(grant.expires_at, START + time::Duration::hours(1));
    // Client credentials: no user.
    let cc = f
        .post(
            ("service", "service-secret"),
            "grant_type=client_credentials",
        )
        .await
        .str("access_token");
    assert_eq!(
        api.validate(&bearer(&cc), &read)
            .await
            .expect("valid")
            .user_id,
        None
    );

    // Insufficient scope: 403, naming what is needed.
    let admin: grantor::Scope = "admin".parse().expect("scope");
    let refusal = api
        .validate(&bearer(&jwt), &admin)
        .await
        .expect_err("refused");
    assert_eq!(refusal.status(), 403);
    let invalid = |result: Result<grantor::AccessGrant, grantor::BearerError>| {
        result.is_err_and(|e| e.code() == Some(grantor::ErrorCode::InvalidToken))
    };
    // Another audience, another issuer.
    let other_api = BearerValidator::jwt(published.clone(), ISSUER, "https://other.example.com")
        .with_clock(f.clock.clone());
    assert!(invalid(other_api.validate(&bearer(&jwt), &read).await));
    let other_issuer =
        BearerValidator::jwt(published.clone(), "https://evil.example.com", AUDIENCE)
            .with_clock(f.clock.clone());
    assert!(invalid(other_issuer.validate(&bearer(&jwt), &read).await));
    // A tampered payload; an opaque token; garbage.
    let mut parts: Vec<&str> = jwt.split('.').collect();
    let forged_claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"iss":"https://auth.example.com","aud":"https://api.example.com","exp":4102444800,"sub":"admin","client_id":"clientapp","scope":"read admin"}"#,
    );
    parts[1] = &forged_claims;
    assert!(invalid(
        api.validate(&bearer(&parts.join(".")), &read).await
    ));
    assert!(invalid(
        api.validate(&bearer("opaque-token-value"), &read).await
    ));
    assert!(invalid(api.validate(&bearer("a.b.c"), &read).await));

    // Expiry: taken until a minute after exp (clocks differ), not after.
    f.clock.advance(std::time::Duration::from_secs(3600 + 59));
    assert!(api.validate(&bearer(&jwt), &read).await.is_ok());
    f.clock.advance(std::time::Duration::from_secs(1));
    assert!(invalid(api.validate(&bearer(&jwt), &read).await));
}

/// RFC 9068 §4: a JWT whose `typ` is not `at+jwt` (an ID token, say), whose header names an
/// algorithm other than its key's (or `none`), or whose key is unknown, is refused; a rotated key
/// is learnt with `set_jwks`.
#[tokio::test]
async fn the_header_and_the_key_decide_nothing_alone() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use grantor::{BearerValidator, Jwks, ResourceRequest, TokenSigner};

    let keys = keys();
    let api = BearerValidator::jwt(keys.jwks(), ISSUER, AUDIENCE);
    let read: grantor::Scope = "read".parse().expect("scope");
    let bearer = |token: &str| ResourceRequest::new().with_authorization(format!("Bearer {token}"));
    #[allow(clippy::disallowed_methods)] // the validator reads the system clock
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600, "iat": now,
        "sub": "user-1", "client_id": "app", "scope": "read", "jti": "j1",
    });
    let good = grantor::sign_compact(keys.as_ref(), "at+jwt", &claims)
        .await
        .expect("signed");
    assert!(api.validate(&bearer(&good), &read).await.is_ok());
    // Another type.
    let id_token = grantor::sign_compact(keys.as_ref(), "JWT", &claims)
        .await
        .expect("signed");
    assert!(api.validate(&bearer(&id_token), &read).await.is_err());
    // The same signature under a header naming another algorithm, or none.
    let (_, rest) = good.split_once('.').expect("a JWS");
    for alg in ["EdDSA", "none", "HS256"] {
        let header =
            URL_SAFE_NO_PAD.encode(format!(r#"{{"typ":"at+jwt","alg":"{alg}","kid":"k1"}}"#));
        assert!(
            api.validate(&bearer(&format!("{header}.{rest}")), &read)
                .await
                .is_err(),
            "{alg}"
        );
    }
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"typ":"at+jwt","alg":"none","kid":"k1"}"#),
        rest.split_once('.').expect("payload").0
    );
    assert!(api.validate(&bearer(&unsigned), &read).await.is_err());

    // A new key: unknown until the resource server learns the new set.
    keys.generate("k2", JwsAlgorithm::EdDsa).expect("a key");
    let rotated = grantor::sign_compact(keys.as_ref(), "at+jwt", &claims)
        .await
        .expect("signed");
    assert!(api.validate(&bearer(&rotated), &read).await.is_err());
    // A clone (here with another leeway) shares the key set it was made with.
    let lenient = api.clone().with_leeway(std::time::Duration::from_secs(120));
    assert!(api.set_jwks(keys.jwks()));
    assert!(api.validate(&bearer(&rotated), &read).await.is_ok());
    assert!(lenient.validate(&bearer(&rotated), &read).await.is_ok());
    assert!(api.validate(&bearer(&good), &read).await.is_ok());
    // A validator over a store has no key set to replace.
    assert!(!fixture()
        .server
        .bearer_validator()
        .set_jwks(Jwks::default()));
}

/// RFC 8707 with RFC 9068: a JWT asked for resources has them as its `aud` (one string, or an
/// array); one asked for none gets the default audience (§3), which introspection shows too;
/// a resource server checking JWTs alone refuses one for another resource.
#[tokio::test]
async fn a_jwt_names_the_resources_it_was_asked_for() {
    use grantor::{BearerValidator, Jwks, Resource, ResourceRequest};

    const BILLING: &str = "https://billing.example.com";
    let keys = keys();
    let f = fixture_with(move |b| {
        b.token_signer(keys)
            .jwt_audience(AUDIENCE)
            .access_token_format(AccessTokenFormat::Jwt)
            .resources([
                AUDIENCE.parse::<Resource>().expect("resource"),
                BILLING.parse().expect("resource"),
            ])
            .resource_servers(["service"])
    });
    let claims = |jwt: &str| -> serde_json::Value {
        let payload = jwt.split('.').nth(1).expect("a payload");
        serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .expect("base64url"),
        )
        .expect("JSON claims")
    };
    let cc = |extra: &str| {
        let f = &f;
        let body = format!("grant_type=client_credentials{extra}");
        async move { f.post(("service", "service-secret"), &body).await }
    };
    let enc = |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };

    let billing = cc(&format!("&resource={}", enc(BILLING))).await;
    assert_eq!(billing.status, 200, "{}", billing.json);
    let billing = billing.str("access_token");
    assert_eq!(claims(&billing)["aud"], BILLING);
    let both = cc(&format!(
        "&resource={}&resource={}",
        enc(AUDIENCE),
        enc(BILLING)
    ))
    .await
    .str("access_token");
    assert_eq!(claims(&both)["aud"], serde_json::json!([AUDIENCE, BILLING]));
    let default = cc("").await.str("access_token");
    assert_eq!(claims(&default)["aud"], AUDIENCE);
    // The independent library agrees on the default.
    check(&f.server, &default);

    // Introspection says what the JWT says.
    let introspected = answer(
        f.server
            .introspect(
                TokenRequest::form(format!("token={default}"))
                    .with_authorization(basic("service", "service-secret")),
            )
            .await,
    );
    assert_eq!(introspected.json["aud"], AUDIENCE);

    // The API checks JWTs alone and refuses billing's; billing's own check takes it.
    let published: Jwks = serde_json::from_slice(f.server.jwks().body()).expect("a JWK Set");
    let bearer = |t: &str| ResourceRequest::new().with_authorization(format!("Bearer {t}"));
    let read: grantor::Scope = "read".parse().expect("scope");
    let api = BearerValidator::jwt(published.clone(), ISSUER, AUDIENCE).with_clock(f.clock.clone());
    let refusal = api
        .validate(&bearer(&billing), &read)
        .await
        .expect_err("another resource's token");
    assert_eq!(refusal.status(), 401);
    let grant = api.validate(&bearer(&both), &read).await.expect("names it");
    assert_eq!(grant.audience, [AUDIENCE, BILLING]);
    let billing_check =
        BearerValidator::jwt(published, ISSUER, BILLING).with_clock(f.clock.clone());
    assert!(billing_check
        .validate(&bearer(&billing), &read)
        .await
        .is_ok());
    assert!(billing_check
        .validate(&bearer(&default), &read)
        .await
        .is_err());
    // The store's validator with an audience agrees.
    let stored = f.server.bearer_validator().with_audience(AUDIENCE);
    assert!(stored.validate(&bearer(&billing), &read).await.is_err());
    assert!(stored.validate(&bearer(&default), &read).await.is_ok());
}

/// The server's JWK Set, counted, optionally slow or failing: what a resource server's fetches
/// of `jwks_uri` would meet.
struct CountingSource {
    server: grantor::AuthorizationServer,
    fetches: std::sync::atomic::AtomicUsize,
    delay: std::time::Duration,
    failing: std::sync::atomic::AtomicBool,
}

#[grantor::async_trait]
impl grantor::JwksSource for CountingSource {
    async fn fetch(&self) -> Result<grantor::Jwks, grantor::BoxError> {
        use std::sync::atomic::Ordering;
        self.fetches.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if self.failing.load(Ordering::SeqCst) {
            return Err("the authorization server is down".into());
        }
        grantor::JwksSource::fetch(&self.server).await
    }
}

impl CountingSource {
    fn count(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A resource server given a JWK Set source learns keys as the server rotates them: at its
/// first check, when a token names a key it lacks (but never twice within the interval, however
/// many such tokens come, and one fetch for many concurrent ones), and when its set grows old
/// (so an unpublished key stops checking); a failed fetch keeps the set it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resource_server_fetches_the_jwk_set_as_its_policy_says() {
    use grantor::JwksRefresh;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    let v = Fetching::new(Duration::from_millis(20), JwksRefresh::default());
    let (f, source, keys) = (&v.f, &v.source, &v.keys);
    let check = |token: String| v.check(&token);
    let wait = |secs| f.clock.advance(Duration::from_secs(secs));

    // The JWK Set may be kept five minutes (resource servers, caches).
    assert_eq!(
        f.server.jwks().header("Cache-Control"),
        Some("public, max-age=300")
    );

    // The first check fetches the set.
    let first = f.login().await.str("access_token");
    assert!(check(first.clone()).await);
    assert_eq!(source.count(), 1);
    assert!(check(first.clone()).await);
    assert_eq!(source.count(), 1, "a fresh set is not fetched again");

    // The server rotates to k2: a token signed by it names a key the set lacks. Within the
    // interval of the last fetch it is refused, with no fetch; after it, it is fetched.
    keys.generate("k2", grantor::JwsAlgorithm::Es256)
        .expect("a key");
    let second = f.login().await.str("access_token");
    assert!(!check(second.clone()).await);
    assert_eq!(source.count(), 1);
    wait(31);
    let second = f.login().await.str("access_token");
    assert!(check(second.clone()).await);
    assert_eq!(source.count(), 2);
    // Past the interval, a set younger than its max age is kept: only age, or a key it lacks,
    // calls for a fetch.
    wait(31);
    assert!(check(second.clone()).await);
    assert_eq!(source.count(), 2, "a set younger than its max age is kept");
    // A token whose signature is wrong names a key the set has: refused, with no fetch.
    let forged = format!("{}A", second.trim_end_matches('A'));
    let forged = if forged == second {
        format!("{}B", &second[..second.len() - 1])
    } else {
        forged
    };
    assert!(!check(forged).await);
    assert_eq!(source.count(), 2, "a bad signature is no reason to fetch");

    // A hundred concurrent tokens naming a made-up key: one fetch.
    wait(31);
    let made_up = {
        let mut parts: Vec<String> = second.split('.').map(str::to_owned).collect();
        parts[0] = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"typ":"at+jwt","alg":"ES256","kid":"no-such-key"}"#,
        );
        parts.join(".")
    };
    let checks: Vec<_> = (0..100)
        .map(|_| tokio::spawn(check(made_up.clone())))
        .collect();
    for c in checks {
        assert!(!c.await.expect("joined"));
    }
    assert_eq!(source.count(), 3, "one fetch for them all");

    // k1 retired and unpublished by the server: once the set is older than its max age (5
    // minutes), the next check fetches it, and k1's token no longer checks.
    keys.retire("k1");
    assert!(keys.unpublish("k1"));
    assert!(check(first.clone()).await, "the set in use still has k1");
    wait(300);
    assert!(!check(first.clone()).await);
    assert_eq!(source.count(), 4);
    assert!(check(second.clone()).await);

    // The server is down: the set in use is kept, and tokens still check.
    source.failing.store(true, Ordering::SeqCst);
    wait(301);
    assert!(check(second.clone()).await);
    assert_eq!(source.count(), 5);
}

/// A JWT validator fetching from `source` (the fixture's server, counted), and a check of
/// `token` for scope `read` with it.
struct Fetching {
    f: Fixture,
    keys: Arc<LocalKeys>,
    source: Arc<CountingSource>,
    validator: grantor::BearerValidator,
}

impl Fetching {
    fn new(delay: std::time::Duration, refresh: grantor::JwksRefresh) -> Self {
        let keys = keys();
        let f = jwt_fixture_signed_by(keys.clone());
        let source = Arc::new(CountingSource {
            server: f.server.clone(),
            fetches: Default::default(),
            delay,
            failing: Default::default(),
        });
        let validator = grantor::BearerValidator::jwt(grantor::Jwks::default(), ISSUER, AUDIENCE)
            .with_clock(f.clock.clone())
            .with_jwks_source(source.clone(), refresh);
        Self {
            f,
            keys,
            source,
            validator,
        }
    }

    fn check(&self, token: &str) -> impl std::future::Future<Output = bool> + Send + 'static {
        let validator = self.validator.clone();
        let request = grantor::ResourceRequest::new().with_authorization(format!("Bearer {token}"));
        async move {
            validator
                .validate(&request, &"read".parse().expect("scope"))
                .await
                .is_ok()
        }
    }
}

/// Many first checks at once, with an empty set and a slow source: one fetches, the others
/// wait for it, and all are taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_checks_wait_for_the_one_fetch() {
    let v = Fetching::new(
        std::time::Duration::from_millis(200),
        grantor::JwksRefresh::default(),
    );
    let token = v.f.login().await.str("access_token");
    let checks: Vec<_> = (0..50).map(|_| tokio::spawn(v.check(&token))).collect();
    for c in checks {
        assert!(c.await.expect("joined"), "taken once the fetch is in");
    }
    assert_eq!(v.source.count(), 1);
}

/// A request abandoned in the middle of its fetch (a client gone, a timeout above) leaves
/// no claim behind: the next request fetches at once. A fetch that hangs is given up at its
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_or_hung_fetch_holds_up_nobody() {
    use std::time::Duration;

    let v = Fetching::new(
        Duration::from_millis(300),
        grantor::JwksRefresh::default().with_fetch_timeout(Duration::from_millis(100)),
    );
    let token = v.f.login().await.str("access_token");
    // The source takes 300 ms and the fetch gives up at 100: refused, and counted.
    assert!(!v.check(&token).await);
    assert_eq!(v.source.count(), 1);

    let v = Fetching::new(Duration::from_millis(300), grantor::JwksRefresh::default());
    let token = v.f.login().await.str("access_token");
    let abandoned = tokio::time::timeout(Duration::from_millis(50), v.check(&token)).await;
    assert!(abandoned.is_err(), "abandoned mid-fetch");
    assert_eq!(v.source.count(), 1);
    // Same instant on the validator's clock: without the claim given back, no fetch would be
    // allowed for 30 seconds.
    assert!(v.check(&token).await);
    assert_eq!(v.source.count(), 2);
}

/// A clock set back (a VM resumed, NTP stepping) does not freeze fetches: a fetch time after
/// now counts as long past.
#[tokio::test]
async fn a_clock_set_back_does_not_freeze_fetches() {
    let v = Fetching::new(std::time::Duration::ZERO, grantor::JwksRefresh::default());
    let token = v.f.login().await.str("access_token");
    assert!(v.check(&token).await);
    assert_eq!(v.source.count(), 1);
    v.f.clock.set(START - time::Duration::hours(2));
    // The token is not yet valid two hours before it was issued; what matters is the fetch.
    let _ = v.check(&token).await;
    assert_eq!(v.source.count(), 2, "fetched again at once");
}

/// A key published for encryption (`use: enc`) checks no signature, even under the token's
/// `kid`.
#[tokio::test]
async fn a_key_for_encryption_checks_no_signature() {
    use grantor::{BearerValidator, Jwks, ResourceRequest};

    let f = jwt_fixture();
    let jwt = f.login().await.str("access_token");
    let mut published: Jwks = serde_json::from_slice(f.server.jwks().body()).expect("a JWK Set");
    let validator =
        BearerValidator::jwt(published.clone(), ISSUER, AUDIENCE).with_clock(f.clock.clone());
    let request = ResourceRequest::new().with_authorization(format!("Bearer {jwt}"));
    let read: grantor::Scope = "read".parse().expect("scope");
    assert!(validator.validate(&request, &read).await.is_ok());
    published.keys[0].use_ = "enc".to_owned();
    validator.set_jwks(published);
    assert!(validator.validate(&request, &read).await.is_err());
}

/// A JWT signed with the fixture's key (`k1`) with the given header and claims, as an outside
/// signer would write it.
async fn hand_signed(keys: &LocalKeys, header: &str, claims: &serde_json::Value) -> String {
    use base64::Engine as _;
    use grantor::TokenSigner as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let input = format!(
        "{}.{}",
        b64(header.as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = keys.sign("k1", input.as_bytes()).await.expect("signed");
    format!("{input}.{}", b64(&signature))
}

/// RFC 9068 §4 and RFC 7519: `nbf` (with the leeway), a `crit` header, the media-type spelling
/// of `typ`, and the size bound, each checked by a resource server alone.
#[tokio::test]
async fn a_resource_server_checks_nbf_crit_typ_and_size() {
    use grantor::{BearerValidator, ManualClock, ResourceRequest};

    let keys = keys();
    let clock = Arc::new(ManualClock::new(START));
    let validator =
        BearerValidator::jwt(grantor::TokenSigner::jwks(keys.as_ref()), ISSUER, AUDIENCE)
            .with_clock(clock.clone());
    let now = START.unix_timestamp();
    let claims = |nbf: Option<i64>, padding: usize| {
        let mut claims = serde_json::json!({
            "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600, "iat": now,
            "sub": "user-tom", "client_id": "clientapp", "scope": "read",
            "jti": "x".repeat(padding.max(1)),
        });
        if let Some(nbf) = nbf {
            claims["nbf"] = nbf.into();
        }
        claims
    };
    let taken = |token: String| {
        let validator = validator.clone();
        async move {
            validator
                .validate(
                    &ResourceRequest::new().with_authorization(format!("Bearer {token}")),
                    &"read".parse().expect("scope"),
                )
                .await
                .is_ok()
        }
    };
    let header = r#"{"typ":"at+jwt","alg":"ES256","kid":"k1"}"#;
    assert!(taken(hand_signed(&keys, header, &claims(None, 1)).await).await);
    // nbf: within the 60-second leeway taken, beyond it refused.
    assert!(taken(hand_signed(&keys, header, &claims(Some(now + 60), 1)).await).await);
    assert!(!taken(hand_signed(&keys, header, &claims(Some(now + 61), 1)).await).await);
    // A critical header extension grantor does not understand: refused (RFC 7515 §4.1.11).
    let crit = r#"{"typ":"at+jwt","alg":"ES256","kid":"k1","crit":["exp"]}"#;
    assert!(!taken(hand_signed(&keys, crit, &claims(None, 1)).await).await);
    // typ as a media type (RFC 9068 §2.1), any case.
    let media = r#"{"typ":"Application/AT+JWT","alg":"ES256","kid":"k1"}"#;
    assert!(taken(hand_signed(&keys, media, &claims(None, 1)).await).await);
    // A token over 8 KiB is refused unread, even validly signed.
    let big = hand_signed(&keys, header, &claims(None, 7 * 1024)).await;
    assert!(big.len() > 8 * 1024);
    assert!(!taken(big).await);
    let under = hand_signed(&keys, header, &claims(None, 5 * 1024)).await;
    assert!(under.len() < 8 * 1024);
    assert!(taken(under).await);
    // Exactly 8 KiB is within the bound, one byte more is not.
    // (Unpadded base64 never has a length of 4k + 1, so the header's length varies too.)
    let mut exact = None;
    let spaced = r#"{"typ":"at+jwt", "alg":"ES256","kid":"k1"}"#;
    'search: for padding in 5600..6300 {
        for header in [header, spaced] {
            let token = hand_signed(&keys, header, &claims(None, padding)).await;
            if token.len() == 8 * 1024 {
                exact = Some(token);
                break 'search;
            }
        }
    }
    let exact = exact.expect("a padding that makes the token exactly 8 KiB");
    assert!(taken(exact.clone()).await);
    assert!(!taken(format!("{exact}A")).await);
}

/// A host's own fetch (a closure over its HTTP client; here, reading the published document)
/// is a JWK Set source: the validator starts with no keys and takes a token once it fetched.
#[tokio::test]
async fn a_closure_is_a_jwk_set_source() {
    use grantor::{BearerValidator, BoxError, Jwks, JwksRefresh, ResourceRequest};

    let f = jwt_fixture_signed_by(keys());
    let server = f.server.clone();
    let fetch = move || {
        let server = server.clone();
        async move {
            let published: Jwks = serde_json::from_slice(server.jwks().body())?;
            Ok::<_, BoxError>(published)
        }
    };
    let api = BearerValidator::jwt(Jwks::default(), ISSUER, AUDIENCE)
        .with_clock(f.clock.clone())
        .with_jwks_source(Arc::new(fetch), JwksRefresh::default());
    let jwt = f.login().await.str("access_token");
    let grant = api
        .validate(
            &ResourceRequest::new().with_authorization(format!("Bearer {jwt}")),
            &"read".parse().expect("scope"),
        )
        .await
        .expect("valid once the set is fetched");
    assert_eq!(grant.client_id.as_str(), "clientapp");
}

/// Checks of a token signed by a new key, all at once: one of them fetches the set; the others
/// wait for that fetch (not for the whole wait bound) and take the token with the new set,
/// rather than refuse it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_checks_of_a_new_key_wait_for_the_one_fetch() {
    use std::time::Duration;

    let v = Fetching::new(Duration::from_millis(50), grantor::JwksRefresh::default());
    let first = v.f.login().await.str("access_token");
    assert!(v.check(&first).await);
    assert_eq!(v.source.count(), 1);
    v.keys
        .generate("k2", grantor::JwsAlgorithm::Es256)
        .expect("a key");
    v.f.clock.advance(Duration::from_secs(31));
    let second = v.f.login().await.str("access_token");
    let checks: Vec<_> = (0..20).map(|_| tokio::spawn(v.check(&second))).collect();
    // The validator waits at most 2 s for another request's fetch; a 50 ms fetch ends well
    // before that, and its waiters with it.
    let all = tokio::time::timeout(Duration::from_millis(1500), async {
        for c in checks {
            assert!(c.await.expect("joined"), "a waiter took the new key");
        }
    })
    .await;
    assert!(all.is_ok(), "the waiters woke when the fetch ended");
    assert_eq!(v.source.count(), 2, "one fetch for them all");
}

/// A JWT meant for several resources is taken by a resource server it names, and refused by
/// one it does not.
#[tokio::test]
async fn a_jwt_for_several_resources_is_taken_only_where_it_is_meant() {
    use grantor::{BearerValidator, Jwks, Resource, ResourceRequest};

    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let keys = keys();
    let api = "https://api.example.com/";
    let files = "https://files.example.com/";
    let resources = [api, files].map(|r| Resource::parse(r).expect("a resource"));
    let f = fixture_with(move |b| {
        b.token_signer(keys)
            .jwt_audience(AUDIENCE)
            .access_token_format(AccessTokenFormat::Jwt)
            .resources(resources)
    });
    let jwt = f
        .post(
            ("service", "service-secret"),
            &format!(
                "grant_type=client_credentials&resource={}&resource={}",
                enc(api),
                enc(files)
            ),
        )
        .await
        .str("access_token");
    let published: Jwks = serde_json::from_slice(f.server.jwks().body()).expect("a JWK Set");
    let at = |audience: &str| {
        BearerValidator::jwt(published.clone(), ISSUER, audience).with_clock(f.clock.clone())
    };
    let request = ResourceRequest::new().with_authorization(format!("Bearer {jwt}"));
    let read = "read".parse().expect("scope");
    assert!(at(files).validate(&request, &read).await.is_ok());
    assert!(at(api).validate(&request, &read).await.is_ok());
    let elsewhere = at("https://elsewhere.example.com/");
    assert_eq!(
        elsewhere
            .validate(&request, &read)
            .await
            .err()
            .map(|e| e.status()),
        Some(401)
    );
}

/// A key is used only as what it says it is: a P-256 or Ed25519 key published under another
/// key type checks no signature, even a right one.
#[tokio::test]
async fn a_key_under_the_wrong_type_checks_nothing() {
    use grantor::{BearerValidator, JwsAlgorithm, ResourceRequest};

    for (alg, other_type) in [(JwsAlgorithm::Es256, "OKP"), (JwsAlgorithm::EdDsa, "EC")] {
        let keys = Arc::new(LocalKeys::new());
        keys.generate("k1", alg).expect("a key");
        let f = jwt_fixture_signed_by(keys.clone());
        let jwt = f.login().await.str("access_token");
        let right = grantor::TokenSigner::jwks(keys.as_ref());
        let mut wrong = right.clone();
        for key in &mut wrong.keys {
            key.kty = other_type.to_owned();
        }
        let request = ResourceRequest::new().with_authorization(format!("Bearer {jwt}"));
        let read = "read".parse().expect("scope");
        let with = |set: grantor::Jwks| {
            BearerValidator::jwt(set, ISSUER, AUDIENCE).with_clock(f.clock.clone())
        };
        assert!(
            with(right).validate(&request, &read).await.is_ok(),
            "{alg:?}"
        );
        assert!(
            with(wrong).validate(&request, &read).await.is_err(),
            "{alg:?}"
        );
    }
}
