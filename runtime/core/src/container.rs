//! One running container: its cgroup and its isolated PID 1.
//!
//! [`Container::start`] prepares everything in the calling process (user
//! resolution in the container's own `/etc/passwd`, capabilities, rlimits,
//! the mount plan, `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`),
//! creates the cgroup and applies its limits and device rules, then clones
//! the init into new pid, mount, uts, ipc (and, unless host networking,
//! network) namespaces. The child waits until the parent has put it into
//! the cgroup, unshares its cgroup namespace, builds its root filesystem,
//! `pivot_root`s, drops privileges and execs; see [`crate::isolate::init`].

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lookout_cgroups::{Cgroup, CgroupError, DEFAULT_TIMEOUT, Layout};

use crate::isolate::caps::{self, CapError};
use crate::isolate::config;
use crate::isolate::init::{self, ChildFds, InitPlan, Op, PlanArgs, Report};
use crate::isolate::rlimit::{self, RlimitError};
use crate::isolate::rootfs::RootDir;
use crate::isolate::user::{self, UserError};
use crate::isolate::{self, c_string};
use crate::spec::{ContainerSpec, NetworkMode};

/// The container's standard streams.
#[derive(Debug)]
pub struct Stdio {
    /// stdin (`None`: `/dev/null`).
    pub stdin: Option<OwnedFd>,
    /// stdout.
    pub stdout: OwnedFd,
    /// stderr.
    pub stderr: OwnedFd,
}

/// How PID 1 ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// Docker style: the exit status, or 128 + the signal.
    pub code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
}

/// Everything that can go wrong with a container; every message names the
/// failing step and the value.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The spec is unusable (empty args, bad id or hostname, …).
    #[error("invalid container spec: {0}")]
    InvalidSpec(String),
    /// The user could not be resolved in the container's files.
    #[error(transparent)]
    User(#[from] UserError),
    /// A capability was refused.
    #[error(transparent)]
    Capability(#[from] CapError),
    /// An rlimit was refused.
    #[error(transparent)]
    Rlimit(#[from] RlimitError),
    /// A host-side step failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A cgroup step failed.
    #[error("cgroup {path}: {source}")]
    Cgroup {
        /// The container's cgroup path.
        path: String,
        /// The cgroups crate's error.
        #[source]
        source: CgroupError,
    },
    /// A step inside the container's init failed (reported by the child).
    #[error("{step}: {source}{hint}")]
    Setup {
        /// The step and its value, e.g. `cannot exec "nosuch"`.
        step: String,
        /// The errno.
        #[source]
        source: io::Error,
        /// More context (e.g. ` (searched PATH=…)`), possibly empty.
        hint: String,
    },
    /// PID 1 has exited (and was reaped); nothing to signal.
    #[error("container process {0} has exited")]
    Exited(i32),
    /// The caller's last check before the process is made failed (see
    /// [`Container::start_with`]).
    #[error("{0}")]
    Aborted(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ContainerError {
    let what = what.into();
    move |source| ContainerError::Io { what, source }
}

/// How long each phase of [`Container::start`] took, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StartTimings {
    /// Reading the layout, users, groups; writing /etc files; the plan.
    pub prepare_ns: u64,
    /// Creating the cgroup, applying limits and device rules.
    pub cgroup_ns: u64,
    /// clone3 with the new namespaces.
    pub namespaces_ns: u64,
    /// Moving the child into the cgroup (`cgroup.procs`).
    pub cgroup_join_ns: u64,
    /// The child's mounts, pivot_root, credentials, up to a successful
    /// `execve`.
    pub setup_exec_ns: u64,
}

fn since_ns(t: std::time::Instant) -> u64 {
    t.elapsed().as_nanos() as u64
}

/// A started container. Dropping it destroys it (best effort).
#[derive(Debug)]
pub struct Container {
    pid: i32,
    timings: StartTimings,
    cgroup: Cgroup,
    exit: Mutex<Option<ExitStatus>>,
    oom: AtomicBool,
    destroyed: bool,
}

fn check_id(id: &str) -> Result<(), ContainerError> {
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        || id.starts_with('.')
    {
        return Err(ContainerError::InvalidSpec(format!(
            "container id {id:?} must be non-empty [A-Za-z0-9_.-] (not starting with '.')"
        )));
    }
    Ok(())
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two new descriptors nobody else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn decode_status(status: i32) -> ExitStatus {
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        ExitStatus {
            code: 128 + sig,
            signal: Some(sig),
        }
    } else {
        ExitStatus {
            code: libc::WEXITSTATUS(status),
            signal: None,
        }
    }
}

/// Reaps `pid` if it has exited; `Ok(None)` while it runs.
fn try_reap(pid: i32) -> io::Result<Option<ExitStatus>> {
    let mut status = 0;
    // SAFETY: waitpid on our own child with a valid status pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    match r {
        0 => Ok(None),
        r if r == pid => Ok(Some(decode_status(status))),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Blocking reap of `pid` (used on failed starts).
fn reap_blocking(pid: i32) {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// Applies Docker's default device allow-list to the container's cgroup
/// (the only call site of `set_devices`).
fn apply_device_rules(cg: &Cgroup) -> Result<(), CgroupError> {
    cg.set_devices(&lookout_cgroups::devices::default_rules())
}

/// Everything prepared from the spec before the cgroup exists.
struct Prepared {
    plan: InitPlan,
    clone_flags: u64,
}

fn prepare(spec: &ContainerSpec, layout: &Layout) -> Result<Prepared, ContainerError> {
    check_id(&spec.id)?;
    let p = &spec.process;
    let Some(program) = p.args.first() else {
        return Err(ContainerError::InvalidSpec("process.args is empty".into()));
    };
    let host_hostname = fs::read_to_string("/proc/sys/kernel/hostname").ok();
    let hostname = config::hostname(
        spec.hostname.as_deref(),
        &spec.id,
        spec.network,
        host_hostname.as_deref().map(str::trim),
    );
    config::check_hostname(&hostname).map_err(ContainerError::InvalidSpec)?;

    let rootfs_path = fs::canonicalize(&spec.rootfs).map_err(io_err(format!(
        "cannot open rootfs {:?}",
        spec.rootfs.display()
    )))?;
    let root = RootDir::open(&rootfs_path).map_err(io_err(format!(
        "cannot open rootfs {:?}",
        rootfs_path.display()
    )))?;
    for d in ["proc", "sys", "dev", "etc"] {
        root.ensure_top_dir(d).map_err(io_err(format!(
            "cannot prepare /{d} in the rootfs {:?}",
            rootfs_path.display()
        )))?;
    }

    let passwd = root
        .read_optional("etc/passwd")
        .map_err(io_err("cannot read the container's /etc/passwd"))?;
    let group = root
        .read_optional("etc/group")
        .map_err(io_err("cannot read the container's /etc/group"))?;
    let user = user::resolve_user(p.user.as_deref(), passwd.as_deref(), group.as_deref())?;

    let env = config::environment(&p.env, &hostname, &user.home);
    let search_path =
        (!program.contains('/')).then(|| config::env_value(&env, "PATH").unwrap_or("").to_string());
    let candidates = config::exec_candidates(program, search_path.as_deref().unwrap_or(""));

    let rlimits = rlimit::check(&p.rlimits, rlimit::own_hard_limit)?;
    let last_cap: u32 = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let held = init::own_permitted_caps().map_err(io_err("cannot read own capabilities"))?;
    let cap_set = caps::container_caps(&p.cap_add, &p.cap_drop, last_cap, held)?;

    let (cwd, cwd_dirs) =
        config::cwd_components(p.cwd.as_deref()).map_err(ContainerError::InvalidSpec)?;

    let list = |given: &Option<Vec<String>>, default: &[&str]| -> Result<_, ContainerError> {
        let v: Vec<String> = match given {
            Some(v) => v.clone(),
            None => default.iter().map(|s| s.to_string()).collect(),
        };
        v.iter()
            .map(|s| {
                if !s.starts_with('/') {
                    return Err(ContainerError::InvalidSpec(format!(
                        "path {s:?} is not absolute"
                    )));
                }
                c_string("path", s).map_err(ContainerError::InvalidSpec)
            })
            .collect()
    };
    let masked = list(&spec.masked_paths, isolate::DEFAULT_MASKED_PATHS)?;
    let readonly = list(&spec.readonly_paths, isolate::DEFAULT_READONLY_PATHS)?;
    let ops = isolate::mount_ops(&rootfs_path, &isolate::CgroupMounts::for_layout(layout))
        .map_err(ContainerError::InvalidSpec)?;

    // /etc files: generated in `etc_dir` and bind-mounted over the root's
    // regular files; otherwise written through the rootfs (symlinks
    // resolved inside it).
    let host_hosts = fs::read_to_string("/etc/hosts").ok();
    let hosts = config::hosts_file(spec.network, host_hosts.as_deref());
    let resolv = fs::read("/etc/resolv.conf").unwrap_or_default();
    let mut ops = ops;
    for (file, content) in [
        ("etc/hostname", format!("{hostname}\n").into_bytes()),
        ("etc/hosts", hosts.into_bytes()),
        ("etc/resolv.conf", resolv),
    ] {
        let target = rootfs_path.join(file);
        let plain = |p: &Path| {
            fs::symlink_metadata(p)
                .map(|m| !m.file_type().is_symlink())
                .unwrap_or(false)
        };
        let bindable = spec.etc_dir.is_some()
            && plain(&rootfs_path.join("etc"))
            && match fs::symlink_metadata(&target) {
                Ok(m) => m.file_type().is_file(),
                Err(e) => e.kind() == io::ErrorKind::NotFound,
            };
        match (&spec.etc_dir, bindable) {
            (Some(dir), true) => {
                let name = &file["etc/".len()..];
                let src = dir.join(name);
                fs::create_dir_all(dir)
                    .and_then(|()| fs::write(&src, &content))
                    .map_err(io_err(format!("cannot write {}", src.display())))?;
                if !plain(&target) {
                    // The mount point must exist: an empty file.
                    root.write(file, b"")
                        .map_err(io_err(format!("cannot create /{file} in the rootfs")))?;
                }
                let c = |p: &Path| c_string("path", &p.to_string_lossy());
                ops.push((
                    Op::Mount {
                        src: Some(c(&src).map_err(ContainerError::InvalidSpec)?),
                        target: c(&target).map_err(ContainerError::InvalidSpec)?,
                        fstype: None,
                        flags: libc::MS_BIND,
                        data: None,
                    },
                    format!("cannot bind-mount {} onto /{file}", src.display()),
                ));
            }
            _ => root
                .write(file, &content)
                .map_err(io_err(format!("cannot write /{file} in the rootfs")))?,
        }
    }

    let spec_err = ContainerError::InvalidSpec;
    let args = p
        .args
        .iter()
        .map(|a| c_string("argument", a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(spec_err)?;
    let envc = env
        .iter()
        .map(|e| c_string("environment entry", e))
        .collect::<Result<Vec<_>, _>>()
        .map_err(spec_err)?;
    let cands = candidates
        .iter()
        .map(|c| c_string("program", c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(spec_err)?;
    let to_c = |v: &[String]| {
        v.iter()
            .map(|c| c_string("path", c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(spec_err)
    };
    let plan = InitPlan::new(
        ops,
        c_string("rootfs", &rootfs_path.to_string_lossy()).map_err(spec_err)?,
        c_string("hostname", &hostname).map_err(spec_err)?,
        spec.network == NetworkMode::None,
        masked,
        readonly,
        c_string("working directory", &cwd).map_err(spec_err)?,
        to_c(&cwd_dirs)?,
        rlimits,
        last_cap,
        cap_set,
        user.uid,
        user.gid,
        user.sgids.clone(),
        cands,
        program.clone(),
        search_path,
        PlanArgs { args, env: envc },
    );
    let mut clone_flags =
        (libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID) as u64;
    if spec.network == NetworkMode::None {
        clone_flags |= libc::CLONE_NEWNET as u64;
    }
    Ok(Prepared { plan, clone_flags })
}

/// Removes a cgroup made during a failed start.
fn discard_cgroup(mut cg: Cgroup) {
    let _ = cg.kill_all(DEFAULT_TIMEOUT);
    let _ = cg.delete(DEFAULT_TIMEOUT);
}

impl Container {
    /// Creates the cgroup (`spec.cgroup_path` or `/lookout/<id>`), applies
    /// limits and device rules, starts the isolated init, and returns once
    /// `execve` succeeded. On failure the error names the failing step and
    /// value (`cannot exec "nosuch": No such file or directory`, `user
    /// "bob" not found in /etc/passwd`) and no cgroup or process is left.
    pub fn start(spec: &ContainerSpec, stdio: Stdio) -> Result<Container, ContainerError> {
        Self::start_with(spec, stdio, || Ok(()))
    }

    /// As [`Container::start`], running `before_clone` once the cgroup is
    /// ready and before any process exists: work the caller does meanwhile
    /// on another thread (the shim loads its log drivers) is joined there,
    /// and an error from it aborts the start (nothing is left behind).
    pub fn start_with(
        spec: &ContainerSpec,
        stdio: Stdio,
        before_clone: impl FnOnce() -> Result<(), String>,
    ) -> Result<Container, ContainerError> {
        let cg_path = spec
            .cgroup_path
            .clone()
            .unwrap_or_else(|| format!("/lookout/{}", spec.id));
        let cg_err = |source| ContainerError::Cgroup {
            path: cg_path.clone(),
            source,
        };
        let mut timings = StartTimings::default();
        let t = std::time::Instant::now();
        let layout = Layout::detect().map_err(cg_err)?;
        let prepared = prepare(spec, &layout)?;
        timings.prepare_ns = since_ns(t);
        let t = std::time::Instant::now();
        let stdin = match stdio.stdin {
            Some(fd) => fd,
            None => fs::File::open("/dev/null")
                .map_err(io_err("cannot open /dev/null for stdin"))?
                .into(),
        };

        let cg = Cgroup::create(&layout, &cg_path).map_err(cg_err)?;
        if let Err(e) = cg
            .apply(&spec.resources)
            .and_then(|()| apply_device_rules(&cg))
        {
            discard_cgroup(cg);
            return Err(cg_err(e));
        }
        timings.cgroup_ns = since_ns(t);
        if let Err(e) = before_clone() {
            discard_cgroup(cg);
            return Err(ContainerError::Aborted(e));
        }

        let pipes = pipe().and_then(|s| pipe().map(|e| (s, e)));
        let ((sync_r, sync_w), (err_r, err_w)) = match pipes {
            Ok(p) => p,
            Err(e) => {
                discard_cgroup(cg);
                return Err(io_err("cannot create pipes")(e));
            }
        };
        let fds = ChildFds {
            sync_r: sync_r.as_raw_fd(),
            sync_w: sync_w.as_raw_fd(),
            err_r: err_r.as_raw_fd(),
            err_w: err_w.as_raw_fd(),
            stdio: [
                stdin.as_raw_fd(),
                stdio.stdout.as_raw_fd(),
                stdio.stderr.as_raw_fd(),
            ],
        };
        let t = std::time::Instant::now();
        // SAFETY: the child goes straight into child_main, which only makes
        // raw system calls on data prepared above (see isolate::init).
        let pid = match unsafe { init::clone_process(prepared.clone_flags) } {
            Ok(0) => {
                // SAFETY: we are the freshly cloned child.
                unsafe { init::child_main(&prepared.plan, fds) }
            }
            Ok(pid) => pid,
            Err(e) => {
                discard_cgroup(cg);
                return Err(io_err("cannot clone the container process")(e));
            }
        };
        timings.namespaces_ns = since_ns(t);
        let t = std::time::Instant::now();
        drop((sync_r, err_w, stdin, stdio.stdout, stdio.stderr));

        let fail = |cg: Cgroup, e: ContainerError| {
            // SAFETY: signalling our own, not yet reaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            reap_blocking(pid);
            discard_cgroup(cg);
            Err(e)
        };
        if let Err(e) = cg.add_process(pid) {
            return fail(cg, cg_err(e));
        }
        let mut sync_w = fs::File::from(sync_w);
        if let Err(e) = sync_w.write_all(&[1]) {
            return fail(cg, io_err("cannot release the container process")(e));
        }
        drop(sync_w);
        timings.cgroup_join_ns = since_ns(t);
        let t = std::time::Instant::now();

        let mut err_r = fs::File::from(err_r);
        let mut buf = [0u8; Report::SIZE];
        let mut got = 0;
        while got < buf.len() {
            match err_r.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return fail(cg, io_err("cannot read the container's setup status")(e)),
            }
        }
        if got == Report::SIZE {
            let r = Report::from_bytes(buf);
            let e = ContainerError::Setup {
                step: prepared.plan.describe(r),
                source: io::Error::from_raw_os_error(r.errno),
                hint: prepared.plan.hint(r),
            };
            return fail(cg, e);
        }
        if got != 0 {
            let e = io::Error::new(io::ErrorKind::UnexpectedEof, "short status report");
            return fail(cg, io_err("cannot read the container's setup status")(e));
        }
        timings.setup_exec_ns = since_ns(t);
        Ok(Container {
            pid,
            timings,
            cgroup: cg,
            exit: Mutex::new(None),
            oom: AtomicBool::new(false),
            destroyed: false,
        })
    }

    /// How long each phase of the start took.
    pub fn start_timings(&self) -> StartTimings {
        self.timings
    }

    /// PID 1's pid in the caller's pid namespace.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The container's cgroup.
    pub fn cgroup(&self) -> &Cgroup {
        &self.cgroup
    }

    fn exit_lock(&self) -> std::sync::MutexGuard<'_, Option<ExitStatus>> {
        self.exit.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `sig` to PID 1, or with `all` to every process of the cgroup.
    pub fn signal(&self, sig: i32, all: bool) -> Result<(), ContainerError> {
        // Holding the lock keeps wait() from reaping PID 1 meanwhile, so the
        // pid cannot be reused under us.
        let guard = self.exit_lock();
        if guard.is_some() && !all {
            return Err(ContainerError::Exited(self.pid));
        }
        let pids = if all {
            self.cgroup
                .procs()
                .map_err(|source| ContainerError::Cgroup {
                    path: self.cgroup.path().to_string(),
                    source,
                })?
        } else {
            vec![self.pid]
        };
        for p in pids {
            // SAFETY: kill has no memory-safety preconditions.
            if unsafe { libc::kill(p, sig) } != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::ESRCH) {
                    return Err(io_err(format!("cannot send signal {sig} to pid {p}"))(e));
                }
            }
        }
        Ok(())
    }

    /// Blocks until PID 1 exits (waits for that pid only) and returns its
    /// status; later calls return the same status.
    pub fn wait(&self) -> Result<ExitStatus, ContainerError> {
        if let Some(s) = *self.exit_lock() {
            return Ok(s);
        }
        loop {
            // SAFETY: an all-zero siginfo is valid output space for waitid.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: waitid on our own child; WNOWAIT leaves it reapable,
            // so the reaping below happens under the lock.
            let r = unsafe {
                libc::waitid(
                    libc::P_PID,
                    self.pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                )
            };
            if r == 0 {
                break;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => break,
                _ => return Err(io_err(format!("cannot wait for pid {}", self.pid))(e)),
            }
        }
        let mut guard = self.exit_lock();
        if let Some(s) = *guard {
            return Ok(s);
        }
        match try_reap(self.pid) {
            Ok(Some(s)) => {
                *guard = Some(s);
                Ok(s)
            }
            Ok(None) => Err(io_err(format!("cannot reap pid {}", self.pid))(
                io::Error::from(io::ErrorKind::WouldBlock),
            )),
            Err(e) => Err(io_err(format!("cannot wait for pid {}", self.pid))(e)),
        }
    }

    /// Whether the kernel's OOM killer killed a process of the container.
    pub fn oom_killed(&self) -> bool {
        if self.destroyed {
            return self.oom.load(Ordering::Relaxed);
        }
        self.cgroup.oom_killed().unwrap_or(false)
    }

    /// Kills what is left, reaps PID 1 and removes the cgroup. Idempotent;
    /// also done (best effort) on drop.
    pub fn destroy(&mut self) -> Result<(), ContainerError> {
        if self.destroyed {
            return Ok(());
        }
        let cg_err = |cg: &Cgroup, source| ContainerError::Cgroup {
            path: cg.path().to_string(),
            source,
        };
        self.cgroup
            .kill_all(DEFAULT_TIMEOUT)
            .map_err(|e| cg_err(&self.cgroup, e))?;
        {
            let mut guard = self.exit.lock().unwrap_or_else(|p| p.into_inner());
            if guard.is_none() {
                // PID 1 was killed above; reap it (bounded: it is dying).
                let deadline = Instant::now() + DEFAULT_TIMEOUT;
                loop {
                    match try_reap(self.pid) {
                        Ok(Some(s)) => {
                            *guard = Some(s);
                            break;
                        }
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        _ => break,
                    }
                }
            }
        }
        self.oom
            .store(self.cgroup.oom_killed().unwrap_or(false), Ordering::Relaxed);
        self.cgroup
            .delete(DEFAULT_TIMEOUT)
            .map_err(|e| cg_err(&self.cgroup, e))?;
        self.destroyed = true;
        Ok(())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.destroy();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(check_id("abc-1.2_3").is_ok());
        assert!(check_id("").is_err());
        assert!(check_id("a/b").is_err());
        assert!(check_id("..").is_err());
    }

    #[test]
    fn statuses() {
        assert_eq!(
            decode_status(3 << 8),
            ExitStatus {
                code: 3,
                signal: None
            }
        );
        assert_eq!(
            decode_status(9),
            ExitStatus {
                code: 137,
                signal: Some(9)
            }
        );
    }

    #[test]
    fn missing_rootfs_is_named() {
        let spec = ContainerSpec {
            id: "x".into(),
            rootfs: "/nonexistent/rootfs".into(),
            process: crate::spec::ProcessSpec {
                args: vec!["true".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let (_r, w) = pipe().unwrap();
        let w2 = w.try_clone().unwrap();
        let e = Container::start(
            &spec,
            Stdio {
                stdin: None,
                stdout: w,
                stderr: w2,
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/rootfs"), "{e}");
    }
}
