//! Recordings: event batches in a file, exactly as they travel on the bus, for
//! `lanner-capture --record FILE.lnrec` and `--replay` (what `sysdig -w`/`-r` are to
//! sysdig). About 10x smaller than JSON lines and replayed without parsing text.
//!
//! A recording is the 8-byte [`MAGIC`] followed by frames, each a little-endian `u32`
//! length, the xxh3-128 checksum of the batch (16 bytes, little-endian), and one batch
//! in the wire format (`docs/wire-format.md`). A reader rejects a frame longer than
//! [`crate::codec::MAX_BATCH_BYTES`] and a file that ends inside a frame, naming the
//! frame; [`Frame::check`] finds a frame whose bytes no longer match their checksum.
//! Version 1 recordings ([`MAGIC_V1`], frames without a checksum) still read: their
//! frames are checked by walking the batch ([`codec::check_batch`]).
//!
//! ```
//! use lanner_contract::{Event, recording};
//! let ev = Event { evt_type: Some("openat".into()), ..Default::default() };
//! let mut file = Vec::new();
//! let mut w = recording::Writer::new(&mut file).unwrap();
//! w.write_events(std::slice::from_ref(&ev)).unwrap();
//! let frames: Vec<_> = recording::Reader::new(&file[..]).unwrap().collect::<Result<_, _>>().unwrap();
//! assert_eq!(frames[0].check().unwrap().events, 1);
//! assert_eq!(lanner_contract::codec::decode_batch(&frames[0].batch).unwrap(), vec![ev]);
//! ```

use std::io::{self, Read, Write};

use crate::codec::{self, CodecError, MAX_BATCH_BYTES};
use crate::model::Event;

/// First bytes of every recording written now (version 2: frames carry a checksum).
pub const MAGIC: &[u8; 8] = b"LNRREC2\n";

/// First bytes of a version 1 recording (frames without a checksum).
pub const MAGIC_V1: &[u8; 8] = b"LNRREC1\n";

/// Whether `head` (the first bytes of a file) starts a recording of either version.
pub fn is_recording(head: &[u8]) -> bool {
    head.starts_with(MAGIC) || head.starts_with(MAGIC_V1)
}

/// The checksum of a batch in a frame: xxh3-128, also what `lanner-capture --replay`
/// names the batch by in its message id.
pub fn checksum(batch: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(batch)
}

/// Why a recording could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The file does not start with [`MAGIC`].
    #[error("not a lanner recording (bad magic)")]
    BadMagic,
    /// A frame claims more than [`MAX_BATCH_BYTES`].
    #[error("frame {frame}: length {len} exceeds the limit of {MAX_BATCH_BYTES} bytes")]
    FrameTooLarge {
        /// Frame number, from 1.
        frame: u64,
        /// Its claimed length.
        len: u64,
    },
    /// The file ends inside a frame.
    #[error("frame {frame}: the file ends inside it")]
    Truncated {
        /// Frame number, from 1.
        frame: u64,
    },
    /// Reading failed.
    #[error("reading the recording: {0}")]
    Io(#[from] io::Error),
}

/// Why one frame is not a good batch; the frames after it can still be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The bytes do not match the checksum written with them.
    #[error("the batch does not match its checksum (the file is damaged)")]
    Checksum,
    /// The batch is not one this version of lanner reads.
    #[error("{0}")]
    Batch(#[from] CodecError),
}

/// One frame of a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Its number in the file, from 1.
    pub number: u64,
    /// One batch in the wire format.
    pub batch: Vec<u8>,
    /// The checksum written with it (`None` in a version 1 recording).
    pub recorded_checksum: Option<u128>,
}

/// What [`Frame::check`] found in a good frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Events in the batch.
    pub events: usize,
    /// The batch's [`checksum`].
    pub checksum: u128,
}

impl Frame {
    /// Checks the frame before its bytes are relayed: the batch matches the checksum
    /// written with it, and its header and shared tables read as this version's wire
    /// format. The events themselves are not walked: the checksum shows that the bytes
    /// are the ones lanner encoded, and every consumer of the bus checks what it decodes.
    /// A version 1 frame, which has no checksum, is walked in full with
    /// [`codec::check_batch`].
    pub fn check(&self) -> Result<Checked, FrameError> {
        let checksum = checksum(&self.batch);
        let events = match self.recorded_checksum {
            Some(recorded) if recorded != checksum => return Err(FrameError::Checksum),
            Some(_) => codec::batch_events(&self.batch)?,
            None => codec::check_batch(&self.batch)?,
        };
        Ok(Checked { events, checksum })
    }
}

/// Writes a recording.
pub struct Writer<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> Writer<W> {
    /// Starts a recording (writes the magic).
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(MAGIC)?;
        Ok(Writer {
            out,
            buf: Vec::new(),
        })
    }

    /// Appends one batch already in the wire format.
    pub fn write_batch(&mut self, batch: &[u8]) -> io::Result<()> {
        let len = u32::try_from(batch.len())
            .ok()
            .filter(|&n| n as usize <= MAX_BATCH_BYTES)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "batch too large"))?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&checksum(batch).to_le_bytes())?;
        self.out.write_all(batch)
    }

    /// Encodes events as one batch and appends it.
    pub fn write_events(&mut self, events: &[Event]) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        codec::encode_batch_into(events, &mut buf);
        let r = self.write_batch(&buf);
        self.buf = buf;
        r
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Reads a recording's frames (each one batch in the wire format, not yet decoded).
pub struct Reader<R: Read> {
    input: R,
    frame: u64,
    /// Whether frames carry a checksum (version 2).
    checksums: bool,
    done: bool,
}

impl<R: Read> Reader<R> {
    /// Checks the magic and positions at the first frame.
    pub fn new(mut input: R) -> Result<Self, RecordingError> {
        let mut head = [0u8; 8];
        input.read_exact(&mut head).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => RecordingError::BadMagic,
            _ => RecordingError::Io(e),
        })?;
        let checksums = match &head {
            MAGIC => true,
            MAGIC_V1 => false,
            _ => return Err(RecordingError::BadMagic),
        };
        Ok(Reader {
            input,
            frame: 0,
            checksums,
            done: false,
        })
    }

    /// Reads exactly `buf.len()` bytes; `Ok(false)` at a clean end of the file (nothing
    /// read) when `end_ok`, a truncation of the current frame otherwise.
    fn read_exact_or_end(&mut self, buf: &mut [u8], end_ok: bool) -> Result<bool, RecordingError> {
        let mut got = 0;
        while got < buf.len() {
            match self.input.read(&mut buf[got..]) {
                Ok(0) if got == 0 && end_ok => return Ok(false),
                Ok(0) => {
                    return Err(RecordingError::Truncated {
                        frame: self.frame + u64::from(end_ok),
                    });
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }

    /// The next frame, read into `batch` (emptied first): a reader that hands buffers
    /// back after use reads into memory already paged in, which costs several times
    /// less than fresh memory. `None` at the end of the file or after an error.
    pub fn next_into(&mut self, batch: Vec<u8>) -> Option<Result<Frame, RecordingError>> {
        if self.done {
            return None;
        }
        let r = self.next_frame(batch).transpose();
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }

    fn next_frame(&mut self, mut batch: Vec<u8>) -> Result<Option<Frame>, RecordingError> {
        let mut len = [0u8; 4];
        if !self.read_exact_or_end(&mut len, true)? {
            return Ok(None);
        }
        self.frame += 1;
        let len = u64::from(u32::from_le_bytes(len));
        if len > MAX_BATCH_BYTES as u64 {
            return Err(RecordingError::FrameTooLarge {
                frame: self.frame,
                len,
            });
        }
        let recorded_checksum = if self.checksums {
            let mut sum = [0u8; 16];
            self.read_exact_or_end(&mut sum, false)?;
            Some(u128::from_le_bytes(sum))
        } else {
            None
        };
        // Read through `take` so a lying length cannot make us allocate what the file
        // does not hold (beyond a first reservation of at most 1 MiB).
        batch.clear();
        batch.reserve(len.min(1 << 20) as usize);
        (&mut self.input).take(len).read_to_end(&mut batch)?;
        if batch.len() as u64 != len {
            return Err(RecordingError::Truncated { frame: self.frame });
        }
        Ok(Some(Frame {
            number: self.frame,
            batch,
            recorded_checksum,
        }))
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Frame, RecordingError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_into(Vec::new())
    }
}
