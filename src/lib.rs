//! # grantor: an embeddable OAuth 2.0 authorization server engine
//!
//! grantor issues and checks OAuth 2.0 tokens inside your own Rust service. It is a pure
//! grant-processing engine: you hand it a request (body bytes and a few headers) and it hands you
//! a response (status, headers, body) to write out. It has no web framework, no database and no
//! clock of its own: you implement a few small traits over your own storage, and wire its
//! endpoints into whatever HTTP framework you use.
//!
//! It is not an identity provider (no OpenID Connect yet), not a client library (see the
//! `oauth2` crate for that), and not an HTTP server.
//!
//! ```text
//!   HTTP framework (axum, hyper, actix, …)            your storage
//!   ────────────────────────────────────────          ───────────────────────────────
//!   POST /oauth/token ──► TokenRequest ──┐             ClientStore     (clients)
//!                                        ▼             UserVerifier    (passwords, 2nd factors)
//!                           AuthorizationServer ◄────► TokenStore      (token hashes)
//!                                        │             AttemptLimiter  (failed logins)
//!   ◄── status, headers, body ◄── Response             CodeStore       (codes, pending requests)
//!                                                      DeviceCodeStore (device flow requests)
//!                                                      MfaStore        (mfa_tokens, used codes)
//!
//!   GET /api/… ──► ResourceRequest ──► BearerValidator ──► AccessGrant | BearerError
//! ```
//!
//! ## Quick start
//!
//! ```
//! use std::sync::Arc;
//! use grantor::{
//!     AuthorizationServer, Client, ClientSecret, GrantType, MemoryClientStore,
//!     MemoryTokenStore, MemoryUserVerifier, ResourceRequest, SecretHash, TokenRequest,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // 1. Register a client (only the secret's hash is kept) and a user.
//! let clients = MemoryClientStore::new();
//! clients.insert(
//!     Client::confidential("clientapp", SecretHash::new(&ClientSecret::new("123456")))
//!         .with_grant_types([GrantType::Password, GrantType::RefreshToken])
//!         .with_allowed_scope("read write".parse().unwrap())
//!         .with_default_scope("read".parse().unwrap()),
//! );
//! let users = MemoryUserVerifier::new();
//! users.add_user("tom", "user-1", "123456");
//!
//! // 2. Build the server.
//! let server = AuthorizationServer::builder(Arc::new(clients), Arc::new(MemoryTokenStore::new()))
//!     .enable_password_grant(Arc::new(users))
//!     .enable_refresh_token_grant()
//!     .build()
//!     .unwrap();
//!
//! // 3. The token endpoint: body and headers in, response out.
//! let response = server
//!     .token(
//!         TokenRequest::form("grant_type=password&username=tom&password=123456")
//!             .with_authorization("Basic Y2xpZW50YXBwOjEyMzQ1Ng=="), // clientapp:123456
//!     )
//!     .await;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.header("Cache-Control"), Some("no-store"));
//! let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
//! let access_token = body["access_token"].as_str().unwrap();
//!
//! // 4. A resource server checks the bearer token.
//! let request = ResourceRequest::new().with_authorization(format!("Bearer {access_token}"));
//! let grant = server
//!     .bearer_validator()
//!     .validate(&request, &"read".parse().unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(grant.user_id.unwrap().as_str(), "user-1");
//! # }
//! ```
//!
//! With the feature `axum`, `grantor::axum::router` serves these endpoints in an axum app, and
//! `grantor::axum::RequireScope` guards the app's own routes (`examples/minimal.rs` is a whole
//! service in under 30 lines); `examples/axum_server.rs` runs the worked example over HTTP, with
//! login, consent and device pages.
//!
//! ## What it does for you
//!
//! - **Exact RFC behaviour**: parameters, error codes and statuses, `Cache-Control: no-store`,
//!   `WWW-Authenticate` challenges (RFC 6749, RFC 6750).
//! - **Secure defaults**: tokens are 256-bit random values and are stored only as SHA-256
//!   hashes; client secrets as salted hashes compared in constant time; refresh tokens rotate and
//!   a replayed one revokes its whole family (RFC 9700 §4.14.2); password and one-time-code
//!   guesses are limited per username, per client and per caller address, while a burst of
//!   right passwords is never mistaken for an attack; an unknown user and a wrong password read
//!   the same.
//! - **Bounded under attack**: every parameter is at most 4096 bytes, the requests anyone can
//!   make without credentials (pending authorization requests, device codes) are capped per
//!   client and in all, and the in-memory stores expire entries in small batches.
//! - **Nothing lost to a lost reply**: a failed save gives back the code, approval or
//!   `mfa_token` it spent; an opt-in grace period answers a refresh retried by its own client.
//! - **Every common flow**: authorization code with PKCE, client credentials, refresh with
//!   rotation, the device flow for CLIs and TVs (RFC 8628), and, for first-party login forms, the
//!   password grant with an optional second factor (`mfa_required`, then the `mfa-otp` grant).
//! - **Atomic store operations**: each trait method is one step a real database can do
//!   atomically, so a refresh token cannot be spent twice by two concurrent requests.
//! - **No secrets in logs**: every token, secret and password type has a redacted `Debug` and no
//!   `Display`; `tracing` events carry client ids, grant types and reasons only.
//! - **No panics on input**: every request byte goes through fallible parsing.
//!
//! The [`manual`] maps the threats of RFC 6749 §10, RFC 6819 and RFC 9700 to these defences.
//!
//! ## Crate features
//!
//! - `http`: conversions between [`TokenRequest`]/[`ResourceRequest`]/[`Response`] and the
//!   `http` crate's `Request`/`Response`.
//! - `redis`: `RedisStore`, every store trait ([`TokenStore`], [`AttemptLimiter`], [`CodeStore`],
//!   [`DeviceCodeStore`], [`MfaStore`]) in Redis, so that many servers behind one address agree
//!   on every token, code, device request, used one-time code and failed-login count.
//! - `axum`: `grantor::axum`, the machine endpoints as an axum 0.8 router, extractors for
//!   grantor's requests, `RequireScope` for the app's own routes, and `IntoResponse` for
//!   grantor's answers (implies `http`).
//! - `postgres`, `sqlite`: `SqlStore`, every store trait (the five above, and [`ClientStore`])
//!   in PostgreSQL or SQLite through a sqlx pool the app passes in, with its tables
//!   (`SqlStore::migrate`) and a batched expiry sweep (`SqlStore::purge_expired`).
//! - `jwt`: `LocalKeys`, signing keys for JWT access tokens kept in this process (ES256, EdDSA,
//!   RS256, through `ring`), behind the [`TokenSigner`] trait a KMS can implement too, with
//!   their JWK Set (RFC 7517).
//! - `totp`: `Totp`, RFC 6238 one-time codes (through the `totp-rs` crate), for a
//!   [`UserVerifier::verify_otp`] that checks an authenticator app's codes.
//! - `conformance`: `grantor::conformance`, the checks every store must pass, with one test
//!   macro per store trait (`token_store_conformance!` and the like) to run them on a store of
//!   your own; for dev-dependencies. Brings in `tokio` for the checks' runtime.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod attempts;
mod authorize;
#[cfg(feature = "axum")]
pub mod axum;
mod bearer;
mod builder;
mod client;
mod client_auth;
mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod grant;
#[cfg(feature = "http")]
mod http;
mod introspection;
mod jose;
#[cfg(feature = "jwt")]
mod jwt;
pub mod manual;
mod metadata;
mod pkce;
mod random;
mod reason;
mod request;
mod resource;
mod resource_metadata;
mod response;
mod revocation;
mod scope;
mod server;
mod store;
mod token;
#[cfg(feature = "totp")]
mod totp;
mod types;
mod user_auth;

/// Re-exported so implementors of the store traits need not depend on `async-trait` themselves.
pub use async_trait::async_trait;
pub use authorize::{
    AuthorizationRequest, AuthorizeOutcome, Decision, Redirect, ValidAuthorization,
};
pub use bearer::{AccessGrant, BearerError, BearerValidator, ResourceRequest, TokenLocation};
pub use builder::{AuthorizationServerBuilder, BuildError};
pub use client::{AccessTokenFormat, Client, ClientKind};
pub use client_auth::ClientSecretLimits;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{BoxError, ErrorCode, OAuthError, StoreError};
pub use grant::context::REVOKED_FAMILY_MEMORY;
pub use grant::device_code::{DeviceConfirmation, DeviceRequest};
pub use jose::{sign_compact, Jwk, Jwks, JwsAlgorithm, TokenSigner};
#[cfg(feature = "jwt")]
pub use jose::{KeyError, LocalKeys};
#[cfg(feature = "jwt")]
pub use jwt::{JwksRefresh, JwksSource};
pub use metadata::EndpointPaths;
pub use pkce::{CodeChallenge, CodeChallengeMethod};
pub use reason::Reason;
pub use request::{TokenRequest, MAX_PARAMETERS, MAX_PARAMETER_LENGTH};
pub use resource::{InvalidResource, Resource};
pub use resource_metadata::ProtectedResourceMetadata;
pub use response::Response;
pub use scope::{Scope, ScopeError};
pub use server::AuthorizationServer;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use store::SqlStore;
pub use store::{
    decode_record, encode_record, Admission, AttemptKey, AttemptLease, AttemptLimiter, AttemptRule,
    AttemptVerdict, ClientStore, CodeGrant, CodeLookup, CodeRestore, CodeSpend, CodeStore,
    DeviceAuthorization, DeviceCodeStore, DeviceDecided, DeviceDecision, DevicePace, DeviceRestore,
    DeviceSave, DeviceStatus, DeviceUpdate, MemoryAttemptLimiter, MemoryClientStore,
    MemoryCodeStore, MemoryDeviceCodeStore, MemoryMfaStore, MemoryTokenStore, MemoryUserVerifier,
    MfaChallenge, MfaStore, OtpAdvance, OtpVerdict, PendingAuthorization, PendingLimits, Record,
    SpentCode, SpentMark, TokenChange, TokenExpectation, TokenKind, TokenLookup, TokenRecord,
    TokenSave, TokenStore, TokenUpdate, UserVerdict, UserVerifier, RECORD_FORMAT,
};
#[cfg(feature = "redis")]
pub use store::{RedisStore, RedisStoreBuilder};
pub use token::{
    AuthorizationCodeHash, DeviceCodeHash, HashKind, Hashed, IssuedToken, MfaTokenHash,
    RequestIdHash, SecretHash, TokenHash, UserCodeHash,
};
#[cfg(feature = "totp")]
pub use totp::{Totp, TotpError};
pub use types::{
    AccessToken, AuthorizationCode, AuthorizationRequestId, ClientId, ClientSecret, CodeVerifier,
    DeviceCode, FamilyId, GrantType, MfaToken, OneTimeCode, Password, RedirectUri, RefreshToken,
    ResourceOwner, ResponseType, UserCode, UserId, Username, USER_CODE_ALPHABET,
};
pub use user_auth::LoginLimits;
