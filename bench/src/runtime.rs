//! Runtime benchmarks: container start-to-exit beside the floor and the
//! peers, and the shim's memory per idle container.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bindir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe
        .parent()
        .context("bench binary has no directory")?
        .to_path_buf())
}

fn shim_binary() -> Result<PathBuf> {
    let p = bindir()?.join("lookout-shim");
    if !p.exists() {
        bail!(
            "{} is missing: build it first (cargo build --release -p lookout-shim -p lookout-plugin-json-file)",
            p.display()
        );
    }
    Ok(p)
}

fn plugin_dir() -> Result<PathBuf> {
    // The json-file cdylib is built into the profile directory by the
    // workspace build, and into deps/ as a dependency of this crate.
    let b = bindir()?;
    Ok(if b.join("liblookout_plugin_json_file.so").exists() {
        b
    } else {
        b.join("deps")
    })
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(cmd))
            .find(|c| c.is_file())
    })
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i]
}

/// Times `runs` runs of a command (after 3 warm-ups), in ms.
fn time_runs(runs: usize, mut mk: impl FnMut(usize) -> Command) -> Result<Vec<f64>> {
    let mut v = Vec::with_capacity(runs);
    for i in 0..runs + 3 {
        let mut c = mk(i);
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        let t = Instant::now();
        let o = c.output().context("spawning")?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if !o.status.success() {
            bail!(
                "run failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        if i >= 3 {
            v.push(ms);
        }
    }
    Ok(v)
}

struct Row {
    name: String,
    p50: f64,
    p90: f64,
    note: String,
}

/// `lookout-bench start`: start-to-exit of `/bin/true`.
pub fn start(runs: usize, rootfs: &Path) -> Result<()> {
    let rootfs = rootfs
        .canonicalize()
        .with_context(|| format!("rootfs {} (run scripts/build-rootfs.sh)", rootfs.display()))?;
    let shim = shim_binary()?;
    let plugins = plugin_dir()?;
    let tmp = tempfile::tempdir()?;
    let mut rows = Vec::new();
    let mut add = |name: &str, mut v: Vec<f64>, note: String| {
        rows.push(Row {
            name: name.to_string(),
            p50: quantile(&mut v, 0.5),
            p90: quantile(&mut v, 0.9),
            note,
        });
    };

    // The floor: the same namespaces with unshare(1) and chroot.
    let floor = time_runs(runs, |_| {
        let mut c = Command::new("unshare");
        c.args([
            "--pid", "--fork", "--mount", "--uts", "--ipc", "--net", "chroot",
        ])
        .arg(&rootfs)
        .arg("/bin/true");
        c
    })?;
    add(
        "floor: unshare … chroot ROOT /bin/true",
        floor,
        String::new(),
    );

    // lookout, daemonless, with the json-file driver. The parent cgroup
    // exists beforehand, as it does under a daemon (which creates it once).
    let parent = format!("/lookout-bench-{}", std::process::id());
    create_cgroup_parent(&parent)?;
    let timings = tmp.path().join("timings.jsonl");
    let state = tmp.path().join("state");
    let mut spawn_at = Vec::new();
    let lk = time_runs(runs, |i| {
        let mut c = Command::new(&shim);
        c.arg("run")
            .arg("--rootfs")
            .arg(&rootfs)
            .arg("--root")
            .arg(&state)
            .arg("--rm")
            .arg("--id")
            .arg(format!("bench{i}"))
            .arg("--cgroup-parent")
            .arg(&parent)
            .arg("--plugin-dir")
            .arg(&plugins)
            .args(["--", "/bin/true"])
            .env("LOOKOUT_SHIM_TIMINGS", &timings);
        spawn_at.push(lookout_core::logs::pipeline::monotonic_ns());
        c
    })?;
    let phases = phase_breakdown(&timings, &spawn_at[3..])?;
    add("lookout-shim run (json-file)", lk, phases);
    // The shims remove their cgroups after reporting the exit.
    std::thread::sleep(Duration::from_millis(200));
    remove_cgroup_parent(&parent);

    // runc (and crun) on a bundle of the same root.
    for rt in ["runc", "crun"] {
        let Some(bin) = which(rt) else {
            add(rt, vec![], "not installed".into());
            continue;
        };
        let bundle = tmp.path().join(format!("bundle-{rt}"));
        std::fs::create_dir_all(&bundle)?;
        let st = Command::new("cp")
            .arg("-a")
            .arg(&rootfs)
            .arg(bundle.join("rootfs"))
            .status()?;
        if !st.success() {
            bail!("cp -a {} failed", rootfs.display());
        }
        write_oci_config(&bundle)?;
        let root = tmp.path().join(format!("{rt}-state"));
        let r = time_runs(runs, |i| {
            let mut c = Command::new(&bin);
            c.arg("--root")
                .arg(&root)
                .arg("run")
                .arg("-b")
                .arg(&bundle)
                .arg(format!("bench-{rt}-{}-{i}", std::process::id()));
            c
        });
        match r {
            Ok(v) => add(rt, v, String::new()),
            Err(e) => add(rt, vec![], format!("fails here: {e:#}")),
        }
    }

    let floor_p50 = rows[0].p50;
    let runc_p50 = rows
        .iter()
        .find(|r| r.name == "runc")
        .map(|r| r.p50)
        .unwrap_or(f64::NAN);
    println!("start-to-exit of /bin/true, {runs} runs each (ms)");
    println!(
        "{:<42} {:>8} {:>8} {:>9} {:>9}",
        "", "p50", "p90", "p50/floor", "p50/runc"
    );
    for r in &rows {
        if r.p50.is_nan() {
            println!("{:<42} {}", r.name, r.note);
            continue;
        }
        println!(
            "{:<42} {:>8.2} {:>8.2} {:>9.2} {:>9.2}",
            r.name,
            r.p50,
            r.p90,
            r.p50 / floor_p50,
            r.p50 / runc_p50
        );
        if !r.note.is_empty() {
            println!("    {}", r.note);
        }
    }
    Ok(())
}

/// The median duration of each phase, from the shim's marks.
fn phase_breakdown(path: &Path, spawn_at: &[u64]) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("no timings in {}", path.display()))?;
    let runs: Vec<BTreeMap<String, u64>> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let runs = &runs[runs.len().saturating_sub(spawn_at.len())..];
    let order = [
        ("shim spawn (exec → main)", "spawn", "main"),
        (
            "detach (fork, setsid; loader thread started)",
            "main",
            "detached",
        ),
        (
            "container start (driver loading on a second thread; cgroup, namespaces, mounts, exec)",
            "detached",
            "container_started",
        ),
        (
            "pipeline start, control socket",
            "container_started",
            "pipeline_started",
        ),
        ("run /bin/true", "pipeline_started", "container_exited"),
        ("drain + flush logs", "container_exited", "logs_flushed"),
        ("record exit", "logs_flushed", "exit_recorded"),
    ];
    let mut out = Vec::new();
    for (label, key) in [
        ("driver loading (its own thread)", "load_drivers_ns"),
        ("prepare (users, /etc files, plan)", "start_prepare_ns"),
        ("cgroup create + limits + devices", "start_cgroup_ns"),
        ("clone3 (namespaces)", "start_namespaces_ns"),
        ("cgroup join", "start_cgroup_join_ns"),
        (
            "mounts, pivot_root, credentials, exec",
            "start_setup_exec_ns",
        ),
    ] {
        let mut v: Vec<f64> = runs
            .iter()
            .filter_map(|m| m.get(key).map(|x| *x as f64 / 1e6))
            .collect();
        if !v.is_empty() {
            out.push(format!("{label} {:.2}", quantile(&mut v, 0.5)));
        }
    }
    let inner = std::mem::take(&mut out);
    for (label, a, b) in order {
        let mut v: Vec<f64> = runs
            .iter()
            .zip(spawn_at)
            .filter_map(|(m, s)| {
                let ta = if a == "spawn" {
                    Some(*s)
                } else {
                    m.get(a).copied()
                };
                Some((m.get(b)?.checked_sub(ta?)?) as f64 / 1e6)
            })
            .collect();
        if !v.is_empty() {
            out.push(format!("{label} {:.2}", quantile(&mut v, 0.5)));
        }
    }
    Ok(format!(
        "median phases (ms): {}\n    inside container start (ms): {}",
        out.join("; "),
        inner.join("; ")
    ))
}

fn write_oci_config(bundle: &Path) -> Result<()> {
    // A minimal OCI runtime config: the same namespaces as the floor.
    let cfg = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "mount"}, {"type": "uts"},
                {"type": "ipc"}, {"type": "network"}
            ]
        }
    });
    std::fs::write(bundle.join("config.json"), serde_json::to_vec_pretty(&cfg)?)?;
    Ok(())
}

fn cgroup_mount_points() -> Vec<PathBuf> {
    let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    mi.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            if !post.starts_with("cgroup") {
                return None;
            }
            Some(PathBuf::from(pre.split(' ').nth(4)?))
        })
        .collect()
}

fn create_cgroup_parent(parent: &str) -> Result<()> {
    for mp in cgroup_mount_points() {
        let d = mp.join(parent.trim_start_matches('/'));
        match std::fs::create_dir(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("mkdir {}", d.display())),
        }
        if mp.ends_with("cpuset") {
            // A v1 cpuset child starts empty: copy the root's sets.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = std::fs::read_to_string(mp.join(f))?;
                std::fs::write(d.join(f), v.trim())?;
            }
        }
    }
    Ok(())
}

fn remove_cgroup_parent(parent: &str) {
    for mp in cgroup_mount_points() {
        let _ = std::fs::remove_dir(mp.join(parent.trim_start_matches('/')));
    }
}

fn smaps_kb(pid: i32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `lookout-bench shim-mem`: PSS and RSS of the shims of idle containers.
pub fn shim_mem(containers: usize, rootfs: &Path) -> Result<()> {
    let rootfs = rootfs.canonicalize()?;
    let shim = shim_binary()?;
    let plugins = plugin_dir()?;
    let tmp = tempfile::tempdir()?;
    let parent = format!("/lookout-bench-mem-{}", std::process::id());
    let mut dirs = Vec::new();
    for i in 0..containers {
        let id = format!("idle{i}");
        let dir = tmp.path().join(&id);
        std::fs::create_dir_all(&dir)?;
        let spec = serde_json::json!({
            "id": id,
            "rootfs": rootfs,
            "process": {"args": ["sh", "-c", "echo started; exec sleep 600"]},
            "cgroup_path": format!("{parent}/{id}"),
            "log_drivers": [{"driver": "json-file", "opts": []}],
            "log_dir": dir,
        });
        std::fs::write(dir.join("config.json"), serde_json::to_vec(&spec)?)?;
        let o = Command::new(&shim)
            .arg("start")
            .arg("--state-dir")
            .arg(&dir)
            .arg("--plugin-dir")
            .arg(&plugins)
            .output()?;
        if !o.status.success() {
            bail!("start failed: {}", String::from_utf8_lossy(&o.stderr));
        }
        dirs.push(dir);
    }
    std::thread::sleep(Duration::from_secs(2));
    let mut pss = 0u64;
    let mut rss = Vec::new();
    for d in &dirs {
        let pid: i32 = std::fs::read_to_string(d.join("shim.pid"))?
            .trim()
            .parse()?;
        pss += smaps_kb(pid, "Pss:").context("smaps_rollup")?;
        rss.push(smaps_kb(pid, "Rss:").context("smaps_rollup")?);
    }
    for d in &dirs {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "kill -9 $(cat {}/shim.pid 2>/dev/null) 2>/dev/null; true",
                d.display()
            ))
            .status();
        // Killing the shim leaves the container: stop it through its cgroup.
    }
    // The containers: kill through every hierarchy's cgroup.procs, then
    // remove their cgroups and the parent.
    let mounts = cgroup_mount_points();
    for mp in &mounts {
        let base = mp.join(parent.trim_start_matches('/'));
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            if let Ok(procs) = std::fs::read_to_string(e.path().join("cgroup.procs")) {
                for p in procs.lines() {
                    let _ = Command::new("kill").args(["-9", p]).status();
                }
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    for mp in &mounts {
        let base = mp.join(parent.trim_start_matches('/'));
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(e.path());
        }
        let _ = std::fs::remove_dir(&base);
    }
    let max_rss = rss.iter().copied().max().unwrap_or(0);
    println!("{containers} idle containers with json-file (shim memory, from smaps_rollup)");
    println!(
        "lookout-shim: PSS per shim {:.2} MB, RSS max {:.2} MB (targets ≤ 1 MB PSS, ≤ 3 MB RSS)",
        pss as f64 / containers as f64 / 1024.0,
        max_rss as f64 / 1024.0
    );
    println!(
        "peers measured here (REFERENCE.md): conmon 0.55 MB PSS / 1.96 MB RSS; containerd-shim-runc-v2 4.4 MB / 13.2 MB"
    );
    Ok(())
}
