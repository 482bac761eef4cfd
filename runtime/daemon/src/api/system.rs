//! `/_ping`, `/version` and `/info`.

use hyper::{Method, Response, StatusCode, header};
use serde_json::{Value, json};

use super::Ctx;
use super::http::{Resp, empty, full, json};
use super::version::{API_VERSION, MIN_API_VERSION};
use crate::host;
use crate::timefmt::{now_unix_nano, rfc3339_nano};

/// The server's version.
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `GET`/`HEAD /_ping`: `OK` with no-cache headers.
pub fn ping(method: &Method) -> Resp {
    let body = if method == Method::HEAD {
        empty()
    } else {
        full("OK")
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CACHE_CONTROL, "no-cache, no-store, must-revalidate")
        .header(header::PRAGMA, "no-cache")
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("Builder-Version", "1")
        .header("Swarm", "inactive")
        .body(body)
        .unwrap_or_else(|_| Response::new(empty()))
}

fn build_time() -> String {
    let secs: i64 = env!("LOOKOUT_BUILD_UNIX").parse().unwrap_or(0);
    rfc3339_nano(secs * 1_000_000_000)
}

/// `GET /version`.
pub fn version() -> Resp {
    let (kernel, _) = host::uname();
    let commit = env!("LOOKOUT_GIT_COMMIT");
    let rustc = env!("LOOKOUT_RUSTC_VERSION");
    let v = json!({
        "Platform": {"Name": "lookout"},
        "Components": [{
            "Name": "Engine",
            "Version": SERVER_VERSION,
            "Details": {
                "ApiVersion": API_VERSION.to_string(),
                "Arch": host::go_arch(),
                "BuildTime": build_time(),
                "Experimental": "false",
                "GitCommit": commit,
                "GoVersion": rustc,
                "KernelVersion": kernel,
                "MinAPIVersion": MIN_API_VERSION.to_string(),
                "Os": "linux",
            }
        }],
        "Version": SERVER_VERSION,
        "ApiVersion": API_VERSION.to_string(),
        "MinAPIVersion": MIN_API_VERSION.to_string(),
        "GitCommit": commit,
        "GoVersion": rustc,
        "Os": "linux",
        "Arch": host::go_arch(),
        "KernelVersion": kernel,
        "BuildTime": build_time(),
    });
    json(StatusCode::OK, &v)
}

/// `GET /info`.
pub fn info(ctx: &Ctx) -> Resp {
    let engine = &ctx.engine;
    let cfg = engine.config();
    let (kernel, machine) = host::uname();
    let (os_name, os_version) = host::os_release();
    let (running, paused, stopped) = engine.counts();
    let images = engine.images().list().map(|l| l.len()).unwrap_or(0);
    let cg = host::cgroup_features(engine.layout());
    let cgroup_version = match engine.layout().map(|l| l.kind()) {
        Some(lookout_cgroups::LayoutKind::V2) => "2",
        _ => "1",
    };
    let mut warnings = Vec::new();
    if !cg.swap {
        warnings.push("WARNING: No swap limit support".to_string());
    }
    if !cg.cfs_quota {
        warnings.push("WARNING: No cpu cfs quota support".to_string());
    }
    let shim = crate::engine::shim::find_shim()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let env = |k: &str| {
        std::env::var(k)
            .or_else(|_| std::env::var(k.to_ascii_lowercase()))
            .unwrap_or_default()
    };
    let v = json!({
        "ID": engine.id(),
        "Containers": running + paused + stopped,
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": stopped,
        "Images": images,
        "Driver": "overlayfs",
        "DriverStatus": [["Backing Filesystem", host::backing_fs(&cfg.data_root)]],
        "Plugins": {
            "Volume": [],
            "Network": ["host", "null"],
            "Authorization": null,
            "Log": host::log_drivers(&cfg.data_root),
        },
        "MemoryLimit": cg.memory,
        "SwapLimit": cg.swap,
        "KernelMemory": false,
        "KernelMemoryTCP": cg.kmem_tcp,
        "CpuCfsPeriod": cg.cfs_period,
        "CpuCfsQuota": cg.cfs_quota,
        "CPUShares": cg.shares,
        "CPUSet": cg.cpuset,
        "PidsLimit": cg.pids,
        "IPv4Forwarding": host::sysctl_on("/proc/sys/net/ipv4/ip_forward"),
        "BridgeNfIptables": host::sysctl_on("/proc/sys/net/bridge/bridge-nf-call-iptables"),
        "BridgeNfIp6tables": host::sysctl_on("/proc/sys/net/bridge/bridge-nf-call-ip6tables"),
        "Debug": cfg.debug,
        "NFd": host::open_fds(),
        "OomKillDisable": cg.oom_kill_disable,
        "NGoroutines": host::threads(),
        "SystemTime": rfc3339_nano(now_unix_nano()),
        "LoggingDriver": cfg.log_driver,
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "NEventsListener": 0,
        "KernelVersion": kernel,
        "OperatingSystem": os_name,
        "OSVersion": os_version,
        "OSType": "linux",
        "Architecture": machine,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": [],
            "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": [],
            "IndexConfigs": {},
            "Mirrors": [],
        },
        "NCPU": crate::stats::online_cpus(),
        "MemTotal": crate::stats::host_memory().unwrap_or(0),
        "GenericResources": null,
        "DockerRootDir": cfg.data_root.display().to_string(),
        "HttpProxy": env("HTTP_PROXY"),
        "HttpsProxy": env("HTTPS_PROXY"),
        "NoProxy": env("NO_PROXY"),
        "Name": host::hostname(),
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": SERVER_VERSION,
        "Runtimes": {"lookout-shim": {"path": shim}},
        "DefaultRuntime": "lookout-shim",
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": false,
            "Error": "",
            "RemoteManagers": null,
        },
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": [],
        "CDISpecDirs": [],
        "Warnings": if warnings.is_empty() { Value::Null } else { json!(warnings) },
    });
    json(StatusCode::OK, &v)
}
