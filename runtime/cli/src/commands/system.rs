//! `version` and `info`.

use anyhow::Result;
use clap::Args;
use serde_json::{Value, json};

use crate::client::{Client, describe_error};
use crate::format::bytes_size;
use crate::template::{Format, Json};

/// `lookout version`
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

/// `lookout info`
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

/// Go's name for this machine's architecture.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// The client half of `version`.
fn client_json(api_version: &str) -> Value {
    json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": api_version,
        "DefaultAPIVersion": bollard::API_DEFAULT_VERSION.to_string(),
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
    })
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn n(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or(0)
}

fn b(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

/// `version`'s text for `{"Client": …, "Server": …}`, laid out as
/// `docker version`.
pub fn version_text(v: &Value) -> String {
    let c = &v["Client"];
    let api = s(c, "ApiVersion");
    let default_api = s(c, "DefaultAPIVersion");
    let api = if api != default_api && !default_api.is_empty() {
        format!("{api} (downgraded from {default_api})")
    } else {
        api.to_string()
    };
    let mut out = format!(
        "Client:\n Version:           {}\n API version:       {api}\n OS/Arch:           {}/{}\n",
        s(c, "Version"),
        s(c, "Os"),
        s(c, "Arch")
    );
    let srv = &v["Server"];
    if srv.is_null() {
        return out;
    }
    match srv.get("Platform").map(|p| s(p, "Name")).unwrap_or("") {
        "" => out.push_str("\nServer:\n"),
        name => out.push_str(&format!("\nServer: {name}\n")),
    }
    let engine = |d: &Value, out: &mut String| {
        out.push_str(&format!(
            "  API version:      {} (minimum version {})\n",
            s(d, "ApiVersion"),
            s(d, "MinAPIVersion")
        ));
        out.push_str(&format!("  Go version:       {}\n", s(d, "GoVersion")));
        out.push_str(&format!("  Git commit:       {}\n", s(d, "GitCommit")));
        out.push_str(&format!(
            "  Built:            {}\n",
            ansic_date(s(d, "BuildTime"))
        ));
        out.push_str(&format!(
            "  OS/Arch:          {}/{}\n",
            s(d, "Os"),
            s(d, "Arch")
        ));
        out.push_str(&format!("  Experimental:     {}\n", s(d, "Experimental")));
    };
    match srv.get("Components").and_then(Value::as_array) {
        Some(cs) if !cs.is_empty() => {
            for comp in cs {
                let d = comp.get("Details").cloned().unwrap_or(Value::Null);
                out.push_str(&format!(" {}:\n", s(comp, "Name")));
                out.push_str(&format!("  Version:          {}\n", s(comp, "Version")));
                if s(comp, "Name") == "Engine" {
                    engine(&d, &mut out);
                } else {
                    out.push_str(&format!("  GitCommit:        {}\n", s(&d, "GitCommit")));
                }
            }
        }
        _ => {
            out.push_str(" Engine:\n");
            out.push_str(&format!("  Version:          {}\n", s(srv, "Version")));
            let mut d = srv.clone();
            if let Some(o) = d.as_object_mut() {
                let exp = b(srv, "Experimental").to_string();
                o.insert("Experimental".into(), Value::String(exp));
            }
            engine(&d, &mut out);
        }
    }
    out
}

/// The docker CLI's `reformatDate`: an RFC 3339 build time as Go's
/// `time.ANSIC` (`Fri Nov 27 22:58:29 2026`), anything else unchanged.
pub fn ansic_date(t: &str) -> String {
    let Some(ts) = crate::timeparse::parse_rfc3339ish(t, 0) else {
        return t.to_string();
    };
    // Keep the written zone's wall clock, as Go's Format does.
    let offset = match t.rfind(['+', '-']) {
        Some(i) if i > 10 && t.len() - i == 6 => {
            let h: i64 = t[i + 1..i + 3].parse().unwrap_or(0);
            let m: i64 = t[i + 4..].parse().unwrap_or(0);
            let o = h * 3600 + m * 60;
            if &t[i..=i] == "-" { -o } else { o }
        }
        _ => 0,
    };
    crate::format::ansic(ts.secs + offset)
}

fn render_format(f: &str, v: &Value) -> Result<String> {
    let tmpl = Format::parse(f)?;
    let json = Json::parse(serde_json::to_string(v)?.as_bytes())?;
    Ok(tmpl.render(&json)? + "\n")
}

/// Runs `lookout version`: the client half prints even when the daemon
/// cannot be reached (exit 1 then, as docker).
pub async fn version(host: &str, a: &VersionArgs) -> Result<i32> {
    let (client, err) = match Client::connect(host).await {
        Ok(c) => (Some(c), None),
        Err(e) => (None, Some(e)),
    };
    let api = client
        .as_ref()
        .map(|c| c.docker.client_version().to_string())
        .unwrap_or_else(|| bollard::API_DEFAULT_VERSION.to_string());
    let mut server = Value::Null;
    let mut err = err;
    if let Some(c) = &client {
        match c.raw.get("/version").await {
            Ok(b) => server = serde_json::from_slice(&b).unwrap_or(Value::Null),
            Err(e) => err = Some(e),
        }
    }
    let v = json!({ "Client": client_json(&api), "Server": server });
    match &a.format {
        Some(f) => print!("{}", render_format(f, &v)?),
        None => print!("{}", version_text(&v)),
    }
    if let Some(e) = err {
        eprintln!("{}", describe_error(&e, host));
        return Ok(1);
    }
    Ok(0)
}

/// `info`'s text for the daemon's `/info` JSON, laid out as `docker info`.
pub fn info_text(i: &Value) -> String {
    let mut o = String::new();
    o.push_str(&format!(
        "Client:\n Version:    {}\n Debug Mode: false\n\nServer:\n",
        env!("CARGO_PKG_VERSION")
    ));
    o.push_str(&format!(" Containers: {}\n", n(i, "Containers")));
    o.push_str(&format!("  Running: {}\n", n(i, "ContainersRunning")));
    o.push_str(&format!("  Paused: {}\n", n(i, "ContainersPaused")));
    o.push_str(&format!("  Stopped: {}\n", n(i, "ContainersStopped")));
    o.push_str(&format!(" Images: {}\n", n(i, "Images")));
    o.push_str(&format!(" Server Version: {}\n", s(i, "ServerVersion")));
    o.push_str(&format!(" Storage Driver: {}\n", s(i, "Driver")));
    for pair in i
        .get("DriverStatus")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some([k, v]) = pair.as_array().map(Vec::as_slice) {
            o.push_str(&format!(
                "  {}: {}\n",
                k.as_str().unwrap_or(""),
                v.as_str().unwrap_or("")
            ));
        }
    }
    o.push_str(&format!(" Logging Driver: {}\n", s(i, "LoggingDriver")));
    o.push_str(&format!(" Cgroup Driver: {}\n", s(i, "CgroupDriver")));
    o.push_str(&format!(" Cgroup Version: {}\n", s(i, "CgroupVersion")));
    if let Some(p) = i.get("Plugins").filter(|p| p.is_object()) {
        o.push_str(" Plugins:\n");
        for k in ["Volume", "Network", "Log"] {
            let names: Vec<&str> = p
                .get(k)
                .and_then(Value::as_array)
                .map(|l| l.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            o.push_str(&format!("  {k}: {}\n", names.join(" ")));
        }
    }
    if let Some(sw) = i.get("Swarm").filter(|v| v.is_object()) {
        o.push_str(&format!(" Swarm: {}\n", s(sw, "LocalNodeState")));
    }
    if let Some(rt) = i.get("Runtimes").and_then(Value::as_object) {
        let mut names: Vec<&String> = rt.keys().collect();
        names.sort();
        let names: Vec<&str> = names.into_iter().map(String::as_str).collect();
        o.push_str(&format!(" Runtimes: {}\n", names.join(" ")));
        o.push_str(&format!(" Default Runtime: {}\n", s(i, "DefaultRuntime")));
        o.push_str(&format!(" Init Binary: {}\n", s(i, "InitBinary")));
        let commit = |k: &str| i.get(k).map(|c| s(c, "ID")).unwrap_or("").to_string();
        o.push_str(&format!(
            " containerd version: {}\n",
            commit("ContainerdCommit")
        ));
        o.push_str(&format!(" runc version: {}\n", commit("RuncCommit")));
        o.push_str(&format!(" init version: {}\n", commit("InitCommit")));
    }
    let sec: Vec<&str> = i
        .get("SecurityOptions")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !sec.is_empty() {
        o.push_str(" Security Options:\n");
        for opt in sec {
            // "name=seccomp,profile=builtin" prints as "seccomp" + "Profile: builtin".
            let mut parts = opt.split(',');
            let name = parts.next().unwrap_or("");
            o.push_str(&format!(
                "  {}\n",
                name.strip_prefix("name=").unwrap_or(name)
            ));
            for p in parts {
                if let Some((k, v)) = p.split_once('=') {
                    let mut k = k.to_string();
                    if let Some(first) = k.get_mut(0..1) {
                        first.make_ascii_uppercase();
                    }
                    o.push_str(&format!("   {k}: {v}\n"));
                }
            }
        }
    }
    o.push_str(&format!(" Kernel Version: {}\n", s(i, "KernelVersion")));
    o.push_str(&format!(" Operating System: {}\n", s(i, "OperatingSystem")));
    o.push_str(&format!(" OSType: {}\n", s(i, "OSType")));
    o.push_str(&format!(" Architecture: {}\n", s(i, "Architecture")));
    o.push_str(&format!(" CPUs: {}\n", n(i, "NCPU")));
    o.push_str(&format!(
        " Total Memory: {}\n",
        bytes_size(n(i, "MemTotal") as f64)
    ));
    o.push_str(&format!(" Name: {}\n", s(i, "Name")));
    o.push_str(&format!(" ID: {}\n", s(i, "ID")));
    o.push_str(&format!(" Docker Root Dir: {}\n", s(i, "DockerRootDir")));
    o.push_str(&format!(" Debug Mode: {}\n", b(i, "Debug")));
    if let Some(labels) = i
        .get("Labels")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
    {
        o.push_str(" Labels:\n");
        for l in labels.iter().filter_map(Value::as_str) {
            o.push_str(&format!("  {l}\n"));
        }
    }
    o.push_str(&format!(" Experimental: {}\n", b(i, "ExperimentalBuild")));
    o.push_str(&format!(
        " Live Restore Enabled: {}\n",
        b(i, "LiveRestoreEnabled")
    ));
    o.push('\n');
    let warnings: Vec<&str> = i
        .get("Warnings")
        .and_then(Value::as_array)
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for w in warnings {
        o.push_str(w);
        o.push('\n');
    }
    o
}

/// Runs `lookout info`.
pub async fn info(client: &Client, a: &InfoArgs) -> Result<i32> {
    let raw = client.raw.get("/info").await?;
    match &a.format {
        Some(f) => {
            let tmpl = Format::parse(f)?;
            println!("{}", tmpl.render(&Json::parse(&raw)?)?);
        }
        None => print!("{}", info_text(&serde_json::from_slice(&raw)?)),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_the_sample() {
        let server: Value = serde_json::from_slice(include_bytes!(
            "../../../../tests/fixtures/docker-api-samples/version.json"
        ))
        .unwrap();
        let v = json!({"Client": client_json("1.41"), "Server": server});
        let text = version_text(&v);
        assert!(text.starts_with("Client:\n Version:           "), "{text}");
        assert!(
            text.contains("  API version:      1.41 (minimum version 1.12)\n"),
            "{text}"
        );
        assert!(
            text.contains("  Built:            Thu May  7 21:09:36 2026\n"),
            "{text}"
        );
        assert!(
            text.contains(" API version:       1.41 (downgraded from 1.47)\n"),
            "{text}"
        );
        assert_eq!(
            render_format("{{.Server.ApiVersion}}", &v).unwrap(),
            "1.41\n"
        );
    }

    #[test]
    fn info_from_the_sample() {
        let b: &[u8] = include_bytes!("../../../../tests/fixtures/docker-api-samples/info.json");
        let i: Value = serde_json::from_slice(b).unwrap();
        let text = info_text(&i);
        assert!(text.contains("\n Containers: "), "{text}");
        assert!(text.contains("\n Total Memory: "), "{text}");
        assert!(text.contains("\n Cgroup Version: 1\n"), "{text}");
    }
}
