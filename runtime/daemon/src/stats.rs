//! Container statistics in the shape of Docker's stats API
//! (`GET /containers/{id}/stats`).
//!
//! A [`Sample`] is what the kernel counted for one container at one moment
//! (its cgroup counters, the raw `memory.stat`, block I/O per device) plus the
//! host's CPU time from `/proc/stat`. [`stats_json`] turns the current sample
//! and the previous one into the JSON object dockerd sends, with the keys of
//! its answer on a cgroup v1 host (`cpu_stats`, `precpu_stats`,
//! `memory_stats`, `pids_stats`, `blkio_stats`, `read`, `preread`, …). The
//! `docker stats` CLI computes CPU % from the deltas of
//! `cpu_usage.total_usage` and `system_cpu_usage`, and MEM USAGE as `usage`
//! minus `total_inactive_file` (v1) or `inactive_file` (v2).

use std::collections::BTreeMap;
use std::path::Path;

use lookout_cgroups::{Cgroup, CgroupVersion, Counters};
use serde_json::{Map, Value, json};

use crate::timefmt::{ZERO_TIME, rfc3339_nano};

/// One block I/O counter of one device, as Docker lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlkioEntry {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// `read`, `write`, `sync`, `async`, `discard` or `total`.
    pub op: String,
    /// The counter.
    pub value: u64,
}

/// What one stats read found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// When the sample was taken, nanoseconds since the Unix epoch.
    pub read_unix_nano: i64,
    /// The cgroup's counters.
    pub counters: Counters,
    /// Host CPU time of all CPUs (from `/proc/stat`), nanoseconds.
    pub system_cpu_ns: u64,
    /// Online CPUs.
    pub online_cpus: u64,
    /// Per-CPU usage (v1 `cpuacct.usage_percpu`), when the kernel offers it.
    pub percpu_usage: Option<Vec<u64>>,
    /// The whole `memory.stat` of the cgroup.
    pub memory_stat: BTreeMap<String, u64>,
    /// v1 `memory.max_usage_in_bytes` (peak usage).
    pub memory_max_usage: Option<u64>,
    /// The host's RAM, bytes: the limit shown when the cgroup has none.
    pub host_memory: u64,
    /// Bytes transferred per device and operation.
    pub io_service_bytes: Vec<BlkioEntry>,
    /// Operations per device and kind.
    pub io_serviced: Vec<BlkioEntry>,
}

/// Errors reading a sample.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The cgroup could not be read.
    #[error("reading the container's cgroup: {0}")]
    Cgroup(#[from] lookout_cgroups::CgroupError),
    /// A host file could not be read.
    #[error("reading {path}: {source}")]
    Host {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Sum of the CPU time columns of the `cpu` line of `/proc/stat` (user,
/// nice, system, idle, iowait, irq, softirq, as Docker sums them), converted
/// from clock ticks to nanoseconds with `ticks_per_sec`.
pub fn parse_proc_stat(text: &str, ticks_per_sec: u64) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let mut total: u64 = 0;
    for f in line.split_whitespace().skip(1).take(7) {
        total = total.checked_add(f.parse::<u64>().ok()?)?;
    }
    let ticks_per_sec = ticks_per_sec.max(1);
    Some(total.saturating_mul(1_000_000_000 / ticks_per_sec))
}

/// Parses a flat `key value` file (`memory.stat`).
pub fn parse_flat_kv(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// Parses a v1 blkio file (`8:0 Read 1234` lines; the `Total` line that
/// ends the file has no device and is skipped).
pub fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let dev = it.next()?;
            let op = it.next()?;
            let value = it.next()?.parse().ok()?;
            let (ma, mi) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: ma.parse().ok()?,
                minor: mi.parse().ok()?,
                op: op.to_ascii_lowercase(),
                value,
            })
        })
        .collect()
}

/// Parses v2 `io.stat` (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 …`) into bytes
/// and operations entries.
pub fn parse_io_stat_v2(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let mut bytes = Vec::new();
    let mut ops = Vec::new();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((ma, mi)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (ma.parse::<u64>(), mi.parse::<u64>()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse::<u64>() else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "read"),
                "wbytes" => (&mut bytes, "write"),
                "rios" => (&mut ops, "read"),
                "wios" => (&mut ops, "write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    (bytes, ops)
}

fn read_host(path: &str) -> Result<String, StatsError> {
    std::fs::read_to_string(path).map_err(|source| StatsError::Host {
        path: path.to_string(),
        source,
    })
}

/// The host's RAM in bytes, from `/proc/meminfo`.
pub fn host_memory() -> Result<u64, StatsError> {
    let text = read_host("/proc/meminfo")?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0))
}

/// The host's CPU time in nanoseconds, from `/proc/stat`.
pub fn system_cpu_ns() -> Result<u64, StatsError> {
    let text = read_host("/proc/stat")?;
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = u64::try_from(ticks).unwrap_or(100);
    parse_proc_stat(&text, ticks).ok_or_else(|| StatsError::Host {
        path: "/proc/stat".to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "no cpu line"),
    })
}

/// Online CPUs of the host.
pub fn online_cpus() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u64::try_from(n).unwrap_or(1).max(1)
}

fn read_opt(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

/// Reads a sample of `cg` now.
pub fn sample(cg: &Cgroup, host_memory: u64, now_unix_nano: i64) -> Result<Sample, StatsError> {
    let counters = cg.counters()?;
    let dirs = cg.stat_dirs();
    let mut s = Sample {
        read_unix_nano: now_unix_nano,
        counters,
        system_cpu_ns: system_cpu_ns()?,
        online_cpus: cg
            .online_cpus()
            .map(|n| n as u64)
            .unwrap_or_else(online_cpus),
        host_memory,
        ..Sample::default()
    };
    if let Some(d) = dirs
        .cpuacct
        .as_ref()
        .filter(|d| d.version == CgroupVersion::V1)
    {
        s.percpu_usage = read_opt(&d.path, "cpuacct.usage_percpu").map(|t| {
            t.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        });
    }
    if let Some(d) = &dirs.memory {
        if let Some(t) = read_opt(&d.path, "memory.stat") {
            s.memory_stat = parse_flat_kv(&t);
        }
        if d.version == CgroupVersion::V1 {
            s.memory_max_usage =
                read_opt(&d.path, "memory.max_usage_in_bytes").and_then(|t| t.trim().parse().ok());
        }
    }
    if let Some(d) = &dirs.blkio {
        match d.version {
            CgroupVersion::V1 => {
                let pick = |a: &str, b: &str| read_opt(&d.path, a).or_else(|| read_opt(&d.path, b));
                if let Some(t) = pick(
                    "blkio.throttle.io_service_bytes_recursive",
                    "blkio.io_service_bytes_recursive",
                ) {
                    s.io_service_bytes = parse_blkio_v1(&t);
                }
                if let Some(t) = pick(
                    "blkio.throttle.io_serviced_recursive",
                    "blkio.io_serviced_recursive",
                ) {
                    s.io_serviced = parse_blkio_v1(&t);
                }
            }
            CgroupVersion::V2 => {
                if let Some(t) = read_opt(&d.path, "io.stat") {
                    (s.io_service_bytes, s.io_serviced) = parse_io_stat_v2(&t);
                }
            }
        }
    }
    Ok(s)
}

fn blkio_list(entries: &[BlkioEntry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect(),
    )
}

fn cpu_json(s: Option<&Sample>) -> Value {
    let Some(s) = s else {
        return json!({
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
        });
    };
    let c = &s.counters;
    let mut usage = json!({
        "total_usage": c.cpu_total_ns,
        "usage_in_kernelmode": c.cpu_system_ns,
        "usage_in_usermode": c.cpu_user_ns,
    });
    if let Some(p) = &s.percpu_usage {
        usage["percpu_usage"] = json!(p);
    }
    json!({
        "cpu_usage": usage,
        "system_cpu_usage": s.system_cpu_ns,
        "online_cpus": s.online_cpus,
        "throttling_data": {
            "periods": c.nr_periods,
            "throttled_periods": c.nr_throttled,
            "throttled_time": c.throttled_ns,
        }
    })
}

/// The stats object dockerd sends for a container: `cur` is this read,
/// `prev` the one before (absent on the first read of a stream, as in
/// Docker, where `precpu_stats` is then zero).
pub fn stats_json(id: &str, name: &str, cur: &Sample, prev: Option<&Sample>) -> Value {
    let c = &cur.counters;
    let mut memory = Map::new();
    memory.insert("usage".into(), json!(c.memory_usage));
    if let Some(m) = cur.memory_max_usage {
        memory.insert("max_usage".into(), json!(m));
    }
    memory.insert("stats".into(), json!(cur.memory_stat));
    memory.insert(
        "limit".into(),
        json!(c.memory_limit.unwrap_or(cur.host_memory)),
    );
    let mut pids = Map::new();
    pids.insert("current".into(), json!(c.pids_current));
    if let Some(l) = c.pids_limit {
        pids.insert("limit".into(), json!(l));
    }
    json!({
        "read": rfc3339_nano(cur.read_unix_nano),
        "preread": prev.map(|p| rfc3339_nano(p.read_unix_nano)).unwrap_or_else(|| ZERO_TIME.to_string()),
        "pids_stats": pids,
        "blkio_stats": {
            "io_service_bytes_recursive": blkio_list(&cur.io_service_bytes),
            "io_serviced_recursive": blkio_list(&cur.io_serviced),
            "io_queue_recursive": [],
            "io_service_time_recursive": [],
            "io_wait_time_recursive": [],
            "io_merged_recursive": [],
            "io_time_recursive": [],
            "sectors_recursive": [],
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(Some(cur)),
        "precpu_stats": cpu_json(prev),
        "memory_stats": memory,
        "name": name,
        "id": id,
    })
}

/// The object dockerd sends for a container that is not running: every
/// counter zero, the times zero.
pub fn idle_stats_json(id: &str, name: &str) -> Value {
    json!({
        "read": ZERO_TIME,
        "preread": ZERO_TIME,
        "pids_stats": {},
        "blkio_stats": {
            "io_service_bytes_recursive": null,
            "io_serviced_recursive": null,
            "io_queue_recursive": null,
            "io_service_time_recursive": null,
            "io_wait_time_recursive": null,
            "io_merged_recursive": null,
            "io_time_recursive": null,
            "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(None),
        "precpu_stats": cpu_json(None),
        "memory_stats": {},
        "name": name,
        "id": id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(read: i64, total: u64, system: u64) -> Sample {
        Sample {
            read_unix_nano: read,
            counters: Counters {
                cpu_total_ns: total,
                cpu_user_ns: 20_000_000,
                cpu_system_ns: 10_000_000,
                nr_periods: 5,
                nr_throttled: 2,
                throttled_ns: 700,
                memory_usage: 2_908_160,
                memory_limit: Some(67_108_864),
                pids_current: 3,
                ..Counters::default()
            },
            system_cpu_ns: system,
            online_cpus: 2,
            percpu_usage: Some(vec![total / 2, total - total / 2]),
            memory_stat: parse_flat_kv("cache 1982464\ntotal_inactive_file 430080\n"),
            memory_max_usage: Some(4_222_976),
            host_memory: 25_276_502_016,
            io_service_bytes: parse_blkio_v1("8:0 Read 4096\n8:0 Write 8192\nTotal 12288\n"),
            io_serviced: vec![],
        }
    }

    #[test]
    fn proc_stat_sums_seven_columns() {
        let t = "cpu  100 5 50 1000 10 1 2 3 0 0\ncpu0 1 2 3 4 5 6 7\n";
        assert_eq!(parse_proc_stat(t, 100), Some(1168 * 10_000_000));
        assert_eq!(parse_proc_stat("intr 1\n", 100), None);
    }

    #[test]
    fn blkio_and_io_stat_parse() {
        let v1 = parse_blkio_v1("8:0 Read 10\n8:0 Write 20\n8:0 Sync 0\nTotal 30\n");
        assert_eq!(v1.len(), 3);
        assert_eq!(v1[1].op, "write");
        assert_eq!(v1[1].value, 20);
        let (b, o) = parse_io_stat_v2("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0\n");
        assert_eq!((b.len(), o.len()), (2, 2));
        assert_eq!(o[1].value, 4);
    }

    #[test]
    fn docker_cli_numbers_come_out() {
        let prev = fixed(1_000_000_000, 32_931_589, 8_438_780_000_000);
        let cur = fixed(2_000_000_000, 34_452_973, 8_440_780_000_000);
        let v = stats_json("abc", "/sample", &cur, Some(&prev));
        // The CLI: Δcpu / Δsystem × online × 100.
        let d_cpu = v["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap()
            - v["precpu_stats"]["cpu_usage"]["total_usage"]
                .as_u64()
                .unwrap();
        let d_sys = v["cpu_stats"]["system_cpu_usage"].as_u64().unwrap()
            - v["precpu_stats"]["system_cpu_usage"].as_u64().unwrap();
        assert_eq!(d_cpu, 1_521_384);
        assert_eq!(d_sys, 2_000_000_000);
        assert_eq!(v["cpu_stats"]["online_cpus"], 2);
        assert_eq!(v["memory_stats"]["usage"], 2_908_160);
        assert_eq!(v["memory_stats"]["limit"], 67_108_864);
        assert_eq!(v["memory_stats"]["stats"]["total_inactive_file"], 430_080);
        assert_eq!(v["pids_stats"]["current"], 3);
        assert_eq!(v["cpu_stats"]["throttling_data"]["throttled_periods"], 2);
        assert_eq!(
            v["blkio_stats"]["io_service_bytes_recursive"][0]["op"],
            "read"
        );
        assert_eq!(v["read"], "1970-01-01T00:00:02Z");
        assert_eq!(v["preread"], "1970-01-01T00:00:01Z");
        assert_eq!(v["name"], "/sample");
    }

    #[test]
    fn unlimited_memory_shows_host_ram() {
        let mut s = fixed(1, 1, 1);
        s.counters.memory_limit = None;
        let v = stats_json("abc", "/x", &s, None);
        assert_eq!(v["memory_stats"]["limit"], 25_276_502_016u64);
        assert_eq!(v["preread"], ZERO_TIME);
        assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 0);
    }

    #[test]
    fn same_keys_as_dockerd_sample() {
        let prev = fixed(1, 1, 1);
        let cur = fixed(2, 2, 2);
        let v = stats_json("abc", "/x", &cur, Some(&prev));
        for k in [
            "read",
            "preread",
            "pids_stats",
            "blkio_stats",
            "num_procs",
            "storage_stats",
            "cpu_stats",
            "precpu_stats",
            "memory_stats",
            "name",
            "id",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
    }
}
