//! Docker's multiplexed stream: each frame is an 8-byte header (stream: 0
//! stdin, 1 stdout, 2 stderr; three zero bytes; payload length as a
//! big-endian u32) followed by the payload.

/// Stream ids of the frame header.
pub const STDOUT: u8 = 1;
/// Stream ids of the frame header.
pub const STDERR: u8 = 2;

/// Appends one frame to `out`. Payloads above 4 GiB are split.
pub fn frame(out: &mut Vec<u8>, stream: u8, payload: &[u8]) {
    for chunk in payload.chunks(u32::MAX as usize) {
        out.push(stream);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        out.extend_from_slice(chunk);
    }
}

/// Incremental parser of a multiplexed stream that keeps only the frames of
/// the wanted streams (the shim sends stdout and stderr; `docker attach`
/// may ask for one of them).
#[derive(Debug, Default)]
pub struct FrameFilter {
    buf: Vec<u8>,
    want_stdout: bool,
    want_stderr: bool,
    raw: bool,
}

impl FrameFilter {
    /// A filter passing the selected streams.
    pub fn new(want_stdout: bool, want_stderr: bool) -> FrameFilter {
        FrameFilter {
            buf: Vec::new(),
            want_stdout,
            want_stderr,
            raw: false,
        }
    }

    /// Passes payloads without their headers (the raw stream of a TTY
    /// container).
    pub fn raw(mut self, raw: bool) -> FrameFilter {
        self.raw = raw;
        self
    }

    /// Feeds bytes; returns the complete frames to pass on, re-encoded.
    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut pos = 0;
        while self.buf.len() - pos >= 8 {
            let h = &self.buf[pos..pos + 8];
            let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
            if self.buf.len() - pos - 8 < len {
                break;
            }
            let stream = h[0];
            let keep = match stream {
                STDOUT => self.want_stdout,
                STDERR => self.want_stderr,
                _ => false,
            };
            if keep {
                let from = if self.raw { pos + 8 } else { pos };
                out.extend_from_slice(&self.buf[from..pos + 8 + len]);
            }
            pos += 8 + len;
        }
        self.buf.drain(..pos);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_filter() {
        let mut all = Vec::new();
        frame(&mut all, STDOUT, b"out\n");
        frame(&mut all, STDERR, b"err\n");
        assert_eq!(&all[..8], &[1, 0, 0, 0, 0, 0, 0, 4]);
        let mut f = FrameFilter::new(false, true);
        // Fed byte by byte: only the stderr frame comes out, whole.
        let mut got = Vec::new();
        for b in &all {
            got.extend(f.push(std::slice::from_ref(b)));
        }
        let mut want = Vec::new();
        frame(&mut want, STDERR, b"err\n");
        assert_eq!(got, want);
        let mut raw = FrameFilter::new(true, true).raw(true);
        assert_eq!(raw.push(&all), b"out\nerr\n");
    }
}
