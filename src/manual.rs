//! The grantor manual: why the defaults are what they are.
//!
//! This module holds no code. It maps the threats named by the OAuth security documents
//! ([RFC 6749 §10](https://www.rfc-editor.org/rfc/rfc6749#section-10),
//! [RFC 6819](https://www.rfc-editor.org/rfc/rfc6819) and
//! [RFC 9700](https://www.rfc-editor.org/rfc/rfc9700)) to what grantor does about each, so that a
//! security review can start here.
//!
//! | threat | grantor's defence | where |
//! |---|---|---|
//! | A leaked token database yields usable tokens (RFC 6819 §5.1.4.1.3) | stores receive only the SHA-256 of each token ([`TokenHash`](crate::TokenHash)); nothing stored lets anyone recover a token | `token.rs`, `store/` |
//! | Guessable tokens (RFC 6749 §10.10) | 256 bits from a CSPRNG per token | `token.rs` |
//! | A leaked client database yields client secrets (RFC 6819 §5.1.4.1.3) | secrets kept as salted SHA-256 ([`SecretHash`](crate::SecretHash)) | `token.rs` |
//! | Timing attacks on secret comparison | `subtle` constant-time equality; a decoy comparison for unknown clients and (in the in-memory verifier) unknown users | `client_auth.rs`, `store/memory.rs` |
//! | Password guessing at the token endpoint (RFC 6749 §4.3.2, §2.3.1: "MUST protect … against brute force attacks") | an [`AttemptLimiter`](crate::AttemptLimiter), on by default, counts every attempt per username and per client *before* the [`UserVerifier`](crate::UserVerifier) is asked, so concurrent guesses cannot overrun it | `grant/password.rs` |
//! | Username enumeration | an unknown user and a wrong password get the same `invalid_grant` body and headers | `grant/password.rs` |
//! | Client enumeration | an unknown client and a wrong secret get the same `invalid_client` body | `client_auth.rs` |
//! | Refresh token theft and replay (RFC 9700 §4.14.2) | refresh tokens are bound to their client, rotate on every use (one atomic store step; rotation cannot be turned off for public clients), and a spent token presented again by its client revokes the whole family | `grant/refresh_token.rs` |
//! | Two concurrent uses of one refresh token | [`TokenStore::rotate_refresh_token`](crate::TokenStore::rotate_refresh_token) is one atomic step with exactly one winner; the loser is treated as a replay | `store/` |
//! | Scope escalation on refresh (RFC 6749 §6) | the requested scope must be within the original grant and the client's current allowed scope; the new refresh token keeps the original scope | `grant/refresh_token.rs` |
//! | Tokens cached by intermediaries (RFC 6749 §5.1) | `Cache-Control: no-store` and `Pragma: no-cache` on every token response and token error | `response.rs` |
//! | Tokens leaking through URLs (RFC 6750 §2.3, RFC 9700 §4.3.2) | query-string tokens are refused unless explicitly enabled | `bearer.rs` |
//! | Secrets in logs | every secret type has a redacted `Debug` and no `Display`; requests and responses print only lengths; `tracing` events carry client ids, grant types, error codes and reasons | `types.rs`, `request.rs`, `response.rs`, `server.rs` |
//! | Internal details in error responses | hook failures become a generic `server_error` (500) or `temporarily_unavailable` (503); the cause goes only to `tracing` | `error.rs` |
//! | Malformed input crashing the server | all parsing is fallible; `src/` is linted with `unwrap_used`, `expect_used`, `indexing_slicing` and `panic`; property tests throw arbitrary bytes at every entry point | everywhere |
//! | Ambiguous requests (RFC 6749 §3.2, §2.3) | a repeated parameter, two client authentication methods at once, or two ways of sending a bearer token are `invalid_request` | `request.rs`, `client_auth.rs`, `bearer.rs` |
//! | Authorization code interception (RFC 9700 §4.5, §4.8) | PKCE required for public clients (and optionally all), S256 only unless `plain` is enabled, verifier compared in constant time; a verifier for a code issued without a challenge is refused | `pkce.rs`, `grant/authorization_code.rs` |
//! | Code replay (RFC 6749 §4.1.2, §10.5) | codes are 256-bit, hashed at rest, live 60 s, spent in one atomic step; a second use revokes every token issued from the code | `grant/authorization_code.rs`, `store/` |
//! | Open redirectors and redirect URI manipulation (RFC 9700 §4.1, §4.11) | exact string matching against registered URIs; an untrusted client or URI is an error page, never a redirect | `authorize.rs` |
//! | Mix-up attacks (RFC 9700 §4.4, RFC 9207) | `iss` on every authorization response | `authorize.rs` |
//! | Tampering with the request during login (RFC 6749 §10.12) | the validated request stays on the server; the page carries only an opaque, single-use id | `authorize.rs`, `server.rs` |
//! | Implicit grant token leakage (RFC 9700 §2.1.2) | off unless enabled on the server and allowed for the client; never a refresh token | `grant/implicit.rs` |
//! | Clickjacking and CSRF on the login page (RFC 6749 §10.12, §10.13) | the host's job; the example shows `X-Frame-Options: DENY`, `frame-ancestors 'none'` and a double-submit CSRF token | `examples/axum_server.rs` |
//! | Use of the password grant itself (RFC 9700 §2.4: "MUST NOT be used") | off unless enabled with a [`UserVerifier`](crate::UserVerifier); only clients registered for it may use it | `server.rs` |
//! | Guessing a device's user code (RFC 8628 §5.1) | 8 characters from 20 consonants (about 34.6 bits), live 10 minutes; every wrong code counts against the person typing (10 per 15 minutes by default), reserved before the lookup so concurrent guesses are bounded too; a decided code stops working | `grant/device_code.rs` |
//! | Device code theft or guessing (RFC 8628 §5.2, §5.3) | device codes are 256-bit, hashed at rest, bound to their client (another client's poll is `invalid_grant` and changes nothing), and yield tokens once, in one atomic store step | `grant/device_code.rs`, `store/` |
//! | Devices polling too hard (RFC 8628 §3.5) | a poll sooner than the interval is `slow_down` and adds 5 s to that device code's interval | `store/device.rs` |
//! | Remote phishing with a device code (RFC 8628 §5.4) | [`device_request`](crate::AuthorizationServer::device_request) gives the verification page the client and scope to show before the person approves; the person may grant less | `server.rs` |
//! | A stolen password alone signs in a user who has a second factor | the password grant answers `403 mfa_required` with an `mfa_token` (256-bit, hashed at rest, bound to user, client and scope, 5 minutes, single use); only a right one-time code finishes the sign-in | `grant/password.rs`, `grant/mfa_otp.rs` |
//! | Learning which users have a second factor | a wrong password is the same plain `invalid_grant` for every user; `mfa_required` comes only after a right password | `user_auth.rs` |
//! | Guessing one-time codes | wrong (or reused) codes count against a limit per user id with the per-username rule, so every alias and every `mfa_token` of a user share it, and against the client when it is authenticated; the check is reserved before the verifier is asked, so concurrent guesses are bounded too | `user_auth.rs` |
//! | Replaying a one-time code (RFC 6238 §5.2) | an accepted code is marked used (per user and time step, atomically, in the shared store) until its window closes, and refused until then | `user_auth.rs`, `store/mfa.rs` |
