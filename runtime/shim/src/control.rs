//! The control socket server: one thread accepts, one thread per connection
//! answers its request (see `lookout_core::shim_proto`).

use crate::attach::ATTACH_DRIVER;
use crate::supervise::Shared;
use lookout_core::shim_proto::{DriverCounters, PipelineCounters, Request, Response};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Longest request line accepted.
const MAX_REQUEST: u64 = 64 << 10;

/// Serves the control socket on a background thread.
pub fn serve(listener: UnixListener, shared: Arc<Shared>) {
    let r = std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let shared = shared.clone();
                shared.in_flight.fetch_add(1, Ordering::SeqCst);
                let spawned = std::thread::Builder::new()
                    .name("control-conn".into())
                    .spawn({
                        let shared = shared.clone();
                        move || {
                            handle(conn, &shared);
                            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                        }
                    });
                if spawned.is_err() {
                    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                }
            }
        });
    if let Err(e) = r {
        eprintln!("lookout-shim: cannot start the control thread: {e}");
    }
}

fn answer(conn: &mut UnixStream, r: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    line.push(b'\n');
    conn.write_all(&line)
}

fn handle(mut conn: UnixStream, shared: &Shared) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut line = String::new();
    let read = {
        let Ok(c) = conn.try_clone() else { return };
        let mut r = BufReader::new(std::io::Read::take(c, MAX_REQUEST));
        r.read_line(&mut line)
    };
    if read.is_err() || line.is_empty() {
        return;
    }
    let _ = conn.set_read_timeout(None);
    let req: Request = match serde_json::from_str(line.trim_end()) {
        Ok(r) => r,
        Err(e) => {
            let _ = answer(
                &mut conn,
                &Response::Error {
                    message: format!("invalid request {:?}: {e}", line.trim_end()),
                },
            );
            return;
        }
    };
    let resp = match req {
        Request::Status => Response::Status(
            shared
                .status
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        ),
        Request::Wait => {
            let mut st = shared.status.lock().unwrap_or_else(|p| p.into_inner());
            while st.exit.is_none() {
                st = shared.exited.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            Response::Status(st.clone())
        }
        Request::Signal { signal, all } => {
            let c = shared.container.read().unwrap_or_else(|p| p.into_inner());
            match c.as_ref() {
                None => Response::Error {
                    message: "the container is not running".into(),
                },
                Some(c) => match c.signal(signal, all) {
                    Ok(()) => Response::Ok,
                    Err(e) => Response::Error {
                        message: e.to_string(),
                    },
                },
            }
        }
        Request::Stats => {
            let p = shared.pipeline.read().unwrap_or_else(|p| p.into_inner());
            match p.as_ref() {
                None => Response::Error {
                    message: "the pipeline has closed".into(),
                },
                Some(p) => {
                    let (records, bytes) = p.totals();
                    Response::Stats(PipelineCounters {
                        records,
                        bytes,
                        drivers: p
                            .reports()
                            .into_iter()
                            .filter(|d| d.name != ATTACH_DRIVER)
                            .map(|d| DriverCounters {
                                name: d.name,
                                records_in: d.records_in,
                                bytes_in: d.bytes_in,
                                delivered: d.delivered,
                                dropped: d.dropped,
                                dropped_bytes: d.dropped_bytes,
                                retries: d.retries,
                                queued_bytes: d.queued_bytes,
                                failure: d.failure,
                            })
                            .collect(),
                    })
                }
            }
        }
        Request::Attach { replay } => {
            if answer(&mut conn, &Response::Ok).is_ok() {
                shared.hub.attach(conn, replay);
            }
            return;
        }
    };
    let _ = answer(&mut conn, &resp);
}
