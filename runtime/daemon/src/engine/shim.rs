//! Talking to `lookout-shim`: starting one per container, signalling it over
//! its control socket, attaching to its output, and noticing when it exits
//! (a pidfd awaited on the tokio reactor).

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use lookout_core::shim_proto::{self, Request, Response};
use lookout_core::spec::{EXIT_FILE, ExitRecord, SHIM_PID_FILE};
use tokio::io::AsyncReadExt;
use tokio::io::unix::AsyncFd;

/// Environment variable naming the shim binary.
pub const SHIM_ENV: &str = "LOOKOUT_SHIM";
/// The shim's file name.
pub const SHIM_NAME: &str = "lookout-shim";
/// How long `lookout-shim start` may take to report the container's pid.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors talking to a shim.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// The shim binary is nowhere to be found.
    #[error("{SHIM_NAME} not found: looked next to lookoutd, in ${SHIM_ENV} and in PATH")]
    NotFound,
    /// The shim could not be run.
    #[error("running {}: {source}", path.display())]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `lookout-shim start` failed; its message.
    #[error("{0}")]
    StartFailed(String),
    /// The control socket did not answer.
    #[error("the container's shim does not answer: {0}")]
    Control(std::io::Error),
    /// The shim refused the request.
    #[error("{0}")]
    Refused(String),
}

/// Finds the shim: next to the running executable, else `$LOOKOUT_SHIM`,
/// else in `PATH`.
pub fn find_shim() -> Result<PathBuf, ShimError> {
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        let p = dir.join(SHIM_NAME);
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(p) = std::env::var_os(SHIM_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join(SHIM_NAME);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(ShimError::NotFound)
}

/// What `lookout-shim start` reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// PID 1 of the container.
    pub pid: i32,
    /// The detached shim's pid.
    pub shim_pid: i32,
}

/// Runs `shim start --state-dir <dir> --plugin-dir <plugins>` and waits for
/// it to report the container's PID 1 (or its error).
pub async fn start(shim: &Path, state_dir: &Path, plugin_dir: &Path) -> Result<Started, ShimError> {
    let mut child = tokio::process::Command::new(shim)
        .arg("start")
        .arg("--state-dir")
        .arg(state_dir)
        .arg("--plugin-dir")
        .arg(plugin_dir)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false)
        .spawn()
        .map_err(|source| ShimError::Spawn {
            path: shim.to_path_buf(),
            source,
        })?;
    // Read both pipes while waiting; the detached shim may keep a copy of
    // them open, so the reads are bounded once the starter has exited.
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let (otx, orx) = tokio::sync::oneshot::channel();
    let (etx, erx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut b = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = read_some(o, &mut b).await;
        }
        let _ = otx.send(b);
    });
    tokio::spawn(async move {
        let mut b = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = read_some(e, &mut b).await;
        }
        let _ = etx.send(b);
    });
    let status = match tokio::time::timeout(START_TIMEOUT, child.wait()).await {
        Ok(r) => r.map_err(|source| ShimError::Spawn {
            path: shim.to_path_buf(),
            source,
        })?,
        Err(_) => {
            let _ = child.kill().await;
            return Err(ShimError::StartFailed(format!(
                "{} start did not report within {} s",
                shim.display(),
                START_TIMEOUT.as_secs()
            )));
        }
    };
    let grace = Duration::from_millis(300);
    let out = tokio::time::timeout(grace, orx)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let err = tokio::time::timeout(grace, erx)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let err_text = String::from_utf8_lossy(&err).trim().to_string();
    if !status.success() {
        let msg = if err_text.is_empty() {
            format!("{} start failed: {status}", shim.display())
        } else {
            clean_error(&err_text)
        };
        return Err(ShimError::StartFailed(msg));
    }
    let out_text = String::from_utf8_lossy(&out);
    let pid = out_text
        .split_whitespace()
        .next()
        .and_then(|p| p.parse::<i32>().ok())
        .ok_or_else(|| {
            ShimError::StartFailed(format!(
                "{} start reported no container pid (stdout {:?}, stderr {:?})",
                shim.display(),
                out_text.trim(),
                err_text
            ))
        })?;
    // The detached shim writes its pid file before the starter reports.
    let mut shim_pid = None;
    for _ in 0..100 {
        if let Some(p) = read_shim_pid(state_dir) {
            shim_pid = Some(p);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let shim_pid = shim_pid.ok_or_else(|| {
        ShimError::StartFailed(format!(
            "the shim started the container (pid {pid}) but wrote no {SHIM_PID_FILE}"
        ))
    })?;
    Ok(Started { pid, shim_pid })
}

/// Turns the shim's error output (anyhow's report: `Error: msg`, an
/// optional `Caused by:` list, maybe a backtrace) into one line, with
/// system error texts worded as Go words them (`no such file or directory`,
/// which is what the docker CLI looks for to exit with 127 or 126).
pub fn clean_error(text: &str) -> String {
    let text = text.split("\n\nStack backtrace:").next().unwrap_or(text);
    let text = text.split("\nStack backtrace:").next().unwrap_or(text);
    let mut parts: Vec<String> = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l == "Caused by:" {
            continue;
        }
        let l = l.strip_prefix("Error: ").unwrap_or(l);
        // "0: cause" items of the Caused-by list.
        let l = match l.split_once(": ") {
            Some((n, rest)) if n.bytes().all(|b| b.is_ascii_digit()) => rest,
            _ => l,
        };
        if !parts.iter().any(|p| p.ends_with(l)) {
            parts.push(l.to_string());
        }
    }
    let mut msg = parts.join(": ");
    // Rust's "No such file or directory (os error 2)" -> Go's wording.
    while let Some(i) = msg.find(" (os error ") {
        let Some(end) = msg[i..].find(')') else { break };
        let code: i32 = msg[i + 11..i + end].parse().unwrap_or(0);
        let desc = std::io::Error::from_raw_os_error(code).to_string();
        let desc = desc.split(" (os error").next().unwrap_or("").to_string();
        let start = if msg[..i].ends_with(&desc) {
            i - desc.len()
        } else {
            i
        };
        let mut lower = desc.clone();
        if let Some(f) = lower.get_mut(0..1) {
            f.make_ascii_lowercase();
        }
        msg.replace_range(start..i + end + 1, &lower);
    }
    msg
}

async fn read_some<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    let mut chunk = [0u8; 4096];
    loop {
        let n = r.read(&mut chunk).await?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The pid in `shim.pid`, if the file holds one.
pub fn read_shim_pid(state_dir: &Path) -> Option<i32> {
    std::fs::read_to_string(state_dir.join(SHIM_PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&p: &i32| p > 0)
}

/// The exit record, if the shim wrote one.
pub fn read_exit(state_dir: &Path) -> Option<ExitRecord> {
    let b = std::fs::read(state_dir.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&b).ok()
}

/// Whether a process `pid` exists.
pub fn alive(pid: i32) -> bool {
    pid > 0
        && match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
            Ok(()) => true,
            Err(e) => e == nix::errno::Errno::EPERM,
        }
}

/// Sends one control request (blocking; run it off the reactor).
pub fn call(state_dir: &Path, req: &Request, timeout: Duration) -> Result<Response, ShimError> {
    let r = shim_proto::call(state_dir, req, Some(timeout)).map_err(ShimError::Control)?;
    match r {
        Response::Error { message } => Err(ShimError::Refused(message)),
        r => Ok(r),
    }
}

/// Sends `signal` to PID 1 (or with `all` to every process of the container).
pub async fn signal(state_dir: PathBuf, signal: i32, all: bool) -> Result<(), ShimError> {
    tokio::task::spawn_blocking(move || {
        call(
            &state_dir,
            &Request::Signal { signal, all },
            Duration::from_secs(5),
        )
        .map(|_| ())
    })
    .await
    .map_err(|e| ShimError::Control(std::io::Error::other(e)))?
}

/// Opens an attach stream: after the shim's `ok`, the returned socket
/// carries Docker's multiplexed frames until the output ends.
pub async fn attach(state_dir: PathBuf, replay: bool) -> Result<tokio::net::UnixStream, ShimError> {
    let std_sock = tokio::task::spawn_blocking(move || -> Result<_, ShimError> {
        let mut s = shim_proto::connect(&state_dir).map_err(ShimError::Control)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(ShimError::Control)?;
        let mut line = serde_json::to_vec(&Request::Attach { replay })
            .map_err(|e| ShimError::Control(std::io::Error::other(e)))?;
        line.push(b'\n');
        s.write_all(&line).map_err(ShimError::Control)?;
        // Read the answer byte by byte so no frame byte is swallowed.
        let mut answer = Vec::new();
        let mut one = [0u8; 1];
        loop {
            let n = std::io::Read::read(&mut s, &mut one).map_err(ShimError::Control)?;
            if n == 0 || one[0] == b'\n' || answer.len() > 64 * 1024 {
                break;
            }
            answer.push(one[0]);
        }
        match serde_json::from_slice::<Response>(&answer) {
            Ok(Response::Ok) => {}
            Ok(Response::Error { message }) => return Err(ShimError::Refused(message)),
            _ => {
                return Err(ShimError::Control(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("bad attach answer: {:?}", String::from_utf8_lossy(&answer)),
                )));
            }
        }
        s.set_read_timeout(None).map_err(ShimError::Control)?;
        s.set_nonblocking(true).map_err(ShimError::Control)?;
        Ok(s)
    })
    .await
    .map_err(|e| ShimError::Control(std::io::Error::other(e)))??;
    tokio::net::UnixStream::from_std(std_sock).map_err(ShimError::Control)
}

/// Checks that a shim answers `status` (used when re-adopting).
pub fn answers(state_dir: &Path) -> bool {
    matches!(
        call(state_dir, &Request::Status, Duration::from_secs(2)),
        Ok(Response::Status(_))
    )
}

struct PidFd(OwnedFd);

impl AsRawFd for PidFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Waits until process `pid` exits (any process, not only children), with a
/// pidfd on the reactor. Returns at once if it is already gone.
pub async fn wait_exit(pid: i32) {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        // ESRCH: already gone. Anything else: poll for it.
        while alive(pid) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        return;
    }
    // SAFETY: the syscall returned a new fd that nothing else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // SAFETY: PidFd owns the fd and always returns it; the fd stays open
    // until the AsyncFd (which owns the PidFd) is dropped.
    let registered =
        unsafe { AsyncFd::register_with_interest(PidFd(owned), tokio::io::Interest::READABLE) };
    match registered {
        Ok(afd) => {
            let _ = afd.readable().await;
        }
        Err(_) => {
            while alive(pid) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_errors_become_one_line() {
        let t = "Error: cannot exec \"/x\": No such file or directory (os error 2)\n\nCaused by:\n    No such file or directory (os error 2)\n\nStack backtrace:\n   0: foo\n";
        assert_eq!(
            clean_error(t),
            "cannot exec \"/x\": no such file or directory"
        );
        assert_eq!(clean_error("Error: boom"), "boom");
        assert_eq!(
            clean_error("Error: a\n\nCaused by:\n    0: b\n    1: Permission denied (os error 13)"),
            "a: b: permission denied"
        );
    }
}
