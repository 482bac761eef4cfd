//! Helpers for the container tests: a private overlay rootfs per test over
//! the shared busybox tree, unique ids and cgroup paths, output capture.

#![allow(dead_code)]

use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use lookout_core::container::{Container, ContainerError, ExitStatus, Stdio};
use lookout_core::spec::{ContainerSpec, ProcessSpec};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Every temporary directory of these tests starts with this (so the mount
/// table can be compared without the tests' own overlays).
pub const TMP_PREFIX: &str = "lookout-ct-";

/// The shared busybox tree built by scripts/build-rootfs.sh.
pub fn busybox() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../build/rootfs/busybox");
    assert!(
        p.join("bin/busybox").exists(),
        "busybox rootfs missing at {}: run scripts/build-rootfs.sh first",
        p.display()
    );
    p
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// A writable rootfs: an overlay over the shared tree, upper and work dirs
/// in a temp dir; unmounted on drop.
pub struct Rootfs {
    pub dir: tempfile::TempDir,
    pub merged: PathBuf,
}

impl Rootfs {
    pub fn new() -> Rootfs {
        let lower = busybox();
        let dir = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempdir()
            .unwrap();
        let (upper, work, merged) = (
            dir.path().join("upper"),
            dir.path().join("work"),
            dir.path().join("merged"),
        );
        for d in [&upper, &work, &merged] {
            fs::create_dir(d).unwrap();
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        let data = CString::new(data).unwrap();
        // SAFETY: valid NUL-terminated strings for mount(2).
        let rc = unsafe {
            libc::mount(
                c"overlay".as_ptr(),
                cstr(&merged).as_ptr(),
                c"overlay".as_ptr(),
                0,
                data.as_ptr().cast(),
            )
        };
        assert_eq!(
            rc,
            0,
            "overlay mount failed: {}",
            std::io::Error::last_os_error()
        );
        Rootfs { dir, merged }
    }

    pub fn path(&self) -> &Path {
        &self.merged
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        // SAFETY: valid NUL-terminated path.
        unsafe { libc::umount2(cstr(&self.merged).as_ptr(), libc::MNT_DETACH) };
    }
}

/// A unique container id and cgroup path for this test process.
pub fn ids() -> (String, String) {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let pid = std::process::id();
    let id = format!("{pid:08x}{n:04x}deadbeefcafe0123456789");
    (id.clone(), format!("/lookout-test-{pid}-{n}/{id}"))
}

/// A spec running `args` in `rootfs` with a unique id and cgroup.
pub fn spec(rootfs: &Rootfs, args: &[&str]) -> ContainerSpec {
    let (id, cg) = ids();
    ContainerSpec {
        id,
        rootfs: rootfs.path().to_path_buf(),
        cgroup_path: Some(cg),
        process: ProcessSpec {
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: room for two fds.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh fds.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn reader(fd: OwnedFd) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut f = fs::File::from(fd);
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        s
    })
}

/// A started container with its output being collected.
pub struct Running {
    pub container: Container,
    out: Option<JoinHandle<String>>,
    err: Option<JoinHandle<String>>,
}

/// What a finished container printed and how it ended.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub oom_killed: bool,
}

/// The cgroup directories of `path` that exist (in any hierarchy).
pub fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    let top = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut out = Vec::new();
    for e in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let d = e.path().join(&top);
        if d.exists() {
            out.push(d);
        }
    }
    out
}

pub fn start(spec: &ContainerSpec) -> Result<Running, ContainerError> {
    start_with_stdin(spec, None)
}

/// Like [`start`], with the given stdin.
pub fn start_with_stdin(
    spec: &ContainerSpec,
    stdin: Option<OwnedFd>,
) -> Result<Running, ContainerError> {
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    let c = Container::start(
        spec,
        Stdio {
            stdin,
            stdout: out_w,
            stderr: err_w,
        },
    )?;
    Ok(Running {
        container: c,
        out: Some(reader(out_r)),
        err: Some(reader(err_r)),
    })
}

impl Running {
    /// Waits, collects output, destroys, and checks the cgroup is gone.
    pub fn finish(mut self) -> Output {
        let status = self.container.wait().expect("wait");
        let stdout = self.out.take().unwrap().join().unwrap();
        let stderr = self.err.take().unwrap().join().unwrap();
        let oom_killed = self.container.oom_killed();
        let path = self.container.cgroup().path().to_string();
        self.container.destroy().expect("destroy");
        self.container.destroy().expect("destroy is idempotent");
        assert!(
            cgroup_dirs(&path).is_empty(),
            "cgroup left behind: {:?}",
            cgroup_dirs(&path)
        );
        Output {
            status,
            stdout,
            stderr,
            oom_killed,
        }
    }
}

/// Runs `args` to completion in a fresh rootfs, after `tweak` edits the spec.
pub fn run_with(args: &[&str], tweak: impl FnOnce(&mut ContainerSpec)) -> Output {
    let rootfs = Rootfs::new();
    let mut s = spec(&rootfs, args);
    tweak(&mut s);
    let out = start(&s)
        .unwrap_or_else(|e| panic!("start {args:?}: {e}"))
        .finish();
    drop(rootfs);
    out
}

/// Runs `sh -c script` and returns stdout, asserting exit 0.
pub fn sh(script: &str, tweak: impl FnOnce(&mut ContainerSpec)) -> String {
    let out = run_with(&["sh", "-c", script], tweak);
    assert_eq!(
        out.status.code, 0,
        "script {script:?} failed: {:?}, stderr: {}",
        out.status, out.stderr
    );
    out.stdout
}

/// Starting must fail; returns the error and checks nothing is left.
pub fn start_err(args: &[&str], tweak: impl FnOnce(&mut ContainerSpec)) -> ContainerError {
    let rootfs = Rootfs::new();
    let mut s = spec(&rootfs, args);
    tweak(&mut s);
    let cg = s.cgroup_path.clone().unwrap();
    let e = match start(&s) {
        Ok(r) => {
            let out = r.finish();
            panic!("start of {args:?} succeeded: {out:?}");
        }
        Err(e) => e,
    };
    assert!(
        cgroup_dirs(&cg).is_empty(),
        "cgroup left after a failed start: {:?}",
        cgroup_dirs(&cg)
    );
    e
}

/// A value of `Key:\tvalue` in /proc/<pid>/status-like text.
pub fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}
