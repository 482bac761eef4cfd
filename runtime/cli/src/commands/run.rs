//! `lookout run`: create, attach, start, wait — as `docker run` does.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use bollard::container::{
    AttachContainerOptions, Config, CreateContainerOptions, LogOutput, RemoveContainerOptions,
    StartContainerOptions,
};
use bollard::models::{HostConfig, HostConfigLogConfig, ResourcesUlimits};
use clap::{ArgAction, Args};
use futures_util::StreamExt;

use super::lifecycle::Waiter;
use crate::client::{Client, describe_error};

/// `lookout run` flags, spelled as the docker CLI spells them.
#[derive(Debug, Clone, Default, Args)]
#[command(
    disable_help_flag = true,
    override_usage = "lookout run [OPTIONS] IMAGE [COMMAND] [ARG...]"
)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Memory limit (e.g. 32m, 1g, bytes)
    #[arg(short = 'm', long, value_name = "bytes")]
    pub memory: Option<String>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal")]
    pub cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_negative_numbers = true, value_name = "int")]
    pub pids_limit: Option<i64>,
    /// Ulimit options (NAME=SOFT[:HARD])
    #[arg(long, value_name = "ulimit")]
    pub ulimit: Vec<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list")]
    pub labels: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Connect a container to a network (none or host)
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver", value_name = "string")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt", value_name = "list")]
    pub log_opts: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub args: Vec<String>,
}

/// What `POST /containers/create` gets for a `run`.
#[derive(Debug, Clone)]
pub struct CreateBody {
    /// `?name=`
    pub name: Option<String>,
    /// The request body.
    pub config: Config<String>,
}

/// go-units `RAMInBytes`: `32m`, `1g`, `1.5GiB`, `512` (bytes); binary units.
pub fn parse_memory(s: &str) -> Result<i64> {
    let bad = || anyhow!("invalid size: '{s}'");
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, mut unit) = t.split_at(num_end);
    if num.is_empty() || !num.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(bad());
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    unit = unit.strip_prefix(' ').unwrap_or(unit);
    let mut chars = unit.chars().peekable();
    let mult: f64 = match chars.peek().map(|c| c.to_ascii_lowercase()) {
        Some('k') => 1024.0,
        Some('m') => 1024.0 * 1024.0,
        Some('g') => 1024.0 * 1024.0 * 1024.0,
        Some('t') => 1024f64.powi(4),
        Some('p') => 1024f64.powi(5),
        _ => 1.0,
    };
    if mult > 1.0 {
        chars.next();
    }
    if matches!(chars.peek(), Some('i' | 'I')) {
        chars.next();
    }
    if matches!(chars.peek(), Some('b' | 'B')) {
        chars.next();
    }
    if chars.next().is_some() {
        return Err(bad());
    }
    Ok((value * mult) as i64)
}

/// `--cpus` as `NanoCpus`: `0.5` → 500000000, exactly (no float rounding).
pub fn parse_cpus(s: &str) -> Result<i64> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        bail!("failed to parse {s} as a rational number");
    }
    if frac.len() > 9 && frac[9..].bytes().any(|b| b != b'0') {
        bail!("value is too precise");
    }
    let int: i128 = if int.is_empty() {
        0
    } else {
        int.parse()
            .map_err(|_| anyhow!("failed to parse {s} as a rational number"))?
    };
    let frac9: String = frac.chars().take(9).collect();
    let frac: i128 = format!("{frac9:0<9}").parse().unwrap_or(0);
    let nano = int * 1_000_000_000 + frac;
    let nano = if neg { -nano } else { nano };
    i64::try_from(nano).map_err(|_| anyhow!("value is too large"))
}

/// The resource names `--ulimit` accepts (go-units).
const ULIMIT_NAMES: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `--ulimit NAME=SOFT[:HARD]` (HARD defaults to SOFT; `unlimited` is -1).
pub fn parse_ulimit(s: &str) -> Result<ResourcesUlimits> {
    let (name, values) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid ulimit argument: {s}"))?;
    if !ULIMIT_NAMES.contains(&name) {
        bail!("invalid ulimit type: {name}");
    }
    let num = |v: &str| -> Result<i64> {
        if v == "unlimited" {
            return Ok(-1);
        }
        v.parse::<i64>()
            .map_err(|_| anyhow!("invalid ulimit value {v:?} in {s}"))
    };
    let (soft, hard) = match values.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let v = num(values)?;
            (v, v)
        }
    };
    if hard != -1 && (soft == -1 || soft > hard) {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

/// `-e KEY=VALUE` as is; `-e KEY` takes the value from our environment when
/// set there, else is passed bare (as docker does).
fn env_entry(e: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    if e.contains('=') {
        return e.to_string();
    }
    match lookup(e) {
        Some(v) => format!("{e}={v}"),
        None => e.to_string(),
    }
}

/// Maps parsed `run` flags to the create request, as the docker CLI does.
/// `lookup` reads the client's environment (for `-e KEY`).
pub fn create_body(a: &RunArgs, lookup: &dyn Fn(&str) -> Option<String>) -> Result<CreateBody> {
    let (image, cmd) = a
        .args
        .split_first()
        .ok_or_else(|| anyhow!("\"run\" requires at least 1 argument"))?;
    let memory = a
        .memory
        .as_deref()
        .map(parse_memory)
        .transpose()
        .map_err(|e| {
            anyhow!(
                "invalid argument {:?} for \"-m, --memory\" flag: {e}",
                a.memory.as_deref().unwrap_or("")
            )
        })?;
    let nano_cpus = a.cpus.as_deref().map(parse_cpus).transpose().map_err(|e| {
        anyhow!(
            "invalid argument {:?} for \"--cpus\" flag: {e}",
            a.cpus.as_deref().unwrap_or("")
        )
    })?;
    let ulimits = a
        .ulimit
        .iter()
        .map(|u| {
            parse_ulimit(u)
                .map_err(|e| anyhow!("invalid argument {u:?} for \"--ulimit\" flag: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut log_opts = HashMap::new();
    for o in &a.log_opts {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid key/value pair format in log options: {o:?}"))?;
        log_opts.insert(k.to_string(), v.to_string());
    }
    let log_config =
        (a.log_driver.is_some() || !log_opts.is_empty()).then(|| HostConfigLogConfig {
            typ: Some(a.log_driver.clone().unwrap_or_default()),
            config: Some(log_opts),
        });
    let labels: HashMap<String, String> = a
        .labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect();
    let entrypoint = a.entrypoint.as_ref().map(|e| vec![e.clone()]);
    let attached = !a.detach;
    let host_config = HostConfig {
        memory,
        nano_cpus,
        pids_limit: a.pids_limit,
        ulimits: (!ulimits.is_empty()).then_some(ulimits),
        // docker sends "default" when --network is not given.
        network_mode: Some(a.network.clone().unwrap_or_else(|| "default".into())),
        log_config,
        auto_remove: Some(a.rm),
        ..Default::default()
    };
    let config = Config {
        image: Some(image.clone()),
        cmd: (!cmd.is_empty()).then(|| cmd.to_vec()),
        entrypoint,
        env: (!a.env.is_empty()).then(|| a.env.iter().map(|e| env_entry(e, lookup)).collect()),
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
        hostname: a.hostname.clone(),
        labels: (!labels.is_empty()).then_some(labels),
        attach_stdin: Some(false),
        attach_stdout: Some(attached),
        attach_stderr: Some(attached),
        tty: Some(false),
        open_stdin: Some(false),
        stdin_once: Some(false),
        host_config: Some(host_config),
        ..Default::default()
    };
    Ok(CreateBody {
        name: a.name.clone(),
        config,
    })
}

/// The exit code `docker run` gives a failed start (moby's
/// `runStartContainerErr`): 127 command not found, 126 not executable, else
/// 125.
pub fn start_error_code(message: &str) -> i32 {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
        || message.contains("system cannot find the file specified")
    {
        127
    } else if message.contains("permission denied") || message.contains("is a directory") {
        126
    } else {
        125
    }
}

/// Forwards the signals a user sends us to the container (docker's
/// `--sig-proxy`, on by default).
async fn proxy_signals(docker: bollard::Docker, id: String) {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
        (SignalKind::user_defined1(), "SIGUSR1"),
        (SignalKind::user_defined2(), "SIGUSR2"),
    ];
    let mut streams = Vec::new();
    for (kind, name) in kinds {
        if let Ok(s) = signal(kind) {
            streams.push((s, name));
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    for (mut s, name) in streams {
        let tx = tx.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send(name).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    while let Some(name) = rx.recv().await {
        let opts = bollard::container::KillContainerOptions { signal: name };
        let _ = docker.kill_container(&id, Some(opts)).await;
    }
}

/// Copies the attach stream to our stdout and stderr, kept apart.
async fn pump(
    mut output: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
    >,
) -> Result<()> {
    while let Some(item) = output.next().await {
        match item? {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                super::out(&message).await?
            }
            LogOutput::StdErr { message } => super::err(&message).await?,
            LogOutput::StdIn { .. } => {}
        }
    }
    Ok(())
}

/// Runs `lookout run`; returns the exit code (the container's, or 125/126/127
/// when the run itself failed, as docker).
pub async fn run(client: &Client, a: &RunArgs) -> Result<i32> {
    let docker = &client.docker;
    let body = create_body(a, &|k| std::env::var(k).ok())?;
    let opts = body.name.clone().map(|name| CreateContainerOptions {
        name,
        platform: None,
    });
    let created = docker
        .create_container(opts, body.config)
        .await
        .context("creating the container")?;
    for w in created.warnings.iter().filter(|w| !w.is_empty()) {
        eprintln!("WARNING: {w}");
    }
    let id = created.id;
    if a.detach {
        // docker prints the ID before starting (so a failed start still
        // names the container it left behind).
        println!("{id}");
        if let Err(e) = docker
            .start_container(&id, None::<StartContainerOptions<String>>)
            .await
        {
            return Ok(report_start_failure(client, &id, a.rm, e.into()).await);
        }
        return Ok(0);
    }

    let attach = docker
        .attach_container(
            &id,
            Some(AttachContainerOptions::<String> {
                stdin: Some(false),
                stdout: Some(true),
                stderr: Some(true),
                stream: Some(true),
                logs: Some(false),
                detach_keys: None,
            }),
        )
        .await
        .context("attaching to the container")?;
    let condition = if a.rm { "removed" } else { "next-exit" };
    let waiter = Waiter::begin(&client.raw, &id, condition, Duration::from_secs(2)).await;

    if let Err(e) = docker
        .start_container(&id, None::<StartContainerOptions<String>>)
        .await
    {
        return Ok(report_start_failure(client, &id, a.rm, e.into()).await);
    }
    let proxy = tokio::spawn(proxy_signals(docker.clone(), id.clone()));
    let pumped = pump(attach.output).await;
    let mut status = waiter.result().await;
    if let Err(e) = &status
        && crate::client::daemon_error(e).is_some_and(|(code, _)| code == 400)
    {
        // A daemon that does not know the wait condition: plain wait.
        status = Waiter::begin(&client.raw, &id, "", Duration::ZERO)
            .await
            .result()
            .await;
    }
    proxy.abort();
    if let Err(e) = pumped {
        eprintln!("lookout: reading the container's output: {e:#}");
    }
    if a.rm {
        // The daemon removes it (AutoRemove); make sure, as the CLI used to.
        let _ = docker
            .remove_container(
                &id,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await;
    }
    match status {
        Ok((code, None)) => Ok(i32::try_from(code).unwrap_or(125)),
        Ok((_, Some(msg))) => {
            eprintln!("lookout: error waiting for container: {msg}");
            Ok(125)
        }
        Err(e) => {
            eprintln!(
                "lookout: error waiting for container: {}",
                describe_error(&e, "")
            );
            Ok(125)
        }
    }
}

/// How `docker run` reports its own failures (docker 28).
pub fn report(msg: &str) -> String {
    format!("lookout: {msg}\n\nRun 'lookout run --help' for more information")
}

async fn report_start_failure(client: &Client, id: &str, rm: bool, e: anyhow::Error) -> i32 {
    let msg = describe_error(&e, "");
    eprintln!("{}", report(&msg));
    if rm {
        let _ = client
            .docker
            .remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await;
    }
    start_error_code(&msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> RunArgs {
        let mut v = vec!["run"];
        v.extend_from_slice(args);
        T::try_parse_from(v).unwrap().run
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("32m").unwrap(), 32 << 20);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1G").unwrap(), 1 << 30);
        assert_eq!(parse_memory("512").unwrap(), 512);
        assert_eq!(parse_memory("64k").unwrap(), 64 << 10);
        assert_eq!(parse_memory("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_memory("10MiB").unwrap(), 10 << 20);
        assert_eq!(parse_memory("10mb").unwrap(), 10 << 20);
        assert_eq!(parse_memory("10 m").unwrap(), 10 << 20);
        assert!(parse_memory("ten").is_err());
        assert!(parse_memory("10x").is_err());
        assert!(parse_memory("").is_err());
        assert!(parse_memory("-1m").is_err());
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("0.5").unwrap(), 500_000_000);
        assert_eq!(parse_cpus("2").unwrap(), 2_000_000_000);
        assert_eq!(parse_cpus("1.25").unwrap(), 1_250_000_000);
        assert_eq!(parse_cpus(".1").unwrap(), 100_000_000);
        assert_eq!(parse_cpus("0.000000001").unwrap(), 1);
        assert!(parse_cpus("0.0000000001").is_err());
        assert!(parse_cpus("half").is_err());
    }

    #[test]
    fn ulimits() {
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!(
            (u.name.as_deref(), u.soft, u.hard),
            (Some("nofile"), Some(1024), Some(2048))
        );
        let u = parse_ulimit("nproc=64").unwrap();
        assert_eq!((u.soft, u.hard), (Some(64), Some(64)));
        let u = parse_ulimit("core=unlimited").unwrap();
        assert_eq!((u.soft, u.hard), (Some(-1), Some(-1)));
        assert!(parse_ulimit("nofile=2048:1024").is_err());
        assert!(parse_ulimit("bogus=1").is_err());
        assert!(parse_ulimit("nofile").is_err());
    }

    #[test]
    fn flags_map_to_the_create_body() {
        let a = parse(&[
            "--rm",
            "--name",
            "web",
            "-e",
            "A=1",
            "-e",
            "HOME",
            "--env",
            "B=2=3",
            "-u",
            "1000:1000",
            "-w",
            "/tmp",
            "-m",
            "32m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "64",
            "--ulimit",
            "nofile=1024:2048",
            "-l",
            "team=obs",
            "--label",
            "flag",
            "--entrypoint",
            "/bin/sh",
            "--network",
            "none",
            "--log-driver",
            "json-file",
            "--log-opt",
            "max-size=1m",
            "-h",
            "box",
            "bb:1",
            "-c",
            "echo hi",
        ]);
        let env = |k: &str| (k == "HOME").then(|| "/root".to_string());
        let b = create_body(&a, &env).unwrap();
        assert_eq!(b.name.as_deref(), Some("web"));
        let c = &b.config;
        assert_eq!(c.image.as_deref(), Some("bb:1"));
        assert_eq!(c.cmd, Some(vec!["-c".to_string(), "echo hi".to_string()]));
        assert_eq!(c.entrypoint, Some(vec!["/bin/sh".to_string()]));
        assert_eq!(
            c.env,
            Some(vec![
                "A=1".to_string(),
                "HOME=/root".to_string(),
                "B=2=3".to_string()
            ])
        );
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert_eq!(c.working_dir.as_deref(), Some("/tmp"));
        assert_eq!(c.hostname.as_deref(), Some("box"));
        let labels = c.labels.as_ref().unwrap();
        assert_eq!(labels["team"], "obs");
        assert_eq!(labels["flag"], "");
        assert_eq!(c.attach_stdout, Some(true));
        assert_eq!(c.attach_stderr, Some(true));
        assert_eq!(c.tty, Some(false));
        let h = c.host_config.as_ref().unwrap();
        assert_eq!(h.memory, Some(32 * 1024 * 1024));
        assert_eq!(h.nano_cpus, Some(500_000_000));
        assert_eq!(h.pids_limit, Some(64));
        assert_eq!(h.auto_remove, Some(true));
        assert_eq!(h.network_mode.as_deref(), Some("none"));
        let lc = h.log_config.as_ref().unwrap();
        assert_eq!(lc.typ.as_deref(), Some("json-file"));
        assert_eq!(lc.config.as_ref().unwrap()["max-size"], "1m");
        let u = &h.ulimits.as_ref().unwrap()[0];
        assert_eq!((u.soft, u.hard), (Some(1024), Some(2048)));

        // The JSON the daemon sees uses the API's names.
        let json = serde_json::to_value(c).unwrap();
        assert_eq!(json["HostConfig"]["NanoCpus"], 500_000_000);
        assert_eq!(json["HostConfig"]["Memory"], 33_554_432);
        assert_eq!(json["HostConfig"]["AutoRemove"], true);
        assert_eq!(json["HostConfig"]["LogConfig"]["Type"], "json-file");
        assert_eq!(json["HostConfig"]["Ulimits"][0]["Name"], "nofile");
    }

    #[test]
    fn minimal_and_detached() {
        let a = parse(&["-d", "bb:1"]);
        let b = create_body(&a, &no_env).unwrap();
        assert_eq!(b.name, None);
        assert_eq!(b.config.cmd, None);
        assert_eq!(b.config.entrypoint, None);
        assert_eq!(b.config.env, None);
        assert_eq!(b.config.attach_stdout, Some(false));
        let h = b.config.host_config.unwrap();
        assert_eq!(h.auto_remove, Some(false));
        assert_eq!(h.memory, None);
        assert_eq!(h.log_config, None);
        assert_eq!(h.network_mode.as_deref(), Some("default"));
    }

    #[test]
    fn everything_after_the_image_is_the_command() {
        let a = parse(&["bb:1", "sh", "-c", "exit 3", "--rm", "-d"]);
        assert!(!a.rm && !a.detach);
        assert_eq!(a.args, ["bb:1", "sh", "-c", "exit 3", "--rm", "-d"]);
        // `--entrypoint ""` resets the image's entrypoint.
        let a = parse(&["--entrypoint", "", "bb:1"]);
        let b = create_body(&a, &no_env).unwrap();
        assert_eq!(b.config.entrypoint, Some(vec![String::new()]));
    }

    #[test]
    fn bad_flags_are_errors() {
        let a = parse(&["-m", "lots", "bb:1"]);
        let e = create_body(&a, &no_env).unwrap_err().to_string();
        assert!(e.contains("--memory"), "{e}");
        let a = parse(&["--log-opt", "nokey", "bb:1"]);
        assert!(create_body(&a, &no_env).is_err());
    }

    #[test]
    fn start_failure_codes() {
        assert_eq!(
            start_error_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_error_code("exec /etc: permission denied"), 126);
        assert_eq!(start_error_code("cgroup trouble"), 125);
    }
}
