//! Checking a JWT access token without the authorization server (RFC 9068 §4), for a
//! [`BearerValidator::jwt`](crate::BearerValidator::jwt) (feature `jwt`).
//!
//! What is checked, in RFC 9068 §4's order: the header's `typ` is `at+jwt` (or
//! `application/at+jwt`) and names no `crit` extension; the key is the JWK Set's key of the
//! header's `kid`, and the algorithm is that key's own (never `none`, never the header's choice
//! alone); the signature; `iss` is the issuer; `aud` names the audience; `exp` (required) has not
//! passed and `nbf` (if present) has, each with a small leeway for clocks that differ. The scope
//! is then checked by the validator as for any access token.

use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{self, UnparsedPublicKey};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::jose::{Jwk, Jwks, JwsAlgorithm};
use crate::scope::Scope;
use crate::store::{TokenKind, TokenRecord};
use crate::types::{ClientId, UserId};

/// The largest JWT read: far above any access token grantor issues (a few hundred bytes).
const MAX_JWT_BYTES: usize = 8 * 1024;

/// What a JWT access token is checked against. Clones share the key set (so that `set_jwks`
/// reaches every clone of a validator).
#[derive(Clone)]
pub(crate) struct JwtCheck {
    pub(crate) keys: Arc<RwLock<Jwks>>,
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) leeway: time::Duration,
}

#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: Option<String>,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// `aud`: one string, or several (RFC 7519 §4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn names(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|a| a == audience),
        }
    }

    fn into_vec(self) -> Vec<String> {
        match self {
            Audience::One(one) => vec![one],
            Audience::Many(many) => many,
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    sub: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
}

impl JwtCheck {
    /// The record `token` stands for, if it is a JWT access token this check accepts at `now`
    /// (its expiry judged with the leeway); `None` for anything else.
    pub(crate) fn verify(&self, token: &str, now: OffsetDateTime) -> Option<TokenRecord> {
        if token.len() > MAX_JWT_BYTES {
            return None;
        }
        let mut parts = token.split('.');
        let (header_b64, claims_b64, signature_b64) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Header =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).ok()?).ok()?;
        let typ = header.typ?;
        if !(typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt"))
            || header.crit.is_some()
        {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).ok()?;
        let signing_input = token.get(..header_b64.len() + 1 + claims_b64.len())?;
        {
            let keys = self
                .keys
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let kid = header.kid?;
            let key = keys.keys.iter().find(|k| k.kid == kid)?;
            // The key's algorithm decides; a header naming another is refused.
            if header.alg.as_deref() != Some(key.alg.as_str()) {
                return None;
            }
            verify_signature(key, signing_input.as_bytes(), &signature)?;
        }
        let claims: Claims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims_b64).ok()?).ok()?;
        if claims.iss.as_deref() != Some(self.issuer.as_str())
            || !claims.aud.as_ref()?.names(&self.audience)
        {
            return None;
        }
        let exp = OffsetDateTime::from_unix_timestamp(claims.exp?).ok()?;
        if now >= exp.saturating_add(self.leeway) {
            return None;
        }
        if let Some(nbf) = claims.nbf {
            if now.saturating_add(self.leeway) < OffsetDateTime::from_unix_timestamp(nbf).ok()? {
                return None;
            }
        }
        let client_id = ClientId::new(claims.client_id?);
        // RFC 9068 §2.2: with no resource owner, `sub` is the client's id.
        let user_id = claims
            .sub
            .filter(|sub| sub != client_id.as_str())
            .map(UserId::new);
        let scope = match claims.scope {
            Some(scope) => Scope::parse(&scope).ok()?,
            None => Scope::default(),
        };
        let issued_at = claims
            .iat
            .and_then(|iat| OffsetDateTime::from_unix_timestamp(iat).ok())
            .unwrap_or(now);
        Some(TokenRecord {
            kind: TokenKind::Access,
            client_id,
            user_id,
            username: None,
            scope,
            issued_at,
            expires_at: exp,
            family_id: None,
            audience: claims.aud.map(Audience::into_vec).unwrap_or_default(),
        })
    }
}

/// Whether `signature` over `input` is `key`'s.
fn verify_signature(key: &Jwk, input: &[u8], signature: &[u8]) -> Option<()> {
    let b64 = |member: &Option<String>| URL_SAFE_NO_PAD.decode(member.as_deref()?).ok();
    match key.alg {
        JwsAlgorithm::Es256 => {
            if key.kty != "EC" || key.crv.as_deref() != Some("P-256") {
                return None;
            }
            let (x, y) = (b64(&key.x)?, b64(&key.y)?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(input, signature)
                .ok()
        }
        JwsAlgorithm::EdDsa => {
            if key.kty != "OKP" || key.crv.as_deref() != Some("Ed25519") {
                return None;
            }
            UnparsedPublicKey::new(&signature::ED25519, b64(&key.x)?)
                .verify(input, signature)
                .ok()
        }
        JwsAlgorithm::Rs256 => {
            if key.kty != "RSA" {
                return None;
            }
            signature::RsaPublicKeyComponents {
                n: b64(&key.n)?,
                e: b64(&key.e)?,
            }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, input, signature)
            .ok()
        }
    }
}
