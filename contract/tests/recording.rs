//! Recordings: frames round-trip, and a bad file (wrong magic, a frame cut short, a
//! lying length) is an error naming the frame, never a panic or a huge allocation.
#![allow(clippy::unwrap_used)]

use lanner_contract::recording::{self, MAGIC, RecordingError};
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
        .map(|f| codec::decode_batch(&f.unwrap()).unwrap())
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
    let second_start = 8 + 4 + first_len;
    for cut in [
        second_start + 1,
        second_start + 3,
        second_start + 10,
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
