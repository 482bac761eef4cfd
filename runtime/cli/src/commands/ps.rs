//! `lookout ps`: the container table as `docker ps` prints it.

use anyhow::Result;
use bollard::container::ListContainersOptions;
use bollard::models::{ContainerSummary, Port};
use clap::Args;

use super::parse_filters;
use crate::client::Client;
use crate::format::{
    Table, ellipsis, go_quote, go_time, human_since, human_size_prec, truncate_id, unix_now,
};
use crate::template::render_list;
use crate::timeparse::local_zone;

/// `lookout ps`
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Filter output based on conditions provided (key=value)
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
    /// Format output: "table …", "json" or a Go template ({{.ID}}, {{.Names}}, …)
    #[arg(long)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
}

/// The table's header.
pub const HEADER: [&str; 7] = [
    "CONTAINER ID",
    "IMAGE",
    "COMMAND",
    "CREATED",
    "STATUS",
    "PORTS",
    "NAMES",
];

/// The docker CLI's `DisplayablePorts` (without range folding):
/// `0.0.0.0:8080->80/tcp, 443/tcp`.
pub fn display_ports(ports: &[Port]) -> String {
    let mut out: Vec<String> = ports
        .iter()
        .map(|p| {
            let typ = p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into());
            match (p.public_port, p.ip.as_deref()) {
                (Some(public), Some(ip)) if !ip.is_empty() => {
                    let ip = if ip.contains(':') {
                        format!("[{ip}]")
                    } else {
                        ip.to_string()
                    };
                    format!("{ip}:{public}->{}/{typ}", p.private_port)
                }
                (Some(public), _) => format!("{public}->{}/{typ}", p.private_port),
                (None, _) => format!("{}/{typ}", p.private_port),
            }
        })
        .collect();
    out.dedup();
    out.join(", ")
}

/// The header `--format table …` shows for each field.
pub fn format_header() -> serde_json::Value {
    serde_json::json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
        "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
        "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
        "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
        "LocalVolumes": "LOCAL VOLUMES",
    })
}

/// The fields `--format` templates see for `c`, as the docker CLI's
/// container context names them.
pub fn format_fields(
    c: &ContainerSummary,
    now: i64,
    trunc: bool,
    zone: &(i64, String),
) -> serde_json::Value {
    let cells = row(c, now, trunc);
    let mut labels: Vec<String> = c
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    labels.sort();
    let mounts: Vec<String> = c
        .mounts
        .iter()
        .flatten()
        .filter_map(|m| m.name.clone().or_else(|| m.source.clone()))
        .collect();
    let local_volumes = c
        .mounts
        .iter()
        .flatten()
        .filter(|m| m.driver.as_deref() == Some("local"))
        .count();
    let mut networks: Vec<String> = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let size = size_text(c);
    serde_json::json!({
        "ID": cells[0], "Image": cells[1], "Command": cells[2],
        "CreatedAt": go_time(c.created.unwrap_or(0), zone.0, &zone.1),
        "RunningFor": cells[3], "Status": cells[4], "Ports": cells[5], "Names": cells[6],
        "State": c.state.clone().unwrap_or_default(),
        "Size": size, "Labels": labels.join(","), "Mounts": mounts.join(","),
        "Networks": networks.join(","), "LocalVolumes": local_volumes.to_string(),
        "Platform": null,
    })
}

/// The SIZE column: `0B (virtual 1.98MB)`.
pub fn size_text(c: &ContainerSummary) -> String {
    let rw = human_size_prec(c.size_rw.unwrap_or(0) as f64, 3);
    match c.size_root_fs {
        Some(v) if v > 0 => format!("{rw} (virtual {})", human_size_prec(v as f64, 3)),
        _ => rw,
    }
}

/// One row of the table for `c`, at `now` (Unix seconds).
pub fn row(c: &ContainerSummary, now: i64, trunc: bool) -> Vec<String> {
    let id = c.id.clone().unwrap_or_default();
    let id = if trunc { truncate_id(&id) } else { id };
    let image = match c.image.as_deref() {
        None | Some("") => "<no image>".to_string(),
        Some(img) if trunc && img.starts_with("sha256:") => truncate_id(img),
        Some(img) => img.to_string(),
    };
    let command = c.command.clone().unwrap_or_default();
    let command = go_quote(&if trunc {
        ellipsis(&command, 20)
    } else {
        command
    });
    let created = c.created.map(|t| human_since(t, now)).unwrap_or_default();
    let status = c.status.clone().unwrap_or_default();
    let ports = display_ports(c.ports.as_deref().unwrap_or(&[]));
    // Names without the leading slash; links (`/a/b`) only with --no-trunc.
    let names: Vec<String> = c
        .names
        .iter()
        .flatten()
        .map(|n| n.strip_prefix('/').unwrap_or(n).to_string())
        .filter(|n| !trunc || !n.contains('/'))
        .collect();
    vec![id, image, command, created, status, ports, names.join(",")]
}

/// Runs `lookout ps`.
pub async fn ps(client: &Client, a: &PsArgs) -> Result<i32> {
    let filters = parse_filters(&a.filters)?;
    let list = client
        .docker
        .list_containers(Some(ListContainersOptions {
            all: a.all,
            filters,
            // Sizes cost the daemon a walk of the layer: only when shown.
            size: a.size || a.format.as_deref().is_some_and(|f| f.contains(".Size")),
            ..Default::default()
        }))
        .await?;
    if a.quiet {
        let mut out = String::new();
        for c in &list {
            let id = c.id.clone().unwrap_or_default();
            out.push_str(&if a.no_trunc { id } else { truncate_id(&id) });
            out.push('\n');
        }
        print!("{out}");
        return Ok(0);
    }
    let now = unix_now();
    if let Some(f) = a
        .format
        .as_deref()
        .filter(|f| !f.is_empty() && *f != "table")
    {
        let zone = local_zone();
        let rows: Vec<serde_json::Value> = list
            .iter()
            .map(|c| format_fields(c, now, !a.no_trunc, &zone))
            .collect();
        print!("{}", render_list(f, &format_header(), &rows)?);
        return Ok(0);
    }
    let mut header = HEADER.to_vec();
    if a.size {
        header.push("SIZE");
    }
    let mut t = Table::new(&header);
    for c in &list {
        let mut cells = row(c, now, !a.no_trunc);
        if a.size {
            cells.push(size_text(c));
        }
        t.row(cells);
    }
    print!("{}", t.render());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"[{"Id":"c1a48da6340deee8f8a794573379c8ca749ce2f91811bf42ee25e72f5a8753d8","Names":["/sample"],"Image":"bb:1","ImageID":"sha256:5c5dabf140d9","Command":"sh -c 'while true; do echo hi; sleep 1; done'","Created":1795812160,"Ports":[],"Labels":{"team":"obs"},"State":"running","Status":"Up 2 seconds","HostConfig":{"NetworkMode":"default"}}]"#;

    #[test]
    fn rows_like_docker_ps() {
        let list: Vec<ContainerSummary> = serde_json::from_str(SAMPLE).unwrap();
        let r = row(&list[0], 1_795_812_165, true);
        assert_eq!(
            r,
            [
                "c1a48da6340d",
                "bb:1",
                "\"sh -c 'while true; …\"",
                "5 seconds ago",
                "Up 2 seconds",
                "",
                "sample"
            ]
        );
        let mut t = Table::new(&HEADER);
        t.row(r);
        let text = t.render();
        assert_eq!(
            text.lines().next().unwrap(),
            "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS     NAMES"
        );
        let r = row(&list[0], 1_795_812_165, false);
        assert_eq!(r[0].len(), 64);
        assert_eq!(r[2], "\"sh -c 'while true; do echo hi; sleep 1; done'\"");
    }

    #[test]
    fn the_captured_list_parses() {
        let text = include_str!(
            "../../../../tests/fixtures/docker-api-samples/containers_json_all_1_size_1.json"
        );
        let list: Vec<ContainerSummary> = serde_json::from_str(text).unwrap();
        assert!(!list.is_empty());
        for c in &list {
            assert_eq!(row(c, 1_795_812_165, true).len(), 7);
        }
    }

    #[test]
    fn format_fields_like_docker() {
        let list: Vec<ContainerSummary> = serde_json::from_str(SAMPLE).unwrap();
        let zone = (0, "UTC".to_string());
        let f = format_fields(&list[0], 1_795_812_165, true, &zone);
        assert_eq!(f["ID"], "c1a48da6340d");
        assert_eq!(f["Names"], "sample");
        assert_eq!(f["RunningFor"], "5 seconds ago");
        assert_eq!(f["CreatedAt"], "2026-11-27 20:42:40 +0000 UTC");
        assert_eq!(f["Labels"], "team=obs");
        assert_eq!(f["State"], "running");
        assert_eq!(f["Size"], "0B");
        let out = render_list(
            "table {{.Names}}\\t{{.Status}}\\t{{.Labels}}",
            &format_header(),
            &[f],
        )
        .unwrap();
        assert_eq!(
            out,
            "NAMES     STATUS         LABELS\nsample    Up 2 seconds   team=obs\n"
        );
    }

    #[test]
    fn ports() {
        let p: Vec<Port> = serde_json::from_str(
            r#"[{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},{"PrivatePort":53,"Type":"udp"},{"IP":"::","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}]"#,
        )
        .unwrap();
        assert_eq!(
            display_ports(&p),
            "0.0.0.0:8080->80/tcp, 53/udp, [::]:8080->80/tcp"
        );
    }
}
