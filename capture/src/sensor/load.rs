//! Loading and attaching the eBPF programs, after checking what they need: root or the
//! capabilities CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN, which the kernel accepts for
//! both), CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (for /proc), the kernel's BTF, and
//! tracefs. Each missing piece gives its own message.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::RawTracePoint;
use aya::{Ebpf, EbpfLoader};
use lanner_capture_common::{Config, KEEP_PREFIXES, NR_SYSCALLS, PREFIX_LEN, filter, nr};

use super::btf;

/// The compiled eBPF object (built by `capture/build.rs`).
#[cfg(not(lanner_no_ebpf))]
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lanner-capture"));
#[cfg(lanner_no_ebpf)]
static OBJECT: &[u8] = &[];

/// Capabilities the sensor needs, by number and name.
const NEEDED_CAPS: &[(u32, &str, &str)] = &[
    (39, "CAP_BPF", "to load eBPF programs and maps"),
    (
        38,
        "CAP_PERFMON",
        "to attach tracepoints and read kernel memory from eBPF",
    ),
    (
        19,
        "CAP_SYS_PTRACE",
        "to read other processes' /proc entries and sockets",
    ),
    (
        2,
        "CAP_DAC_READ_SEARCH",
        "to read /proc/<pid>/fd links and cgroup files of any user",
    ),
];

/// CAP_SYS_ADMIN, which the kernel accepts in place of CAP_BPF and CAP_PERFMON
/// (`bpf_capable()`, `perfmon_capable()`): what containers get on Docker engines
/// before 23, which do not know the two newer capabilities.
const CAP_SYS_ADMIN: u32 = 21;

/// Names of the needed capabilities missing from this process's effective set.
pub fn missing_caps() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    missing_from(eff)
}

/// The needed capabilities missing from the effective set `eff`.
fn missing_from(eff: u64) -> Vec<String> {
    let has = |bit: u32| eff & (1 << bit) != 0;
    let granted = |bit: u32| has(bit) || (matches!(bit, 38 | 39) && has(CAP_SYS_ADMIN));
    NEEDED_CAPS
        .iter()
        .filter(|(bit, _, _)| !granted(*bit))
        .map(|(_, name, why)| format!("{name} ({why})"))
        .collect()
}

/// What the user asked the kernel side to do.
#[derive(Clone, Debug, Default)]
pub struct KernelOptions {
    /// Drop read-only opens outside `keep_prefixes`.
    pub drop_read_only_opens: bool,
    /// Path prefixes kept by that filter.
    pub keep_prefixes: Vec<String>,
    /// Drop failed opens.
    pub drop_failed_opens: bool,
    /// Syscall names not to record.
    pub skip_syscalls: Vec<String>,
    /// Wake userspace past this many waiting bytes.
    pub wake_bytes: u64,
    /// Ring buffer size in bytes (a power of two, at least a page).
    pub ring_bytes: u32,
}

/// The loaded programs and the maps userspace reads.
pub struct Loaded {
    /// Keeps programs attached while alive.
    pub _programs: Ebpf,
    /// The records.
    pub ring: RingBuf<MapData>,
    /// Per-CPU loss counters.
    pub drops: PerCpuArray<MapData, u64>,
}

/// The kernel configuration for `opts`.
pub fn config(opts: &KernelOptions, own_tgid: u32) -> Result<Config> {
    let mut c = Config {
        own_tgid,
        wake_bytes: opts.wake_bytes,
        ..Default::default()
    };
    for (num, name) in nr::NAMES {
        if !opts.skip_syscalls.iter().any(|s| s == name) && (*num as usize) < NR_SYSCALLS {
            c.syscalls[*num as usize] = 1;
        }
    }
    for s in &opts.skip_syscalls {
        if !nr::NAMES.iter().any(|(_, n)| n == s) {
            bail!(
                "--skip-syscalls: unknown syscall {s:?} (known: {})",
                nr::NAMES
                    .iter()
                    .map(|(_, n)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    if opts.drop_read_only_opens {
        c.filters |= filter::DROP_READ_ONLY_OPENS;
    }
    if opts.drop_failed_opens {
        c.filters |= filter::DROP_FAILED_OPENS;
    }
    if opts.keep_prefixes.len() > KEEP_PREFIXES {
        bail!(
            "--keep-prefix: at most {KEEP_PREFIXES} prefixes, got {}",
            opts.keep_prefixes.len()
        );
    }
    for (i, p) in opts.keep_prefixes.iter().enumerate() {
        if p.is_empty() || p.len() > PREFIX_LEN {
            bail!("--keep-prefix {p:?}: must be 1 to {PREFIX_LEN} bytes");
        }
        c.keep_prefixes[i][..p.len()].copy_from_slice(p.as_bytes());
        c.keep_prefix_lens[i] = p.len() as u32;
    }
    Ok(c)
}

/// Checks the prerequisites, loads the object with `cfg` and attaches every program.
pub fn load(cfg: &Config, ring_bytes: u32) -> Result<Loaded> {
    if !ring_bytes.is_power_of_two() || ring_bytes < 4096 {
        bail!("--ring-bytes {ring_bytes}: must be a power of two of at least 4096");
    }
    if OBJECT.is_empty() {
        bail!(
            "this lanner-capture was built without its eBPF programs (AYA_BUILD_SKIP); rebuild after scripts/install-ebpf-toolchain"
        );
    }
    let missing = missing_caps();
    if !missing.is_empty() {
        bail!(
            "missing capabilities: {}. Run as root, or grant them: setcap cap_bpf,cap_perfmon,cap_sys_ptrace,cap_dac_read_search+ep lanner-capture",
            missing.join(", ")
        );
    }
    let vmlinux = Path::new("/sys/kernel/btf/vmlinux");
    if !vmlinux.exists() {
        bail!(
            "kernel BTF is missing: {} does not exist (the kernel needs CONFIG_DEBUG_INFO_BTF=y)",
            vmlinux.display()
        );
    }
    let btf = btf::Btf::from_file(vmlinux)?;
    let offsets = btf::offsets(&btf).context("reading kernel structure offsets from BTF")?;
    let tracefs = [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ];
    if !tracefs.iter().any(|p| Path::new(p).exists()) {
        tracing::warn!(
            "tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing); raw tracepoints may still attach"
        );
    }
    let mut ebpf = EbpfLoader::new()
        .override_global("CONFIG", cfg, true)
        .override_global("OFFSETS", &offsets, true)
        .map_max_entries("EVENTS", ring_bytes)
        .load(OBJECT)
        .context("loading the eBPF object into the kernel")?;
    for (prog, tp) in [
        ("sys_enter", "sys_enter"),
        ("sys_exit", "sys_exit"),
        ("sched_process_exit", "sched_process_exit"),
    ] {
        let p: &mut RawTracePoint = ebpf
            .program_mut(prog)
            .with_context(|| format!("program {prog} missing from the object"))?
            .try_into()?;
        p.load()
            .with_context(|| format!("verifying program {prog}"))?;
        p.attach(tp)
            .with_context(|| format!("attaching {prog} to raw tracepoint {tp}"))?;
    }
    let ring = RingBuf::try_from(ebpf.take_map("EVENTS").context("map EVENTS missing")?)?;
    let drops = PerCpuArray::try_from(ebpf.take_map("DROPS").context("map DROPS missing")?)?;
    Ok(Loaded {
        _programs: ebpf,
        ring,
        drops,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sys_admin_stands_in_for_bpf_and_perfmon_only() {
        let bit = |b: u32| 1u64 << b;
        let ptrace_dac = bit(19) | bit(2);
        assert!(missing_from(ptrace_dac | bit(38) | bit(39)).is_empty());
        assert!(missing_from(ptrace_dac | bit(CAP_SYS_ADMIN)).is_empty());
        let missing = missing_from(bit(CAP_SYS_ADMIN));
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[0].starts_with("CAP_SYS_PTRACE"), "{missing:?}");
        assert!(missing[1].starts_with("CAP_DAC_READ_SEARCH"), "{missing:?}");
        let missing = missing_from(ptrace_dac | bit(39));
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(missing[0].starts_with("CAP_PERFMON"), "{missing:?}");
    }
}
