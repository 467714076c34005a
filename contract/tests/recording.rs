//! Recordings: frames round-trip, a bad file (wrong magic, a frame cut short, a lying
//! length) is an error naming the frame, never a panic or a huge allocation, and a
//! damaged frame fails its check while the frames after it still read.
#![allow(clippy::unwrap_used)]

use lanner_contract::recording::{self, FrameError, MAGIC, MAGIC_V1, RecordingError};
use lanner_contract::synth::Synth;
use lanner_contract::{Event, codec};

fn recording_of(batches: &[Vec<Event>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = recording::Writer::new(&mut out).unwrap();
    for b in batches {
        w.write_events(b).unwrap();
    }
    w.flush().unwrap();
    out
}

#[test]
fn frames_round_trip() {
    let events: Vec<Event> = Synth::new(5, "node-a").take(2500).collect();
    let batches: Vec<Vec<Event>> = events.chunks(1000).map(<[Event]>::to_vec).collect();
    let file = recording_of(&batches);
    assert!(recording::is_recording(&file));
    let back: Vec<Vec<Event>> = recording::Reader::new(&file[..])
        .unwrap()
        .map(|f| codec::decode_batch(&f.unwrap().batch).unwrap())
        .collect();
    assert_eq!(back, batches);
    // An empty recording has no frames.
    let empty = recording_of(&[]);
    assert_eq!(recording::Reader::new(&empty[..]).unwrap().count(), 0);
}

#[test]
fn bad_files_are_errors_naming_the_frame() {
    let events: Vec<Event> = Synth::new(6, "node-a").take(20).collect();
    let file = recording_of(&[events[..10].to_vec(), events[10..].to_vec()]);

    assert!(matches!(
        recording::Reader::new(&b"{\"evt.type\":\"x\"}\n"[..]),
        Err(RecordingError::BadMagic)
    ));
    assert!(matches!(
        recording::Reader::new(&MAGIC[..3]),
        Err(RecordingError::BadMagic)
    ));
    // Every cut inside the second frame is reported as frame 2 being truncated.
    let first_len = u32::from_le_bytes(file[8..12].try_into().unwrap()) as usize;
    let second_start = 8 + 4 + 16 + first_len;
    for cut in [
        second_start + 1,
        second_start + 3,
        second_start + 10, // inside the checksum
        second_start + 25,
        file.len() - 1,
    ] {
        let frames: Vec<_> = recording::Reader::new(&file[..cut]).unwrap().collect();
        assert_eq!(frames.len(), 2, "cut at {cut}");
        assert!(frames[0].is_ok());
        let err = frames[1].as_ref().unwrap_err();
        assert!(
            matches!(err, RecordingError::Truncated { frame: 2 }),
            "{err}"
        );
    }
    // A length beyond the limit is refused before anything is allocated.
    let mut lying = MAGIC.to_vec();
    lying.extend_from_slice(&u32::MAX.to_le_bytes());
    let err = recording::Reader::new(&lying[..])
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("frame 1: length 4294967295 exceeds"),
        "{err}"
    );
    // A plausible length with nothing behind it is a truncation, not an allocation.
    let mut short = MAGIC.to_vec();
    short.extend_from_slice(&(60u32 << 20).to_le_bytes());
    let err = recording::Reader::new(&short[..])
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, RecordingError::Truncated { frame: 1 }),
        "{err}"
    );
}

#[test]
fn a_damaged_frame_fails_its_check_and_the_next_still_reads() {
    let events: Vec<Event> = Synth::new(7, "node-a").take(30).collect();
    let batches = [
        events[..10].to_vec(),
        events[10..20].to_vec(),
        events[20..].to_vec(),
    ];
    let mut file = recording_of(&batches);
    let frames: Vec<_> = recording::Reader::new(&file[..])
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.number, i as u64 + 1);
        let checked = f.check().unwrap();
        assert_eq!(checked.events, 10);
        assert_eq!(checked.checksum, recording::checksum(&f.batch));
    }
    // One flipped bit in the last byte of the second batch.
    let second_end = 8 + 2 * (4 + 16) + frames[0].batch.len() + frames[1].batch.len();
    file[second_end - 1] ^= 1;
    let checks: Vec<_> = recording::Reader::new(&file[..])
        .unwrap()
        .map(|f| f.unwrap().check().map(|c| c.events))
        .collect();
    assert_eq!(checks.len(), 3);
    assert!(matches!(checks[1], Err(FrameError::Checksum)), "{checks:?}");
    assert_eq!(
        (checks[0].as_ref().ok(), checks[2].as_ref().ok()),
        (Some(&10), Some(&10))
    );
}

#[test]
fn version_1_recordings_still_read_and_are_checked_by_decoding() {
    let events: Vec<Event> = Synth::new(8, "node-a").take(12).collect();
    let mut file = MAGIC_V1.to_vec();
    for part in events.chunks(6) {
        let batch = codec::encode_batch(part);
        file.extend_from_slice(&(batch.len() as u32).to_le_bytes());
        file.extend_from_slice(&batch);
    }
    assert!(recording::is_recording(&file));
    let frames: Vec<_> = recording::Reader::new(&file[..])
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(frames.len(), 2);
    assert!(frames.iter().all(|f| f.recorded_checksum.is_none()));
    assert_eq!(frames[1].check().unwrap().events, 6);
    assert_eq!(codec::decode_batch(&frames[1].batch).unwrap(), events[6..]);
    // Without a checksum, a damaged event is found by walking the batch.
    let mut damaged = frames[0].clone();
    let last = damaged.batch.len() - 1;
    damaged.batch[last] = 0xff;
    assert!(matches!(damaged.check(), Err(FrameError::Batch(_))));
}
