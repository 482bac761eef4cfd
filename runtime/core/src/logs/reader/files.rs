//! The files of one container's json-file log: naming, consistent listings
//! while a writer rotates, identities that survive renames and compression,
//! a forward line splitter and the backward scan behind `tail`.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::bufread::MultiGzDecoder;

/// Bytes read per block when scanning backwards, reading forward and
/// decompressing.
pub(crate) const BLOCK: usize = 256 * 1024;
/// Bytes of a file's beginning kept to recognise it after compression.
const PREFIX: usize = 4096;

/// One file of the log as seen in a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// 0 for the current file, k for `.k` / `.k.gz`.
    pub index: u32,
    /// `.k.gz`.
    pub gz: bool,
    /// Inode number (from stat, not readdir: overlayfs may differ).
    pub ino: u64,
}

/// The log files present at one moment, sorted by (index, gz).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct Listing {
    pub entries: Vec<Entry>,
}

impl Listing {
    /// The entry to read for `index`: the plain file when both exist.
    pub fn preferred(&self, index: u32) -> Option<&Entry> {
        let mut it = self.entries.iter().filter(|e| e.index == index);
        let first = it.next()?;
        Some(first) // sorted: plain (gz = false) first
    }

    /// Largest index present below `below` (None = any), i.e. the oldest file
    /// newer than the file at `below`.
    pub fn next_newer(&self, below: Option<u32>) -> Option<&Entry> {
        let idx = self
            .entries
            .iter()
            .map(|e| e.index)
            .filter(|&i| below.is_none_or(|b| i < b))
            .max()?;
        self.preferred(idx)
    }

    /// Distinct indexes, oldest (largest) first.
    pub fn indexes_oldest_first(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.entries.iter().map(|e| e.index).collect();
        v.dedup();
        v.reverse();
        v
    }
}

/// Where a container's log files live and how they are named.
#[derive(Clone, Debug)]
pub(crate) struct LogPaths {
    pub dir: PathBuf,
    /// `<id>-json.log`
    pub base: String,
}

impl LogPaths {
    pub fn new(dir: &Path, id: &str) -> Self {
        LogPaths {
            dir: dir.to_path_buf(),
            base: format!("{id}-json.log"),
        }
    }

    pub fn current(&self) -> PathBuf {
        self.dir.join(&self.base)
    }

    pub fn path(&self, index: u32, gz: bool) -> PathBuf {
        match (index, gz) {
            (0, _) => self.current(),
            (k, false) => self.dir.join(format!("{}.{k}", self.base)),
            (k, true) => self.dir.join(format!("{}.{k}.gz", self.base)),
        }
    }

    /// Parses a directory entry name: `(index, gz)` for a log file, `None`
    /// for anything else (including `*.tmp`).
    fn parse(&self, name: &[u8]) -> Option<(u32, bool)> {
        let rest = name.strip_prefix(self.base.as_bytes())?;
        if rest.is_empty() {
            return Some((0, false));
        }
        let rest = rest.strip_prefix(b".")?;
        let (num, gz) = match rest.strip_suffix(b".gz") {
            Some(n) => (n, true),
            None => (rest, false),
        };
        if num.is_empty() || num.len() > 9 || !num.iter().all(u8::is_ascii_digit) || num[0] == b'0'
        {
            return None;
        }
        let k = std::str::from_utf8(num).ok()?.parse().ok()?;
        Some((k, gz))
    }

    /// Lists the log files. A file that disappears between readdir and stat
    /// is left out (the caller compares two listings anyway).
    pub fn list(&self) -> io::Result<Listing> {
        use std::os::unix::ffi::OsStrExt;
        let mut entries = Vec::new();
        for de in fs::read_dir(&self.dir)? {
            let de = de?;
            let Some((index, gz)) = self.parse(de.file_name().as_bytes()) else {
                continue;
            };
            match fs::symlink_metadata(de.path()) {
                Ok(md) if md.is_file() => entries.push(Entry {
                    index,
                    gz,
                    ino: md.ino(),
                }),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        entries.sort_by_key(|e| (e.index, e.gz));
        Ok(Listing { entries })
    }
}

/// An open log file.
#[derive(Debug)]
pub(crate) struct OpenLog {
    pub index: u32,
    pub gz: bool,
    pub ino: u64,
    pub path: PathBuf,
    pub file: File,
}

/// Opens `e` and checks it is still the inode the listing saw.
pub(crate) fn open_entry(paths: &LogPaths, e: &Entry) -> io::Result<Option<OpenLog>> {
    let path = paths.path(e.index, e.gz);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let ino = file.metadata()?.ino();
    if ino != e.ino {
        return Ok(None);
    }
    Ok(Some(OpenLog {
        index: e.index,
        gz: e.gz,
        ino,
        path,
        file,
    }))
}

/// Opens every log file (plain preferred), oldest first, such that no
/// rotation happened between the first listing and the last open: a
/// contiguous set of generations.
pub(crate) fn snapshot(paths: &LogPaths) -> io::Result<Vec<OpenLog>> {
    let mut last = Vec::new();
    for attempt in 0..200 {
        if attempt > 4 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let before = paths.list()?;
        let mut opened = Vec::new();
        let mut ok = true;
        for idx in before.indexes_oldest_first() {
            let e = before.preferred(idx).expect("index from the listing");
            match open_entry(paths, e)? {
                Some(f) => opened.push(f),
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if ok && paths.list()? == before {
            return Ok(opened);
        }
        if ok {
            last = opened;
        }
    }
    Ok(last)
}

/// What identifies a file we have read, wherever rotation moved it: its
/// inode (kept open so the number cannot be reused) and, for a plain file
/// that compression may replace with a `.gz` copy, its size and first bytes.
#[derive(Debug)]
pub(crate) struct Identity {
    _pin: File,
    pub ino: u64,
    pub gz: bool,
    pub size: u64,
    pub prefix: Vec<u8>,
    pub path: PathBuf,
}

impl Identity {
    pub fn of(log: OpenLog) -> io::Result<Identity> {
        let (size, prefix) = if log.gz {
            (0, Vec::new())
        } else {
            let size = log.file.metadata()?.len();
            let mut prefix = vec![0u8; size.min(PREFIX as u64) as usize];
            read_exact_at(&log.file, &mut prefix, 0)?;
            (size, prefix)
        };
        Ok(Identity {
            _pin: log.file,
            ino: log.ino,
            gz: log.gz,
            size,
            prefix,
            path: log.path,
        })
    }

    /// The index the file has in `listing`, if it is still there.
    pub fn locate(&self, paths: &LogPaths, listing: &Listing) -> io::Result<Option<u32>> {
        if let Some(e) = listing.entries.iter().find(|e| e.ino == self.ino) {
            return Ok(Some(e.index));
        }
        if self.gz || self.prefix.is_empty() {
            return Ok(None);
        }
        // The plain file was compressed: find the `.gz` holding the same
        // bytes (same first bytes; same size when the gzip trailer agrees).
        let mut prefix_only = None;
        for e in listing.entries.iter().filter(|e| e.gz) {
            let Ok(f) = File::open(paths.path(e.index, true)) else {
                continue;
            };
            let mut got = Vec::with_capacity(self.prefix.len());
            let mut dec = MultiGzDecoder::new(io::BufReader::new(AtReader::new(&f)));
            if (&mut dec)
                .take(self.prefix.len() as u64)
                .read_to_end(&mut got)
                .is_err()
                || got != self.prefix
            {
                continue;
            }
            if gzip_isize(&f).ok() == Some(self.size as u32) {
                return Ok(Some(e.index));
            }
            prefix_only.get_or_insert(e.index);
        }
        Ok(prefix_only)
    }
}

/// The uncompressed size modulo 2^32 stored in a gzip file's trailer.
fn gzip_isize(f: &File) -> io::Result<u32> {
    let len = f.metadata()?.len();
    if len < 18 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let mut b = [0u8; 4];
    read_exact_at(f, &mut b, len - 4)?;
    Ok(u32::from_le_bytes(b))
}

fn read_exact_at(f: &File, mut buf: &mut [u8], mut at: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match f.read_at(buf, at) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                at += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads a file from an offset with pread, leaving the file's own position
/// alone.
pub(crate) struct AtReader<'a> {
    file: &'a File,
    pos: u64,
    end: Option<u64>,
}

impl<'a> AtReader<'a> {
    pub fn new(file: &'a File) -> Self {
        AtReader {
            file,
            pos: 0,
            end: None,
        }
    }

    /// Reads `[start, end)` only.
    pub fn range(file: &'a File, start: u64, end: u64) -> Self {
        AtReader {
            file,
            pos: start,
            end: Some(end),
        }
    }
}

impl Read for AtReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = match self.end {
            Some(end) => (end.saturating_sub(self.pos)).min(buf.len() as u64) as usize,
            None => buf.len(),
        };
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// A decompressing reader over a whole `.gz` file.
pub(crate) fn gz_reader(file: &File) -> impl Read + '_ {
    MultiGzDecoder::new(io::BufReader::with_capacity(64 * 1024, AtReader::new(file)))
}

/// Splits what a reader yields into `\n`-terminated lines, keeping an
/// incomplete last line until the rest of it arrives.
#[derive(Debug)]
pub(crate) struct Lines {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Offset in the file (or decompressed stream) of `buf[start]`.
    offset: u64,
}

impl Lines {
    pub fn new(offset: u64) -> Self {
        Lines {
            buf: vec![0; BLOCK],
            start: 0,
            end: 0,
            offset,
        }
    }

    /// Offset just past the last complete line handed out.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The incomplete line held back.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// One read from `r`; `Ok(0)` at end of input.
    pub fn fill<R: Read + ?Sized>(&mut self, r: &mut R) -> io::Result<usize> {
        if self.start > 0 && (self.start == self.end || self.end == self.buf.len()) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // One line longer than the buffer.
            let n = self.buf.len() * 2;
            self.buf.resize(n, 0);
        }
        loop {
            match r.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next complete line (without its `\n`) and its offset.
    #[inline]
    pub fn next_line(&mut self) -> Option<(&[u8], u64)> {
        let avail = &self.buf[self.start..self.end];
        let nl = memchr::memchr(b'\n', avail)?;
        let off = self.offset;
        let s = self.start;
        self.start += nl + 1;
        self.offset += nl as u64 + 1;
        Some((&self.buf[s..s + nl], off))
    }
}

/// Offset just after the last `\n` in `file[..size]` (0 when none): where
/// the complete lines of a file being written end.
pub(crate) fn complete_end(file: &File, size: u64, block: &mut Vec<u8>) -> io::Result<u64> {
    let mut end = size;
    while end > 0 {
        let start = end.saturating_sub(BLOCK as u64);
        let b = read_block(file, start, end, block)?;
        if let Some(p) = memchr::memrchr(b'\n', b) {
            return Ok(start + p as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

fn read_block<'b>(
    file: &File,
    start: u64,
    end: u64,
    block: &'b mut Vec<u8>,
) -> io::Result<&'b [u8]> {
    let len = (end - start) as usize;
    block.resize(len, 0);
    read_exact_at(file, &mut block[..len], start)?;
    Ok(&block[..len])
}

/// Where the last `n` complete lines of `file[..end]` begin (`end` is 0 or
/// just after a `\n`), scanning backwards in large blocks, and how many
/// lines that is (fewer than `n` when the file has fewer).
pub(crate) fn tail_start(
    file: &File,
    end: u64,
    n: usize,
    block: &mut Vec<u8>,
) -> io::Result<(u64, usize)> {
    if end == 0 || n == 0 {
        return Ok((end, 0));
    }
    // Every newline found before the final one starts one more line.
    let mut found = 0usize;
    let mut hi = end - 1;
    while hi > 0 {
        let lo = hi.saturating_sub(BLOCK as u64);
        let b = read_block(file, lo, hi, block)?;
        for p in memchr::memrchr_iter(b'\n', b) {
            found += 1;
            if found == n {
                return Ok((lo + p as u64 + 1, n));
            }
        }
        hi = lo;
    }
    Ok((0, found + 1))
}

/// The first complete line of `file[..end]`.
pub(crate) fn first_line(
    file: &File,
    end: u64,
    block: &mut Vec<u8>,
) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let mut at = 0;
    while at < end {
        let hi = (at + BLOCK as u64).min(end);
        let b = read_block(file, at, hi, block)?;
        if let Some(p) = memchr::memchr(b'\n', b) {
            line.extend_from_slice(&b[..p]);
            return Ok(Some(line));
        }
        line.extend_from_slice(b);
        at = hi;
    }
    Ok(None)
}

/// The last complete line of `file[..end]` (`end` just after a `\n`).
pub(crate) fn last_line(file: &File, end: u64, block: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    if end == 0 {
        return Ok(None);
    }
    let (start, _) = tail_start(file, end, 1, block)?;
    let mut line = vec![0u8; (end - 1 - start) as usize];
    read_exact_at(file, &mut line, start)?;
    Ok(Some(line))
}

/// The first line of a compressed file (decompressing only its beginning).
pub(crate) fn gz_first_line(file: &File) -> io::Result<Option<Vec<u8>>> {
    let mut r = gz_reader(file);
    let mut lines = Lines::new(0);
    loop {
        if let Some((l, _)) = lines.next_line() {
            return Ok(Some(l.to_vec()));
        }
        if lines.fill(&mut r)? == 0 {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(content: &[u8]) -> (tempfile::TempDir, File) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        fs::write(&p, content).unwrap();
        (d, File::open(&p).unwrap())
    }

    #[test]
    fn names() {
        let p = LogPaths::new(Path::new("/x"), "abc");
        assert_eq!(p.parse(b"abc-json.log"), Some((0, false)));
        assert_eq!(p.parse(b"abc-json.log.1"), Some((1, false)));
        assert_eq!(p.parse(b"abc-json.log.12.gz"), Some((12, true)));
        assert_eq!(p.parse(b"abc-json.log.1.gz.tmp"), None);
        assert_eq!(p.parse(b"abc-json.log.tmp"), None);
        assert_eq!(p.parse(b"abc-json.log.01"), None);
        assert_eq!(p.parse(b"abc-json.log."), None);
        assert_eq!(p.parse(b"abd-json.log"), None);
        assert_eq!(p.path(3, true), Path::new("/x/abc-json.log.3.gz"));
    }

    #[test]
    fn tail_scan_counts_lines_from_the_end() {
        let mut block = Vec::new();
        let (_d, f) = file_with(b"a\nbb\nccc\n");
        assert_eq!(tail_start(&f, 9, 1, &mut block).unwrap(), (5, 1));
        assert_eq!(tail_start(&f, 9, 2, &mut block).unwrap(), (2, 2));
        assert_eq!(tail_start(&f, 9, 3, &mut block).unwrap(), (0, 3));
        assert_eq!(tail_start(&f, 9, 10, &mut block).unwrap(), (0, 3));
        assert_eq!(tail_start(&f, 5, 10, &mut block).unwrap(), (0, 2));
        assert_eq!(tail_start(&f, 0, 10, &mut block).unwrap(), (0, 0));
        assert_eq!(last_line(&f, 9, &mut block).unwrap().unwrap(), b"ccc");
        assert_eq!(first_line(&f, 9, &mut block).unwrap().unwrap(), b"a");
        let (_d, f) = file_with(b"a\nbb\ncc");
        assert_eq!(complete_end(&f, 7, &mut block).unwrap(), 5);
        let (_d, f) = file_with(b"abc");
        assert_eq!(complete_end(&f, 3, &mut block).unwrap(), 0);
        assert_eq!(first_line(&f, 0, &mut block).unwrap(), None);
    }

    #[test]
    fn tail_scan_across_blocks() {
        let mut content = Vec::new();
        for i in 0..100_000 {
            writeln!(content, "line {i:07}").unwrap();
        }
        let (_d, f) = file_with(&content);
        let mut block = Vec::new();
        let end = content.len() as u64;
        let (start, n) = tail_start(&f, end, 70_000, &mut block).unwrap();
        assert_eq!(n, 70_000);
        assert_eq!(start, 30_000 * 13);
        assert_eq!(
            tail_start(&f, end, 100_001, &mut block).unwrap(),
            (0, 100_000)
        );
    }

    #[test]
    fn lines_hold_back_the_incomplete_line_and_grow() {
        let long = vec![b'x'; BLOCK * 2 + 7];
        let mut input = b"one\ntwo".to_vec();
        let mut lines = Lines::new(0);
        let mut r: &[u8] = &input;
        while lines.fill(&mut r).unwrap() > 0 {}
        assert_eq!(lines.next_line().unwrap(), (&b"one"[..], 0));
        assert!(lines.next_line().is_none());
        assert_eq!(lines.pending(), b"two");
        input = b"\n".to_vec();
        input.extend_from_slice(&long);
        input.push(b'\n');
        let mut r: &[u8] = &input;
        let mut got = Vec::new();
        loop {
            while let Some((l, off)) = lines.next_line() {
                got.push((l.len(), off));
            }
            if lines.fill(&mut r).unwrap() == 0 {
                break;
            }
        }
        assert_eq!(got, vec![(3, 4), (long.len(), 8)]);
        assert_eq!(lines.offset(), 8 + long.len() as u64 + 1);
    }
}
