//! `import`, `images`, `rmi`.

use std::collections::{HashMap, HashSet};

use anyhow::{Context as _, Result, bail};
use bollard::image::{ListImagesOptions, RemoveImageOptions};
use bollard::models::{ImageDeleteResponseItem, ImageSummary};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, StreamBody};
use hyper::Method;
use hyper::body::Frame;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::client::{Body, Client, body_or_error, describe_error, empty_body, query_escape};
use crate::format::{Table, go_time, human_since, human_size_prec, truncate_id, unix_now};
use crate::template::render_list;
use crate::timeparse::local_zone;

/// `lookout import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub changes: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// A tarball (`-` for stdin) or a URL
    #[arg(value_name = "file|URL|-", allow_hyphen_values = true)]
    pub source: String,
    /// Repository and tag for the image
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `lookout images`
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
    /// Format output: "table …", "json" or a Go template ({{.Repository}}, {{.ID}}, …)
    #[arg(long)]
    pub format: Option<String>,
    /// Only images matching this reference
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `lookout rmi`
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    /// Images
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// The query of `POST /images/create` for an import, as the docker client
/// builds it (`repo` carries the whole reference, `changes` repeats).
pub fn import_query(a: &ImportArgs) -> String {
    let src = if a.source == "-" || a.source.contains("://") {
        a.source.as_str()
    } else {
        "-"
    };
    let mut q = vec![format!("fromSrc={}", query_escape(src))];
    q.push(format!(
        "repo={}",
        query_escape(a.reference.as_deref().unwrap_or(""))
    ));
    q.push("tag=".into());
    q.push(format!(
        "message={}",
        query_escape(a.message.as_deref().unwrap_or(""))
    ));
    if let Some(p) = &a.platform {
        q.push(format!("platform={}", query_escape(p)));
    }
    for c in &a.changes {
        q.push(format!("changes={}", query_escape(c)));
    }
    q.join("&")
}

/// A request body streamed from `reader` in 64 KiB chunks.
fn streamed(reader: impl AsyncRead + Unpin + Send + Sync + 'static) -> Body {
    let chunks = futures_util::stream::unfold(reader, |mut r| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    });
    BodyExt::boxed(StreamBody::new(chunks))
}

/// Reads the daemon's JSON message stream: the statuses (the new image's ID
/// last), or the first error.
pub fn import_statuses(body: &[u8]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for msg in serde_json::Deserializer::from_slice(body).into_iter::<serde_json::Value>() {
        let msg = msg.context("reading the daemon's progress messages")?;
        if let Some(err) = msg.get("error").and_then(|e| e.as_str()) {
            bail!("{err}");
        }
        if let Some(m) = msg
            .get("errorDetail")
            .and_then(|e| e.get("message"))
            .and_then(|m| m.as_str())
        {
            bail!("{m}");
        }
        if let Some(s) = msg.get("status").and_then(|s| s.as_str()) {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

/// Runs `lookout import`: streams the file (or stdin) as the request body.
pub async fn import(client: &Client, a: &ImportArgs) -> Result<i32> {
    let body = if a.source == "-" {
        streamed(tokio::io::stdin())
    } else if a.source.contains("://") {
        empty_body()
    } else {
        let f = tokio::fs::File::open(&a.source)
            .await
            .with_context(|| format!("open {}", a.source))?;
        streamed(f)
    };
    let resp = client
        .raw
        .send(
            Method::POST,
            &format!("/images/create?{}", import_query(a)),
            Some("application/x-tar"),
            body,
        )
        .await?;
    let bytes = body_or_error(resp).await?;
    let statuses = import_statuses(&bytes).map_err(|e| {
        anyhow::Error::new(crate::client::DaemonError {
            status: 500,
            message: e.to_string(),
        })
    })?;
    for s in statuses {
        println!("{s}");
    }
    Ok(0)
}

/// Splits `repo:tag` at the tag's colon (not a registry port's).
pub fn split_repo_tag(rt: &str) -> (String, String) {
    match rt.rfind(':') {
        Some(i) if !rt[i + 1..].contains('/') => (rt[..i].to_string(), rt[i + 1..].to_string()),
        _ => (rt.to_string(), "<none>".to_string()),
    }
}

/// The rows of `docker images` for `list` at `now` (one per tag; untagged
/// images as `<none> <none>`).
pub fn rows(list: &[ImageSummary], now: i64, trunc: bool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for img in list {
        let id = if trunc {
            truncate_id(&img.id)
        } else {
            img.id.clone()
        };
        let created = human_since(img.created, now);
        let size = human_size_prec(img.size as f64, 3);
        let mut tags: Vec<(String, String)> =
            img.repo_tags.iter().map(|t| split_repo_tag(t)).collect();
        if tags.is_empty() {
            tags.push(("<none>".into(), "<none>".into()));
        }
        for (repo, tag) in tags {
            out.push(vec![repo, tag, id.clone(), created.clone(), size.clone()]);
        }
    }
    out
}

/// The header `--format table …` shows for each field.
pub fn format_header() -> serde_json::Value {
    serde_json::json!({
        "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
        "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
        "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
        "VirtualSize": "VIRTUAL SIZE",
    })
}

/// The fields `--format` templates see, one object per row of
/// [`rows`], as the docker CLI's image context names them.
pub fn format_fields(
    list: &[ImageSummary],
    now: i64,
    trunc: bool,
    zone: &(i64, String),
) -> Vec<serde_json::Value> {
    let n_a = |v: i64| {
        if v < 0 {
            "N/A".to_string()
        } else {
            human_size_prec(v as f64, 4)
        }
    };
    let mut out = Vec::new();
    let mut cells = rows(list, now, trunc).into_iter();
    for img in list {
        let n = img.repo_tags.len().max(1);
        for row in cells.by_ref().take(n) {
            let digest = img
                .repo_digests
                .first()
                .and_then(|d| d.split_once('@'))
                .map_or("<none>".to_string(), |(_, d)| d.to_string());
            out.push(serde_json::json!({
                "Repository": row[0], "Tag": row[1], "ID": row[2], "CreatedSince": row[3],
                "Size": row[4], "Digest": digest,
                "CreatedAt": go_time(img.created, zone.0, &zone.1),
                "Containers": if img.containers < 0 { "N/A".to_string() } else { img.containers.to_string() },
                "SharedSize": n_a(img.shared_size),
                "UniqueSize": if img.shared_size < 0 { "N/A".to_string() } else { human_size_prec((img.size - img.shared_size) as f64, 4) },
                "VirtualSize": human_size_prec(img.size as f64, 4),
            }));
        }
    }
    out
}

/// Runs `lookout images`.
pub async fn images(client: &Client, a: &ImagesArgs) -> Result<i32> {
    let mut filters: HashMap<String, Vec<String>> = super::parse_filters(&a.filters)?;
    if let Some(r) = &a.reference {
        filters
            .entry("reference".into())
            .or_default()
            .push(r.clone());
    }
    let list = client
        .docker
        .list_images(Some(ListImagesOptions {
            all: a.all,
            filters,
            ..Default::default()
        }))
        .await?;
    if a.quiet {
        let mut seen = HashSet::new();
        for img in &list {
            let id = if a.no_trunc {
                img.id.clone()
            } else {
                truncate_id(&img.id)
            };
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(0);
    }
    if let Some(f) = a
        .format
        .as_deref()
        .filter(|f| !f.is_empty() && *f != "table")
    {
        let fields = format_fields(&list, unix_now(), !a.no_trunc, &local_zone());
        print!("{}", render_list(f, &format_header(), &fields)?);
        return Ok(0);
    }
    let mut t = Table::new(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    for r in rows(&list, unix_now(), !a.no_trunc) {
        t.row(r);
    }
    print!("{}", t.render());
    Ok(0)
}

/// The lines `docker rmi` prints for a delete response.
pub fn rmi_lines(items: &[ImageDeleteResponseItem]) -> Vec<String> {
    let mut out = Vec::new();
    for it in items {
        if let Some(u) = &it.untagged {
            out.push(format!("Untagged: {u}"));
        }
        if let Some(d) = &it.deleted {
            out.push(format!("Deleted: {d}"));
        }
    }
    out
}

/// Runs `lookout rmi`.
pub async fn rmi(client: &Client, a: &RmiArgs) -> Result<i32> {
    let mut failed = false;
    for image in &a.images {
        let res = client
            .docker
            .remove_image(
                image,
                Some(RemoveImageOptions {
                    force: a.force,
                    noprune: a.no_prune,
                }),
                None,
            )
            .await;
        match res {
            Ok(items) => {
                for l in rmi_lines(&items) {
                    println!("{l}");
                }
            }
            Err(e) => {
                eprintln!("{}", describe_error(&e.into(), ""));
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_query_like_the_docker_client() {
        let a = ImportArgs {
            changes: vec!["CMD [\"sh\"]".into(), "ENV A=1".into()],
            message: Some("hi there".into()),
            platform: None,
            source: "build/rootfs/busybox.tar".into(),
            reference: Some("bb:1".into()),
        };
        assert_eq!(
            import_query(&a),
            "fromSrc=-&repo=bb%3A1&tag=&message=hi%20there&changes=CMD%20%5B%22sh%22%5D&changes=ENV%20A%3D1"
        );
    }

    #[test]
    fn import_progress() {
        let body = br#"{"status":"sha256:5c5dabf140d9"}
"#;
        assert_eq!(import_statuses(body).unwrap(), ["sha256:5c5dabf140d9"]);
        let body = br#"{"errorDetail":{"message":"bad tar"},"error":"bad tar"}"#;
        assert_eq!(import_statuses(body).unwrap_err().to_string(), "bad tar");
    }

    #[test]
    fn image_rows() {
        let text = include_str!("../../../../tests/fixtures/docker-api-samples/images_json.json");
        let list: Vec<ImageSummary> = serde_json::from_str(text).unwrap();
        let r = rows(&list, 1_795_812_165, true);
        assert_eq!(r[0], ["bb", "1", "5c5dabf140d9", "5 seconds ago", "1.98MB"]);
        assert!(r.iter().all(|row| row.len() == 5));
        let mut t = Table::new(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
        t.row(r[0].clone());
        assert_eq!(
            t.render(),
            "REPOSITORY   TAG       IMAGE ID       CREATED         SIZE\nbb           1         5c5dabf140d9   5 seconds ago   1.98MB\n"
        );
    }

    #[test]
    fn image_format_fields() {
        let list: Vec<ImageSummary> = serde_json::from_str(
            r#"[{"Containers":-1,"Created":1795812160,"Id":"sha256:5c5dabf140d95b0766880c4005ec5ee4cc2505813a1165a44805f2d6e0940c0f","Labels":null,"ParentId":"","RepoDigests":null,"RepoTags":["bb:1","bb:latest"],"SharedSize":-1,"Size":1984230,"VirtualSize":1984230}]"#,
        )
        .unwrap();
        let f = format_fields(&list, 1_795_812_165, true, &(0, "UTC".into()));
        assert_eq!(f.len(), 2);
        assert_eq!(f[1]["Tag"], "latest");
        assert_eq!(f[0]["Containers"], "N/A");
        assert_eq!(f[0]["Digest"], "<none>");
        assert_eq!(
            render_list(
                "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}",
                &format_header(),
                &f[..1]
            )
            .unwrap(),
            "bb:1 5c5dabf140d9 1.98MB\n"
        );
    }

    #[test]
    fn repo_tags() {
        assert_eq!(split_repo_tag("bb:1"), ("bb".into(), "1".into()));
        assert_eq!(
            split_repo_tag("localhost:5000/bb:1"),
            ("localhost:5000/bb".into(), "1".into())
        );
        assert_eq!(
            split_repo_tag("localhost:5000/bb"),
            ("localhost:5000/bb".into(), "<none>".into())
        );
        assert_eq!(
            split_repo_tag("<none>:<none>"),
            ("<none>".into(), "<none>".into())
        );
    }

    #[test]
    fn rmi_output() {
        let items = vec![
            ImageDeleteResponseItem {
                untagged: Some("bb:1".into()),
                deleted: None,
            },
            ImageDeleteResponseItem {
                untagged: None,
                deleted: Some("sha256:5c5d".into()),
            },
        ];
        assert_eq!(
            rmi_lines(&items),
            ["Untagged: bb:1", "Deleted: sha256:5c5d"]
        );
    }
}
