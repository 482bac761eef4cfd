//! Test harness: a real lookoutd (the cargo-built binary) with its own data
//! root, socket and cgroup parent, the real `docker` CLI pointed at it, raw
//! HTTP over the socket, and a comparison of JSON key sets with dockerd's
//! recorded answers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

static N: AtomicUsize = AtomicUsize::new(0);

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// dockerd's recorded answers.
pub fn sample(name: &str) -> Value {
    let candidates = [repo_root()
        .join("tests/fixtures/docker-api-samples")
        .join(name)];
    for p in &candidates {
        if let Ok(b) = std::fs::read(p) {
            return serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
    }
    panic!("sample {name} not found in {candidates:?}");
}

/// The busybox rootfs tarball.
pub fn busybox_tar() -> PathBuf {
    let p = repo_root().join("build/rootfs/busybox.tar");
    assert!(
        p.is_file(),
        "{} is missing: run scripts/build-rootfs.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

/// Fails with a clear message when the shim was not built next to lookoutd.
pub fn require_shim() {
    let bin = Path::new(env!("CARGO_BIN_EXE_lookoutd"));
    let shim = bin.with_file_name("lookout-shim");
    assert!(
        shim.is_file(),
        "{} is missing: build the workspace first (cargo build --workspace, as scripts/test.sh does)",
        shim.display()
    );
}

/// A running lookoutd.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub data_root: PathBuf,
    pub cgroup_parent: String,
    child: Option<Child>,
}

impl Daemon {
    /// Starts a daemon with `extra` flags added.
    pub fn start(extra: &[&str]) -> Daemon {
        Self::try_start(extra, "{}").unwrap_or_else(|e| panic!("{e}"))
    }

    /// The command line of a daemon in `dir` (its daemon.json is
    /// `dir/daemon.json`).
    pub fn command(dir: &Path, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lookoutd"));
        cmd.arg("--config-file").arg(dir.join("daemon.json"));
        if !extra.iter().any(|a| *a == "-H" || a.starts_with("--host")) {
            cmd.arg("-H")
                .arg(format!("unix://{}", dir.join("d.sock").display()));
        }
        if !extra.iter().any(|a| a.starts_with("--data-root")) {
            cmd.arg("--data-root").arg(dir.join("data"));
        }
        cmd.args(extra);
        cmd
    }

    /// Starts a daemon whose daemon.json holds `config`; the error holds its
    /// output when it did not come up.
    pub fn try_start(extra: &[&str], config: &str) -> Result<Daemon, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("daemon.json"), config).expect("daemon.json");
        let n = N.fetch_add(1, Ordering::SeqCst);
        let cgroup_parent = format!("/lookout-test-{}-{n}", std::process::id());
        let log = std::fs::File::create(dir.path().join("daemon.log")).expect("log");
        let mut cmd = Self::command(dir.path(), extra);
        // An explicit --config-file among `extra` wins (clap takes the last).
        cmd.arg("--cgroup-parent").arg(&cgroup_parent);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawning lookoutd");
        let mut d = Daemon {
            sock: dir.path().join("d.sock"),
            data_root: dir.path().join("data"),
            dir,
            cgroup_parent,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if d.sock.exists() && UnixStream::connect(&d.sock).is_ok() {
                return Ok(d);
            }
            if let Some(c) = d.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                d.child = None;
                return Err(format!("lookoutd exited ({st}): {}", d.log()));
            }
            if Instant::now() > deadline {
                return Err(format!("lookoutd did not come up: {}", d.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// `unix://…` of the socket.
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// Runs the docker CLI against the daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        // SIGKILL: an attached docker run forwards SIGTERM to its container
        // instead of exiting.
        Command::new("timeout")
            .args(["-s", "KILL", "60"])
            .arg("docker")
            .arg("-H")
            .arg(self.host())
            .args(args)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .stdin(Stdio::null())
            .output()
            .expect("running docker (is the docker CLI installed?)")
    }

    /// Runs the docker CLI and returns its stdout; panics with both outputs
    /// when it fails.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({}):\nstdout: {}\nstderr: {}\ndaemon log:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// One HTTP request over the socket: (status, headers, body).
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        raw_request(&self.sock, method, path, &[], body)
    }

    /// A request whose JSON answer is decoded.
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let b = body.map(|v| serde_json::to_vec(v).unwrap());
        let (st, _, out) = raw_request(
            &self.sock,
            method,
            path,
            &[("Content-Type", "application/json")],
            b.as_deref(),
        );
        let v = if out.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&out).unwrap_or_else(|e| {
                panic!(
                    "{method} {path}: not JSON ({e}): {}",
                    String::from_utf8_lossy(&out)
                )
            })
        };
        (st, v)
    }

    /// Imports the busybox rootfs as `tag`.
    pub fn import_busybox(&self, tag: &str) -> String {
        let tar = busybox_tar();
        self.docker_ok(&["import", tar.to_str().unwrap(), tag])
            .trim()
            .to_string()
    }

    /// Stops the daemon (SIGTERM, then SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts the daemon on the same data root and socket.
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .expect("log");
        let child = Self::command(self.dir.path(), &[])
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawning lookoutd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !(self.sock.exists() && UnixStream::connect(&self.sock).is_ok()) {
            assert!(
                Instant::now() < deadline,
                "lookoutd did not come back: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn remove_all_containers(&self) {
        if self.child.is_none() {
            return;
        }
        let (st, v) = self.api("GET", "/containers/json?all=1", None);
        if st != 200 {
            return;
        }
        for c in v.as_array().cloned().unwrap_or_default() {
            if let Some(id) = c["Id"].as_str() {
                let _ = self.raw("DELETE", &format!("/containers/{id}?force=1"), None);
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.remove_all_containers();
        self.stop();
        // Remove the test's cgroup parent in every hierarchy (empty by now).
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let p = e.path().join(self.cgroup_parent.trim_start_matches('/'));
                if p.is_dir() {
                    let _ = std::fs::remove_dir(&p);
                }
            }
        }
    }
}

/// A raw HTTP/1.1 request on a unix socket.
pub fn raw_request(
    sock: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = UnixStream::connect(sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: lookout\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    if let Some(b) = body {
        // The server may answer (413) before reading everything.
        let _ = s.write_all(b);
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse_response(&out)
}

fn parse_response(out: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(out)));
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = out[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(i) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[i + 2 + n + 2..];
    }
}

/// Header lookup, case-insensitive.
pub fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Every key of `expected` (recursively: objects, and the first element of
/// arrays of objects) must be in `actual`. Paths listed in `data_maps` hold
/// maps whose keys are data (labels, runtimes…), not schema: only their
/// presence is checked. Returns the missing paths.
pub fn missing_keys(expected: &Value, actual: &Value, data_maps: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    walk(expected, actual, "", data_maps, &mut out);
    out
}

fn walk(e: &Value, a: &Value, path: &str, data_maps: &[&str], out: &mut Vec<String>) {
    match (e, a) {
        (Value::Object(eo), Value::Object(ao)) => {
            if data_maps.contains(&path) {
                return;
            }
            for (k, ev) in eo {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match ao.get(k) {
                    None => out.push(p),
                    Some(av) => walk(ev, av, &p, data_maps, out),
                }
            }
        }
        (Value::Array(ea), Value::Array(aa)) => {
            if let (Some(e0), Some(a0)) = (ea.first(), aa.first()) {
                walk(e0, a0, &format!("{path}[]"), data_maps, out);
            }
        }
        _ => {}
    }
}

/// Polls `f` until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
