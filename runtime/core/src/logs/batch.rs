//! Batches of records and the splitter that cuts raw output into them.
//!
//! A batch owns one read buffer and the records pointing into it; it is
//! shared (`Arc`) by every driver of the container, so fan-out copies no
//! bytes. Buffers return to a small pool when the last driver is done.

use lookout_abi::{LK_REC_PARTIAL, LK_REC_PARTIAL_LAST, LkBytes, LkLogRecord};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A pool of read buffers of one size.
#[derive(Debug)]
pub struct BufPool {
    size: usize,
    keep: usize,
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufPool {
    /// A pool handing out buffers of `size` bytes, keeping at most `keep`
    /// idle ones.
    pub fn new(size: usize, keep: usize) -> Arc<Self> {
        Arc::new(BufPool {
            size,
            keep,
            free: Mutex::new(Vec::new()),
        })
    }

    /// Buffer size.
    pub fn size(&self) -> usize {
        self.size
    }

    /// An empty buffer with at least `size` bytes of capacity.
    pub fn take(&self) -> Vec<u8> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.pop().unwrap_or_else(|| Vec::with_capacity(self.size))
    }

    fn give(&self, mut b: Vec<u8>) {
        if b.capacity() < self.size {
            return;
        }
        b.clear();
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < self.keep {
            free.push(b);
        }
    }
}

/// Records cut from one read, with the bytes they point into.
#[derive(Debug)]
pub struct Batch {
    buf: Vec<u8>,
    recs: Vec<LkLogRecord>,
    bytes: usize,
    read_at: Instant,
    pool: Option<Arc<BufPool>>,
}

// SAFETY: the records point into `buf`, which is never written or moved
// after construction (the Vec's heap block stays put while the Batch lives),
// so sharing and sending the batch is sharing immutable bytes.
unsafe impl Send for Batch {}
// SAFETY: as above.
unsafe impl Sync for Batch {}

impl Batch {
    /// The records.
    pub fn records(&self) -> &[LkLogRecord] {
        &self.recs
    }
    /// Total bytes of all records.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
    /// When the bytes were read.
    pub fn read_at(&self) -> Instant {
        self.read_at
    }
    /// Number of records.
    pub fn len(&self) -> usize {
        self.recs.len()
    }
    /// True when there are no records.
    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(p) = self.pool.take() {
            p.give(std::mem::take(&mut self.buf));
        }
    }
}

/// Per-stream line splitting state: the bytes of an unfinished line carried
/// to the next read, its start time, and the partial-line bookkeeping.
#[derive(Debug)]
pub struct Splitter {
    stream: u32,
    max_line: usize,
    carry: Vec<u8>,
    carry_time: i64,
    /// (id, ordinal of the next chunk) of the line being cut, if any.
    partial: Option<(u64, u32)>,
    next_partial_id: u64,
}

impl Splitter {
    /// A splitter for one stream (`LK_STREAM_*`), cutting lines longer than
    /// `max_line` bytes (without the newline) into partial records.
    pub fn new(stream: u32, max_line: usize) -> Self {
        // Partial ids: unique per stream and unlikely to repeat across
        // restarts of the same container.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Splitter {
            stream,
            max_line: max_line.max(1),
            carry: Vec::new(),
            carry_time: 0,
            partial: None,
            next_partial_id: (seed << 8) | u64::from(stream),
        }
    }

    /// The stream this splitter cuts.
    pub fn stream(&self) -> u32 {
        self.stream
    }

    /// Bytes of an unfinished line waiting for more input.
    pub fn pending(&self) -> usize {
        self.carry.len()
    }

    /// Starts a batch buffer: the carried bytes of the unfinished line go
    /// first. Read new bytes after them, then call [`Splitter::cut`].
    pub fn begin(&mut self, buf: &mut Vec<u8>) {
        buf.clear();
        buf.extend_from_slice(&self.carry);
    }

    /// Cuts `buf` (carried bytes from [`Splitter::begin`], then new bytes
    /// read at `now`) into a batch. An unfinished last line is carried to the
    /// next call; with `eof` it is emitted as a record without newline.
    pub fn cut(
        &mut self,
        buf: Vec<u8>,
        now: i64,
        read_at: Instant,
        eof: bool,
        pool: Option<Arc<BufPool>>,
    ) -> Batch {
        let carried = self.carry.len();
        let n = buf.len();
        // Records point straight into `buf`: its heap block does not move
        // when the Vec moves into the Batch.
        let mut recs: Vec<LkLogRecord> = Vec::with_capacity(n / 64 + 2);
        let mut bytes = 0usize;
        let mut push = |rec: LkLogRecord| {
            bytes += rec.line.len;
            recs.push(rec);
        };
        // Start of the current line and its time.
        let mut start = 0usize;
        let mut time = if carried > 0 { self.carry_time } else { now };
        let mut search = carried;
        loop {
            // Cut chunks while the pending line is at least max_line long
            // without a newline in its first max_line bytes.
            let limit = start + self.max_line;
            let nl = memchr::memchr(b'\n', &buf[search.min(n)..n.min(limit)]).map(|i| search + i);
            match nl {
                Some(i) => {
                    push(self.finish_line(&buf[start..=i], time));
                    start = i + 1;
                    search = start;
                    // Carried bytes never hold a newline, so every later
                    // line was read now.
                    time = now;
                }
                None if n >= limit => {
                    // A full chunk with no newline: a partial record. Later
                    // chunks keep the first chunk's time.
                    let (id, ord) = *self.partial.get_or_insert_with(|| {
                        self.next_partial_id = self.next_partial_id.wrapping_add(1 << 8);
                        (self.next_partial_id, 1)
                    });
                    push(self.record(&buf[start..limit], time, LK_REC_PARTIAL, id, ord));
                    self.partial = Some((id, ord + 1));
                    start = limit;
                    search = start;
                }
                None => break,
            }
        }
        // The rest is an unfinished line.
        self.carry.clear();
        if start < n {
            if eof {
                push(self.finish_line(&buf[start..], time));
            } else {
                self.carry.extend_from_slice(&buf[start..]);
                self.carry_time = time;
            }
        } else if eof && self.partial.is_some() {
            // The line was cut exactly at the end of output: close it with an
            // empty last chunk so readers see where it ends.
            push(self.finish_line(&buf[n..], time));
        }
        Batch {
            buf,
            recs,
            bytes,
            read_at,
            pool,
        }
    }

    fn record(&self, line: &[u8], time: i64, flags: u32, id: u64, ordinal: u32) -> LkLogRecord {
        LkLogRecord {
            line: LkBytes::from_slice(line),
            time_unix_nano: time,
            stream: self.stream,
            flags,
            partial_id: id,
            partial_ordinal: ordinal,
            reserved: 0,
        }
    }

    /// The record of a line that ends here (with its newline, or at EOF).
    fn finish_line(&mut self, line: &[u8], time: i64) -> LkLogRecord {
        match self.partial.take() {
            Some((id, ord)) => {
                self.record(line, time, LK_REC_PARTIAL | LK_REC_PARTIAL_LAST, id, ord)
            }
            None => self.record(line, time, 0, 0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_abi::LK_STREAM_STDOUT;

    fn feed(s: &mut Splitter, chunks: &[&[u8]], eof_last: bool) -> Vec<(Vec<u8>, u32, u32, i64)> {
        let mut out = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let mut buf = Vec::new();
            s.begin(&mut buf);
            buf.extend_from_slice(c);
            let eof = eof_last && i + 1 == chunks.len();
            let b = s.cut(buf, i as i64 + 100, Instant::now(), eof, None);
            for r in b.records() {
                // SAFETY: the batch is alive.
                let line = unsafe { r.line.as_slice() }.to_vec();
                out.push((line, r.flags, r.partial_ordinal, r.time_unix_nano));
            }
        }
        out
    }

    #[test]
    fn lines_keep_their_newline_and_the_unterminated_tail_waits_for_eof() {
        let mut s = Splitter::new(LK_STREAM_STDOUT, 16);
        let r = feed(&mut s, &[b"a\n\nb", b"c\r\nd"], true);
        let lines: Vec<_> = r.iter().map(|x| x.0.clone()).collect();
        assert_eq!(
            lines,
            vec![
                b"a\n".to_vec(),
                b"\n".to_vec(),
                b"bc\r\n".to_vec(),
                b"d".to_vec()
            ]
        );
        // "bc" started in the first read: it keeps that read's time.
        assert_eq!(r[2].3, 100);
        assert_eq!(r[3].3, 101);
        assert!(r.iter().all(|x| x.1 == 0));
    }

    #[test]
    fn long_lines_are_cut_like_docker() {
        let max = 16;
        let mut s = Splitter::new(LK_STREAM_STDOUT, max);
        // Exactly max bytes + LF: a full partial chunk, then "\n" as the last.
        let mut l = vec![b'x'; max];
        l.push(b'\n');
        let r = feed(&mut s, &[&l], false);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0.len(), 16);
        assert_eq!(r[0].1, LK_REC_PARTIAL);
        assert_eq!(r[1].0, b"\n");
        assert_eq!(r[1].1, LK_REC_PARTIAL | LK_REC_PARTIAL_LAST);
        assert_eq!((r[0].2, r[1].2), (1, 2));
        // 40 bytes + LF across three reads: 16 + 16 + 9, one time for all.
        let mut s = Splitter::new(LK_STREAM_STDOUT, max);
        let mut l = vec![b'y'; 40];
        l.push(b'\n');
        let r = feed(&mut s, &[&l[..10], &l[10..30], &l[30..]], false);
        let lens: Vec<_> = r.iter().map(|x| x.0.len()).collect();
        assert_eq!(lens, vec![16, 16, 9]);
        assert!(r.iter().all(|x| x.3 == 100), "{r:?}");
        assert_eq!(r[2].1, LK_REC_PARTIAL | LK_REC_PARTIAL_LAST);
        // Short lines are untouched.
        let mut s = Splitter::new(LK_STREAM_STDOUT, max);
        let r = feed(&mut s, &[b"0123456789abcde\n"], false);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].1, 0);
    }

    #[test]
    fn a_cut_line_ending_at_eof_is_closed() {
        let mut s = Splitter::new(LK_STREAM_STDOUT, 4);
        let r = feed(&mut s, &[b"abcdefg"], true);
        let lens: Vec<_> = r.iter().map(|x| (x.0.len(), x.1)).collect();
        assert_eq!(
            lens,
            vec![
                (4, LK_REC_PARTIAL),
                (3, LK_REC_PARTIAL | LK_REC_PARTIAL_LAST)
            ]
        );
    }
}
