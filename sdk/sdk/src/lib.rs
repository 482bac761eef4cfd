//! lookout-sdk: write lookout log drivers and metrics sinks in safe Rust.
//!
//! A log driver is a type implementing [`LogDriver`] whose streams implement
//! [`LogStream`]; one line exports it:
//!
//! ```ignore
//! lookout_sdk::export_log_driver!(MyDriver);
//! ```
//!
//! The macro generates the `lookout_plugin_v1` entry point and a function
//! table whose every wrapper checks its pointers and catches panics: a panic
//! becomes an `LK_FATAL` status carrying the panic message, and the stream is
//! marked failed, so a bug in a driver never takes the host down. Plugins must
//! therefore be built with `panic = "unwind"` (the default).
//!
//! Metrics sinks implement [`MetricsSink`] / [`MetricsStream`] and use
//! [`export_metrics_sink!`].
//!
//! Build the crate as a `cdylib`. The host finds it by driver name in its
//! plugin path as `liblookout_plugin_<name>.so` (dashes become underscores)
//! or `<name>.so`.

use std::borrow::Cow;
use std::ffi::{CString, c_void};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

#[cfg(feature = "helpers")]
pub mod attrs;
#[cfg(feature = "helpers")]
pub mod tag;
pub mod units;

pub use lookout_abi as abi;
use lookout_abi::{
    LK_DROP, LK_FATAL, LK_OK, LK_REC_PARTIAL, LK_REC_PARTIAL_LAST, LK_RETRY, LkBytes,
    LkContainerInfo, LkErrBuf, LkHost, LkKv, LkLogRecord, LkMetricSample, LkStatus,
};

/// How a call failed, as the host will treat it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Transient: the host retries the unwritten records after a back-off.
    Retry,
    /// The unwritten records are dropped (and counted) by the host.
    Drop,
    /// The stream (or the whole call) cannot go on.
    Fatal,
}

impl Status {
    fn code(self) -> LkStatus {
        match self {
            Status::Retry => LK_RETRY,
            Status::Drop => LK_DROP,
            Status::Fatal => LK_FATAL,
        }
    }
}

/// An error returned to the host: a status, a message, and for writes how
/// many records were fully handled before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// How the host should treat it.
    pub status: Status,
    /// Records fully handled before the error (writes only).
    pub written: usize,
    /// Human-readable reason; should name the bad value.
    pub message: String,
}

impl Error {
    /// A fatal error.
    pub fn fatal(message: impl Into<String>) -> Self {
        Error {
            status: Status::Fatal,
            written: 0,
            message: message.into(),
        }
    }
    /// A transient error: retry from `written`.
    pub fn retry(written: usize, message: impl Into<String>) -> Self {
        Error {
            status: Status::Retry,
            written,
            message: message.into(),
        }
    }
    /// The records from `written` on are dropped.
    pub fn drop_from(written: usize, message: impl Into<String>) -> Self {
        Error {
            status: Status::Drop,
            written,
            message: message.into(),
        }
    }
    /// An invalid option: fatal, naming the key.
    pub fn invalid_option(driver: &str, key: &str, why: impl fmt::Display) -> Self {
        Error::fatal(format!("{driver}: invalid log-opt {key:?}: {why}"))
    }
    /// An option the driver does not know.
    pub fn unknown_option(driver: &str, key: &str) -> Self {
        Error::fatal(format!("unknown log opt '{key}' for {driver} log driver"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Key/value options (log-opts) as the host passed them.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    kv: &'a [LkKv],
}

impl<'a> Options<'a> {
    /// Wraps a raw array.
    ///
    /// # Safety
    /// `ptr` must address `n` valid [`LkKv`] whose bytes stay valid for `'a`
    /// (or `n` must be 0).
    pub unsafe fn from_raw(ptr: *const LkKv, n: usize) -> Self {
        let kv = if n == 0 || ptr.is_null() {
            &[][..]
        } else {
            // SAFETY: guaranteed by the caller.
            unsafe { std::slice::from_raw_parts(ptr, n) }
        };
        Options { kv }
    }

    /// Borrows an array of host-built pairs.
    pub fn from_kv(kv: &'a [LkKv]) -> Self {
        Options { kv }
    }

    /// All pairs, in order; keys and values decoded lossily as UTF-8.
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)> + 'a {
        self.kv.iter().map(|kv| {
            // SAFETY: the constructor's contract covers every pair for 'a.
            let (k, v) = unsafe { (kv.key.as_slice(), kv.value.as_slice()) };
            (String::from_utf8_lossy(k), String::from_utf8_lossy(v))
        })
    }

    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<Cow<'a, str>> {
        self.iter().filter(|(k, _)| k == key).map(|(_, v)| v).last()
    }

    /// Checks that every key is in `known`; otherwise an error naming the
    /// first unknown key and the driver.
    pub fn check_known(&self, driver: &str, known: &[&str]) -> Result<(), Error> {
        for (k, _) in self.iter() {
            if !known.contains(&k.as_ref()) {
                return Err(Error::unknown_option(driver, &k));
            }
        }
        Ok(())
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.kv.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.kv.is_empty()
    }
}

/// Which stream a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Standard input (recorded input).
    Stdin,
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl StreamKind {
    /// From the ABI value (unknown values read as stdout).
    pub fn from_abi(v: u32) -> Self {
        match v {
            lookout_abi::LK_STREAM_STDIN => StreamKind::Stdin,
            lookout_abi::LK_STREAM_STDERR => StreamKind::Stderr,
            _ => StreamKind::Stdout,
        }
    }
    /// The ABI value.
    pub fn to_abi(self) -> u32 {
        match self {
            StreamKind::Stdin => lookout_abi::LK_STREAM_STDIN,
            StreamKind::Stdout => lookout_abi::LK_STREAM_STDOUT,
            StreamKind::Stderr => lookout_abi::LK_STREAM_STDERR,
        }
    }
    /// `"stdin"`, `"stdout"` or `"stderr"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Stdin => "stdin",
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        }
    }
}

/// One log record, a zero-cost view of [`LkLogRecord`].
///
/// The bytes are borrowed from the host for the duration of the write call.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct LogRecord(LkLogRecord);

impl LogRecord {
    /// Views a raw record array.
    ///
    /// # Safety
    /// `ptr` must address `n` valid records whose line bytes stay valid for
    /// `'a` (or `n` must be 0).
    pub unsafe fn slice_from_raw<'a>(ptr: *const LkLogRecord, n: usize) -> &'a [LogRecord] {
        if n == 0 || ptr.is_null() {
            return &[];
        }
        // SAFETY: LogRecord is repr(transparent) over LkLogRecord; the caller
        // guarantees the array.
        unsafe { std::slice::from_raw_parts(ptr.cast::<LogRecord>(), n) }
    }

    /// Views host-built records (the host's own tests and in-process sinks).
    pub fn slice_from_abi(recs: &[LkLogRecord]) -> &[LogRecord] {
        // SAFETY: LogRecord is repr(transparent) over LkLogRecord; the
        // records' bytes are valid for as long as the caller keeps them, which
        // is what every LkLogRecord producer guarantees.
        unsafe { Self::slice_from_raw(recs.as_ptr(), recs.len()) }
    }

    /// The bytes, with the line's own `\n` when it had one.
    pub fn line(&self) -> &[u8] {
        // SAFETY: records only exist inside a write call (or host code that
        // owns the bytes); the slice does not outlive `self`'s borrow.
        unsafe { self.0.line.as_slice() }
    }
    /// Read time, nanoseconds since the Unix epoch.
    pub fn time_unix_nano(&self) -> i64 {
        self.0.time_unix_nano
    }
    /// The source stream.
    pub fn stream(&self) -> StreamKind {
        StreamKind::from_abi(self.0.stream)
    }
    /// True for a chunk of a longer line.
    pub fn is_partial(&self) -> bool {
        self.0.flags & LK_REC_PARTIAL != 0
    }
    /// True for the last chunk of a partial line.
    pub fn is_partial_last(&self) -> bool {
        self.0.flags & LK_REC_PARTIAL_LAST != 0
    }
    /// Identifier shared by the chunks of one line (0 when not partial).
    pub fn partial_id(&self) -> u64 {
        self.0.partial_id
    }
    /// 1-based chunk position (0 when not partial).
    pub fn partial_ordinal(&self) -> u32 {
        self.0.partial_ordinal
    }
    /// The raw record.
    pub fn raw(&self) -> &LkLogRecord {
        &self.0
    }
}

impl fmt::Debug for LogRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogRecord")
            .field("line", &String::from_utf8_lossy(self.line()))
            .field("time_unix_nano", &self.time_unix_nano())
            .field("stream", &self.stream())
            .field("partial", &self.is_partial())
            .finish()
    }
}

/// One metric sample, a zero-cost view of [`LkMetricSample`].
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct MetricSample(LkMetricSample);

impl MetricSample {
    /// Views a raw sample array.
    ///
    /// # Safety
    /// `ptr` must address `n` valid samples whose bytes and labels stay valid
    /// for `'a` (or `n` must be 0).
    pub unsafe fn slice_from_raw<'a>(ptr: *const LkMetricSample, n: usize) -> &'a [MetricSample] {
        if n == 0 || ptr.is_null() {
            return &[];
        }
        // SAFETY: repr(transparent); the caller guarantees the array.
        unsafe { std::slice::from_raw_parts(ptr.cast::<MetricSample>(), n) }
    }
    /// Metric name.
    pub fn name(&self) -> Cow<'_, str> {
        // SAFETY: valid during the write call that lent the sample.
        String::from_utf8_lossy(unsafe { self.0.name.as_slice() })
    }
    /// Help text.
    pub fn help(&self) -> Cow<'_, str> {
        // SAFETY: as above.
        String::from_utf8_lossy(unsafe { self.0.help.as_slice() })
    }
    /// Unit.
    pub fn unit(&self) -> Cow<'_, str> {
        // SAFETY: as above.
        String::from_utf8_lossy(unsafe { self.0.unit.as_slice() })
    }
    /// True for a counter, false for a gauge.
    pub fn is_counter(&self) -> bool {
        self.0.kind == lookout_abi::LK_METRIC_COUNTER
    }
    /// The value.
    pub fn value(&self) -> f64 {
        self.0.value
    }
    /// When it was read, nanoseconds since the Unix epoch.
    pub fn time_unix_nano(&self) -> i64 {
        self.0.time_unix_nano
    }
    /// Labels.
    pub fn labels(&self) -> Options<'_> {
        // SAFETY: as above.
        unsafe { Options::from_raw(self.0.labels, self.0.n_labels) }
    }
}

/// What the host says about the container a stream is for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Full id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// Full image id.
    pub image_id: String,
    /// Image name.
    pub image_name: String,
    /// Entrypoint and arguments joined by spaces.
    pub command: String,
    /// The container's hostname.
    pub hostname: String,
    /// The engine's name (its hostname).
    pub daemon_name: String,
    /// Directory for the driver's files.
    pub log_dir: String,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_unix_nano: i64,
    /// Labels, in the host's order.
    pub labels: Vec<(String, String)>,
    /// Environment, split at the first `=`.
    pub env: Vec<(String, String)>,
}

impl ContainerInfo {
    /// Copies a raw info (a null pointer gives the default).
    ///
    /// # Safety
    /// `p` must be null or point to a valid [`LkContainerInfo`] whose
    /// pointers are valid for the call.
    pub unsafe fn from_raw(p: *const LkContainerInfo) -> Self {
        if p.is_null() {
            return ContainerInfo::default();
        }
        // SAFETY: guaranteed by the caller.
        let r = unsafe { &*p };
        let s = |b: LkBytes| {
            // SAFETY: guaranteed by the caller.
            String::from_utf8_lossy(unsafe { b.as_slice() }).into_owned()
        };
        let kvs = |ptr, n| {
            // SAFETY: guaranteed by the caller.
            let o = unsafe { Options::from_raw(ptr, n) };
            o.iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect::<Vec<_>>()
        };
        ContainerInfo {
            id: s(r.id),
            name: s(r.name),
            image_id: s(r.image_id),
            image_name: s(r.image_name),
            command: s(r.command),
            hostname: s(r.hostname),
            daemon_name: s(r.daemon_name),
            log_dir: s(r.log_dir),
            created_unix_nano: r.created_unix_nano,
            labels: kvs(r.labels, r.n_labels),
            env: kvs(r.env, r.n_env),
        }
    }

    /// The first 12 characters of the id.
    pub fn short_id(&self) -> &str {
        let end = self.id.len().min(12);
        self.id.get(..end).unwrap_or(&self.id)
    }
}

/// The host, as seen by a plugin.
pub struct Host {
    raw: *const LkHost,
}

// SAFETY: LkHost is immutable for the life of the process and its log
// callback is documented thread-safe by the host.
unsafe impl Send for Host {}
// SAFETY: as above.
unsafe impl Sync for Host {}

impl Host {
    /// Wraps the host pointer given to `init` (may be null in tests).
    ///
    /// # Safety
    /// `raw` must be null or valid for the life of the process.
    pub unsafe fn from_raw(raw: *const LkHost) -> Self {
        Host { raw }
    }

    /// Writes a message to the host's diagnostics (ignored when the host
    /// offers no logger).
    pub fn log(&self, level: lookout_abi::LkLogLevel, msg: &str) {
        if self.raw.is_null() {
            return;
        }
        // SAFETY: from_raw's contract.
        let h = unsafe { &*self.raw };
        if let Some(f) = h.log {
            // SAFETY: the host provided this callback for exactly this use.
            unsafe { f(h.log_ctx, level, LkBytes::from_slice(msg.as_bytes())) }
        }
    }
}

/// A log driver: validated options become an instance, which opens one
/// stream per container.
pub trait LogDriver: Sized + Send + Sync + 'static {
    /// The name users pass to `--log-driver`.
    const NAME: &'static str;
    /// The plugin's version.
    const VERSION: &'static str;
    /// `LK_CAP_*` bits.
    const CAPS: u64 = 0;
    /// The per-container stream.
    type Stream: LogStream;
    /// Checks options without side effects; an unknown key is an error
    /// naming it and the driver.
    fn validate(opts: &Options<'_>) -> Result<(), Error>;
    /// Creates the instance.
    fn init(host: Host, opts: &Options<'_>) -> Result<Self, Error>;
    /// Opens the stream for one container.
    fn start(&self, info: &ContainerInfo) -> Result<Self::Stream, Error>;
}

/// A per-container log stream. Never called concurrently.
pub trait LogStream: Send + 'static {
    /// Writes a batch. On error, `Error::written` says how many records were
    /// fully handled.
    fn write(&mut self, records: &[LogRecord]) -> Result<(), Error>;
    /// Makes everything written so far durable or delivered.
    fn flush(&mut self) -> Result<(), Error>;
    /// Drains and closes. The default flushes.
    fn stop(mut self) -> Result<(), Error>
    where
        Self: Sized,
    {
        self.flush()
    }
}

/// A metrics sink: validated options become an instance, which opens streams.
pub trait MetricsSink: Sized + Send + Sync + 'static {
    /// The sink's name.
    const NAME: &'static str;
    /// The plugin's version.
    const VERSION: &'static str;
    /// `LK_CAP_*` bits.
    const CAPS: u64 = 0;
    /// The stream type.
    type Stream: MetricsStream;
    /// Checks options without side effects.
    fn validate(opts: &Options<'_>) -> Result<(), Error>;
    /// Creates the instance.
    fn init(host: Host, opts: &Options<'_>) -> Result<Self, Error>;
    /// Opens a stream (for one container, or for the engine when `info` is
    /// the default).
    fn start(&self, info: &ContainerInfo) -> Result<Self::Stream, Error>;
}

/// A metrics stream. Never called concurrently.
pub trait MetricsStream: Send + 'static {
    /// Writes a batch of samples.
    fn write(&mut self, samples: &[MetricSample]) -> Result<(), Error>;
    /// Delivers what was written so far.
    fn flush(&mut self) -> Result<(), Error>;
    /// Drains and closes. The default flushes.
    fn stop(mut self) -> Result<(), Error>
    where
        Self: Sized,
    {
        self.flush()
    }
}

/// Copies `msg` into the host's error buffer, cut at a UTF-8 boundary.
///
/// # Safety
/// `err` must be null or point to a valid [`LkErrBuf`] whose `buf` has `cap`
/// writable bytes.
pub unsafe fn write_err(err: *mut LkErrBuf, msg: &str) {
    if err.is_null() {
        return;
    }
    // SAFETY: guaranteed by the caller.
    let e = unsafe { &mut *err };
    if e.buf.is_null() || e.cap == 0 {
        e.len = 0;
        return;
    }
    let mut n = msg.len().min(e.cap);
    while n > 0 && !msg.is_char_boundary(n) {
        n -= 1;
    }
    // SAFETY: n <= cap and the buffer is writable for cap bytes.
    unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), e.buf, n) };
    e.len = n;
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Runs `f`, turning an error or a panic into a status and a message.
fn guarded(
    err: *mut LkErrBuf,
    written: *mut usize,
    f: impl FnOnce() -> Result<(), Error>,
) -> LkStatus {
    let (status, n, msg) = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return LK_OK,
        Ok(Err(e)) => (e.status.code(), e.written, e.message),
        Err(p) => (
            LK_FATAL,
            0,
            format!("plugin panicked: {}", panic_message(&*p)),
        ),
    };
    if !written.is_null() {
        // SAFETY: non-null out-pointer given by the host.
        unsafe { *written = n };
    }
    // SAFETY: err comes from the host, which guarantees the buffer.
    unsafe { write_err(err, &msg) };
    status
}

/// A stream as the plugin keeps it behind the opaque pointer.
#[doc(hidden)]
pub struct StreamBox<S> {
    stream: Option<S>,
    failed: Option<String>,
}

/// Implementation details used by the export macros. Not a stable API.
#[doc(hidden)]
pub mod __private {
    use super::*;
    pub use lookout_abi::{
        ABI_MAJOR, ABI_MINOR, LK_KIND_LOG, LK_KIND_METRICS, LkFns, LkPlugin, LkStatus,
    };
    use std::ffi::c_char;

    /// A descriptor with the strings it points to, shareable between threads.
    pub struct Descriptor {
        pub plugin: LkPlugin,
        pub fns: Box<LkFns>,
        _strings: [CString; 3],
    }
    // SAFETY: the descriptor is immutable after construction; its pointers
    // address the CStrings and table it owns.
    unsafe impl Send for Descriptor {}
    // SAFETY: as above.
    unsafe impl Sync for Descriptor {}

    fn cstring(s: &str) -> CString {
        CString::new(s.replace('\0', "")).unwrap_or_default()
    }

    /// Builds a descriptor.
    pub fn descriptor(kind: u32, caps: u64, name: &str, version: &str, fns: LkFns) -> Descriptor {
        let strings = [
            cstring(name),
            cstring(version),
            cstring(&format!(
                "lookout-sdk {} (abi {}.{})",
                env!("CARGO_PKG_VERSION"),
                ABI_MAJOR,
                ABI_MINOR
            )),
        ];
        let fns = Box::new(fns);
        let plugin = LkPlugin {
            struct_size: std::mem::size_of::<LkPlugin>(),
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            kind,
            caps,
            name: strings[0].as_ptr(),
            version: strings[1].as_ptr(),
            build_info: strings[2].as_ptr(),
            fns: &*fns,
        };
        Descriptor {
            plugin,
            fns,
            _strings: strings,
        }
    }

    /// `name` pointer of a descriptor (for tests).
    pub fn name_ptr(d: &Descriptor) -> *const c_char {
        d.plugin.name
    }

    // ---------------------------------------------------------------- log

    /// `validate` for a log driver.
    ///
    /// # Safety
    /// Called by the host with pointers per the ABI.
    pub unsafe extern "C" fn log_validate<D: LogDriver>(
        opts: *const LkKv,
        n: usize,
        err: *mut LkErrBuf,
    ) -> LkStatus {
        guarded(err, std::ptr::null_mut(), || {
            // SAFETY: ABI contract.
            let o = unsafe { Options::from_raw(opts, n) };
            D::validate(&o)
        })
    }

    /// `init` for a log driver.
    ///
    /// # Safety
    /// Called by the host with pointers per the ABI.
    pub unsafe extern "C" fn log_init<D: LogDriver>(
        host: *const LkHost,
        opts: *const LkKv,
        n: usize,
        out: *mut *mut c_void,
        err: *mut LkErrBuf,
    ) -> LkStatus {
        if out.is_null() {
            // SAFETY: ABI contract for err.
            unsafe { write_err(err, "init: null out pointer") };
            return LK_FATAL;
        }
        guarded(err, std::ptr::null_mut(), || {
            // SAFETY: ABI contract.
            let o = unsafe { Options::from_raw(opts, n) };
            D::validate(&o)?;
            // SAFETY: ABI contract: host valid for the process.
            let inst = D::init(unsafe { Host::from_raw(host) }, &o)?;
            // SAFETY: checked non-null above.
            unsafe { *out = Box::into_raw(Box::new(inst)).cast() };
            Ok(())
        })
    }

    /// `start` for a log driver.
    ///
    /// # Safety
    /// Called by the host with pointers per the ABI.
    pub unsafe extern "C" fn log_start<D: LogDriver>(
        inst: *mut c_void,
        info: *const LkContainerInfo,
        out: *mut *mut c_void,
        err: *mut LkErrBuf,
    ) -> LkStatus {
        if inst.is_null() || out.is_null() {
            // SAFETY: ABI contract for err.
            unsafe { write_err(err, "start: null instance or out pointer") };
            return LK_FATAL;
        }
        guarded(err, std::ptr::null_mut(), || {
            // SAFETY: inst was produced by log_init::<D>.
            let d = unsafe { &*inst.cast::<D>() };
            // SAFETY: ABI contract.
            let info = unsafe { ContainerInfo::from_raw(info) };
            let s = d.start(&info)?;
            let b = Box::new(StreamBox {
                stream: Some(s),
                failed: None,
            });
            // SAFETY: checked non-null above.
            unsafe { *out = Box::into_raw(b).cast() };
            Ok(())
        })
    }

    fn with_stream<S>(
        stream: *mut c_void,
        err: *mut LkErrBuf,
        written: *mut usize,
        f: impl FnOnce(&mut S) -> Result<(), Error>,
    ) -> LkStatus {
        if !written.is_null() {
            // SAFETY: non-null out pointer from the host.
            unsafe { *written = 0 };
        }
        if stream.is_null() {
            // SAFETY: ABI contract for err.
            unsafe { write_err(err, "null stream") };
            return LK_FATAL;
        }
        // SAFETY: stream was produced by a start thunk for StreamBox<S>, and
        // the host never calls one stream concurrently.
        let b = unsafe { &mut *stream.cast::<StreamBox<S>>() };
        if let Some(why) = &b.failed {
            // SAFETY: ABI contract for err.
            unsafe { write_err(err, &format!("stream failed earlier: {why}")) };
            return LK_FATAL;
        }
        let Some(s) = b.stream.as_mut() else {
            // SAFETY: ABI contract for err.
            unsafe { write_err(err, "stream already stopped") };
            return LK_FATAL;
        };
        let mut msg = String::new();
        let r = catch_unwind(AssertUnwindSafe(|| f(s)));
        let status = match r {
            Ok(Ok(())) => {
                // All done: written = everything, set by the caller.
                return LK_OK;
            }
            Ok(Err(e)) => {
                if !written.is_null() {
                    // SAFETY: as above.
                    unsafe { *written = e.written };
                }
                msg.push_str(&e.message);
                e.status.code()
            }
            Err(p) => {
                msg = format!("plugin panicked: {}", panic_message(&*p));
                b.failed = Some(msg.clone());
                LK_FATAL
            }
        };
        // SAFETY: ABI contract for err.
        unsafe { write_err(err, &msg) };
        status
    }

    /// `write_logs` for a log driver.
    ///
    /// # Safety
    /// Called by the host with pointers per the ABI.
    pub unsafe extern "C" fn log_write<D: LogDriver>(
        stream: *mut c_void,
        recs: *const LkLogRecord,
        n: usize,
        written: *mut usize,
        err: *mut LkErrBuf,
    ) -> LkStatus {
        let st = with_stream::<D::Stream>(stream, err, written, |s| {
            // SAFETY: ABI contract: n records valid during the call.
            let r = unsafe { LogRecord::slice_from_raw(recs, n) };
            s.write(r)
        });
        if st == LK_OK && !written.is_null() {
            // SAFETY: non-null out pointer.
            unsafe { *written = n };
        }
        st
    }

    /// `flush` for a log driver.
    ///
    /// # Safety
    /// Called by the host with pointers per the ABI.
    pub unsafe extern "C" fn log_flush<D: LogDriver>(
        stream: *mut c_void,
        err: *mut LkErrBuf,
    ) -> LkStatus {
        with_stream::<D::Stream>(stream, err, std::ptr::null_mut(), |s| s.flush())
    }

    /// `stop` for a log driver: drains, closes and frees.
    ///
    /// # Safety
    /// Called by the host with pointers per the ABI; `stream` is not used
    /// again.
    pub unsafe extern "C" fn log_stop<D: LogDriver>(
        stream: *mut c_void,
        err: *mut LkErrBuf,
    ) -> LkStatus {
        // SAFETY: ABI contract: a stream from log_start, stopped once.
        unsafe { stop_box::<D::Stream>(stream, err, |s| s.stop()) }
    }

    /// Frees a stream box after running `stop` on its stream.
    ///
    /// # Safety
    /// `stream` must be null or come from a start thunk for `StreamBox<S>`
    /// and not be used again.
    pub unsafe fn stop_box<S>(
        stream: *mut c_void,
        err: *mut LkErrBuf,
        stop: impl FnOnce(S) -> Result<(), Error>,
    ) -> LkStatus {
        if stream.is_null() {
            return LK_OK;
        }
        // SAFETY: per the function contract we own the box now.
        let mut b = unsafe { Box::from_raw(stream.cast::<StreamBox<S>>()) };
        let failed = b.failed.take();
        let Some(s) = b.stream.take() else {
            return LK_OK;
        };
        // A stream that panicked before is dropped without calling into it
        // again, which may run its Drop: guard that too.
        let r = catch_unwind(AssertUnwindSafe(move || match failed {
            Some(why) => {
                drop(s);
                Err(Error::fatal(format!("stream failed earlier: {why}")))
            }
            None => stop(s),
        }));
        guarded(err, std::ptr::null_mut(), || match r {
            Ok(r) => r,
            Err(p) => Err(Error::fatal(format!(
                "plugin panicked: {}",
                panic_message(&*p)
            ))),
        })
    }

    /// `shutdown` for any plugin kind.
    ///
    /// # Safety
    /// `inst` must be null or come from the matching init thunk, with every
    /// stream stopped.
    pub unsafe extern "C" fn shutdown<D>(inst: *mut c_void) {
        if inst.is_null() {
            return;
        }
        // SAFETY: per the contract we own the instance now.
        let b = unsafe { Box::from_raw(inst.cast::<D>()) };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(b)));
    }

    /// The function table of a log driver.
    pub fn log_fns<D: LogDriver>() -> LkFns {
        LkFns {
            struct_size: std::mem::size_of::<LkFns>(),
            validate: Some(log_validate::<D>),
            init: Some(log_init::<D>),
            start: Some(log_start::<D>),
            write_logs: Some(log_write::<D>),
            write_metrics: None,
            flush: Some(log_flush::<D>),
            stop: Some(log_stop::<D>),
            shutdown: Some(shutdown::<D>),
        }
    }

    // ------------------------------------------------------------ metrics

    /// `validate` for a metrics sink.
    ///
    /// # Safety
    /// Called by the host with pointers per the ABI.
    pub unsafe extern "C" fn m_validate<D: MetricsSink>(
        opts: *const LkKv,
        n: usize,
        err: *mut LkErrBuf,
    ) -> LkStatus {
        guarded(err, std::ptr::null_mut(), || {
            // SAFETY: ABI contract.
            let o = unsafe { Options::from_raw(opts, n) };
            D::validate(&o)
        })
    }

    /// `init` for a metrics sink.
    ///
    /// # Safety
    /// Called by the host with pointers per the ABI.
    pub unsafe extern "C" fn m_init<D: MetricsSink>(
        host: *const LkHost,
        opts: *const LkKv,
        n: usize,
        out: *mut *mut c_void,
        err: *mut LkErrBuf,
    ) -> LkStatus {
        if out.is_null() {
            // SAFETY: ABI contract for err.
            unsafe { write_err(err, "init: null out pointer") };
            return LK_FATAL;
        }
        guarded(err, std::ptr::null_mut(), || {
            // SAFETY: ABI contract.
            let o = unsafe { Options::from_raw(opts, n) };
            D::validate(&o)?;
            // SAFETY: ABI contract.
            let inst = D::init(unsafe { Host::from_raw(host) }, &o)?;
            // SAFETY: checked non-null above.
            unsafe { *out = Box::into_raw(Box::new(inst)).cast() };
            Ok(())
        })
    }

    /// `start` for a metrics sink.
    ///
    /// # Safety
    /// Called by the host with pointers per the ABI.
    pub unsafe extern "C" fn m_start<D: MetricsSink>(
        inst: *mut c_void,
        info: *const LkContainerInfo,
        out: *mut *mut c_void,
        err: *mut LkErrBuf,
    ) -> LkStatus {
        if inst.is_null() || out.is_null() {
            // SAFETY: ABI contract for err.
            unsafe { write_err(err, "start: null instance or out pointer") };
            return LK_FATAL;
        }
        guarded(err, std::ptr::null_mut(), || {
            // SAFETY: inst was produced by m_init::<D>.
            let d = unsafe { &*inst.cast::<D>() };
            // SAFETY: ABI contract (null allowed).
            let info = unsafe { ContainerInfo::from_raw(info) };
            let s = d.start(&info)?;
            let b = Box::new(StreamBox {
                stream: Some(s),
                failed: None,
            });
            // SAFETY: checked non-null above.
            unsafe { *out = Box::into_raw(b).cast() };
            Ok(())
        })
    }

    /// `write_metrics` for a metrics sink.
    ///
    /// # Safety
    /// Called by the host with pointers per the ABI.
    pub unsafe extern "C" fn m_write<D: MetricsSink>(
        stream: *mut c_void,
        samples: *const LkMetricSample,
        n: usize,
        written: *mut usize,
        err: *mut LkErrBuf,
    ) -> LkStatus {
        let st = with_stream::<D::Stream>(stream, err, written, |s| {
            // SAFETY: ABI contract.
            let r = unsafe { MetricSample::slice_from_raw(samples, n) };
            s.write(r)
        });
        if st == LK_OK && !written.is_null() {
            // SAFETY: non-null out pointer.
            unsafe { *written = n };
        }
        st
    }

    /// `flush` for a metrics sink.
    ///
    /// # Safety
    /// Called by the host with pointers per the ABI.
    pub unsafe extern "C" fn m_flush<D: MetricsSink>(
        stream: *mut c_void,
        err: *mut LkErrBuf,
    ) -> LkStatus {
        with_stream::<D::Stream>(stream, err, std::ptr::null_mut(), |s| s.flush())
    }

    /// `stop` for a metrics sink.
    ///
    /// # Safety
    /// Called by the host with pointers per the ABI.
    pub unsafe extern "C" fn m_stop<D: MetricsSink>(
        stream: *mut c_void,
        err: *mut LkErrBuf,
    ) -> LkStatus {
        // SAFETY: ABI contract.
        unsafe { stop_box::<D::Stream>(stream, err, |s| s.stop()) }
    }

    /// The function table of a metrics sink.
    pub fn metrics_fns<D: MetricsSink>() -> LkFns {
        LkFns {
            struct_size: std::mem::size_of::<LkFns>(),
            validate: Some(m_validate::<D>),
            init: Some(m_init::<D>),
            start: Some(m_start::<D>),
            write_logs: None,
            write_metrics: Some(m_write::<D>),
            flush: Some(m_flush::<D>),
            stop: Some(m_stop::<D>),
            shutdown: Some(shutdown::<D>),
        }
    }
}

/// Exports a [`LogDriver`] as this library's plugin: defines the
/// `lookout_plugin_v1` entry point.
#[macro_export]
macro_rules! export_log_driver {
    ($driver:ty) => {
        /// The lookout plugin entry point.
        ///
        /// # Safety
        /// Called by the lookout host after loading the library.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn lookout_plugin_v1(
            _host: *const $crate::abi::LkHost,
        ) -> *const $crate::abi::LkPlugin {
            static DESC: ::std::sync::OnceLock<$crate::__private::Descriptor> =
                ::std::sync::OnceLock::new();
            let r = ::std::panic::catch_unwind(|| {
                &DESC
                    .get_or_init(|| {
                        $crate::__private::descriptor(
                            $crate::__private::LK_KIND_LOG,
                            <$driver as $crate::LogDriver>::CAPS,
                            <$driver as $crate::LogDriver>::NAME,
                            <$driver as $crate::LogDriver>::VERSION,
                            $crate::__private::log_fns::<$driver>(),
                        )
                    })
                    .plugin as *const $crate::abi::LkPlugin
            });
            r.unwrap_or(::std::ptr::null())
        }
    };
}

/// Exports a [`MetricsSink`] as this library's plugin: defines the
/// `lookout_plugin_v1` entry point.
#[macro_export]
macro_rules! export_metrics_sink {
    ($sink:ty) => {
        /// The lookout plugin entry point.
        ///
        /// # Safety
        /// Called by the lookout host after loading the library.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn lookout_plugin_v1(
            _host: *const $crate::abi::LkHost,
        ) -> *const $crate::abi::LkPlugin {
            static DESC: ::std::sync::OnceLock<$crate::__private::Descriptor> =
                ::std::sync::OnceLock::new();
            let r = ::std::panic::catch_unwind(|| {
                &DESC
                    .get_or_init(|| {
                        $crate::__private::descriptor(
                            $crate::__private::LK_KIND_METRICS,
                            <$sink as $crate::MetricsSink>::CAPS,
                            <$sink as $crate::MetricsSink>::NAME,
                            <$sink as $crate::MetricsSink>::VERSION,
                            $crate::__private::metrics_fns::<$sink>(),
                        )
                    })
                    .plugin as *const $crate::abi::LkPlugin
            });
            r.unwrap_or(::std::ptr::null())
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_err_cuts_at_char_boundary() {
        let mut buf = [0u8; 4];
        let mut e = LkErrBuf {
            buf: buf.as_mut_ptr(),
            cap: buf.len(),
            len: 0,
        };
        // SAFETY: e describes `buf`.
        unsafe { write_err(&mut e, "aé中") };
        assert_eq!(&buf[..e.len], "aé".as_bytes());
    }

    #[test]
    fn options_last_value_wins_and_unknown_keys_are_named() {
        let kv = [
            LkKv {
                key: LkBytes::from_slice(b"max-size"),
                value: LkBytes::from_slice(b"1k"),
            },
            LkKv {
                key: LkBytes::from_slice(b"max-size"),
                value: LkBytes::from_slice(b"2k"),
            },
            LkKv {
                key: LkBytes::from_slice(b"bogus"),
                value: LkBytes::from_slice(b"x"),
            },
        ];
        let o = Options::from_kv(&kv);
        assert_eq!(o.get("max-size").as_deref(), Some("2k"));
        let e = o.check_known("json-file", &["max-size"]).unwrap_err();
        assert!(e.message.contains("bogus") && e.message.contains("json-file"));
    }
}
