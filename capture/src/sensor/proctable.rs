//! The process table: what the sensor knows about every live process, seeded from
//! `/proc` at start and kept current by fork, exec, chdir and exit events, so each event
//! carries its process, ancestry and container without asking `/proc` again.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use lanner_contract::model::{StrList, Text, U64List};
use lanner_contract::value::Timestamp;

use super::container;

/// Ancestors recorded per event (`proc.aname[1..=8]`).
pub const MAX_ANCESTORS: usize = 8;

/// How long an exited process stays in the table: records of other CPUs that name it
/// (a child's exec whose parent, say `runc`, exited a moment before) can come after its
/// exit record.
pub const EXIT_GRACE: Duration = Duration::from_secs(5);

/// One process (thread group).
#[derive(Clone, Debug, Default)]
pub struct Proc {
    /// Host tgid.
    pub pid: u32,
    /// Parent's host tgid.
    pub ppid: u32,
    /// Pid in its own namespace.
    pub vpid: u32,
    /// Session id.
    pub sid: u32,
    /// Process group id (in the host namespace; equals the leader's pid).
    pub pgid: u32,
    /// comm.
    pub comm: Text,
    /// argv[0] (comm when argv is empty).
    pub exe: Text,
    /// Arguments after argv[0], joined by spaces.
    pub args: Text,
    /// `comm args`, as Falco's `proc.cmdline`.
    pub cmdline: Text,
    /// Executable path.
    pub exepath: Text,
    /// Working directory, with a trailing `/`.
    pub cwd: Text,
    /// tty_nr from /proc/<pid>/stat.
    pub tty: u64,
    /// Effective uid / gid.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
    /// Audit login uid (-1 when unset).
    pub loginuid: i64,
    /// Effective capability mask.
    pub cap_effective: Option<u64>,
    /// Process start time.
    pub start: Option<Timestamp>,
    /// Short container id, or `host`.
    pub container: Text,
    /// Executable inode, ctime, mtime.
    pub exe_ino: Option<(u64, Timestamp, Timestamp)>,
    /// The executable is a memfd.
    pub exe_memfd: bool,
    /// The executable lives in an overlay upper layer.
    pub exe_upper: bool,
    /// Ancestry lists built for this process, valid while the table's generation is the
    /// one recorded with them.
    pub ancestry: Option<(u64, Ancestry)>,
}

/// A process's ancestry as events carry it, nearest first: shared lists, so the events
/// of a process between two changes of the table hand out the same allocations.
#[derive(Clone, Debug, Default)]
pub struct Ancestry {
    /// `proc.aname`.
    pub names: StrList,
    /// `proc.apid`.
    pub pids: U64List,
    /// `proc.aexe`.
    pub exes: StrList,
    /// `proc.aexepath`.
    pub exepaths: StrList,
    /// `proc.acmdline`.
    pub cmdlines: StrList,
}

impl Proc {
    /// Sets argv and the texts derived from it (call after setting `comm`).
    pub fn set_argv(&mut self, argv: Vec<String>) {
        self.exe = argv
            .first()
            .map(|a| Text::from(a.as_str()))
            .unwrap_or_else(|| self.comm.clone());
        let args = argv.iter().skip(1).cloned().collect::<Vec<_>>().join(" ");
        self.cmdline = if args.is_empty() {
            self.comm.clone()
        } else {
            format!("{} {args}", self.comm).into()
        };
        self.args = args.into();
    }
}

/// The table.
#[derive(Debug, Default)]
pub struct ProcTable {
    procs: HashMap<u32, Proc>,
    /// Exited processes (when, pid, start time), forgotten [`EXIT_GRACE`] later.
    exited: VecDeque<(Instant, u32, Option<Timestamp>)>,
    /// Bumped by every change that can alter some process's ancestry (a process added,
    /// removed, re-executed or renamed): cached [`Ancestry`] of older generations is stale.
    generation: u64,
    /// Added to clock ticks since boot to get wall time of process starts.
    boot_wall_ns: i64,
    ticks_per_sec: i64,
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Splits argv from a NUL-separated buffer.
pub fn split_argv(buf: &[u8]) -> Vec<String> {
    let buf = buf.strip_suffix(&[0]).unwrap_or(buf);
    if buf.is_empty() {
        return vec![];
    }
    buf.split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

impl ProcTable {
    /// An empty table; `boot_wall_ns` is the wall time of boot.
    pub fn new(boot_wall_ns: i64) -> ProcTable {
        ProcTable {
            procs: HashMap::new(),
            exited: VecDeque::new(),
            generation: 0,
            boot_wall_ns,
            ticks_per_sec: 100,
        }
    }

    /// Reads every process in `/proc`.
    pub fn seed(&mut self) -> usize {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return 0;
        };
        for entry in dir.flatten() {
            if let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
                && let Some(p) = self.read_proc(pid)
            {
                self.procs.insert(pid, p);
            }
        }
        self.procs.len()
    }

    /// Reads one process from `/proc/<pid>`; `None` when it is gone.
    pub fn read_proc(&self, pid: u32) -> Option<Proc> {
        self.read_proc_files(pid, None)
    }

    /// What an exec event takes from `/proc/<pid>` (comm, to check that the process has
    /// not exec'd again since; session, group, capabilities, cwd, executable facts):
    /// [`ProcTable::read_proc`] without the three files whose content the exec record
    /// itself supersedes (cmdline, loginuid, cgroup: `container` is the record's).
    /// Three fewer opens and reads per exec.
    pub fn read_exec_facts(&self, pid: u32, container: &str) -> Option<Proc> {
        self.read_proc_files(pid, Some(container))
    }

    /// [`ProcTable::read_proc`], or with `container` given, [`ProcTable::read_exec_facts`].
    fn read_proc_files(&self, pid: u32, container: Option<&str>) -> Option<Proc> {
        let base = Path::new("/proc").join(pid.to_string());
        let stat = read(&base.join("stat"))?;
        // comm may hold spaces and parentheses: split at the last ')'.
        let close = stat.rfind(')')?;
        let comm: Text = stat.get(stat.find('(')? + 1..close)?.into();
        let rest: Vec<&str> = stat.get(close + 2..)?.split(' ').collect();
        let num = |i: usize| rest.get(i).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
        let mut p = Proc {
            pid,
            comm,
            ppid: num(1) as u32,
            pgid: num(2) as u32,
            sid: num(3) as u32,
            tty: num(4) as u64,
            loginuid: -1,
            ..Default::default()
        };
        p.start = Some(Timestamp(
            self.boot_wall_ns + num(19) * 1_000_000_000 / self.ticks_per_sec,
        ));
        if let Some(status) = read(&base.join("status")) {
            for line in status.lines() {
                let (k, v) = line.split_once(':').unwrap_or((line, ""));
                let mut f = v.split_whitespace();
                match k {
                    "Uid" => p.uid = f.nth(1).and_then(|s| s.parse().ok()).unwrap_or(0),
                    "Gid" => p.gid = f.nth(1).and_then(|s| s.parse().ok()).unwrap_or(0),
                    "NSpid" => p.vpid = f.last().and_then(|s| s.parse().ok()).unwrap_or(pid),
                    "CapEff" => {
                        p.cap_effective = f.next().and_then(|s| u64::from_str_radix(s, 16).ok())
                    }
                    _ => {}
                }
            }
        }
        if let Some(c) = container {
            p.container = c.into();
        } else {
            p.loginuid = read(&base.join("loginuid"))
                .and_then(|s| s.trim().parse::<u32>().ok())
                .map(|u| if u == u32::MAX { -1 } else { u as i64 })
                .unwrap_or(-1);
            p.set_argv(split_argv(
                &std::fs::read(base.join("cmdline")).unwrap_or_default(),
            ));
            p.container =
                container::from_proc_cgroup(&read(&base.join("cgroup")).unwrap_or_default()).into();
        }
        self.refresh_exe(&mut p);
        p.cwd = std::fs::read_link(base.join("cwd"))
            .map(|c| with_slash(&c.to_string_lossy()).into())
            .unwrap_or_else(|_| "".into());
        Some(p)
    }

    /// Re-reads the executable's path and inode facts from `/proc/<pid>/exe`.
    pub fn refresh_exe(&self, p: &mut Proc) {
        use std::os::unix::fs::MetadataExt;
        let exe = Path::new("/proc").join(p.pid.to_string()).join("exe");
        if let Ok(target) = std::fs::read_link(&exe) {
            let t = target.to_string_lossy();
            p.exe_memfd = t.starts_with("/memfd:");
            if p.exepath.is_empty() || p.exe_memfd {
                p.exepath = t.trim_end_matches(" (deleted)").into();
            }
        }
        let md = std::fs::metadata(&exe).ok();
        if let Some(md) = &md {
            p.exe_ino = Some((
                md.ino(),
                Timestamp(md.ctime() * 1_000_000_000 + md.ctime_nsec()),
                Timestamp(md.mtime() * 1_000_000_000 + md.mtime_nsec()),
            ));
        }
        p.exe_upper = &*p.container != "host"
            && !p.exepath.is_empty()
            && md.is_some_and(|md| is_overlay_upper(p.pid, &p.exepath, md.dev()));
    }

    /// The process, read from /proc if unknown.
    pub fn get_or_load(&mut self, pid: u32) -> Option<&mut Proc> {
        if !self.procs.contains_key(&pid) {
            let p = self.read_proc(pid)?;
            self.procs.insert(pid, p);
            self.generation += 1;
        }
        self.procs.get_mut(&pid)
    }

    /// The process, if known, for updating.
    pub fn get_mut(&mut self, pid: u32) -> Option<&mut Proc> {
        self.procs.get_mut(&pid)
    }

    /// The process, if known.
    pub fn get(&self, pid: u32) -> Option<&Proc> {
        self.procs.get(&pid)
    }

    /// Up to `max` known processes of `container` (short id, or `host`): where to look
    /// for that container's root directory once the process of interest has exited.
    pub fn in_container(&self, container: &str, max: usize) -> Vec<u32> {
        self.procs
            .values()
            .filter(|p| &*p.container == container)
            .map(|p| p.pid)
            .take(max)
            .collect()
    }

    /// A new process forked from `ppid`: a copy of the parent with new ids.
    pub fn fork(&mut self, pid: u32, ppid: u32, vpid: u32, ts: Timestamp) -> &mut Proc {
        let mut child = match self.procs.get(&ppid) {
            Some(parent) => parent.clone(),
            None => self.read_proc(pid).unwrap_or_default(),
        };
        child.pid = pid;
        child.ppid = ppid;
        child.vpid = if vpid != 0 { vpid } else { pid };
        child.start = Some(ts);
        child.ancestry = None;
        self.generation += 1;
        self.procs.entry(pid).insert_entry(child).into_mut()
    }

    /// Notes that a process exited; [`ProcTable::reap`] forgets it [`EXIT_GRACE`] later.
    pub fn remove(&mut self, pid: u32) {
        let start = self.procs.get(&pid).and_then(|p| p.start);
        self.exited.push_back((Instant::now(), pid, start));
    }

    /// Forgets the processes that exited more than [`EXIT_GRACE`] ago (unless their pid
    /// already belongs to a new process).
    pub fn reap(&mut self) {
        while let Some(&(at, pid, start)) = self.exited.front() {
            if at.elapsed() < EXIT_GRACE {
                break;
            }
            self.exited.pop_front();
            if self.procs.get(&pid).is_some_and(|p| p.start == start) {
                self.procs.remove(&pid);
                self.generation += 1;
            }
        }
    }

    /// Ancestors of `pid`, nearest first, at most [`MAX_ANCESTORS`].
    pub fn ancestors(&self, pid: u32) -> Vec<&Proc> {
        let mut out = Vec::new();
        let mut cur = self.procs.get(&pid).map(|p| p.ppid);
        while let Some(ppid) = cur {
            if ppid == 0 || out.len() >= MAX_ANCESTORS {
                break;
            }
            match self.procs.get(&ppid) {
                Some(p) => {
                    out.push(p);
                    cur = (p.ppid != ppid).then_some(p.ppid);
                }
                None => break,
            }
        }
        out
    }

    /// Marks every cached [`Ancestry`] stale (after a process's name, path, command line
    /// or parent changed).
    pub fn touch(&mut self) {
        self.generation += 1;
    }

    /// The ancestry lists of `pid` (empty when unknown), from the cache while nothing
    /// in the table changed since they were built.
    pub fn ancestry(&mut self, pid: u32) -> Ancestry {
        let generation = self.generation;
        if let Some((g, a)) = self.procs.get(&pid).and_then(|p| p.ancestry.as_ref())
            && *g == generation
        {
            return a.clone();
        }
        let anc = self.ancestors(pid);
        let a = Ancestry {
            names: anc
                .iter()
                .map(|a| a.comm.clone())
                .collect::<Vec<_>>()
                .into(),
            pids: anc
                .iter()
                .map(|a| u64::from(a.pid))
                .collect::<Vec<_>>()
                .into(),
            exes: anc.iter().map(|a| a.exe.clone()).collect::<Vec<_>>().into(),
            exepaths: anc
                .iter()
                .map(|a| a.exepath.clone())
                .collect::<Vec<_>>()
                .into(),
            cmdlines: anc
                .iter()
                .map(|a| a.cmdline.clone())
                .collect::<Vec<_>>()
                .into(),
        };
        if let Some(p) = self.procs.get_mut(&pid) {
            p.ancestry = Some((generation, a.clone()));
        }
        a
    }

    /// Forgets processes that no longer exist (their exit event was lost).
    pub fn sweep(&mut self) {
        self.generation += 1;
        self.procs
            .retain(|pid, _| Path::new("/proc").join(pid.to_string()).exists());
    }

    /// Number of known processes.
    pub fn len(&self) -> usize {
        self.procs.len()
    }
}

/// `dir` with exactly one trailing slash, as Falco prints `proc.cwd`.
pub fn with_slash(dir: &str) -> String {
    if dir.ends_with('/') {
        dir.to_owned()
    } else {
        format!("{dir}/")
    }
}

/// `path` (absolute, as seen by a process whose root directory is `root`, e.g.
/// `/proc/<pid>/root`) with every symlink resolved inside that root, as Falco's
/// canonical `proc.exepath` (`/bin/sh` -> `/bin/busybox`). `None` when a component does
/// not exist or the links loop.
pub fn canonical_in(root: &Path, path: &str) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    let mut todo: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .rev()
        .map(str::to_owned)
        .collect();
    let mut links = 0;
    while let Some(seg) = todo.pop() {
        match seg.as_str() {
            "." => continue,
            ".." => {
                out.pop();
                continue;
            }
            _ => out.push(seg),
        }
        let here = root.join(out.join("/"));
        if !std::fs::symlink_metadata(&here)
            .ok()?
            .file_type()
            .is_symlink()
        {
            continue;
        }
        links += 1;
        if links > 40 {
            return None;
        }
        let target = std::fs::read_link(&here).ok()?;
        let target = target.to_string_lossy();
        out.pop();
        if target.starts_with('/') {
            out.clear();
        }
        todo.extend(
            target
                .split('/')
                .filter(|s| !s.is_empty())
                .rev()
                .map(str::to_owned),
        );
    }
    Some(format!("/{}", out.join("/")))
}

/// Whether the executable lives in the upper (writable) layer of the overlay mount the
/// process runs on: the executable (device `exe_dev`) is on that overlay, not on a file
/// bind-mounted over it (as `docker run --init` mounts /sbin/docker-init), and the file
/// exists under the overlay's `upperdir` (a host path).
fn is_overlay_upper(pid: u32, exepath: &str, exe_dev: u64) -> bool {
    let Some(info) = read(&Path::new("/proc").join(pid.to_string()).join("mountinfo")) else {
        return false;
    };
    overlay_upperdir(&info, exe_dev).is_some_and(|upper| {
        Path::new(upper)
            .join(exepath.trim_start_matches('/'))
            .exists()
    })
}

/// The `upperdir` of the overlay mounted on `/` in a mountinfo text, when that overlay
/// is device `dev` (`st_dev` of a file on it).
fn overlay_upperdir(mountinfo: &str, dev: u64) -> Option<&str> {
    // Linux's dev_t encoding (glibc's gnu_dev_major/minor).
    let (major, minor) = (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    );
    let want = format!("{major}:{minor}");
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        // The overlay mounted on the process's root.
        if pre.get(4) != Some(&"/") {
            continue;
        }
        let mut f = post.split(' ');
        if f.next() != Some("overlay") {
            continue;
        }
        if pre.get(2) != Some(&want.as_str()) {
            return None;
        }
        let opts = f.nth(1).unwrap_or("");
        return opts.split(',').find_map(|o| o.strip_prefix("upperdir="));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("bin")).expect("bin");
        std::fs::create_dir_all(root.join("usr/lib")).expect("usr/lib");
        std::fs::write(root.join("bin/busybox"), "").expect("file");
        std::os::unix::fs::symlink("busybox", root.join("bin/sh")).expect("link");
        // Absolute targets are taken inside the root, not on the host.
        std::os::unix::fs::symlink("/bin/sh", root.join("usr/lib/sh")).expect("link");
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).expect("link");
        std::os::unix::fs::symlink("loop", root.join("loop")).expect("link");
        assert_eq!(
            canonical_in(root, "/bin/sh").as_deref(),
            Some("/bin/busybox")
        );
        assert_eq!(
            canonical_in(root, "/lib/sh").as_deref(),
            Some("/bin/busybox")
        );
        assert_eq!(
            canonical_in(root, "/usr/./lib/../../bin/busybox").as_deref(),
            Some("/bin/busybox")
        );
        assert_eq!(canonical_in(root, "/bin/missing"), None);
        assert_eq!(canonical_in(root, "/loop"), None);
    }

    #[test]
    fn upperdir_only_for_files_on_the_root_overlay() {
        let info = "\
1 0 0:40 / / rw,relatime - overlay overlay rw,lowerdir=/l1:/l2,upperdir=/var/lib/docker/overlay2/abc/diff,workdir=/w
2 1 0:5 / /proc rw - proc proc rw
3 1 254:0 /usr/bin/docker-init /sbin/docker-init ro - ext4 /dev/vda rw
";
        // st_dev 0:40 is the overlay: a file on it.
        assert_eq!(
            overlay_upperdir(info, 40),
            Some("/var/lib/docker/overlay2/abc/diff")
        );
        // st_dev 254:0 (makedev(254, 0) = 0xfe00): a file bind-mounted from the host.
        assert_eq!(overlay_upperdir(info, 0xfe00), None);
        assert_eq!(
            overlay_upperdir("2 1 0:5 / /proc rw - proc proc rw\n", 40),
            None
        );
    }

    #[test]
    fn argv_split() {
        assert_eq!(split_argv(b"ls\0-l\0/tmp\0"), vec!["ls", "-l", "/tmp"]);
        assert_eq!(split_argv(b""), Vec::<String>::new());
        assert_eq!(split_argv(b"a\0\0b\0"), vec!["a", "", "b"]);
    }

    #[test]
    fn reads_itself_read_proc() {
        let t = ProcTable::new(0);
        let me = t.read_proc(std::process::id()).expect("own /proc entry");
        assert_eq!(me.pid, std::process::id());
        assert!(me.cwd.ends_with('/'));
        assert!(!me.exe.is_empty());
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
    }

    #[test]
    fn ancestry_is_nearest_first_and_bounded() {
        let mut t = ProcTable::new(0);
        for pid in 1..=20u32 {
            let p = Proc {
                pid,
                ppid: pid - 1,
                comm: format!("p{pid}").into(),
                ..Default::default()
            };
            t.procs.insert(pid, p);
        }
        let a: Vec<u32> = t.ancestors(20).iter().map(|p| p.pid).collect();
        assert_eq!(a, vec![19, 18, 17, 16, 15, 14, 13, 12]);
        assert_eq!(t.ancestors(1).len(), 0);
        // Cached lists are shared until the table changes.
        let (a1, a2) = (t.ancestry(20), t.ancestry(20));
        assert!(std::sync::Arc::ptr_eq(&a1.names, &a2.names));
        assert_eq!(&*a1.names[0], "p19");
        if let Some(p) = t.get_mut(19) {
            p.comm = "renamed".into();
        }
        t.touch();
        assert_eq!(&*t.ancestry(20).names[0], "renamed");
        // An exited parent still names its children's ancestry for a while.
        t.remove(19);
        t.reap();
        let a: Vec<u32> = t.ancestors(20).iter().map(|p| p.pid).collect();
        assert_eq!(a[..2], [19, 18]);
        // A forgotten one ends the chain.
        t.exited.clear();
        t.procs.remove(&19);
        assert_eq!(t.ancestors(20).len(), 0);
    }
}
