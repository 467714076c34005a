//! The records lanner's eBPF programs write into the ring buffer and the globals the
//! userspace sensor sets before loading them. `no_std`, `repr(C)`, shared byte for byte
//! by `lanner-capture-ebpf` (kernel) and `lanner-capture` (userspace).
//!
//! One record is an [`EventHeader`] followed by up to three variable parts at fixed
//! offsets: string slot 0 at [`SLOT0`], string slot 1 at [`SLOT1`], and the extra area
//! (argv, a socket address, a DNS payload) at [`EXTRA`]. The record is cut after the
//! last part in use, so an `openat` costs the header plus its path.

#![no_std]

/// Bytes of one string slot (paths are cut there; Falco cuts at PATH_MAX).
pub const MAX_STR: usize = 256;
/// Bytes of the extra area (argv, socket address, DNS payload).
pub const MAX_EXTRA: usize = 1024;
/// Size of the header.
pub const HDR: usize = core::mem::size_of::<EventHeader>();
/// Offset of string slot 0.
pub const SLOT0: usize = HDR;
/// Offset of string slot 1.
pub const SLOT1: usize = HDR + MAX_STR;
/// Offset of the extra area.
pub const EXTRA: usize = HDR + 2 * MAX_STR;
/// Largest record.
pub const MAX_RECORD: usize = EXTRA + MAX_EXTRA;
/// Number of syscall slots in [`Config::syscalls`] (x86_64 numbers are below 512).
pub const NR_SYSCALLS: usize = 512;

/// What a record describes.
pub mod kind {
    /// A syscall: arguments from its entry, result from its exit.
    pub const SYSCALL: u16 = 0;
    /// A process (thread group leader) exited: `ret` is the exit status.
    pub const PROC_EXIT: u16 = 1;
    /// A syscall seen only at exit (the child's side of clone/fork): `args` are zero.
    pub const EXIT_ONLY: u16 = 2;
}

/// What each string slot / the extra area holds; bits in [`EventHeader::parts`].
pub mod part {
    /// Slot 0 holds a NUL-terminated string.
    pub const STR0: u16 = 1;
    /// Slot 1 holds a NUL-terminated string.
    pub const STR1: u16 = 2;
    /// Extra holds argv (NUL-separated), `len_extra` bytes.
    pub const ARGV: u16 = 4;
    /// Extra holds a socket address, `len_extra` bytes.
    pub const SOCKADDR: u16 = 8;
    /// Extra holds a DNS message, `len_extra` bytes.
    pub const DNS: u16 = 16;
    /// argv was longer than the extra area and was cut.
    pub const TRUNCATED: u16 = 32;
    /// Slot 1 holds a [`super::SockTuple`] of the call's socket.
    pub const TUPLE: u16 = 64;
}

/// Header of every record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EventHeader {
    /// `bpf_ktime_get_boot_ns()` at the event.
    pub ts_ns: u64,
    /// `bpf_get_current_pid_tgid()`: tgid in the high half, tid in the low half.
    pub pid_tgid: u64,
    /// `bpf_get_current_uid_gid()`: gid in the high half, uid in the low half.
    pub uid_gid: u64,
    /// cgroup v2 id of the task (the inode of its cgroup directory).
    pub cgroup_id: u64,
    /// Syscall result, or exit status for [`kind::PROC_EXIT`].
    pub ret: i64,
    /// Syscall arguments at entry.
    pub args: [u64; 6],
    /// [`kind`].
    pub kind: u16,
    /// Syscall number (x86_64).
    pub nr: u16,
    /// [`part`] bits.
    pub parts: u16,
    /// Bytes used in the extra area.
    pub len_extra: u16,
    /// Parent's tgid (`real_parent->tgid`).
    pub ppid: u32,
    /// Pid of the process in its own pid namespace.
    pub vpid: u32,
    /// Audit login uid (`u32::MAX` when unset).
    pub loginuid: u32,
    /// Bytes used in string slot 0 (with the NUL).
    pub len0: u16,
    /// Bytes used in string slot 1 (with the NUL).
    pub len1: u16,
    /// Task name (`comm`).
    pub comm: [u8; 16],
    /// Controlling terminal as `/proc/<pid>/stat`'s tty_nr (0 when none); set on exec.
    pub tty: u32,
    /// Padding.
    pub pad: u32,
}

/// Kernel structure offsets read from BTF by userspace (aya has no CO-RE field
/// relocations); 0 means unknown and the field is left unset.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Offsets {
    /// `task_struct.real_parent`.
    pub task_real_parent: u32,
    /// `task_struct.tgid`.
    pub task_tgid: u32,
    /// `task_struct.mm`.
    pub task_mm: u32,
    /// `task_struct.loginuid`.
    pub task_loginuid: u32,
    /// `task_struct.thread_pid`.
    pub task_thread_pid: u32,
    /// `task_struct.exit_code`.
    pub task_exit_code: u32,
    /// `mm_struct.arg_start`.
    pub mm_arg_start: u32,
    /// `mm_struct.arg_end`.
    pub mm_arg_end: u32,
    /// `struct pid.level`.
    pub pid_level: u32,
    /// `struct pid.numbers`.
    pub pid_numbers: u32,
    /// `sizeof(struct upid)`.
    pub upid_size: u32,
    /// `struct upid.nr`.
    pub upid_nr: u32,
    /// `task_struct.files`.
    pub task_files: u32,
    /// `files_struct.fdt`.
    pub files_fdt: u32,
    /// `fdtable.fd`.
    pub fdtable_fd: u32,
    /// `file.private_data`.
    pub file_private_data: u32,
    /// `file.f_inode`.
    pub file_inode: u32,
    /// `inode.i_mode`.
    pub inode_mode: u32,
    /// `socket.sk`.
    pub socket_sk: u32,
    /// `sock_common.skc_daddr` (in `struct sock`).
    pub sk_daddr: u32,
    /// `sock_common.skc_rcv_saddr`.
    pub sk_rcv_saddr: u32,
    /// `sock_common.skc_dport`.
    pub sk_dport: u32,
    /// `sock_common.skc_num`.
    pub sk_num: u32,
    /// `sock_common.skc_family`.
    pub sk_family: u32,
    /// `sock_common.skc_v6_daddr`.
    pub sk_v6_daddr: u32,
    /// `sock_common.skc_v6_rcv_saddr`.
    pub sk_v6_rcv_saddr: u32,
    /// `sock.sk_type`.
    pub sk_type: u32,
    /// `sock.sk_protocol`.
    pub sk_protocol: u32,
    /// `task_struct.signal`.
    pub task_signal: u32,
    /// `signal_struct.tty`.
    pub signal_tty: u32,
    /// `tty_struct.index`.
    pub tty_index: u32,
    /// `tty_struct.driver`.
    pub tty_driver: u32,
    /// `tty_driver.major`.
    pub driver_major: u32,
    /// `tty_driver.minor_start`.
    pub driver_minor_start: u32,
}

/// A socket's endpoints as the kernel holds them, written in string slot 1 when
/// [`part::TUPLE`] is set (connect, accept, bind, listen, dup, DNS send/receive).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SockTuple {
    /// `AF_INET`, `AF_INET6`, `AF_UNIX`, ...
    pub family: u16,
    /// `SOCK_STREAM`, `SOCK_DGRAM`, ...
    pub sock_type: u16,
    /// IP protocol (`IPPROTO_TCP`, ...).
    pub protocol: u16,
    /// Local port, host order.
    pub local_port: u16,
    /// Remote port, network order.
    pub remote_port_be: u16,
    /// Padding.
    pub pad: [u16; 3],
    /// Local address (first 4 bytes for IPv4).
    pub local_addr: [u8; 16],
    /// Remote address (first 4 bytes for IPv4).
    pub remote_addr: [u8; 16],
}

/// Filtering switches: bits in [`Config::filters`].
pub mod filter {
    /// Drop read-only opens (no `O_WRONLY`/`O_RDWR`/`O_CREAT`/`O_TRUNC`) whose path does
    /// not start with one of [`super::Config::keep_prefixes`].
    pub const DROP_READ_ONLY_OPENS: u32 = 1;
    /// Drop failed opens.
    pub const DROP_FAILED_OPENS: u32 = 2;
}

/// Number of path prefixes the read-only-open filter keeps.
pub const KEEP_PREFIXES: usize = 8;
/// Bytes per kept prefix.
pub const PREFIX_LEN: usize = 32;

/// Sensor configuration, a read-only global of the eBPF object.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The sensor's own tgid: its syscalls are not recorded.
    pub own_tgid: u32,
    /// [`filter`] bits.
    pub filters: u32,
    /// Wake userspace when the bytes waiting in the ring buffer reach this many (once per
    /// crossing; 0 acts as 1: wake when the ring stops being empty).
    pub wake_bytes: u64,
    /// 1 for each syscall number to record.
    pub syscalls: [u8; NR_SYSCALLS],
    /// Kept prefixes for [`filter::DROP_READ_ONLY_OPENS`], NUL-padded; empty ones unused.
    pub keep_prefixes: [[u8; PREFIX_LEN]; KEEP_PREFIXES],
    /// Used lengths of [`Config::keep_prefixes`].
    pub keep_prefix_lens: [u32; KEEP_PREFIXES],
}

impl Default for Config {
    fn default() -> Self {
        Config {
            own_tgid: 0,
            filters: 0,
            wake_bytes: 0,
            syscalls: [0; NR_SYSCALLS],
            keep_prefixes: [[0; PREFIX_LEN]; KEEP_PREFIXES],
            keep_prefix_lens: [0; KEEP_PREFIXES],
        }
    }
}

/// Slots of the per-CPU loss counters.
pub mod drops {
    /// The ring buffer was full.
    pub const RINGBUF_FULL: u32 = 0;
    /// The in-flight syscall table was full (entry could not be saved).
    pub const PENDING_FULL: u32 = 1;
    /// Number of slots.
    pub const SLOTS: u32 = 2;
}

/// Arguments saved at syscall entry until its exit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Pending {
    /// Syscall arguments.
    pub args: [u64; 6],
    /// Syscall number.
    pub nr: u64,
}

#[cfg(feature = "user")]
#[allow(unsafe_code)]
mod pod {
    // SAFETY: plain `repr(C)` structs of integers; every bit pattern is valid.
    unsafe impl aya::Pod for super::Offsets {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Config {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Pending {}
}

/// x86_64 syscall numbers the sensor knows, and their names as Falco spells them.
pub mod nr {
    macro_rules! syscalls {
        ($($name:ident = $num:literal,)*) => {
            $(
                #[doc = concat!("`", stringify!($name), "`.")]
                pub const $name: u16 = $num;
            )*
            /// `(number, name)` of every syscall above.
            pub const NAMES: &[(u16, &str)] = &[$(($num, stringify!($name)),)*];
        };
    }
    #[allow(non_upper_case_globals)]
    mod consts {
        syscalls! {
            read = 0, write = 1, writev = 20, kill = 62, rmdir = 84, prctl = 157,
            delete_module = 176, tkill = 200, tgkill = 234, userfaultfd = 323,
            dup = 32, dup2 = 33, socket = 41, connect = 42, accept = 43, sendto = 44,
            recvfrom = 45, sendmsg = 46, recvmsg = 47, bind = 49, listen = 50, clone = 56,
            fork = 57, vfork = 58, execve = 59, chdir = 80, fchdir = 81, rename = 82,
            mkdir = 83, creat = 85, link = 86, unlink = 87, symlink = 88, chmod = 90,
            fchmod = 91, chown = 92, fchown = 93, lchown = 94, ptrace = 101, setuid = 105,
            setgid = 106, setreuid = 113, setregid = 114, setresuid = 117, setresgid = 119,
            setfsuid = 122, setfsgid = 123, mount = 165, umount2 = 166, init_module = 175,
            open = 2, openat = 257, mkdirat = 258, fchownat = 260, unlinkat = 263,
            renameat = 264, linkat = 265, symlinkat = 266, fchmodat = 268, unshare = 272,
            accept4 = 288, dup3 = 292, recvmmsg = 299, sendmmsg = 307, setns = 308,
            finit_module = 313, renameat2 = 316, memfd_create = 319, bpf = 321,
            execveat = 322, clone3 = 435, openat2 = 437, fchmodat2 = 452,
        }
    }
    pub use consts::*;
}
