//! `lookout-shim run`: a container without a daemon, like `crun run`.
//!
//! Builds a [`ContainerSpec`] from flags, writes it to a fresh state
//! directory, starts it under a detached shim, forwards SIGINT, SIGTERM and
//! SIGHUP to it, waits, and returns its exit code. The logs stay in the
//! state directory for `lookout-shim logs`.

use crate::supervise;
use anyhow::{Context, Result, bail};
use clap::Args;
use lookout_core::cgroups::units;
use lookout_core::shim_proto::{self, Request};
use lookout_core::spec::{
    self, ContainerMetaSpec, ContainerSpec, ExitRecord, LogDriverSpec, NetworkMode, ProcessSpec,
    Resources, RlimitSpec,
};
use std::path::{Path, PathBuf};

/// Flags of `lookout-shim run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The container's root filesystem directory.
    #[arg(long)]
    rootfs: PathBuf,
    /// Directory holding one state directory per container (config, logs,
    /// exit record, control socket).
    #[arg(long, default_value = "/var/lib/lookout/standalone")]
    root: PathBuf,
    /// Container id (default: 64 random hex digits).
    #[arg(long)]
    id: Option<String>,
    /// Container name, for log tags.
    #[arg(long)]
    name: Option<String>,
    /// Hostname (default: the first 12 characters of the id).
    #[arg(long)]
    hostname: Option<String>,
    /// Environment variable KEY=value (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// User: name, uid, name:group or uid:gid.
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// Memory limit (e.g. 32m).
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// Memory soft limit.
    #[arg(long)]
    memory_reservation: Option<String>,
    /// Memory plus swap limit, -1 for unlimited.
    #[arg(long)]
    memory_swap: Option<String>,
    /// Number of CPUs (e.g. 0.5).
    #[arg(long)]
    cpus: Option<String>,
    /// Relative CPU weight.
    #[arg(long)]
    cpu_shares: Option<i64>,
    /// CFS period in µs.
    #[arg(long)]
    cpu_period: Option<i64>,
    /// CFS quota in µs.
    #[arg(long)]
    cpu_quota: Option<i64>,
    /// CPUs to run on (e.g. 0-1).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Memory nodes to allocate from.
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Maximum number of tasks (-1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Block I/O weight (10-1000).
    #[arg(long)]
    blkio_weight: Option<i64>,
    /// Resource limit NAME=SOFT[:HARD] (repeatable).
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    ulimits: Vec<String>,
    /// Capability to add (repeatable).
    #[arg(long)]
    cap_add: Vec<String>,
    /// Capability to drop (repeatable).
    #[arg(long)]
    cap_drop: Vec<String>,
    /// Network: none or host.
    #[arg(long, default_value = "none")]
    network: String,
    /// Parent of the container's cgroup, in every hierarchy.
    #[arg(long, default_value = "/lookout")]
    cgroup_parent: String,
    /// Log driver (a plugin name, or none).
    #[arg(long, default_value = "json-file")]
    log_driver: String,
    /// Driver option KEY=VALUE (repeatable).
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    log_opts: Vec<String>,
    /// Extra plugin directory, searched first (repeatable).
    #[arg(long)]
    plugin_dir: Vec<PathBuf>,
    /// Remove the state directory (logs included) after the exit.
    #[arg(long)]
    rm: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// Parses `key=value` pairs, naming the bad one.
pub fn parse_pairs(what: &str, v: &[String]) -> Result<Vec<(String, String)>> {
    v.iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("invalid {what} {s:?}: expected key=value"))
        })
        .collect()
}

fn parse_ulimit(s: &str) -> Result<RlimitSpec> {
    let (name, vals) = s
        .split_once('=')
        .with_context(|| format!("invalid --ulimit {s:?}: expected NAME=SOFT[:HARD]"))?;
    let num = |v: &str| -> Result<u64> {
        if v == "-1" || v == "unlimited" {
            return Ok(u64::MAX);
        }
        v.parse()
            .with_context(|| format!("invalid --ulimit {s:?}: {v:?} is not a number"))
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(vals)?, num(vals)?),
    };
    if soft > hard {
        bail!("invalid --ulimit {s:?}: soft limit {soft} is above hard limit {hard}");
    }
    Ok(RlimitSpec {
        name: name.to_string(),
        soft,
        hard,
    })
}

fn random_id() -> Result<String> {
    let mut b = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl RunArgs {
    fn spec(&self, id: &str, state_dir: &Path) -> Result<ContainerSpec> {
        let rootfs = self
            .rootfs
            .canonicalize()
            .with_context(|| format!("rootfs {}", self.rootfs.display()))?;
        if !rootfs.is_dir() {
            bail!("rootfs {} is not a directory", rootfs.display());
        }
        let network = match self.network.as_str() {
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            other => bail!("invalid --network {other:?}: expected none or host"),
        };
        let opt = |v: &Option<String>, f: fn(&str) -> lookout_core::cgroups::Result<i64>| {
            v.as_deref().map(f).transpose()
        };
        let parent = self.cgroup_parent.trim_end_matches('/');
        if !parent.starts_with('/') {
            bail!(
                "invalid --cgroup-parent {:?}: must be an absolute path",
                self.cgroup_parent
            );
        }
        Ok(ContainerSpec {
            id: id.to_string(),
            rootfs,
            process: ProcessSpec {
                args: self.command.clone(),
                env: self.env.clone(),
                cwd: self.workdir.clone(),
                user: self.user.clone(),
                rlimits: self
                    .ulimits
                    .iter()
                    .map(|u| parse_ulimit(u))
                    .collect::<Result<_>>()?,
                cap_add: self.cap_add.clone(),
                cap_drop: self.cap_drop.clone(),
            },
            hostname: self.hostname.clone(),
            network,
            resources: Resources {
                memory: opt(&self.memory, units::parse_memory)?,
                memory_reservation: opt(&self.memory_reservation, units::parse_memory)?,
                memory_swap: opt(&self.memory_swap, units::parse_memory_swap)?,
                cpu_shares: self.cpu_shares,
                nano_cpus: opt(&self.cpus, units::parse_cpus)?,
                cpu_period: self.cpu_period,
                cpu_quota: self.cpu_quota,
                cpuset_cpus: self.cpuset_cpus.clone(),
                cpuset_mems: self.cpuset_mems.clone(),
                pids_limit: self.pids_limit,
                blkio_weight: self.blkio_weight,
            },
            cgroup_path: Some(format!("{parent}/{id}")),
            masked_paths: None,
            readonly_paths: None,
            log_drivers: vec![LogDriverSpec {
                driver: self.log_driver.clone(),
                opts: parse_pairs("--log-opt", &self.log_opts)?,
            }],
            log_dir: state_dir.to_path_buf(),
            etc_dir: Some(state_dir.to_path_buf()),
            attach_expected: false,
            meta: ContainerMetaSpec {
                name: self.name.clone().unwrap_or_default(),
                created_unix_nano: lookout_core::logs::pipeline::now_unix_nano(),
                daemon_name: nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                ..Default::default()
            },
        })
    }
}

/// Docker's exit codes for a container that could not start: 127 when the
/// command was not found, 126 when it could not be run, 125 otherwise.
pub(crate) fn start_failure_code(msg: &str) -> i32 {
    if msg.contains("No such file or directory") || msg.contains("not found") {
        127
    } else if msg.contains("Permission denied") || msg.contains("Exec format error") {
        126
    } else {
        125
    }
}

/// Runs the container; returns the exit code to exit with.
pub fn run(args: RunArgs) -> Result<i32> {
    let id = match &args.id {
        Some(i) => i.clone(),
        None => random_id().context("reading /dev/urandom")?,
    };
    std::fs::create_dir_all(&args.root)
        .with_context(|| format!("cannot create {}", args.root.display()))?;
    let state_dir = args.root.join(&id);
    match std::fs::create_dir(&state_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!(
                "container {id:?} already exists in {} (choose another --id)",
                args.root.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", state_dir.display())),
    }
    let started = args.spec(&id, &state_dir).and_then(|spec| {
        let p = state_dir.join(spec::CONFIG_FILE);
        std::fs::write(&p, serde_json::to_vec_pretty(&spec)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
        supervise::start_detached(&state_dir, &args.plugin_dir, supervise::Detach::SingleFork)
    });
    let code = match started {
        Err(e) => {
            // Nothing ran: leave nothing behind.
            let _ = std::fs::remove_dir_all(&state_dir);
            let msg = format!("{e:#}");
            eprintln!("lookout-shim: {msg}");
            return Ok(start_failure_code(&msg));
        }
        Ok(_pid) => {
            forward_signals(state_dir.clone())?;
            let rec = wait(&state_dir)?;
            if let Some(e) = &rec.error {
                eprintln!("lookout-shim: {e}");
            }
            rec.exit_code
        }
    };
    if args.rm {
        let _ = std::fs::remove_dir_all(&state_dir);
    }
    Ok(code)
}

/// Waits for the exit through the control socket (or the exit record).
fn wait(state_dir: &Path) -> Result<ExitRecord> {
    shim_proto::wait_exit(state_dir, None).context("waiting for the container")
}

/// Forwards SIGINT, SIGTERM and SIGHUP to the container's PID 1.
fn forward_signals(state_dir: PathBuf) -> Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block().context("blocking signals")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            while let Ok(sig) = set.wait() {
                let _ = shim_proto::call(
                    &state_dir,
                    &Request::Signal {
                        signal: sig as i32,
                        all: false,
                    },
                    Some(std::time::Duration::from_secs(5)),
                );
            }
        })?;
    Ok(())
}
