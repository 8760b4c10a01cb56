use super::*;

#[test]
fn token_hash_is_sha256_of_the_token() {
    // SHA-256("abc"), FIPS 180-2 appendix B.1
    assert_eq!(
        TokenHash::of("abc").to_hex(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        format!("{:?}", TokenHash::of("abc")),
        "TokenHash(ba7816bf…)"
    );
    assert_eq!(TokenHash::from_hex("zz"), None);
    assert_eq!(TokenHash::from_hex(&"g".repeat(64)), None);
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
}
