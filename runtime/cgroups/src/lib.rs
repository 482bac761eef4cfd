//! lookout's cgroups: one container's limits, counters, freezer, kill and
//! OOM detection on cgroup v1, on the hybrid layout (v1 controllers plus a
//! cgroup2 mount) and on v2.
//!
//! * [`Layout`] detects the host's layout from `/proc/self/mountinfo`.
//! * [`Cgroup`] creates a container's cgroup under a caller-chosen path in
//!   every hierarchy, applies [`Resources`] (a control the kernel does not
//!   offer is refused with an error naming it, never ignored), adds
//!   processes, freezes/thaws, kills everything, reports OOM kills and
//!   removes every directory it made.
//! * [`Counters`] reads CPU, memory, OOM, pids and block I/O counters through
//!   the [`CgroupFs`] trait, so the parsers run on fixture trees.
//! * [`units`] parses the strings users type (`32m`, `0.5`, `0-2,4`).
//! * [`devices`] holds the device allow-list ([`DeviceRule`],
//!   [`devices::default_rules`]) that [`Cgroup::set_devices`] applies: v1
//!   `devices.allow`/`devices.deny`, or on v2 an eBPF device filter.
//!
//! Every kernel file is read and written directly, not through cgroups-rs
//! 0.5: its v2 hierarchy is fixed at `/sys/fs/cgroup` (so it cannot drive the
//! hybrid layout's `unified` mount nor a fixture tree), its v1 discovery reads
//! `/proc/self/mountinfo` itself (no fixtures either), `Cgroup::apply` skips
//! resources whose controller is not mounted (a silently ignored limit), and
//! it pulls zbus and an async runtime (about 90 crates) into every binary
//! that links it, the shim included.
//!
//! Processes are signalled through `nix`. The only `unsafe` code is the
//! `bpf(2)` calls of the v2 device filter (`devices/bpf.rs`), through `libc`.
//!
//! ```no_run
//! use std::time::Duration;
//! use lookout_cgroups::{Cgroup, Layout, Resources, units};
//!
//! # fn main() -> Result<(), lookout_cgroups::CgroupError> {
//! let layout = Layout::detect()?;
//! let mut cg = Cgroup::create(&layout, "/lookout/0123456789ab")?;
//! cg.apply(&Resources {
//!     memory: Some(units::parse_memory("32m")?),
//!     nano_cpus: Some(units::parse_cpus("0.5")?),
//!     pids_limit: Some(20),
//!     ..Default::default()
//! })?;
//! cg.set_devices(&lookout_cgroups::devices::default_rules())?;
//! cg.add_process(4242)?;
//! // … the container runs …
//! let counters = cg.counters()?;
//! let oom_killed = cg.oom_killed()?;
//! cg.kill_all(Duration::from_secs(5))?;
//! cg.delete(Duration::from_secs(5))?;
//! # let _ = (counters, oom_killed);
//! # Ok(()) }
//! ```

mod cgroup;
pub mod counters;
pub mod devices;
mod error;
pub mod fs;
pub mod layout;
pub mod resources;
pub mod units;

pub use cgroup::{Cgroup, DEFAULT_TIMEOUT, FreezerState, V2_CONTROLLERS};
pub use counters::{Counters, OomStatus, StatDir, StatDirs};
pub use devices::{DeviceKind, DeviceRule};
pub use error::{CgroupError, Result};
pub use fs::{CgroupFs, HostFs};
pub use layout::{CgroupVersion, Layout, LayoutKind, UnifiedHierarchy, V1Hierarchy};
pub use resources::{Resources, blkio_weight_to_io_weight, shares_to_weight};
