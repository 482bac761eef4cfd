//! The rotating log file: `<dir>/<id>-json.log`, then `.1`, `.2`, … (or
//! `.1.gz`, …) like Docker's `loggerutils.LogFile`.
//!
//! On-disk contract (the host's reader relies on it): files hold records
//! oldest → newest as `.N(.gz)` … `.1(.gz)`, then the current file; when
//! both `.k` and `.k.gz` exist they hold the same records (read the plain
//! one); `*.tmp` files are scratch. Rotation happens only between records.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use flate2::{Compression, GzBuilder};
use lookout_sdk::Host;
use lookout_sdk::abi::LK_LEVEL_WARN;

use crate::encode::rfc3339_nano;

/// Rotation settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate once the current file holds at least this many bytes
    /// (`None`: never).
    pub max_size: Option<u64>,
    /// Files kept, the current one included (at least 1).
    pub max_files: u32,
    /// Gzip rotated files.
    pub compress: bool,
}

/// The current log file and its rotated siblings.
pub struct LogFile {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    rot: Rotation,
    /// Highest rotated index that may exist (0: none).
    highest: u32,
    /// Time of the last record written to the current file by this
    /// process (unknown after a reopen).
    last_time: Option<i64>,
    pending: Option<JoinHandle<io::Result<()>>>,
    host: Arc<Host>,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

fn remove_if_exists(p: &Path) -> io::Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl LogFile {
    /// Opens (creating, mode 0640) the current file for appending.
    pub fn open(path: PathBuf, rot: Rotation, host: Arc<Host>) -> io::Result<LogFile> {
        let file = open_append(&path)?;
        let size = file.metadata()?.len();
        let highest = scan_highest(&path).min(rot.max_files.saturating_sub(1));
        Ok(LogFile {
            path,
            file: Some(file),
            size,
            rot,
            highest,
            last_time: None,
            pending: None,
            host,
        })
    }

    /// The current file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the next record must go to a fresh file (Docker's rule:
    /// rotate before a write once the size reached max-size).
    pub fn needs_rotation(&self) -> bool {
        matches!(self.rot.max_size, Some(m) if self.size >= m)
    }

    /// Room left before a rotation is due (`u64::MAX` when unlimited).
    pub fn room(&self) -> u64 {
        match self.rot.max_size {
            Some(m) => m.saturating_sub(self.size),
            None => u64::MAX,
        }
    }

    /// Reopens the current file after a failed rotation left it closed.
    pub fn ensure_open(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            let f = open_append(&self.path)?;
            self.size = f.metadata()?.len();
            self.file = Some(f);
            self.last_time = None;
        }
        Ok(())
    }

    /// Appends whole records. On error the file is cut back to its length
    /// before the call, so no partial record stays behind.
    pub fn append(&mut self, buf: &[u8], last_time: i64) -> io::Result<()> {
        self.ensure_open()?;
        let Some(f) = self.file.as_mut() else {
            return Err(io::Error::other("log file not open"));
        };
        match f.write_all(buf) {
            Ok(()) => {
                self.size += buf.len() as u64;
                self.last_time = Some(last_time);
                Ok(())
            }
            Err(e) => {
                if let Err(t) = f.set_len(self.size) {
                    // Cannot cut: learn the real length so that at least the
                    // size accounting is right, and say so.
                    if let Ok(m) = f.metadata() {
                        self.size = m.len();
                    }
                    return Err(io::Error::new(
                        e.kind(),
                        format!("{e} (and truncating back failed: {t})"),
                    ));
                }
                Err(e)
            }
        }
    }

    fn rotated(&self, k: u32, gz: bool) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(format!(".{k}{}", if gz { ".gz" } else { "" }));
        PathBuf::from(s)
    }

    /// Waits for a background compression, reporting a failure to the host
    /// (the plain file then stays, which readers handle).
    pub fn wait_compression(&mut self) {
        if let Some(h) = self.pending.take() {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("compression thread panicked")));
            if let Err(e) = r {
                self.host.log(
                    LK_LEVEL_WARN,
                    &format!(
                        "json-file: compressing {}: {e}",
                        self.rotated(1, false).display()
                    ),
                );
            }
        }
    }

    /// Shifts `.k` → `.k+1`, current → `.1`, and starts a fresh current
    /// file; with compress, gzips `.1` in the background.
    pub fn rotate(&mut self) -> io::Result<()> {
        self.wait_compression();
        if self.rot.max_files <= 1 {
            // Docker reopens the same name truncated: the old lines go.
            self.ensure_open()?;
            if let Some(f) = &self.file {
                f.set_len(0)?;
            }
            self.size = 0;
            return Ok(());
        }
        let top = self.rot.max_files - 1;
        let new_highest = (self.highest + 1).min(top);
        if self.highest >= top {
            remove_if_exists(&self.rotated(top, false))?;
            remove_if_exists(&self.rotated(top, true))?;
        }
        for k in (2..=new_highest).rev() {
            // Both forms move, so a plain file left by a failed compression
            // keeps its place in the order.
            rename_if_exists(&self.rotated(k - 1, false), &self.rotated(k, false))?;
            rename_if_exists(&self.rotated(k - 1, true), &self.rotated(k, true))?;
        }
        // After the shift `.1` is free (a stale `.1.gz` moved up too).
        rename_if_exists(&self.path, &self.rotated(1, false))?;
        self.highest = new_highest;
        // From here the old file is `.1`: never write to it again. If the
        // open below fails, the next append creates the file.
        self.file = None;
        self.size = 0;
        let last = self.last_time.take();
        // The name was just renamed away, so this creates a fresh file.
        self.file = Some(open_append(&self.path)?);
        if self.rot.compress {
            let src = self.rotated(1, false);
            self.pending = Some(
                std::thread::Builder::new()
                    .name("json-file-gzip".into())
                    .spawn(move || compress(&src, last))?,
            );
        }
        Ok(())
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        self.wait_compression();
    }
}

/// Highest `N` among `<path>.N` and `<path>.N.gz` next to `path`.
fn scan_highest(path: &Path) -> u32 {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return 0;
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let Ok(rd) = fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return 0;
    };
    let mut highest = 0;
    for e in rd.flatten() {
        let n = e.file_name();
        let n = n.to_string_lossy();
        let Some(rest) = n.strip_prefix(&prefix) else {
            continue;
        };
        let num = rest.strip_suffix(".gz").unwrap_or(rest);
        if let Ok(k) = num.parse::<u32>()
            && num.bytes().all(|b| b.is_ascii_digit())
        {
            highest = highest.max(k);
        }
    }
    highest
}

/// Gzips `src` to `src.gz` through `src.gz.tmp`, then removes `src`. The
/// gzip header's extra field carries `{"lastTime":"…"}` as Docker's does
/// (readers may skip the file for `--since` after it), so it is left out
/// when the time is not known.
fn compress(src: &Path, last_time: Option<i64>) -> io::Result<()> {
    let mut gz = src.as_os_str().to_owned();
    gz.push(".gz");
    let gz = PathBuf::from(gz);
    let mut tmp = gz.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let r = (|| -> io::Result<()> {
        let mut input = File::open(src)?;
        let out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o640)
            .open(&tmp)?;
        let mut builder = GzBuilder::new();
        if let Some(t) = last_time {
            builder = builder.extra(format!("{{\"lastTime\":\"{}\"}}", rfc3339_nano(t)));
        }
        let mut enc = builder.write(
            io::BufWriter::with_capacity(64 * 1024, out),
            Compression::default(),
        );
        io::copy(&mut input, &mut enc)?;
        enc.finish()?.flush()?;
        fs::rename(&tmp, &gz)
    })();
    if let Err(e) = r {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::remove_file(src)
}
