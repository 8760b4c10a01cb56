//! Scopes (RFC 6749 §3.3): parsing, and deciding what a request is granted.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
//
// Every stored token carries a scope, so it is one shared, immutable string in canonical form:
// the tokens sorted (byte order) without repeats, joined by one space. A clone shares it; the
// empty scope is `None` and allocates nothing. Two scopes are equal sets exactly when their
// canonical strings are equal.
#[derive(Clone, Default)]
pub struct Scope(Option<Arc<str>>);

/// Why a scope string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed scope: {0}")]
pub struct ScopeError(&'static str);

impl Scope {
    /// The empty scope.
    // Mutation testing: replacing the body with `Default::default()` is an equivalent mutant
    // (the derived default is `Self(None)`, this very value); `.cargo/mutants.toml` skips it.
    pub fn empty() -> Self {
        Self(None)
    }

    /// Parses `scope = scope-token *( SP scope-token )`, where
    /// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
    ///
    /// The empty string parses to the empty scope.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        if s.is_empty() {
            return Ok(Self::empty());
        }
        let mut tokens = Vec::new();
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
            tokens.push(token);
        }
        tokens.sort_unstable();
        tokens.dedup();
        Ok(Self::from_sorted(tokens))
    }

    /// The scope of `tokens`, which are valid, sorted and without repeats.
    fn from_sorted<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        let mut joined = String::new();
        for token in tokens {
            if !joined.is_empty() {
                joined.push(' ');
            }
            joined.push_str(token);
        }
        if joined.is_empty() {
            Self::empty()
        } else {
            Self(Some(Arc::from(joined)))
        }
    }

    /// An equal scope whose string is its own (not shared with this one's).
    pub(crate) fn unshared_copy(&self) -> Self {
        Self(self.0.as_deref().map(Arc::from))
    }

    /// The canonical form, as `Display` writes it: the tokens sorted, separated by one space
    /// (empty for the empty scope).
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }

    /// Whether every token of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        if self.as_str().len() > other.as_str().len() {
            return false;
        }
        // The common case (a resource asking for just what the token grants) needs no walk.
        if self.as_str() == other.as_str() {
            return true;
        }
        // Both lists are sorted: walk them side by side.
        let mut theirs = other.iter();
        'ours: for token in self.iter() {
            for candidate in theirs.by_ref() {
                match candidate.cmp(token) {
                    Ordering::Less => {}
                    Ordering::Equal => continue 'ours,
                    Ordering::Greater => return false,
                }
            }
            return false;
        }
        true
    }

    /// The tokens in both `self` and `other`.
    pub fn intersection(&self, other: &Scope) -> Scope {
        if self.is_subset_of(other) {
            return self.clone();
        }
        if other.is_subset_of(self) {
            return other.clone();
        }
        let mut theirs = other.iter().peekable();
        Self::from_sorted(self.iter().filter(|token| {
            while theirs.next_if(|c| c < token).is_some() {}
            theirs.next_if_eq(token).is_some()
        }))
    }

    /// Whether the set holds `token`.
    pub fn contains(&self, token: &str) -> bool {
        self.iter().take_while(|t| *t <= token).any(|t| t == token)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The tokens, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let s = self.as_str();
        // `"".split(' ')` yields one empty piece; the empty scope has no tokens.
        s.split(' ').take(if s.is_empty() { 0 } else { usize::MAX })
    }
}

pub(crate) const fn is_scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

impl PartialEq for Scope {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Scope {}

impl Hash for Scope {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", self.as_str())
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Scope::parse(&s).map_err(serde::de::Error::custom)
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

    /// Hashing follows equality (the scope's text), so that scopes key maps: equal scopes hash
    /// alike, and different ones (here) apart.
    #[test]
    fn scopes_hash_by_their_text() {
        use std::hash::BuildHasher as _;
        let hasher = std::collections::hash_map::RandomState::new();
        let hash = |s: &str| hasher.hash_one(Scope::parse(s).unwrap_or_default());
        assert_eq!(hash("read write"), hash("read write"));
        assert_ne!(hash("read"), hash("write"));
        assert_ne!(hash("read"), hash(""));
    }

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

    fn scope(s: &str) -> Scope {
        Scope::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn equality_is_set_equality() {
        assert_eq!(scope("b a a"), scope("a b"));
        assert_eq!(scope("a b").to_string(), "a b");
        assert_ne!(scope("a"), scope("a b"));
        assert_eq!(scope(""), Scope::empty());
        assert_eq!(Scope::default(), Scope::empty());
        // Equal sets hash alike.
        use std::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        assert_eq!(
            state.hash_one(scope("c b a b")),
            state.hash_one(scope("a b c"))
        );
    }

    #[test]
    fn subsets() {
        let empty = Scope::empty();
        assert!(empty.is_subset_of(&empty));
        assert!(empty.is_subset_of(&scope("a")));
        assert!(!scope("a").is_subset_of(&empty));
        assert!(scope("a b").is_subset_of(&scope("b a")));
        assert!(scope("a c").is_subset_of(&scope("a b c")));
        assert!(!scope("a d").is_subset_of(&scope("a b c")));
        assert!(!scope("0").is_subset_of(&scope("a b c")));
        // A token that is a prefix of another is not the other.
        assert!(!scope("rea").is_subset_of(&scope("read write")));
        assert!(!scope("read").is_subset_of(&scope("read:all")));
        assert!(scope("read").is_subset_of(&scope("read read:all")));
        // As long, yet other tokens.
        assert!(!scope("a b").is_subset_of(&scope("abc")));
    }

    #[test]
    fn intersections() {
        let empty = Scope::empty();
        assert_eq!(empty.intersection(&scope("a")), empty);
        assert_eq!(scope("a").intersection(&empty), empty);
        assert_eq!(scope("a b c").intersection(&scope("b c d")), scope("b c"));
        assert_eq!(scope("a b").intersection(&scope("c d")), empty);
        assert!(scope("a b").intersection(&scope("c d")).is_empty());
        assert_eq!(scope("a b").intersection(&scope("a b c")), scope("a b"));
        assert_eq!(scope("a b c").intersection(&scope("b")), scope("b"));
        assert_eq!(scope("ab b").intersection(&scope("a b")), scope("b"));
        assert_eq!(
            scope("read read:all write").intersection(&scope("read:all write:all")),
            scope("read:all")
        );
    }

    #[test]
    fn contains_and_iterates_in_order() {
        let s = scope("write read admin read");
        assert!(s.contains("read") && s.contains("admin") && s.contains("write"));
        for absent in ["", "rea", "reads", "zzz", "!", "read write"] {
            assert!(!s.contains(absent), "{absent:?}");
        }
        assert_eq!(s.iter().collect::<Vec<_>>(), ["admin", "read", "write"]);
        assert_eq!(Scope::empty().iter().count(), 0);
        assert!(!Scope::empty().contains(""));
    }

    #[test]
    fn empty_scope() {
        let empty = Scope::empty();
        assert!(empty.is_empty());
        assert_eq!(empty.to_string(), "");
        assert_eq!(format!("{empty:?}"), "Scope(\"\")");
        assert_eq!(serde_json::to_string(&empty).ok(), Some("\"\"".into()));
        assert_eq!(serde_json::from_str::<Scope>("\"\"").ok(), Some(empty));
        assert!(!scope("a").is_empty());
    }

    #[test]
    fn display_and_debug() {
        let s = scope("write read #x");
        assert_eq!(s.to_string(), "#x read write");
        assert_eq!(format!("{s}"), "#x read write");
        assert_eq!(format!("{s:?}"), "Scope(\"#x read write\")");
        assert_eq!(format!("{:?}", scope("b ]a")), "Scope(\"]a b\")");
        assert_eq!(format!("{:?}", scope("only")), "Scope(\"only\")");
    }

    #[test]
    fn serde_round_trip() {
        for raw in ["", "a", "b a a", "read write admin", "!#$ ~ }|{"] {
            let s = scope(raw);
            let json = serde_json::to_string(&s).unwrap_or_default();
            assert_eq!(json, format!("{:?}", s.to_string()));
            let back: Scope = serde_json::from_str(&json).unwrap_or_default();
            assert_eq!(back, s);
            assert_eq!(back.to_string(), s.to_string());
        }
        assert!(serde_json::from_str::<Scope>("\"a  b\"").is_err());
        assert!(serde_json::from_str::<Scope>("[\"a\"]").is_err());
    }

    mod model {
        use std::collections::BTreeSet;

        use proptest::prelude::*;

        use super::super::*;

        /// The scope as a plain set, parsed by the same rules.
        fn model(s: &str) -> Option<BTreeSet<String>> {
            if s.is_empty() {
                return Some(BTreeSet::new());
            }
            s.split(' ')
                .map(|t| (!t.is_empty() && t.bytes().all(is_scope_char)).then(|| t.to_owned()))
                .collect()
        }

        fn joined(set: &BTreeSet<String>) -> String {
            set.iter().map(String::as_str).collect::<Vec<_>>().join(" ")
        }

        /// Tokens from a small alphabet, so that lists share many of them, and now and then a
        /// token with any allowed character.
        fn token() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => "[ab:]{1,3}",
                1 => "[!#-\\[\\]-~]{1,4}",
            ]
        }

        fn tokens() -> impl Strategy<Value = String> {
            proptest::collection::vec(token(), 0..8).prop_map(|t| t.join(" "))
        }

        /// Mostly well-formed lists, and some arbitrary strings of printable ASCII and more.
        fn raw() -> impl Strategy<Value = String> {
            prop_oneof![4 => tokens(), 1 => "[ -~\t\u{e9}]{0,12}"]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

            #[test]
            fn parses_like_a_set(raw in raw()) {
                let parsed = Scope::parse(&raw);
                let expected = model(&raw);
                prop_assert_eq!(parsed.is_ok(), expected.is_some(), "{:?}", raw);
                if let (Ok(scope), Some(set)) = (parsed, expected) {
                    prop_assert_eq!(scope.to_string(), joined(&set));
                    prop_assert_eq!(format!("{scope:?}"), format!("Scope({:?})", joined(&set)));
                    prop_assert_eq!(scope.is_empty(), set.is_empty());
                    prop_assert!(scope.iter().eq(set.iter().map(String::as_str)));
                    // The printed form parses back to the same scope.
                    prop_assert_eq!(Scope::parse(&scope.to_string()).ok(), Some(scope));
                }
            }

            #[test]
            fn operations_agree_with_a_set(a in tokens(), b in tokens(), probe in token()) {
                let (sa, sb) = (Scope::parse(&a), Scope::parse(&b));
                let (Ok(sa), Ok(sb)) = (sa, sb) else {
                    return Err(TestCaseError::fail("generated lists are well-formed"));
                };
                let (Some(ma), Some(mb)) = (model(&a), model(&b)) else {
                    return Err(TestCaseError::fail("generated lists are well-formed"));
                };
                prop_assert_eq!(sa.is_subset_of(&sb), ma.is_subset(&mb));
                prop_assert_eq!(sb.is_subset_of(&sa), mb.is_subset(&ma));
                prop_assert_eq!(sa == sb, ma == mb);
                let both: BTreeSet<String> = ma.intersection(&mb).cloned().collect();
                prop_assert_eq!(sa.intersection(&sb).to_string(), joined(&both));
                prop_assert_eq!(sb.intersection(&sa), sa.intersection(&sb));
                prop_assert_eq!(sa.intersection(&sb).is_empty(), both.is_empty());
                for token in ma.iter().chain(mb.iter()).map(String::as_str).chain([probe.as_str()]) {
                    prop_assert_eq!(sa.contains(token), ma.contains(token), "{:?}", token);
                    prop_assert_eq!(sb.contains(token), mb.contains(token), "{:?}", token);
                }
            }
        }
    }
}
