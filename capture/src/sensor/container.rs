//! Container ids from cgroup paths: Docker, containerd/CRI, CRI-O and Podman naming, on
//! cgroup v2, v1 and hybrid hosts. The id is Falco's: the first 12 hex digits, or `host`.

use std::path::Path;

/// Short container id for the lines of a `/proc/<pid>/cgroup` file; `host` when no line
/// names a container.
pub fn from_proc_cgroup(text: &str) -> String {
    for line in text.lines() {
        // "hierarchy-id:controllers:path"
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        if let Some(id) = from_path(path) {
            return id;
        }
    }
    "host".to_owned()
}

/// Short container id named by a cgroup path (`/docker/<64 hex>`,
/// `/system.slice/docker-<64 hex>.scope`, `cri-containerd-<id>.scope`, `crio-<id>.scope`,
/// `libpod-<id>.scope`, `/kubepods/.../<id>`), if any.
pub fn from_path(path: &str) -> Option<String> {
    for seg in path.rsplit('/') {
        let seg = seg.strip_suffix(".scope").unwrap_or(seg);
        let id = seg.rsplit(['-', ':']).next().unwrap_or(seg);
        if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(id[..12].to_ascii_lowercase());
        }
    }
    None
}

/// Path (below the cgroup v2 mount) of the cgroup whose id is `id`: the id is the inode
/// number of the cgroup's directory. Searches `/sys/fs/cgroup/unified` (hybrid hosts) or
/// `/sys/fs/cgroup` (v2 hosts), at most 8 levels deep.
pub fn path_of_cgroup_id(id: u64) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let unified = Path::new("/sys/fs/cgroup/unified");
    let root = if unified.join("cgroup.procs").exists() {
        unified
    } else {
        Path::new("/sys/fs/cgroup")
    };
    if std::fs::metadata(root).is_ok_and(|m| m.ino() == id) {
        return Some("/".into());
    }
    let mut stack = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if !md.is_dir() {
                continue;
            }
            if md.ino() == id {
                return e
                    .path()
                    .strip_prefix(root)
                    .ok()
                    .map(|p| format!("/{}", p.display()));
            }
            if depth < 8 {
                stack.push((e.path(), depth + 1));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2b1c0d9e8a7f6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b";

    #[test]
    fn runtimes_and_hierarchies() {
        for path in [
            format!("/docker/{ID}"),
            format!("/system.slice/docker-{ID}.scope"),
            format!("/kubepods.slice/kubepods-burstable.slice/cri-containerd-{ID}.scope"),
            format!("/kubepods/besteffort/pod1234/{ID}"),
            format!("/machine.slice/libpod-{ID}.scope/container"),
            format!("/kubepods.slice/crio-{ID}.scope"),
        ] {
            assert_eq!(from_path(&path).as_deref(), Some("3f2b1c0d9e8a"), "{path}");
        }
        assert_eq!(from_path("/user.slice/user-0.slice/session-3.scope"), None);
        let v1 = format!("12:memory:/docker/{ID}\n0::/system.slice/containerd.service\n");
        assert_eq!(from_proc_cgroup(&v1), "3f2b1c0d9e8a");
        assert_eq!(from_proc_cgroup("0::/init.scope\n"), "host");
        assert_eq!(from_proc_cgroup(""), "host");
    }

    #[test]
    fn cgroup_ids_are_directory_inodes() {
        use std::os::unix::fs::MetadataExt;
        let unified = Path::new("/sys/fs/cgroup/unified");
        let root = if unified.join("cgroup.procs").exists() {
            unified
        } else {
            Path::new("/sys/fs/cgroup")
        };
        let Some(sub) = std::fs::read_dir(root)
            .ok()
            .and_then(|d| d.flatten().find(|e| e.path().is_dir()))
        else {
            eprintln!("skipped: no cgroup v2 directory below {}", root.display());
            return;
        };
        let ino = sub.metadata().expect("metadata").ino();
        assert_eq!(
            path_of_cgroup_id(ino),
            Some(format!("/{}", sub.file_name().to_string_lossy()))
        );
    }
}
