//! `lookout logs`

use anyhow::{Context as _, Result};
use bollard::container::{LogOutput, LogsOptions};
use clap::Args;
use futures_util::StreamExt;

use crate::client::Client;
use crate::timeparse::{get_timestamp, local_offset, now};

/// `lookout logs`
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Seconds for `--since`/`--until` as the API query takes them (bollard 0.18
/// sends whole seconds; 0 means unset).
fn api_time(flag: &str, value: Option<&str>) -> Result<i64> {
    match value {
        None | Some("") => Ok(0),
        Some(v) => Ok(get_timestamp(v, now(), local_offset())
            .with_context(|| format!("invalid value for --{flag}"))?
            .secs),
    }
}

/// Runs `lookout logs`.
pub async fn logs(client: &Client, a: &LogsArgs) -> Result<i32> {
    let since = api_time("since", a.since.as_deref())?;
    let until = api_time("until", a.until.as_deref())?;
    let mut stream = client.docker.logs(
        &a.container,
        Some(LogsOptions::<String> {
            follow: a.follow,
            stdout: true,
            stderr: true,
            since,
            until,
            timestamps: a.timestamps,
            tail: a.tail.clone(),
        }),
    );
    while let Some(item) = stream.next().await {
        match item? {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                super::out(&message).await?
            }
            LogOutput::StdErr { message } => super::err(&message).await?,
            LogOutput::StdIn { .. } => {}
        }
    }
    Ok(0)
}
