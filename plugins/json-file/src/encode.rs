//! The json-file record encoder: Docker's on-disk line, byte for byte.
//!
//! ```text
//! {"log":"<escaped bytes>","stream":"stdout","attrs":{…},"time":"2019-01-01T11:11:11.111Z"}\n
//! ```
//!
//! The escaping is that of Docker's own encoder (moby
//! `daemon/logger/jsonfilelog/jsonlog/jsonlogbytes.go`), which differs from
//! Go's `encoding/json`: `"` `\` LF CR get backslash forms; every other byte
//! below 0x20 is `\u00xx` (TAB too); `<` `>` `&` are `\u003c` `\u003e`
//! `\u0026`; U+2028 and U+2029 are escaped; DEL, `/` and valid UTF-8 are
//! raw; and every byte at which Go's `utf8.DecodeRune` fails (it fails with
//! width 1) becomes one `\ufffd`.
//!
//! The encoder allocates nothing per record: it appends to a caller's
//! buffer, copies runs of plain bytes at once (a 256-entry class table
//! finds their ends), keeps the formatted `YYYY-MM-DDTHH:MM:SS` of the
//! last second seen, and holds the `","stream":…,"time":"` middle of each
//! stream pre-encoded.

use lookout_sdk::{LogRecord, StreamKind};

/// Byte classes for the escaper.
const PLAIN: u8 = 0;
const ESCAPE: u8 = 1;
const HIGH: u8 = 2;

static CLASS: [u8; 256] = {
    let mut t = [PLAIN; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b < 0x20 || b == b'"' || b == b'\\' || b == b'<' || b == b'>' || b == b'&' {
            ESCAPE
        } else if b >= 0x80 {
            HIGH
        } else {
            PLAIN
        };
        i += 1;
    }
    t
};

/// The escape sequence of each ASCII byte of class ESCAPE: length, bytes.
static ASCII_ESC: [(u8, [u8; 6]); 128] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [(0u8, [0u8; 6]); 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = match b {
            b'"' => (2, [b'\\', b'"', 0, 0, 0, 0]),
            b'\\' => (2, [b'\\', b'\\', 0, 0, 0, 0]),
            b'\n' => (2, [b'\\', b'n', 0, 0, 0, 0]),
            b'\r' => (2, [b'\\', b'r', 0, 0, 0, 0]),
            _ => (
                6,
                [
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 15) as usize],
                ],
            ),
        };
        i += 1;
    }
    t
};

const REPLACEMENT: &[u8] = b"\\ufffd";

/// Width of the valid UTF-8 sequence starting at `s[i]` (a byte >= 0x80),
/// or 0 where Go's `utf8.DecodeRune` reports `RuneError` with width 1.
#[inline]
fn utf8_width(s: &[u8], i: usize) -> usize {
    // (width, accepted range of the second byte); later bytes are 80..=BF.
    let (w, lo, hi) = match s[i] {
        0xC2..=0xDF => (2, 0x80, 0xBF),
        0xE0 => (3, 0xA0, 0xBF),
        0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80, 0xBF),
        0xED => (3, 0x80, 0x9F),
        0xF0 => (4, 0x90, 0xBF),
        0xF1..=0xF3 => (4, 0x80, 0xBF),
        0xF4 => (4, 0x80, 0x8F),
        _ => return 0,
    };
    let Some(tail) = s.get(i + 1..i + w) else {
        return 0;
    };
    if tail[0] < lo || tail[0] > hi || tail[1..].iter().any(|&b| !(0x80..=0xBF).contains(&b)) {
        return 0;
    }
    w
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// True when some byte of `w` is zero (the classic bit trick; exact as a
/// whole-word answer).
#[inline(always)]
fn has_zero(w: u64) -> bool {
    w.wrapping_sub(ONES) & !w & HIGHS != 0
}

/// True when all eight bytes are of class PLAIN: ASCII, at least 0x20, and
/// none of `"` `\` `<` `>` `&`.
#[inline(always)]
fn all_plain(w: u64) -> bool {
    if w & HIGHS != 0 {
        return false;
    }
    // With every byte below 0x80, a byte below 0x20 borrows into bit 7.
    if w.wrapping_sub(ONES * 0x20) & !w & HIGHS != 0 {
        return false;
    }
    !(has_zero(w ^ (ONES * b'"' as u64))
        || has_zero(w ^ (ONES * b'\\' as u64))
        || has_zero(w ^ (ONES * b'<' as u64))
        || has_zero(w ^ (ONES * b'>' as u64))
        || has_zero(w ^ (ONES * b'&' as u64)))
}

/// Appends `s` escaped as Docker's json-file encoder does (without the
/// surrounding quotes).
pub fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    let mut i = 0;
    let n = s.len();
    while i < n {
        // Skip eight plain ASCII bytes at a time.
        while let Some(chunk) = s.get(i..i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            if !all_plain(u64::from_le_bytes(w)) {
                break;
            }
            i += 8;
        }
        if i >= n {
            break;
        }
        let b = s[i];
        match CLASS[b as usize] {
            PLAIN => {
                i += 1;
            }
            ESCAPE => {
                out.extend_from_slice(&s[start..i]);
                let (len, seq) = &ASCII_ESC[b as usize];
                out.extend_from_slice(&seq[..*len as usize]);
                i += 1;
                start = i;
            }
            _ => {
                let w = utf8_width(s, i);
                if w == 0 {
                    out.extend_from_slice(&s[start..i]);
                    out.extend_from_slice(REPLACEMENT);
                    i += 1;
                    start = i;
                } else if w == 3 && b == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] | 1) == 0xA9 {
                    // U+2028 (e2 80 a8) and U+2029 (e2 80 a9).
                    out.extend_from_slice(&s[start..i]);
                    out.extend_from_slice(if s[i + 2] == 0xA8 {
                        b"\\u2028"
                    } else {
                        b"\\u2029"
                    });
                    i += 3;
                    start = i;
                } else {
                    i += w;
                }
            }
        }
    }
    out.extend_from_slice(&s[start..]);
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix second, UTC.
fn format_second(secs: i64) -> [u8; 19] {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    let (h, mi, s) = (sod / 3600, sod / 60 % 60, sod % 60);
    // Every i64 nanosecond time falls in 1677..=2262: four digits.
    let y = y.clamp(0, 9999) as u32;
    let d2 = |v: u32| [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8];
    let mut o = *b"0000-00-00T00:00:00";
    o[0] = b'0' + (y / 1000) as u8;
    o[1] = b'0' + (y / 100 % 10) as u8;
    o[2] = b'0' + (y / 10 % 10) as u8;
    o[3] = b'0' + (y % 10) as u8;
    o[5..7].copy_from_slice(&d2(mo));
    o[8..10].copy_from_slice(&d2(d));
    o[11..13].copy_from_slice(&d2(h));
    o[14..16].copy_from_slice(&d2(mi));
    o[17..19].copy_from_slice(&d2(s));
    o
}

/// Appends `.fffffffff` with trailing zeros trimmed, nothing for 0.
#[inline]
fn push_fraction(out: &mut Vec<u8>, nanos: u32) {
    if nanos == 0 {
        return;
    }
    let mut d = *b".000000000";
    let mut v = nanos;
    for k in (1..10).rev() {
        d[k] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let mut end = 10;
    while d[end - 1] == b'0' {
        end -= 1;
    }
    out.extend_from_slice(&d[..end]);
}

/// Go's `time.RFC3339Nano` of a UTC Unix-nanosecond time
/// (`2019-01-01T11:11:11.111Z`, `2019-01-01T11:11:11Z`).
pub fn rfc3339_nano(unix_nano: i64) -> String {
    let mut out = Vec::with_capacity(30);
    out.extend_from_slice(&format_second(unix_nano.div_euclid(1_000_000_000)));
    push_fraction(&mut out, unix_nano.rem_euclid(1_000_000_000) as u32);
    out.push(b'Z');
    String::from_utf8(out).unwrap_or_default()
}

/// Encodes records of one container into json-file lines.
#[derive(Clone, Debug)]
pub struct Encoder {
    /// `","stream":"<name>"[,"attrs":{…}],"time":"`, by ABI stream number.
    mids: [Vec<u8>; 3],
    cached_sec: i64,
    cached_prefix: [u8; 19],
}

impl Encoder {
    /// An encoder whose records carry `attrs_json` (an encoded JSON object,
    /// e.g. `{"tag":"web"}`) when given.
    pub fn new(attrs_json: Option<&str>) -> Self {
        let mid = |k: StreamKind| {
            let mut m = Vec::new();
            m.extend_from_slice(b"\",\"stream\":\"");
            m.extend_from_slice(k.as_str().as_bytes());
            m.push(b'"');
            if let Some(a) = attrs_json {
                m.extend_from_slice(b",\"attrs\":");
                m.extend_from_slice(a.as_bytes());
            }
            m.extend_from_slice(b",\"time\":\"");
            m
        };
        Encoder {
            mids: [
                mid(StreamKind::Stdin),
                mid(StreamKind::Stdout),
                mid(StreamKind::Stderr),
            ],
            cached_sec: 0,
            cached_prefix: format_second(0),
        }
    }

    /// Appends one record's line (with its final `\n`) to `out`.
    #[inline]
    pub fn encode(&mut self, out: &mut Vec<u8>, rec: &LogRecord) {
        self.encode_parts(out, rec.line(), rec.stream(), rec.time_unix_nano());
    }

    /// Appends the line for `line` read from `stream` at `unix_nano`.
    pub fn encode_parts(
        &mut self,
        out: &mut Vec<u8>,
        line: &[u8],
        stream: StreamKind,
        unix_nano: i64,
    ) {
        let mid = &self.mids[match stream {
            StreamKind::Stdin => 0,
            StreamKind::Stdout => 1,
            StreamKind::Stderr => 2,
        }];
        out.reserve(line.len() + mid.len() + 48);
        // An empty record (Docker never makes one; its encoder would omit
        // the key) keeps `"log":""`, which every reader accepts.
        out.extend_from_slice(b"{\"log\":\"");
        escape_into(out, line);
        out.extend_from_slice(mid);
        let secs = unix_nano.div_euclid(1_000_000_000);
        let nanos = unix_nano.rem_euclid(1_000_000_000) as u32;
        if secs != self.cached_sec {
            self.cached_sec = secs;
            self.cached_prefix = format_second(secs);
        }
        out.extend_from_slice(&self.cached_prefix);
        push_fraction(out, nanos);
        out.extend_from_slice(b"Z\"}\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &[u8]) -> String {
        let mut o = Vec::new();
        escape_into(&mut o, s);
        String::from_utf8(o).unwrap()
    }

    #[test]
    fn escapes_like_docker() {
        assert_eq!(esc(b"plain text/with slash"), "plain text/with slash");
        assert_eq!(esc(b"a\"b\\c"), r#"a\"b\\c"#);
        assert_eq!(
            esc(b"\r\n\t\x1b[0m\x00\x7f"),
            r"\r\n\u0009\u001b[0m\u0000".to_string() + "\x7f"
        );
        assert_eq!(esc(b"<>&"), r"\u003c\u003e\u0026");
        assert_eq!(esc("\u{2028}x\u{2029}".as_bytes()), r"\u2028x\u2029");
        assert_eq!(esc("é中😀".as_bytes()), "é中😀");
        assert_eq!(esc(b"\xff\xfe"), r"\ufffd\ufffd");
        assert_eq!(esc(b"\xc3\x28"), r"\ufffd(");
        assert_eq!(esc(b"a\xe2\x82"), r"a\ufffd\ufffd");
        assert_eq!(esc(b"\xe2\x82\x41"), r"\ufffd\ufffdA");
        assert_eq!(esc(b"\x80x"), r"\ufffdx");
        // Surrogates, overlongs and beyond U+10FFFF are invalid in Go too.
        assert_eq!(esc(b"\xed\xa0\x80"), r"\ufffd\ufffd\ufffd");
        assert_eq!(esc(b"\xc0\xaf"), r"\ufffd\ufffd");
        assert_eq!(esc(b"\xf4\x90\x80\x80"), r"\ufffd\ufffd\ufffd\ufffd");
        // A literal U+FFFD is valid and raw.
        assert_eq!(esc("\u{fffd}".as_bytes()), "\u{fffd}");
        // Other E2 80 xx characters stay raw.
        assert_eq!(esc("\u{2026}\u{202a}".as_bytes()), "\u{2026}\u{202a}");
    }

    /// A slow reference built from the rules (std's UTF-8 validation, one
    /// character at a time).
    fn reference(s: &[u8]) -> String {
        let mut o = String::new();
        let mut i = 0;
        while i < s.len() {
            let b = s[i];
            if b < 0x80 {
                match b {
                    b'"' => o.push_str("\\\""),
                    b'\\' => o.push_str("\\\\"),
                    b'\n' => o.push_str("\\n"),
                    b'\r' => o.push_str("\\r"),
                    b'<' | b'>' | b'&' => o.push_str(&format!("\\u{:04x}", b)),
                    0..=0x1f => o.push_str(&format!("\\u{:04x}", b)),
                    _ => o.push(b as char),
                }
                i += 1;
                continue;
            }
            // Valid prefix per std, decoded one char at a time.
            let end = (i + 4).min(s.len());
            let mut decoded = None;
            for w in 2..=4 {
                if i + w <= end
                    && let Ok(t) = std::str::from_utf8(&s[i..i + w])
                {
                    decoded = Some((t.chars().next().unwrap(), w));
                    break;
                }
            }
            match decoded {
                Some(('\u{2028}', w)) => {
                    o.push_str("\\u2028");
                    i += w
                }
                Some(('\u{2029}', w)) => {
                    o.push_str("\\u2029");
                    i += w
                }
                Some((c, w)) => {
                    o.push(c);
                    i += w
                }
                None => {
                    o.push_str("\\ufffd");
                    i += 1
                }
            }
        }
        o
    }

    #[test]
    fn every_byte_pair_matches_a_reference() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for tail in [&b""[..], b"\x80\x80", b"\xbf"] {
                    let mut s = vec![a, b];
                    s.extend_from_slice(tail);
                    assert_eq!(esc(&s), reference(&s), "{s:x?}");
                }
            }
        }
    }

    #[test]
    fn every_byte_at_every_position_of_a_long_line() {
        for b in 0..=255u8 {
            for p in 0..24 {
                let mut s = b"abcdefghijklmnopqrstuvwx".to_vec();
                s[p] = b;
                assert_eq!(esc(&s), reference(&s), "{s:x?}");
                // A valid multi-byte character inside the word too.
                let mut t = s.clone();
                t.splice(p..p, "é".bytes());
                assert_eq!(esc(&t), reference(&t), "{t:x?}");
            }
        }
    }

    #[test]
    fn times() {
        assert_eq!(
            rfc3339_nano(1_546_341_071_000_000_000),
            "2019-01-01T11:11:11Z"
        );
        assert_eq!(
            rfc3339_nano(1_546_341_071_100_000_000),
            "2019-01-01T11:11:11.1Z"
        );
        assert_eq!(
            rfc3339_nano(1_546_341_071_123_456_789),
            "2019-01-01T11:11:11.123456789Z"
        );
        assert_eq!(
            rfc3339_nano(1_546_341_071_000_000_001),
            "2019-01-01T11:11:11.000000001Z"
        );
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_nano(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(
            rfc3339_nano(951_782_400_000_000_000),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(rfc3339_nano(i64::MAX), "2262-04-11T23:47:16.854775807Z");
        assert_eq!(rfc3339_nano(i64::MIN), "1677-09-21T00:12:43.145224192Z");
    }

    #[test]
    fn record_shapes() {
        let mut e = Encoder::new(None);
        let mut o = Vec::new();
        e.encode_parts(
            &mut o,
            b"hi\n",
            StreamKind::Stdout,
            1_546_341_071_111_111_111,
        );
        e.encode_parts(&mut o, b"", StreamKind::Stderr, 1_546_341_071_000_000_000);
        let mut e = Encoder::new(Some(r#"{"tag":"x"}"#));
        e.encode_parts(&mut o, b"x", StreamKind::Stderr, 1_546_341_072_000_000_000);
        assert_eq!(
            String::from_utf8(o).unwrap(),
            concat!(
                r#"{"log":"hi\n","stream":"stdout","time":"2019-01-01T11:11:11.111111111Z"}"#,
                "\n",
                r#"{"log":"","stream":"stderr","time":"2019-01-01T11:11:11Z"}"#,
                "\n",
                r#"{"log":"x","stream":"stderr","attrs":{"tag":"x"},"time":"2019-01-01T11:11:12Z"}"#,
                "\n"
            )
        );
    }
}
