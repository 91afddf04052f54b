//! Stable hashing of tokens to integers. A stored model outlives the program that
//! wrote it, so the hash must never change between builds, platforms or Rust
//! versions: it is written out here (FNV-1a over the bytes, finished with the
//! splitmix64 mixer) instead of using `std::hash`, whose algorithm is unspecified.
//!
//! Standards: none (FNV-1a and splitmix64 are public-domain algorithms).
//!
//! Hostile input: a token's bytes are hashed one at a time in constant memory; the
//! callers bound how many bytes a token may contribute.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The splitmix64 finaliser: spreads every input bit over the whole output, so the
/// top bits (which pick a table slot) are as good as the low ones.
#[inline]
pub(crate) const fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The seed of a token namespace (`"s"` for Subject words, `"url"` for link
/// hosts...), computed at compile time from its name.
pub(crate) const fn namespace(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut h = FNV_OFFSET;
    let mut i = 0;
    while i < bytes.len() {
        h = (h ^ bytes[i] as u64).wrapping_mul(FNV_PRIME);
        i += 1;
    }
    mix(h)
}

/// Hashes one token, fed a byte or a character at a time, lowercasing as it goes
/// so that no lowercased copy of the token is ever allocated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenHasher {
    state: u64,
}

impl TokenHasher {
    #[inline]
    pub(crate) fn new(namespace: u64) -> TokenHasher {
        TokenHasher {
            state: FNV_OFFSET ^ namespace,
        }
    }

    #[inline]
    pub(crate) fn byte(&mut self, b: u8) {
        self.state = (self.state ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }

    #[inline]
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    /// Feeds a string's lowercase form.
    #[inline]
    pub(crate) fn lower_str(&mut self, s: &str) {
        for c in s.chars() {
            self.lower_char(c);
        }
    }

    /// Feeds a character's lowercase form (Unicode lowercase mapping; ASCII takes
    /// the fast path).
    #[inline]
    pub(crate) fn lower_char(&mut self, c: char) {
        if c.is_ascii() {
            self.byte((c as u8).to_ascii_lowercase());
        } else {
            let mut buf = [0u8; 4];
            for l in c.to_lowercase() {
                self.bytes(l.encode_utf8(&mut buf).as_bytes());
            }
        }
    }

    /// The token's hash; its lowest bit is 0, marking a single token.
    #[inline]
    pub(crate) fn finish(self) -> u64 {
        mix(self.state) & !1
    }
}

/// Hashes a whole string, lowercased, in a namespace.
#[inline]
pub(crate) fn token(namespace: u64, s: &str) -> u64 {
    let mut h = TokenHasher::new(namespace);
    h.lower_str(s);
    h.finish()
}

/// Combines two token hashes and their distance into the hash of an orthogonal
/// sparse bigram. Order matters: (a, b) and (b, a) differ. Its lowest bit is 1,
/// marking a pair, so the model can weigh pairs apart from single tokens.
#[inline]
pub(crate) fn pair(first: u64, second: u64, distance: u64) -> u64 {
    mix(first.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ second.rotate_left(23) ^ distance) | 1
}

/// Whether a feature key is an OSB pair (see [`pair`]).
#[inline]
pub(crate) fn is_pair(key: u32) -> bool {
    key & 1 == 1
}

/// Folds a 64-bit hash to the 32-bit feature key the model stores, keeping the
/// pair bit; 0 is kept free to mark an empty table slot.
#[inline]
pub(crate) fn feature_key(h: u64) -> u32 {
    let k = (((h >> 32) as u32 ^ h as u32) & !1) | (h as u32 & 1);
    if k == 0 {
        2
    } else {
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_across_builds() {
        // Pinned values, computed apart (a few lines of Python doing FNV-1a and
        // splitmix64): a change here silently invalidates every stored model.
        let h = token(namespace("w"), "viagra");
        assert_eq!(h, 0x6faa_3a99_81e4_1d42);
        assert_eq!(feature_key(h), 0xee4e_27da);
        assert!(!is_pair(feature_key(h)));
        assert!(is_pair(feature_key(pair(h, h, 1))));
    }

    #[test]
    fn lowercasing_is_unicode_aware() {
        let ns = namespace("w");
        assert_eq!(token(ns, "ÉTÉ"), token(ns, "été"));
        assert_eq!(token(ns, "ΣΟΦΊΑ"), token(ns, "σοφία"));
        assert_ne!(token(ns, "ete"), token(ns, "été"));
    }

    #[test]
    fn namespaces_and_pair_order_separate_features() {
        assert_ne!(token(namespace("w"), "free"), token(namespace("s"), "free"));
        let (a, b) = (token(0, "a"), token(0, "b"));
        assert_ne!(pair(a, b, 1), pair(b, a, 1));
        assert_ne!(pair(a, b, 1), pair(a, b, 2));
    }
}
