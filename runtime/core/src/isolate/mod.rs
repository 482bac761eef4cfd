//! Container isolation: namespaces, mounts, pivot_root, /dev, users,
//! capabilities, rlimits and the exec of the container's PID 1.
//!
//! The pure parts (passwd/group parsing and user resolution, capability
//! names, rlimit names, environment, `/etc/hosts`) live in their own
//! modules and are unit-tested without root. [`init`] holds the plan the
//! parent prepares and the allocation-free child that runs it;
//! [`crate::container::Container`] ties them to the cgroup.

pub mod caps;
pub mod config;
pub mod init;
pub mod rlimit;
pub mod rootfs;
pub mod user;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use init::Op;

/// Docker's default masked paths.
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's default read-only paths.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The character devices created in the container's `/dev`:
/// (name, major, minor).
pub const DEVICES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The symlinks created in the container's `/dev`: (link, target).
pub const DEV_SYMLINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("core", "/proc/kcore"),
    ("ptmx", "pts/ptmx"),
];

/// How `/sys/fs/cgroup` is set up inside the container (read-only, rooted
/// at the container's own cgroup through the cgroup namespace), mirroring
/// the host's layout as Docker does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupMounts {
    /// One cgroup2 mount at `/sys/fs/cgroup`.
    Unified,
    /// A tmpfs at `/sys/fs/cgroup` holding one v1 mount per hierarchy
    /// (`(directory, controllers)`, e.g. `("cpu,cpuacct", "cpu,cpuacct")`)
    /// and, with `unified`, the cgroup2 mount at `unified`.
    V1 {
        /// The v1 hierarchies: directory name and mount options.
        hierarchies: Vec<(String, String)>,
        /// Whether a cgroup2 mount goes to `/sys/fs/cgroup/unified`.
        unified: bool,
    },
}

impl CgroupMounts {
    /// The container-side layout for a host layout.
    pub fn for_layout(layout: &lookout_cgroups::Layout) -> CgroupMounts {
        use lookout_cgroups::LayoutKind;
        if layout.kind() == LayoutKind::V2 {
            return CgroupMounts::Unified;
        }
        let hierarchies = layout
            .v1_hierarchies()
            .iter()
            .map(|h| {
                let opts = h.controllers.join(",");
                let dir = h
                    .mount_point
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| opts.clone());
                (dir, opts)
            })
            .collect();
        CgroupMounts::V1 {
            hierarchies,
            unified: layout.kind() == LayoutKind::Hybrid,
        }
    }
}

/// A string as a C string, or an error naming what it is.
pub fn c_string(what: &str, s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{what} {s:?} contains a NUL byte"))
}

fn c_path(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| format!("path {:?} contains a NUL byte", p.display()))
}

/// The file-system operations before `pivot_root`, each with the message
/// shown when it fails. `rootfs` is the host path of the root filesystem.
pub fn mount_ops(rootfs: &Path, cgroups: &CgroupMounts) -> Result<Vec<(Op, String)>, String> {
    use libc::{
        MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_RELATIME, MS_SLAVE,
        MS_STRICTATIME,
    };
    let mut ops = Vec::new();
    let at = |rel: &str| c_path(&rootfs.join(rel));
    let mount = |src: Option<&str>,
                 target: CString,
                 fstype: Option<&str>,
                 flags: libc::c_ulong,
                 data: Option<&str>|
     -> Op {
        Op::Mount {
            src: src.map(|s| CString::new(s).unwrap_or_default()),
            target,
            fstype: fstype.map(|s| CString::new(s).unwrap_or_default()),
            flags,
            data: data.map(|s| CString::new(s).unwrap_or_default()),
        }
    };
    let root_c = c_path(rootfs)?;
    let rootfs_s = rootfs.display().to_string();

    ops.push((
        mount(None, CString::from(c"/"), None, MS_REC | MS_SLAVE, None),
        "cannot make / rslave".to_string(),
    ));
    ops.push((
        Op::Mount {
            src: Some(root_c.clone()),
            target: root_c,
            fstype: None,
            flags: MS_BIND | MS_REC,
            data: None,
        },
        format!("cannot bind-mount the rootfs {rootfs_s:?} onto itself"),
    ));
    ops.push((
        mount(
            Some("proc"),
            at("proc")?,
            Some("proc"),
            MS_NOSUID | MS_NODEV | MS_NOEXEC,
            None,
        ),
        "cannot mount proc on /proc".into(),
    ));
    ops.push((
        mount(
            Some("sysfs"),
            at("sys")?,
            Some("sysfs"),
            MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
            None,
        ),
        "cannot mount sysfs (read-only) on /sys".into(),
    ));
    let ro = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY | MS_RELATIME;
    match cgroups {
        CgroupMounts::Unified => ops.push((
            mount(
                Some("cgroup"),
                at("sys/fs/cgroup")?,
                Some("cgroup2"),
                ro,
                None,
            ),
            "cannot mount cgroup2 (read-only) on /sys/fs/cgroup".into(),
        )),
        CgroupMounts::V1 {
            hierarchies,
            unified,
        } => {
            ops.push((
                mount(
                    Some("tmpfs"),
                    at("sys/fs/cgroup")?,
                    Some("tmpfs"),
                    MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    Some("mode=755"),
                ),
                "cannot mount tmpfs on /sys/fs/cgroup".into(),
            ));
            for (dir, opts) in hierarchies {
                if dir.contains('/') || dir.starts_with('.') {
                    return Err(format!("bad cgroup hierarchy directory {dir:?}"));
                }
                let rel = format!("sys/fs/cgroup/{dir}");
                ops.push((
                    Op::Mkdir {
                        path: at(&rel)?,
                        mode: 0o755,
                    },
                    format!("cannot create /{rel}"),
                ));
                ops.push((
                    mount(Some("cgroup"), at(&rel)?, Some("cgroup"), ro, Some(opts)),
                    format!("cannot mount the cgroup {opts} hierarchy (read-only) on /{rel}"),
                ));
                // Co-mounted controllers get a symlink each, as on the host
                // (cpu -> cpu,cpuacct).
                if opts.contains(',') {
                    for c in opts.split(',').filter(|c| *c != dir) {
                        ops.push((
                            Op::Symlink {
                                target: c_string("symlink target", dir)?,
                                link: at(&format!("sys/fs/cgroup/{c}"))?,
                            },
                            format!("cannot create symlink /sys/fs/cgroup/{c} -> {dir}"),
                        ));
                    }
                }
            }
            if *unified {
                ops.push((
                    Op::Mkdir {
                        path: at("sys/fs/cgroup/unified")?,
                        mode: 0o755,
                    },
                    "cannot create /sys/fs/cgroup/unified".into(),
                ));
                ops.push((
                    mount(
                        Some("cgroup"),
                        at("sys/fs/cgroup/unified")?,
                        Some("cgroup2"),
                        ro,
                        None,
                    ),
                    "cannot mount cgroup2 (read-only) on /sys/fs/cgroup/unified".into(),
                ));
            }
            ops.push((
                mount(
                    Some("tmpfs"),
                    at("sys/fs/cgroup")?,
                    None,
                    libc::MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
                    Some("mode=755"),
                ),
                "cannot make /sys/fs/cgroup read-only".into(),
            ));
        }
    }
    ops.push((
        mount(
            Some("tmpfs"),
            at("dev")?,
            Some("tmpfs"),
            MS_NOSUID | MS_STRICTATIME,
            Some("mode=755,size=65536k"),
        ),
        "cannot mount tmpfs on /dev".into(),
    ));
    for (name, major, minor) in DEVICES {
        ops.push((
            Op::Mknod {
                path: at(&format!("dev/{name}"))?,
                mode: libc::S_IFCHR | 0o666,
                dev: libc::makedev(*major, *minor),
            },
            format!("cannot create /dev/{name} (c {major}:{minor})"),
        ));
    }
    for (dir, mode) in [
        ("dev/pts", 0o755),
        ("dev/shm", 0o1777),
        ("dev/mqueue", 0o755),
    ] {
        ops.push((
            Op::Mkdir {
                path: at(dir)?,
                mode,
            },
            format!("cannot create /{dir}"),
        ));
    }
    ops.push((
        mount(
            Some("devpts"),
            at("dev/pts")?,
            Some("devpts"),
            MS_NOSUID | MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
        ),
        "cannot mount devpts on /dev/pts".into(),
    ));
    ops.push((
        mount(
            Some("shm"),
            at("dev/shm")?,
            Some("tmpfs"),
            MS_NOSUID | MS_NODEV | MS_NOEXEC,
            Some("mode=1777,size=65536k"),
        ),
        "cannot mount tmpfs on /dev/shm".into(),
    ));
    ops.push((
        mount(
            Some("mqueue"),
            at("dev/mqueue")?,
            Some("mqueue"),
            MS_NOSUID | MS_NODEV | MS_NOEXEC,
            None,
        ),
        "cannot mount mqueue on /dev/mqueue".into(),
    ));
    for (link, target) in DEV_SYMLINKS {
        ops.push((
            Op::Symlink {
                target: c_string("symlink target", target)?,
                link: at(&format!("dev/{link}"))?,
            },
            format!("cannot create symlink /dev/{link} -> {target}"),
        ));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_stay_under_the_rootfs() {
        let layout = lookout_cgroups::Layout::from_mountinfo(
            "1 0 0:1 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             2 0 0:2 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             3 0 0:3 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
            Path::new("/"),
        )
        .unwrap();
        let cg = CgroupMounts::for_layout(&layout);
        assert_eq!(
            cg,
            CgroupMounts::V1 {
                hierarchies: vec![
                    ("cpu,cpuacct".into(), "cpu,cpuacct".into()),
                    ("memory".into(), "memory".into())
                ],
                unified: true
            }
        );
        let ops = mount_ops(Path::new("/r"), &cg).unwrap();
        assert!(
            ops.iter()
                .any(|(_, w)| w.contains("symlink /sys/fs/cgroup/cpu ->"))
        );
        assert!(
            ops.iter()
                .any(|(_, w)| w.contains("/sys/fs/cgroup/unified"))
        );
        for (op, what) in &ops {
            let target = match op {
                Op::Mount { target, .. } => target,
                Op::Mkdir { path, .. } | Op::Mknod { path, .. } => path,
                Op::Symlink { link, .. } => link,
            };
            let t = target.to_str().unwrap();
            assert!(t == "/" || t.starts_with("/r"), "{t} ({what})");
        }
        assert!(ops.iter().any(|(_, w)| w.contains("/dev/pts")));
    }
}
