//! Signing keys and the JWK Set (feature `jwt`): tokens grantor signs, checked by an independent
//! JOSE implementation (the `jsonwebtoken` crate) against the keys grantor publishes.
#![cfg(feature = "jwt")]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use grantor::{sign_compact, JwsAlgorithm, KeyError, LocalKeys, TokenSigner};
use serde::{Deserialize, Serialize};

/// A 2048-bit RSA private key (PKCS#8, DER, base64), made for these tests only: `ring` makes no
/// RSA keys.
const TEST_RSA_PKCS8: &str = include_str!("keys/rsa2048-test-only.pkcs8.b64");

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    scope: String,
}

fn claims() -> Claims {
    Claims {
        iss: "https://auth.example.com".to_owned(),
        sub: "user-1".to_owned(),
        aud: "https://api.example.com".to_owned(),
        // Far enough ahead for any clock this test runs on.
        exp: 4_102_444_800,
        scope: "read".to_owned(),
    }
}

/// Checks `jwt` as a resource server would with `jsonwebtoken`: the key named by its `kid`,
/// from the JWK Set `keys` publishes.
fn verify(keys: &LocalKeys, jwt: &str, alg: jsonwebtoken::Algorithm) -> Result<Claims, String> {
    let header = jsonwebtoken::decode_header(jwt).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let published = serde_json::to_value(keys.jwks()).map_err(|e| e.to_string())?;
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(published).map_err(|e| e.to_string())?;
    let jwk = set.find(&kid).ok_or("the kid is not published")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_audience(&["https://api.example.com"]);
    jsonwebtoken::decode::<Claims>(jwt, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

fn rsa_keys(kid: &str) -> LocalKeys {
    let keys = LocalKeys::new();
    let der = STANDARD.decode(TEST_RSA_PKCS8).expect("the test key");
    keys.add_pkcs8(kid, JwsAlgorithm::Rs256, &der)
        .expect("an RSA key");
    keys
}

#[tokio::test]
async fn each_algorithm_signs_what_an_independent_library_verifies() {
    for (alg, theirs) in [
        (JwsAlgorithm::Es256, jsonwebtoken::Algorithm::ES256),
        (JwsAlgorithm::EdDsa, jsonwebtoken::Algorithm::EdDSA),
        (JwsAlgorithm::Rs256, jsonwebtoken::Algorithm::RS256),
    ] {
        let keys = if alg == JwsAlgorithm::Rs256 {
            rsa_keys("k1")
        } else {
            let keys = LocalKeys::new();
            keys.generate("k1", alg).expect("a key");
            keys
        };
        let jwt = sign_compact(&keys, "at+jwt", &claims())
            .await
            .expect("signed");
        // RFC 9068 §2.1: typ at+jwt; the alg and kid of the key.
        let header = jsonwebtoken::decode_header(&jwt).expect("a header");
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(header.alg, theirs);
        assert_eq!(verify(&keys, &jwt, theirs), Ok(claims()), "{alg:?}");

        // One byte of the payload changed: refused.
        let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
        let mut payload = URL_SAFE_NO_PAD.decode(&parts[1]).expect("payload");
        payload[10] ^= 1;
        parts[1] = URL_SAFE_NO_PAD.encode(payload);
        assert!(verify(&keys, &parts.join("."), theirs).is_err(), "{alg:?}");
    }
}

#[test]
fn the_jwk_set_holds_public_members_only() {
    let keys = rsa_keys("rsa");
    keys.generate("ec", JwsAlgorithm::Es256).expect("a key");
    keys.generate("ed", JwsAlgorithm::EdDsa).expect("a key");
    let published = serde_json::to_value(keys.jwks()).expect("JSON");
    let set = published["keys"].as_array().expect("keys");
    assert_eq!(set.len(), 3);
    for key in set {
        let members: Vec<&str> = key
            .as_object()
            .expect("a JWK")
            .keys()
            .map(String::as_str)
            .collect();
        // No private member (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2): d, p, q, dp, dq, qi.
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(!members.contains(&private), "{key}");
        }
        assert_eq!(key["use"], "sig");
    }
    assert_eq!(set[0]["kty"], "RSA");
    assert_eq!(set[0]["alg"], "RS256");
    assert_eq!(set[1]["kty"], "EC");
    assert_eq!(set[1]["crv"], "P-256");
    assert_eq!(set[2]["kty"], "OKP");
    assert_eq!(set[2]["crv"], "Ed25519");
    // Debug shows ids, algorithms and whether each signs: nothing of the key material.
    assert_eq!(
        format!("{keys:?}"),
        "LocalKeys { keys (kid, alg, signs): [(\"rsa\", Rs256, true), (\"ec\", Es256, true), \
         (\"ed\", EdDsa, true)], .. }"
    );
}

/// Rotation: a new key signs at once; the retired one signs nothing but stays published until
/// it is unpublished, and then its tokens no longer check.
#[tokio::test]
async fn keys_rotate_without_breaking_tokens_in_flight() {
    let keys = LocalKeys::new();
    keys.generate("old", JwsAlgorithm::Es256).expect("a key");
    let before = sign_compact(&keys, "at+jwt", &claims())
        .await
        .expect("signed");

    keys.generate("new", JwsAlgorithm::Es256).expect("a key");
    assert_eq!(
        keys.active_key(),
        Some(("new".to_owned(), JwsAlgorithm::Es256))
    );
    assert!(keys.retire("old"));
    assert!(
        keys.sign("old", b"x.y").await.is_err(),
        "a retired key signs nothing"
    );
    let after = sign_compact(&keys, "at+jwt", &claims())
        .await
        .expect("signed");
    assert_eq!(
        jsonwebtoken::decode_header(&after)
            .expect("header")
            .kid
            .as_deref(),
        Some("new")
    );
    // Both check while the old key is published.
    assert!(verify(&keys, &before, jsonwebtoken::Algorithm::ES256).is_ok());
    assert!(verify(&keys, &after, jsonwebtoken::Algorithm::ES256).is_ok());

    assert!(!keys.unpublish("new"), "the active key is not unpublished");
    assert!(keys.unpublish("old"));
    assert_eq!(keys.jwks().keys.len(), 1);
    assert!(verify(&keys, &before, jsonwebtoken::Algorithm::ES256).is_err());
    assert!(verify(&keys, &after, jsonwebtoken::Algorithm::ES256).is_ok());

    // Retiring the last key leaves none active: nothing is signed rather than by a retired key.
    assert!(keys.retire("new"));
    assert_eq!(keys.active_key(), None);
    assert!(sign_compact(&keys, "at+jwt", &claims()).await.is_err());
    assert!(
        !keys.activate("new"),
        "a retired key is not made active again"
    );
}

#[test]
fn keys_that_cannot_sign_are_refused_when_added() {
    let keys = LocalKeys::new();
    keys.generate("k", JwsAlgorithm::EdDsa).expect("a key");
    assert_eq!(
        keys.generate("k", JwsAlgorithm::Es256).err(),
        Some(KeyError::DuplicateKid("k".to_owned()))
    );
    assert!(matches!(
        keys.add_pkcs8("x", JwsAlgorithm::Es256, b"not a key"),
        Err(KeyError::Rejected("ES256", _))
    ));
    // An RSA key offered as an EC one.
    let der = STANDARD.decode(TEST_RSA_PKCS8).expect("the test key");
    assert!(keys.add_pkcs8("y", JwsAlgorithm::Es256, &der).is_err());
    assert!(matches!(
        keys.generate("z", JwsAlgorithm::Rs256),
        Err(KeyError::Rejected("RS256", _))
    ));
    assert_eq!(keys.jwks().keys.len(), 1);
}

/// A signer of our own that answers a signature in the wrong form (an ECDSA signature in DER,
/// as some KMSs do): refused rather than put in a token no resource server accepts; and one whose
/// key is retired between choosing it and signing: the next key signs.
#[tokio::test]
async fn what_a_signer_answers_is_checked() {
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Der;
    #[async_trait::async_trait]
    impl TokenSigner for Der {
        fn active_key(&self) -> Option<(String, JwsAlgorithm)> {
            Some(("kms".to_owned(), JwsAlgorithm::Es256))
        }
        async fn sign(&self, _: &str, _: &[u8]) -> Result<Vec<u8>, grantor::StoreError> {
            Ok(vec![0x30; 71])
        }
        fn jwks(&self) -> grantor::Jwks {
            grantor::Jwks::default()
        }
    }
    assert!(sign_compact(&Der, "at+jwt", &claims()).await.is_err());

    /// Answers "old" as active once, then retires it before signing.
    struct Rotating {
        keys: LocalKeys,
        asked: AtomicBool,
    }
    #[async_trait::async_trait]
    impl TokenSigner for Rotating {
        fn active_key(&self) -> Option<(String, JwsAlgorithm)> {
            if !self.asked.swap(true, Ordering::SeqCst) {
                let old = Some(("old".to_owned(), JwsAlgorithm::Es256));
                self.keys.retire("old");
                return old;
            }
            self.keys.active_key()
        }
        async fn sign(&self, kid: &str, input: &[u8]) -> Result<Vec<u8>, grantor::StoreError> {
            self.keys.sign(kid, input).await
        }
        fn jwks(&self) -> grantor::Jwks {
            self.keys.jwks()
        }
    }
    let keys = LocalKeys::new();
    keys.generate("new", JwsAlgorithm::Es256).expect("a key");
    keys.generate("old", JwsAlgorithm::Es256).expect("a key");
    let rotating = Rotating {
        keys,
        asked: AtomicBool::new(false),
    };
    let jwt = sign_compact(&rotating, "at+jwt", &claims())
        .await
        .expect("signed with the next key");
    assert_eq!(
        jsonwebtoken::decode_header(&jwt)
            .expect("header")
            .kid
            .as_deref(),
        Some("new")
    );
}

/// A staged key is published at once and signs only once activated: a rotation resource
/// servers never notice. A first key signs even when staged (there is nothing else to sign
/// with).
#[tokio::test]
async fn a_staged_key_is_published_before_it_signs() {
    let keys = LocalKeys::new();
    keys.generate("old", JwsAlgorithm::Es256).expect("a key");
    let next = LocalKeys::new()
        .generate("unused", JwsAlgorithm::EdDsa)
        .expect("a key");
    keys.stage_pkcs8("new", JwsAlgorithm::EdDsa, &next)
        .expect("staged");
    let kids: Vec<String> = keys.jwks().keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, ["old", "new"]);
    let signed = sign_compact(&keys, "at+jwt", &claims())
        .await
        .expect("signed");
    let kid = |jwt: &str| jsonwebtoken::decode_header(jwt).expect("header").kid;
    assert_eq!(
        kid(&signed).as_deref(),
        Some("old"),
        "the staged key does not sign yet"
    );
    assert!(keys.activate("new"));
    let signed = sign_compact(&keys, "at+jwt", &claims())
        .await
        .expect("signed");
    assert_eq!(kid(&signed).as_deref(), Some("new"));
    assert!(verify(&keys, &signed, jsonwebtoken::Algorithm::EdDSA).is_ok());
    assert_eq!(
        keys.stage_pkcs8("new", JwsAlgorithm::EdDsa, &next).err(),
        Some(KeyError::DuplicateKid("new".to_owned()))
    );

    let first = LocalKeys::new();
    first
        .stage_pkcs8("only", JwsAlgorithm::EdDsa, &next)
        .expect("staged");
    assert_eq!(first.active_key().map(|k| k.0).as_deref(), Some("only"));
}

/// RFC 7517 appendix A.1's JWK Set: the EC key is for encryption (`"use": "enc"`, no `alg`),
/// so only the RSA signing key is kept; keys of algorithms grantor does not check (`RS384`),
/// or without a `kid`, are left out rather than spoiling the set (§5).
#[test]
fn a_jwk_set_keeps_the_signing_keys_it_understands() {
    let rfc_7517_a1 = r#"{"keys":
       [
         {"kty":"EC",
          "crv":"P-256",
          "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
          "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
          "use":"enc",
          "kid":"1"},

         {"kty":"RSA",
          "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
          "e":"AQAB",
          "alg":"RS256",
          "kid":"2011-04-29"}
       ]
     }"#;
    let set: grantor::Jwks = serde_json::from_str(rfc_7517_a1).expect("a JWK Set");
    assert_eq!(set.keys.len(), 1);
    let rsa = &set.keys[0];
    assert_eq!(
        (rsa.kid.as_str(), rsa.alg),
        ("2011-04-29", JwsAlgorithm::Rs256)
    );
    assert_eq!(rsa.use_, "sig", "no use member: a signing key");
    assert_eq!(rsa.e.as_deref(), Some("AQAB"));

    let mixed = r#"{"keys":[
        {"kty":"RSA","kid":"a","alg":"RS384","n":"AQAB","e":"AQAB"},
        {"kty":"OKP","alg":"EdDSA","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty":"RSA","kid":"no-alg","n":"AQAB","e":"AQAB"},
        {"kty":"EC","kid":"p256-no-alg","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"},
        {"kty":"oct","kid":"s","k":"c2VjcmV0"},
        {"kty":"OKP","kid":"ed","use":"sig","alg":"EdDSA","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    ]}"#;
    let set: grantor::Jwks = serde_json::from_str(mixed).expect("a JWK Set");
    let kids: Vec<&str> = set.keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["p256-no-alg", "ed"]);
    assert_eq!(set.keys[0].alg, JwsAlgorithm::Es256);
    // What is not a JWK Set at all is still an error.
    assert!(serde_json::from_str::<grantor::Jwks>(r#"{"keys":{}}"#).is_err());
    assert!(serde_json::from_str::<grantor::Jwks>("[]").is_err());
}

/// RFC 9068 §3's example (figure 2), header and claims as the RFC writes them (`typ` in its
/// `at+JWT` spelling), signed with the tests' RSA key under the RFC's `kid`: a resource server
/// checking JWTs alone takes it, and reads the grant the RFC means.
#[tokio::test]
async fn rfc_9068s_example_token_is_taken_by_a_resource_server() {
    use grantor::{BearerValidator, ManualClock, ResourceRequest, Scope};
    use std::sync::Arc;

    let header = r#"{"typ":"at+JWT","alg":"RS256","kid":"RjEwOwOA"}"#;
    let claims = r#"{
     "iss": "https://authorization-server.example.com/",
     "sub": "5ba552d67",
     "aud":   "https://rs.example.com/",
     "exp": 1639528912,
     "iat": 1618354090,
     "jti" : "dbe39bf3a3ba4238a513f51d6e1691c4",
     "client_id": "s6BhdRkqt3",
     "scope": "openid profile reademail"
   }"#;
    let keys = LocalKeys::new();
    let der = STANDARD.decode(TEST_RSA_PKCS8).expect("the test key");
    keys.add_pkcs8("RjEwOwOA", JwsAlgorithm::Rs256, &der)
        .expect("the RSA key");
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = keys
        .sign("RjEwOwOA", input.as_bytes())
        .await
        .expect("signed");
    let jwt = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));

    // Between its iat and its exp.
    let clock = Arc::new(ManualClock::new(
        time::OffsetDateTime::from_unix_timestamp(1_630_000_000).expect("an instant"),
    ));
    let validator = BearerValidator::jwt(
        keys.jwks(),
        "https://authorization-server.example.com/",
        "https://rs.example.com/",
    )
    .with_clock(clock.clone());
    let request = ResourceRequest::new().with_authorization(format!("Bearer {jwt}"));
    let needed: Scope = "reademail".parse().expect("scope");
    let grant = validator.validate(&request, &needed).await.expect("taken");
    assert_eq!(grant.client_id.as_str(), "s6BhdRkqt3");
    assert_eq!(grant.user_id.expect("a user").as_str(), "5ba552d67");
    assert_eq!(grant.scope.as_str(), "openid profile reademail");
    assert_eq!(grant.audience, ["https://rs.example.com/"]);
    assert_eq!(grant.expires_at.unix_timestamp(), 1_639_528_912);
    // After its exp (and the leeway), refused.
    clock.set(time::OffsetDateTime::from_unix_timestamp(1_639_528_912 + 61).expect("an instant"));
    assert!(validator.validate(&request, &needed).await.is_err());
}

/// A public key as a KMS answers it (a DER SubjectPublicKeyInfo, here made by OpenSSL for the
/// tests' keys) gives the very JWK `LocalKeys` publishes for the private key; anything else
/// gives none, and no input panics.
#[test]
fn a_jwk_is_made_from_a_subject_public_key_info() {
    use grantor::Jwk;

    let key = |name: &str| {
        let path = format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"));
        STANDARD
            .decode(std::fs::read_to_string(&path).expect(&path).trim())
            .expect("base64")
    };
    let cases = [
        ("rsa2048", JwsAlgorithm::Rs256),
        ("p256", JwsAlgorithm::Es256),
        ("ed25519", JwsAlgorithm::EdDsa),
    ];
    for (name, alg) in cases {
        let keys = LocalKeys::new();
        // OpenSSL's Ed25519 document is PKCS#8 version 1 (no public key): taken too.
        keys.add_pkcs8("k", alg, &key(&format!("{name}-test-only.pkcs8.b64")))
            .expect("the private key");
        let spki = key(&format!("{name}-test-only.spki.b64"));
        let jwk = Jwk::from_spki_der("k", alg, &spki).expect("a JWK");
        assert_eq!(jwk, keys.jwks().keys[0], "{name}");
        // Another algorithm's key, a truncated one, one with trailing bytes: none.
        for other in cases.iter().map(|c| c.1).filter(|a| *a != alg) {
            assert!(Jwk::from_spki_der("k", other, &spki).is_none(), "{name}");
        }
        for cut in 0..spki.len() {
            assert!(
                Jwk::from_spki_der("k", alg, &spki[..cut]).is_none(),
                "{name} {cut}"
            );
        }
        let mut longer = spki.clone();
        longer.push(0);
        assert!(Jwk::from_spki_der("k", alg, &longer).is_none());
        // Any byte changed: no panic.
        for i in 0..spki.len() {
            let mut changed = spki.clone();
            changed[i] ^= 0xa5;
            let _ = Jwk::from_spki_der("k", alg, &changed);
        }
    }
    assert!(Jwk::from_spki_der("k", JwsAlgorithm::Es256, &[]).is_none());
    assert!(Jwk::from_spki_der("k", JwsAlgorithm::Rs256, &[0x30, 0x84, 0, 0, 0, 1]).is_none());

    // Coordinates shorter than 32 bytes are padded; longer ones refused.
    let jwk = Jwk::es256("k", &[1], &[0; 32]).expect("padded");
    let x = URL_SAFE_NO_PAD
        .decode(jwk.x.expect("x"))
        .expect("base64url");
    assert_eq!((x.len(), x[31]), (32, 1));
    assert!(Jwk::es256("k", &[0; 33], &[0; 32]).is_none());
    // An RSA modulus with a leading zero byte (as DER writes a positive integer) is trimmed;
    // a short one refused.
    let mut n = vec![0u8];
    n.extend([0xc1; 256]);
    let jwk = Jwk::rs256("k", &n, &[1, 0, 1]).expect("a key");
    assert_eq!(
        URL_SAFE_NO_PAD.decode(jwk.n.expect("n")).expect("n").len(),
        256
    );
    assert_eq!(jwk.e.as_deref(), Some("AQAB"));
    assert!(Jwk::rs256("k", &[0xc1; 128], &[1, 0, 1]).is_none());
    assert!(Jwk::eddsa("k", &[0; 31]).is_none());
}

/// RFC 8037 appendix A.3: the thumbprint of appendix A.1's Ed25519 key.
#[test]
fn the_rfc_8037_thumbprint_example() {
    let set: grantor::Jwks = serde_json::from_str(
        r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#,
    )
    .expect("a JWK Set");
    assert_eq!(
        set.keys[0].thumbprint().as_deref(),
        Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
    );
    // A member with a character no such key has: no thumbprint.
    let mut odd = set.keys[0].clone();
    odd.crv = Some("Ed25519\"".to_owned());
    assert_eq!(odd.thumbprint(), None);
}
