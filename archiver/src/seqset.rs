//! The set of stream sequences a file holds, stored in its metadata as ranges
//! (`1-5,7,9-12`) and hashed into its object name.

use std::fmt;

/// A sorted set of stream sequences without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeqSet(Vec<u64>);

/// A sequence set text that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid sequence set {text:?}: {reason}")]
pub struct SeqSetError {
    text: String,
    reason: &'static str,
}

impl FromIterator<u64> for SeqSet {
    /// Builds a set from any sequences (sorted and de-duplicated here).
    fn from_iter<I: IntoIterator<Item = u64>>(seqs: I) -> Self {
        let mut v: Vec<u64> = seqs.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        SeqSet(v)
    }
}

impl SeqSet {
    /// Whether `seq` is in the set.
    pub fn contains(&self, seq: u64) -> bool {
        self.0.binary_search(&seq).is_ok()
    }

    /// Smallest sequence.
    pub fn first(&self) -> Option<u64> {
        self.0.first().copied()
    }

    /// Largest sequence.
    pub fn last(&self) -> Option<u64> {
        self.0.last().copied()
    }

    /// Number of sequences.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The sequences in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().copied()
    }

    /// The union of two sets.
    pub fn union(&self, other: &SeqSet) -> SeqSet {
        SeqSet::from_iter(self.iter().chain(other.iter()))
    }

    /// Whether the two sets share a sequence.
    pub fn intersects(&self, other: &SeqSet) -> bool {
        other.iter().any(|s| self.contains(s))
    }

    /// A stable 64-bit hash of the set (of its range text).
    pub fn hash(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(self.to_string().as_bytes())
    }

    /// Parses the range text written by [`fmt::Display`].
    pub fn parse(text: &str) -> Result<Self, SeqSetError> {
        let err = |reason| SeqSetError {
            text: text.chars().take(80).collect(),
            reason,
        };
        let mut v = Vec::new();
        if text.is_empty() {
            return Ok(SeqSet(v));
        }
        for part in text.split(',') {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a, b),
                None => (part, part),
            };
            let a: u64 = a.parse().map_err(|_| err("not a number"))?;
            let b: u64 = b.parse().map_err(|_| err("not a number"))?;
            if b < a || v.last().is_some_and(|&l| a <= l) {
                return Err(err("ranges out of order"));
            }
            if b - a > 100_000_000 {
                return Err(err("range too large"));
            }
            v.extend(a..=b);
        }
        Ok(SeqSet(v))
    }
}

impl fmt::Display for SeqSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut i = 0;
        let mut first = true;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_round_trip() {
        let s = SeqSet::from_iter([9, 1, 2, 3, 5, 10, 11, 12, 3]);
        assert_eq!(s.to_string(), "1-3,5,9-12");
        assert_eq!(SeqSet::parse("1-3,5,9-12").expect("parses"), s);
        assert!(s.contains(10) && !s.contains(4));
        assert_eq!((s.first(), s.last(), s.len()), (Some(1), Some(12), 8));
        assert_eq!(SeqSet::parse("").expect("empty"), SeqSet::default());
    }

    #[test]
    fn bad_text_is_an_error() {
        for bad in ["x", "3-1", "5,4", "1-2,2", "1,,2"] {
            assert!(SeqSet::parse(bad).is_err(), "{bad}");
        }
    }
}
