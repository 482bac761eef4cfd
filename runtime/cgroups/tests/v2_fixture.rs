//! v2 limits on a temporary directory laid out like a cgroup2 mount, with a
//! small fake kernel (a [`CgroupFs`]) that populates control files when a
//! cgroup directory is made, keeps `cgroup.subtree_control` like the kernel
//! and answers `cgroup.freeze` in `cgroup.events`. No root needed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lookout_cgroups::{
    Cgroup, CgroupError, CgroupFs, FreezerState, HostFs, Layout, LayoutKind, Resources,
};

const MOUNTINFO: &str = "\
22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw
27 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

/// Plays the kernel's part on a plain directory tree.
struct FakeKernel {
    /// Whether the kernel accounts swap (offers memory.swap.max).
    swap: bool,
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

impl CgroupFs for FakeKernel {
    fn read(&self, dir: &Path, file: &str) -> io::Result<String> {
        HostFs.read(dir, file)
    }

    fn write(&self, dir: &Path, file: &str, value: &str) -> io::Result<()> {
        match file {
            "cgroup.subtree_control" => {
                let avail = words(&HostFs.read(dir, "cgroup.controllers")?);
                let mut on = words(&HostFs.read(dir, file)?);
                for tok in value.split_whitespace() {
                    let (add, c) = tok.split_at(1);
                    if !avail.iter().any(|a| a == c) {
                        return Err(io::Error::from_raw_os_error(libc_enoent()));
                    }
                    on.retain(|x| x != c);
                    if add == "+" {
                        on.push(c.to_string());
                    }
                }
                HostFs.write(dir, file, &format!("{}\n", on.join(" ")))
            }
            "cgroup.freeze" => {
                HostFs.write(dir, file, value)?;
                let frozen = value.trim() == "1";
                HostFs.write(
                    dir,
                    "cgroup.events",
                    &format!("populated 0\nfrozen {}\n", u8::from(frozen)),
                )
            }
            _ => HostFs.write(dir, file, value),
        }
    }

    fn exists(&self, dir: &Path, file: &str) -> bool {
        HostFs.exists(dir, file)
    }

    fn dir_exists(&self, dir: &Path) -> bool {
        HostFs.dir_exists(dir)
    }

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir(dir)?;
        let parent = dir.parent().unwrap();
        let enabled = words(&fs::read_to_string(parent.join("cgroup.subtree_control"))?);
        let mut files: Vec<(&str, String)> = vec![
            ("cgroup.controllers", format!("{}\n", enabled.join(" "))),
            ("cgroup.subtree_control", "\n".into()),
            ("cgroup.procs", String::new()),
            ("cgroup.events", "populated 0\nfrozen 0\n".into()),
            ("cgroup.freeze", "0\n".into()),
            ("cgroup.kill", String::new()),
            (
                "cpu.stat",
                "usage_usec 0\nuser_usec 0\nsystem_usec 0\n".into(),
            ),
        ];
        let on = |c: &str| enabled.iter().any(|e| e == c);
        if on("memory") {
            files.extend([
                ("memory.max", "max\n".into()),
                ("memory.low", "0\n".into()),
                ("memory.high", "max\n".into()),
                ("memory.current", "0\n".into()),
                (
                    "memory.events",
                    "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n".into(),
                ),
                ("memory.stat", "anon 0\nfile 0\ninactive_file 0\n".into()),
            ]);
            if self.swap {
                files.extend([
                    ("memory.swap.max", "max\n".into()),
                    ("memory.swap.current", "0\n".into()),
                ]);
            }
        }
        if on("cpu") {
            files.extend([
                ("cpu.max", "max 100000\n".into()),
                ("cpu.weight", "100\n".into()),
            ]);
        }
        if on("cpuset") {
            let eff = |f: &str| fs::read_to_string(parent.join(f)).unwrap_or_default();
            files.extend([
                ("cpuset.cpus", "\n".into()),
                ("cpuset.mems", "\n".into()),
                ("cpuset.cpus.effective", eff("cpuset.cpus.effective")),
                ("cpuset.mems.effective", eff("cpuset.mems.effective")),
            ]);
        }
        if on("pids") {
            files.extend([("pids.max", "max\n".into()), ("pids.current", "0\n".into())]);
        }
        if on("io") {
            files.extend([
                ("io.stat", String::new()),
                ("io.max", String::new()),
                ("io.weight", "default 100\n".into()),
                ("io.bfq.weight", "default 100\n".into()),
            ]);
        }
        for (f, v) in files {
            fs::write(dir.join(f), v)?;
        }
        Ok(())
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        // rmdir(2) on cgroupfs ignores the control files but refuses while
        // child cgroups exist.
        if !HostFs.child_dirs(dir)?.is_empty() {
            return Err(io::Error::from_raw_os_error(libc_ebusy()));
        }
        fs::remove_dir_all(dir)
    }

    fn child_dirs(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        HostFs.child_dirs(dir)
    }
}

fn libc_enoent() -> i32 {
    nix::errno::Errno::ENOENT as i32
}

fn libc_ebusy() -> i32 {
    nix::errno::Errno::EBUSY as i32
}

/// A temp root holding `/sys/fs/cgroup` (the v2 root), `/sys/block` and the
/// online CPU list.
struct Host {
    tmp: tempfile::TempDir,
}

impl Host {
    fn new(controllers: &str, scheduler: &str, iocost: bool) -> Host {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        let cg = r.join("sys/fs/cgroup");
        fs::create_dir_all(&cg).unwrap();
        fs::write(cg.join("cgroup.controllers"), format!("{controllers}\n")).unwrap();
        fs::write(cg.join("cgroup.subtree_control"), "\n").unwrap();
        fs::write(cg.join("cgroup.procs"), "1\n").unwrap();
        fs::write(cg.join("cpuset.cpus.effective"), "0-3\n").unwrap();
        fs::write(cg.join("cpuset.mems.effective"), "0\n").unwrap();
        let qos = if iocost {
            "8:0 enable=1 ctrl=auto rpct=0.00 rlat=250000 wpct=0.00 wlat=250000 min=1.00 max=10000.00\n"
        } else {
            ""
        };
        fs::write(cg.join("io.cost.qos"), qos).unwrap();
        let cpu = r.join("sys/devices/system/cpu");
        fs::create_dir_all(&cpu).unwrap();
        fs::write(cpu.join("online"), "0-3\n").unwrap();
        let q = r.join("sys/block/sda/queue");
        fs::create_dir_all(&q).unwrap();
        fs::write(q.join("scheduler"), format!("{scheduler}\n")).unwrap();
        Host { tmp }
    }

    fn layout(&self) -> Layout {
        Layout::from_mountinfo(MOUNTINFO, self.tmp.path())
            .unwrap()
            .with_self_cgroup("0::/\n")
    }

    fn cgroot(&self) -> PathBuf {
        self.tmp.path().join("sys/fs/cgroup")
    }

    fn create(&self, swap: bool, path: &str) -> Cgroup {
        Cgroup::create_with(Arc::new(FakeKernel { swap }), &self.layout(), path).unwrap()
    }
}

const ALL: &str = "cpuset cpu io memory hugetlb pids rdma misc";
const NO_BFQ: &str = "[none] mq-deadline kyber bfq";

fn read(dir: &Path, f: &str) -> String {
    fs::read_to_string(dir.join(f)).unwrap().trim().to_string()
}

#[test]
fn create_enables_controllers_and_limits_are_written() {
    let h = Host::new(ALL, NO_BFQ, false);
    assert_eq!(h.layout().kind(), LayoutKind::V2);
    let cg = h.create(true, "lookout/abc");
    let dir = h.cgroot().join("lookout/abc");
    assert_eq!(cg.unified_dir(), Some(dir.as_path()));
    // Enabled on the way down (root and lookout), never in the leaf.
    assert_eq!(
        read(&h.cgroot(), "cgroup.subtree_control"),
        "cpuset cpu io memory pids"
    );
    assert_eq!(
        read(&h.cgroot().join("lookout"), "cgroup.subtree_control"),
        "cpuset cpu io memory pids"
    );
    assert_eq!(read(&dir, "cgroup.subtree_control"), "");
    assert_eq!(
        read(&dir, "cgroup.controllers"),
        "cpuset cpu io memory pids"
    );

    cg.apply(&Resources {
        memory: Some(32 << 20),
        memory_reservation: Some(16 << 20),
        memory_swap: Some(48 << 20),
        cpu_shares: Some(1024),
        nano_cpus: Some(1_500_000_000),
        cpuset_cpus: Some("1-2".into()),
        cpuset_mems: Some("0".into()),
        pids_limit: Some(20),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&dir, "memory.max"), "33554432");
    assert_eq!(read(&dir, "memory.low"), "16777216");
    assert_eq!(read(&dir, "memory.swap.max"), (16u64 << 20).to_string());
    assert_eq!(read(&dir, "cpu.weight"), "39");
    assert_eq!(read(&dir, "cpu.max"), "150000 100000");
    assert_eq!(read(&dir, "cpuset.cpus"), "1-2");
    assert_eq!(read(&dir, "cpuset.mems"), "0");
    assert_eq!(read(&dir, "pids.max"), "20");

    // Unlimited values use v2's "max".
    cg.apply(&Resources {
        memory_swap: Some(-1),
        cpu_quota: Some(-1),
        cpu_period: Some(50_000),
        pids_limit: Some(0),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&dir, "memory.swap.max"), "max");
    assert_eq!(read(&dir, "cpu.max"), "max 50000");
    assert_eq!(read(&dir, "pids.max"), "max");

    // The counters read the fake kernel's zeros.
    let c = cg.counters().unwrap();
    assert_eq!(c.memory_limit, Some(32 << 20));
    assert_eq!(c.pids_limit, None);
}

#[test]
fn swap_is_refused_where_not_accounted_and_nothing_is_written() {
    let h = Host::new(ALL, NO_BFQ, false);
    let cg = h.create(false, "lookout/abc");
    let dir = h.cgroot().join("lookout/abc");
    let e = cg
        .apply(&Resources {
            memory: Some(32 << 20),
            memory_swap: Some(64 << 20),
            ..Default::default()
        })
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, CgroupError::Unavailable { .. }), "{msg}");
    assert!(msg.contains("memory-swap is not available"), "{msg}");
    assert!(msg.contains("memory.swap.max"), "{msg}");
    assert!(msg.contains("does not account swap"), "{msg}");
    assert_eq!(read(&dir, "memory.max"), "max", "refused as a whole");
    // Without swap the memory limit alone is fine.
    cg.apply(&Resources {
        memory: Some(32 << 20),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(read(&dir, "memory.max"), "33554432");
}

#[test]
fn blkio_weight_needs_a_weighting_scheduler() {
    // Scheduler none, no io.cost: refused, naming the control.
    let h = Host::new(ALL, NO_BFQ, false);
    let cg = h.create(true, "lookout/abc");
    let e = cg
        .apply(&Resources {
            blkio_weight: Some(500),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("blkio-weight is not available"), "{e}");
    assert!(e.contains("none"), "{e}");

    // bfq on a device: io.bfq.weight, on Docker's 10–1000 scale.
    let h = Host::new(ALL, "none mq-deadline kyber [bfq]", false);
    let cg = h.create(true, "lookout/abc");
    cg.apply(&Resources {
        blkio_weight: Some(500),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        read(&h.cgroot().join("lookout/abc"), "io.bfq.weight"),
        "500"
    );

    // io.cost enabled: io.weight, converted to 1–10000.
    let h = Host::new(ALL, NO_BFQ, true);
    let cg = h.create(true, "lookout/abc");
    cg.apply(&Resources {
        blkio_weight: Some(500),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        read(&h.cgroot().join("lookout/abc"), "io.weight"),
        "default 4950"
    );
}

#[test]
fn controllers_the_parent_does_not_offer_are_refused() {
    let h = Host::new("cpu memory", NO_BFQ, false);
    let cg = h.create(true, "lookout/abc");
    for (res, control, controller) in [
        (
            Resources {
                pids_limit: Some(20),
                ..Default::default()
            },
            "pids-limit",
            "pids",
        ),
        (
            Resources {
                cpuset_cpus: Some("0".into()),
                ..Default::default()
            },
            "cpuset-cpus",
            "cpuset",
        ),
        (
            Resources {
                blkio_weight: Some(300),
                ..Default::default()
            },
            "blkio-weight",
            "io",
        ),
    ] {
        let e = cg.apply(&res).unwrap_err().to_string();
        assert!(e.contains(&format!("{control} is not available")), "{e}");
        assert!(
            e.contains(&format!("the {controller} controller is not enabled")),
            "{e}"
        );
    }
}

#[test]
fn cpuset_outside_the_parent_is_rejected_naming_it() {
    let h = Host::new(ALL, NO_BFQ, false);
    let cg = h.create(true, "lookout/abc");
    let e = cg
        .apply(&Resources {
            cpuset_cpus: Some("2-7".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid cpuset-cpus value \"2-7\""), "{e}");
    assert!(e.contains("available: 0-3"), "{e}");
    let e = cg
        .apply(&Resources {
            cpuset_mems: Some("1".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cpuset-mems") && e.contains("available: 0"),
        "{e}"
    );
    let e = cg
        .apply(&Resources {
            nano_cpus: Some(5_000_000_000),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("invalid cpus value \"5\"") && e.contains("4 CPUs"),
        "{e}"
    );
}

#[test]
fn freeze_and_thaw_follow_cgroup_events() {
    let h = Host::new(ALL, NO_BFQ, false);
    let cg = h.create(true, "lookout/abc");
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Thawed);
    cg.freeze(Duration::from_secs(1)).unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Frozen);
    assert_eq!(read(&h.cgroot().join("lookout/abc"), "cgroup.freeze"), "1");
    cg.thaw(Duration::from_secs(1)).unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Thawed);
}

#[test]
fn delete_removes_what_create_made_and_keeps_shared_parents() {
    let h = Host::new(ALL, NO_BFQ, false);
    let mut a = h.create(true, "lookout/a");
    let mut b = h.create(true, "lookout/b");
    fs::create_dir(h.cgroot().join("lookout/a/nested")).unwrap();
    a.delete(Duration::from_secs(1)).unwrap();
    assert!(!h.cgroot().join("lookout/a").exists());
    assert!(h.cgroot().join("lookout").exists(), "still used by b");
    b.delete(Duration::from_secs(1)).unwrap();
    assert!(!h.cgroot().join("lookout/b").exists());
    // b did not create lookout (a did), so it is left; a later delete of a
    // container that did create it removes it once empty.
    let mut c = h.create(true, "/lookout2/c");
    c.delete(Duration::from_secs(1)).unwrap();
    assert!(!h.cgroot().join("lookout2").exists());
    assert!(h.cgroot().exists());
}

#[test]
fn open_finds_an_existing_cgroup_and_bad_paths_are_rejected() {
    let h = Host::new(ALL, NO_BFQ, false);
    let _cg = h.create(true, "lookout/abc");
    let fs: Arc<dyn CgroupFs> = Arc::new(FakeKernel { swap: true });
    let opened = Cgroup::open_with(fs.clone(), &h.layout(), "lookout/abc").unwrap();
    assert_eq!(
        opened.unified_dir(),
        Some(h.cgroot().join("lookout/abc").as_path())
    );
    let e = Cgroup::open_with(fs.clone(), &h.layout(), "lookout/nope").unwrap_err();
    assert!(e.to_string().contains("lookout/nope"), "{e}");
    for bad in ["", "/", "../escape", "a//b"] {
        let e = Cgroup::create_with(fs.clone(), &h.layout(), bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid cgroup path"), "{e}");
    }
}
