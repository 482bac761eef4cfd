//! Turning `--log-driver NAME --log-opt k=v…` into running driver streams.
//!
//! Everything is checked before anything starts: the plugin is found and its
//! descriptor checked, the host keys are parsed, and the driver validates the
//! rest; only then are instances initialised and streams started.

use super::options::HostLogOptions;
use super::pipeline::DriverSpec;
use crate::plugin::{ContainerInfo, Plugin, PluginError, PluginKind, PluginPath};
use std::sync::Arc;

/// One driver a container logs to, as the user asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverRequest {
    /// The driver name (`json-file`, `syslog`, …).
    pub name: String,
    /// Its log-opts, in the order given (host keys included).
    pub opts: Vec<(String, String)>,
}

impl DriverRequest {
    /// A request from a name and pairs.
    pub fn new(name: &str, opts: &[(&str, &str)]) -> Self {
        DriverRequest {
            name: name.to_string(),
            opts: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// A driver that passed every check and can be started.
#[derive(Debug)]
pub struct CheckedDriver {
    /// The loaded plugin.
    pub plugin: Arc<Plugin>,
    /// The host's share of the options.
    pub host: HostLogOptions,
    /// The driver's share.
    pub driver_opts: Vec<(String, String)>,
}

/// Finds, loads and validates one driver without starting anything.
pub fn check(path: &PluginPath, req: &DriverRequest) -> Result<CheckedDriver, PluginError> {
    let plugin = Plugin::find(path, PluginKind::Log, &req.name)?;
    let (host, driver_opts) = HostLogOptions::split(&req.opts)?;
    plugin.validate(&driver_opts)?;
    Ok(CheckedDriver {
        plugin,
        host,
        driver_opts,
    })
}

/// Checks every request, then starts a stream of each for `meta`. Returns
/// the host options of the first (the container's own) driver and the specs
/// to build the pipeline from.
pub fn open(
    path: &PluginPath,
    reqs: &[DriverRequest],
    meta: &ContainerInfo,
) -> Result<(HostLogOptions, Vec<DriverSpec>), PluginError> {
    let checked = reqs
        .iter()
        .map(|r| check(path, r))
        .collect::<Result<Vec<_>, _>>()?;
    let host = checked.first().map(|c| c.host.clone()).unwrap_or_default();
    let mut specs = Vec::with_capacity(checked.len());
    for c in checked {
        let inst = c.plugin.init(&c.driver_opts)?;
        let stream = inst.start(Some(meta))?;
        specs.push(DriverSpec {
            name: c.plugin.name().to_string(),
            mode: c.host.mode,
            sink: Box::new(stream),
        });
    }
    Ok((host, specs))
}
