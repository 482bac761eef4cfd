//! The Docker Engine API server: hyper over unix sockets, one task per
//! connection (with upgrades, for attach), a router that accepts
//! version-prefixed and bare paths, and dockerd's common headers.

pub mod containers;
pub mod events;
pub mod http;
pub mod images;
pub mod streams;
pub mod system;
pub mod version;

use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

use crate::engine::Engine;
use http::{ApiError, Query, Resp, error_response};

/// What handlers share.
#[derive(Debug)]
pub struct Ctx {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Log each request to stderr.
    pub debug: bool,
}

/// Errors setting up a listener.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Something else listens there.
    #[error("{}: another daemon is already listening on this socket", path.display())]
    InUse {
        /// The socket.
        path: PathBuf,
    },
    /// The group does not exist.
    #[error("group {0:?} not found (socket group, -G/--group)")]
    NoGroup(String),
    /// A system call failed.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What was done.
        context: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Binds a unix socket at `path`, mode 0660, owned by root and `group`
/// (explicit: must exist; `None`: `lookout` when it exists, else root's).
pub fn bind_unix(path: &Path, group: Option<&str>) -> Result<UnixListener, ListenError> {
    let io = |context, source| ListenError::Io {
        context,
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io("creating the directory of", e))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ListenError::InUse {
                path: path.to_path_buf(),
            });
        }
        std::fs::remove_file(path).map_err(|e| io("removing the stale socket", e))?;
    }
    let gid = match group {
        Some(g) => Some(
            nix::unistd::Group::from_name(g)
                .ok()
                .flatten()
                .ok_or_else(|| ListenError::NoGroup(g.to_string()))?
                .gid,
        ),
        None => nix::unistd::Group::from_name(crate::config::DEFAULT_GROUP)
            .ok()
            .flatten()
            .map(|g| g.gid),
    };
    let l = UnixListener::bind(path).map_err(|e| io("binding", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| io("setting the mode of", e))?;
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(0)),
        gid.or(Some(nix::unistd::Gid::from_raw(0))),
    )
    .map_err(|e| io("changing the owner of", std::io::Error::from(e)))?;
    Ok(l)
}

/// Serves `listener` until `shutdown` resolves.
pub async fn serve(
    listener: UnixListener,
    ctx: Arc<Ctx>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = listener.accept() => {
                let (stream, _) = match r {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("lookoutd: accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(ctx.clone(), req));
                    let conn = http1::Builder::new()
                        .title_case_headers(true)
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades();
                    // A client that goes away mid-request is not an error.
                    let _ = conn.await;
                });
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Handles one request: routes it, turns errors into dockerd's JSON, adds
/// the common headers.
pub async fn handle(ctx: Arc<Ctx>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut resp = match route(&ctx, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    let h = resp.headers_mut();
    h.insert(
        "Api-Version",
        HeaderValue::from_static(version::API_VERSION_HEADER),
    );
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    if let Ok(v) = HeaderValue::from_str(&format!("lookout/{} (linux)", system::SERVER_VERSION)) {
        h.insert(hyper::header::SERVER, v);
    }
    if ctx.debug {
        eprintln!("lookoutd: {method} {path} -> {}", resp.status().as_u16());
    }
    Ok(resp)
}

/// Decodes `%XX` escapes of a path segment.
fn unescape(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len() + 1
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn route(ctx: &Arc<Ctx>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let full_path = req.uri().path().to_string();
    let (_version, rest) = version::split_version(&full_path)?;
    let segs: Vec<String> = rest
        .trim_start_matches('/')
        .split('/')
        .map(unescape)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = req.method().clone();
    let get = m == Method::GET;
    let post = m == Method::POST;
    let delete = m == Method::DELETE;
    match segs.as_slice() {
        ["_ping"] if get || m == Method::HEAD => Ok(system::ping(&m)),
        ["version"] if get => Ok(system::version()),
        ["info"] if get => Ok(system::info(ctx)),
        ["events"] if get => events::events(ctx, &req).await,
        ["containers", "create"] if post => containers::create(ctx, req).await,
        ["containers", "json"] if get => containers::list(ctx, &req).await,
        ["containers", "prune"] if post => containers::prune(ctx, &req).await,
        ["containers", id, action] => {
            let c = ctx.engine.get(id)?;
            let q = Query::of(&req)?;
            match (*action, &m) {
                ("json", &Method::GET) => Ok(containers::inspect(&c)),
                ("start", &Method::POST) => containers::start(ctx, &c).await,
                ("stop", &Method::POST) => containers::stop(ctx, &c, &q).await,
                ("restart", &Method::POST) => containers::restart(ctx, &c, &q).await,
                ("kill", &Method::POST) => containers::kill(ctx, &c, &q).await,
                ("wait", &Method::POST) => containers::wait(&c, &q).await,
                ("logs", &Method::GET) => containers::logs(&c, &q).await,
                ("stats", &Method::GET) => containers::stats(ctx, &c, &q).await,
                ("top", &Method::GET) => containers::top(ctx, &c, &q).await,
                ("attach", &Method::POST) => containers::attach(ctx, &c, req).await,
                _ => Err(ApiError::not_found_page()),
            }
        }
        ["containers", id] if delete => {
            let c = ctx.engine.get(id)?;
            let q = Query::of(&req)?;
            containers::remove(ctx, &c, &q).await
        }
        ["images", "create"] if post => images::create(ctx, req).await,
        ["images", "json"] if get => images::list(ctx, &req).await,
        ["images", "prune"] if post => images::prune(ctx, &req).await,
        ["images", name @ .., "json"] if get && !name.is_empty() => {
            images::inspect(ctx, &name.join("/")).await
        }
        ["images", name @ .., "tag"] if post && !name.is_empty() => {
            images::tag(ctx, &name.join("/"), &req).await
        }
        ["images", name @ ..] if delete && !name.is_empty() => {
            images::remove(ctx, &name.join("/"), &req).await
        }
        _ => Err(ApiError::not_found_page()),
    }
}
