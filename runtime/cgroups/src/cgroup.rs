//! The per-container cgroup manager.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::counters::{self, Counters, OomStatus, StatDir, StatDirs, read_oom};
use crate::devices::{self, DeviceRule};
use crate::error::{CgroupError, Result};
use crate::fs::{CgroupFs, HostFs};
use crate::layout::{CgroupVersion, Layout, LayoutKind, prefixed};
use crate::resources::{Max, Plan, Resources, blkio_weight_to_io_weight, shares_to_weight};
use crate::units::CpuList;

/// The v2 controllers enabled (in `cgroup.subtree_control`) on the way down
/// to a container's cgroup, when the parent offers them.
pub const V2_CONTROLLERS: &[&str] = &["cpuset", "cpu", "io", "memory", "pids"];

/// A reasonable bound for [`Cgroup::freeze`], [`Cgroup::kill_all`] and
/// [`Cgroup::delete`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a freezer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezerState {
    /// Running.
    Thawed,
    /// Asked to freeze; some tasks still running.
    Freezing,
    /// Every task stopped.
    Frozen,
}

/// The cgroup's directory in one hierarchy.
#[derive(Debug, Clone)]
struct Member {
    /// The v1 controllers of this hierarchy; `None` for the cgroup2 one.
    v1: Option<Vec<String>>,
    mount_point: PathBuf,
    dir: PathBuf,
    /// Ancestors of `dir` this manager created, top-down; removed on delete
    /// when nobody else uses them.
    created_ancestors: Vec<PathBuf>,
    /// v2 controllers that could not be enabled on the way down, with why.
    enable_failures: Vec<String>,
}

impl Member {
    fn has_v1(&self, controller: &str) -> bool {
        self.v1
            .as_ref()
            .is_some_and(|cs| cs.iter().any(|c| c == controller))
    }
}

/// One container's cgroup, in every hierarchy of the host's layout.
///
/// On v1 it is a directory in each controller hierarchy; on v2 one directory;
/// on the hybrid layout both (the cgroup2 directory serves membership,
/// `cgroup.kill` and `cgroup.events`, the v1 ones the controllers).
///
/// Dropping a `Cgroup` leaves the kernel state alone (the engine may
/// re-adopt it with [`Cgroup::open`]); call [`Cgroup::delete`].
pub struct Cgroup {
    fs: Arc<dyn CgroupFs>,
    path: String,
    kind: LayoutKind,
    root: PathBuf,
    members: Vec<Member>,
}

impl std::fmt::Debug for Cgroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cgroup")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field(
                "dirs",
                &self.members.iter().map(|m| &m.dir).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Splits and checks a cgroup path: returns whether it is absolute and its
/// components.
fn split_path(path: &str) -> Result<(bool, Vec<String>)> {
    let bad = |reason: &str| CgroupError::InvalidPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    let absolute = path.starts_with('/');
    let trimmed = path.trim_start_matches('/').trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(bad("names no cgroup below the root"));
    }
    let mut comps = Vec::new();
    for c in trimmed.split('/') {
        match c {
            "" => return Err(bad("has an empty component")),
            "." | ".." => return Err(bad("'.' and '..' are not allowed")),
            c => comps.push(c.to_string()),
        }
    }
    Ok((absolute, comps))
}

/// The directory a cgroup path starts from in one hierarchy: the hierarchy
/// root for absolute paths, the caller's own cgroup for relative ones.
fn base_dir(
    mount_point: &Path,
    mount_root: &Path,
    self_path: Option<&Path>,
    absolute: bool,
) -> PathBuf {
    let base = match (absolute, self_path) {
        (false, Some(p)) => p.to_path_buf(),
        _ => PathBuf::from("/"),
    };
    let rel = base.strip_prefix(mount_root).unwrap_or(&base);
    prefixed(mount_point, rel)
}

/// One hierarchy to place the cgroup in.
struct Target {
    v1: Option<Vec<String>>,
    mount_point: PathBuf,
    base: PathBuf,
}

fn targets(layout: &Layout, absolute: bool) -> Vec<Target> {
    let mut out = Vec::new();
    if layout.kind() != LayoutKind::V2 {
        for h in layout.v1_hierarchies() {
            out.push(Target {
                v1: Some(h.controllers.clone()),
                mount_point: h.mount_point.clone(),
                base: base_dir(
                    &h.mount_point,
                    &h.mount_root,
                    h.self_path.as_deref(),
                    absolute,
                ),
            });
        }
    }
    if layout.kind() != LayoutKind::V1
        && let Some(u) = layout.unified()
    {
        out.push(Target {
            v1: None,
            mount_point: u.mount_point.clone(),
            base: base_dir(
                &u.mount_point,
                &u.mount_root,
                u.self_path.as_deref(),
                absolute,
            ),
        });
    }
    out
}

fn is_errno(e: &io::Error, errno: i32) -> bool {
    e.raw_os_error() == Some(errno)
}

/// One pending write of [`Cgroup::apply`].
struct Write {
    control: &'static str,
    dir: PathBuf,
    file: &'static str,
    value: String,
}

impl Cgroup {
    /// Creates (or reuses) the cgroup `path` in every hierarchy of `layout`.
    ///
    /// `path` is a `/`-separated cgroup path such as `lookout/<id>`: absolute
    /// (`/lookout/<id>`) from each hierarchy's root, relative from the
    /// caller's own cgroup in it (as `/proc/self/cgroup` shows, when the layout
    /// was built with it; else from the root). Missing ancestors are created
    /// and remembered for [`Cgroup::delete`]. On v2 the parent's
    /// `cgroup.subtree_control` gets the [`V2_CONTROLLERS`] it offers; on v1
    /// a new cpuset cgroup inherits its parent's CPUs and memory nodes.
    pub fn create(layout: &Layout, path: &str) -> Result<Cgroup> {
        Cgroup::create_with(Arc::new(HostFs), layout, path)
    }

    /// [`Cgroup::create`] through a given file-system implementation.
    pub fn create_with(fs: Arc<dyn CgroupFs>, layout: &Layout, path: &str) -> Result<Cgroup> {
        let (absolute, comps) = split_path(path)?;
        let mut cg = Cgroup {
            fs,
            path: path.to_string(),
            kind: layout.kind(),
            root: layout.root().to_path_buf(),
            members: Vec::new(),
        };
        for t in targets(layout, absolute) {
            match cg.create_member(t, &comps) {
                Ok(m) => cg.members.push(m),
                Err(e) => {
                    let _ = cg.delete(Duration::from_millis(500));
                    return Err(e);
                }
            }
        }
        Ok(cg)
    }

    /// Opens an existing cgroup (to re-adopt a container after a restart).
    /// [`Cgroup::delete`] then removes only the cgroup itself, not its ancestors.
    pub fn open(layout: &Layout, path: &str) -> Result<Cgroup> {
        Cgroup::open_with(Arc::new(HostFs), layout, path)
    }

    /// [`Cgroup::open`] through a given file-system implementation.
    pub fn open_with(fs: Arc<dyn CgroupFs>, layout: &Layout, path: &str) -> Result<Cgroup> {
        let (absolute, comps) = split_path(path)?;
        let mut members = Vec::new();
        for t in targets(layout, absolute) {
            let dir = comps.iter().fold(t.base, |d, c| d.join(c));
            if !fs.dir_exists(&dir) {
                return Err(CgroupError::Read {
                    path: dir,
                    source: io::Error::from(io::ErrorKind::NotFound),
                });
            }
            members.push(Member {
                v1: t.v1,
                mount_point: t.mount_point,
                dir,
                created_ancestors: Vec::new(),
                enable_failures: Vec::new(),
            });
        }
        Ok(Cgroup {
            fs,
            path: path.to_string(),
            kind: layout.kind(),
            root: layout.root().to_path_buf(),
            members,
        })
    }

    fn create_member(&self, t: Target, comps: &[String]) -> Result<Member> {
        let fs = &*self.fs;
        if !fs.dir_exists(&t.base) {
            return Err(CgroupError::Create {
                path: t.base,
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        }
        let mut cur = t.base.clone();
        let mut created: Vec<PathBuf> = Vec::new();
        let mut failures = Vec::new();
        let undo = |created: &[PathBuf]| {
            for d in created.iter().rev() {
                let _ = fs.remove_dir(d);
            }
        };
        for c in comps {
            if t.v1.is_none() {
                enable_controllers(fs, &cur, &mut failures);
            }
            let next = cur.join(c);
            if !fs.dir_exists(&next) {
                match fs.create_dir(&next) {
                    Ok(()) => created.push(next.clone()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(source) => {
                        undo(&created);
                        return Err(CgroupError::Create { path: next, source });
                    }
                }
            }
            if t.v1
                .as_ref()
                .is_some_and(|cs| cs.iter().any(|c| c == "cpuset"))
                && let Err(e) = init_v1_cpuset(fs, &cur, &next)
            {
                undo(&created);
                return Err(e);
            }
            cur = next;
        }
        // The leaf is always ours to remove; only the ancestors made here are
        // remembered.
        if created.last() == Some(&cur) {
            created.pop();
        }
        Ok(Member {
            v1: t.v1,
            mount_point: t.mount_point,
            dir: cur,
            created_ancestors: created,
            enable_failures: failures,
        })
    }

    /// The path this cgroup was created or opened with.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The layout kind it lives in.
    pub fn kind(&self) -> LayoutKind {
        self.kind
    }

    /// Its directories, one per hierarchy.
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.members.iter().map(|m| m.dir.as_path())
    }

    /// The directory serving `controller` (`memory`, `devices`, `cpu`, …):
    /// the v1 hierarchy's, or the cgroup2 one when that controller is
    /// enabled there.
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        self.locate(controller).map(|(_, m)| m.dir.as_path())
    }

    /// The directory in the cgroup2 hierarchy (on v2 and hybrid layouts).
    pub fn unified_dir(&self) -> Option<&Path> {
        self.unified().map(|m| m.dir.as_path())
    }

    fn unified(&self) -> Option<&Member> {
        self.members.iter().find(|m| m.v1.is_none())
    }

    fn primary_dir(&self) -> PathBuf {
        self.unified()
            .or(self.members.first())
            .map(|m| m.dir.clone())
            .unwrap_or_default()
    }

    /// Finds the hierarchy serving `controller`: v1 first, then the cgroup2
    /// directory if the controller is enabled for it.
    fn locate(&self, controller: &str) -> Option<(CgroupVersion, &Member)> {
        if let Some(m) = self.members.iter().find(|m| m.has_v1(controller)) {
            return Some((CgroupVersion::V1, m));
        }
        let u = self.unified()?;
        let avail = self.fs.read(&u.dir, "cgroup.controllers").ok()?;
        avail
            .split_whitespace()
            .any(|c| c == controller)
            .then_some((CgroupVersion::V2, u))
    }

    fn require(&self, control: &'static str, controller: &str) -> Result<(CgroupVersion, &Member)> {
        if let Some(found) = self.locate(controller) {
            return Ok(found);
        }
        let mut reason = match self.kind {
            LayoutKind::V1 => format!("the {controller} controller is not mounted"),
            LayoutKind::Hybrid => format!(
                "the {controller} controller is neither mounted as cgroup v1 nor enabled in the cgroup2 hierarchy"
            ),
            LayoutKind::V2 => format!("the {controller} controller is not enabled for this cgroup"),
        };
        if let Some(u) = self.unified() {
            for f in u
                .enable_failures
                .iter()
                .filter(|f| f.starts_with(&format!("{controller}:")))
            {
                reason.push_str(&format!("; {f}"));
            }
        }
        Err(CgroupError::Unavailable {
            control,
            reason,
            path: self.primary_dir(),
        })
    }

    fn need_file(&self, control: &'static str, m: &Member, file: &str, why: &str) -> Result<()> {
        if self.fs.exists(&m.dir, file) {
            Ok(())
        } else {
            Err(CgroupError::Unavailable {
                control,
                reason: format!("the kernel does not offer {file}{why}"),
                path: m.dir.clone(),
            })
        }
    }

    /// The number of online CPUs, from `/sys/devices/system/cpu/online`.
    pub fn online_cpus(&self) -> Option<usize> {
        let dir = self.root.join("sys/devices/system/cpu");
        let text = self.fs.read(&dir, "online").ok()?;
        CpuList::parse("online cpus", &text)
            .ok()
            .map(|l| l.len())
            .filter(|&n| n > 0)
    }

    /// Applies `res`: validates every value (errors name the control and the
    /// value), checks that the kernel offers every requested control (a
    /// missing one is refused, naming it) and only then writes the files.
    pub fn apply(&self, res: &Resources) -> Result<()> {
        let plan = res.plan(self.online_cpus())?;
        let writes = self.plan_writes(res, &plan)?;
        for w in writes {
            self.fs
                .write(&w.dir, w.file, &w.value)
                .map_err(|source| CgroupError::Write {
                    control: w.control,
                    value: w.value.clone(),
                    path: w.dir.join(w.file),
                    source,
                })?;
        }
        Ok(())
    }

    fn plan_writes(&self, res: &Resources, plan: &Plan) -> Result<Vec<Write>> {
        let mut out = Vec::new();
        let push = |out: &mut Vec<Write>,
                    control: &'static str,
                    m: &Member,
                    file: &'static str,
                    value: String| {
            out.push(Write {
                control,
                dir: m.dir.clone(),
                file,
                value,
            })
        };

        // Memory, reservation, swap.
        let mut mem_writes: Vec<Write> = Vec::new();
        let mut swap_write: Option<Write> = None;
        if let Some(limit) = plan.memory {
            let (v, m) = self.require("memory", "memory")?;
            let file = match v {
                CgroupVersion::V1 => "memory.limit_in_bytes",
                CgroupVersion::V2 => "memory.max",
            };
            self.need_file("memory", m, file, "")?;
            push(&mut mem_writes, "memory", m, file, limit.to_string());
        }
        if let Some(r) = plan.memory_reservation {
            let (v, m) = self.require("memory-reservation", "memory")?;
            let file = match v {
                CgroupVersion::V1 => "memory.soft_limit_in_bytes",
                CgroupVersion::V2 => "memory.low",
            };
            self.need_file("memory-reservation", m, file, "")?;
            push(
                &mut mem_writes,
                "memory-reservation",
                m,
                file,
                r.to_string(),
            );
        }
        if let Some(swap) = plan.memory_swap {
            let (v, m) = self.require("memory-swap", "memory")?;
            let (file, value) = match (v, swap) {
                (CgroupVersion::V1, Max::Value(s)) => {
                    ("memory.memsw.limit_in_bytes", s.to_string())
                }
                (CgroupVersion::V1, Max::Unlimited) => {
                    ("memory.memsw.limit_in_bytes", "-1".to_string())
                }
                (CgroupVersion::V2, Max::Value(s)) => (
                    "memory.swap.max",
                    (s - plan.memory.unwrap_or(0)).max(0).to_string(),
                ),
                (CgroupVersion::V2, Max::Unlimited) => ("memory.swap.max", "max".to_string()),
            };
            self.need_file(
                "memory-swap",
                m,
                file,
                ": the kernel does not account swap (on v1 that needs CONFIG_MEMCG_SWAP and swapaccount=1)",
            )?;
            swap_write = Some(Write {
                control: "memory-swap",
                dir: m.dir.clone(),
                file,
                value,
            });
        }
        if let Some(sw) = swap_write {
            // v1 keeps memory.limit <= memory.memsw.limit at every moment:
            // raise memsw first when the new memory limit exceeds the current
            // memsw limit (or memsw becomes unlimited).
            let swap_first = sw.file == "memory.memsw.limit_in_bytes"
                && match (plan.memory, plan.memory_swap) {
                    (_, Some(Max::Unlimited)) => true,
                    (Some(mem), _) => counters::read_u64(&*self.fs, &sw.dir, sw.file)
                        .map(|cur| i128::from(mem) > i128::from(cur))
                        .unwrap_or(false),
                    _ => false,
                };
            if swap_first {
                mem_writes.insert(0, sw);
            } else {
                mem_writes.push(sw);
            }
        }
        out.append(&mut mem_writes);

        // CPU weight.
        if let Some(shares) = plan.cpu_shares {
            let (v, m) = self.require("cpu-shares", "cpu")?;
            let (file, value) = match v {
                CgroupVersion::V1 => ("cpu.shares", shares.to_string()),
                CgroupVersion::V2 => ("cpu.weight", shares_to_weight(shares).to_string()),
            };
            self.need_file("cpu-shares", m, file, "")?;
            push(&mut out, "cpu-shares", m, file, value);
        }

        // CPU bandwidth.
        if let Some((quota, period)) = plan.cpu_max {
            let control = if res.nano_cpus.is_some_and(|n| n != 0) {
                "cpus"
            } else {
                "cpu-quota"
            };
            let (v, m) = self.require(control, "cpu")?;
            let why = " (CFS bandwidth control, CONFIG_CFS_BANDWIDTH)";
            match v {
                CgroupVersion::V1 => {
                    self.need_file(control, m, "cpu.cfs_period_us", why)?;
                    self.need_file(control, m, "cpu.cfs_quota_us", why)?;
                    push(
                        &mut out,
                        control,
                        m,
                        "cpu.cfs_period_us",
                        period.to_string(),
                    );
                    let q = match quota {
                        Max::Value(q) => q.to_string(),
                        Max::Unlimited => "-1".to_string(),
                    };
                    push(&mut out, control, m, "cpu.cfs_quota_us", q);
                }
                CgroupVersion::V2 => {
                    self.need_file(control, m, "cpu.max", why)?;
                    let q = match quota {
                        Max::Value(q) => q.to_string(),
                        Max::Unlimited => "max".to_string(),
                    };
                    push(&mut out, control, m, "cpu.max", format!("{q} {period}"));
                }
            }
        }

        // Cpuset.
        for (control, list, given, file, eff_v1, eff_v2, what) in [
            (
                "cpuset-cpus",
                &plan.cpuset_cpus,
                &res.cpuset_cpus,
                "cpuset.cpus",
                "cpuset.effective_cpus",
                "cpuset.cpus.effective",
                "CPUs",
            ),
            (
                "cpuset-mems",
                &plan.cpuset_mems,
                &res.cpuset_mems,
                "cpuset.mems",
                "cpuset.effective_mems",
                "cpuset.mems.effective",
                "memory nodes",
            ),
        ] {
            let Some(list) = list else { continue };
            let (v, m) = self.require(control, "cpuset")?;
            self.need_file(control, m, file, "")?;
            let eff = match v {
                CgroupVersion::V1 => eff_v1,
                CgroupVersion::V2 => eff_v2,
            };
            if let Some(parent) = m.dir.parent()
                && let Ok(text) = self.fs.read(parent, eff)
                && let Ok(avail) = CpuList::parse(control, &text)
                && !avail.is_empty()
                && !list.is_subset(&avail)
            {
                return Err(CgroupError::InvalidValue {
                    control,
                    value: given.clone().unwrap_or_default(),
                    reason: format!("requested {what} are not available (available: {avail})"),
                });
            }
            push(&mut out, control, m, file, list.to_string());
        }

        // Pids.
        if let Some(p) = plan.pids {
            let (_, m) = self.require("pids-limit", "pids")?;
            self.need_file("pids-limit", m, "pids.max", "")?;
            let value = match p {
                Max::Value(n) => n.to_string(),
                Max::Unlimited => "max".to_string(),
            };
            push(&mut out, "pids-limit", m, "pids.max", value);
        }

        // Block I/O weight.
        if let Some(w) = plan.blkio_weight {
            out.push(self.blkio_weight_write(w)?);
        }
        Ok(out)
    }

    /// Picks the weight file that will take effect, or refuses.
    fn blkio_weight_write(&self, w: i64) -> Result<Write> {
        const CONTROL: &str = "blkio-weight";
        let (v, m) = match self.locate("blkio").or_else(|| self.locate("io")) {
            Some(found) => found,
            None => {
                let controller = if self.kind == LayoutKind::V2 {
                    "io"
                } else {
                    "blkio"
                };
                return Err(self.require(CONTROL, controller).unwrap_err());
            }
        };
        let schedulers = self.block_schedulers();
        let bfq_in_use = schedulers.iter().any(|(_, s)| s == "bfq");
        let fs = &*self.fs;
        let write = |file: &'static str, value: String| Write {
            control: CONTROL,
            dir: m.dir.clone(),
            file,
            value,
        };
        match v {
            CgroupVersion::V1 => {
                // blkio.weight exists only while CFQ is around (before Linux 5.0).
                if fs.exists(&m.dir, "blkio.weight") {
                    return Ok(write("blkio.weight", w.to_string()));
                }
                if fs.exists(&m.dir, "blkio.bfq.weight") && bfq_in_use {
                    return Ok(write("blkio.bfq.weight", w.to_string()));
                }
            }
            CgroupVersion::V2 => {
                if fs.exists(&m.dir, "io.bfq.weight") && bfq_in_use {
                    return Ok(write("io.bfq.weight", w.to_string()));
                }
                if fs.exists(&m.dir, "io.weight") && self.iocost_enabled(m) {
                    return Ok(write(
                        "io.weight",
                        format!("default {}", blkio_weight_to_io_weight(w)),
                    ));
                }
            }
        }
        let mut in_use: Vec<String> = schedulers.into_iter().map(|(_, s)| s).collect();
        in_use.sort();
        in_use.dedup();
        let in_use = if in_use.is_empty() {
            "none found".to_string()
        } else {
            in_use.join(", ")
        };
        let reason = match v {
            CgroupVersion::V1 => format!(
                "no block device uses an I/O scheduler with weights (bfq; blkio.weight needs CFQ); schedulers in use: {in_use}"
            ),
            CgroupVersion::V2 => format!(
                "no block device uses bfq (io.bfq.weight) and io.cost is not enabled (io.weight); schedulers in use: {in_use}"
            ),
        };
        Err(CgroupError::Unavailable {
            control: CONTROL,
            reason,
            path: m.dir.clone(),
        })
    }

    /// `(device, active scheduler)` for each block device in `/sys/block`.
    fn block_schedulers(&self) -> Vec<(String, String)> {
        let block = self.root.join("sys/block");
        let mut out = Vec::new();
        for dev in self.fs.child_dirs(&block).unwrap_or_default() {
            let Ok(text) = self.fs.read(&dev.join("queue"), "scheduler") else {
                continue;
            };
            let active = text
                .split_whitespace()
                .find(|s| s.starts_with('['))
                .map(|s| s.trim_matches(|c| c == '[' || c == ']').to_string());
            if let (Some(active), Some(name)) = (active, dev.file_name()) {
                out.push((name.to_string_lossy().into_owned(), active));
            }
        }
        out
    }

    /// Whether the v2 root's `io.cost.qos` enables the cost model on some device.
    fn iocost_enabled(&self, m: &Member) -> bool {
        self.fs
            .read(&m.mount_point, "io.cost.qos")
            .map(|t| t.split_whitespace().any(|w| w == "enable=1"))
            .unwrap_or(false)
    }

    /// Sets the device allow-list to `rules` (see [`crate::devices`]; the
    /// usual list is [`crate::devices::default_rules`]), as runc does.
    ///
    /// With a v1 `devices` hierarchy (v1 and hybrid layouts) it writes `a`
    /// to `devices.deny`, then each rule in order to `devices.allow` or
    /// `devices.deny`. Otherwise it attaches an eBPF device filter built
    /// from the rules to the cgroup2 directory, replacing one a previous
    /// call attached. Every rule is validated before anything is written.
    pub fn set_devices(&self, rules: &[DeviceRule]) -> Result<()> {
        for r in rules {
            r.validate()?;
        }
        if let Some(m) = self.members.iter().find(|m| m.has_v1("devices")) {
            let deny_all = std::iter::once(("devices.deny", "a".to_string()));
            let writes = rules.iter().map(|r| {
                let file = if r.allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                (file, r.to_v1_string())
            });
            for (file, value) in deny_all.chain(writes) {
                self.fs
                    .write(&m.dir, file, &value)
                    .map_err(|source| CgroupError::Write {
                        control: "devices",
                        value: value.clone(),
                        path: m.dir.join(file),
                        source,
                    })?;
            }
            return Ok(());
        }
        match self.unified() {
            Some(u) => devices::attach_bpf_device_filter(&u.dir, rules),
            None => Err(CgroupError::Unavailable {
                control: "devices",
                reason: "the devices controller is not mounted and there is no cgroup2 \
                         directory to attach a device filter to"
                    .to_string(),
                path: self.primary_dir(),
            }),
        }
    }

    /// Moves the process `pid` (all its threads) into the cgroup, in every
    /// hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<()> {
        for m in &self.members {
            self.fs
                .write(&m.dir, "cgroup.procs", &pid.to_string())
                .map_err(|source| CgroupError::AddProcess {
                    pid,
                    path: m.dir.join("cgroup.procs"),
                    source,
                })?;
        }
        Ok(())
    }

    /// The processes in the cgroup (in any of its hierarchies), ascending.
    pub fn procs(&self) -> Result<Vec<i32>> {
        let mut set = BTreeSet::new();
        for m in &self.members {
            if !self.fs.dir_exists(&m.dir) {
                continue;
            }
            collect_procs(&*self.fs, &m.dir, &mut set)?;
        }
        Ok(set.into_iter().collect())
    }

    fn freezer(&self) -> Result<(CgroupVersion, &Path)> {
        if let Some(m) = self.members.iter().find(|m| m.has_v1("freezer")) {
            return Ok((CgroupVersion::V1, &m.dir));
        }
        if let Some(u) = self.unified()
            && self.fs.exists(&u.dir, "cgroup.freeze")
        {
            return Ok((CgroupVersion::V2, &u.dir));
        }
        Err(CgroupError::Unavailable {
            control: "freeze",
            reason: "neither the v1 freezer controller nor cgroup.freeze (cgroup v2, Linux 5.2+) is available"
                .to_string(),
            path: self.primary_dir(),
        })
    }

    /// Where the freezer stands.
    pub fn freezer_state(&self) -> Result<FreezerState> {
        let (v, dir) = self.freezer()?;
        let fs = &*self.fs;
        match v {
            CgroupVersion::V1 => {
                let s = counters::read(fs, dir, "freezer.state")?;
                match s.trim() {
                    "THAWED" => Ok(FreezerState::Thawed),
                    "FREEZING" => Ok(FreezerState::Freezing),
                    "FROZEN" => Ok(FreezerState::Frozen),
                    other => Err(CgroupError::Parse {
                        path: dir.join("freezer.state"),
                        reason: format!("unknown state {other:?}"),
                    }),
                }
            }
            CgroupVersion::V2 => {
                let events = counters::read_kv(fs, dir, "cgroup.events")?;
                if counters::kv_get(&events, "frozen") == Some(1) {
                    return Ok(FreezerState::Frozen);
                }
                let wanted = counters::read_u64(fs, dir, "cgroup.freeze")?;
                Ok(if wanted == 1 {
                    FreezerState::Freezing
                } else {
                    FreezerState::Thawed
                })
            }
        }
    }

    /// Freezes every process of the cgroup and waits until all are stopped
    /// (v1 `freezer.state`, v2 `cgroup.freeze` + `cgroup.events`). On
    /// timeout the cgroup is thawed again and an error returned.
    pub fn freeze(&self, timeout: Duration) -> Result<()> {
        self.set_frozen(true, timeout)
    }

    /// Thaws the cgroup and waits until it runs again.
    pub fn thaw(&self, timeout: Duration) -> Result<()> {
        self.set_frozen(false, timeout)
    }

    fn set_frozen(&self, frozen: bool, timeout: Duration) -> Result<()> {
        let (v, dir) = self.freezer()?;
        let (file, value) = match (v, frozen) {
            (CgroupVersion::V1, true) => ("freezer.state", "FROZEN"),
            (CgroupVersion::V1, false) => ("freezer.state", "THAWED"),
            (CgroupVersion::V2, true) => ("cgroup.freeze", "1"),
            (CgroupVersion::V2, false) => ("cgroup.freeze", "0"),
        };
        let target = if frozen {
            FreezerState::Frozen
        } else {
            FreezerState::Thawed
        };
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        let mut first = true;
        loop {
            // v1 can stay FREEZING when a task is caught mid-vfork or in an
            // uninterruptible sleep: writing FROZEN again retries the walk.
            if first || v == CgroupVersion::V1 {
                self.fs
                    .write(dir, file, value)
                    .map_err(|source| CgroupError::Write {
                        control: if frozen { "freeze" } else { "thaw" },
                        value: value.to_string(),
                        path: dir.join(file),
                        source,
                    })?;
                first = false;
            }
            if self.freezer_state()? == target {
                return Ok(());
            }
            if Instant::now() >= deadline {
                if frozen {
                    let thaw = if v == CgroupVersion::V1 {
                        "THAWED"
                    } else {
                        "0"
                    };
                    let _ = self.fs.write(dir, file, thaw);
                }
                return Err(CgroupError::Timeout {
                    what: if frozen { "frozen" } else { "thawed" },
                    path: dir.to_path_buf(),
                    timeout,
                });
            }
            sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Kills every process of the cgroup and waits until none is left.
    ///
    /// v2 (and the cgroup2 directory of the hybrid layout) writes
    /// `cgroup.kill` (Linux 5.14+), which the kernel applies atomically, even
    /// to processes forking meanwhile. Otherwise: freeze (v1 freezer, so a
    /// fork loop cannot outrun the walk), SIGKILL every pid of
    /// `cgroup.procs`, thaw, and repeat until empty.
    pub fn kill_all(&self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        let deadline = start + timeout;
        let v1_freezer = self.members.iter().any(|m| m.has_v1("freezer"));
        if let Some(u) = self.unified()
            && self.fs.exists(&u.dir, "cgroup.kill")
        {
            self.fs
                .write(&u.dir, "cgroup.kill", "1")
                .map_err(|source| CgroupError::Write {
                    control: "kill",
                    value: "1".to_string(),
                    path: u.dir.join("cgroup.kill"),
                    source,
                })?;
            // Tasks stopped by the v1 freezer (hybrid layout) act on the
            // SIGKILL only once thawed; v2-frozen tasks die regardless.
            if v1_freezer && self.freezer_state()? != FreezerState::Thawed {
                self.thaw(timeout / 2)?;
            }
            if self.wait_empty(start + timeout / 2)? {
                return Ok(());
            }
        }
        loop {
            let frozen = v1_freezer && self.freeze(Duration::from_millis(200)).is_ok();
            let pids = self.procs()?;
            let mut signal_err = None;
            for &pid in &pids {
                match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(e) => {
                        signal_err.get_or_insert(CgroupError::Signal {
                            pid,
                            signal: "SIGKILL",
                            path: self.primary_dir(),
                            source: io::Error::from(e),
                        });
                    }
                }
            }
            if frozen {
                self.thaw(deadline.saturating_duration_since(Instant::now()))?;
            }
            if let Some(e) = signal_err {
                return Err(e);
            }
            if pids.is_empty() || self.wait_empty(Instant::now() + Duration::from_millis(100))? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(CgroupError::Timeout {
                    what: "no process left",
                    path: self.primary_dir(),
                    timeout,
                });
            }
        }
    }

    /// Polls until no process is left or `deadline`; returns whether empty.
    fn wait_empty(&self, deadline: Instant) -> Result<bool> {
        loop {
            if self.procs()?.is_empty() {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            sleep(Duration::from_millis(2));
        }
    }

    /// Removes the cgroup in every hierarchy: its child cgroups, itself, and
    /// the ancestors [`Cgroup::create`] made (unless other cgroups still
    /// live in them). Retries while exiting processes leave (`EBUSY`) until
    /// `timeout`. It does not kill: call [`Cgroup::kill_all`] first. Removing
    /// a cgroup that is already gone succeeds.
    pub fn delete(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut first_err = None;
        let fs = &*self.fs;
        for m in self.members.iter_mut().rev() {
            if let Err(e) = remove_tree(fs, &m.dir, deadline) {
                first_err.get_or_insert(e);
                continue;
            }
            while let Some(a) = m.created_ancestors.pop() {
                match fs.remove_dir(&a) {
                    Ok(()) => {}
                    Err(e)
                        if e.kind() == io::ErrorKind::NotFound
                            || is_errno(&e, libc_errno::EBUSY)
                            || is_errno(&e, libc_errno::ENOTEMPTY) => {}
                    Err(source) => {
                        first_err.get_or_insert(CgroupError::Remove {
                            path: a,
                            pids: Vec::new(),
                            source,
                        });
                        break;
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Reads the cgroup's counters.
    pub fn counters(&self) -> Result<Counters> {
        Counters::read(&*self.fs, &self.stat_dirs())
    }

    /// Where each group of counters is read from.
    pub fn stat_dirs(&self) -> StatDirs {
        let loc = |c: &str| {
            self.locate(c).map(|(version, m)| StatDir {
                version,
                path: m.dir.clone(),
            })
        };
        // On v2, cpu.stat's usage lines are there without the cpu controller.
        let core_cpu = || {
            self.unified()
                .filter(|u| self.fs.exists(&u.dir, "cpu.stat"))
                .map(|u| StatDir {
                    version: CgroupVersion::V2,
                    path: u.dir.clone(),
                })
        };
        StatDirs {
            cpuacct: loc("cpuacct").or_else(core_cpu),
            cpu: loc("cpu").or_else(core_cpu),
            memory: loc("memory"),
            pids: loc("pids"),
            blkio: loc("blkio").or_else(|| loc("io")),
        }
    }

    /// The OOM counters: v2 `memory.events`, v1 `memory.oom_control`.
    pub fn oom_status(&self) -> Result<OomStatus> {
        let (version, m) = self.require("oom detection", "memory")?;
        read_oom(
            &*self.fs,
            &StatDir {
                version,
                path: m.dir.clone(),
            },
        )
    }

    /// Whether the kernel OOM-killed a process of this cgroup since it was
    /// created (what the engine reports as `OOMKilled`). Read it after the
    /// container's processes are gone and before [`Cgroup::delete`].
    pub fn oom_killed(&self) -> Result<bool> {
        Ok(self.oom_status()?.oom_kill > 0)
    }
}

/// The errno values this module compares against (Linux).
mod libc_errno {
    pub const EBUSY: i32 = nix::errno::Errno::EBUSY as i32;
    pub const ENOTEMPTY: i32 = nix::errno::Errno::ENOTEMPTY as i32;
}

fn collect_procs(fs: &dyn CgroupFs, dir: &Path, set: &mut BTreeSet<i32>) -> Result<()> {
    let text = match fs.read(dir, "cgroup.procs") {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.join("cgroup.procs"),
                source,
            });
        }
    };
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let pid = line.parse().map_err(|_| CgroupError::Parse {
            path: dir.join("cgroup.procs"),
            reason: format!("{line:?} is not a pid"),
        })?;
        set.insert(pid);
    }
    // Child cgroups (a container may nest its own).
    for child in fs.child_dirs(dir).unwrap_or_default() {
        collect_procs(fs, &child, set)?;
    }
    Ok(())
}

/// Removes `dir` and its child cgroups, deepest first, retrying on `EBUSY`
/// until `deadline`.
fn remove_tree(fs: &dyn CgroupFs, dir: &Path, deadline: Instant) -> Result<()> {
    let mut pause = Duration::from_millis(1);
    loop {
        if !fs.dir_exists(dir) {
            return Ok(());
        }
        for child in fs.child_dirs(dir).unwrap_or_default() {
            remove_tree(fs, &child, deadline)?;
        }
        match fs.remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if (is_errno(&e, libc_errno::EBUSY) || is_errno(&e, libc_errno::ENOTEMPTY))
                    && Instant::now() < deadline =>
            {
                sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(source) => {
                let mut pids = BTreeSet::new();
                let _ = collect_procs(fs, dir, &mut pids);
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    pids: pids.into_iter().collect(),
                    source,
                });
            }
        }
    }
}

/// Enables the wanted v2 controllers `dir` offers in its `cgroup.subtree_control`.
fn enable_controllers(fs: &dyn CgroupFs, dir: &Path, failures: &mut Vec<String>) {
    let avail = fs.read(dir, "cgroup.controllers").unwrap_or_default();
    let enabled = fs.read(dir, "cgroup.subtree_control").unwrap_or_default();
    for c in V2_CONTROLLERS {
        let has = |t: &str| t.split_whitespace().any(|w| w == *c);
        if !has(&avail) || has(&enabled) {
            continue;
        }
        if let Err(e) = fs.write(dir, "cgroup.subtree_control", &format!("+{c}")) {
            failures.push(format!(
                "{c}: cannot enable it in {}: {e}",
                dir.join("cgroup.subtree_control").display()
            ));
        }
    }
}

/// A new v1 cpuset cgroup has no CPUs and no memory nodes (so no task could
/// join it): give it its parent's.
fn init_v1_cpuset(fs: &dyn CgroupFs, parent: &Path, dir: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if !fs.exists(dir, file) {
            continue;
        }
        let cur = counters::read(fs, dir, file)?;
        if !cur.trim().is_empty() {
            continue;
        }
        let from_parent = counters::read(fs, parent, file)?;
        let value = from_parent.trim().to_string();
        fs.write(dir, file, &value)
            .map_err(|source| CgroupError::Write {
                control: if file == "cpuset.cpus" {
                    "cpuset-cpus"
                } else {
                    "cpuset-mems"
                },
                value,
                path: dir.join(file),
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Cgroup>();
    }

    #[test]
    fn paths() {
        assert_eq!(
            split_path("lookout/abc").unwrap(),
            (false, vec!["lookout".to_string(), "abc".to_string()])
        );
        assert!(split_path("/lookout/abc/").unwrap().0);
        for bad in ["", "/", "a/../b", "a//b", "./a", "a\0b"] {
            let e = split_path(bad).unwrap_err().to_string();
            assert!(e.contains("invalid cgroup path"), "{e}");
        }
    }

    #[test]
    fn base_dirs() {
        let mp = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(
            base_dir(mp, Path::new("/"), Some(Path::new("/a/b")), false),
            Path::new("/sys/fs/cgroup/memory/a/b")
        );
        assert_eq!(
            base_dir(mp, Path::new("/"), Some(Path::new("/a/b")), true),
            Path::new("/sys/fs/cgroup/memory")
        );
        assert_eq!(
            base_dir(
                mp,
                Path::new("/docker/x"),
                Some(Path::new("/docker/x/y")),
                false
            ),
            Path::new("/sys/fs/cgroup/memory/y")
        );
    }
}
