use super::*;

#[test]
fn token_hash_is_sha256_of_the_token() {
    // SHA-256("abc"), FIPS 180-2 appendix B.1
    let abc = TokenHash::of_access_token(&AccessToken::new("abc"));
    assert_eq!(
        abc.to_hex(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(format!("{abc:?}"), "TokenHash(ba7816bf…)");
    assert_eq!(TokenHash::from_hex("zz"), None);
    assert_eq!(TokenHash::from_hex(&"g".repeat(64)), None);
}

/// What a store writes as hex reads back as the same hash, upper-case digits too; anything
/// but 64 hex digits is refused.
#[test]
fn a_hash_reads_back_from_its_hex() {
    for token in ["abc", "", "another token"] {
        let hash = TokenHash::of_access_token(&AccessToken::new(token));
        assert_eq!(TokenHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(
            TokenHash::from_hex(&hash.to_hex().to_uppercase()),
            Some(hash)
        );
    }
    let every_byte: Vec<u8> = (0..32).map(|i| i * 8 + 7).collect();
    let bytes: [u8; 32] = every_byte.try_into().expect("32 bytes");
    let hash = TokenHash::from_bytes(bytes);
    assert_eq!(
        TokenHash::from_hex(&hash.to_hex()).map(|h| *h.as_bytes()),
        Some(bytes)
    );
    let hex = hash.to_hex();
    assert_eq!(TokenHash::from_hex(&hex[..62]), None);
    assert_eq!(TokenHash::from_hex(&format!("{hex}00")), None);
}

#[test]
fn each_kind_hashes_its_own_type_with_sha256() {
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(
        TokenHash::of_refresh_token(&RefreshToken::new("abc")).to_hex(),
        abc
    );
    let code = AuthorizationCodeHash::of(&AuthorizationCode::new("abc"));
    assert_eq!(code.to_hex(), abc);
    assert_eq!(AuthorizationCodeHash::of_presented("abc"), code);
    let id = RequestIdHash::of(&AuthorizationRequestId::new("abc"));
    assert_eq!(id.to_hex(), abc);
    let device = DeviceCodeHash::of(&DeviceCode::new("abc"));
    assert_eq!(device.to_hex(), abc);
    let mfa = MfaTokenHash::of(&MfaToken::new("abc"));
    assert_eq!(mfa.to_hex(), abc);
    // A user code is hashed in its normalised form.
    let user = UserCodeHash::of(&UserCode::new(" wdjb-mjht "));
    assert_eq!(
        user.as_bytes(),
        &<[u8; 32]>::from(Sha256::digest(b"WDJBMJHT"))
    );
    assert_eq!(user, UserCodeHash::of(&UserCode::new("WDJBMJHT")));

    assert_eq!(format!("{code:?}"), "AuthorizationCodeHash(ba7816bf…)");
    assert_eq!(format!("{id:?}"), "RequestIdHash(ba7816bf…)");
    assert_eq!(format!("{device:?}"), "DeviceCodeHash(ba7816bf…)");
    assert_eq!(format!("{mfa:?}"), "MfaTokenHash(ba7816bf…)");
    assert!(format!("{user:?}").starts_with("UserCodeHash("));
}

#[test]
fn hashes_serialize_as_their_bytes() {
    let hash = TokenHash::of_access_token(&AccessToken::new("abc"));
    let json = serde_json::to_string(&hash).unwrap_or_default();
    let bytes = serde_json::to_string(hash.as_bytes()).unwrap_or_default();
    assert_eq!(json, bytes);
    assert_eq!(serde_json::from_str::<TokenHash>(&json).ok(), Some(hash));
    let code = AuthorizationCodeHash::from_bytes(*hash.as_bytes());
    assert_eq!(serde_json::to_string(&code).unwrap_or_default(), json);
    assert_eq!(
        serde_json::from_str::<AuthorizationCodeHash>(&json).ok(),
        Some(code)
    );
    assert!(serde_json::from_str::<TokenHash>("[1, 2]").is_err());
}

#[test]
fn hashes_are_send_sync_and_copy_whatever_the_kind() {
    fn assert_traits<T: Send + Sync + Copy>() {}
    assert_traits::<TokenHash>();
    assert_traits::<Hashed<std::rc::Rc<()>>>();
}

#[test]
fn secret_hashes_are_salted_and_verify() {
    let a = SecretHash::new(&ClientSecret::new("x"));
    let b = SecretHash::new(&ClientSecret::new("x"));
    assert_ne!(a.as_str(), b.as_str());
    assert!(a.verify(&ClientSecret::new("x")));
    assert!(!a.verify(&ClientSecret::new("y")));
    assert!(!a.as_str().contains('x') || !a.as_str().ends_with("$x"));
    assert_eq!(SecretHash::parse(a.as_str()).as_ref(), Some(&a));
    assert_eq!(format!("{a:?}"), "SecretHash([redacted])");
    for bad in [
        "",
        "sha256",
        "sha256$$",
        "md5$AAAA$AAAA",
        "sha256$AA$AA$AA",
        "sha256$!$x",
    ] {
        assert!(SecretHash::parse(bad).is_none(), "{bad}");
    }
    // Well-formed salt and digest do not save another algorithm's name, or a fourth part.
    let other_alg = a.as_str().replacen("sha256", "md5", 1);
    assert!(SecretHash::parse(&other_alg).is_none());
    assert!(SecretHash::parse(&format!("{}$x", a.as_str())).is_none());
}

/// Two hashes are equal only with the same salt and the same digest.
#[test]
fn secret_hashes_are_equal_only_with_salt_and_digest_alike() {
    let a = SecretHash::new(&ClientSecret::new("x"));
    let (_, salt_a, digest_a) = split(a.as_str());
    let b = SecretHash::new(&ClientSecret::new("y"));
    let (_, salt_b, digest_b) = split(b.as_str());
    let made = |salt: &str, digest: &str| {
        SecretHash::parse(&format!("sha256${salt}${digest}")).expect("well-formed")
    };
    assert_eq!(made(salt_a, digest_a), a);
    assert_ne!(a, b);
    assert_ne!(made(salt_a, digest_b), a, "same salt, another digest");
    assert_ne!(made(salt_b, digest_a), a, "same digest, another salt");
}

fn split(encoded: &str) -> (&str, &str, &str) {
    let mut parts = encoded.split('$');
    let mut next = || parts.next().expect("three parts");
    (next(), next(), next())
}

/// A hash read from the wrong kind of value names what was expected (in a format whose
/// newtype structs are self-describing; JSON reads the inner bytes directly).
#[test]
fn a_hash_of_the_wrong_shape_names_its_type() {
    use serde::de::value::{Error, StrDeserializer};
    let e =
        TokenHash::deserialize(StrDeserializer::<Error>::new("not a hash")).expect_err("a string");
    assert!(e.to_string().contains("tuple struct TokenHash"), "{e}");
}
