//! The plugin host: finds plugins by driver name, loads them once and for
//! all, checks their descriptor, and wraps their function table in safe
//! types ([`Plugin`] → [`Instance`] → [`PluginStream`]).
//!
//! Plugins are loaded with `dlopen(RTLD_NOW | RTLD_LOCAL)` and never
//! unloaded: a stream's code must stay mapped as long as any pointer into the
//! library may exist, and unloading Rust cdylibs is unsafe in general.

mod ffi;
mod path;

pub use ffi::{Instance, Plugin, PluginStream, WriteOutcome};
/// What the host tells a plugin about a container: the SDK's own type, so
/// host and plugins share one definition.
pub use lookout_sdk::ContainerInfo;
pub use path::PluginPath;

use std::path::PathBuf;

/// The kind of a plugin, from its descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginKind {
    /// A log driver.
    Log,
    /// A metrics sink.
    Metrics,
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PluginKind::Log => "log driver",
            PluginKind::Metrics => "metrics sink",
        })
    }
}

/// Everything that can go wrong finding, loading and driving a plugin. Each
/// message names the library (or the driver) and the reason.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The name cannot be a plugin name (empty, a path, odd characters).
    #[error("invalid {kind} name {name:?}: use letters, digits, '-', '_' and '.'")]
    InvalidName {
        /// What was asked for.
        kind: PluginKind,
        /// The bad name.
        name: String,
    },
    /// No library for this name in any directory of the plugin path.
    #[error("{kind} {name:?} not found: looked for {candidates} in {searched}")]
    NotFound {
        /// What was asked for.
        kind: PluginKind,
        /// The name.
        name: String,
        /// File names tried in each directory.
        candidates: String,
        /// The directories, in order.
        searched: String,
    },
    /// `dlopen` refused the file.
    #[error("{path}: cannot load plugin (not a shared object for this system?): {reason}")]
    Load {
        /// The library.
        path: PathBuf,
        /// dlerror's text.
        reason: String,
    },
    /// The library has no `lookout_plugin_v1`.
    #[error("{path}: not a lookout plugin: missing symbol {symbol}: {reason}")]
    MissingSymbol {
        /// The library.
        path: PathBuf,
        /// The symbol looked for.
        symbol: &'static str,
        /// dlerror's text.
        reason: String,
    },
    /// The plugin was built against an ABI this host cannot drive.
    #[error(
        "{path}: plugin {name:?} was built for plugin ABI {plugin_major}.{plugin_minor}, \
         this host speaks ABI {host_major}.{host_minor} (needs the same major and a minor \
         no newer than the host's)"
    )]
    AbiMismatch {
        /// The library.
        path: PathBuf,
        /// The plugin's name.
        name: String,
        /// The plugin's major.
        plugin_major: u16,
        /// The plugin's minor.
        plugin_minor: u16,
        /// The host's major.
        host_major: u16,
        /// The host's minor.
        host_minor: u16,
    },
    /// The descriptor or function table is malformed.
    #[error("{path}: invalid plugin descriptor: {reason}")]
    BadDescriptor {
        /// The library.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The plugin is of another kind than asked for.
    #[error("{path}: plugin {name:?} is a {found}, not a {expected}")]
    WrongKind {
        /// The library.
        path: PathBuf,
        /// Its name.
        name: String,
        /// Its kind.
        found: PluginKind,
        /// The kind asked for.
        expected: PluginKind,
    },
    /// The descriptor's name is not the one the file was found under.
    #[error("{path}: plugin calls itself {found:?}, expected {expected:?}")]
    NameMismatch {
        /// The library.
        path: PathBuf,
        /// Name in the descriptor.
        found: String,
        /// Name asked for.
        expected: String,
    },
    /// A host-consumed option has a bad value.
    #[error("invalid log-opt {key}={value:?}: {reason}")]
    HostOption {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Why it is wrong.
        reason: String,
    },
    /// The plugin refused a call (validate, init, start, stop…).
    #[error("{driver}: {call} failed: {message}")]
    Call {
        /// The plugin's name.
        driver: String,
        /// Which call.
        call: &'static str,
        /// The plugin's message.
        message: String,
    },
}
