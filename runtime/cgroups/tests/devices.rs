//! The device allow-list: on a fixture tree (the v1 writes, no root), on the
//! host's v1 `devices` controller, and as an eBPF filter on the host's
//! cgroup2 mount (`/sys/fs/cgroup/unified` on the hybrid layout). The
//! kernel tests run a shell in the cgroup and show that `/dev/null` opens,
//! that a block device node can be created (`m`) but not opened (`EPERM`).

mod common;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Guard, Proc, host_layout};
use lookout_cgroups::devices::{attach_bpf_device_filter, attached_device_programs, default_rules};
use lookout_cgroups::{Cgroup, CgroupError, CgroupFs, DeviceRule, HostFs, Layout, LayoutKind};

/// The text the C library (and so the shell's tools) prints for `EPERM`.
fn eperm_text() -> String {
    let e = io::Error::from_raw_os_error(nix::errno::Errno::EPERM as i32).to_string();
    e.split(" (os error").next().unwrap_or(&e).to_string()
}

/// A block device this process may open, as `(major, minor)`: the root file
/// system's disk or another listed in `/sys/dev/block`, tried through a
/// node made in a temporary directory (a sandbox may refuse some disks to
/// everyone; the test needs one that only the cgroup refuses).
fn host_block_device() -> (u64, u64) {
    let mut candidates = Vec::new();
    if let Ok(st) = nix::sys::stat::stat("/") {
        let dev = st.st_dev;
        candidates.push((nix::sys::stat::major(dev), nix::sys::stat::minor(dev)));
    }
    let mut listed: Vec<String> = fs::read_dir("/sys/dev/block")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    listed.sort();
    candidates.extend(listed.iter().filter_map(|n| {
        let (a, b) = n.split_once(':')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    }));
    let tmp = tempfile::tempdir().expect("tempdir");
    for (i, &(ma, mi)) in candidates.iter().enumerate() {
        let node = tmp.path().join(format!("b{i}"));
        let made = nix::sys::stat::mknod(
            &node,
            nix::sys::stat::SFlag::S_IFBLK,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(ma, mi),
        );
        if made.is_ok() && fs::File::open(&node).is_ok() {
            return (ma, mi);
        }
    }
    panic!("no block device of {candidates:?} can be opened here");
}

/// What the shell in the cgroup did.
struct Outcome {
    text: String,
    node: PathBuf,
}

impl Outcome {
    fn did(&self, step: &str) -> bool {
        self.text.lines().any(|l| l == format!("{step}=ok"))
    }

    /// The shell's error line about the block node names `EPERM`.
    fn node_refused_with_eperm(&self) -> bool {
        let node = self.node.display().to_string();
        self.text
            .lines()
            .any(|l| l.contains(&node) && l.contains(&eperm_text()))
    }
}

/// Runs a shell in `cg` (moved in before it does anything) that opens
/// `/dev/null`, makes a block device node in a temporary directory and
/// opens it, reporting each step. The directory (and node) go on return.
fn probe(cg: &Cgroup, extra: &str) -> Outcome {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = tmp.path().join("disk");
    let out = tmp.path().join("out");
    let (ma, mi) = host_block_device();
    let script = format!(
        "exec >{out} 2>&1
head -c0 /dev/null && echo null-read=ok
head -c1 /dev/zero >/dev/null && echo null-write=ok
mknod {node} b {ma} {mi} && echo mknod=ok
head -c0 {node} && echo open-block=ok
{extra}
echo done=ok",
        out = out.display(),
        node = node.display(),
    );
    let mut p = Proc::spawn(&script);
    cg.add_process(p.pid()).expect("add process");
    p.release();
    let st = p
        .wait_timeout(Duration::from_secs(10))
        .expect("the probe finishes");
    let text = fs::read_to_string(&out).unwrap_or_default();
    assert!(st.success(), "probe failed ({st}):\n{text}");
    eprintln!("probe in {}:\n{text}", cg.path());
    let outcome = Outcome { text, node };
    assert!(outcome.did("done"), "{}", outcome.text);
    // The node opens from here (unrestricted): the refusal was the cgroup's.
    if outcome.did("mknod") {
        match fs::File::open(&outcome.node) {
            Ok(_) => {}
            Err(e) => assert_ne!(e.raw_os_error(), Some(libc_eperm()), "{e}"),
        }
    }
    outcome
}

fn libc_eperm() -> i32 {
    nix::errno::Errno::EPERM as i32
}

fn assert_default_rules_enforced(o: &Outcome) {
    assert!(o.did("null-read"), "{}", o.text);
    assert!(o.did("null-write"), "{}", o.text);
    assert!(
        o.did("mknod"),
        "mknod of a block node is allowed:\n{}",
        o.text
    );
    assert!(!o.did("open-block"), "opening it is not:\n{}", o.text);
    assert!(
        o.node_refused_with_eperm(),
        "want {:?} for {}:\n{}",
        eperm_text(),
        o.node.display(),
        o.text
    );
}

#[test]
fn v1_devices_controller() {
    let Some(layout) = host_layout() else {
        return;
    };
    if layout.v1_hierarchy("devices").is_none() {
        eprintln!("skipped: no v1 devices controller");
        return;
    }
    let g = Guard::create(&layout);
    let cg = g.cg();
    let dir = cg.dir("devices").expect("devices dir").to_path_buf();
    cg.set_devices(&default_rules()).unwrap();

    let list = fs::read_to_string(dir.join("devices.list")).unwrap();
    let mut got: Vec<&str> = list.lines().collect();
    let mut want: Vec<String> = default_rules()
        .iter()
        .filter(|r| r.allow)
        .map(DeviceRule::to_v1_string)
        .collect();
    got.sort_unstable();
    want.sort();
    assert_eq!(got, want, "devices.list:\n{list}");

    assert_default_rules_enforced(&probe(cg, ""));

    // Setting the list again (an update) gives the same list.
    cg.set_devices(&default_rules()).unwrap();
    assert_eq!(fs::read_to_string(dir.join("devices.list")).unwrap(), list);
}

/// The hybrid/v2 cgroup2 mount on its own: `set_devices` takes the eBPF path.
fn unified_layout() -> Option<Layout> {
    let l = host_layout()?.unified_only();
    if l.is_none() {
        eprintln!("skipped: no cgroup2 mount");
    }
    l
}

#[test]
fn v2_bpf_filter() {
    let Some(layout) = unified_layout() else {
        return;
    };
    assert_eq!(layout.kind(), LayoutKind::V2);
    let g = Guard::create(&layout);
    let cg = g.cg();
    let dir = cg.unified_dir().expect("cgroup2 dir").to_path_buf();
    assert!(attached_device_programs(&dir).unwrap().is_empty());

    cg.set_devices(&default_rules()).unwrap();
    let first = attached_device_programs(&dir).unwrap();
    assert_eq!(first.len(), 1, "{first:?}");
    // Again: the new program replaces the old one.
    cg.set_devices(&default_rules()).unwrap();
    let second = attached_device_programs(&dir).unwrap();
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(first, second);

    assert_default_rules_enforced(&probe(cg, ""));
}

#[test]
fn v2_bpf_deny_list() {
    let Some(layout) = unified_layout() else {
        return;
    };
    let g = Guard::create(&layout);
    let cg = g.cg();
    let dir = cg.unified_dir().expect("cgroup2 dir").to_path_buf();
    // Everything but writing to /dev/null and using block devices.
    let mut deny_null_w = DeviceRule::parse("c 1:3 w").unwrap();
    deny_null_w.allow = false;
    let mut deny_block = DeviceRule::parse("b *:* rwm").unwrap();
    deny_block.allow = false;
    let rules = [DeviceRule::parse("a").unwrap(), deny_null_w, deny_block];
    // First a list with a number past i32::MAX (the 32-bit jump): the
    // kernel takes it; the deny-list then replaces it.
    let big = [DeviceRule::parse("c 4294967294:1 rwm").unwrap()];
    attach_bpf_device_filter(&dir, &big).unwrap();
    let first = attached_device_programs(&dir).unwrap();
    attach_bpf_device_filter(&dir, &rules).unwrap();
    let second = attached_device_programs(&dir).unwrap();
    assert_eq!((first.len(), second.len()), (1, 1));
    assert_ne!(first, second);

    let o = probe(cg, "head -c0 /dev/zero && echo zero-read=ok");
    assert!(o.did("null-read"), "{}", o.text);
    assert!(!o.did("null-write"), "{}", o.text);
    assert!(o.did("zero-read"), "{}", o.text);
    assert!(!o.did("mknod"), "{}", o.text);
    assert!(o.text.contains(&eperm_text()), "{}", o.text);
}

#[test]
fn bpf_errors_name_the_directory() {
    if !common::is_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let e = attach_bpf_device_filter(tmp.path(), &default_rules()).unwrap_err();
    let msg = e.to_string();
    eprintln!("{msg}");
    assert!(matches!(e, CgroupError::Bpf { .. }), "{msg}");
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
    let missing = tmp.path().join("missing");
    let msg = attach_bpf_device_filter(&missing, &default_rules())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("cannot open") && msg.contains("missing"),
        "{msg}"
    );
}

/// Records the writes on a fixture tree; a new directory gets the v1
/// devices files.
struct Recorder {
    writes: Mutex<Vec<(String, String)>>,
}

impl CgroupFs for Recorder {
    fn read(&self, dir: &Path, file: &str) -> io::Result<String> {
        HostFs.read(dir, file)
    }
    fn write(&self, dir: &Path, file: &str, value: &str) -> io::Result<()> {
        HostFs.write(dir, file, value)?;
        self.writes
            .lock()
            .unwrap()
            .push((file.to_string(), value.to_string()));
        Ok(())
    }
    fn exists(&self, dir: &Path, file: &str) -> bool {
        HostFs.exists(dir, file)
    }
    fn dir_exists(&self, dir: &Path) -> bool {
        HostFs.dir_exists(dir)
    }
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir(dir)?;
        for f in [
            "devices.allow",
            "devices.deny",
            "devices.list",
            "cgroup.procs",
        ] {
            fs::write(dir.join(f), "")?;
        }
        Ok(())
    }
    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        fs::remove_dir_all(dir)
    }
    fn child_dirs(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        HostFs.child_dirs(dir)
    }
}

#[test]
fn v1_writes_on_a_fixture() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("sys/fs/cgroup/devices")).unwrap();
    let layout = Layout::from_mountinfo(
        "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n",
        root.path(),
    )
    .unwrap();
    let rec = Arc::new(Recorder {
        writes: Mutex::new(Vec::new()),
    });
    let cg = Cgroup::create_with(rec.clone(), &layout, "/lookout/ctr").unwrap();

    // A bad rule: nothing is written, the error names it.
    let mut bad = default_rules();
    bad[3].access = "rwx".to_string();
    let msg = cg.set_devices(&bad).unwrap_err().to_string();
    assert!(
        msg.contains("allow c 1:3 rwx") && msg.contains("'x'"),
        "{msg}"
    );
    assert!(rec.writes.lock().unwrap().is_empty());

    let mut rules = default_rules();
    let mut deny = DeviceRule::parse("c 136:5 w").unwrap();
    deny.allow = false;
    rules.push(deny);
    cg.set_devices(&rules).unwrap();
    let writes = rec.writes.lock().unwrap().clone();
    let mut want = vec![("devices.deny".to_string(), "a".to_string())];
    for r in &rules {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        want.push((file.to_string(), r.to_v1_string()));
    }
    assert_eq!(writes, want);
    assert_eq!(writes[1], ("devices.deny".into(), "a *:* rwm".into()));
    assert_eq!(writes[4], ("devices.allow".into(), "c 1:3 rwm".into()));
    assert_eq!(writes.last().unwrap().1, "c 136:5 w");

    // No devices hierarchy and no cgroup2 directory: refused, named.
    fs::create_dir_all(root.path().join("sys/fs/cgroup/pids")).unwrap();
    let pids_only = Layout::from_mountinfo(
        "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n",
        root.path(),
    )
    .unwrap();
    let cg = Cgroup::create_with(rec.clone(), &pids_only, "/lookout/ctr").unwrap();
    let msg = cg.set_devices(&default_rules()).unwrap_err().to_string();
    assert!(msg.contains("devices is not available"), "{msg}");
}
