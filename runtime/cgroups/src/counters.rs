//! What the kernel counts for a cgroup: CPU, memory, OOM, pids and block I/O,
//! read from v1 or v2 files into one version-independent [`Counters`].
//!
//! Every read goes through a [`CgroupFs`], so the parsers run on fixture
//! trees of real kernel files (`tests/fixtures/`).
//!
//! Sources, as `docker stats` and cAdvisor use them:
//!
//! | counter | v1 | v2 |
//! |---|---|---|
//! | cpu total | `cpuacct.usage` | `cpu.stat usage_usec` × 1000 |
//! | cpu user/system | `cpuacct.usage_user`/`_sys` (or `cpuacct.stat` ticks) | `cpu.stat user_usec`/`system_usec` |
//! | throttling | `cpu.stat nr_periods nr_throttled throttled_time` | `cpu.stat nr_periods nr_throttled throttled_usec` |
//! | memory usage/limit | `memory.usage_in_bytes`/`memory.limit_in_bytes` | `memory.current`/`memory.max` |
//! | cache/rss/inactive file | `memory.stat total_cache total_rss total_inactive_file` | `memory.stat file anon inactive_file` |
//! | OOM | `memory.oom_control oom_kill under_oom` | `memory.events oom oom_kill` |
//! | pids | `pids.current`/`pids.max` | same |
//! | block I/O | `blkio.throttle.io_service_bytes_recursive`/`io_serviced_recursive` | `io.stat rbytes wbytes rios wios` |

use std::path::{Path, PathBuf};

use crate::error::{CgroupError, Result};
use crate::fs::CgroupFs;
use crate::layout::CgroupVersion;

/// v1 reports "no limit" as the largest page-aligned value
/// (9223372036854771712 with 4 KiB pages); anything this large is unlimited.
pub const V1_UNLIMITED_THRESHOLD: u64 = 1 << 62;

/// USER_HZ: the unit of `cpuacct.stat` (ticks of 10 ms on every Linux ABI).
const NANOS_PER_USER_TICK: u64 = 10_000_000;

/// A snapshot of a cgroup's counters, the same on v1 and v2.
///
/// A counter whose controller is not attached to the cgroup reads as zero
/// (or `None` for the limits and swap).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// CPU time in user mode, ns.
    pub cpu_user_ns: u64,
    /// CPU time in kernel mode, ns.
    pub cpu_system_ns: u64,
    /// Total CPU time, ns (what `docker stats` uses for CPU %).
    pub cpu_total_ns: u64,
    /// CFS periods that elapsed with the cgroup runnable.
    pub nr_periods: u64,
    /// Periods in which the cgroup hit its quota.
    pub nr_throttled: u64,
    /// Total time the cgroup spent throttled, ns.
    pub throttled_ns: u64,
    /// Memory charged to the cgroup, bytes (page cache included).
    pub memory_usage: u64,
    /// The hard memory limit, bytes; `None` when unlimited.
    pub memory_limit: Option<u64>,
    /// Page cache: v1 `total_cache`, v2 `file`.
    pub memory_cache: u64,
    /// Anonymous memory: v1 `total_rss`, v2 `anon`.
    pub memory_rss: u64,
    /// Inactive page cache: v1 `total_inactive_file`, v2 `inactive_file`.
    pub memory_inactive_file: u64,
    /// Usage minus inactive file (Docker's MEM USAGE and cAdvisor's working set).
    pub memory_working_set: u64,
    /// Swap in use, bytes, where the kernel accounts it: v1
    /// `memory.memsw.usage_in_bytes` − usage, v2 `memory.swap.current`.
    pub memory_swap: Option<u64>,
    /// Times the cgroup hit its limit and the OOM killer was invoked (v2
    /// `memory.events oom`; v1 has no such counter and repeats `oom_kill`).
    pub oom_events: u64,
    /// Processes of the cgroup killed by the OOM killer.
    pub oom_kill: u64,
    /// Tasks (processes and threads) in the cgroup.
    pub pids_current: u64,
    /// The pids limit; `None` when unlimited.
    pub pids_limit: Option<u64>,
    /// Bytes read from block devices.
    pub blkio_read_bytes: u64,
    /// Bytes written to block devices.
    pub blkio_write_bytes: u64,
    /// Read operations on block devices.
    pub blkio_read_ops: u64,
    /// Write operations on block devices.
    pub blkio_write_ops: u64,
}

/// The out-of-memory state of a cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OomStatus {
    /// Times the OOM killer was invoked for the cgroup (v1: same as `oom_kill`).
    pub oom_events: u64,
    /// Processes of the cgroup the OOM killer killed.
    pub oom_kill: u64,
    /// v1 `under_oom`: tasks are currently stalled in an OOM situation (only
    /// with the OOM killer disabled). Always false on v2.
    pub under_oom: bool,
}

/// A directory to read counters from, with its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatDir {
    /// The file format (v1 or v2 names).
    pub version: CgroupVersion,
    /// The cgroup directory.
    pub path: PathBuf,
}

/// Where each group of counters lives for one cgroup; `None` for a
/// controller the cgroup does not have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatDirs {
    /// CPU usage: v1 `cpuacct`, v2 the cgroup (always there: `cpu.stat` is core).
    pub cpuacct: Option<StatDir>,
    /// CPU throttling: v1 `cpu`, v2 the cgroup.
    pub cpu: Option<StatDir>,
    /// Memory and OOM.
    pub memory: Option<StatDir>,
    /// Tasks.
    pub pids: Option<StatDir>,
    /// Block I/O: v1 `blkio`, v2 `io`.
    pub blkio: Option<StatDir>,
}

impl StatDirs {
    /// A v1 cgroup whose per-controller directories are `base/cpu`,
    /// `base/cpuacct`, `base/memory`, `base/pids` and `base/blkio` (the
    /// fixture layout).
    pub fn v1_under(base: &Path) -> StatDirs {
        let d = |c: &str| {
            Some(StatDir {
                version: CgroupVersion::V1,
                path: base.join(c),
            })
        };
        StatDirs {
            cpuacct: d("cpuacct"),
            cpu: d("cpu"),
            memory: d("memory"),
            pids: d("pids"),
            blkio: d("blkio"),
        }
    }

    /// A v2 cgroup with every controller in `dir`.
    pub fn v2(dir: &Path) -> StatDirs {
        let d = || {
            Some(StatDir {
                version: CgroupVersion::V2,
                path: dir.to_path_buf(),
            })
        };
        StatDirs {
            cpuacct: d(),
            cpu: d(),
            memory: d(),
            pids: d(),
            blkio: d(),
        }
    }
}

impl Counters {
    /// Reads every counter group `dirs` names.
    pub fn read(fs: &dyn CgroupFs, dirs: &StatDirs) -> Result<Counters> {
        let mut c = Counters::default();
        if let Some(d) = &dirs.cpuacct {
            read_cpu_usage(fs, d, &mut c)?;
        }
        if let Some(d) = &dirs.cpu {
            read_cpu_throttling(fs, d, &mut c)?;
        }
        if let Some(d) = &dirs.memory {
            read_memory(fs, d, &mut c)?;
        }
        if let Some(d) = &dirs.pids {
            c.pids_current = read_u64(fs, &d.path, "pids.current")?;
            c.pids_limit = read_max(fs, &d.path, "pids.max")?;
        }
        if let Some(d) = &dirs.blkio {
            read_blkio(fs, d, &mut c)?;
        }
        Ok(c)
    }
}

/// Reads the OOM counters from a memory cgroup directory.
pub fn read_oom(fs: &dyn CgroupFs, dir: &StatDir) -> Result<OomStatus> {
    match dir.version {
        CgroupVersion::V1 => {
            let kv = read_kv(fs, &dir.path, "memory.oom_control")?;
            let kill = kv_get(&kv, "oom_kill").unwrap_or(0);
            Ok(OomStatus {
                oom_events: kill,
                oom_kill: kill,
                under_oom: kv_get(&kv, "under_oom").unwrap_or(0) != 0,
            })
        }
        CgroupVersion::V2 => {
            let kv = read_kv(fs, &dir.path, "memory.events")?;
            Ok(OomStatus {
                oom_events: kv_get(&kv, "oom").unwrap_or(0),
                oom_kill: kv_get(&kv, "oom_kill").unwrap_or(0),
                under_oom: false,
            })
        }
    }
}

fn read_cpu_usage(fs: &dyn CgroupFs, d: &StatDir, c: &mut Counters) -> Result<()> {
    match d.version {
        CgroupVersion::V1 => {
            c.cpu_total_ns = read_u64(fs, &d.path, "cpuacct.usage")?;
            if fs.exists(&d.path, "cpuacct.usage_user") && fs.exists(&d.path, "cpuacct.usage_sys") {
                c.cpu_user_ns = read_u64(fs, &d.path, "cpuacct.usage_user")?;
                c.cpu_system_ns = read_u64(fs, &d.path, "cpuacct.usage_sys")?;
            } else {
                let kv = read_kv(fs, &d.path, "cpuacct.stat")?;
                c.cpu_user_ns = kv_get(&kv, "user").unwrap_or(0) * NANOS_PER_USER_TICK;
                c.cpu_system_ns = kv_get(&kv, "system").unwrap_or(0) * NANOS_PER_USER_TICK;
            }
        }
        CgroupVersion::V2 => {
            let kv = read_kv(fs, &d.path, "cpu.stat")?;
            let us = |k: &str| kv_get(&kv, k).unwrap_or(0).saturating_mul(1000);
            c.cpu_total_ns = us("usage_usec");
            c.cpu_user_ns = us("user_usec");
            c.cpu_system_ns = us("system_usec");
        }
    }
    Ok(())
}

fn read_cpu_throttling(fs: &dyn CgroupFs, d: &StatDir, c: &mut Counters) -> Result<()> {
    let kv = read_kv(fs, &d.path, "cpu.stat")?;
    c.nr_periods = kv_get(&kv, "nr_periods").unwrap_or(0);
    c.nr_throttled = kv_get(&kv, "nr_throttled").unwrap_or(0);
    c.throttled_ns = match d.version {
        CgroupVersion::V1 => kv_get(&kv, "throttled_time").unwrap_or(0),
        CgroupVersion::V2 => kv_get(&kv, "throttled_usec")
            .unwrap_or(0)
            .saturating_mul(1000),
    };
    Ok(())
}

fn read_memory(fs: &dyn CgroupFs, d: &StatDir, c: &mut Counters) -> Result<()> {
    let p = &d.path;
    let stat = read_kv(fs, p, "memory.stat")?;
    match d.version {
        CgroupVersion::V1 => {
            c.memory_usage = read_u64(fs, p, "memory.usage_in_bytes")?;
            let limit = read_u64(fs, p, "memory.limit_in_bytes")?;
            c.memory_limit = (limit < V1_UNLIMITED_THRESHOLD).then_some(limit);
            // The total_* lines include descendant cgroups, as the usage does.
            let get = |k: &str| {
                kv_get(&stat, &format!("total_{k}"))
                    .or_else(|| kv_get(&stat, k))
                    .unwrap_or(0)
            };
            c.memory_cache = get("cache");
            c.memory_rss = get("rss");
            c.memory_inactive_file = get("inactive_file");
            if fs.exists(p, "memory.memsw.usage_in_bytes") {
                let memsw = read_u64(fs, p, "memory.memsw.usage_in_bytes")?;
                c.memory_swap = Some(memsw.saturating_sub(c.memory_usage));
            }
        }
        CgroupVersion::V2 => {
            c.memory_usage = read_u64(fs, p, "memory.current")?;
            c.memory_limit = read_max(fs, p, "memory.max")?;
            c.memory_cache = kv_get(&stat, "file").unwrap_or(0);
            c.memory_rss = kv_get(&stat, "anon").unwrap_or(0);
            c.memory_inactive_file = kv_get(&stat, "inactive_file").unwrap_or(0);
            if fs.exists(p, "memory.swap.current") {
                c.memory_swap = Some(read_u64(fs, p, "memory.swap.current")?);
            }
        }
    }
    c.memory_working_set = c.memory_usage.saturating_sub(c.memory_inactive_file);
    let oom = read_oom(fs, d)?;
    c.oom_events = oom.oom_events;
    c.oom_kill = oom.oom_kill;
    Ok(())
}

fn read_blkio(fs: &dyn CgroupFs, d: &StatDir, c: &mut Counters) -> Result<()> {
    let p = &d.path;
    match d.version {
        CgroupVersion::V1 => {
            // The CFQ-era files when present (old kernels), else the throttle
            // policy's, which every kernel with blkio keeps.
            let (bytes, ops) = if fs.exists(p, "blkio.io_service_bytes_recursive") {
                (
                    "blkio.io_service_bytes_recursive",
                    "blkio.io_serviced_recursive",
                )
            } else {
                (
                    "blkio.throttle.io_service_bytes_recursive",
                    "blkio.throttle.io_serviced_recursive",
                )
            };
            (c.blkio_read_bytes, c.blkio_write_bytes) = sum_v1_blkio(fs, p, bytes)?;
            (c.blkio_read_ops, c.blkio_write_ops) = sum_v1_blkio(fs, p, ops)?;
        }
        CgroupVersion::V2 => {
            let text = read(fs, p, "io.stat")?;
            for line in text.lines() {
                for field in line.split_whitespace().skip(1) {
                    let Some((k, v)) = field.split_once('=') else {
                        continue;
                    };
                    let v: u64 = v.parse().map_err(|_| parse_err(p, "io.stat", line))?;
                    match k {
                        "rbytes" => c.blkio_read_bytes += v,
                        "wbytes" => c.blkio_write_bytes += v,
                        "rios" => c.blkio_read_ops += v,
                        "wios" => c.blkio_write_ops += v,
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(())
}

/// Sums the `Read` and `Write` lines (`8:0 Read 4096`) over all devices.
fn sum_v1_blkio(fs: &dyn CgroupFs, dir: &Path, file: &str) -> Result<(u64, u64)> {
    let text = read(fs, dir, file)?;
    let (mut r, mut w) = (0u64, 0u64);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 3 {
            continue; // "Total N" and blank lines
        }
        let v: u64 = f[2].parse().map_err(|_| parse_err(dir, file, line))?;
        match f[1] {
            "Read" => r += v,
            "Write" => w += v,
            _ => {}
        }
    }
    Ok((r, w))
}

pub(crate) fn read(fs: &dyn CgroupFs, dir: &Path, file: &str) -> Result<String> {
    fs.read(dir, file).map_err(|source| CgroupError::Read {
        path: dir.join(file),
        source,
    })
}

fn parse_err(dir: &Path, file: &str, what: &str) -> CgroupError {
    CgroupError::Parse {
        path: dir.join(file),
        reason: format!("unexpected content {what:?}"),
    }
}

/// A file holding one unsigned number.
pub(crate) fn read_u64(fs: &dyn CgroupFs, dir: &Path, file: &str) -> Result<u64> {
    let s = read(fs, dir, file)?;
    s.trim().parse().map_err(|_| parse_err(dir, file, s.trim()))
}

/// A file holding a number or `max`.
pub(crate) fn read_max(fs: &dyn CgroupFs, dir: &Path, file: &str) -> Result<Option<u64>> {
    let s = read(fs, dir, file)?;
    match s.trim() {
        "max" => Ok(None),
        t => t.parse().map(Some).map_err(|_| parse_err(dir, file, t)),
    }
}

/// A flat-keyed file (`key value` per line).
pub(crate) fn read_kv(fs: &dyn CgroupFs, dir: &Path, file: &str) -> Result<Vec<(String, u64)>> {
    let s = read(fs, dir, file)?;
    let mut out = Vec::new();
    for line in s.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once(' ')
            .ok_or_else(|| parse_err(dir, file, line))?;
        let v: u64 = v.trim().parse().map_err(|_| parse_err(dir, file, line))?;
        out.push((k.to_string(), v));
    }
    Ok(out)
}

pub(crate) fn kv_get(kv: &[(String, u64)], key: &str) -> Option<u64> {
    kv.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}
