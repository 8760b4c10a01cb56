//! Scopes (RFC 6749 §3.3): parsing, and deciding what a request is granted.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::client::Client;
use crate::error::OAuthError;
use crate::reason::Reason;

/// A set of scope tokens (RFC 6749 §3.3), written on the wire as space-separated tokens.
///
/// The set is ordered, so it always prints the same way.
///
/// ```
/// use grantor::Scope;
///
/// let asked: Scope = "write read".parse().unwrap();
/// let allowed: Scope = "read write admin".parse().unwrap();
/// assert!(asked.is_subset_of(&allowed));
/// assert_eq!(asked.to_string(), "read write");
/// assert!("read  write".parse::<Scope>().is_err()); // exactly one space between tokens
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Scope(BTreeSet<String>);

/// Why a scope string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed scope: {0}")]
pub struct ScopeError(&'static str);

impl Scope {
    /// The empty scope.
    pub fn empty() -> Self {
        Self(BTreeSet::new())
    }

    /// Parses `scope = scope-token *( SP scope-token )`, where
    /// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
    ///
    /// The empty string parses to the empty scope.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        if s.is_empty() {
            return Ok(Self::empty());
        }
        let mut set = BTreeSet::new();
        for token in s.split(' ') {
            if token.is_empty() {
                return Err(ScopeError(
                    "scope tokens are separated by exactly one space",
                ));
            }
            if !token.bytes().all(is_scope_char) {
                return Err(ScopeError(
                    "a scope token has a character outside %x21 / %x23-5B / %x5D-7E",
                ));
            }
            set.insert(token.to_owned());
        }
        Ok(Self(set))
    }

    /// Whether every token of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The tokens in both `self` and `other`.
    pub fn intersection(&self, other: &Scope) -> Scope {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    /// Whether the set holds `token`.
    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tokens, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

fn is_scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

impl FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for t in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(t)?;
            first = false;
        }
        Ok(())
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", self.to_string())
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Scope::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What a token request is granted, and whether the response must say so.
#[derive(Debug)]
pub(crate) struct GrantedScope {
    pub(crate) scope: Scope,
    /// RFC 6749 §5.1: `scope` is "OPTIONAL, if identical to the scope requested by the client;
    /// otherwise, REQUIRED".
    pub(crate) differs_from_request: bool,
}

/// Decides the scope of a new grant for `client` from the raw `scope` parameter.
///
/// RFC 6749 §3.3: "If the client omits the scope parameter when requesting authorization, the
/// authorization server MUST either process the request using a pre-defined default value or fail
/// the request indicating an invalid scope."
pub(crate) fn grant_scope(
    client: &Client,
    requested: Option<&str>,
) -> Result<GrantedScope, OAuthError> {
    match requested {
        None => {
            if client.default_scope.is_empty() {
                return Err(OAuthError::invalid_scope(
                    "no scope was requested and the client has no default scope",
                )
                .with_reason(Reason::NoDefaultScope));
            }
            Ok(GrantedScope {
                scope: client.default_scope.clone(),
                differs_from_request: true,
            })
        }
        Some(raw) => {
            let scope = parse_requested(raw)?;
            if !scope.is_subset_of(&client.allowed_scope) {
                return Err(OAuthError::invalid_scope(
                    "the requested scope exceeds the scope this client may request",
                )
                .with_reason(Reason::ScopeNotAllowed));
            }
            Ok(GrantedScope {
                scope,
                differs_from_request: false,
            })
        }
    }
}

/// Parses a `scope` request parameter, answering `invalid_scope` when it is malformed.
pub(crate) fn parse_requested(raw: &str) -> Result<Scope, OAuthError> {
    Scope::parse(raw)
        .map_err(|e| OAuthError::invalid_scope(e.0).with_reason(Reason::ScopeMalformed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!(
            Scope::parse("b a b").map(|s| s.to_string()),
            Ok("a b".into())
        );
        assert!(Scope::parse("").map(|s| s.is_empty()).unwrap_or(false));
        for bad in [" a", "a ", "a  b", "a\"b", "a\\b", "é", "a\tb"] {
            assert!(Scope::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serde_as_string() {
        let s = Scope::parse("read write").unwrap_or_default();
        assert_eq!(
            serde_json::to_string(&s).ok(),
            Some("\"read write\"".into())
        );
        let back: Result<Scope, _> = serde_json::from_str("\"write read\"");
        assert_eq!(back.ok(), Some(s));
    }
}
