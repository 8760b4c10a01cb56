//! Names derived from what people type (usernames, addresses, user ids), as the shared stores
//! keep them: hashed, and keyed by a secret when the host gives one.

use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};

/// `name`'s SHA-256, or its HMAC-SHA256 under `secret`, in hex. With a secret, a copy of the
/// store cannot be matched against a list of likely names.
pub(crate) fn name_digest(secret: Option<&[u8]>, name: &str) -> String {
    let digest: [u8; 32] = match secret {
        Some(secret) => match Hmac::<Sha256>::new_from_slice(secret) {
            Ok(mac) => mac
                .chain_update(name.as_bytes())
                .finalize()
                .into_bytes()
                .into(),
            // HMAC takes keys of any length; this arm is never taken.
            Err(_) => Sha256::digest(name.as_bytes()).into(),
        },
        None => Sha256::digest(name.as_bytes()).into(),
    };
    crate::token::hex(&digest)
}

#[cfg(test)]
mod tests {
    use super::name_digest;

    #[test]
    fn a_secret_changes_every_digest_and_none_is_plain_sha256() {
        let plain = name_digest(None, "user:tom");
        assert_eq!(plain.len(), 64);
        assert_eq!(
            plain,
            crate::token::hex(&<sha2::Sha256 as sha2::Digest>::digest(b"user:tom"))
        );
        let keyed = name_digest(Some(b"secret"), "user:tom");
        assert_ne!(keyed, plain);
        assert_ne!(keyed, name_digest(Some(b"other"), "user:tom"));
        assert_eq!(keyed, name_digest(Some(b"secret"), "user:tom"));
    }
}
