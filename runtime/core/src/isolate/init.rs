//! The container's init: a plan prepared in the parent, executed by the
//! cloned child without allocating.
//!
//! The engine (the shim) is multithreaded. After `clone3` only the calling
//! thread exists in the child, while locks held by other threads (malloc's,
//! stdio's, glibc's thread list) are copied in whatever state they were.
//! So everything the child needs — every path, mount option, argv/envp
//! pointer array, uid/gid list, capability mask, rlimit — is built here as
//! [`InitPlan`] *before* the clone, and the child ([`child_main`]) only
//! reads it and makes raw system calls: no allocation, no lock, no panic
//! path, no glibc wrapper that walks glibc's thread list (`setuid` & co. are
//! issued as raw syscalls for that reason: glibc's wrappers would try to
//! signal the parent's other threads, which do not exist in the child).
//!
//! A failing step is reported to the parent over a close-on-exec pipe as
//! `(step, index, errno)`; the parent turns it into a message with
//! [`InitPlan::describe`]. End of file on that pipe means `execve`
//! succeeded.

use std::ffi::{CString, c_char};
use std::io;
use std::os::fd::RawFd;

use super::rlimit::Rlimit;

/// What the child reports when a step fails (12 bytes over the pipe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Report {
    /// One of the `STEP_*` constants.
    pub step: u32,
    /// Index into the plan's list for the step (mount, path, rlimit, …).
    pub index: u32,
    /// The failing call's errno.
    pub errno: i32,
}

impl Report {
    /// Size on the wire.
    pub const SIZE: usize = 12;

    /// Native-endian wire form.
    pub fn to_bytes(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        let (a, rest) = b.split_at_mut(4);
        a.copy_from_slice(&self.step.to_ne_bytes());
        let (i, e) = rest.split_at_mut(4);
        i.copy_from_slice(&self.index.to_ne_bytes());
        e.copy_from_slice(&self.errno.to_ne_bytes());
        b
    }

    /// Parses the wire form.
    pub fn from_bytes(b: [u8; 12]) -> Report {
        Report {
            step: u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            index: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            errno: i32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
}

const STEP_SYNC: u32 = 1;
const STEP_CGROUPNS: u32 = 2;
const STEP_SETSID: u32 = 3;
const STEP_STDIO: u32 = 4;
const STEP_OP: u32 = 5;
const STEP_LO: u32 = 6;
const STEP_HOSTNAME: u32 = 7;
const STEP_PIVOT: u32 = 8;
const STEP_MASK: u32 = 9;
const STEP_READONLY: u32 = 10;
const STEP_CWD: u32 = 11;
const STEP_RLIMIT: u32 = 12;
const STEP_BOUNDING: u32 = 13;
const STEP_AMBIENT: u32 = 14;
const STEP_SETGROUPS: u32 = 15;
const STEP_SETGID: u32 = 16;
const STEP_SETUID: u32 = 17;
const STEP_CAPSET: u32 = 18;
const STEP_NNP: u32 = 19;
const STEP_CLOSE_FDS: u32 = 20;
const STEP_EXEC: u32 = 21;

/// One file-system operation of the pre-`pivot_root` phase, with host
/// paths (inside the rootfs).
#[derive(Debug)]
pub enum Op {
    /// `mount(2)`.
    Mount {
        /// Source (`None`: NULL).
        src: Option<CString>,
        /// Mount point.
        target: CString,
        /// File-system type (`None`: NULL).
        fstype: Option<CString>,
        /// `MS_*` flags.
        flags: libc::c_ulong,
        /// Options string.
        data: Option<CString>,
    },
    /// `mkdir(2)`; an existing directory is fine.
    Mkdir {
        /// Path.
        path: CString,
        /// Mode.
        mode: libc::mode_t,
    },
    /// `mknod(2)` of a device node.
    Mknod {
        /// Path.
        path: CString,
        /// Type and permission bits.
        mode: libc::mode_t,
        /// Device number.
        dev: libc::dev_t,
    },
    /// `symlink(2)`.
    Symlink {
        /// What the link points to.
        target: CString,
        /// The link.
        link: CString,
    },
}

/// Everything the child does, prepared in the parent.
#[derive(Debug)]
pub struct InitPlan {
    /// File-system operations before `pivot_root`, and their descriptions.
    pub ops: Vec<(Op, String)>,
    /// Host path of the rootfs (a mount point after the ops ran).
    pub rootfs: CString,
    /// Hostname.
    pub hostname: CString,
    /// Bring `lo` up (own network namespace).
    pub lo_up: bool,
    /// Paths to mask (container paths).
    pub masked: Vec<CString>,
    /// Paths to make read-only (container paths).
    pub readonly: Vec<CString>,
    /// Working directory and its ancestors (container paths, top-down).
    pub cwd: CString,
    /// Ancestors of the working directory to create.
    pub cwd_dirs: Vec<CString>,
    /// Limits.
    pub rlimits: Vec<Rlimit>,
    /// `/proc/sys/kernel/cap_last_cap`.
    pub last_cap: u32,
    /// The bounding set kept.
    pub bounding: u64,
    /// Effective = permitted set for root (non-root: empty).
    pub caps: u64,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub sgids: Vec<libc::gid_t>,
    /// `execve` candidates for argv[0].
    pub candidates: Vec<CString>,
    /// argv[0] as given (for messages).
    pub program: String,
    /// The PATH searched (for messages).
    pub search_path: Option<String>,
    argv_store: Vec<CString>,
    envp_store: Vec<CString>,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
}

/// The plan's inputs that are not already C strings.
#[derive(Debug)]
pub struct PlanArgs {
    /// argv.
    pub args: Vec<CString>,
    /// envp.
    pub env: Vec<CString>,
}

impl InitPlan {
    /// Builds a plan; argv/envp pointer arrays are made here.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ops: Vec<(Op, String)>,
        rootfs: CString,
        hostname: CString,
        lo_up: bool,
        masked: Vec<CString>,
        readonly: Vec<CString>,
        cwd: CString,
        cwd_dirs: Vec<CString>,
        rlimits: Vec<Rlimit>,
        last_cap: u32,
        caps: u64,
        uid: u32,
        gid: u32,
        sgids: Vec<u32>,
        candidates: Vec<CString>,
        program: String,
        search_path: Option<String>,
        argv_env: PlanArgs,
    ) -> InitPlan {
        let mut p = InitPlan {
            ops,
            rootfs,
            hostname,
            lo_up,
            masked,
            readonly,
            cwd,
            cwd_dirs,
            rlimits,
            last_cap,
            bounding: caps,
            caps: if uid == 0 { caps } else { 0 },
            uid,
            gid,
            sgids,
            candidates,
            program,
            search_path,
            argv_store: argv_env.args,
            envp_store: argv_env.env,
            argv: Vec::new(),
            envp: Vec::new(),
        };
        p.argv = p.argv_store.iter().map(|c| c.as_ptr()).collect();
        p.argv.push(std::ptr::null());
        p.envp = p.envp_store.iter().map(|c| c.as_ptr()).collect();
        p.envp.push(std::ptr::null());
        p
    }

    fn path_at(list: &[CString], i: u32) -> String {
        list.get(i as usize)
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Extra context shown after the errno text (the PATH searched when the
    /// program was not found).
    pub fn hint(&self, r: Report) -> String {
        match (&self.search_path, r.step, r.errno) {
            (Some(p), STEP_EXEC, libc::ENOENT | libc::EACCES) => {
                format!(" (searched PATH={p})")
            }
            _ => String::new(),
        }
    }

    /// The message for a child's report (without the errno text).
    pub fn describe(&self, r: Report) -> String {
        let i = r.index;
        match r.step {
            STEP_SYNC => "waiting for the engine to place the process in its cgroup".into(),
            STEP_CGROUPNS => "cannot create the cgroup namespace".into(),
            STEP_SETSID => "cannot start a new session".into(),
            STEP_STDIO => "cannot set up stdin/stdout/stderr".into(),
            STEP_OP => self
                .ops
                .get(i as usize)
                .map(|(_, d)| d.clone())
                .unwrap_or_else(|| format!("file-system step {i}")),
            STEP_LO => "cannot bring the loopback interface up".into(),
            STEP_HOSTNAME => format!("cannot set hostname {:?}", self.hostname.to_string_lossy()),
            STEP_PIVOT => format!("cannot pivot_root into {:?}", self.rootfs.to_string_lossy()),
            STEP_MASK => format!("cannot mask {:?}", Self::path_at(&self.masked, i)),
            STEP_READONLY => format!(
                "cannot make {:?} read-only",
                Self::path_at(&self.readonly, i)
            ),
            STEP_CWD => format!(
                "cannot change to working directory {:?}",
                self.cwd.to_string_lossy()
            ),
            STEP_RLIMIT => {
                let name = self
                    .rlimits
                    .get(i as usize)
                    .and_then(|r| {
                        super::rlimit::NAMES
                            .iter()
                            .find(|(_, n)| *n == r.resource)
                            .map(|(n, _)| *n)
                    })
                    .unwrap_or("?");
                format!("cannot set ulimit {name}")
            }
            STEP_BOUNDING => format!(
                "cannot drop capability CAP_{} from the bounding set",
                super::caps::NAMES.get(i as usize).copied().unwrap_or("?")
            ),
            STEP_AMBIENT => "cannot clear the ambient capabilities".into(),
            STEP_SETGROUPS => format!("cannot set supplementary groups {:?}", self.sgids),
            STEP_SETGID => format!("cannot set gid {}", self.gid),
            STEP_SETUID => format!("cannot set uid {}", self.uid),
            STEP_CAPSET => format!("cannot set capabilities {:#018x}", self.caps),
            STEP_NNP => "cannot set no_new_privs".into(),
            STEP_CLOSE_FDS => "cannot close inherited file descriptors".into(),
            STEP_EXEC => format!("cannot exec {:?}", self.program),
            s => format!("container setup step {s}"),
        }
    }
}

/// File descriptors the child works with (numbers valid in the child).
#[derive(Debug, Clone, Copy)]
pub struct ChildFds {
    /// Read end of the sync pipe (the parent writes one byte once the child
    /// is in its cgroup).
    pub sync_r: RawFd,
    /// Write end of the sync pipe (the child closes it).
    pub sync_w: RawFd,
    /// Read end of the error pipe (the child closes it).
    pub err_r: RawFd,
    /// Write end of the error pipe (close-on-exec).
    pub err_w: RawFd,
    /// stdin, stdout, stderr for the container.
    pub stdio: [RawFd; 3],
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Clones the calling process with the namespace `flags` (`CLONE_NEW*`),
/// fork-style (the child continues on a copy of the stack). Returns 0 in
/// the child, the child's pid in the parent.
///
/// # Safety
///
/// In the child only async-signal-safe work may follow (the parent may be
/// multithreaded); the caller must go straight to [`child_main`].
pub unsafe fn clone_process(flags: u64) -> io::Result<i32> {
    let args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    // SAFETY: clone3 with no stack behaves like fork: the child gets a
    // copy-on-write copy of this stack. `args` is valid for the call.
    let mut r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) {
            return Err(e);
        }
        // Older kernels or seccomp filters refusing clone3: classic clone
        // with a NULL stack (fork semantics); the other arguments are zero.
        // SAFETY: as above; no pointer arguments are passed.
        r = unsafe {
            libc::syscall(
                libc::SYS_clone,
                flags | libc::SIGCHLD as u64,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(r as i32)
}

fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot, which is
    // valid for the thread's lifetime.
    unsafe { *libc::__errno_location() }
}

/// Reports `step` and the current errno to the parent and exits.
fn fail(fd: RawFd, step: u32, index: u32) -> ! {
    fail_with(fd, step, index, errno())
}

fn fail_with(fd: RawFd, step: u32, index: u32, err: i32) -> ! {
    let b = Report {
        step,
        index,
        errno: err,
    }
    .to_bytes();
    // SAFETY: writing a stack buffer to a pipe and exiting without running
    // any atexit handler are async-signal-safe.
    unsafe {
        libc::write(fd, b.as_ptr().cast(), b.len());
        libc::_exit(127)
    }
}

fn opt_ptr(c: &Option<CString>) -> *const c_char {
    c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
}

fn raw_sigmask(how: i32, set: u64) {
    // SAFETY: rt_sigprocmask with a pointer to a u64 mask of 8 bytes.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            &set as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        );
    }
}

fn reset_signal_dispositions() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: an all-zero sigaction is SIG_DFL with an empty mask;
        // sigaction only reads it. Errors (glibc-reserved signals) are
        // irrelevant.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

fn lo_up() -> Result<(), i32> {
    // SAFETY: plain socket/ioctl/close on a stack-allocated ifreq.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(errno());
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[0] = b'l' as c_char;
        ifr.ifr_name[1] = b'o' as c_char;
        if libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            let e = errno();
            libc::close(s);
            return Err(e);
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr) < 0 {
            let e = errno();
            libc::close(s);
            return Err(e);
        }
        libc::close(s);
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

fn capset(eff: u64, prm: u64, inh: u64) -> i32 {
    let hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: eff as u32,
            permitted: prm as u32,
            inheritable: inh as u32,
        },
        CapData {
            effective: (eff >> 32) as u32,
            permitted: (prm >> 32) as u32,
            inheritable: (inh >> 32) as u32,
        },
    ];
    // SAFETY: header and two data structs as the v3 ABI requires.
    unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) as i32 }
}

/// The calling thread's permitted capability set.
pub fn own_permitted_caps() -> io::Result<u64> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and room for two data structs as the v3 ABI requires.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(data[0].permitted as u64 | ((data[1].permitted as u64) << 32))
}

fn stat_mode(path: &CString) -> Option<libc::mode_t> {
    // SAFETY: an all-zero stat is valid output space; path NUL-terminated.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::stat(path.as_ptr(), &mut st) != 0 {
            return None;
        }
        Some(st.st_mode)
    }
}

/// The child's side: runs `plan` and execs, or reports and exits 127.
///
/// # Safety
///
/// Must be called only in the child of [`clone_process`], immediately. It
/// does not allocate, lock or unwind; `plan` and `fds` are the parent's
/// (copied) values.
pub unsafe fn child_main(plan: &InitPlan, fds: ChildFds) -> ! {
    let err = fds.err_w;
    // Signals: block everything during setup, default dispositions.
    raw_sigmask(libc::SIG_SETMASK, !0u64);
    reset_signal_dispositions();

    // SAFETY: raw system calls on prepared, NUL-terminated strings, stack
    // buffers and the plan's pointer arrays (this covers the whole block);
    // nothing here allocates or takes a lock.
    unsafe {
        libc::close(fds.sync_w);
        libc::close(fds.err_r);

        // Wait until the parent has put us into the cgroup.
        let mut byte = 0u8;
        loop {
            let n = libc::read(fds.sync_r, (&mut byte as *mut u8).cast(), 1);
            if n == 1 {
                break;
            }
            if n == 0 {
                libc::_exit(127);
            }
            if errno() != libc::EINTR {
                fail(err, STEP_SYNC, 0);
            }
        }
        libc::close(fds.sync_r);

        if libc::unshare(libc::CLONE_NEWCGROUP) != 0 {
            fail(err, STEP_CGROUPNS, 0);
        }
        if libc::setsid() < 0 {
            fail(err, STEP_SETSID, 0);
        }
        // stdio: first above 2 (so no source is overwritten), then onto 0..2.
        let mut high = [-1; 3];
        for (i, (fd, slot)) in fds.stdio.iter().zip(high.iter_mut()).enumerate() {
            let h = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10);
            if h < 0 {
                fail(err, STEP_STDIO, i as u32);
            }
            *slot = h;
        }
        for (i, h) in high.iter().enumerate() {
            if libc::dup2(*h, i as i32) < 0 {
                fail(err, STEP_STDIO, i as u32);
            }
        }
        libc::umask(0);

        for (i, (op, _)) in plan.ops.iter().enumerate() {
            let rc = match op {
                Op::Mount {
                    src,
                    target,
                    fstype,
                    flags,
                    data,
                } => libc::mount(
                    opt_ptr(src),
                    target.as_ptr(),
                    opt_ptr(fstype),
                    *flags,
                    opt_ptr(data).cast(),
                ),
                Op::Mkdir { path, mode } => {
                    let rc = libc::mkdir(path.as_ptr(), *mode);
                    if rc != 0 && errno() == libc::EEXIST {
                        0
                    } else {
                        rc
                    }
                }
                Op::Mknod { path, mode, dev } => libc::mknod(path.as_ptr(), *mode, *dev),
                Op::Symlink { target, link } => libc::symlink(target.as_ptr(), link.as_ptr()),
            };
            if rc != 0 {
                fail(err, STEP_OP, i as u32);
            }
        }

        if plan.lo_up
            && let Err(e) = lo_up()
        {
            fail_with(err, STEP_LO, 0, e);
        }
        let h = plan.hostname.as_bytes();
        if libc::sethostname(plan.hostname.as_ptr(), h.len()) != 0 {
            fail(err, STEP_HOSTNAME, 0);
        }

        // pivot_root(".", "."): the old root ends up stacked on the new
        // one and is detached right away; / is rslave, so nothing
        // propagates to the host.
        let dot = c".";
        if libc::chdir(plan.rootfs.as_ptr()) != 0
            || libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) != 0
            || libc::umount2(dot.as_ptr(), libc::MNT_DETACH) != 0
            || libc::chdir(c"/".as_ptr()) != 0
        {
            fail(err, STEP_PIVOT, 0);
        }

        let devnull = c"/dev/null";
        for (i, p) in plan.masked.iter().enumerate() {
            let Some(mode) = stat_mode(p) else { continue };
            let rc = if mode & libc::S_IFMT == libc::S_IFDIR {
                libc::mount(
                    c"tmpfs".as_ptr(),
                    p.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_RDONLY,
                    std::ptr::null(),
                )
            } else {
                libc::mount(
                    devnull.as_ptr(),
                    p.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            };
            if rc != 0 {
                fail(err, STEP_MASK, i as u32);
            }
        }
        for (i, p) in plan.readonly.iter().enumerate() {
            if libc::mount(
                p.as_ptr(),
                p.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ) != 0
            {
                if errno() == libc::ENOENT {
                    continue;
                }
                fail(err, STEP_READONLY, i as u32);
            }
            // Keep nosuid/nodev/noexec (ST_* and MS_* agree on these
            // bits). glibc's statvfs takes them from statfs's f_flags
            // (ST_VALID) without reading /proc/mounts.
            let mut sf: libc::statvfs = std::mem::zeroed();
            let mut keep: libc::c_ulong = 0;
            if libc::statvfs(p.as_ptr(), &mut sf) == 0 {
                keep = sf.f_flag & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
            }
            if libc::mount(
                p.as_ptr(),
                p.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | keep,
                std::ptr::null(),
            ) != 0
            {
                fail(err, STEP_READONLY, i as u32);
            }
        }

        for d in &plan.cwd_dirs {
            libc::mkdir(d.as_ptr(), 0o755);
        }
        if libc::chdir(plan.cwd.as_ptr()) != 0 {
            fail(err, STEP_CWD, 0);
        }

        for (i, r) in plan.rlimits.iter().enumerate() {
            let lim = libc::rlimit {
                rlim_cur: r.soft,
                rlim_max: r.hard,
            };
            if libc::setrlimit(r.resource as _, &lim) != 0 {
                fail(err, STEP_RLIMIT, i as u32);
            }
        }

        for c in 0..=plan.last_cap.min(63) {
            if plan.bounding & (1u64 << c) != 0 {
                continue;
            }
            if libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) != 0
                && errno() != libc::EINVAL
            {
                fail(err, STEP_BOUNDING, c);
            }
        }
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
            && errno() != libc::EINVAL
        {
            fail(err, STEP_AMBIENT, 0);
        }

        // Raw syscalls: glibc's wrappers broadcast to every thread it
        // believes exists (the parent's), which would hang here.
        if libc::syscall(libc::SYS_setgroups, plan.sgids.len(), plan.sgids.as_ptr()) != 0 {
            fail(err, STEP_SETGROUPS, 0);
        }
        if libc::syscall(libc::SYS_setresgid, plan.gid, plan.gid, plan.gid) != 0 {
            fail(err, STEP_SETGID, 0);
        }
        if libc::syscall(libc::SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0 {
            fail(err, STEP_SETUID, 0);
        }
        // Root keeps its capabilities across setresuid(0); others lost
        // them there. Either way set exactly what Docker gives.
        if capset(plan.caps, plan.caps, 0) != 0 {
            fail(err, STEP_CAPSET, 0);
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            fail(err, STEP_NNP, 0);
        }
        libc::umask(0o022);

        // Everything but 0..2 closes at exec (the error pipe included, which
        // tells the parent execve succeeded).
        if libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) != 0
        {
            if errno() != libc::ENOSYS && errno() != libc::EINVAL {
                fail(err, STEP_CLOSE_FDS, 0);
            }
            for fd in 3..65536 {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }

        reset_signal_dispositions();
        raw_sigmask(libc::SIG_SETMASK, 0);

        // Like execvp: a missing candidate moves on, a permission problem
        // is remembered, any other error on an existing file is reported.
        let mut saw_eacces = false;
        for (i, c) in plan.candidates.iter().enumerate() {
            libc::execve(c.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr());
            match errno() {
                libc::ENOENT | libc::ENOTDIR => {}
                libc::EACCES => saw_eacces = true,
                e => fail_with(err, STEP_EXEC, i as u32, e),
            }
        }
        let e = if saw_eacces {
            libc::EACCES
        } else {
            libc::ENOENT
        };
        fail_with(err, STEP_EXEC, 0, e)
    }
}
