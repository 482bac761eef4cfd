//! The container records: what the engine knows of each container, kept in
//! memory and persisted as `<data-root>/containers/<id>/state.json` (written
//! atomically: temp file, fsync, rename).

use std::io::Write;
use std::path::Path;

use bollard_stubs::models::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};

/// File name of the persisted record in a container's directory.
pub const STATE_FILE: &str = "state.json";

/// A container's lifecycle state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started (or its start failed).
    #[default]
    Created,
    /// PID 1 runs.
    Running,
    /// PID 1 ended.
    Exited,
    /// The engine lost track of it (its shim vanished in a way that left
    /// nothing to report).
    Dead,
    /// Being removed.
    Removing,
    /// Exited; its restart policy starts it again after a delay.
    Restarting,
}

impl Status {
    /// Docker's word for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
            Status::Dead => "dead",
            Status::Removing => "removing",
            Status::Restarting => "restarting",
        }
    }
}

/// The runtime state of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StateRecord {
    /// The lifecycle state.
    pub status: Status,
    /// PID 1 on the host while running, else 0.
    pub pid: i32,
    /// The shim's pid while running, else 0.
    pub shim_pid: i32,
    /// Exit code of the last run.
    pub exit_code: i64,
    /// Why the last start or run failed, empty if it did not.
    pub error: String,
    /// Whether the OOM killer killed a process of the last run.
    pub oom_killed: bool,
    /// Start of the last run, Unix ns (0: never).
    pub started_unix_nano: i64,
    /// End of the last run, Unix ns (0: not yet).
    pub finished_unix_nano: i64,
    /// Stopped or killed by a user: the restart policy does not apply.
    pub manually_stopped: bool,
}

/// Everything the engine persists about a container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Record {
    /// 64 hex digits.
    pub id: String,
    /// With its leading `/`.
    pub name: String,
    /// Creation time, Unix ns.
    pub created_unix_nano: i64,
    /// The image as the client named it.
    pub image_ref: String,
    /// The image's id (`sha256:…`).
    pub image_id: String,
    /// The image's layer directory (the overlay lowerdir).
    pub layer_dir: String,
    /// PID 1's program.
    pub path: String,
    /// PID 1's arguments.
    pub args: Vec<String>,
    /// The container's configuration after merging the image's defaults.
    pub config: ContainerConfig,
    /// The host configuration as the client sent it.
    pub host_config: HostConfig,
    /// The effective log driver.
    pub log_driver: String,
    /// The effective log options.
    pub log_opts: Vec<(String, String)>,
    /// The container's cgroup path.
    pub cgroup_path: String,
    /// The runtime state.
    pub state: StateRecord,
    /// Restarts so far.
    pub restart_count: i64,
}

/// Writes `bytes` to `path` atomically (temp file in the same directory,
/// fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl Record {
    /// Persists the record in `dir`.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_atomic(&dir.join(STATE_FILE), &bytes)
    }

    /// Loads the record of `dir`.
    pub fn load(dir: &Path) -> std::io::Result<Record> {
        let bytes = std::fs::read(dir.join(STATE_FILE))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", dir.join(STATE_FILE).display()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = tempfile::tempdir().unwrap();
        let r = Record {
            id: "ab".repeat(32),
            name: "/x".into(),
            args: vec!["-c".into(), "true".into()],
            state: StateRecord {
                status: Status::Exited,
                exit_code: 3,
                ..Default::default()
            },
            ..Default::default()
        };
        r.save(t.path()).unwrap();
        assert_eq!(Record::load(t.path()).unwrap(), r);
        let text = std::fs::read_to_string(t.path().join(STATE_FILE)).unwrap();
        assert!(text.contains("\"exited\""));
    }
}
