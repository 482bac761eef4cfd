//! Output formatting shared by the commands: tables laid out like Go's
//! `tabwriter` as the docker CLI configures it, and the human sizes and
//! durations of `github.com/docker/go-units`.

use std::time::Duration;

/// Decimal unit suffixes (`HumanSize`).
const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
/// Binary unit suffixes (`BytesSize`).
const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// Formats `x` like Go's `%.{prec}g`: `prec` significant digits, trailing
/// zeros removed, exponent form (`1e+03`) when the exponent is below -4 or
/// not below `prec`.
pub fn go_g(x: f64, prec: usize) -> String {
    let prec = prec.max(1);
    if x == 0.0 {
        return "0".to_string();
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "NaN".into()
        } else if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let sci = format!("{:.*e}", prec - 1, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let m = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_fraction(&format!("{x:.decimals$}")).to_string()
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn scale(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// go-units `HumanSizeWithPrecision`: decimal units (`4.26MB`, `999B`, `1.2kB`).
pub fn human_size_prec(size: f64, precision: usize) -> String {
    let (v, unit) = scale(size, 1000.0, &DECIMAL_UNITS);
    format!("{}{unit}", go_g(v, precision))
}

/// go-units `BytesSize`: binary units with four significant digits (`1.5MiB`),
/// as `docker stats` prints memory.
pub fn bytes_size(size: f64) -> String {
    let (v, unit) = scale(size, 1024.0, &BINARY_UNITS);
    format!("{}{unit}", go_g(v, 4))
}

/// go-units `HumanDuration`: "Less than a second", "5 seconds", "About a
/// minute", "3 hours", "2 weeks", …
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
}

/// "N units ago" for a Unix time in seconds, relative to `now` (seconds).
pub fn human_since(created: i64, now: i64) -> String {
    let d = Duration::from_secs(now.saturating_sub(created).max(0) as u64);
    format!("{} ago", human_duration(d))
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A Unix time's calendar fields (proleptic Gregorian, as read at the
/// offset it was shifted by).
struct Civil {
    year: i64,
    month: usize,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    /// 0 = Sunday.
    weekday: usize,
}

fn civil(t: i64) -> Civil {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    Civil {
        year: yoe + era * 400 + i64::from(month <= 2),
        month: month as usize,
        day,
        hour: secs / 3600,
        minute: secs % 3600 / 60,
        second: secs % 60,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7) as usize,
    }
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Go's `time.ANSIC` layout (`Mon Jan _2 15:04:05 2006`) of a Unix time,
/// read as UTC.
pub fn ansic(t: i64) -> String {
    let c = civil(t);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        WEEKDAYS[c.weekday],
        MONTHS[c.month - 1],
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.year
    )
}

/// Go's `time.Time.String()` without fractional seconds
/// (`2026-11-27 20:42:40 +0000 UTC`), for a Unix time in a zone `offset`
/// seconds east of UTC named `zone`.
pub fn go_time(t: i64, offset: i64, zone: &str) -> String {
    let c = civil(t + offset);
    let sign = if offset < 0 { '-' } else { '+' };
    let o = offset.abs();
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02} {sign}{:02}{:02} {zone}",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        o / 3600,
        o % 3600 / 60
    )
}

/// moby's `stringid.TruncateID`: drops an algorithm prefix (`sha256:`) and
/// keeps 12 characters.
pub fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map_or(id, |(_, rest)| rest);
    id.chars().take(12).collect()
}

/// The docker CLI's `Ellipsis`: at most `max` characters, the last one
/// replaced by `…` when the text was cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote` for the printable text the CLI shows (commands).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A table laid out like the docker CLI's `tabwriter.NewWriter(out, 10, 1, 3,
/// ' ', 0)`: every column but the last is padded to the widest cell plus 3,
/// and at least 10 characters wide.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first row is `header`.
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    /// Appends a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The laid-out text, each line ending in `\n`.
    pub fn render(&self) -> String {
        let ncols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![10usize; ncols];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count() + 3);
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if i + 1 < row.len() {
                    let pad = widths[i] - cell.chars().count();
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_g_matches_go() {
        assert_eq!(go_g(4.26123, 3), "4.26");
        assert_eq!(go_g(4.0, 3), "4");
        assert_eq!(go_g(999.9, 3), "1e+03");
        assert_eq!(go_g(1.984230, 3), "1.98");
        assert_eq!(go_g(0.0001234, 3), "0.000123");
        assert_eq!(go_g(0.00001234, 3), "1.23e-05");
        assert_eq!(go_g(12.5, 4), "12.5");
        assert_eq!(go_g(100.0, 3), "100");
    }

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size_prec(1_984_230.0, 3), "1.98MB");
        assert_eq!(human_size_prec(4_260_000.0, 3), "4.26MB");
        assert_eq!(human_size_prec(999.0, 3), "999B");
        assert_eq!(human_size_prec(0.0, 3), "0B");
        assert_eq!(human_size_prec(1000.0, 3), "1kB");
        assert_eq!(human_size_prec(999_999.0, 3), "1e+03kB");
        assert_eq!(human_size_prec(1_500_000_000.0, 4), "1.5GB");
        assert_eq!(bytes_size(2_478_080.0), "2.363MiB");
        assert_eq!(bytes_size(67_108_864.0), "64MiB");
        assert_eq!(bytes_size(512.0), "512B");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
    }

    #[test]
    fn durations_like_go_units() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(5)), "5 seconds");
        assert_eq!(human_duration(s(59)), "59 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(119)), "About a minute");
        assert_eq!(human_duration(s(120)), "2 minutes");
        assert_eq!(human_duration(s(3599)), "59 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(5400)), "2 hours");
        assert_eq!(human_duration(s(47 * 3600)), "47 hours");
        assert_eq!(human_duration(s(48 * 3600)), "2 days");
        assert_eq!(human_duration(s(14 * 24 * 3600)), "2 weeks");
        assert_eq!(human_duration(s(60 * 24 * 3600)), "2 months");
        assert_eq!(human_duration(s(2 * 365 * 24 * 3600)), "2 years");
        assert_eq!(human_since(100, 105), "5 seconds ago");
    }

    #[test]
    fn ansic_dates() {
        assert_eq!(ansic(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ansic(1_795_812_164), "Fri Nov 27 20:42:44 2026");
        assert_eq!(ansic(951_782_400), "Tue Feb 29 00:00:00 2000");
        assert_eq!(
            go_time(1_795_812_160, 0, "UTC"),
            "2026-11-27 20:42:40 +0000 UTC"
        );
        assert_eq!(
            go_time(1_795_812_160, 3600, "CET"),
            "2026-11-27 21:42:40 +0100 CET"
        );
        assert_eq!(go_time(0, -16_200, "X"), "1969-12-31 19:30:00 -0430 X");
    }

    #[test]
    fn ids_and_commands() {
        assert_eq!(
            truncate_id("sha256:5c5dabf140d95b0766880c4005ec5ee4cc2505813a1165a44805f2d6e0940c0f"),
            "5c5dabf140d9"
        );
        assert_eq!(truncate_id("c1a48da6340deee8f8a7"), "c1a48da6340d");
        assert_eq!(
            ellipsis("sh -c 'while true; do echo hi; sleep 1; done'", 20),
            "sh -c 'while true; …"
        );
        assert_eq!(ellipsis("sleep 10", 20), "sleep 10");
        assert_eq!(go_quote("sh -c 'a \"b\"'"), "\"sh -c 'a \\\"b\\\"'\"");
        assert_eq!(go_quote("a\nb"), "\"a\\nb\"");
    }

    #[test]
    fn table_like_tabwriter() {
        let mut t = Table::new(&["CONTAINER ID", "IMAGE", "NAMES"]);
        t.row(vec!["c1a48da6340d".into(), "bb:1".into(), "sample".into()]);
        assert_eq!(
            t.render(),
            "CONTAINER ID   IMAGE     NAMES\nc1a48da6340d   bb:1      sample\n"
        );
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["a-very-long-cell-value".into(), "x".into()]);
        assert_eq!(
            t.render(),
            "A                        B\na-very-long-cell-value   x\n"
        );
    }
}
