//! Connecting to the daemon: host resolution, the bollard client, a small
//! raw HTTP client for the few requests bollard 0.18 cannot make as the docker
//! CLI does (raw inspect JSON, streamed import, stop with a signal, wait whose
//! headers we see before starting), and the docker CLI's error messages.

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, combinators::BoxBody};
use hyper::{Method, Request, Response, StatusCode, body::Incoming};
use hyper_util::rt::TokioIo;

/// Where the daemon listens when neither `-H`, `LOOKOUT_HOST` nor
/// `DOCKER_HOST` says.
pub const DEFAULT_HOST: &str = "unix:///run/lookout/lookout.sock";

/// How long a request may wait for its response headers. Long: `wait`,
/// `attach` and `logs -f` are legitimately slow, and the docker CLI has no
/// timeout either.
const REQUEST_TIMEOUT_SECS: u64 = 365 * 24 * 3600;

/// The daemon's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// `unix:///path/to.sock`
    Unix(PathBuf),
    /// `tcp://host:port` (plain HTTP)
    Tcp(String),
}

impl Host {
    /// Parses `unix:///path`, `tcp://host:port` or a bare socket path.
    pub fn parse(s: &str) -> Result<Host> {
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                bail!("invalid host {s:?}: empty socket path");
            }
            Ok(Host::Unix(PathBuf::from(p)))
        } else if let Some(a) = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("http://"))
        {
            let a = a.trim_end_matches('/');
            if a.is_empty() {
                bail!("invalid host {s:?}: empty address");
            }
            Ok(Host::Tcp(if a.contains(':') {
                a.to_string()
            } else {
                format!("{a}:2375")
            }))
        } else if s.starts_with('/') {
            Ok(Host::Unix(PathBuf::from(s)))
        } else {
            bail!("invalid host {s:?}: use unix:///path or tcp://host:port")
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// The host to talk to: `-H`, else `LOOKOUT_HOST`, else `DOCKER_HOST`, else
/// [`DEFAULT_HOST`]. `env` looks a variable up (empty counts as unset).
pub fn resolve_host(flag: Option<&str>, env: impl Fn(&str) -> Option<String>) -> String {
    if let Some(h) = flag.filter(|h| !h.is_empty()) {
        return h.to_string();
    }
    for var in ["LOOKOUT_HOST", "DOCKER_HOST"] {
        if let Some(v) = env(var).filter(|v| !v.is_empty()) {
            return v;
        }
    }
    DEFAULT_HOST.to_string()
}

/// An error the daemon answered with (`{"message": …}`).
#[derive(Debug)]
pub struct DaemonError {
    /// The HTTP status.
    pub status: u16,
    /// The daemon's message.
    pub message: String,
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for DaemonError {}

/// The daemon could not be reached.
#[derive(Debug)]
pub struct ConnectError {
    /// The address tried.
    pub host: String,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Cannot connect to the lookout daemon at {}. Is the lookout daemon running?",
            self.host
        )
    }
}

impl std::error::Error for ConnectError {}

/// The status and message of a daemon error anywhere in `err`'s chain
/// (ours or bollard's).
pub fn daemon_error(err: &anyhow::Error) -> Option<(u16, String)> {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<DaemonError>() {
            return Some((e.status, e.message.clone()));
        }
        if let Some(bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        }) = cause.downcast_ref::<bollard::errors::Error>()
        {
            return Some((*status_code, message.clone()));
        }
    }
    None
}

/// Whether `err` means the daemon could not be reached at all.
fn is_connect_failure(err: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as B;
    match err {
        B::SocketNotFoundError(_) => true,
        B::HyperLegacyError { err } => err.is_connect(),
        B::IOError { err } => matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
        ),
        _ => false,
    }
}

/// The text the docker CLI would print for `err` (without a trailing
/// newline): `Error response from daemon: …`, `Cannot connect to …`, or the
/// error's own chain.
pub fn describe_error(err: &anyhow::Error, host: &str) -> String {
    if let Some((_, message)) = daemon_error(err) {
        return format!("Error response from daemon: {message}");
    }
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<ConnectError>() {
            return e.to_string();
        }
        if let Some(e) = cause.downcast_ref::<bollard::errors::Error>()
            && is_connect_failure(e)
        {
            return ConnectError {
                host: host.to_string(),
            }
            .to_string();
        }
    }
    format!("{err:#}")
}

/// The daemon connection: bollard for most requests, [`Raw`] for the rest.
pub struct Client {
    /// bollard, with the API version negotiated.
    pub docker: bollard::Docker,
    /// Requests bollard 0.18 cannot make as the docker CLI does.
    pub raw: Raw,
}

impl Client {
    /// Connects to `host` and negotiates the API version (as the docker CLI
    /// does with its ping).
    pub async fn connect(host: &str) -> Result<Client> {
        let parsed = Host::parse(host)?;
        let unreachable = || ConnectError {
            host: host.to_string(),
        };
        let docker = match &parsed {
            Host::Unix(p) => {
                if !p.exists() {
                    return Err(unreachable().into());
                }
                bollard::Docker::connect_with_unix(
                    &p.to_string_lossy(),
                    REQUEST_TIMEOUT_SECS,
                    bollard::API_DEFAULT_VERSION,
                )
            }
            Host::Tcp(a) => bollard::Docker::connect_with_http(
                &format!("http://{a}"),
                REQUEST_TIMEOUT_SECS,
                bollard::API_DEFAULT_VERSION,
            ),
        }
        .map_err(anyhow::Error::from)?;
        let docker = match docker.clone().negotiate_version().await {
            Ok(d) => d,
            Err(e) if is_connect_failure(&e) => return Err(unreachable().into()),
            // A daemon whose /version we cannot read: speak our default.
            Err(_) => docker,
        };
        let version = docker.client_version().to_string();
        Ok(Client {
            docker,
            raw: Raw {
                host: parsed,
                host_text: host.to_string(),
                version,
            },
        })
    }
}

/// A request body for [`Raw`].
pub type Body = BoxBody<Bytes, std::io::Error>;

/// An empty request body.
pub fn empty_body() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// A minimal HTTP/1.1 client over the daemon's socket (one connection per
/// request), for the requests bollard 0.18 does not make as the docker CLI
/// does.
#[derive(Clone)]
pub struct Raw {
    host: Host,
    host_text: String,
    version: String,
}

impl Raw {
    /// Sends `method path` (path relative to `/v<version>`, query included)
    /// and returns the response once its headers arrived, whatever its status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Body,
    ) -> Result<Response<Incoming>> {
        let unreachable = |e: std::io::Error| {
            anyhow::Error::new(ConnectError {
                host: self.host_text.clone(),
            })
            .context(e)
        };
        let mut sender = match &self.host {
            Host::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(unreachable)?;
                handshake(TokioIo::new(s)).await?
            }
            Host::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(a)
                    .await
                    .map_err(unreachable)?;
                handshake(TokioIo::new(s)).await?
            }
        };
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/v{}{path}", self.version))
            .header(hyper::header::HOST, "lookout")
            .header(hyper::header::USER_AGENT, "lookout-cli");
        if let Some(ct) = content_type {
            req = req.header(hyper::header::CONTENT_TYPE, ct);
        }
        let req = req.body(body).context("building the request")?;
        sender
            .send_request(req)
            .await
            .context("sending the request to the daemon")
    }

    /// Sends the request and returns the whole body of a successful
    /// response; a 4xx/5xx becomes a [`DaemonError`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Body,
    ) -> Result<Bytes> {
        let resp = self.send(method, path, content_type, body).await?;
        body_or_error(resp).await
    }

    /// `GET path` as JSON text (raw bytes, key order kept).
    pub async fn get(&self, path: &str) -> Result<Bytes> {
        self.call(Method::GET, path, None, empty_body()).await
    }
}

/// The body of `resp`, or a [`DaemonError`] carrying its message.
pub async fn body_or_error(resp: Response<Incoming>) -> Result<Bytes> {
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .context("reading the daemon's response")?
        .to_bytes();
    if status.is_client_error() || status.is_server_error() {
        return Err(daemon_error_from(status, &body).into());
    }
    Ok(body)
}

/// The [`DaemonError`] of an error response body (`{"message": …}`, or the
/// text itself).
pub fn daemon_error_from(status: StatusCode, body: &[u8]) -> DaemonError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    DaemonError {
        status: status.as_u16(),
        message,
    }
}

async fn handshake<T>(io: T) -> Result<hyper::client::conn::http1::SendRequest<Body>>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .context("HTTP handshake with the daemon")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Escapes a container or image name for a URL path, leaving what a path
/// may hold as is (`bb:1`, `localhost:5000/bb:1`, `img@sha256:…`), as the
/// docker client sends names.
pub fn path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:@/!$&'()*+,;=".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes a query value.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_precedence() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            resolve_host(
                Some("unix:///a.sock"),
                env(&[("LOOKOUT_HOST", "unix:///b")])
            ),
            "unix:///a.sock"
        );
        assert_eq!(
            resolve_host(
                None,
                env(&[("LOOKOUT_HOST", "unix:///b"), ("DOCKER_HOST", "unix:///c")])
            ),
            "unix:///b"
        );
        assert_eq!(
            resolve_host(None, env(&[("DOCKER_HOST", "unix:///c")])),
            "unix:///c"
        );
        assert_eq!(
            resolve_host(None, env(&[("LOOKOUT_HOST", "")])),
            DEFAULT_HOST
        );
    }

    #[test]
    fn host_parsing() {
        assert_eq!(
            Host::parse("unix:///run/x.sock").unwrap(),
            Host::Unix("/run/x.sock".into())
        );
        assert_eq!(
            Host::parse("tcp://127.0.0.1:2375").unwrap(),
            Host::Tcp("127.0.0.1:2375".into())
        );
        assert_eq!(Host::parse("tcp://h").unwrap(), Host::Tcp("h:2375".into()));
        assert!(Host::parse("ssh://x").is_err());
        assert!(Host::parse("unix://").is_err());
    }

    #[test]
    fn daemon_messages() {
        let e = daemon_error_from(
            StatusCode::NOT_FOUND,
            br#"{"message":"No such container: nosuch"}"#,
        );
        assert_eq!(
            e.to_string(),
            "Error response from daemon: No such container: nosuch"
        );
        let err = anyhow::Error::new(e).context("inspecting");
        assert_eq!(
            describe_error(&err, "unix:///x"),
            "Error response from daemon: No such container: nosuch"
        );
        assert_eq!(daemon_error(&err).map(|(s, _)| s), Some(404));
        let err = anyhow::Error::new(ConnectError {
            host: "unix:///x".into(),
        });
        assert_eq!(
            describe_error(&err, "unix:///x"),
            "Cannot connect to the lookout daemon at unix:///x. Is the lookout daemon running?"
        );
    }

    #[test]
    fn escapes_queries() {
        assert_eq!(query_escape("bb:1"), "bb%3A1");
        assert_eq!(path_escape("localhost:5000/bb:1"), "localhost:5000/bb:1");
        assert_eq!(path_escape("a b?#"), "a%20b%3F%23");
        assert_eq!(query_escape("CMD [\"sh\"]"), "CMD%20%5B%22sh%22%5D");
    }
}
