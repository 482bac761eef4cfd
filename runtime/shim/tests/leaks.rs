//! 200 daemonless runs leave no cgroup, mount, shim or zombie behind.
//!
//! The test makes itself a child subreaper, so every detached shim is
//! re-parented to it and its subtree can be counted exactly (this
//! machine's PID 1 reaps orphans only every second or two). It lives in a
//! binary of its own because being a subreaper is process-wide.

mod common;

use common::*;
use std::time::Duration;

/// Mounts in our namespace that involve this test's files or the root
/// the containers ran on (other tests run in parallel and mount their own
/// things, so the total count is not ours to compare).
fn our_mounts(w: &World) -> Vec<String> {
    let tmp = w.tmp.path().to_string_lossy().into_owned();
    let root = rootfs().to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&tmp) || l.contains(&root))
        .map(String::from)
        .collect()
}

/// Our direct children, read from /proc (zombies included).
fn children() -> Vec<(i32, char)> {
    let me = std::process::id() as i32;
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(") ").map(|x| x.1) else {
            continue;
        };
        let mut f = rest.split(' ');
        let state = f.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid: i32 = f.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        if ppid == me {
            v.push((pid, state));
        }
    }
    v
}

#[test]
fn two_hundred_runs_leave_nothing() {
    let w = World::new();
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(r, 0);
    let mounts = our_mounts(&w);
    let mut reaped_shims = 0;
    for i in 0..200 {
        let id = format!("leak{i}");
        let o = w.run(&id, &["--rm"], &["true"]);
        assert_eq!(o.status.code(), Some(0), "run {i}: {}", stderr(&o));
        // Reap the shims re-parented to us as they exit.
        while let Ok(s) = nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
        {
            if s == nix::sys::wait::WaitStatus::StillAlive {
                break;
            }
            reaped_shims += 1;
        }
    }
    // Every shim exits after reporting; give the last ones a moment.
    assert!(
        wait_until(Duration::from_secs(10), || {
            while let Ok(s) =
                nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
            {
                if s == nix::sys::wait::WaitStatus::StillAlive {
                    break;
                }
                reaped_shims += 1;
            }
            children().is_empty()
        }),
        "left in our subtree: {:?}",
        children()
    );
    assert_eq!(reaped_shims, 200, "one shim per run, each reaped by us");
    assert_eq!(our_mounts(&w), mounts, "mounts leaked");
    assert!(
        w.leftover_cgroups().is_empty(),
        "{:?}",
        w.leftover_cgroups()
    );
    assert_eq!(
        std::fs::read_dir(w.root()).unwrap().count(),
        0,
        "--rm left state behind"
    );
}
