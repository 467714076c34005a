//! Parquet's RLE / bit-packing hybrid encoding, for definition levels and dictionary keys.
//!
//! A run of at least eight equal values becomes an RLE run (header `count << 1`, then the
//! value in `ceil(width / 8)` little-endian bytes); other values are bit-packed in groups
//! of eight (header `groups << 1 | 1`, then `width` bytes per group, least significant
//! bit first), at most 63 groups per header as parquet writes them. Only the last group
//! may be padded: readers stop at the page's value count.
//!
//! ```
//! use lanner_archiver::rle;
//! let mut out = Vec::new();
//! rle::encode(&[7; 10], 3, &mut out);
//! assert_eq!(out, [10 << 1, 7]); // one run of ten 7s
//! ```

/// Bits needed to hold `max`.
pub fn bit_width(max: u64) -> u8 {
    (64 - max.leading_zeros()) as u8
}

/// Appends one RLE run of `count` copies of `value`.
pub fn encode_run(value: u32, count: usize, width: u8, out: &mut Vec<u8>) {
    if count == 0 {
        return;
    }
    varint((count as u64) << 1, out);
    let bytes = usize::from(width).div_ceil(8).min(4);
    out.extend_from_slice(&value.to_le_bytes()[..bytes]);
}

/// Appends `values` (each below `2^width`, `width` at most 32).
pub fn encode(values: &[u32], width: u8, out: &mut Vec<u8>) {
    const MAX_GROUPS: usize = 63;
    let n = values.len();
    let mut i = 0;
    while i < n {
        let run = run_length(values, i);
        if run >= 8 {
            encode_run(values[i], run, width, out);
            i += run;
            continue;
        }
        let start = i;
        let mut groups = 0;
        loop {
            i += 8;
            groups += 1;
            if i >= n || groups == MAX_GROUPS || run_length_at_least_8(values, i) {
                break;
            }
        }
        varint(((groups as u64) << 1) | 1, out);
        pack(&values[start..i.min(n)], groups * 8, width, out);
    }
}

/// How many values from `i` on equal `values[i]`.
fn run_length(values: &[u32], i: usize) -> usize {
    let v = values[i];
    values[i..].iter().take_while(|&&x| x == v).count()
}

fn run_length_at_least_8(values: &[u32], i: usize) -> bool {
    match values.get(i..i + 8) {
        Some(w) => w.iter().all(|&x| x == w[0]),
        None => false,
    }
}

/// Bit-packs `values`, padded with zeros to `total` values (a multiple of 8).
fn pack(values: &[u32], total: usize, width: u8, out: &mut Vec<u8>) {
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    let width = u32::from(width);
    let mask = if width >= 32 {
        u64::from(u32::MAX)
    } else {
        (1u64 << width) - 1
    };
    let pad = total.saturating_sub(values.len());
    for &v in values.iter().chain(std::iter::repeat_n(&0, pad)) {
        acc |= (u64::from(v) & mask) << bits;
        bits += width;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A reader written from the format's description, independent of the encoder.
    fn decode(mut data: &[u8], width: u8, count: usize) -> Vec<u32> {
        let mut out = Vec::new();
        while out.len() < count {
            let mut header = 0u64;
            let mut shift = 0;
            loop {
                let b = data[0];
                data = &data[1..];
                header |= u64::from(b & 0x7f) << shift;
                shift += 7;
                if b < 0x80 {
                    break;
                }
            }
            if header & 1 == 0 {
                let bytes = usize::from(width).div_ceil(8);
                let mut v = [0u8; 4];
                v[..bytes].copy_from_slice(&data[..bytes]);
                data = &data[bytes..];
                out.extend(std::iter::repeat_n(
                    u32::from_le_bytes(v),
                    (header >> 1) as usize,
                ));
            } else {
                let n = (header >> 1) as usize * 8;
                let len = n * usize::from(width) / 8;
                let (packed, rest) = data.split_at(len);
                data = rest;
                for j in 0..n {
                    let mut v = 0u32;
                    for b in 0..usize::from(width) {
                        let bit = j * usize::from(width) + b;
                        if packed[bit / 8] >> (bit % 8) & 1 == 1 {
                            v |= 1 << b;
                        }
                    }
                    out.push(v);
                }
            }
        }
        assert!(data.is_empty(), "{} bytes left over", data.len());
        out.truncate(count);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn what_is_encoded_decodes_back(
            width in 1u8..=32,
            pieces in prop::collection::vec((any::<u32>(), 1usize..40, any::<bool>()), 0..30),
        ) {
            let mask = if width == 32 { u32::MAX } else { (1 << width) - 1 };
            let mut values = Vec::new();
            for (v, n, repeat) in pieces {
                if repeat {
                    values.extend(std::iter::repeat_n(v & mask, n));
                } else {
                    values.extend((0..n as u32).map(|i| v.wrapping_mul(i + 7) & mask));
                }
            }
            let mut out = Vec::new();
            encode(&values, width, &mut out);
            prop_assert_eq!(decode(&out, width, values.len()), values);
        }
    }

    #[test]
    fn long_runs_are_runs_and_the_rest_is_packed() {
        let mut out = Vec::new();
        encode(&[1, 0, 1, 1, 0, 0, 0, 1], 1, &mut out);
        assert_eq!(out, [0b11, 0b1000_1101], "one group of eight, one bit each");
        out.clear();
        let mut v = vec![5u32; 1000];
        v.push(2);
        encode(&v, 3, &mut out);
        assert_eq!(decode(&out, 3, v.len()), v);
        assert!(out.len() < 8, "{out:?}");
        out.clear();
        encode_run(1, 20_000, 1, &mut out);
        assert_eq!(decode(&out, 1, 20_000), vec![1; 20_000]);
        assert_eq!(bit_width(0), 0);
        assert_eq!(bit_width(1), 1);
        assert_eq!(bit_width(255), 8);
        assert_eq!(bit_width(256), 9);
    }
}
