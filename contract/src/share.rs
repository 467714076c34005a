//! Sharing equal values between events: [`Pool`] makes every equal long text, list and
//! label map point at one allocation, so the codec writes it once per batch by pointer
//! and copies are reference counts. (Text of up to 23 bytes is inline, nothing to share.)
//!
//! Events decoded from the wire already share; events built from JSON or by hand do not
//! until passed through [`crate::Event::share`].
//!
//! ```
//! use lanner_contract::{Event, share::Pool};
//! let mut pool = Pool::default();
//! let path = "/usr/lib/postgresql/16/bin/postgres";
//! let mut a = Event { proc_exe: Some(path.into()), ..Default::default() };
//! let mut b = Event { proc_exe: Some(path.into()), ..Default::default() };
//! assert_ne!(a.proc_exe.as_ref().unwrap().as_ptr(), b.proc_exe.as_ref().unwrap().as_ptr());
//! a.share(&mut pool);
//! b.share(&mut pool);
//! assert_eq!(a.proc_exe.as_ref().unwrap().as_ptr(), b.proc_exe.as_ref().unwrap().as_ptr());
//! ```

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use crate::model::{Labels, StrList, Text, U64List};
use crate::value::Timestamp;

/// Hashes pointer addresses (already well spread) with one multiply, and passes
/// content hashes (xxh3) through: for tables keyed by either.
#[derive(Default)]
pub struct PtrHasher(u64);

impl Hasher for PtrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        // Content hashes (xxh3) are already uniform.
        self.0 = v;
    }
    fn write_usize(&mut self, v: usize) {
        self.0 = (v as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
}

/// The longest text `smol_str` keeps inline (nothing to share).
const INLINE_TEXT: usize = 23;

/// Hashes each write at once with xxh3, seeded by the writes before it. The pool's keys
/// are texts and lists of texts, a few writes each, where xxh3's streaming state (which
/// buffers every write) cost more than the hashing.
#[derive(Default, Clone, Copy)]
pub(crate) struct WriteHasher(u64);

impl Hasher for WriteHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn write_u64(&mut self, i: u64) {
        let h = (self.0 ^ i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 32);
    }
}

/// How the pool hashes (also the JSON fast path's caches).
pub(crate) type Hashing = BuildHasherDefault<WriteHasher>;

/// Equal values seen so far.
#[derive(Default)]
pub struct Pool {
    texts: HashSet<Text, Hashing>,
    lists: HashSet<StrList, Hashing>,
    maps: HashSet<Labels, Hashing>,
}

impl Pool {
    /// Forgets everything (between batches, to bound memory).
    pub fn clear(&mut self) {
        self.texts.clear();
        self.lists.clear();
        self.maps.clear();
    }

    /// The pool's text equal to `s` (added when new); short text is inline, not pooled.
    pub(crate) fn text_from(&mut self, s: &str) -> Text {
        if s.len() <= INLINE_TEXT {
            return Text::from(s);
        }
        match self.texts.get(s) {
            Some(t) => t.clone(),
            None => {
                let t = Text::from(s);
                self.texts.insert(t.clone());
                t
            }
        }
    }

    /// The pool's list equal to `items` (taken from `items` when new), its texts
    /// already from the pool.
    pub(crate) fn list_from(&mut self, items: &mut Vec<Text>) -> StrList {
        match self.lists.get(&items[..]) {
            Some(l) => l.clone(),
            None => {
                let l: StrList = items.drain(..).collect();
                self.lists.insert(l.clone());
                l
            }
        }
    }

    fn text(&mut self, t: &mut Text) {
        if !t.is_heap_allocated() {
            return;
        }
        match self.texts.get(&**t) {
            Some(s) => *t = s.clone(),
            None => {
                self.texts.insert(t.clone());
            }
        }
    }
}

/// A field value that can be shared through a [`Pool`].
pub(crate) trait Share {
    fn share(&mut self, pool: &mut Pool);
}

impl Share for Text {
    fn share(&mut self, pool: &mut Pool) {
        pool.text(self);
    }
}

impl Share for StrList {
    fn share(&mut self, pool: &mut Pool) {
        if let Some(l) = pool.lists.get(self) {
            *self = l.clone();
            return;
        }
        let items: Vec<Text> = self
            .iter()
            .map(|t| {
                let mut t = t.clone();
                pool.text(&mut t);
                t
            })
            .collect();
        *self = items.into();
        pool.lists.insert(self.clone());
    }
}

impl Share for Labels {
    fn share(&mut self, pool: &mut Pool) {
        match pool.maps.get(self) {
            Some(m) => *self = m.clone(),
            None => {
                pool.maps.insert(self.clone());
            }
        }
    }
}

macro_rules! plain {
    ($($t:ty),*) => {$(
        impl Share for $t {
            fn share(&mut self, _: &mut Pool) {}
        }
    )*};
}

plain!(u64, i64, bool, Timestamp, IpAddr, U64List);
