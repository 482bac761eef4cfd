//! The log pipeline: readers on the container's output fds cut records,
//! every record goes to every driver through a bounded per-driver queue, and
//! one thread per driver calls its plugin in batches.
//!
//! ```text
//! fds ──epoll──▶ Splitter ──Arc<Batch>──▶ queue(driver 1) ──▶ thread ──▶ plugin
//!                                    └──▶ queue(driver 2) ──▶ thread ──▶ plugin
//! ```
//!
//! In blocking mode a full queue stops the reader, so the pipe fills and the
//! container's writes block: nothing is lost. In non-blocking mode what does
//! not fit is dropped and counted. A driver that fails for good (FATAL, a
//! panic) is disabled: its queue turns into a counter of dropped records and
//! the other drivers go on. [`Pipeline::close`] returns only when every
//! driver has written, flushed and stopped.

use super::batch::{Batch, BufPool, Splitter};
use super::options::{BLOCKING_QUEUE_BYTES, Mode};
use crate::plugin::{PluginStream, WriteOutcome};
use hdrhistogram::Histogram;
use lookout_abi::LkLogRecord;
use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Size of one read from a container's pipe.
pub const READ_SIZE: usize = 256 * 1024;
/// Most records handed to a plugin in one call.
const MAX_CALL_RECORDS: usize = 8192;
/// Back-off between retries of a driver that answered RETRY.
const RETRY_FIRST: Duration = Duration::from_millis(10);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// Where a driver's records go: a plugin stream, or an in-process sink (the
/// host's own tests and benches).
pub trait Sink: Send {
    /// Writes records; see [`WriteOutcome`].
    fn write(&mut self, recs: &[LkLogRecord]) -> WriteOutcome;
    /// Flushes; an error is reported, not retried.
    fn flush(&mut self) -> Result<(), String>;
    /// Drains and closes.
    fn stop(self: Box<Self>) -> Result<(), String>;
}

impl Sink for PluginStream {
    fn write(&mut self, recs: &[LkLogRecord]) -> WriteOutcome {
        self.write_logs(recs)
    }
    fn flush(&mut self) -> Result<(), String> {
        PluginStream::flush(self).map_err(|e| e.to_string())
    }
    fn stop(self: Box<Self>) -> Result<(), String> {
        PluginStream::stop(*self).map_err(|e| e.to_string())
    }
}

/// One driver of a container.
pub struct DriverSpec {
    /// Its name, for reports.
    pub name: String,
    /// Queue behaviour.
    pub mode: Mode,
    /// Where records go.
    pub sink: Box<dyn Sink>,
}

/// Counters of one driver. Every record read is, at the end, either
/// delivered or dropped.
#[derive(Debug)]
pub struct DriverStats {
    name: String,
    records_in: AtomicU64,
    bytes_in: AtomicU64,
    delivered: AtomicU64,
    delivered_bytes: AtomicU64,
    dropped: AtomicU64,
    dropped_bytes: AtomicU64,
    calls: AtomicU64,
    retries: AtomicU64,
    queued_bytes: AtomicU64,
    /// Set when the pipeline is dropped without `close`: retries give up.
    abandoned: std::sync::atomic::AtomicBool,
    failure: Mutex<Option<String>>,
    latency: Mutex<Histogram<u32>>,
    call_time: Mutex<Histogram<u32>>,
}

fn histogram() -> Histogram<u32> {
    // 1 µs … 1 h in nanoseconds, with 2 significant digits (1 %) and u32
    // counts (saturating): ~17 KiB of counters instead of ~270 KiB at 3
    // digits and u64, which matters with two histograms per driver in
    // every idle shim.
    Histogram::new_with_bounds(1_000, 3_600_000_000_000, 2).expect("static bounds are valid")
}

/// A point-in-time copy of a driver's counters.
#[derive(Clone, Debug, PartialEq)]
pub struct DriverReport {
    /// Driver name.
    pub name: String,
    /// Records offered to the driver.
    pub records_in: u64,
    /// Bytes offered.
    pub bytes_in: u64,
    /// Records the driver accepted.
    pub delivered: u64,
    /// Bytes the driver accepted.
    pub delivered_bytes: u64,
    /// Records dropped (full queue, driver drop, disabled driver).
    pub dropped: u64,
    /// Bytes dropped.
    pub dropped_bytes: u64,
    /// Plugin write calls.
    pub calls: u64,
    /// Calls answered with RETRY.
    pub retries: u64,
    /// Bytes waiting in the queue now.
    pub queued_bytes: u64,
    /// Why the driver was disabled, if it was.
    pub failure: Option<String>,
    /// Record latency (read → driver returned), ns: p50, p99, p99.9, max.
    pub latency_ns: [u64; 4],
    /// Plugin call time, ns: p50, p99, p99.9, max.
    pub call_ns: [u64; 4],
}

fn quantiles(h: &Histogram<u32>) -> [u64; 4] {
    if h.is_empty() {
        return [0; 4];
    }
    [
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
    ]
}

impl DriverStats {
    fn new(name: String) -> Self {
        DriverStats {
            name,
            records_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            delivered_bytes: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            dropped_bytes: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            queued_bytes: AtomicU64::new(0),
            abandoned: std::sync::atomic::AtomicBool::new(false),
            failure: Mutex::new(None),
            latency: Mutex::new(histogram()),
            call_time: Mutex::new(histogram()),
        }
    }

    fn drop_recs(&self, recs: &[LkLogRecord]) {
        self.dropped.fetch_add(recs.len() as u64, Relaxed);
        self.dropped_bytes
            .fetch_add(recs.iter().map(|r| r.line.len as u64).sum(), Relaxed);
    }

    fn report(&self) -> DriverReport {
        let lat = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let call = self.call_time.lock().unwrap_or_else(|e| e.into_inner());
        DriverReport {
            name: self.name.clone(),
            records_in: self.records_in.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            delivered_bytes: self.delivered_bytes.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            dropped_bytes: self.dropped_bytes.load(Relaxed),
            calls: self.calls.load(Relaxed),
            retries: self.retries.load(Relaxed),
            queued_bytes: self.queued_bytes.load(Relaxed),
            failure: self
                .failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            latency_ns: quantiles(&lat),
            call_ns: quantiles(&call),
        }
    }
}

/// A slice of a shared batch waiting in a driver's queue.
struct Entry {
    batch: Arc<Batch>,
    from: usize,
    to: usize,
    bytes: usize,
}

struct QueueState {
    entries: VecDeque<Entry>,
    bytes: usize,
    closed: bool,
    disabled: bool,
    /// The driver thread sleeps on `not_empty` (std's notify always makes a
    /// syscall, so it is only called when someone waits).
    consumer_waiting: bool,
    /// Readers sleeping on `not_full`.
    producers_waiting: usize,
}

/// A driver's bounded queue.
struct Queue {
    cap: usize,
    blocking: bool,
    state: Mutex<QueueState>,
    not_empty: Condvar,
    not_full: Condvar,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers a batch; blocks when full in blocking mode, drops what does
    /// not fit otherwise.
    fn push(&self, batch: &Arc<Batch>, stats: &DriverStats) {
        let recs = batch.records();
        stats.records_in.fetch_add(recs.len() as u64, Relaxed);
        stats.bytes_in.fetch_add(batch.bytes() as u64, Relaxed);
        let mut st = self.lock();
        if self.blocking {
            while !st.disabled && !st.entries.is_empty() && st.bytes + batch.bytes() > self.cap {
                st.producers_waiting += 1;
                st = self.not_full.wait(st).unwrap_or_else(|e| e.into_inner());
                st.producers_waiting -= 1;
            }
            if st.disabled {
                drop(st);
                stats.drop_recs(recs);
                return;
            }
            st.bytes += batch.bytes();
            st.entries.push_back(Entry {
                batch: batch.clone(),
                from: 0,
                to: recs.len(),
                bytes: batch.bytes(),
            });
            stats.queued_bytes.store(st.bytes as u64, Relaxed);
            if st.consumer_waiting {
                self.not_empty.notify_one();
            }
        } else {
            if st.disabled {
                drop(st);
                stats.drop_recs(recs);
                return;
            }
            // Take the prefix that fits; the newest records are dropped.
            let room = self.cap.saturating_sub(st.bytes);
            let (to, bytes) = if batch.bytes() <= room {
                (recs.len(), batch.bytes())
            } else {
                let mut used = 0usize;
                let mut n = 0usize;
                for r in recs {
                    if used + r.line.len > room {
                        break;
                    }
                    used += r.line.len;
                    n += 1;
                }
                (n, used)
            };
            if to > 0 {
                st.bytes += bytes;
                st.entries.push_back(Entry {
                    batch: batch.clone(),
                    from: 0,
                    to,
                    bytes,
                });
            }
            stats.queued_bytes.store(st.bytes as u64, Relaxed);
            let wake = st.consumer_waiting && to > 0;
            drop(st);
            if wake {
                self.not_empty.notify_one();
            }
            if to < recs.len() {
                stats.drop_recs(&recs[to..]);
            }
        }
    }

    /// Takes up to `max` records' worth of entries; waits while empty.
    /// Returns false when closed and drained.
    fn pop(&self, out: &mut Vec<Entry>, max: usize) -> bool {
        let mut st = self.lock();
        while st.entries.is_empty() && !st.closed {
            st.consumer_waiting = true;
            st = self.not_empty.wait(st).unwrap_or_else(|e| e.into_inner());
            st.consumer_waiting = false;
        }
        if st.entries.is_empty() {
            return false;
        }
        let mut n = 0;
        while let Some(e) = st.entries.front() {
            let len = e.to - e.from;
            if n > 0 && n + len > max {
                break;
            }
            n += len;
            let e = st.entries.pop_front().expect("front exists");
            out.push(e);
        }
        true
    }

    /// Returns the space of entries the driver is done with.
    fn release(&self, bytes: usize, stats: &DriverStats) {
        let mut st = self.lock();
        st.bytes -= bytes;
        stats.queued_bytes.store(st.bytes as u64, Relaxed);
        let wake = st.producers_waiting > 0;
        drop(st);
        if wake {
            self.not_full.notify_all();
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_all();
    }

    /// Disables the queue: pushes are dropped and the current content is
    /// returned to be counted.
    fn disable(&self) -> Vec<Entry> {
        let mut st = self.lock();
        st.disabled = true;
        let v: Vec<Entry> = st.entries.drain(..).collect();
        st.bytes -= v.iter().map(|e| e.bytes).sum::<usize>();
        drop(st);
        self.not_full.notify_all();
        v
    }
}

struct Driver {
    queue: Arc<Queue>,
    stats: Arc<DriverStats>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

/// The final account of a closed pipeline.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineReport {
    /// Records cut from the sources.
    pub records: u64,
    /// Bytes read from the sources.
    pub bytes: u64,
    /// Per driver.
    pub drivers: Vec<DriverReport>,
    /// Errors from flush/stop, by driver.
    pub close_errors: Vec<(String, String)>,
}

/// A running pipeline: the drivers' queues and threads. Feed it from fds
/// with [`Pipeline::pump`] or from memory with [`Pipeline::submit`].
pub struct Pipeline {
    drivers: Vec<Driver>,
    pool: Arc<BufPool>,
    records: AtomicU64,
    bytes: AtomicU64,
    max_line: usize,
}

impl Pipeline {
    /// Starts one thread per driver.
    pub fn start(specs: Vec<DriverSpec>, max_line: usize) -> std::io::Result<Pipeline> {
        let mut drivers = Vec::with_capacity(specs.len());
        for spec in specs {
            let (blocking, cap) = match spec.mode {
                Mode::Blocking => (true, BLOCKING_QUEUE_BYTES),
                Mode::NonBlocking { max_buffer } => (false, max_buffer),
            };
            let queue = Arc::new(Queue {
                cap,
                blocking,
                state: Mutex::new(QueueState {
                    entries: VecDeque::new(),
                    bytes: 0,
                    closed: false,
                    disabled: false,
                    consumer_waiting: false,
                    producers_waiting: 0,
                }),
                not_empty: Condvar::new(),
                not_full: Condvar::new(),
            });
            let stats = Arc::new(DriverStats::new(spec.name.clone()));
            let (q, s, sink) = (queue.clone(), stats.clone(), spec.sink);
            let thread = std::thread::Builder::new()
                .name(format!("lk-drv-{}", spec.name))
                .spawn(move || drive(q, s, sink))?;
            drivers.push(Driver {
                queue,
                stats,
                thread: Some(thread),
            });
        }
        Ok(Pipeline {
            drivers,
            pool: BufPool::new(READ_SIZE + max_line, 64),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            max_line,
        })
    }

    /// A splitter for one stream, with this pipeline's line limit.
    pub fn splitter(&self, stream: u32) -> Splitter {
        Splitter::new(stream, self.max_line)
    }

    /// Offers a batch to every driver (blocking per their mode).
    pub fn dispatch(&self, batch: Batch) {
        if batch.is_empty() {
            return;
        }
        self.records.fetch_add(batch.len() as u64, Relaxed);
        let b = Arc::new(batch);
        for d in &self.drivers {
            d.queue.push(&b, &d.stats);
        }
    }

    /// Feeds bytes from memory as if read from `splitter`'s stream now
    /// (benches and tests). With `eof`, an unfinished line is emitted.
    pub fn submit(&self, splitter: &mut Splitter, data: &[u8], eof: bool) {
        let mut off = 0;
        loop {
            let mut buf = self.pool.take();
            splitter.begin(&mut buf);
            let take = (data.len() - off).min(READ_SIZE);
            buf.extend_from_slice(&data[off..off + take]);
            off += take;
            self.bytes.fetch_add(take as u64, Relaxed);
            let last = off == data.len();
            let b = splitter.cut(
                buf,
                now_unix_nano(),
                Instant::now(),
                eof && last,
                Some(self.pool.clone()),
            );
            self.dispatch(b);
            if last {
                break;
            }
        }
    }

    /// Reads every source until end of file, cutting and dispatching as it
    /// goes. Sources are set non-blocking and watched with epoll.
    ///
    /// Small reads are coalesced: bytes stay in the source's pending buffer
    /// until it holds [`COALESCE_BYTES`] or its first bytes are [`LINGER`]
    /// old, so a writer doing many small writes costs one batch (one driver
    /// wake-up, one plugin call) per ~100 µs instead of one per write.
    pub fn pump(&self, sources: Vec<(OwnedFd, u32)>) -> std::io::Result<()> {
        use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
        let ep = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let mut srcs: Vec<Option<Source>> = Vec::new();
        for (i, (fd, stream)) in sources.into_iter().enumerate() {
            set_nonblocking(&fd)?;
            grow_pipe(&fd);
            ep.add(
                fd.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, i as u64),
            )?;
            srcs.push(Some(Source {
                fd,
                sp: self.splitter(stream),
                pending: None,
                armed: true,
            }));
        }
        let mut open = srcs.len();
        let mut events = [EpollEvent::empty(); 4];
        let watch = |armed: bool, i: usize| {
            // EPOLLHUP is reported whatever the mask: a writer that closes
            // still wakes a disarmed source.
            let flags = if armed {
                EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP
            } else {
                EpollFlags::EPOLLRDHUP
            };
            EpollEvent::new(flags, i as u64)
        };
        while open > 0 {
            // Wait at most until the oldest pending batch is due.
            let due = srcs
                .iter()
                .flatten()
                .filter_map(|s| s.pending.as_ref().map(|p| p.first + LINGER))
                .min();
            let n = epoll_wait_until(&ep, &mut events, due)?;
            for ev in &events[..n] {
                let i = ev.data() as usize;
                let Some(src) = srcs[i].as_mut() else {
                    continue;
                };
                // Read a few times per wake-up so one busy stream cannot
                // starve the other.
                let mut drained = false;
                for _ in 0..4 {
                    match self.read_once(src)? {
                        ReadResult::Data => continue,
                        ReadResult::Drained | ReadResult::WouldBlock => {
                            drained = true;
                            break;
                        }
                        ReadResult::Eof => {
                            let _ = ep.delete(src.fd.as_fd());
                            srcs[i] = None;
                            open -= 1;
                            break;
                        }
                    }
                }
                if let Some(src) = srcs[i].as_mut()
                    && drained
                    && src.armed
                    && src.pending.is_some()
                {
                    ep.modify(src.fd.as_fd(), &mut watch(false, i))?;
                    src.armed = false;
                }
            }
            let now = Instant::now();
            for (i, slot) in srcs.iter_mut().enumerate() {
                let Some(src) = slot.as_mut() else {
                    continue;
                };
                if src.pending.as_ref().is_none_or(|p| now < p.first + LINGER) {
                    continue;
                }
                // Due: take what arrived meanwhile (bounded), then cut.
                let mut eof = false;
                for _ in 0..16 {
                    match self.read_once(src)? {
                        ReadResult::Data => {
                            if src.pending.is_none() {
                                break;
                            }
                        }
                        ReadResult::Drained | ReadResult::WouldBlock => break,
                        ReadResult::Eof => {
                            eof = true;
                            break;
                        }
                    }
                }
                if eof {
                    let _ = ep.delete(src.fd.as_fd());
                    *slot = None;
                    open -= 1;
                    continue;
                }
                self.flush_pending(src, false);
                if !src.armed {
                    ep.modify(src.fd.as_fd(), &mut watch(true, i))?;
                    src.armed = true;
                }
            }
        }
        Ok(())
    }

    /// Cuts and dispatches what a source has pending.
    fn flush_pending(&self, src: &mut Source, eof: bool) {
        if let Some(p) = src.pending.take() {
            let b = src
                .sp
                .cut(p.buf, p.time, p.first, eof, Some(self.pool.clone()));
            self.dispatch(b);
        }
    }

    fn read_once(&self, src: &mut Source) -> std::io::Result<ReadResult> {
        let p = match src.pending.as_mut() {
            Some(p) => p,
            None => {
                let mut buf = self.pool.take();
                src.sp.begin(&mut buf);
                let have = buf.len();
                if buf.capacity() < have + READ_SIZE {
                    buf.reserve(have + READ_SIZE - buf.len());
                }
                src.pending.insert(Pending {
                    start: have,
                    buf,
                    first: Instant::now(),
                    time: now_unix_nano(),
                })
            }
        };
        let have = p.buf.len();
        let spare = p.buf.capacity() - have;
        // SAFETY: reading into the Vec's spare capacity; `spare` bytes are
        // allocated, and set_len below covers only what read(2) wrote.
        let r = unsafe {
            libc::read(
                src.fd.as_raw_fd(),
                p.buf.as_mut_ptr().add(have).cast(),
                spare,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                std::io::ErrorKind::WouldBlock => Ok(ReadResult::WouldBlock),
                std::io::ErrorKind::Interrupted => Ok(ReadResult::Data),
                _ => Err(e),
            };
        }
        let r = r as usize;
        // SAFETY: read(2) initialised `r` bytes after `have`.
        unsafe { p.buf.set_len(have + r) };
        self.bytes.fetch_add(r as u64, Relaxed);
        if r == 0 {
            self.flush_pending(src, true);
            return Ok(ReadResult::Eof);
        }
        let full = r == spare || p.buf.len() - p.start >= COALESCE_BYTES;
        if full {
            self.flush_pending(src, false);
        }
        Ok(if r < spare {
            // A short read emptied the pipe: back to epoll rather than a
            // read that would only say EAGAIN.
            ReadResult::Drained
        } else {
            ReadResult::Data
        })
    }

    /// Records cut and bytes read so far.
    pub fn totals(&self) -> (u64, u64) {
        (self.records.load(Relaxed), self.bytes.load(Relaxed))
    }

    /// A point-in-time copy of every driver's counters.
    pub fn reports(&self) -> Vec<DriverReport> {
        self.drivers.iter().map(|d| d.stats.report()).collect()
    }

    /// Closes the queues and waits until every driver has written what it
    /// was given, flushed and stopped.
    pub fn close(mut self) -> PipelineReport {
        for d in &self.drivers {
            d.queue.close();
        }
        let mut close_errors = Vec::new();
        for d in &mut self.drivers {
            if let Some(t) = d.thread.take() {
                match t.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => close_errors.push((d.stats.name.clone(), e)),
                    Err(_) => {
                        close_errors.push((d.stats.name.clone(), "driver thread panicked".into()))
                    }
                }
            }
        }
        PipelineReport {
            records: self.records.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            drivers: self.reports(),
            close_errors,
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Dropped without close (an error path): stop retrying, so a driver
        // stuck on a full disk cannot hang the caller.
        for d in &self.drivers {
            d.stats.abandoned.store(true, Relaxed);
            d.queue.close();
        }
        for d in &mut self.drivers {
            if let Some(t) = d.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// A source being pumped.
struct Source {
    fd: OwnedFd,
    sp: Splitter,
    pending: Option<Pending>,
    /// Watched for input. Off while a partial batch lingers after the pipe
    /// was drained: the writer's next small writes then cost no wake-up
    /// each; they are read when the batch is due.
    armed: bool,
}

/// Bytes read but not yet cut into a batch.
struct Pending {
    buf: Vec<u8>,
    /// Where the new bytes begin (after the carried unfinished line).
    start: usize,
    /// When the first of them was read.
    first: Instant,
    /// The same, as wall-clock time: the records' timestamp.
    time: i64,
}

/// Pending bytes are dispatched once this many have been read…
pub const COALESCE_BYTES: usize = 128 * 1024;
/// …or once the first of them is this old.
pub const LINGER: Duration = Duration::from_micros(100);

/// `epoll_pwait2` until `due` (forever when `None`), with nanosecond
/// precision; EINTR is a wake-up with no events.
fn epoll_wait_until(
    ep: &nix::sys::epoll::Epoll,
    events: &mut [nix::sys::epoll::EpollEvent],
    due: Option<Instant>,
) -> std::io::Result<usize> {
    let ts = due.map(|d| {
        let left = d.saturating_duration_since(Instant::now());
        libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        }
    });
    let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
    // SAFETY: EpollEvent is repr(transparent) over libc::epoll_event; the
    // buffer holds `events.len()` of them; `tsp` is null or points to a
    // timespec alive for the call; no signal mask is passed.
    let n = unsafe {
        libc::epoll_pwait2(
            ep.0.as_raw_fd(),
            events.as_mut_ptr().cast::<libc::epoll_event>(),
            events.len() as libc::c_int,
            tsp,
            std::ptr::null(),
        )
    };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(n as usize)
}

enum ReadResult {
    Data,
    Drained,
    WouldBlock,
    Eof,
}

/// Pipe capacity the pipeline asks for: lets the writer run ahead while a
/// driver is busy, and makes reads large.
pub const PIPE_SIZE: i32 = 1 << 20;

/// Grows a pipe to [`PIPE_SIZE`] (best effort: not a pipe, or above the
/// system's pipe-max-size, keeps the current size).
fn grow_pipe(fd: &OwnedFd) {
    // SAFETY: F_SETPIPE_SZ on an fd we own; failure is harmless.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
}

fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let fl = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(fl | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Wall-clock time in nanoseconds since the Unix epoch.
pub fn now_unix_nano() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// CLOCK_MONOTONIC in nanoseconds: comparable across processes (the shim's
/// phase timings and the start benchmark read the same clock).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The driver thread: pops, writes with retries, accounts, and at the end
/// flushes and stops the sink.
fn drive(q: Arc<Queue>, stats: Arc<DriverStats>, mut sink: Box<dyn Sink>) -> Result<(), String> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut recs: Vec<LkLogRecord> = Vec::with_capacity(MAX_CALL_RECORDS);
    let mut failed = false;
    while q.pop(&mut entries, MAX_CALL_RECORDS) {
        recs.clear();
        let mut bytes = 0;
        for e in &entries {
            recs.extend_from_slice(&e.batch.records()[e.from..e.to]);
            bytes += e.bytes;
        }
        if !failed {
            failed = !write_all(&mut *sink, &recs, &stats);
            if failed {
                // Everything queued behind the failure is dropped too.
                for e in q.disable() {
                    stats.drop_recs(&e.batch.records()[e.from..e.to]);
                }
            } else {
                let now = Instant::now();
                let mut h = stats.latency.lock().unwrap_or_else(|e| e.into_inner());
                for e in &entries {
                    let ns = now.duration_since(e.batch.read_at()).as_nanos() as u64;
                    let n = u32::try_from(e.to - e.from).unwrap_or(u32::MAX);
                    h.saturating_record_n(ns.max(1_000), n);
                }
            }
        } else {
            stats.drop_recs(&recs);
        }
        q.release(bytes, &stats);
        entries.clear();
    }
    if failed {
        let _ = catch_unwind(AssertUnwindSafe(move || drop(sink)));
        return Ok(());
    }
    let r = catch_unwind(AssertUnwindSafe(move || {
        let f = sink.flush();
        let s = sink.stop();
        f.and(s)
    }));
    match r {
        Ok(r) => r,
        Err(_) => Err("driver panicked while closing".into()),
    }
}

/// Writes `recs` through the sink, retrying RETRY with back-off. Returns
/// false when the sink failed for good (the rest counted as dropped).
fn write_all(sink: &mut dyn Sink, recs: &[LkLogRecord], stats: &DriverStats) -> bool {
    let mut pos = 0;
    let mut backoff = RETRY_FIRST;
    while pos < recs.len() {
        let t0 = Instant::now();
        let out = catch_unwind(AssertUnwindSafe(|| sink.write(&recs[pos..]))).unwrap_or_else(|p| {
            WriteOutcome::Fatal {
                written: 0,
                message: format!(
                    "driver panicked: {}",
                    p.downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_default()
                ),
            }
        });
        stats
            .call_time
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .saturating_record((t0.elapsed().as_nanos() as u64).max(1_000));
        stats.calls.fetch_add(1, Relaxed);
        let rest = &recs[pos..];
        let delivered = |n: usize| {
            stats.delivered.fetch_add(n as u64, Relaxed);
            stats
                .delivered_bytes
                .fetch_add(rest[..n].iter().map(|r| r.line.len as u64).sum(), Relaxed);
        };
        match out {
            WriteOutcome::Ok => {
                delivered(rest.len());
                return true;
            }
            WriteOutcome::Retry { written, message } => {
                delivered(written);
                pos += written;
                if stats.abandoned.load(Relaxed) {
                    stats.drop_recs(&recs[pos..]);
                    *stats.failure.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(format!("abandoned while retrying: {message}"));
                    return false;
                }
                stats.retries.fetch_add(1, Relaxed);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(RETRY_MAX);
            }
            WriteOutcome::Drop { written, .. } => {
                delivered(written);
                stats.drop_recs(&rest[written..]);
                return true;
            }
            WriteOutcome::Fatal { written, message } => {
                delivered(written);
                stats.drop_recs(&rest[written..]);
                *stats.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
                return false;
            }
        }
    }
    true
}
