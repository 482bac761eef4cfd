//! The shim end to end (root, real kernel, the busybox root): the daemonless
//! run, the detached start, the control socket, attach, logging guarantees
//! and bad input.

mod common;

use common::*;
use lookout_core::shim_proto::{self, Request, Response};
use lookout_core::spec::{self, ContainerSpec, ExitRecord, LogDriverSpec, ProcessSpec};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn write_spec(w: &World, id: &str, args: &[&str]) -> PathBuf {
    let dir = w.root().join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let s = ContainerSpec {
        id: id.to_string(),
        rootfs: rootfs(),
        process: ProcessSpec {
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
        cgroup_path: Some(format!("{}/{id}", w.cgroup_parent)),
        log_drivers: vec![LogDriverSpec {
            driver: "json-file".into(),
            opts: vec![],
        }],
        log_dir: dir.clone(),
        ..Default::default()
    };
    std::fs::write(dir.join(spec::CONFIG_FILE), serde_json::to_vec(&s).unwrap()).unwrap();
    dir
}

fn start(dir: &Path) -> i32 {
    let o = Command::new(shim())
        .arg("start")
        .arg("--state-dir")
        .arg(dir)
        .arg("--plugin-dir")
        .arg(plugin_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "start failed: {}", stderr(&o));
    String::from_utf8(o.stdout).unwrap().trim().parse().unwrap()
}

fn wait_exit(dir: &Path) -> ExitRecord {
    shim_proto::wait_exit(dir, Some(Duration::from_secs(120))).unwrap()
}

fn json_lines(dir: &Path, id: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join(format!("{id}-json.log"))).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn daemonless_run_returns_the_exit_code_and_keeps_the_logs() {
    let w = World::new();
    let o = w.run("run1", &[], &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // The two streams are separate pipes: their relative order is not kept.
    let mut logs: Vec<String> = w.logs("run1", &[]).lines().map(String::from).collect();
    logs.sort();
    assert_eq!(logs, ["err", "out"]);
    let recs = json_lines(&w.root().join("run1"), "run1");
    let mut got: Vec<(String, String)> = recs
        .iter()
        .map(|r| {
            (
                r["stream"].as_str().unwrap().into(),
                r["log"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("stderr".to_string(), "err\n".to_string()),
            ("stdout".to_string(), "out\n".to_string())
        ]
    );
    let exit: ExitRecord = serde_json::from_slice(
        &std::fs::read(w.root().join("run1").join(spec::EXIT_FILE)).unwrap(),
    )
    .unwrap();
    assert_eq!(exit.exit_code, 3);
    assert!(exit.finished_unix_nano >= exit.started_unix_nano);
    assert!(
        w.leftover_cgroups().is_empty(),
        "{:?}",
        w.leftover_cgroups()
    );
}

#[test]
fn echo_hi_is_in_the_log_when_the_exit_is_reported() {
    let w = World::new();
    for i in 0..5 {
        let id = format!("hi{i}");
        let dir = write_spec(&w, &id, &["echo", "hi"]);
        start(&dir);
        let exit = wait_exit(&dir);
        assert_eq!(exit.exit_code, 0);
        // Read at once: the exit is reported only after the flush.
        let recs = json_lines(&dir, &id);
        assert_eq!(recs.len(), 1, "{recs:?}");
        assert_eq!(recs[0]["log"], "hi\n");
        assert!(dir.join(spec::EXIT_FILE).exists());
    }
}

#[test]
fn a_million_lines_survive_the_death_of_the_shims_parent() {
    let w = World::new();
    let id = "million";
    let dir = write_spec(
        &w,
        id,
        &["sh", "-c", "sleep 0.5; seq 1 1000000; echo done >&2"],
    );
    // The launcher stands for the daemon: it starts the shim, then dies by
    // SIGKILL while the container writes.
    let mut launcher = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} start --state-dir {} --plugin-dir {} >/dev/null; exec sleep 60",
            shim(),
            dir.display(),
            plugin_dir().display()
        ))
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || dir
        .join(spec::SHIM_PID_FILE)
        .exists()
        && dir.join(shim_proto::CONTROL_SOCKET).exists()));
    launcher.kill().unwrap();
    launcher.wait().unwrap();
    let exit = wait_exit(&dir);
    assert_eq!(exit.exit_code, 0, "{exit:?}");
    let text = std::fs::read_to_string(dir.join(format!("{id}-json.log"))).unwrap();
    let mut n = 0u64;
    let mut last_seq = 0u64;
    let mut done = false;
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let log = v["log"].as_str().unwrap();
        if v["stream"] == "stderr" {
            assert_eq!(log, "done\n");
            done = true;
            continue;
        }
        let x: u64 = log.trim_end().parse().unwrap();
        assert_eq!(x, last_seq + 1, "line {x} after {last_seq}");
        last_seq = x;
        n += 1;
    }
    assert_eq!(n, 1_000_000);
    assert!(done);
}

#[test]
fn control_socket_status_stats_and_signal() {
    let w = World::new();
    // A state dir far past the 108-byte socket path limit.
    let mut long = String::from("ctl");
    while long.len() < 150 {
        long.push_str("-long-container-id");
    }
    let dir = write_spec(&w, &long, &["sh", "-c", "echo ready; exec sleep 100"]);
    assert!(dir.as_os_str().len() > 108);
    let pid = start(&dir);
    let st = match shim_proto::call(&dir, &Request::Status, Some(Duration::from_secs(5))).unwrap() {
        Response::Status(s) => s,
        o => panic!("{o:?}"),
    };
    assert_eq!(st.state, "running");
    assert_eq!(st.pid, pid);
    let shim_pid: i32 = std::fs::read_to_string(dir.join(spec::SHIM_PID_FILE))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(st.shim_pid, shim_pid);
    assert!(wait_until(Duration::from_secs(5), || {
        matches!(
            shim_proto::call(&dir, &Request::Stats, Some(Duration::from_secs(5))).unwrap(),
            Response::Stats(s) if s.records == 1 && s.drivers.len() == 1 && s.drivers[0].name == "json-file" && s.drivers[0].delivered == 1
        )
    }));
    let bad = shim_proto::call(
        &dir,
        &Request::Signal {
            signal: 12345,
            all: false,
        },
        Some(Duration::from_secs(5)),
    )
    .unwrap();
    assert!(
        matches!(&bad, Response::Error { message } if message.contains("12345")),
        "{bad:?}"
    );
    let ok = shim_proto::call(
        &dir,
        &Request::Signal {
            signal: 9,
            all: false,
        },
        Some(Duration::from_secs(5)),
    )
    .unwrap();
    assert_eq!(ok, Response::Ok);
    let exit = wait_exit(&dir);
    assert_eq!(exit.exit_code, 137);
    assert_eq!(exit.signal, Some(9));
    // The shim goes away after answering.
    assert!(wait_until(Duration::from_secs(5), || {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(shim_pid), None).is_err()
    }));
    assert!(!dir.join(shim_proto::CONTROL_SOCKET).exists());
}

#[test]
fn attach_replays_early_output_and_keeps_streams_apart() {
    let w = World::new();
    let dir = write_spec(
        &w,
        "att",
        &[
            "sh",
            "-c",
            "echo early; sleep 0.5; echo late >&2; echo again",
        ],
    );
    start(&dir);
    std::thread::sleep(Duration::from_millis(200));
    let mut s = shim_proto::connect(&dir).unwrap();
    std::io::Write::write_all(&mut s, b"{\"op\":\"attach\",\"replay\":true}\n").unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let nl = all.iter().position(|&b| b == b'\n').unwrap();
    assert_eq!(&all[..nl], br#"{"result":"ok"}"#);
    let mut frames = Vec::new();
    let mut rest = &all[nl + 1..];
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[4..8].try_into().unwrap()) as usize;
        frames.push((
            rest[0],
            String::from_utf8(rest[8..8 + len].to_vec()).unwrap(),
        ));
        rest = &rest[8 + len..];
    }
    // Each stream keeps its order (the two pipes are not ordered together).
    let of = |id: u8| -> Vec<String> {
        frames
            .iter()
            .filter(|f| f.0 == id)
            .map(|f| f.1.clone())
            .collect()
    };
    assert_eq!(of(1), ["early\n", "again\n"]);
    assert_eq!(of(2), ["late\n"]);
    assert_eq!(frames.len(), 3);
    assert_eq!(wait_exit(&dir).exit_code, 0);
}

#[test]
fn bad_input_is_named_and_leaves_nothing() {
    let w = World::new();
    let cases: &[(&[&str], &[&str], &str)] = &[
        (&[], &["/no/such/program"], "/no/such/program"),
        (&["-u", "nosuchuser"], &["true"], "nosuchuser"),
        (&["-m", "12q"], &["true"], "12q"),
        (&["--cpus", "lots"], &["true"], "lots"),
        (&["--log-opt", "max-size=huge"], &["true"], "huge"),
        (&["--log-opt", "colour=blue"], &["true"], "colour"),
        (&["--log-driver", "nosuchdriver"], &["true"], "nosuchdriver"),
        (&["--ulimit", "nofile=abc"], &["true"], "abc"),
    ];
    for (i, (flags, cmd, needle)) in cases.iter().enumerate() {
        let id = format!("bad{i}");
        let o = w.run(&id, flags, cmd);
        assert!(!o.status.success(), "{flags:?} {cmd:?} succeeded");
        let e = stderr(&o);
        assert!(
            e.contains(needle),
            "error for {flags:?} {cmd:?} does not name {needle:?}: {e}"
        );
        assert!(!w.root().join(&id).exists(), "state left for {flags:?}");
        assert!(w.leftover_cgroups().is_empty(), "cgroup left for {flags:?}");
    }
    // A missing program is Docker's 127.
    assert_eq!(
        w.run("bad-x", &[], &["/no/such/program"]).status.code(),
        Some(127)
    );
    // A missing root.
    let o = Command::new(shim())
        .args(["run", "--rootfs", "/no/such/root", "--root"])
        .arg(w.root())
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/no/such/root"), "{}", stderr(&o));
    // An unwritable state root.
    let o = Command::new(shim())
        .arg("run")
        .arg("--rootfs")
        .arg(rootfs())
        .args(["--root", "/proc/lookout-state", "--", "true"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/proc/lookout-state"), "{}", stderr(&o));
    // A missing command.
    let o = Command::new(shim())
        .arg("run")
        .arg("--rootfs")
        .arg(rootfs())
        .output()
        .unwrap();
    assert!(!o.status.success());
    // A spec with an unknown field is refused by name.
    let dir = w.root().join("badspec");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(spec::CONFIG_FILE),
        r#"{"id":"badspec","rootfs":"/","process":{"args":["true"]},"memroy":1}"#,
    )
    .unwrap();
    let o = Command::new(shim())
        .arg("start")
        .arg("--state-dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("memroy"), "{}", stderr(&o));
}

#[test]
fn a_shared_root_is_not_modified_and_each_container_has_its_own_etc_files() {
    let w = World::new();
    let etc = rootfs().join("etc");
    let before: Vec<Option<Vec<u8>>> = ["hostname", "hosts", "resolv.conf"]
        .iter()
        .map(|f| std::fs::read(etc.join(f)).ok())
        .collect();
    let runs: Vec<_> = ["alpha", "beta"]
        .iter()
        .map(|h| {
            w.run_cmd(
                &format!("etc-{h}"),
                &["--hostname", h],
                &["sh", "-c", "sleep 0.3; cat /etc/hostname; hostname"],
            )
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    for mut r in runs {
        assert!(r.wait().unwrap().success());
    }
    for h in ["alpha", "beta"] {
        assert_eq!(w.logs(&format!("etc-{h}"), &[]), format!("{h}\n{h}\n"));
    }
    let after: Vec<Option<Vec<u8>>> = ["hostname", "hosts", "resolv.conf"]
        .iter()
        .map(|f| std::fs::read(etc.join(f)).ok())
        .collect();
    assert_eq!(before, after, "the shared root's /etc was modified");
}
