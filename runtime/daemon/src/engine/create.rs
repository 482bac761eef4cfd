//! Turning a create request into a container: Docker's merge rules for the
//! image's defaults (command, entrypoint, environment, working directory,
//! user, labels), the log configuration, the network mode and the limits.

use std::collections::BTreeMap;

use bollard_stubs::models::{ContainerConfig, HostConfig};
use lookout_core::spec::{NetworkMode, Resources, RlimitSpec};
use lookout_image::ImageConfig;

use super::EngineError;

/// `Cmd`/`Entrypoint` after Docker's rule: when the request gives no
/// entrypoint, an empty request `Cmd` takes the image's `Cmd`, and a
/// missing (null) request entrypoint takes the image's; a given entrypoint
/// drops the image's `Cmd`. `[""]` resets the entrypoint to none.
pub fn merge_command(
    req_cmd: Option<Vec<String>>,
    req_entrypoint: Option<Vec<String>>,
    image: &ImageConfig,
) -> (Vec<String>, Vec<String>) {
    let mut cmd = req_cmd.unwrap_or_default();
    let ep_given = req_entrypoint.is_some();
    let mut ep = req_entrypoint.unwrap_or_default();
    if ep.is_empty() {
        if cmd.is_empty() {
            cmd = image.cmd.clone().unwrap_or_default();
        }
        if !ep_given {
            ep = image.entrypoint.clone().unwrap_or_default();
        }
    }
    if ep.len() == 1 && ep[0].is_empty() {
        ep.clear();
    }
    (cmd, ep)
}

/// PID 1's program and arguments: entrypoint followed by cmd.
pub fn path_and_args(cmd: &[String], ep: &[String]) -> Result<(String, Vec<String>), EngineError> {
    let all: Vec<String> = ep.iter().chain(cmd.iter()).cloned().collect();
    match all.split_first() {
        Some((p, rest)) if !p.is_empty() => Ok((p.clone(), rest.to_vec())),
        _ => Err(EngineError::InvalidParameter("no command specified".into())),
    }
}

/// The image's environment with the request's entries replacing those of
/// the same name (moby's `ReplaceOrAppendEnvValues`); an entry without `=`
/// in the request removes the variable.
pub fn merge_env(image: &[String], req: &[String]) -> Vec<String> {
    let key = |e: &str| {
        e.split_once('=')
            .map(|(k, _)| k.to_string())
            .unwrap_or_else(|| e.to_string())
    };
    let mut out: Vec<String> = image.to_vec();
    for e in req {
        let k = key(e);
        let pos = out.iter().position(|o| key(o) == k);
        match (e.contains('='), pos) {
            (true, Some(i)) => out[i] = e.clone(),
            (true, None) => out.push(e.clone()),
            (false, Some(i)) => {
                out.remove(i);
            }
            (false, None) => {}
        }
    }
    out
}

/// The container's configuration as inspect shows it: the request's values
/// with the image's defaults filled in.
pub fn merged_config(
    mut cfg: ContainerConfig,
    image: &ImageConfig,
    cmd: Vec<String>,
    ep: Vec<String>,
    default_hostname: &str,
) -> ContainerConfig {
    cfg.env = Some(merge_env(&image.env, cfg.env.as_deref().unwrap_or(&[])));
    cfg.cmd = Some(cmd);
    cfg.entrypoint = if ep.is_empty() { None } else { Some(ep) };
    if cfg.working_dir.as_deref().unwrap_or("").is_empty() {
        cfg.working_dir = Some(image.working_dir.clone());
    }
    if cfg.user.as_deref().unwrap_or("").is_empty() {
        cfg.user = Some(image.user.clone());
    }
    let mut labels: BTreeMap<String, String> = image.labels.clone();
    labels.extend(cfg.labels.take().unwrap_or_default());
    cfg.labels = Some(labels.into_iter().collect());
    if cfg.hostname.as_deref().unwrap_or("").is_empty() {
        cfg.hostname = Some(default_hostname.to_string());
    }
    cfg
}

/// The network mode: `host`, or `none` for `none`, `default`, `bridge` and
/// the empty string (lookout has no bridge network yet, so the default is an
/// isolated namespace holding only `lo`).
pub fn network_mode(mode: Option<&str>) -> Result<NetworkMode, EngineError> {
    match mode.unwrap_or("") {
        "" | "default" | "bridge" | "none" => Ok(NetworkMode::None),
        "host" => Ok(NetworkMode::Host),
        other => Err(EngineError::InvalidParameter(format!(
            "network mode {other:?} is not supported: use none, default or host"
        ))),
    }
}

/// Refuses host options lookout does not carry out yet, so none is silently
/// ignored (bind mounts, volumes, published ports, devices, privileged mode,
/// shared namespaces, sysctls, tmpfs, a read-only rootfs, DNS settings).
pub fn check_supported(hc: &HostConfig) -> Result<(), EngineError> {
    let mut bad: Vec<&str> = Vec::new();
    let some_vec = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    if some_vec(&hc.binds) || hc.mounts.as_ref().is_some_and(|m| !m.is_empty()) {
        bad.push("bind mounts and volumes (-v, --mount)");
    }
    if some_vec(&hc.volumes_from) {
        bad.push("--volumes-from");
    }
    if hc.port_bindings.as_ref().is_some_and(|m| {
        m.values()
            .any(|b| b.as_ref().is_some_and(|b| !b.is_empty()))
    }) || hc.publish_all_ports == Some(true)
    {
        bad.push("published ports (-p, -P)");
    }
    if hc.privileged == Some(true) {
        bad.push("--privileged");
    }
    if hc.devices.as_ref().is_some_and(|d| !d.is_empty()) {
        bad.push("--device");
    }
    if some_vec(&hc.links) {
        bad.push("--link");
    }
    for (flag, v) in [
        ("--pid", &hc.pid_mode),
        ("--userns", &hc.userns_mode),
        ("--uts", &hc.uts_mode),
    ] {
        if v.as_deref().is_some_and(|m| !m.is_empty()) {
            bad.push(flag);
        }
    }
    if hc
        .ipc_mode
        .as_deref()
        .is_some_and(|m| !matches!(m, "" | "private" | "shareable" | "none"))
    {
        bad.push("--ipc");
    }
    if hc.sysctls.as_ref().is_some_and(|m| !m.is_empty()) {
        bad.push("--sysctl");
    }
    if hc.tmpfs.as_ref().is_some_and(|m| !m.is_empty()) {
        bad.push("--tmpfs");
    }
    if hc.readonly_rootfs == Some(true) {
        bad.push("--read-only");
    }
    if some_vec(&hc.dns)
        || some_vec(&hc.dns_search)
        || some_vec(&hc.dns_options)
        || some_vec(&hc.extra_hosts)
    {
        bad.push("DNS and host entries (--dns, --add-host)");
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(EngineError::InvalidParameter(format!(
            "not supported by lookout yet: {}",
            bad.join(", ")
        )))
    }
}

/// Docker's minimum memory limit (6 MiB).
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The limits of the host configuration, checked as dockerd checks them.
pub fn resources(hc: &HostConfig) -> Result<Resources, EngineError> {
    let pos = |v: Option<i64>| v.filter(|&x| x > 0);
    let bad = |m: String| Err(EngineError::InvalidParameter(m));
    if let Some(m) = pos(hc.memory)
        && m < MIN_MEMORY
    {
        return bad("Minimum memory limit allowed is 6MB".into());
    }
    if pos(hc.nano_cpus).is_some() && (pos(hc.cpu_quota).is_some() || pos(hc.cpu_period).is_some())
    {
        return bad("Conflicting options: Nano CPUs and CPU Period cannot both be set".into());
    }
    if let Some(n) = hc.nano_cpus
        && n < 0
    {
        return bad(format!("invalid NanoCpus {n}: must not be negative"));
    }
    if let (Some(s), Some(m)) = (pos(hc.memory_swap), pos(hc.memory))
        && s < m
    {
        return bad(
            "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
        );
    }
    Ok(Resources {
        memory: pos(hc.memory),
        memory_reservation: pos(hc.memory_reservation),
        memory_swap: hc
            .memory_swap
            .filter(|&x| x > 0 || x == -1)
            .filter(|_| pos(hc.memory).is_some()),
        cpu_shares: pos(hc.cpu_shares),
        nano_cpus: pos(hc.nano_cpus),
        cpu_period: pos(hc.cpu_period),
        cpu_quota: pos(hc.cpu_quota),
        cpuset_cpus: hc.cpuset_cpus.clone().filter(|s| !s.is_empty()),
        cpuset_mems: hc.cpuset_mems.clone().filter(|s| !s.is_empty()),
        pids_limit: pos(hc.pids_limit),
        blkio_weight: hc.blkio_weight.filter(|&w| w > 0).map(i64::from),
    })
}

/// `--ulimit` entries, each checked.
pub fn rlimits(hc: &HostConfig) -> Result<Vec<RlimitSpec>, EngineError> {
    let mut out = Vec::new();
    for u in hc.ulimits.iter().flatten() {
        let name = u.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(EngineError::InvalidParameter(
                "ulimit without a name".into(),
            ));
        }
        let soft = u.soft.unwrap_or(0);
        let hard = u.hard.unwrap_or(soft);
        if soft < 0 || hard < 0 || soft > hard {
            return Err(EngineError::InvalidParameter(format!(
                "invalid ulimit {name}={soft}:{hard}: soft must be at most hard and neither negative"
            )));
        }
        out.push(RlimitSpec {
            name,
            soft: soft as u64,
            hard: hard as u64,
        });
    }
    Ok(out)
}

/// The effective log driver and options: the request's when it names a
/// driver, else the daemon's defaults.
pub fn log_config(
    hc: &HostConfig,
    default_driver: &str,
    default_opts: &BTreeMap<String, String>,
) -> (String, Vec<(String, String)>) {
    match hc
        .log_config
        .as_ref()
        .and_then(|l| l.typ.clone())
        .filter(|t| !t.is_empty())
    {
        Some(t) => {
            let opts: BTreeMap<String, String> = hc
                .log_config
                .as_ref()
                .and_then(|l| l.config.clone())
                .unwrap_or_default()
                .into_iter()
                .collect();
            (t, opts.into_iter().collect())
        }
        None => {
            let mut opts: BTreeMap<String, String> = default_opts.clone();
            if let Some(c) = hc.log_config.as_ref().and_then(|l| l.config.clone()) {
                opts.extend(c);
            }
            (default_driver.to_string(), opts.into_iter().collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(cmd: Option<&[&str]>, ep: Option<&[&str]>) -> ImageConfig {
        ImageConfig {
            cmd: cmd.map(|c| c.iter().map(|s| s.to_string()).collect()),
            entrypoint: ep.map(|c| c.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_rules() {
        let i = img(Some(&["sh"]), Some(&["/init"]));
        // Nothing given: both from the image.
        assert_eq!(merge_command(None, None, &i), (v(&["sh"]), v(&["/init"])));
        // Cmd given: the image's entrypoint stays.
        assert_eq!(
            merge_command(Some(v(&["echo"])), None, &i),
            (v(&["echo"]), v(&["/init"]))
        );
        // Entrypoint given: the image's Cmd is dropped.
        assert_eq!(
            merge_command(None, Some(v(&["/bin/x"])), &i),
            (v(&[]), v(&["/bin/x"]))
        );
        // Entrypoint reset with [""]: no entrypoint, no image cmd.
        assert_eq!(
            merge_command(Some(v(&["ls"])), Some(v(&[""])), &i),
            (v(&["ls"]), v(&[]))
        );
        assert!(path_and_args(&[], &[]).is_err());
        assert_eq!(
            path_and_args(&v(&["-c", "x"]), &v(&["sh"])).unwrap(),
            ("sh".to_string(), v(&["-c", "x"]))
        );
    }

    #[test]
    fn env_merge() {
        let out = merge_env(&v(&["PATH=/bin", "A=1", "B=2"]), &v(&["A=9", "C=3", "B"]));
        assert_eq!(out, v(&["PATH=/bin", "A=9", "C=3"]));
    }

    #[test]
    fn limits_are_checked() {
        let hc = HostConfig {
            memory: Some(1024),
            ..Default::default()
        };
        assert!(resources(&hc).unwrap_err().to_string().contains("6MB"));
        let hc = HostConfig {
            nano_cpus: Some(500_000_000),
            cpu_quota: Some(1000),
            ..Default::default()
        };
        assert!(resources(&hc).is_err());
        let hc = HostConfig {
            memory: Some(64 << 20),
            pids_limit: Some(-1),
            cpu_shares: Some(0),
            ..Default::default()
        };
        let r = resources(&hc).unwrap();
        assert_eq!(r.memory, Some(64 << 20));
        assert_eq!(r.pids_limit, None);
        assert_eq!(r.cpu_shares, None);
    }

    #[test]
    fn unsupported_options_are_refused() {
        assert!(check_supported(&HostConfig::default()).is_ok());
        let hc = HostConfig {
            binds: Some(vec!["/a:/b".into()]),
            privileged: Some(true),
            dns: Some(vec![]),
            port_bindings: Some(Default::default()),
            ..Default::default()
        };
        let e = check_supported(&hc).unwrap_err().to_string();
        assert!(e.contains("-v") && e.contains("--privileged"), "{e}");
        assert!(!e.contains("DNS") && !e.contains("published"), "{e}");
    }

    #[test]
    fn network_modes() {
        assert_eq!(network_mode(Some("default")).unwrap(), NetworkMode::None);
        assert_eq!(network_mode(Some("host")).unwrap(), NetworkMode::Host);
        assert!(network_mode(Some("container:x")).is_err());
    }

    #[test]
    fn log_defaults() {
        let mut d = BTreeMap::new();
        d.insert("max-size".to_string(), "1m".to_string());
        let (drv, opts) = log_config(&HostConfig::default(), "json-file", &d);
        assert_eq!(drv, "json-file");
        assert_eq!(opts, vec![("max-size".to_string(), "1m".to_string())]);
    }
}
