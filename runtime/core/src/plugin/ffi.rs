//! Loading a library and calling through its function table.

use super::{PluginError, PluginKind, PluginPath};
use lookout_abi::{
    ABI_MAJOR, ABI_MINOR, ENTRY_SYMBOL, LK_DROP, LK_FATAL, LK_KIND_LOG, LK_KIND_METRICS, LK_OK,
    LK_RETRY, LkBytes, LkContainerInfo, LkEntryFn, LkErrBuf, LkFns, LkHost, LkKv, LkLogRecord,
    LkPlugin, LkStatus,
};
use lookout_sdk::ContainerInfo;
use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_void};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Capacity of the buffer a plugin copies its error message into.
const ERR_CAP: usize = 4096;

fn kvs(pairs: &[(String, String)]) -> Vec<LkKv> {
    pairs
        .iter()
        .map(|(k, v)| LkKv {
            key: LkBytes::from_slice(k.as_bytes()),
            value: LkBytes::from_slice(v.as_bytes()),
        })
        .collect()
}

struct HostCell(LkHost);
// SAFETY: the host descriptor is immutable and its callback is thread-safe.
unsafe impl Sync for HostCell {}
// SAFETY: as above.
unsafe impl Send for HostCell {}

unsafe extern "C" fn host_log(_ctx: *mut c_void, level: u32, msg: LkBytes) {
    // SAFETY: the plugin passes a slice valid for this call.
    let m = String::from_utf8_lossy(unsafe { msg.as_slice() });
    let lvl = match level {
        lookout_abi::LK_LEVEL_ERROR => "error",
        lookout_abi::LK_LEVEL_WARN => "warning",
        lookout_abi::LK_LEVEL_INFO => "info",
        _ => "debug",
    };
    eprintln!("lookout plugin {lvl}: {m}");
}

fn host() -> &'static LkHost {
    static HOST: OnceLock<HostCell> = OnceLock::new();
    static VERSION: &str = concat!("lookout ", env!("CARGO_PKG_VERSION"));
    &HOST
        .get_or_init(|| {
            HostCell(LkHost {
                struct_size: std::mem::size_of::<LkHost>(),
                abi_major: ABI_MAJOR,
                abi_minor: ABI_MINOR,
                reserved: 0,
                host_version: LkBytes::from_slice(VERSION.as_bytes()),
                log: Some(host_log),
                log_ctx: std::ptr::null_mut(),
            })
        })
        .0
}

/// A loaded, checked plugin library. Loaded once per path per process and
/// never unloaded.
#[derive(Debug)]
pub struct Plugin {
    path: PathBuf,
    name: String,
    version: String,
    build_info: String,
    kind: PluginKind,
    caps: u64,
    fns: LkFns,
}

// SAFETY: LkFns holds only function pointers into a library that stays
// loaded for the life of the process.
unsafe impl Send for Plugin {}
// SAFETY: as above; the table is never mutated.
unsafe impl Sync for Plugin {}

fn cstr(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the descriptor promises NUL-terminated static strings; the
    // library is never unloaded.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<Plugin>>> {
    static R: OnceLock<Mutex<HashMap<PathBuf, Arc<Plugin>>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

impl Plugin {
    /// Finds `name` in `path` and loads it, checking that it is a plugin of
    /// `kind` called `name`.
    pub fn find(
        path: &PluginPath,
        kind: PluginKind,
        name: &str,
    ) -> Result<Arc<Plugin>, PluginError> {
        let file = path.find(kind, name)?;
        let p = Plugin::load(&file)?;
        if p.kind != kind {
            return Err(PluginError::WrongKind {
                path: file,
                name: p.name.clone(),
                found: p.kind,
                expected: kind,
            });
        }
        if p.name != name {
            return Err(PluginError::NameMismatch {
                path: file,
                found: p.name.clone(),
                expected: name.to_string(),
            });
        }
        Ok(p)
    }

    /// Loads the library at `file` (once per process) and checks its
    /// descriptor.
    pub fn load(file: &Path) -> Result<Arc<Plugin>, PluginError> {
        let key = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = reg.get(&key) {
            return Ok(p.clone());
        }
        let p = Arc::new(Self::open(file)?);
        reg.insert(key, p.clone());
        Ok(p)
    }

    fn open(file: &Path) -> Result<Plugin, PluginError> {
        use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
        let path = file.to_path_buf();
        // SAFETY: loading a library runs its initialisers; plugins are code the
        // operator chose to install in a plugin directory, which is the trust
        // boundary of every dlopen-based plugin system.
        let lib = unsafe { Library::open(Some(file), RTLD_NOW | RTLD_LOCAL) }.map_err(|e| {
            PluginError::Load {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        // Never unload: leak the handle.
        let lib: &'static Library = Box::leak(Box::new(lib));
        // SAFETY: the symbol's type is fixed by the ABI (LkEntryFn).
        let entry = unsafe { lib.get::<LkEntryFn>(ENTRY_SYMBOL.as_bytes()) }.map_err(|e| {
            PluginError::MissingSymbol {
                path: path.clone(),
                symbol: ENTRY_SYMBOL,
                reason: e.to_string(),
            }
        })?;
        let bad = |reason: String| PluginError::BadDescriptor {
            path: path.clone(),
            reason,
        };
        // SAFETY: calling the entry point with a host descriptor valid for the
        // process, as the ABI specifies.
        let desc: *const LkPlugin = unsafe { entry(host()) };
        if desc.is_null() {
            return Err(bad("lookout_plugin_v1 returned NULL".into()));
        }
        // The first three fields are fixed in every ABI version: read them
        // before trusting the rest of the layout.
        // SAFETY: non-null; struct_size/abi_major/abi_minor lead every
        // version of the descriptor.
        let (size, major, minor) =
            unsafe { ((*desc).struct_size, (*desc).abi_major, (*desc).abi_minor) };
        let name_hint = if size >= std::mem::offset_of!(LkPlugin, name) + 8 {
            // SAFETY: as above; the size covers the name pointer.
            cstr(unsafe { (*desc).name }).unwrap_or_default()
        } else {
            String::new()
        };
        if major != ABI_MAJOR || minor > ABI_MINOR {
            return Err(PluginError::AbiMismatch {
                path,
                name: name_hint,
                plugin_major: major,
                plugin_minor: minor,
                host_major: ABI_MAJOR,
                host_minor: ABI_MINOR,
            });
        }
        if size < std::mem::size_of::<LkPlugin>() {
            return Err(bad(format!(
                "descriptor struct_size {size} is smaller than {} (ABI {ABI_MAJOR}.{ABI_MINOR})",
                std::mem::size_of::<LkPlugin>()
            )));
        }
        // SAFETY: size checked; the descriptor is static in the library.
        let d = unsafe { &*desc };
        let name = cstr(d.name).ok_or_else(|| bad("name is NULL".into()))?;
        if name.is_empty() {
            return Err(bad("name is empty".into()));
        }
        let kind = match d.kind {
            LK_KIND_LOG => PluginKind::Log,
            LK_KIND_METRICS => PluginKind::Metrics,
            k => return Err(bad(format!("plugin {name:?}: unknown kind {k}"))),
        };
        if d.fns.is_null() {
            return Err(bad(format!("plugin {name:?}: function table is NULL")));
        }
        // SAFETY: non-null, static in the library; struct_size leads it.
        let fsize = unsafe { (*d.fns).struct_size };
        if fsize < std::mem::size_of::<LkFns>() {
            return Err(bad(format!(
                "plugin {name:?}: function table struct_size {fsize} is smaller than {}",
                std::mem::size_of::<LkFns>()
            )));
        }
        // SAFETY: size checked. Copy the table: it is plain function pointers.
        let t = unsafe { &*d.fns };
        let fns = LkFns {
            struct_size: t.struct_size,
            validate: t.validate,
            init: t.init,
            start: t.start,
            write_logs: t.write_logs,
            write_metrics: t.write_metrics,
            flush: t.flush,
            stop: t.stop,
            shutdown: t.shutdown,
        };
        let mut missing = Vec::new();
        for (present, what) in [
            (fns.validate.is_some(), "validate"),
            (fns.init.is_some(), "init"),
            (fns.start.is_some(), "start"),
            (fns.flush.is_some(), "flush"),
            (fns.stop.is_some(), "stop"),
            (fns.shutdown.is_some(), "shutdown"),
            (
                kind != PluginKind::Log || fns.write_logs.is_some(),
                "write_logs",
            ),
            (
                kind != PluginKind::Metrics || fns.write_metrics.is_some(),
                "write_metrics",
            ),
        ] {
            if !present {
                missing.push(what);
            }
        }
        if !missing.is_empty() {
            return Err(bad(format!(
                "plugin {name:?}: function table lacks {}",
                missing.join(", ")
            )));
        }
        Ok(Plugin {
            path,
            version: cstr(d.version).unwrap_or_default(),
            build_info: cstr(d.build_info).unwrap_or_default(),
            name,
            kind,
            caps: d.caps,
            fns,
        })
    }

    /// The library's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The plugin's version.
    pub fn version(&self) -> &str {
        &self.version
    }
    /// The plugin's build information.
    pub fn build_info(&self) -> &str {
        &self.build_info
    }
    /// Its kind.
    pub fn kind(&self) -> PluginKind {
        self.kind
    }
    /// Its `LK_CAP_*` bits.
    pub fn caps(&self) -> u64 {
        self.caps
    }

    fn call_err(&self, call: &'static str, status: LkStatus, e: &ErrBuf) -> PluginError {
        let mut message = e.message();
        if message.is_empty() {
            message = format!("status {status} without a message");
        }
        PluginError::Call {
            driver: self.name.clone(),
            call,
            message,
        }
    }

    /// Asks the plugin to check `opts` (the driver's own keys only).
    pub fn validate(&self, opts: &[(String, String)]) -> Result<(), PluginError> {
        let kv = kvs(opts);
        let mut e = ErrBuf::new();
        let f = self.fns.validate.expect("checked at load");
        // SAFETY: kv and the error buffer are valid for the call.
        let st = unsafe { f(kv.as_ptr(), kv.len(), e.raw()) };
        if st == LK_OK {
            Ok(())
        } else {
            Err(self.call_err("validate", st, &e))
        }
    }

    /// Creates an instance from `opts` (validated by the plugin first).
    pub fn init(self: &Arc<Self>, opts: &[(String, String)]) -> Result<Arc<Instance>, PluginError> {
        let kv = kvs(opts);
        let mut e = ErrBuf::new();
        let mut out: *mut c_void = std::ptr::null_mut();
        let f = self.fns.init.expect("checked at load");
        // SAFETY: every pointer is valid for the call; host() lives forever.
        let st = unsafe { f(host(), kv.as_ptr(), kv.len(), &mut out, e.raw()) };
        if st != LK_OK {
            return Err(self.call_err("init", st, &e));
        }
        if out.is_null() {
            return Err(PluginError::Call {
                driver: self.name.clone(),
                call: "init",
                message: "returned OK without an instance".into(),
            });
        }
        Ok(Arc::new(Instance {
            plugin: self.clone(),
            ptr: out,
        }))
    }
}

/// A plugin instance (one per configuration). Shut down when the last
/// stream and handle are gone.
#[derive(Debug)]
pub struct Instance {
    plugin: Arc<Plugin>,
    ptr: *mut c_void,
}

// SAFETY: the ABI requires instances to be Send + Sync.
unsafe impl Send for Instance {}
// SAFETY: as above.
unsafe impl Sync for Instance {}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(f) = self.plugin.fns.shutdown {
            // SAFETY: every stream holds an Arc to this instance, so none is
            // left; the pointer came from init.
            unsafe { f(self.ptr) }
        }
    }
}

impl Instance {
    /// The plugin it belongs to.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Opens a stream for one container (or, with `None`, for the engine).
    pub fn start(
        self: &Arc<Self>,
        meta: Option<&ContainerInfo>,
    ) -> Result<PluginStream, PluginError> {
        let mut e = ErrBuf::new();
        let mut out: *mut c_void = std::ptr::null_mut();
        let f = self.plugin.fns.start.expect("checked at load");
        let st = match meta {
            None => {
                // SAFETY: a null info is allowed by the ABI.
                unsafe { f(self.ptr, std::ptr::null(), &mut out, e.raw()) }
            }
            Some(m) => {
                let labels = kvs(&m.labels);
                let env = kvs(&m.env);
                let dir = m.log_dir.as_bytes();
                let b = |s: &str| LkBytes::from_slice(s.as_bytes());
                let info = LkContainerInfo {
                    struct_size: std::mem::size_of::<LkContainerInfo>(),
                    id: b(&m.id),
                    name: b(&m.name),
                    image_id: b(&m.image_id),
                    image_name: b(&m.image_name),
                    command: b(&m.command),
                    hostname: b(&m.hostname),
                    daemon_name: b(&m.daemon_name),
                    log_dir: LkBytes::from_slice(dir),
                    created_unix_nano: m.created_unix_nano,
                    labels: labels.as_ptr(),
                    n_labels: labels.len(),
                    env: env.as_ptr(),
                    n_env: env.len(),
                };
                // SAFETY: info and everything it points to outlive the call.
                unsafe { f(self.ptr, &info, &mut out, e.raw()) }
            }
        };
        if st != LK_OK {
            return Err(self.plugin.call_err("start", st, &e));
        }
        if out.is_null() {
            return Err(PluginError::Call {
                driver: self.plugin.name.clone(),
                call: "start",
                message: "returned OK without a stream".into(),
            });
        }
        Ok(PluginStream {
            inst: self.clone(),
            ptr: out,
            err: ErrBuf::new(),
        })
    }
}

/// How a write call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Everything was written.
    Ok,
    /// Transient failure after `written` records: retry the rest later.
    Retry {
        /// Records fully handled.
        written: usize,
        /// The plugin's message.
        message: String,
    },
    /// The records after `written` were dropped by the plugin.
    Drop {
        /// Records fully handled.
        written: usize,
        /// The plugin's message.
        message: String,
    },
    /// The stream cannot go on (includes a caught panic).
    Fatal {
        /// Records fully handled.
        written: usize,
        /// The plugin's message.
        message: String,
    },
}

/// An open stream. Not shareable between threads at once (the ABI promises
/// plugins one caller per stream), but movable to a driver thread.
#[derive(Debug)]
pub struct PluginStream {
    inst: Arc<Instance>,
    ptr: *mut c_void,
    err: ErrBuf,
}

// SAFETY: a stream is used by one thread at a time (&mut self methods).
unsafe impl Send for PluginStream {}

impl PluginStream {
    /// The plugin's name.
    pub fn driver(&self) -> &str {
        &self.inst.plugin.name
    }

    /// Writes log records.
    pub fn write_logs(&mut self, recs: &[LkLogRecord]) -> WriteOutcome {
        let Some(f) = self.inst.plugin.fns.write_logs else {
            return WriteOutcome::Fatal {
                written: 0,
                message: format!("{} is not a log driver", self.driver()),
            };
        };
        let mut written = 0usize;
        self.err.clear();
        // SAFETY: the records and their bytes are valid for the call; the
        // stream pointer came from start and is used by this thread only.
        let st = unsafe {
            f(
                self.ptr,
                recs.as_ptr(),
                recs.len(),
                &mut written,
                self.err.raw(),
            )
        };
        self.outcome(st, written.min(recs.len()))
    }

    /// Writes metric samples.
    pub fn write_metrics(&mut self, samples: &[lookout_abi::LkMetricSample]) -> WriteOutcome {
        let Some(f) = self.inst.plugin.fns.write_metrics else {
            return WriteOutcome::Fatal {
                written: 0,
                message: format!("{} is not a metrics sink", self.driver()),
            };
        };
        let mut written = 0usize;
        self.err.clear();
        // SAFETY: as for write_logs.
        let st = unsafe {
            f(
                self.ptr,
                samples.as_ptr(),
                samples.len(),
                &mut written,
                self.err.raw(),
            )
        };
        self.outcome(st, written.min(samples.len()))
    }

    fn outcome(&self, st: LkStatus, written: usize) -> WriteOutcome {
        let message = self.err.message();
        match st {
            LK_OK => WriteOutcome::Ok,
            LK_RETRY => WriteOutcome::Retry { written, message },
            LK_DROP => WriteOutcome::Drop { written, message },
            LK_FATAL => WriteOutcome::Fatal { written, message },
            other => WriteOutcome::Fatal {
                written,
                message: format!("unknown status {other}: {message}"),
            },
        }
    }

    /// Flushes the stream.
    pub fn flush(&mut self) -> Result<(), PluginError> {
        let f = self.inst.plugin.fns.flush.expect("checked at load");
        self.err.clear();
        // SAFETY: valid stream, this thread only.
        let st = unsafe { f(self.ptr, self.err.raw()) };
        if st == LK_OK {
            Ok(())
        } else {
            Err(self.inst.plugin.call_err("flush", st, &self.err))
        }
    }

    /// Drains, closes and frees the stream.
    pub fn stop(mut self) -> Result<(), PluginError> {
        // Drop then finds a null pointer and does nothing more.
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), PluginError> {
        if self.ptr.is_null() {
            return Ok(());
        }
        let f = self.inst.plugin.fns.stop.expect("checked at load");
        self.err.clear();
        let p = std::mem::replace(&mut self.ptr, std::ptr::null_mut());
        // SAFETY: valid stream, stopped exactly once (pointer nulled above).
        let st = unsafe { f(p, self.err.raw()) };
        if st == LK_OK {
            Ok(())
        } else {
            Err(self.inst.plugin.call_err("stop", st, &self.err))
        }
    }
}

impl Drop for PluginStream {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// A host-owned error buffer.
#[derive(Debug)]
struct ErrBuf {
    buf: Box<[u8]>,
    raw: LkErrBuf,
}

impl ErrBuf {
    fn new() -> Self {
        let mut buf = vec![0u8; ERR_CAP].into_boxed_slice();
        let raw = LkErrBuf {
            buf: buf.as_mut_ptr(),
            cap: buf.len(),
            len: 0,
        };
        ErrBuf { buf, raw }
    }
    fn clear(&mut self) {
        self.raw.len = 0;
    }
    fn raw(&mut self) -> *mut LkErrBuf {
        self.raw.buf = self.buf.as_mut_ptr();
        self.raw.cap = self.buf.len();
        &mut self.raw
    }
    fn message(&self) -> String {
        let n = self.raw.len.min(self.buf.len());
        String::from_utf8_lossy(&self.buf[..n]).into_owned()
    }
}
