//! An index of entries by the second they expire, so that the in-memory stores drop expired
//! entries a few at a time as they are written to, never by walking a whole map under its lock.

use std::collections::BTreeMap;

use time::OffsetDateTime;

/// How many due keys one write may sweep, so that no single request pays for a large backlog
/// (20,000 requests made in one second expire in the same second). Sweeping more than it adds,
/// every write drains a backlog.
pub(crate) const SWEEP_BATCH: usize = 256;

/// Keys by the whole second at which they are due (rounded up, so a key is never due before
/// its entry expires).
///
/// A store pushes a key whenever it sets or moves an entry's expiry, and, for each key it pops,
/// checks the entry itself: one that was removed, or whose expiry moved later, is simply
/// skipped (a later push covers it).
#[derive(Debug)]
pub(crate) struct ExpiryQueue<K> {
    due: BTreeMap<i64, Vec<K>>,
    len: usize,
}

impl<K> Default for ExpiryQueue<K> {
    fn default() -> Self {
        Self {
            due: BTreeMap::new(),
            len: 0,
        }
    }
}

/// An instant as whole unix seconds, rounded up.
pub(crate) fn ceil_secs(at: OffsetDateTime) -> i64 {
    at.unix_timestamp()
        .saturating_add(i64::from(at.nanosecond() > 0))
}

impl<K> ExpiryQueue<K> {
    /// Remembers that `key` is due at `at`.
    pub(crate) fn push(&mut self, at: OffsetDateTime, key: K) {
        self.push_at(ceil_secs(at), key);
    }

    /// Remembers that `key` is due at the unix second `at`.
    pub(crate) fn push_at(&mut self, at: i64, key: K) {
        self.due.entry(at).or_default().push(key);
        self.len += 1;
    }

    /// Hands `f` up to `max` keys due at or before `now` (the earliest first), removing them
    /// from the queue. Answers how many were handed over.
    pub(crate) fn pop_due(&mut self, now: OffsetDateTime, max: usize, f: impl FnMut(K)) -> usize {
        self.pop_due_at(now.unix_timestamp(), max, f)
    }

    /// [`pop_due`](Self::pop_due) at the unix second `now`.
    pub(crate) fn pop_due_at(&mut self, now: i64, max: usize, mut f: impl FnMut(K)) -> usize {
        let mut popped = 0;
        while popped < max {
            let Some(mut bucket) = self.due.first_entry() else {
                break;
            };
            if *bucket.key() > now {
                break;
            }
            let keys = bucket.get_mut();
            while popped < max {
                let Some(key) = keys.pop() else { break };
                popped += 1;
                self.len -= 1;
                f(key);
            }
            if keys.is_empty() {
                bucket.remove();
            }
        }
        if self.len == 0 && !self.due.is_empty() {
            self.due.clear();
        }
        popped
    }

    /// When the earliest key is due, if any.
    pub(crate) fn earliest(&self) -> Option<i64> {
        self.due.keys().next().copied()
    }

    /// How many keys are queued (stale ones included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Gives back the memory of an emptied queue.
    pub(crate) fn shrink(&mut self) {
        if self.len == 0 {
            self.due = BTreeMap::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn keys_come_out_when_due_and_in_batches() {
        let mut q = ExpiryQueue::default();
        q.push(at(10), 'a');
        q.push(at(10), 'b');
        q.push(at(12), 'c');
        q.push(at(11) + time::Duration::milliseconds(1), 'd'); // due at 12, never before
        let mut out = Vec::new();
        assert_eq!(q.pop_due(at(9), 10, |k| out.push(k)), 0);
        assert_eq!(q.pop_due(at(11), 1, |k| out.push(k)), 1);
        assert_eq!(q.pop_due(at(11), 10, |k| out.push(k)), 1);
        out.sort_unstable();
        assert_eq!(out, vec!['a', 'b']);
        assert_eq!(q.earliest(), Some(12));
        assert_eq!(q.pop_due(at(12), 10, |k| out.push(k)), 2);
        assert_eq!(q.len(), 0);
        assert_eq!(q.earliest(), None);
    }
}
