//! The authorization endpoint and the authorization code grant with PKCE (RFC 6749 §3.1, §4.1;
//! RFC 7636; RFC 9700 §2.1, §4.1, §4.8; RFC 9207).

mod common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use grantor::CodeStore as _;
use grantor::{
    AuthorizationRequest, AuthorizationRequestId, AuthorizeOutcome, Decision, ErrorCode, Reason,
    Redirect, ResourceRequest, Scope, TokenRequest, UserId, ValidAuthorization,
};
use sha2::{Digest, Sha256};

const CALLBACK: &str = "http://localhost:3000/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A PKCE code request for the public client `pkce-app`.
fn spa_query(extra: &str) -> String {
    format!(
        "response_type=code&client_id=pkce-app&redirect_uri={}&state=xyz&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        enc(CALLBACK)
    )
}

async fn authorize(f: &Fixture, query: &str) -> AuthorizeOutcome {
    f.server
        .authorize(AuthorizationRequest::from_query(query))
        .await
}

async fn pending(f: &Fixture, query: &str) -> AuthorizationRequestId {
    match authorize(f, query).await {
        AuthorizeOutcome::Pending { id, .. } => id,
        other => panic!("expected a pending request, got {other:?}"),
    }
}

fn redirected(outcome: AuthorizeOutcome) -> Redirect {
    match outcome {
        AuthorizeOutcome::Redirect(r) => r,
        other => panic!("expected a redirect, got {other:?}"),
    }
}

fn invalid(outcome: AuthorizeOutcome) -> ErrorCode {
    match outcome {
        AuthorizeOutcome::Invalid(e) => e.code(),
        other => panic!("expected an error page, got {other:?}"),
    }
}

/// `webapp` registered again, as its owner may change it while a user signs in: one grant,
/// one redirect URI.
fn webapp(grant: grantor::GrantType, redirect_uri: &str) -> grantor::Client {
    grantor::Client::confidential(
        "webapp",
        grantor::SecretHash::new(&grantor::ClientSecret::new("web-secret")),
    )
    .with_grant_types([grant])
    .with_redirect_uris([redirect_uri])
    .with_default_scope("read".parse().expect("s"))
    .with_allowed_scope("read".parse().expect("s"))
}

/// The code from an approval's redirect, checking `state` and `iss`.
async fn approve_for_code(f: &Fixture, id: &AuthorizationRequestId) -> String {
    let r = f
        .server
        .approve(id, UserId::new("user-tom"), None)
        .await
        .expect("approve");
    assert!(
        r.location().starts_with(CALLBACK)
            || r.location().starts_with("https://app.example.com/cb")
    );
    let p = redirect_params(r.location(), false);
    assert_eq!(p.get("iss").map(String::as_str), Some(ISSUER));
    p.get("code").cloned().expect("code")
}

async fn exchange(f: &Fixture, body: String, auth: Option<(&str, &str)>) -> Answer {
    let mut req = TokenRequest::form(body);
    if let Some((id, secret)) = auth {
        req = req.with_authorization(basic(id, secret));
    }
    f.token(req).await
}

/// `webapp` (authenticated, no PKCE, no redirect_uri) exchanges the code in `r`.
async fn webapp_exchange(f: &Fixture, r: &Redirect) -> Answer {
    let code = redirect_params(r.location(), false)
        .get("code")
        .cloned()
        .expect("code");
    exchange(
        f,
        format!("grant_type=authorization_code&code={code}"),
        Some(("webapp", "web-secret")),
    )
    .await
}

fn spa_exchange(code: &str, verifier: &str) -> String {
    format!(
        "grant_type=authorization_code&code={code}&redirect_uri={}&client_id=pkce-app&code_verifier={verifier}",
        enc(CALLBACK)
    )
}

#[tokio::test]
async fn code_with_pkce_end_to_end() {
    let f = fixture();
    let (id, request) = match authorize(&f, &spa_query("&scope=read+write")).await {
        AuthorizeOutcome::Pending { id, request } => (id, request),
        other => panic!("{other:?}"),
    };
    assert_eq!(request.client_id.as_str(), "pkce-app");
    assert_eq!(request.scope, "read write".parse::<Scope>().expect("scope"));
    assert_eq!(request.state.as_deref(), Some("xyz"));
    // The host can read it again (to redraw its page) without spending it.
    assert!(f
        .server
        .authorization_request(&id)
        .await
        .expect("read")
        .is_some());

    let r = f
        .server
        .approve(&id, UserId::new("user-tom"), None)
        .await
        .expect("approve");
    let response = r.clone().into_response();
    assert_eq!(response.status(), 302);
    assert_eq!(response.header("Cache-Control"), Some("no-store"));
    assert_eq!(response.header("Location"), Some(r.location()));
    let p = redirect_params(r.location(), false);
    assert_eq!(p.get("state").map(String::as_str), Some("xyz"));
    assert_eq!(p.get("iss").map(String::as_str), Some(ISSUER));
    let code = p.get("code").expect("code");
    assert_eq!(code.len(), 43);
    assert!(
        !format!("{r:?}").contains(code.as_str()),
        "Debug shows no code"
    );

    let a = exchange(&f, spa_exchange(code, VERIFIER), None).await;
    assert_eq!(a.status, 200, "{}", a.json);
    a.assert_no_store();
    assert_eq!(a.json["scope"], "read write");
    assert!(a.json["refresh_token"].is_string());
    let grant = f
        .server
        .bearer_validator()
        .validate(
            &ResourceRequest::new().with_authorization(format!("Bearer {}", a.str("access_token"))),
            &"write".parse().expect("scope"),
        )
        .await
        .expect("token works");
    assert_eq!(
        grant.user_id.map(|u| u.into_string()),
        Some("user-tom".into())
    );
    // The pending request is spent.
    assert!(f
        .server
        .authorization_request(&id)
        .await
        .expect("read")
        .is_none());
    assert!(f
        .server
        .approve(&id, UserId::new("user-tom"), None)
        .await
        .is_err());
}

#[tokio::test]
async fn untrusted_requests_are_error_pages_never_redirects() {
    let f = fixture();
    let cb = enc(CALLBACK);
    let pk = format!("code_challenge={CHALLENGE}&code_challenge_method=S256");
    let cases = [
        format!("response_type=code&redirect_uri={cb}&{pk}"),
        format!("response_type=code&client_id=ghost&redirect_uri={cb}&{pk}"),
        format!("response_type=code&client_id=pkce-app&client_id=pkce-app&redirect_uri={cb}&{pk}"),
        format!("response_type=code&client_id=pkce-app&redirect_uri={cb}&redirect_uri={cb}&{pk}"),
        // Not registered: prefix, extra path, extra query, fragment, other scheme, trailing slash.
        format!(
            "response_type=code&client_id=pkce-app&redirect_uri={}&{pk}",
            enc("http://localhost:3000/callbackx")
        ),
        format!(
            "response_type=code&client_id=pkce-app&redirect_uri={}&{pk}",
            enc("http://localhost:3000/callback/x")
        ),
        format!(
            "response_type=code&client_id=pkce-app&redirect_uri={}&{pk}",
            enc("http://localhost:3000/callback?a=1")
        ),
        format!(
            "response_type=code&client_id=pkce-app&redirect_uri={}&{pk}",
            enc("http://localhost:3000/callback#f")
        ),
        format!(
            "response_type=code&client_id=pkce-app&redirect_uri={}&{pk}",
            enc("https://localhost:3000/callback")
        ),
        format!(
            "response_type=code&client_id=pkce-app&redirect_uri={}&{pk}",
            enc("http://localhost:3000/callback/")
        ),
        format!(
            "response_type=code&client_id=pkce-app&redirect_uri={}&{pk}",
            enc("http://LOCALHOST:3000/callback")
        ),
        // Several registered and none sent.
        format!("response_type=code&client_id=pkce-app&{pk}"),
        // Malformed encoding.
        "response_type=code&client_id=%zz".to_owned(),
        // A client with no registered redirect URI at all.
        "response_type=code&client_id=clientapp".to_owned(),
    ];
    for q in cases {
        assert_eq!(
            invalid(authorize(&f, &q).await),
            ErrorCode::InvalidRequest,
            "{q}"
        );
    }
}

#[tokio::test]
async fn with_one_registered_uri_the_parameter_may_be_omitted() {
    let f = fixture();
    let id = pending(&f, "response_type=code&client_id=webapp&state=s").await;
    let r = f
        .server
        .approve(&id, UserId::new("user-tom"), None)
        .await
        .expect("approve");
    // The registered URI's own query is kept.
    assert!(
        r.location()
            .starts_with("https://app.example.com/cb?tenant=7&code="),
        "{}",
        r.location()
    );
    // No redirect_uri in the request, so none is needed in the exchange.
    let a = webapp_exchange(&f, &r).await;
    assert_eq!(a.status, 200, "{}", a.json);
}

#[tokio::test]
async fn trusted_errors_redirect_with_state_and_iss() {
    let f = fixture();
    let cb = enc(CALLBACK);
    let cases = [
        (format!("client_id=pkce-app&redirect_uri={cb}&state=s"), "invalid_request"),
        (format!("response_type=magic&client_id=pkce-app&redirect_uri={cb}&state=s"), "unsupported_response_type"),
        (spa_query("&scope=admin").replace("state=xyz", "state=s"), "invalid_scope"),
        (spa_query("&scope=read&scope=write").replace("state=xyz", "state=s"), "invalid_request"),
        // Public client without PKCE.
        (format!("response_type=code&client_id=pkce-app&redirect_uri={cb}&state=s"), "invalid_request"),
        // plain is refused by default (and is the default method).
        (format!("response_type=code&client_id=pkce-app&redirect_uri={cb}&state=s&code_challenge={CHALLENGE}"), "invalid_request"),
        (format!("response_type=code&client_id=pkce-app&redirect_uri={cb}&state=s&code_challenge={CHALLENGE}&code_challenge_method=plain"), "invalid_request"),
        (format!("response_type=code&client_id=pkce-app&redirect_uri={cb}&state=s&code_challenge=short&code_challenge_method=S256"), "invalid_request"),
        // A hex SHA-256 is not what S256 produces: such a code could never be redeemed.
        (format!("response_type=code&client_id=pkce-app&redirect_uri={cb}&state=s&code_challenge={}&code_challenge_method=S256", "ab".repeat(32)), "invalid_request"),
    ];
    for (q, error) in cases {
        let r = redirected(authorize(&f, &q).await);
        let p = redirect_params(r.location(), false);
        assert_eq!(p.get("error").map(String::as_str), Some(error), "{q}");
        assert!(p.contains_key("error_description"));
        assert_eq!(p.get("state").map(String::as_str), Some("s"), "{q}");
        assert_eq!(p.get("iss").map(String::as_str), Some(ISSUER));
        assert!(r.location().starts_with(&format!("{CALLBACK}?")));
    }
    // A client not registered for the code grant.
    let f2 = fixture();
    f2.clients.insert(
        grantor::Client::public("pw-only")
            .with_grant_types([grantor::GrantType::Password])
            .with_redirect_uris([CALLBACK])
            .with_default_scope("read".parse().expect("scope"))
            .with_allowed_scope("read".parse().expect("scope")),
    );
    let r = redirected(authorize(&f2, &format!("response_type=code&client_id=pw-only&code_challenge={CHALLENGE}&code_challenge_method=S256")).await);
    assert_eq!(
        redirect_params(r.location(), false)
            .get("error")
            .map(String::as_str),
        Some("unauthorized_client")
    );
}

#[tokio::test]
async fn plain_pkce_only_when_enabled() {
    let f = fixture_with(|b| b.allow_plain_pkce(true));
    let plain = "a-plain-verifier-that-is-long-enough-to-pass-43";
    let id = pending(
        &f,
        &format!(
            "response_type=code&client_id=pkce-app&redirect_uri={}&code_challenge={plain}",
            enc(CALLBACK)
        ),
    )
    .await;
    let code = approve_for_code(&f, &id).await;
    let a = exchange(&f, spa_exchange(&code, plain), None).await;
    assert_eq!(a.status, 200, "{}", a.json);
}

#[tokio::test]
async fn require_pkce_applies_to_confidential_clients_too() {
    let f = fixture_with(|b| b.require_pkce(true));
    let r = redirected(authorize(&f, "response_type=code&client_id=webapp").await);
    assert_eq!(
        redirect_params(r.location(), false)
            .get("error")
            .map(String::as_str),
        Some("invalid_request")
    );
    // Without the option a confidential client may skip PKCE.
    let f = fixture();
    pending(&f, "response_type=code&client_id=webapp").await;
}

#[tokio::test]
async fn deny_sends_access_denied_and_spends_the_request() {
    let f = fixture();
    let id = pending(&f, &spa_query("")).await;
    let r = f.server.deny(&id).await.expect("deny");
    let p = redirect_params(r.location(), false);
    assert_eq!(p.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(p.get("state").map(String::as_str), Some("xyz"));
    assert_eq!(p.get("iss").map(String::as_str), Some(ISSUER));
    assert!(!p.contains_key("code"));
    assert_eq!(
        f.server
            .approve(&id, UserId::new("user-tom"), None)
            .await
            .err()
            .map(|e| e.code()),
        Some(ErrorCode::InvalidRequest)
    );
    assert!(f.server.deny(&id).await.is_err());
    assert!(f
        .server
        .deny(&AuthorizationRequestId::new("made-up"))
        .await
        .is_err());
}

#[tokio::test]
async fn the_host_may_narrow_the_scope_but_not_widen_it() {
    let f = fixture();
    let id = pending(&f, &spa_query("&scope=read+write")).await;
    let wide = f
        .server
        .approve(
            &id,
            UserId::new("u"),
            Some("read write admin".parse().expect("s")),
        )
        .await;
    assert_eq!(wide.err().map(|e| e.code()), Some(ErrorCode::InvalidScope));
    let id = pending(&f, &spa_query("&scope=read+write")).await;
    let r = f
        .server
        .approve(&id, UserId::new("u"), Some("read".parse().expect("s")))
        .await
        .expect("approve");
    let code = redirect_params(r.location(), false)
        .get("code")
        .cloned()
        .expect("code");
    let a = exchange(&f, spa_exchange(&code, VERIFIER), None).await;
    assert_eq!(a.json["scope"], "read");
}

#[tokio::test]
async fn a_pending_request_expires() {
    let f = fixture();
    let id = pending(&f, &spa_query("")).await;
    f.clock.advance(Duration::from_secs(600));
    assert!(f
        .server
        .authorization_request(&id)
        .await
        .expect("read")
        .is_none());
    assert!(f.server.approve(&id, UserId::new("u"), None).await.is_err());
}

#[tokio::test]
async fn a_code_works_once_and_a_second_use_revokes_its_tokens() {
    let f = fixture();
    let id = pending(&f, &spa_query("")).await;
    let code = approve_for_code(&f, &id).await;
    let first = exchange(&f, spa_exchange(&code, VERIFIER), None).await;
    assert_eq!(first.status, 200);
    let second = exchange(&f, spa_exchange(&code, VERIFIER), None).await;
    assert_eq!((second.status, second.error()), (400, "invalid_grant"));
    second.assert_no_store();
    let check = f
        .server
        .bearer_validator()
        .validate(
            &ResourceRequest::new()
                .with_authorization(format!("Bearer {}", first.str("access_token"))),
            &Scope::empty(),
        )
        .await;
    assert_eq!(check.err().map(|e| e.status()), Some(401));
    let refresh = f
        .token(TokenRequest::form(format!(
            "grant_type=refresh_token&refresh_token={}&client_id=pkce-app",
            first.str("refresh_token")
        )))
        .await;
    assert_eq!(refresh.error(), "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_redeemed_by_100_requests_at_once_leaves_no_live_token() {
    let f = std::sync::Arc::new(fixture());
    let id = pending(&f, &spa_query("")).await;
    let code = approve_for_code(&f, &id).await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (f, code) = (f.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            let a = exchange(&f, spa_exchange(&code, VERIFIER), None).await;
            (
                a.status,
                a.json
                    .get("access_token")
                    .and_then(|t| t.as_str())
                    .map(str::to_owned),
            )
        }));
    }
    let mut issued = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.expect("task") {
            (200, Some(token)) => issued.push(token),
            (400, None) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    // One request at most got tokens (the store spends the code once), and the 99 replays
    // revoked them: nothing issued from the code stays valid.
    assert!(
        issued.len() <= 1 && refused >= 99,
        "{} issued, {refused} refused",
        issued.len()
    );
    for token in issued {
        let check = f
            .server
            .bearer_validator()
            .validate(
                &ResourceRequest::new().with_authorization(format!("Bearer {token}")),
                &Scope::empty(),
            )
            .await;
        assert_eq!(check.err().map(|e| e.status()), Some(401));
    }
}

/// A memory code store with the faults of a real one, each off until a test turns it on:
/// - `stale`: the next read of one code answers what was read earlier (an exchange that read
///   the code live just before another exchange spent it);
/// - `timeless`: expiry is not judged (reads and spends happen as at the fixture's start);
/// - `rival`: another client always spends the code first, with this family.
#[derive(Default)]
struct OddCodes {
    inner: grantor::MemoryCodeStore,
    stale: std::sync::Mutex<Option<(grantor::AuthorizationCodeHash, grantor::CodeLookup)>>,
    timeless: bool,
    rival: std::sync::Mutex<Option<grantor::FamilyId>>,
}

impl OddCodes {
    fn now(&self, now: time::OffsetDateTime) -> time::OffsetDateTime {
        if self.timeless {
            START
        } else {
            now
        }
    }
}

#[grantor::async_trait]
impl grantor::CodeStore for OddCodes {
    async fn save_pending(
        &self,
        id: &grantor::RequestIdHash,
        request: &grantor::PendingAuthorization,
        limits: &grantor::PendingLimits,
        now: time::OffsetDateTime,
    ) -> Result<grantor::Admission, grantor::StoreError> {
        self.inner.save_pending(id, request, limits, now).await
    }
    async fn find_pending(
        &self,
        id: &grantor::RequestIdHash,
        now: time::OffsetDateTime,
    ) -> Result<Option<grantor::PendingAuthorization>, grantor::StoreError> {
        self.inner.find_pending(id, now).await
    }
    async fn take_pending(
        &self,
        id: &grantor::RequestIdHash,
        now: time::OffsetDateTime,
    ) -> Result<Option<grantor::PendingAuthorization>, grantor::StoreError> {
        self.inner.take_pending(id, now).await
    }
    async fn save_code(
        &self,
        code: &grantor::AuthorizationCodeHash,
        grant: &grantor::CodeGrant,
        now: time::OffsetDateTime,
    ) -> Result<(), grantor::StoreError> {
        self.inner.save_code(code, grant, now).await
    }
    async fn find_code(
        &self,
        code: &grantor::AuthorizationCodeHash,
        now: time::OffsetDateTime,
    ) -> Result<grantor::CodeLookup, grantor::StoreError> {
        let served = {
            let mut stale = self.stale.lock().expect("lock");
            match stale.take() {
                Some((hash, lookup)) if hash == *code => Some(lookup),
                other => {
                    *stale = other;
                    None
                }
            }
        };
        match served {
            Some(lookup) => Ok(lookup),
            None => self.inner.find_code(code, self.now(now)).await,
        }
    }
    async fn spend_code(
        &self,
        code: &grantor::AuthorizationCodeHash,
        mark: &grantor::SpentCode,
        now: time::OffsetDateTime,
    ) -> Result<grantor::CodeSpend, grantor::StoreError> {
        let now = self.now(now);
        let rival = self.rival.lock().expect("lock").clone();
        let Some(rival) = rival else {
            return self.inner.spend_code(code, mark, now).await;
        };
        let theirs = grantor::SpentCode::new(
            grantor::ClientId::new("other"),
            rival,
            now + time::Duration::hours(1),
        );
        self.inner.spend_code(code, &theirs, now).await?;
        Ok(grantor::CodeSpend::Conflict)
    }
    async fn restore_code(
        &self,
        code: &grantor::AuthorizationCodeHash,
        grant: &grantor::CodeGrant,
        now: time::OffsetDateTime,
    ) -> Result<grantor::CodeRestore, grantor::StoreError> {
        self.inner.restore_code(code, grant, now).await
    }
}

/// Two exchanges of one code read it live; the first spends it and gets tokens, the second
/// finds it spent when it tries: a second use, which revokes the first one's tokens.
#[tokio::test]
async fn an_exchange_that_loses_the_race_to_spend_the_code_is_a_second_use() {
    use grantor::CodeStore as _;
    let codes = std::sync::Arc::new(OddCodes::default());
    let f = fixture_with(|b| b.enable_authorization_code_grant(codes.clone()));
    let id = pending(&f, &spa_query("")).await;
    let code = approve_for_code(&f, &id).await;
    let hash = grantor::AuthorizationCodeHash::of(&grantor::AuthorizationCode::new(&code));
    let read = codes.inner.find_code(&hash, START).await.expect("find");
    assert!(matches!(read, grantor::CodeLookup::Live(_)), "{read:?}");
    let first = exchange(&f, spa_exchange(&code, VERIFIER), None).await;
    assert_eq!(first.status, 200, "{}", first.json);
    *codes.stale.lock().expect("lock") = Some((hash, read));
    let second = exchange(&f, spa_exchange(&code, VERIFIER), None).await;
    assert_eq!((second.status, second.error()), (400, "invalid_grant"));
    assert!(
        codes.stale.lock().expect("lock").is_none(),
        "the stale read was served"
    );
    let check = f
        .server
        .bearer_validator()
        .validate(
            &ResourceRequest::new()
                .with_authorization(format!("Bearer {}", first.str("access_token"))),
            &Scope::empty(),
        )
        .await;
    assert_eq!(check.err().map(|e| e.status()), Some(401));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_during_a_slow_exchange_still_revokes_everything() {
    let f = std::sync::Arc::new(fixture());
    let id = pending(&f, &spa_query("")).await;
    let code = approve_for_code(&f, &id).await;
    // The first exchange spends the code, then takes 300 ms to save its tokens.
    *f.store.save_delay.lock().expect("lock") = Some(Duration::from_millis(300));
    let first = {
        let (f, code) = (f.clone(), code.clone());
        tokio::spawn(async move { exchange(&f, spa_exchange(&code, VERIFIER), None).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Meanwhile the replay: refused, and it revokes the code's family before anything is saved.
    let replay = exchange(&f, spa_exchange(&code, VERIFIER), None).await;
    assert_eq!((replay.status, replay.error()), (400, "invalid_grant"));
    // So the first exchange's tokens are refused by the store, not left alive.
    let first = first.await.expect("task");
    assert_eq!(
        (first.status, first.error()),
        (400, "invalid_grant"),
        "{}",
        first.json
    );
    assert_eq!(f.tokens.snapshot().len(), 0, "no token was stored");
}

#[tokio::test]
async fn exchange_checks_client_redirect_uri_and_pkce() {
    let f = fixture();
    let cb = enc(CALLBACK);
    let wrong_verifier = URL_SAFE_NO_PAD.encode(Sha256::digest(b"other"));
    // Each case gets a fresh code; (body, auth, expected status, expected error).
    type Case<'a> = (
        Box<dyn Fn(&str) -> String>,
        Option<(&'a str, &'a str)>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        // Another client, allowed the grant: the code is not its own.
        (
            Box::new(|c| {
                format!("grant_type=authorization_code&code={c}&redirect_uri={}&code_verifier={VERIFIER}", enc(CALLBACK))
            }),
            Some(("webapp", "web-secret")),
            400,
            "invalid_grant",
        ),
        // A client not allowed the grant at all.
        (
            Box::new(|c| {
                format!("grant_type=authorization_code&code={c}&redirect_uri={}&client_id=spa&code_verifier={VERIFIER}", enc(CALLBACK))
            }),
            None,
            400,
            "unauthorized_client",
        ),
        // redirect_uri sent in the request but missing or different here.
        (
            Box::new(|c| {
                format!("grant_type=authorization_code&code={c}&client_id=pkce-app&code_verifier={VERIFIER}")
            }),
            None,
            400,
            "invalid_request",
        ),
        (
            Box::new(|c| {
                format!("grant_type=authorization_code&code={c}&client_id=pkce-app&redirect_uri={}&code_verifier={VERIFIER}", enc("com.example.app:/oauth"))
            }),
            None,
            400,
            "invalid_grant",
        ),
        // PKCE: wrong verifier, missing verifier.
        (
            Box::new(move |c| {
                format!("grant_type=authorization_code&code={c}&client_id=pkce-app&redirect_uri={cb}&code_verifier={wrong_verifier}")
            }),
            None,
            400,
            "invalid_grant",
        ),
        (
            Box::new(|c| {
                format!(
                    "grant_type=authorization_code&code={c}&client_id=pkce-app&redirect_uri={}",
                    enc(CALLBACK)
                )
            }),
            None,
            400,
            "invalid_grant",
        ),
        // No code at all.
        (
            Box::new(|_| "grant_type=authorization_code&client_id=pkce-app".to_owned()),
            None,
            400,
            "invalid_request",
        ),
        (
            Box::new(|_| {
                format!("grant_type=authorization_code&code=made-up&client_id=pkce-app&code_verifier={VERIFIER}")
            }),
            None,
            400,
            "invalid_grant",
        ),
    ];
    for (i, (body, auth, status, error)) in cases.into_iter().enumerate() {
        let id = pending(&f, &spa_query("")).await;
        let code = approve_for_code(&f, &id).await;
        let a = exchange(&f, body(&code), auth).await;
        assert_eq!(
            (a.status, a.error()),
            (status, error),
            "case {i}: {}",
            a.json
        );
        a.assert_no_store();
    }
}

#[tokio::test]
async fn another_client_cannot_redeem_a_code() {
    let f = fixture();
    f.clients.insert(
        grantor::Client::public("other-spa")
            .with_grant_types([grantor::GrantType::AuthorizationCode])
            .with_redirect_uris([CALLBACK])
            .with_default_scope("read".parse().expect("s"))
            .with_allowed_scope("read".parse().expect("s")),
    );
    let id = pending(&f, &spa_query("")).await;
    let code = approve_for_code(&f, &id).await;
    let a = exchange(
        &f,
        spa_exchange(&code, VERIFIER).replace("client_id=pkce-app", "client_id=other-spa"),
        None,
    )
    .await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"));
}

#[tokio::test]
async fn a_malformed_verifier_is_refused_before_the_code_is_spent() {
    let f = fixture();
    let id = pending(&f, &spa_query("")).await;
    let code = approve_for_code(&f, &id).await;
    let a = exchange(&f, spa_exchange(&code, "too-short"), None).await;
    assert_eq!((a.status, a.error()), (400, "invalid_request"));
    let a = exchange(&f, spa_exchange(&code, VERIFIER), None).await;
    assert_eq!(a.status, 200, "{}", a.json);
}

#[tokio::test]
async fn a_verifier_for_a_code_without_a_challenge_is_refused() {
    let f = fixture();
    let id = pending(&f, "response_type=code&client_id=webapp").await;
    let code = approve_for_code(&f, &id).await;
    let a = exchange(
        &f,
        format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}"),
        Some(("webapp", "web-secret")),
    )
    .await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"));
}

#[tokio::test]
async fn codes_expire_after_60_seconds_by_default() {
    let f = fixture();
    let id = pending(&f, &spa_query("")).await;
    let code = approve_for_code(&f, &id).await;
    f.clock.advance(Duration::from_secs(60));
    let a = exchange(&f, spa_exchange(&code, VERIFIER), None).await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"));
    // Configurable, within 10 minutes.
    let f = fixture_with(|b| b.authorization_code_lifetime(Duration::from_secs(300)));
    let id = pending(&f, &spa_query("")).await;
    let code = approve_for_code(&f, &id).await;
    f.clock.advance(Duration::from_secs(299));
    assert_eq!(
        exchange(&f, spa_exchange(&code, VERIFIER), None)
            .await
            .status,
        200
    );
}

#[test]
fn the_builder_guards_the_authorization_endpoint() {
    use grantor::{AuthorizationServer, BuildError, MemoryCodeStore, MemoryTokenStore};
    use std::sync::Arc;
    let b = || {
        AuthorizationServer::builder(Arc::new(clients()), Arc::new(MemoryTokenStore::new()))
            .enable_authorization_code_grant(Arc::new(MemoryCodeStore::new()))
    };
    assert_eq!(b().build().err(), Some(BuildError::IssuerRequired));
    assert_eq!(
        b().issuer(ISSUER)
            .authorization_code_lifetime(Duration::from_secs(601))
            .build()
            .err(),
        Some(BuildError::CodeLifetimeTooLong)
    );
    // Ten minutes, RFC 6749 §4.1.2's "maximum authorization code lifetime", is allowed.
    assert!(b()
        .issuer(ISSUER)
        .authorization_code_lifetime(Duration::from_secs(600))
        .build()
        .is_ok());
    let no_endpoint =
        AuthorizationServer::builder(Arc::new(clients()), Arc::new(MemoryTokenStore::new()))
            .enable_refresh_token_grant()
            .enable_implicit_grant()
            .build();
    assert_eq!(
        no_endpoint.err(),
        Some(BuildError::ImplicitWithoutAuthorizationEndpoint)
    );
    assert!(b().issuer(ISSUER).build().is_ok());
}

#[tokio::test]
async fn unrecognized_parameters_are_ignored_even_when_repeated() {
    let f = fixture();
    pending(
        &f,
        // (`resource` was the example here until RFC 8707 made it a parameter this endpoint
        // reads: tests/resource_indicators.rs.)
        &spa_query("&ui_locales=fr&ui_locales=de&foo="),
    )
    .await;
}

#[tokio::test]
async fn redirects_keep_the_registered_uri_exactly() {
    let f = fixture();
    f.clients.insert(
        grantor::Client::confidential(
            "bare",
            grantor::SecretHash::new(&grantor::ClientSecret::new("s")),
        )
        .with_grant_types([grantor::GrantType::AuthorizationCode])
        .with_redirect_uris(["HTTPS://App.Example.com"])
        .with_default_scope("read".parse().expect("s"))
        .with_allowed_scope("read".parse().expect("s")),
    );
    let id = pending(&f, "response_type=code&client_id=bare&state=s").await;
    let r = f
        .server
        .approve(&id, UserId::new("u"), None)
        .await
        .expect("approve");
    assert!(
        r.location().starts_with("HTTPS://App.Example.com?code="),
        "{}",
        r.location()
    );
}

#[tokio::test]
async fn a_refused_approval_leaves_the_request_waiting() {
    let f = fixture();
    let id = pending(&f, &spa_query("&scope=read")).await;
    let wide = f
        .server
        .approve(
            &id,
            UserId::new("u"),
            Some("read write".parse().expect("s")),
        )
        .await;
    assert_eq!(wide.err().map(|e| e.code()), Some(ErrorCode::InvalidScope));
    assert!(f
        .server
        .authorization_request(&id)
        .await
        .expect("read")
        .is_some());
    approve_for_code(&f, &id).await;
}

#[tokio::test]
async fn approval_rechecks_the_client() {
    let f = fixture();
    let id = pending(&f, "response_type=code&client_id=webapp").await;
    // The client loses the grant while the user signs in.
    f.clients.insert(webapp(
        grantor::GrantType::RefreshToken,
        "https://app.example.com/cb?tenant=7",
    ));
    let r = f.server.approve(&id, UserId::new("u"), None).await;
    assert_eq!(r.err().map(|e| e.code()), Some(ErrorCode::InvalidRequest));
    assert!(
        f.codes.is_empty()
            || f.server
                .authorization_request(&id)
                .await
                .expect("read")
                .is_some()
    );
}

#[tokio::test]
async fn a_wrong_plain_verifier_is_refused() {
    let f = fixture_with(|b| b.allow_plain_pkce(true));
    let plain = "a-plain-verifier-that-is-long-enough-to-pass-43";
    let id = pending(&f, &format!("response_type=code&client_id=pkce-app&redirect_uri={}&code_challenge={plain}&code_challenge_method=plain", enc(CALLBACK))).await;
    let code = approve_for_code(&f, &id).await;
    let a = exchange(&f, spa_exchange(&code, &format!("{plain}x")), None).await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"));
}

#[tokio::test]
async fn login_page_failures_do_not_lock_the_clients_password_grant() {
    let f = fixture();
    for i in 0..150 {
        let r = f
            .server
            .verify_user(
                &grantor::ClientId::new("clientapp"),
                CALLER,
                &grantor::Username::new(format!("nobody{i}")),
                grantor::Password::new("x"),
            )
            .await;
        assert_eq!(r.err().map(|e| e.code()), Some(ErrorCode::InvalidGrant));
    }
    f.login().await;
    // The per-username limit still holds on the login page.
    for _ in 0..5 {
        let _ = f
            .server
            .verify_user(
                &grantor::ClientId::new("pkce-app"),
                OTHER_CALLER,
                &grantor::Username::new("admin"),
                grantor::Password::new("x"),
            )
            .await;
    }
    let r = f
        .server
        .verify_user(
            &grantor::ClientId::new("pkce-app"),
            OTHER_CALLER,
            &grantor::Username::new("admin"),
            grantor::Password::new("123456"),
        )
        .await;
    assert!(r.err().is_some_and(|e| e.retry_after().is_some()));
}

/// A code store that is down.
struct DownCodes;

#[grantor::async_trait]
impl grantor::CodeStore for DownCodes {
    async fn save_pending(
        &self,
        _: &grantor::RequestIdHash,
        _: &grantor::PendingAuthorization,
        _: &grantor::PendingLimits,
        _: time::OffsetDateTime,
    ) -> Result<grantor::Admission, grantor::StoreError> {
        Err(grantor::StoreError::unavailable("connection refused"))
    }
    async fn find_pending(
        &self,
        _: &grantor::RequestIdHash,
        _: time::OffsetDateTime,
    ) -> Result<Option<grantor::PendingAuthorization>, grantor::StoreError> {
        Err(grantor::StoreError::unavailable("connection refused"))
    }
    async fn take_pending(
        &self,
        _: &grantor::RequestIdHash,
        _: time::OffsetDateTime,
    ) -> Result<Option<grantor::PendingAuthorization>, grantor::StoreError> {
        Err(grantor::StoreError::unavailable("connection refused"))
    }
    async fn save_code(
        &self,
        _: &grantor::AuthorizationCodeHash,
        _: &grantor::CodeGrant,
        _: time::OffsetDateTime,
    ) -> Result<(), grantor::StoreError> {
        Err(grantor::StoreError::unavailable("connection refused"))
    }
    async fn find_code(
        &self,
        _: &grantor::AuthorizationCodeHash,
        _: time::OffsetDateTime,
    ) -> Result<grantor::CodeLookup, grantor::StoreError> {
        Err(grantor::StoreError::unavailable("connection refused"))
    }
    async fn spend_code(
        &self,
        _: &grantor::AuthorizationCodeHash,
        _: &grantor::SpentCode,
        _: time::OffsetDateTime,
    ) -> Result<grantor::CodeSpend, grantor::StoreError> {
        Err(grantor::StoreError::unavailable("connection refused"))
    }
    async fn restore_code(
        &self,
        _: &grantor::AuthorizationCodeHash,
        _: &grantor::CodeGrant,
        _: time::OffsetDateTime,
    ) -> Result<grantor::CodeRestore, grantor::StoreError> {
        Err(grantor::StoreError::unavailable("connection refused"))
    }
}

#[tokio::test]
async fn a_store_outage_after_the_redirect_is_trusted_is_redirected_to_the_client() {
    use std::sync::Arc;
    let server = grantor::AuthorizationServer::builder(
        Arc::new(clients()),
        Arc::new(grantor::MemoryTokenStore::new()),
    )
    .enable_authorization_code_grant(Arc::new(DownCodes))
    .issuer(ISSUER)
    .build()
    .expect("server");
    let r = redirected(
        server
            .authorize(AuthorizationRequest::from_query(spa_query("")))
            .await,
    );
    let p = redirect_params(r.location(), false);
    assert_eq!(
        p.get("error").map(String::as_str),
        Some("temporarily_unavailable")
    );
    assert_eq!(p.get("state").map(String::as_str), Some("xyz"));
    assert_eq!(p.get("iss").map(String::as_str), Some(ISSUER));
}

/// `other-spa`: a second public client with the same redirect URI, to present codes it was
/// never issued.
fn with_other_spa() -> Fixture {
    let f = fixture();
    f.clients.insert(
        grantor::Client::public("other-spa")
            .with_grant_types([grantor::GrantType::AuthorizationCode])
            .with_redirect_uris([CALLBACK])
            .with_default_scope("read".parse().expect("s"))
            .with_allowed_scope("read".parse().expect("s")),
    );
    f
}

/// RFC 6749 §4.1.3: the code is bound to its client before it is spent, so a leaked code
/// presented by another client neither burns it nor signs the user out.
#[tokio::test]
async fn a_code_presented_by_another_client_is_refused_and_stays_usable() {
    let f = with_other_spa();
    let id = pending(&f, &spa_query("")).await;
    let code = approve_for_code(&f, &id).await;
    let stolen = spa_exchange(&code, VERIFIER).replace("client_id=pkce-app", "client_id=other-spa");
    let a = exchange(&f, stolen.clone(), None).await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"));
    // The real client still redeems it.
    let first = exchange(&f, spa_exchange(&code, VERIFIER), None).await;
    assert_eq!(first.status, 200, "{}", first.json);
    // And once redeemed, the other client presenting it again revokes nothing.
    let a = exchange(&f, stolen, None).await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"));
    assert_eq!(
        bearer_status(&f.server, &first.str("access_token")).await,
        Ok(())
    );
    let refreshed = f
        .token(TokenRequest::form(format!(
            "grant_type=refresh_token&refresh_token={}&client_id=pkce-app",
            first.str("refresh_token")
        )))
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.json);
}

/// RFC 6749 §4.1.2: a second use "SHOULD revoke … all tokens previously issued based on that
/// authorization code" — for as long as they live, not only while the code would have.
#[tokio::test]
async fn a_replayed_code_revokes_its_tokens_long_after_the_code_expired() {
    let f = fixture();
    let id = pending(&f, &spa_query("")).await;
    let code = approve_for_code(&f, &id).await;
    let first = exchange(&f, spa_exchange(&code, VERIFIER), None).await;
    assert_eq!(first.status, 200);
    // The code lived 60 s; its tokens live on (the refresh token for 30 days).
    f.clock.advance(Duration::from_secs(2 * 3600));
    let refreshed = f
        .token(TokenRequest::form(format!(
            "grant_type=refresh_token&refresh_token={}&client_id=pkce-app",
            first.str("refresh_token")
        )))
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.json);
    let replay = exchange(&f, spa_exchange(&code, VERIFIER), None).await;
    assert_eq!((replay.status, replay.error()), (400, "invalid_grant"));
    assert_eq!(
        bearer_status(&f.server, &refreshed.str("access_token")).await,
        Err(401),
        "the family was revoked"
    );
    let again = f
        .token(TokenRequest::form(format!(
            "grant_type=refresh_token&refresh_token={}&client_id=pkce-app",
            refreshed.str("refresh_token")
        )))
        .await;
    assert_eq!(again.error(), "invalid_grant");
}

/// A store failure between spending the code and saving its tokens gives the code back: the
/// client's retry succeeds, and the user does not sign in again.
#[tokio::test]
async fn a_failed_save_gives_the_code_back() {
    let f = fixture();
    let id = pending(&f, &spa_query("")).await;
    let code = approve_for_code(&f, &id).await;
    f.store
        .fail_saves
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let a = exchange(&f, spa_exchange(&code, VERIFIER), None).await;
    assert_eq!((a.status, a.error()), (503, "temporarily_unavailable"));
    f.store
        .fail_saves
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let retry = exchange(&f, spa_exchange(&code, VERIFIER), None).await;
    assert_eq!(retry.status, 200, "{}", retry.json);
    // Still single use.
    let again = exchange(&f, spa_exchange(&code, VERIFIER), None).await;
    assert_eq!(again.error(), "invalid_grant");
}

/// `deny` redirects only to a redirect URI the client still has registered, as `approve` does.
#[tokio::test]
async fn deny_rechecks_the_redirect_uri() {
    let f = fixture();
    let id = pending(&f, "response_type=code&client_id=webapp&state=s").await;
    f.clients.insert(webapp(
        grantor::GrantType::AuthorizationCode,
        "https://evil.example/cb",
    ));
    let err = f.server.deny(&id).await.expect_err("no redirect");
    assert_eq!(err.code(), ErrorCode::InvalidRequest);
    assert_eq!(err.reason(), Some(Reason::RedirectUriWithdrawn));
    // Nothing was spent: the request is still there, and a deny works once the URI is back.
    assert!(f
        .server
        .authorization_request(&id)
        .await
        .expect("read")
        .is_some());
    f.clients.insert(webapp(
        grantor::GrantType::AuthorizationCode,
        "https://app.example.com/cb?tenant=7",
    ));
    let r = f.server.deny(&id).await.expect("denied");
    assert!(r
        .location()
        .starts_with("https://app.example.com/cb?tenant=7&"));
}

/// Anyone can make authorization requests; the ones waiting are bounded per client and in all,
/// and past a bound the endpoint refuses (503 with Retry-After, as a page) and stores nothing.
#[tokio::test]
async fn pending_requests_are_bounded_per_client_and_in_all() {
    let f = fixture_with(|b| {
        b.pending_request_limits(grantor::PendingLimits {
            per_client: 2,
            total: 3,
        })
    });
    for _ in 0..2 {
        pending(&f, &spa_query("")).await;
    }
    let unavailable = |outcome: AuthorizeOutcome| match outcome {
        AuthorizeOutcome::Unavailable(e) => e,
        other => panic!("expected the bound, got {other:?}"),
    };
    let e = unavailable(authorize(&f, &spa_query("")).await);
    assert_eq!(e.code(), ErrorCode::TemporarilyUnavailable);
    assert_eq!(e.code().status(), 503);
    assert!(
        e.retry_after().is_some_and(|s| (1..=600).contains(&s)),
        "{e:?}"
    );
    assert_eq!(f.codes.len(), 2, "nothing stored for the refused request");
    // Another client has room until the total is reached.
    let webapp = "response_type=code&client_id=webapp";
    let id = pending(&f, webapp).await;
    unavailable(authorize(&f, webapp).await);
    // A decision frees a place.
    f.server.deny(&id).await.expect("denied");
    pending(&f, webapp).await;
    unavailable(authorize(&f, webapp).await);
    // So does expiry.
    f.clock.advance(Duration::from_secs(600));
    for _ in 0..2 {
        pending(&f, &spa_query("")).await;
    }
}

/// RFC 6749 leaves parameter sizes open; grantor bounds them, so that anonymous requests cannot
/// make it store kilobytes each: 4096 bytes at most, 64 parameters at most.
#[tokio::test]
async fn overlong_parameters_are_an_error_page_and_nothing_is_stored() {
    let f = fixture();
    let state = "s".repeat(grantor::MAX_PARAMETER_LENGTH);
    pending(&f, &spa_query(&format!("&state2={state}"))).await;
    let too_long = format!("{state}x");
    for query in [
        format!(
            "response_type=code&client_id=pkce-app&redirect_uri={}&state={too_long}&code_challenge={CHALLENGE}&code_challenge_method=S256",
            enc(CALLBACK)
        ),
        spa_query(&format!("&anything={too_long}")),
        spa_query(&"&x=1".repeat(grantor::MAX_PARAMETERS)),
    ] {
        let before = f.codes.len();
        match authorize(&f, &query).await {
            AuthorizeOutcome::Invalid(e) => {
                assert_eq!(e.code(), ErrorCode::InvalidRequest);
                assert!(
                    matches!(e.reason(), Some(Reason::ParameterTooLong | Reason::TooManyParameters)),
                    "{e:?}"
                );
            }
            other => panic!("expected an error page, got {other:?}"),
        }
        assert_eq!(f.codes.len(), before);
    }
}

/// `validate_authorization`, then `decide` as `decision` says (not asked for a refused request).
async fn decided(
    f: &Fixture,
    query: &str,
    decision: impl FnOnce(&ValidAuthorization) -> Decision,
) -> AuthorizeOutcome {
    match f
        .server
        .validate_authorization(AuthorizationRequest::from_query(query))
        .await
    {
        Ok(valid) => {
            let decision = decision(&valid);
            f.server.decide(valid, decision).await
        }
        Err(refused) => refused,
    }
}

/// Deciding at once, approving for a signed-in user who agreed before: the code comes in one
/// round, and no pending request is kept, so the pending bounds never refuse it. The host sees
/// the validated request and its client first.
#[tokio::test]
async fn an_approval_decided_at_once_answers_a_code_and_keeps_no_request() {
    let f = fixture_with(|b| {
        b.pending_request_limits(grantor::PendingLimits {
            per_client: 1,
            total: 1,
        })
    });
    let mut codes = Vec::new();
    for _ in 0..3 {
        let outcome = decided(&f, &spa_query("&scope=read+write"), |valid| {
            let request = valid.request();
            assert_eq!(request.client_id.as_str(), "pkce-app");
            assert_eq!(request.scope, "read write".parse().expect("scope"));
            assert_eq!(request.state.as_deref(), Some("xyz"));
            assert_eq!(request.response_type, grantor::ResponseType::Code);
            assert!(valid.client().is_public());
            Decision::approve_scope(UserId::new("user-tom"), "read".parse().expect("scope"))
        })
        .await;
        let r = redirected(outcome);
        assert!(r.location().starts_with(CALLBACK), "{}", r.location());
        let p = redirect_params(r.location(), false);
        assert_eq!(p.get("state").map(String::as_str), Some("xyz"));
        assert_eq!(p.get("iss").map(String::as_str), Some(ISSUER));
        codes.push(p.get("code").cloned().expect("code"));
    }
    assert_eq!(f.codes.len(), 3, "three codes and no pending request");
    // The bound of one waiting request still has its place.
    pending(&f, &spa_query("")).await;

    // Each code is a real one: exchanged once with its verifier, for the narrowed scope.
    let a = exchange(&f, spa_exchange(&codes[0], VERIFIER), None).await;
    assert_eq!(a.status, 200, "{:?}", a.json);
    assert_eq!(a.str("scope"), "read");
    let replay = exchange(&f, spa_exchange(&codes[0], VERIFIER), None).await;
    assert_eq!(replay.error(), "invalid_grant");
    // PKCE still binds it: a wrong verifier is refused.
    let wrong = "x".repeat(43);
    let a = exchange(&f, spa_exchange(&codes[1], &wrong), None).await;
    assert_eq!(a.error(), "invalid_grant");
    // A confidential client, everything asked approved: it gets what it asked.
    let outcome = decided(&f, "response_type=code&client_id=webapp&state=s", |valid| {
        assert!(!valid.client().is_public());
        Decision::approve_all(UserId::new("user-tom"))
    })
    .await;
    let a = webapp_exchange(&f, &redirected(outcome)).await;
    assert_eq!(a.status, 200, "{:?}", a.json);
    assert_eq!(a.str("scope"), "read");
}

/// `decide`: `Ask` is `authorize` (the request waits for the page), `Deny` answers
/// `access_denied` at once with nothing stored, and a validated request kept past its lifetime
/// is refused as a page, whatever the decision.
#[tokio::test]
async fn a_decision_asks_as_authorize_does_denies_at_once_or_comes_too_late() {
    let f = fixture();
    let outcome = decided(&f, &spa_query(""), |_| Decision::Ask).await;
    let AuthorizeOutcome::Pending { id, request } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(request.client_id.as_str(), "pkce-app");
    assert_eq!(f.codes.len(), 1, "the request waits");
    approve_for_code(&f, &id).await;

    let f = fixture();
    let outcome = decided(&f, &spa_query(""), |_| Decision::Deny).await;
    let p = redirect_params(redirected(outcome).location(), false);
    assert_eq!(p.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(p.get("state").map(String::as_str), Some("xyz"));
    assert_eq!(p.get("iss").map(String::as_str), Some(ISSUER));
    assert!(!p.contains_key("code"));
    assert!(f.codes.is_empty(), "nothing stored for a denial");

    // Held past the request lifetime (10 minutes), it is decided no more.
    let mut held = Vec::new();
    for _ in 0..3 {
        let request = AuthorizationRequest::from_query(spa_query(""));
        held.push(
            f.server
                .validate_authorization(request)
                .await
                .expect("valid"),
        );
    }
    f.clock.advance(Duration::from_secs(601));
    let decisions = [
        Decision::approve_all(UserId::new("user-tom")),
        Decision::Ask,
        Decision::Deny,
    ];
    for (valid, decision) in held.into_iter().zip(decisions) {
        let e = invalid(f.server.decide(valid, decision).await);
        assert_eq!(e, ErrorCode::InvalidRequest);
    }
    assert!(f.codes.is_empty(), "nothing stored for a late decision");
}

/// `validate_authorization` refuses what `authorize` refuses, the same way (the same page error,
/// or the same redirect with `error`, `state` and `iss`), and no decision is asked for; an
/// approved scope wider than the request is a page. Nothing is stored for any of them.
#[tokio::test]
async fn validation_refuses_as_authorize_does_and_stores_nothing() {
    let without_pkce = format!(
        "response_type=code&client_id=pkce-app&redirect_uri={}&state=xyz",
        enc(CALLBACK)
    );
    let requests = [
        // Pages: an unknown client, an unregistered redirect URI, a repeated client_id.
        "response_type=code&client_id=nobody&state=xyz".to_owned(),
        spa_query("").replace(&enc(CALLBACK), &enc("https://evil.example/cb")),
        spa_query("&client_id=pkce-app"),
        // Redirects: PKCE missing for a public client, an unknown scope, an unsupported or
        // missing or repeated response_type, the implicit grant not enabled.
        without_pkce,
        spa_query("&scope=delete"),
        spa_query("").replace("response_type=code", "response_type=magic"),
        spa_query("").replace("response_type=code&", ""),
        spa_query("&response_type=code"),
        spa_query("").replace("response_type=code", "response_type=token"),
        // webapp is not registered for the implicit grant.
        "response_type=token&client_id=webapp&state=xyz".to_owned(),
    ];
    let f = fixture();
    for query in requests {
        let by_authorize = authorize(&f, &query).await;
        let by_decision = decided(&f, &query, |_| {
            panic!("no decision is asked for a refused request")
        })
        .await;
        match (by_authorize, by_decision) {
            (AuthorizeOutcome::Invalid(a), AuthorizeOutcome::Invalid(b)) => {
                assert_eq!((a.code(), a.reason()), (b.code(), b.reason()), "{query}");
            }
            (AuthorizeOutcome::Redirect(a), AuthorizeOutcome::Redirect(b)) => {
                assert_eq!(a.location(), b.location(), "{query}");
                let p = redirect_params(b.location(), b.location().contains('#'));
                assert!(p.contains_key("error"), "{query}: {p:?}");
                assert!(!p.contains_key("code"));
            }
            (a, b) => panic!("{query}: authorize gave {a:?}, validation {b:?}"),
        }
    }
    // The host may narrow the scope, never widen it.
    let outcome = decided(&f, &spa_query("&scope=read"), |_| {
        Decision::approve_scope(UserId::new("user-tom"), "read write".parse().expect("s"))
    })
    .await;
    let e = match outcome {
        AuthorizeOutcome::Invalid(e) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(e.code(), ErrorCode::InvalidScope);
    assert_eq!(e.reason(), Some(Reason::ApprovedScopeTooWide));
    assert!(f.codes.is_empty(), "nothing stored for a refusal");
}

/// The futures of the two halves can be held across an axum handler's awaits.
#[test]
fn validation_and_decision_futures_are_send() {
    fn send<T: Send>(_: T) {}
    let f = fixture();
    send(
        f.server
            .validate_authorization(AuthorizationRequest::from_query(spa_query(""))),
    );
    let valid: Option<grantor::ValidAuthorization> = None;
    if let Some(valid) = valid {
        send(f.server.decide(valid, Decision::Ask));
    }
}

/// `decide` reads the client again before it approves or denies, as `approve` and `deny` do: a
/// client that lost the redirect URI or the grant, or is gone, since its request was validated
/// gets no redirect, and nothing is stored.
#[tokio::test]
async fn a_decision_at_once_rechecks_the_client() {
    let query = "response_type=code&client_id=webapp&state=s";
    let validated = |f: &Fixture| {
        let server = f.server.clone();
        async move {
            let request = AuthorizationRequest::from_query(query);
            server.validate_authorization(request).await.expect("valid")
        }
    };
    let approve = || Decision::approve_all(UserId::new("user-tom"));
    let f = fixture();
    for (change, reason) in [
        (
            Some(webapp(
                grantor::GrantType::AuthorizationCode,
                "https://evil.example/cb",
            )),
            Reason::RedirectUriWithdrawn,
        ),
        (
            Some(webapp(
                grantor::GrantType::ClientCredentials,
                "https://app.example.com/cb?tenant=7",
            )),
            Reason::GrantWithdrawn,
        ),
        (None, Reason::ClientGone),
    ] {
        for decision in [approve(), Decision::Deny] {
            let valid = validated(&f).await;
            match &change {
                Some(client) => f.clients.insert(client.clone()),
                None => {
                    f.clients.remove(&grantor::ClientId::new("webapp"));
                }
            }
            let e = match f.server.decide(valid, decision).await {
                AuthorizeOutcome::Invalid(e) => e,
                other => panic!("{other:?}"),
            };
            assert_eq!(e.reason(), Some(reason));
            assert!(f.codes.is_empty(), "nothing stored");
            // As registered again, for the next round.
            f.clients.insert(webapp(
                grantor::GrantType::AuthorizationCode,
                "https://app.example.com/cb?tenant=7",
            ));
        }
    }
    // Unchanged, it is approved.
    let valid = validated(&f).await;
    redirected(f.server.decide(valid, approve()).await);
}

/// A validated request is decided only by the server that validated it.
#[tokio::test]
async fn a_request_validated_by_one_server_is_not_decided_by_another() {
    let (one, other) = (fixture(), fixture());
    let valid = one
        .server
        .validate_authorization(AuthorizationRequest::from_query(spa_query("")))
        .await
        .expect("valid");
    let e = invalid(
        other
            .server
            .decide(valid, Decision::approve_all(UserId::new("user-tom")))
            .await,
    );
    assert_eq!(e, ErrorCode::InvalidRequest);
    assert!(one.codes.is_empty() && other.codes.is_empty());
    // A clone of the server is the same server.
    let valid = one
        .server
        .validate_authorization(AuthorizationRequest::from_query(spa_query("")))
        .await
        .expect("valid");
    let clone = one.server.clone();
    redirected(
        clone
            .decide(valid, Decision::approve_all(UserId::new("user-tom")))
            .await,
    );
}

/// A clock that moves on by 600 ms each time it is read.
struct Ticking(std::sync::Mutex<time::OffsetDateTime>);

impl grantor::Clock for Ticking {
    fn now(&self) -> time::OffsetDateTime {
        let mut now = self.0.lock().expect("lock");
        *now += Duration::from_millis(600);
        *now
    }
}

/// `authorize` validates and keeps a request at one instant: with the shortest request lifetime
/// and a clock that moves between reads, a fresh request still waits.
#[tokio::test]
async fn authorize_keeps_a_fresh_request_whatever_the_clock_does_meanwhile() {
    let f = fixture_with(|b| {
        b.clock(std::sync::Arc::new(Ticking(std::sync::Mutex::new(START))))
            .authorization_request_lifetime(Duration::from_secs(1))
    });
    for _ in 0..5 {
        pending(&f, &spa_query("")).await;
    }
}

/// A wrong `code_verifier` spends the code (RFC 6749 §4.1.2: used once, whatever follows), so
/// that a verifier cannot be guessed one try at a time: the right one is refused after it.
#[tokio::test]
async fn a_wrong_verifier_burns_the_code() {
    let f = fixture();
    let id = pending(&f, &spa_query("")).await;
    let code = approve_for_code(&f, &id).await;
    let exchange = |verifier: String| {
        let (f, code) = (&f, code.clone());
        async move {
            f.token(TokenRequest::form(format!(
                "grant_type=authorization_code&code={code}&client_id=pkce-app&redirect_uri={}&code_verifier={verifier}",
                enc(CALLBACK)
            )))
            .await
        }
    };
    let wrong = exchange(URL_SAFE_NO_PAD.encode(Sha256::digest(b"a guess"))).await;
    assert_eq!((wrong.status, wrong.error()), (400, "invalid_grant"));
    let right = exchange(VERIFIER.to_owned()).await;
    assert_eq!(
        (right.status, right.error()),
        (400, "invalid_grant"),
        "{}",
        right.json
    );
    assert_eq!(f.tokens.snapshot().len(), 0, "no token was issued");
}

/// A registered redirect URI that is not absolute, or has a fragment (RFC 6749 §3.1.2), is
/// never redirected to: the request is an error page.
#[tokio::test]
async fn an_unusable_registered_redirect_uri_is_an_error_page() {
    let f = fixture();
    for registered in [
        "/callback",
        "https://app.example.com/cb#section",
        "no scheme here",
    ] {
        f.clients
            .insert(webapp(grantor::GrantType::AuthorizationCode, registered));
        let outcome = authorize(&f, "response_type=code&client_id=webapp&state=s").await;
        match outcome {
            AuthorizeOutcome::Invalid(e) => {
                assert_eq!(e.code(), ErrorCode::InvalidRequest);
                assert_eq!(
                    e.reason(),
                    Some(Reason::RedirectUriUnusable),
                    "{registered}"
                );
            }
            other => panic!("{registered}: expected an error page, got {other:?}"),
        }
    }
}

/// The engine judges a code's expiry itself: a store that answers an expired code as live gets
/// it refused, and nothing is written for it (the code is not spent).
#[tokio::test]
async fn the_engine_refuses_an_expired_code_even_if_the_store_does_not() {
    let codes = std::sync::Arc::new(OddCodes {
        timeless: true,
        ..OddCodes::default()
    });
    let f = fixture_with(|b| b.enable_authorization_code_grant(codes.clone()));
    let id = pending(&f, &spa_query("")).await;
    let code = approve_for_code(&f, &id).await;
    f.clock.advance(Duration::from_secs(61));
    let a = exchange(&f, spa_exchange(&code, VERIFIER), None).await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"), "{}", a.json);
    let hash = grantor::AuthorizationCodeHash::of(&grantor::AuthorizationCode::new(code));
    assert!(
        matches!(
            codes.inner.find_code(&hash, START).await,
            Ok(grantor::CodeLookup::Live(_))
        ),
        "the expired code was not spent"
    );
}

/// A code's used mark lasts as long as the tokens it issued can: for a client without refresh
/// tokens, the access token's lifetime. A replay after that finds no code at all.
#[tokio::test]
async fn a_used_mark_lasts_as_long_as_the_tokens_it_issued() {
    let f = fixture();
    f.clients.insert(webapp(
        grantor::GrantType::AuthorizationCode,
        "https://app.example.com/cb",
    ));
    let id = pending(&f, "response_type=code&client_id=webapp").await;
    let code = approve_for_code(&f, &id).await;
    let redeem = || {
        exchange(
            &f,
            format!("grant_type=authorization_code&code={code}"),
            Some(("webapp", "web-secret")),
        )
    };
    let a = redeem().await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert!(a.json.get("refresh_token").is_none());
    let hash = grantor::AuthorizationCodeHash::of(&grantor::AuthorizationCode::new(code.clone()));
    let at = |secs: i64| START + time::Duration::seconds(secs);
    assert!(matches!(
        f.codes.find_code(&hash, at(3599)).await,
        Ok(grantor::CodeLookup::Spent { .. })
    ));
    assert!(matches!(
        f.codes.find_code(&hash, at(3601)).await,
        Ok(grantor::CodeLookup::Unknown)
    ));
}

/// An exchange that loses the race for its code to another client is refused as an unknown
/// code: it is not this client's second use, so nothing of the other client's is revoked.
#[tokio::test]
async fn losing_the_race_to_another_client_revokes_nothing_of_theirs() {
    use grantor::TokenStore as _;
    let raced = std::sync::Arc::new(OddCodes::default());
    let f = fixture_with(|b| b.enable_authorization_code_grant(raced.clone()));
    let theirs = f.login().await.str("access_token");
    let hash = grantor::TokenHash::of_access_token(&grantor::AccessToken::new(theirs.clone()));
    let Ok(grantor::TokenLookup::Live(record)) = f.tokens.find_token(&hash, START).await else {
        panic!("the other client's token is live");
    };
    *raced.rival.lock().expect("lock") = record.family_id.clone();
    let id = pending(&f, &spa_query("")).await;
    let code = approve_for_code(&f, &id).await;
    let a = exchange(&f, spa_exchange(&code, VERIFIER), None).await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"), "{}", a.json);
    assert_eq!(bearer_status(&f.server, &theirs).await, Ok(()));
}
