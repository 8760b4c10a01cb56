//! The implicit grant (RFC 6749 §4.2): off unless enabled and allowed; the token in the fragment.

mod common;

use common::*;
use grantor::{AuthorizationRequest, AuthorizeOutcome, Decision, ResourceRequest, Scope, UserId};

const CALLBACK: &str = "http%3A%2F%2Flocalhost%3A3000%2Fcallback";

async fn authorize(f: &Fixture, query: &str) -> AuthorizeOutcome {
    f.server
        .authorize(AuthorizationRequest::from_query(query))
        .await
}

fn fragment_error(outcome: AuthorizeOutcome) -> String {
    match outcome {
        AuthorizeOutcome::Redirect(r) => {
            // In the fragment, not the query.
            assert!(
                !redirect_params(r.location(), false).contains_key("error"),
                "{}",
                r.location()
            );
            let p = redirect_params(r.location(), true);
            assert_eq!(p.get("iss").map(String::as_str), Some(ISSUER));
            assert_eq!(p.get("state").map(String::as_str), Some("s"));
            p.get("error").cloned().unwrap_or_default()
        }
        other => panic!("expected a redirect, got {other:?}"),
    }
}

/// The fragment of a token redirect: a bearer token with `state` and `iss` and no refresh token,
/// and what the token validates to.
async fn token_in_fragment(
    f: &Fixture,
    r: &grantor::Redirect,
) -> (
    std::collections::HashMap<String, String>,
    grantor::AccessGrant,
) {
    assert!(
        r.location().starts_with("http://localhost:3000/callback#"),
        "{}",
        r.location()
    );
    let p = redirect_params(r.location(), true);
    assert_eq!(p.get("token_type").map(String::as_str), Some("Bearer"));
    assert_eq!(p.get("state").map(String::as_str), Some("s"));
    assert_eq!(p.get("iss").map(String::as_str), Some(ISSUER));
    assert!(!p.contains_key("refresh_token"));
    let token = p.get("access_token").expect("access_token");
    let grant = f
        .server
        .bearer_validator()
        .validate(
            &ResourceRequest::new().with_authorization(format!("Bearer {token}")),
            &Scope::empty(),
        )
        .await
        .expect("valid");
    (p, grant)
}

#[tokio::test]
async fn off_unless_enabled_then_only_for_allowed_clients() {
    let off = fixture();
    let q = format!("response_type=token&client_id=pkce-app&redirect_uri={CALLBACK}&state=s");
    assert_eq!(
        fragment_error(authorize(&off, &q).await),
        "unauthorized_client"
    );

    let on = fixture_with(|b| b.enable_implicit_grant());
    // webapp is not registered for the implicit grant.
    let q = "response_type=token&client_id=webapp&state=s";
    assert_eq!(
        fragment_error(authorize(&on, q).await),
        "unauthorized_client"
    );
}

#[tokio::test]
async fn an_approved_request_gets_a_token_in_the_fragment_and_no_refresh_token() {
    let f = fixture_with(|b| b.enable_implicit_grant());
    let q = format!(
        "response_type=token&client_id=pkce-app&redirect_uri={CALLBACK}&state=s&scope=read+write"
    );
    let id = match authorize(&f, &q).await {
        AuthorizeOutcome::Pending { id, request } => {
            assert_eq!(request.response_type, grantor::ResponseType::Token);
            id
        }
        other => panic!("{other:?}"),
    };
    let r = f
        .server
        .approve(&id, UserId::new("user-tom"), None)
        .await
        .expect("approve");
    let (p, grant) = token_in_fragment(&f, &r).await;
    assert_eq!(p.get("expires_in").map(String::as_str), Some("3600"));
    assert_eq!(p.get("scope").map(String::as_str), Some("read write"));
    assert_eq!(
        grant.user_id.map(|u| u.into_string()),
        Some("user-tom".into())
    );
    assert_eq!(r.into_response().header("Cache-Control"), Some("no-store"));
}

#[tokio::test]
async fn denial_and_errors_travel_in_the_fragment() {
    let f = fixture_with(|b| b.enable_implicit_grant());
    let q = format!("response_type=token&client_id=pkce-app&redirect_uri={CALLBACK}&state=s");
    let id = match authorize(&f, &q).await {
        AuthorizeOutcome::Pending { id, .. } => id,
        other => panic!("{other:?}"),
    };
    let r = f.server.deny(&id).await.expect("deny");
    assert_eq!(
        fragment_error(AuthorizeOutcome::Redirect(r)),
        "access_denied"
    );
    let q = format!(
        "response_type=token&client_id=pkce-app&redirect_uri={CALLBACK}&state=s&scope=admin"
    );
    assert_eq!(fragment_error(authorize(&f, &q).await), "invalid_scope");
}

/// Approving at once (`validate_authorization`, then `decide`) answers `response_type=token` with
/// the token in the fragment, only where the implicit grant is enabled, and stores no pending
/// request; denying at once puts `access_denied` in the fragment.
#[tokio::test]
async fn a_decision_at_once_gets_a_token_in_the_fragment_only_when_enabled() {
    let q = format!("response_type=token&client_id=pkce-app&redirect_uri={CALLBACK}&state=s");
    let at_once = |f: &Fixture, decision: Decision| {
        let server = f.server.clone();
        let request = AuthorizationRequest::from_query(q.clone());
        async move {
            match server.validate_authorization(request).await {
                Ok(valid) => {
                    assert_eq!(valid.request().response_type, grantor::ResponseType::Token);
                    server.decide(valid, decision).await
                }
                Err(refused) => refused,
            }
        }
    };
    let approve = || Decision::approve_all(UserId::new("user-tom"));
    let off = fixture();
    assert_eq!(
        fragment_error(at_once(&off, approve()).await),
        "unauthorized_client"
    );

    let on = fixture_with(|b| b.enable_implicit_grant());
    assert_eq!(
        fragment_error(at_once(&on, Decision::Deny).await),
        "access_denied"
    );
    let AuthorizeOutcome::Redirect(r) = at_once(&on, approve()).await else {
        panic!("a redirect");
    };
    let (_, grant) = token_in_fragment(&on, &r).await;
    assert!("read"
        .parse::<Scope>()
        .expect("scope")
        .is_subset_of(&grant.scope));
    assert_eq!(
        grant.user_id.map(|u| u.into_string()),
        Some("user-tom".into())
    );
    assert!(on.codes.is_empty(), "no pending request kept");
}
