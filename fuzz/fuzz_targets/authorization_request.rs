//! The authorization endpoint (RFC 6749 §3.1, §4.1.1, §4.2.1; RFC 7636; RFC 8707) over any
//! query: it never panics; a request it keeps names a registered redirect URI, and a redirect
//! goes only to one; an untrusted request is a page.
#![no_main]

use std::sync::{Arc, OnceLock};

use grantor::{
    AuthorizationRequest, AuthorizationServer, AuthorizeOutcome, Client, ClientSecret, GrantType,
    MemoryClientStore, MemoryCodeStore, MemoryTokenStore, PendingLimits, SecretHash,
};
use libfuzzer_sys::fuzz_target;

const REDIRECTS: [&str; 3] = [
    "http://localhost:3000/callback",
    "https://app.example.com/cb?tenant=7",
    "com.example.app:/oauth",
];

fn server() -> &'static AuthorizationServer {
    static SERVER: OnceLock<AuthorizationServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let scope = |s: &str| s.parse().expect("scope");
        let clients = MemoryClientStore::new();
        clients.insert(
            Client::public("spa")
                .with_grant_types([GrantType::AuthorizationCode, GrantType::Implicit])
                .with_allowed_scope(scope("read write"))
                .with_default_scope(scope("read"))
                .with_redirect_uris(REDIRECTS),
        );
        clients.insert(
            Client::confidential("web", SecretHash::new(&ClientSecret::new("s")))
                .with_grant_types([GrantType::AuthorizationCode])
                .with_allowed_scope(scope("read"))
                .with_redirect_uris([REDIRECTS[1]])
                .with_resources(["https://api.example.com".parse().expect("resource")]),
        );
        AuthorizationServer::builder(Arc::new(clients), Arc::new(MemoryTokenStore::new()))
            .issuer("https://auth.example.com")
            .enable_authorization_code_grant(Arc::new(MemoryCodeStore::new()))
            .enable_implicit_grant()
            .resources(["https://api.example.com".parse().expect("resource")])
            // Small bounds, so that a long run reaches them.
            .pending_request_limits(PendingLimits {
                per_client: 64,
                total: 256,
            })
            .build()
            .expect("a server")
    })
}

fuzz_target!(|query: &[u8]| {
    let outcome =
        grantor::fuzzing::block_on(server().authorize(AuthorizationRequest::from_query(query)));
    match outcome {
        AuthorizeOutcome::Pending { request, .. } => {
            assert!(REDIRECTS.contains(&request.redirect_uri.as_str()));
            assert!(request
                .state
                .as_ref()
                .is_none_or(|s| s.len() <= grantor::MAX_PARAMETER_LENGTH));
            assert!(request
                .resources
                .iter()
                .all(|r| r == "https://api.example.com"));
        }
        AuthorizeOutcome::Redirect(redirect) => {
            let location = redirect.location();
            assert!(
                REDIRECTS.iter().any(|r| location.starts_with(r)),
                "{location}"
            );
        }
        AuthorizeOutcome::Invalid(error) | AuthorizeOutcome::Unavailable(error) => {
            assert!(!error.description().is_empty());
        }
        _ => {}
    }
});
