//! The container's configuration as the shim receives it (`config.json` in
//! the container's state directory), and the records the shim writes back.
//!
//! The daemon (or the daemonless `lookout-shim run`) writes a [`ContainerSpec`];
//! the shim reads it, creates the cgroup, starts the isolated init through
//! [`crate::isolate`], runs the log pipeline, and writes [`ExitRecord`] to
//! `exit.json` only after every driver has flushed. Field names are
//! snake_case JSON; unknown fields are refused so a typo cannot silently drop
//! a limit.

pub use lookout_cgroups::Resources;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// File name of the spec inside a container's state directory.
pub const CONFIG_FILE: &str = "config.json";
/// File name of the exit record inside a container's state directory.
pub const EXIT_FILE: &str = "exit.json";
/// File name of the shim's pid inside a container's state directory.
pub const SHIM_PID_FILE: &str = "shim.pid";

/// Everything needed to create and run one container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerSpec {
    /// Full container id (64 hex digits from the daemon; any non-empty
    /// `[A-Za-z0-9_.-]` string for the daemonless entry point).
    pub id: String,
    /// The root filesystem directory (an overlay mount or a plain directory).
    pub rootfs: PathBuf,
    /// The process to run as the container's PID 1.
    pub process: ProcessSpec,
    /// Hostname inside the container (default: the first 12 characters of
    /// the id).
    pub hostname: Option<String>,
    /// Network mode: `none` (a new network namespace holding only `lo`) or
    /// `host` (the host's network namespace).
    pub network: NetworkMode,
    /// Resource limits for the container's cgroup.
    pub resources: Resources,
    /// The container's cgroup path, absolute in every hierarchy (default
    /// `/lookout/<id>`).
    pub cgroup_path: Option<String>,
    /// Paths masked inside the container (`None`: Docker's default list).
    pub masked_paths: Option<Vec<String>>,
    /// Paths made read-only inside the container (`None`: Docker's default list).
    pub readonly_paths: Option<Vec<String>>,
    /// The log drivers the output goes to (usually one).
    pub log_drivers: Vec<LogDriverSpec>,
    /// Host-side log options (mode, max-buffer-size, …) are passed with the
    /// driver options; this is the directory for the driver's files.
    pub log_dir: PathBuf,
    /// What the log drivers are told about the container.
    pub meta: ContainerMetaSpec,
    /// Where the container's `/etc/hostname`, `/etc/hosts` and
    /// `/etc/resolv.conf` are generated; they are bind-mounted over the
    /// root's (as Docker does), so a shared root directory is not modified.
    /// `None` (or a root whose `/etc` entries are symlinks): written into
    /// the root itself. The shim sets it to the state directory.
    pub etc_dir: Option<PathBuf>,
    /// A client will attach to the output (`docker run` without `-d`):
    /// the shim keeps what the container writes until the first attach,
    /// and after the exit waits for it (up to [`ATTACH_GRACE_SECS`]) before
    /// it goes away, so an attach that arrives after a short-lived
    /// container ended still gets every line.
    pub attach_expected: bool,
}

/// How long a shim whose spec says `attach_expected` waits, after the
/// container exited, for the first attach.
pub const ATTACH_GRACE_SECS: u64 = 10;

/// The container's PID 1.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessSpec {
    /// Program and arguments (entrypoint followed by cmd); must not be empty.
    pub args: Vec<String>,
    /// Environment, `KEY=value` each. `PATH` and `HOSTNAME` are added when
    /// missing, as Docker does.
    pub env: Vec<String>,
    /// Working directory inside the container (default `/`); created when
    /// missing.
    pub cwd: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`, resolved in the container's
    /// `/etc/passwd` and `/etc/group` (default root).
    pub user: Option<String>,
    /// Resource limits (`--ulimit`); never above the caller's hard limits.
    pub rlimits: Vec<RlimitSpec>,
    /// Capabilities added to Docker's default set (`CAP_` prefix optional,
    /// `ALL` allowed).
    pub cap_add: Vec<String>,
    /// Capabilities dropped from Docker's default set (`ALL` allowed).
    pub cap_drop: Vec<String>,
}

/// One `--ulimit name=soft:hard`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlimitSpec {
    /// Docker's name: `nofile`, `nproc`, `core`, `stack`, `memlock`, … .
    pub name: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// How the container is networked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Its own network namespace with only the loopback interface, up.
    #[default]
    None,
    /// The host's network namespace.
    Host,
}

/// One log driver and its options (host keys such as `mode` included).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogDriverSpec {
    /// Driver (plugin) name, e.g. `json-file`.
    pub driver: String,
    /// `--log-opt` pairs in the order given.
    pub opts: Vec<(String, String)>,
}

/// What drivers see of the container (tags, attrs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct ContainerMetaSpec {
    pub name: String,
    pub image_id: String,
    pub image_name: String,
    pub created_unix_nano: i64,
    pub labels: Vec<(String, String)>,
    pub daemon_name: String,
}

/// How the container ended, written by the shim after its drivers flushed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExitRecord {
    /// Exit code as Docker reports it: the status, or 128 + signal.
    pub exit_code: i32,
    /// The signal that killed PID 1, if any.
    pub signal: Option<i32>,
    /// Whether the kernel's OOM killer killed a process of the container.
    pub oom_killed: bool,
    /// Start time, nanoseconds since the Unix epoch.
    pub started_unix_nano: i64,
    /// Finish time, nanoseconds since the Unix epoch.
    pub finished_unix_nano: i64,
    /// Set when the container could not be started or the shim failed.
    pub error: Option<String>,
}
