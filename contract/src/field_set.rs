//! A set of stored fields, for reading only some of an event: a detector decodes the
//! fields its rules, outputs and policy read, and skips the rest (see
//! [`crate::codec::decode_batch_fields`]).
//!
//! ```
//! use lanner_contract::StoredField;
//! use lanner_contract::field_set::StoredFieldSet;
//!
//! let set = StoredFieldSet::from_fields([StoredField::proc_name, StoredField::evt_type]);
//! assert!(set.contains(StoredField::proc_name));
//! assert!(!set.contains(StoredField::fd_name));
//! ```

use crate::model::{ALL_STORED, StoredField};

/// A set of [`StoredField`]s (a bitmap over their registry order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredFieldSet {
    bits: Vec<u64>,
}

impl StoredFieldSet {
    /// The set of these fields.
    pub fn from_fields(fields: impl IntoIterator<Item = StoredField>) -> Self {
        let mut set = StoredFieldSet {
            bits: vec![0; ALL_STORED.len().div_ceil(64)],
        };
        for f in fields {
            set.insert(f);
        }
        set
    }

    /// Adds a field.
    pub fn insert(&mut self, field: StoredField) {
        let i = field as usize;
        if let Some(word) = self.bits.get_mut(i / 64) {
            *word |= 1 << (i % 64);
        }
    }

    /// Whether the set holds `field`.
    pub fn contains(&self, field: StoredField) -> bool {
        self.contains_index(field as usize)
    }

    /// Whether the set holds the field at registry index `i`.
    pub fn contains_index(&self, i: usize) -> bool {
        self.bits
            .get(i / 64)
            .is_some_and(|word| word & (1 << (i % 64)) != 0)
    }

    /// How many fields the set holds.
    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromIterator<StoredField> for StoredFieldSet {
    fn from_iter<I: IntoIterator<Item = StoredField>>(iter: I) -> Self {
        StoredFieldSet::from_fields(iter)
    }
}
