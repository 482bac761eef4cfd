//! Time arguments as the docker CLI reads them (`logs --since/--until`):
//! moby's `GetTimestamp` — a Go duration (`10m`, `1h30m`) back from now, an
//! RFC 3339 time or date (local time when it has no zone), or Unix seconds.

/// A point in time: seconds since the Unix epoch and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// Whole seconds since the epoch (may be negative).
    pub secs: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub nanos: u32,
}

/// Parses a Go `time.ParseDuration` string (`300ms`, `-1.5h`, `2h45m`) into
/// nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * scale;
    }
    let n = total.round() as i128;
    Some(if neg { -n } else { n })
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn num(s: &str, len: usize) -> Option<u32> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses an RFC 3339 time or one of the shortened forms Docker accepts
/// (`2006-01-02`, `2006-01-02T15`, `2006-01-02T15:04`, with or without
/// seconds, fraction and zone). A time without a zone is taken at
/// `local_offset` seconds east of UTC.
pub fn parse_rfc3339ish(s: &str, local_offset: i64) -> Option<Timestamp> {
    let date = s.get(..10)?;
    let (y, m, d) = (
        num(date.get(0..4)?, 4)?,
        num(date.get(5..7)?, 2)?,
        num(date.get(8..10)?, 2)?,
    );
    if &date[4..5] != "-" || &date[7..8] != "-" || !(1..=12).contains(&m) || !(1..=31).contains(&d)
    {
        return None;
    }
    let mut rest = &s[10..];
    let (mut hh, mut mm, mut ss, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    if let Some(r) = rest.strip_prefix(['T', 't']) {
        hh = num(r.get(..2)?, 2)?;
        rest = &r[2..];
        if let Some(r) = rest.strip_prefix(':') {
            mm = num(r.get(..2)?, 2)?;
            rest = &r[2..];
            if let Some(r) = rest.strip_prefix(':') {
                ss = num(r.get(..2)?, 2)?;
                rest = &r[2..];
                if let Some(r) = rest.strip_prefix('.') {
                    let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
                    let frac = &r[..end];
                    if frac.is_empty() || frac.len() > 9 {
                        return None;
                    }
                    nanos = format!("{frac:0<9}").parse().ok()?;
                    rest = &r[end..];
                }
            }
        }
    }
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let offset = match rest {
        "" => local_offset,
        "Z" | "z" => 0,
        z if (z.starts_with('+') || z.starts_with('-')) && z.len() == 6 && &z[3..4] == ":" => {
            let oh = num(&z[1..3], 2)? as i64;
            let om = num(&z[4..6], 2)? as i64;
            let o = oh * 3600 + om * 60;
            if z.starts_with('-') { -o } else { o }
        }
        _ => return None,
    };
    let secs =
        days_from_civil(y as i64, m, d) * 86_400 + hh as i64 * 3600 + mm as i64 * 60 + ss as i64
            - offset;
    Some(Timestamp { secs, nanos })
}

/// Unix seconds with an optional fraction (`1700000000`, `1700000000.5`).
fn parse_unix(s: &str) -> Option<Timestamp> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    Some(Timestamp { secs, nanos })
}

/// moby's `GetTimestamp`: `value` read against `now` (and the local zone's
/// offset, for times written without a zone).
pub fn get_timestamp(value: &str, now: Timestamp, local_offset: i64) -> anyhow::Result<Timestamp> {
    if value != "0"
        && let Some(d) = parse_go_duration(value)
    {
        // Docker sends `reference.Add(-d).Unix()`: whole seconds.
        let now_ns = now.secs as i128 * 1_000_000_000 + now.nanos as i128;
        let t = now_ns - d;
        return Ok(Timestamp {
            secs: t.div_euclid(1_000_000_000) as i64,
            nanos: 0,
        });
    }
    if let Some(t) = parse_rfc3339ish(value, local_offset) {
        return Ok(t);
    }
    if value.contains('-') {
        anyhow::bail!("parsing time {value:?}: cannot parse as RFC 3339 time");
    }
    parse_unix(value)
        .ok_or_else(|| anyhow::anyhow!("failed to parse value as time or duration: {value:?}"))
}

/// The local time zone now: its offset east of UTC in seconds and its
/// abbreviation (`UTC`, `CET`).
pub fn local_zone() -> (i64, String) {
    let now = libc::time_t::try_from(crate::format::unix_now()).unwrap_or(0);
    // SAFETY: `tm` is a plain C struct for which all-zero bytes are valid;
    // `localtime_r` only reads `now` and writes into `tm`, both live locals.
    // `tm_zone`, when set, points to a NUL-terminated static string of the C
    // library's time zone data, which outlives this call.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return (0, "UTC".into());
        }
        let zone = if tm.tm_zone.is_null() {
            "UTC".to_string()
        } else {
            std::ffi::CStr::from_ptr(tm.tm_zone)
                .to_string_lossy()
                .into_owned()
        };
        (tm.tm_gmtoff, zone)
    }
}

/// The local time zone's current offset east of UTC, in seconds.
pub fn local_offset() -> i64 {
    local_zone().0
}

/// Now, as a [`Timestamp`].
pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        secs: d.as_secs() as i64,
        nanos: d.subsec_nanos(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp {
        secs: 1_795_812_160,
        nanos: 500_000_000,
    };

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("10m"), Some(600_000_000_000));
        assert_eq!(parse_go_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_go_duration("-2s"), Some(-2_000_000_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("10x"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn since_durations_are_back_from_now() {
        let t = get_timestamp("10m", NOW, 0).unwrap();
        assert_eq!(
            t,
            Timestamp {
                secs: 1_795_811_560,
                nanos: 0
            }
        );
        let t = get_timestamp("1h", NOW, 0).unwrap();
        assert_eq!(t.secs, 1_795_808_560);
    }

    #[test]
    fn since_rfc3339() {
        let t = get_timestamp("2026-11-27T20:42:44.161796887Z", NOW, 0).unwrap();
        assert_eq!(
            t,
            Timestamp {
                secs: 1_795_812_164,
                nanos: 161_796_887
            }
        );
        let t = get_timestamp("2026-11-27T21:42:44+01:00", NOW, 0).unwrap();
        assert_eq!(t.secs, 1_795_812_164);
        // No zone: local time.
        let t = get_timestamp("2026-11-27T21:42:44", NOW, 3600).unwrap();
        assert_eq!(t.secs, 1_795_812_164);
        let t = get_timestamp("2026-11-27", NOW, 0).unwrap();
        assert_eq!(t.secs, 1_795_737_600);
        let t = get_timestamp("2026-11-27T20:42", NOW, 0).unwrap();
        assert_eq!(t.secs, 1_795_812_120);
        let t = get_timestamp("1970-01-01T00:00:00Z", NOW, 0).unwrap();
        assert_eq!(t.secs, 0);
        assert!(get_timestamp("2026-13-27", NOW, 0).is_err());
    }

    #[test]
    fn since_unix_seconds() {
        let t = get_timestamp("1795812164", NOW, 0).unwrap();
        assert_eq!(
            t,
            Timestamp {
                secs: 1_795_812_164,
                nanos: 0
            }
        );
        let t = get_timestamp("1795812164.25", NOW, 0).unwrap();
        assert_eq!(t.nanos, 250_000_000);
        assert_eq!(get_timestamp("0", NOW, 0).unwrap().secs, 0);
        assert!(get_timestamp("yesterday", NOW, 0).is_err());
    }
}
