//! Hashing: how tokens and secrets are kept.
//!
//! - Every token is 256 bits from a CSPRNG, base64url without padding (43 characters), made by
//!   the `generate()` of its value type (`types.rs`).
//! - A store sees only the SHA-256 of a secret, as a [`Hashed`] of the secret's own kind:
//!   [`TokenHash`] for access and refresh tokens (one [`TokenStore`](crate::TokenStore) holds
//!   both, and revocation and introspection hash a token without knowing its kind),
//!   [`AuthorizationCodeHash`] and [`RequestIdHash`] for the [`CodeStore`](crate::CodeStore),
//!   [`DeviceCodeHash`] and [`UserCodeHash`] (of the normalised user code) for the
//!   [`DeviceCodeStore`](crate::DeviceCodeStore), and [`MfaTokenHash`] for the
//!   [`MfaStore`](crate::MfaStore). Each is made only from a value of its secret's type, so a
//!   hash of one kind cannot reach a store method that expects another. Nothing in a store lets
//!   anyone recover an issued token (RFC 6819 §5.1.4.1.3).
//! - Client secrets are kept as a [`SecretHash`]: a random salt and SHA-256 over salt and secret,
//!   compared in constant time. A slow password KDF is for user passwords, not for machine
//!   secrets that are already 128+ bits of entropy.

use std::fmt;
use std::marker::PhantomData;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::types::{
    AccessToken, AuthorizationCode, AuthorizationRequestId, ClientSecret, DeviceCode, MfaToken,
    RefreshToken, UserCode,
};

/// The SHA-256 of one kind of secret: the only form in which a secret reaches a store.
///
/// `K` names the kind, and each kind has its own alias: [`TokenHash`] (access and refresh
/// tokens), [`AuthorizationCodeHash`], [`RequestIdHash`], [`DeviceCodeHash`], [`UserCodeHash`]
/// and [`MfaTokenHash`]. A hash is made only from a value of its secret's type, so a hash of one
/// kind cannot be handed to a store method that expects another.
///
/// Equality is constant-time. `Debug` shows the kind and only the first 8 hex digits. The
/// serialized form is the 32 bytes, as a newtype, the same for every kind.
///
/// ```
/// use grantor::{AccessToken, RefreshToken, TokenHash};
///
/// let token = AccessToken::generate();
/// let hash = TokenHash::of_access_token(&token);
/// assert_eq!(hash.to_hex().len(), 64);
/// assert_eq!(TokenHash::from_hex(&hash.to_hex()), Some(hash));
/// // Access and refresh tokens hash alike: a presented token is found whatever its kind.
/// assert_eq!(hash, TokenHash::of_refresh_token(&RefreshToken::new(token.secret())));
/// ```
///
/// Store methods take the hash of their own kind; see [`CodeStore`](crate::CodeStore) for what
/// happens when a device code's hash is handed to a method that expects an authorization
/// code's.
pub struct Hashed<K> {
    bytes: [u8; 32],
    kind: PhantomData<fn() -> K>,
}

mod sealed {
    pub trait Sealed {}
}

/// A kind of secret that has a [`Hashed`] form of its own. Implemented by grantor's secret
/// types (and [`IssuedToken`]) only.
pub trait HashKind: sealed::Sealed {
    /// The name of the hash type, as `Debug` shows it and serde sees it (`"TokenHash"`).
    const NAME: &'static str;
}

/// The kind of a [`TokenHash`]: an issued token, access or refresh.
///
/// Access and refresh tokens share one [`TokenStore`](crate::TokenStore) keyed by hash, and
/// revocation and introspection hash a presented token without knowing its kind, so both hash
/// to this one type.
#[derive(Debug)]
pub enum IssuedToken {}

macro_rules! hash_kind {
    ($kind:ty, $alias:ident, $doc:literal) => {
        impl sealed::Sealed for $kind {}

        impl HashKind for $kind {
            const NAME: &'static str = stringify!($alias);
        }

        #[doc = $doc]
        pub type $alias = Hashed<$kind>;
    };
}

hash_kind!(
    IssuedToken,
    TokenHash,
    "The SHA-256 of an issued access or refresh token: what a [`TokenStore`](crate::TokenStore) is keyed by."
);
hash_kind!(
    AuthorizationCode,
    AuthorizationCodeHash,
    "The SHA-256 of an [`AuthorizationCode`]: what a [`CodeStore`](crate::CodeStore) keeps codes under."
);
hash_kind!(
    AuthorizationRequestId,
    RequestIdHash,
    "The SHA-256 of an [`AuthorizationRequestId`]: what a [`CodeStore`](crate::CodeStore) keeps pending requests under."
);
hash_kind!(
    DeviceCode,
    DeviceCodeHash,
    "The SHA-256 of a [`DeviceCode`]: what a [`DeviceCodeStore`](crate::DeviceCodeStore) keeps requests under."
);
hash_kind!(
    UserCode,
    UserCodeHash,
    "The SHA-256 of a [`UserCode`]'s [normalised](UserCode::normalized) form: what a [`DeviceCodeStore`](crate::DeviceCodeStore) finds requests by."
);
hash_kind!(
    MfaToken,
    MfaTokenHash,
    "The SHA-256 of an [`MfaToken`]: what an [`MfaStore`](crate::MfaStore) keeps challenges under."
);

impl<K> Hashed<K> {
    /// The SHA-256 of `value`. Private: each kind has its own constructor from its own type.
    fn digest(value: &str) -> Self {
        Self::from_bytes(Sha256::digest(value.as_bytes()).into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// Wraps 32 raw bytes: for a store reading back a hash it wrote.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            bytes,
            kind: PhantomData,
        }
    }

    /// Lower-case hex, 64 characters: a good database or cache key.
    pub fn to_hex(&self) -> String {
        hex(&self.bytes)
    }

    /// Parses 64 hex digits, for a store reading back a hash it wrote; `None` for anything else.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let hi = hex_value(*pair.first()?)?;
            let lo = hex_value(*pair.get(1)?)?;
            // Arithmetic rather than `(hi << 4) | lo`: the same byte, with no `|`-for-`^`
            // mutant that no test could tell apart.
            *slot = hi * 16 + lo;
        }
        Some(Self::from_bytes(out))
    }
}

impl TokenHash {
    /// The hash of an access token. A refresh token with the same value has the same hash.
    pub fn of_access_token(token: &AccessToken) -> Self {
        Self::digest(token.secret())
    }

    /// The hash of a refresh token. An access token with the same value has the same hash.
    pub fn of_refresh_token(token: &RefreshToken) -> Self {
        Self::digest(token.secret())
    }

    /// The hash of a token as a client presented it (either kind), without copying it into a
    /// token type first.
    pub(crate) fn of_presented(token: &str) -> Self {
        Self::digest(token)
    }
}

impl AuthorizationCodeHash {
    /// The hash of an authorization code.
    pub fn of(code: &AuthorizationCode) -> Self {
        Self::digest(code.secret())
    }

    /// The hash of a code as a client presented it, without copying it into an
    /// [`AuthorizationCode`] first.
    pub(crate) fn of_presented(code: &str) -> Self {
        Self::digest(code)
    }
}

impl RequestIdHash {
    /// The hash of an authorization request's handle.
    pub fn of(id: &AuthorizationRequestId) -> Self {
        Self::digest(id.secret())
    }
}

impl DeviceCodeHash {
    /// The hash of a device code.
    pub fn of(code: &DeviceCode) -> Self {
        Self::digest(code.secret())
    }
}

impl UserCodeHash {
    /// The hash of a user code's [normalised](UserCode::normalized) form, so that case, spaces
    /// and dashes do not matter (RFC 8628 §6.1).
    ///
    /// ```
    /// use grantor::{UserCode, UserCodeHash};
    ///
    /// assert_eq!(
    ///     UserCodeHash::of(&UserCode::new("wdjb-mjht")),
    ///     UserCodeHash::of(&UserCode::new("WDJBMJHT")),
    /// );
    /// ```
    pub fn of(code: &UserCode) -> Self {
        Self::digest(&code.normalized())
    }
}

impl MfaTokenHash {
    /// The hash of an `mfa_token`.
    pub fn of(token: &MfaToken) -> Self {
        Self::digest(token.secret())
    }
}

impl<K> Clone for Hashed<K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Hashed<K> {}

impl<K> PartialEq for Hashed<K> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes.ct_eq(&other.bytes).into()
    }
}

impl<K> Eq for Hashed<K> {}

impl<K> std::hash::Hash for Hashed<K> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Equal hashes are equal bytes, so hashing the bytes agrees with `eq`. One write of the
        // 32 bytes, no length prefix: a map keyed by digests may take them as they are.
        state.write(&self.bytes);
    }
}

impl<K: HashKind> fmt::Debug for Hashed<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = self.bytes.get(..4).map(hex).unwrap_or_default();
        write!(f, "{}({short}…)", K::NAME)
    }
}

impl<K: HashKind> Serialize for Hashed<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(K::NAME, &self.bytes)
    }
}

impl<'de, K: HashKind> Deserialize<'de> for Hashed<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<K>(PhantomData<fn() -> K>);

        impl<'de, K: HashKind> de::Visitor<'de> for Visitor<K> {
            type Value = Hashed<K>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "tuple struct {}", K::NAME)
            }

            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<Self::Value, D::Error> {
                <[u8; 32]>::deserialize(deserializer).map(Hashed::from_bytes)
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                match seq.next_element::<[u8; 32]>()? {
                    Some(bytes) => Ok(Hashed::from_bytes(bytes)),
                    None => Err(de::Error::invalid_length(0, &self)),
                }
            }
        }

        deserializer.deserialize_newtype_struct(K::NAME, Visitor(PhantomData))
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}"); // writing to a String cannot fail
    }
    s
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A salted SHA-256 hash of a client secret, in the form `sha256$<salt>$<hash>` (base64url).
///
/// Make one when you register a client and store its [`as_str`](SecretHash::as_str) form; load
/// it back with [`parse`](SecretHash::parse).
///
/// ```
/// use grantor::{ClientSecret, SecretHash};
///
/// let hash = SecretHash::new(&ClientSecret::new("s3cret"));
/// let stored = hash.as_str().to_owned();          // keep this in your database
/// let loaded = SecretHash::parse(&stored).unwrap();
/// assert!(loaded.verify(&ClientSecret::new("s3cret")));
/// assert!(!loaded.verify(&ClientSecret::new("wrong")));
/// ```
#[derive(Clone)]
pub struct SecretHash {
    encoded: String,
    salt: Vec<u8>,
    digest: [u8; 32],
}

impl SecretHash {
    /// Hashes `secret` with a fresh 128-bit random salt.
    pub fn new(secret: &ClientSecret) -> Self {
        let mut salt = vec![0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        Self::with_salt(salt, secret.secret())
    }

    /// Parses the stored form `sha256$<salt>$<hash>`; `None` if it is not one.
    pub fn parse(encoded: &str) -> Option<Self> {
        let mut parts = encoded.split('$');
        let (alg, salt, digest) = (parts.next()?, parts.next()?, parts.next()?);
        if alg != "sha256" || parts.next().is_some() {
            return None;
        }
        let salt = URL_SAFE_NO_PAD.decode(salt).ok()?;
        let digest: [u8; 32] = URL_SAFE_NO_PAD.decode(digest).ok()?.try_into().ok()?;
        Some(Self {
            encoded: encoded.to_owned(),
            salt,
            digest,
        })
    }

    /// The stored form, `sha256$<salt>$<hash>`.
    pub fn as_str(&self) -> &str {
        &self.encoded
    }

    /// Whether `secret` matches, compared in constant time.
    pub fn verify(&self, secret: &ClientSecret) -> bool {
        let candidate = digest(&self.salt, secret.secret());
        candidate.ct_eq(&self.digest).into()
    }

    fn with_salt(salt: Vec<u8>, secret: &str) -> Self {
        let digest = digest(&salt, secret);
        let encoded = format!(
            "sha256${}${}",
            URL_SAFE_NO_PAD.encode(&salt),
            URL_SAFE_NO_PAD.encode(digest)
        );
        Self {
            encoded,
            salt,
            digest,
        }
    }

    /// A hash that no secret matches in practice, verified against when a client is unknown so
    /// that the answer takes as long as for a known client.
    pub(crate) fn decoy() -> Self {
        Self::with_salt(vec![0u8; 16], "grantor-decoy-secret")
    }
}

impl PartialEq for SecretHash {
    /// Constant-time in the digest.
    fn eq(&self, other: &Self) -> bool {
        let same_digest: bool = self.digest.ct_eq(&other.digest).into();
        same_digest & (self.salt == other.salt)
    }
}

impl Eq for SecretHash {}

fn digest(salt: &[u8], secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(secret.as_bytes());
    h.finalize().into()
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash([redacted])")
    }
}

#[cfg(test)]
mod tests;
