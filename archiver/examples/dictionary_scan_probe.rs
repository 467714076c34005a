//! A measurement, not part of lanner: how fast `top_talkers` of the query benchmark
//! (`SELECT container_name, fd_sip, count(*) FROM events WHERE evt_type = 'connect'
//! GROUP BY 1, 2`) can be answered by reading the dictionary keys straight out of the
//! archive's Parquet pages (no Arrow arrays, no row selection), to size a fused
//! dictionary scan for lanner-query against DataFusion's and DuckDB's time on the same
//! files (BENCHMARKS.md, Query, nineteenth session).
//!
//! ```text
//! cargo run --release -p lanner-archiver --example dictionary_scan_probe -- /var/tmp/lanner-bench-archive/events
//! ```
//!
//! It trusts its input (files the archiver wrote: V1 data pages, every page of the three
//! columns dictionary-encoded) and panics on anything else; two threads, files split
//! between them. Prints the top three groups, the number of groups, and wall and CPU
//! time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use parquet::column::page::Page;
use parquet::file::reader::{FileReader, SerializedFileReader};

/// Connections per (container name, peer address).
type Counts = HashMap<(Vec<u8>, Vec<u8>), u64>;

fn varint(b: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let x = b[*at];
        *at += 1;
        v |= u64::from(x & 0x7f) << shift;
        if x & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

/// RLE / bit-packed hybrid: appends `n` values.
fn rle(b: &[u8], bw: u32, n: usize, out: &mut Vec<u32>) {
    let mut at = 0;
    let end = out.len() + n;
    let bytes = bw.div_ceil(8) as usize;
    while out.len() < end && at < b.len() {
        let h = varint(b, &mut at);
        if h & 1 == 0 {
            let count = (h >> 1) as usize;
            let mut v = 0u32;
            for i in 0..bytes {
                v |= u32::from(b[at + i]) << (8 * i);
            }
            at += bytes;
            let take = count.min(end - out.len());
            out.extend(std::iter::repeat_n(v, take));
        } else {
            let groups = (h >> 1) as usize;
            let nbytes = groups * bw as usize;
            let data = &b[at..at + nbytes];
            at += nbytes;
            let mask = if bw == 32 { u32::MAX } else { (1u32 << bw) - 1 };
            let total = groups * 8;
            let mut bit = 0usize;
            for _ in 0..total {
                if out.len() >= end {
                    break;
                }
                let byte = bit / 8;
                let w = match data.get(byte..byte + 8) {
                    Some(s) => u64::from_le_bytes(s.try_into().unwrap()),
                    None => {
                        let mut w = 0u64;
                        for k in 0..8 {
                            if let Some(&x) = data.get(byte + k) {
                                w |= u64::from(x) << (8 * k);
                            }
                        }
                        w
                    }
                };
                out.push(((w >> (bit % 8)) as u32) & mask);
                bit += bw as usize;
            }
        }
    }
}

/// Each row's dictionary index (u32::MAX: null) and the dictionary.
fn column(
    rg: &dyn parquet::file::reader::RowGroupReader,
    col: usize,
    keys: &mut Vec<u32>,
) -> Vec<Vec<u8>> {
    keys.clear();
    let mut dict = Vec::new();
    let mut pages = rg.get_column_page_reader(col).unwrap();
    let mut defs = Vec::new();
    let mut vals = Vec::new();
    while let Some(page) = pages.get_next_page().unwrap() {
        match page {
            Page::DictionaryPage {
                buf, num_values, ..
            } => {
                let mut at = 0;
                for _ in 0..num_values {
                    let len = u32::from_le_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
                    dict.push(buf[at + 4..at + 4 + len].to_vec());
                    at += 4 + len;
                }
            }
            Page::DataPage {
                buf, num_values, ..
            } => {
                let n = num_values as usize;
                let dl = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
                defs.clear();
                let db = &buf[4..4 + dl];
                let mut at = 0;
                let h = varint(db, &mut at);
                if h & 1 == 0 && (h >> 1) as usize >= n && db.get(at) == Some(&1) {
                    let vb = &buf[4 + dl..];
                    rle(&vb[1..], u32::from(vb[0]), n, keys);
                    continue;
                }
                rle(db, 1, n, &mut defs);
                let present = defs.iter().filter(|&&d| d == 1).count();
                let vb = &buf[4 + dl..];
                vals.clear();
                if present > 0 {
                    rle(&vb[1..], u32::from(vb[0]), present, &mut vals);
                }
                let mut vi = vals.iter();
                for &d in &defs {
                    keys.push(if d == 1 {
                        *vi.next().unwrap()
                    } else {
                        u32::MAX
                    });
                }
            }
            other => panic!("unexpected page {:?}", other.page_type()),
        }
    }
    dict
}

/// Each dictionary value's id among the values met so far (`u32::MAX` after them: null).
fn global_ids(ids: &mut HashMap<Vec<u8>, u32>, dict: &[Vec<u8>]) -> Vec<u32> {
    dict.iter()
        .map(|v| {
            let n = ids.len() as u32;
            *ids.entry(v.clone()).or_insert(n)
        })
        .chain(std::iter::once(u32::MAX))
        .collect()
}

fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![PathBuf::from(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                files.push(p);
            }
        }
    }
    files.sort();
    let t = Instant::now();
    let halves: Vec<Vec<PathBuf>> = (0..2)
        .map(|h| files.iter().skip(h).step_by(2).cloned().collect())
        .collect();
    let results: Vec<Counts> = std::thread::scope(|s| {
        let hs: Vec<_> = halves
            .iter()
            .map(|fs| {
                s.spawn(move || {
                    let mut out: Counts = HashMap::new();
                    let (mut et, mut cn, mut sip) = (Vec::new(), Vec::new(), Vec::new());
                    let mut ids: HashMap<Vec<u8>, u32> = HashMap::new();
                    let mut g_counts: HashMap<u64, u64> = HashMap::new();
                    let mut counts: Vec<u32> = Vec::new();
                    let mut touched: Vec<usize> = Vec::new();
                    for f in fs {
                        let r = SerializedFileReader::new(File::open(f).unwrap()).unwrap();
                        let schema = r.metadata().file_metadata().schema_descr_ptr();
                        let idx = |name: &str| {
                            (0..schema.num_columns())
                                .find(|&i| schema.column(i).path().string() == name)
                                .unwrap()
                        };
                        let (ci_et, ci_cn, ci_sip) =
                            (idx("evt_type"), idx("container_name"), idx("fd_sip"));
                        for g in 0..r.num_row_groups() {
                            let rg = r.get_row_group(g).unwrap();
                            let d_et = column(rg.as_ref(), ci_et, &mut et);
                            let Some(connect) = d_et.iter().position(|v| v == b"connect") else {
                                continue;
                            };
                            let connect = connect as u32;
                            let d_cn = column(rg.as_ref(), ci_cn, &mut cn);
                            let d_sip = column(rg.as_ref(), ci_sip, &mut sip);
                            let gcn = global_ids(&mut ids, &d_cn);
                            let gsip = global_ids(&mut ids, &d_sip);
                            let w = d_sip.len() + 1;
                            counts.clear();
                            counts.resize((d_cn.len() + 1) * w, 0);
                            for i in 0..et.len() {
                                if et[i] == connect {
                                    let c = (cn[i].min(d_cn.len() as u32)) as usize;
                                    let s = (sip[i].min(d_sip.len() as u32)) as usize;
                                    let k = c * w + s;
                                    if counts[k] == 0 {
                                        touched.push(k);
                                    }
                                    counts[k] += 1;
                                }
                            }
                            for k in touched.drain(..) {
                                let n = counts[k];
                                let key = (u64::from(gcn[k / w]) << 32) | u64::from(gsip[k % w]);
                                *g_counts.entry(key).or_default() += u64::from(n);
                            }
                        }
                    }
                    let names: HashMap<u32, Vec<u8>> =
                        ids.into_iter().map(|(k, v)| (v, k)).collect();
                    for (k, n) in g_counts {
                        let c = names.get(&((k >> 32) as u32)).cloned().unwrap_or_default();
                        let s = names.get(&(k as u32)).cloned().unwrap_or_default();
                        *out.entry((c, s)).or_default() += n;
                    }
                    out
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Counts = HashMap::new();
    for r in results {
        for (k, v) in r {
            *all.entry(k).or_default() += v;
        }
    }
    let mut v: Vec<_> = all.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let ms = t.elapsed().as_millis();
    for ((c, s), n) in v.iter().take(3) {
        println!(
            "{} {} {}",
            String::from_utf8_lossy(c),
            String::from_utf8_lossy(s),
            n
        );
    }
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let cpu = (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) * 10;
    println!("{} groups, {ms} ms wall, {cpu} ms CPU", v.len());
}
