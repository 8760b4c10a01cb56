//! Signing keys for JWT access tokens (RFC 9068) and the JWK Set that publishes them (RFC 7517).
//!
//! The engine signs through a [`TokenSigner`], so that a host may keep its private keys in a
//! KMS or an HSM; with the `jwt` feature, [`LocalKeys`] keeps them in this process (through
//! `ring`, whose signing operations are constant-time). Every key has an id (`kid`, in the JWS
//! header of every token it signs) and one algorithm: ES256 (ECDSA P-256), EdDSA (Ed25519) or
//! RS256 (RSASSA-PKCS1-v1_5 with SHA-256).
//!
//! Rotation, with [`LocalKeys`]: [`stage`](LocalKeys::stage_pkcs8) the new key (published,
//! not signing); once resource servers have had time to learn it (longer than the JWK Set may
//! be cached, five minutes), [`activate`](LocalKeys::activate) it and
//! [`retire`](LocalKeys::retire) the old one, which then signs nothing but stays published, so
//! that resource servers still check the tokens it signed; once those have expired,
//! [`unpublish`](LocalKeys::unpublish) it. ([`add_pkcs8`](LocalKeys::add_pkcs8) and
//! [`generate`](LocalKeys::generate) make a key active at once: for a first key, or a rotation
//! whose resource servers fetch an unknown `kid` at once, as a
//! [`JwksSource`](crate::JwksSource) does.)
//!
//! A host with its own signer publishes its keys with [`Jwk::from_spki_der`] (or
//! [`Jwk::es256`], [`Jwk::eddsa`], [`Jwk::rs256`]) and names them with
//! [`Jwk::thumbprint`].

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// A JWS algorithm grantor signs with (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum JwsAlgorithm {
    /// ECDSA with P-256 and SHA-256.
    #[serde(rename = "ES256")]
    Es256,
    /// EdDSA with Ed25519.
    #[serde(rename = "EdDSA")]
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (what OpenID Connect requires every provider to offer).
    #[serde(rename = "RS256")]
    Rs256,
}

impl JwsAlgorithm {
    /// The `alg` value, e.g. `"ES256"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
        }
    }
}

/// A public key as a JWK (RFC 7517 §4): public members only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// The key type: `EC`, `OKP` or `RSA`.
    pub kty: String,
    /// The key id, as in the header of every token the key signs.
    pub kid: String,
    /// What the key is for: `sig` (the default when a set leaves it out).
    #[serde(rename = "use", default = "signature_use")]
    pub use_: String,
    /// The algorithm the key signs with.
    pub alg: JwsAlgorithm,
    /// The curve (`P-256`, `Ed25519`), for `EC` and `OKP` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// The x coordinate (`EC`) or the public key (`OKP`), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// The y coordinate (`EC`), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// The modulus (`RSA`), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// The public exponent (`RSA`), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

impl Jwk {
    fn signing(kid: &str, kty: &str, alg: JwsAlgorithm) -> Self {
        Self {
            kty: kty.to_owned(),
            kid: kid.to_owned(),
            use_: signature_use(),
            alg,
            crv: None,
            x: None,
            y: None,
            n: None,
            e: None,
        }
    }

    /// An ES256 key from its P-256 point's coordinates, big-endian (each at most 32 bytes;
    /// shorter ones are padded, as RFC 7518 §6.2.1.2 asks). `None` for longer ones.
    pub fn es256(kid: &str, x: &[u8], y: &[u8]) -> Option<Self> {
        let padded = |c: &[u8]| -> Option<String> {
            let mut full = [0u8; 32];
            let start = 32usize.checked_sub(c.len())?;
            full.get_mut(start..)?.copy_from_slice(c);
            Some(URL_SAFE_NO_PAD.encode(full))
        };
        let mut jwk = Self::signing(kid, "EC", JwsAlgorithm::Es256);
        jwk.crv = Some("P-256".to_owned());
        jwk.x = Some(padded(x)?);
        jwk.y = Some(padded(y)?);
        Some(jwk)
    }

    /// An EdDSA key from its 32-byte Ed25519 public key (RFC 8037 §2). `None` for another
    /// length.
    pub fn eddsa(kid: &str, public: &[u8]) -> Option<Self> {
        if public.len() != 32 {
            return None;
        }
        let mut jwk = Self::signing(kid, "OKP", JwsAlgorithm::EdDsa);
        jwk.crv = Some("Ed25519".to_owned());
        jwk.x = Some(URL_SAFE_NO_PAD.encode(public));
        Some(jwk)
    }

    /// An RS256 key from its modulus and public exponent, big-endian; leading zero bytes are
    /// dropped (RFC 7518 §6.3.1.1). `None` for a modulus under 2048 bits, or an empty exponent.
    pub fn rs256(kid: &str, n: &[u8], e: &[u8]) -> Option<Self> {
        let trimmed =
            |b: &[u8]| -> Vec<u8> { b.iter().skip_while(|byte| **byte == 0).copied().collect() };
        let (n, e) = (trimmed(n), trimmed(e));
        if n.len() < 256 || e.is_empty() {
            return None;
        }
        let mut jwk = Self::signing(kid, "RSA", JwsAlgorithm::Rs256);
        jwk.n = Some(URL_SAFE_NO_PAD.encode(n));
        jwk.e = Some(URL_SAFE_NO_PAD.encode(e));
        Some(jwk)
    }

    /// The key's JWK SHA-256 thumbprint (RFC 7638), base64url: a `kid` that names the key
    /// itself, the same wherever the key is published. `None` for a key missing a member its
    /// type requires.
    ///
    /// ```
    /// use grantor::Jwks;
    ///
    /// // RFC 7638 §3.1's example key and thumbprint.
    /// let set: Jwks = serde_json::from_str(r#"{"keys":[{"kty":"RSA","alg":"RS256","kid":"2011-04-29","e":"AQAB",
    ///   "n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}]}"#).unwrap();
    /// assert_eq!(
    ///     set.keys[0].thumbprint().as_deref(),
    ///     Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    /// );
    /// ```
    pub fn thumbprint(&self) -> Option<String> {
        use sha2::Digest as _;
        // §3.2: the required members only, in lexicographic order, no whitespace. Their
        // values are base64url or curve names, which JSON writes as they are; a value with any
        // other character is no key of these types.
        let member = |m: &Option<String>| {
            m.as_deref()
                .filter(|v| {
                    v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
                .map(str::to_owned)
        };
        let canonical = match self.kty.as_str() {
            "EC" => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                member(&self.crv)?,
                member(&self.x)?,
                member(&self.y)?
            ),
            "OKP" => format!(
                r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
                member(&self.crv)?,
                member(&self.x)?
            ),
            "RSA" => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                member(&self.e)?,
                member(&self.n)?
            ),
            _ => return None,
        };
        Some(URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes())))
    }

    /// The key of `alg` in a DER `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7), as a KMS or HSM
    /// answers a public key (a PEM `PUBLIC KEY` block, decoded): a P-256 key for ES256 (RFC
    /// 5480), an Ed25519 key for EdDSA (RFC 8410), an RSA key for RS256 (RFC 3279). `None` for
    /// anything else, or a key of another algorithm.
    ///
    /// ```
    /// # use grantor::{Jwk, JwsAlgorithm};
    /// # use base64::Engine as _;
    /// let spki = base64::engine::general_purpose::STANDARD
    ///     .decode("MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=")
    ///     .unwrap();
    /// let jwk = Jwk::from_spki_der("kms-1", JwsAlgorithm::EdDsa, &spki).unwrap();
    /// assert_eq!(jwk.x.as_deref(), Some("Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE"));
    /// assert!(Jwk::from_spki_der("kms-1", JwsAlgorithm::Es256, &spki).is_none());
    /// ```
    pub fn from_spki_der(kid: &str, alg: JwsAlgorithm, der: &[u8]) -> Option<Self> {
        // id-ecPublicKey with prime256v1; id-Ed25519; rsaEncryption.
        const EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
        const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
        let (spki, rest) = der_take(der, 0x30)?;
        if !rest.is_empty() {
            return None;
        }
        let (algorithm, rest) = der_take(spki, 0x30)?;
        let (bits, rest) = der_take(rest, 0x03)?;
        if !rest.is_empty() {
            return None;
        }
        // A whole number of bytes: no unused bits.
        let key = bits.strip_prefix(&[0])?;
        let (oid, parameters) = der_take(algorithm, 0x06)?;
        match alg {
            JwsAlgorithm::Es256 if oid == EC && parameters == P256 => {
                let point = key.strip_prefix(&[0x04])?;
                if point.len() != 64 {
                    return None;
                }
                Self::es256(kid, point.get(..32)?, point.get(32..)?)
            }
            JwsAlgorithm::EdDsa if oid == ED25519 && parameters.is_empty() => Self::eddsa(kid, key),
            JwsAlgorithm::Rs256 if oid == RSA && matches!(parameters, [] | [0x05, 0x00]) => {
                let (components, rest) = der_take(key, 0x30)?;
                if !rest.is_empty() {
                    return None;
                }
                let (n, rest) = der_take(components, 0x02)?;
                let (e, rest) = der_take(rest, 0x02)?;
                if !rest.is_empty() {
                    return None;
                }
                Self::rs256(kid, n, e)
            }
            _ => None,
        }
    }
}

/// One DER element of tag `tag` at the start of `input`: its contents, and what follows.
/// Definite lengths of up to three bytes, which any public key fits.
fn der_take(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x83 => {
            let count = usize::from(first - 0x80);
            let bytes = rest.get(..count)?;
            let len = bytes
                .iter()
                .fold(0usize, |len, b| (len << 8) | usize::from(*b));
            (len, rest.get(count..)?)
        }
        _ => return None,
    };
    Some((rest.get(..len)?, rest.get(len..)?))
}

fn signature_use() -> String {
    "sig".to_owned()
}

/// A JWK Set (RFC 7517 §5): what `jwks_uri` serves.
///
/// Read from JSON, it keeps the signing keys it understands and leaves out the others (§5:
/// implementations "SHOULD ignore JWKs within a JWK Set that use "kty" (key type) values that
/// are not understood by them, that are missing required members, or for which values are out
/// of the supported ranges"): keys of another algorithm, without a `kid`, RSA keys without an
/// `alg`, or keys for encryption (`"use": "enc"`). A P-256 or Ed25519 key without an `alg`
/// has the one algorithm its curve signs with. A set one key of which is unreadable still checks tokens signed
/// by the others.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Jwks {
    /// The published keys.
    pub keys: Vec<Jwk>,
}

impl<'de> Deserialize<'de> for Jwks {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Members {
            keys: Vec<serde_json::Value>,
        }
        let members = Members::deserialize(deserializer)?;
        Ok(Jwks {
            keys: members
                .keys
                .into_iter()
                .filter_map(|mut key| {
                    // A key without `alg` whose type names one algorithm has that one (a
                    // P-256 key signs ES256, an Ed25519 key EdDSA); an RSA key could be one
                    // of several, and is left out.
                    if let Some(object) = key.as_object_mut() {
                        if !object.contains_key("alg") {
                            let text = |name: &str| object.get(name).and_then(|v| v.as_str());
                            let alg = match (text("kty"), text("crv")) {
                                (Some("EC"), Some("P-256")) => Some("ES256"),
                                (Some("OKP"), Some("Ed25519")) => Some("EdDSA"),
                                _ => None,
                            };
                            if let Some(alg) = alg {
                                object.insert("alg".to_owned(), alg.into());
                            }
                        }
                    }
                    serde_json::from_value::<Jwk>(key).ok()
                })
                .filter(|key| key.use_ == "sig")
                .collect(),
        })
    }
}

/// Signs tokens with the keys of one authorization server.
///
/// Implement it over a KMS or an HSM to keep private keys out of the process; [`LocalKeys`]
/// (feature `jwt`) keeps them in it.
#[async_trait]
pub trait TokenSigner: Send + Sync {
    /// The key new tokens are signed with: its id and algorithm; `None` when no key may sign.
    fn active_key(&self) -> Option<(String, JwsAlgorithm)>;

    /// Signs `signing_input` (a JWS's `header.payload`, RFC 7515 §5.1) with the key `kid`,
    /// answering the signature as RFC 7518 writes it (ES256: `r || s`, 64 bytes).
    ///
    /// # Errors
    ///
    /// A [`StoreError`] if the key cannot sign (unknown, retired, or the KMS failed).
    async fn sign(&self, kid: &str, signing_input: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// The public keys to publish: every key whose tokens may still be in use.
    fn jwks(&self) -> Jwks;
}

/// Signs `claims` as a compact JWS (RFC 7515 §7.1) with the signer's active key, with the header
/// `typ` given (`at+jwt` for an access token, RFC 9068 §2.1), `alg` and `kid`.
///
/// # Errors
///
/// A [`StoreError`] if no key may sign, or signing fails.
pub async fn sign_compact<C: Serialize + ?Sized>(
    signer: &dyn TokenSigner,
    typ: &str,
    claims: &C,
) -> Result<String, StoreError> {
    let choose = || {
        signer
            .active_key()
            .ok_or_else(|| StoreError::backend("no signing key is active"))
    };
    let (kid, alg) = choose()?;
    match sign_with(signer, &kid, alg, typ, claims).await {
        // A key retired between choosing it and signing with it refuses: choose again, once.
        Err(_) if signer.active_key().is_some_and(|(now, _)| now != kid) => {
            let (kid, alg) = choose()?;
            sign_with(signer, &kid, alg, typ, claims).await
        }
        signed => signed,
    }
}

/// [`sign_compact`] with the key `kid` of `alg`.
async fn sign_with<C: Serialize + ?Sized>(
    signer: &dyn TokenSigner,
    kid: &str,
    alg: JwsAlgorithm,
    typ: &str,
    claims: &C,
) -> Result<String, StoreError> {
    #[derive(Serialize)]
    struct Header<'a> {
        typ: &'a str,
        alg: &'static str,
        kid: &'a str,
    }
    let header = serde_json::to_vec(&Header {
        typ,
        alg: alg.as_str(),
        kid,
    })
    .map_err(StoreError::backend)?;
    let payload = serde_json::to_vec(claims).map_err(StoreError::backend)?;
    let mut jws = URL_SAFE_NO_PAD.encode(header);
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut jws);
    let signature = signer.sign(kid, jws.as_bytes()).await?;
    // RFC 7518 §3.4 and RFC 8032: 64 bytes (an ECDSA signature in DER, as some KMSs answer, is
    // not one, and no resource server would accept the token).
    if matches!(alg, JwsAlgorithm::Es256 | JwsAlgorithm::EdDsa) && signature.len() != 64 {
        return Err(StoreError::backend(format!(
            "a {} signature must be 64 bytes, not {} (a DER-encoded ECDSA signature?)",
            alg.as_str(),
            signature.len()
        )));
    }
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
    Ok(jws)
}

#[cfg(feature = "jwt")]
pub use local::LocalKeys;

#[cfg(feature = "jwt")]
mod local {
    use std::fmt;
    use std::sync::{Arc, RwLock};

    use ring::rand::SystemRandom;
    use ring::signature::{
        EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
        RSA_PKCS1_SHA256,
    };

    use super::*;

    /// A private key, of one algorithm.
    enum Private {
        Es256(EcdsaKeyPair),
        EdDsa(Ed25519KeyPair),
        Rs256(RsaKeyPair),
    }

    /// One key of the set, and where it stands.
    struct Key {
        kid: String,
        /// Shared, so that a signature is made after the set's lock is released (an RSA
        /// signature takes a millisecond).
        private: Arc<Private>,
        /// Whether it may sign (a retired key signs nothing more).
        signs: bool,
    }

    impl Key {
        fn alg(&self) -> JwsAlgorithm {
            match *self.private {
                Private::Es256(_) => JwsAlgorithm::Es256,
                Private::EdDsa(_) => JwsAlgorithm::EdDsa,
                Private::Rs256(_) => JwsAlgorithm::Rs256,
            }
        }

        fn jwk(&self) -> Jwk {
            let kid = &self.kid;
            let jwk = match self.private.as_ref() {
                Private::Es256(pair) => {
                    // An uncompressed point: 0x04, then x and y, 32 bytes each.
                    let point = pair.public_key().as_ref();
                    Jwk::es256(
                        kid,
                        point.get(1..33).unwrap_or_default(),
                        point.get(33..65).unwrap_or_default(),
                    )
                }
                Private::EdDsa(pair) => Jwk::eddsa(kid, pair.public_key().as_ref()),
                Private::Rs256(pair) => {
                    let public: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
                    Jwk::rs256(kid, &public.n, &public.e)
                }
            };
            // ring's keys are always of the right sizes.
            jwk.unwrap_or_else(|| Jwk::signing(kid, "", self.alg()))
        }
    }

    struct State {
        keys: Vec<Key>,
        /// The kid of the key new tokens are signed with.
        active: Option<String>,
    }

    /// Signing keys kept in this process (feature `jwt`), through `ring`.
    ///
    /// ```
    /// use grantor::{JwsAlgorithm, LocalKeys, TokenSigner};
    ///
    /// let keys = LocalKeys::new();
    /// keys.generate("2026-11", JwsAlgorithm::Es256).unwrap();
    /// assert_eq!(keys.active_key(), Some(("2026-11".to_owned(), JwsAlgorithm::Es256)));
    /// // Rotation: a new key signs from now on; the old one stays published.
    /// keys.generate("2026-12", JwsAlgorithm::EdDsa).unwrap();
    /// keys.retire("2026-11");
    /// assert_eq!(keys.jwks().keys.len(), 2);
    /// ```
    pub struct LocalKeys {
        state: RwLock<State>,
        rng: SystemRandom,
    }

    impl fmt::Debug for LocalKeys {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            // Key ids and algorithms only: never key material.
            let kids: Vec<(String, JwsAlgorithm, bool)> = self
                .state
                .read()
                .map(|s| {
                    s.keys
                        .iter()
                        .map(|k| (k.kid.clone(), k.alg(), k.signs))
                        .collect()
                })
                .unwrap_or_default();
            f.debug_struct("LocalKeys")
                .field("keys (kid, alg, signs)", &kids)
                .finish_non_exhaustive()
        }
    }

    impl Default for LocalKeys {
        fn default() -> Self {
            Self::new()
        }
    }

    /// Why a key was not added.
    #[derive(Debug, thiserror::Error, PartialEq, Eq)]
    #[non_exhaustive]
    pub enum KeyError {
        /// Another key of the set has this id.
        #[error("a key with id {0:?} is already in the set")]
        DuplicateKid(String),
        /// The bytes are not a PKCS#8 private key of the algorithm (or RSA shorter than 2048
        /// bits).
        #[error("not a PKCS#8 private key for {0}: {1}")]
        Rejected(&'static str, String),
        /// The system's random number generator failed.
        #[error("the system's random number generator failed")]
        Random,
    }

    impl LocalKeys {
        /// An empty set: nothing signs until a key is added.
        pub fn new() -> Self {
            Self {
                state: RwLock::new(State {
                    keys: Vec::new(),
                    active: None,
                }),
                rng: SystemRandom::new(),
            }
        }

        /// Makes a new key of `alg` (ES256 or EdDSA: `ring` makes no RSA keys; add an RSA key
        /// with [`add_pkcs8`](Self::add_pkcs8)) under `kid`, and makes it the active one.
        /// Answers the key's PKCS#8 document, to keep in your secret store.
        ///
        /// # Errors
        ///
        /// [`KeyError`] for a duplicate id, RS256, or a failing random number generator.
        pub fn generate(&self, kid: &str, alg: JwsAlgorithm) -> Result<Vec<u8>, KeyError> {
            let pkcs8 = match alg {
                JwsAlgorithm::Es256 => {
                    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.rng)
                        .map_err(|_| KeyError::Random)?
                }
                JwsAlgorithm::EdDsa => {
                    Ed25519KeyPair::generate_pkcs8(&self.rng).map_err(|_| KeyError::Random)?
                }
                JwsAlgorithm::Rs256 => {
                    return Err(KeyError::Rejected(
                        "RS256",
                        "generate an RSA key elsewhere and add it with add_pkcs8".to_owned(),
                    ))
                }
            };
            self.add_pkcs8(kid, alg, pkcs8.as_ref())?;
            Ok(pkcs8.as_ref().to_vec())
        }

        /// Adds the PKCS#8 private key `pkcs8` of `alg` under `kid`, and makes it the active
        /// one.
        ///
        /// # Errors
        ///
        /// [`KeyError`] for a duplicate id, or bytes that are no such key.
        pub fn add_pkcs8(
            &self,
            kid: &str,
            alg: JwsAlgorithm,
            pkcs8: &[u8],
        ) -> Result<(), KeyError> {
            self.insert(kid, alg, pkcs8, true)
        }

        /// Adds the PKCS#8 private key `pkcs8` of `alg` under `kid`, published in the JWK Set
        /// but not signing until [`activate`](Self::activate)d: the first step of a rotation
        /// that no resource server notices. Publish the new key, wait longer than resource
        /// servers keep the JWK Set (its `Cache-Control`, five minutes; a
        /// [`JwksRefresh`](crate::JwksRefresh)'s `max_age`), then activate it.
        ///
        /// ```
        /// use grantor::{JwsAlgorithm, LocalKeys, TokenSigner};
        ///
        /// let keys = LocalKeys::new();
        /// keys.generate("2026-11", JwsAlgorithm::Es256).unwrap();
        /// let next = LocalKeys::new().generate("unused", JwsAlgorithm::Es256).unwrap();
        /// keys.stage_pkcs8("2026-12", JwsAlgorithm::Es256, &next).unwrap();
        /// assert_eq!(keys.jwks().keys.len(), 2); // published ...
        /// assert_eq!(keys.active_key().unwrap().0, "2026-11"); // ... but not signing yet
        /// assert!(keys.activate("2026-12"));
        /// keys.retire("2026-11");
        /// ```
        ///
        /// A key staged into a set with no active key (the first one, or after every other was
        /// retired) is made active at once: there is nothing else to sign with.
        ///
        /// # Errors
        ///
        /// As [`add_pkcs8`](Self::add_pkcs8).
        pub fn stage_pkcs8(
            &self,
            kid: &str,
            alg: JwsAlgorithm,
            pkcs8: &[u8],
        ) -> Result<(), KeyError> {
            self.insert(kid, alg, pkcs8, false)
        }

        fn insert(
            &self,
            kid: &str,
            alg: JwsAlgorithm,
            pkcs8: &[u8],
            activate: bool,
        ) -> Result<(), KeyError> {
            let rejected =
                |e: ring::error::KeyRejected| KeyError::Rejected(alg.as_str(), e.to_string());
            let private = match alg {
                JwsAlgorithm::Es256 => Private::Es256(
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &self.rng)
                        .map_err(rejected)?,
                ),
                JwsAlgorithm::EdDsa => {
                    // Version 1 documents too (OpenSSL's), which hold no public key to check.
                    Private::EdDsa(
                        Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(rejected)?,
                    )
                }
                JwsAlgorithm::Rs256 => {
                    Private::Rs256(RsaKeyPair::from_pkcs8(pkcs8).map_err(rejected)?)
                }
            };
            let mut state = self.write();
            if state.keys.iter().any(|k| k.kid == kid) {
                return Err(KeyError::DuplicateKid(kid.to_owned()));
            }
            state.keys.push(Key {
                kid: kid.to_owned(),
                private: Arc::new(private),
                signs: true,
            });
            if activate || state.active.is_none() {
                state.active = Some(kid.to_owned());
            }
            Ok(())
        }

        /// Makes `kid` the key new tokens are signed with (if it is in the set and not
        /// retired); answers whether it now is.
        pub fn activate(&self, kid: &str) -> bool {
            let mut state = self.write();
            let usable = state.keys.iter().any(|k| k.kid == kid && k.signs);
            if usable {
                state.active = Some(kid.to_owned());
            }
            usable
        }

        /// Stops `kid` signing: it stays published (tokens it signed still check) until
        /// [`unpublish`](Self::unpublish). If it was the active key, the most recently added
        /// key that still signs becomes active, or none. Answers whether the key was in the set.
        pub fn retire(&self, kid: &str) -> bool {
            let mut state = self.write();
            let Some(key) = state.keys.iter_mut().find(|k| k.kid == kid) else {
                return false;
            };
            key.signs = false;
            if state.active.as_deref() == Some(kid) {
                state.active = state
                    .keys
                    .iter()
                    .rev()
                    .find(|k| k.signs)
                    .map(|k| k.kid.clone());
            }
            true
        }

        /// Removes a retired key from the set and from the JWK Set: tokens it signed no longer
        /// check. Answers whether it was removed (an active or unknown key is not).
        pub fn unpublish(&self, kid: &str) -> bool {
            let mut state = self.write();
            let before = state.keys.len();
            state.keys.retain(|k| k.kid != kid || k.signs);
            state.keys.len() < before
        }

        /// The state, for writing; a poisoned lock (a panic while held, which no method here
        /// can cause) is taken over as it is.
        fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
            self.state
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }

        fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
            self.state
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }

    #[async_trait]
    impl TokenSigner for LocalKeys {
        fn active_key(&self) -> Option<(String, JwsAlgorithm)> {
            let state = self.read();
            let kid = state.active.as_deref()?;
            state
                .keys
                .iter()
                .find(|k| k.kid == kid)
                .map(|k| (k.kid.clone(), k.alg()))
        }

        async fn sign(&self, kid: &str, signing_input: &[u8]) -> Result<Vec<u8>, StoreError> {
            // The key is taken out of the set, and the lock released, before it signs.
            let private = self
                .read()
                .keys
                .iter()
                .find(|k| k.kid == kid && k.signs)
                .map(|k| Arc::clone(&k.private))
                .ok_or_else(|| StoreError::backend(format!("no key {kid:?} may sign")))?;
            let failed = |_| StoreError::backend("signing failed");
            match private.as_ref() {
                Private::Es256(pair) => Ok(pair
                    .sign(&self.rng, signing_input)
                    .map_err(failed)?
                    .as_ref()
                    .to_vec()),
                Private::EdDsa(pair) => Ok(pair.sign(signing_input).as_ref().to_vec()),
                Private::Rs256(pair) => {
                    let mut signature = vec![0; pair.public().modulus_len()];
                    pair.sign(&RSA_PKCS1_SHA256, &self.rng, signing_input, &mut signature)
                        .map_err(failed)?;
                    Ok(signature)
                }
            }
        }

        fn jwks(&self) -> Jwks {
            Jwks {
                keys: self.read().keys.iter().map(Key::jwk).collect(),
            }
        }
    }
}

#[cfg(feature = "jwt")]
pub use local::KeyError;
