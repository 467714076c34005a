//! Sets of event types, possibly complemented, for the `evt.type` rule index.

use std::collections::BTreeSet;

/// A set of event types: either exactly these, or every type but these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeSet {
    /// Only these types.
    Only(BTreeSet<Box<str>>),
    /// Every type except these.
    AllBut(BTreeSet<Box<str>>),
}

impl TypeSet {
    /// Every type.
    pub fn all() -> TypeSet {
        TypeSet::AllBut(BTreeSet::new())
    }

    /// No type.
    pub fn none() -> TypeSet {
        TypeSet::Only(BTreeSet::new())
    }

    /// Exactly these types.
    pub fn only<'a>(types: impl IntoIterator<Item = &'a str>) -> TypeSet {
        TypeSet::Only(types.into_iter().map(Into::into).collect())
    }

    /// Whether every type is in the set.
    pub fn is_all(&self) -> bool {
        matches!(self, TypeSet::AllBut(s) if s.is_empty())
    }

    /// Whether `t` is in the set.
    pub fn contains(&self, t: &str) -> bool {
        match self {
            TypeSet::Only(s) => s.contains(t),
            TypeSet::AllBut(s) => !s.contains(t),
        }
    }

    /// The complement.
    pub fn complement(&self) -> TypeSet {
        match self {
            TypeSet::Only(s) => TypeSet::AllBut(s.clone()),
            TypeSet::AllBut(s) => TypeSet::Only(s.clone()),
        }
    }

    /// Intersection.
    pub fn intersect(&self, o: &TypeSet) -> TypeSet {
        use TypeSet::*;
        match (self, o) {
            (Only(a), Only(b)) => Only(a.intersection(b).cloned().collect()),
            (Only(a), AllBut(b)) | (AllBut(b), Only(a)) => Only(a.difference(b).cloned().collect()),
            (AllBut(a), AllBut(b)) => AllBut(a.union(b).cloned().collect()),
        }
    }

    /// Union.
    pub fn union(&self, o: &TypeSet) -> TypeSet {
        use TypeSet::*;
        match (self, o) {
            (Only(a), Only(b)) => Only(a.union(b).cloned().collect()),
            (Only(a), AllBut(b)) | (AllBut(b), Only(a)) => {
                AllBut(b.difference(a).cloned().collect())
            }
            (AllBut(a), AllBut(b)) => AllBut(a.intersection(b).cloned().collect()),
        }
    }

    /// The types named explicitly (included or excluded).
    pub fn named(&self) -> &BTreeSet<Box<str>> {
        match self {
            TypeSet::Only(s) | TypeSet::AllBut(s) => s,
        }
    }
}

impl std::fmt::Display for TypeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |s: &BTreeSet<Box<str>>| s.iter().map(|t| &**t).collect::<Vec<_>>().join(",");
        match self {
            t if t.is_all() => f.write_str("all"),
            TypeSet::Only(s) => write!(f, "{}", join(s)),
            TypeSet::AllBut(s) => write!(f, "all but {}", join(s)),
        }
    }
}
