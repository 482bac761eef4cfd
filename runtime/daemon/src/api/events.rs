//! `GET /events?since=&until=&filters=`: the recent events, then the live
//! ones, one JSON object per line.

use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};

use super::Ctx;
use super::http::{ApiError, Query, Resp, channel_body, parse_filters, status_only};
use crate::timefmt::{now_unix_nano, parse_api_time};

fn time_param(q: &Query, key: &str) -> Result<Option<i64>, ApiError> {
    match q.get(key).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(v) => parse_api_time(v).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!("invalid value for {key}: {v:?} is not a timestamp"))
        }),
    }
}

/// `GET /events`.
pub async fn events(ctx: &Ctx, req: &Request<Incoming>) -> Result<Resp, ApiError> {
    let q = Query::of(req)?;
    let since = time_param(&q, "since")?;
    let until = time_param(&q, "until")?;
    let filters = parse_filters(&q)?;
    for k in filters.keys() {
        if !matches!(
            k.as_str(),
            "type" | "event" | "container" | "image" | "label"
        ) {
            return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
        }
    }
    let (history, mut rx) = ctx.engine.events().subscribe();
    let (tx, out) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let line = |e: &crate::engine::events::Event| {
        let mut b = serde_json::to_vec(&e.to_json()).unwrap_or_default();
        b.push(b'\n');
        Bytes::from(b)
    };
    let in_range = move |t: i64| since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u);
    tokio::spawn(async move {
        let mut last = 0;
        if since.is_some() {
            for e in history
                .iter()
                .filter(|e| in_range(e.time_nano) && e.matches(&filters))
            {
                last = e.time_nano;
                if tx.send(Ok(line(e))).await.is_err() {
                    return;
                }
            }
        }
        let deadline = until.map(|u| {
            let now = now_unix_nano();
            Duration::from_nanos(u.saturating_sub(now).max(0) as u64)
        });
        let sleep = tokio::time::sleep(deadline.unwrap_or(Duration::from_secs(u64::MAX / 4)));
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return,
                _ = tx.closed() => return,
                r = rx.recv() => match r {
                    Ok(e) => {
                        if e.time_nano <= last || !in_range(e.time_nano) || !e.matches(&filters) {
                            continue;
                        }
                        if tx.send(Ok(line(&e))).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                },
            }
        }
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(channel_body(out, ()))
        .unwrap_or_else(|_| status_only(StatusCode::INTERNAL_SERVER_ERROR)))
}
