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
use std::net::IpAddr;

use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use crate::model::{Labels, StrList, Text, U64List};
use crate::value::Timestamp;

/// Equal values seen so far.
#[derive(Default)]
pub struct Pool {
    texts: HashSet<Text, Xxh3DefaultBuilder>,
    lists: HashSet<StrList, Xxh3DefaultBuilder>,
    maps: HashSet<Labels, Xxh3DefaultBuilder>,
}

impl Pool {
    /// Forgets everything (between batches, to bound memory).
    pub fn clear(&mut self) {
        self.texts.clear();
        self.lists.clear();
        self.maps.clear();
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
