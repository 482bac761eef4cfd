//! The lookout plugin ABI: C-layout types shared by the host (`lookout-core`)
//! and every plugin, whatever language it is written in.
//!
//! This crate has no dependencies and no behaviour. `sdk/include/lookout_plugin.h`
//! declares the same types for C authors; a test compiles the header and
//! checks that every size and field offset matches this file.
//!
//! # Shape
//!
//! A plugin library exports one symbol, [`ENTRY_SYMBOL`]
//! (`lookout_plugin_v1`), of type [`LkEntryFn`]. It returns a pointer to a
//! static [`LkPlugin`] descriptor that lives as long as the library (the host
//! never unloads a plugin). The descriptor names the plugin, its kind and its
//! function table [`LkFns`].
//!
//! Both structures begin with `struct_size` and only ever grow at the end: a
//! host reads a field only when `struct_size` says it is there.
//!
//! # Memory
//!
//! Everything that crosses the boundary is borrowed: [`LkBytes`] slices point
//! into memory owned by the caller and are valid only for the duration of the
//! call. Whoever allocates frees: instances and streams are allocated by the
//! plugin and freed by the plugin in `shutdown` and `stop`; error messages are
//! copied into a buffer the host owns ([`LkErrBuf`]).
#![no_std]

use core::ffi::{c_char, c_void};

/// Major version of this ABI. A host loads a plugin only when the majors are
/// equal.
pub const ABI_MAJOR: u16 = 1;
/// Minor version of this ABI. A host accepts a plugin whose minor is at most
/// its own.
pub const ABI_MINOR: u16 = 0;

/// Name of the one symbol every plugin exports (major version in the name).
pub const ENTRY_SYMBOL: &str = "lookout_plugin_v1";

/// The entry point's type: called once, right after `dlopen`.
///
/// `host` is valid for the life of the process. The returned descriptor must
/// stay valid for the life of the process too (a `static`).
pub type LkEntryFn = unsafe extern "C" fn(host: *const LkHost) -> *const LkPlugin;

/// Outcome of every fallible call.
pub type LkStatus = u32;
/// Everything was done.
pub const LK_OK: LkStatus = 0;
/// A transient failure (a receiver down, a full disk): the host retries the
/// records from `*written` after a back-off.
pub const LK_RETRY: LkStatus = 1;
/// The records from `*written` on were dropped by the plugin; the host counts
/// them as dropped and goes on.
pub const LK_DROP: LkStatus = 2;
/// The plugin cannot go on: the host disables this stream, counts everything
/// sent to it from now on as dropped and reports the message.
pub const LK_FATAL: LkStatus = 3;

/// What a plugin does.
pub type LkKind = u32;
/// A log driver: receives container output records.
pub const LK_KIND_LOG: LkKind = 1;
/// A metrics sink: receives samples of container and engine counters.
pub const LK_KIND_METRICS: LkKind = 2;

/// Capability bit: the driver understands partial records and keeps their
/// metadata (without it the host still sends partial chunks, flagged).
pub const LK_CAP_PARTIAL_METADATA: u64 = 1 << 0;
/// Capability bit: the driver writes files the host's reader can read back
/// (json-file, local), so no dual-logging cache is needed.
pub const LK_CAP_READABLE: u64 = 1 << 1;

/// Stream a record came from: the container's standard input (when input is
/// recorded).
pub const LK_STREAM_STDIN: u32 = 0;
/// Stream a record came from: standard output.
pub const LK_STREAM_STDOUT: u32 = 1;
/// Stream a record came from: standard error.
pub const LK_STREAM_STDERR: u32 = 2;

/// Record flag: this record is one chunk of a line longer than the host's
/// `max-line-size`. (Output that ends without a newline at end of file is a
/// complete record without a newline, and is not flagged.)
pub const LK_REC_PARTIAL: u32 = 1 << 0;
/// Record flag: with [`LK_REC_PARTIAL`], this is the last chunk of the line.
pub const LK_REC_PARTIAL_LAST: u32 = 1 << 1;

/// Metric sample kind: a monotonically increasing counter.
pub const LK_METRIC_COUNTER: u32 = 1;
/// Metric sample kind: a value that goes up and down.
pub const LK_METRIC_GAUGE: u32 = 2;

/// A borrowed run of bytes. Not NUL-terminated; not necessarily UTF-8.
/// `ptr` may be null only when `len` is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LkBytes {
    /// First byte.
    pub ptr: *const u8,
    /// Number of bytes.
    pub len: usize,
}

impl LkBytes {
    /// The empty slice.
    pub const EMPTY: LkBytes = LkBytes {
        ptr: core::ptr::null(),
        len: 0,
    };

    /// Borrows a Rust slice. The result is valid while `s` is.
    pub const fn from_slice(s: &[u8]) -> LkBytes {
        LkBytes {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Views the bytes as a Rust slice.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that stay valid and unchanged
    /// for `'a` (or `len` must be 0).
    pub unsafe fn as_slice<'a>(self) -> &'a [u8] {
        if self.len == 0 || self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: the caller guarantees `ptr` addresses `len` valid bytes for 'a.
            unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

/// A borrowed key/value pair (log-opts, labels, environment, metric labels).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LkKv {
    /// The key.
    pub key: LkBytes,
    /// The value.
    pub value: LkBytes,
}

/// A host-owned buffer into which a plugin copies an error message.
///
/// The plugin writes at most `cap` bytes at `buf` and sets `len`; a longer
/// message is cut (at a UTF-8 boundary by the SDK).
#[repr(C)]
#[derive(Debug)]
pub struct LkErrBuf {
    /// Start of the buffer.
    pub buf: *mut u8,
    /// Its capacity.
    pub cap: usize,
    /// Bytes written by the plugin.
    pub len: usize,
}

/// One log record: a line (with its newline when it had one) or a chunk of a
/// long line.
///
/// Arrays of records are passed to `write_logs`; the line bytes point into
/// host memory valid only during that call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LkLogRecord {
    /// The bytes, including the line's own `\n` when it had one. Invalid
    /// UTF-8, NUL, `\r` and escape sequences are passed through untouched.
    pub line: LkBytes,
    /// When the host read the bytes (for chunks of one line: when it read
    /// the first chunk), nanoseconds since the Unix epoch, UTC.
    pub time_unix_nano: i64,
    /// One of the `LK_STREAM_*` values.
    pub stream: u32,
    /// `LK_REC_*` flags.
    pub flags: u32,
    /// Identifies the line a partial chunk belongs to (unique per container
    /// stream); 0 when not partial.
    pub partial_id: u64,
    /// 1-based position of a partial chunk within its line; 0 when not
    /// partial.
    pub partial_ordinal: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// One metric sample.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LkMetricSample {
    /// Metric name, e.g. `container_cpu_usage_seconds_total`.
    pub name: LkBytes,
    /// One-line help text (may be empty).
    pub help: LkBytes,
    /// Unit, e.g. `s` or `By` (may be empty).
    pub unit: LkBytes,
    /// `LK_METRIC_COUNTER` or `LK_METRIC_GAUGE`.
    pub kind: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// The value.
    pub value: f64,
    /// When the value was read, nanoseconds since the Unix epoch.
    pub time_unix_nano: i64,
    /// Labels (container id, name, image, …).
    pub labels: *const LkKv,
    /// Number of labels.
    pub n_labels: usize,
}

/// What the host tells a log stream about its container.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LkContainerInfo {
    /// Size of this structure as the host knows it.
    pub struct_size: usize,
    /// Full container id (64 hex characters).
    pub id: LkBytes,
    /// Container name, without the leading `/`.
    pub name: LkBytes,
    /// Full image id (`sha256:…`).
    pub image_id: LkBytes,
    /// Image name as the user gave it.
    pub image_name: LkBytes,
    /// Command line: entrypoint and arguments joined by spaces.
    pub command: LkBytes,
    /// The container's hostname.
    pub hostname: LkBytes,
    /// Name of the engine (the daemon's hostname).
    pub daemon_name: LkBytes,
    /// Directory the driver may write its files to (created by the host).
    pub log_dir: LkBytes,
    /// Container creation time, nanoseconds since the Unix epoch.
    pub created_unix_nano: i64,
    /// Container labels.
    pub labels: *const LkKv,
    /// Number of labels.
    pub n_labels: usize,
    /// Container environment, split at the first `=`.
    pub env: *const LkKv,
    /// Number of environment entries.
    pub n_env: usize,
}

/// A message severity for [`LkHost::log`].
pub type LkLogLevel = u32;
/// Error severity.
pub const LK_LEVEL_ERROR: LkLogLevel = 1;
/// Warning severity.
pub const LK_LEVEL_WARN: LkLogLevel = 2;
/// Informational severity.
pub const LK_LEVEL_INFO: LkLogLevel = 3;
/// Debug severity.
pub const LK_LEVEL_DEBUG: LkLogLevel = 4;

/// What the host offers a plugin.
#[repr(C)]
#[derive(Debug)]
pub struct LkHost {
    /// Size of this structure as the host knows it.
    pub struct_size: usize,
    /// The host's ABI major version.
    pub abi_major: u16,
    /// The host's ABI minor version.
    pub abi_minor: u16,
    /// Reserved, zero.
    pub reserved: u32,
    /// Host name and version, e.g. `lookout 0.1.0`.
    pub host_version: LkBytes,
    /// Writes a diagnostic message to the host's own log (may be null).
    pub log: Option<unsafe extern "C" fn(ctx: *mut c_void, level: LkLogLevel, msg: LkBytes)>,
    /// First argument of `log`.
    pub log_ctx: *mut c_void,
}

/// The plugin descriptor returned by the entry point.
#[repr(C)]
#[derive(Debug)]
pub struct LkPlugin {
    /// Size of this structure as the plugin knows it.
    pub struct_size: usize,
    /// ABI major version the plugin was built against.
    pub abi_major: u16,
    /// ABI minor version the plugin was built against.
    pub abi_minor: u16,
    /// `LK_KIND_LOG` or `LK_KIND_METRICS`.
    pub kind: LkKind,
    /// `LK_CAP_*` bits.
    pub caps: u64,
    /// Driver name users type in `--log-driver` (NUL-terminated, static).
    pub name: *const c_char,
    /// Plugin version (NUL-terminated, static).
    pub version: *const c_char,
    /// Free-form build information (NUL-terminated, static; may be null).
    pub build_info: *const c_char,
    /// The function table (static).
    pub fns: *const LkFns,
}

/// Validates options without side effects. Unknown keys are an error naming
/// the key.
pub type LkValidateFn =
    unsafe extern "C" fn(opts: *const LkKv, n_opts: usize, err: *mut LkErrBuf) -> LkStatus;
/// Creates an instance from validated options; on `LK_OK` stores it in `*out`.
pub type LkInitFn = unsafe extern "C" fn(
    host: *const LkHost,
    opts: *const LkKv,
    n_opts: usize,
    out: *mut *mut c_void,
    err: *mut LkErrBuf,
) -> LkStatus;
/// Starts a stream for one container (log drivers) or for the engine
/// (metrics sinks, where `info` may be null); on `LK_OK` stores it in `*out`.
pub type LkStartFn = unsafe extern "C" fn(
    instance: *mut c_void,
    info: *const LkContainerInfo,
    out: *mut *mut c_void,
    err: *mut LkErrBuf,
) -> LkStatus;
/// Writes `n` records. `*written` is set to how many were fully handled
/// (all `n` on `LK_OK`).
pub type LkWriteLogsFn = unsafe extern "C" fn(
    stream: *mut c_void,
    records: *const LkLogRecord,
    n: usize,
    written: *mut usize,
    err: *mut LkErrBuf,
) -> LkStatus;
/// Writes `n` metric samples; `*written` as for [`LkWriteLogsFn`].
pub type LkWriteMetricsFn = unsafe extern "C" fn(
    stream: *mut c_void,
    samples: *const LkMetricSample,
    n: usize,
    written: *mut usize,
    err: *mut LkErrBuf,
) -> LkStatus;
/// Makes everything written so far durable or delivered.
pub type LkFlushFn = unsafe extern "C" fn(stream: *mut c_void, err: *mut LkErrBuf) -> LkStatus;
/// Drains, closes and frees a stream. The stream pointer is invalid after
/// this call, whatever it returns.
pub type LkStopFn = unsafe extern "C" fn(stream: *mut c_void, err: *mut LkErrBuf) -> LkStatus;
/// Frees an instance. Called only after every stream of it was stopped.
pub type LkShutdownFn = unsafe extern "C" fn(instance: *mut c_void);

/// The function table. Each entry may be null when the plugin's kind does not
/// use it (`write_metrics` in a log driver, `write_logs` in a metrics sink).
#[repr(C)]
#[derive(Debug)]
pub struct LkFns {
    /// Size of this structure as the plugin knows it.
    pub struct_size: usize,
    /// See [`LkValidateFn`].
    pub validate: Option<LkValidateFn>,
    /// See [`LkInitFn`].
    pub init: Option<LkInitFn>,
    /// See [`LkStartFn`].
    pub start: Option<LkStartFn>,
    /// See [`LkWriteLogsFn`].
    pub write_logs: Option<LkWriteLogsFn>,
    /// See [`LkWriteMetricsFn`].
    pub write_metrics: Option<LkWriteMetricsFn>,
    /// See [`LkFlushFn`].
    pub flush: Option<LkFlushFn>,
    /// See [`LkStopFn`].
    pub stop: Option<LkStopFn>,
    /// See [`LkShutdownFn`].
    pub shutdown: Option<LkShutdownFn>,
}
