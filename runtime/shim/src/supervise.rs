//! `lookout-shim start`: detach, create the container, run its log
//! pipeline, serve the control socket, and record the exit.
//!
//! The process that runs `start` forks; the child calls `setsid` and forks
//! again, so the shim proper is re-parented away from its caller (the
//! daemon, or a terminal) and keeps running when that caller dies. It
//! becomes a child subreaper, writes `shim.pid`, starts the drivers and the
//! container, and reports "started" (or the error) to the waiting caller
//! through a pipe. When PID 1 exits, the shim drains the pipes, waits for
//! every driver to flush, and only then writes `exit.json`.

use crate::attach::{ATTACH_DRIVER, AttachHub, AttachSink};
use crate::control;
use anyhow::{Context, Result, anyhow, bail};
use lookout_abi::{LK_STREAM_STDERR, LK_STREAM_STDOUT};
use lookout_core::container::{Container, Stdio};
use lookout_core::logs::options::{HostLogOptions, Mode};
use lookout_core::logs::pipeline::{DriverSpec, Pipeline, monotonic_ns};
use lookout_core::logs::setup::{self, DriverRequest};
use lookout_core::plugin::{ContainerInfo, PluginPath};
use lookout_core::shim_proto::{self, Status};
use lookout_core::spec::{self, ContainerSpec, ExitRecord};
use nix::unistd::{ForkResult, fork, setsid};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Duration;

/// When the shim process began (`main`), CLOCK_MONOTONIC nanoseconds, for
/// the phase timings.
pub static T0: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// Phase timings (CLOCK_MONOTONIC ns at the end of each phase), appended as one JSON line to the file named by
/// `LOOKOUT_SHIM_TIMINGS` when it is set (the start benchmark reads them).
struct Timings {
    marks: Vec<(&'static str, u64)>,
    /// Durations inside the container start.
    start: Option<lookout_core::container::StartTimings>,
    /// How long loading the drivers took (on its own thread).
    load_drivers_ns: Option<u64>,
}

impl Timings {
    fn new() -> Self {
        Timings {
            marks: vec![("main", *T0.get_or_init(monotonic_ns))],
            start: None,
            load_drivers_ns: None,
        }
    }
    fn mark(&mut self, phase: &'static str) {
        self.marks.push((phase, monotonic_ns()));
    }
    fn save(&self) {
        let Some(path) = std::env::var_os("LOOKOUT_SHIM_TIMINGS") else {
            return;
        };
        let mut m = serde_json::Map::new();
        for (k, v) in &self.marks {
            m.insert((*k).to_string(), (*v).into());
        }
        if let Some(ns) = self.load_drivers_ns {
            m.insert("load_drivers_ns".to_string(), ns.into());
        }
        if let Some(t) = self.start {
            for (k, v) in [
                ("start_prepare_ns", t.prepare_ns),
                ("start_cgroup_ns", t.cgroup_ns),
                ("start_namespaces_ns", t.namespaces_ns),
                ("start_cgroup_join_ns", t.cgroup_join_ns),
                ("start_setup_exec_ns", t.setup_exec_ns),
            ] {
                m.insert(k.to_string(), v.into());
            }
        }
        let mut line = serde_json::Value::Object(m).to_string();
        line.push('\n');
        if let Ok(mut f) = File::options().create(true).append(true).open(path) {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Queue bound of the attach sink (it never slows the container or the
/// real drivers: a client that cannot keep up loses frames, not the logs).
const ATTACH_BUFFER: usize = 8 << 20;

/// What the control server and the supervisor share.
pub struct Shared {
    /// The state answered to `status` and `wait`.
    pub status: Mutex<Status>,
    /// Signalled when `status.exit` is set.
    pub exited: Condvar,
    /// The container, while it exists.
    pub container: RwLock<Option<Container>>,
    /// The pipeline, while it runs.
    pub pipeline: RwLock<Option<Pipeline>>,
    /// Attached clients.
    pub hub: Arc<AttachHub>,
    /// Control requests being answered.
    pub in_flight: AtomicUsize,
}

/// Reads and checks `config.json` in `state_dir`.
pub fn load_spec(state_dir: &Path) -> Result<ContainerSpec> {
    let p = state_dir.join(spec::CONFIG_FILE);
    let text = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
    let s: ContainerSpec =
        serde_json::from_slice(&text).with_context(|| format!("invalid {}", p.display()))?;
    if s.id.is_empty()
        || !s
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        bail!("invalid container id {:?} in {}", s.id, p.display());
    }
    if s.process.args.is_empty() {
        bail!("{}: process.args is empty: no command to run", p.display());
    }
    Ok(s)
}

/// How the shim leaves the process that starts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detach {
    /// fork, setsid, fork: the shim is no session leader and nobody needs
    /// to reap it (`start`, used by the daemon).
    DoubleFork,
    /// fork, setsid: the caller stays to wait for the exit and the shim
    /// survives it (the daemonless `run`, one fork less on its path).
    SingleFork,
}

/// Starts the container described by `state_dir/config.json` under a
/// detached shim. Returns the container's pid once it runs, or the error
/// that kept it from starting. Must be called while the process is still
/// single-threaded.
pub fn start_detached(state_dir: &Path, plugin_dirs: &[PathBuf], detach: Detach) -> Result<i32> {
    let spec = load_spec(state_dir)?;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    // SAFETY: the process is single-threaded here (start_detached is called
    // before any thread is spawned), so the child may run arbitrary code.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Parent { child } => {
            drop(w);
            let mut msg = String::new();
            File::from(r)
                .read_to_string(&mut msg)
                .context("reading the shim's start report")?;
            if detach == Detach::DoubleFork {
                // The intermediate child exits at once.
                let _ = nix::sys::wait::waitpid(child, None);
            }
            let msg = msg.trim_end();
            if let Some(pid) = msg.strip_prefix("ok ") {
                return pid
                    .parse()
                    .with_context(|| format!("bad start report {msg:?}"));
            }
            if let Some(e) = msg.strip_prefix("error ") {
                return Err(anyhow!("{e}"));
            }
            let log = state_dir.join("shim.log");
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "the shim died while starting the container{}",
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", tail.trim_end())
                }
            )
        }
        ForkResult::Child => {
            drop(r);
            let _ = setsid();
            if detach == Detach::SingleFork {
                let code = match supervise(state_dir, &spec, plugin_dirs, w) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("lookout-shim: {e:#}");
                        1
                    }
                };
                std::process::exit(code)
            }
            // SAFETY: still single-threaded.
            match unsafe { fork() } {
                Ok(ForkResult::Parent { .. }) => {
                    // SAFETY: _exit skips atexit handlers and destructors,
                    // which belong to the original process.
                    unsafe { libc::_exit(0) }
                }
                Ok(ForkResult::Child) => {
                    let code = match supervise(state_dir, &spec, plugin_dirs, w) {
                        Ok(()) => 0,
                        Err(e) => {
                            eprintln!("lookout-shim: {e:#}");
                            1
                        }
                    };
                    std::process::exit(code)
                }
                Err(_) => {
                    // SAFETY: as above.
                    unsafe { libc::_exit(1) }
                }
            }
        }
    }
}

/// Unmaps the clean, read-only file pages start-up touched (argument
/// parsing, plugin loading, the container's set-up: code an idle shim never
/// runs again). They stay in the page cache, shared; the few the shim's
/// loops need fault back in from there. Only mappings that are not
/// writable and hold no private (anonymous) page are touched, so no
/// relocated or written page is ever dropped.
fn drop_clean_file_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            let perms = f.next().unwrap_or("");
            let path = f.nth(3).unwrap_or("");
            current = (perms.starts_with('r')
                && !perms.contains('w')
                && perms.ends_with('p')
                && path.starts_with('/'))
            .then_some((a, b));
            continue;
        }
        if first == "Anonymous:"
            && let Some((a, b)) = current.take()
            && f.next() == Some("0")
        {
            // SAFETY: the range is a private, read-only, file-backed
            // mapping of this process without private pages: dropping its
            // page-table entries loses nothing, later accesses refault the
            // same file contents.
            unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
        }
    }
}

fn report(w: &mut Option<OwnedFd>, msg: &str) {
    if let Some(fd) = w.take() {
        let _ = File::from(fd).write_all(format!("{msg}\n").as_bytes());
    }
}

fn redirect_stdio(state_dir: &Path) -> Result<()> {
    let null = File::options().read(true).open("/dev/null")?;
    let log = File::options()
        .create(true)
        .append(true)
        .open(state_dir.join("shim.log"))?;
    nix::unistd::dup2(null.as_raw_fd(), 0)?;
    nix::unistd::dup2(null.as_raw_fd(), 1)?;
    nix::unistd::dup2(log.as_raw_fd(), 2)?;
    Ok(())
}

/// Writes a file by renaming a complete temporary one into place, so a
/// reader never sees it half written. Not fsynced: these are run-time
/// records (a pid, an exit code), and the fsync would sit on every start
/// and exit path; after a power loss a missing exit record reads as "exit
/// unknown".
fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

fn container_info(spec: &ContainerSpec, log_dir: &Path) -> ContainerInfo {
    ContainerInfo {
        id: spec.id.clone(),
        name: spec.meta.name.clone(),
        image_id: spec.meta.image_id.clone(),
        image_name: spec.meta.image_name.clone(),
        command: spec.process.args.join(" "),
        hostname: spec
            .hostname
            .clone()
            .unwrap_or_else(|| spec.id.chars().take(12).collect()),
        daemon_name: spec.meta.daemon_name.clone(),
        log_dir: log_dir.to_string_lossy().into_owned(),
        created_unix_nano: spec.meta.created_unix_nano,
        labels: spec.meta.labels.clone(),
        env: spec
            .process
            .env
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect(),
    }
}

/// A pipe whose read end goes to the pipeline and write end to the container.
fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    Ok((r, w))
}

fn supervise(
    state_dir: &Path,
    spec: &ContainerSpec,
    plugin_dirs: &[PathBuf],
    w: OwnedFd,
) -> Result<()> {
    let mut w = Some(w);
    // The drivers start loading at once, on a thread of their own: that
    // work overlaps everything up to the container's clone.
    let loader = match spawn_loader(state_dir, spec, plugin_dirs) {
        Ok(l) => l,
        Err(e) => {
            report(&mut w, &format!("error {e:#}"));
            return Err(e);
        }
    };
    let r = (|| -> Result<()> {
        std::env::set_current_dir("/").context("chdir /")?;
        redirect_stdio(state_dir).context("redirecting the shim's stdio")?;
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error()).context("PR_SET_CHILD_SUBREAPER");
        }
        write_atomic(
            &state_dir.join(spec::SHIM_PID_FILE),
            std::process::id().to_string().as_bytes(),
        )
        .context("writing shim.pid")?;
        Ok(())
    })();
    if let Err(e) = r {
        report(&mut w, &format!("error {e:#}"));
        return Err(e);
    }
    match run(state_dir, spec, loader, &mut w) {
        Ok(()) => Ok(()),
        Err(e) => {
            let msg = format!("{e:#}");
            // A container that never started still gets an exit record,
            // so whoever waits learns why; it is written before the
            // report, after which the caller may remove the directory.
            let rec = ExitRecord {
                exit_code: crate::standalone::start_failure_code(&msg),
                error: Some(msg.clone()),
                finished_unix_nano: lookout_core::logs::pipeline::now_unix_nano(),
                ..Default::default()
            };
            if let Ok(j) = serde_json::to_vec(&rec) {
                let _ = write_atomic(&state_dir.join(spec::EXIT_FILE), &j);
            }
            report(&mut w, &format!("error {msg}"));
            Err(e)
        }
    }
}

/// Loads, checks and starts the container's drivers; with how long it took.
type Loader = std::thread::JoinHandle<(
    std::result::Result<(HostLogOptions, Vec<DriverSpec>), lookout_core::plugin::PluginError>,
    u64,
)>;

/// Creates the log directory and starts loading the drivers on a thread.
fn spawn_loader(state_dir: &Path, spec: &ContainerSpec, plugin_dirs: &[PathBuf]) -> Result<Loader> {
    let log_dir = if spec.log_dir.as_os_str().is_empty() {
        state_dir.to_path_buf()
    } else {
        spec.log_dir.clone()
    };
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("cannot create log dir {}", log_dir.display()))?;
    let mut dirs: Vec<PathBuf> = plugin_dirs.to_vec();
    dirs.extend(PluginPath::standard(None).dirs().iter().cloned());
    let path = PluginPath::new(dirs);
    let reqs: Vec<DriverRequest> = spec
        .log_drivers
        .iter()
        .filter(|d| d.driver != "none")
        .map(|d| DriverRequest {
            name: d.driver.clone(),
            opts: d.opts.clone(),
        })
        .collect();
    let info = container_info(spec, &log_dir);
    // A bad driver or option fails the start: the loader is joined before
    // any container process exists.
    std::thread::Builder::new()
        .name("load-drivers".into())
        .spawn(move || {
            let t = std::time::Instant::now();
            let r = setup::open(&path, &reqs, &info);
            (r, t.elapsed().as_nanos() as u64)
        })
        .context("spawning the driver loader")
}

fn run(
    state_dir: &Path,
    spec: &ContainerSpec,
    loader: Loader,
    w: &mut Option<OwnedFd>,
) -> Result<()> {
    let mut timings = Timings::new();
    timings.mark("detached");
    let _ = std::fs::remove_file(state_dir.join(spec::EXIT_FILE));
    let mut loaded = None;
    let join_loader = || -> std::result::Result<(), String> {
        match loader.join() {
            Ok((Ok(x), ns)) => {
                loaded = Some((x, ns));
                Ok(())
            }
            Ok((Err(e), _)) => Err(e.to_string()),
            Err(_) => Err("loading the log drivers panicked".to_string()),
        }
    };

    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    // /etc/hostname, hosts and resolv.conf live in the state directory and
    // are bind-mounted, so a root directory shared by containers stays as
    // it was.
    let mut spec = spec.clone();
    spec.etc_dir.get_or_insert_with(|| state_dir.to_path_buf());
    timings.mark("container_starting");
    let container = Container::start_with(
        &spec,
        Stdio {
            stdin: None,
            stdout: out_w,
            stderr: err_w,
        },
        join_loader,
    )?;
    timings.mark("container_started");
    timings.start = Some(container.start_timings());
    let ((host, mut drivers), load_ns) = loaded.context("the drivers were not loaded")?;
    timings.load_drivers_ns = Some(load_ns);
    let hub = AttachHub::new();
    drivers.push(DriverSpec {
        name: ATTACH_DRIVER.to_string(),
        mode: Mode::NonBlocking {
            max_buffer: ATTACH_BUFFER,
        },
        sink: Box::new(AttachSink::new(hub.clone())),
    });
    let pipeline = Pipeline::start(drivers, host.max_line_size).context("starting the pipeline")?;

    let shared = Arc::new(Shared {
        status: Mutex::new(Status {
            shim_pid: std::process::id() as i32,
            state: "created".into(),
            ..Default::default()
        }),
        exited: Condvar::new(),
        container: RwLock::new(None),
        pipeline: RwLock::new(Some(pipeline)),
        hub,
        in_flight: AtomicUsize::new(0),
    });
    let listener = shim_proto::bind(state_dir).context("binding the control socket")?;
    timings.mark("pipeline_started");
    let started = lookout_core::logs::pipeline::now_unix_nano();
    let pid = container.pid();
    {
        let mut st = shared.status.lock().unwrap_or_else(|p| p.into_inner());
        st.pid = pid;
        st.state = "running".into();
        st.started_unix_nano = started;
    }
    *shared.container.write().unwrap_or_else(|p| p.into_inner()) = Some(container);
    control::serve(listener, shared.clone());
    report(w, &format!("ok {pid}"));
    // Start-up garbage (argument parsing, the spec, plugin loading) is
    // freed by now: give those heap pages back, as the shim may idle for
    // months.
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe { libc::malloc_trim(0) };
    // Off the start path: a container still running after a second is a
    // long-lived one, and its shim gives back what start-up touched.
    let _ = std::thread::Builder::new()
        .name("trim".into())
        .stack_size(64 << 10)
        .spawn(|| {
            std::thread::sleep(Duration::from_secs(1));
            drop_clean_file_pages();
        });

    let pump = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("pump".into())
            .spawn(move || {
                let p = shared.pipeline.read().unwrap_or_else(|p| p.into_inner());
                p.as_ref()
                    .map(|p| p.pump(vec![(out_r, LK_STREAM_STDOUT), (err_r, LK_STREAM_STDERR)]))
            })
            .context("spawning the pump thread")?
    };

    let status = {
        let c = shared.container.read().unwrap_or_else(|p| p.into_inner());
        c.as_ref().map(|c| c.wait())
    };
    timings.mark("container_exited");
    // PID 1 is gone; the kernel killed the rest of its pid namespace, so the
    // pipes reach EOF once their buffers are drained.
    let pumped = pump.join();
    let pipeline = shared
        .pipeline
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let mut close_errors = Vec::new();
    if let Some(p) = pipeline {
        let rep = p.close();
        for d in &rep.drivers {
            if d.name == ATTACH_DRIVER {
                continue;
            }
            if d.dropped > 0 || d.failure.is_some() {
                eprintln!(
                    "lookout-shim: driver {}: {} of {} records dropped{}",
                    d.name,
                    d.dropped,
                    d.records_in,
                    d.failure
                        .as_ref()
                        .map(|f| format!(" ({f})"))
                        .unwrap_or_default()
                );
            }
        }
        close_errors = rep.close_errors;
    }
    timings.mark("logs_flushed");
    for (d, e) in &close_errors {
        eprintln!("lookout-shim: driver {d}: {e}");
    }
    let mut rec = ExitRecord {
        started_unix_nano: started,
        finished_unix_nano: lookout_core::logs::pipeline::now_unix_nano(),
        ..Default::default()
    };
    match status {
        Some(Ok(s)) => {
            rec.exit_code = s.code;
            rec.signal = s.signal;
        }
        Some(Err(e)) => {
            rec.exit_code = 255;
            rec.error = Some(format!("waiting for the container: {e}"));
        }
        None => {}
    }
    match pumped {
        Ok(Some(Err(e))) => eprintln!("lookout-shim: reading the container's output: {e}"),
        Err(_) => eprintln!("lookout-shim: the pump thread panicked"),
        _ => {}
    }
    if let Some(c) = shared
        .container
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        rec.oom_killed = c.oom_killed();
    }
    write_atomic(
        &state_dir.join(spec::EXIT_FILE),
        &serde_json::to_vec(&rec).context("encoding the exit record")?,
    )
    .context("writing exit.json")?;
    timings.mark("exit_recorded");
    timings.save();
    {
        let mut st = shared.status.lock().unwrap_or_else(|p| p.into_inner());
        st.state = "exited".into();
        st.exit = Some(rec);
    }
    shared.exited.notify_all();
    // The exit is reported; now remove the cgroup (PID 1 is gone, and with
    // it its pid namespace, so this is bookkeeping the caller need not
    // wait for).
    {
        let mut guard = shared.container.write().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = guard.as_mut()
            && let Err(e) = c.destroy()
        {
            eprintln!("lookout-shim: removing the container: {e}");
        }
        *guard = None;
    }
    // A client that is to attach (docker run) may come after a short-lived
    // container ended: keep its output for it a while.
    if spec.attach_expected {
        shared
            .hub
            .wait_first_attach(Duration::from_secs(spec::ATTACH_GRACE_SECS));
    }
    // Let the waiters read their answers before the shim goes away.
    for _ in 0..200 {
        if shared.in_flight.load(Ordering::SeqCst) == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::fs::remove_file(state_dir.join(shim_proto::CONTROL_SOCKET));
    Ok(())
}
