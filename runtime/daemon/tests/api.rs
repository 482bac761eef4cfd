//! The API without containers: system endpoints against dockerd's recorded
//! answers, version negotiation, errors, configuration, and images through
//! the real docker CLI.

mod common;

use common::{Daemon, header, missing_keys, sample};
use serde_json::{Value, json};

#[test]
fn ping_has_dockerds_headers() {
    let d = Daemon::start(&[]);
    for method in ["GET", "HEAD"] {
        let (st, h, body) = d.raw(method, "/_ping", None);
        assert_eq!(st, 200);
        if method == "GET" {
            assert_eq!(body, b"OK");
        }
        assert_eq!(header(&h, "Api-Version"), Some("1.47"));
        assert_eq!(header(&h, "Ostype"), Some("linux"));
        assert_eq!(header(&h, "Docker-Experimental"), Some("false"));
        assert_eq!(
            header(&h, "Cache-Control"),
            Some("no-cache, no-store, must-revalidate")
        );
        assert_eq!(header(&h, "Pragma"), Some("no-cache"));
        assert!(header(&h, "Builder-Version").is_some());
        assert!(header(&h, "Server").unwrap().starts_with("lookout/"));
        // Header names go out in the case dockerd uses.
        assert!(h.iter().any(|(k, _)| k == "Api-Version"), "{h:?}");
    }
    // Versioned path too.
    let (st, _, body) = d.raw("GET", "/v1.47/_ping", None);
    assert_eq!((st, body.as_slice()), (200, &b"OK"[..]));
}

#[test]
fn version_and_info_carry_every_key_of_dockerds() {
    let d = Daemon::start(&[]);
    let (st, v) = d.api("GET", "/version", None);
    assert_eq!(st, 200);
    let miss = missing_keys(&sample("version.json"), &v, &[]);
    assert!(miss.is_empty(), "version misses {miss:?}: {v}");
    assert_eq!(v["ApiVersion"], "1.47");
    assert_eq!(v["MinAPIVersion"], "1.24");
    let uname = std::process::Command::new("uname")
        .arg("-r")
        .output()
        .unwrap();
    assert_eq!(
        v["KernelVersion"].as_str().unwrap(),
        String::from_utf8_lossy(&uname.stdout).trim()
    );

    let (st, i) = d.api("GET", "/v1.47/info", None);
    assert_eq!(st, 200);
    let miss = missing_keys(
        &sample("info.json"),
        &i,
        &["Runtimes", "RegistryConfig.IndexConfigs"],
    );
    assert!(miss.is_empty(), "info misses {miss:?}: {i}");
    // Real values from this machine.
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    assert!(i["NCPU"].as_u64().unwrap() >= ncpu as u64);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = meminfo
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(i["MemTotal"].as_u64().unwrap(), kb * 1024);
    assert_eq!(
        i["DockerRootDir"].as_str().unwrap(),
        d.data_root.to_str().unwrap()
    );
    assert_eq!(i["Containers"], 0);
    assert_eq!(i["LoggingDriver"], "json-file");
    let logs: Vec<&str> = i["Plugins"]["Log"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if std::path::Path::new(env!("CARGO_BIN_EXE_lookoutd"))
        .with_file_name("liblookout_plugin_json_file.so")
        .is_file()
    {
        assert!(logs.contains(&"json-file"), "{logs:?}");
    }
    // The CLI reads it too.
    let out = d.docker_ok(&["info", "--format", "{{.NCPU}} {{.DockerRootDir}}"]);
    assert_eq!(
        out.trim(),
        format!("{} {}", i["NCPU"], d.data_root.display())
    );
}

#[test]
fn version_negotiation() {
    let d = Daemon::start(&[]);
    let (st, v) = d.api("GET", "/v1.24/version", None);
    assert_eq!(st, 200, "{v}");
    let (st, v) = d.api("GET", "/v1.12/version", None);
    assert_eq!(st, 400);
    assert_eq!(
        v["message"],
        "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
    );
    let (st, v) = d.api("GET", "/v1.99/version", None);
    assert_eq!(st, 400);
    assert!(v["message"].as_str().unwrap().contains("too new"), "{v}");
    // The CLI negotiates down to 1.47.
    let out = d.docker_ok(&[
        "version",
        "--format",
        "{{.Client.APIVersion}} {{.Server.APIVersion}}",
    ]);
    assert_eq!(out.trim(), "1.47 1.47");
}

#[test]
fn errors_are_dockerds() {
    let d = Daemon::start(&[]);
    let (st, v) = d.api("GET", "/containers/nosuch/json", None);
    assert_eq!(st, 404);
    assert_eq!(v, sample("containers_nosuch_json.json"));
    let (st, v) = d.api("GET", "/v1.47/no/such/endpoint", None);
    assert_eq!((st, v), (404, json!({"message": "page not found"})));
    let (st, v) = d.api("GET", "/images/nosuch:1/json", None);
    assert_eq!(st, 404);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("No such image: nosuch"),
        "{v}"
    );
    // Bad JSON body.
    let (st, _, body) = d.raw("POST", "/containers/create", Some(b"{not json"));
    assert_eq!(st, 400);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("invalid JSON"),
        "{v}"
    );
    // Creating from a missing image.
    let (st, v) = d.api(
        "POST",
        "/containers/create",
        Some(&json!({"Image": "ghost:1", "Cmd": ["true"]})),
    );
    assert_eq!(st, 404, "{v}");
    // A bad name.
    let (st, v) = d.api(
        "POST",
        "/containers/create?name=a%20b",
        Some(&json!({"Image": "ghost:1"})),
    );
    assert!(st == 400 || st == 404, "{st} {v}");
    // Body above 10 MiB.
    let big = vec![b' '; 11 << 20];
    let (st, _, body) = d.raw("POST", "/containers/create", Some(&big));
    assert_eq!(st, 413, "{}", String::from_utf8_lossy(&body));
    // A bad query value names it.
    let (st, v) = d.api("GET", "/containers/json?limit=lots", None);
    assert_eq!(st, 400);
    assert!(v["message"].as_str().unwrap().contains("lots"), "{v}");
    // Pulls are refused clearly.
    let (st, v) = d.api("POST", "/images/create?fromImage=busybox&tag=latest", None);
    assert_eq!(st, 501, "{v}");
}

#[test]
fn tcp_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("daemon.json"), "{}").unwrap();
    let out = Daemon::command(dir.path(), &["-H", "tcp://127.0.0.1:2375"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TCP is not supported until TLS"), "{err}");
    assert!(err.contains("tcp://127.0.0.1:2375"), "{err}");
}

#[test]
fn daemon_json_is_applied_and_conflicts_refused() {
    // Values from the file apply.
    let d = Daemon::try_start(
        &[],
        r#"{"debug": true, "log-driver": "json-file", "log-opts": {"max-size": "2m"}}"#,
    )
    .unwrap();
    let (_, i) = d.api("GET", "/info", None);
    assert_eq!(i["Debug"], true);
    drop(d);
    // A flag and the file both setting debug: refused, naming both values.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("daemon.json"), r#"{"debug": false}"#).unwrap();
    let out = Daemon::command(dir.path(), &["--debug"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("specified both as a flag and in the configuration file"),
        "{err}"
    );
    assert!(
        err.contains("debug: (from flag: true, from file: false)"),
        "{err}"
    );
    // Unknown keys are refused.
    std::fs::write(dir.path().join("daemon.json"), r#"{"bogus-key": 1}"#).unwrap();
    let out = Daemon::command(dir.path(), &[]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus-key"));
    // A missing explicit file is an error naming it.
    std::fs::remove_file(dir.path().join("daemon.json")).unwrap();
    let out = Daemon::command(dir.path(), &[]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("daemon.json"));
}

#[test]
fn socket_is_0660() {
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start(&[]);
    let m = std::fs::metadata(&d.sock).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o660);
    // A second daemon on the same socket is refused.
    let out = Daemon::command(d.dir.path(), &[]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already listening"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(d.raw("GET", "/_ping", None).0 == 200);
    // So is a second daemon on the same data root.
    let other = format!("unix://{}", d.dir.path().join("other.sock").display());
    let out = Daemon::command(d.dir.path(), &["-H", &other])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use by another lookoutd"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!d.dir.path().join("other.sock").exists());
    assert!(d.raw("GET", "/_ping", None).0 == 200);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("daemon.json"), "{}").unwrap();
    let out = Daemon::command(dir.path(), &["-G", "no-such-group-xyz"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-group-xyz"));
}

#[test]
fn images_through_the_docker_cli() {
    let d = Daemon::start(&[]);
    let id = d.import_busybox("lookout-busybox:latest");
    assert!(id.starts_with("sha256:"), "{id}");
    let out = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert!(out.contains("lookout-busybox:latest"), "{out}");
    assert!(
        out.contains(&id["sha256:".len().."sha256:".len() + 12]),
        "{out}"
    );

    // Inspect has every key of dockerd's.
    let (st, v) = d.api("GET", "/images/lookout-busybox:latest/json", None);
    assert_eq!(st, 200);
    let miss = missing_keys(&sample("images_bb_1_json.json"), &v, &["GraphDriver.Data"]);
    assert!(miss.is_empty(), "image inspect misses {miss:?}: {v}");
    assert_eq!(v["Id"], id.as_str());
    // dockerd's comment for an import without a message.
    assert_eq!(v["Comment"], "Imported from -");
    let (_, list) = d.api("GET", "/images/json", None);
    let miss = missing_keys(&sample("images_json.json"), &list, &[]);
    assert!(miss.is_empty(), "image list misses {miss:?}: {list}");
    let out = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{.Os}}",
        "lookout-busybox",
    ]);
    assert_eq!(out.trim(), format!("{id} linux"));

    // Tag, then remove the tag, then the image.
    d.docker_ok(&["tag", "lookout-busybox:latest", "bb:1"]);
    let out = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        out.contains("bb:1") && out.contains("lookout-busybox:latest"),
        "{out}"
    );
    let out = d.docker_ok(&["rmi", "bb:1"]);
    assert!(out.contains("Untagged: bb:1"), "{out}");
    let out = d.docker_ok(&["rmi", "lookout-busybox:latest"]);
    assert!(out.contains("Untagged: lookout-busybox:latest"), "{out}");
    assert!(out.contains("Deleted: sha256:"), "{out}");
    let out = d.docker_ok(&["images", "-q"]);
    assert!(out.trim().is_empty(), "{out}");
    // An untagged import is dangling: image prune deletes it.
    let tar = common::busybox_tar();
    let id = d.docker_ok(&["import", tar.to_str().unwrap()]);
    let out = d.docker_ok(&["image", "prune", "-f"]);
    assert!(out.contains(id.trim()), "{out}");
    assert!(d.docker_ok(&["images", "-qa"]).trim().is_empty());
    // Removing again: 404.
    let o = d.docker(&["rmi", "lookout-busybox:latest"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such image"));
}

#[test]
fn import_with_changes_and_message() {
    let d = Daemon::start(&[]);
    let tar = common::busybox_tar();
    d.docker_ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-c",
        "ENV A=b",
        "-m",
        "hello",
        tar.to_str().unwrap(),
        "chg:1",
    ]);
    let out = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Cmd}} {{json .Config.Env}} {{.Comment}}",
        "chg:1",
    ]);
    assert_eq!(out.trim(), r#"["sh"] ["A=b"] hello"#);
}

#[test]
fn daemon_log_defaults_and_unreadable_drivers() {
    let d = Daemon::start(&["--log-opt", "max-size=2m"]);
    d.import_busybox("lookout-busybox:latest");
    // No LogConfig in the request: the daemon's defaults.
    d.docker_ok(&["create", "--name", "dflt", "lookout-busybox:latest", "true"]);
    let (_, v) = d.api("GET", "/containers/dflt/json", None);
    assert_eq!(v["HostConfig"]["LogConfig"]["Type"], "json-file", "{v}");
    assert_eq!(
        v["HostConfig"]["LogConfig"]["Config"]["max-size"], "2m",
        "{v}"
    );
    assert_eq!(v["State"]["Status"], "created");
    assert_eq!(v["State"]["StartedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        v["Config"]["Hostname"].as_str().unwrap(),
        &v["Id"].as_str().unwrap()[..12]
    );
    // A driver that cannot be read back.
    d.docker_ok(&[
        "create",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "lookout-busybox:latest",
        "true",
    ]);
    let (st, v) = d.api("GET", "/containers/quiet/logs?stdout=1", None);
    assert_eq!(st, 501, "{v}");
    assert_eq!(
        v["message"],
        "configured logging driver does not support reading"
    );
    let o = d.docker(&["logs", "quiet"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not support reading"));
    // An unknown driver is refused at create, naming it.
    let o = d.docker(&[
        "create",
        "--log-driver",
        "nosuchdriver",
        "lookout-busybox:latest",
        "true",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("nosuchdriver"));
    // Bad driver options are refused at create by the driver's own
    // validate, naming the key or the value, and leave no container.
    let before = d.docker_ok(&["ps", "-aq"]);
    for (opt, needle) in [
        ("colour=blue", "colour"),
        ("max-size=huge", "huge"),
        ("mode=sometimes", "sometimes"),
    ] {
        let o = d.docker(&[
            "run",
            "-d",
            "--log-opt",
            opt,
            "lookout-busybox:latest",
            "true",
        ]);
        assert_eq!(o.status.code(), Some(125), "--log-opt {opt} was accepted");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(needle), "--log-opt {opt}: {e}");
    }
    assert_eq!(d.docker_ok(&["ps", "-aq"]), before, "a container was left");
    // logs needs a stream.
    let (st, v) = d.api("GET", "/containers/dflt/logs", None);
    assert_eq!(st, 400, "{v}");
    // Bad resource values are refused with dockerd's words.
    let o = d.docker(&["create", "-m", "1m", "lookout-busybox:latest", "true"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("Minimum memory limit allowed is 6MB"));
    // Options lookout does not carry out are refused, not ignored.
    let o = d.docker(&[
        "create",
        "-v",
        "/tmp:/x",
        "-p",
        "8080:80",
        "lookout-busybox:latest",
        "true",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("not supported by lookout yet") && err.contains("-v") && err.contains("-p"),
        "{err}"
    );
    // Images used by containers cannot be removed without force.
    let o = d.docker(&["rmi", "lookout-busybox:latest"]);
    assert!(
        !o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // List filters.
    let out = d.docker_ok(&[
        "ps",
        "-a",
        "--filter",
        "name=dflt",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    assert_eq!(out.trim(), "dflt Created");
    let out = d.docker_ok(&["ps", "-a", "--filter", "status=created", "-q"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = d.docker_ok(&["ps", "-q"]);
    assert!(out.trim().is_empty());
    let (st, _) = d.api(
        "GET",
        "/containers/json?filters=%7B%22status%22%3A%5B%22bogus%22%5D%7D",
        None,
    );
    assert_eq!(st, 400);
    // prune removes every stopped container.
    let out = d.docker_ok(&["container", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    let out = d.docker_ok(&["ps", "-aq"]);
    assert!(out.trim().is_empty(), "{out}");
}
