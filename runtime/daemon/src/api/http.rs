//! HTTP plumbing shared by the handlers: the body type, JSON and error
//! responses (dockerd's `{"message": …}`), query parameters with Docker's
//! boolean and integer rules, and request bodies read under a size cap.

use std::collections::HashMap;
use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode, header};
use serde_json::Value;

use crate::engine::EngineError;
use lookout_image::ImageError;

/// Response bodies: full or streamed.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;
/// A response.
pub type Resp = Response<Body>;

/// Largest JSON request body accepted (10 MiB).
pub const MAX_JSON_BODY: usize = 10 << 20;

/// An error answered as `{"message": …}` with a status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 `page not found`.
    pub fn not_found_page() -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "page not found")
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, e.to_string())
    }
}

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> ApiError {
        let status =
            StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, e.to_string())
    }
}

/// A body holding `b`.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> Body {
    full(Bytes::new())
}

/// A body fed by a channel; `guard` is dropped with the body (when the
/// response is done or the client went away).
pub fn channel_body<G: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    guard: G,
) -> Body {
    let s = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        let item = rx.recv().await?;
        Some((item.map(Frame::data), (rx, guard)))
    });
    BodyExt::boxed_unsync(StreamBody::new(s))
}

/// A response with `status` and a JSON body.
pub fn json(status: StatusCode, v: &Value) -> Resp {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(b))
        .unwrap_or_else(|_| Response::new(empty()))
}

/// An empty response with `status`.
pub fn status_only(status: StatusCode) -> Resp {
    let mut r = Response::new(empty());
    *r.status_mut() = status;
    r
}

/// The error response.
pub fn error_response(e: &ApiError) -> Resp {
    if e.status == StatusCode::NOT_MODIFIED {
        return status_only(StatusCode::NOT_MODIFIED);
    }
    json(e.status, &serde_json::json!({ "message": e.message }))
}

/// Query parameters (repeated keys kept in order).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses the query string of `req`.
    pub fn of<B>(req: &Request<B>) -> Result<Query, ApiError> {
        let q = req.uri().query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q)
            .map_err(|e| ApiError::bad_request(format!("invalid query string {q:?}: {e}")))?;
        Ok(Query { pairs })
    }

    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Docker's boolean: absent, empty, `0`, `no`, `false` and `none` are
    /// false; anything else true.
    pub fn bool(&self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(v) => !matches!(
                v.to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            ),
        }
    }

    /// Like [`Query::bool`] with a default when the key is absent.
    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        if self.get(key).is_some() {
            self.bool(key)
        } else {
            default
        }
    }

    /// An integer parameter; empty or absent is `None`.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {key}: {v:?} is not an integer"))
            }),
        }
    }
}

/// Reads a request body of at most [`MAX_JSON_BODY`] bytes (413 beyond).
pub async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
    match Limited::new(body, MAX_JSON_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body too large: the limit is {MAX_JSON_BODY} bytes"),
                ))
            } else {
                Err(ApiError::bad_request(format!(
                    "reading the request body: {e}"
                )))
            }
        }
    }
}

/// Reads and decodes a JSON body (an empty body decodes as `null`).
pub async fn read_json(body: Incoming) -> Result<Value, ApiError> {
    let b = read_body(body).await?;
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&b).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// Docker's `filters` parameter: `{"key":["v",…]}` or the older
/// `{"key":{"v":true}}`.
pub fn parse_filters(q: &Query) -> Result<HashMap<String, Vec<String>>, ApiError> {
    let Some(raw) = q.get("filters").filter(|s| !s.is_empty()) else {
        return Ok(HashMap::new());
    };
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid filters {raw:?}: {e}")))?;
    let Value::Object(obj) = v else {
        return Err(ApiError::bad_request(format!(
            "invalid filters {raw:?}: expected a JSON object"
        )));
    };
    let mut out = HashMap::new();
    for (k, v) in obj {
        let vals: Vec<String> = match v {
            Value::Array(a) => a
                .into_iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| x.to_string())
                })
                .collect(),
            Value::Object(o) => o
                .into_iter()
                .filter(|(_, on)| on.as_bool().unwrap_or(false))
                .map(|(k, _)| k)
                .collect(),
            other => {
                return Err(ApiError::bad_request(format!(
                    "invalid filter {k}: {other} is neither a list nor a map"
                )));
            }
        };
        out.insert(k, vals);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        let req = Request::builder().uri(format!("/x?{s}")).body(()).unwrap();
        Query::of(&req).unwrap()
    }

    #[test]
    fn docker_booleans() {
        let qq = q("a=1&b=0&c=false&d=&e=True&f=no");
        assert!(qq.bool("a"));
        assert!(!qq.bool("b"));
        assert!(!qq.bool("c"));
        assert!(!qq.bool("d"));
        assert!(qq.bool("e"));
        assert!(!qq.bool("f"));
        assert!(!qq.bool("missing"));
        assert!(qq.bool_or("missing", true));
    }

    #[test]
    fn ints_and_filters() {
        let qq = q("t=5&bad=x&filters=%7B%22name%22%3A%5B%22web%22%5D%7D");
        assert_eq!(qq.int("t").unwrap(), Some(5));
        assert!(qq.int("bad").unwrap_err().message.contains("\"x\""));
        let f = parse_filters(&qq).unwrap();
        assert_eq!(f["name"], vec!["web".to_string()]);
        let old = q("filters=%7B%22status%22%3A%7B%22running%22%3Atrue%7D%7D");
        assert_eq!(
            parse_filters(&old).unwrap()["status"],
            vec!["running".to_string()]
        );
    }
}
