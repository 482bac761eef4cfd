//! The shim's control protocol: one JSON request per line on a unix socket,
//! one JSON response per line back.
//!
//! The socket lives in the container's state directory as
//! [`CONTROL_SOCKET`]. Unix socket paths are limited to 108 bytes, so both
//! ends reach it through a directory file descriptor
//! (`/proc/self/fd/<n>/control.sock`): any data-root length works.
//!
//! Requests: `{"op":"status"}`, `{"op":"signal","signal":15,"all":false}`,
//! `{"op":"stats"}` (pipeline counters), `{"op":"wait"}` (answers when
//! the container has exited and every driver has flushed) and
//! `{"op":"attach","replay":true}` (the output as Docker's multiplexed
//! stream).

use crate::spec::ExitRecord;
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

/// File name of the control socket inside a container's state directory.
pub const CONTROL_SOCKET: &str = "control.sock";

/// A request to the shim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The container's state.
    Status,
    /// Send a signal to PID 1, or with `all` to every process of the container.
    Signal {
        /// Signal number.
        signal: i32,
        /// Signal every process in the cgroup, not only PID 1.
        #[serde(default)]
        all: bool,
    },
    /// The log pipeline's counters.
    Stats,
    /// Block until the container has exited and the logs are flushed.
    Wait,
    /// Stream the container's output: after a `{"result":"ok"}` line the
    /// connection carries Docker's multiplexed frames (an 8-byte header:
    /// stream 1 or 2, three zero bytes, the payload length as a big-endian
    /// u32; then the payload) until the container's output ends.
    Attach {
        /// First replay what the container wrote before this attach (kept
        /// by the shim, bounded, until the first attach arrives).
        #[serde(default)]
        replay: bool,
    },
}

/// The container's state as the shim sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// The shim's pid.
    pub shim_pid: i32,
    /// PID 1 of the container, as seen from the host.
    pub pid: i32,
    /// `running` or `exited`.
    pub state: String,
    /// Start time, nanoseconds since the Unix epoch.
    pub started_unix_nano: i64,
    /// Present once the container has exited and its logs are flushed.
    pub exit: Option<ExitRecord>,
}

/// One driver's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct DriverCounters {
    pub name: String,
    pub records_in: u64,
    pub bytes_in: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub dropped_bytes: u64,
    pub retries: u64,
    pub queued_bytes: u64,
    pub failure: Option<String>,
}

/// The pipeline's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PipelineCounters {
    /// Records cut from the container's output.
    pub records: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Per driver.
    pub drivers: Vec<DriverCounters>,
}

/// A response from the shim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    /// The request was carried out.
    Ok,
    /// Answer to `status` and `wait`.
    Status(Status),
    /// Answer to `stats`.
    Stats(PipelineCounters),
    /// The request failed.
    Error {
        /// Why.
        message: String,
    },
}

/// Runs `f` with a short path (`/proc/self/fd/<n>/<name>`) for `name` in
/// `dir`, whatever the length of `dir`.
fn with_short_path<T>(
    dir: &Path,
    name: &str,
    f: impl FnOnce(&Path) -> io::Result<T>,
) -> io::Result<T> {
    let d = std::fs::File::open(dir)?;
    let p = format!("/proc/self/fd/{}/{}", d.as_raw_fd(), name);
    let r = f(Path::new(&p));
    drop(d);
    r
}

/// Binds the control socket in `state_dir`, replacing a stale one.
pub fn bind(state_dir: &Path) -> io::Result<UnixListener> {
    with_short_path(state_dir, CONTROL_SOCKET, |p| {
        match std::fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        UnixListener::bind(p)
    })
}

/// Connects to the control socket in `state_dir`.
pub fn connect(state_dir: &Path) -> io::Result<UnixStream> {
    with_short_path(state_dir, CONTROL_SOCKET, |p| UnixStream::connect(p))
}

/// Sends one request and reads its response. `timeout` bounds the wait
/// (`None`: no bound, as `wait` needs).
pub fn call(state_dir: &Path, req: &Request, timeout: Option<Duration>) -> io::Result<Response> {
    let mut s = connect(state_dir)?;
    s.set_read_timeout(timeout)?;
    s.set_write_timeout(timeout)?;
    let mut line = serde_json::to_vec(req).map_err(io::Error::other)?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut r = BufReader::new(s);
    let mut buf = String::new();
    if r.read_line(&mut buf)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the shim closed the control connection without answering",
        ));
    }
    serde_json::from_str(&buf).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad answer from the shim: {e}: {buf:?}"),
        )
    })
}

/// Waits for the container's exit: asks the shim, and when the shim has
/// already gone (it exits right after answering the waiters it has), reads
/// the exit record it left in `state_dir`.
pub fn wait_exit(state_dir: &Path, timeout: Option<Duration>) -> io::Result<ExitRecord> {
    let asked = call(state_dir, &Request::Wait, timeout);
    if let Ok(Response::Status(Status {
        exit: Some(rec), ..
    })) = asked
    {
        return Ok(rec);
    }
    let p = state_dir.join(crate::spec::EXIT_FILE);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("invalid {}: {e}", p.display()),
            )
        }),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!(
                "the shim did not report an exit ({}) and there is no {}: {e}",
                match asked {
                    Ok(r) => format!("{r:?}"),
                    Err(e) => e.to_string(),
                },
                p.display()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        let r: Request = serde_json::from_str(r#"{"op":"signal","signal":9}"#).unwrap();
        assert_eq!(
            r,
            Request::Signal {
                signal: 9,
                all: false
            }
        );
        assert_eq!(
            serde_json::to_string(&Request::Wait).unwrap(),
            r#"{"op":"wait"}"#
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"reboot"}"#).is_err());
        let ok = serde_json::to_string(&Response::Ok).unwrap();
        assert_eq!(ok, r#"{"result":"ok"}"#);
    }

    #[test]
    fn long_state_dir_paths_work() {
        let t = tempfile::tempdir().unwrap();
        let mut dir = t.path().to_path_buf();
        while dir.as_os_str().len() < 200 {
            dir.push("a-rather-long-directory-name");
        }
        std::fs::create_dir_all(&dir).unwrap();
        let l = bind(&dir).unwrap();
        let th = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert_eq!(line.trim(), r#"{"op":"status"}"#);
            (&s).write_all(b"{\"result\":\"ok\"}\n").unwrap();
        });
        let resp = call(&dir, &Request::Status, Some(Duration::from_secs(5))).unwrap();
        assert_eq!(resp, Response::Ok);
        th.join().unwrap();
    }
}
