//! The model's memory: for each hashed feature, in how many learned spam and ham
//! messages it appeared, in an open-addressing hash table (linear probing) of
//! 8-byte slots: a 32-bit key and two 16-bit counts. The slot is chosen from the
//! key's top bits (keys are hashes, so every bit is as good); a message's
//! lookups are issued in batches so that their cache misses overlap.
//!
//! Standards: none.
//!
//! Hostile input: keys come from hashed message tokens, so an attacker can choose
//! them only by brute force; the table never holds more entries than the model's
//! configured limit (the model prunes before that), growth doubles the size so
//! inserting costs amortised constant time, and a count that would pass 65535 is
//! reported so that the model halves every count (aging) instead of wrapping.

/// How often a feature was seen in learned spam and in learned ham.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub spam: u32,
    pub ham: u32,
}

/// One slot; `key == 0` marks it empty.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(8))]
struct Slot {
    key: u32,
    spam: u16,
    ham: u16,
}

/// A stored feature: key and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub key: u32,
    pub counts: Counts,
}

/// The most a count may hold.
pub(crate) const MAX_COUNT: u32 = u16::MAX as u32;
const MIN_BITS: u32 = 10;
const MAX_BITS: u32 = 30;
/// Lookups issued together so that their cache misses overlap.
const BATCH: usize = 16;

#[derive(Clone)]
pub(crate) struct Table {
    slots: Vec<Slot>,
    len: usize,
    bits: u32,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.len)
            .field("capacity", &self.slots.len())
            .finish()
    }
}

impl Default for Table {
    fn default() -> Self {
        Table::with_room_for(0)
    }
}

impl Table {
    /// A table that can hold `n` entries without growing.
    pub(crate) fn with_room_for(n: usize) -> Table {
        let mut bits = MIN_BITS;
        // Keep the load at or under 5/8: linear probing stays short.
        while bits < MAX_BITS && (1usize << bits) * 5 / 8 < n {
            bits += 1;
        }
        Table {
            slots: vec![Slot::default(); 1usize << bits],
            len: 0,
            bits,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn home(&self, key: u32) -> usize {
        (key >> (32 - self.bits)) as usize
    }

    /// The slot holding `key`, or the empty slot where it would go.
    #[inline]
    fn find(&self, key: u32) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        // The load factor guarantees an empty slot, so this ends.
        loop {
            let k = self.slots[i].key;
            if k == key || k == 0 {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: u32) -> Option<Counts> {
        let s = &self.slots[self.find(key)];
        (s.key != 0).then_some(Counts {
            spam: u32::from(s.spam),
            ham: u32::from(s.ham),
        })
    }

    /// Calls `each` with the counts of every key present, in order. Batches
    /// the first probe of several keys so the memory loads run in parallel.
    pub(crate) fn get_each(&self, keys: &[u32], mut each: impl FnMut(u32, Counts)) {
        for batch in keys.chunks(BATCH) {
            let mut first = [0u32; BATCH];
            for (f, &k) in first.iter_mut().zip(batch) {
                // Independent loads: the CPU keeps them all in flight.
                *f = self.slots[self.home(k)].key;
            }
            for (&f, &k) in first.iter().zip(batch) {
                if f == 0 {
                    continue;
                }
                if let Some(c) = self.get(k) {
                    each(k, c);
                }
            }
        }
    }

    /// Adds one sighting of `key` in a spam (`spam == true`) or ham message.
    /// Returns true when the count reached [`MAX_COUNT`] (the caller halves).
    pub(crate) fn add(&mut self, key: u32, spam: bool) -> bool {
        debug_assert!(key != 0);
        self.make_room();
        let i = self.find(key);
        let s = &mut self.slots[i];
        if s.key == 0 {
            s.key = key;
            self.len += 1;
        }
        let c = if spam { &mut s.spam } else { &mut s.ham };
        *c = c.saturating_add(1);
        *c == u16::MAX
    }

    /// Removes one sighting of `key` (a message learned in the wrong class).
    /// An entry left at zero stays until the next rebuild; it reads as unknown.
    pub(crate) fn remove_one(&mut self, key: u32, spam: bool) {
        let i = self.find(key);
        let s = &mut self.slots[i];
        if s.key == 0 {
            return;
        }
        let c = if spam { &mut s.spam } else { &mut s.ham };
        *c = c.saturating_sub(1);
    }

    /// Inserts a whole entry (loading a stored model). Returns false when the key
    /// is already present.
    pub(crate) fn insert(&mut self, entry: Entry) -> bool {
        self.make_room();
        let i = self.find(entry.key);
        let s = &mut self.slots[i];
        if s.key != 0 {
            return false;
        }
        *s = Slot {
            key: entry.key,
            spam: entry.counts.spam.min(MAX_COUNT) as u16,
            ham: entry.counts.ham.min(MAX_COUNT) as u16,
        };
        self.len += 1;
        true
    }

    fn make_room(&mut self) {
        if (self.len + 1) * 8 > self.slots.len() * 5 && self.bits < MAX_BITS {
            let mut bigger = Table {
                slots: vec![Slot::default(); self.slots.len() * 2],
                len: 0,
                bits: self.bits + 1,
            };
            for e in self.entries() {
                bigger.insert(e);
            }
            *self = bigger;
        }
    }

    /// Every entry, in table order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.slots.iter().filter(|s| s.key != 0).map(|s| Entry {
            key: s.key,
            counts: Counts {
                spam: u32::from(s.spam),
                ham: u32::from(s.ham),
            },
        })
    }

    /// Keeps only the entries `keep` accepts (and that still count something),
    /// rebuilt into a table sized for them.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        let kept: Vec<Entry> = self
            .entries()
            .filter(|e| (e.counts.spam != 0 || e.counts.ham != 0) && keep(e))
            .collect();
        let mut t = Table::with_room_for(kept.len());
        for e in kept {
            t.insert(e);
        }
        *self = t;
    }

    /// Halves every count, rounding down; entries left at zero go.
    pub(crate) fn halve(&mut self) {
        for s in self.slots.iter_mut().filter(|s| s.key != 0) {
            s.spam /= 2;
            s.ham /= 2;
        }
        self.retain(|_| true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys spread over the top bits, as hashed keys are.
    fn key(k: u32) -> u32 {
        k.wrapping_mul(0x9e37_79b1) | 1
    }

    #[test]
    fn counts_accumulate_per_class_and_survive_growth() {
        let mut t = Table::default();
        for k in 1..=5000u32 {
            t.add(key(k), true);
            if k % 2 == 0 {
                t.add(key(k), false);
            }
        }
        assert_eq!(t.len(), 5000);
        assert_eq!(t.get(key(2)), Some(Counts { spam: 1, ham: 1 }));
        assert_eq!(t.get(key(3)), Some(Counts { spam: 1, ham: 0 }));
        assert_eq!(t.get(key(6001)), None);
        let mut seen = Vec::new();
        t.get_each(&[key(2), key(6001), key(3)], |_, c| seen.push(c));
        assert_eq!(
            seen,
            [Counts { spam: 1, ham: 1 }, Counts { spam: 1, ham: 0 }]
        );
    }

    #[test]
    fn a_saturating_count_is_reported_and_halving_ages_everything() {
        let mut t = Table::default();
        let mut saturated = false;
        for _ in 0..MAX_COUNT {
            saturated = t.add(key(1), true);
        }
        assert!(saturated);
        assert!(!t.add(key(2), false));
        t.halve();
        assert_eq!(
            t.get(key(1)),
            Some(Counts {
                spam: MAX_COUNT / 2,
                ham: 0
            })
        );
        // 1 halves to 0: the entry is gone.
        assert_eq!(t.get(key(2)), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn retain_and_unlearn_drop_entries() {
        let mut t = Table::default();
        for k in 1..=100u32 {
            t.add(key(k), k % 2 == 0);
        }
        t.retain(|e| e.counts.spam > 0);
        assert_eq!(t.len(), 50);
        assert_eq!(t.get(key(1)), None);
        t.remove_one(key(2), true);
        assert_eq!(t.get(key(2)), Some(Counts { spam: 0, ham: 0 }));
        t.retain(|_| true);
        assert_eq!(t.get(key(2)), None);
        assert_eq!(t.len(), 49);
    }
}
