//! Recordings: event batches in a file, exactly as they travel on the bus, for
//! `lanner-capture --record FILE.lnrec` and `--replay` (what `sysdig -w`/`-r` are to
//! sysdig). About 10x smaller than JSON lines and replayed without parsing text.
//!
//! A recording is the 8-byte [`MAGIC`] followed by frames, each a little-endian `u32`
//! length and one batch in the wire format (`docs/wire-format.md`). A reader rejects a
//! frame longer than [`crate::codec::MAX_BATCH_BYTES`] and a file that ends inside a
//! frame, naming the frame.
//!
//! ```
//! use lanner_contract::{Event, recording};
//! let ev = Event { evt_type: Some("openat".into()), ..Default::default() };
//! let mut file = Vec::new();
//! let mut w = recording::Writer::new(&mut file).unwrap();
//! w.write_events(std::slice::from_ref(&ev)).unwrap();
//! let frames: Vec<_> = recording::Reader::new(&file[..]).unwrap().collect::<Result<_, _>>().unwrap();
//! assert_eq!(lanner_contract::codec::decode_batch(&frames[0]).unwrap(), vec![ev]);
//! ```

use std::io::{self, Read, Write};

use crate::codec::{self, MAX_BATCH_BYTES};
use crate::model::Event;

/// First bytes of every recording.
pub const MAGIC: &[u8; 8] = b"LNRREC1\n";

/// Whether `head` (the first bytes of a file) starts a recording.
pub fn is_recording(head: &[u8]) -> bool {
    head.starts_with(MAGIC)
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
        if &head != MAGIC {
            return Err(RecordingError::BadMagic);
        }
        Ok(Reader {
            input,
            frame: 0,
            done: false,
        })
    }

    fn next_frame(&mut self) -> Result<Option<Vec<u8>>, RecordingError> {
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.input.read(&mut len[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => {
                    return Err(RecordingError::Truncated {
                        frame: self.frame + 1,
                    });
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.frame += 1;
        let len = u64::from(u32::from_le_bytes(len));
        if len > MAX_BATCH_BYTES as u64 {
            return Err(RecordingError::FrameTooLarge {
                frame: self.frame,
                len,
            });
        }
        // Read through `take` so a lying length cannot make us allocate what the file
        // does not hold.
        let mut batch = Vec::new();
        (&mut self.input).take(len).read_to_end(&mut batch)?;
        if batch.len() as u64 != len {
            return Err(RecordingError::Truncated { frame: self.frame });
        }
        Ok(Some(batch))
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Vec<u8>, RecordingError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.next_frame().transpose();
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }
}
