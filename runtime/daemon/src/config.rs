//! The daemon's configuration: command-line flags merged with `daemon.json`
//! (Docker's keys), the way dockerd merges them: a setting given both as a
//! flag and in the file is an error naming both values, and a key the file
//! should not have is an error naming it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use serde_json::Value;

/// The default API socket.
pub const DEFAULT_HOST: &str = "unix:///run/lookout/lookout.sock";
/// The default data root.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/lookout";
/// The default configuration file (read only when it exists).
pub const DEFAULT_CONFIG_FILE: &str = "/etc/lookout/daemon.json";
/// The default cgroup parent of containers.
pub const DEFAULT_CGROUP_PARENT: &str = "/lookout";
/// The default log driver.
pub const DEFAULT_LOG_DRIVER: &str = "json-file";
/// The group given the socket when none is configured and it exists.
pub const DEFAULT_GROUP: &str = "lookout";

/// lookoutd's flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "lookoutd",
    version,
    about = "lookout's daemon: serves the Docker Engine API on a unix socket"
)]
pub struct Flags {
    /// Daemon socket to listen on (`unix:///path`); repeatable.
    #[arg(short = 'H', long = "host", value_name = "ADDRESS")]
    pub hosts: Vec<String>,
    /// Enable debug output.
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Root directory of persistent state (containers, images, plugins).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_ROOT)]
    pub data_root: PathBuf,
    /// Group for the unix socket (default: `lookout` when it exists, else root).
    #[arg(short = 'G', long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Default log driver for containers that name none.
    #[arg(long, value_name = "DRIVER", default_value = DEFAULT_LOG_DRIVER)]
    pub log_driver: String,
    /// Default log driver options, `key=value` (repeatable).
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opts: Vec<String>,
    /// Parent cgroup of the containers' cgroups.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CGROUP_PARENT)]
    pub cgroup_parent: String,
    /// Daemon configuration file (Docker's daemon.json keys).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_FILE)]
    pub config_file: PathBuf,
}

/// Where the API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A unix socket path.
    Unix(PathBuf),
}

/// The merged configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Sockets to listen on.
    pub hosts: Vec<ListenAddr>,
    /// Debug output.
    pub debug: bool,
    /// The data root.
    pub data_root: PathBuf,
    /// Socket group: `Some` when explicitly configured.
    pub group: Option<String>,
    /// Default log driver.
    pub log_driver: String,
    /// Default log options.
    pub log_opts: BTreeMap<String, String>,
    /// Containers' cgroup parent.
    pub cgroup_parent: String,
    /// The configuration file that was read, if any.
    pub config_file: Option<PathBuf>,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad flag syntax (clap's own message).
    #[error("{0}")]
    Flags(String),
    /// `--help` or `--version` was asked for: the text to print (not an error).
    #[error("{0}")]
    Info(String),
    /// The file could not be read.
    #[error("unable to configure the daemon with file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid or has bad values.
    #[error("unable to configure the daemon with file {}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A bad value.
    #[error("{0}")]
    Invalid(String),
}

/// Parses an `-H` address.
pub fn parse_host(s: &str) -> Result<ListenAddr, ConfigError> {
    if let Some(p) = s.strip_prefix("unix://") {
        if p.is_empty() || !p.starts_with('/') {
            return Err(ConfigError::Invalid(format!(
                "invalid host {s:?}: a unix socket address needs an absolute path (unix:///path)"
            )));
        }
        return Ok(ListenAddr::Unix(PathBuf::from(p)));
    }
    if s.starts_with("tcp://") {
        return Err(ConfigError::Invalid(format!(
            "invalid host {s:?}: TCP is not supported until TLS with verified client \
             certificates is implemented; listen on a unix socket (unix:///path)"
        )));
    }
    if s.starts_with('/') {
        return Ok(ListenAddr::Unix(PathBuf::from(s)));
    }
    Err(ConfigError::Invalid(format!(
        "invalid host {s:?}: only unix:///path addresses are supported"
    )))
}

fn parse_opts<'a>(
    items: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut m = BTreeMap::new();
    for it in items {
        let Some((k, v)) = it.split_once('=') else {
            return Err(ConfigError::Invalid(format!(
                "invalid log-opt {it:?}: expected key=value"
            )));
        };
        if k.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "invalid log-opt {it:?}: empty key"
            )));
        }
        m.insert(k.to_string(), v.to_string());
    }
    Ok(m)
}

const FILE_KEYS: &[&str] = &[
    "hosts",
    "debug",
    "data-root",
    "group",
    "log-driver",
    "log-opts",
    "cgroup-parent",
];

impl Config {
    /// Parses the process arguments and the configuration file.
    pub fn from_args<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Flags::command().try_get_matches_from(args).map_err(|e| {
            let text = e.render().to_string();
            match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ConfigError::Info(text)
                }
                _ => ConfigError::Flags(text),
            }
        })?;
        let flags =
            Flags::from_arg_matches(&matches).map_err(|e| ConfigError::Flags(e.to_string()))?;
        let explicit_file = matches.value_source("config_file") == Some(ValueSource::CommandLine);
        let file = match std::fs::read(&flags.config_file) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit_file => None,
            Err(source) => {
                return Err(ConfigError::Read {
                    path: flags.config_file.clone(),
                    source,
                });
            }
        };
        Self::merge(&flags, &matches, file.as_deref(), &flags.config_file)
    }

    fn merge(
        flags: &Flags,
        matches: &ArgMatches,
        file: Option<&[u8]>,
        path: &Path,
    ) -> Result<Config, ConfigError> {
        let file_err = |reason: String| ConfigError::File {
            path: path.to_path_buf(),
            reason,
        };
        let on_cli = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        let mut cfg = Config {
            hosts: Vec::new(),
            debug: flags.debug,
            data_root: flags.data_root.clone(),
            group: flags.group.clone(),
            log_driver: flags.log_driver.clone(),
            log_opts: parse_opts(flags.log_opts.iter().map(String::as_str))?,
            cgroup_parent: flags.cgroup_parent.clone(),
            config_file: None,
        };
        let mut hosts: Vec<String> = flags.hosts.clone();
        if let Some(bytes) = file {
            cfg.config_file = Some(path.to_path_buf());
            let v: Value = serde_json::from_slice(bytes).map_err(|e| file_err(e.to_string()))?;
            let Value::Object(obj) = v else {
                return Err(file_err("the file must hold a JSON object".into()));
            };
            let unknown: Vec<&str> = obj
                .keys()
                .map(String::as_str)
                .filter(|k| !FILE_KEYS.contains(k))
                .collect();
            if !unknown.is_empty() {
                return Err(file_err(format!(
                    "the following directives don't match any configuration option: {}",
                    unknown.join(", ")
                )));
            }
            let mut conflicts = Vec::new();
            let mut conflict = |key: &str, flag: String, file: &Value| {
                conflicts.push(format!("{key}: (from flag: {flag}, from file: {file})"));
            };
            let want_str = |key: &str, v: &Value| -> Result<String, ConfigError> {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| file_err(format!("{key} must be a string, got {v}")))
            };
            for (key, v) in &obj {
                match key.as_str() {
                    "hosts" => {
                        let Some(list) = v.as_array() else {
                            return Err(file_err(format!("hosts must be a list, got {v}")));
                        };
                        if on_cli("hosts") {
                            conflict("hosts", format!("{:?}", flags.hosts), v);
                        } else {
                            hosts = list
                                .iter()
                                .map(|h| want_str("hosts", h))
                                .collect::<Result<_, _>>()?;
                        }
                    }
                    "debug" => {
                        let Some(b) = v.as_bool() else {
                            return Err(file_err(format!("debug must be true or false, got {v}")));
                        };
                        if on_cli("debug") {
                            conflict("debug", flags.debug.to_string(), v);
                        } else {
                            cfg.debug = b;
                        }
                    }
                    "data-root" => {
                        let s = want_str(key, v)?;
                        if on_cli("data_root") {
                            conflict(key, flags.data_root.display().to_string(), v);
                        } else {
                            cfg.data_root = PathBuf::from(s);
                        }
                    }
                    "group" => {
                        let s = want_str(key, v)?;
                        if on_cli("group") {
                            conflict(key, flags.group.clone().unwrap_or_default(), v);
                        } else {
                            cfg.group = Some(s);
                        }
                    }
                    "log-driver" => {
                        let s = want_str(key, v)?;
                        if on_cli("log_driver") {
                            conflict(key, flags.log_driver.clone(), v);
                        } else {
                            cfg.log_driver = s;
                        }
                    }
                    "cgroup-parent" => {
                        let s = want_str(key, v)?;
                        if on_cli("cgroup_parent") {
                            conflict(key, flags.cgroup_parent.clone(), v);
                        } else {
                            cfg.cgroup_parent = s;
                        }
                    }
                    "log-opts" => {
                        let Some(o) = v.as_object() else {
                            return Err(file_err(format!("log-opts must be an object, got {v}")));
                        };
                        if on_cli("log_opts") {
                            conflict(key, flags.log_opts.join(","), v);
                        } else {
                            let mut m = BTreeMap::new();
                            for (k, val) in o {
                                m.insert(k.clone(), want_str(&format!("log-opts.{k}"), val)?);
                            }
                            cfg.log_opts = m;
                        }
                    }
                    _ => {}
                }
            }
            if !conflicts.is_empty() {
                return Err(file_err(format!(
                    "the following directives are specified both as a flag and in the \
                     configuration file: {}",
                    conflicts.join(", ")
                )));
            }
        }
        if hosts.is_empty() {
            hosts.push(DEFAULT_HOST.to_string());
        }
        cfg.hosts = hosts
            .iter()
            .map(|h| parse_host(h))
            .collect::<Result<_, _>>()?;
        if !cfg.data_root.is_absolute() {
            return Err(ConfigError::Invalid(format!(
                "invalid data-root {:?}: must be an absolute path",
                cfg.data_root
            )));
        }
        if !cfg.cgroup_parent.starts_with('/') || cfg.cgroup_parent.split('/').any(|c| c == "..") {
            return Err(ConfigError::Invalid(format!(
                "invalid cgroup-parent {:?}: must be an absolute cgroup path without '..'",
                cfg.cgroup_parent
            )));
        }
        if cfg.log_driver.is_empty() {
            return Err(ConfigError::Invalid("log-driver must not be empty".into()));
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], file: Option<&str>) -> Result<Config, ConfigError> {
        let mut all = vec!["lookoutd"];
        all.extend_from_slice(args);
        let m = Flags::command().try_get_matches_from(&all).unwrap();
        let f = Flags::from_arg_matches(&m).unwrap();
        Config::merge(&f, &m, file.map(str::as_bytes), Path::new("/x/daemon.json"))
    }

    #[test]
    fn defaults() {
        let c = parse(&[], None).unwrap();
        assert_eq!(
            c.hosts,
            vec![ListenAddr::Unix("/run/lookout/lookout.sock".into())]
        );
        assert_eq!(c.data_root, PathBuf::from(DEFAULT_DATA_ROOT));
        assert_eq!(c.log_driver, "json-file");
        assert_eq!(c.cgroup_parent, "/lookout");
    }

    #[test]
    fn file_values_apply() {
        let c = parse(
            &[],
            Some(r#"{"debug":true,"data-root":"/d","log-driver":"local","log-opts":{"max-size":"1m"},"hosts":["unix:///tmp/s.sock"]}"#),
        )
        .unwrap();
        assert!(c.debug);
        assert_eq!(c.data_root, PathBuf::from("/d"));
        assert_eq!(c.log_opts.get("max-size").map(String::as_str), Some("1m"));
        assert_eq!(c.hosts, vec![ListenAddr::Unix("/tmp/s.sock".into())]);
    }

    #[test]
    fn conflicts_and_unknown_keys_are_errors() {
        let e = parse(&["--debug"], Some(r#"{"debug":false}"#))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("specified both as a flag and in the configuration file"),
            "{e}"
        );
        assert!(
            e.contains("debug: (from flag: true, from file: false)"),
            "{e}"
        );
        let e = parse(&[], Some(r#"{"nope":1}"#)).unwrap_err().to_string();
        assert!(
            e.contains("don't match any configuration option: nope"),
            "{e}"
        );
        let e = parse(&[], Some("{")).unwrap_err().to_string();
        assert!(e.contains("/x/daemon.json"), "{e}");
    }

    #[test]
    fn tcp_is_refused() {
        let e = parse(&["-H", "tcp://0.0.0.0:2375"], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("TCP is not supported until TLS"), "{e}");
        let e = parse(&["--log-opt", "novalue"], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("novalue"), "{e}");
    }
}
