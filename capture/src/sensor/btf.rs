//! Kernel structure offsets from the running kernel's BTF (`/sys/kernel/btf/vmlinux`).
//!
//! aya-ebpf has no CO-RE field relocations, so the few `task_struct`, `mm_struct` and
//! `struct pid` offsets the programs need are looked up here and passed in as a global.
//! This is a minimal reader of the BTF type section: structs and unions with their
//! members (anonymous members searched recursively), typedefs and qualifiers.

use std::collections::HashMap;
use std::path::Path;

use lanner_capture_common::Offsets;

/// Why the BTF could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    /// The file could not be read.
    #[error("reading {path}: {source} (the kernel needs CONFIG_DEBUG_INFO_BTF=y)")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not BTF or is cut short.
    #[error("{0}: not a valid BTF file ({1})")]
    Invalid(String, &'static str),
    /// A struct or member the sensor needs is not there.
    #[error("BTF has no {0}")]
    Missing(String),
}

const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_TYPE_TAG: u32 = 18;

#[derive(Clone, Debug)]
struct Member {
    name: u32,
    ty: u32,
    bit_offset: u32,
}

#[derive(Clone, Debug)]
struct Type {
    name: u32,
    kind: u32,
    /// Size for structs/unions, referenced type for typedefs and qualifiers.
    size_or_type: u32,
    members: Vec<Member>,
}

/// The parsed type section.
pub struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
    structs: HashMap<String, u32>,
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl Btf {
    /// Reads and parses a BTF file.
    pub fn from_file(path: &Path) -> Result<Btf, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Btf::parse(&data).map_err(|why| BtfError::Invalid(path.display().to_string(), why))
    }

    /// Parses BTF bytes (little endian).
    pub fn parse(data: &[u8]) -> Result<Btf, &'static str> {
        if data.get(0..2) != Some(&[0x9f, 0xeb]) {
            return Err("bad magic");
        }
        let field = |i: usize| u32_at(data, 8 + 4 * i).ok_or("header cut short");
        let hdr_len = u32_at(data, 4).ok_or("header cut short")? as usize;
        let (type_off, type_len, str_off, str_len) = (
            field(0)? as usize,
            field(1)? as usize,
            field(2)? as usize,
            field(3)? as usize,
        );
        let types_sec = data
            .get(hdr_len + type_off..hdr_len + type_off + type_len)
            .ok_or("type section out of bounds")?;
        let strings = data
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or("string section out of bounds")?
            .to_vec();
        let mut types = vec![Type {
            name: 0,
            kind: 0,
            size_or_type: 0,
            members: vec![],
        }];
        let mut at = 0usize;
        while at + 12 <= types_sec.len() {
            let name = u32_at(types_sec, at).ok_or("cut")?;
            let info = u32_at(types_sec, at + 4).ok_or("cut")?;
            let size_or_type = u32_at(types_sec, at + 8).ok_or("cut")?;
            at += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let mut members = Vec::new();
            let extra = match kind {
                1 | 14 | 17 => 4,
                3 => 12,
                KIND_STRUCT | KIND_UNION => {
                    for i in 0..vlen {
                        let m = at + 12 * i;
                        let off = u32_at(types_sec, m + 8).ok_or("cut")?;
                        members.push(Member {
                            name: u32_at(types_sec, m).ok_or("cut")?,
                            ty: u32_at(types_sec, m + 4).ok_or("cut")?,
                            bit_offset: if kind_flag { off & 0xff_ffff } else { off },
                        });
                    }
                    12 * vlen
                }
                6 | 13 => 8 * vlen,
                15 | 19 => 12 * vlen,
                _ => 0,
            };
            at += extra;
            types.push(Type {
                name,
                kind,
                size_or_type,
                members,
            });
        }
        let mut btf = Btf {
            types,
            strings,
            structs: HashMap::new(),
        };
        for (id, t) in btf.types.iter().enumerate() {
            if t.kind == KIND_STRUCT && t.name != 0 {
                let name = btf.string(t.name).to_owned();
                btf.structs.entry(name).or_insert(id as u32);
            }
        }
        Ok(btf)
    }

    fn string(&self, off: u32) -> &str {
        let s = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).unwrap_or("")
    }

    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.types.get(id as usize) {
                Some(t)
                    if matches!(
                        t.kind,
                        KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                    ) =>
                {
                    id = t.size_or_type
                }
                _ => break,
            }
        }
        id
    }

    /// Byte offset of `member` in the type `id`, searching anonymous members.
    fn find(&self, id: u32, member: &str) -> Option<u32> {
        let t = self.types.get(self.resolve(id) as usize)?;
        if t.kind != KIND_STRUCT && t.kind != KIND_UNION {
            return None;
        }
        for m in &t.members {
            if m.name == 0 {
                if let Some(inner) = self.find(m.ty, member) {
                    return Some(m.bit_offset / 8 + inner);
                }
            } else if self.string(m.name) == member {
                return Some(m.bit_offset / 8);
            }
        }
        None
    }

    /// Byte offset of `strct.member`.
    pub fn offset(&self, strct: &str, member: &str) -> Result<u32, BtfError> {
        let id = *self
            .structs
            .get(strct)
            .ok_or_else(|| BtfError::Missing(format!("struct {strct}")))?;
        self.find(id, member)
            .ok_or_else(|| BtfError::Missing(format!("{strct}.{member}")))
    }

    /// Size of struct `name`.
    pub fn size(&self, strct: &str) -> Result<u32, BtfError> {
        let id = *self
            .structs
            .get(strct)
            .ok_or_else(|| BtfError::Missing(format!("struct {strct}")))?;
        Ok(self.types[id as usize].size_or_type)
    }
}

/// The offsets the eBPF programs need.
pub fn offsets(btf: &Btf) -> Result<Offsets, BtfError> {
    Ok(Offsets {
        task_real_parent: btf.offset("task_struct", "real_parent")?,
        task_tgid: btf.offset("task_struct", "tgid")?,
        task_mm: btf.offset("task_struct", "mm")?,
        // Absent without CONFIG_AUDIT: left unset then.
        task_loginuid: btf.offset("task_struct", "loginuid").unwrap_or(0),
        task_thread_pid: btf.offset("task_struct", "thread_pid")?,
        task_exit_code: btf.offset("task_struct", "exit_code")?,
        mm_arg_start: btf.offset("mm_struct", "arg_start")?,
        mm_arg_end: btf.offset("mm_struct", "arg_end")?,
        pid_level: btf.offset("pid", "level")?,
        pid_numbers: btf.offset("pid", "numbers")?,
        upid_size: btf.size("upid")?,
        upid_nr: btf.offset("upid", "nr")?,
        task_files: btf.offset("task_struct", "files")?,
        files_fdt: btf.offset("files_struct", "fdt")?,
        fdtable_fd: btf.offset("fdtable", "fd")?,
        file_private_data: btf.offset("file", "private_data")?,
        file_inode: btf.offset("file", "f_inode")?,
        inode_mode: btf.offset("inode", "i_mode")?,
        socket_sk: btf.offset("socket", "sk")?,
        sk_daddr: btf.offset("sock_common", "skc_daddr")?,
        sk_rcv_saddr: btf.offset("sock_common", "skc_rcv_saddr")?,
        sk_dport: btf.offset("sock_common", "skc_dport")?,
        sk_num: btf.offset("sock_common", "skc_num")?,
        sk_family: btf.offset("sock_common", "skc_family")?,
        sk_v6_daddr: btf.offset("sock_common", "skc_v6_daddr")?,
        sk_v6_rcv_saddr: btf.offset("sock_common", "skc_v6_rcv_saddr")?,
        sk_type: btf.offset("sock", "sk_type")?,
        sk_protocol: btf.offset("sock", "sk_protocol")?,
        task_signal: btf.offset("task_struct", "signal")?,
        signal_tty: btf.offset("signal_struct", "tty")?,
        tty_index: btf.offset("tty_struct", "index")?,
        tty_driver: btf.offset("tty_struct", "driver")?,
        driver_major: btf.offset("tty_driver", "major")?,
        driver_minor_start: btf.offset("tty_driver", "minor_start")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Btf::parse(b"").is_err());
        assert!(Btf::parse(&[0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn running_kernel_offsets_are_plausible() {
        let path = Path::new("/sys/kernel/btf/vmlinux");
        if !path.exists() {
            eprintln!("skipped: {} is absent (kernel without BTF)", path.display());
            return;
        }
        let btf = Btf::from_file(path).expect("vmlinux BTF parses");
        let off = offsets(&btf).expect("offsets found");
        assert!(off.task_tgid > 0 && off.task_real_parent > off.task_tgid);
        assert!(off.mm_arg_end == off.mm_arg_start + 8, "{off:?}");
        assert_eq!(off.upid_size, 16);
        // struct sock starts with its sock_common; the IPv4 pair comes first.
        assert_eq!(off.sk_daddr, 0);
        assert_eq!(off.sk_rcv_saddr, 4);
        assert_eq!(off.sk_num, off.sk_dport + 2);
    }
}
