//! lookout-core: the parts of the runtime shared by the shim and the daemon:
//! the plugin host, the log pipeline and the log reader.

pub mod logs;
pub mod plugin;
