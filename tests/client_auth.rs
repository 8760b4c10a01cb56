//! Client authentication at the token endpoint (RFC 6749 §2.3.1, §3.2.1).

mod common;

use common::*;
use grantor::TokenRequest;

const LOGIN: &str = "grant_type=password&username=tom&password=123456";

fn assert_invalid_client(a: &Answer) {
    assert_eq!((a.status, a.error()), (401, "invalid_client"), "{}", a.json);
    assert!(
        a.header("WWW-Authenticate")
            .is_some_and(|v| v.starts_with("Basic ")),
        "{:?}",
        a.response
    );
    a.assert_no_store();
}

#[tokio::test]
async fn basic_credentials_are_form_url_decoded() {
    let f = fixture();
    // "my client" / "p@ss:word +", each form-urlencoded before base64 (RFC 6749 §2.3.1).
    let a = f.post(("my+client", "p%40ss%3Aword+%2B"), LOGIN).await;
    assert_eq!(a.status, 200, "{}", a.json);
    // Unencoded, the secret's colon would split wrongly, and "+" would mean a space.
    let a = f.post(("my client", "p@ss:word +"), LOGIN).await;
    assert_invalid_client(&a);
}

#[tokio::test]
async fn client_secret_post_works() {
    let f = fixture();
    let a = f
        .token(TokenRequest::form(format!(
            "{LOGIN}&client_id=clientapp&client_secret=123456"
        )))
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
}

#[tokio::test]
async fn basic_and_body_credentials_at_once_are_invalid_request() {
    let f = fixture();
    let a = f
        .token(
            TokenRequest::form(format!("{LOGIN}&client_id=clientapp&client_secret=123456"))
                .with_authorization(basic("clientapp", "123456")),
        )
        .await;
    assert_eq!((a.status, a.error()), (400, "invalid_request"));
    a.assert_no_store();
    // A client_id that disagrees with the header is refused too; one that agrees is fine.
    let a = f
        .token(
            TokenRequest::form(format!("{LOGIN}&client_id=other"))
                .with_authorization(basic("clientapp", "123456")),
        )
        .await;
    assert_eq!((a.status, a.error()), (400, "invalid_request"));
    let a = f
        .token(
            TokenRequest::form(format!("{LOGIN}&client_id=clientapp"))
                .with_authorization(basic("clientapp", "123456")),
        )
        .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn failed_authentication_is_401_invalid_client_with_a_basic_challenge() {
    let f = fixture();
    // Wrong secret, unknown client: the same answer.
    let wrong = f.post(("clientapp", "nope"), LOGIN).await;
    let unknown = f.post(("ghost", "nope"), LOGIN).await;
    assert_invalid_client(&wrong);
    assert_invalid_client(&unknown);
    assert_eq!(wrong.json, unknown.json);
    // Through the body, too.
    let a = f
        .token(TokenRequest::form(format!(
            "{LOGIN}&client_id=clientapp&client_secret=nope"
        )))
        .await;
    assert_invalid_client(&a);
    // No client authentication at all.
    let a = f.token(TokenRequest::form(LOGIN)).await;
    assert_invalid_client(&a);
    // A confidential client must send its secret.
    let a = f
        .token(TokenRequest::form(format!("{LOGIN}&client_id=clientapp")))
        .await;
    assert_invalid_client(&a);
    // A public client must not pretend to have one.
    let a = f.post(("spa", "made-up"), LOGIN).await;
    assert_invalid_client(&a);
    // Malformed or foreign Authorization headers.
    for header in ["Basic", "Basic !!!!", "Bearer abc", "Basic Y2xpZW50YXBw"] {
        let a = f
            .token(TokenRequest::form(LOGIN).with_authorization(header))
            .await;
        assert_invalid_client(&a);
    }
    // None of these reached the user verifier.
    assert_eq!(f.users.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn basic_scheme_is_case_insensitive_and_padding_optional() {
    let f = fixture();
    let a = f
        .token(TokenRequest::form(LOGIN).with_authorization("basic Y2xpZW50YXBwOjEyMzQ1Ng"))
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
}

/// A public client has no secret: `client_id` alone, or Basic with an empty password (as some
/// libraries send "none"), identifies it; Basic with any password is refused.
#[tokio::test]
async fn a_public_client_may_send_basic_with_an_empty_password() {
    let f = fixture();
    let a = f.post(("spa", ""), LOGIN).await;
    assert_eq!(a.status, 200, "{}", a.json);
    let a = f.post(("spa", "a-secret"), LOGIN).await;
    assert_invalid_client(&a);
}
