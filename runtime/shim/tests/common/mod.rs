//! Shared set-up for the shim's integration tests: the binary, the busybox
//! root, a per-test state root and cgroup parent, and cleanup.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub fn shim() -> &'static str {
    env!("CARGO_BIN_EXE_lookout-shim")
}

/// The directory of this test binary, where cargo put the json-file
/// plugin (a dev-dependency of this crate).
pub fn plugin_dir() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn rootfs() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../build/rootfs/busybox");
    assert!(
        p.join("bin/busybox").exists(),
        "no busybox root at {}: run scripts/build-rootfs.sh",
        p.display()
    );
    p.canonicalize().unwrap()
}

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests make namespaces and cgroups: run them as root"
    );
}

static N: AtomicU32 = AtomicU32::new(0);

/// One test's world: a state root and a cgroup parent of its own, removed
/// (with anything left in them) on drop.
pub struct World {
    pub tmp: tempfile::TempDir,
    pub cgroup_parent: String,
}

impl World {
    pub fn new() -> World {
        require_root();
        let n = N.fetch_add(1, Ordering::SeqCst);
        World {
            tmp: tempfile::tempdir().unwrap(),
            cgroup_parent: format!("/lookout-test-shim-{}-{n}", std::process::id()),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    /// `lookout-shim run` with the world's root and cgroup parent.
    pub fn run_cmd(&self, id: &str, flags: &[&str], cmd: &[&str]) -> Command {
        let mut c = Command::new(shim());
        c.arg("run")
            .arg("--rootfs")
            .arg(rootfs())
            .arg("--root")
            .arg(self.root())
            .arg("--id")
            .arg(id)
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .arg("--plugin-dir")
            .arg(plugin_dir())
            .args(flags)
            .arg("--")
            .args(cmd);
        c
    }

    pub fn run(&self, id: &str, flags: &[&str], cmd: &[&str]) -> Output {
        self.run_cmd(id, flags, cmd).output().unwrap()
    }

    pub fn logs(&self, id: &str, extra: &[&str]) -> String {
        let o = Command::new(shim())
            .args(["logs", "--id", id, "--log-dir"])
            .arg(self.root().join(id))
            .args(extra)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "logs: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Directories of the cgroup parent that exist in any hierarchy.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        cgroup_mounts()
            .into_iter()
            .map(|m| m.join(self.cgroup_parent.trim_start_matches('/')))
            .filter(|p| p.exists())
            .collect()
    }

    /// Container cgroups left under the parent.
    pub fn leftover_cgroups(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for d in self.cgroup_dirs() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                if e.file_type().unwrap().is_dir() {
                    v.push(e.path());
                }
            }
        }
        v
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Kill whatever a failed test left in its cgroups, then remove them.
        for d in self.cgroup_dirs() {
            let mut dirs = vec![d.clone()];
            if let Ok(rd) = std::fs::read_dir(&d) {
                for e in rd.flatten() {
                    if e.path().is_dir() {
                        dirs.insert(0, e.path());
                    }
                }
            }
            for dir in dirs {
                if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                    for p in procs.lines().filter_map(|l| l.parse::<i32>().ok()) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(p),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
                let t = Instant::now();
                while std::fs::remove_dir(&dir).is_err() && t.elapsed() < Duration::from_secs(5) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// Mount points of every cgroup hierarchy.
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mi.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            Some(PathBuf::from(pre.split(' ').nth(4)?))
        })
        .collect()
}

/// Polls `f` until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
