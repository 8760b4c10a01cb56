//! Protocol values as types: identifiers, secrets and closed sets.
//!
//! Public identifiers ([`ClientId`], [`UserId`], [`Username`], [`FamilyId`], [`RedirectUri`]) are
//! string newtypes compared by their exact text. Secrets ([`AccessToken`], [`RefreshToken`],
//! [`ClientSecret`], [`Password`]) print as `AccessToken([redacted])`, have no `Display`, and are
//! read only through `.secret()`.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::random::random_string;

macro_rules! public_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// The text is shared (`Arc<str>`): a clone copies a pointer, not the string.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a value.
            pub fn new(value: impl Into<Arc<str>>) -> Self {
                Self(value.into())
            }

            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The value as an owned string.
            pub fn into_string(self) -> String {
                self.0.as_ref().to_owned()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.as_str()).finish()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.into())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value.into())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Its `Debug` output is redacted and it has no `Display`, so it cannot end up in a log by
        /// accident.
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret value.
            ///
            /// # Security Warning
            ///
            /// Do not log, print or store the returned value; store only its hash.
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// The secret value, consuming the wrapper.
            ///
            /// # Security Warning
            ///
            /// Do not log, print or store the returned value; store only its hash.
            pub fn into_secret(self) -> String {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

public_type! {
    /// A client identifier (RFC 6749 §2.2): unique at this server, not a secret.
    ClientId
}

public_type! {
    /// The host application's identifier of a resource owner, as returned by a
    /// [`UserVerifier`](crate::UserVerifier). grantor stores it in grant records and hands it back
    /// from bearer validation; it never interprets it.
    UserId
}

public_type! {
    /// A resource owner's username as sent in the password grant (RFC 6749 §4.3.2).
    Username
}

/// The resource owner a grant stands for: the host's id for the user, and the username they
/// signed in with, when the grant had one (introspection answers it as `username`, RFC 7662
/// §2.2).
///
/// [`AuthorizationServer::verify_user`](crate::AuthorizationServer::verify_user) answers one,
/// ready for [`approve`](crate::AuthorizationServer::approve); a bare [`UserId`] converts into
/// one with no username.
///
/// ```
/// use grantor::{ResourceOwner, UserId, Username};
///
/// let owner = ResourceOwner::new(UserId::new("user-1")).with_username(Username::new("tom"));
/// assert_eq!(owner.username.as_ref().map(Username::as_str), Some("tom"));
/// let bare: ResourceOwner = UserId::new("user-1").into();
/// assert_eq!(bare.username, None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceOwner {
    /// The host application's identifier of the user.
    pub id: UserId,
    /// The username the user signed in with, if they signed in with one.
    pub username: Option<Username>,
}

impl ResourceOwner {
    /// The user `id`, with no username.
    pub fn new(id: impl Into<UserId>) -> Self {
        Self {
            id: id.into(),
            username: None,
        }
    }

    /// Adds the username the user signed in with.
    pub fn with_username(mut self, username: impl Into<Username>) -> Self {
        self.username = Some(username.into());
        self
    }
}

impl From<UserId> for ResourceOwner {
    fn from(id: UserId) -> Self {
        Self::new(id)
    }
}

public_type! {
    /// Identifies a family of tokens that descend from one authorization: the first access and
    /// refresh token, and everything issued by refreshing them (RFC 9700 §4.14.2). Revoking a
    /// family revokes every token in it.
    FamilyId
}

public_type! {
    /// A redirection endpoint URI (RFC 6749 §3.1.2), compared by exact string match
    /// (RFC 9700 §2.1).
    RedirectUri
}

impl FamilyId {
    /// A fresh random family id (128 bits from a CSPRNG, base64url).
    pub fn generate() -> Self {
        Self(crate::random::random_shared_text_16())
    }
}

secret_type! {
    /// An access token (RFC 6749 §1.4) as issued to a client.
    AccessToken
}

impl AccessToken {
    /// A fresh access token: 256 bits from a CSPRNG, base64url.
    pub fn generate() -> Self {
        Self::new(random_string::<32>())
    }
}

secret_type! {
    /// A refresh token (RFC 6749 §1.5) as issued to a client.
    RefreshToken
}

impl RefreshToken {
    /// A fresh refresh token: 256 bits from a CSPRNG, base64url.
    pub fn generate() -> Self {
        Self::new(random_string::<32>())
    }
}

secret_type! {
    /// A client secret (RFC 6749 §2.3.1) as presented by a client.
    ClientSecret
}

secret_type! {
    /// An authorization code (RFC 6749 §1.3.1, §4.1.2): single use, short-lived.
    AuthorizationCode
}

impl AuthorizationCode {
    /// A fresh authorization code: 256 bits from a CSPRNG, base64url.
    pub fn generate() -> Self {
        Self::new(random_string::<32>())
    }
}

secret_type! {
    /// The opaque handle of a validated authorization request waiting for the user's decision.
    ///
    /// The host carries it through its login and consent page (a hidden form field) and hands
    /// it back to [`AuthorizationServer::approve`](crate::AuthorizationServer::approve) or
    /// [`deny`](crate::AuthorizationServer::deny). The request itself stays on the server, so the
    /// page cannot alter it; the handle is 256 random bits and works once.
    AuthorizationRequestId
}

impl AuthorizationRequestId {
    /// A fresh request handle: 256 bits from a CSPRNG, base64url.
    pub fn generate() -> Self {
        Self::new(random_string::<32>())
    }
}

secret_type! {
    /// A PKCE code verifier (RFC 7636 §4.1) as sent with a token request.
    CodeVerifier
}

secret_type! {
    /// A resource owner's password as sent in the password grant (RFC 6749 §4.3.2).
    Password
}

secret_type! {
    /// A device code (RFC 8628 §3.2): the device's handle for polling the token endpoint. 256
    /// random bits, stored only as a hash.
    DeviceCode
}

impl DeviceCode {
    /// A fresh device code: 256 bits from a CSPRNG, base64url.
    pub fn generate() -> Self {
        Self::new(random_string::<32>())
    }
}

secret_type! {
    /// The handle of a password sign-in that still needs its second factor: the `mfa_token` of
    /// an `mfa_required` answer. 256 random bits, stored only as a hash, single use, bound to
    /// the user, the client and the scope asked for.
    MfaToken
}

impl MfaToken {
    /// A fresh `mfa_token`: 256 bits from a CSPRNG, base64url.
    pub fn generate() -> Self {
        Self::new(random_string::<32>())
    }
}

secret_type! {
    /// A one-time code from a second factor (a TOTP app's six digits), as sent in the `otp`
    /// parameter of the `mfa-otp` grant.
    OneTimeCode
}

/// The alphabet of user codes (RFC 8628 §6.1): twenty consonants, no vowels (so no words), no
/// digits, nothing that looks alike.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// A user code (RFC 8628 §3.2): the short code a person types on the verification page.
///
/// Eight characters of [`USER_CODE_ALPHABET`] (about 34.6 bits), shown as `XXXX-XXXX`. What a
/// person types is [normalised](UserCode::normalized) before it is compared: case, spaces and
/// dashes do not matter (RFC 8628 §6.1).
///
/// ```
/// use grantor::UserCode;
///
/// let typed = UserCode::new(" wdjb-mjht ");
/// assert_eq!(typed.normalized(), "WDJBMJHT");
/// assert_eq!(typed.display(), "WDJB-MJHT");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct UserCode(String);

impl UserCode {
    /// Wraps a code as typed or as issued.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// A fresh random user code.
    pub fn generate() -> Self {
        use rand::Rng;
        let mut rng = rand::rng();
        let code: String = (0..8)
            .map(|_| {
                let i = rng.random_range(0..USER_CODE_ALPHABET.len());
                char::from(USER_CODE_ALPHABET.get(i).copied().unwrap_or(b'B'))
            })
            .collect();
        Self(code)
    }

    /// The code as compared: upper-cased, with everything but letters and digits dropped.
    pub fn normalized(&self) -> String {
        self.0
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect()
    }

    /// The code as shown to a person: normalised, with a dash after every fourth character
    /// (`WDJB-MJHT`).
    pub fn display(&self) -> String {
        let normalized = self.normalized();
        let mut out = String::with_capacity(normalized.len() + 2);
        for (i, c) in normalized.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push('-');
            }
            out.push(c);
        }
        out
    }

    /// The code exactly as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserCode([redacted])")
    }
}

/// A grant type a client may be allowed (RFC 6749 §4, RFC 8628 §3.4).
///
/// `Implicit` is not a token-endpoint grant type (it is `response_type=token` at the
/// authorization endpoint) but a client must be allowed it all the same, as in RFC 7591 §2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum GrantType {
    /// `authorization_code` (RFC 6749 §4.1).
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// `implicit` (RFC 6749 §4.2).
    #[serde(rename = "implicit")]
    Implicit,
    /// `password`: the resource owner password credentials grant (RFC 6749 §4.3).
    #[serde(rename = "password")]
    Password,
    /// `client_credentials` (RFC 6749 §4.4).
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// `refresh_token` (RFC 6749 §6).
    #[serde(rename = "refresh_token")]
    RefreshToken,
    /// `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
    /// `http://auth0.com/oauth/grant-type/mfa-otp`: the second step of a password sign-in that
    /// needs a one-time code (the `mfa_token` and `otp` of Auth0's "Resource Owner Password Flow
    /// with MFA"). Any client allowed [`Password`](GrantType::Password) may use it.
    #[serde(rename = "http://auth0.com/oauth/grant-type/mfa-otp")]
    MfaOtp,
}

impl GrantType {
    /// Every grant type, in RFC order.
    pub const ALL: [GrantType; 7] = [
        Self::AuthorizationCode,
        Self::Implicit,
        Self::Password,
        Self::ClientCredentials,
        Self::RefreshToken,
        Self::DeviceCode,
        Self::MfaOtp,
    ];

    /// The value as it appears on the wire, e.g. `"refresh_token"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::Implicit => "implicit",
            Self::Password => "password",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            Self::MfaOtp => "http://auth0.com/oauth/grant-type/mfa-otp",
        }
    }

    /// Parses a wire value; `None` for anything else (exact, case-sensitive match).
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == value)
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests;

/// What the client asks the authorization endpoint for (RFC 6749 §3.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResponseType {
    /// `code`: an authorization code, in the redirect's query (§4.1).
    Code,
    /// `token`: an access token, in the redirect's fragment (§4.2, the implicit grant).
    Token,
}
