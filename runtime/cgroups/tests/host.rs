//! Limits, counters, freezer, kill and delete on the host's real cgroups
//! (as root). On this project's machines the layout is hybrid, so these run
//! against the v1 controllers; on a pure v2 host they run against v2.
//! Each test works under its own `lookout-test-<pid>-<n>` parent and removes
//! it through a guard, even when it fails.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Guard, Proc, host_layout, poll, read_count};
use lookout_cgroups::{CgroupError, FreezerState, LayoutKind, Resources, units};

const SEC: Duration = Duration::from_secs(1);

#[test]
fn memory_hog_is_oom_killed_and_detected() {
    let Some(layout) = host_layout() else { return };
    let g = Guard::create(&layout);
    let cg = g.cg();
    cg.apply(&Resources {
        memory: Some(units::parse_memory("32m").unwrap()),
        ..Default::default()
    })
    .unwrap();
    assert!(!cg.oom_killed().unwrap());
    let c = cg.counters().unwrap();
    assert_eq!(c.memory_limit, Some(32 << 20));

    let mut hog = Proc::spawn("exec tail /dev/zero");
    cg.add_process(hog.pid()).unwrap();
    hog.release();
    let st = hog
        .wait_timeout(Duration::from_secs(30))
        .expect("the hog should have been killed");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(9), "killed by SIGKILL: {st:?}");

    let oom = poll(5 * SEC, || {
        let s = cg.oom_status().unwrap();
        (s.oom_kill >= 1).then_some(s)
    })
    .expect("oom_kill counted");
    assert!(oom.oom_events >= 1);
    assert!(cg.oom_killed().unwrap());
    let c = cg.counters().unwrap();
    assert!(c.oom_kill >= 1, "{c:?}");
    assert!(c.memory_usage <= 32 << 20, "{c:?}");
}

#[test]
fn fork_loop_is_contained_by_pids_limit() {
    let Some(layout) = host_layout() else { return };
    let g = Guard::create(&layout);
    let cg = g.cg();
    cg.apply(&Resources {
        pids_limit: Some(20),
        ..Default::default()
    })
    .unwrap();
    let pids_dir = cg.dir("pids").expect("pids controller").to_path_buf();

    let mut bomb = Proc::spawn("while :; do sleep 60 & done");
    cg.add_process(bomb.pid()).unwrap();
    bomb.release();

    let mut max_seen = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        let c = cg.counters().unwrap();
        assert_eq!(c.pids_limit, Some(20));
        assert!(c.pids_current <= 20, "pids.current {} > 20", c.pids_current);
        max_seen = max_seen.max(c.pids_current);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        max_seen >= 15,
        "the loop should reach the limit, saw {max_seen}"
    );
    // Forks failed: the kernel counted refusals.
    let events = std::fs::read_to_string(pids_dir.join("pids.events")).unwrap();
    let refused: u64 = events
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(refused > 0, "pids.events: {events}");

    cg.kill_all(5 * SEC).unwrap();
    assert!(cg.procs().unwrap().is_empty());
    assert!(bomb.wait_timeout(5 * SEC).is_some());
}

#[test]
fn busy_loop_under_half_a_cpu_is_throttled() {
    let Some(layout) = host_layout() else { return };
    let g = Guard::create(&layout);
    let cg = g.cg();
    cg.apply(&Resources {
        nano_cpus: Some(units::parse_cpus("0.5").unwrap()),
        ..Default::default()
    })
    .unwrap();

    // Two spinning shells: together they could use both CPUs, so the
    // cgroup hits its quota even when other work competes for the machine.
    let mut busy = Proc::spawn("while :; do :; done & while :; do :; done");
    cg.add_process(busy.pid()).unwrap();
    busy.release();
    std::thread::sleep(Duration::from_millis(200));

    let before = cg.counters().unwrap();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let after = cg.counters().unwrap();
    let wall = t0.elapsed().as_nanos() as f64;

    let used = (after.cpu_total_ns - before.cpu_total_ns) as f64 / wall;
    eprintln!(
        "cpu share {:.1}% of one CPU; throttled periods {} -> {}",
        used * 100.0,
        before.nr_throttled,
        after.nr_throttled
    );
    assert!(used <= 0.60, "used {:.1}% of one CPU", used * 100.0);
    assert!(used > 0.05, "the loop barely ran: {:.1}%", used * 100.0);
    assert!(after.nr_throttled > before.nr_throttled);
    assert!(after.nr_periods > before.nr_periods);
    assert!(after.throttled_ns > before.throttled_ns);
    assert!(after.cpu_user_ns + after.cpu_system_ns > 0);
}

#[test]
fn frozen_counting_loop_stops_and_resumes() {
    let Some(layout) = host_layout() else { return };
    let g = Guard::create(&layout);
    let cg = g.cg();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("count");

    let mut counter = Proc::spawn(&format!(
        "i=0; while :; do i=$((i+1)); echo $i > {}; done",
        file.display()
    ));
    cg.add_process(counter.pid()).unwrap();
    counter.release();
    let first = poll(5 * SEC, || read_count(&file).filter(|&n| n > 10)).expect("loop counts");

    cg.freeze(5 * SEC).unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Frozen);
    let frozen_text = std::fs::read_to_string(&file).unwrap();
    std::thread::sleep(SEC);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        frozen_text,
        "the counter advanced while frozen"
    );

    cg.thaw(5 * SEC).unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Thawed);
    let base = frozen_text.trim().parse::<u64>().unwrap_or(first);
    let later = poll(5 * SEC, || read_count(&file).filter(|&n| n > base));
    assert!(later.is_some(), "the counter did not resume after thaw");
}

#[test]
fn delete_leaves_no_directory() {
    let Some(layout) = host_layout() else { return };
    let mut g = Guard::create(&layout);
    let dirs: Vec<_> = g.cg().dirs().map(Path::to_path_buf).collect();
    let parents = g.parents().to_vec();
    assert!(!dirs.is_empty());
    for d in &dirs {
        assert!(d.is_dir(), "{} exists after create", d.display());
    }
    let mut p = Proc::spawn("sleep 60");
    g.cg().add_process(p.pid()).unwrap();
    p.release();
    // A child cgroup made from inside (a nested container) goes too.
    let nested = g.cg().dir("pids").unwrap().join("nested");
    std::fs::create_dir(&nested).unwrap();

    let mut cg = g.cg.take().unwrap();
    cg.kill_all(5 * SEC).unwrap();
    cg.delete(5 * SEC).unwrap();
    for d in dirs.iter().chain(parents.iter()) {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    // Deleting again is harmless.
    cg.delete(SEC).unwrap();
}

#[test]
fn delete_refuses_while_processes_remain() {
    let Some(layout) = host_layout() else { return };
    let g = Guard::create(&layout);
    let mut p = Proc::spawn("sleep 60");
    g.cg().add_process(p.pid()).unwrap();
    p.release();
    // delete() does not kill: with a process inside it must fail, naming it.
    let e = {
        let mut cg2 = lookout_cgroups::Cgroup::open(&layout, g.cg().path()).unwrap();
        cg2.delete(Duration::from_millis(200)).unwrap_err()
    };
    let msg = e.to_string();
    assert!(matches!(e, CgroupError::Remove { .. }), "{msg}");
    assert!(msg.contains(&p.pid().to_string()), "{msg}");
}

#[test]
fn swap_limit_only_where_the_kernel_accounts_swap() {
    let Some(layout) = host_layout() else { return };
    let g = Guard::create(&layout);
    let cg = g.cg();
    let mem = cg.dir("memory").expect("memory controller").to_path_buf();
    let accounted =
        mem.join("memory.memsw.limit_in_bytes").exists() || mem.join("memory.swap.max").exists();
    let res = Resources {
        memory: Some(64 << 20),
        memory_swap: Some(128 << 20),
        ..Default::default()
    };
    match cg.apply(&res) {
        Ok(()) => {
            assert!(accounted);
            if layout.kind() != LayoutKind::V2 {
                let v = std::fs::read_to_string(mem.join("memory.memsw.limit_in_bytes")).unwrap();
                assert_eq!(v.trim(), (128u64 << 20).to_string());
            }
        }
        Err(e) => {
            assert!(!accounted, "{e}");
            assert!(e.to_string().contains("memory-swap"), "{e}");
        }
    }
}

#[test]
fn limits_are_written_and_read_back() {
    let Some(layout) = host_layout() else { return };
    let g = Guard::create(&layout);
    let cg = g.cg();
    cg.apply(&Resources {
        memory: Some(64 << 20),
        memory_reservation: Some(32 << 20),
        cpu_shares: Some(512),
        cpu_quota: Some(150_000),
        cpu_period: Some(100_000),
        cpuset_cpus: Some("0".into()),
        cpuset_mems: Some("0".into()),
        pids_limit: Some(100),
        ..Default::default()
    })
    .unwrap();
    let read = |ctrl: &str, file: &str| {
        std::fs::read_to_string(cg.dir(ctrl).unwrap().join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    let c = cg.counters().unwrap();
    assert_eq!(c.memory_limit, Some(64 << 20));
    assert_eq!(c.pids_limit, Some(100));
    assert_eq!(read("cpuset", "cpuset.cpus"), "0");
    if layout.kind() == LayoutKind::V2 {
        assert_eq!(read("cpu", "cpu.max"), "150000 100000");
        assert_eq!(read("memory", "memory.low"), (32u64 << 20).to_string());
    } else {
        assert_eq!(read("cpu", "cpu.shares"), "512");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "150000");
        assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(
            read("memory", "memory.soft_limit_in_bytes"),
            (32u64 << 20).to_string()
        );
    }
    // Unlimited again.
    cg.apply(&Resources {
        pids_limit: Some(0),
        cpu_quota: Some(-1),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(cg.counters().unwrap().pids_limit, None);
}

#[test]
fn bad_input_is_rejected_naming_the_value_and_nothing_is_written() {
    let Some(layout) = host_layout() else { return };
    let g = Guard::create(&layout);
    let cg = g.cg();
    let online = cg.online_cpus().unwrap();

    let e = units::parse_memory("32q").unwrap_err().to_string();
    assert!(e.contains("memory") && e.contains("\"32q\""), "{e}");
    let e = units::parse_cpus("half").unwrap_err().to_string();
    assert!(e.contains("cpus") && e.contains("\"half\""), "{e}");

    let too_many = format!("\"{}\"", online + 1);
    let cases: Vec<(Resources, &str, &str)> = vec![
        (
            Resources {
                memory: Some(4096),
                ..Default::default()
            },
            "memory",
            "\"4096\"",
        ),
        (
            Resources {
                memory: Some(-5),
                ..Default::default()
            },
            "memory",
            "\"-5\"",
        ),
        (
            Resources {
                nano_cpus: Some((online as i64 + 1) * 1_000_000_000),
                ..Default::default()
            },
            "cpus",
            &too_many,
        ),
        (
            Resources {
                cpuset_cpus: Some("0-1x".into()),
                ..Default::default()
            },
            "cpuset-cpus",
            "\"0-1x\"",
        ),
        (
            Resources {
                cpuset_cpus: Some("0-4095".into()),
                ..Default::default()
            },
            "cpuset-cpus",
            "\"0-4095\"",
        ),
        (
            Resources {
                cpu_shares: Some(1),
                ..Default::default()
            },
            "cpu-shares",
            "\"1\"",
        ),
    ];
    for (res, control, value) in cases {
        // A valid pids limit rides along: it must not be written when the
        // request as a whole is refused.
        let res = Resources {
            pids_limit: Some(7),
            ..res
        };
        let e = cg.apply(&res).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(control) && msg.contains(value), "{msg}");
        assert_eq!(cg.counters().unwrap().pids_limit, None, "{msg}");
    }
}

#[test]
fn unavailable_blkio_weight_is_refused_naming_it() {
    let Some(layout) = host_layout() else { return };
    let bfq_in_use = std::fs::read_dir("/sys/block").unwrap().flatten().any(|d| {
        std::fs::read_to_string(d.path().join("queue/scheduler")).is_ok_and(|s| s.contains("[bfq]"))
    });
    let g = Guard::create(&layout);
    let cg = g.cg();
    let res = Resources {
        blkio_weight: Some(500),
        pids_limit: Some(9),
        ..Default::default()
    };
    match cg.apply(&res) {
        Err(e) => {
            let msg = e.to_string();
            assert!(matches!(e, CgroupError::Unavailable { .. }), "{msg}");
            assert!(msg.contains("blkio-weight"), "{msg}");
            assert!(msg.contains("not available"), "{msg}");
            // Refused as a whole: the pids limit was not written either.
            assert_eq!(cg.counters().unwrap().pids_limit, None);
            eprintln!("{msg}");
        }
        Ok(()) => assert!(
            bfq_in_use,
            "blkio weight accepted without a weighting scheduler"
        ),
    }
}

/// The host's v1 hierarchies alone (the cgroup2 mount left out), so
/// `kill_all` has no `cgroup.kill` and must freeze, signal and repeat.
fn v1_only_layout() -> Option<lookout_cgroups::Layout> {
    host_layout()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let without_cgroup2: String = mountinfo
        .lines()
        .filter(|l| !l.contains(" - cgroup2 "))
        .map(|l| format!("{l}\n"))
        .collect();
    match lookout_cgroups::Layout::from_mountinfo(&without_cgroup2, Path::new("/")) {
        Ok(l) => Some(l.with_self_cgroup(&std::fs::read_to_string("/proc/self/cgroup").unwrap())),
        Err(e) => {
            eprintln!("skipped: no v1 hierarchy ({e})");
            None
        }
    }
}

#[test]
fn v1_kill_all_freezes_signals_and_repeats_until_empty() {
    let Some(layout) = v1_only_layout() else {
        return;
    };
    assert_eq!(layout.kind(), LayoutKind::V1);
    let g = Guard::create(&layout);
    let cg = g.cg();
    assert!(cg.unified_dir().is_none());
    let mut bomb = Proc::spawn("while :; do sleep 60 & done");
    cg.add_process(bomb.pid()).unwrap();
    bomb.release();
    poll(5 * SEC, || (cg.procs().unwrap().len() > 20).then_some(())).expect("loop forks");
    cg.kill_all(5 * SEC).unwrap();
    assert!(cg.procs().unwrap().is_empty());
    assert!(bomb.wait_timeout(5 * SEC).is_some());
}

#[test]
fn kill_all_kills_a_frozen_cgroup() {
    let Some(layout) = host_layout() else { return };
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
