//! Resource indicators (RFC 8707): `resource` at the authorization and token endpoints, every
//! `invalid_target` rule, the audience through codes, refresh families and second factors, in
//! introspection, and the validators that refuse a token whose audience is not theirs.

mod common;

use common::*;
use grantor::{
    AuthorizationRequest, AuthorizeOutcome, BearerValidator, Client, ClientSecret, ErrorCode,
    GrantType, Reason, Resource, ResourceRequest, SecretHash, TokenRequest, UserId,
};

const API: &str = "https://api.example.com";
const BILLING: &str = "https://billing.example.com/v1";
const CALLBACK: &str = "http://localhost:3000/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn resource(uri: &str) -> Resource {
    uri.parse().expect("a resource")
}

/// The fixture's server, knowing the two resources; `service` may introspect every access
/// token (RFC 7662 §4).
fn resource_fixture() -> Fixture {
    fixture_with(|b| {
        b.resources([resource(API), resource(BILLING)])
            .resource_servers(["service"])
    })
}

const SERVICE: (&str, &str) = ("service", "service-secret");

/// `service` registered again, with a resource list of its own: `resource` only.
fn service_with_own_list(f: &Fixture, resource_uri: &str) {
    f.clients.insert(
        Client::confidential("service", SecretHash::new(&ClientSecret::new(SERVICE.1)))
            .with_grant_types([GrantType::ClientCredentials])
            .with_allowed_scope("read".parse().expect("scope"))
            .with_default_scope("read".parse().expect("scope"))
            .with_resources([resource(resource_uri)]),
    );
}
const CLIENTAPP: (&str, &str) = ("clientapp", "123456");

/// `&resource=…` for each of `uris`.
fn resources(uris: &[&str]) -> String {
    uris.iter()
        .map(|u| format!("&resource={}", enc(u)))
        .collect()
}

/// What introspection says of `token`, asked by `client`.
async fn introspect(f: &Fixture, token: &str, client: (&str, &str)) -> serde_json::Value {
    answer(
        f.server
            .introspect(
                TokenRequest::form(format!("token={}", enc(token)))
                    .with_authorization(basic(client.0, client.1)),
            )
            .await,
    )
    .json
}

/// Whether `validator` takes `token` for scope `read`; the refusal's status and reason if not.
async fn validates(validator: &BearerValidator, token: &str) -> Result<Vec<String>, (u16, String)> {
    let request = ResourceRequest::new().with_authorization(format!("Bearer {token}"));
    validator
        .validate(&request, &"read".parse().expect("scope"))
        .await
        .map(|grant| grant.audience)
        .map_err(|e| (e.status(), e.challenge().unwrap_or_default()))
}

/// The descriptions of the four refusals, one per rule.
const MALFORMED: &str = "absolute URI without a fragment";
const NOT_ALLOWED: &str = "not one this client may ask for";
const NOT_GRANTED: &str = "not among the resources originally granted";
const NONE_LEFT: &str = "none of the resources originally granted";

/// `invalid_target` (RFC 8707 §2), 400, with the description of the rule that refused.
fn assert_invalid_target(a: &Answer, rule: &str) {
    assert_eq!(a.status, 400, "{}", a.json);
    assert_eq!(a.error(), "invalid_target", "{}", a.json);
    let description = a.str("error_description");
    assert!(description.contains(rule), "{description}");
    a.assert_no_store();
}

#[tokio::test]
async fn a_token_asked_for_a_resource_has_it_as_its_audience() {
    let f = resource_fixture();
    let service = SERVICE;
    let cc = f
        .post(
            service,
            &format!("grant_type=client_credentials{}", resources(&[API])),
        )
        .await;
    assert_eq!(cc.status, 200, "{}", cc.json);
    let token = cc.str("access_token");
    // RFC 7662 §2.2: `aud`, one string for one resource.
    let seen = introspect(&f, &token, service).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["aud"], API);

    // Two resources (the parameter repeated, RFC 8707 §2), a repeat dropped: an array.
    let both = f
        .post(
            service,
            &format!(
                "grant_type=client_credentials{}",
                resources(&[API, BILLING, API])
            ),
        )
        .await;
    assert_eq!(both.status, 200, "{}", both.json);
    let seen = introspect(&f, &both.str("access_token"), service).await;
    assert_eq!(seen["aud"], serde_json::json!([API, BILLING]));

    // No resource: no audience, and no `aud` member.
    let plain = f.post(service, "grant_type=client_credentials").await;
    let seen = introspect(&f, &plain.str("access_token"), service).await;
    assert_eq!(seen["active"], true);
    assert!(seen.get("aud").is_none(), "{seen}");

    // The API's validator takes its own tokens and those for no resource in particular; the
    // billing validator refuses the API's token with invalid_token (401).
    let api = f.server.bearer_validator().with_audience(API);
    let billing = f.server.bearer_validator().with_audience(BILLING);
    assert_eq!(validates(&api, &token).await, Ok(vec![API.to_owned()]));
    assert_eq!(
        validates(&api, &plain.str("access_token")).await,
        Ok(vec![])
    );
    let (status, challenge) = validates(&billing, &token).await.expect_err("refused");
    assert_eq!(status, 401);
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    assert!(validates(&billing, &both.str("access_token")).await.is_ok());
    // Strict: only tokens asked for the resource.
    let strict = f.server.bearer_validator().with_strict_audience(API);
    assert!(validates(&strict, &token).await.is_ok());
    assert_eq!(
        validates(&strict, &plain.str("access_token"))
            .await
            .map_err(|e| e.0),
        Err(401)
    );
    // A validator with no audience takes them all.
    assert!(validates(&f.server.bearer_validator(), &token)
        .await
        .is_ok());
}

#[tokio::test]
async fn every_invalid_target_rule_at_the_token_endpoint() {
    let f = resource_fixture();
    let service = SERVICE;
    let cc = |extra: String| {
        let f = &f;
        async move {
            f.post(service, &format!("grant_type=client_credentials{extra}"))
                .await
        }
    };
    // Not an absolute URI; a fragment (§2: "MUST NOT include a fragment component").
    for bad in [
        "api",
        "/api",
        "https://api.example.com#x",
        "https://api.example.com#",
    ] {
        assert_invalid_target(&cc(resources(&[bad])).await, MALFORMED);
    }
    // Absolute, but not a resource the server knows (exact strings: a trailing slash differs).
    for unknown in ["https://evil.example", "https://api.example.com/"] {
        assert_invalid_target(&cc(resources(&[unknown])).await, NOT_ALLOWED);
    }
    // One bad value among good ones spoils the request.
    assert_invalid_target(
        &cc(resources(&[API, "https://evil.example"])).await,
        NOT_ALLOWED,
    );
    // An empty value is treated as omitted (RFC 6749 §3.1).
    assert_eq!(cc("&resource=".to_owned()).await.status, 200);
    // Other parameters still may not repeat.
    let repeated = cc("&scope=read&scope=read".to_owned()).await;
    assert_eq!(repeated.error(), "invalid_request");

    // A client with a list of its own may name those only.
    service_with_own_list(&f, BILLING);
    assert_invalid_target(&cc(resources(&[API])).await, NOT_ALLOWED);
    assert_eq!(cc(resources(&[BILLING])).await.status, 200);

    // A server that knows no resource refuses every one.
    let bare = fixture();
    let a = bare
        .post(
            service,
            &format!("grant_type=client_credentials{}", resources(&[API])),
        )
        .await;
    assert_invalid_target(&a, NOT_ALLOWED);

    // The password grant checks before the password: nothing is counted against the user.
    let calls = f.users.calls();
    let a = f
        .post(
            ("clientapp", "123456"),
            &format!(
                "grant_type=password&username=tom&password=123456{}",
                resources(&["https://evil.example"])
            ),
        )
        .await;
    assert_invalid_target(&a, NOT_ALLOWED);
    assert_eq!(f.users.calls(), calls, "no password was checked");
}

/// The code flow's request names the resources; the code's tokens are for them, the token
/// request may narrow them, and the refresh token keeps the whole grant (RFC 8707 §2.2).
#[tokio::test]
async fn the_code_carries_its_resources_and_the_token_request_narrows_them() {
    let f = resource_fixture();
    let code = code_for(&f, &resources(&[API, BILLING])).await;
    let exchange = |code: String, extra: String| {
        let f = &f;
        async move {
            f.token(TokenRequest::form(format!(
                "grant_type=authorization_code&code={code}&redirect_uri={}&client_id=pkce-app&code_verifier={VERIFIER}{extra}",
                enc(CALLBACK)
            )))
            .await
        }
    };
    // A resource the client may not name: refused, and the code is not spent. (Refusing one
    // the client may name but the code was not given for, before spending it, is checked
    // below.)
    let refused = exchange(code.clone(), resources(&["https://evil.example"])).await;
    assert_invalid_target(&refused, NOT_ALLOWED);
    let narrowed = exchange(code.clone(), resources(&[BILLING])).await;
    assert_eq!(narrowed.status, 200, "{}", narrowed.json);
    let access = narrowed.str("access_token");
    let seen = introspect(&f, &access, SERVICE).await;
    assert_eq!(seen["aud"], BILLING);

    // The refresh token is bound to both: a refresh with no resource gets both, one naming
    // the API gets the API alone.
    let refresh = narrowed.str("refresh_token");
    let r = f
        .token(TokenRequest::form(format!(
            "grant_type=refresh_token&refresh_token={refresh}&client_id=pkce-app"
        )))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let seen = introspect(&f, &r.str("access_token"), SERVICE).await;
    assert_eq!(seen["aud"], serde_json::json!([API, BILLING]));
    let refresh = r.str("refresh_token");
    let r = f
        .token(TokenRequest::form(format!(
            "grant_type=refresh_token&refresh_token={refresh}&client_id=pkce-app{}",
            resources(&[API])
        )))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let seen = introspect(&f, &r.str("access_token"), SERVICE).await;
    assert_eq!(seen["aud"], API);
    // The new refresh token still stands for both.
    let refresh = r.str("refresh_token");
    assert_eq!(stored_audience(&f, &refresh).await, [API, BILLING]);
}

#[tokio::test]
async fn a_token_request_may_not_widen_the_resources_of_its_grant() {
    let f = resource_fixture();
    // The code is for the API alone: the token request may not name billing.
    let code = code_for(&f, &resources(&[API])).await;
    let exchange = |extra: String| {
        let (f, code) = (&f, code.clone());
        async move {
            f.token(TokenRequest::form(format!(
                "grant_type=authorization_code&code={code}&redirect_uri={}&client_id=pkce-app&code_verifier={VERIFIER}{extra}",
                enc(CALLBACK)
            )))
            .await
        }
    };
    assert_invalid_target(&exchange(resources(&[BILLING])).await, NOT_GRANTED);
    assert_invalid_target(&exchange(resources(&[API, BILLING])).await, NOT_GRANTED);
    // Refused before the code was spent: the right request still succeeds.
    let ok = exchange(String::new()).await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    let seen = introspect(&f, &ok.str("access_token"), SERVICE).await;
    assert_eq!(seen["aud"], API);

    // A refresh naming billing is refused, and the refresh token is still good.
    let refresh = ok.str("refresh_token");
    let widen = f
        .token(TokenRequest::form(format!(
            "grant_type=refresh_token&refresh_token={refresh}&client_id=pkce-app{}",
            resources(&[BILLING])
        )))
        .await;
    assert_invalid_target(&widen, NOT_GRANTED);
    let again = f
        .token(TokenRequest::form(format!(
            "grant_type=refresh_token&refresh_token={refresh}&client_id=pkce-app"
        )))
        .await;
    assert_eq!(again.status, 200, "{}", again.json);

    // The client may no longer name the API: its grant gets no token at all, never one
    // without an audience (which every resource would take).
    f.clients.insert(
        Client::public("pkce-app")
            .with_grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
            .with_allowed_scope("read write".parse().expect("scope"))
            .with_default_scope("read".parse().expect("scope"))
            .with_redirect_uris([CALLBACK])
            .with_resources([resource(BILLING)]),
    );
    let refresh = again.str("refresh_token");
    let none_left = f
        .token(TokenRequest::form(format!(
            "grant_type=refresh_token&refresh_token={refresh}&client_id=pkce-app"
        )))
        .await;
    assert_invalid_target(&none_left, NONE_LEFT);
}

/// A grant made without `resource` is for no resource in particular: a token from it may name
/// any the client may (it only narrows what the token is good for).
#[tokio::test]
async fn a_grant_for_no_resource_may_be_narrowed_to_any() {
    let f = resource_fixture();
    let a = f.login().await;
    let r = f
        .refresh(
            ("clientapp", "123456"),
            &a.str("refresh_token"),
            &resources(&[BILLING]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let seen = introspect(&f, &r.str("access_token"), CLIENTAPP).await;
    assert_eq!(seen["aud"], BILLING);
    // The refresh token stays for no resource in particular.
    let seen = introspect(&f, &r.str("refresh_token"), CLIENTAPP).await;
    assert!(seen.get("aud").is_none(), "{seen}");
    // The password grant names one: the refresh token is bound to it.
    let a = f
        .post(
            ("clientapp", "123456"),
            &format!(
                "grant_type=password&username=tom&password=123456{}",
                resources(&[API])
            ),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
    let refreshed = f
        .refresh(("clientapp", "123456"), &a.str("refresh_token"), "")
        .await;
    let seen = introspect(&f, &refreshed.str("access_token"), CLIENTAPP).await;
    assert_eq!(seen["aud"], API);
}

/// At the authorization endpoint, a bad `resource` goes back to the client as `invalid_target`
/// (the redirect URI is trusted by then), with `state` and `iss`, and nothing waits.
#[tokio::test]
async fn the_authorization_endpoint_answers_invalid_target_by_redirect() {
    let f = resource_fixture();
    for (bad, rule) in [
        ("https://evil.example", NOT_ALLOWED),
        ("relative", MALFORMED),
        ("https://api.example.com#f", MALFORMED),
    ] {
        let outcome = f
            .server
            .authorize(AuthorizationRequest::from_query(spa_query(&resources(&[
                bad,
            ]))))
            .await;
        let AuthorizeOutcome::Redirect(redirect) = outcome else {
            panic!("expected a redirect, got {outcome:?}");
        };
        let params = redirect_params(redirect.location(), false);
        assert_eq!(params["error"], "invalid_target");
        assert!(params["error_description"].contains(rule), "{params:?}");
        assert_eq!(params["state"], "xyz");
        assert_eq!(params["iss"], ISSUER);
    }
    // A good one is kept with the request, for the consent page to show.
    let outcome = f
        .server
        .authorize(AuthorizationRequest::from_query(spa_query(&resources(&[
            BILLING, API, BILLING,
        ]))))
        .await;
    let AuthorizeOutcome::Pending { request, .. } = outcome else {
        panic!("expected a pending request, got {outcome:?}");
    };
    assert_eq!(request.resources, [BILLING, API]);
}

/// The second factor's step issues tokens for the resources the password request named, and
/// may narrow them.
#[tokio::test]
async fn a_second_factor_keeps_the_resources_of_the_password_request() {
    let f = resource_fixture();
    let a = f
        .post(
            CLIENTAPP,
            &format!(
                "grant_type=password&username=alice&password=123456{}",
                resources(&[API, BILLING])
            ),
        )
        .await;
    assert_eq!((a.status, a.error()), (403, "mfa_required"), "{}", a.json);
    let otp_step = |extra: String| {
        let (f, mfa_token) = (&f, a.str("mfa_token"));
        async move {
            f.post(
                CLIENTAPP,
                &format!(
                    "grant_type=http%3A%2F%2Fauth0.com%2Foauth%2Fgrant-type%2Fmfa-otp&mfa_token={mfa_token}&otp={}{extra}",
                    otp_at(START)
                ),
            )
            .await
        }
    };
    // Wider than its password request: refused before the one-time code is checked (the same
    // code then finishes the other sign-in, which it could not if it had been spent here).
    let wider = f
        .post(
            CLIENTAPP,
            &format!(
                "grant_type=password&username=alice&password=123456{}",
                resources(&[API])
            ),
        )
        .await;
    assert_eq!(wider.status, 403);
    let narrow_mfa = wider.str("mfa_token");
    let refused = f
        .post(
            CLIENTAPP,
            &format!(
                "grant_type=http%3A%2F%2Fauth0.com%2Foauth%2Fgrant-type%2Fmfa-otp&mfa_token={narrow_mfa}&otp={}{}",
                otp_at(START),
                resources(&[BILLING])
            ),
        )
        .await;
    assert_invalid_target(&refused, NOT_GRANTED);

    let done = otp_step(resources(&[BILLING])).await;
    assert_eq!(done.status, 200, "{}", done.json);
    let seen = introspect(&f, &done.str("access_token"), CLIENTAPP).await;
    assert_eq!(seen["aud"], BILLING);
    let seen = introspect(&f, &done.str("refresh_token"), CLIENTAPP).await;
    assert_eq!(seen["aud"], serde_json::json!([API, BILLING]));
}

/// The audience the store keeps for `token` (a public client's refresh token, which nobody
/// but that client may introspect, and it cannot authenticate to).
async fn stored_audience(f: &Fixture, token: &str) -> Vec<String> {
    use grantor::TokenStore as _;
    let hash = grantor::TokenHash::of_refresh_token(&grantor::RefreshToken::new(token));
    match f.tokens.find_token(&hash, START).await.expect("find") {
        grantor::TokenLookup::Live(record) => record.audience,
        other => panic!("not live: {other:?}"),
    }
}

/// A PKCE code request for the public client `pkce-app`.
fn spa_query(extra: &str) -> String {
    format!(
        "response_type=code&client_id=pkce-app&redirect_uri={}&state=xyz&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        enc(CALLBACK)
    )
}

/// A code for tom, from a request with `extra` parameters.
async fn code_for(f: &Fixture, extra: &str) -> String {
    approved(f, spa_query(extra), false).await["code"].clone()
}

/// The parameters of the redirect answering `query` once tom approves it (in the fragment for
/// an implicit request).
async fn approved(
    f: &Fixture,
    query: String,
    fragment: bool,
) -> std::collections::HashMap<String, String> {
    let outcome = f
        .server
        .authorize(AuthorizationRequest::from_query(query))
        .await;
    let AuthorizeOutcome::Pending { id, .. } = outcome else {
        panic!("expected a pending request, got {outcome:?}");
    };
    let redirect = f
        .server
        .approve(&id, UserId::new("user-tom"), None)
        .await
        .expect("approve");
    redirect_params(redirect.location(), fragment)
}

#[tokio::test]
async fn the_device_grant_takes_resource_at_the_token_endpoint() {
    let f = resource_fixture();
    let device = answer(
        f.server
            .device_authorization(TokenRequest::form("client_id=cli&scope=read"))
            .await,
    );
    assert_eq!(device.status, 200, "{}", device.json);
    let user_code = grantor::UserCode::new(device.str("user_code"));
    let caller: std::net::IpAddr = [192, 0, 2, 1].into();
    let confirmation = f
        .server
        .device_request(&user_code, caller)
        .await
        .expect("shown")
        .confirmation;
    f.server
        .approve_device(
            &user_code,
            &confirmation,
            caller,
            UserId::new("user-tom"),
            None,
        )
        .await
        .expect("approved");
    let poll = |extra: String| {
        let (f, code) = (&f, device.str("device_code"));
        async move {
            f.token(TokenRequest::form(format!(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code={code}&client_id=cli{extra}"
            )))
            .await
        }
    };
    // Checked before the approval is collected: the right poll still gets the tokens.
    assert_invalid_target(
        &poll(resources(&["https://evil.example"])).await,
        NOT_ALLOWED,
    );
    let done = poll(resources(&[API])).await;
    assert_eq!(done.status, 200, "{}", done.json);
    let seen = introspect(&f, &done.str("access_token"), SERVICE).await;
    assert_eq!(seen["aud"], API);
    assert_eq!(stored_audience(&f, &done.str("refresh_token")).await, [API]);
}

/// The engine's errors carry the reasons the pages and logs branch on.
#[tokio::test]
async fn invalid_target_has_its_code_status_and_reasons() {
    assert_eq!(ErrorCode::InvalidTarget.as_str(), "invalid_target");
    assert_eq!(ErrorCode::InvalidTarget.status(), 400);
    for (reason, text) in [
        (Reason::ResourceMalformed, "resource_malformed"),
        (Reason::ResourceNotAllowed, "resource_not_allowed"),
        (Reason::ResourceNotGranted, "resource_not_granted"),
        (Reason::ResourceNoneLeft, "resource_none_left"),
        (Reason::TokenOtherAudience, "token_other_audience"),
    ] {
        assert_eq!(reason.as_str(), text);
    }
}

/// A client with a list of its own never gets a token for no resource in particular: asking
/// for none is asking for its whole list, so a resource outside it refuses the token.
#[tokio::test]
async fn a_client_with_its_own_list_gets_tokens_for_it_even_without_resource() {
    let f = resource_fixture();
    service_with_own_list(&f, BILLING);
    let token = f
        .post(SERVICE, "grant_type=client_credentials")
        .await
        .str("access_token");
    assert_eq!(introspect(&f, &token, SERVICE).await["aud"], BILLING);
    let api = f.server.bearer_validator().with_audience(API);
    assert_eq!(validates(&api, &token).await.map_err(|e| e.0), Err(401));
    let billing = f.server.bearer_validator().with_audience(BILLING);
    assert!(validates(&billing, &token).await.is_ok());
}

/// The implicit grant's token is for the resources of its request, re-checked when the user
/// approves (the client's list may have changed meanwhile).
#[tokio::test]
async fn the_implicit_token_names_its_resources() {
    let f = fixture_with(|b| {
        b.resources([resource(API), resource(BILLING)])
            .resource_servers(["service"])
            .enable_implicit_grant()
    });
    let query = |extra: &str| {
        format!(
            "response_type=token&client_id=pkce-app&redirect_uri={}&state=s{extra}",
            enc(CALLBACK)
        )
    };
    let params = approved(&f, query(&resources(&[API])), true).await;
    let seen = introspect(&f, &params["access_token"], SERVICE).await;
    assert_eq!(seen["aud"], API);

    // Asked for the API; the client may name only billing by the time the user approves.
    let outcome = f
        .server
        .authorize(AuthorizationRequest::from_query(query(&resources(&[API]))))
        .await;
    let AuthorizeOutcome::Pending { id, .. } = outcome else {
        panic!("expected a pending request, got {outcome:?}");
    };
    f.clients.insert(
        Client::public("pkce-app")
            .with_grant_types([GrantType::Implicit])
            .with_allowed_scope("read write".parse().expect("scope"))
            .with_default_scope("read".parse().expect("scope"))
            .with_redirect_uris([CALLBACK])
            .with_resources([resource(BILLING)]),
    );
    let redirect = f
        .server
        .approve(&id, UserId::new("user-tom"), None)
        .await
        .expect("a redirect");
    let params = redirect_params(redirect.location(), true);
    assert_eq!(params["error"], "invalid_target", "{params:?}");
    assert!(!params.contains_key("access_token"));
}

/// A refresh token presented again within its grace period (a lost reply) follows the same
/// rules: the retry may narrow the grant's resources, never widen them.
#[tokio::test]
async fn a_retry_within_the_grace_period_keeps_the_resource_rules() {
    let f = fixture_with(|b| {
        b.resources([resource(API), resource(BILLING)])
            .resource_servers(["service"])
            .refresh_token_grace_period(std::time::Duration::from_secs(30))
    });
    let a = f
        .post(
            CLIENTAPP,
            &format!(
                "grant_type=password&username=tom&password=123456{}",
                resources(&[API])
            ),
        )
        .await;
    let first = a.str("refresh_token");
    let rotated = f.refresh(CLIENTAPP, &first, "").await;
    assert_eq!(rotated.status, 200, "{}", rotated.json);
    // The reply was lost: the client presents the first token again, asking for billing.
    let widened = f.refresh(CLIENTAPP, &first, &resources(&[BILLING])).await;
    assert_invalid_target(&widened, NOT_GRANTED);
    let retry = f.refresh(CLIENTAPP, &first, &resources(&[API])).await;
    assert_eq!(retry.status, 200, "{}", retry.json);
    let seen = introspect(&f, &retry.str("access_token"), SERVICE).await;
    assert_eq!(seen["aud"], API);
}

/// The device authorization request keeps no resource: one sent there is refused, saying where
/// it goes, rather than dropped unseen.
#[tokio::test]
async fn the_device_authorization_request_refuses_resource() {
    let f = resource_fixture();
    let refused = answer(
        f.server
            .device_authorization(TokenRequest::form(format!(
                "client_id=cli{}",
                resources(&[API])
            )))
            .await,
    );
    assert_eq!(refused.status, 400, "{}", refused.json);
    assert_eq!(refused.error(), "invalid_target");
    assert!(refused.str("error_description").contains("polling"));
}
