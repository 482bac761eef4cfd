//! `/images/…`: import (`POST /images/create?fromSrc=-`), list, inspect,
//! tag and remove, on the image store.

use std::collections::HashSet;
use std::io::Read;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use lookout_image::{Image, ImportOptions, Removed};
use serde_json::{Value, json};

use super::Ctx;
use super::http::{ApiError, Query, Resp, json, status_only};
use super::system::SERVER_VERSION;
use crate::timefmt::{ZERO_TIME, rfc3339_nano};

/// A blocking reader over body chunks sent by the async side.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(Ok(b)) => self.cur = b,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// `POST /images/create`: imports the request body (`fromSrc=-`) as a new
/// image, streaming it into the store (never held whole in memory).
pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let q = Query::of(&req)?;
    if let Some(from) = q.get("fromImage").filter(|s| !s.is_empty()) {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "pulling images is not supported (asked for {from:?}): import a rootfs tarball with docker import"
            ),
        ));
    }
    match q.get("fromSrc") {
        Some("-") => {}
        Some(other) if !other.is_empty() => {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                format!(
                    "importing from a URL is not supported (fromSrc={other:?}): send the archive as the request body (fromSrc=-)"
                ),
            ));
        }
        _ => {
            return Err(ApiError::bad_request(
                "missing fromSrc or fromImage: only fromSrc=- (an archive in the body) is supported",
            ));
        }
    }
    let repo = q.get("repo").unwrap_or("").to_string();
    let tag = q.get("tag").unwrap_or("").to_string();
    let reference = match (repo.is_empty(), tag.is_empty()) {
        (true, _) => None,
        (false, true) => Some(repo.clone()),
        (false, false) => Some(format!("{repo}:{tag}")),
    };
    let opts = ImportOptions {
        changes: q
            .all("changes")
            .into_iter()
            .filter(|c| !c.is_empty())
            .collect(),
        reference,
        // dockerd's default comment for an import from the request body.
        message: Some(
            q.get("message")
                .filter(|m| !m.is_empty())
                .unwrap_or("Imported from -")
                .to_string(),
        ),
        max_expanded_bytes: 0,
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Bytes, std::io::Error>>(16);
    let store = ctx.engine.images().clone();
    let job = tokio::task::spawn_blocking(move || {
        store.import(
            ChannelReader {
                rx,
                cur: Bytes::new(),
            },
            &opts,
        )
    });
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        let item = match frame {
            Ok(f) => match f.into_data() {
                Ok(d) => Ok(d),
                Err(_) => continue,
            },
            Err(e) => Err(std::io::Error::other(format!("reading the upload: {e}"))),
        };
        let failed = item.is_err();
        let tx2 = tx.clone();
        let sent = tokio::task::spawn_blocking(move || tx2.send(item).is_ok())
            .await
            .unwrap_or(false);
        if !sent || failed {
            break;
        }
    }
    drop(tx);
    let imported = job.await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("import task: {e}"),
        )
    })??;
    let id = imported.image.id.clone();
    ctx.engine.image_event("import", &id, &id);
    for t in &imported.image.repo_tags {
        ctx.engine.image_event("tag", &id, t);
    }
    let mut body = serde_json::to_vec(&json!({ "status": imported.image.id })).unwrap_or_default();
    body.extend_from_slice(b"\r\n");
    Ok(hyper::Response::builder()
        .status(StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(super::http::full(body))
        .unwrap_or_else(|_| status_only(StatusCode::OK)))
}

fn labels_json(img: &Image) -> Value {
    if img.config.labels.is_empty() {
        Value::Null
    } else {
        json!(img.config.labels)
    }
}

/// `GET /images/json`.
pub async fn list(ctx: &Ctx, req: &Request<Incoming>) -> Result<Resp, ApiError> {
    let q = Query::of(req)?;
    let filters = super::http::parse_filters(&q)?;
    let store = ctx.engine.images().clone();
    let images = tokio::task::spawn_blocking(move || store.list())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let want_refs = filters.get("reference").cloned().unwrap_or_default();
    let want_labels = filters.get("label").cloned().unwrap_or_default();
    let dangling = filters
        .get("dangling")
        .and_then(|v| v.first())
        .map(|v| v == "true");
    let out: Vec<Value> = images
        .iter()
        .filter(|i| {
            want_refs.is_empty()
                || i.repo_tags.iter().any(|t| {
                    want_refs
                        .iter()
                        .any(|r| t == r || t.split(':').next() == Some(r.as_str()))
                })
        })
        .filter(|i| match dangling {
            Some(d) => d == i.repo_tags.is_empty(),
            None => true,
        })
        .filter(|i| {
            want_labels.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => i.config.labels.get(k).map(String::as_str) == Some(v),
                None => i.config.labels.contains_key(l),
            })
        })
        .map(|i| {
            json!({
                "Containers": -1,
                "Created": i.created_unix,
                "Id": i.id,
                "Labels": labels_json(i),
                "ParentId": "",
                "RepoDigests": [],
                "RepoTags": i.repo_tags,
                "SharedSize": -1,
                "Size": i.size,
                "VirtualSize": i.size,
            })
        })
        .collect();
    Ok(json(StatusCode::OK, &Value::Array(out)))
}

fn config_json(img: &Image) -> Value {
    let c = &img.config;
    let exposed: serde_json::Map<String, Value> = c
        .exposed_ports
        .iter()
        .map(|p| (p.clone(), json!({})))
        .collect();
    json!({
        "Hostname": "",
        "Domainname": "",
        "User": c.user,
        "AttachStdin": false,
        "AttachStdout": false,
        "AttachStderr": false,
        "ExposedPorts": if exposed.is_empty() { Value::Null } else { Value::Object(exposed) },
        "Tty": false,
        "OpenStdin": false,
        "StdinOnce": false,
        "Env": if c.env.is_empty() { Value::Null } else { json!(c.env) },
        "Cmd": c.cmd,
        "Image": "",
        "Volumes": null,
        "WorkingDir": c.working_dir,
        "Entrypoint": c.entrypoint,
        "OnBuild": null,
        "Labels": labels_json(img),
    })
}

/// `GET /images/{name}/json`.
pub async fn inspect(ctx: &Ctx, name: &str) -> Result<Resp, ApiError> {
    let store = ctx.engine.images().clone();
    let n = name.to_string();
    let img = tokio::task::spawn_blocking(move || store.get(&n))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let layer = ctx.engine.images().layer_dir(&img).display().to_string();
    let v = json!({
        "Id": img.id,
        "RepoTags": img.repo_tags,
        "RepoDigests": [],
        "Parent": "",
        "Comment": img.comment,
        "Created": rfc3339_nano(img.created_unix * 1_000_000_000),
        "Container": "",
        "ContainerConfig": config_json(&img),
        "DockerVersion": SERVER_VERSION,
        "Author": "",
        "Config": config_json(&img),
        "Architecture": img.architecture,
        "Os": img.os,
        "Size": img.size,
        "VirtualSize": img.size,
        "GraphDriver": {
            "Data": {"MergedDir": layer, "UpperDir": layer, "WorkDir": ""},
            "Name": "overlayfs",
        },
        "RootFS": {"Type": "layers", "Layers": [img.layer_id]},
        "Metadata": {"LastTagTime": ZERO_TIME},
    });
    Ok(json(StatusCode::OK, &v))
}

/// `POST /images/{name}/tag?repo=&tag=`.
pub async fn tag(ctx: &Ctx, name: &str, req: &Request<Incoming>) -> Result<Resp, ApiError> {
    let q = Query::of(req)?;
    let repo = q.get("repo").unwrap_or("").to_string();
    if repo.is_empty() {
        return Err(ApiError::bad_request(
            "invalid reference format: repository name (repo) must not be empty",
        ));
    }
    let tag = q.get("tag").filter(|t| !t.is_empty()).map(str::to_string);
    let store = ctx.engine.images().clone();
    let n = name.to_string();
    // The reference as the store records it: the tag given, else the one in
    // `repo`, else `latest`.
    let tagged = match &tag {
        Some(t) => format!("{repo}:{t}"),
        None if repo
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':')) =>
        {
            repo.clone()
        }
        None => format!("{repo}:latest"),
    };
    let image = tokio::task::spawn_blocking(move || {
        store.tag(&n, &repo, tag.as_deref())?;
        store.get(&n)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    ctx.engine.image_event("tag", &image.id, &tagged);
    Ok(status_only(StatusCode::CREATED))
}

/// `DELETE /images/{name}?force=`.
pub async fn remove(ctx: &Ctx, name: &str, req: &Request<Incoming>) -> Result<Resp, ApiError> {
    let q = Query::of(req)?;
    let force = q.bool("force");
    let in_use: HashSet<String> = ctx.engine.images_in_use().into_keys().collect();
    let store = ctx.engine.images().clone();
    let n = name.to_string();
    let (image_id, removed) = tokio::task::spawn_blocking(move || {
        let id = store.get(&n).map(|i| i.id).unwrap_or_default();
        store
            .remove(&n, force, &|id: &str| in_use.contains(id))
            .map(|r| (id, r))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    for r in &removed {
        match r {
            Removed::Untagged(t) => ctx.engine.image_event("untag", &image_id, t),
            Removed::Deleted(d) if *d == image_id => ctx.engine.image_event("delete", d, d),
            Removed::Deleted(_) => {}
        }
    }
    let out: Vec<Value> = removed
        .into_iter()
        .map(|r| match r {
            Removed::Untagged(t) => json!({ "Untagged": t }),
            Removed::Deleted(d) => json!({ "Deleted": d }),
        })
        .collect();
    Ok(json(StatusCode::OK, &Value::Array(out)))
}

/// `POST /images/prune?filters=`: deletes dangling (untagged) images no
/// container uses; with `dangling=false`, every image no container uses.
pub async fn prune(ctx: &Ctx, req: &Request<Incoming>) -> Result<Resp, ApiError> {
    let q = Query::of(req)?;
    let f = super::http::parse_filters(&q)?;
    let mut dangling_only = true;
    for (k, vals) in &f {
        match k.as_str() {
            "dangling" => {
                for v in vals {
                    dangling_only = match v.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "invalid filter 'dangling={other}'"
                            )));
                        }
                    }
                }
            }
            other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
        }
    }
    let in_use: HashSet<String> = ctx.engine.images_in_use().into_keys().collect();
    let store = ctx.engine.images().clone();
    let (deleted, reclaimed) = tokio::task::spawn_blocking(move || {
        let mut out: Vec<Removed> = Vec::new();
        let mut reclaimed = 0u64;
        for img in store.list()? {
            if in_use.contains(&img.id) || (dangling_only && !img.repo_tags.is_empty()) {
                continue;
            }
            if let Ok(r) = store.remove(&img.id, true, &|id: &str| in_use.contains(id)) {
                reclaimed += img.size;
                out.extend(r);
            }
        }
        Ok::<_, lookout_image::ImageError>((out, reclaimed))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let items: Vec<Value> = deleted
        .into_iter()
        .map(|r| match r {
            Removed::Untagged(t) => json!({ "Untagged": t }),
            Removed::Deleted(d) => {
                ctx.engine.image_event("delete", &d, &d);
                json!({ "Deleted": d })
            }
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({"ImagesDeleted": if items.is_empty() { Value::Null } else { Value::Array(items) }, "SpaceReclaimed": reclaimed}),
    ))
}
