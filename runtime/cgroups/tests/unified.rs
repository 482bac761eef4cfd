//! cgroup v2 for real: the host's cgroup2 mount on its own (on the hybrid
//! layout, `/sys/fs/cgroup/unified`, whose child cgroups offer
//! `cgroup.freeze`, `cgroup.kill`, `cgroup.events` and `cpu.stat` even with
//! no controller enabled; on a pure v2 host, `/sys/fs/cgroup`).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::{Guard, Proc, host_layout, poll, read_count};
use lookout_cgroups::{FreezerState, LayoutKind};

const SEC: Duration = Duration::from_secs(1);

fn unified_layout() -> Option<lookout_cgroups::Layout> {
    let l = host_layout()?.unified_only();
    if l.is_none() {
        eprintln!("skipped: no cgroup2 mount");
    }
    l
}

#[test]
fn create_move_account_freeze_kill_remove() {
    let Some(layout) = unified_layout() else {
        return;
    };
    assert_eq!(layout.kind(), LayoutKind::V2);
    let mut g = Guard::create(&layout);
    let dir = g.cg().unified_dir().unwrap().to_path_buf();
    for f in ["cgroup.freeze", "cgroup.kill", "cgroup.events", "cpu.stat"] {
        assert!(dir.join(f).exists(), "{f} in {}", dir.display());
    }

    // A busy counting loop: CPU time and a visible counter.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("count");
    let mut p = Proc::spawn(&format!(
        "i=0; while :; do i=$((i+1)); echo $i > {}; done",
        file.display()
    ));
    let cg = g.cg();
    cg.add_process(p.pid()).unwrap();
    assert_eq!(cg.procs().unwrap(), vec![p.pid()]);
    let events = std::fs::read_to_string(dir.join("cgroup.events")).unwrap();
    assert!(events.contains("populated 1"), "{events}");
    p.release();

    // CPU accounting from cpu.stat.
    let before = cg.counters().unwrap();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(700));
    let after = cg.counters().unwrap();
    let used = after.cpu_total_ns - before.cpu_total_ns;
    eprintln!(
        "cpu.stat: {} ms used in {} ms",
        used / 1_000_000,
        t0.elapsed().as_millis()
    );
    assert!(used > 30_000_000, "only {used} ns accounted");
    assert!(used <= t0.elapsed().as_nanos() as u64 * 2 + 50_000_000);
    assert!(after.cpu_user_ns + after.cpu_system_ns >= after.cpu_total_ns / 2);

    // Freeze: the counter stops; thaw: it moves again.
    poll(5 * SEC, || read_count(&file)).expect("loop counts");
    cg.freeze(5 * SEC).unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Frozen);
    let events = std::fs::read_to_string(dir.join("cgroup.events")).unwrap();
    assert!(events.contains("frozen 1"), "{events}");
    let frozen = std::fs::read_to_string(&file).unwrap();
    std::thread::sleep(SEC);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), frozen);
    cg.thaw(5 * SEC).unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Thawed);
    let base = frozen.trim().parse::<u64>().unwrap_or(0);
    assert!(
        poll(5 * SEC, || read_count(&file).filter(|&n| n > base)).is_some(),
        "counter did not resume"
    );

    // cgroup.kill.
    cg.kill_all(5 * SEC).unwrap();
    let st = p.wait_timeout(5 * SEC).expect("killed");
    assert_eq!(st.signal(), Some(9));
    assert!(cg.procs().unwrap().is_empty());
    let events = poll(2 * SEC, || {
        let e = std::fs::read_to_string(dir.join("cgroup.events")).unwrap();
        e.contains("populated 0").then_some(e)
    });
    assert!(events.is_some(), "still populated");

    // Remove.
    let parents = g.parents().to_vec();
    let mut cg = g.cg.take().unwrap();
    cg.delete(5 * SEC).unwrap();
    assert!(!dir.exists());
    for p in parents {
        assert!(!p.exists(), "{} left", p.display());
    }
}

#[test]
fn kill_all_stops_a_fork_loop() {
    let Some(layout) = unified_layout() else {
        return;
    };
    let g = Guard::create(&layout);
    let cg = g.cg();
    let mut p = Proc::spawn("while :; do sleep 60 & done");
    cg.add_process(p.pid()).unwrap();
    p.release();
    poll(5 * SEC, || (cg.procs().unwrap().len() > 20).then_some(())).expect("loop forks");
    cg.kill_all(5 * SEC).unwrap();
    assert!(cg.procs().unwrap().is_empty());
    assert!(p.wait_timeout(5 * SEC).is_some());
}

#[test]
fn limits_the_hierarchy_does_not_offer_are_refused() {
    let Some(layout) = unified_layout() else {
        return;
    };
    let g = Guard::create(&layout);
    let cg = g.cg();
    let controllers =
        std::fs::read_to_string(cg.unified_dir().unwrap().join("cgroup.controllers")).unwrap();
    if controllers.split_whitespace().any(|c| c == "pids") {
        eprintln!("skipped: pids is enabled here");
        return;
    }
    let e = cg
        .apply(&lookout_cgroups::Resources {
            pids_limit: Some(20),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("pids-limit is not available"), "{e}");
    assert!(
        e.contains(&*cg.unified_dir().unwrap().to_string_lossy()),
        "{e}"
    );
}

#[test]
fn cgroup_kill_works_on_a_frozen_cgroup() {
    let Some(layout) = unified_layout() else {
        return;
    };
    let g = Guard::create(&layout);
    let cg = g.cg();
    let mut p = Proc::spawn("while :; do sleep 60 & done");
    cg.add_process(p.pid()).unwrap();
    p.release();
    poll(5 * SEC, || (cg.procs().unwrap().len() > 5).then_some(())).expect("loop forks");
    cg.freeze(5 * SEC).unwrap();
    let t0 = Instant::now();
    cg.kill_all(5 * SEC).unwrap();
    assert!(t0.elapsed() < 2 * SEC, "took {:?}", t0.elapsed());
    assert!(cg.procs().unwrap().is_empty());
    assert!(p.wait_timeout(5 * SEC).is_some());
}
