//! lookout-shim: runs a command with its stdout and stderr flowing through
//! the log pipeline and the chosen log drivers, and reads the logs back.
//!
//! Today the command runs as a host process; the runtime core's isolation
//! (namespaces, cgroups, pivot_root) plugs in at the spawn step.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use lookout_abi::{LK_STREAM_STDERR, LK_STREAM_STDOUT};
use lookout_core::logs::pipeline::Pipeline;
use lookout_core::logs::reader::{LogReader, ReadOptions, StopSignal, parse_rfc3339_nano};
use lookout_core::logs::setup::{self, DriverRequest};
use lookout_core::plugin::{ContainerInfo, PluginPath};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};

#[derive(Parser)]
#[command(
    name = "lookout-shim",
    version,
    about = "lookout's per-container log sidecar"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs a command, logging its output through the drivers; exits with
    /// the command's status.
    Run {
        /// Container id (names the log files).
        #[arg(long)]
        id: String,
        /// Directory for the driver's files.
        #[arg(long)]
        log_dir: PathBuf,
        /// Log driver (a plugin name).
        #[arg(long, default_value = "json-file")]
        log_driver: String,
        /// Driver options, `key=value` (repeatable).
        #[arg(long = "log-opt", value_name = "KEY=VALUE")]
        log_opts: Vec<String>,
        /// Extra plugin directory, searched first.
        #[arg(long)]
        plugin_dir: Option<PathBuf>,
        /// Print the pipeline's counters to stderr at the end.
        #[arg(long)]
        stats: bool,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Prints a container's json-file logs.
    Logs {
        /// Container id.
        #[arg(long)]
        id: String,
        /// Directory of the log files.
        #[arg(long)]
        log_dir: PathBuf,
        /// Only the last N records.
        #[arg(long)]
        tail: Option<usize>,
        /// Only records at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only records at or before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// Prefix each record with its time.
        #[arg(short = 't', long)]
        timestamps: bool,
        /// Show the attrs (labels, env, tag) of each record.
        #[arg(long)]
        details: bool,
    },
}

fn parse_opts(v: &[String]) -> Result<Vec<(String, String)>> {
    v.iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("invalid --log-opt {s:?}: expected key=value"))
        })
        .collect()
}

fn time_arg(s: &Option<String>) -> Result<Option<i64>> {
    s.as_ref()
        .map(|t| {
            parse_rfc3339_nano(t.as_bytes())
                .with_context(|| format!("invalid time {t:?}: expected RFC 3339"))
        })
        .transpose()
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Run {
            id,
            log_dir,
            log_driver,
            log_opts,
            plugin_dir,
            stats,
            command,
        } => {
            let mut path = PluginPath::standard(None);
            if let Some(d) = plugin_dir {
                let mut dirs = vec![d];
                dirs.extend(path.dirs().iter().cloned());
                path = PluginPath::new(dirs);
            }
            std::fs::create_dir_all(&log_dir)
                .with_context(|| format!("cannot create log dir {}", log_dir.display()))?;
            let meta = ContainerInfo {
                id,
                command: command.join(" "),
                log_dir: log_dir
                    .to_str()
                    .with_context(|| format!("log dir {} is not UTF-8", log_dir.display()))?
                    .to_string(),
                ..Default::default()
            };
            let req = DriverRequest {
                name: log_driver,
                opts: parse_opts(&log_opts)?,
            };
            let (host, specs) = setup::open(&path, &[req], &meta)?;
            let pipeline = Pipeline::start(specs, host.max_line_size)?;
            let mut child = Command::new(&command[0])
                .args(&command[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("cannot run {:?}", command[0]))?;
            let out: OwnedFd = child.stdout.take().context("stdout pipe")?.into();
            let err: OwnedFd = child.stderr.take().context("stderr pipe")?.into();
            pipeline.pump(vec![(out, LK_STREAM_STDOUT), (err, LK_STREAM_STDERR)])?;
            let status = child.wait()?;
            // The exit is reported only after every driver flushed.
            let report = pipeline.close();
            if stats {
                for d in &report.drivers {
                    eprintln!(
                        "driver {}: records {} delivered {} dropped {} bytes {} calls {} \
                         latency p50/p99 {}/{} µs{}",
                        d.name,
                        d.records_in,
                        d.delivered,
                        d.dropped,
                        d.delivered_bytes,
                        d.calls,
                        d.latency_ns[0] / 1000,
                        d.latency_ns[1] / 1000,
                        d.failure
                            .as_ref()
                            .map(|f| format!(" FAILED: {f}"))
                            .unwrap_or_default()
                    );
                }
            }
            for (d, e) in &report.close_errors {
                eprintln!("lookout-shim: driver {d}: {e}");
            }
            use std::os::unix::process::ExitStatusExt;
            std::process::exit(match (status.code(), status.signal()) {
                (Some(c), _) => c,
                (None, Some(s)) => 128 + s,
                _ => 1,
            });
        }
        Cmd::Logs {
            id,
            log_dir,
            tail,
            since,
            until,
            timestamps,
            details,
        } => {
            if !log_dir.is_dir() {
                bail!("no log directory {}", log_dir.display());
            }
            let opts = ReadOptions {
                tail,
                since: time_arg(&since)?,
                until: time_arg(&until)?,
                follow: false,
                details,
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut werr = None;
            LogReader::new(&log_dir, &id).read(&opts, &StopSignal::new(), |e| {
                let mut w = || -> std::io::Result<()> {
                    if timestamps {
                        write!(
                            out,
                            "{} ",
                            lookout_core::logs::reader::format_rfc3339_nano(e.time_unix_nano)
                        )?;
                    }
                    if details && !e.attrs.is_empty() {
                        let a: Vec<String> =
                            e.attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        write!(out, "{} ", a.join(","))?;
                    }
                    out.write_all(e.line)
                };
                match w() {
                    Ok(()) => true,
                    Err(x) => {
                        werr = Some(x);
                        false
                    }
                }
            })?;
            out.flush()?;
            if let Some(e) = werr.filter(|e| e.kind() != std::io::ErrorKind::BrokenPipe) {
                return Err(e.into());
            }
            Ok(())
        }
    }
}
