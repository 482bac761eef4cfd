//! docker-py drives lookoutd unchanged (tests/docker_py_check.py).

mod common;

use common::{Daemon, require_shim};

#[test]
fn docker_py_works_unchanged() {
    require_shim();
    let have = std::process::Command::new("python3")
        .args(["-c", "import docker"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(have, "docker-py is not installed (pip install docker)");
    let d = Daemon::start(&[]);
    d.import_busybox("lookout-busybox:latest");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/docker_py_check.py");
    let out = std::process::Command::new("timeout")
        .arg("180")
        .arg("python3")
        .arg(&script)
        .arg(d.host())
        .arg("lookout-busybox:latest")
        .output()
        .expect("running python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "docker-py checks failed:\n{stdout}\n{stderr}\ndaemon log:\n{}",
        d.log()
    );
    assert!(stdout.contains("docker-py: all checks passed"), "{stdout}");
}
