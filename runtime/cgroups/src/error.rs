//! The crate's error type.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while managing or reading a cgroup.
///
/// Every variant names what the caller asked for (the control, the value)
/// and where (the path), so the message can be shown to a user as is.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A limit's value is out of range or malformed; nothing was written.
    #[error("invalid {control} value {value:?}: {reason}")]
    InvalidValue {
        /// The control, named as the user sets it (`memory`, `cpus`, `cpuset-cpus`, …).
        control: &'static str,
        /// The rejected value, as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The kernel does not offer a control the caller asked for; nothing was written.
    #[error("{control} is not available: {reason} (in {path})")]
    Unavailable {
        /// The control, named as the user sets it (`blkio-weight`, `memory-swap`, …).
        control: &'static str,
        /// Why it is unavailable (which file or controller is missing).
        reason: String,
        /// The cgroup directory (or system file) that was examined.
        path: PathBuf,
    },

    /// Writing a control file failed.
    #[error("cannot set {control} to {value:?} in {path}: {source}")]
    Write {
        /// The control being set.
        control: &'static str,
        /// The value written.
        value: String,
        /// The file written.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },

    /// Reading a cgroup or system file failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A cgroup or system file held something this crate cannot parse.
    #[error("cannot parse {path}: {reason}")]
    Parse {
        /// The file parsed.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },

    /// No cgroup hierarchy is mounted (neither v1 nor v2).
    #[error("no cgroup hierarchy is mounted (looked in {path})")]
    NoCgroups {
        /// The mountinfo file examined.
        path: PathBuf,
    },

    /// The cgroup path asked for is not acceptable.
    #[error("invalid cgroup path {path:?}: {reason}")]
    InvalidPath {
        /// The path given.
        path: String,
        /// Why it is rejected.
        reason: String,
    },

    /// Creating a cgroup directory failed.
    #[error("cannot create cgroup {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },

    /// Removing a cgroup directory failed.
    #[error("cannot remove cgroup {path}: {source}{}", pids_suffix(.pids))]
    Remove {
        /// The directory.
        path: PathBuf,
        /// Processes still inside when giving up, if any.
        pids: Vec<i32>,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },

    /// Moving a process into the cgroup failed.
    #[error("cannot move pid {pid} into {path}: {source}")]
    AddProcess {
        /// The process.
        pid: i32,
        /// The `cgroup.procs` file written.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },

    /// Sending a signal to a process of the cgroup failed.
    #[error("cannot send {signal} to pid {pid} of {path}: {source}")]
    Signal {
        /// The process.
        pid: i32,
        /// The signal's name.
        signal: &'static str,
        /// The cgroup directory.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },

    /// A device rule is malformed or out of range; nothing was written.
    #[error("invalid device rule {rule:?}: {reason}")]
    InvalidDeviceRule {
        /// The rule, as given (or formatted, for a hand-built one).
        rule: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A `bpf(2)` step of the v2 device filter failed.
    #[error("device filter for {path}: cannot {op}: {source}{}", log_suffix(.log))]
    Bpf {
        /// The step that failed (`load the program`, `attach the program`, …).
        op: &'static str,
        /// The cgroup directory.
        path: PathBuf,
        /// The kernel's answer (errno).
        #[source]
        source: io::Error,
        /// The verifier's log, when loading failed.
        log: String,
    },

    /// A state change (freeze, thaw, kill) did not complete in time.
    #[error("timed out after {timeout:?} waiting for {what} in {path}")]
    Timeout {
        /// What was awaited (`frozen`, `thawed`, `no process left`).
        what: &'static str,
        /// The cgroup directory.
        path: PathBuf,
        /// How long it waited.
        timeout: Duration,
    },
}

fn pids_suffix(pids: &[i32]) -> String {
    if pids.is_empty() {
        String::new()
    } else {
        format!(" (processes still inside: {pids:?})")
    }
}

fn log_suffix(log: &str) -> String {
    let log = log.trim();
    if log.is_empty() {
        String::new()
    } else {
        format!(" (verifier log: {log})")
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = CgroupError> = std::result::Result<T, E>;
