//! Decoded batches whose events are reused from one batch to the next.
//!
//! An [`Event`] is a large record (one slot per field), and a stage that decodes a
//! batch into fresh events, then drops them, spends more on building and dropping them
//! than on decoding: every slot is written, every slot's drop is checked, and a new
//! batch's megabyte is fresh memory the kernel has to zero. A [`BatchPool`] keeps the
//! events of batches that were dropped and decodes the next batch into them, touching
//! only the fields it keeps ([`codec::decode_batch_fields`]'s `keep`). Results are the
//! same as [`codec::decode_batch`] / [`codec::decode_batch_fields`] (a property test
//! checks it).
//!
//! ```
//! use std::sync::Arc;
//! use lanner_contract::{Event, batch_pool::BatchPool, codec};
//!
//! let pool = Arc::new(BatchPool::new(4));
//! let ev = Event { evt_type: Some("openat".into()), ..Default::default() };
//! let bytes = codec::encode_batch(std::slice::from_ref(&ev));
//! let batch = pool.decode(&bytes, None).unwrap();
//! assert_eq!(&batch[..], &[ev][..]);
//! drop(batch); // its events go back to the pool for the next batch
//! ```

use std::ops::Deref;
use std::sync::{Arc, Mutex};

use crate::codec::{self, CodecError};
use crate::field_set::StoredFieldSet;
use crate::model::Event;

/// Events kept for reuse, and the fields they were decoded with.
#[derive(Debug, Default)]
struct Buffer {
    events: Vec<Event>,
    keep: Option<StoredFieldSet>,
}

/// A pool of decoded batches' events; see the module docs.
#[derive(Debug)]
pub struct BatchPool {
    free: Mutex<Vec<Buffer>>,
    max: usize,
}

/// A decoded batch: its events, which go back to the pool when it is dropped.
#[derive(Debug)]
pub struct PooledBatch {
    buffer: Buffer,
    len: usize,
    pool: Arc<BatchPool>,
}

impl BatchPool {
    /// A pool that keeps the events of up to `max` batches.
    pub fn new(max: usize) -> Self {
        BatchPool {
            free: Mutex::new(Vec::new()),
            max,
        }
    }

    /// Decodes a batch (all fields with `keep = None`, else only those in `keep`, as
    /// [`codec::decode_batch_fields`] does) into events of an earlier batch if one is
    /// free. Rejects exactly what [`codec::decode_batch`] rejects.
    pub fn decode(
        self: &Arc<Self>,
        bytes: &[u8],
        keep: Option<&StoredFieldSet>,
    ) -> Result<PooledBatch, CodecError> {
        let mut buffer = self.take();
        if buffer.keep.as_ref() != keep {
            // Decoded with other fields: those it holds outside `keep` would stay.
            buffer.events.clear();
            buffer.keep = keep.cloned();
        }
        let len = codec::decode_reusing(bytes, keep, &mut buffer.events);
        let mut batch = PooledBatch {
            buffer,
            len: 0,
            pool: self.clone(),
        };
        // On an error the events go back to the pool: each is reset field by field
        // when next decoded into, like any other.
        batch.len = len?;
        Ok(batch)
    }

    fn take(&self) -> Buffer {
        let mut free = match self.free.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        free.pop().unwrap_or_default()
    }

    fn give_back(&self, buffer: Buffer) {
        let mut free = match self.free.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if free.len() < self.max {
            free.push(buffer);
        }
    }
}

impl Deref for PooledBatch {
    type Target = [Event];

    fn deref(&self) -> &[Event] {
        &self.buffer.events[..self.len]
    }
}

impl Drop for PooledBatch {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buffer));
    }
}
