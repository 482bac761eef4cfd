//! `test-sink`: a log driver for lookout's own tests. It records what it
//! receives and, on demand, stalls, fails or panics, so the host's handling
//! of each case can be tested through the real plugin boundary.
//!
//! # Options (log-opts)
//!
//! | key           | value | meaning |
//! |---------------|-------|---------|
//! | `out`         | path  | append every record's raw bytes (exactly as received) to this file, one `write` per call; on `stop`, append `records=<n> bytes=<n> calls=<n>\n` to `<out>.summary` |
//! | `behavior`    | `ok` (default), `stall`, `panic`, `fatal`, `retry`, `drop`, `slow` | see below |
//! | `release`     | path  | `stall`: every write waits until this file exists (checked every 5 ms), then writes normally; required with `stall` |
//! | `panic-after` | n (0) | `panic`: write the first n records of the stream, then panic with `test-sink: deliberate panic` |
//! | `fail-after`  | n (0) | `fatal`: write the first n records, then return a fatal error (with `written` = records of that call handled) |
//! | `retry-times` | n (0) | `retry`: the first n write calls return a retry error (nothing written), later ones write |
//! | `delay-us`    | n (1000) | `slow`: sleep n microseconds in every write call, then write |
//!
//! `drop` returns `Error::drop_from(0, …)` for every write call. Any other key
//! is `Error::unknown_option`; a bad value is an error naming the key and the
//! value. Options that the chosen behaviour does not use are accepted.
//!
//! Counters are per stream: `records` and `bytes` count what was written
//! (accepted), `calls` counts every write call, failed ones included. A
//! stream that panicked is never stopped by the SDK, so it writes no summary.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lookout_sdk::{ContainerInfo, Error, Host, LogDriver, LogRecord, LogStream, Options};

/// The driver's name.
pub const NAME: &str = "test-sink";

/// Every option key the driver accepts.
pub const KNOWN_OPTIONS: &[&str] = &[
    "out",
    "behavior",
    "release",
    "panic-after",
    "fail-after",
    "retry-times",
    "delay-us",
];

/// How often a stalled write looks for the release file.
pub const STALL_POLL: Duration = Duration::from_millis(5);

/// The message of the deliberate panic.
pub const PANIC_MESSAGE: &str = "test-sink: deliberate panic";

/// What the sink does on write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Write everything.
    Ok,
    /// Wait for the release file, then write.
    Stall,
    /// Panic once `panic-after` records were written.
    Panic,
    /// Fail fatally once `fail-after` records were written.
    Fatal,
    /// Ask for a retry on the first `retry-times` calls.
    Retry,
    /// Drop every batch.
    Drop,
    /// Sleep `delay-us` per call, then write.
    Slow,
}

impl Behavior {
    const ALL: [(&'static str, Behavior); 7] = [
        ("ok", Behavior::Ok),
        ("stall", Behavior::Stall),
        ("panic", Behavior::Panic),
        ("fatal", Behavior::Fatal),
        ("retry", Behavior::Retry),
        ("drop", Behavior::Drop),
        ("slow", Behavior::Slow),
    ];

    fn parse(v: &str) -> Option<Behavior> {
        Self::ALL.iter().find(|(n, _)| *n == v).map(|(_, b)| *b)
    }
}

/// The parsed options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Where records are appended (none: only counted).
    pub out: Option<PathBuf>,
    /// What writes do.
    pub behavior: Behavior,
    /// The file a stalled write waits for.
    pub release: Option<PathBuf>,
    /// Records written before the deliberate panic.
    pub panic_after: u64,
    /// Records written before the deliberate fatal error.
    pub fail_after: u64,
    /// Write calls answered with a retry error.
    pub retry_times: u64,
    /// Sleep per write call with `behavior=slow`.
    pub delay: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            out: None,
            behavior: Behavior::Ok,
            release: None,
            panic_after: 0,
            fail_after: 0,
            retry_times: 0,
            delay: Duration::from_micros(1000),
        }
    }
}

fn path_opt(opts: &Options<'_>, key: &str) -> Result<Option<PathBuf>, Error> {
    match opts.get(key) {
        None => Ok(None),
        Some(v) if v.is_empty() => Err(Error::invalid_option(NAME, key, "must not be empty")),
        Some(v) => Ok(Some(PathBuf::from(v.into_owned()))),
    }
}

fn num_opt(opts: &Options<'_>, key: &str, default: u64) -> Result<u64, Error> {
    match opts.get(key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            Error::invalid_option(NAME, key, format!("{v:?} is not a non-negative integer"))
        }),
    }
}

impl Config {
    /// Parses and checks options.
    pub fn parse(opts: &Options<'_>) -> Result<Config, Error> {
        opts.check_known(NAME, KNOWN_OPTIONS)?;
        let d = Config::default();
        let behavior = match opts.get("behavior") {
            None => d.behavior,
            Some(v) => Behavior::parse(&v).ok_or_else(|| {
                let names: Vec<&str> = Behavior::ALL.iter().map(|(n, _)| *n).collect();
                Error::invalid_option(
                    NAME,
                    "behavior",
                    format!("{v:?} is not one of {}", names.join(", ")),
                )
            })?,
        };
        let release = path_opt(opts, "release")?;
        if behavior == Behavior::Stall && release.is_none() {
            return Err(Error::invalid_option(
                NAME,
                "release",
                "behavior=stall needs release=<path>",
            ));
        }
        Ok(Config {
            out: path_opt(opts, "out")?,
            behavior,
            release,
            panic_after: num_opt(opts, "panic-after", d.panic_after)?,
            fail_after: num_opt(opts, "fail-after", d.fail_after)?,
            retry_times: num_opt(opts, "retry-times", d.retry_times)?,
            delay: Duration::from_micros(num_opt(opts, "delay-us", 1000)?),
        })
    }
}

/// The driver instance: the parsed options.
#[derive(Debug)]
pub struct TestSink {
    cfg: Config,
}

impl LogDriver for TestSink {
    const NAME: &'static str = NAME;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type Stream = SinkStream;

    fn validate(opts: &Options<'_>) -> Result<(), Error> {
        Config::parse(opts).map(|_| ())
    }

    fn init(_host: Host, opts: &Options<'_>) -> Result<Self, Error> {
        Ok(TestSink {
            cfg: Config::parse(opts)?,
        })
    }

    fn start(&self, _info: &ContainerInfo) -> Result<SinkStream, Error> {
        let out = match &self.cfg.out {
            None => None,
            Some(p) => Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| {
                        Error::fatal(format!("{NAME}: cannot open {}: {e}", p.display()))
                    })?,
            ),
        };
        Ok(SinkStream {
            cfg: self.cfg.clone(),
            out,
            records: 0,
            bytes: 0,
            calls: 0,
        })
    }
}

/// One container's stream.
#[derive(Debug)]
pub struct SinkStream {
    cfg: Config,
    out: Option<File>,
    records: u64,
    bytes: u64,
    calls: u64,
}

impl SinkStream {
    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Write calls received so far.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// The summary line `stop` writes, without its newline.
    pub fn summary(&self) -> String {
        format!(
            "records={} bytes={} calls={}",
            self.records, self.bytes, self.calls
        )
    }

    /// How many of `n` records may still be written before `limit` records
    /// in all.
    fn room(&self, limit: u64, n: usize) -> usize {
        let left = limit.saturating_sub(self.records);
        usize::try_from(left).map_or(n, |l| l.min(n))
    }

    /// Appends the records' bytes to `out` (one write) and counts them.
    fn put(&mut self, records: &[LogRecord]) -> Result<(), Error> {
        let buf: Vec<u8> = records.iter().flat_map(|r| r.line()).copied().collect();
        if let (Some(f), Some(p)) = (self.out.as_mut(), self.cfg.out.as_ref()) {
            f.write_all(&buf)
                .map_err(|e| Error::fatal(format!("{NAME}: cannot write {}: {e}", p.display())))?;
        }
        self.records += records.len() as u64;
        self.bytes += buf.len() as u64;
        Ok(())
    }
}

fn wait_for(path: &Path) {
    while !path.exists() {
        std::thread::sleep(STALL_POLL);
    }
}

impl LogStream for SinkStream {
    fn write(&mut self, records: &[LogRecord]) -> Result<(), Error> {
        self.calls += 1;
        match self.cfg.behavior {
            Behavior::Ok => self.put(records),
            Behavior::Stall => {
                if let Some(r) = &self.cfg.release {
                    wait_for(r);
                }
                self.put(records)
            }
            Behavior::Slow => {
                std::thread::sleep(self.cfg.delay);
                self.put(records)
            }
            Behavior::Panic => {
                let n = self.room(self.cfg.panic_after, records.len());
                self.put(&records[..n])?;
                if n < records.len() {
                    panic!("{PANIC_MESSAGE}");
                }
                Ok(())
            }
            Behavior::Fatal => {
                let n = self.room(self.cfg.fail_after, records.len());
                self.put(&records[..n])?;
                if n < records.len() {
                    return Err(Error {
                        written: n,
                        ..Error::fatal(format!(
                            "{NAME}: deliberate fatal error after {} records",
                            self.cfg.fail_after
                        ))
                    });
                }
                Ok(())
            }
            Behavior::Retry => {
                if self.calls <= self.cfg.retry_times {
                    return Err(Error::retry(
                        0,
                        format!(
                            "{NAME}: deliberate retry {} of {}",
                            self.calls, self.cfg.retry_times
                        ),
                    ));
                }
                self.put(records)
            }
            Behavior::Drop => Err(Error::drop_from(
                0,
                format!("{NAME}: deliberate drop of {} records", records.len()),
            )),
        }
    }

    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }

    fn stop(self) -> Result<(), Error> {
        let Some(out) = &self.cfg.out else {
            return Ok(());
        };
        let mut path = OsString::from(out.as_os_str());
        path.push(".summary");
        let path = PathBuf::from(path);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{}", self.summary()))
            .map_err(|e| Error::fatal(format!("{NAME}: cannot write {}: {e}", path.display())))
    }
}

lookout_sdk::export_log_driver!(TestSink);

#[cfg(test)]
mod tests;
