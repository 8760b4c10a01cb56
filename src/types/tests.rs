use super::*;

#[test]
fn secrets_are_redacted_in_debug() {
    assert_eq!(
        format!("{:?}", AccessToken::new("abc")),
        "AccessToken([redacted])"
    );
    assert_eq!(
        format!("{:?}", RefreshToken::new("abc")),
        "RefreshToken([redacted])"
    );
    assert_eq!(
        format!("{:?}", ClientSecret::new("abc")),
        "ClientSecret([redacted])"
    );
    assert_eq!(
        format!("{:?}", Password::new("abc")),
        "Password([redacted])"
    );
}

#[test]
fn grant_types_round_trip() {
    for g in GrantType::ALL {
        assert_eq!(GrantType::parse(g.as_str()), Some(g));
        assert_eq!(
            serde_json::to_string(&g).ok(),
            Some(format!("\"{}\"", g.as_str()))
        );
    }
    assert_eq!(GrantType::parse("PASSWORD"), None);
}

#[test]
fn family_ids_are_random() {
    assert_ne!(FamilyId::generate(), FamilyId::generate());
    let id = FamilyId::generate();
    assert_eq!(id.as_str().len(), 22, "128 bits, base64url");
    assert!(id
        .as_str()
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
}

#[test]
fn tokens_are_256_bit_base64url() {
    let t = AccessToken::generate();
    assert_eq!(t.secret().len(), 43);
    assert!(t
        .secret()
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_ne!(t.secret(), AccessToken::generate().secret());
}
