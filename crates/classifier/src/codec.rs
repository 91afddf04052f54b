//! The stored form of a model: a compact, versioned binary format.
//!
//! ```text
//! magic        8 bytes  "PCLBAYES"
//! version      u32 LE   1
//! spam         u64 LE   spam messages learned over the model's life
//! ham          u64 LE   ham messages learned over the model's life
//! spam weight  u64 LE   the same after aging (halving); at most `spam`
//! ham weight   u64 LE   the same after aging; at most `ham`
//! count        u32 LE   number of entries
//! entries      count ×  varint key delta (keys strictly increasing, the first
//!                       from 0), varint spam count, varint ham count
//! checksum     u64 LE   FNV-1a/splitmix64 of every byte before it
//! ```
//! Varints are LEB128 (7 bits a byte, low first). Sorted keys make the deltas
//! small, so an entry takes about 4 bytes; a million-feature model is about 4 MB.
//!
//! Standards: none (LEB128 as in DWARF and WebAssembly).
//!
//! Hostile input: the bytes come from the store, which a bug or an attacker with
//! disk access may have damaged. Every read is bounds-checked; the entry count is
//! checked against the bytes present before anything is allocated; varints longer
//! than their type are rejected; keys must strictly increase and never be 0; a
//! feature may not be counted in more messages than were learned; trailing bytes
//! and a wrong checksum are errors.

use crate::hash::mix;
use crate::table::{Counts, Entry, Table, MAX_COUNT};
use crate::{Model, ModelError};

const MAGIC: &[u8; 8] = b"PCLBAYES";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 8 * 4 + 4;
/// The smallest encoded entry: three one-byte varints.
const MIN_ENTRY_LEN: usize = 3;
/// Most entries a stored model may hold (far above any configured limit), so a
/// damaged count cannot make loading allocate without bound.
const MAX_ENTRIES: usize = 1 << 24;

fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn encode(model: &Model) -> Vec<u8> {
    let mut entries: Vec<Entry> = model
        .table
        .entries()
        // Features unlearned down to nothing carry no information.
        .filter(|e| e.counts.spam != 0 || e.counts.ham != 0)
        .collect();
    entries.sort_unstable_by_key(|e| e.key);
    let mut out = Vec::with_capacity(HEADER_LEN + entries.len() * 6 + 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&model.spam_messages.to_le_bytes());
    out.extend_from_slice(&model.ham_messages.to_le_bytes());
    out.extend_from_slice(&model.spam_weight.to_le_bytes());
    out.extend_from_slice(&model.ham_weight.to_le_bytes());
    // The table never holds more than u32::MAX entries (its size is capped far
    // below), so this does not truncate.
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    let mut prev = 0u32;
    for e in &entries {
        put_varint(&mut out, u64::from(e.key - prev));
        put_varint(&mut out, u64::from(e.counts.spam));
        put_varint(&mut out, u64::from(e.counts.ham));
        prev = e.key;
    }
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], ModelError> {
        let end = self.pos.checked_add(N).ok_or(ModelError::Truncated)?;
        let s = self.bytes.get(self.pos..end).ok_or(ModelError::Truncated)?;
        self.pos = end;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, ModelError> {
        self.take::<4>().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, ModelError> {
        self.take::<8>().map(u64::from_le_bytes)
    }

    /// A LEB128 varint that must fit in 32 bits.
    fn varint32(&mut self) -> Result<u32, ModelError> {
        let mut v: u64 = 0;
        for shift in (0..35).step_by(7) {
            let b = *self.bytes.get(self.pos).ok_or(ModelError::Truncated)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return u32::try_from(v)
                    .map_err(|_| ModelError::Malformed("a number does not fit in 32 bits".into()));
            }
        }
        Err(ModelError::Malformed("a number is too long".into()))
    }
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Model, ModelError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(ModelError::NotAModel);
    }
    if bytes.len() < HEADER_LEN + 8 {
        return Err(ModelError::Truncated);
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let mut r = Reader {
        bytes: body,
        pos: MAGIC.len(),
    };
    let version = r.u32()?;
    if version != VERSION {
        return Err(ModelError::UnsupportedVersion(version));
    }
    let mut stored_sum = [0u8; 8];
    stored_sum.copy_from_slice(sum);
    if u64::from_le_bytes(stored_sum) != checksum(body) {
        return Err(ModelError::Checksum);
    }
    let spam_messages = r.u64()?;
    let ham_messages = r.u64()?;
    let spam_weight = r.u64()?;
    let ham_weight = r.u64()?;
    if spam_weight > spam_messages || ham_weight > ham_messages {
        return Err(ModelError::Malformed(
            "more messages weigh than were learned".into(),
        ));
    }
    let count = r.u32()? as usize;
    let room = body.len() - r.pos;
    if count > MAX_ENTRIES || count > room / MIN_ENTRY_LEN {
        return Err(ModelError::Malformed(format!(
            "{count} entries cannot fit in {room} bytes"
        )));
    }
    let mut table = Table::with_room_for(count);
    let mut key = 0u32;
    for _ in 0..count {
        let delta = r.varint32()?;
        if delta == 0 {
            return Err(ModelError::Malformed(
                "feature keys are not strictly increasing".into(),
            ));
        }
        key = key
            .checked_add(delta)
            .ok_or_else(|| ModelError::Malformed("a feature key overflows".into()))?;
        let spam = r.varint32()?;
        let ham = r.varint32()?;
        if u64::from(spam) > spam_weight
            || u64::from(ham) > ham_weight
            || spam > MAX_COUNT
            || ham > MAX_COUNT
        {
            return Err(ModelError::Malformed(
                "a feature is counted in more messages than were learned".into(),
            ));
        }
        if spam == 0 && ham == 0 {
            return Err(ModelError::Malformed("a feature with no sightings".into()));
        }
        table.insert(Entry {
            key,
            counts: Counts { spam, ham },
        });
    }
    if r.pos != body.len() {
        return Err(ModelError::Malformed(format!(
            "{} bytes after the last entry",
            body.len() - r.pos
        )));
    }
    Ok(Model {
        spam_messages,
        ham_messages,
        spam_weight,
        ham_weight,
        table,
        settings: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::Features;
    use crate::Class;

    fn model() -> Model {
        let mut m = Model::new();
        for i in 0..60u32 {
            let spam = Features {
                keys: vec![2, 4, 1000 + 2 * i],
                markup_from: 3,
            };
            let ham = Features {
                keys: vec![2, 6, 100_000 + 2 * i],
                markup_from: 3,
            };
            m.learn_features(&spam, Class::Spam);
            m.learn_features(&ham, Class::Ham);
        }
        m
    }

    /// A stored model built by hand: the header fields, raw entry bytes, and a
    /// correct checksum (so the checks behind the checksum are reached).
    fn stored(counts: [u64; 4], n: u32, entries: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&VERSION.to_le_bytes());
        for c in counts {
            out.extend_from_slice(&c.to_le_bytes());
        }
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(entries);
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    #[test]
    fn entries_take_a_few_bytes_each() {
        let m = model();
        let bytes = encode(&m);
        // 123 features: keys 2, 4, 6 and 120 others.
        assert_eq!(m.feature_count(), 123);
        assert!(bytes.len() < HEADER_LEN + 8 + 123 * 6, "{}", bytes.len());
        assert_eq!(decode(&bytes).map(|d| encode(&d)), Ok(bytes));
    }

    #[test]
    fn every_truncation_and_every_flipped_bit_is_rejected() {
        let bytes = encode(&model());
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[i] ^= 1 << bit;
                assert!(decode(&damaged).is_err(), "byte {i} bit {bit}");
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(decode(b"").err(), Some(ModelError::NotAModel));
        assert_eq!(decode(b"GIF89a..").err(), Some(ModelError::NotAModel));
        // The old 16-byte form (two counters) is not a model either.
        assert_eq!(decode(&[0u8; 16]).err(), Some(ModelError::NotAModel));
        assert_eq!(decode(MAGIC).err(), Some(ModelError::Truncated));
        let mut future = encode(&model());
        future[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(
            decode(&future).err(),
            Some(ModelError::UnsupportedVersion(2))
        );
        let mut damaged = encode(&model());
        let last = damaged.len() - 9;
        damaged[last] ^= 0x40;
        assert_eq!(decode(&damaged).err(), Some(ModelError::Checksum));
    }

    #[test]
    fn well_summed_but_inconsistent_contents_are_rejected() {
        let malformed = |r: Result<Model, ModelError>| matches!(r, Err(ModelError::Malformed(_)));
        // A plausible model: one entry, key 5 seen in 1 spam and 1 ham.
        assert!(decode(&stored([3, 3, 3, 3], 1, &[5, 1, 1])).is_ok());
        // More entries announced than bytes could hold: refused before allocating.
        assert!(malformed(decode(&stored(
            [3, 3, 3, 3],
            u32::MAX,
            &[5, 1, 1]
        ))));
        // Keys not strictly increasing (a zero delta), or overflowing 32 bits.
        assert!(malformed(decode(&stored(
            [3, 3, 3, 3],
            2,
            &[5, 1, 1, 0, 1, 1]
        ))));
        let huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let mut two = vec![5, 1, 1];
        two.extend_from_slice(&huge);
        two.extend_from_slice(&[1, 1]);
        assert!(malformed(decode(&stored([3, 3, 3, 3], 2, &two))));
        // A varint longer than 32 bits.
        assert!(malformed(decode(&stored(
            [3, 3, 3, 3],
            1,
            &[0x80, 0x80, 0x80, 0x80, 0x80, 1, 1, 1]
        ))));
        // Counted in more messages than were learned, or in none.
        assert!(malformed(decode(&stored([3, 3, 3, 3], 1, &[5, 4, 1]))));
        assert!(malformed(decode(&stored([3, 3, 3, 3], 1, &[5, 0, 0]))));
        // Weights above the lifetime totals.
        assert!(malformed(decode(&stored([3, 3, 4, 3], 0, &[]))));
        // Bytes left over after the last entry.
        assert!(malformed(decode(&stored([3, 3, 3, 3], 1, &[5, 1, 1, 7]))));
    }
}
