//! A full disk under the whole pipeline and the real json-file plugin: in
//! blocking mode the writer stalls, nothing is torn, and everything lands
//! once space returns; in non-blocking mode the writer runs on and every
//! record is either on disk or counted as dropped.
//!
//! Each test re-executes itself under `unshare --mount --propagation
//! private` and mounts a small tmpfs there, so the host's mount table is
//! never touched (needs root, as the whole suite does).

use lookout_abi::LK_STREAM_STDOUT;
use lookout_core::logs::pipeline::Pipeline;
use lookout_core::logs::setup::{self, DriverRequest};
use lookout_core::plugin::{ContainerInfo, PluginPath};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ENV: &str = "LOOKOUT_FULL_DISK_DIR";
const ID: &str = "f00df00df00df00df00df00df00df00df00df00df00df00df00df00df00df00d";
const LINES: u64 = 2_000_000;

fn reexec(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(ENV, dir.path())
        .status()
        .expect("run unshare");
    assert!(
        st.success(),
        "{name} in a private mount namespace failed: {st}"
    );
}

fn mount_tmpfs(dir: &Path, size: &str, remount: bool) {
    let opts = if remount {
        format!("remount,size={size}")
    } else {
        format!("size={size}")
    };
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &opts, "lookout-test"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success(), "mount tmpfs {opts}");
}

/// The `log` values of the json-file, in order; panics on a torn line.
fn logged(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(format!("{ID}-json.log"))).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "file ends in a torn record"
    );
    text.lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("torn record {l:?}: {e}"));
            v["log"].as_str().unwrap().to_string()
        })
        .collect()
}

fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

fn scenario(dir: &Path, opts: &[(&str, &str)], blocking: bool) {
    mount_tmpfs(dir, "256k", false);
    let meta = ContainerInfo {
        id: ID.into(),
        log_dir: dir.to_string_lossy().into_owned(),
        ..Default::default()
    };
    let (host, specs) = setup::open(
        &PluginPath::standard(None),
        &[DriverRequest::new("json-file", opts)],
        &meta,
    )
    .unwrap();
    let p = Pipeline::start(specs, host.max_line_size).unwrap();
    let mut child = Command::new("seq")
        .args(["1", &LINES.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let fd: OwnedFd = child.stdout.take().unwrap().into();
    std::thread::scope(|s| {
        let pump = s.spawn(|| p.pump(vec![(fd, LK_STREAM_STDOUT)]));
        // The disk fills: the driver answers RETRY.
        assert!(
            wait_for(30, || p.reports()[0].retries > 0),
            "the driver never hit the full disk"
        );
        if blocking {
            // The writer is held back while the disk is full.
            std::thread::sleep(Duration::from_millis(300));
            assert!(
                child.try_wait().unwrap().is_none(),
                "writer finished on a full disk"
            );
        } else {
            assert!(
                wait_for(30, || child.try_wait().unwrap().is_some()),
                "the writer blocked in non-blocking mode"
            );
        }
        // What is on disk so far is whole records.
        let before = logged(dir);
        assert!(!before.is_empty());
        // Space returns.
        mount_tmpfs(dir, "512m", true);
        pump.join().unwrap().unwrap();
    });
    assert!(child.wait().unwrap().success());
    let rep = p.close();
    let d = &rep.drivers[0];
    assert_eq!(rep.records, LINES);
    let got = logged(dir);
    if blocking {
        assert_eq!((d.delivered, d.dropped), (LINES, 0), "{d:?}");
        let want: Vec<String> = (1..=LINES).map(|i| format!("{i}\n")).collect();
        assert_eq!(got, want);
    } else {
        assert!(d.dropped > 0, "{d:?}");
        assert_eq!(d.delivered + d.dropped, LINES, "{d:?}");
        assert_eq!(got.len() as u64, d.delivered);
        // In order, no duplicates.
        let nums: Vec<u64> = got.iter().map(|l| l.trim_end().parse().unwrap()).collect();
        assert!(nums.windows(2).all(|w| w[0] < w[1]));
    }
}

#[test]
fn blocking_mode_stalls_on_a_full_disk_and_resumes() {
    match std::env::var(ENV) {
        Ok(dir) => scenario(Path::new(&dir), &[], true),
        Err(_) => reexec("blocking_mode_stalls_on_a_full_disk_and_resumes"),
    }
}

#[test]
fn non_blocking_mode_counts_drops_on_a_full_disk() {
    match std::env::var(ENV) {
        Ok(dir) => scenario(
            Path::new(&dir),
            &[("mode", "non-blocking"), ("max-buffer-size", "64k")],
            false,
        ),
        Err(_) => reexec("non_blocking_mode_counts_drops_on_a_full_disk"),
    }
}
