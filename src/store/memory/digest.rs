//! Maps keyed by a SHA-256 digest ([`Hashed`](crate::token::Hashed)) need no hashing of their
//! own: the key is already uniformly distributed, so its first eight bytes are the map's hash.
//! The same maps take keys that write one ready-made hash word (a family's key, an intern
//! table's keyed hash), and that word is their hash.
//!
//! A keyed hash (std's SipHash) defends a map against keys an attacker chooses to collide. The
//! digests these maps hold are of values the server generated itself (codes, request handles,
//! user codes), so no one can choose what is inserted; a lookup for a key someone chose costs
//! one probe sequence like any other. (Tokens live in the token store's own table, placed by
//! their digests in the same way.)

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by a digest (or by a key that writes one ready-made hash word), hashed by
/// [`DigestHasher`].
pub(crate) type DigestMap<K, V> = HashMap<K, V, BuildHasherDefault<DigestHasher>>;

/// Takes a digest's first eight bytes as its hash.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DigestHasher {
    state: u64,
}

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.state
    }

    fn write(&mut self, bytes: &[u8]) {
        // A digest writes its 32 bytes at once, and its first word is its hash; anything else is
        // folded a word at a time (these maps hold digests and one-word keys only, but the
        // hasher stays correct for any key).
        let take = if bytes.len() >= 32 { 1 } else { usize::MAX };
        for word in words(bytes).take(take) {
            self.state = self.state.rotate_left(23) ^ word;
        }
    }

    /// A key that is one ready-made hash word (a family's key) gives that word, as is, on any
    /// target.
    fn write_u64(&mut self, word: u64) {
        self.state = self.state.rotate_left(23) ^ word;
    }
}

/// Folds any key's bytes, eight at a time, into a multiplicative hash (no key, no rounds): how
/// the token store hashes family ids, which the server generates itself from its CSPRNG, so none
/// can be chosen to collide.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FoldHasher {
    state: u64,
}

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.state
    }

    fn write(&mut self, bytes: &[u8]) {
        for word in words(bytes) {
            self.state = (self.state.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
}

/// Word `i` (of four) of a digest, little-endian: a digest is uniform, so each of its words is a
/// ready-made hash, and different words are independent ones.
pub(crate) fn digest_word(digest: &[u8; 32], i: usize) -> u64 {
    words(digest).nth(i).unwrap_or(0)
}

/// `bytes` as little-endian words of eight bytes (the last one padded with zeros).
fn words(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes.chunks(8).map(|chunk| {
        let mut word = [0u8; 8];
        for (slot, byte) in word.iter_mut().zip(chunk) {
            *slot = *byte;
        }
        u64::from_le_bytes(word)
    })
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher as _;

    use super::*;
    use crate::token::TokenHash;

    #[test]
    fn a_digest_word_is_eight_of_its_bytes_little_endian() {
        let bytes: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert_eq!(digest_word(&bytes, 0), 0x0706_0504_0302_0100);
        assert_eq!(digest_word(&bytes, 1), 0x0f0e_0d0c_0b0a_0908);
        assert_eq!(digest_word(&bytes, 3), 0x1f1e_1d1c_1b1a_1918);
        assert_eq!(digest_word(&bytes, 4), 0);
    }

    #[test]
    fn a_digest_hashes_to_its_first_eight_bytes() {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&0x0123_4567_89ab_cdef_u64.to_le_bytes());
        bytes[8] = 0xff;
        let hash =
            BuildHasherDefault::<DigestHasher>::default().hash_one(TokenHash::from_bytes(bytes));
        assert_eq!(hash, 0x0123_4567_89ab_cdef);
    }

    #[test]
    fn digest_maps_find_what_they_hold() {
        let mut map: DigestMap<TokenHash, u32> = DigestMap::default();
        for i in 0..1000u32 {
            let mut bytes = [0u8; 32];
            bytes[..4].copy_from_slice(&i.to_le_bytes());
            bytes[31] = 7;
            map.insert(TokenHash::from_bytes(bytes), i);
        }
        for i in 0..1000u32 {
            let mut bytes = [0u8; 32];
            bytes[..4].copy_from_slice(&i.to_le_bytes());
            bytes[31] = 7;
            assert_eq!(map.get(&TokenHash::from_bytes(bytes)), Some(&i));
        }
    }
}
