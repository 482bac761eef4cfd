//! Helpers shared by the integration tests: unique cgroup names, a guard
//! that removes everything a test made (even when it fails), and processes
//! that wait to be moved into a cgroup before they start their work.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lookout_cgroups::{Cgroup, Layout, LayoutKind};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// `lookout-test-<pid>-<n>`: a parent no other test (or test run) uses.
pub fn unique_parent() -> String {
    format!(
        "lookout-test-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// Whether the tests that need the real kernel can run (root).
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// The host's cgroup layout. The suite runs as root on a machine with
/// cgroups (CI does): anything else is a failure, never a silent pass.
pub fn host_layout() -> Option<Layout> {
    assert!(
        is_root(),
        "the cgroup tests need root (run the suite as root)"
    );
    Some(Layout::detect().unwrap_or_else(|e| panic!("no usable cgroups on this host: {e}")))
}

/// The directories `parent` would have in every hierarchy of `layout`
/// (relative to this process's own cgroups).
fn parent_dirs(layout: &Layout, parent: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let place = |mp: &Path, root: &Path, own: Option<&Path>| {
        let own = own.unwrap_or(Path::new("/"));
        let rel = own.strip_prefix(root).unwrap_or(own);
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        mp.join(rel).join(parent)
    };
    if layout.kind() != LayoutKind::V2 {
        for h in layout.v1_hierarchies() {
            out.push(place(&h.mount_point, &h.mount_root, h.self_path.as_deref()));
        }
    }
    if layout.kind() != LayoutKind::V1
        && let Some(u) = layout.unified()
    {
        out.push(place(&u.mount_point, &u.mount_root, u.self_path.as_deref()));
    }
    out
}

/// Owns a test's cgroup: on drop, kills what is inside, deletes it, and then
/// force-removes anything left under the test's unique parent.
pub struct Guard {
    pub cg: Option<Cgroup>,
    leftovers: Vec<PathBuf>,
}

impl Guard {
    /// Creates `<unique parent>/ctr` in every hierarchy of `layout`.
    pub fn create(layout: &Layout) -> Guard {
        let parent = unique_parent();
        let leftovers = parent_dirs(layout, &parent);
        let mut g = Guard {
            cg: None,
            leftovers,
        };
        g.cg = Some(Cgroup::create(layout, &format!("{parent}/ctr")).expect("create cgroup"));
        g
    }

    pub fn cg(&self) -> &Cgroup {
        self.cg.as_ref().expect("cgroup")
    }

    /// Every directory the guard would clean up (the unique parents).
    pub fn parents(&self) -> &[PathBuf] {
        &self.leftovers
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut cg) = self.cg.take() {
            let _ = cg.kill_all(Duration::from_secs(3));
            let _ = cg.delete(Duration::from_secs(5));
        }
        for d in &self.leftovers {
            force_remove(d);
        }
    }
}

/// Kills whatever runs in `dir` and below, then removes the tree.
fn force_remove(dir: &Path) {
    if !dir.is_dir() {
        return;
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                force_remove(&e.path());
            }
        }
    }
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("warning: could not remove {}", dir.display());
}

/// A shell running `script` once it is released: it first blocks reading
/// stdin, so the test can move it into a cgroup before it does anything.
/// Killed and reaped on drop.
pub struct Proc {
    pub child: Child,
    stdin: Option<ChildStdin>,
}

impl Proc {
    pub fn spawn(script: &str) -> Proc {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("read _go; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh");
        let stdin = child.stdin.take();
        Proc { child, stdin }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Lets the script run.
    pub fn release(&mut self) {
        let mut stdin = self.stdin.take().expect("released once");
        stdin.write_all(b"go\n").expect("release");
    }

    /// Waits up to `timeout` for the shell to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Bounded: a process stopped by a freezer cannot exit until the
        // guard (dropped later) thaws and kills its cgroup; then it is left
        // for init to reap.
        let _ = self.child.kill();
        let _ = self.wait_timeout(Duration::from_secs(2));
    }
}

/// Reads a number the counting loop wrote (`None` while it is mid-write).
pub fn read_count(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
