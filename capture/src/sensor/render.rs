//! Syscall arguments rendered as Falco renders them: open flags (`O_RDONLY|O_CLOEXEC`),
//! modes (`0644`), namespace flags, ptrace requests, bpf commands, socket domains and
//! types, and socket addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Joins the names of the set bits; `zero` when none is set.
fn bits(value: u64, table: &[(u64, &str)], zero: &str) -> String {
    let names: Vec<&str> = table
        .iter()
        .filter(|(b, _)| *b != 0 && value & b == *b)
        .map(|(_, n)| *n)
        .collect();
    if names.is_empty() {
        zero.to_owned()
    } else {
        names.join("|")
    }
}

/// Open flags (`open`, `openat`, `openat2`, `creat`) as Falco renders `evt.arg.flags`.
pub fn open_flags(flags: u64) -> String {
    let access = match flags & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_RDWR",
    };
    const T: &[(u64, &str)] = &[
        (0o100, "O_CREAT"),
        (0o200, "O_EXCL"),
        (0o400, "O_NOCTTY"),
        (0o1000, "O_TRUNC"),
        (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"),
        (0o10000, "O_DSYNC"),
        (0o40000, "O_DIRECT"),
        (0o100000, "O_LARGEFILE"),
        (0o200000, "O_DIRECTORY"),
        (0o400000, "O_NOFOLLOW"),
        (0o1000000, "O_NOATIME"),
        (0o2000000, "O_CLOEXEC"),
        (0o4000000, "O_SYNC"),
        (0o10000000, "O_PATH"),
        (0o20000000, "O_TMPFILE"),
    ];
    // O_SYNC includes O_DSYNC's bit and O_TMPFILE includes O_DIRECTORY's: show the wider.
    let mut f = flags & !3;
    if f & 0o4010000 == 0o4010000 {
        f &= !0o10000;
    }
    if f & 0o20200000 == 0o20200000 {
        f &= !0o200000;
    }
    let rest = bits(f, T, "");
    if rest.is_empty() {
        access.to_owned()
    } else {
        format!("{access}|{rest}")
    }
}

/// A file mode as Falco renders it: octal with its permission names.
pub fn mode(mode: u64) -> String {
    const T: &[(u64, &str)] = &[
        (0o1, "S_IXOTH"),
        (0o2, "S_IWOTH"),
        (0o4, "S_IROTH"),
        (0o10, "S_IXGRP"),
        (0o20, "S_IWGRP"),
        (0o40, "S_IRGRP"),
        (0o100, "S_IXUSR"),
        (0o200, "S_IWUSR"),
        (0o400, "S_IRUSR"),
        (0o1000, "S_ISVTX"),
        (0o2000, "S_ISGID"),
        (0o4000, "S_ISUID"),
    ];
    let m = mode & 0o7777;
    format!("0{m:o}({})", bits(m, T, ""))
}

/// `CLONE_*` namespace flags (unshare, setns, clone).
pub fn clone_flags(flags: u64) -> String {
    const T: &[(u64, &str)] = &[
        (0x100, "CLONE_VM"),
        (0x200, "CLONE_FS"),
        (0x400, "CLONE_FILES"),
        (0x800, "CLONE_SIGHAND"),
        (0x2000, "CLONE_PTRACE"),
        (0x4000, "CLONE_VFORK"),
        (0x8000, "CLONE_PARENT"),
        (0x10000, "CLONE_THREAD"),
        (0x20000, "CLONE_NEWNS"),
        (0x40000, "CLONE_SYSVSEM"),
        (0x80000, "CLONE_SETTLS"),
        (0x100000, "CLONE_PARENT_SETTID"),
        (0x200000, "CLONE_CHILD_CLEARTID"),
        (0x800000, "CLONE_UNTRACED"),
        (0x1000000, "CLONE_CHILD_SETTID"),
        (0x2000000, "CLONE_NEWCGROUP"),
        (0x4000000, "CLONE_NEWUTS"),
        (0x8000000, "CLONE_NEWIPC"),
        (0x10000000, "CLONE_NEWUSER"),
        (0x20000000, "CLONE_NEWPID"),
        (0x40000000, "CLONE_NEWNET"),
        (0x80000000, "CLONE_IO"),
    ];
    bits(flags, T, "0")
}

/// `MS_*` mount flags.
pub fn mount_flags(flags: u64) -> String {
    const T: &[(u64, &str)] = &[
        (1, "MS_RDONLY"),
        (2, "MS_NOSUID"),
        (4, "MS_NODEV"),
        (8, "MS_NOEXEC"),
        (16, "MS_SYNCHRONOUS"),
        (32, "MS_REMOUNT"),
        (64, "MS_MANDLOCK"),
        (128, "MS_DIRSYNC"),
        (1024, "MS_NOATIME"),
        (2048, "MS_NODIRATIME"),
        (4096, "MS_BIND"),
        (8192, "MS_MOVE"),
        (16384, "MS_REC"),
        (32768, "MS_SILENT"),
        (1 << 17, "MS_UNBINDABLE"),
        (1 << 18, "MS_PRIVATE"),
        (1 << 19, "MS_SLAVE"),
        (1 << 20, "MS_SHARED"),
    ];
    bits(flags, T, "0")
}

/// `MFD_*` memfd_create flags.
pub fn memfd_flags(flags: u64) -> String {
    bits(
        flags,
        &[
            (1, "MFD_CLOEXEC"),
            (2, "MFD_ALLOW_SEALING"),
            (4, "MFD_HUGETLB"),
            (8, "MFD_NOEXEC_SEAL"),
            (16, "MFD_EXEC"),
        ],
        "0",
    )
}

/// A ptrace request name.
pub fn ptrace_request(req: u64) -> String {
    match req {
        0 => "PTRACE_TRACEME",
        1 => "PTRACE_PEEKTEXT",
        2 => "PTRACE_PEEKDATA",
        3 => "PTRACE_PEEKUSR",
        4 => "PTRACE_POKETEXT",
        5 => "PTRACE_POKEDATA",
        6 => "PTRACE_POKEUSR",
        7 => "PTRACE_CONT",
        8 => "PTRACE_KILL",
        9 => "PTRACE_SINGLESTEP",
        12 => "PTRACE_GETREGS",
        13 => "PTRACE_SETREGS",
        16 => "PTRACE_ATTACH",
        17 => "PTRACE_DETACH",
        24 => "PTRACE_SYSCALL",
        0x4200 => "PTRACE_SETOPTIONS",
        0x4206 => "PTRACE_SEIZE",
        0x4207 => "PTRACE_INTERRUPT",
        _ => return req.to_string(),
    }
    .to_owned()
}

/// A bpf(2) command name.
pub fn bpf_cmd(cmd: u64) -> String {
    const NAMES: &[&str] = &[
        "BPF_MAP_CREATE",
        "BPF_MAP_LOOKUP_ELEM",
        "BPF_MAP_UPDATE_ELEM",
        "BPF_MAP_DELETE_ELEM",
        "BPF_MAP_GET_NEXT_KEY",
        "BPF_PROG_LOAD",
        "BPF_OBJ_PIN",
        "BPF_OBJ_GET",
        "BPF_PROG_ATTACH",
        "BPF_PROG_DETACH",
        "BPF_PROG_TEST_RUN",
        "BPF_PROG_GET_NEXT_ID",
        "BPF_MAP_GET_NEXT_ID",
        "BPF_PROG_GET_FD_BY_ID",
        "BPF_MAP_GET_FD_BY_ID",
        "BPF_OBJ_GET_INFO_BY_FD",
        "BPF_PROG_QUERY",
        "BPF_RAW_TRACEPOINT_OPEN",
        "BPF_BTF_LOAD",
        "BPF_BTF_GET_FD_BY_ID",
        "BPF_TASK_FD_QUERY",
        "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
        "BPF_MAP_FREEZE",
        "BPF_BTF_GET_NEXT_ID",
        "BPF_MAP_LOOKUP_BATCH",
        "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
        "BPF_MAP_UPDATE_BATCH",
        "BPF_MAP_DELETE_BATCH",
        "BPF_LINK_CREATE",
        "BPF_LINK_UPDATE",
        "BPF_LINK_GET_FD_BY_ID",
        "BPF_LINK_GET_NEXT_ID",
        "BPF_ENABLE_STATS",
        "BPF_ITER_CREATE",
        "BPF_LINK_DETACH",
        "BPF_PROG_BIND_MAP",
        "BPF_TOKEN_CREATE",
    ];
    NAMES
        .get(cmd as usize)
        .map(|s| (*s).to_owned())
        .unwrap_or_else(|| cmd.to_string())
}

/// A signal as Falco renders `evt.arg.sig`: `9(SIGKILL)`.
pub fn signal(sig: u64) -> String {
    const NAMES: &[&str] = &[
        "",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    let sig = sig as u32;
    match NAMES.get(sig as usize).filter(|n| !n.is_empty()) {
        Some(name) => format!("{sig}({name})"),
        None if (34..=64).contains(&sig) => format!("{sig}(SIGRTMIN+{})", sig - 34),
        None => sig.to_string(),
    }
}

/// A prctl(2) option as Falco renders `evt.arg.option`.
pub fn prctl_option(opt: u64) -> String {
    match opt {
        1 => "PR_SET_PDEATHSIG",
        2 => "PR_GET_PDEATHSIG",
        3 => "PR_GET_DUMPABLE",
        4 => "PR_SET_DUMPABLE",
        8 => "PR_SET_KEEPCAPS",
        15 => "PR_SET_NAME",
        16 => "PR_GET_NAME",
        22 => "PR_SET_SECCOMP",
        23 => "PR_CAPBSET_READ",
        24 => "PR_CAPBSET_DROP",
        35 => "PR_SET_MM",
        36 => "PR_SET_CHILD_SUBREAPER",
        37 => "PR_GET_CHILD_SUBREAPER",
        38 => "PR_SET_NO_NEW_PRIVS",
        39 => "PR_GET_NO_NEW_PRIVS",
        47 => "PR_CAP_AMBIENT",
        0x5961_6d61 => "PR_SET_PTRACER",
        _ => return opt.to_string(),
    }
    .to_owned()
}

/// umount2(2) flags.
pub fn umount_flags(flags: u64) -> String {
    bits(
        flags,
        &[
            (1, "MNT_FORCE"),
            (2, "MNT_DETACH"),
            (4, "MNT_EXPIRE"),
            (8, "UMOUNT_NOFOLLOW"),
        ],
        "0",
    )
}

/// delete_module(2) flags (`O_NONBLOCK`, `O_TRUNC`).
pub fn delete_module_flags(flags: u64) -> String {
    bits(flags, &[(0o4000, "O_NONBLOCK"), (0o1000, "O_TRUNC")], "0")
}

/// userfaultfd(2) flags.
pub fn userfaultfd_flags(flags: u64) -> String {
    bits(
        flags,
        &[
            (0o2000000, "O_CLOEXEC"),
            (0o4000, "O_NONBLOCK"),
            (1, "UFFD_USER_MODE_ONLY"),
        ],
        "0",
    )
}

/// A socket domain name.
pub fn domain(d: u64) -> String {
    match d {
        1 => "AF_UNIX",
        2 => "AF_INET",
        10 => "AF_INET6",
        16 => "AF_NETLINK",
        17 => "AF_PACKET",
        _ => return d.to_string(),
    }
    .to_owned()
}

/// A socket type name (flags stripped).
pub fn sock_type(t: u64) -> String {
    match t & 0xf {
        1 => "SOCK_STREAM",
        2 => "SOCK_DGRAM",
        3 => "SOCK_RAW",
        5 => "SOCK_SEQPACKET",
        10 => "SOCK_PACKET",
        _ => return t.to_string(),
    }
    .to_owned()
}

/// A socket address from the kernel's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockAddr {
    /// IPv4 or IPv6 address and port.
    Ip(IpAddr, u16),
    /// A unix socket path (`@name` for the abstract namespace).
    Unix(String),
    /// Any other family.
    Other(u16),
}

/// Parses a `struct sockaddr` as the application passed it.
pub fn sockaddr(b: &[u8]) -> Option<SockAddr> {
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    match family {
        2 => {
            let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
            let ip: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            Some(SockAddr::Ip(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        10 => {
            let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
            let ip: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let ip = Ipv6Addr::from(ip);
            let ip = ip
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(ip));
            Some(SockAddr::Ip(ip, port))
        }
        1 => {
            let path = b.get(2..).unwrap_or(&[]);
            if path.first() == Some(&0) {
                let name = &path[1..];
                let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
                Some(SockAddr::Unix(format!(
                    "@{}",
                    String::from_utf8_lossy(&name[..end])
                )))
            } else {
                let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
                Some(SockAddr::Unix(
                    String::from_utf8_lossy(&path[..end]).into_owned(),
                ))
            }
        }
        f => Some(SockAddr::Other(f)),
    }
}

/// `ip:port` with brackets-free IPv6 as Falco prints tuples.
pub fn endpoint(ip: IpAddr, port: u16) -> String {
    format!("{ip}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_like_falco() {
        assert_eq!(open_flags(0o2000000), "O_RDONLY|O_CLOEXEC");
        assert_eq!(open_flags(0o1101), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(open_flags(2 | 0o2000), "O_RDWR|O_APPEND");
        assert_eq!(open_flags(0o4010001), "O_WRONLY|O_SYNC");
        assert_eq!(open_flags(0o20200002), "O_RDWR|O_TMPFILE");
    }

    #[test]
    fn modes_and_flags() {
        assert_eq!(mode(0o644), "0644(S_IROTH|S_IRGRP|S_IWUSR|S_IRUSR)");
        assert_eq!(
            clone_flags(0x20000 | 0x40000000),
            "CLONE_NEWNS|CLONE_NEWNET"
        );
        assert_eq!(clone_flags(0), "0");
        assert_eq!(ptrace_request(16), "PTRACE_ATTACH");
        assert_eq!(bpf_cmd(5), "BPF_PROG_LOAD");
        assert_eq!(domain(17), "AF_PACKET");
        assert_eq!(sock_type(2 | 0o2000000), "SOCK_DGRAM");
        assert_eq!(signal(9), "9(SIGKILL)");
        assert_eq!(signal(0), "0");
        assert_eq!(signal(36), "36(SIGRTMIN+2)");
        assert_eq!(prctl_option(15), "PR_SET_NAME");
        assert_eq!(umount_flags(2 | 8), "MNT_DETACH|UMOUNT_NOFOLLOW");
        assert_eq!(delete_module_flags(0o4000), "O_NONBLOCK");
        assert_eq!(userfaultfd_flags(0o2004000), "O_CLOEXEC|O_NONBLOCK");
    }

    #[test]
    fn sockaddrs() {
        let mut v4 = vec![2u8, 0, 0, 53, 10, 0, 0, 1];
        v4.extend([0; 8]);
        assert_eq!(
            sockaddr(&v4),
            Some(SockAddr::Ip("10.0.0.1".parse().expect("ip"), 53))
        );
        let mut v6 = vec![10u8, 0, 0x01, 0xbb, 0, 0, 0, 0];
        v6.extend("::1".parse::<Ipv6Addr>().expect("ip").octets());
        assert_eq!(
            sockaddr(&v6),
            Some(SockAddr::Ip("::1".parse().expect("ip"), 443))
        );
        let mut un = vec![1u8, 0];
        un.extend(b"/run/x.sock\0");
        assert_eq!(sockaddr(&un), Some(SockAddr::Unix("/run/x.sock".into())));
        assert_eq!(
            sockaddr(&[1, 0, 0, b'a', b'b']),
            Some(SockAddr::Unix("@ab".into()))
        );
        assert_eq!(sockaddr(&[2]), None);
        assert_eq!(sockaddr(&[2, 0, 0, 53]), None);
    }
}
