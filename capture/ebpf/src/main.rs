//! lanner's kernel programs: raw tracepoints on `sys_enter`/`sys_exit` save the arguments
//! of the syscalls the sensor records (except path syscalls such as opens, whose
//! arguments are read from the registers at exit) and, at exit, write one record per syscall (header,
//! paths read at exit, argv, socket address or DNS payload) into a ring buffer; a raw
//! tracepoint on `sched_process_exit` reports process exits.
//!
//! Records are submitted without waking the reader, except the one that makes the data
//! waiting cross [`Config::wake_bytes`] (the reader also polls on a short timer), and every record the ring buffer
//! could not take is counted per CPU in `DROPS`.

#![no_std]
#![no_main]

use aya_ebpf::bindings::{BPF_ANY, BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP};
use aya_ebpf::helpers::generated::{
    bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
    bpf_get_current_task, bpf_get_current_uid_gid, bpf_ktime_get_boot_ns, bpf_probe_read_kernel,
    bpf_probe_read_user, bpf_probe_read_user_str,
};
use aya_ebpf::macros::{map, raw_tracepoint};
use aya_ebpf::maps::{LruHashMap, PerCpuArray, RingBuf};
use aya_ebpf::programs::RawTracePointContext;
use core::ffi::c_void;
use lanner_capture_common::{
    Config, EXTRA, EventHeader, HDR, MAX_EXTRA, MAX_RECORD, MAX_STR, NR_SYSCALLS, Offsets, Pending,
    SLOT0, SLOT1, SockTuple, drops, filter, kind, nr, part,
};

/// Set by userspace before load.
#[unsafe(no_mangle)]
static CONFIG: Config = Config {
    own_tgid: 0,
    filters: 0,
    wake_bytes: 0,
    syscalls: [0; NR_SYSCALLS],
    keep_prefixes: [[0; lanner_capture_common::PREFIX_LEN]; lanner_capture_common::KEEP_PREFIXES],
    keep_prefix_lens: [0; lanner_capture_common::KEEP_PREFIXES],
};

/// Kernel structure offsets from BTF, set by userspace before load.
#[unsafe(no_mangle)]
static OFFSETS: Offsets = Offsets {
    task_real_parent: 0,
    task_tgid: 0,
    task_mm: 0,
    task_loginuid: 0,
    task_thread_pid: 0,
    task_exit_code: 0,
    mm_arg_start: 0,
    mm_arg_end: 0,
    pid_level: 0,
    pid_numbers: 0,
    upid_size: 0,
    upid_nr: 0,
    task_files: 0,
    files_fdt: 0,
    fdtable_fd: 0,
    file_private_data: 0,
    file_inode: 0,
    inode_mode: 0,
    socket_sk: 0,
    sk_daddr: 0,
    sk_rcv_saddr: 0,
    sk_dport: 0,
    sk_num: 0,
    sk_family: 0,
    sk_v6_daddr: 0,
    sk_v6_rcv_saddr: 0,
    sk_type: 0,
    sk_protocol: 0,
    task_signal: 0,
    signal_tty: 0,
    tty_index: 0,
    tty_driver: 0,
    driver_major: 0,
    driver_minor_start: 0,
};

/// Records for userspace.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(16 << 20, 0);

/// Loss counters per CPU, indexed by [`drops`] slots.
#[map]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(drops::SLOTS, 0);

/// Scratch space where a record is assembled.
#[map]
static SCRATCH: PerCpuArray<[u8; MAX_RECORD]> = PerCpuArray::with_max_entries(1, 0);

/// Arguments of syscalls in flight, by pid_tgid.
#[map]
static PENDING: LruHashMap<u64, Pending> = LruHashMap::with_max_entries(16384, 0);

/// File name of an execve in flight (the caller's memory is gone after a successful exec).
#[map]
static EXEC_PATH: LruHashMap<u64, [u8; MAX_STR]> = LruHashMap::with_max_entries(1024, 0);

/// Sockets that talk to port 53, by `tgid << 32 | fd`.
#[map]
static DNS_FDS: LruHashMap<u64, u8> = LruHashMap::with_max_entries(4096, 0);

const O_WRONLY: u64 = 1;
const O_RDWR: u64 = 2;
const O_CREAT: u64 = 0o100;
const O_TRUNC: u64 = 0o1000;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const AF_PACKET: u64 = 17;

#[inline(always)]
fn config() -> &'static Config {
    // SAFETY: a static of the object; volatile so the optimiser does not fold the zeros.
    unsafe { &*core::ptr::read_volatile(&&CONFIG) }
}

#[inline(always)]
fn offsets() -> Offsets {
    // SAFETY: as above.
    unsafe { core::ptr::read_volatile(&OFFSETS) }
}

#[inline(always)]
fn count_drop(slot: u32) {
    if let Some(p) = DROPS.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *p += 1 };
    }
}

#[inline(always)]
fn wanted(id: u64) -> bool {
    let c = config();
    (id as usize) < NR_SYSCALLS && c.syscalls[id as usize] != 0
}

/// Reads a `T` of kernel memory; zeros when the read faults. The destination is not
/// zeroed first: the helper writes every byte (it zeroes the destination itself on
/// error), and zero-initialising an array here compiled to a call of a byte-by-byte
/// `memset` loop (64 iterations for the syscall arguments).
#[inline(always)]
unsafe fn read_kernel<T: Copy>(src: *const u8) -> T {
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    // SAFETY: bpf_probe_read_kernel faults safely and fills all size_of::<T>() bytes
    // (with zeros on error); T is plain data for which any bytes are valid.
    unsafe {
        bpf_probe_read_kernel(
            v.as_mut_ptr().cast::<c_void>(),
            core::mem::size_of::<T>() as u32,
            src.cast::<c_void>(),
        );
        v.assume_init()
    }
}

/// Reads a `T` of user memory; zeros when the read faults (as [`read_kernel`]).
#[inline(always)]
unsafe fn read_user<T: Copy>(src: u64) -> T {
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    // SAFETY: bpf_probe_read_user faults safely and fills all size_of::<T>() bytes
    // (with zeros on error); T is plain data for which any bytes are valid.
    unsafe {
        bpf_probe_read_user(
            v.as_mut_ptr().cast::<c_void>(),
            core::mem::size_of::<T>() as u32,
            src as *const c_void,
        );
        v.assume_init()
    }
}

/// Reads the six syscall arguments from `pt_regs` (x86_64: di, si, dx, r10, r8, r9).
#[inline(always)]
unsafe fn syscall_args(regs: *const u8) -> [u64; 6] {
    // r10 r9 r8 ax cx dx si di, from offset 56.
    // SAFETY: regs points to the task's pt_regs.
    let r: [u64; 8] = unsafe { read_kernel(regs.wrapping_add(56)) };
    [r[7], r[6], r[5], r[0], r[2], r[1]]
}

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    let id: u64 = ctx.arg(1);
    if !wanted(id) || args_at_exit(id as u16) {
        return 0;
    }
    // SAFETY: helper without arguments.
    let pid_tgid = unsafe { bpf_get_current_pid_tgid() };
    if (pid_tgid >> 32) as u32 == config().own_tgid {
        return 0;
    }
    let regs: *const u8 = ctx.arg(0);
    // SAFETY: regs is the tracepoint's pt_regs.
    let args = unsafe { syscall_args(regs) };
    let id16 = id as u16;
    // Only packet sockets are interesting at creation (the others show up at connect,
    // bind, listen or accept).
    if id16 == nr::socket && args[0] != AF_PACKET {
        return 0;
    }
    if is_dns_io(id16) && !dns_socket(pid_tgid, id16, &args) {
        return 0;
    }
    if !worth_recording(pid_tgid, id16, &args) {
        return 0;
    }
    if id16 == nr::execve || id16 == nr::execveat {
        let ptr = if id16 == nr::execve { args[0] } else { args[1] };
        save_exec_path(pid_tgid, ptr);
    }
    let pending = Pending { args, nr: id };
    if PENDING.insert(&pid_tgid, &pending, BPF_ANY as u64).is_err() {
        count_drop(drops::PENDING_FULL);
    }
    0
}

/// Syscalls recorded from `sys_exit` alone: their arguments are still in the task's
/// `pt_regs` at exit (a syscall only writes `ax`; tracers and seccomp change registers
/// before `sys_enter` runs or after `sys_exit` has run), and nothing about them must be
/// decided at entry. They skip the in-flight map: no insert at entry, no lookup and
/// delete at exit, which was most of the in-kernel cost of a recorded open. Not exec
/// (the new image's registers replace the caller's), not clone (the child's side), not
/// the calls filtered or remembered at entry (signals, prctl, DNS I/O, sockets).
#[inline(always)]
fn args_at_exit(id: u16) -> bool {
    matches!(
        id,
        nr::open
            | nr::openat
            | nr::openat2
            | nr::creat
            | nr::unlink
            | nr::unlinkat
            | nr::mkdir
            | nr::mkdirat
            | nr::rmdir
            | nr::chmod
            | nr::fchmodat
            | nr::fchmodat2
            | nr::chown
            | nr::lchown
            | nr::fchownat
            | nr::rename
            | nr::renameat
            | nr::renameat2
            | nr::link
            | nr::linkat
            | nr::symlink
            | nr::symlinkat
    )
}

/// Volume control for calls that are frequent and say nothing about security: signals a
/// process sends itself (`raise`, `pthread_kill`) or Go's preemption signal (SIGURG),
/// and prctl options that only read or that every runtime sets at each spawn.
#[inline(always)]
fn worth_recording(pid_tgid: u64, id: u16, args: &[u64; 6]) -> bool {
    const SIGURG: u64 = 23;
    let (tgid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    match id {
        nr::kill => args[0] as u32 != tgid,
        nr::tgkill => args[0] as u32 != tgid && args[2] != SIGURG,
        nr::tkill => args[0] as u32 != tid && args[1] != SIGURG,
        // PR_SET_DUMPABLE, PR_SET_KEEPCAPS, PR_SET_NAME, PR_SET_SECCOMP,
        // PR_SET_SECUREBITS, PR_SET_MM, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS,
        // PR_SET_PTRACER, and PR_CAP_AMBIENT_RAISE (not the capability drops a runtime
        // makes, one call per capability, at every container exec).
        nr::prctl => {
            matches!(args[0], 4 | 8 | 15 | 22 | 28 | 35 | 36 | 38 | 0x5961_6d61)
                || (args[0] == 47 && args[1] == 2)
        }
        _ => true,
    }
}

#[inline(always)]
fn save_exec_path(pid_tgid: u64, ptr: u64) {
    let Some(buf) = SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: scratch is per CPU; MAX_STR <= MAX_RECORD.
    unsafe {
        let dst = (*buf).as_mut_ptr();
        let n = bpf_probe_read_user_str(dst.cast(), MAX_STR as u32, ptr as *const c_void);
        if n <= 0 {
            *dst = 0;
        }
        let path = &*(dst as *const [u8; MAX_STR]);
        let _ = EXEC_PATH.insert(&pid_tgid, path, BPF_ANY as u64);
    }
}

#[inline(always)]
fn is_dns_io(id: u16) -> bool {
    matches!(
        id,
        nr::sendto
            | nr::recvfrom
            | nr::sendmsg
            | nr::recvmsg
            | nr::sendmmsg
            | nr::recvmmsg
            | nr::read
            | nr::write
            | nr::writev
    )
}

/// Port (host order) of a user sockaddr_in/in6, 0 when not IP.
#[inline(always)]
fn sockaddr_port(ptr: u64) -> u16 {
    if ptr == 0 {
        return 0;
    }
    // SAFETY: faulting read of 4 bytes of user memory.
    let head: [u8; 4] = unsafe { read_user(ptr) };
    let family = u16::from_ne_bytes([head[0], head[1]]);
    if family != AF_INET && family != AF_INET6 {
        return 0;
    }
    u16::from_be_bytes([head[2], head[3]])
}

/// Whether a send/recv/read/write call moves DNS: its socket was connected to port 53
/// (UDP or TCP), or the destination it names is port 53 (then the socket is remembered
/// for the answer). Plain read/write on other descriptors stop at the map lookup.
#[inline(always)]
fn dns_socket(pid_tgid: u64, id: u16, args: &[u64; 6]) -> bool {
    let key = (pid_tgid & 0xffff_ffff_0000_0000) | (args[0] & 0xffff_ffff);
    // SAFETY: plain map lookup.
    if unsafe { DNS_FDS.get(&key) }.is_some() {
        return true;
    }
    let dest = match id {
        nr::sendto => args[4],
        nr::sendmsg => {
            // SAFETY: msghdr.msg_name is its first field.
            unsafe { read_user::<u64>(args[1]) }
        }
        nr::sendmmsg => {
            // SAFETY: mmsghdr starts with a msghdr.
            unsafe { read_user::<u64>(args[1]) }
        }
        _ => 0,
    };
    if sockaddr_port(dest) == 53 {
        let _ = DNS_FDS.insert(&key, &1, BPF_ANY as u64);
        return true;
    }
    false
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    let regs: *const u8 = ctx.arg(0);
    // SAFETY: orig_ax (the syscall number) at offset 120 of pt_regs.
    let id: u64 = unsafe { read_kernel(regs.wrapping_add(120)) };
    // Most syscalls are not recorded: leave before touching any map.
    if !wanted(id) {
        return 0;
    }
    // SAFETY: helper without arguments.
    let pid_tgid = unsafe { bpf_get_current_pid_tgid() };
    let ret: i64 = ctx.arg(1);
    if args_at_exit(id as u16) {
        if (pid_tgid >> 32) as u32 == config().own_tgid {
            return 0;
        }
        // SAFETY: regs is the tracepoint's pt_regs.
        let args = unsafe { syscall_args(regs) };
        let _ = emit_syscall(pid_tgid, id as u16, &args, ret);
        return 0;
    }
    // SAFETY: plain map lookup; copied out before removal.
    let pending = match unsafe { PENDING.get(&pid_tgid) } {
        Some(p) => {
            let p = *p;
            let _ = PENDING.remove(&pid_tgid);
            // An entry left by a call whose exit was missed (it entered before this
            // program attached) must not be paired with another call's exit.
            if p.nr as u16 != id as u16 {
                return 0;
            }
            p
        }
        None => {
            // The child's return from clone/fork has no entry.
            if ret != 0 || (pid_tgid >> 32) as u32 == config().own_tgid {
                return 0;
            }
            let id16 = id as u16;
            if !(id16 == nr::clone || id16 == nr::clone3 || id16 == nr::fork || id16 == nr::vfork)
            {
                return 0;
            }
            return emit_exit_only(pid_tgid, id16);
        }
    };
    let _ = emit_syscall(pid_tgid, pending.nr as u16, &pending.args, ret);
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(_ctx: RawTracePointContext) -> i32 {
    // SAFETY: helper without arguments.
    let pid_tgid = unsafe { bpf_get_current_pid_tgid() };
    if (pid_tgid >> 32) != (pid_tgid & 0xffff_ffff) {
        return 0;
    }
    let Some(buf) = SCRATCH.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: per-CPU scratch, large enough for a header.
    let buf = unsafe { &mut *buf };
    let hdr = header(buf, pid_tgid, kind::PROC_EXIT, 0, &[0; 6]);
    let off = offsets();
    if off.task_exit_code != 0 {
        // SAFETY: current task; faulting read.
        let task = unsafe { bpf_get_current_task() } as *const u8;
        let code: i32 = unsafe { read_kernel(task.wrapping_add(off.task_exit_code as usize)) };
        hdr.ret = code as i64;
    }
    submit(buf, HDR);
    0
}

/// Fills the header at the start of `buf`.
#[inline(always)]
fn header<'a>(
    buf: &'a mut [u8; MAX_RECORD],
    pid_tgid: u64,
    kind: u16,
    nr: u16,
    args: &[u64; 6],
) -> &'a mut EventHeader {
    // SAFETY: buf is 8-aligned map memory, larger than the header.
    let hdr = unsafe { &mut *(buf.as_mut_ptr() as *mut EventHeader) };
    // SAFETY: helpers without pointer arguments.
    unsafe {
        hdr.ts_ns = bpf_ktime_get_boot_ns();
        hdr.uid_gid = bpf_get_current_uid_gid();
        hdr.cgroup_id = bpf_get_current_cgroup_id();
        bpf_get_current_comm(hdr.comm.as_mut_ptr().cast(), 16);
    }
    hdr.pid_tgid = pid_tgid;
    hdr.ret = 0;
    hdr.args = *args;
    hdr.kind = kind;
    hdr.nr = nr;
    hdr.loginuid = u32::MAX;
    // Volatile: plain zero stores to these adjacent fields were merged into a call of
    // the byte-by-byte `memset` loop.
    // SAFETY: fields of the header in map memory.
    unsafe {
        core::ptr::write_volatile(&mut hdr.parts, 0);
        core::ptr::write_volatile(&mut hdr.len_extra, 0);
        core::ptr::write_volatile(&mut hdr.ppid, 0);
        core::ptr::write_volatile(&mut hdr.vpid, 0);
        core::ptr::write_volatile(&mut hdr.len0, 0);
        core::ptr::write_volatile(&mut hdr.len1, 0);
        core::ptr::write_volatile(&mut hdr.tty, 0);
        core::ptr::write_volatile(&mut hdr.pad, 0);
    }
    hdr
}

/// Parent tgid, pid in its own namespace and login uid of the current task.
#[inline(always)]
fn task_ids(hdr: &mut EventHeader) {
    let off = offsets();
    // SAFETY: current task pointer; every read below is a faulting probe read.
    unsafe {
        let task = bpf_get_current_task() as *const u8;
        if off.task_real_parent != 0 && off.task_tgid != 0 {
            let parent: u64 = read_kernel(task.wrapping_add(off.task_real_parent as usize));
            hdr.ppid = read_kernel((parent as *const u8).wrapping_add(off.task_tgid as usize));
        }
        if off.task_loginuid != 0 {
            hdr.loginuid = read_kernel(task.wrapping_add(off.task_loginuid as usize));
        }
        if off.task_signal != 0 && off.driver_minor_start != 0 {
            let signal: u64 = read_kernel(task.wrapping_add(off.task_signal as usize));
            let tty: u64 = read_kernel((signal as *const u8).wrapping_add(off.signal_tty as usize));
            if tty != 0 {
                let tty = tty as *const u8;
                let index: i32 = read_kernel(tty.wrapping_add(off.tty_index as usize));
                let driver: u64 = read_kernel(tty.wrapping_add(off.tty_driver as usize));
                let driver = driver as *const u8;
                let major: i32 = read_kernel(driver.wrapping_add(off.driver_major as usize));
                let minor_start: i32 =
                    read_kernel(driver.wrapping_add(off.driver_minor_start as usize));
                let minor = (minor_start + index) as u32;
                // new_encode_dev, as /proc/<pid>/stat prints tty_nr.
                hdr.tty = (minor & 0xff) | ((major as u32 & 0xfff) << 8) | ((minor & !0xff) << 12);
            }
        }
        if off.task_thread_pid != 0 && off.upid_size != 0 {
            let pid: u64 = read_kernel(task.wrapping_add(off.task_thread_pid as usize));
            let pid = pid as *const u8;
            let level: u32 = read_kernel(pid.wrapping_add(off.pid_level as usize));
            let at = off.pid_numbers as usize
                + (level as usize & 31) * off.upid_size as usize
                + off.upid_nr as usize;
            hdr.vpid = read_kernel(pid.wrapping_add(at));
        }
    }
}

/// Writes the endpoints of the current task's socket `fd` into slot 1; returns the bytes
/// written (0 when `fd` is not a socket).
#[inline(always)]
fn sock_tuple(buf: &mut [u8; MAX_RECORD], fd: i64) -> u16 {
    let off = offsets();
    if fd < 0 || fd > 1 << 20 || off.task_files == 0 || off.socket_sk == 0 {
        return 0;
    }
    // SAFETY: faulting kernel reads along task->files->fdt->fd[fd]->private_data->sk.
    unsafe {
        let task = bpf_get_current_task() as *const u8;
        let files: u64 = read_kernel(task.wrapping_add(off.task_files as usize));
        let fdt: u64 = read_kernel((files as *const u8).wrapping_add(off.files_fdt as usize));
        let fds: u64 = read_kernel((fdt as *const u8).wrapping_add(off.fdtable_fd as usize));
        let file: u64 = read_kernel((fds as *const u8).wrapping_add(fd as usize * 8));
        if file == 0 {
            return 0;
        }
        let file = file as *const u8;
        let inode: u64 = read_kernel(file.wrapping_add(off.file_inode as usize));
        let mode: u16 = read_kernel((inode as *const u8).wrapping_add(off.inode_mode as usize));
        if mode & 0xf000 != 0xc000 {
            return 0;
        }
        let sock: u64 = read_kernel(file.wrapping_add(off.file_private_data as usize));
        let sk: u64 = read_kernel((sock as *const u8).wrapping_add(off.socket_sk as usize));
        if sk == 0 {
            return 0;
        }
        let sk = sk as *const u8;
        let mut t = SockTuple {
            family: read_kernel(sk.wrapping_add(off.sk_family as usize)),
            sock_type: read_kernel(sk.wrapping_add(off.sk_type as usize)),
            protocol: read_kernel(sk.wrapping_add(off.sk_protocol as usize)),
            local_port: read_kernel(sk.wrapping_add(off.sk_num as usize)),
            remote_port_be: read_kernel(sk.wrapping_add(off.sk_dport as usize)),
            ..SockTuple::default()
        };
        if t.family == AF_INET {
            let l: [u8; 4] = read_kernel(sk.wrapping_add(off.sk_rcv_saddr as usize));
            let r: [u8; 4] = read_kernel(sk.wrapping_add(off.sk_daddr as usize));
            t.local_addr[..4].copy_from_slice(&l);
            t.remote_addr[..4].copy_from_slice(&r);
        } else if t.family == AF_INET6 {
            t.local_addr = read_kernel(sk.wrapping_add(off.sk_v6_rcv_saddr as usize));
            t.remote_addr = read_kernel(sk.wrapping_add(off.sk_v6_daddr as usize));
        }
        let dst = buf.as_mut_ptr().wrapping_add(SLOT1) as *mut SockTuple;
        core::ptr::write_unaligned(dst, t);
    }
    core::mem::size_of::<SockTuple>() as u16
}

#[inline(always)]
fn emit_exit_only(pid_tgid: u64, id: u16) -> i32 {
    let Some(buf) = SCRATCH.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: per-CPU scratch.
    let buf = unsafe { &mut *buf };
    let hdr = header(buf, pid_tgid, kind::EXIT_ONLY, id, &[0; 6]);
    task_ids(hdr);
    submit(buf, HDR);
    0
}

/// Reads a NUL-terminated user string into slot 0 or 1; returns its length with the NUL.
#[inline(always)]
fn read_str(buf: &mut [u8; MAX_RECORD], slot1: bool, ptr: u64) -> u16 {
    if ptr == 0 {
        return 0;
    }
    let at = if slot1 { SLOT1 } else { SLOT0 };
    // SAFETY: the slot lies inside buf (SLOT1 + MAX_STR <= MAX_RECORD).
    let n = unsafe {
        bpf_probe_read_user_str(
            buf.as_mut_ptr().wrapping_add(at).cast(),
            MAX_STR as u32,
            ptr as *const c_void,
        )
    };
    if n <= 0 {
        0
    } else {
        (n as u16).min(MAX_STR as u16)
    }
}

/// Reads `len` bytes of user memory into the extra area; returns the bytes read.
#[inline(always)]
fn read_extra(buf: &mut [u8; MAX_RECORD], ptr: u64, len: u64) -> u16 {
    if ptr == 0 || len == 0 {
        return 0;
    }
    let len = if len > MAX_EXTRA as u64 {
        MAX_EXTRA as u64
    } else {
        len
    };
    let len = (len as u32) & (MAX_EXTRA as u32 * 2 - 1);
    if len > MAX_EXTRA as u32 {
        return 0;
    }
    // SAFETY: EXTRA + len <= MAX_RECORD.
    let r = unsafe {
        bpf_probe_read_user(
            buf.as_mut_ptr().wrapping_add(EXTRA).cast(),
            len,
            ptr as *const c_void,
        )
    };
    if r < 0 { 0 } else { len as u16 }
}

fn emit_syscall(pid_tgid: u64, id: u16, args: &[u64; 6], ret: i64) -> i32 {
    let Some(buf) = SCRATCH.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: per-CPU scratch.
    let buf = unsafe { &mut *buf };
    let cfg = config();
    // Opens: filter before doing any work.
    // (is an open, its flags): no Option here, whose undefined payload the verifier rejects.
    let (is_open, open_flags) = match id {
        nr::open => (true, args[1]),
        nr::openat => (true, args[2]),
        nr::openat2 => (
            true,
            if args[2] != 0 {
                // SAFETY: struct open_how starts with u64 flags.
                unsafe { read_user::<u64>(args[2]) }
            } else {
                0
            },
        ),
        nr::creat => (true, O_CREAT | O_WRONLY | O_TRUNC),
        _ => (false, 0),
    };
    if is_open && ret < 0 && cfg.filters & filter::DROP_FAILED_OPENS != 0 {
        return 0;
    }
    let (mut len0, mut len1, mut len_extra, mut parts) = (0u16, 0u16, 0u16, 0u16);
    let mut tuple = false;
    match id {
        nr::open | nr::creat => len0 = read_str(buf, false, args[0]),
        nr::openat | nr::openat2 => len0 = read_str(buf, false, args[1]),
        nr::execve | nr::execveat => {
            // SAFETY: plain map lookup.
            if let Some(p) = unsafe { EXEC_PATH.get(&pid_tgid) } {
                let dst = buf.as_mut_ptr().wrapping_add(SLOT0);
                // SAFETY: copying MAX_STR bytes into slot 0.
                unsafe { core::ptr::copy_nonoverlapping(p.as_ptr(), dst, MAX_STR) };
                len0 = MAX_STR as u16;
            }
            let _ = EXEC_PATH.remove(&pid_tgid);
            if ret == 0 {
                // argv from the new image's mm.
                let off = offsets();
                if off.task_mm != 0 && off.mm_arg_end != 0 {
                    // SAFETY: faulting kernel reads of the current task's mm.
                    let (start, end) = unsafe {
                        let task = bpf_get_current_task() as *const u8;
                        let mm: u64 = read_kernel(task.wrapping_add(off.task_mm as usize));
                        let mm = mm as *const u8;
                        let s: u64 = read_kernel(mm.wrapping_add(off.mm_arg_start as usize));
                        let e: u64 = read_kernel(mm.wrapping_add(off.mm_arg_end as usize));
                        (s, e)
                    };
                    if end > start {
                        let want = end - start;
                        if want > MAX_EXTRA as u64 {
                            parts |= part::TRUNCATED;
                        }
                        len_extra = read_extra(buf, start, want);
                        parts |= part::ARGV;
                    }
                }
            }
        }
        nr::unlink
        | nr::mkdir
        | nr::chmod
        | nr::chown
        | nr::lchown
        | nr::chdir
        | nr::umount2
        | nr::rmdir
        | nr::delete_module
        | nr::memfd_create => len0 = read_str(buf, false, args[0]),
        nr::prctl => {
            // PR_SET_NAME: the new thread name (at most 16 bytes).
            if args[0] == 15 {
                len0 = read_str(buf, false, args[1]);
            }
        }
        nr::unlinkat | nr::mkdirat | nr::fchmodat | nr::fchmodat2 | nr::fchownat => {
            len0 = read_str(buf, false, args[1])
        }
        nr::rename | nr::link | nr::symlink => {
            len0 = read_str(buf, false, args[0]);
            len1 = read_str(buf, true, args[1]);
        }
        nr::renameat | nr::renameat2 | nr::linkat => {
            len0 = read_str(buf, false, args[1]);
            len1 = read_str(buf, true, args[3]);
        }
        nr::symlinkat => {
            len0 = read_str(buf, false, args[0]);
            len1 = read_str(buf, true, args[2]);
        }
        nr::mount => {
            len0 = read_str(buf, false, args[0]);
            len1 = read_str(buf, true, args[1]);
            if args[2] != 0 {
                // fs type as a string in the extra area.
                let at = buf.as_mut_ptr().wrapping_add(EXTRA);
                // SAFETY: EXTRA + 64 <= MAX_RECORD.
                let n = unsafe { bpf_probe_read_user_str(at.cast(), 64, args[2] as *const c_void) };
                if n > 0 {
                    len_extra = (n as u16).min(64);
                }
            }
        }
        nr::listen => {
            len1 = sock_tuple(buf, args[0] as i32 as i64);
            tuple = len1 > 0;
        }
        nr::dup | nr::dup2 | nr::dup3 => {
            let fd = if ret >= 0 { ret } else { args[0] as i32 as i64 };
            len1 = sock_tuple(buf, fd);
            tuple = len1 > 0;
        }
        nr::connect | nr::bind => {
            len1 = sock_tuple(buf, args[0] as i32 as i64);
            tuple = len1 > 0;
            len_extra = read_extra(buf, args[1], args[2].min(128));
            parts |= part::SOCKADDR;
            if id == nr::connect && sockaddr_port(args[1]) == 53 {
                let key = (pid_tgid & 0xffff_ffff_0000_0000) | (args[0] & 0xffff_ffff);
                let _ = DNS_FDS.insert(&key, &1, BPF_ANY as u64);
            }
        }
        nr::accept | nr::accept4 => {
            len1 = sock_tuple(buf, ret);
            tuple = len1 > 0;
            if args[1] != 0 && args[2] != 0 && ret >= 0 {
                // SAFETY: addrlen is a user int.
                let alen: u32 = unsafe { read_user(args[2]) };
                len_extra = read_extra(buf, args[1], (alen as u64).min(128));
                parts |= part::SOCKADDR;
            }
        }
        nr::sendto | nr::recvfrom => {
            len1 = sock_tuple(buf, args[0] as i32 as i64);
            tuple = len1 > 0;
            let n = if id == nr::sendto {
                args[2]
            } else {
                ret as u64
            };
            if ret > 0 {
                len_extra = read_extra(buf, args[1], n.min(512));
                parts |= part::DNS;
            }
        }
        nr::read | nr::write => {
            len1 = sock_tuple(buf, args[0] as i32 as i64);
            tuple = len1 > 0;
            if ret > 0 {
                len_extra = read_extra(buf, args[1], (ret as u64).min(args[2]).min(512));
                parts |= part::DNS;
            }
        }
        nr::writev => {
            len1 = sock_tuple(buf, args[0] as i32 as i64);
            tuple = len1 > 0;
            if ret > 0 && args[2] > 0 {
                // DNS over TCP is often written as [2-byte length, message]: take the
                // message then.
                // SAFETY: faulting user read of two struct iovec.
                let iov: [u64; 4] = unsafe { read_user(args[1]) };
                let (base, len) = if iov[1] <= 2 && args[2] >= 2 {
                    (iov[2], iov[3])
                } else {
                    (iov[0], iov[1])
                };
                len_extra = read_extra(buf, base, len.min(512));
                parts |= part::DNS;
            }
        }
        nr::sendmsg | nr::recvmsg | nr::sendmmsg | nr::recvmmsg => {
            len1 = sock_tuple(buf, args[0] as i32 as i64);
            tuple = len1 > 0;
            if ret > 0 {
                // msghdr: name(8) namelen(4)+pad(4) iov(8) iovlen(8)
                // SAFETY: faulting user reads.
                let msg: [u64; 4] = unsafe { read_user(args[1]) };
                let iov: [u64; 2] = unsafe { read_user(msg[2]) };
                let n = match id {
                    nr::sendmsg => iov[1],
                    nr::recvmsg => ret as u64,
                    // mmsghdr.msg_len follows the 56-byte msghdr.
                    // SAFETY: faulting user read.
                    _ => u64::from(unsafe { read_user::<u32>(args[1] + 56) }),
                };
                len_extra = read_extra(buf, iov[0], n.min(iov[1]).min(512));
                parts |= part::DNS;
            }
        }
        _ => {}
    }
    if is_open
        && cfg.filters & filter::DROP_READ_ONLY_OPENS != 0
        && open_flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC) == 0
        && !kept_path(buf, cfg)
    {
        return 0;
    }
    let hdr = header(buf, pid_tgid, kind::SYSCALL, id, args);
    hdr.ret = ret;
    if matches!(id, nr::execve | nr::execveat) {
        task_ids(hdr);
    }
    if len0 > 0 {
        parts |= part::STR0;
    }
    if tuple {
        parts |= part::TUPLE;
    } else if len1 > 0 {
        parts |= part::STR1;
    }
    hdr.len0 = len0;
    hdr.len1 = len1;
    hdr.len_extra = len_extra;
    hdr.parts = parts;
    let size = if parts & (part::ARGV | part::SOCKADDR | part::DNS) != 0 || len_extra > 0 {
        EXTRA + len_extra as usize
    } else if len1 > 0 {
        SLOT1 + len1 as usize
    } else {
        SLOT0 + len0 as usize
    };
    submit(buf, size);
    0
}

/// Whether the path in slot 0 starts with one of the configured prefixes.
#[inline(always)]
fn kept_path(buf: &[u8; MAX_RECORD], cfg: &Config) -> bool {
    let mut i = 0;
    while i < lanner_capture_common::KEEP_PREFIXES {
        let len = cfg.keep_prefix_lens[i] as usize;
        if len > 0 && len <= lanner_capture_common::PREFIX_LEN {
            let mut j = 0;
            let mut same = true;
            while j < lanner_capture_common::PREFIX_LEN {
                if j >= len {
                    break;
                }
                if buf[SLOT0 + j] != cfg.keep_prefixes[i][j] {
                    same = false;
                    break;
                }
                j += 1;
            }
            if same {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// Copies the first `size` bytes of `buf` into the ring buffer, waking the reader only
/// when this record makes the waiting data cross [`Config::wake_bytes`]. Past the
/// threshold the reader is awake (or its 20 ms poll timer is about to fire): waking it
/// again for every record, as the first figures did while it lagged, cost a self-IPI
/// and a cross-CPU wake-up per record.
#[inline(always)]
fn submit(buf: &[u8; MAX_RECORD], size: usize) {
    let size = if size > MAX_RECORD { MAX_RECORD } else { size };
    let threshold = config().wake_bytes.max(1);
    let before = EVENTS.query(BPF_RB_AVAIL_DATA as u64);
    let wake = if before < threshold && before + size as u64 >= threshold {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    let r = EVENTS.output::<[u8]>(&buf[..size], wake as u64);
    if r.is_err() {
        count_drop(drops::RINGBUF_FULL);
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
