//! Short texts as exact fixed-size keys, for caches in front of hash tables.
//!
//! Most texts of an event are short (names, types, users, ids, addresses): a text of
//! at most 24 bytes read as three words and its length makes a key that is equal
//! exactly when the texts are, compared in four word compares and hashed with one
//! multiply, where a hash table of texts costs a byte hash (xxh3), a probe and a
//! `memcmp`. The codec's writer and the archive's dictionary columns put a small
//! direct-mapped cache of such keys in front of their tables.

/// A text of at most 24 bytes as three words and its length: reading it this way takes
/// a few loads (overlapping ones for lengths between the word sizes), and two keys are
/// equal exactly when the texts are, since the length is part of the key.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub(crate) struct ShortKey {
    words: [u64; 3],
    len: u32,
}

impl ShortKey {
    /// The key of `b`, or `None` when it is longer than 24 bytes.
    #[inline]
    pub(crate) fn of(b: &[u8]) -> Option<ShortKey> {
        let n = b.len();
        let word = |at: usize| -> u64 {
            b.get(at..at + 8)
                .and_then(|s| <[u8; 8]>::try_from(s).ok())
                .map_or(0, u64::from_le_bytes)
        };
        let half = |at: usize| -> u64 {
            b.get(at..at + 4)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
                .map_or(0, |w| u64::from(u32::from_le_bytes(w)))
        };
        let byte = |at: usize| b.get(at).map_or(0, |&v| u64::from(v));
        let words = match n {
            0..4 => [
                byte(0) | byte(n / 2) << 8 | byte(n.wrapping_sub(1)) << 16,
                0,
                0,
            ],
            4..8 => [half(0) | half(n - 4) << 32, 0, 0],
            8..=16 => [word(0), word(n - 8), 0],
            17..=24 => [word(0), word(8), word(n - 8)],
            _ => return None,
        };
        Some(ShortKey {
            words,
            len: n as u32,
        })
    }

    /// A hash of the key (one multiply): take its high bits for a slot.
    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        let [a, b, c] = self.words;
        (a ^ b.rotate_left(21) ^ c.rotate_left(42) ^ u64::from(self.len))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Two texts of up to 24 bytes have equal keys exactly when they are equal: the
        /// second text is the first with at most one byte changed, so the pairs that
        /// differ in a single place (what a key that skips a byte would miss) are common.
        #[test]
        fn short_keys_are_equal_exactly_when_texts_are(
            a in proptest::prop_oneof![
                proptest::collection::vec(proptest::sample::select(vec![b'a', b'b']), 0..=8),
                proptest::collection::vec(proptest::sample::select(vec![b'a', b'b']), 0..=24),
            ],
            flip in proptest::option::of(proptest::prelude::any::<proptest::sample::Index>()),
        ) {
            let mut b = a.clone();
            if let Some(at) = flip.filter(|_| !b.is_empty()) {
                b[at.index(a.len())] ^= 1;
            }
            let (ka, kb) = (ShortKey::of(&a), ShortKey::of(&b));
            proptest::prop_assert!(ka.is_some() && kb.is_some());
            proptest::prop_assert_eq!(ka == kb, a == b);
        }
    }

    #[test]
    fn short_keys_reject_long_texts() {
        assert!(ShortKey::of(&[b'x'; 25]).is_none());
    }
}
