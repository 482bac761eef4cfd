//! Create, start, stop, kill, wait, remove; exits and live restore.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::{ContainerConfig, HostConfig, RestartPolicyNameEnum};
use lookout_cgroups::Cgroup;
use lookout_core::plugin::PluginPath;
use lookout_core::spec::{
    CONFIG_FILE, ContainerMetaSpec, ContainerSpec, EXIT_FILE, LogDriverSpec, ProcessSpec,
    SHIM_PID_FILE,
};
use lookout_image::{RootfsMount, mount_rootfs};

use super::create::{self, merge_command, merged_config, path_and_args};
use super::names;
use super::shim;
use super::store::{Record, StateRecord, Status, write_atomic};
use super::{Container, Engine, EngineError, lock};
use crate::timefmt::now_unix_nano;

/// First delay of the restart policy (doubled at each restart).
pub const RESTART_DELAY_MIN: Duration = Duration::from_millis(100);
/// Largest delay of the restart policy.
pub const RESTART_DELAY_MAX: Duration = Duration::from_secs(60);
/// A run at least this long resets the delay.
pub const RESTART_RESET_AFTER: Duration = Duration::from_secs(10);

/// Whether the restart policy of `rec` restarts it after this exit.
pub fn should_restart(rec: &Record) -> bool {
    if rec.state.manually_stopped || rec.host_config.auto_remove == Some(true) {
        return false;
    }
    let Some(p) = &rec.host_config.restart_policy else {
        return false;
    };
    match p.name {
        Some(RestartPolicyNameEnum::ALWAYS) | Some(RestartPolicyNameEnum::UNLESS_STOPPED) => true,
        Some(RestartPolicyNameEnum::ON_FAILURE) => {
            let max = p.maximum_retry_count.unwrap_or(0);
            rec.state.exit_code != 0 && (max <= 0 || rec.restart_count < max)
        }
        _ => false,
    }
}

/// Checks the restart policy of a create request as dockerd does.
pub fn check_restart_policy(hc: &HostConfig) -> Result<(), EngineError> {
    let Some(p) = &hc.restart_policy else {
        return Ok(());
    };
    let none = matches!(
        p.name,
        None | Some(RestartPolicyNameEnum::EMPTY) | Some(RestartPolicyNameEnum::NO)
    );
    let count = p.maximum_retry_count.unwrap_or(0);
    if count < 0 {
        return Err(EngineError::InvalidParameter(
            "invalid restart policy: maximum retry count cannot be negative".into(),
        ));
    }
    if count > 0 && p.name != Some(RestartPolicyNameEnum::ON_FAILURE) {
        return Err(EngineError::InvalidParameter(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'".into(),
        ));
    }
    if !none && hc.auto_remove == Some(true) {
        return Err(EngineError::InvalidParameter(
            "can't create 'AutoRemove' container with restart policy".into(),
        ));
    }
    Ok(())
}

/// A create request, as the API decoded it.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// `?name=`.
    pub name: Option<String>,
    /// The container configuration.
    pub config: ContainerConfig,
    /// The host configuration.
    pub host_config: HostConfig,
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitResult {
    /// Exit code.
    pub status_code: i64,
    /// The run's error, if any.
    pub error: Option<String>,
}

/// What a wait waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Returns at once when not running, else at the exit.
    NotRunning,
    /// The next exit.
    NextExit,
    /// Removal.
    Removed,
}

impl WaitCondition {
    /// Parses the API's `condition` parameter.
    pub fn parse(s: &str) -> Result<WaitCondition, EngineError> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(EngineError::InvalidParameter(format!(
                "invalid condition: {other:?}"
            ))),
        }
    }
}

/// Parses a signal name (`KILL`, `SIGKILL`, `kill`) or number.
pub fn parse_signal(s: &str) -> Result<i32, EngineError> {
    let bad = || EngineError::InvalidParameter(format!("Invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(rest) = name.strip_prefix("SIGRTMIN+")
        && let Ok(k) = rest.parse::<i32>()
    {
        let n = libc::SIGRTMIN() + k;
        if n <= libc::SIGRTMAX() {
            return Ok(n);
        }
    }
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| bad())
}

impl Engine {
    /// Creates a container.
    pub fn create(&self, req: CreateRequest) -> Result<(String, Vec<String>), EngineError> {
        let image_ref = req
            .config
            .image
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                EngineError::InvalidParameter("config must name an image (Image)".into())
            })?;
        let image = self.images.get(&image_ref)?;
        let hc = req.host_config;
        create::network_mode(hc.network_mode.as_deref())?;
        check_restart_policy(&hc)?;
        create::check_supported(&hc)?;
        create::resources(&hc)?;
        create::rlimits(&hc)?;
        let (log_driver, log_opts) =
            create::log_config(&hc, &self.cfg.log_driver, &self.cfg.log_opts);
        if log_driver != "none" {
            // As dockerd: the driver and its options are checked at create
            // (the plugin's own validate), so a bad --log-opt leaves no
            // container behind.
            let req = lookout_core::logs::setup::DriverRequest {
                name: log_driver.clone(),
                opts: log_opts.clone(),
            };
            lookout_core::logs::setup::check(
                &PluginPath::standard(Some(&self.cfg.data_root)),
                &req,
            )
            .map_err(|e| EngineError::InvalidParameter(e.to_string()))?;
        }
        let (cmd, ep) = merge_command(
            req.config.cmd.clone(),
            req.config.entrypoint.clone(),
            &image.config,
        );
        let (path, args) = path_and_args(&cmd, &ep)?;
        let name = match req.name.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => Some(
                names::normalize(n).map_err(|e| EngineError::InvalidParameter(e.to_string()))?,
            ),
            None => None,
        };

        let mut cs = lock(&self.containers);
        let mut id = random_id();
        while cs.by_id.contains_key(&id) {
            id = random_id();
        }
        let name = match name {
            Some(n) => {
                if let Some(other) = cs.names.get(&n) {
                    return Err(EngineError::Conflict(format!(
                        "Conflict. The container name \"{n}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                    )));
                }
                n
            }
            None => {
                let mut seed_src = super::random_hex64();
                let mut retry = 0;
                loop {
                    let seed = u64::from_str_radix(&seed_src[..16], 16).unwrap_or(0);
                    let n = format!("/{}", names::random_name(seed, retry));
                    if !cs.names.contains_key(&n) {
                        break n;
                    }
                    retry += 1;
                    seed_src = super::random_hex64();
                }
            }
        };
        let config = merged_config(req.config, &image.config, cmd, ep, &id[..12]);
        let dir = self.dir_of(&id);
        let rec = Record {
            id: id.clone(),
            name: name.clone(),
            created_unix_nano: now_unix_nano(),
            image_ref,
            image_id: image.id.clone(),
            layer_dir: self.images.layer_dir(&image).display().to_string(),
            path,
            args,
            config,
            host_config: hc,
            log_driver,
            log_opts,
            cgroup_path: format!("{}/{}", self.cfg.cgroup_parent.trim_end_matches('/'), id),
            state: StateRecord::default(),
            restart_count: 0,
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        if let Err(e) = rec.save(&dir) {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(EngineError::io("saving the container", e));
        }
        let event_rec = rec.clone();
        cs.names.insert(name, id.clone());
        cs.by_id
            .insert(id.clone(), Arc::new(Container::new(rec, dir)));
        drop(cs);
        self.container_event(&event_rec, "create", &[]);
        Ok((id, Vec::new()))
    }

    fn spec(&self, rec: &Record, dir: &std::path::Path) -> Result<ContainerSpec, EngineError> {
        let hc = &rec.host_config;
        let cfg = &rec.config;
        let mut args = vec![rec.path.clone()];
        args.extend(rec.args.iter().cloned());
        let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        Ok(ContainerSpec {
            id: rec.id.clone(),
            rootfs: dir.join("merged"),
            // The shim fills in its state directory.
            etc_dir: None,
            // Set at start when an attach is waiting.
            attach_expected: false,
            process: ProcessSpec {
                args,
                env: cfg.env.clone().unwrap_or_default(),
                cwd: nonempty(&cfg.working_dir),
                user: nonempty(&cfg.user),
                rlimits: create::rlimits(hc)?,
                cap_add: hc.cap_add.clone().unwrap_or_default(),
                cap_drop: hc.cap_drop.clone().unwrap_or_default(),
            },
            hostname: nonempty(&cfg.hostname),
            network: create::network_mode(hc.network_mode.as_deref())?,
            resources: create::resources(hc)?,
            cgroup_path: Some(rec.cgroup_path.clone()),
            masked_paths: hc.masked_paths.clone(),
            readonly_paths: hc.readonly_paths.clone(),
            log_drivers: if rec.log_driver == "none" {
                Vec::new()
            } else {
                vec![LogDriverSpec {
                    driver: rec.log_driver.clone(),
                    opts: rec.log_opts.clone(),
                }]
            },
            log_dir: dir.to_path_buf(),
            meta: ContainerMetaSpec {
                name: rec.name.trim_start_matches('/').to_string(),
                image_id: rec.image_id.clone(),
                image_name: rec.image_ref.clone(),
                created_unix_nano: rec.created_unix_nano,
                labels: cfg
                    .labels
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect::<std::collections::BTreeMap<_, _>>()
                    .into_iter()
                    .collect(),
                daemon_name: nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            },
        })
    }

    async fn mount(&self, c: &Container, rec: &Record) -> Result<(), EngineError> {
        let merged = c.dir.join("merged");
        if Engine::is_mounted(&merged) {
            return Ok(());
        }
        let lowers = vec![PathBuf::from(&rec.layer_dir)];
        let dir = c.dir.clone();
        let m = tokio::task::spawn_blocking(move || mount_rootfs(&lowers, &dir))
            .await
            .map_err(|e| EngineError::Internal(format!("mount task: {e}")))??;
        *lock(&c.mount) = Some(m);
        Ok(())
    }

    /// Unmounts the container's rootfs (idempotent; after a daemon restart
    /// the mount is adopted from the container's directory).
    async fn unmount(&self, c: &Container) -> Result<(), EngineError> {
        let mut m = lock(&c.mount)
            .take()
            .unwrap_or_else(|| RootfsMount::adopt(&c.dir));
        tokio::task::spawn_blocking(move || m.unmount())
            .await
            .map_err(|e| EngineError::Internal(format!("unmount task: {e}")))??;
        Ok(())
    }

    /// Starts a container (a user's start: the restart count is reset).
    pub async fn start(self: &Arc<Self>, c: &Arc<Container>) -> Result<(), EngineError> {
        self.start_as(c, false).await
    }

    /// Starts a container; `by_policy`: a restart of the restart policy,
    /// done only while the container still waits for it.
    async fn start_as(
        self: &Arc<Self>,
        c: &Arc<Container>,
        by_policy: bool,
    ) -> Result<(), EngineError> {
        let _op = c.op.lock().await;
        let rec = c.record();
        if by_policy
            && (rec.state.status != Status::Restarting
                || rec.state.manually_stopped
                || c.events.borrow().removed)
        {
            return Ok(());
        }
        match rec.state.status {
            Status::Running => return Err(EngineError::NotModified),
            Status::Removing => {
                return Err(EngineError::Conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    c.id
                )));
            }
            _ => {}
        }
        let shim_bin = shim::find_shim()?;
        for f in [EXIT_FILE, SHIM_PID_FILE] {
            let _ = std::fs::remove_file(c.dir.join(f));
        }
        let mut spec = self.spec(&rec, &c.dir)?;
        // An attach is waiting for this start (docker run without -d): the
        // shim keeps the output for it even if the container ends first.
        spec.attach_expected = c.attachers() > 0;
        self.mount(c, &rec).await?;
        let bytes = serde_json::to_vec_pretty(&spec)
            .map_err(|e| EngineError::Internal(format!("encoding the spec: {e}")))?;
        write_atomic(&c.dir.join(CONFIG_FILE), &bytes)
            .map_err(|e| EngineError::io("writing config.json", e))?;
        match shim::start(&shim_bin, &c.dir, &self.plugin_dir()).await {
            Ok(st) => {
                c.update(|r| {
                    r.state = StateRecord {
                        status: Status::Running,
                        pid: st.pid,
                        shim_pid: st.shim_pid,
                        exit_code: 0,
                        error: String::new(),
                        oom_killed: false,
                        started_unix_nano: now_unix_nano(),
                        finished_unix_nano: 0,
                        manually_stopped: false,
                    };
                    if by_policy {
                        r.restart_count += 1;
                    } else {
                        r.restart_count = 0;
                    }
                })?;
                c.events.send_modify(|e| {
                    e.starts += 1;
                    e.running = true;
                    e.error = None;
                });
                self.watch(c.clone(), st.shim_pid);
                self.container_event(&c.record(), "start", &[]);
                Ok(())
            }
            Err(e) => {
                let message = e.to_string();
                let lower = message.to_ascii_lowercase();
                let (code, status) = if lower.contains("permission denied") {
                    (126, 400)
                } else if lower.contains("not found") || lower.contains("no such file") {
                    (127, 400)
                } else {
                    (128, 500)
                };
                let _ = self.unmount(c).await;
                c.update(|r| {
                    r.state.error = message.clone();
                    r.state.exit_code = code;
                    if r.state.status == Status::Restarting {
                        r.state.status = Status::Exited;
                    }
                })?;
                // As dockerd: an AutoRemove (--rm) container that cannot
                // start is removed, so a client waiting for "removed"
                // (docker run --rm) returns.
                if rec.host_config.auto_remove == Some(true) {
                    let engine = self.clone();
                    let c = c.clone();
                    tokio::spawn(async move {
                        if let Err(e) = engine.remove(&c, true).await {
                            eprintln!("lookoutd: auto-removing {}: {e}", c.id);
                        }
                    });
                }
                Err(EngineError::StartFailed { message, status })
            }
        }
    }

    /// Watches the shim `shim_pid` of `c` and records the exit.
    fn watch(self: &Arc<Self>, c: Arc<Container>, shim_pid: i32) {
        let engine = self.clone();
        tokio::spawn(async move {
            shim::wait_exit(shim_pid).await;
            engine.on_shim_exit(&c, shim_pid).await;
        });
    }

    async fn on_shim_exit(self: &Arc<Self>, c: &Arc<Container>, shim_pid: i32) {
        if lock(&c.rec).state.shim_pid != shim_pid {
            return;
        }
        let exit = shim::read_exit(&c.dir);
        if exit.is_none() {
            // The shim died without reporting: make sure nothing of the
            // container is left running, and remove its cgroup.
            let path = lock(&c.rec).cgroup_path.clone();
            if let Some(layout) = self.layout.clone() {
                let _ = tokio::task::spawn_blocking(move || {
                    if let Ok(mut cg) = Cgroup::open(&layout, &path) {
                        let _ = cg.kill_all(Duration::from_secs(5));
                        let _ = cg.delete(Duration::from_secs(5));
                    }
                })
                .await;
            }
        }
        let now = now_unix_nano();
        let res = c.update(|r| {
            let s = &mut r.state;
            s.status = Status::Exited;
            s.pid = 0;
            s.shim_pid = 0;
            match &exit {
                Some(x) => {
                    s.exit_code = i64::from(x.exit_code);
                    s.oom_killed = x.oom_killed;
                    s.finished_unix_nano = if x.finished_unix_nano > 0 {
                        x.finished_unix_nano
                    } else {
                        now
                    };
                    s.error = x.error.clone().unwrap_or_default();
                }
                None => {
                    s.exit_code = 255;
                    s.finished_unix_nano = now;
                    s.error = "shim exited unexpectedly".to_string();
                }
            }
        });
        if let Err(e) = res {
            eprintln!("lookoutd: {e}");
        }
        if let Err(e) = self.unmount(c).await {
            eprintln!("lookoutd: container {}: {e}", c.id);
        }
        let rec = c.record();
        let st = rec.state.clone();
        let mut extra = vec![("exitCode", st.exit_code.to_string())];
        if st.oom_killed {
            self.container_event(&rec, "oom", &[]);
        }
        if !st.error.is_empty() {
            extra.push(("error", st.error.clone()));
        }
        self.container_event(&rec, "die", &extra);
        c.events.send_modify(|e| {
            e.exits += 1;
            e.running = false;
            e.exit_code = st.exit_code;
            e.error = Some(st.error.clone()).filter(|s| !s.is_empty());
        });
        let rec = c.record();
        if should_restart(&rec) {
            let ran = Duration::from_nanos(
                (rec.state.finished_unix_nano - rec.state.started_unix_nano).max(0) as u64,
            );
            let delay = {
                let mut d = lock(&c.restart_delay);
                if ran >= RESTART_RESET_AFTER {
                    *d = RESTART_DELAY_MIN;
                }
                let now = *d;
                *d = (now * 2).min(RESTART_DELAY_MAX);
                now
            };
            let _ = c.update(|r| r.state.status = Status::Restarting);
            let engine = self.clone();
            let c = c.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Err(e) = engine.start_as(&c, true).await {
                    eprintln!("lookoutd: restarting {}: {e}", c.id);
                }
            });
            return;
        }
        if rec.host_config.auto_remove == Some(true) {
            let engine = self.clone();
            let c = c.clone();
            tokio::spawn(async move {
                // Let attached clients read the output first (bounded).
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                while c.attachers() > 0 && std::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                if let Err(e) = engine.remove(&c, true).await {
                    eprintln!("lookoutd: auto-removing {}: {e}", c.id);
                }
            });
        }
    }

    /// Waits until `c` is not running, at most `timeout`; returns whether it
    /// stopped.
    async fn wait_stopped(c: &Container, timeout: Duration) -> bool {
        let mut rx = c.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|e| !e.running || e.removed))
            .await
            .is_ok()
    }

    /// Sends a signal (default SIGKILL).
    pub async fn kill(&self, c: &Arc<Container>, signal: Option<&str>) -> Result<(), EngineError> {
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(s)?,
            None => libc::SIGKILL,
        };
        if !c.is_running() {
            return Err(EngineError::Conflict(format!(
                "Cannot kill container: {}: Container {} is not running",
                c.short_name(),
                c.id
            )));
        }
        let _ = c.update(|r| r.state.manually_stopped = true);
        shim::signal(c.dir.clone(), sig, sig == libc::SIGKILL).await?;
        self.container_event(&c.record(), "kill", &[("signal", sig.to_string())]);
        Ok(())
    }

    /// Stops a container: its stop signal (default SIGTERM), `timeout`
    /// seconds (default: the container's StopTimeout, else 10; negative:
    /// wait forever), then SIGKILL to every process.
    pub async fn stop(
        &self,
        c: &Arc<Container>,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<(), EngineError> {
        let _op = c.op.lock().await;
        let rec = c.record();
        if rec.state.status == Status::Restarting {
            c.update(|r| {
                r.state.manually_stopped = true;
                r.state.status = Status::Exited;
            })?;
            self.container_event(&rec, "stop", &[]);
            return Ok(());
        }
        if !c.is_running() {
            return Err(EngineError::NotModified);
        }
        c.update(|r| r.state.manually_stopped = true)?;
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(s)?,
            None => match rec.config.stop_signal.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => parse_signal(s)?,
                None => libc::SIGTERM,
            },
        };
        let t = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        if sig != libc::SIGKILL {
            if let Err(e) = shim::signal(c.dir.clone(), sig, false).await
                && c.is_running()
            {
                eprintln!("lookoutd: stop {}: sending signal {sig}: {e}", c.id);
            }
            let wait = if t < 0 {
                Duration::from_secs(u64::MAX / 4)
            } else {
                Duration::from_secs(t as u64)
            };
            if Self::wait_stopped(c, wait).await {
                self.container_event(&rec, "stop", &[]);
                return Ok(());
            }
        }
        if c.is_running() {
            shim::signal(c.dir.clone(), libc::SIGKILL, true).await?;
        }
        if Self::wait_stopped(c, Duration::from_secs(30)).await {
            self.container_event(&rec, "stop", &[]);
            Ok(())
        } else {
            Err(EngineError::Internal(format!(
                "container {} did not exit after SIGKILL",
                c.id
            )))
        }
    }

    /// Removes a container (`force` kills it first when running).
    pub async fn remove(&self, c: &Arc<Container>, force: bool) -> Result<(), EngineError> {
        let _op = c.op.lock().await;
        if lock(&c.rec).state.status == Status::Removing && c.events.borrow().removed {
            return Ok(());
        }
        if lock(&c.rec).state.status == Status::Restarting {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"{}\": container is restarting: stop the container before removing or force remove",
                    lock(&c.rec).name
                )));
            }
            c.update(|r| {
                r.state.manually_stopped = true;
                r.state.status = Status::Exited;
            })?;
        }
        if c.is_running() {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"{}\": container is running: stop the container before removing or force remove",
                    lock(&c.rec).name
                )));
            }
            c.update(|r| r.state.manually_stopped = true)?;
            shim::signal(c.dir.clone(), libc::SIGKILL, true).await?;
            if !Self::wait_stopped(c, Duration::from_secs(30)).await {
                return Err(EngineError::Internal(format!(
                    "container {} did not exit after SIGKILL",
                    c.id
                )));
            }
        }
        c.update(|r| r.state.status = Status::Removing)?;
        self.unmount(c).await?;
        if Engine::is_mounted(&c.dir.join("merged")) {
            return Err(EngineError::Internal(format!(
                "the rootfs of container {} is still mounted; not removing its directory",
                c.id
            )));
        }
        let dir = c.dir.clone();
        tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir))
            .await
            .map_err(|e| EngineError::Internal(format!("remove task: {e}")))?
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(EngineError::io(format!("removing {}", c.dir.display()), e))
                }
            })?;
        {
            let mut cs = lock(&self.containers);
            let name = lock(&c.rec).name.clone();
            cs.names.remove(&name);
            cs.by_id.remove(&c.id);
        }
        c.events.send_modify(|e| e.removed = true);
        self.container_event(&c.record(), "destroy", &[]);
        Ok(())
    }

    /// Registers a wait now (so no exit between this call and the first
    /// poll is missed) and returns the future that completes when the
    /// condition is met, with the exit code.
    pub fn waiter(
        c: &Arc<Container>,
        cond: WaitCondition,
    ) -> impl std::future::Future<Output = WaitResult> + Send + 'static {
        let mut rx = c.subscribe();
        let start = rx.borrow_and_update().clone();
        let rec = c.record();
        let running = rec.state.status == Status::Running;
        async move {
            let result = |e: &super::Events| WaitResult {
                status_code: e.exit_code,
                error: e.error.clone(),
            };
            if cond == WaitCondition::NotRunning && !running {
                return WaitResult {
                    status_code: rec.state.exit_code,
                    error: Some(rec.state.error).filter(|s| !s.is_empty()),
                };
            }
            let outcome = match cond {
                WaitCondition::NotRunning | WaitCondition::NextExit => rx
                    .wait_for(|e| e.exits > start.exits || e.removed)
                    .await
                    .map(|e| result(&e)),
                WaitCondition::Removed => rx.wait_for(|e| e.removed).await.map(|e| result(&e)),
            };
            match outcome {
                Ok(r) => r,
                Err(_) => result(&rx.borrow()),
            }
        }
    }

    /// Re-adopts the containers whose records say running: a live shim that
    /// answers keeps the container running (its exit is watched again); a
    /// gone shim with an exit record makes it exited; otherwise it is marked
    /// exited with an error.
    pub async fn restore(self: &Arc<Self>) {
        for c in self.list() {
            let rec = c.record();
            match rec.state.status {
                Status::Running => {}
                Status::Restarting => {
                    let engine = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = engine.start_as(&c, true).await {
                            eprintln!("lookoutd: restarting {}: {e}", c.id);
                        }
                    });
                    continue;
                }
                Status::Removing => {
                    let engine = self.clone();
                    tokio::spawn(async move {
                        let _ = engine.remove(&c, true).await;
                    });
                    continue;
                }
                _ => continue,
            }
            let pid = shim::read_shim_pid(&c.dir).unwrap_or(rec.state.shim_pid);
            let dir = c.dir.clone();
            let live = shim::alive(pid)
                && tokio::task::spawn_blocking(move || shim::answers(&dir))
                    .await
                    .unwrap_or(false);
            if live {
                if pid != rec.state.shim_pid {
                    let _ = c.update(|r| r.state.shim_pid = pid);
                }
                self.watch(c.clone(), pid);
            } else {
                // Handle as an exit now (exit.json or the unexpected case).
                let _ = c.update(|r| r.state.shim_pid = pid);
                let engine = self.clone();
                tokio::spawn(async move { engine.on_shim_exit(&c, pid).await });
            }
        }
    }
}

fn random_id() -> String {
    loop {
        let id = super::random_hex64();
        // Docker avoids ids whose short form reads as a number.
        if !id[..12].bytes().all(|b| b.is_ascii_digit()) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("hup").unwrap(), 1);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(
            parse_signal("NOPE")
                .unwrap_err()
                .to_string()
                .contains("NOPE")
        );
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn conditions() {
        assert_eq!(WaitCondition::parse("").unwrap(), WaitCondition::NotRunning);
        assert_eq!(
            WaitCondition::parse("removed").unwrap(),
            WaitCondition::Removed
        );
        assert!(WaitCondition::parse("later").is_err());
    }
}
