//! `lookout stats`: resource usage, computed from the stats JSON exactly as
//! the docker CLI computes it.

use std::collections::HashMap;

use anyhow::Result;
use bollard::container::ListContainersOptions;
use clap::Args;
use serde::Deserialize;

use crate::client::{Client, describe_error, path_escape};
use crate::format::{Table, bytes_size, human_size_prec, truncate_id};

/// `lookout stats`
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Containers (default: all running)
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// The parts of `GET /containers/{id}/stats` the table needs (missing
/// fields read as zero, as Go decodes them).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StatsJson {
    /// Container ID.
    pub id: String,
    /// Container name, with its leading `/`.
    pub name: String,
    /// This sample's CPU counters.
    pub cpu_stats: CpuStats,
    /// The previous sample's CPU counters.
    pub precpu_stats: CpuStats,
    /// Memory counters.
    pub memory_stats: MemoryStats,
    /// Block I/O counters.
    pub blkio_stats: BlkioStats,
    /// Process counters.
    pub pids_stats: PidsStats,
    /// Per-interface network counters.
    pub networks: Option<HashMap<String, NetworkStats>>,
}

/// `cpu_stats` / `precpu_stats`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CpuStats {
    /// Container CPU time.
    pub cpu_usage: CpuUsage,
    /// Host CPU time.
    pub system_cpu_usage: u64,
    /// CPUs online.
    pub online_cpus: u32,
}

/// `cpu_usage`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CpuUsage {
    /// Total CPU time consumed, in nanoseconds.
    pub total_usage: u64,
    /// Per-CPU time (cgroup v1 only).
    pub percpu_usage: Option<Vec<u64>>,
}

/// `memory_stats`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    /// Current usage in bytes (page cache included).
    pub usage: u64,
    /// The limit in bytes.
    pub limit: u64,
    /// The cgroup's memory.stat counters.
    pub stats: HashMap<String, serde_json::Value>,
}

/// `blkio_stats`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BlkioStats {
    /// Bytes per device and operation.
    pub io_service_bytes_recursive: Option<Vec<BlkioEntry>>,
}

/// One `io_service_bytes_recursive` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BlkioEntry {
    /// `read`, `write`, … (any case).
    pub op: String,
    /// Bytes.
    pub value: u64,
}

/// `pids_stats`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PidsStats {
    /// Processes in the container.
    pub current: u64,
}

/// One interface's counters.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NetworkStats {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// What one row of the table shows, before formatting.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Usage {
    /// CPU %, of one CPU (can exceed 100).
    pub cpu_percent: f64,
    /// Memory used, page cache's inactive files excluded.
    pub memory: f64,
    /// Memory limit.
    pub memory_limit: f64,
    /// Memory % of the limit.
    pub memory_percent: f64,
    /// Network bytes received, all interfaces.
    pub net_rx: f64,
    /// Network bytes sent, all interfaces.
    pub net_tx: f64,
    /// Block bytes read.
    pub block_read: u64,
    /// Block bytes written.
    pub block_write: u64,
    /// Processes.
    pub pids: u64,
}

fn stat(m: &HashMap<String, serde_json::Value>, k: &str) -> Option<u64> {
    m.get(k).and_then(serde_json::Value::as_u64)
}

/// The docker CLI's numbers (`calculateCPUPercentUnix`,
/// `calculateMemUsageUnixNoCache`, `calculateBlockIO`, `calculateNetwork`).
pub fn compute(s: &StatsJson) -> Usage {
    let cpu_delta =
        s.cpu_stats.cpu_usage.total_usage as f64 - s.precpu_stats.cpu_usage.total_usage as f64;
    let system_delta = s.cpu_stats.system_cpu_usage as f64 - s.precpu_stats.system_cpu_usage as f64;
    let mut online = s.cpu_stats.online_cpus as f64;
    if online == 0.0 {
        online = s
            .cpu_stats
            .cpu_usage
            .percpu_usage
            .as_ref()
            .map_or(0, Vec::len) as f64;
    }
    let cpu_percent = if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * online * 100.0
    } else {
        0.0
    };

    let mem = &s.memory_stats;
    let memory = match stat(&mem.stats, "total_inactive_file") {
        // cgroup v1
        Some(v) if v < mem.usage => (mem.usage - v) as f64,
        // cgroup v2 (a missing counter reads as 0, as in Go)
        _ => {
            let v = stat(&mem.stats, "inactive_file").unwrap_or(0);
            if v < mem.usage {
                (mem.usage - v) as f64
            } else {
                mem.usage as f64
            }
        }
    };
    let memory_limit = mem.limit as f64;
    let memory_percent = if memory_limit != 0.0 {
        memory / memory_limit * 100.0
    } else {
        0.0
    };

    let (mut block_read, mut block_write) = (0u64, 0u64);
    for e in s.blkio_stats.io_service_bytes_recursive.iter().flatten() {
        match e.op.bytes().next() {
            Some(b'r' | b'R') => block_read += e.value,
            Some(b'w' | b'W') => block_write += e.value,
            _ => {}
        }
    }
    let (mut net_rx, mut net_tx) = (0.0, 0.0);
    for n in s.networks.iter().flat_map(HashMap::values) {
        net_rx += n.rx_bytes as f64;
        net_tx += n.tx_bytes as f64;
    }
    Usage {
        cpu_percent,
        memory,
        memory_limit,
        memory_percent,
        net_rx,
        net_tx,
        block_read,
        block_write,
        pids: s.pids_stats.current,
    }
}

/// The table's header.
pub const HEADER: [&str; 8] = [
    "CONTAINER ID",
    "NAME",
    "CPU %",
    "MEM USAGE / LIMIT",
    "MEM %",
    "NET I/O",
    "BLOCK I/O",
    "PIDS",
];

/// One formatted row, as `docker stats` prints it.
pub fn row(s: &StatsJson, trunc: bool) -> Vec<String> {
    let u = compute(s);
    let name = s.name.strip_prefix('/').unwrap_or(&s.name);
    vec![
        if trunc {
            truncate_id(&s.id)
        } else {
            s.id.clone()
        },
        if name.is_empty() {
            "--".into()
        } else {
            name.to_string()
        },
        format!("{:.2}%", u.cpu_percent),
        format!("{} / {}", bytes_size(u.memory), bytes_size(u.memory_limit)),
        format!("{:.2}%", u.memory_percent),
        format!(
            "{} / {}",
            human_size_prec(u.net_rx, 3),
            human_size_prec(u.net_tx, 3)
        ),
        format!(
            "{} / {}",
            human_size_prec(u.block_read as f64, 3),
            human_size_prec(u.block_write as f64, 3)
        ),
        u.pids.to_string(),
    ]
}

/// One sample of `container` (`stream=false`: the daemon fills `precpu`).
async fn sample(client: &Client, container: &str) -> Result<StatsJson> {
    let body = client
        .raw
        .get(&format!(
            "/containers/{}/stats?stream=false",
            path_escape(container)
        ))
        .await?;
    Ok(serde_json::from_slice(&body)?)
}

/// Runs `lookout stats`.
pub async fn stats(client: &Client, a: &StatsArgs) -> Result<i32> {
    let containers: Vec<String> = if a.containers.is_empty() {
        client
            .docker
            .list_containers(Some(ListContainersOptions::<String> {
                all: a.all,
                ..Default::default()
            }))
            .await?
            .into_iter()
            .filter_map(|c| c.id)
            .collect()
    } else {
        a.containers.clone()
    };
    loop {
        let samples =
            futures_util::future::join_all(containers.iter().map(|c| sample(client, c))).await;
        let mut t = Table::new(&HEADER);
        let mut errors = Vec::new();
        for (c, s) in containers.iter().zip(samples) {
            match s {
                Ok(s) => t.row(row(&s, !a.no_trunc)),
                Err(e) => errors.push(format!("{c}: {}", describe_error(&e, ""))),
            }
        }
        if !a.no_stream {
            // Clear the screen and go home, as docker redraws.
            print!("\x1b[2J\x1b[H");
        }
        print!("{}", t.render());
        if a.no_stream {
            for e in &errors {
                eprintln!("{e}");
            }
            return Ok(i32::from(
                !errors.is_empty() && errors.len() == containers.len(),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = include_bytes!(
        "../../../../tests/fixtures/docker-api-samples/containers_sample_stats_stream_false.json"
    );

    #[test]
    fn the_sample_computes_as_docker() {
        let s: StatsJson = serde_json::from_slice(SAMPLE).unwrap();
        let u = compute(&s);
        // (34452973 - 32931589) / (8440780000000 - 8438780000000) * 2 * 100
        assert!(
            (u.cpu_percent - 0.1521384).abs() < 1e-9,
            "{}",
            u.cpu_percent
        );
        // usage 2908160 - total_inactive_file 430080 (cgroup v1)
        assert_eq!(u.memory, 2_478_080.0);
        assert_eq!(u.memory_limit, 67_108_864.0);
        assert!((u.memory_percent - 3.692626953125).abs() < 1e-9);
        assert_eq!((u.block_read, u.block_write, u.pids), (0, 0, 3));
        assert_eq!(
            row(&s, true),
            [
                "c1a48da6340d",
                "sample",
                "0.15%",
                "2.363MiB / 64MiB",
                "3.69%",
                "0B / 0B",
                "0B / 0B",
                "3"
            ]
        );
    }

    #[test]
    fn cgroup_v2_and_counters() {
        let s: StatsJson = serde_json::from_str(
            r#"{"id":"abc","name":"/x",
                "cpu_stats":{"cpu_usage":{"total_usage":300},"system_cpu_usage":2000,"online_cpus":0},
                "precpu_stats":{"cpu_usage":{"total_usage":100},"system_cpu_usage":1000},
                "memory_stats":{"usage":10485760,"limit":0,"stats":{"inactive_file":1048576,"anon":5}},
                "blkio_stats":{"io_service_bytes_recursive":[{"major":8,"minor":0,"op":"read","value":4096},{"op":"Write","value":1000000},{"op":"total","value":7}]},
                "networks":{"eth0":{"rx_bytes":1500,"tx_bytes":2000000},"eth1":{"rx_bytes":500,"tx_bytes":0}},
                "pids_stats":{"current":2}}"#,
        )
        .unwrap();
        let u = compute(&s);
        // No online_cpus and no percpu_usage: zero CPUs, as docker.
        assert_eq!(u.cpu_percent, 0.0);
        assert_eq!(u.memory, 9_437_184.0);
        assert_eq!(u.memory_percent, 0.0);
        assert_eq!((u.block_read, u.block_write), (4096, 1_000_000));
        assert_eq!((u.net_rx, u.net_tx), (2000.0, 2_000_000.0));
        let r = row(&s, true);
        assert_eq!(r[3], "9MiB / 0B");
        assert_eq!(r[5], "2kB / 2MB");
        assert_eq!(r[6], "4.1kB / 1MB");
    }

    #[test]
    fn online_cpus_fall_back_to_percpu() {
        let s: StatsJson = serde_json::from_str(
            r#"{"cpu_stats":{"cpu_usage":{"total_usage":300,"percpu_usage":[1,2,3,4]},"system_cpu_usage":2000},
                "precpu_stats":{"cpu_usage":{"total_usage":100},"system_cpu_usage":1000}}"#,
        )
        .unwrap();
        assert!((compute(&s).cpu_percent - 80.0).abs() < 1e-9);
    }
}
