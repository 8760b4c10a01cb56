//! What the fuzz targets in `fuzz/` reach that the public API keeps inside: the request parsers,
//! each answering what it read. Built only with `--cfg fuzzing`, as `cargo fuzz` builds; no
//! other build has this module.

use std::future::Future;

/// The pairs a form body parses to, as the token endpoint reads it, or `None` if it is refused.
pub fn form(body: &[u8]) -> Option<Vec<(String, String)>> {
    crate::request::Params::from_form(body).ok().map(owned)
}

/// The pairs a JSON body parses to, as the token endpoint reads it (with JSON bodies on), or
/// `None` if it is refused.
pub fn json(body: &[u8]) -> Option<Vec<(String, String)>> {
    crate::request::Params::from_json(body).ok().map(owned)
}

fn owned(params: crate::request::Params<'_>) -> Vec<(String, String)> {
    params
        .pairs()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The client id and secret an `Authorization: Basic` value carries (RFC 6749 §2.3.1), or
/// `None` if it is refused.
pub fn basic(header: &[u8]) -> Option<(String, String)> {
    crate::client_auth::parse_basic(header)
        .ok()
        .map(|(id, secret)| (id.as_str().to_owned(), secret.into_secret()))
}

/// The PKCE challenge an authorization request's `code_challenge` and `code_challenge_method`
/// parse to: `Ok(None)` for none, `Err(())` if refused.
#[allow(clippy::result_unit_err)]
pub fn challenge(
    challenge: Option<&str>,
    method: Option<&str>,
    allow_plain: bool,
) -> Result<Option<crate::CodeChallenge>, ()> {
    crate::pkce::parse_challenge(challenge, method, allow_plain).map_err(|_| ())
}

/// Whether `verifier` has RFC 7636 §4.1's syntax.
pub fn verifier_syntax(verifier: &str) -> bool {
    crate::pkce::is_valid_verifier_syntax(verifier)
}

/// Whether `verifier` answers `challenge`, as the token endpoint compares them.
pub fn answers(challenge: &crate::CodeChallenge, verifier: &str) -> bool {
    challenge.is_answered_by_presented(verifier)
}

/// Runs `future`, which must not wait on anything outside it (the in-memory stores never do),
/// to its end on this thread.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::yield_now();
    }
}
