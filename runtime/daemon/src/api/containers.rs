//! `/containers/…`: create, list, inspect, start, stop, restart, kill,
//! wait, remove, logs, stats and attach.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::{ContainerConfig, HostConfig};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use lookout_core::logs::reader::{LogReader, ReadOptions, StopSignal, Stream};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Ctx;
use super::http::{
    ApiError, Query, Resp, channel_body, json, parse_filters, read_json, status_only,
};
use super::streams::{FrameFilter, STDERR, STDOUT, frame};
use crate::engine::{Container, CreateRequest, Engine, Record, Status, WaitCondition};
use crate::stats;
use crate::timefmt::{
    now_unix_nano, parse_api_time, rfc3339_nano, rfc3339_nano_fixed, rfc3339_or_zero,
};

/// Content type of a multiplexed (non-TTY) stream.
pub const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";
/// Content type of a raw (TTY) stream.
pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";

fn is_tty(rec: &Record) -> bool {
    rec.config.tty == Some(true)
}

fn stream_type(rec: &Record) -> &'static str {
    if is_tty(rec) { RAW_STREAM } else { MULTIPLEXED }
}

fn bad_json(what: &str, e: serde_json::Error) -> ApiError {
    ApiError::bad_request(format!("invalid JSON in {what}: {e}"))
}

/// `POST /containers/create?name=`.
pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let q = Query::of(&req)?;
    let body = read_json(req.into_body()).await?;
    let Value::Object(mut obj) = body else {
        return Err(ApiError::bad_request(
            "config cannot be empty in order to create a container",
        ));
    };
    let hc = obj.remove("HostConfig").unwrap_or(Value::Null);
    // Maps whose values the models cannot hold; not used by lookout yet.
    for k in ["ExposedPorts", "Volumes", "NetworkingConfig", "Healthcheck"] {
        obj.remove(k);
    }
    let config: ContainerConfig =
        serde_json::from_value(Value::Object(obj)).map_err(|e| bad_json("Config", e))?;
    let host_config: HostConfig = if hc.is_null() {
        HostConfig::default()
    } else {
        serde_json::from_value(hc).map_err(|e| bad_json("HostConfig", e))?
    };
    let engine = ctx.engine.clone();
    let name = q.get("name").map(str::to_string);
    let (id, warnings) = tokio::task::spawn_blocking(move || {
        engine.create(CreateRequest {
            name,
            config,
            host_config,
        })
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(json(
        StatusCode::CREATED,
        &json!({"Id": id, "Warnings": warnings}),
    ))
}

fn command_line(rec: &Record) -> String {
    let mut parts = vec![rec.path.clone()];
    for a in &rec.args {
        if a.contains(' ') {
            parts.push(format!("'{a}'"));
        } else {
            parts.push(a.clone());
        }
    }
    parts.join(" ")
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let m = s / 60;
    let h = m / 60;
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{} days", h / 24),
        _ if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", h / 24 / 365),
    }
}

fn status_text(rec: &Record) -> String {
    let now = now_unix_nano();
    let st = &rec.state;
    match st.status {
        Status::Running => format!(
            "Up {}",
            human_duration((now - st.started_unix_nano) / 1_000_000_000)
        ),
        Status::Created => "Created".into(),
        Status::Exited => {
            if st.finished_unix_nano == 0 {
                format!("Exited ({})", st.exit_code)
            } else {
                format!(
                    "Exited ({}) {} ago",
                    st.exit_code,
                    human_duration((now - st.finished_unix_nano) / 1_000_000_000)
                )
            }
        }
        Status::Dead => "Dead".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            human_duration((now - st.finished_unix_nano) / 1_000_000_000)
        ),
    }
}

fn network_name(rec: &Record) -> &'static str {
    if rec.host_config.network_mode.as_deref() == Some("host") {
        "host"
    } else {
        "none"
    }
}

fn endpoint_json() -> Value {
    json!({
        "IPAMConfig": null,
        "Links": null,
        "Aliases": null,
        "MacAddress": "",
        "DriverOpts": null,
        "NetworkID": "",
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": null,
    })
}

fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

fn summary(c: &Container, rec: &Record, size: bool, image_size: u64) -> Value {
    let mut networks = Map::new();
    networks.insert(network_name(rec).into(), endpoint_json());
    let mut v = json!({
        "Id": rec.id,
        "Names": [rec.name],
        "Image": rec.image_ref,
        "ImageID": rec.image_id,
        "Command": command_line(rec),
        "Created": rec.created_unix_nano / 1_000_000_000,
        "Ports": [],
        "Labels": rec.config.labels.clone().unwrap_or_default().into_iter().collect::<BTreeMap<_, _>>(),
        "State": rec.state.status.as_str(),
        "Status": status_text(rec),
        "HostConfig": {"NetworkMode": rec.host_config.network_mode.clone().unwrap_or_else(|| "default".into())},
        "NetworkSettings": {"Networks": networks},
        "Mounts": [],
    });
    if size {
        let rw = dir_size(&c.dir.join("diff"));
        v["SizeRw"] = json!(rw);
        v["SizeRootFs"] = json!(rw + image_size);
    }
    v
}

fn matches_filters(rec: &Record, f: &HashMap<String, Vec<String>>) -> Result<bool, ApiError> {
    for (k, vals) in f {
        if vals.is_empty() {
            continue;
        }
        let ok = match k.as_str() {
            "name" => vals.iter().any(|v| {
                let v = v.trim_start_matches('/');
                rec.name.trim_start_matches('/').contains(v)
            }),
            "id" => vals.iter().any(|v| rec.id.starts_with(v.as_str())),
            "status" => {
                for v in vals {
                    if !matches!(
                        v.as_str(),
                        "created"
                            | "restarting"
                            | "running"
                            | "removing"
                            | "paused"
                            | "exited"
                            | "dead"
                    ) {
                        return Err(ApiError::bad_request(format!(
                            "invalid filter 'status={v}'"
                        )));
                    }
                }
                vals.iter().any(|v| v == rec.state.status.as_str())
            }
            "label" => {
                let labels = rec.config.labels.clone().unwrap_or_default();
                vals.iter().all(|l| match l.split_once('=') {
                    Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
                    None => labels.contains_key(l),
                })
            }
            "ancestor" => vals.iter().any(|v| {
                *v == rec.image_ref
                    || *v == rec.image_id
                    || rec
                        .image_id
                        .trim_start_matches("sha256:")
                        .starts_with(v.as_str())
            }),
            "exited" => vals.iter().any(|v| {
                rec.state.status == Status::Exited
                    && v.parse::<i64>().ok() == Some(rec.state.exit_code)
            }),
            other => {
                return Err(ApiError::bad_request(format!("invalid filter '{other}'")));
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `GET /containers/json`.
pub async fn list(ctx: &Ctx, req: &Request<Incoming>) -> Result<Resp, ApiError> {
    let q = Query::of(req)?;
    let limit = q.int("limit")?.filter(|&l| l > 0);
    let all = q.bool("all") || limit.is_some();
    let size = q.bool("size");
    let f = parse_filters(&q)?;
    let mut items: Vec<(Arc<Container>, Record)> = ctx
        .engine
        .list()
        .into_iter()
        .map(|c| {
            let r = c.record();
            (c, r)
        })
        .collect();
    items.sort_by_key(|b| std::cmp::Reverse(b.1.created_unix_nano));
    let explicit_status = f.get("status").is_some_and(|v| !v.is_empty());
    let mut out = Vec::new();
    for (c, r) in &items {
        if !all && !explicit_status && r.state.status != Status::Running {
            continue;
        }
        if !matches_filters(r, &f)? {
            continue;
        }
        let image_size = if size {
            ctx.engine
                .images()
                .get(&r.image_id)
                .map(|i| i.size)
                .unwrap_or(0)
        } else {
            0
        };
        out.push(summary(c, r, size, image_size));
        if limit.is_some_and(|l| out.len() as i64 >= l) {
            break;
        }
    }
    Ok(json(StatusCode::OK, &Value::Array(out)))
}

fn overlay(base: &mut Value, over: Value) {
    if let (Value::Object(b), Value::Object(o)) = (base, over) {
        for (k, v) in o {
            b.insert(k, v);
        }
    }
}

fn host_config_json(rec: &Record) -> Value {
    let mut base = json!({
        "Binds": null,
        "ContainerIDFile": "",
        "LogConfig": {},
        "NetworkMode": "default",
        "PortBindings": {},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": false,
        "VolumeDriver": "",
        "VolumesFrom": null,
        "ConsoleSize": [0, 0],
        "CapAdd": null,
        "CapDrop": null,
        "CgroupnsMode": "host",
        "Dns": [],
        "DnsOptions": [],
        "DnsSearch": [],
        "ExtraHosts": null,
        "GroupAdd": null,
        "IpcMode": "private",
        "Cgroup": "",
        "Links": null,
        "OomScoreAdj": 0,
        "PidMode": "",
        "Privileged": false,
        "PublishAllPorts": false,
        "ReadonlyRootfs": false,
        "SecurityOpt": null,
        "UTSMode": "",
        "UsernsMode": "",
        "ShmSize": 0,
        "Runtime": "lookout-shim",
        "Isolation": "",
        "CpuShares": 0,
        "Memory": 0,
        "NanoCpus": 0,
        "CgroupParent": "",
        "BlkioWeight": 0,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [],
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": "",
        "CpusetMems": "",
        "Devices": [],
        "DeviceCgroupRules": null,
        "DeviceRequests": null,
        "KernelMemory": 0,
        "KernelMemoryTCP": 0,
        "MemoryReservation": 0,
        "MemorySwap": 0,
        "MemorySwappiness": null,
        "OomKillDisable": false,
        "PidsLimit": null,
        "Ulimits": [],
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        // The lists the runtime applies (the spec names none).
        "MaskedPaths": lookout_core::isolate::DEFAULT_MASKED_PATHS,
        "ReadonlyPaths": lookout_core::isolate::DEFAULT_READONLY_PATHS,
    });
    overlay(
        &mut base,
        serde_json::to_value(&rec.host_config).unwrap_or(Value::Null),
    );
    let opts: BTreeMap<&str, &str> = rec
        .log_opts
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    base["LogConfig"] = json!({"Type": rec.log_driver, "Config": opts});
    base
}

fn config_json(rec: &Record) -> Value {
    let mut base = json!({
        "Hostname": "",
        "Domainname": "",
        "User": "",
        "AttachStdin": false,
        "AttachStdout": false,
        "AttachStderr": false,
        "Tty": false,
        "OpenStdin": false,
        "StdinOnce": false,
        "Env": null,
        "Cmd": null,
        "Image": rec.image_ref,
        "Volumes": null,
        "WorkingDir": "",
        "Entrypoint": null,
        "NetworkDisabled": network_name(rec) == "none",
        "OnBuild": null,
        "Labels": {},
    });
    overlay(
        &mut base,
        serde_json::to_value(&rec.config).unwrap_or(Value::Null),
    );
    if let Some(l) = &rec.config.labels {
        base["Labels"] = json!(l.iter().collect::<BTreeMap<_, _>>());
    }
    base
}

/// The inspect document of a container.
pub fn inspect_json(c: &Container, rec: &Record) -> Value {
    let st = &rec.state;
    let dir = c.dir.display().to_string();
    let log_path = if rec.log_driver == "json-file" {
        format!("{dir}/{}-json.log", rec.id)
    } else {
        String::new()
    };
    let mut networks = Map::new();
    networks.insert(network_name(rec).into(), endpoint_json());
    let running = st.status == Status::Running;
    json!({
        "Id": rec.id,
        "Created": rfc3339_nano(rec.created_unix_nano),
        "Path": rec.path,
        "Args": rec.args,
        "State": {
            "Status": st.status.as_str(),
            "Running": running,
            "Paused": false,
            "Restarting": st.status == Status::Restarting,
            "OOMKilled": st.oom_killed,
            "Dead": st.status == Status::Dead,
            "Pid": if running { st.pid } else { 0 },
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": rfc3339_or_zero(st.started_unix_nano),
            "FinishedAt": rfc3339_or_zero(st.finished_unix_nano),
        },
        "Image": rec.image_id,
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": log_path,
        "Name": rec.name,
        "RestartCount": rec.restart_count,
        "Driver": "overlayfs",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": host_config_json(rec),
        "GraphDriver": {
            "Data": {
                "LowerDir": rec.layer_dir,
                "MergedDir": format!("{dir}/merged"),
                "UpperDir": format!("{dir}/diff"),
                "WorkDir": format!("{dir}/work"),
            },
            "Name": "overlayfs",
        },
        "Mounts": [],
        "Config": config_json(rec),
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": {},
            "SandboxKey": if running { format!("/proc/{}/ns/net", st.pid) } else { String::new() },
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": "",
            "Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": "",
            "IPPrefixLen": 0,
            "IPv6Gateway": "",
            "MacAddress": "",
            "Networks": networks,
        },
    })
}

/// `GET /containers/{id}/json`.
pub fn inspect(c: &Container) -> Resp {
    let rec = c.record();
    json(StatusCode::OK, &inspect_json(c, &rec))
}

/// `POST /containers/{id}/start`.
pub async fn start(ctx: &Ctx, c: &Arc<Container>) -> Result<Resp, ApiError> {
    ctx.engine.start(c).await?;
    Ok(status_only(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/stop?t=&signal=`.
pub async fn stop(ctx: &Ctx, c: &Arc<Container>, q: &Query) -> Result<Resp, ApiError> {
    let t = q.int("t")?;
    ctx.engine.stop(c, q.get("signal"), t).await?;
    Ok(status_only(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/restart?t=&signal=`.
pub async fn restart(ctx: &Ctx, c: &Arc<Container>, q: &Query) -> Result<Resp, ApiError> {
    let t = q.int("t")?;
    match ctx.engine.stop(c, q.get("signal"), t).await {
        Ok(()) | Err(crate::engine::EngineError::NotModified) => {}
        Err(e) => return Err(e.into()),
    }
    ctx.engine.start(c).await?;
    Ok(status_only(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/kill?signal=`.
pub async fn kill(ctx: &Ctx, c: &Arc<Container>, q: &Query) -> Result<Resp, ApiError> {
    ctx.engine.kill(c, q.get("signal")).await?;
    Ok(status_only(StatusCode::NO_CONTENT))
}

/// `DELETE /containers/{id}?force=&v=`.
pub async fn remove(ctx: &Ctx, c: &Arc<Container>, q: &Query) -> Result<Resp, ApiError> {
    ctx.engine.remove(c, q.bool("force")).await?;
    Ok(status_only(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/wait?condition=`: the headers go out at once (so
/// the client knows the wait is registered), the body at the condition.
pub async fn wait(c: &Arc<Container>, q: &Query) -> Result<Resp, ApiError> {
    let cond = WaitCondition::parse(q.get("condition").unwrap_or(""))?;
    let fut = Engine::waiter(c, cond);
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let r = fut.await;
        let err = match r.error {
            Some(m) => json!({"Message": m}),
            None => Value::Null,
        };
        let mut b = serde_json::to_vec(&json!({"StatusCode": r.status_code, "Error": err}))
            .unwrap_or_default();
        b.push(b'\n');
        let _ = tx.send(Ok(Bytes::from(b))).await;
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(channel_body(rx, ()))
        .unwrap_or_else(|_| status_only(StatusCode::INTERNAL_SERVER_ERROR)))
}

/// `POST /containers/prune?filters=`: removes every stopped container
/// (filters: `label`, `until`).
pub async fn prune(ctx: &Ctx, req: &Request<Incoming>) -> Result<Resp, ApiError> {
    let q = Query::of(req)?;
    let f = parse_filters(&q)?;
    let mut until = None;
    for (k, vals) in &f {
        match k.as_str() {
            "label" => {}
            "until" => {
                for v in vals {
                    until = Some(parse_api_time(v).ok_or_else(|| {
                        ApiError::bad_request(format!("invalid filter 'until={v}'"))
                    })?);
                }
            }
            other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
        }
    }
    let labels = HashMap::from([(
        "label".to_string(),
        f.get("label").cloned().unwrap_or_default(),
    )]);
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for c in ctx.engine.list() {
        let rec = c.record();
        if matches!(
            rec.state.status,
            Status::Running | Status::Restarting | Status::Removing
        ) || !matches_filters(&rec, &labels)?
            || until.is_some_and(|u| rec.created_unix_nano > u)
        {
            continue;
        }
        let size = dir_size(&c.dir.join("diff"));
        if ctx.engine.remove(&c, false).await.is_ok() {
            reclaimed += size;
            deleted.push(rec.id);
        }
    }
    Ok(json(
        StatusCode::OK,
        &json!({"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed}),
    ))
}

/// Cancels a log read when the response body is dropped.
struct CancelOnDrop(StopSignal);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

fn time_param(q: &Query, key: &str) -> Result<Option<i64>, ApiError> {
    match q.get(key).filter(|s| !s.is_empty() && *s != "0") {
        None => Ok(None),
        Some(v) => parse_api_time(v).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid value for {key}: {v:?} is neither a Unix time (seconds[.nanoseconds]) nor an RFC 3339 time"
            ))
        }),
    }
}

/// Which records a log read passes on, and how.
#[derive(Debug, Clone, Copy)]
struct Select {
    stdout: bool,
    stderr: bool,
    timestamps: bool,
    /// Payloads without frame headers (TTY containers).
    raw: bool,
}

/// Reads a container's json-file log into frames on `tx` (blocking).
fn read_log_frames(
    dir: std::path::PathBuf,
    id: String,
    opts: ReadOptions,
    stop: StopSignal,
    sel: Select,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let Select {
        stdout,
        stderr,
        timestamps,
        raw,
    } = sel;
    let opts_details = opts.details;
    let reader = LogReader::new(&dir, &id);
    let mut batch: Vec<u8> = Vec::new();
    let res = reader.read(&opts, &stop, |e| {
        let s = match e.stream {
            Stream::Stdout if stdout => STDOUT,
            Stream::Stderr if stderr => STDERR,
            _ => return true,
        };
        let mut p = Vec::new();
        if timestamps {
            p.extend_from_slice(rfc3339_nano_fixed(e.time_unix_nano).as_bytes());
            p.push(b' ');
        }
        if opts_details {
            // `--details`: the record's attrs as k=v,k=v before the line.
            let attrs: Vec<String> = e.attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            p.extend_from_slice(attrs.join(",").as_bytes());
            p.push(b' ');
        }
        p.extend_from_slice(e.line);
        if raw {
            batch.extend_from_slice(&p);
        } else {
            frame(&mut batch, s, &p);
        }
        let chunk = Bytes::from(std::mem::take(&mut batch));
        tx.blocking_send(Ok(chunk)).is_ok()
    });
    if let Err(e) = res {
        eprintln!("lookoutd: reading the logs of {id}: {e}");
    }
}

/// `GET /containers/{id}/logs`.
pub async fn logs(c: &Arc<Container>, q: &Query) -> Result<Resp, ApiError> {
    let stdout = q.bool("stdout");
    let stderr = q.bool("stderr");
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let rec = c.record();
    if rec.log_driver != "json-file" {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "configured logging driver does not support reading",
        ));
    }
    let tail = match q.get("tail").filter(|t| !t.is_empty() && *t != "all") {
        None => None,
        Some(t) => match t.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "invalid value for tail: {t:?} is neither a number nor \"all\""
                )));
            }
        },
    };
    let running = rec.state.status == Status::Running;
    let opts = ReadOptions {
        tail,
        since: time_param(q, "since")?,
        until: time_param(q, "until")?,
        follow: q.bool("follow") && running,
        details: q.bool("details"),
    };
    let timestamps = q.bool("timestamps");
    let tty = is_tty(&rec);
    let stop = StopSignal::new();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    if opts.follow {
        let mut ev = c.subscribe();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = ev.wait_for(|e| !e.running || e.removed).await;
            s.finish();
        });
    }
    let dir = c.dir.clone();
    let id = rec.id.clone();
    let s = stop.clone();
    tokio::task::spawn_blocking(move || {
        read_log_frames(
            dir,
            id,
            opts,
            s,
            Select {
                stdout,
                stderr,
                timestamps,
                raw: tty,
            },
            tx,
        )
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, stream_type(&rec))
        .body(channel_body(rx, CancelOnDrop(stop)))
        .unwrap_or_else(|_| status_only(StatusCode::INTERNAL_SERVER_ERROR)))
}

/// `GET /containers/{id}/stats?stream=&one-shot=`.
pub async fn stats(ctx: &Ctx, c: &Arc<Container>, q: &Query) -> Result<Resp, ApiError> {
    let stream = q.bool_or("stream", true);
    let one_shot = q.bool("one-shot");
    let rec = c.record();
    let id = rec.id.clone();
    let name = rec.name.clone();
    let line = |v: &Value| {
        let mut b = serde_json::to_vec(v).unwrap_or_default();
        b.push(b'\n');
        Bytes::from(b)
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    if rec.state.status != Status::Running {
        let _ = tx.try_send(Ok(line(&stats::idle_stats_json(&id, &name))));
    } else {
        let layout = ctx.engine.layout().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cgroups are not available on this host: no stats",
            )
        })?;
        let path = rec.cgroup_path.clone();
        let host_mem = stats::host_memory().unwrap_or(0);
        let take = move |layout: lookout_cgroups::Layout, path: String| async move {
            tokio::task::spawn_blocking(move || {
                let cg = lookout_cgroups::Cgroup::open(&layout, &path)
                    .map_err(stats::StatsError::from)?;
                stats::sample(&cg, host_mem, now_unix_nano())
            })
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
        };
        let first = take(layout.clone(), path.clone()).await?;
        let c2 = c.clone();
        tokio::spawn(async move {
            let mut prev: Option<stats::Sample> = None;
            let mut cur = first;
            if !stream && !one_shot {
                tokio::time::sleep(Duration::from_secs(1)).await;
                match take(layout.clone(), path.clone()).await {
                    Ok(s) => {
                        prev = Some(cur);
                        cur = s;
                    }
                    Err(_) => {
                        let _ = tx.send(Ok(line(&stats::idle_stats_json(&id, &name)))).await;
                        return;
                    }
                }
            }
            loop {
                let v = stats::stats_json(&id, &name, &cur, prev.as_ref());
                if tx.send(Ok(line(&v))).await.is_err() || !stream {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                if !c2.is_running() {
                    return;
                }
                match take(layout.clone(), path.clone()).await {
                    Ok(s) => {
                        prev = Some(std::mem::replace(&mut cur, s));
                    }
                    Err(_) => return,
                }
            }
        });
    }
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(channel_body(rx, ()))
        .unwrap_or_else(|_| status_only(StatusCode::INTERNAL_SERVER_ERROR)))
}

/// Splits `ps` output into titles and the rows of `pids` (dockerd's
/// `top`: the PID column found by its title, the last column keeps its
/// spaces).
pub fn parse_ps(output: &str, pids: &[i32]) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let mut lines = output.lines();
    let header = lines.next().ok_or("ps printed nothing")?;
    let titles: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or("couldn't find PID field in ps output")?;
    let mut rows = Vec::new();
    for l in lines {
        if l.trim().is_empty() {
            continue;
        }
        let mut fields: Vec<String> = Vec::new();
        let mut rest = l.trim_start();
        while fields.len() + 1 < titles.len() {
            match rest.split_once(char::is_whitespace) {
                Some((f, r)) => {
                    fields.push(f.to_string());
                    rest = r.trim_start();
                }
                None => break,
            }
        }
        fields.push(rest.to_string());
        let pid: i32 = fields
            .get(pid_col)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("unexpected pid {:?} in ps output", fields.get(pid_col)))?;
        if pids.contains(&pid) {
            rows.push(fields);
        }
    }
    Ok((titles, rows))
}

/// `GET /containers/{id}/top?ps_args=`.
pub async fn top(ctx: &Ctx, c: &Arc<Container>, q: &Query) -> Result<Resp, ApiError> {
    let rec = c.record();
    if rec.state.status != Status::Running {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Container {} is not running", rec.id),
        ));
    }
    let layout = ctx.engine.layout().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cgroups are not available on this host",
        )
    })?;
    let path = rec.cgroup_path.clone();
    let pids = tokio::task::spawn_blocking(move || {
        lookout_cgroups::Cgroup::open(&layout, &path).and_then(|cg| cg.procs())
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let args: Vec<String> = q
        .get("ps_args")
        .filter(|a| !a.is_empty())
        .unwrap_or("-ef")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let out = tokio::process::Command::new("ps")
        .args(&args)
        .output()
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("running ps: {e}"),
            )
        })?;
    if !out.status.success() {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "ps: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    let (titles, rows) = parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(json(
        StatusCode::OK,
        &json!({"Titles": titles, "Processes": rows}),
    ))
}

/// What an attach asked for.
#[derive(Debug, Clone, Copy)]
struct AttachOpts {
    stream: bool,
    logs: bool,
    stdout: bool,
    stderr: bool,
}

/// `POST /containers/{id}/attach`: hijacks the connection (101 Switching
/// Protocols, `Upgrade: tcp`) and sends the container's output as
/// multiplexed frames. An attach that arrives before the start is held and
/// joined to the shim's output with replay once the container runs.
pub async fn attach(
    ctx: &Ctx,
    c: &Arc<Container>,
    mut req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let q = Query::of(&req)?;
    let opts = AttachOpts {
        stream: q.bool("stream"),
        logs: q.bool("logs"),
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
    };
    let guard = c.attach_guard();
    ctx.engine.container_event(&c.record(), "attach", &[]);
    let ev = c.subscribe();
    let starts0 = ev.borrow().starts;
    let running_at_attach = c.is_running();
    let upgrade = req.headers().contains_key(header::UPGRADE);
    let content_type = stream_type(&c.record());
    let engine = ctx.engine.clone();
    let c = c.clone();
    if upgrade {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(up) => {
                    let io = TokioIo::new(up);
                    let (r, w) = tokio::io::split(io);
                    tokio::spawn(drain(r));
                    pump(engine, c, w, opts, running_at_attach, starts0).await;
                    drop(guard);
                }
                Err(e) => eprintln!("lookoutd: attach upgrade failed: {e}"),
            }
        });
        return Ok(Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "tcp")
            .body(super::http::empty())
            .unwrap_or_else(|_| status_only(StatusCode::INTERNAL_SERVER_ERROR)));
    }
    // Without an upgrade request: the stream is the response body.
    let (w, mut r) = tokio::io::duplex(64 * 1024);
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        pump(engine, c, w, opts, running_at_attach, starts0).await;
        drop(guard);
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx
                        .send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .body(channel_body(rx, ()))
        .unwrap_or_else(|_| status_only(StatusCode::INTERNAL_SERVER_ERROR)))
}

/// Reads and drops what the client sends (stdin is not supported yet).
async fn drain<R: AsyncRead + Unpin>(mut r: R) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

async fn write_log_file<W: AsyncWrite + Unpin>(c: &Container, w: &mut W, opts: AttachOpts) -> bool {
    let rec = c.record();
    if rec.log_driver != "json-file" {
        return true;
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let dir = c.dir.clone();
    let id = rec.id.clone();
    tokio::task::spawn_blocking(move || {
        read_log_frames(
            dir,
            id,
            ReadOptions::default(),
            StopSignal::new(),
            Select {
                stdout: opts.stdout,
                stderr: opts.stderr,
                timestamps: false,
                raw: is_tty(&rec),
            },
            tx,
        )
    });
    while let Some(Ok(b)) = rx.recv().await {
        if w.write_all(&b).await.is_err() {
            return false;
        }
    }
    true
}

async fn pump<W: AsyncWrite + Unpin>(
    engine: Arc<Engine>,
    c: Arc<Container>,
    mut w: W,
    opts: AttachOpts,
    running_at_attach: bool,
    starts0: u64,
) {
    let status = c.record().state.status;
    if opts.logs
        && (running_at_attach || status == Status::Exited)
        && !write_log_file(&c, &mut w, opts).await
    {
        return;
    }
    if !opts.stream || (!opts.stdout && !opts.stderr) {
        let _ = w.shutdown().await;
        return;
    }
    let replay = if running_at_attach {
        false
    } else {
        let mut ev = c.subscribe();
        let started = matches!(
            ev.wait_for(|e| e.starts > starts0 || e.removed)
                .await
                .map(|e| !e.removed),
            Ok(true)
        );
        if !started {
            let _ = w.shutdown().await;
            return;
        }
        true
    };
    // Bytes the shim delivered; none with replay means the output ended
    // before the attach reached the shim.
    let mut total = 0usize;
    match crate::engine::shim::attach(c.dir.clone(), replay).await {
        Ok(mut sock) => {
            let mut filter = FrameFilter::new(opts.stdout, opts.stderr).raw(is_tty(&c.record()));
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        total += n;
                        let out = filter.push(&buf[..n]);
                        if !out.is_empty() && w.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                }
            }
            if engine.config().debug {
                eprintln!(
                    "lookoutd: attach {}: shim stream ended after {total} bytes (replay {replay})",
                    c.id
                );
            }
        }
        Err(e) => {
            if engine.config().debug || !replay {
                eprintln!("lookoutd: attach {}: {e} (replay {replay})", c.id);
            }
        }
    }
    if replay && total == 0 {
        // The container ended before its shim could be reached (or before
        // the shim kept its output for us): give what its log holds, once
        // the exit (and so the log flush) is recorded.
        let mut ev = c.subscribe();
        let _ = ev.wait_for(|e| !e.running || e.removed).await;
        if !write_log_file(&c, &mut w, opts).await {
            return;
        }
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_output_is_split_like_dockerd() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 10 1 0 20:42 ? 00:00:00 sh -c while true; do :; done\nroot 11 10 0 20:42 ? 00:00:00 sleep 1\nroot 12 1 0 20:42 ? 00:00:00 other\n";
        let (t, rows) = parse_ps(out, &[10, 11]).unwrap();
        assert_eq!(t.len(), 8);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][7], "sh -c while true; do :; done");
        assert_eq!(rows[1][1], "11");
        assert!(parse_ps("A B\n", &[]).is_err());
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(2), "2 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
    }

    #[test]
    fn command_quotes_args_with_spaces() {
        let r = Record {
            path: "sh".into(),
            args: vec!["-c".into(), "while true; do echo hi; done".into()],
            ..Default::default()
        };
        assert_eq!(command_line(&r), "sh -c 'while true; do echo hi; done'");
    }
}
