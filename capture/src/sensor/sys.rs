//! The few raw system calls the sensor makes: clocks, capability sets, and a look at
//! another process's socket (`pidfd_getfd` + `getsockname`/`getpeername`/`SO_TYPE`).
//! Every `unsafe` block of the userspace sensor is in this file.
#![allow(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Nanoseconds of `clock` (`libc::CLOCK_*`).
fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// `CLOCK_REALTIME - CLOCK_BOOTTIME`: add to `bpf_ktime_get_boot_ns()` to get wall time.
pub fn boot_to_wall_offset_ns() -> i64 {
    clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_BOOTTIME)
}

/// Waits up to `timeout_ms` for `fd` to become readable.
pub fn poll_readable(fd: i32, timeout_ms: i32) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, timeout_ms) };
}

/// What the sensor learns about a socket another process holds.
#[derive(Clone, Debug, Default)]
pub struct SockInfo {
    /// Local address.
    pub local: Option<SocketAddr>,
    /// Peer address.
    pub peer: Option<SocketAddr>,
    /// `SOCK_STREAM`, `SOCK_DGRAM`, ...
    pub sock_type: i32,
    /// `AF_INET`, `AF_INET6`, `AF_UNIX`, ...
    pub family: i32,
}

fn sockaddr_to_std(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match ss.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says it is a sockaddr_in.
            let sin = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))),
                u16::from_be(sin.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says it is a sockaddr_in6.
            let sin6 = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)),
                u16::from_be(sin6.sin6_port),
            ))
        }
        _ => None,
    }
}

/// Duplicates `fd` of process `pid` into this process (needs CAP_SYS_PTRACE) and reads
/// its addresses and type. `None` when the process or fd is gone or it is not a socket.
pub fn sock_info(pid: u32, fd: i32) -> Option<SockInfo> {
    // SAFETY: plain syscalls with integer arguments; returned fds are owned below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    if pidfd < 0 {
        return None;
    }
    // SAFETY: pidfd is a fresh fd we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    // SAFETY: as above.
    let sfd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if sfd < 0 {
        return None;
    }
    // SAFETY: sfd is a fresh fd we own.
    let sfd = unsafe { OwnedFd::from_raw_fd(sfd as i32) };
    let raw = sfd.as_raw_fd();
    let mut info = SockInfo::default();
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v/len are valid out pointers of the right size.
    if unsafe {
        libc::getsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    } != 0
    {
        return None;
    }
    info.sock_type = v;
    len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: as above.
    if unsafe {
        libc::getsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    } == 0
    {
        info.family = v;
    }
    // SAFETY: zeroed sockaddr_storage is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut slen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: ss/slen are valid out pointers.
    if unsafe {
        libc::getsockname(
            raw,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut slen,
        )
    } == 0
    {
        info.local = sockaddr_to_std(&ss);
    }
    // SAFETY: as above.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    slen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: as above.
    if unsafe {
        libc::getpeername(
            raw,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut slen,
        )
    } == 0
    {
        info.peer = sockaddr_to_std(&ss);
    }
    Some(info)
}
