//! Containers through the real docker CLI: run, logs, ps, inspect, stats,
//! stop, kill, rm, wait, --rm, exit codes, attach, and live restore.

mod common;

use std::time::Duration;

use common::{Daemon, missing_keys, require_shim, sample, wait_until};
use serde_json::Value;

const IMG: &str = "lookout-busybox:latest";

fn daemon() -> Daemon {
    require_shim();
    let d = Daemon::start(&[]);
    d.import_busybox(IMG);
    d
}

fn inspect(d: &Daemon, name: &str) -> Value {
    let (st, v) = d.api("GET", &format!("/containers/{name}/json"), None);
    assert_eq!(st, 200, "{v}");
    v
}

#[test]
fn detached_run_logs_ps_inspect_stop() {
    let d = daemon();
    let id = d
        .docker_ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--label",
            "team=obs",
            "--log-driver=json-file",
            "--log-opt",
            "max-size=1m",
            "--log-opt",
            "labels=team",
            "-m",
            "64m",
            IMG,
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done; sleep 300",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert!(wait_until(Duration::from_secs(10), || {
        d.docker_ok(&["logs", "web"]).contains("out5")
    }));

    // logs: stdout and stderr apart, --tail, -t, --since.
    let o = d.docker(&["logs", "web"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "out1\nout2\nout3\nout4\nout5\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "err1\nerr2\nerr3\nerr4\nerr5\n"
    );
    let o = d.docker(&["logs", "--tail", "2", "web"]);
    let both = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(both.lines().count(), 2, "{both}");
    let o = d.docker_ok(&["logs", "-t", "web"]);
    let first = o.lines().next().unwrap();
    let (ts, rest) = first.split_once(' ').unwrap();
    assert_eq!(rest, "out1");
    assert!(
        ts.ends_with('Z') && ts.len() == "2026-11-27T20:42:40.123456789Z".len(),
        "{ts}"
    );
    let o = d.docker_ok(&["logs", "--details", "web"]);
    assert_eq!(o.lines().next(), Some("team=obs out1"), "{o}");
    let o = d.docker_ok(&["logs", "--since", "2000-01-01T00:00:00Z", "web"]);
    assert!(o.contains("out1"));
    let o = d.docker_ok(&["logs", "--since", "2100-01-01T00:00:00Z", "web"]);
    assert!(o.is_empty(), "{o}");

    // ps and inspect.
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("web Up"), "{ps}");
    assert_eq!(
        d.docker_ok(&["inspect", "--format", "{{ .State.Running }}", "web"])
            .trim(),
        "true"
    );
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "--format",
            "[{{ .NetworkSettings.IPAddress }}]",
            "web"
        ])
        .trim(),
        "[]"
    );
    let v = inspect(&d, "web");
    let miss = missing_keys(
        &sample("containers_sample_json.json"),
        &v,
        &[
            "NetworkSettings.Networks",
            "Config.Labels",
            "HostConfig.LogConfig.Config",
            "GraphDriver.Data",
        ],
    );
    // Keys dockerd has for features lookout does not run (exec, resolv.conf…)
    // are present too; ExecIDs is null.
    assert!(miss.is_empty(), "inspect misses {miss:?}");
    assert_eq!(v["Name"], "/web");
    assert_eq!(v["Config"]["Labels"]["team"], "obs");
    assert_eq!(v["HostConfig"]["Memory"], 64 << 20);
    assert_eq!(v["HostConfig"]["LogConfig"]["Type"], "json-file");
    assert_eq!(v["HostConfig"]["LogConfig"]["Config"]["max-size"], "1m");
    assert_eq!(v["HostConfig"]["LogConfig"]["Config"]["labels"], "team");
    assert!(v["State"]["Pid"].as_i64().unwrap() > 0);
    assert!(
        v["LogPath"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{id}-json.log"))
    );
    assert!(std::path::Path::new(v["LogPath"].as_str().unwrap()).is_file());

    // The list has dockerd's keys; filters work.
    let (_, list) = d.api("GET", "/containers/json?all=1&size=1", None);
    let miss = missing_keys(
        &sample("containers_json_all_1_size_1.json"),
        &list,
        &["[].Labels", "[].NetworkSettings.Networks"],
    );
    assert!(miss.is_empty(), "list misses {miss:?}: {list}");
    let out = d.docker_ok(&["ps", "-q", "--filter", "label=team=obs"]);
    assert_eq!(out.trim(), &id[..12]);
    let out = d.docker_ok(&["ps", "-q", "--filter", "label=team=nope"]);
    assert!(out.trim().is_empty());
    let out = d.docker_ok(&["ps", "-aq", "--filter", "status=exited"]);
    assert!(out.trim().is_empty());

    // Prefix lookup.
    assert_eq!(
        d.docker_ok(&["inspect", "--format", "{{.Name}}", &id[..8]])
            .trim(),
        "/web"
    );

    // stats --no-stream shows CPU %, MEM USAGE / LIMIT (64 MiB), PIDS.
    let out = d.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}",
        "web",
    ]);
    let f: Vec<&str> = out.trim().split('|').collect();
    assert_eq!(f[0], "web", "{out}");
    assert!(f[1].ends_with('%'), "{out}");
    assert!(f[2].ends_with("/ 64MiB"), "{out}");
    assert!(f[3].parse::<u32>().unwrap() >= 1, "{out}");
    let (st, s) = d.api("GET", "/containers/web/stats?stream=false", None);
    assert_eq!(st, 200);
    let miss = missing_keys(
        &sample("containers_sample_stats_stream_false.json"),
        &s,
        &["memory_stats.stats"],
    );
    assert!(miss.is_empty(), "stats miss {miss:?}: {s}");
    assert!(s["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert!(s["precpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert_eq!(s["memory_stats"]["limit"], 64 << 20);

    // top lists the container's processes.
    let out = d.docker_ok(&["top", "web"]);
    assert!(out.contains("sleep 300"), "{out}");
    let (st, t) = d.api("GET", "/containers/web/top", None);
    assert_eq!(st, 200);
    let miss = missing_keys(&sample("containers_sample_top.json"), &t, &[]);
    assert!(miss.is_empty(), "top misses {miss:?}: {t}");

    // Name conflict.
    let o = d.docker(&["create", "--name", "web", IMG, "true"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "Conflict. The container name \"/web\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
        )),
        "{err}"
    );
    // rm of a running container without -f: 409.
    let (st, v) = d.api("DELETE", "/containers/web", None);
    assert_eq!(st, 409, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("container is running"),
        "{v}"
    );

    // stop -t 1: SIGTERM is ignored by sh as PID 1, so SIGKILL after 1 s.
    let t0 = std::time::Instant::now();
    d.docker_ok(&["stop", "-t", "1", "web"]);
    assert!(t0.elapsed() < Duration::from_secs(8));
    let v = inspect(&d, "web");
    assert_eq!(v["State"]["Running"], false);
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 137);
    assert_ne!(v["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    // Logs survive the exit.
    assert!(d.docker_ok(&["logs", "web"]).contains("out5"));
    let out = d.docker_ok(&["ps", "-aq", "--filter", "status=exited"]);
    assert_eq!(out.trim(), &id[..12]);
    d.docker_ok(&["rm", "web"]);
    let o = d.docker(&["inspect", "web"]);
    assert!(!o.status.success());
}

#[test]
fn exit_codes_attach_wait_and_rm() {
    let d = daemon();
    // Exit code of an attached run.
    let o = d.docker(&["run", "--name", "three", IMG, "sh", "-c", "exit 3"]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "--format",
            "{{.State.ExitCode}} {{.State.Status}}",
            "three"
        ])
        .trim(),
        "3 exited"
    );
    // A --rm container that cannot start: Docker's 127, and it is removed
    // (docker run --rm waits for the removal).
    let o = d.docker(&["run", "--rm", "--name", "nocmd", IMG, "nosuchcmd"]);
    assert_eq!(
        o.status.code(),
        Some(127),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("nosuchcmd"));
    assert!(!d.docker(&["inspect", "nocmd"]).status.success());
    // stdout and stderr stay apart through attach.
    let o = d.docker(&[
        "run",
        "--name",
        "streams",
        IMG,
        "sh",
        "-c",
        "echo to-out; echo to-err >&2; echo more-out",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "to-out\nmore-out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "to-err\n");
    // --rm: gone afterwards, its output shown, logs included in the removal.
    let o = d.docker(&["run", "--rm", "--name", "gone", IMG, "echo", "bye"]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "bye\n");
    assert!(wait_until(Duration::from_secs(10), || !d
        .docker(&["inspect", "gone"])
        .status
        .success()));
    // -d --rm: removed after the exit.
    d.docker_ok(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "gone2",
        IMG,
        "sh",
        "-c",
        "sleep 0.3",
    ]);
    assert!(wait_until(Duration::from_secs(10), || !d
        .docker(&["inspect", "gone2"])
        .status
        .success()));
    // wait returns the exit code.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "wt",
        IMG,
        "sh",
        "-c",
        "sleep 1; exit 7",
    ]);
    let out = d.docker_ok(&["wait", "wt"]);
    assert_eq!(out.trim(), "7");
    // kill with a signal name and a number; kill of a stopped container: 409.
    d.docker_ok(&["run", "-d", "--name", "kk", IMG, "sleep", "300"]);
    d.docker_ok(&["kill", "--signal", "SIGKILL", "kk"]);
    assert_eq!(d.docker_ok(&["wait", "kk"]).trim(), "137");
    let (st, v) = d.api("POST", "/containers/kk/kill", None);
    assert_eq!(st, 409, "{v}");
    d.docker_ok(&["run", "-d", "--name", "k2", IMG, "sleep", "300"]);
    d.docker_ok(&["kill", "-s", "9", "k2"]);
    assert_eq!(d.docker_ok(&["wait", "k2"]).trim(), "137");
    let (st, v) = d.api("POST", "/containers/k2/kill?signal=NOPE", None);
    assert_eq!(st, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("NOPE"), "{v}");
    // rm -f of a running container.
    d.docker_ok(&["run", "-d", "--name", "fl", IMG, "sleep", "300"]);
    d.docker_ok(&["rm", "-f", "ff"]);
    assert!(!d.docker(&["inspect", "ff"]).status.success());
    // A command that does not exist: error, container stays created.
    let o = d.docker(&["run", "--name", "bad", IMG, "/no/such/binary"]);
    assert!(!o.status.success());
    assert_eq!(
        o.status.code(),
        Some(127),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = inspect(&d, "bad");
    assert_eq!(v["State"]["Status"], "created");
    assert!(!v["State"]["Error"].as_str().unwrap().is_empty());
    // Two containers at once with a template.
    d.docker_ok(&["run", "-d", "--name", "a1", IMG, "sleep", "300"]);
    d.docker_ok(&["run", "-d", "--name", "a2", IMG, "sleep", "300"]);
    let out = d.docker_ok(&[
        "inspect",
        "--format",
        "{{.Name}} {{.State.Running}}",
        "a1",
        "a2",
    ]);
    assert_eq!(out, "/a1 true\n/a2 true\n");
    // The events of all this, through the CLI.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let out = d.docker_ok(&[
        "events",
        "--since",
        "1",
        "--until",
        &now.to_string(),
        "--filter",
        "container=three",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    for want in ["create", "attach", "start", "die"] {
        assert!(
            out.lines().any(|l| l == format!("container {want} three")),
            "no {want} event in {out}"
        );
    }
    let (_, _, body) = d.raw(
        "GET",
        &format!("/events?since=1&until={now}&filters=%7B%22type%22%3A%5B%22image%22%5D%7D"),
        None,
    );
    let text = String::from_utf8_lossy(&body);
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["Type"], "image", "{text}");
    assert_eq!(first["Action"], "import", "{text}");
    let line = out.lines().next().unwrap();
    assert!(line.starts_with("container create"), "{out}");

    // Random names are adjective_surname.
    let id = d.docker_ok(&["create", IMG, "true"]);
    let name = d.docker_ok(&["inspect", "--format", "{{.Name}}", id.trim()]);
    let n = name.trim().trim_start_matches('/');
    assert!(
        n.contains('_')
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()),
        "{n}"
    );
}

#[test]
fn follow_logs_end_with_the_container() {
    let d = daemon();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "fl",
        IMG,
        "sh",
        "-c",
        "for i in 1 2 3; do echo line$i; sleep 0.3; done",
    ]);
    let t0 = std::time::Instant::now();
    let out = d.docker_ok(&["logs", "-f", "fl"]);
    assert_eq!(out, "line1\nline2\nline3\n");
    assert!(t0.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_dead_shim_is_noticed_and_the_daemon_keeps_serving() {
    let d = daemon();
    d.docker_ok(&["run", "-d", "--name", "sh1", IMG, "sleep", "300"]);
    let id = d.docker_ok(&["inspect", "--format", "{{.Id}}", "sh1"]);
    let dir = d.data_root.join("containers").join(id.trim());
    let pid: i32 = std::fs::read_to_string(dir.join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(15), || {
        d.docker_ok(&["inspect", "--format", "{{.State.Running}}", "sh1"])
            .trim()
            == "false"
    }));
    let v = inspect(&d, "sh1");
    assert!(!v["State"]["Error"].as_str().unwrap().is_empty(), "{v}");
    d.docker_ok(&["version"]);
    d.docker_ok(&["rm", "-f", "sh1"]);
}

#[test]
fn live_restore_readopts_running_containers() {
    let d0 = daemon();
    let mut d = d0;
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "keep",
        IMG,
        "sh",
        "-c",
        "echo before; sleep 300",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "short",
        IMG,
        "sh",
        "-c",
        "sleep 1; exit 4",
    ]);
    d.stop();
    // While the daemon is down, "short" exits.
    std::thread::sleep(Duration::from_secs(2));
    d.restart();
    assert_eq!(
        d.docker_ok(&["inspect", "--format", "{{.State.Running}}", "keep"])
            .trim(),
        "true"
    );
    assert!(wait_until(Duration::from_secs(10), || {
        d.docker_ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            "short",
        ])
        .trim()
            == "exited 4"
    }));
    assert!(d.docker_ok(&["logs", "keep"]).contains("before"));
    // The re-adopted container can still be stopped.
    d.docker_ok(&["stop", "-t", "1", "keep"]);
    assert_eq!(
        d.docker_ok(&["inspect", "--format", "{{.State.Running}}", "keep"])
            .trim(),
        "false"
    );
}

#[test]
fn restart_policies() {
    let d = daemon();
    // on-failure:2: two restarts, then it stays exited.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        IMG,
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    assert!(wait_until(Duration::from_secs(20), || {
        d.docker_ok(&[
            "inspect",
            "--format",
            "{{.RestartCount}} {{.State.Status}}",
            "flaky",
        ])
        .trim()
            == "2 exited"
    }));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "--format",
            "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}",
            "flaky"
        ])
        .trim(),
        "2 exited 1"
    );
    assert_eq!(d.docker_ok(&["logs", "flaky"]), "run\nrun\nrun\n");
    // always: restarts after a clean exit too, until stopped.
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "loop",
        "--restart",
        "always",
        IMG,
        "sh",
        "-c",
        "sleep 0.2",
    ]);
    assert!(wait_until(Duration::from_secs(20), || {
        d.docker_ok(&["inspect", "--format", "{{.RestartCount}}", "loop"])
            .trim()
            .parse::<u32>()
            .unwrap_or(0)
            >= 2
    }));
    d.docker_ok(&["stop", "-t", "1", "loop"]);
    let n1 = d.docker_ok(&[
        "inspect",
        "--format",
        "{{.RestartCount}} {{.State.Running}}",
        "loop",
    ]);
    std::thread::sleep(Duration::from_secs(1));
    let n2 = d.docker_ok(&[
        "inspect",
        "--format",
        "{{.RestartCount}} {{.State.Running}}",
        "loop",
    ]);
    assert_eq!(n1, n2);
    assert!(n2.trim().ends_with("false"), "{n2}");
    // --rm and a restart policy do not go together.
    let o = d.docker(&["create", "--rm", "--restart", "always", IMG, "true"]);
    assert!(!o.status.success());
    d.docker_ok(&["rm", "-f", "flaky", "loop"]);
}
