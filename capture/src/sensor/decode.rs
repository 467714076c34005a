//! Turns ring-buffer records into [`Event`]s: the syscall's arguments rendered as Falco
//! renders them, plus the process, ancestry, user and container context from the
//! [`ProcTable`], which the records also keep current (fork, exec, chdir, exit).

use std::collections::HashMap;

use lanner_capture_common::{EXTRA, EventHeader, HDR, MAX_STR, SLOT0, SLOT1, kind, nr, part};
use lanner_contract::Event;
use lanner_contract::model::Text;
use lanner_contract::value::Timestamp;

use super::dns;
use super::proctable::{self, ProcTable};
use super::render::{self, SockAddr};
use super::sys;
use super::users::Names;

const AT_FDCWD: i64 = -100;

/// Decoding state for one sensor session.
pub struct Decoder {
    /// The process table.
    pub procs: ProcTable,
    names: Names,
    node: Text,
    session: String,
    /// Capability mask → its rendering (a handful of distinct masks on a host).
    cap_names: HashMap<u64, Text>,
    next_num: u64,
    boot_to_wall: i64,
    /// cgroup id → short container id.
    cgroups: HashMap<u64, Text>,
    syscall_names: HashMap<u16, Text>,
    /// Address → the name a DNS answer gave it (`fd.sip.name`), bounded.
    resolved: HashMap<std::net::IpAddr, Text>,
}

/// Addresses remembered from DNS answers before the table is cleared.
const MAX_RESOLVED: usize = 65536;

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than its header says.
    #[error("record of {0} bytes is shorter than its header says")]
    Short(usize),
}

/// `Some(v.into())` for text fields.
fn txt(v: impl Into<Text>) -> Option<Text> {
    Some(v.into())
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn header(rec: &[u8]) -> Option<EventHeader> {
    if rec.len() < HDR {
        return None;
    }
    let mut h = EventHeader::default();
    let b = &rec[..HDR];
    let u64_at = |i: usize| u64::from_ne_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
    let u32_at = |i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().unwrap_or([0; 4]));
    let u16_at = |i: usize| u16::from_ne_bytes(b[i..i + 2].try_into().unwrap_or([0; 2]));
    h.ts_ns = u64_at(0);
    h.pid_tgid = u64_at(8);
    h.uid_gid = u64_at(16);
    h.cgroup_id = u64_at(24);
    h.ret = u64_at(32) as i64;
    for (i, a) in h.args.iter_mut().enumerate() {
        *a = u64_at(40 + 8 * i);
    }
    h.kind = u16_at(88);
    h.nr = u16_at(90);
    h.parts = u16_at(92);
    h.len_extra = u16_at(94);
    h.ppid = u32_at(96);
    h.vpid = u32_at(100);
    h.loginuid = u32_at(104);
    h.len0 = u16_at(108);
    h.len1 = u16_at(110);
    h.comm.copy_from_slice(&b[112..128]);
    h.tty = u32_at(128);
    Some(h)
}

/// Joins a path the process passed with the directory it is relative to.
fn resolve(dir: &str, path: &str) -> String {
    if path.starts_with('/') || dir.is_empty() {
        return normalize(path);
    }
    normalize(&format!("{}/{path}", dir.trim_end_matches('/')))
}

/// Whether an absolute path is already normal: no empty, `.` or `..` segment and no
/// trailing slash (most paths programs pass), so [`normalize`] can copy it as it is.
fn is_normal(path: &str) -> bool {
    let b = path.as_bytes();
    b.first() == Some(&b'/')
        && (b.len() == 1 || b[b.len() - 1] != b'/')
        && !path.contains("//")
        && !path.contains("/./")
        && !path.contains("/../")
        && !path.ends_with("/.")
        && !path.ends_with("/..")
}

/// Removes `.`, `..` and duplicate slashes, as Falco does for resolved paths.
fn normalize(path: &str) -> String {
    if !path.starts_with('/') || is_normal(path) {
        return path.to_owned();
    }
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

impl Decoder {
    /// A decoder for `node`, with a table seeded from /proc.
    pub fn new(node: &str, session: &str) -> Decoder {
        let boot_to_wall = sys::boot_to_wall_offset_ns();
        let mut procs = ProcTable::new(boot_to_wall);
        procs.seed();
        Decoder {
            procs,
            names: Names::load(),
            node: node.into(),
            session: session.to_owned(),
            cap_names: HashMap::new(),
            next_num: 1,
            boot_to_wall,
            cgroups: HashMap::new(),
            syscall_names: nr::NAMES
                .iter()
                .map(|(n, name)| (*n, Text::from(*name)))
                .collect(),
            resolved: HashMap::new(),
        }
    }

    /// A fresh event with id, number, time and host set.
    pub fn stamp(&mut self, ev: &mut Event, ts: Timestamp) {
        let num = self.next_num;
        self.next_num += 1;
        ev.evt_num = Some(num);
        ev.evt_id = txt(format!("{}-{num}", self.session));
        ev.evt_time = Some(ts);
        ev.evt_hostname = Some(self.node.clone());
    }

    /// Decodes one record; `Ok(None)` for records that only update the table.
    pub fn decode(&mut self, rec: &[u8]) -> Result<Option<Event>, DecodeError> {
        let h = header(rec).ok_or(DecodeError::Short(rec.len()))?;
        let ts = Timestamp(h.ts_ns as i64 + self.boot_to_wall);
        let tgid = (h.pid_tgid >> 32) as u32;
        let tid = h.pid_tgid as u32;
        let slot = |at: usize, len: u16| -> String {
            let end = (at + (len as usize).min(MAX_STR)).min(rec.len());
            rec.get(at..end).map(cstr).unwrap_or_default()
        };
        let s0 = if h.parts & part::STR0 != 0 {
            Some(slot(SLOT0, h.len0))
        } else {
            None
        };
        let s1 = if h.parts & part::STR1 != 0 && h.parts & part::TUPLE == 0 {
            Some(slot(SLOT1, h.len1))
        } else {
            None
        };
        let tuple = if h.parts & part::TUPLE != 0 {
            rec.get(SLOT1..SLOT1 + 48).and_then(parse_tuple)
        } else {
            None
        };
        let extra: &[u8] = rec
            .get(EXTRA..(EXTRA + h.len_extra as usize).min(rec.len()))
            .unwrap_or(&[]);
        let comm = cstr(&h.comm);
        let uid = h.uid_gid as u32;
        let gid = (h.uid_gid >> 32) as u32;

        let mut ev = Event::default();
        let a = h.args;
        let ret = h.ret;
        let name = |n: u16| {
            self.syscall_names
                .get(&n)
                .cloned()
                .unwrap_or_else(|| Text::from("unknown"))
        };

        match h.kind {
            kind::PROC_EXIT => {
                ev.evt_type = txt("procexit");
                ev.evt_rawres = Some(ret);
                ev.evt_arg_flags = None;
                self.fill_proc(&mut ev, tgid, tid, &comm, uid, gid, h.cgroup_id);
                self.stamp(&mut ev, ts);
                self.procs.remove(tgid);
                return Ok(Some(ev));
            }
            kind::EXIT_ONLY => {
                // The child's side of clone/fork: a new process when tid == tgid.
                if tid == tgid {
                    let p = self.procs.fork(tgid, h.ppid, h.vpid, ts);
                    p.comm = Text::from(comm.as_str());
                    p.tty = u64::from(h.tty);
                    p.uid = uid;
                    p.gid = gid;
                }
                ev.evt_type = Some(name(h.nr));
                ev.evt_rawres = Some(0);
                self.fill_proc(&mut ev, tgid, tid, &comm, uid, gid, h.cgroup_id);
                self.stamp(&mut ev, ts);
                return Ok(Some(ev));
            }
            _ => {}
        }

        ev.evt_type = Some(name(h.nr));
        ev.evt_rawres = Some(ret);
        let cwd: Text = self
            .procs
            .get_or_load(tgid)
            .map(|p| p.cwd.clone())
            .unwrap_or_else(|| Text::from(""));
        let rel = |dirfd: u64, path: &str| -> String {
            if path.starts_with('/')
                || dirfd as i64 == AT_FDCWD
                || (dirfd as i32) == AT_FDCWD as i32
            {
                resolve(&cwd, path)
            } else {
                let dir = std::fs::read_link(format!("/proc/{tgid}/fd/{}", dirfd as i32))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                resolve(&dir, path)
            }
        };
        let s0v = s0.clone().unwrap_or_default();
        let s1v = s1.clone().unwrap_or_default();
        match h.nr {
            nr::open | nr::openat | nr::openat2 | nr::creat => {
                let (dirfd, flags, mode) = match h.nr {
                    nr::open => (AT_FDCWD as u64, a[1], a[2]),
                    nr::openat => (a[0], a[2], a[3]),
                    nr::openat2 => (a[0], 0, 0),
                    _ => (AT_FDCWD as u64, 0o1101, a[1]),
                };
                let path: Text = rel(dirfd, &s0v).into();
                ev.fd_nameraw = Some(if *path == *s0v {
                    path.clone()
                } else {
                    s0v.as_str().into()
                });
                ev.fd_name = Some(path.clone());
                ev.evt_arg_name = Some(path);
                if h.nr != nr::openat2 {
                    ev.evt_arg_flags = txt(render::open_flags(flags));
                    if flags & 0o100 != 0 {
                        ev.evt_arg_mode = txt(render::mode(mode));
                    }
                }
                ev.fd_type = txt(if flags & 0o200000 != 0 {
                    "directory"
                } else {
                    "file"
                });
                if ret >= 0 {
                    ev.fd_num = Some(ret);
                }
            }
            nr::execve | nr::execveat => {
                ev.evt_arg_filename = txt(s0v.clone());
                if ret == 0 {
                    let mut exepath = rel(
                        if h.nr == nr::execveat {
                            a[0]
                        } else {
                            AT_FDCWD as u64
                        },
                        &s0v,
                    );
                    // Re-executing itself (busybox applets, runc): the same file as before
                    // the exec, unless /proc names it below.
                    if exepath == "/proc/self/exe"
                        && let Some(p) = self.procs.get(tgid).filter(|p| !p.exepath.is_empty())
                    {
                        exepath = p.exepath.to_string();
                    }
                    // Symlinks resolved inside the process's root: its own while it
                    // lives, else that of another process of its container, or of its
                    // parent when that is in the same container. (Not any parent:
                    // `docker exec`'s parent is runc on the host, whose root would turn
                    // the container's /bin/sh into the host's /usr/bin/dash.)
                    let cgroup_container = self.container_of(tgid, h.cgroup_id);
                    let roots = if exepath.starts_with("/proc/") {
                        Vec::new()
                    } else {
                        let mut roots = vec![tgid];
                        roots.extend(
                            self.procs
                                .in_container(&cgroup_container, 8)
                                .into_iter()
                                .filter(|&p| p != tgid),
                        );
                        if self
                            .procs
                            .get(h.ppid)
                            .is_some_and(|p| *p.container == *cgroup_container)
                        {
                            roots.push(h.ppid);
                        }
                        roots
                    };
                    let canonical = roots.iter().find_map(|pid| {
                        proctable::canonical_in(
                            std::path::Path::new(&format!("/proc/{pid}/root")),
                            &exepath,
                        )
                    });
                    if let Some(c) = &canonical {
                        exepath.clone_from(c);
                    }
                    let argv = proctable::split_argv(extra);
                    let loginuid = if h.loginuid == u32::MAX {
                        -1
                    } else {
                        h.loginuid as i64
                    };
                    let parent_known = self.procs.get(h.ppid).is_some();
                    // What /proc says now, unless the process has exec'd again since
                    // (this event waited in the ring buffer): then /proc describes a
                    // later program, and its executable facts must not be taken.
                    let mut fresh = self
                        .procs
                        .read_exec_facts(tgid, &cgroup_container)
                        .filter(|f| &*f.comm == comm.as_str());
                    if self.procs.get(tgid).is_none() {
                        self.procs.fork(tgid, h.ppid, h.vpid, ts);
                    }
                    let Some(p) = self.procs.get_mut(tgid) else {
                        return Ok(None);
                    };
                    p.comm = Text::from(comm.as_str());
                    p.exepath = exepath.into();
                    p.uid = uid;
                    p.gid = gid;
                    p.loginuid = loginuid;
                    if h.ppid != 0 && (parent_known || p.ppid == 0) {
                        p.ppid = h.ppid;
                    }
                    if h.vpid != 0 {
                        p.vpid = h.vpid;
                    }
                    p.container = cgroup_container;
                    // The kernel's view, taken at the exec itself.
                    p.tty = u64::from(h.tty);
                    if let Some(f) = fresh.take() {
                        p.sid = f.sid;
                        p.pgid = f.pgid;
                        p.cap_effective = f.cap_effective;
                        if !f.cwd.is_empty() {
                            p.cwd = f.cwd;
                        }
                        p.exe_ino = f.exe_ino;
                        // /proc's exe link when the path could not be resolved, or for
                        // a memfd (which has no path).
                        if !f.exepath.is_empty() && (canonical.is_none() || f.exe_memfd) {
                            p.exepath = f.exepath;
                        }
                        p.exe_memfd = f.exe_memfd || p.exepath.starts_with("/memfd:");
                        p.exe_upper = f.exe_upper;
                    }
                    let mut argv = argv;
                    if h.parts & part::TRUNCATED != 0
                        && let Some(last) = argv.last_mut()
                    {
                        last.push_str("...");
                    }
                    p.set_argv(argv);
                    self.procs.touch();
                }
            }
            nr::chdir => {
                if ret == 0 {
                    let dir = resolve(&cwd, &s0v);
                    if let Some(p) = self.procs.get_or_load(tgid) {
                        p.cwd = proctable::with_slash(&dir).into();
                    }
                }
                ev.evt_arg_path = txt(s0v.clone());
            }
            nr::fchdir => {
                if ret == 0
                    && let Ok(dir) = std::fs::read_link(format!("/proc/{tgid}/cwd"))
                    && let Some(p) = self.procs.get_or_load(tgid)
                {
                    p.cwd = proctable::with_slash(&dir.to_string_lossy()).into();
                }
                ev.evt_arg_fd = txt((a[0] as i32).to_string());
            }
            nr::unlink => ev.evt_arg_path = txt(rel(AT_FDCWD as u64, &s0v)),
            nr::unlinkat => {
                ev.evt_arg_name = txt(rel(a[0], &s0v));
                ev.evt_arg_flags = txt(if a[2] & 0x200 != 0 {
                    "AT_REMOVEDIR"
                } else {
                    "0"
                });
            }
            nr::mkdir => {
                ev.evt_arg_path = txt(rel(AT_FDCWD as u64, &s0v));
                ev.evt_arg_mode = txt(render::mode(a[1]));
            }
            nr::mkdirat => {
                ev.evt_arg_path = txt(rel(a[0], &s0v));
                ev.evt_arg_mode = txt(render::mode(a[2]));
            }
            nr::rename => {
                ev.evt_arg_oldpath = txt(rel(AT_FDCWD as u64, &s0v));
                ev.evt_arg_newpath = txt(rel(AT_FDCWD as u64, &s1v));
            }
            nr::renameat | nr::renameat2 => {
                ev.evt_arg_oldpath = txt(rel(a[0], &s0v));
                ev.evt_arg_newpath = txt(rel(a[2], &s1v));
            }
            nr::link => {
                ev.evt_arg_oldpath = txt(rel(AT_FDCWD as u64, &s0v));
                ev.evt_arg_newpath = txt(rel(AT_FDCWD as u64, &s1v));
            }
            nr::linkat => {
                ev.evt_arg_oldpath = txt(rel(a[0], &s0v));
                ev.evt_arg_newpath = txt(rel(a[2], &s1v));
            }
            nr::symlink => {
                ev.evt_arg_target = txt(s0v.clone());
                ev.evt_arg_linkpath = txt(rel(AT_FDCWD as u64, &s1v));
            }
            nr::symlinkat => {
                ev.evt_arg_target = txt(s0v.clone());
                ev.evt_arg_linkpath = txt(rel(a[1], &s1v));
            }
            nr::chmod => {
                ev.evt_arg_filename = txt(rel(AT_FDCWD as u64, &s0v));
                ev.evt_arg_mode = txt(render::mode(a[1]));
            }
            nr::fchmodat | nr::fchmodat2 => {
                ev.evt_arg_filename = txt(rel(a[0], &s0v));
                ev.evt_arg_mode = txt(render::mode(a[2]));
            }
            nr::fchmod => {
                ev.evt_arg_fd = txt((a[0] as i32).to_string());
                ev.evt_arg_mode = txt(render::mode(a[1]));
                self.fd_path(&mut ev, tgid, a[0] as i32);
            }
            nr::chown | nr::lchown => {
                ev.evt_arg_path = txt(rel(AT_FDCWD as u64, &s0v));
                ev.evt_arg_uid = txt((a[1] as u32).to_string());
                ev.evt_arg_gid = txt((a[2] as u32).to_string());
            }
            nr::fchownat => {
                ev.evt_arg_path = txt(rel(a[0], &s0v));
                ev.evt_arg_uid = txt((a[2] as u32).to_string());
                ev.evt_arg_gid = txt((a[3] as u32).to_string());
            }
            nr::fchown => {
                ev.evt_arg_fd = txt((a[0] as i32).to_string());
                ev.evt_arg_uid = txt((a[1] as u32).to_string());
                ev.evt_arg_gid = txt((a[2] as u32).to_string());
                self.fd_path(&mut ev, tgid, a[0] as i32);
            }
            nr::connect | nr::bind | nr::accept | nr::accept4 | nr::listen => {
                let fd = if matches!(h.nr, nr::accept | nr::accept4) {
                    ret
                } else {
                    a[0] as i32 as i64
                };
                let addr = if h.parts & part::SOCKADDR != 0 {
                    render::sockaddr(extra)
                } else {
                    None
                };
                self.socket(&mut ev, tgid, h.nr, fd, addr, tuple);
            }
            nr::socket => {
                ev.evt_arg_domain = txt(render::domain(a[0]));
                ev.evt_arg_type = txt(render::sock_type(a[1]));
                if ret >= 0 {
                    ev.fd_num = Some(ret);
                }
                if a[0] == 17 {
                    ev.fd_type = txt("packet");
                }
            }
            nr::sendto
            | nr::recvfrom
            | nr::sendmsg
            | nr::recvmsg
            | nr::sendmmsg
            | nr::recvmmsg
            | nr::read
            | nr::write
            | nr::writev => {
                // Only calls on DNS sockets (port 53, UDP or TCP) reach userspace.
                ev.fd_num = Some(a[0] as i32 as i64);
                let info = tuple.or_else(|| sys::sock_info(tgid, a[0] as i32));
                let stream = info
                    .as_ref()
                    .is_some_and(|i| i.sock_type == libc::SOCK_STREAM);
                ev.fd_l4proto = txt(if stream { "tcp" } else { "udp" });
                if let Some(info) = info {
                    set_tuple(&mut ev, info.local, info.peer, false);
                    ev.fd_type = txt(
                        if matches!(info.peer.or(info.local), Some(std::net::SocketAddr::V6(_))) {
                            "ipv6"
                        } else {
                            "ipv4"
                        },
                    );
                }
                let parsed = if stream {
                    dns::parse_stream(extra)
                } else {
                    dns::parse(extra)
                };
                if let Some(d) = parsed {
                    if d.response && d.rcode.as_deref() == Some("NOERROR") {
                        if self.resolved.len() + d.answers.len() > MAX_RESOLVED {
                            self.resolved.clear();
                        }
                        let name = Text::from(d.name.as_str());
                        for ip in &d.answers {
                            self.resolved.insert(*ip, name.clone());
                        }
                    }
                    ev.dns_name = txt(d.name);
                    ev.dns_type = txt(d.qtype);
                    ev.dns_rcode = d.rcode.map(Text::from);
                    if d.response {
                        ev.dns_answers = Some(
                            d.answers
                                .iter()
                                .map(|ip| Text::from(ip.to_string()))
                                .collect::<Vec<_>>()
                                .into(),
                        );
                    }
                }
            }
            nr::dup | nr::dup2 | nr::dup3 => {
                ev.evt_arg_fd = txt((a[0] as i32).to_string());
                ev.fd_num = Some(a[0] as i32 as i64);
                if h.nr == nr::dup3 {
                    ev.evt_arg_flags = txt(if a[2] & 0o2000000 != 0 {
                        "O_CLOEXEC"
                    } else {
                        "0"
                    });
                }
                let target = if ret >= 0 { ret as i32 } else { a[0] as i32 };
                if let Some(info) = tuple.or_else(|| sys::sock_info(tgid, target)) {
                    let ty = match info.family {
                        libc::AF_INET => "ipv4",
                        libc::AF_INET6 => "ipv6",
                        libc::AF_UNIX => "unix",
                        _ => "socket",
                    };
                    ev.fd_type = txt(ty);
                    ev.fd_l4proto = txt(if info.sock_type == libc::SOCK_STREAM {
                        "tcp"
                    } else {
                        "udp"
                    });
                    set_tuple(&mut ev, info.local, info.peer, false);
                } else {
                    self.fd_path(&mut ev, tgid, target);
                }
            }
            nr::ptrace => {
                ev.evt_arg_request = txt(render::ptrace_request(a[0]));
                ev.evt_arg_pid = txt((a[1] as i32).to_string());
            }
            nr::setuid | nr::setfsuid => ev.evt_arg_uid = txt((a[0] as u32).to_string()),
            nr::setgid | nr::setfsgid => ev.evt_arg_gid = txt((a[0] as u32).to_string()),
            nr::setreuid | nr::setresuid => ev.evt_arg_uid = txt((a[1] as u32).to_string()),
            nr::setregid | nr::setresgid => ev.evt_arg_gid = txt((a[1] as u32).to_string()),
            nr::mount => {
                ev.evt_arg_dev = txt(s0v.clone());
                ev.evt_arg_dir = txt(rel(AT_FDCWD as u64, &s1v));
                ev.evt_arg_type = txt(cstr(extra));
                ev.evt_arg_flags = txt(render::mount_flags(a[3]));
            }
            nr::umount2 => {
                ev.evt_arg_dir = txt(rel(AT_FDCWD as u64, &s0v));
                ev.evt_arg_flags = txt(render::umount_flags(a[1]));
            }
            nr::rmdir => ev.evt_arg_path = txt(rel(AT_FDCWD as u64, &s0v)),
            nr::kill => {
                ev.evt_arg_pid = txt((a[0] as i32).to_string());
                ev.evt_arg_sig = txt(render::signal(a[1]));
            }
            nr::tkill => {
                ev.evt_arg_tid = txt((a[0] as i32).to_string());
                ev.evt_arg_sig = txt(render::signal(a[1]));
            }
            nr::tgkill => {
                ev.evt_arg_pid = txt((a[0] as i32).to_string());
                ev.evt_arg_tid = txt((a[1] as i32).to_string());
                ev.evt_arg_sig = txt(render::signal(a[2]));
            }
            nr::prctl => {
                ev.evt_arg_option = txt(render::prctl_option(a[0]));
                if s0.is_some() {
                    ev.evt_arg_arg2_str = txt(s0v.clone());
                    // PR_SET_NAME of the main thread renames the process (its ancestry
                    // name for later children).
                    if ret == 0
                        && tid == tgid
                        && let Some(p) = self.procs.get_mut(tgid)
                    {
                        p.comm = Text::from(s0v.as_str());
                        self.procs.touch();
                    }
                } else {
                    ev.evt_arg_arg2_int = txt((a[1] as i64).to_string());
                }
            }
            nr::delete_module => {
                ev.evt_arg_name = txt(s0v.clone());
                ev.evt_arg_flags = txt(render::delete_module_flags(a[1]));
            }
            nr::userfaultfd => {
                ev.evt_arg_flags = txt(render::userfaultfd_flags(a[0]));
                if ret >= 0 {
                    ev.fd_num = Some(ret);
                    ev.fd_type = txt("userfaultfd");
                }
            }
            nr::unshare => ev.evt_arg_flags = txt(render::clone_flags(a[0])),
            nr::setns => {
                ev.evt_arg_fd = txt((a[0] as i32).to_string());
                ev.evt_arg_nstype = txt(render::clone_flags(a[1]));
            }
            nr::init_module => ev.evt_arg_name = txt(format!("<{} bytes>", a[1])),
            nr::finit_module => {
                ev.evt_arg_fd = txt((a[0] as i32).to_string());
                self.fd_path(&mut ev, tgid, a[0] as i32);
            }
            nr::memfd_create => {
                ev.evt_arg_name = txt(s0v.clone());
                ev.evt_arg_flags = txt(render::memfd_flags(a[1]));
                if ret >= 0 {
                    ev.fd_num = Some(ret);
                    ev.fd_type = txt("memfd");
                    ev.fd_name = txt(format!("/memfd:{s0v}"));
                }
            }
            nr::bpf => ev.evt_arg_cmd = txt(render::bpf_cmd(a[0])),
            nr::clone => ev.evt_arg_flags = txt(render::clone_flags(a[0])),
            _ => {}
        }
        if let Some(ip) = ev.fd_sip {
            ev.fd_sip_name = self.resolved.get(&ip).cloned();
        }
        if let Some(ip) = ev.fd_cip {
            ev.fd_cip_name = self.resolved.get(&ip).cloned();
        }
        self.fill_proc(&mut ev, tgid, tid, &comm, uid, gid, h.cgroup_id);
        self.stamp(&mut ev, ts);
        Ok(Some(ev))
    }

    /// Sets `fd.name`/`fd.type` from `/proc/<pid>/fd/<fd>` (best effort).
    fn fd_path(&self, ev: &mut Event, tgid: u32, fd: i32) {
        if let Ok(t) = std::fs::read_link(format!("/proc/{tgid}/fd/{fd}")) {
            let t = t.to_string_lossy().into_owned();
            ev.fd_type = txt(if t.starts_with('/') {
                "file"
            } else if t.starts_with("pipe:") {
                "pipe"
            } else {
                "other"
            });
            ev.fd_name = txt(t);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn socket(
        &self,
        ev: &mut Event,
        tgid: u32,
        call: u16,
        fd: i64,
        addr: Option<SockAddr>,
        tuple: Option<sys::SockInfo>,
    ) {
        if fd >= 0 {
            ev.fd_num = Some(fd);
        }
        let info = tuple.or_else(|| {
            if fd >= 0 {
                sys::sock_info(tgid, fd as i32)
            } else {
                None
            }
        });
        let server = matches!(call, nr::accept | nr::accept4 | nr::bind | nr::listen);
        ev.fd_is_server = Some(server);
        if let Some(i) = &info {
            ev.fd_l4proto = txt(match i.sock_type {
                libc::SOCK_STREAM => "tcp",
                libc::SOCK_DGRAM => "udp",
                libc::SOCK_RAW => "raw",
                _ => "unknown",
            });
        }
        if let Some(SockAddr::Unix(path)) = &addr {
            ev.fd_type = txt("unix");
            ev.fd_name = txt(path.clone());
            return;
        }
        if info.as_ref().is_some_and(|i| i.family == libc::AF_UNIX) {
            ev.fd_type = txt("unix");
            return;
        }
        let (local, peer) = (
            info.as_ref().and_then(|i| i.local),
            info.as_ref().and_then(|i| i.peer),
        );
        let from_addr = match addr {
            Some(SockAddr::Ip(ip, port)) => Some(std::net::SocketAddr::new(ip, port)),
            _ => None,
        };
        match call {
            nr::connect => set_tuple(ev, local, from_addr.or(peer), false),
            nr::accept | nr::accept4 => set_tuple(ev, from_addr.or(peer), local, true),
            // bind/listen: the bound address (port 0 in the call means "pick one").
            _ => set_tuple(ev, None, local.or(from_addr), true),
        }
        ev.fd_connected = Some(
            matches!(call, nr::connect | nr::accept | nr::accept4)
                && ev.evt_rawres.is_some_and(|r| r >= 0 || r == -115),
        );
        let v6 = matches!(ev.fd_sip.or(ev.fd_cip), Some(std::net::IpAddr::V6(_)));
        if ev.fd_sip.is_some() || ev.fd_cip.is_some() {
            ev.fd_type = txt(if v6 { "ipv6" } else { "ipv4" });
        }
    }

    /// Short container id for the task's cgroup (cached per cgroup id): from the path of
    /// the cgroup v2 directory whose inode is the id, else `/proc/<pid>/cgroup`.
    fn container_of(&mut self, tgid: u32, cgroup_id: u64) -> Text {
        if let Some(c) = self.cgroups.get(&cgroup_id) {
            return c.clone();
        }
        // The directory whose inode is the id is authoritative; /proc/<pid>/cgroup is the
        // fallback (an exited task may already show the root cgroup there).
        let found = super::container::path_of_cgroup_id(cgroup_id)
            .map(|p| super::container::from_path(&p).unwrap_or_else(|| "host".into()))
            .or_else(|| {
                std::fs::read_to_string(format!("/proc/{tgid}/cgroup"))
                    .ok()
                    .map(|text| super::container::from_proc_cgroup(&text))
            });
        tracing::debug!(tgid, cgroup_id, ?found, "new cgroup");
        match found {
            Some(c) => {
                let c = Text::from(c);
                self.cgroups.insert(cgroup_id, c.clone());
                c
            }
            None => self
                .procs
                .get(tgid)
                .map(|p| p.container.clone())
                .unwrap_or_else(|| "host".into()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn fill_proc(
        &mut self,
        ev: &mut Event,
        tgid: u32,
        tid: u32,
        comm: &str,
        uid: u32,
        gid: u32,
        cgroup_id: u64,
    ) {
        let container = self.container_of(tgid, cgroup_id);
        if self.procs.get_or_load(tgid).is_none() {
            let p = self.procs.fork(tgid, 0, 0, Timestamp(0));
            p.comm = comm.into();
            p.ppid = 0;
        }
        if let Some(p) = self.procs.get_or_load(tgid) {
            p.uid = uid;
            p.gid = gid;
            if p.container.is_empty() || &*p.container == "host" {
                p.container = container;
            }
        }
        let Some(p) = self.procs.get(tgid) else {
            return;
        };
        ev.proc_pid = Some(tgid as u64);
        ev.thread_tid = Some(tid as u64);
        ev.proc_ppid = Some(p.ppid as u64);
        ev.proc_vpid = Some(p.vpid as u64);
        ev.proc_sid = Some(p.sid as u64);
        ev.proc_vpgid = Some(p.pgid as u64);
        ev.proc_name = Some(if comm.is_empty() {
            p.comm.clone()
        } else {
            Text::from(comm)
        });
        ev.proc_exe = Some(p.exe.clone());
        ev.proc_exepath = Some(p.exepath.clone());
        ev.proc_args = Some(p.args.clone());
        ev.proc_cwd = Some(p.cwd.clone());
        ev.proc_tty = Some(p.tty);
        ev.proc_pid_ts = p.start;
        if let Some((ino, ctime, mtime)) = p.exe_ino {
            ev.proc_exe_ino = Some(ino);
            ev.proc_exe_ino_ctime = Some(ctime);
            ev.proc_exe_ino_mtime = Some(mtime);
        }
        ev.proc_is_exe_from_memfd = Some(p.exe_memfd);
        ev.proc_is_exe_upper_layer = Some(p.exe_upper);
        ev.thread_cap_effective = p.cap_effective.map(|m| {
            self.cap_names
                .entry(m)
                .or_insert_with(|| Text::from(caps(m)))
                .clone()
        });
        ev.user_uid = Some(uid as u64);
        ev.user_name = Some(self.names.user(uid));
        ev.group_gid = Some(gid as u64);
        ev.group_name = Some(self.names.group(gid));
        ev.user_loginuid = Some(p.loginuid);
        ev.user_loginname = self.names.login(p.loginuid);
        ev.container_id = Some(p.container.clone());
        if let Some(leader) = self.procs.get(p.sid).filter(|_| p.sid != 0) {
            ev.proc_sname = txt(leader.comm.clone());
        }
        let anc = self.procs.ancestry(tgid);
        ev.proc_aname = Some(anc.names);
        ev.proc_apid = Some(anc.pids);
        ev.proc_aexe = Some(anc.exes);
        ev.proc_aexepath = Some(anc.exepaths);
        ev.proc_acmdline = Some(anc.cmdlines);
    }
}

/// The [`lanner_capture_common::SockTuple`] the kernel wrote.
fn parse_tuple(b: &[u8]) -> Option<sys::SockInfo> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    if b.len() < 48 {
        return None;
    }
    let family = i32::from(u16_at(0));
    let (local_port, remote_port) = (u16_at(6), u16::from_be_bytes([b[8], b[9]]));
    let ip = |at: usize| -> Option<IpAddr> {
        match family {
            libc::AF_INET => Some(IpAddr::V4(Ipv4Addr::new(
                b[at],
                b[at + 1],
                b[at + 2],
                b[at + 3],
            ))),
            libc::AF_INET6 => {
                let o: [u8; 16] = b[at..at + 16].try_into().ok()?;
                let v6 = Ipv6Addr::from(o);
                Some(
                    v6.to_ipv4_mapped()
                        .map(IpAddr::V4)
                        .unwrap_or(IpAddr::V6(v6)),
                )
            }
            _ => None,
        }
    };
    let local = ip(16).map(|a| SocketAddr::new(a, local_port));
    let peer = ip(32)
        .filter(|_| remote_port != 0)
        .map(|a| SocketAddr::new(a, remote_port));
    Some(sys::SockInfo {
        local,
        peer,
        sock_type: i32::from(u16_at(2)),
        family,
    })
}

/// Sets client and server tuple fields and `fd.name` (`cip:cport->sip:sport`).
fn set_tuple(
    ev: &mut Event,
    client: Option<std::net::SocketAddr>,
    server: Option<std::net::SocketAddr>,
    is_server: bool,
) {
    if let Some(c) = client {
        ev.fd_cip = Some(c.ip());
        ev.fd_cport = Some(c.port() as u64);
    }
    if let Some(s) = server {
        ev.fd_sip = Some(s.ip());
        ev.fd_sport = Some(s.port() as u64);
    }
    ev.fd_is_server = Some(is_server);
    let end = |a: Option<std::net::SocketAddr>| a.map(|a| render::endpoint(a.ip(), a.port()));
    ev.fd_name = match (end(client), end(server)) {
        (Some(c), Some(s)) => txt(format!("{c}->{s}")),
        (None, Some(s)) => txt(if is_server { s } else { format!("->{s}") }),
        (Some(c), None) => txt(c),
        (None, None) => None,
    };
}

/// Capability names of a mask, space-separated as Falco prints `thread.cap_effective`.
pub fn caps(mask: u64) -> String {
    const NAMES: &[&str] = &[
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_like_falco() {
        assert_eq!(resolve("/home/a/", "x.txt"), "/home/a/x.txt");
        assert_eq!(resolve("/home/a/", "../b/./c"), "/home/b/c");
        assert_eq!(resolve("/x/", "/etc//shadow"), "/etc/shadow");
        assert_eq!(resolve("", "rel"), "rel");
    }

    #[test]
    fn normal_paths_are_kept_and_others_normalized() {
        for (path, want) in [
            ("/", "/"),
            ("/etc/shadow", "/etc/shadow"),
            ("/etc/", "/etc"),
            ("//etc", "/etc"),
            ("/etc/.", "/etc"),
            ("/etc/..", "/"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/.hidden/x..y/.z", "/.hidden/x..y/.z"),
        ] {
            assert_eq!(normalize(path), want, "{path}");
            assert_eq!(is_normal(path), path == want, "{path}");
        }
    }

    #[test]
    fn short_record_is_an_error() {
        let mut d = Decoder {
            procs: ProcTable::new(0),
            names: Names::default(),
            node: "n".into(),
            session: "s".into(),
            cap_names: HashMap::new(),
            next_num: 1,
            boot_to_wall: 0,
            cgroups: HashMap::new(),
            syscall_names: HashMap::new(),
            resolved: HashMap::new(),
        };
        assert!(d.decode(&[0u8; 10]).is_err());
    }

    #[test]
    fn capability_names() {
        assert_eq!(caps(0), "");
        assert_eq!(caps((1 << 21) | 1), "CAP_CHOWN CAP_SYS_ADMIN");
    }
}
