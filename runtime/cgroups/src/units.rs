//! Parsers for the strings users type: sizes (`--memory 32m`), CPU counts
//! (`--cpus 0.5`) and CPU/memory-node lists (`--cpuset-cpus 0-2,4`).
//!
//! Each error names the control and the rejected value.

use std::collections::BTreeSet;
use std::fmt;

use crate::error::{CgroupError, Result};

/// Nanocpus per CPU (`--cpus 1` is `NanoCpus = 1_000_000_000`).
pub const NANO_CPUS_PER_CPU: i64 = 1_000_000_000;

/// The largest CPU or memory-node number a list may name.
pub const MAX_CPU_INDEX: u32 = 65_535;

fn invalid(control: &'static str, value: &str, reason: impl Into<String>) -> CgroupError {
    CgroupError::InvalidValue {
        control,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Parses a size with binary multiples like Docker's `--memory`
/// (go-units `RAMInBytes`): a decimal number, an optional space, an optional
/// unit `k m g t p` (any case) and an optional `i` and `b`: `32m`, `1.5g`,
/// `512MiB`, `100`, `100b`. `control` names the option in the error.
pub fn parse_size(control: &'static str, value: &str) -> Result<i64> {
    let n = lookout_sdk::units::ram_in_bytes(value).map_err(|_| {
        invalid(
            control,
            value,
            "expected a size such as 512m, 1g or 1073741824",
        )
    })?;
    if n < 0 {
        return Err(invalid(control, value, "must not be negative"));
    }
    Ok(n)
}

/// Parses `--memory` (see [`parse_size`]).
pub fn parse_memory(value: &str) -> Result<i64> {
    parse_size("memory", value)
}

/// Parses `--memory-swap`: a size (memory plus swap, see [`parse_size`]) or
/// `-1` for unlimited swap.
pub fn parse_memory_swap(value: &str) -> Result<i64> {
    if value.trim() == "-1" {
        return Ok(-1);
    }
    parse_size("memory-swap", value)
}

/// Parses `--cpus` (a decimal number of CPUs, `0.5`, `1.25`, `2`) into
/// NanoCpus. More than nine decimals is "too precise", as in Docker.
pub fn parse_cpus(value: &str) -> Result<i64> {
    let err = |why: &str| invalid("cpus", value, why);
    let s = value.trim();
    let (int_part, frac_part) = s.split_once('.').unwrap_or((s, ""));
    let digits_only = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if s.is_empty()
        || (int_part.is_empty() && frac_part.is_empty())
        || !digits_only(int_part)
        || !digits_only(frac_part)
        || (s.contains('.') && frac_part.is_empty())
    {
        return Err(err("expected a number of CPUs such as 0.5 or 2"));
    }
    let frac_trimmed = frac_part.trim_end_matches('0');
    if frac_trimmed.len() > 9 {
        return Err(err("value is too precise (at most 9 decimals)"));
    }
    let int: i64 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().map_err(|_| err("too large"))?
    };
    let mut frac_nanos: i64 = 0;
    if !frac_trimmed.is_empty() {
        let n: i64 = frac_trimmed.parse().map_err(|_| err("too large"))?;
        frac_nanos = n * 10i64.pow(9 - frac_trimmed.len() as u32);
    }
    int.checked_mul(NANO_CPUS_PER_CPU)
        .and_then(|v| v.checked_add(frac_nanos))
        .ok_or_else(|| err("too large"))
}

/// A set of CPU or memory-node numbers in the kernel's list syntax (`0-3,5`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuList(BTreeSet<u32>);

impl CpuList {
    /// Parses a list such as `0-3,5`, `1`, or `` (empty). Surrounding
    /// whitespace (as kernel files end with a newline) is ignored. `control`
    /// names the option in the error (`cpuset-cpus`, `cpuset-mems`).
    pub fn parse(control: &'static str, value: &str) -> Result<CpuList> {
        let err = |why: String| invalid(control, value, why);
        let mut set = BTreeSet::new();
        let s = value.trim();
        if s.is_empty() {
            return Ok(CpuList(set));
        }
        for item in s.split(',') {
            let num = |t: &str| -> Result<u32> {
                if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err(format!("{item:?} is not a number or a range like 0-3")));
                }
                let n: u32 = t.parse().map_err(|_| err(format!("{t} is too large")))?;
                if n > MAX_CPU_INDEX {
                    return Err(err(format!("{n} is too large")));
                }
                Ok(n)
            };
            match item.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    if a > b {
                        return Err(err(format!("range {item} is reversed")));
                    }
                    set.extend(a..=b);
                }
                None => {
                    set.insert(num(item)?);
                }
            }
        }
        Ok(CpuList(set))
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many CPUs (or nodes) it names.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether every member of `self` is in `other`.
    pub fn is_subset(&self, other: &CpuList) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The members, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }
}

impl fmt::Display for CpuList {
    /// The canonical kernel form: ascending, ranges collapsed (`0-3,5`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut it = self.0.iter().copied().peekable();
        while let Some(start) = it.next() {
            let mut end = start;
            while it.peek() == Some(&(end + 1)) {
                end += 1;
                it.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_memory("32m").unwrap(), 32 << 20);
        assert_eq!(parse_memory("32MiB").unwrap(), 32 << 20);
        assert_eq!(parse_memory("1 GB").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_memory("100").unwrap(), 100);
        assert_eq!(parse_memory("100b").unwrap(), 100);
        assert_eq!(parse_memory_swap("-1").unwrap(), -1);
        for bad in [
            "",
            "-5m",
            "12x",
            "1.2.3m",
            "m",
            ".5m",
            "5.m",
            "1e3",
            "99999999999p",
        ] {
            let e = parse_memory(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
            assert!(e.starts_with("invalid memory value"), "{e}");
        }
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("0.5").unwrap(), 500_000_000);
        assert_eq!(parse_cpus("2").unwrap(), 2_000_000_000);
        assert_eq!(parse_cpus(".25").unwrap(), 250_000_000);
        assert_eq!(parse_cpus("1.000000001").unwrap(), 1_000_000_001);
        assert_eq!(parse_cpus("1.5000000000").unwrap(), 1_500_000_000);
        for bad in ["", "abc", "-1", "1.", "0.0000000001", "1,5", "1e9", "."] {
            let e = parse_cpus(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn cpu_lists() {
        let l = CpuList::parse("cpuset-cpus", "0-3,5,7-8\n").unwrap();
        assert_eq!(l.len(), 7);
        assert_eq!(l.to_string(), "0-3,5,7-8");
        assert_eq!(
            CpuList::parse("cpuset-cpus", "3,1,2").unwrap().to_string(),
            "1-3"
        );
        assert!(CpuList::parse("cpuset-cpus", "").unwrap().is_empty());
        assert!(
            CpuList::parse("cpuset-cpus", "0-1")
                .unwrap()
                .is_subset(&CpuList::parse("x", "0-3").unwrap())
        );
        for bad in ["0-", "a", "3-1", "0,,1", "1-2-3", "70000", " -1"] {
            let e = CpuList::parse("cpuset-cpus", bad).unwrap_err().to_string();
            assert!(e.contains("cpuset-cpus"), "{e}");
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }
}
