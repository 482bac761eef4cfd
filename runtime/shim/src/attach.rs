//! Live output for `attach`: an in-process pipeline sink that frames each
//! record in Docker's multiplexed format and writes it to every attached
//! client, keeping what was written before the first client came (bounded)
//! so an attach that races the container's start loses nothing.

use lookout_abi::{LK_STREAM_STDERR, LK_STREAM_STDIN, LkLogRecord};
use lookout_core::logs::pipeline::Sink;
use lookout_core::plugin::WriteOutcome;
use std::io::Write;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The name the attach sink has in the pipeline (hidden from reports).
pub const ATTACH_DRIVER: &str = "attach";
/// How much output is kept for the first attach.
pub const REPLAY_LIMIT: usize = 4 << 20;
/// A client that cannot take a frame for this long is dropped.
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct HubState {
    /// Frames written before the first attach, while `replay_open`.
    replay: Vec<u8>,
    /// Still keeping output for a first attach.
    replay_open: bool,
    clients: Vec<UnixStream>,
    /// The container's output has ended.
    closed: bool,
    /// Some client has attached.
    attached: bool,
}

/// The attached clients of one container.
pub struct AttachHub {
    state: Mutex<HubState>,
    /// Someone wants frames (a replay is kept or a client is attached):
    /// read without the lock on every batch, so a container nobody
    /// attaches to costs the log path no framing, copying or locking.
    wanted: AtomicBool,
    /// Signalled on the first attach.
    first: std::sync::Condvar,
}

impl AttachHub {
    /// A hub that keeps output for the first attach.
    pub fn new() -> Arc<AttachHub> {
        Arc::new(AttachHub {
            state: Mutex::new(HubState {
                replay_open: true,
                ..Default::default()
            }),
            first: std::sync::Condvar::new(),
            wanted: AtomicBool::new(true),
        })
    }

    /// Adds a client; with `replay`, first sends what was kept. A client
    /// attaching after the output ended gets the replay (if asked) and EOF.
    pub fn attach(&self, mut client: UnixStream, replay: bool) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let _ = client.set_write_timeout(Some(CLIENT_WRITE_TIMEOUT));
        if replay && client.write_all(&st.replay).is_err() {
            return;
        }
        st.replay_open = false;
        st.replay = Vec::new();
        st.attached = true;
        self.first.notify_all();
        if st.closed {
            let _ = client.shutdown(Shutdown::Both);
        } else {
            st.clients.push(client);
        }
        self.update_wanted(&st);
    }

    /// Recomputes `wanted`; called with the state locked.
    fn update_wanted(&self, st: &HubState) {
        self.wanted
            .store(st.replay_open || !st.clients.is_empty(), Ordering::Release);
    }

    /// Waits until some client has attached, at most `timeout`; true if
    /// one has.
    pub fn wait_first_attach(&self, timeout: Duration) -> bool {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (st, _) = self
            .first
            .wait_timeout_while(st, timeout, |s| !s.attached)
            .unwrap_or_else(|p| p.into_inner());
        st.attached
    }

    fn publish(&self, frames: &[u8]) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.replay_open {
            if st.replay.len() + frames.len() <= REPLAY_LIMIT {
                st.replay.extend_from_slice(frames);
            } else {
                // Nobody attached while the first 4 MiB were written
                // (a detached run): stop keeping output.
                st.replay_open = false;
                st.replay = Vec::new();
            }
        }
        st.clients.retain_mut(|c| c.write_all(frames).is_ok());
        self.update_wanted(&st);
    }

    /// Ends every attach with EOF. What was kept for a first attach stays
    /// until it comes.
    pub fn close(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.closed = true;
        for c in st.clients.drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        self.update_wanted(&st);
    }
}

/// Appends one record as a Docker multiplexed frame.
pub fn frame(out: &mut Vec<u8>, stream: u32, payload: &[u8]) {
    let id: u8 = match stream {
        LK_STREAM_STDIN => 0,
        LK_STREAM_STDERR => 2,
        _ => 1,
    };
    // Docker frames carry at most u32::MAX bytes; records are far smaller
    // (max-line-size), but split anyway rather than truncate.
    for chunk in payload.chunks(u32::MAX as usize) {
        out.extend_from_slice(&[id, 0, 0, 0]);
        out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        out.extend_from_slice(chunk);
    }
}

/// The pipeline side of the hub.
pub struct AttachSink {
    hub: Arc<AttachHub>,
    buf: Vec<u8>,
}

impl AttachSink {
    /// A sink publishing to `hub`.
    pub fn new(hub: Arc<AttachHub>) -> Self {
        AttachSink {
            hub,
            buf: Vec::new(),
        }
    }
}

impl Sink for AttachSink {
    fn write(&mut self, recs: &[LkLogRecord]) -> WriteOutcome {
        if !self.hub.wanted.load(Ordering::Acquire) {
            return WriteOutcome::Ok;
        }
        self.buf.clear();
        for r in recs {
            // SAFETY: the pipeline keeps every record's bytes alive and
            // unchanged for the duration of the call.
            let line = unsafe { r.line.as_slice() };
            frame(&mut self.buf, r.stream, line);
        }
        self.hub.publish(&self.buf);
        WriteOutcome::Ok
    }
    fn flush(&mut self) -> Result<(), String> {
        Ok(())
    }
    fn stop(self: Box<Self>) -> Result<(), String> {
        self.hub.close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn frames_carry_stream_and_length() {
        let mut v = Vec::new();
        frame(&mut v, lookout_abi::LK_STREAM_STDOUT, b"hi\n");
        frame(&mut v, LK_STREAM_STDERR, b"e");
        assert_eq!(
            v,
            [
                1, 0, 0, 0, 0, 0, 0, 3, b'h', b'i', b'\n', 2, 0, 0, 0, 0, 0, 0, 1, b'e'
            ]
        );
    }

    #[test]
    fn an_attach_after_the_end_still_gets_everything() {
        let hub = AttachHub::new();
        hub.publish(b"all of it");
        hub.close();
        assert!(!hub.wait_first_attach(Duration::from_millis(1)));
        let (a, mut b) = UnixStream::pair().unwrap();
        hub.attach(a, true);
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"all of it");
    }

    #[test]
    fn first_attach_gets_the_replay_then_live_output() {
        let hub = AttachHub::new();
        hub.publish(b"early");
        let (a, mut b) = UnixStream::pair().unwrap();
        hub.attach(a, true);
        hub.publish(b"-late");
        hub.close();
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"early-late");
        // A later attach gets no replay and, the output having ended, EOF.
        assert!(hub.wait_first_attach(Duration::from_millis(1)));
        let (a, mut b) = UnixStream::pair().unwrap();
        hub.attach(a, true);
        got.clear();
        b.read_to_end(&mut got).unwrap();
        assert!(got.is_empty());
    }
}
