//! lookout-core: the parts of the runtime shared by the shim and the daemon:
//! the plugin host, the log pipeline and the log reader, container isolation,
//! the container spec and the shim's control protocol.

pub mod container;
pub mod isolate;
pub mod logs;
pub mod plugin;
pub mod shim_proto;
pub mod spec;

/// The cgroups crate, for the shim and the daemon (limits, counters).
pub use lookout_cgroups as cgroups;
