//! Object names derived from the consumed stream sequences:
//! `<stream epoch>-<first seq>-<last seq>-<hash of the exact set>.parquet`, sequences
//! zero-padded to 20 digits so names sort by sequence.
//!
//! The stream epoch (its creation time, unix seconds) keeps a recreated stream, whose
//! sequences start again at 1, from colliding with the files of the old one.

use crate::seqset::SeqSet;

/// The parts of a data file's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileName {
    /// Creation time of the input stream, unix seconds.
    pub epoch: u64,
    /// First stream sequence held.
    pub first: u64,
    /// Last stream sequence held.
    pub last: u64,
    /// Hash of the exact sequence set ([`SeqSet::hash`]).
    pub hash: u64,
}

impl FileName {
    /// The name of a file holding `seqs` from a stream created at `epoch`.
    pub fn for_seqs(epoch: u64, seqs: &SeqSet) -> Self {
        FileName {
            epoch,
            first: seqs.first().unwrap_or(0),
            last: seqs.last().unwrap_or(0),
            hash: seqs.hash(),
        }
    }

    /// Parses a file name (the last path segment); `None` for other files.
    pub fn parse(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(".parquet")?;
        let mut parts = stem.split('-');
        let epoch = parts.next()?.parse().ok()?;
        let first = parts.next()?.parse().ok()?;
        let last = parts.next()?.parse().ok()?;
        let hash = u64::from_str_radix(parts.next()?, 16).ok()?;
        if parts.next().is_some() || last < first {
            return None;
        }
        Some(FileName {
            epoch,
            first,
            last,
            hash,
        })
    }

    /// Whether `seq` of the stream created at `epoch` may be in this file.
    pub fn may_hold(&self, epoch: u64, seq: u64) -> bool {
        self.epoch == epoch && self.first <= seq && seq <= self.last
    }
}

impl std::fmt::Display for FileName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{:020}-{:020}-{:016x}.parquet",
            self.epoch, self.first, self.last, self.hash
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_sequence() {
        let a = FileName::for_seqs(1700000000, &SeqSet::from_iter([5, 7, 9]));
        let b = FileName::for_seqs(1700000000, &SeqSet::from_iter([10, 11]));
        assert_eq!(FileName::parse(&a.to_string()), Some(a));
        assert!(a.to_string() < b.to_string());
        assert!(a.may_hold(1700000000, 6) && !a.may_hold(1700000000, 10) && !a.may_hold(1, 6));
        assert_eq!(FileName::parse("notes.txt"), None);
        assert_eq!(FileName::parse("1-2-1-ff.parquet"), None);
    }
}
