//! Counter parsers on fixture trees of real kernel files
//! (`tests/fixtures/{v1,v1-idle,v2}`); no root needed.

use std::path::{Path, PathBuf};

use lookout_cgroups::counters::read_oom;
use lookout_cgroups::{CgroupError, CgroupVersion, Counters, HostFs, OomStatus, StatDir, StatDirs};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn v1_counters() {
    let c = Counters::read(&HostFs, &StatDirs::v1_under(&fixture("v1"))).unwrap();
    assert_eq!(
        c,
        Counters {
            cpu_user_ns: 1_830_000_000,
            cpu_system_ns: 680_000_000,
            cpu_total_ns: 2_512_045_671,
            nr_periods: 40,
            nr_throttled: 19,
            throttled_ns: 1_203_384_512,
            memory_usage: 31_457_280,
            memory_limit: Some(33_554_432),
            memory_cache: 5_165_056,
            memory_rss: 25_329_664,
            memory_inactive_file: 5_042_176,
            memory_working_set: 31_457_280 - 5_042_176,
            memory_swap: Some(0),
            oom_events: 1,
            oom_kill: 1,
            pids_current: 3,
            pids_limit: Some(20),
            blkio_read_bytes: 1_048_576 + 4096,
            blkio_write_bytes: 20_971_520,
            blkio_read_ops: 257,
            blkio_write_ops: 20,
        }
    );
}

#[test]
fn v1_idle_unlimited_and_old_kernel_cpuacct() {
    let c = Counters::read(&HostFs, &StatDirs::v1_under(&fixture("v1-idle"))).unwrap();
    // No cpuacct.usage_user/_sys: USER_HZ ticks from cpuacct.stat.
    assert_eq!(c.cpu_user_ns, 30_000_000);
    assert_eq!(c.cpu_system_ns, 20_000_000);
    assert_eq!(c.cpu_total_ns, 62_751_618);
    assert_eq!(c.memory_limit, None, "9223372036854771712 is unlimited");
    assert_eq!(c.pids_limit, None);
    assert_eq!(c.memory_swap, None, "no swap accounting");
    assert_eq!(c.memory_working_set, 5_681_152 - 5_042_176);
    assert_eq!(
        (c.oom_kill, c.blkio_read_bytes, c.blkio_write_ops),
        (0, 0, 0)
    );
}

#[test]
fn v2_counters() {
    let c = Counters::read(&HostFs, &StatDirs::v2(&fixture("v2"))).unwrap();
    assert_eq!(
        c,
        Counters {
            cpu_user_ns: 1_830_112_000,
            cpu_system_ns: 681_933_000,
            cpu_total_ns: 2_512_045_000,
            nr_periods: 40,
            nr_throttled: 19,
            throttled_ns: 1_203_384_000,
            memory_usage: 62_914_560,
            memory_limit: Some(67_108_864),
            memory_cache: 8_388_608,
            memory_rss: 52_428_800,
            memory_inactive_file: 6_291_456,
            memory_working_set: 62_914_560 - 6_291_456,
            memory_swap: Some(1_048_576),
            oom_events: 2,
            oom_kill: 1,
            pids_current: 2,
            pids_limit: Some(20),
            blkio_read_bytes: 1_048_576 + 4096,
            blkio_write_bytes: 20_971_520,
            blkio_read_ops: 257,
            blkio_write_ops: 20,
        }
    );
}

#[test]
fn oom_status_v1_and_v2() {
    let v1 = StatDir {
        version: CgroupVersion::V1,
        path: fixture("v1/memory"),
    };
    assert_eq!(
        read_oom(&HostFs, &v1).unwrap(),
        OomStatus {
            oom_events: 1,
            oom_kill: 1,
            under_oom: false
        }
    );
    let idle = StatDir {
        version: CgroupVersion::V1,
        path: fixture("v1-idle/memory"),
    };
    assert_eq!(read_oom(&HostFs, &idle).unwrap().oom_kill, 0);
    let v2 = StatDir {
        version: CgroupVersion::V2,
        path: fixture("v2"),
    };
    assert_eq!(
        read_oom(&HostFs, &v2).unwrap(),
        OomStatus {
            oom_events: 2,
            oom_kill: 1,
            under_oom: false
        }
    );
}

#[test]
fn missing_controllers_read_as_zero() {
    // A v2 cgroup with no controller enabled (like a child of the hybrid
    // layout's cgroup2 mount): only cpu.stat's usage lines.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("cpu.stat"),
        "usage_usec 18458\nuser_usec 18458\nsystem_usec 0\nnice_usec 0\n",
    )
    .unwrap();
    let d = Some(StatDir {
        version: CgroupVersion::V2,
        path: tmp.path().to_path_buf(),
    });
    let dirs = StatDirs {
        cpuacct: d.clone(),
        cpu: d,
        ..Default::default()
    };
    let c = Counters::read(&HostFs, &dirs).unwrap();
    assert_eq!(c.cpu_total_ns, 18_458_000);
    assert_eq!((c.nr_periods, c.nr_throttled, c.memory_usage), (0, 0, 0));
    assert_eq!(c.memory_limit, None);
}

#[test]
fn malformed_and_missing_files_name_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for f in [
        "memory.current",
        "memory.max",
        "memory.stat",
        "memory.events",
    ] {
        std::fs::copy(fixture("v2").join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("memory.stat"), "anon 12\nfile twelve\n").unwrap();
    let dirs = StatDirs {
        memory: Some(StatDir {
            version: CgroupVersion::V2,
            path: dir.to_path_buf(),
        }),
        ..Default::default()
    };
    let e = Counters::read(&HostFs, &dirs).unwrap_err();
    assert!(matches!(e, CgroupError::Parse { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("memory.stat") && msg.contains("file twelve"),
        "{msg}"
    );

    std::fs::remove_file(dir.join("memory.stat")).unwrap();
    let e = Counters::read(&HostFs, &dirs).unwrap_err();
    assert!(matches!(e, CgroupError::Read { .. }), "{e}");
    assert!(e.to_string().contains("memory.stat"), "{e}");
}
