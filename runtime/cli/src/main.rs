//! lookout: the command-line client. It speaks the Docker Engine API to
//! `lookoutd` (or any Docker-compatible daemon) through bollard, with the
//! docker CLI's flags, output and exit codes.

mod client;
mod commands;
mod format;
mod template;
mod timeparse;

use clap::{Parser, Subcommand};

use crate::client::{Client, describe_error, resolve_host};
use crate::commands::*;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "lookout",
    version,
    about = "A container engine built for observability (Docker Engine API client)"
)]
struct Cli {
    /// Daemon socket to connect to (unix:///path or tcp://host:port).
    #[arg(short = 'H', long = "host", global = true, value_name = "HOST")]
    host: Option<String>,

    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Create and run a new container from an image
    Run(Box<run::RunArgs>),
    /// List containers
    Ps(ps::PsArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Return low-level information on containers or images
    Inspect(inspect::InspectArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// Stop one or more running containers
    Stop(lifecycle::StopArgs),
    /// Kill one or more running containers
    Kill(lifecycle::KillArgs),
    /// Remove one or more containers
    Rm(lifecycle::RmArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(lifecycle::WaitArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(images::ImportArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Remove one or more images
    Rmi(images::RmiArgs),
    /// Show the lookout version information
    Version(system::VersionArgs),
    /// Display system-wide information
    Info(system::InfoArgs),
}

/// Runs `command` against the daemon at `host`.
async fn dispatch(host: &str, command: &Command) -> anyhow::Result<i32> {
    let connect = || Client::connect(host);
    match command {
        Command::Run(a) => run::run(&connect().await?, a).await,
        Command::Ps(a) => ps::ps(&connect().await?, a).await,
        Command::Logs(a) => logs::logs(&connect().await?, a).await,
        Command::Inspect(a) => inspect::inspect(&connect().await?, a).await,
        Command::Stats(a) => stats::stats(&connect().await?, a).await,
        Command::Stop(a) => lifecycle::stop(&connect().await?, a).await,
        Command::Kill(a) => lifecycle::kill(&connect().await?, a).await,
        Command::Rm(a) => lifecycle::rm(&connect().await?, a).await,
        Command::Wait(a) => lifecycle::wait(&connect().await?, a).await,
        Command::Import(a) => images::import(&connect().await?, a).await,
        Command::Images(a) => images::images(&connect().await?, a).await,
        Command::Rmi(a) => images::rmi(&connect().await?, a).await,
        // The client half prints even when the daemon cannot be reached.
        Command::Version(a) => system::version(host, a).await,
        Command::Info(a) => system::info(&connect().await?, a).await,
    }
}

fn main() {
    // Die quietly by SIGPIPE when our reader goes away (`lookout logs -f |
    // head`), as Go programs such as the docker CLI do, instead of failing
    // writes.
    // SAFETY: resetting a signal's disposition to its default has no
    // preconditions; no handler of ours is replaced (the async runtime does
    // not exist yet).
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let host = resolve_host(cli.host.as_deref(), |k| std::env::var(k).ok());
    let is_run = matches!(cli.command, Command::Run(_));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lookout: starting the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(dispatch(&host, &cli.command));
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            let msg = describe_error(&e, &host);
            if e.chain().any(|c| c.is::<template::TemplateParseError>()) {
                eprintln!("{msg}");
                64
            } else if is_run {
                eprintln!("{}", run::report(&msg));
                125
            } else {
                eprintln!("{msg}");
                1
            }
        }
    };
    // Drop the runtime (and any leftover stdin/attach tasks) without waiting.
    runtime.shutdown_background();
    let _ = std::io::Write::flush(&mut std::io::stdout());
    std::process::exit(code);
}
