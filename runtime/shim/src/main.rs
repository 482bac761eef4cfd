//! lookout-shim: the per-container sidecar.
//!
//! * `start --state-dir DIR` (used by lookoutd): detaches, creates the
//!   container described by `DIR/config.json`, owns its stdout and stderr,
//!   runs the log pipeline, serves the control socket and writes
//!   `exit.json` once every driver has flushed. Prints the container's pid
//!   when it runs, or fails with the reason.
//! * `run --rootfs DIR -- CMD…`: the daemonless entry point; starts a
//!   container the same way, waits and exits with its code.
//! * `logs`: reads a container's logs back.

mod attach;
mod control;
mod logs_cmd;
mod standalone;
mod supervise;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "lookout-shim",
    version,
    about = "lookout's per-container sidecar: owns the container's output and runs its log pipeline"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Starts the container described by STATE_DIR/config.json under a
    /// detached shim; prints its pid once it runs.
    Start {
        /// The container's state directory.
        #[arg(long)]
        state_dir: PathBuf,
        /// Extra plugin directory, searched first (repeatable).
        #[arg(long)]
        plugin_dir: Vec<PathBuf>,
    },
    /// Runs a container from a root filesystem directory without a daemon,
    /// waits, and exits with its exit code.
    Run(Box<standalone::RunArgs>),
    /// Prints a container's logs.
    Logs {
        /// Container id.
        #[arg(long)]
        id: String,
        /// Directory of the log files (the container's state directory).
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

fn main() -> Result<()> {
    supervise::T0.get_or_init(lookout_core::logs::pipeline::monotonic_ns);
    match Cli::parse().cmd {
        Cmd::Start {
            state_dir,
            plugin_dir,
        } => {
            let pid =
                supervise::start_detached(&state_dir, &plugin_dir, supervise::Detach::DoubleFork)?;
            println!("{pid}");
            Ok(())
        }
        Cmd::Run(args) => {
            let code = standalone::run(*args)?;
            std::process::exit(code)
        }
        Cmd::Logs {
            id,
            log_dir,
            tail,
            since,
            until,
            timestamps,
            details,
        } => logs_cmd::logs(id, log_dir, tail, since, until, timestamps, details),
    }
}
