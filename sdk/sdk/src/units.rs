//! Docker's human-readable sizes (`10m`, `1.5g`, `100`), as the
//! `github.com/docker/go-units` package parses them.
//!
//! The accepted syntax is a decimal number (digits, optionally followed by
//! `.digits`), an optional single space, an optional unit letter
//! `k m g t p` (any case), an optional `i` and an optional `b`: `1k`, `1kb`,
//! `1KiB`, `1 MB`, `2.5g`, `100`, `100b`. Anything else — a sign, an
//! exponent, a stray character, an empty string — is rejected with an error
//! naming the value. Fractions are truncated toward zero after scaling, as
//! Go's `int64(float64)` does.
//!
//! Two scales exist, as in go-units:
//! * [`ram_in_bytes`] (`units.RAMInBytes`): `k` = 1024, `m` = 1024², …
//! * [`from_human_size`] (`units.FromHumanSize`): `k` = 1000, `m` = 1000², …
//!
//! Docker's `json-file` and `local` drivers parse `max-size` with
//! `FromHumanSize` (so `max-size=10m` is 10 000 000 bytes); memory limits and
//! most other sizes use `RAMInBytes`.

use std::fmt;

/// A size string that is not a valid Docker size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseSizeError {
    value: String,
}

impl ParseSizeError {
    /// The rejected input.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for ParseSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // go-units' wording.
        write!(f, "invalid size: '{}'", self.value)
    }
}

impl std::error::Error for ParseSizeError {}

/// Parses a size with binary multipliers (`1k` = 1024), like Docker's
/// `units.RAMInBytes`.
pub fn ram_in_bytes(s: &str) -> Result<i64, ParseSizeError> {
    parse_size(s, 1024)
}

/// Parses a size with decimal multipliers (`1k` = 1000), like Docker's
/// `units.FromHumanSize` (what Docker's json-file and local drivers use for
/// `max-size`).
pub fn from_human_size(s: &str) -> Result<i64, ParseSizeError> {
    parse_size(s, 1000)
}

fn parse_size(s: &str, base: i64) -> Result<i64, ParseSizeError> {
    let err = || ParseSizeError {
        value: s.to_string(),
    };
    let b = s.as_bytes();
    let mut i = 0;
    // One or more groups of digits separated by single dots: `\d+(\.\d+)*`.
    let mut dots = 0;
    loop {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(err());
        }
        if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
            dots += 1;
            i += 1;
            continue;
        }
        break;
    }
    let number = &s[..i];
    // ` ?([kmgtp])?i?b?$`, case-insensitive.
    if i < b.len() && b[i] == b' ' {
        i += 1;
    }
    let mut exp = 0u32;
    if i < b.len()
        && let Some(p) = b"kmgtp"
            .iter()
            .position(|&u| u == b[i].to_ascii_lowercase())
    {
        exp = p as u32 + 1;
        i += 1;
    }
    if i < b.len() && b[i].eq_ignore_ascii_case(&b'i') {
        i += 1;
    }
    if i < b.len() && b[i].eq_ignore_ascii_case(&b'b') {
        i += 1;
    }
    if i != b.len() {
        return Err(err());
    }
    // The pattern admits `1.2.3`, which Go's ParseFloat then rejects.
    if dots > 1 {
        return Err(err());
    }
    let mul = base.pow(exp);
    if dots == 0 {
        // Exact integer arithmetic when there is no fraction.
        let n: i64 = number.parse().map_err(|_| err())?;
        return n.checked_mul(mul).ok_or_else(err);
    }
    let f: f64 = number.parse().map_err(|_| err())?;
    let v = f * mul as f64;
    if !v.is_finite() || v >= i64::MAX as f64 {
        return Err(err());
    }
    Ok(v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_sizes() {
        assert_eq!(ram_in_bytes("100"), Ok(100));
        assert_eq!(ram_in_bytes("1k"), Ok(1024));
        assert_eq!(ram_in_bytes("1K"), Ok(1024));
        assert_eq!(ram_in_bytes("1kb"), Ok(1024));
        assert_eq!(ram_in_bytes("1KiB"), Ok(1024));
        assert_eq!(ram_in_bytes("10m"), Ok(10 << 20));
        assert_eq!(ram_in_bytes("10 MB"), Ok(10 << 20));
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1t"), Ok(1 << 40));
        assert_eq!(ram_in_bytes("1p"), Ok(1 << 50));
        assert_eq!(ram_in_bytes("32b"), Ok(32));
        assert_eq!(ram_in_bytes("32B"), Ok(32));
        assert_eq!(ram_in_bytes("0.5k"), Ok(512));
        assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
        assert_eq!(ram_in_bytes("0"), Ok(0));
        // The pattern allows a trailing space and a bare `i`.
        assert_eq!(ram_in_bytes("10 "), Ok(10));
        assert_eq!(ram_in_bytes("1ib"), Ok(1));
    }

    #[test]
    fn decimal_sizes() {
        assert_eq!(from_human_size("1k"), Ok(1000));
        assert_eq!(from_human_size("10m"), Ok(10_000_000));
        assert_eq!(from_human_size("1.5kB"), Ok(1500));
        assert_eq!(from_human_size("1g"), Ok(1_000_000_000));
    }

    #[test]
    fn garbage_is_rejected_naming_the_value() {
        for bad in [
            "",
            "-1",
            "-1k",
            "+1",
            "1e3",
            "k",
            "1x",
            "1kk",
            "1 k b",
            "1..2",
            "1.",
            ".5",
            "1.2.3",
            " 1",
            "1  k",
            "1kib ",
            "99999999999999999999",
        ] {
            let e = ram_in_bytes(bad).unwrap_err();
            assert_eq!(e.value(), bad);
            assert!(e.to_string().contains(&format!("'{bad}'")), "{e}");
        }
        assert!(ram_in_bytes("9000000p").is_err());
        assert!(from_human_size("9223372036854775807k").is_err());
    }
}
