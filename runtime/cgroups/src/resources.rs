//! The limits a container asks for, with Docker's semantics and checks.
//!
//! Values are numbers as in the Docker Engine API's `HostConfig` (bytes,
//! NanoCpus, microseconds); [`crate::units`] turns the CLI's strings into them.
//! [`Resources::validate`] checks them without touching the kernel; which
//! controls the kernel offers is checked when they are applied.

use crate::error::{CgroupError, Result};
use crate::units::{CpuList, NANO_CPUS_PER_CPU};

/// Docker's smallest memory limit and reservation: 6 MiB.
pub const MIN_MEMORY: i64 = 6 << 20;
/// The smallest `cpu.shares` the kernel accepts.
pub const MIN_CPU_SHARES: i64 = 2;
/// The largest `cpu.shares` the kernel accepts.
pub const MAX_CPU_SHARES: i64 = 262_144;
/// The CFS period used for `--cpus` (100 ms, as Docker).
pub const DEFAULT_CPU_PERIOD_US: i64 = 100_000;
/// The smallest CFS period or quota the kernel accepts, in µs.
pub const MIN_CPU_PERIOD_US: i64 = 1_000;
/// The largest CFS period the kernel accepts, in µs.
pub const MAX_CPU_PERIOD_US: i64 = 1_000_000;
/// The smallest `--cpus` Docker accepts, in NanoCpus (0.01 CPU).
pub const MIN_NANO_CPUS: i64 = NANO_CPUS_PER_CPU / 100;

/// Resource limits for one container, as in Docker's `HostConfig`.
///
/// `None` leaves the control untouched. As in the Docker API, `Some(0)` also
/// means "not set" for the sizes, shares, NanoCpus, period, quota and weight.
/// In a container's `config.json` it is an object with these snake_case
/// keys; unknown keys are refused, so a typo cannot drop a limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Resources {
    /// Hard memory limit in bytes (`--memory`): v1 `memory.limit_in_bytes`,
    /// v2 `memory.max`. At least 6 MiB.
    pub memory: Option<i64>,
    /// Memory soft limit in bytes (`--memory-reservation`): v1
    /// `memory.soft_limit_in_bytes`, v2 `memory.low`. At most `memory`.
    pub memory_reservation: Option<i64>,
    /// Memory plus swap in bytes (`--memory-swap`), `-1` for unlimited swap:
    /// v1 `memory.memsw.limit_in_bytes`, v2 `memory.swap.max` (= this −
    /// `memory`). Refused where the kernel does not account swap.
    pub memory_swap: Option<i64>,
    /// Relative CPU weight (`--cpu-shares`, 2…262144): v1 `cpu.shares`, v2
    /// `cpu.weight` through [`shares_to_weight`].
    pub cpu_shares: Option<i64>,
    /// CPU limit in NanoCpus (`--cpus 0.5` = 500 000 000): a CFS quota over a
    /// 100 ms period. Conflicts with `cpu_period`/`cpu_quota`.
    pub nano_cpus: Option<i64>,
    /// CFS period in µs (`--cpu-period`, 1000…1 000 000).
    pub cpu_period: Option<i64>,
    /// CFS quota in µs (`--cpu-quota`, ≥ 1000, or −1 for unlimited).
    pub cpu_quota: Option<i64>,
    /// CPUs the container may run on (`--cpuset-cpus 0-2,4`).
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may allocate from (`--cpuset-mems 0`).
    pub cpuset_mems: Option<String>,
    /// Maximum number of tasks (`--pids-limit`); zero or negative means unlimited.
    pub pids_limit: Option<i64>,
    /// Block I/O weight (`--blkio-weight`, 10…1000): v1 `blkio.weight` or
    /// `blkio.bfq.weight`, v2 `io.bfq.weight` or `io.weight`.
    pub blkio_weight: Option<i64>,
}

/// A limit, validated and normalised, independent of the cgroup version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Max {
    /// A number.
    Value(i64),
    /// Unlimited (`max` on v2, `-1` on v1).
    Unlimited,
}

/// What [`Resources::validate`] produces: the writes to make.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub memory_swap: Option<Max>,
    pub cpu_shares: Option<i64>,
    /// (quota, period) in µs.
    pub cpu_max: Option<(Max, i64)>,
    pub cpuset_cpus: Option<CpuList>,
    pub cpuset_mems: Option<CpuList>,
    pub pids: Option<Max>,
    pub blkio_weight: Option<i64>,
}

fn invalid(control: &'static str, value: impl ToString, reason: impl Into<String>) -> CgroupError {
    CgroupError::InvalidValue {
        control,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// `Some(v)` for a set, non-zero value.
fn set(v: Option<i64>) -> Option<i64> {
    v.filter(|&v| v != 0)
}

impl Resources {
    /// Checks every value as Docker's daemon does, without touching the
    /// kernel. `online_cpus` bounds `nano_cpus` when known.
    pub fn validate(&self, online_cpus: Option<usize>) -> Result<()> {
        self.plan(online_cpus).map(|_| ())
    }

    /// Whether no limit is set at all.
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }

    pub(crate) fn plan(&self, online_cpus: Option<usize>) -> Result<Plan> {
        let mut p = Plan::default();

        if let Some(m) = set(self.memory) {
            if m < 0 {
                return Err(invalid("memory", m, "must be a positive number of bytes"));
            }
            if m < MIN_MEMORY {
                return Err(invalid(
                    "memory",
                    m,
                    format!("below the minimum memory limit of 6MiB ({MIN_MEMORY} bytes)"),
                ));
            }
            p.memory = Some(m);
        }
        if let Some(r) = set(self.memory_reservation) {
            if r < 0 {
                return Err(invalid(
                    "memory-reservation",
                    r,
                    "must be a positive number of bytes",
                ));
            }
            if r < MIN_MEMORY {
                return Err(invalid(
                    "memory-reservation",
                    r,
                    format!("below the minimum memory reservation of 6MiB ({MIN_MEMORY} bytes)"),
                ));
            }
            if let Some(m) = p.memory
                && r > m
            {
                return Err(invalid(
                    "memory-reservation",
                    r,
                    format!("larger than the memory limit ({m} bytes)"),
                ));
            }
            p.memory_reservation = Some(r);
        }
        if let Some(s) = set(self.memory_swap) {
            if s == -1 {
                p.memory_swap = Some(Max::Unlimited);
            } else if s < 0 {
                return Err(invalid(
                    "memory-swap",
                    s,
                    "must be a number of bytes (memory plus swap) or -1 for unlimited",
                ));
            } else {
                let Some(m) = p.memory else {
                    return Err(invalid(
                        "memory-swap",
                        s,
                        "needs a memory limit (memory-swap is memory plus swap)",
                    ));
                };
                if s < m {
                    return Err(invalid(
                        "memory-swap",
                        s,
                        format!(
                            "smaller than the memory limit ({m} bytes); memory-swap is memory plus swap"
                        ),
                    ));
                }
                p.memory_swap = Some(Max::Value(s));
            }
        }

        if let Some(sh) = set(self.cpu_shares) {
            if !(MIN_CPU_SHARES..=MAX_CPU_SHARES).contains(&sh) {
                return Err(invalid(
                    "cpu-shares",
                    sh,
                    format!("must be between {MIN_CPU_SHARES} and {MAX_CPU_SHARES}"),
                ));
            }
            p.cpu_shares = Some(sh);
        }

        let period = set(self.cpu_period);
        let quota = set(self.cpu_quota);
        if let Some(n) = set(self.nano_cpus) {
            if period.is_some() || quota.is_some() {
                return Err(invalid(
                    "cpus",
                    format_cpus(n),
                    "conflicts with cpu-period/cpu-quota (set one or the other)",
                ));
            }
            let max = online_cpus.map(|c| c as i64 * NANO_CPUS_PER_CPU);
            if n < MIN_NANO_CPUS || max.is_some_and(|max| n > max) {
                let range = match online_cpus {
                    Some(c) => format!(
                        "the range of CPUs is from 0.01 to {c}.00, as there are only {c} CPUs available"
                    ),
                    None => "must be at least 0.01".to_string(),
                };
                return Err(invalid("cpus", format_cpus(n), range));
            }
            let q = n * DEFAULT_CPU_PERIOD_US / NANO_CPUS_PER_CPU;
            p.cpu_max = Some((Max::Value(q.max(MIN_CPU_PERIOD_US)), DEFAULT_CPU_PERIOD_US));
        } else if period.is_some() || quota.is_some() {
            let per = period.unwrap_or(DEFAULT_CPU_PERIOD_US);
            if !(MIN_CPU_PERIOD_US..=MAX_CPU_PERIOD_US).contains(&per) {
                return Err(invalid(
                    "cpu-period",
                    per,
                    "must be between 1000 and 1000000 microseconds",
                ));
            }
            let q = match quota {
                None | Some(-1) => Max::Unlimited,
                Some(q) if q >= MIN_CPU_PERIOD_US => Max::Value(q),
                Some(q) => {
                    return Err(invalid(
                        "cpu-quota",
                        q,
                        "must be at least 1000 microseconds, or -1 for unlimited",
                    ));
                }
            };
            p.cpu_max = Some((q, per));
        }

        if let Some(c) = self.cpuset_cpus.as_deref().filter(|s| !s.trim().is_empty()) {
            p.cpuset_cpus = Some(CpuList::parse("cpuset-cpus", c)?);
        }
        if let Some(m) = self.cpuset_mems.as_deref().filter(|s| !s.trim().is_empty()) {
            p.cpuset_mems = Some(CpuList::parse("cpuset-mems", m)?);
        }

        if let Some(n) = self.pids_limit {
            p.pids = Some(if n > 0 { Max::Value(n) } else { Max::Unlimited });
        }

        if let Some(w) = set(self.blkio_weight) {
            if !(10..=1000).contains(&w) {
                return Err(invalid("blkio-weight", w, "must be between 10 and 1000"));
            }
            p.blkio_weight = Some(w);
        }
        Ok(p)
    }
}

/// NanoCpus as the user typed them (`500000000` → `0.5`).
fn format_cpus(n: i64) -> String {
    let s = format!(
        "{}.{:09}",
        n / NANO_CPUS_PER_CPU,
        (n % NANO_CPUS_PER_CPU).abs()
    );
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Converts v1 `cpu.shares` (2…262144) to v2 `cpu.weight` (1…10000) with the
/// linear mapping runc, crun and Kubernetes use: 2 → 1, 1024 → 39,
/// 262144 → 10000.
pub fn shares_to_weight(shares: i64) -> i64 {
    let s = shares.clamp(MIN_CPU_SHARES, MAX_CPU_SHARES);
    1 + ((s - 2) * 9999) / 262_142
}

/// Converts a `--blkio-weight` (10…1000) to v2 `io.weight` (1…10000):
/// 10 → 1, 500 → 4950, 1000 → 10000.
pub fn blkio_weight_to_io_weight(weight: i64) -> i64 {
    let w = weight.clamp(10, 1000);
    1 + (w - 10) * 9999 / 990
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(format_cpus(500_000_000), "0.5");
        assert_eq!(format_cpus(2_000_000_000), "2");
    }

    #[test]
    fn cpus_plan() {
        let r = Resources {
            nano_cpus: Some(500_000_000),
            ..Default::default()
        };
        assert_eq!(
            r.plan(Some(2)).unwrap().cpu_max,
            Some((Max::Value(50_000), 100_000))
        );
        let r = Resources {
            nano_cpus: Some(3_000_000_000),
            ..Default::default()
        };
        let e = r.validate(Some(2)).unwrap_err().to_string();
        assert!(e.contains("\"3\"") && e.contains("only 2 CPUs"), "{e}");
        let r = Resources {
            nano_cpus: Some(1_000_000),
            ..Default::default()
        };
        assert!(
            r.validate(None)
                .unwrap_err()
                .to_string()
                .contains("\"0.001\"")
        );
    }

    #[test]
    fn memory_checks() {
        let e = Resources {
            memory: Some(1024),
            ..Default::default()
        }
        .validate(None)
        .unwrap_err()
        .to_string();
        assert!(e.contains("invalid memory value \"1024\""), "{e}");
        let e = Resources {
            memory: Some(64 << 20),
            memory_swap: Some(32 << 20),
            ..Default::default()
        }
        .validate(None)
        .unwrap_err()
        .to_string();
        assert!(e.contains("memory-swap") && e.contains("33554432"), "{e}");
        let e = Resources {
            memory: Some(64 << 20),
            memory_reservation: Some(128 << 20),
            ..Default::default()
        }
        .validate(None)
        .unwrap_err()
        .to_string();
        assert!(e.contains("memory-reservation"), "{e}");
        let p = Resources {
            pids_limit: Some(-1),
            memory_swap: Some(-1),
            ..Default::default()
        }
        .plan(None)
        .unwrap();
        assert_eq!(p.pids, Some(Max::Unlimited));
        assert_eq!(p.memory_swap, Some(Max::Unlimited));
    }
}
