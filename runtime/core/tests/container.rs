//! Real containers on the real kernel (root, busybox rootfs built by
//! scripts/build-rootfs.sh). Every test has its own overlay rootfs and
//! cgroup path; the helpers check the cgroup is gone afterwards.

mod container_util;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::thread::sleep;
use std::time::{Duration, Instant};

use container_util::*;
use lookout_core::spec::{NetworkMode, RlimitSpec};

const DOCKER_CAPS: &str = "00000000a80425fb";

#[test]
fn pid1_and_only_own_processes() {
    let out = sh(
        "echo $$; ls /proc | grep -E '^[0-9]+$'; ps -o pid,comm",
        |_| {},
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1"), "{out}");
    let pids: Vec<u32> = lines.clone().map_while(|l| l.trim().parse().ok()).collect();
    assert!(pids.contains(&1), "{out}");
    // sh, ls, grep (and nothing of the host's).
    assert!(pids.len() <= 4 && pids.iter().all(|p| *p < 10), "{out}");
    let ps: Vec<&str> = out.lines().skip(1 + pids.len()).collect();
    assert!(ps[0].contains("PID"), "{out}");
    assert!(ps.iter().any(|l| l.trim_start().starts_with("1 ")), "{out}");
    assert!(ps.len() <= 3, "ps shows more than sh and itself: {out}");
}

#[test]
fn hostname_is_short_id_or_custom() {
    let rootfs = Rootfs::new();
    let s = spec(
        &rootfs,
        &["sh", "-c", "hostname; cat /etc/hostname; echo $HOSTNAME"],
    );
    let id = s.id.clone();
    let out = start(&s).unwrap().finish();
    let short = &id[..12];
    assert_eq!(out.stdout, format!("{short}\n{short}\n{short}\n"));

    let out = sh("hostname; cat /etc/hostname", |s| {
        s.hostname = Some("web-1".into())
    });
    assert_eq!(out, "web-1\nweb-1\n");
}

#[test]
fn own_mount_table() {
    let out = sh("cat /proc/self/mountinfo", |_| {});
    let points: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .collect();
    assert!(points.contains(&"/"), "{out}");
    for p in [
        "/proc",
        "/sys",
        "/sys/fs/cgroup",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
    ] {
        assert!(points.contains(&p), "{p} missing: {out}");
    }
    assert!(
        !points
            .iter()
            .any(|p| p.starts_with("/work") || p.starts_with("/mnt") || p.starts_with("/tmp")),
        "host mounts visible: {out}"
    );
    // The root is the overlay, not the host's ext4.
    let root = out
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .unwrap();
    assert!(root.contains(" - overlay "), "{root}");
    // /sys and /sys/fs/cgroup read-only; /dev as Docker sets it up.
    let opts = |p: &str| {
        out.lines()
            .find(|l| l.split_whitespace().nth(4) == Some(p))
            .and_then(|l| l.split_whitespace().nth(5))
            .unwrap()
            .to_string()
    };
    assert!(opts("/sys").starts_with("ro"), "{out}");
    assert!(opts("/sys/fs/cgroup").starts_with("ro"), "{out}");
    assert!(opts("/dev").contains("nosuid"), "{out}");
    assert!(opts("/dev/shm").contains("noexec"), "{out}");
}

#[test]
fn own_cgroup_read_only_through_cgroup_namespace() {
    let out = sh(
        "cat /proc/self/cgroup | cut -d: -f3 | sort -u; \
         cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; \
         cat /sys/fs/cgroup/pids/cgroup.procs; \
         echo 1 2>/dev/null > /sys/fs/cgroup/pids/pids.max; echo write=$?; \
         mkdir /sys/fs/cgroup/x 2>/dev/null; echo mkdir=$?",
        |s| {
            s.resources.memory = Some(64 << 20);
            s.resources.pids_limit = Some(50);
        },
    );
    // Every hierarchy shows the container's cgroup as its root.
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "/", "{out}");
    assert_eq!(l[1], (64u64 << 20).to_string(), "{out}");
    assert_eq!(l[2], "50", "{out}");
    assert_eq!(l[3], "1", "{out}");
    assert!(l.contains(&"write=1"), "{out}");
    assert!(l.contains(&"mkdir=1"), "{out}");
}

#[test]
fn dev_is_minimal() {
    let out = sh(
        "ls /dev | sort | tr '\\n' ' '; echo; readlink /dev/ptmx; readlink /dev/fd; readlink /dev/stdin; \
         echo hi > /dev/null && head -c 4 /dev/zero | wc -c; stat -c '%a %g' /dev/pts/ptmx",
        |_| {},
    );
    let mut l = out.lines();
    assert_eq!(
        l.next().unwrap().trim(),
        "core fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero"
    );
    assert_eq!(l.next(), Some("pts/ptmx"));
    assert_eq!(l.next(), Some("/proc/self/fd"));
    assert_eq!(l.next(), Some("/proc/self/fd/0"));
    assert_eq!(l.next(), Some("4"));
    assert_eq!(l.next(), Some("666 0"));
}

#[test]
fn network_none_has_only_lo_up() {
    let out = sh(
        "ls /sys/class/net; cat /sys/class/net/lo/flags; grep -c : /proc/net/dev; cat /etc/hosts",
        |_| {},
    );
    let mut l = out.lines();
    assert_eq!(l.next(), Some("lo"), "{out}");
    let flags = u32::from_str_radix(l.next().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is not up: {out}");
    assert_eq!(l.next(), Some("1"), "{out}");
    let hosts: Vec<&str> = l.collect();
    assert_eq!(hosts[0], "127.0.0.1\tlocalhost");
    assert_eq!(hosts[1], "::1\tlocalhost ip6-localhost ip6-loopback");
    assert!(hosts.iter().all(|h| !h.contains("web")), "{out}");
}

#[test]
fn network_host_shares_interfaces_and_hosts() {
    let out = sh("hostname; ls /sys/class/net | wc -l; cat /etc/hosts", |s| {
        s.network = NetworkMode::Host;
    });
    let host_ifaces = fs::read_dir("/sys/class/net").unwrap().count();
    // Docker: with host networking the hostname defaults to the host's.
    let (name, out) = out.split_once('\n').unwrap();
    let host_name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(name, host_name.trim());
    let (n, hosts) = out.split_once('\n').unwrap();
    assert_eq!(n.trim().parse::<usize>().unwrap(), host_ifaces);
    let host_hosts = fs::read_to_string("/etc/hosts").unwrap_or_default();
    assert_eq!(hosts, host_hosts);
}

#[test]
fn resolv_conf_is_the_hosts() {
    let out = sh("cat /etc/resolv.conf", |_| {});
    assert_eq!(
        out,
        fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
    );
}

#[test]
fn docker_default_capabilities() {
    let out = sh(
        "grep Cap /proc/self/status; grep NoNewPrivs /proc/self/status",
        |_| {},
    );
    assert_eq!(field(&out, "CapEff"), DOCKER_CAPS, "{out}");
    assert_eq!(field(&out, "CapPrm"), DOCKER_CAPS, "{out}");
    assert_eq!(field(&out, "CapBnd"), DOCKER_CAPS, "{out}");
    assert_eq!(field(&out, "CapInh"), "0000000000000000", "{out}");
    assert_eq!(field(&out, "CapAmb"), "0000000000000000", "{out}");
    assert_eq!(field(&out, "NoNewPrivs"), "1", "{out}");
}

#[test]
fn cap_add_and_drop() {
    let out = sh("grep Cap /proc/self/status", |s| {
        s.process.cap_add = vec!["sys_admin".into()];
        s.process.cap_drop = vec!["CAP_NET_RAW".into(), "mknod".into()];
    });
    let want = (0xa80425fbu64 | 1 << 21) & !(1 << 13) & !(1 << 27);
    assert_eq!(field(&out, "CapEff"), format!("{want:016x}"), "{out}");
    assert_eq!(field(&out, "CapBnd"), format!("{want:016x}"), "{out}");

    let out = sh("grep Cap /proc/self/status", |s| {
        s.process.cap_drop = vec!["ALL".into()];
        s.process.cap_add = vec!["chown".into()];
    });
    assert_eq!(field(&out, "CapEff"), "0000000000000001", "{out}");

    let e = start_err(&["true"], |s| s.process.cap_add = vec!["CAP_FLY".into()]);
    assert!(e.to_string().contains("CAP_FLY"), "{e}");
}

#[test]
fn non_root_user_has_no_effective_caps() {
    let out = sh("id; grep Cap /proc/self/status", |s| {
        s.process.user = Some("nobody".into())
    });
    assert!(
        out.starts_with("uid=65534(nobody) gid=65534(nogroup)"),
        "{out}"
    );
    assert_eq!(field(&out, "CapEff"), "0000000000000000", "{out}");
    assert_eq!(field(&out, "CapPrm"), "0000000000000000", "{out}");
    assert_eq!(field(&out, "CapBnd"), DOCKER_CAPS, "{out}");
}

#[test]
fn proc_sys_read_only_and_kcore_masked() {
    let out = sh(
        "echo x 2>/dev/null > /proc/sys/kernel/domainname; echo write=$?; \
         echo 1 2>/dev/null > /proc/sysrq-trigger; echo sysrq=$?; \
         if [ -e /proc/kcore ]; then echo $(wc -c < /proc/kcore) $(stat -c %t:%T /proc/kcore); \
         else echo absent; fi; \
         ls /sys/firmware | wc -l; grep -c '' /proc/timer_list; stat -c %t:%T /proc/keys",
        |_| {},
    );
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "write=1", "{out}");
    assert_eq!(l[1], "sysrq=1", "{out}");
    // This kernel may be built without /proc/kcore; where it exists, it
    // must read as /dev/null.
    if std::path::Path::new("/proc/kcore").exists() {
        assert_eq!(l[2], "0 1:3", "/proc/kcore is not masked: {out}");
    } else {
        assert_eq!(l[2], "absent", "{out}");
    }
    assert_eq!(l[3].trim(), "0", "/sys/firmware not masked: {out}");
    assert_eq!(l[4].trim(), "0", "/proc/timer_list not masked: {out}");
    assert_eq!(l[5], "1:3", "/proc/keys not masked: {out}");
}

#[test]
fn host_root_block_device_can_be_made_but_not_opened() {
    let dev = fs::metadata("/").unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let script = format!(
        "mknod /tmp/disk b {major} {minor} && echo made; \
         head -c 1 /tmp/disk > /dev/null 2>/tmp/err; echo open=$?; cat /tmp/err"
    );
    let out = sh(&script, |_| {});
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "made", "{out}");
    assert_eq!(
        l[1], "open=1",
        "the host's disk {major}:{minor} could be opened: {out}"
    );
    assert!(out.contains("Operation not permitted"), "{out}");
}

#[test]
fn user_resolution() {
    let out = sh("id", |s| s.process.user = Some("1000:1000".into()));
    assert_eq!(out.trim(), "uid=1000(app) gid=1000(app) groups=1000(app)");
    let out = sh("id -G; echo $HOME", |s| s.process.user = Some("app".into()));
    let mut l = out.lines();
    let mut groups: Vec<u32> = l
        .next()
        .unwrap()
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    groups.sort();
    assert_eq!(groups, vec![10, 29, 1000], "{out}");
    assert_eq!(l.next(), Some("/home/app"));
    let out = sh("id -u; id -g; echo $HOME", |s| {
        s.process.user = Some("4242".into())
    });
    assert_eq!(out, "4242\n0\n/\n");
    let out = sh("id; echo $HOME", |_| {});
    assert!(out.starts_with("uid=0(root) gid=0(root)"), "{out}");
    assert!(out.ends_with("/root\n"), "{out}");
}

#[test]
fn cwd_env_and_rlimits() {
    let out = sh(
        "pwd; echo $PATH; echo $HOSTNAME; echo $FOO; ulimit -n; ulimit -Hn",
        |s| {
            s.process.cwd = Some("/srv/app/data".into());
            s.process.env = vec!["FOO=bar baz".into()];
            s.process.rlimits = vec![RlimitSpec {
                name: "nofile".into(),
                soft: 1000,
                hard: 2000,
            }];
        },
    );
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "/srv/app/data");
    assert_eq!(
        l[1],
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    assert_eq!(l[2].len(), 12);
    assert_eq!(l[3], "bar baz");
    assert_eq!(l[4], "1000");
    assert_eq!(l[5], "2000");

    let e = start_err(&["true"], |s| {
        s.process.rlimits = vec![RlimitSpec {
            name: "nofile".into(),
            soft: 10,
            hard: u64::MAX - 1,
        }];
    });
    assert!(e.to_string().contains("ulimit nofile"), "{e}");

    let e = start_err(&["true"], |s| s.process.cwd = Some("/etc/passwd".into()));
    assert!(e.to_string().contains("\"/etc/passwd\""), "{e}");
    assert!(e.to_string().contains("Not a directory"), "{e}");
}

#[test]
fn start_errors_name_the_value_and_leave_nothing() {
    let e = start_err(&["nosuch"], |_| {});
    println!("{e}");
    assert!(e.to_string().starts_with("cannot exec \"nosuch\""), "{e}");
    assert!(e.to_string().contains("No such file or directory"), "{e}");

    let e = start_err(&["/etc/passwd"], |_| {});
    println!("{e}");
    assert!(e.to_string().contains("Permission denied"), "{e}");

    let e = start_err(&["true"], |s| s.process.user = Some("bob".into()));
    assert_eq!(e.to_string(), "user \"bob\" not found in /etc/passwd");

    let e = start_err(&["true"], |s| s.process.user = Some("app:nogrp".into()));
    assert!(e.to_string().contains("\"nogrp\""), "{e}");
}

#[test]
fn exit_codes_and_signals() {
    let out = run_with(&["sh", "-c", "exit 3"], |_| {});
    assert_eq!((out.status.code, out.status.signal), (3, None));

    let rootfs = Rootfs::new();
    let s = spec(
        &rootfs,
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; while :; do sleep 0.05; done",
        ],
    );
    let r = start(&s).unwrap();
    sleep(Duration::from_millis(300));
    r.container.signal(libc::SIGTERM, false).unwrap();
    let out = r.finish();
    assert_eq!(out.status.code, 7, "{out:?}");

    let s = spec(&rootfs, &["sleep", "100"]);
    let r = start(&s).unwrap();
    r.container.signal(libc::SIGKILL, true).unwrap();
    let out = r.finish();
    assert_eq!((out.status.code, out.status.signal), (137, Some(9)));
}

#[test]
fn stdin_pipe_and_dev_null() {
    let rootfs = Rootfs::new();
    let (r, w) = pipe();
    let s = spec(&rootfs, &["sh", "-c", "cat; ls -l /proc/self/fd/ | wc -l"]);
    let run = start_with_stdin(&s, Some(r)).unwrap();
    let mut w = fs::File::from(w);
    std::io::Write::write_all(&mut w, b"hello from stdin\n").unwrap();
    drop(w);
    let out = run.finish();
    let mut l = out.stdout.lines();
    assert_eq!(l.next(), Some("hello from stdin"));
    // "total", 0, 1, 2 and the directory fd ls opened: nothing inherited.
    let fds: usize = l.next().unwrap().trim().parse().unwrap();
    assert!(fds <= 5, "{out:?}");

    // Without stdin: /dev/null (immediate EOF).
    let out = sh("cat; echo done", |_| {});
    assert_eq!(out, "done\n");
}

#[test]
fn wait_and_signal_from_other_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<lookout_core::container::Container>();

    let rootfs = Rootfs::new();
    let s = spec(&rootfs, &["sleep", "100"]);
    let r = start(&s).unwrap();
    let c = &r.container;
    std::thread::scope(|sc| {
        let waiter = sc.spawn(|| c.wait().unwrap());
        sleep(Duration::from_millis(200));
        c.signal(libc::SIGKILL, false).unwrap();
        let st = waiter.join().unwrap();
        assert_eq!(st.signal, Some(9));
        // Same status again; signalling an exited PID 1 is refused.
        assert_eq!(c.wait().unwrap(), st);
        assert!(c.signal(libc::SIGTERM, false).is_err());
    });
    let out = r.finish();
    assert_eq!(out.status.code, 137);
}

#[test]
fn memory_hog_is_oom_killed() {
    let out = run_with(&["sh", "-c", "x=aaaaaaaa; while :; do x=$x$x; done"], |s| {
        s.resources.memory = Some(32 << 20);
        s.resources.memory_swap = Some(32 << 20);
    });
    assert!(out.oom_killed, "{out:?}");
    assert_eq!(out.status.code, 137, "{out:?}");
}

#[test]
fn fork_loop_is_contained_by_pids_limit() {
    let rootfs = Rootfs::new();
    let mut s = spec(
        &rootfs,
        // The inner shell forks until the kernel refuses (ash then exits);
        // PID 1 then replaces itself without forking.
        &[
            "sh",
            "-c",
            "sh -c 'while :; do sleep 100 & done' 2>/dev/null; exec sleep 100",
        ],
    );
    s.resources.pids_limit = Some(20);
    let r = start(&s).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut max = 0;
    while Instant::now() < deadline {
        let c = r.container.cgroup().counters().unwrap();
        max = max.max(c.pids_current);
        assert_eq!(c.pids_limit, Some(20));
        sleep(Duration::from_millis(50));
    }
    assert!(max <= 20, "pids.current reached {max}");
    assert!(max >= 15, "the loop did not run: {max}");
    let dir = r.container.cgroup().dir("pids").unwrap().to_path_buf();
    let events = fs::read_to_string(dir.join("pids.events")).unwrap();
    let refused: u64 = events
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(refused > 0, "no fork was refused: {events}");
    let started = Instant::now();
    let mut c = r.container;
    c.destroy().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(c.wait().unwrap().signal, Some(9));
}

#[test]
fn cpu_quota_limits_a_busy_loop() {
    let rootfs = Rootfs::new();
    let mut s = spec(&rootfs, &["sh", "-c", "while :; do :; done"]);
    s.resources.nano_cpus = Some(500_000_000);
    let r = start(&s).unwrap();
    sleep(Duration::from_millis(200));
    let c0 = r.container.cgroup().counters().unwrap();
    let t0 = Instant::now();
    sleep(Duration::from_secs(2));
    let c1 = r.container.cgroup().counters().unwrap();
    let wall = t0.elapsed().as_nanos() as f64;
    let share = (c1.cpu_total_ns - c0.cpu_total_ns) as f64 / wall;
    assert!(
        share <= 0.60,
        "busy loop got {:.0}% of a CPU",
        share * 100.0
    );
    assert!(share >= 0.05, "busy loop barely ran: {:.0}%", share * 100.0);
    assert!(
        c1.nr_throttled > c0.nr_throttled,
        "not throttled: {c0:?} -> {c1:?}"
    );
    let mut c = r.container;
    c.destroy().unwrap();
}

#[test]
fn freeze_stops_and_thaw_resumes() {
    let rootfs = Rootfs::new();
    let s = spec(
        &rootfs,
        &[
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; done",
        ],
    );
    let r = start(&s).unwrap();
    let file = rootfs.path().join("tmp/n");
    let read = || -> u64 {
        for _ in 0..100 {
            if let Some(n) = fs::read_to_string(&file)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                return n;
            }
            sleep(Duration::from_millis(10));
        }
        panic!("cannot read the counter");
    };
    sleep(Duration::from_millis(300));
    let cg = r.container.cgroup();
    cg.freeze(Duration::from_secs(5)).unwrap();
    let a = read();
    sleep(Duration::from_secs(1));
    let b = read();
    assert_eq!(a, b, "counter advanced while frozen");
    cg.thaw(Duration::from_secs(5)).unwrap();
    sleep(Duration::from_millis(500));
    let c = read();
    assert!(c > b, "counter did not advance after thaw: {b} -> {c}");
    let mut c = r.container;
    c.destroy().unwrap();
}

/// Mount points of the host's mount table, without temporary directories
/// (this and other test binaries mount and unmount overlays there
/// concurrently).
fn host_mount_points() -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().nth(4).unwrap().to_string())
        .filter(|p| !p.starts_with("/tmp/") && !p.contains(TMP_PREFIX))
        .collect()
}

#[test]
fn twenty_cycles_leave_no_mounts_or_cgroups() {
    let before = host_mount_points();
    let rootfs = Rootfs::new();
    let merged = rootfs.path().to_string_lossy().into_owned();
    let mut paths = Vec::new();
    for i in 0..20 {
        let s = spec(&rootfs, &["sh", "-c", &format!("echo {i}")]);
        paths.push(s.cgroup_path.clone().unwrap());
        let out = start(&s).unwrap().finish();
        assert_eq!(out.stdout, format!("{i}\n"));
        // Nothing the container mounted shows up on the host.
        let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let leaked: Vec<&str> = mi
            .lines()
            .filter(|l| {
                l.split_whitespace()
                    .nth(4)
                    .is_some_and(|p| p.starts_with(&format!("{merged}/")))
            })
            .collect();
        assert!(
            leaked.is_empty(),
            "container mounts on the host: {leaked:?}"
        );
    }
    drop(rootfs);
    for p in &paths {
        assert!(cgroup_dirs(p).is_empty(), "{p} left behind");
    }
    let after = host_mount_points();
    assert_eq!(before.len(), after.len(), "{before:?}\n{after:?}");
}

#[test]
fn drop_destroys() {
    let rootfs = Rootfs::new();
    let s = spec(&rootfs, &["sleep", "100"]);
    let cg = s.cgroup_path.clone().unwrap();
    let r = start(&s).unwrap();
    assert!(!cgroup_dirs(&cg).is_empty());
    drop(r);
    assert!(cgroup_dirs(&cg).is_empty(), "cgroup left after drop");
}
