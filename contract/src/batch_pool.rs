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
    /// Each event's index in its batch, when only some were decoded.
    positions: Vec<u32>,
    /// Events in the batch, decoded or not.
    batch_events: usize,
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
        buffer.positions.clear();
        buffer.batch_events = 0;
        let len = codec::decode_reusing(bytes, keep, &mut buffer.events);
        let mut batch = PooledBatch {
            buffer,
            len: 0,
            pool: self.clone(),
        };
        // On an error the events go back to the pool: each is reset field by field
        // when next decoded into, like any other.
        batch.len = len?;
        batch.buffer.batch_events = batch.len;
        Ok(batch)
    }

    /// [`BatchPool::decode`] keeping only the events whose type `wanted` accepts, as a
    /// reader does that has nothing to do with the others (a detector whose rules match
    /// no such type, as Falco only follows the syscalls its rules need). The others are
    /// read up to their type and stepped over by their length, so skipping one costs a
    /// small part of decoding it. The batch's [`PooledBatch::position`] gives each
    /// event's index in the message. Rejects what [`codec::decode_batch`] rejects, but
    /// for damage inside an event stepped over (see `codec::decode_reusing_wanted`).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use lanner_contract::{Event, batch_pool::BatchPool, codec};
    ///
    /// let pool = Arc::new(BatchPool::new(2));
    /// let ev = |t: &str| Event { evt_type: Some(t.into()), ..Default::default() };
    /// let bytes = codec::encode_batch(&[ev("clone"), ev("openat"), ev("mmap")]);
    /// let batch = pool.decode_wanted(&bytes, None, &|t| t == Some("openat")).unwrap();
    /// assert_eq!(&batch[..], &[ev("openat")][..]);
    /// assert_eq!(batch.position(0), 1);
    /// assert_eq!(batch.batch_events(), 3);
    /// ```
    pub fn decode_wanted(
        self: &Arc<Self>,
        bytes: &[u8],
        keep: Option<&StoredFieldSet>,
        wanted: codec::WantedTypes<'_>,
    ) -> Result<PooledBatch, CodecError> {
        let mut buffer = self.take();
        if buffer.keep.as_ref() != keep {
            buffer.events.clear();
            buffer.keep = keep.cloned();
        }
        let Buffer {
            events, positions, ..
        } = &mut buffer;
        let counts = codec::decode_reusing_wanted(bytes, keep, wanted, events, positions);
        let mut batch = PooledBatch {
            buffer,
            len: 0,
            pool: self.clone(),
        };
        (batch.len, batch.buffer.batch_events) = counts?;
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

impl PooledBatch {
    /// The index in its batch of event `i` (`i` itself unless the batch was decoded
    /// with [`BatchPool::decode_wanted`]).
    pub fn position(&self, i: usize) -> usize {
        match self.buffer.positions.get(i) {
            Some(&p) => p as usize,
            None => i,
        }
    }

    /// How many events the batch had, including any not decoded.
    pub fn batch_events(&self) -> usize {
        self.buffer.batch_events
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
