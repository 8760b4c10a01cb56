//! [`MemoryUserVerifier`]: users kept in a map.

use std::collections::HashMap;
use std::fmt;
use std::sync::{PoisonError, RwLock};

use async_trait::async_trait;

use crate::error::StoreError;
use crate::store::{UserVerdict, UserVerifier};
use crate::token::SecretHash;
use crate::types::{ClientId, ClientSecret, Password, UserId, Username};

/// Users kept in a map, with passwords as salted SHA-256 hashes.
///
/// For tests and demos.
///
/// # Security
///
/// Passwords are kept as salted SHA-256, which is fast: a leaked copy of this map can be
/// brute-forced. Real user passwords deserve a slow KDF (argon2, scrypt, bcrypt): implement
/// [`UserVerifier`] over your own user table, as `examples/axum_server.rs` does with argon2.
///
/// ```
/// use grantor::MemoryUserVerifier;
///
/// let users = MemoryUserVerifier::new();
/// users.add_user("tom", "user-1", "123456");
/// ```
#[derive(Default)]
pub struct MemoryUserVerifier {
    users: RwLock<HashMap<String, (UserId, SecretHash)>>,
}

impl MemoryUserVerifier {
    /// No users.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a user. The password is hashed at once; the plain text is not kept.
    pub fn add_user(&self, username: &str, user_id: impl Into<UserId>, password: &str) {
        let hash = SecretHash::new(&ClientSecret::new(password));
        self.users
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(username.to_owned(), (user_id.into(), hash));
    }
}

impl fmt::Debug for MemoryUserVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryUserVerifier").finish_non_exhaustive()
    }
}

#[async_trait]
impl UserVerifier for MemoryUserVerifier {
    async fn verify_password(
        &self,
        username: &Username,
        password: &Password,
        _client: &ClientId,
    ) -> Result<UserVerdict, StoreError> {
        let found = self
            .users
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(username.as_str())
            .cloned();
        let presented = ClientSecret::new(password.secret());
        Ok(match found {
            Some((id, hash)) if hash.verify(&presented) => UserVerdict::Authenticated(id),
            Some(_) => UserVerdict::Refused,
            None => {
                // Same work as for a known user, so timing does not reveal who exists.
                let _ = SecretHash::decoy().verify(&presented);
                UserVerdict::Refused
            }
        })
    }
}
