//! Facts about the host for `version` and `info`, read from the running
//! machine: kernel, OS release, CPUs, memory, cgroup features, the data
//! root's filesystem and the log drivers found in the plugin directories.

use std::collections::BTreeSet;
use std::path::Path;

use lookout_cgroups::{Layout, LayoutKind};
use lookout_core::plugin::PluginPath;

/// Kernel release and machine (`uname -r`, `uname -m`).
pub fn uname() -> (String, String) {
    match nix::sys::utsname::uname() {
        Ok(u) => (
            u.release().to_string_lossy().into_owned(),
            u.machine().to_string_lossy().into_owned(),
        ),
        Err(_) => (String::new(), String::new()),
    }
}

/// Go's name for the architecture (`amd64`, `arm64`, …), as the API reports it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// `PRETTY_NAME` and `VERSION_ID` of `/etc/os-release`.
pub fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let pretty = get("PRETTY_NAME");
    (
        if pretty.is_empty() {
            "Linux".to_string()
        } else {
            pretty
        },
        get("VERSION_ID"),
    )
}

/// The host name.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Threads of this process.
pub fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Docker's name of the filesystem holding `path` (`extfs`, `xfs`, …).
pub fn backing_fs(path: &Path) -> String {
    match nix::sys::statfs::statfs(path) {
        Ok(s) => {
            let magic = s.filesystem_type().0;
            match magic {
                0xEF53 => "extfs".into(),
                0x5846_5342 => "xfs".into(),
                0x9123_683E => "btrfs".into(),
                0x0102_1994 => "tmpfs".into(),
                0x794C_7630 => "overlayfs".into(),
                0x2FC1_2FC1 => "zfs".into(),
                0x6573_5546 => "fuse".into(),
                other => format!("<unknown> ({other:#x})"),
            }
        }
        Err(_) => "<unknown>".into(),
    }
}

/// Log drivers available: every plugin library in the standard plugin
/// directories, by the name it is found under.
pub fn log_drivers(data_root: &Path) -> Vec<String> {
    let mut names = BTreeSet::new();
    for dir in PluginPath::standard(Some(data_root)).dirs() {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            let f = e.file_name().to_string_lossy().into_owned();
            let Some(stem) = f.strip_suffix(".so") else {
                continue;
            };
            if let Some(n) = stem.strip_prefix("liblookout_plugin_") {
                names.insert(n.replace('_', "-"));
            } else if let Some(n) = stem.strip_prefix("lookout-plugin-") {
                names.insert(n.to_string());
            }
        }
    }
    names.into_iter().collect()
}

/// Cgroup features as `info` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupFeatures {
    /// Memory limits.
    pub memory: bool,
    /// Swap limits.
    pub swap: bool,
    /// TCP kernel memory accounting.
    pub kmem_tcp: bool,
    /// CFS period.
    pub cfs_period: bool,
    /// CFS quota.
    pub cfs_quota: bool,
    /// CPU shares.
    pub shares: bool,
    /// cpuset.
    pub cpuset: bool,
    /// pids.
    pub pids: bool,
    /// Disabling the OOM killer.
    pub oom_kill_disable: bool,
}

/// Probes the root of each hierarchy for the control files.
pub fn cgroup_features(layout: Option<&Layout>) -> CgroupFeatures {
    let Some(l) = layout else {
        return CgroupFeatures::default();
    };
    if l.kind() == LayoutKind::V2 {
        let root = l.unified().map(|u| u.mount_point.clone());
        let ctrl = root
            .as_ref()
            .and_then(|r| std::fs::read_to_string(r.join("cgroup.controllers")).ok())
            .unwrap_or_default();
        let has = |c: &str| ctrl.split_whitespace().any(|x| x == c);
        return CgroupFeatures {
            memory: has("memory"),
            swap: has("memory"),
            kmem_tcp: false,
            cfs_period: has("cpu"),
            cfs_quota: has("cpu"),
            shares: has("cpu"),
            cpuset: has("cpuset"),
            pids: has("pids"),
            oom_kill_disable: false,
        };
    }
    let file = |ctrl: &str, f: &str| {
        l.v1_hierarchy(ctrl)
            .map(|h| h.mount_point.join(f).exists())
            .unwrap_or(false)
    };
    CgroupFeatures {
        memory: file("memory", "memory.limit_in_bytes"),
        swap: file("memory", "memory.memsw.limit_in_bytes"),
        kmem_tcp: file("memory", "memory.kmem.tcp.limit_in_bytes"),
        cfs_period: file("cpu", "cpu.cfs_period_us"),
        cfs_quota: file("cpu", "cpu.cfs_quota_us"),
        shares: file("cpu", "cpu.shares"),
        cpuset: file("cpuset", "cpuset.cpus"),
        pids: file("pids", "pids.max") || l.v1_hierarchy("pids").is_some(),
        oom_kill_disable: file("memory", "memory.oom_control"),
    }
}

/// Reads a `/proc/sys` flag (`1` → true).
pub fn sysctl_on(path: &str) -> bool {
    std::fs::read_to_string(path)
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}
