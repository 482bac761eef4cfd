//! The log pipeline driven by real processes writing to real pipes, with
//! real plugins loaded through the plugin host.

use lookout_abi::LK_STREAM_STDOUT;
use lookout_core::logs::pipeline::{Pipeline, PipelineReport};
use lookout_core::logs::setup::{self, DriverRequest};
use lookout_core::plugin::{ContainerInfo, PluginPath};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn meta(dir: &Path) -> ContainerInfo {
    ContainerInfo {
        id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
        name: "test".into(),
        log_dir: dir.to_string_lossy().into_owned(),
        ..Default::default()
    }
}

/// Starts `sh -c script` with its stdout on a pipe.
fn producer(script: &str) -> (Child, OwnedFd) {
    let mut c = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let out: OwnedFd = c.stdout.take().unwrap().into();
    (c, out)
}

fn run(
    reqs: &[DriverRequest],
    dir: &Path,
    script: &str,
) -> (PipelineReport, std::process::ExitStatus) {
    let (host, specs) = setup::open(&PluginPath::standard(None), reqs, &meta(dir)).unwrap();
    let p = Pipeline::start(specs, host.max_line_size).unwrap();
    let (mut child, fd) = producer(script);
    p.pump(vec![(fd, LK_STREAM_STDOUT)]).unwrap();
    let st = child.wait().unwrap();
    (p.close(), st)
}

fn expected_seq(n: usize) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

#[test]
fn every_line_reaches_every_driver_in_order() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    let b = d.path().join("b");
    let (rep, st) = run(
        &[
            DriverRequest::new("test-sink", &[("out", a.to_str().unwrap())]),
            DriverRequest::new("test-sink", &[("out", b.to_str().unwrap())]),
        ],
        d.path(),
        "seq 1 200000",
    );
    assert!(st.success());
    assert_eq!(rep.records, 200_000);
    let want = expected_seq(200_000);
    assert_eq!(std::fs::read_to_string(&a).unwrap(), want);
    assert_eq!(std::fs::read_to_string(&b).unwrap(), want);
    for dr in &rep.drivers {
        assert_eq!((dr.delivered, dr.dropped), (200_000, 0), "{dr:?}");
        assert!(dr.latency_ns[0] > 0 && dr.calls > 0);
    }
}

#[test]
fn output_without_final_newline_is_flushed_at_eof() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    let (rep, _) = run(
        &[DriverRequest::new(
            "test-sink",
            &[("out", a.to_str().unwrap())],
        )],
        d.path(),
        "printf 'one\\ntwo'",
    );
    assert_eq!(rep.records, 2);
    assert_eq!(std::fs::read(&a).unwrap(), b"one\ntwo");
}

fn wchan_or_stack(pid: u32) -> String {
    let w = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    let s = std::fs::read_to_string(format!("/proc/{pid}/stack")).unwrap_or_default();
    format!("{w}\n{s}")
}

/// Waits until `f` holds, up to `secs`.
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

#[test]
fn blocking_mode_stalls_the_writer_and_loses_nothing() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let release = d.path().join("release");
    let reqs = [DriverRequest::new(
        "test-sink",
        &[
            ("out", out.to_str().unwrap()),
            ("behavior", "stall"),
            ("release", release.to_str().unwrap()),
        ],
    )];
    let (host, specs) = setup::open(&PluginPath::standard(None), &reqs, &meta(d.path())).unwrap();
    let p = Pipeline::start(specs, host.max_line_size).unwrap();
    // seq writes through one process: it is the one that must block.
    let (mut child, fd) = producer("exec seq 1 2000000");
    let pid = child.id();
    std::thread::scope(|s| {
        let pump = s.spawn(|| p.pump(vec![(fd, LK_STREAM_STDOUT)]));
        // The queue (4 MiB) and the pipe fill; then seq sleeps in pipe_write.
        let blocked = wait_for(20, || wchan_or_stack(pid).contains("pipe_write"));
        assert!(
            blocked,
            "producer not blocked in pipe_write: {}",
            wchan_or_stack(pid)
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "producer finished while the driver stalled"
        );
        std::fs::write(&release, b"").unwrap();
        pump.join().unwrap().unwrap();
    });
    assert!(child.wait().unwrap().success());
    let rep = p.close();
    let dr = &rep.drivers[0];
    assert_eq!(
        (rep.records, dr.delivered, dr.dropped),
        (2_000_000, 2_000_000, 0)
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        expected_seq(2_000_000)
    );
}

#[test]
fn non_blocking_mode_keeps_the_writer_running_and_counts_every_drop() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let release = d.path().join("release");
    let reqs = [DriverRequest::new(
        "test-sink",
        &[
            ("mode", "non-blocking"),
            ("max-buffer-size", "64k"),
            ("out", out.to_str().unwrap()),
            ("behavior", "stall"),
            ("release", release.to_str().unwrap()),
        ],
    )];
    let (host, specs) = setup::open(&PluginPath::standard(None), &reqs, &meta(d.path())).unwrap();
    let p = Pipeline::start(specs, host.max_line_size).unwrap();
    let n = 1_000_000;
    let (mut child, fd) = producer(&format!("exec seq 1 {n}"));
    std::thread::scope(|s| {
        let pump = s.spawn(|| p.pump(vec![(fd, LK_STREAM_STDOUT)]));
        // The producer runs to completion while the plugin is stalled.
        let done = wait_for(60, || child.try_wait().unwrap().is_some());
        assert!(done, "producer blocked although the driver is non-blocking");
        assert!(!release.exists());
        pump.join().unwrap().unwrap();
        std::fs::write(&release, b"").unwrap();
    });
    let rep = p.close();
    let dr = &rep.drivers[0];
    assert_eq!(rep.records, n);
    assert!(dr.dropped > 0, "{dr:?}");
    assert_eq!(dr.delivered + dr.dropped, n, "{dr:?}");
    // What was delivered arrived whole and in order.
    let got = std::fs::read_to_string(&out).unwrap();
    assert_eq!(got.lines().count() as u64, dr.delivered);
    let mut last = 0u64;
    for l in got.lines() {
        let v: u64 = l.parse().unwrap();
        assert!(v > last);
        last = v;
    }
}

#[test]
fn a_panicking_driver_is_disabled_and_the_other_gets_every_line() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    let b = d.path().join("b");
    let n = 100_000;
    let (rep, st) = run(
        &[
            DriverRequest::new(
                "test-sink",
                &[
                    ("out", a.to_str().unwrap()),
                    ("behavior", "panic"),
                    ("panic-after", "1000"),
                ],
            ),
            DriverRequest::new("test-sink", &[("out", b.to_str().unwrap())]),
        ],
        d.path(),
        &format!("seq 1 {n}"),
    );
    assert!(st.success());
    let bad = &rep.drivers[0];
    let msg = bad.failure.as_deref().unwrap_or_default();
    assert!(msg.contains("test-sink: deliberate panic"), "{bad:?}");
    assert_eq!(bad.delivered + bad.dropped, n, "{bad:?}");
    assert!(bad.dropped > 0);
    let good = &rep.drivers[1];
    assert_eq!((good.delivered, good.dropped), (n, 0));
    assert_eq!(
        std::fs::read_to_string(&b).unwrap(),
        expected_seq(n as usize)
    );
}

#[test]
fn a_fatal_driver_is_disabled_with_its_message() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    let (rep, _) = run(
        &[DriverRequest::new(
            "test-sink",
            &[
                ("out", a.to_str().unwrap()),
                ("behavior", "fatal"),
                ("fail-after", "10"),
            ],
        )],
        d.path(),
        "seq 1 5000",
    );
    let dr = &rep.drivers[0];
    assert!(dr.failure.is_some(), "{dr:?}");
    assert_eq!(dr.delivered + dr.dropped, 5000);
}

#[test]
fn retry_is_retried_until_it_succeeds() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    let (rep, _) = run(
        &[DriverRequest::new(
            "test-sink",
            &[
                ("out", a.to_str().unwrap()),
                ("behavior", "retry"),
                ("retry-times", "3"),
            ],
        )],
        d.path(),
        "seq 1 1000",
    );
    let dr = &rep.drivers[0];
    assert_eq!(
        (dr.delivered, dr.dropped, dr.retries),
        (1000, 0, 3),
        "{dr:?}"
    );
    assert_eq!(std::fs::read_to_string(&a).unwrap(), expected_seq(1000));
}

#[test]
fn unknown_options_and_drivers_are_refused_before_anything_starts() {
    let path = PluginPath::standard(None);
    let e = setup::check(&path, &DriverRequest::new("json-file", &[("bogus", "1")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("bogus") && e.contains("json-file"), "{e}");
    let e = setup::check(&path, &DriverRequest::new("no-such-driver", &[]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no-such-driver") && e.contains("not found"),
        "{e}"
    );
    let e = setup::check(
        &path,
        &DriverRequest::new("json-file", &[("mode", "sometimes")]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("mode") && e.contains("sometimes"), "{e}");
}

#[test]
fn a_file_that_is_not_a_shared_object_is_refused_with_its_path() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("garbage.so");
    std::fs::write(&f, b"this is not ELF").unwrap();
    let e = setup::check(
        &PluginPath::new(vec![d.path().to_path_buf()]),
        &DriverRequest::new("garbage", &[]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(f.to_str().unwrap()) && e.contains("cannot load"),
        "{e}"
    );
}
