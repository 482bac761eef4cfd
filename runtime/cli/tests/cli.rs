//! The `lookout` CLI against a real `lookoutd`: import busybox, run
//! containers, read their logs, list, inspect, stats, stop, remove.
//!
//! Needs root (containers), a built daemon (`cargo build -p lookoutd`; or
//! `LOOKOUTD=/path/to/lookoutd`) and `build/rootfs/busybox.tar`. Each test
//! starts its own daemon on a temporary socket and data root.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A `lookoutd` of our own, killed (and its data root removed) on drop.
struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    host: String,
    /// The cgroup parent's name (one per daemon: tests run in parallel).
    cgroup_parent: String,
}

static DAEMONS: AtomicUsize = AtomicUsize::new(0);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn lookoutd_path() -> PathBuf {
    if let Some(p) = std::env::var_os("LOOKOUTD") {
        return PathBuf::from(p);
    }
    // Next to our own binary in the shared target dir.
    let cli = PathBuf::from(env!("CARGO_BIN_EXE_lookout"));
    let p = cli.with_file_name("lookoutd");
    assert!(
        p.exists(),
        "{} does not exist: build it with `cargo build -p lookoutd` or set LOOKOUTD",
        p.display()
    );
    p
}

/// Whether the daemon at `sock` answers `GET /_ping` with `OK`.
fn pings(sock: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: lookout\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.starts_with("HTTP/1.1 200") && resp.ends_with("OK")
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let sock = dir.path().join("lookout.sock");
        let root = dir.path().join("root");
        let cgroup_parent = format!(
            "lookout-test-{}-{}",
            std::process::id(),
            DAEMONS.fetch_add(1, Ordering::Relaxed)
        );
        let log = std::fs::File::create(dir.path().join("lookoutd.log")).expect("log file");
        let child = Command::new(lookoutd_path())
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("--data-root")
            .arg(&root)
            .arg("--cgroup-parent")
            .arg(format!("/{cgroup_parent}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("starting lookoutd");
        let host = format!("unix://{}", sock.display());
        let mut d = Daemon {
            child,
            dir,
            host,
            cgroup_parent,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !pings(&sock) {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("lookoutd exited ({status}):\n{}", d.log());
            }
            assert!(
                Instant::now() < deadline,
                "lookoutd did not answer /_ping on {} within 15 s:\n{}",
                d.host,
                d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("lookoutd.log")).unwrap_or_default()
    }

    /// Runs `lookout -H <ours> args…`.
    fn lookout(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_lookout"))
            .arg("-H")
            .arg(&self.host)
            .args(args)
            .env_remove("LOOKOUT_HOST")
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .output()
            .expect("running lookout");
        eprintln!(
            "$ lookout {}\n-> {:?}\nstdout: {}\nstderr: {}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs `lookout args…`, asserts success, returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.lookout(args);
        assert!(
            out.status.success(),
            "lookout {} failed ({:?}): {}\ndaemon log:\n{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Imports busybox as `bb:1`.
    fn import_busybox(&self) {
        let tar = workspace_root().join("build/rootfs/busybox.tar");
        assert!(tar.exists(), "{} is missing", tar.display());
        let out = self.ok(&["import", tar.to_str().unwrap(), "bb:1"]);
        assert!(out.trim().starts_with("sha256:"), "import printed {out:?}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Containers outlive lookoutd (their shims keep them): remove what a
        // failed test left behind before stopping the daemon.
        let lookout = env!("CARGO_BIN_EXE_lookout");
        if let Ok(out) = Command::new(lookout)
            .args(["-H", &self.host, "ps", "-a", "-q", "--no-trunc"])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new(lookout)
                    .args(["-H", &self.host, "rm", "-f", id])
                    .output();
            }
        }
        // SIGTERM (a clean shutdown), SIGKILL after 5 s.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on the pid of our own child, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The test's cgroup parent, if the daemon left it (empty) behind.
        let parent = &self.cgroup_parent;
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(parent));
            for e in entries.flatten() {
                let _ = std::fs::remove_dir(e.path().join(parent));
            }
        }
    }
}

#[test]
fn run_keeps_streams_apart_and_exits_with_the_code() {
    let d = Daemon::start();
    d.import_busybox();
    let out = d.lookout(&[
        "run",
        "--rm",
        "bb:1",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "daemon log:\n{}", d.log());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    // --rm: nothing left behind.
    let ids = d.ok(&["ps", "-a", "-q"]);
    assert_eq!(ids.trim(), "", "containers left: {ids}");
}

#[test]
fn run_failures_exit_like_docker() {
    let d = Daemon::start();
    let out = d.lookout(&["run", "--rm", "nosuch:1", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Error response from daemon:"), "{err}");
}

#[test]
fn detached_container_lifecycle() {
    let d = Daemon::start();
    d.import_busybox();
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "loop",
        "-m",
        "32m",
        "bb:1",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.2; done",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "run -d printed {id:?}");

    // logs --tail 1: exactly one line, once some output exists.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = d.ok(&["logs", "--tail", "1", "loop"]);
        if !out.is_empty() {
            assert_eq!(out.lines().count(), 1, "{out:?}");
            assert!(out.starts_with("line "), "{out:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no logs after 10 s");
        std::thread::sleep(Duration::from_millis(200));
    }

    let ps = d.ok(&["ps", "-a"]);
    let mut lines = ps.lines();
    assert!(
        lines.next().unwrap().starts_with("CONTAINER ID   IMAGE"),
        "{ps}"
    );
    let row = lines.next().expect("a row");
    assert!(row.starts_with(&id[..12]), "{ps}");
    assert!(row.contains("Up "), "{ps}");
    assert!(row.trim_end().ends_with("loop"), "{ps}");

    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", "loop"]),
        "true\n"
    );
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Name}} {{.HostConfig.Memory}}", "loop"]),
        "/loop 33554432\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&d.ok(&["inspect", "loop"])).expect("inspect prints JSON");
    assert_eq!(json[0]["Id"], id.as_str());

    let stats = d.ok(&["stats", "--no-stream", "loop"]);
    let mut lines = stats.lines();
    assert!(
        lines.next().unwrap().starts_with("CONTAINER ID   NAME"),
        "{stats}"
    );
    let row = lines.next().expect("a stats row");
    assert!(
        row.starts_with(&id[..12]) && row.contains(" loop "),
        "{stats}"
    );
    assert!(row.contains(" / 32MiB"), "memory limit in {stats}");

    assert_eq!(d.ok(&["stop", "-t", "1", "loop"]), "loop\n");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", "loop"]),
        "false\n"
    );
    assert!(d.ok(&["ps", "-a"]).contains("Exited ("));
    assert_eq!(d.ok(&["rm", "-f", "loop"]), "loop\n");
    assert_eq!(d.ok(&["ps", "-a", "-q"]).trim(), "");

    let rmi = d.ok(&["rmi", "bb:1"]);
    assert!(rmi.contains("Untagged: bb:1"), "{rmi}");
    assert_eq!(d.ok(&["images", "-q"]).trim(), "");
}

#[test]
fn wait_logs_streams_and_kill() {
    let d = Daemon::start();
    d.import_busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "seven",
        "bb:1",
        "sh",
        "-c",
        "echo to-out; echo to-err >&2; exit 7",
    ]);
    assert_eq!(d.ok(&["wait", "seven"]), "7\n");
    let out = d.lookout(&["logs", "seven"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "to-out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-err\n");
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.ExitCode}} {{json .Config.Cmd}}",
            "seven"
        ]),
        "7 [\"sh\",\"-c\",\"echo to-out; echo to-err >&2; exit 7\"]\n"
    );

    d.ok(&["run", "-d", "--name", "sleeper", "bb:1", "sleep", "60"]);
    assert_eq!(d.ok(&["kill", "-s", "KILL", "sleeper"]), "sleeper\n");
    assert_eq!(d.ok(&["wait", "sleeper"]), "137\n");

    let out = d.lookout(&["rm", "seven", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "seven\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("Error response from daemon: "),
        "{out:?}"
    );
    d.ok(&["rm", "sleeper"]);
}
