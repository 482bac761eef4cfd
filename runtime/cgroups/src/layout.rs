//! Which cgroup hierarchies the host has mounted, and where: v1, hybrid or v2.
//!
//! Detection reads `/proc/self/mountinfo` (and `/proc/self/cgroup`, to
//! resolve relative cgroup paths against the caller's own cgroup). Both are
//! plain text handed to [`Layout::from_mountinfo`] and
//! [`Layout::with_self_cgroup`], with a root prefix, so tests run on fixtures.

use std::path::{Component, Path, PathBuf};

use crate::error::{CgroupError, Result};

/// The v1 controllers this crate knows; a v1 hierarchy carrying none of them
/// (`name=systemd`) is not used.
pub const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "pids",
    "blkio",
    "freezer",
    "devices",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
    "misc",
];

/// The shape of the host's cgroup mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutKind {
    /// Only v1 hierarchies.
    V1,
    /// v1 controller hierarchies plus a cgroup2 mount (usually
    /// `/sys/fs/cgroup/unified`) holding few or no controllers.
    Hybrid,
    /// A single cgroup2 hierarchy holding every controller.
    V2,
}

/// The format of a cgroup directory's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// cgroup v1 (one hierarchy per controller or group of controllers).
    V1,
    /// cgroup v2 (the unified hierarchy).
    V2,
}

/// One mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// The controllers attached to it (`cpu`, `cpuacct`, … — co-mounted ones together).
    pub controllers: Vec<String>,
    /// Where it is mounted (with the layout's root prefix applied).
    pub mount_point: PathBuf,
    /// The cgroup that the mount shows as its root (`/` unless bind-mounted from inside).
    pub mount_root: PathBuf,
    /// The caller's own cgroup in this hierarchy, from `/proc/self/cgroup`.
    pub self_path: Option<PathBuf>,
}

/// The cgroup2 mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedHierarchy {
    /// Where it is mounted (with the layout's root prefix applied).
    pub mount_point: PathBuf,
    /// The cgroup that the mount shows as its root.
    pub mount_root: PathBuf,
    /// The caller's own cgroup in it, from `/proc/self/cgroup` (`0::/path`).
    pub self_path: Option<PathBuf>,
}

/// The detected cgroup layout of a host (or of a fixture tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    kind: LayoutKind,
    root: PathBuf,
    v1: Vec<V1Hierarchy>,
    unified: Option<UnifiedHierarchy>,
}

impl Layout {
    /// Detects the running host's layout from `/proc/self/mountinfo` and
    /// `/proc/self/cgroup`.
    pub fn detect() -> Result<Layout> {
        let read = |p: &str| {
            std::fs::read_to_string(p).map_err(|source| CgroupError::Read {
                path: PathBuf::from(p),
                source,
            })
        };
        let layout = Layout::from_mountinfo(&read("/proc/self/mountinfo")?, Path::new("/"))?;
        Ok(layout.with_self_cgroup(&read("/proc/self/cgroup")?))
    }

    /// Builds a layout from the text of a mountinfo file. Mount points are
    /// taken relative to `root` (`/` on a real host, a fixture directory in
    /// tests).
    pub fn from_mountinfo(text: &str, root: &Path) -> Result<Layout> {
        let mut v1: Vec<V1Hierarchy> = Vec::new();
        let mut unified: Option<UnifiedHierarchy> = None;
        for line in text.lines() {
            let Some(m) = MountLine::parse(line) else {
                continue;
            };
            let mount_point = prefixed(root, &m.mount_point);
            match m.fs_type {
                // Several cgroup2 mounts (bind mounts) show one hierarchy: keep the first.
                "cgroup2" if unified.is_none() => {
                    unified = Some(UnifiedHierarchy {
                        mount_point,
                        mount_root: m.root,
                        self_path: None,
                    });
                }
                "cgroup" => {
                    let mut controllers: Vec<String> = m
                        .super_opts
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o))
                        .map(str::to_string)
                        .collect();
                    if controllers.is_empty() {
                        continue;
                    }
                    controllers.sort();
                    // The same hierarchy may be mounted twice (bind mounts): keep the first.
                    if v1.iter().any(|h| h.controllers == controllers) {
                        continue;
                    }
                    v1.push(V1Hierarchy {
                        controllers,
                        mount_point,
                        mount_root: m.root,
                        self_path: None,
                    });
                }
                _ => {}
            }
        }
        let kind = match (v1.is_empty(), unified.is_some()) {
            (true, true) => LayoutKind::V2,
            (false, true) => LayoutKind::Hybrid,
            (false, false) => LayoutKind::V1,
            (true, false) => {
                return Err(CgroupError::NoCgroups {
                    path: PathBuf::from("/proc/self/mountinfo"),
                });
            }
        };
        Ok(Layout {
            kind,
            root: root.to_path_buf(),
            v1,
            unified,
        })
    }

    /// Records the caller's own cgroups from the text of `/proc/self/cgroup`,
    /// so relative cgroup paths resolve beneath them.
    pub fn with_self_cgroup(mut self, text: &str) -> Layout {
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let path = PathBuf::from(path);
            if ctrls.is_empty() {
                if let Some(u) = self.unified.as_mut() {
                    u.self_path = Some(path);
                }
                continue;
            }
            let mut ctrls: Vec<&str> = ctrls
                .split(',')
                .filter(|c| V1_CONTROLLERS.contains(c))
                .collect();
            ctrls.sort_unstable();
            if let Some(h) = self.v1.iter_mut().find(|h| h.controllers == ctrls) {
                h.self_path = Some(path);
            }
        }
        self
    }

    /// A pure-v2 layout over this layout's cgroup2 mount, if it has one: on a
    /// hybrid host, the `unified` mount on its own (where child cgroups offer
    /// `cgroup.freeze`, `cgroup.kill`, `cgroup.events` and `cpu.stat`).
    pub fn unified_only(&self) -> Option<Layout> {
        Some(Layout {
            kind: LayoutKind::V2,
            root: self.root.clone(),
            v1: Vec::new(),
            unified: Some(self.unified.clone()?),
        })
    }

    /// v1, hybrid or v2.
    pub fn kind(&self) -> LayoutKind {
        self.kind
    }

    /// The root prefix given at construction (`/` on a real host).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The mounted v1 hierarchies that carry at least one known controller.
    pub fn v1_hierarchies(&self) -> &[V1Hierarchy] {
        &self.v1
    }

    /// The v1 hierarchy carrying `controller`, if mounted.
    pub fn v1_hierarchy(&self, controller: &str) -> Option<&V1Hierarchy> {
        self.v1
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
    }

    /// The cgroup2 mount, if any (the whole layout on v2, the `unified`
    /// mount on hybrid).
    pub fn unified(&self) -> Option<&UnifiedHierarchy> {
        self.unified.as_ref()
    }
}

/// Joins `p` (absolute) below `root`.
pub(crate) fn prefixed(root: &Path, p: &Path) -> PathBuf {
    let rel: PathBuf = p
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    root.join(rel)
}

/// The fields of one mountinfo line this crate uses.
struct MountLine<'a> {
    root: PathBuf,
    mount_point: PathBuf,
    fs_type: &'a str,
    super_opts: &'a str,
}

impl<'a> MountLine<'a> {
    /// `ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER-OPTIONS`
    fn parse(line: &'a str) -> Option<MountLine<'a>> {
        let (left, right) = line.split_once(" - ")?;
        let mut l = left.split(' ');
        let _id = l.next()?;
        let _parent = l.next()?;
        let _dev = l.next()?;
        let root = unescape(l.next()?);
        let mount_point = unescape(l.next()?);
        let mut r = right.split(' ');
        let fs_type = r.next()?;
        let _source = r.next()?;
        let super_opts = r.next().unwrap_or("");
        Some(MountLine {
            root: PathBuf::from(root),
            mount_point: PathBuf::from(mount_point),
            fs_type,
            super_opts,
        })
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, …).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const V2: &str = "\
22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw
27 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    const V1: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,pids
";

    #[test]
    fn detects_hybrid() {
        let l = Layout::from_mountinfo(HYBRID, Path::new("/")).unwrap();
        assert_eq!(l.kind(), LayoutKind::Hybrid);
        assert_eq!(l.v1_hierarchies().len(), 8);
        assert_eq!(
            l.v1_hierarchy("cpuacct").unwrap().mount_point,
            Path::new("/sys/fs/cgroup/cpuacct")
        );
        assert_eq!(
            l.unified().unwrap().mount_point,
            Path::new("/sys/fs/cgroup/unified")
        );
        let u = l.unified_only().unwrap();
        assert_eq!(u.kind(), LayoutKind::V2);
        assert!(u.v1_hierarchies().is_empty());
    }

    #[test]
    fn detects_v2_and_v1() {
        let l = Layout::from_mountinfo(V2, Path::new("/")).unwrap();
        assert_eq!(l.kind(), LayoutKind::V2);
        assert_eq!(
            l.unified().unwrap().mount_point,
            Path::new("/sys/fs/cgroup")
        );
        let l = Layout::from_mountinfo(V1, Path::new("/tmp/fx")).unwrap();
        assert_eq!(l.kind(), LayoutKind::V1);
        let h = l.v1_hierarchy("cpu").unwrap();
        assert_eq!(h.controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(
            h.mount_point,
            Path::new("/tmp/fx/sys/fs/cgroup/cpu,cpuacct")
        );
        assert!(l.v1_hierarchy("systemd").is_none());
        assert!(l.unified_only().is_none());
    }

    #[test]
    fn no_cgroups_is_an_error() {
        let e = Layout::from_mountinfo("22 1 259:1 / / rw - ext4 /dev/sda1 rw\n", Path::new("/"))
            .unwrap_err();
        assert!(e.to_string().contains("no cgroup hierarchy"), "{e}");
    }

    #[test]
    fn self_cgroup_and_escapes() {
        let l = Layout::from_mountinfo(HYBRID, Path::new("/"))
            .unwrap()
            .with_self_cgroup(
                "9:name=systemd:/\n4:memory:/process_api/e94b\n1:cpu:/\n0::/user.slice\n",
            );
        assert_eq!(
            l.v1_hierarchy("memory").unwrap().self_path.as_deref(),
            Some(Path::new("/process_api/e94b"))
        );
        assert_eq!(
            l.unified().unwrap().self_path.as_deref(),
            Some(Path::new("/user.slice"))
        );
        assert_eq!(unescape(r"/mnt/a\040b\134c"), "/mnt/a b\\c");
        assert_eq!(unescape(r"/x\04"), r"/x\04");
    }
}
