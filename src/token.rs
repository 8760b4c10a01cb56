//! Minting and hashing: how tokens and secrets are made and how they are kept.
//!
//! - Every token is 256 bits from a CSPRNG, base64url without padding (43 characters).
//! - The store sees only a [`TokenHash`], the SHA-256 of the token. Nothing in it lets anyone
//!   recover an issued token (RFC 6819 §5.1.4.1.3).
//! - Client secrets are kept as a [`SecretHash`]: a random salt and SHA-256 over salt and secret,
//!   compared in constant time. A slow password KDF is for user passwords, not for machine
//!   secrets that are already 128+ bits of entropy.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::types::{AccessToken, ClientSecret, RefreshToken};

/// The SHA-256 of a token: the only form in which tokens reach a store.
///
/// Equality is constant-time. `Debug` shows only the first 8 hex digits.
///
/// ```
/// use grantor::{AccessToken, TokenHash};
///
/// let token = AccessToken::generate();
/// let hash = TokenHash::of_access_token(&token);
/// assert_eq!(hash, TokenHash::of(token.secret()));
/// assert_eq!(TokenHash::from_hex(&hash.to_hex()), Some(hash));
/// ```
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The hash of a token's string value, as the engine computes it for any presented token.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// The hash of an access token.
    pub fn of_access_token(token: &AccessToken) -> Self {
        Self::of(token.secret())
    }

    /// The hash of a refresh token.
    pub fn of_refresh_token(token: &RefreshToken) -> Self {
        Self::of(token.secret())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Wraps 32 raw bytes (as read back from a store).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Lower-case hex, 64 characters: a good database or cache key.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses 64 hex digits; `None` for anything else.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let hi = hex_value(*pair.first()?)?;
            let lo = hex_value(*pair.get(1)?)?;
            *slot = (hi << 4) | lo;
        }
        Some(Self(out))
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for TokenHash {}

impl std::hash::Hash for TokenHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Equal hashes are equal bytes, so hashing the bytes agrees with `eq`.
        self.0.hash(state);
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = self.0.get(..4).map(hex).unwrap_or_default();
        write!(f, "TokenHash({short}…)")
    }
}

fn hex(bytes: &[u8]) -> String {
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
