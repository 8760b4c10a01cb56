//! The refresh grant (RFC 6749 §6): binding, narrowing, rotation and replay detection.

mod common;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use grantor::{FamilyId, ResourceRequest, Scope, TokenLookup};

const APP: (&str, &str) = ("clientapp", "123456");

async fn access_works(f: &Fixture, token: &str, scope: &str) -> Result<(), u16> {
    f.server
        .bearer_validator()
        .validate(
            &ResourceRequest::new().with_authorization(format!("Bearer {token}")),
            &scope.parse::<Scope>().expect("scope"),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.status())
}

#[tokio::test]
async fn refreshing_rotates_the_refresh_token_within_its_family() {
    let f = fixture();
    let first = f.login().await;
    let r1 = first.str("refresh_token");
    let second = f.refresh(APP, &r1, "").await;
    assert_eq!(second.status, 200, "{}", second.json);
    second.assert_no_store();
    assert_eq!(second.json["token_type"], "Bearer");
    assert_eq!(second.json["expires_in"], 3600);
    let r2 = second.str("refresh_token");
    assert_ne!(r1, r2);
    assert_ne!(first.str("access_token"), second.str("access_token"));
    assert!(access_works(&f, &second.str("access_token"), "read")
        .await
        .is_ok());

    // Every token issued so far belongs to one family.
    let families: HashSet<String> = f
        .tokens
        .snapshot()
        .into_iter()
        .map(|(_, e)| match e {
            TokenLookup::Live(r) => r.family_id.map(FamilyId::into_string).unwrap_or_default(),
            TokenLookup::Rotated { family_id, .. } => family_id.into_string(),
            _ => String::new(),
        })
        .collect();
    assert_eq!(families.len(), 1);

    // The new refresh token works in turn.
    let third = f.refresh(APP, &r2, "").await;
    assert_eq!(third.status, 200);
}

#[tokio::test]
async fn a_replayed_refresh_token_revokes_the_whole_family() {
    let f = fixture();
    let first = f.login().await;
    let r1 = first.str("refresh_token");
    let second = f.refresh(APP, &r1, "").await;
    assert_eq!(second.status, 200);

    let replay = f.refresh(APP, &r1, "").await;
    assert_eq!((replay.status, replay.error()), (400, "invalid_grant"));
    replay.assert_no_store();

    // The legitimate-looking successor and every access token of the family are gone.
    let r2 = second.str("refresh_token");
    let after = f.refresh(APP, &r2, "").await;
    assert_eq!((after.status, after.error()), (400, "invalid_grant"));
    assert_eq!(
        access_works(&f, &second.str("access_token"), "read").await,
        Err(401)
    );
    assert_eq!(
        access_works(&f, &first.str("access_token"), "read").await,
        Err(401)
    );

    // Another login is another family, unaffected.
    let other = f.login().await;
    assert!(access_works(&f, &other.str("access_token"), "read")
        .await
        .is_ok());
}

#[tokio::test]
async fn a_refresh_token_is_bound_to_its_client_and_a_wrong_client_spends_nothing() {
    let f = fixture();
    let first = f.login().await;
    let r1 = first.str("refresh_token");
    let stolen = f.refresh(("other", "other-secret"), &r1, "").await;
    assert_eq!((stolen.status, stolen.error()), (400, "invalid_grant"));
    // The rightful client still can.
    let ok = f.refresh(APP, &r1, "").await;
    assert_eq!(ok.status, 200, "{}", ok.json);
}

#[tokio::test]
async fn scope_may_narrow_but_not_widen_and_the_refresh_token_keeps_its_scope() {
    let f = fixture();
    let first = f
        .post(
            APP,
            "grant_type=password&username=tom&password=123456&scope=read+write",
        )
        .await;
    assert_eq!(first.status, 200);
    let r1 = first.str("refresh_token");

    // Widening is invalid_scope, and costs the client nothing.
    for wide in ["admin", "read+write+admin", "bad%22scope"] {
        let a = f.refresh(APP, &r1, &format!("&scope={wide}")).await;
        assert_eq!((a.status, a.error()), (400, "invalid_scope"), "{wide}");
        a.assert_no_store();
    }

    // Narrowing works: the access token has only `read`.
    let narrow = f.refresh(APP, &r1, "&scope=read").await;
    assert_eq!(narrow.status, 200, "{}", narrow.json);
    let at = narrow.str("access_token");
    assert!(access_works(&f, &at, "read").await.is_ok());
    assert_eq!(access_works(&f, &at, "write").await, Err(403));

    // RFC 6749 §6: the new refresh token keeps the original scope, so a later refresh without
    // `scope` gets `read write` back.
    let again = f.refresh(APP, &narrow.str("refresh_token"), "").await;
    assert_eq!(again.status, 200);
    assert!(access_works(&f, &again.str("access_token"), "read write")
        .await
        .is_ok());
}

#[tokio::test]
async fn an_expired_refresh_token_is_invalid_grant() {
    let f = fixture_with(|b| b.refresh_token_lifetime(Duration::from_secs(600)));
    let first = f.login().await;
    f.clock.advance(Duration::from_secs(600));
    let a = f.refresh(APP, &first.str("refresh_token"), "").await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"));
}

#[tokio::test]
async fn the_engine_checks_refresh_expiry_even_if_the_store_does_not() {
    let f = fixture_with(|b| b.refresh_token_lifetime(Duration::from_secs(600)));
    let first = f.login().await;
    *f.store.frozen_now.lock().expect("lock") = Some(START);
    f.clock.advance(Duration::from_secs(600));
    let a = f.refresh(APP, &first.str("refresh_token"), "").await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"));
}

#[tokio::test]
async fn a_replay_seen_only_at_the_atomic_step_still_revokes_the_family() {
    let f = fixture();
    let first = f.login().await;
    // The store answers "already spent" at rotation, as when a concurrent request won.
    f.store.force_reused.store(true, Ordering::SeqCst);
    let a = f.refresh(APP, &first.str("refresh_token"), "").await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"));
    f.store.force_reused.store(false, Ordering::SeqCst);
    assert_eq!(
        access_works(&f, &first.str("access_token"), "read").await,
        Err(401)
    );
    let again = f.refresh(APP, &first.str("refresh_token"), "").await;
    assert_eq!(again.error(), "invalid_grant");
}

#[tokio::test]
async fn another_client_replaying_a_spent_token_revokes_nothing() {
    let f = fixture();
    let first = f.login().await;
    let r1 = first.str("refresh_token");
    let second = f.refresh(APP, &r1, "").await;
    assert_eq!(second.status, 200);
    let a = f.refresh(("other", "other-secret"), &r1, "").await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"));
    // The rightful client's family is untouched.
    assert!(access_works(&f, &second.str("access_token"), "read")
        .await
        .is_ok());
    let third = f.refresh(APP, &second.str("refresh_token"), "").await;
    assert_eq!(third.status, 200, "{}", third.json);
}

#[tokio::test]
async fn public_clients_always_rotate() {
    let f = fixture_with(|b| b.refresh_token_rotation(false));
    let first = f
        .token(grantor::TokenRequest::form(
            "grant_type=password&username=tom&password=123456&client_id=spa",
        ))
        .await;
    assert_eq!(first.status, 200);
    let r1 = first.str("refresh_token");
    let body = |t: &str| {
        grantor::TokenRequest::form(format!(
            "grant_type=refresh_token&refresh_token={t}&client_id=spa"
        ))
    };
    let second = f.token(body(&r1)).await;
    assert_eq!(second.status, 200, "{}", second.json);
    assert_ne!(second.str("refresh_token"), r1);
    let replay = f.token(body(&r1)).await;
    assert_eq!(replay.error(), "invalid_grant");
}

/// `clientapp` as registered, with `allowed` as its allowed scope (and `read` as default when
/// it is allowed).
fn clientapp_allowed(allowed: &str) -> grantor::Client {
    let client = grantor::Client::confidential(
        "clientapp",
        grantor::SecretHash::new(&grantor::ClientSecret::new("123456")),
    )
    .with_grant_types([
        grantor::GrantType::Password,
        grantor::GrantType::RefreshToken,
    ])
    .with_allowed_scope(allowed.parse().expect("scope"));
    if allowed.split(' ').any(|s| s == "read") {
        client.with_default_scope("read".parse().expect("scope"))
    } else {
        client
    }
}

#[tokio::test]
async fn the_clients_current_allowed_scope_bounds_a_refresh() {
    let f = fixture();
    let first = f
        .post(
            APP,
            "grant_type=password&username=tom&password=123456&scope=read+write",
        )
        .await;
    let r1 = first.str("refresh_token");
    // The client loses `write` after the login.
    f.clients.insert(clientapp_allowed("read"));
    let wide = f.refresh(APP, &r1, "&scope=write").await;
    assert_eq!((wide.status, wide.error()), (400, "invalid_scope"));
    let a = f.refresh(APP, &r1, "").await;
    assert_eq!(a.status, 200, "{}", a.json);
    // Narrowed, so the response says which scope was granted.
    assert_eq!(a.json["scope"], "read");
    assert_eq!(
        access_works(&f, &a.str("access_token"), "write").await,
        Err(403)
    );
}

/// A client that may no longer have any of the grant's scope gets no token with an empty scope:
/// `invalid_scope`, and the refresh token is not spent.
#[tokio::test]
async fn a_refresh_with_no_scope_left_is_invalid_scope() {
    let f = fixture();
    let r1 = f.login().await.str("refresh_token");
    f.clients.insert(clientapp_allowed("write"));
    let a = f.refresh(APP, &r1, "").await;
    assert_eq!((a.status, a.error()), (400, "invalid_scope"), "{}", a.json);
    assert!(a.str("error_description").contains("no scope remains"));
    // The client's scope comes back: the refresh token was not spent.
    f.clients.insert(clientapp_allowed("read write admin"));
    assert!(refresh_works(&f, &r1).await);
}

#[tokio::test]
async fn an_access_token_is_not_a_refresh_token() {
    let f = fixture();
    let first = f.login().await;
    let a = f.refresh(APP, &first.str("access_token"), "").await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"));
    let a = f.refresh(APP, "made-up", "").await;
    assert_eq!((a.status, a.error()), (400, "invalid_grant"));
}

#[tokio::test]
async fn the_refresh_token_parameter_is_required() {
    let f = fixture();
    let a = f.post(APP, "grant_type=refresh_token").await;
    assert_eq!((a.status, a.error()), (400, "invalid_request"));
}

#[tokio::test]
async fn a_client_not_allowed_the_refresh_grant_is_unauthorized_client() {
    let f = fixture();
    let a = f.refresh(("norefresh", "x"), "whatever", "").await;
    assert_eq!((a.status, a.error()), (400, "unauthorized_client"));
}

#[tokio::test]
async fn without_rotation_the_refresh_token_stays_valid() {
    let f = fixture_with(|b| b.refresh_token_rotation(false));
    let first = f.login().await;
    let r1 = first.str("refresh_token");
    for _ in 0..3 {
        let a = f.refresh(APP, &r1, "").await;
        assert_eq!(a.status, 200);
        assert!(a.json.get("refresh_token").is_none());
        assert!(access_works(&f, &a.str("access_token"), "read")
            .await
            .is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_of_one_token_have_exactly_one_winner() {
    let f = std::sync::Arc::new(fixture());
    let r1 = f.login().await.str("refresh_token");
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let f = f.clone();
        let r1 = r1.clone();
        tasks.push(tokio::spawn(
            async move { f.refresh(APP, &r1, "").await.status },
        ));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.ok() == Some(200) {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn the_refresh_grant_can_be_left_disabled() {
    use grantor::{AuthorizationServer, MemoryTokenStore, MemoryUserVerifier};
    use std::sync::Arc;
    let server =
        AuthorizationServer::builder(Arc::new(clients()), Arc::new(MemoryTokenStore::new()))
            .enable_password_grant(Arc::new(MemoryUserVerifier::new()))
            .build()
            .expect("server");
    let a = answer(
        server
            .token(
                grantor::TokenRequest::form("grant_type=refresh_token&refresh_token=x")
                    .with_authorization(basic("clientapp", "123456")),
            )
            .await,
    );
    assert_eq!((a.status, a.error()), (400, "unsupported_grant_type"));
}

fn with_grace(secs: u64) -> Fixture {
    fixture_with(|b| b.refresh_token_grace_period(Duration::from_secs(secs)))
}

async fn refresh_works(f: &Fixture, refresh_token: &str) -> bool {
    f.refresh(APP, refresh_token, "").await.status == 200
}

/// A refresh whose reply was lost in transit: within the grace period, the client presenting the
/// token it just spent gets a fresh pair instead of losing its session, and the pair the lost
/// reply carried stops working.
#[tokio::test]
async fn within_the_grace_period_a_retry_gets_a_fresh_pair() {
    let f = with_grace(30);
    let r0 = f.login().await.str("refresh_token");
    let lost = f.refresh(APP, &r0, "").await;
    assert_eq!(lost.status, 200);
    f.clock.advance(Duration::from_secs(10));
    let retry = f.refresh(APP, &r0, "").await;
    assert_eq!(retry.status, 200, "{}", retry.json);
    retry.assert_no_store();
    let (fresh_access, fresh_refresh) = (retry.str("access_token"), retry.str("refresh_token"));
    assert_ne!(fresh_refresh, lost.str("refresh_token"));
    assert_eq!(access_works(&f, &fresh_access, "read").await, Ok(()));
    // The grant is the same: user, scope, family (a replay of the lost pair revokes it all).
    let grant = f
        .server
        .bearer_validator()
        .validate(
            &ResourceRequest::new().with_authorization(format!("Bearer {fresh_access}")),
            &Scope::empty(),
        )
        .await
        .expect("valid");
    assert_eq!(
        grant.user_id.map(|u| u.into_string()).as_deref(),
        Some("user-tom")
    );
    // The new refresh token works; presenting the lost one later is a replay, which revokes
    // the family.
    let next = f.refresh(APP, &fresh_refresh, "").await;
    assert_eq!(next.status, 200, "{}", next.json);
    let replay = f.refresh(APP, &lost.str("refresh_token"), "").await;
    assert_eq!(replay.error(), "invalid_grant");
    assert_eq!(
        access_works(&f, &next.str("access_token"), "read").await,
        Err(401)
    );
    assert!(!refresh_works(&f, &next.str("refresh_token")).await);
}

#[tokio::test]
async fn after_the_grace_period_a_retry_is_a_replay() {
    let f = with_grace(30);
    let r0 = f.login().await.str("refresh_token");
    let lost = f.refresh(APP, &r0, "").await;
    // Whole seconds, rounded in the client's favour: 31 s after a rotation at a whole second.
    f.clock.advance(Duration::from_secs(31));
    let retry = f.refresh(APP, &r0, "").await;
    assert_eq!(retry.error(), "invalid_grant");
    assert_eq!(
        access_works(&f, &lost.str("access_token"), "read").await,
        Err(401)
    );
    assert!(!refresh_works(&f, &lost.str("refresh_token")).await);
}

#[tokio::test]
async fn without_a_grace_period_a_retry_is_a_replay() {
    let f = fixture();
    let r0 = f.login().await.str("refresh_token");
    let lost = f.refresh(APP, &r0, "").await;
    let retry = f.refresh(APP, &r0, "").await;
    assert_eq!(retry.error(), "invalid_grant");
    assert_eq!(
        access_works(&f, &lost.str("access_token"), "read").await,
        Err(401)
    );
}

/// The grace is for a reply that never arrived: once the client used what the rotation issued,
/// the spent token coming back is a replay (someone else holds a copy).
#[tokio::test]
async fn a_retry_after_the_new_token_was_used_is_a_replay() {
    let f = with_grace(30);
    let r0 = f.login().await.str("refresh_token");
    let first = f.refresh(APP, &r0, "").await;
    let second = f.refresh(APP, &first.str("refresh_token"), "").await;
    assert_eq!(second.status, 200);
    let retry = f.refresh(APP, &r0, "").await;
    assert_eq!(retry.error(), "invalid_grant");
    assert_eq!(
        access_works(&f, &second.str("access_token"), "read").await,
        Err(401)
    );
    assert!(!refresh_works(&f, &second.str("refresh_token")).await);
}

/// A retry within the grace period that finds, at the atomic step, that the unused token was
/// used meanwhile (a concurrent request won) is a replay too: the family is revoked.
#[tokio::test]
async fn a_retry_that_loses_at_the_atomic_step_is_a_replay() {
    let f = with_grace(30);
    let r0 = f.login().await.str("refresh_token");
    let lost = f.refresh(APP, &r0, "").await;
    assert_eq!(lost.status, 200);
    f.store.force_reused.store(true, Ordering::SeqCst);
    let retry = f.refresh(APP, &r0, "").await;
    f.store.force_reused.store(false, Ordering::SeqCst);
    assert_eq!(
        (retry.status, retry.error()),
        (400, "invalid_grant"),
        "{}",
        retry.json
    );
    assert_eq!(
        access_works(&f, &lost.str("access_token"), "read").await,
        Err(401)
    );
    assert!(!refresh_works(&f, &r0).await);
}

/// Only the client the token was issued to gets the grace; another client gets nothing and
/// revokes nothing.
#[tokio::test]
async fn another_client_gets_no_grace() {
    let f = with_grace(30);
    let r0 = f.login().await.str("refresh_token");
    let first = f.refresh(APP, &r0, "").await;
    let other = f.refresh(("other", "other-secret"), &r0, "").await;
    assert_eq!(other.error(), "invalid_grant");
    assert!(refresh_works(&f, &first.str("refresh_token")).await);
}

/// The same refresh sent twice at once (two tabs, a double submit): with a grace period both get
/// tokens, and the family still holds one usable refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_double_submit_within_the_grace_period_is_answered_twice() {
    let f = std::sync::Arc::new(with_grace(30));
    let r0 = f.login().await.str("refresh_token");
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (f, r0) = (f.clone(), r0.clone());
            tokio::spawn(async move { f.refresh(APP, &r0, "").await })
        })
        .collect();
    let mut refresh_tokens = Vec::new();
    for t in tasks {
        let a = t.await.expect("task");
        assert_eq!(a.status, 200, "{}", a.json);
        refresh_tokens.push(a.str("refresh_token"));
    }
    let usable: Vec<_> = refresh_tokens
        .iter()
        .filter(|r| {
            matches!(
                f.tokens.snapshot().iter().find(|(h, _)| *h
                    == grantor::TokenHash::of_refresh_token(&grantor::RefreshToken::new(
                        r.as_str()
                    ))),
                Some((_, TokenLookup::Live(_)))
            )
        })
        .collect();
    assert_eq!(usable.len(), 1, "{refresh_tokens:?}");
}

/// The grace period is kept whole although records keep whole seconds: a retry 0.9 s after a
/// rotation made half a second into a second is within a 1-second grace.
#[tokio::test]
async fn the_grace_period_is_never_cut_short_by_rounding() {
    let f = with_grace(1);
    f.clock.advance(Duration::from_millis(500));
    let r0 = f.login().await.str("refresh_token");
    assert_eq!(f.refresh(APP, &r0, "").await.status, 200);
    f.clock.advance(Duration::from_millis(900));
    let retry = f.refresh(APP, &r0, "").await;
    assert_eq!(retry.status, 200, "{}", retry.json);
}
