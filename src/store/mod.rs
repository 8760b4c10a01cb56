//! The hooks the host application implements: clients, users, tokens and failed-attempt counts.
//!
//! | trait | what it answers | module | in-memory default |
//! |---|---|---|---|
//! | [`ClientStore`] | a registered client by id | `client` | [`MemoryClientStore`] |
//! | [`UserVerifier`] | whether a username and password belong to a user | `user` | [`MemoryUserVerifier`] |
//! | [`TokenStore`] | issued tokens, by hash, with their grant records, and marks of spent ones | `token` | [`MemoryTokenStore`] |
//! | [`AttemptLimiter`] | whether a login may be tried now (brute-force protection) | `attempt` | [`MemoryAttemptLimiter`] |
//! | [`CodeStore`] | authorization requests awaiting a decision, and authorization codes (live, or spent into a used mark) | `code` | [`MemoryCodeStore`] |
//! | [`DeviceCodeStore`] | device authorization requests (RFC 8628), kept as long as the engine says, their polls recorded by compare-and-set | `device` | [`MemoryDeviceCodeStore`] |
//! | [`MfaStore`] | password sign-ins owing a second factor, and each user's last accepted one-time code counter | `mfa` | [`MemoryMfaStore`] |
//!
//! No store is handed a secret, only its SHA-256, as a hash type of the secret's own kind (see
//! [`Hashed`](crate::Hashed)): [`TokenStore`] takes [`TokenHash`](crate::TokenHash)es (access
//! and refresh tokens alike), [`CodeStore`] [`RequestIdHash`](crate::RequestIdHash)es for
//! pending requests and [`AuthorizationCodeHash`](crate::AuthorizationCodeHash)es for codes,
//! [`DeviceCodeStore`] [`DeviceCodeHash`](crate::DeviceCodeHash)es and
//! [`UserCodeHash`](crate::UserCodeHash)es, and [`MfaStore`]
//! [`MfaTokenHash`](crate::MfaTokenHash)es. A hash of one kind cannot be passed where another
//! is expected.
//!
//! Each concern has one module holding its trait with the records and answers it speaks in
//! (`pending` holds [`PendingLimits`] and [`Admission`], shared by the code and device stores;
//! the [`Client`](crate::Client) record itself lives outside the store layer). The in-memory
//! stores live in `memory`, one module per store; with the `redis` feature, `RedisStore` lives
//! in `redis`, one module per trait it implements, each Lua script in a file of its own under
//! `redis/lua/`. Everything is re-exported here, and from the crate root.
//!
//! With the `redis` feature, `RedisStore` implements [`TokenStore`], [`AttemptLimiter`],
//! [`CodeStore`], [`DeviceCodeStore`] and [`MfaStore`] in Redis, for several servers that must
//! share them; with the `postgres` or `sqlite` feature, `SqlStore` implements the same five in
//! PostgreSQL or SQLite (in `sql`, one module per trait), and [`ClientStore`] over clients it
//! registers (`save_client`). [`ClientStore`] is read-only, so it has no conformance macro: each
//! implementation's own tests register and read clients. Every store passes one conformance
//! suite, and so must any store of your own: with the `conformance` feature,
//! `grantor::conformance` runs it on yours, one test macro per trait.
//!
//! Every trait is `Send + Sync` with `&self` methods: interior mutability (a connection pool, a
//! lock) is the implementor's business, and the server holds each as an `Arc<dyn Trait>`.
//!
//! Every method is **one step that a real database can do atomically**: one `GETDEL` or script in
//! Redis, one statement or transaction in SQL (`DELETE … RETURNING`, `UPDATE … WHERE state =
//! 'live' RETURNING`). The engine never reads a value, decides, and writes it back blindly across
//! two calls: where a step must be single-use (counting an attempt, taking a device approval)
//! the method itself is the check and the write. Where the engine decides from a read, the write
//! that follows is a compare-and-set from the state it read, which answers a conflict and
//! changes nothing if that state moved meanwhile: [`TokenStore::update_tokens`] spends tokens
//! into the marks the engine computed, [`CodeStore::spend_code`] turns a live code into its used
//! mark, [`DeviceCodeStore::record_poll`] writes a device's pace. The protocol's rules (which
//! client may use a token or a code, what a second use means, how long a revoked family is
//! refused, the polling pace) live in the engine; a store compares states, families and times,
//! as its documentation says. Each method's documentation says who calls it, what must be
//! atomic, and what each answer means.

mod attempt;
mod client;
mod code;
mod device;
mod expiry;
#[cfg(any(feature = "redis", feature = "postgres", feature = "sqlite"))]
mod keyed;
mod memory;
mod mfa;
mod pending;
mod record;
#[cfg(feature = "redis")]
mod redis;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod sql;
mod token;
mod user;

#[cfg(feature = "redis")]
pub use self::redis::{RedisStore, RedisStoreBuilder};
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use self::sql::SqlStore;
pub use attempt::{AttemptKey, AttemptLease, AttemptLimiter, AttemptRule, AttemptVerdict};
pub use client::ClientStore;
pub use code::{
    CodeGrant, CodeLookup, CodeRestore, CodeSpend, CodeStore, PendingAuthorization, SpentCode,
};
pub use device::{
    DeviceAuthorization, DeviceCodeStore, DeviceDecided, DeviceDecision, DevicePace, DeviceRestore,
    DeviceSave, DeviceStatus, DeviceUpdate,
};
pub use memory::{
    MemoryAttemptLimiter, MemoryClientStore, MemoryCodeStore, MemoryDeviceCodeStore,
    MemoryMfaStore, MemoryTokenStore, MemoryUserVerifier,
};
pub use mfa::{MfaChallenge, MfaStore, OtpAdvance};
pub use pending::{Admission, PendingLimits};
pub use record::{decode_record, encode_record, Record, RECORD_FORMAT};
pub use token::{
    SpentMark, TokenChange, TokenExpectation, TokenKind, TokenLookup, TokenRecord, TokenSave,
    TokenStore, TokenUpdate,
};
pub use user::{OtpVerdict, UserVerdict, UserVerifier};
