//! Falco-style renderings shared by the accessor and the sensor: errno names, fd type
//! letters, event categories, path splitting and `evt.args`.

use crate::model::{ALL_STORED, Event, STORED_FIELDS};

/// `SUCCESS` for `rawres >= 0`, otherwise the errno name (`ENOENT`), as Falco's `evt.res`.
pub fn res_name(rawres: i64) -> &'static str {
    if rawres >= 0 {
        return "SUCCESS";
    }
    // `unsigned_abs`: -i64::MIN would overflow (a crafted event can carry it).
    match rawres.unsigned_abs() {
        1 => "EPERM",
        2 => "ENOENT",
        3 => "ESRCH",
        4 => "EINTR",
        5 => "EIO",
        6 => "ENXIO",
        7 => "E2BIG",
        8 => "ENOEXEC",
        9 => "EBADF",
        10 => "ECHILD",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        16 => "EBUSY",
        17 => "EEXIST",
        18 => "EXDEV",
        19 => "ENODEV",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        23 => "ENFILE",
        24 => "EMFILE",
        25 => "ENOTTY",
        26 => "ETXTBSY",
        27 => "EFBIG",
        28 => "ENOSPC",
        29 => "ESPIPE",
        30 => "EROFS",
        31 => "EMLINK",
        32 => "EPIPE",
        36 => "ENAMETOOLONG",
        38 => "ENOSYS",
        39 => "ENOTEMPTY",
        40 => "ELOOP",
        95 => "EOPNOTSUPP",
        97 => "EAFNOSUPPORT",
        98 => "EADDRINUSE",
        99 => "EADDRNOTAVAIL",
        101 => "ENETUNREACH",
        104 => "ECONNRESET",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        113 => "EHOSTUNREACH",
        115 => "EINPROGRESS",
        _ => "E?",
    }
}

/// Falco's one-letter fd type (`fd.typechar`).
pub fn typechar(fd_type: &str) -> &'static str {
    match fd_type {
        "file" => "f",
        "directory" => "d",
        "ipv4" => "4",
        "ipv6" => "6",
        "unix" => "u",
        "pipe" => "p",
        "event" | "eventfd" => "e",
        "signalfd" => "s",
        "eventpoll" => "l",
        "inotify" => "i",
        "bpf" => "b",
        "userfaultfd" => "u",
        "io_uring" => "r",
        "memfd" => "m",
        "netlink" => "n",
        _ => "o",
    }
}

/// Whether the syscall is one of the open family.
pub fn is_open_call(evt_type: &str) -> bool {
    matches!(
        evt_type,
        "open" | "openat" | "openat2" | "creat" | "open_by_handle_at"
    )
}

/// Falco's `evt.category` of a syscall.
pub fn category(evt_type: &str) -> &'static str {
    match evt_type {
        "execve" | "execveat" | "clone" | "clone3" | "fork" | "vfork" | "procexit" | "exit"
        | "exit_group" | "ptrace" | "setuid" | "setgid" | "setresuid" | "setresgid" | "unshare"
        | "setns" | "prctl" => "process",
        "open" | "openat" | "openat2" | "creat" | "unlink" | "unlinkat" | "rename" | "renameat"
        | "renameat2" | "chmod" | "fchmod" | "fchmodat" | "chown" | "fchown" | "lchown"
        | "fchownat" | "mkdir" | "mkdirat" | "symlink" | "symlinkat" | "link" | "linkat"
        | "mount" | "umount" | "umount2" | "dup" | "dup2" | "dup3" | "memfd_create" => "file",
        "connect" | "accept" | "accept4" | "bind" | "listen" | "socket" | "sendto" | "sendmsg"
        | "recvfrom" | "recvmsg" => "net",
        "init_module" | "finit_module" | "delete_module" | "bpf" => "system",
        "lanner_drop" => "internal",
        _ => "other",
    }
}

/// Splits `/a/b/c` into (`/a/b`, `c`); `/c` gives (`/`, `c`). `None` for a
/// non-absolute name (a socket tuple, say).
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    if !path.starts_with('/') {
        return None;
    }
    let idx = path.rfind('/')?;
    let dir = if idx == 0 { "/" } else { &path[..idx] };
    Some((dir, &path[idx + 1..]))
}

/// `evt.args`: the call's result and set arguments as `name=value`, space-separated.
pub fn args(ev: &Event) -> String {
    let mut out = String::new();
    if let Some(r) = ev.evt_rawres {
        out.push_str(&format!("res={r}"));
        if r < 0 {
            out.push_str(&format!("({})", res_name(r)));
        }
    }
    if let Some(fd) = ev.fd_num {
        let name = ev.fd_name.as_deref().unwrap_or("");
        let tc = ev.fd_type.as_deref().map(typechar).unwrap_or("o");
        out.push_str(&format!(" fd={fd}(<{tc}>{name})"));
    }
    for (info, field) in STORED_FIELDS.iter().zip(ALL_STORED) {
        let Some(arg) = info.name.strip_prefix("evt.arg.") else {
            continue;
        };
        if let Some(v) = ev.get_stored(*field) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&format!("{arg}={v}"));
        }
    }
    out.trim_start().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_like_falco() {
        assert_eq!(split_path("/etc/shadow"), Some(("/etc", "shadow")));
        assert_eq!(split_path("/shadow"), Some(("/", "shadow")));
        assert_eq!(split_path("127.0.0.1:1->2.2.2.2:3"), None);
    }

    #[test]
    fn args_render_result_fd_and_arguments() {
        let ev = Event {
            evt_rawres: Some(-13),
            fd_num: Some(3),
            fd_type: Some("file".into()),
            fd_name: Some("/etc/shadow".into()),
            evt_arg_flags: Some("O_RDONLY".into()),
            ..Default::default()
        };
        assert_eq!(
            args(&ev),
            "res=-13(EACCES) fd=3(<f>/etc/shadow) flags=O_RDONLY"
        );
    }

    #[test]
    fn res_names() {
        assert_eq!(res_name(3), "SUCCESS");
        assert_eq!(res_name(-2), "ENOENT");
        assert_eq!(res_name(-13), "EACCES");
        assert_eq!(
            res_name(i64::MIN),
            "E?",
            "no overflow on the most negative value"
        );
    }
}
