//! The log reader behind `logs`: reads a container's json-file log
//! (`<dir>/<id>-json.log`, rotated `.1` … `.N`, possibly `.k.gz`) the way
//! `docker logs` does, and follows it while it is written and rotated.
//!
//! # Semantics (those of moby's `loggerutils.LogFile`)
//!
//! * Records are the file's lines, oldest first. A line longer than the
//!   pipeline's limit was stored as several records (all but the last without
//!   `\n`); they are returned as they were stored, one entry each, so writing
//!   the entries back to back restores the output.
//! * `tail: Some(n)` takes the last `n` records of all files together; `since`
//!   and `until` then filter those (so `--tail 10 --since T` gives at most
//!   ten records, all at or after `T`). `tail: None` means all records;
//!   `Some(0)` none (with `follow`, only records written from now on).
//! * `since` is inclusive: records before it are skipped until the first one
//!   at or after it; from then on nothing is skipped (timestamps need not be
//!   monotonic). `until` is inclusive: the first record after it ends the
//!   read, following included.
//! * `follow` continues with records written after the read began, through
//!   rotation and compression, until the [`StopSignal`] says the writer
//!   finished (the rest is drained, then the read returns) or was cancelled,
//!   or the sink returns `false`.
//! * A line is returned only once its `\n` is on disk. A malformed line is
//!   skipped and counted ([`ReadSummary::malformed`], with the file and
//!   offset in [`ReadSummary::warnings`]).

mod decode;
mod files;
mod follow;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

pub use decode::{DecodeErrorKind, Stream, format_rfc3339_nano, parse_rfc3339_nano};

use decode::{Record, decode_line, fast_time};
use files::{AtReader, Identity, Lines, LogPaths, OpenLog};
use follow::{Cursor, Live, Waiter};

/// What to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Only the last `n` records (`None`: all of them; `Some(0)`: none).
    pub tail: Option<usize>,
    /// Skip records before this time (Unix nanoseconds, inclusive).
    pub since: Option<i64>,
    /// End at the first record after this time (Unix nanoseconds, inclusive).
    pub until: Option<i64>,
    /// Keep reading records as they are written.
    pub follow: bool,
    /// Decode each record's `attrs` into [`LogEntry::attrs`].
    pub details: bool,
}

/// One record, borrowed from the reader's buffers for the duration of the
/// sink call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogEntry<'a> {
    /// The stream the record came from.
    pub stream: Stream,
    /// When the record was read from the container, Unix nanoseconds (UTC).
    pub time_unix_nano: i64,
    /// The record's bytes, with its own `\n` when it had one.
    pub line: &'a [u8],
    /// The record's attributes, sorted by key (empty unless
    /// [`ReadOptions::details`]).
    pub attrs: &'a [(String, String)],
}

impl LogEntry<'_> {
    /// Copies the entry out of the reader's buffers.
    pub fn to_owned_entry(&self) -> OwnedLogEntry {
        OwnedLogEntry {
            stream: self.stream,
            time_unix_nano: self.time_unix_nano,
            line: self.line.to_vec(),
            attrs: self.attrs.to_vec(),
        }
    }
}

/// An owned copy of a [`LogEntry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedLogEntry {
    /// The stream the record came from.
    pub stream: Stream,
    /// When the record was read, Unix nanoseconds (UTC).
    pub time_unix_nano: i64,
    /// The record's bytes, with its own `\n` when it had one.
    pub line: Vec<u8>,
    /// The record's attributes (empty unless details were asked for).
    pub attrs: Vec<(String, String)>,
}

const RUNNING: u8 = 0;
const FINISHED: u8 = 1;
const CANCELLED: u8 = 2;

/// Tells a following read when to end. Clones share the state.
///
/// [`finish`](StopSignal::finish) says the writer is done (the container
/// exited and its drivers flushed): the reader drains what is left in the
/// files and returns. [`cancel`](StopSignal::cancel) says the consumer is
/// gone: the reader returns as soon as it notices, without draining. Either
/// wakes a reader waiting for new records at once.
#[derive(Clone, Debug)]
pub struct StopSignal {
    inner: Arc<StopInner>,
}

#[derive(Debug)]
struct StopInner {
    state: AtomicU8,
    /// A socket pair: a byte written to `.1` makes `.0` readable for good,
    /// which wakes every poll on it. `None` if it could not be created
    /// (readers then re-check the state every 50 ms).
    wake: Option<(UnixStream, UnixStream)>,
}

impl Default for StopSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl StopSignal {
    /// A signal in the running state.
    pub fn new() -> Self {
        let wake = UnixStream::pair()
            .and_then(|(a, b)| {
                a.set_nonblocking(true)?;
                b.set_nonblocking(true)?;
                Ok((a, b))
            })
            .ok();
        StopSignal {
            inner: Arc::new(StopInner {
                state: AtomicU8::new(RUNNING),
                wake,
            }),
        }
    }

    /// The writer has finished: drain the files, then return.
    pub fn finish(&self) {
        self.set(FINISHED);
    }

    /// Stop now, without draining.
    pub fn cancel(&self) {
        self.set(CANCELLED);
    }

    /// Whether [`finish`](Self::finish) or [`cancel`](Self::cancel) was called.
    pub fn is_stopped(&self) -> bool {
        self.state() != RUNNING
    }

    fn set(&self, to: u8) {
        let prev = self.inner.state.fetch_max(to, Ordering::SeqCst);
        if prev < to
            && let Some((_, tx)) = &self.inner.wake
        {
            // A full socket buffer is fine: it is readable already.
            let _ = io::Write::write(&mut &*tx, &[1]);
        }
    }

    fn state(&self) -> u8 {
        self.inner.state.load(Ordering::SeqCst)
    }

    fn is_cancelled(&self) -> bool {
        self.state() == CANCELLED
    }

    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        self.inner.wake.as_ref().map(|(rx, _)| rx.as_fd())
    }
}

/// A record line that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed log record in {} at byte offset {offset}: {kind}", path.display())]
pub struct MalformedRecord {
    /// The file (for a `.gz`, offsets count decompressed bytes).
    pub path: PathBuf,
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// What is wrong with it.
    pub kind: DecodeErrorKind,
}

/// Something the reader skipped; the read went on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadWarning {
    /// A line that is not a json-file record.
    #[error(transparent)]
    Malformed(#[from] MalformedRecord),
    /// A finished file whose last line has no `\n` (a write cut short).
    #[error("{}: incomplete last record at byte offset {offset} skipped", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Offset of the incomplete line.
        offset: u64,
    },
    /// A rotated file that could not be read (a corrupt `.gz`).
    #[error("{}: unreadable, skipped: {message}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The error.
        message: String,
    },
    /// While following, the file was truncated to before the last record
    /// read (json-file with max-file=1 truncates instead of rotating);
    /// records written and cut away in between are lost.
    #[error("{} was truncated while being followed; some records may be lost", path.display())]
    FileTruncated {
        /// The file.
        path: PathBuf,
    },
    /// While following, rotation removed files before they were read.
    #[error("log files after {} were rotated away before they were read; records may have been lost", after.display())]
    MissedRotation {
        /// The last file read before the gap.
        after: PathBuf,
    },
}

/// How a read went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSummary {
    /// Entries handed to the sink.
    pub entries: u64,
    /// Malformed lines skipped.
    pub malformed: u64,
    /// The first [`ReadSummary::MAX_WARNINGS`] warnings.
    pub warnings: Vec<ReadWarning>,
    /// All warnings, including those not kept.
    pub warnings_total: u64,
}

impl ReadSummary {
    /// How many warnings are kept in [`ReadSummary::warnings`].
    pub const MAX_WARNINGS: usize = 64;
}

/// A read that could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The log directory cannot be listed (it does not exist, or no access).
    #[error("log directory {}: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A log file cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Reads one container's json-file log.
#[derive(Clone, Debug)]
pub struct LogReader {
    paths: LogPaths,
}

impl LogReader {
    /// The reader of `<dir>/<container_id>-json.log` and its rotated files.
    pub fn new(dir: impl AsRef<Path>, container_id: &str) -> Self {
        LogReader {
            paths: LogPaths::new(dir.as_ref(), container_id),
        }
    }

    /// The path of the current file.
    pub fn current_path(&self) -> PathBuf {
        self.paths.current()
    }

    /// Reads the log as `opts` say, calling `sink` for each entry in order
    /// until it returns `false`. With `opts.follow`, returns when `stop` is
    /// signalled (see [`StopSignal`]), the sink returns `false` or `until` is
    /// passed; without it, `stop` is only checked for cancellation.
    pub fn read<F>(
        &self,
        opts: &ReadOptions,
        stop: &StopSignal,
        sink: F,
    ) -> Result<ReadSummary, ReadError>
    where
        F: FnMut(&LogEntry<'_>) -> bool,
    {
        let mut em = Emitter::new(opts, sink);
        // Watch before the first listing so no change can slip between them.
        let mut waiter = opts.follow.then(|| Waiter::new(&self.paths.dir));
        let dir_err = |source| ReadError::Dir {
            path: self.paths.dir.clone(),
            source,
        };
        let mut snap = files::snapshot(&self.paths).map_err(dir_err)?;
        let (flow, cursor) = match opts.tail {
            Some(0) => (Flow::Continue, self.position_at_end(&mut snap)?),
            Some(n) => self.read_tail(snap, n, &mut em, stop)?,
            None => self.read_all(snap, &mut em, stop)?,
        };
        match (flow, waiter.as_mut()) {
            (Flow::Continue, Some(w)) => follow::run(&self.paths, cursor, &mut em, stop, w)?,
            _ => drop(cursor),
        }
        Ok(em.summary)
    }

    /// The follow cursor for "nothing existing": the end of the complete
    /// lines of the current file.
    fn position_at_end(&self, snap: &mut Vec<OpenLog>) -> Result<Cursor, ReadError> {
        let mut block = Vec::new();
        match snap.pop() {
            None => Ok(Cursor::Start),
            Some(log) if log.index == 0 => {
                let end = size(&log).and_then(|s| files::complete_end(&log.file, s, &mut block));
                let end = end.map_err(|e| io_err(&log.path, e))?;
                Live::at(log, end).map(Cursor::Live)
            }
            Some(log) => {
                let path = log.path.clone();
                Identity::of(log)
                    .map(Cursor::Done)
                    .map_err(|e| io_err(&path, e))
            }
        }
    }

    fn read_all<F>(
        &self,
        mut snap: Vec<OpenLog>,
        em: &mut Emitter<F>,
        stop: &StopSignal,
    ) -> Result<(Flow, Cursor), ReadError>
    where
        F: FnMut(&LogEntry<'_>) -> bool,
    {
        let mut block = Vec::new();
        // Skip whole files by their time range.
        let mut first = 0;
        if let Some(since) = em.filter.since {
            while first < snap.len() && entirely_before(&snap, first, since, &mut block) {
                first += 1;
            }
        }
        let mut flow = Flow::Continue;
        let mut live = None;
        let n = snap.len();
        for (i, log) in snap.iter().enumerate().skip(first) {
            if let Some(until) = em.filter.until
                && file_first_time(log, &mut block).is_some_and(|t| t > until)
            {
                flow = Flow::Stop;
                break;
            }
            let is_current = i + 1 == n && log.index == 0 && !log.gz;
            if log.gz {
                flow = em.pump_gz(log, stop);
            } else {
                let mut lines = Lines::new(0);
                flow = em
                    .pump(&mut lines, &mut &log.file, &log.path, stop)
                    .map_err(|e| io_err(&log.path, e))?;
                if is_current {
                    live = Some(lines);
                } else if flow == Flow::Continue && !lines.pending().is_empty() {
                    em.warn(ReadWarning::Truncated {
                        path: log.path.clone(),
                        offset: lines.offset(),
                    });
                }
            }
            if flow == Flow::Stop {
                break;
            }
        }
        if flow == Flow::Stop {
            return Ok((flow, Cursor::Start));
        }
        let cursor = match snap.pop() {
            None => Cursor::Start,
            Some(log) if log.index == 0 && !log.gz => match live {
                Some(lines) => Cursor::Live(Live { log, lines }),
                // Skipped by `since`: follow from the end of what is there.
                None => {
                    let end =
                        size(&log).and_then(|s| files::complete_end(&log.file, s, &mut block));
                    let end = end.map_err(|e| io_err(&log.path, e))?;
                    Cursor::Live(Live::at(log, end)?)
                }
            },
            Some(log) => {
                let path = log.path.clone();
                Cursor::Done(Identity::of(log).map_err(|e| io_err(&path, e))?)
            }
        };
        Ok((flow, cursor))
    }

    fn read_tail<F>(
        &self,
        mut snap: Vec<OpenLog>,
        n: usize,
        em: &mut Emitter<F>,
        stop: &StopSignal,
    ) -> Result<(Flow, Cursor), ReadError>
    where
        F: FnMut(&LogEntry<'_>) -> bool,
    {
        enum Seg {
            Plain {
                at: usize,
                start: u64,
                end: u64,
            },
            Lines {
                at: usize,
                lines: Vec<(u64, Vec<u8>)>,
            },
        }
        let mut block = Vec::new();
        let current_end = match snap.last() {
            Some(log) if log.index == 0 && !log.gz => Some(
                size(log)
                    .and_then(|s| files::complete_end(&log.file, s, &mut block))
                    .map_err(|e| io_err(&log.path, e))?,
            ),
            _ => None,
        };
        let mut segs = Vec::new();
        let mut remaining = n;
        for at in (0..snap.len()).rev() {
            if remaining == 0 {
                break;
            }
            if let Some(since) = em.filter.since
                && entirely_before(&snap, at, since, &mut block)
            {
                break;
            }
            let log = &snap[at];
            if log.gz {
                match gz_last_lines(&log.file, remaining) {
                    Ok(lines) => {
                        remaining -= lines.len();
                        segs.push(Seg::Lines { at, lines });
                    }
                    Err(e) => em.warn(ReadWarning::Unreadable {
                        path: log.path.clone(),
                        message: e.to_string(),
                    }),
                }
            } else {
                let r = (|| {
                    let end = match current_end {
                        Some(end) if at + 1 == snap.len() => end,
                        _ => files::complete_end(&log.file, size(log)?, &mut block)?,
                    };
                    let (start, count) = files::tail_start(&log.file, end, remaining, &mut block)?;
                    Ok::<_, io::Error>((start, end, count))
                })();
                let (start, end, count) = r.map_err(|e| io_err(&log.path, e))?;
                remaining -= count;
                segs.push(Seg::Plain { at, start, end });
            }
        }
        let mut flow = Flow::Continue;
        for seg in segs.into_iter().rev() {
            flow = match seg {
                Seg::Plain { at, start, end } => {
                    let log = &snap[at];
                    let mut lines = Lines::new(start);
                    let mut r = AtReader::range(&log.file, start, end);
                    em.pump(&mut lines, &mut r, &log.path, stop)
                        .map_err(|e| io_err(&log.path, e))?
                }
                Seg::Lines { at, lines } => {
                    let mut flow = Flow::Continue;
                    for (off, line) in &lines {
                        flow = em.line(line, &snap[at].path, *off);
                        if flow == Flow::Stop {
                            break;
                        }
                    }
                    flow
                }
            };
            if flow == Flow::Stop {
                return Ok((flow, Cursor::Start));
            }
        }
        let cursor = match (snap.pop(), current_end) {
            (None, _) => Cursor::Start,
            (Some(log), Some(end)) => Cursor::Live(Live::at(log, end)?),
            (Some(log), None) => {
                let path = log.path.clone();
                Cursor::Done(Identity::of(log).map_err(|e| io_err(&path, e))?)
            }
        };
        Ok((flow, cursor))
    }
}

fn io_err(path: &Path, source: io::Error) -> ReadError {
    ReadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn size(log: &OpenLog) -> io::Result<u64> {
    Ok(log.file.metadata()?.len())
}

/// The time of a record line (fast path for json-file's key order).
fn line_time(line: &[u8]) -> Option<i64> {
    fast_time(line).or_else(|| {
        let mut rec = Record::default();
        decode_line(line, &mut rec, false).ok().map(|()| rec.time)
    })
}

/// Time of the first record of a file, if it can be told cheaply.
fn file_first_time(log: &OpenLog, block: &mut Vec<u8>) -> Option<i64> {
    let line = if log.gz {
        files::gz_first_line(&log.file).ok()??
    } else {
        files::first_line(&log.file, size(log).ok()?, block).ok()??
    };
    line_time(&line)
}

/// Whether every record of `snap[at]` is before `since`: its last record
/// for a plain file; for a `.gz` (whose end would need decompressing it
/// all) the first record of the next newer file bounds it.
fn entirely_before(snap: &[OpenLog], at: usize, since: i64, block: &mut Vec<u8>) -> bool {
    let log = &snap[at];
    let last = if log.gz {
        snap.get(at + 1)
            .and_then(|next| file_first_time(next, block))
    } else {
        (|| {
            let end = files::complete_end(&log.file, size(log).ok()?, block).ok()?;
            line_time(&files::last_line(&log.file, end, block).ok()??)
        })()
    };
    last.is_some_and(|t| t < since)
}

/// The last `n` lines of a compressed file, with their offsets in the
/// decompressed data.
fn gz_last_lines(file: &File, n: usize) -> io::Result<Vec<(u64, Vec<u8>)>> {
    let mut ring: std::collections::VecDeque<(u64, Vec<u8>)> =
        std::collections::VecDeque::with_capacity(n.min(1 << 16));
    let mut r = files::gz_reader(file);
    let mut lines = Lines::new(0);
    loop {
        while let Some((l, off)) = lines.next_line() {
            let mut v = if ring.len() == n {
                ring.pop_front().map(|(_, v)| v).unwrap_or_default()
            } else {
                Vec::new()
            };
            v.clear();
            v.extend_from_slice(l);
            ring.push_back((off, v));
        }
        if lines.fill(&mut r)? == 0 {
            break;
        }
    }
    Ok(ring.into())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// `since`/`until` as moby's forwarder applies them.
#[derive(Debug)]
struct Filter {
    since: Option<i64>,
    until: Option<i64>,
}

enum Verdict {
    Skip,
    Emit,
    Stop,
}

impl Filter {
    fn active(&self) -> bool {
        self.since.is_some() || self.until.is_some()
    }

    fn check(&mut self, t: i64) -> Verdict {
        if let Some(since) = self.since {
            if t < since {
                return Verdict::Skip;
            }
            self.since = None;
        }
        match self.until {
            Some(until) if t > until => Verdict::Stop,
            _ => Verdict::Emit,
        }
    }
}

/// Decodes lines, filters them and calls the sink.
struct Emitter<F> {
    sink: F,
    filter: Filter,
    details: bool,
    rec: Record,
    summary: ReadSummary,
}

impl<F> Emitter<F>
where
    F: FnMut(&LogEntry<'_>) -> bool,
{
    fn new(opts: &ReadOptions, sink: F) -> Self {
        Emitter {
            sink,
            filter: Filter {
                since: opts.since,
                until: opts.until,
            },
            details: opts.details,
            rec: Record::default(),
            summary: ReadSummary::default(),
        }
    }

    fn warn(&mut self, w: ReadWarning) {
        self.summary.warnings_total += 1;
        if self.summary.warnings.len() < ReadSummary::MAX_WARNINGS {
            self.summary.warnings.push(w);
        }
    }

    /// One complete line (without its `\n`).
    #[inline]
    fn line(&mut self, line: &[u8], path: &Path, offset: u64) -> Flow {
        let mut checked = false;
        if self.filter.active()
            && let Some(t) = fast_time(line)
        {
            match self.filter.check(t) {
                Verdict::Skip => return Flow::Continue,
                Verdict::Stop => return Flow::Stop,
                Verdict::Emit => checked = true,
            }
        }
        if let Err(kind) = decode_line(line, &mut self.rec, self.details) {
            self.summary.malformed += 1;
            self.warn(ReadWarning::Malformed(MalformedRecord {
                path: path.to_path_buf(),
                offset,
                kind,
            }));
            return Flow::Continue;
        }
        if !checked {
            match self.filter.check(self.rec.time) {
                Verdict::Skip => return Flow::Continue,
                Verdict::Stop => return Flow::Stop,
                Verdict::Emit => {}
            }
        }
        let Some(stream) = self.rec.stream else {
            return Flow::Continue; // decode_line never leaves it unset
        };
        let entry = LogEntry {
            stream,
            time_unix_nano: self.rec.time,
            line: &self.rec.log,
            attrs: &self.rec.attrs,
        };
        self.summary.entries += 1;
        if (self.sink)(&entry) {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }

    /// Hands out every complete line `r` yields until its end, keeping an
    /// incomplete last line in `lines`.
    fn pump<R: Read + ?Sized>(
        &mut self,
        lines: &mut Lines,
        r: &mut R,
        path: &Path,
        stop: &StopSignal,
    ) -> io::Result<Flow> {
        loop {
            while let Some((line, off)) = lines.next_line() {
                if self.line(line, path, off) == Flow::Stop {
                    return Ok(Flow::Stop);
                }
            }
            if stop.is_cancelled() {
                return Ok(Flow::Stop);
            }
            if lines.fill(r)? == 0 {
                return Ok(Flow::Continue);
            }
        }
    }

    /// Reads a whole compressed file; a decompression error ends the file
    /// with a warning, as moby does.
    fn pump_gz(&mut self, log: &OpenLog, stop: &StopSignal) -> Flow {
        let mut lines = Lines::new(0);
        let mut r = files::gz_reader(&log.file);
        match self.pump(&mut lines, &mut r, &log.path, stop) {
            Ok(Flow::Stop) => Flow::Stop,
            Ok(Flow::Continue) => {
                if !lines.pending().is_empty() {
                    self.warn(ReadWarning::Truncated {
                        path: log.path.clone(),
                        offset: lines.offset(),
                    });
                }
                Flow::Continue
            }
            Err(e) => {
                self.warn(ReadWarning::Unreadable {
                    path: log.path.clone(),
                    message: e.to_string(),
                });
                Flow::Continue
            }
        }
    }
}

impl Live {
    /// Follows `log` from `offset` (a line boundary).
    fn at(log: OpenLog, offset: u64) -> Result<Live, ReadError> {
        (&log.file)
            .seek(SeekFrom::Start(offset))
            .map_err(|e| io_err(&log.path, e))?;
        Ok(Live {
            log,
            lines: Lines::new(offset),
        })
    }
}
