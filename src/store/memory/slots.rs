//! [`SlotTable`]: an open-addressing table of cache-line slots keyed by a SHA-256 digest, for the
//! token store, where a lookup in a table far larger than any cache is one line read from memory.
//!
//! A general hash map keeps its control bytes apart from its entries, so a lookup that misses the
//! cache misses twice: once on the control bytes, once on the entry. Here a slot holds its digest
//! and its value in one 64-byte line, and a digest's home is read from the digest itself, so a
//! lookup reads the home line and, rarely, the lines after it.
//!
//! Collisions are resolved by linear probing, removal by backward shifting (no tombstones), and
//! the table grows at three quarters full, so a probe always ends at an empty slot.
//!
//! The keys are digests of values the server generated from its CSPRNG, so no one can choose
//! what is inserted, or crowd one part of the table. Someone presenting made-up tokens can
//! choose where a lookup starts (by trying values until a digest's low bits fall where they
//! want), but not what lies there: a lookup costs at most the run of filled slots it lands in,
//! and at three quarters full at most those runs are short. Digests are compared with `==`: a lookup's timing depends on the digest anyway (which line it
//! reads), and at most it could tell how many leading bytes of a SHA-256 output agree with a
//! stored one, which gives no help in finding a value that hashes to it.

use super::digest::digest_word;
use crate::token::TokenHash;

/// Whatever a slot holds beside its digest.
pub(crate) trait Keyed {
    /// The digest the value is filed under.
    fn key(&self) -> &TokenHash;
}

/// A table of `T`s by digest. `T` should be one cache line (64 bytes, 64-aligned) with a niche,
/// so that a slot is one line too.
pub(crate) struct SlotTable<T> {
    slots: Vec<Option<T>>,
    len: usize,
}

impl<T> Default for SlotTable<T> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            len: 0,
        }
    }
}

/// The smallest table has this many slots.
const MIN_SLOTS: usize = 16;

/// Where a digest's probe starts: its first eight bytes (a digest is uniform), masked.
fn home(key: &TokenHash, mask: usize) -> usize {
    // Truncating on 32-bit targets keeps the low bits, which is all the mask takes.
    (digest_word(key.as_bytes(), 0) as usize) & mask
}

/// The fewest slots that hold `len` values at most three quarters full.
fn slots_for(len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    len.saturating_mul(4)
        .div_ceil(3)
        .max(MIN_SLOTS)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX / 2 + 1)
}

impl<T: Keyed> SlotTable<T> {
    /// How many values the table holds.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many slots it has.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The index of `key`'s slot, if it is there.
    fn position(&self, key: &TokenHash) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = home(key, mask);
        // The table is never full, so the run ends at an empty slot.
        loop {
            match self.slots.get(i)? {
                None => return None,
                Some(value) if value.key().as_bytes() == key.as_bytes() => return Some(i),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    /// The value under `key`.
    pub(crate) fn get(&self, key: &TokenHash) -> Option<&T> {
        let i = self.position(key)?;
        self.slots.get(i)?.as_ref()
    }

    /// Files `value` under its digest; answers what it replaced.
    pub(crate) fn replace(&mut self, value: T) -> Option<T> {
        if self.slots.is_empty() {
            self.resize(MIN_SLOTS);
        }
        let grow = (self.len + 1).saturating_mul(4) > self.slots.len().saturating_mul(3);
        let mask = self.mask();
        let mut i = home(value.key(), mask);
        // The mask keeps `i` within the slots, so the lookup always finds one.
        while let Some(slot) = self.slots.get_mut(i) {
            match slot {
                Some(old) if old.key().as_bytes() == value.key().as_bytes() => {
                    return Some(std::mem::replace(old, value));
                }
                Some(_) => i = (i + 1) & mask,
                // A new value: the table grows first if it would be more than three quarters
                // full (a replacement never grows it).
                None if grow => {
                    self.resize(slots_for(self.len + 1));
                    return self.replace(value);
                }
                None => {
                    *slot = Some(value);
                    self.len += 1;
                    return None;
                }
            }
        }
        None
    }

    /// Takes the value under `key` out of the table.
    pub(crate) fn take(&mut self, key: &TokenHash) -> Option<T> {
        let mut hole = self.position(key)?;
        let taken = self.slots.get_mut(hole)?.take();
        self.len -= 1;
        // Backward shift: every value after the hole, up to the next empty slot, that may sit in
        // the hole (its home is not between the hole and where it is) moves into it, leaving a
        // hole where it was. Every probe run stays unbroken.
        let mask = self.mask();
        let mut j = (hole + 1) & mask;
        while let Some(Some(value)) = self.slots.get(j) {
            let from_home = j.wrapping_sub(home(value.key(), mask)) & mask;
            let from_hole = j.wrapping_sub(hole) & mask;
            if from_home >= from_hole {
                let moved = self.slots.get_mut(j).and_then(Option::take);
                if let Some(to) = self.slots.get_mut(hole) {
                    *to = moved;
                }
                hole = j;
            }
            j = (j + 1) & mask;
        }
        taken
    }

    /// Every value, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }

    /// Gives back what the table does not need for its values.
    pub(crate) fn shrink_to_fit(&mut self) {
        let want = slots_for(self.len);
        if want < self.slots.len() {
            self.resize(want);
        }
    }

    /// Shrinks the table once most of it has gone.
    pub(crate) fn shrink_if_sparse(&mut self) {
        if self.slots.len() > 1024 && self.len < self.slots.len() / 8 {
            self.shrink_to_fit();
        }
    }

    fn resize(&mut self, slots: usize) {
        let old = std::mem::take(&mut self.slots);
        self.slots.resize_with(slots, || None);
        self.len = 0;
        let mask = self.mask();
        for value in old.into_iter().flatten() {
            // The values are distinct and the new table has room: each goes to the first empty
            // slot of its run, with no comparing and no check for growth.
            let mut i = home(value.key(), mask);
            while let Some(Some(_)) = self.slots.get(i) {
                i = (i + 1) & mask;
            }
            if let Some(slot) = self.slots.get_mut(i) {
                *slot = Some(value);
                self.len += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[derive(Debug, PartialEq)]
    struct Item(TokenHash, u32);

    impl Keyed for Item {
        fn key(&self) -> &TokenHash {
            &self.0
        }
    }

    /// A digest whose home in any table is `home`, told apart by `tag`.
    fn key(home: u64, tag: u8) -> TokenHash {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&home.to_le_bytes());
        bytes[8] = tag;
        TokenHash::from_bytes(bytes)
    }

    #[test]
    fn values_are_found_replaced_and_taken() {
        let mut table = SlotTable::default();
        assert!(table.get(&key(1, 0)).is_none());
        assert!(table.take(&key(1, 0)).is_none());
        assert_eq!(table.replace(Item(key(1, 0), 1)), None);
        assert_eq!(table.replace(Item(key(1, 0), 2)), Some(Item(key(1, 0), 1)));
        assert_eq!(table.len(), 1);
        assert_eq!(table.get(&key(1, 0)).map(|i| i.1), Some(2));
        assert_eq!(table.take(&key(1, 0)), Some(Item(key(1, 0), 2)));
        assert!(table.is_empty());
    }

    #[test]
    fn colliding_runs_survive_removals_anywhere_and_wrap_around() {
        // Keys crowding the last slots wrap to the first; every removal order must leave every
        // other key findable.
        for remove_at in 0..12 {
            let mut table = SlotTable::default();
            let keys: Vec<TokenHash> = (0..12u8)
                .map(|t| key(if t % 3 == 0 { 13 } else { 15 }, t))
                .collect();
            for (n, k) in keys.iter().enumerate() {
                table.replace(Item(*k, n as u32));
            }
            assert_eq!(table.capacity(), 16);
            assert!(table.take(&keys[remove_at]).is_some());
            for (n, k) in keys.iter().enumerate() {
                let found = table.get(k).map(|i| i.1);
                let expected = (n != remove_at).then_some(n as u32);
                assert_eq!(found, expected, "removed {remove_at}, looked for {n}");
            }
        }
    }

    #[test]
    fn it_agrees_with_a_map_through_growth_and_shrinking() {
        let mut table = SlotTable::default();
        let mut model = HashMap::new();
        // A fixed pseudo-random walk of inserts, replacements and removals.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for step in 0..20_000u32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Mostly few homes, so runs collide often; now and then any home at all.
            let home = if state.is_multiple_of(7) {
                state >> 3
            } else {
                state % 4096
            };
            let k = key(home, (state >> 40) as u8 % 4);
            if state % 5 < 3 {
                assert_eq!(
                    table.replace(Item(k, step)).map(|i| i.1),
                    model.insert(*k.as_bytes(), step)
                );
            } else {
                assert_eq!(table.take(&k).map(|i| i.1), model.remove(k.as_bytes()));
            }
            assert_eq!(table.len(), model.len());
            assert!(table.len() * 4 <= table.capacity() * 3);
        }
        for (k, v) in &model {
            assert_eq!(table.get(&TokenHash::from_bytes(*k)).map(|i| i.1), Some(*v));
        }
        assert_eq!(table.iter().count(), model.len());
        let keys: Vec<[u8; 32]> = model.keys().copied().collect();
        for k in keys.iter().skip(10) {
            table.take(&TokenHash::from_bytes(*k));
        }
        table.shrink_to_fit();
        assert_eq!(table.capacity(), 16);
        assert_eq!(table.len(), keys.len().min(10));
        for k in keys.iter().take(10) {
            assert!(table.get(&TokenHash::from_bytes(*k)).is_some());
        }
    }

    #[test]
    fn it_grows_past_three_quarters_for_a_new_value_only() {
        let mut table = SlotTable::default();
        for t in 0..12u8 {
            table.replace(Item(key(u64::from(t), t), 0));
        }
        assert_eq!(table.capacity(), 16);
        // Three quarters full: a replacement keeps the table as it is, a new value doubles it.
        assert!(table.replace(Item(key(5, 5), 1)).is_some());
        assert_eq!(table.capacity(), 16);
        assert!(table.replace(Item(key(12, 12), 0)).is_none());
        assert_eq!(table.capacity(), 32);
        assert_eq!(table.len(), 13);
        assert_eq!(table.get(&key(5, 5)).map(|i| i.1), Some(1));
    }

    #[test]
    fn an_empty_table_holds_no_memory() {
        let mut table = SlotTable::default();
        table.replace(Item(key(3, 0), 0));
        table.take(&key(3, 0));
        table.shrink_to_fit();
        assert_eq!(table.capacity(), 0);
        assert!(table.get(&key(3, 0)).is_none());
    }
}
