//! Times as the Docker API writes them.

use std::time::{SystemTime, UNIX_EPOCH};

/// Go's zero `time.Time`, which dockerd writes for times not yet reached
/// (`FinishedAt` of a running container, …).
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Now, in nanoseconds since the Unix epoch.
pub fn now_unix_nano() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Go's RFC3339Nano in UTC (trailing fractional zeros trimmed), as the API's
/// JSON times are written.
pub fn rfc3339_nano(t: i64) -> String {
    lookout_core::logs::reader::format_rfc3339_nano(t)
}

/// `t` or [`ZERO_TIME`] when unset (0).
pub fn rfc3339_or_zero(t: i64) -> String {
    if t == 0 {
        ZERO_TIME.to_string()
    } else {
        rfc3339_nano(t)
    }
}

/// RFC 3339 with exactly nine fractional digits, as `docker logs -t` prints
/// (moby's `RFC3339NanoFixed`).
pub fn rfc3339_nano_fixed(t: i64) -> String {
    let secs = t.div_euclid(1_000_000_000);
    let nanos = t.rem_euclid(1_000_000_000);
    let whole = rfc3339_nano(secs * 1_000_000_000);
    let base = whole.strip_suffix('Z').unwrap_or(&whole);
    format!("{base}.{nanos:09}Z")
}

/// Parses the API's time parameters (`since`, `until`): Unix seconds with an
/// optional fraction (`1700000000.000000001`, as the CLI sends them) or an
/// RFC 3339 time. Returns nanoseconds since the epoch.
pub fn parse_api_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Some(t) = lookout_core::logs::reader::parse_rfc3339_nano(s.as_bytes()) {
        return Some(t);
    }
    let (secs, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let secs: i64 = secs.parse().ok()?;
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_has_nine_digits() {
        assert_eq!(
            rfc3339_nano_fixed(1_000_000_000 + 5_000),
            "1970-01-01T00:00:01.000005000Z"
        );
        assert_eq!(rfc3339_nano(1_500_000_000), "1970-01-01T00:00:01.5Z");
    }

    #[test]
    fn api_times() {
        assert_eq!(parse_api_time("12.5"), Some(12_500_000_000));
        assert_eq!(parse_api_time("12"), Some(12_000_000_000));
        assert_eq!(parse_api_time("1970-01-01T00:00:02Z"), Some(2_000_000_000));
        assert_eq!(parse_api_time("soon"), None);
    }
}
