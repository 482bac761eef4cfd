//! `stop`, `kill`, `rm`, `wait`, and the wait request `run` registers before
//! starting its container.

use std::time::Duration;

use anyhow::Result;
use bollard::container::{KillContainerOptions, RemoveContainerOptions};
use clap::Args;
use hyper::Method;
use serde::Deserialize;

use crate::client::{
    Client, Raw, body_or_error, describe_error, empty_body, path_escape, query_escape,
};

/// `lookout stop`
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        allow_negative_numbers = true
    )]
    pub time: Option<i64>,
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `lookout kill`
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `lookout rm`
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `lookout wait`
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Applies `f` to each container, printing its name on success and the
/// error on failure, as the docker CLI does; 1 when any failed.
async fn each<F, Fut>(containers: &[String], f: F) -> Result<i32>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Option<String>>>,
{
    let mut failed = false;
    for c in containers {
        match f(c.clone()).await {
            Ok(Some(line)) => println!("{line}"),
            Ok(None) => {}
            Err(e) => {
                eprintln!("{}", describe_error(&e, ""));
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

/// `lookout stop`: `POST /containers/{id}/stop?t=&signal=` (raw: bollard
/// 0.18 always sends `t` and cannot send a signal).
pub async fn stop(client: &Client, a: &StopArgs) -> Result<i32> {
    each(&a.containers, |c| async move {
        let mut q = Vec::new();
        if let Some(t) = a.time {
            q.push(format!("t={t}"));
        }
        if let Some(s) = &a.signal {
            q.push(format!("signal={}", query_escape(s)));
        }
        let query = if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        };
        client
            .raw
            .call(
                Method::POST,
                &format!("/containers/{}/stop{query}", path_escape(&c)),
                None,
                empty_body(),
            )
            .await?;
        Ok(Some(c))
    })
    .await
}

/// `lookout kill`
pub async fn kill(client: &Client, a: &KillArgs) -> Result<i32> {
    each(&a.containers, |c| async move {
        let signal = a.signal.clone().unwrap_or_else(|| "KILL".to_string());
        client
            .docker
            .kill_container(&c, Some(KillContainerOptions { signal }))
            .await?;
        Ok(Some(c))
    })
    .await
}

/// `lookout rm`
pub async fn rm(client: &Client, a: &RmArgs) -> Result<i32> {
    each(&a.containers, |c| async move {
        client
            .docker
            .remove_container(
                &c,
                Some(RemoveContainerOptions {
                    force: a.force,
                    v: a.volumes,
                    link: false,
                }),
            )
            .await?;
        Ok(Some(c))
    })
    .await
}

/// `lookout wait`: prints each container's exit code.
pub async fn wait(client: &Client, a: &WaitArgs) -> Result<i32> {
    each(&a.containers, |c| async move {
        let waiter = Waiter::begin(&client.raw, &c, "", Duration::ZERO).await;
        let (code, _) = waiter.result().await?;
        Ok(Some(code.to_string()))
    })
    .await
}

/// The body of `POST /containers/{id}/wait`.
#[derive(Debug, Deserialize)]
struct WaitBody {
    #[serde(rename = "StatusCode", default)]
    status_code: i64,
    #[serde(rename = "Error", default)]
    error: Option<WaitError>,
}

#[derive(Debug, Deserialize)]
struct WaitError {
    #[serde(rename = "Message", default)]
    message: Option<String>,
}

/// A wait request in flight: sent (and, when the daemon answers its headers
/// early as dockerd does, registered) before the container starts, so a
/// short-lived or auto-removed container cannot slip past it.
pub struct Waiter {
    task: tokio::task::JoinHandle<Result<(i64, Option<String>)>>,
}

impl Waiter {
    /// Sends `POST /containers/{id}/wait?condition=…` and waits up to
    /// `header_timeout` for the response headers.
    pub async fn begin(raw: &Raw, id: &str, condition: &str, header_timeout: Duration) -> Waiter {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let raw = raw.clone();
        let mut path = format!("/containers/{}/wait", path_escape(id));
        if !condition.is_empty() {
            path.push_str(&format!("?condition={condition}"));
        }
        let task = tokio::spawn(async move {
            let resp = raw.send(Method::POST, &path, None, empty_body()).await;
            let _ = tx.send(());
            let body = body_or_error(resp?).await?;
            let w: WaitBody = serde_json::from_slice(&body)?;
            let err = w.error.and_then(|e| e.message).filter(|m| !m.is_empty());
            Ok((w.status_code, err))
        });
        if !header_timeout.is_zero() {
            let _ = tokio::time::timeout(header_timeout, rx).await;
        }
        Waiter { task }
    }

    /// The container's exit code and the daemon's wait error, if any.
    pub async fn result(self) -> Result<(i64, Option<String>)> {
        self.task.await?
    }
}
