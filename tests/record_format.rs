//! Stored records evolve: the JSON this version writes is pinned here, a record written before
//! format versions (and before later fields) still reads, in memory and through Redis, and a
//! record from a newer format is refused rather than misread.

mod redis_support;

use grantor::{
    decode_record, encode_record, AccessToken, ClientId, FamilyId, MfaChallenge, MfaStore,
    MfaTokenHash, RedisStore, Scope, TokenHash, TokenKind, TokenLookup, TokenRecord, TokenStore,
    UserId, Username, RECORD_FORMAT,
};
use redis_support::RedisServer;
use time::OffsetDateTime;

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).expect("timestamp")
}

/// A token record as the previous release wrote it: no format version, no `username`.
fn old_token_json(issued_at: i64, expires_at: i64) -> String {
    format!(
        r#"{{"kind":"access","client_id":"app","user_id":"u1","scope":"read write","issued_at":{issued_at},"expires_at":{expires_at},"family_id":"fam-1"}}"#
    )
}

/// An `mfa_token`'s challenge as the previous release wrote it.
fn old_challenge_json(expires_at: i64) -> String {
    format!(
        r#"{{"client_id":"app","user_id":"u1","scope":"read","show_scope":false,"expires_at":{expires_at}}}"#
    )
}

fn token_record(issued_at: i64, expires_at: i64, username: Option<&str>) -> TokenRecord {
    let json = old_token_json(issued_at, expires_at);
    let mut record: TokenRecord = decode_record(&json).expect("an old record reads");
    record.username = username.map(Username::new);
    record
}

#[test]
fn this_version_writes_format_1_in_a_pinned_shape() {
    assert_eq!(RECORD_FORMAT, 2);
    let record = token_record(1_700_000_000, 1_700_003_600, Some("tom"));
    assert_eq!(
        encode_record(&record).expect("encode"),
        r#"{"v":1,"kind":"access","client_id":"app","user_id":"u1","username":"tom","scope":"read write","issued_at":1700000000,"expires_at":1700003600,"family_id":"fam-1"}"#
    );
    let challenge: MfaChallenge = decode_record(&old_challenge_json(1_700_000_300)).expect("read");
    assert_eq!(
        encode_record(&challenge).expect("encode"),
        r#"{"v":1,"client_id":"app","user_id":"u1","scope":"read","show_scope":false,"expires_at":1700000300}"#
    );
}

#[test]
fn a_record_from_before_format_versions_reads_with_later_fields_defaulted() {
    let record: TokenRecord =
        decode_record(&old_token_json(1_700_000_000, 1_700_003_600)).expect("read");
    assert_eq!(record.kind, TokenKind::Access);
    assert_eq!(record.client_id, ClientId::new("app"));
    assert_eq!(record.user_id, Some(UserId::new("u1")));
    assert_eq!(record.username, None);
    assert_eq!(record.scope, "write read".parse::<Scope>().expect("scope"));
    assert_eq!(record.issued_at, at(1_700_000_000));
    assert_eq!(record.expires_at, at(1_700_003_600));
    assert_eq!(record.family_id, Some(FamilyId::new("fam-1")));
    // What this version writes, it reads back whole.
    let again: TokenRecord = decode_record(&encode_record(&record).expect("encode")).expect("read");
    assert_eq!(again, record);
}

#[test]
fn a_record_from_a_newer_format_is_refused_not_misread() {
    let newer = old_token_json(1_700_000_000, 1_700_003_600).replacen(
        '{',
        r#"{"v":3,"a_field_of_the_future":true,"#,
        1,
    );
    let error = decode_record::<TokenRecord>(&newer).expect_err("refused");
    let cause = std::error::Error::source(&error).map(ToString::to_string);
    assert!(cause.is_some_and(|c| c.contains("format 3")), "{error:?}");
    // The same additive field in this format is ignored (an older reader of a newer minor).
    let additive = old_token_json(1_700_000_000, 1_700_003_600).replacen(
        '{',
        r#"{"v":1,"a_field_of_the_future":true,"#,
        1,
    );
    assert!(decode_record::<TokenRecord>(&additive).is_ok());
}

#[allow(clippy::disallowed_methods)]
fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("whole seconds")
}

/// A deployment upgraded in place: live tokens and `mfa_token`s written to Redis by the previous
/// release (no format version, no `username`) keep working, and what this version writes
/// carries the format version.
#[tokio::test]
async fn records_written_to_redis_by_the_previous_release_still_read() {
    let server = RedisServer::start();
    let store = RedisStore::connect_with_prefix(&server.url(), "upgrade")
        .await
        .expect("connect");
    let client = redis::Client::open(server.url()).expect("client");
    let mut raw = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let now = now();
    let (issued, expires) = (now.unix_timestamp() - 60, now.unix_timestamp() + 3600);

    // An access token, stored the way the previous release's save script stored it.
    let token = AccessToken::new("an-access-token-of-the-previous-release");
    let hash = TokenHash::of_access_token(&token);
    let key = format!("{{upgrade}}:t:{}", hash.to_hex());
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg(&["s", "live", "k", "access", "c", "app", "f", "fam-1"])
        .arg("e")
        .arg(expires)
        .arg("r")
        .arg(old_token_json(issued, expires))
        .query_async(&mut raw)
        .await
        .expect("hset");
    let _: () = redis::cmd("EXPIRE")
        .arg(&key)
        .arg(3600)
        .query_async(&mut raw)
        .await
        .expect("expire");
    match store.find_token(&hash, now).await.expect("find") {
        TokenLookup::Live(record) => assert_eq!(record, token_record(issued, expires, None)),
        other => panic!("the old token no longer reads: {other:?}"),
    }

    // An mfa_token's challenge, likewise.
    let mfa = grantor::MfaToken::new("an-mfa-token-of-the-previous-release");
    let mfa_hash = MfaTokenHash::of(&mfa);
    let mfa_key = format!("{{upgrade}}:m:{}", mfa_hash.to_hex());
    let _: () = redis::cmd("HSET")
        .arg(&mfa_key)
        .arg("e")
        .arg(expires)
        .arg("r")
        .arg(old_challenge_json(expires))
        .query_async(&mut raw)
        .await
        .expect("hset");
    let challenge = store
        .find_mfa_token(&mfa_hash, now)
        .await
        .expect("find")
        .expect("the old mfa_token no longer reads");
    assert_eq!(challenge.username, None);
    assert_eq!(challenge.expires_at, at(expires));

    // What this version saves carries its format version.
    let fresh = AccessToken::new("an-access-token-of-this-release");
    let fresh_hash = TokenHash::of_access_token(&fresh);
    let record = token_record(issued, expires, Some("tom"));
    assert_eq!(
        store
            .save_tokens(&[(fresh_hash, record.clone())], now)
            .await
            .expect("save"),
        grantor::TokenSave::Saved
    );
    let stored: String = redis::cmd("HGET")
        .arg(format!("{{upgrade}}:t:{}", fresh_hash.to_hex()))
        .arg("r")
        .query_async(&mut raw)
        .await
        .expect("hget");
    assert_eq!(stored, encode_record(&record).expect("encode"));
    assert!(stored.starts_with(r#"{"v":1,"#), "{stored}");
}

/// A token that stands alone (the client credentials grant's) has no family: its record leaves
/// the field out, and reads back whole.
#[test]
fn a_token_that_stands_alone_is_written_without_a_family() {
    let mut record = token_record(1_700_000_000, 1_700_003_600, None);
    record.family_id = None;
    let json = encode_record(&record).expect("encode");
    assert_eq!(
        json,
        r#"{"v":1,"kind":"access","client_id":"app","user_id":"u1","scope":"read write","issued_at":1700000000,"expires_at":1700003600}"#
    );
    assert_eq!(decode_record::<TokenRecord>(&json).expect("read"), record);
}

/// A record that names resources (RFC 8707) is written in format 2, which a reader of format 1
/// refuses rather than taking the token for every resource; one that names none keeps format 1
/// byte for byte (above), so a rolling upgrade changes nothing until resources are used.
#[test]
fn a_record_naming_resources_is_format_2_and_reads_back_whole() {
    let mut record = token_record(1_700_000_000, 1_700_003_600, None);
    record.family_id = None;
    record.audience = vec![
        "https://api.example.com".to_owned(),
        "urn:example:ledger".to_owned(),
    ];
    let json = encode_record(&record).expect("encode");
    assert_eq!(
        json,
        r#"{"v":2,"kind":"access","client_id":"app","user_id":"u1","scope":"read write","issued_at":1700000000,"expires_at":1700003600,"audience":["https://api.example.com","urn:example:ledger"]}"#
    );
    assert_eq!(decode_record::<TokenRecord>(&json).expect("read"), record);

    let mut challenge: MfaChallenge =
        decode_record(&old_challenge_json(1_700_000_300)).expect("read");
    assert!(encode_record(&challenge)
        .expect("encode")
        .starts_with(r#"{"v":1,"#));
    challenge.resources = vec!["https://api.example.com".to_owned()];
    let json = encode_record(&challenge).expect("encode");
    assert!(json.starts_with(r#"{"v":2,"#), "{json}");
    assert_eq!(
        decode_record::<MfaChallenge>(&json).expect("read"),
        challenge
    );
}
