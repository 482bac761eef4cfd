//! Helpers for the log reader tests: a hand-written json-file encoder,
//! fixture files, and a follower running in a thread.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use lookout_core::logs::reader::{
    LogReader, OwnedLogEntry, ReadOptions, ReadSummary, StopSignal, format_rfc3339_nano,
};

/// A container id.
pub const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// 2019-01-01T11:11:11Z in Unix nanoseconds.
pub const T0: i64 = 1_546_341_071_000_000_000;

/// The time of test record `i`.
pub fn t(i: usize) -> i64 {
    T0 + i as i64 * 1_000
}

/// Encodes a string the way Docker's json-file does.
pub fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

/// One json-file line (with its `\n`).
pub fn json_line(log: &str, stream: &str, attrs: &[(&str, &str)], time: i64) -> String {
    let mut s = String::from("{\"log\":\"");
    escape(log, &mut s);
    s.push_str("\",\"stream\":\"");
    s.push_str(stream);
    s.push('"');
    if !attrs.is_empty() {
        s.push_str(",\"attrs\":{");
        for (i, (k, v)) in attrs.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push('"');
            escape(k, &mut s);
            s.push_str("\":\"");
            escape(v, &mut s);
            s.push('"');
        }
        s.push('}');
    }
    s.push_str(",\"time\":\"");
    s.push_str(&format_rfc3339_nano(time));
    s.push_str("\"}\n");
    s
}

/// The text of test record `i`.
pub fn text(i: usize) -> String {
    format!("line {i:06}\n")
}

/// Test records `range` as json-file lines (stdout, odd ones stderr).
pub fn lines(range: std::ops::Range<usize>) -> String {
    range
        .map(|i| {
            let stream = if i % 2 == 0 { "stdout" } else { "stderr" };
            json_line(&text(i), stream, &[], t(i))
        })
        .collect()
}

/// Path of the current file, or of rotated file `k` (gz or not).
pub fn path(dir: &Path, k: u32, gz: bool) -> PathBuf {
    match (k, gz) {
        (0, _) => dir.join(format!("{ID}-json.log")),
        (k, false) => dir.join(format!("{ID}-json.log.{k}")),
        (k, true) => dir.join(format!("{ID}-json.log.{k}.gz")),
    }
}

/// Gzips `data` into `p`.
pub fn write_gz(p: &Path, data: &[u8]) {
    let f = std::fs::File::create(p).unwrap();
    let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap();
}

/// Appends to a file with one write(2).
pub fn append(p: &Path, data: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap();
    f.write_all(data).unwrap();
}

/// Parses the record number out of an entry made by [`text`].
pub fn num(e: &OwnedLogEntry) -> usize {
    let s = std::str::from_utf8(&e.line).unwrap();
    s.trim_end()
        .strip_prefix("line ")
        .unwrap_or_else(|| panic!("unexpected line {s:?}"))
        .parse()
        .unwrap()
}

/// Reads without following; returns the entries and the summary.
pub fn read(dir: &Path, opts: ReadOptions) -> (Vec<OwnedLogEntry>, ReadSummary) {
    let mut out = Vec::new();
    let s = LogReader::new(dir, ID)
        .read(&opts, &StopSignal::new(), |e| {
            out.push(e.to_owned_entry());
            true
        })
        .unwrap();
    (out, s)
}

/// Record numbers of [`read`].
pub fn nums(dir: &Path, opts: ReadOptions) -> Vec<usize> {
    read(dir, opts).0.iter().map(num).collect()
}

/// A following read running in a thread, sending entries to a channel.
pub struct Follower {
    pub stop: StopSignal,
    pub rx: mpsc::Receiver<OwnedLogEntry>,
    pub handle: JoinHandle<ReadSummary>,
}

impl Follower {
    /// Starts following `dir` with `opts` (follow forced on).
    pub fn start(dir: &Path, mut opts: ReadOptions) -> Follower {
        opts.follow = true;
        let stop = StopSignal::new();
        let (tx, rx) = mpsc::channel();
        let dir = dir.to_path_buf();
        let s2 = stop.clone();
        let handle = std::thread::spawn(move || {
            LogReader::new(&dir, ID)
                .read(&opts, &s2, |e| tx.send(e.to_owned_entry()).is_ok())
                .unwrap()
        });
        Follower { stop, rx, handle }
    }

    /// Entries received within `d` of each other, until quiet.
    pub fn drain_for(&self, d: Duration) -> Vec<OwnedLogEntry> {
        let mut v = Vec::new();
        while let Ok(e) = self.rx.recv_timeout(d) {
            v.push(e);
        }
        v
    }

    /// Waits for exactly `n` entries (panics after 10 s).
    pub fn take(&self, n: usize) -> Vec<OwnedLogEntry> {
        (0..n)
            .map(|i| {
                self.rx
                    .recv_timeout(Duration::from_secs(10))
                    .unwrap_or_else(|_| panic!("entry {i} of {n} did not arrive"))
            })
            .collect()
    }

    /// Signals `finish` and returns the rest plus the summary.
    pub fn finish(self) -> (Vec<OwnedLogEntry>, ReadSummary) {
        self.stop.finish();
        let summary = self.handle.join().unwrap();
        (self.rx.try_iter().collect(), summary)
    }
}
