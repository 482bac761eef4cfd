//! A decoder for exactly one json-file record line:
//! `{"log":"…","stream":"stdout","attrs":{…},"time":"2019-01-01T11:11:11.111111111Z"}`.
//!
//! It is hand-written for speed (memchr to jump to the next quote or
//! backslash) but accepts any key order, optional whitespace and unknown
//! keys, so a line produced by another encoder still decodes.

use memchr::memchr2;

/// The stream a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The container's standard input (when input is recorded).
    Stdin,
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// The `lookout_abi::LK_STREAM_*` value of this stream.
    pub fn to_abi(self) -> u32 {
        match self {
            Stream::Stdin => lookout_abi::LK_STREAM_STDIN,
            Stream::Stdout => lookout_abi::LK_STREAM_STDOUT,
            Stream::Stderr => lookout_abi::LK_STREAM_STDERR,
        }
    }

    /// The stream for a `lookout_abi::LK_STREAM_*` value, if it is one.
    pub fn from_abi(v: u32) -> Option<Stream> {
        match v {
            lookout_abi::LK_STREAM_STDIN => Some(Stream::Stdin),
            lookout_abi::LK_STREAM_STDOUT => Some(Stream::Stdout),
            lookout_abi::LK_STREAM_STDERR => Some(Stream::Stderr),
            _ => None,
        }
    }

    /// The name json-file stores: `stdin`, `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdin => "stdin",
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn from_name(name: &[u8]) -> Option<Stream> {
        match name {
            b"stdout" => Some(Stream::Stdout),
            b"stderr" => Some(Stream::Stderr),
            b"stdin" => Some(Stream::Stdin),
            _ => None,
        }
    }
}

/// Why a record line could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The line is empty.
    #[error("empty line")]
    Empty,
    /// The line ended inside the object.
    #[error("line ends inside the record")]
    Truncated,
    /// A byte that cannot appear here.
    #[error("expected {expected} at column {column}")]
    Unexpected {
        /// What the decoder wanted.
        expected: &'static str,
        /// 0-based byte column in the line.
        column: usize,
    },
    /// A backslash escape that JSON does not define, or a bad `\u` escape.
    #[error("invalid escape sequence at column {column}")]
    BadEscape {
        /// 0-based byte column of the backslash.
        column: usize,
    },
    /// Bytes after the closing brace.
    #[error("unexpected bytes after the record at column {column}")]
    Trailing {
        /// 0-based byte column of the first extra byte.
        column: usize,
    },
    /// No `log` key.
    #[error("missing \"log\"")]
    MissingLog,
    /// No `time` key.
    #[error("missing \"time\"")]
    MissingTime,
    /// A `time` that is not an RFC 3339 timestamp in the range of i64 nanoseconds.
    #[error("invalid time {0:?}")]
    BadTime(String),
    /// A missing `stream` or one that is not stdout, stderr or stdin.
    #[error("missing or unknown stream {0:?}")]
    BadStream(String),
}

/// One decoded record; buffers are reused from line to line.
#[derive(Debug, Default)]
pub(crate) struct Record {
    pub stream: Option<Stream>,
    pub time: i64,
    pub log: Vec<u8>,
    pub attrs: Vec<(String, String)>,
    scratch: Vec<u8>,
    scratch2: Vec<u8>,
}

type Res<T> = Result<T, DecodeErrorKind>;

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.s.get(self.i) {
            if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    fn peek(&self) -> Res<u8> {
        self.s
            .get(self.i)
            .copied()
            .ok_or(DecodeErrorKind::Truncated)
    }

    #[inline]
    fn expect(&mut self, c: u8, expected: &'static str) -> Res<()> {
        if self.peek()? == c {
            self.i += 1;
            Ok(())
        } else {
            Err(DecodeErrorKind::Unexpected {
                expected,
                column: self.i,
            })
        }
    }

    /// At an opening quote: returns the raw bytes up to the closing quote
    /// when they hold no escape, or decodes them into `buf`.
    #[inline]
    fn string_ref<'b>(&mut self, buf: &'b mut Vec<u8>) -> Res<&'b [u8]>
    where
        'a: 'b,
    {
        self.expect(b'"', "'\"'")?;
        let start = self.i;
        match memchr2(b'"', b'\\', &self.s[start..]) {
            None => Err(DecodeErrorKind::Truncated),
            Some(k) if self.s[start + k] == b'"' => {
                self.i = start + k + 1;
                Ok(&self.s[start..start + k])
            }
            Some(_) => {
                buf.clear();
                self.string_body(buf)?;
                Ok(&buf[..])
            }
        }
    }

    /// At an opening quote: decodes the string, appending to `out`.
    #[inline]
    fn string_into(&mut self, out: &mut Vec<u8>) -> Res<()> {
        self.expect(b'"', "'\"'")?;
        self.string_body(out)
    }

    /// Just after the opening quote: decodes up to and past the closing quote.
    fn string_body(&mut self, out: &mut Vec<u8>) -> Res<()> {
        let s = self.s;
        loop {
            let rest = &s[self.i..];
            let Some(k) = memchr2(b'"', b'\\', rest) else {
                return Err(DecodeErrorKind::Truncated);
            };
            out.extend_from_slice(&rest[..k]);
            self.i += k;
            if s[self.i] == b'"' {
                self.i += 1;
                return Ok(());
            }
            let column = self.i;
            let esc = *s.get(self.i + 1).ok_or(DecodeErrorKind::Truncated)?;
            let byte = match esc {
                b'"' => b'"',
                b'\\' => b'\\',
                b'/' => b'/',
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'b' => 0x08,
                b'f' => 0x0c,
                b'u' => {
                    let cp = hex4(s, self.i + 2).ok_or(DecodeErrorKind::BadEscape { column })?;
                    self.i += 6;
                    let ch = if (0xD800..0xDC00).contains(&cp) {
                        // A high surrogate: valid only when a low one follows.
                        let low =
                            if s.get(self.i) == Some(&b'\\') && s.get(self.i + 1) == Some(&b'u') {
                                hex4(s, self.i + 2).filter(|lo| (0xDC00..0xE000).contains(lo))
                            } else {
                                None
                            };
                        match low {
                            Some(lo) => {
                                self.i += 6;
                                char::from_u32(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00))
                                    .unwrap_or(char::REPLACEMENT_CHARACTER)
                            }
                            None => char::REPLACEMENT_CHARACTER,
                        }
                    } else {
                        // A lone low surrogate is not a character either.
                        char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER)
                    };
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                    continue;
                }
                _ => return Err(DecodeErrorKind::BadEscape { column }),
            };
            out.push(byte);
            self.i += 2;
        }
    }

    /// At an opening quote: moves past the string without decoding it.
    fn skip_string(&mut self) -> Res<()> {
        self.expect(b'"', "'\"'")?;
        loop {
            let Some(k) = memchr2(b'"', b'\\', &self.s[self.i..]) else {
                return Err(DecodeErrorKind::Truncated);
            };
            self.i += k;
            if self.s[self.i] == b'"' {
                self.i += 1;
                return Ok(());
            }
            if self.i + 1 >= self.s.len() {
                return Err(DecodeErrorKind::Truncated);
            }
            self.i += 2;
        }
    }

    /// Moves past any JSON value (used for unknown keys and unwanted attrs).
    fn skip_value(&mut self) -> Res<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.skip_string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Ok(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                let start = self.i;
                while let Some(&c) = self.s.get(self.i) {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                        break;
                    }
                    self.i += 1;
                }
                if self.i == start {
                    Err(DecodeErrorKind::Unexpected {
                        expected: "a value",
                        column: start,
                    })
                } else {
                    Ok(())
                }
            }
        }
    }
}

#[inline]
fn hex4(s: &[u8], at: usize) -> Option<u32> {
    let h = s.get(at..at + 4)?;
    let mut v = 0u32;
    for &c in h {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | u32::from(d);
    }
    Some(v)
}

/// Decodes one line (without its `\n`) into `rec`. Attributes are decoded
/// only when `want_attrs`; otherwise `rec.attrs` is left empty.
pub(crate) fn decode_line(line: &[u8], rec: &mut Record, want_attrs: bool) -> Res<()> {
    if line.is_empty() {
        return Err(DecodeErrorKind::Empty);
    }
    rec.log.clear();
    rec.attrs.clear();
    rec.stream = None;
    let mut have_log = false;
    let mut time: Option<i64> = None;
    let mut c = Cursor { s: line, i: 0 };
    c.ws();
    c.expect(b'{', "'{'")?;
    c.ws();
    if c.peek()? == b'}' {
        c.i += 1;
    } else {
        loop {
            c.ws();
            let key_is = {
                let key = c.string_ref(&mut rec.scratch)?;
                match key {
                    b"log" => 1u8,
                    b"stream" => 2,
                    b"time" => 3,
                    b"attrs" => 4,
                    _ => 0,
                }
            };
            c.ws();
            c.expect(b':', "':'")?;
            c.ws();
            match key_is {
                1 => {
                    rec.log.clear();
                    c.string_into(&mut rec.log)?;
                    have_log = true;
                }
                2 => {
                    let v = c.string_ref(&mut rec.scratch)?;
                    match Stream::from_name(v) {
                        Some(s) => rec.stream = Some(s),
                        None => {
                            return Err(DecodeErrorKind::BadStream(
                                String::from_utf8_lossy(v).into_owned(),
                            ));
                        }
                    }
                }
                3 => {
                    let v = c.string_ref(&mut rec.scratch)?;
                    match parse_rfc3339_nano(v) {
                        Some(t) => time = Some(t),
                        None => {
                            return Err(DecodeErrorKind::BadTime(
                                String::from_utf8_lossy(v).into_owned(),
                            ));
                        }
                    }
                }
                4 if want_attrs && c.peek()? == b'{' => decode_attrs(&mut c, rec)?,
                _ => c.skip_value()?,
            }
            c.ws();
            match c.peek()? {
                b',' => c.i += 1,
                b'}' => {
                    c.i += 1;
                    break;
                }
                _ => {
                    return Err(DecodeErrorKind::Unexpected {
                        expected: "',' or '}'",
                        column: c.i,
                    });
                }
            }
        }
    }
    c.ws();
    if c.i != line.len() {
        return Err(DecodeErrorKind::Trailing { column: c.i });
    }
    if !have_log {
        return Err(DecodeErrorKind::MissingLog);
    }
    if rec.stream.is_none() {
        return Err(DecodeErrorKind::BadStream(String::new()));
    }
    rec.time = time.ok_or(DecodeErrorKind::MissingTime)?;
    Ok(())
}

fn decode_attrs(c: &mut Cursor<'_>, rec: &mut Record) -> Res<()> {
    c.expect(b'{', "'{'")?;
    c.ws();
    if c.peek()? == b'}' {
        c.i += 1;
        return Ok(());
    }
    loop {
        c.ws();
        rec.scratch.clear();
        c.string_into(&mut rec.scratch)?;
        c.ws();
        c.expect(b':', "':'")?;
        c.ws();
        let value = if c.peek()? == b'"' {
            rec.scratch2.clear();
            c.string_into(&mut rec.scratch2)?;
            String::from_utf8_lossy(&rec.scratch2).into_owned()
        } else {
            // Not a string (never written by json-file): keep its JSON text.
            let start = c.i;
            c.skip_value()?;
            String::from_utf8_lossy(&c.s[start..c.i]).into_owned()
        };
        rec.attrs
            .push((String::from_utf8_lossy(&rec.scratch).into_owned(), value));
        c.ws();
        match c.peek()? {
            b',' => c.i += 1,
            b'}' => {
                c.i += 1;
                return Ok(());
            }
            _ => {
                return Err(DecodeErrorKind::Unexpected {
                    expected: "',' or '}'",
                    column: c.i,
                });
            }
        }
    }
}

/// The record time of a line in json-file's own key order (`…,"time":"…"}`
/// last), found from the end without decoding the rest. `None` when the line
/// does not end that way; the full decoder then decides.
#[inline]
pub(crate) fn fast_time(line: &[u8]) -> Option<i64> {
    const KEY: &[u8] = b",\"time\":\"";
    let body = line.strip_suffix(b"\"}")?;
    // Timestamps are at most 35 bytes ("-YYYY…" with 9 digits and an offset).
    let from = body.len().saturating_sub(40);
    let q = memchr::memrchr(b'"', &body[from..])? + from;
    let ts = &body[q + 1..];
    if q + 1 < KEY.len() || &body[q + 1 - KEY.len()..=q] != KEY {
        return None;
    }
    parse_rfc3339_nano(ts)
}

#[inline]
fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let d = b.get(at..at + n)?;
    let mut v = 0i64;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// Days from 1970-01-01 to the given proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses an RFC 3339 timestamp (`2019-01-01T11:11:11.111111111Z`, any
/// number of fractional digits, `Z` or a `±hh:mm` offset) into nanoseconds
/// since the Unix epoch. Digits beyond nanoseconds are truncated.
pub fn parse_rfc3339_nano(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't') {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let min = digits(b, 14, 2)?;
    let sec = digits(b, 17, 2)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 59
    {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        while let Some(&c) = b.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(c - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let offset = match *b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = digits(b, i + 1, 2)?;
            let om = digits(b, i + 4, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec - offset;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Formats nanoseconds since the Unix epoch the way json-file stores them
/// (Go's RFC3339Nano in UTC: trailing fractional zeros trimmed).
pub fn format_rfc3339_nano(t: i64) -> String {
    let secs = t.div_euclid(1_000_000_000);
    let nanos = t.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Inverse of days_from_civil (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        y,
        m,
        d,
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(line: &str, attrs: bool) -> Res<Record> {
        let mut r = Record::default();
        decode_line(line.as_bytes(), &mut r, attrs).map(|()| r)
    }

    #[test]
    fn plain_record() {
        let r = dec(
            r#"{"log":"hello\n","stream":"stdout","time":"2019-01-01T11:11:11.111111111Z"}"#,
            false,
        )
        .unwrap();
        assert_eq!(r.log, b"hello\n");
        assert_eq!(r.stream, Some(Stream::Stdout));
        assert_eq!(r.time, 1_546_341_071_111_111_111);
    }

    #[test]
    fn escapes_and_unicode() {
        let r = dec(
            r#"{"log":"q\" b\\ s\/ \t\r\n\u0000\u001b\u003c\u003e\u0026\u2028 é 中 \ud83d\ude00 \ufffd","stream":"stderr","time":"2019-01-01T00:00:00Z"}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(r.log).unwrap(),
            "q\" b\\ s/ \t\r\n\u{0}\u{1b}<>&\u{2028} é 中 😀 \u{fffd}"
        );
        assert_eq!(r.stream, Some(Stream::Stderr));
        assert_eq!(r.time, 1_546_300_800_000_000_000);
    }

    #[test]
    fn lone_surrogates_become_replacement() {
        let r = dec(
            r#"{"log":"a\ud83db\ude00c\ud83d\u0041","stream":"stdout","time":"2019-01-01T00:00:00Z"}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(r.log).unwrap(),
            "a\u{fffd}b\u{fffd}c\u{fffd}A"
        );
    }

    #[test]
    fn attrs_only_when_asked() {
        let line = r#"{"log":"x\n","stream":"stderr","attrs":{"tag":"web/img:1","team":"o\"bs"},"time":"2019-01-01T00:00:00.5Z"}"#;
        let r = dec(line, false).unwrap();
        assert!(r.attrs.is_empty());
        assert_eq!(r.time, 1_546_300_800_500_000_000);
        let r = dec(line, true).unwrap();
        assert_eq!(
            r.attrs,
            vec![
                ("tag".to_string(), "web/img:1".to_string()),
                ("team".to_string(), "o\"bs".to_string())
            ]
        );
    }

    #[test]
    fn any_key_order_whitespace_and_unknown_keys() {
        let r = dec(
            r#" { "time" : "2019-01-01T00:00:00+01:00" , "x":[1,{"a":"}"}], "stream":"stdin", "n": null, "log":"a" } "#,
            true,
        )
        .unwrap();
        assert_eq!(r.log, b"a");
        assert_eq!(r.stream, Some(Stream::Stdin));
        assert_eq!(r.time, 1_546_300_800_000_000_000 - 3_600_000_000_000);
    }

    #[test]
    fn malformed_lines() {
        use DecodeErrorKind as K;
        assert_eq!(dec("", false).unwrap_err(), K::Empty);
        assert_eq!(dec(r#"{"log":"abc"#, false).unwrap_err(), K::Truncated);
        assert!(matches!(
            dec("[1]", false).unwrap_err(),
            K::Unexpected { column: 0, .. }
        ));
        assert!(matches!(
            dec(
                r#"{"log":"a\qb","stream":"stdout","time":"2019-01-01T00:00:00Z"}"#,
                false
            )
            .unwrap_err(),
            K::BadEscape { column: 9 }
        ));
        assert!(matches!(
            dec(
                r#"{"log":"\u12g4","stream":"stdout","time":"2019-01-01T00:00:00Z"}"#,
                false
            )
            .unwrap_err(),
            K::BadEscape { .. }
        ));
        assert_eq!(
            dec(
                r#"{"stream":"stdout","time":"2019-01-01T00:00:00Z"}"#,
                false
            )
            .unwrap_err(),
            K::MissingLog
        );
        assert_eq!(
            dec(r#"{"log":"a","stream":"stdout"}"#, false).unwrap_err(),
            K::MissingTime
        );
        assert!(matches!(
            dec(
                r#"{"log":"a","stream":"x","time":"2019-01-01T00:00:00Z"}"#,
                false
            )
            .unwrap_err(),
            K::BadStream(_)
        ));
        assert!(matches!(
            dec(
                r#"{"log":"a","stream":"stdout","time":"2019-13-01T00:00:00Z"}"#,
                false
            )
            .unwrap_err(),
            K::BadTime(_)
        ));
        assert!(matches!(
            dec(
                r#"{"log":"a","stream":"stdout","time":"2019-01-01T00:00:00Z"}x"#,
                false
            )
            .unwrap_err(),
            K::Trailing { .. }
        ));
    }

    #[test]
    fn times() {
        assert_eq!(parse_rfc3339_nano(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_nano(b"1970-01-01T00:00:00.000000001Z"),
            Some(1)
        );
        assert_eq!(
            parse_rfc3339_nano(b"1970-01-01T00:00:00.1234567891Z"),
            Some(123_456_789)
        );
        assert_eq!(
            parse_rfc3339_nano(b"1969-12-31T23:59:59.9Z"),
            Some(-100_000_000)
        );
        assert_eq!(
            parse_rfc3339_nano(b"2000-02-29T00:00:00Z"),
            Some(951_782_400_000_000_000)
        );
        assert_eq!(parse_rfc3339_nano(b"2001-02-29T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_nano(b"2019-01-01T00:00:00"), None);
        assert_eq!(parse_rfc3339_nano(b"2019-01-01T00:00:00.Z"), None);
        assert_eq!(parse_rfc3339_nano(b"2300-01-01T00:00:00Z"), None);
        for t in [
            0i64,
            1,
            1_546_341_071_111_111_111,
            1_546_341_071_100_000_000,
            -1,
        ] {
            let s = format_rfc3339_nano(t);
            assert_eq!(parse_rfc3339_nano(s.as_bytes()), Some(t), "{s}");
        }
        assert_eq!(
            format_rfc3339_nano(1_546_341_071_100_000_000),
            "2019-01-01T11:11:11.1Z"
        );
        assert_eq!(
            format_rfc3339_nano(1_546_341_071_000_000_000),
            "2019-01-01T11:11:11Z"
        );
    }

    #[test]
    fn fast_time_only_for_the_docker_key_order() {
        let l = br#"{"log":"x","stream":"stdout","time":"2019-01-01T11:11:11.1Z"}"#;
        assert_eq!(fast_time(l), Some(1_546_341_071_100_000_000));
        let l = br#"{"time":"2019-01-01T11:11:11.1Z","log":"x","stream":"stdout"}"#;
        assert_eq!(fast_time(l), None);
        let l = br#"{"log":"x\",\"time\":\"2019-01-01T11:11:11.1Z"}"#;
        assert_eq!(fast_time(l), None);
    }
}
