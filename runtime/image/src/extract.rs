//! Hostile-tar-safe extraction of one layer.
//!
//! Every filesystem operation is relative to a directory file descriptor
//! obtained by walking the entry's parent path one component at a time with
//! `O_NOFOLLOW`: a symlink (or non-directory) anywhere in a parent path makes
//! the entry [`ImageError::UnsafeEntry`], so nothing is ever written through a
//! symlink and nothing lands outside the layer. `..` components are refused,
//! leading `/` stripped. Device nodes and fifos are skipped (reported as
//! warnings), `.wh.*` whiteouts are dropped, xattrs are filtered to `user.*`
//! (minus `user.overlay.*`) and `security.capability`.

use std::cell::Cell;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags};
use sha2::{Digest, Sha256};

use crate::{ImageError, MAX_ENTRIES, MAX_PATH_DEPTH};

/// Free space kept in the store's filesystem: an import never writes past
/// `available - SPACE_RESERVE`.
pub(crate) const SPACE_RESERVE: u64 = 32 << 20;

/// Free inodes kept in the store's filesystem.
const INODE_RESERVE: u64 = 1024;

/// Result of a successful extraction.
#[derive(Debug)]
pub(crate) struct Extracted {
    /// Hex sha256 of the uncompressed tar stream (the diff id without `sha256:`).
    pub diff_hex: String,
    /// Sum of the sizes of regular files.
    pub size: u64,
    /// Skipped entries etc.
    pub warnings: Vec<String>,
}

/// Hashes and counts every byte of the uncompressed tar stream, failing once
/// more than `limit` bytes were read.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    limit: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if self.count > self.limit {
            self.exceeded.set(true);
            return Err(io::Error::other("tar stream exceeds the size limit"));
        }
        Ok(n)
    }
}

/// Wraps `r` in a decompressor chosen by the stream's magic bytes.
fn decompress<'a>(mut r: impl Read + 'a) -> Result<Box<dyn Read + 'a>, ImageError> {
    let mut magic = [0u8; 6];
    let mut have = 0;
    while have < magic.len() {
        match r.read(&mut magic[have..]) {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ImageError::io("reading the image archive", e)),
        }
    }
    let head = magic[..have].to_vec();
    let stream = io::Cursor::new(head.clone()).chain(r);
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Box::new(flate2::read::MultiGzDecoder::new(stream)));
    }
    if head.starts_with(b"BZh") {
        return Ok(Box::new(bzip2::read::MultiBzDecoder::new(stream)));
    }
    let unsupported = if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else {
        None
    };
    if let Some(kind) = unsupported {
        return Err(ImageError::BadArchive(format!(
            "{kind}-compressed archives are not supported (use a plain, gzip or bzip2-compressed tar)"
        )));
    }
    Ok(Box::new(stream))
}

/// Owner, mode, times and xattrs of an entry.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: TimeSpec,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Extraction state: the layer root and bookkeeping.
struct Extractor {
    root: PathBuf,
    root_fd: OwnedFd,
    max_bytes: u64,
    size: u64,
    entries: u64,
    warnings: Vec<String>,
    dir_times: Vec<(Vec<OsString>, TimeSpec)>,
}

fn sys(context: impl FnOnce() -> String, e: Errno) -> ImageError {
    ImageError::io(context(), io::Error::from(e))
}

fn unsafe_entry(path: &str, reason: impl Into<String>) -> ImageError {
    ImageError::UnsafeEntry {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// Maps an error of the tar reader to the store's error type.
fn archive_err(e: io::Error, exceeded: &Cell<bool>, limit: u64) -> ImageError {
    if exceeded.get() {
        return ImageError::TooLarge { limit };
    }
    match e.raw_os_error() {
        Some(_) => ImageError::io("reading the image archive", e),
        None => ImageError::BadArchive(format!(
            "not a valid tar stream: {}",
            e.to_string().escape_debug()
        )),
    }
}

/// Splits a tar path into safe components: leading `/` and `.` components
/// dropped, `..` refused, NUL refused, depth bounded.
fn sanitize(raw: &[u8], shown: &str) -> Result<Vec<OsString>, ImageError> {
    if raw.contains(&0) {
        return Err(unsafe_entry(shown, "path contains a NUL byte"));
    }
    let mut comps = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(unsafe_entry(shown, "path contains a '..' component")),
            c => {
                if c.len() > 255 {
                    return Err(unsafe_entry(shown, "path component longer than 255 bytes"));
                }
                comps.push(OsStr::from_bytes(c).to_os_string());
            }
        }
    }
    if comps.len() > MAX_PATH_DEPTH {
        return Err(unsafe_entry(
            shown,
            format!("path deeper than {MAX_PATH_DEPTH} components"),
        ));
    }
    Ok(comps)
}

/// Opens `name` in `dir` as a directory, never following a symlink.
fn open_dir_at(dir: RawFd, name: &OsStr) -> Result<OwnedFd, Errno> {
    let fd = nix::fcntl::openat(
        Some(dir),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `openat` just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The file type bits of `name` in `dir` (not following symlinks), or `None` if absent.
fn type_at(dir: RawFd, name: &OsStr) -> Result<Option<SFlag>, Errno> {
    match nix::sys::stat::fstatat(Some(dir), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT))),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether an xattr of a tar entry is kept.
pub(crate) fn keep_xattr(name: &str) -> bool {
    (name.starts_with("user.") && !name.starts_with("user.overlay."))
        || name == "security.capability"
}

/// Extracts the tar stream `r` (plain, gzip or bzip2) into the existing empty
/// directory `dest`.
pub(crate) fn extract(r: impl Read, dest: &Path, max_bytes: u64) -> Result<Extracted, ImageError> {
    let stream = decompress(r)?;
    let exceeded = Rc::new(Cell::new(false));
    let raw_limit = max_bytes.saturating_mul(2).saturating_add(16 << 20);
    let hashing = HashingReader {
        inner: stream,
        hasher: Sha256::new(),
        count: 0,
        limit: raw_limit,
        exceeded: exceeded.clone(),
    };
    let root_fd = {
        let fd = nix::fcntl::open(
            dest,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| sys(|| format!("opening {}", dest.display()), e))?;
        // SAFETY: `open` just returned this descriptor and nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(fd) }
    };
    let mut ex = Extractor {
        root: dest.to_path_buf(),
        root_fd,
        max_bytes,
        size: 0,
        entries: 0,
        warnings: Vec::new(),
        dir_times: Vec::new(),
    };
    let mut archive = tar::Archive::new(hashing);
    {
        let entries = archive
            .entries()
            .map_err(|e| archive_err(e, &exceeded, max_bytes))?;
        for entry in entries {
            let entry = entry.map_err(|e| archive_err(e, &exceeded, max_bytes))?;
            ex.entries += 1;
            if ex.entries > MAX_ENTRIES {
                return Err(ImageError::BadArchive(format!(
                    "archive has more than {MAX_ENTRIES} entries"
                )));
            }
            ex.entry(entry, &exceeded)?;
        }
    }
    // Hash the rest of the stream (end-of-archive blocks, record padding).
    let mut hashing = archive.into_inner();
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| archive_err(e, &exceeded, max_bytes))?;
    if hashing.count == 0 {
        return Err(ImageError::BadArchive("empty archive".into()));
    }
    ex.finish()?;
    Ok(Extracted {
        diff_hex: hex::encode(hashing.hasher.finalize()),
        size: ex.size,
        warnings: ex.warnings,
    })
}

impl Extractor {
    fn entry<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        exceeded: &Cell<bool>,
    ) -> Result<(), ImageError> {
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
        {
            return Ok(());
        }
        let comps = sanitize(&raw_path, &shown)?;
        let meta = self.meta(&mut entry, &shown)?;
        let is_dir = kind.is_dir()
            || ((kind.is_file() || kind.is_contiguous())
                && raw_path.ends_with(b"/")
                && entry.size() == 0);

        if let Some(last) = comps.last() {
            let b = last.as_bytes();
            if b.starts_with(b".wh.") {
                self.warnings.push(format!(
                    "dropped whiteout {shown} (an import has no lower layer)"
                ));
                return Ok(());
            }
        }
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            let what = if kind.is_fifo() {
                "fifo"
            } else if kind.is_character_special() {
                "character device"
            } else {
                "block device"
            };
            self.warnings.push(format!("skipped {what} {shown}"));
            return Ok(());
        }

        let Some((name, parents)) = comps.split_last() else {
            // The layer root itself ("./" or "/").
            if !is_dir {
                return Err(unsafe_entry(&shown, "the layer root must be a directory"));
            }
            let fd = self.root_fd.as_raw_fd();
            self.apply_meta(fd, &meta, &shown)?;
            self.dir_times.push((Vec::new(), meta.mtime));
            return Ok(());
        };
        let parent = self.walk(parents, true, &shown)?;
        let pfd = parent.as_raw_fd();
        let ctx = || format!("extracting {shown}");

        if is_dir {
            match type_at(pfd, name).map_err(|e| sys(ctx, e))? {
                Some(SFlag::S_IFDIR) => {}
                Some(_) => {
                    nix::unistd::unlinkat(Some(pfd), name.as_os_str(), UnlinkatFlags::NoRemoveDir)
                        .map_err(|e| sys(ctx, e))?;
                    nix::sys::stat::mkdirat(
                        Some(pfd),
                        name.as_os_str(),
                        Mode::from_bits_truncate(0o700),
                    )
                    .map_err(|e| sys(ctx, e))?;
                }
                None => nix::sys::stat::mkdirat(
                    Some(pfd),
                    name.as_os_str(),
                    Mode::from_bits_truncate(0o700),
                )
                .map_err(|e| sys(ctx, e))?,
            }
            let dfd = open_dir_at(pfd, name).map_err(|e| sys(ctx, e))?;
            self.apply_meta(dfd.as_raw_fd(), &meta, &shown)?;
            self.dir_times.push((comps.clone(), meta.mtime));
        } else if kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse() {
            let declared = entry.size();
            if self.size.saturating_add(declared) > self.max_bytes {
                return Err(ImageError::TooLarge {
                    limit: self.max_bytes,
                });
            }
            self.check_space(declared)?;
            self.remove_existing(pfd, name, &comps, &shown)?;
            let fd = nix::fcntl::openat(
                Some(pfd),
                name.as_os_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(|e| sys(ctx, e))?;
            // SAFETY: `openat` just returned this descriptor and nothing else owns it.
            let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
            let mut buf = vec![0u8; 128 * 1024];
            let mut written: u64 = 0;
            loop {
                let n = match entry.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(archive_err(e, exceeded, self.max_bytes)),
                };
                written += n as u64;
                if self.size.saturating_add(written) > self.max_bytes {
                    return Err(ImageError::TooLarge {
                        limit: self.max_bytes,
                    });
                }
                file.write_all(&buf[..n])
                    .map_err(|e| ImageError::io(ctx(), e))?;
            }
            if !kind.is_gnu_sparse() && written != declared {
                return Err(ImageError::BadArchive(format!(
                    "truncated archive: {shown} has {written} of {declared} bytes"
                )));
            }
            self.size += written;
            self.apply_meta(file.as_raw_fd(), &meta, &shown)?;
            nix::sys::stat::futimens(file.as_raw_fd(), &meta.mtime, &meta.mtime)
                .map_err(|e| sys(ctx, e))?;
        } else if kind.is_symlink() {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| unsafe_entry(&shown, "symlink without a target"))?
                .into_owned();
            if target.is_empty() || target.contains(&0) {
                return Err(unsafe_entry(
                    &shown,
                    "symlink target is empty or contains NUL",
                ));
            }
            self.remove_existing(pfd, name, &comps, &shown)?;
            nix::unistd::symlinkat(OsStr::from_bytes(&target), Some(pfd), name.as_os_str())
                .map_err(|e| sys(ctx, e))?;
            nix::unistd::fchownat(
                Some(pfd),
                name.as_os_str(),
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| sys(ctx, e))?;
            nix::sys::stat::utimensat(
                Some(pfd),
                name.as_os_str(),
                &meta.mtime,
                &meta.mtime,
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(|e| sys(ctx, e))?;
            if !meta.xattrs.is_empty() {
                self.warnings
                    .push(format!("ignored xattrs of symlink {shown}"));
            }
        } else if kind.is_hard_link() {
            let raw_target = entry
                .link_name_bytes()
                .ok_or_else(|| unsafe_entry(&shown, "hardlink without a target"))?
                .into_owned();
            let tshown = String::from_utf8_lossy(&raw_target).into_owned();
            let tcomps = sanitize(&raw_target, &shown).map_err(|_| {
                unsafe_entry(
                    &shown,
                    format!("hardlink target {tshown:?} is outside the layer"),
                )
            })?;
            let Some((tname, tparents)) = tcomps.split_last() else {
                return Err(unsafe_entry(&shown, "hardlink to the layer root"));
            };
            if tcomps == comps {
                return Ok(());
            }
            let tparent = self.walk(tparents, false, &shown).map_err(|_| {
                unsafe_entry(
                    &shown,
                    format!("hardlink target {tshown:?} is not an extracted regular file"),
                )
            })?;
            match type_at(tparent.as_raw_fd(), tname).map_err(|e| sys(ctx, e))? {
                Some(SFlag::S_IFREG) => {}
                _ => {
                    return Err(unsafe_entry(
                        &shown,
                        format!("hardlink target {tshown:?} is not an extracted regular file"),
                    ));
                }
            }
            self.remove_existing(pfd, name, &comps, &shown)?;
            nix::unistd::linkat(
                Some(tparent.as_raw_fd()),
                tname.as_os_str(),
                Some(pfd),
                name.as_os_str(),
                AtFlags::empty(),
            )
            .map_err(|e| sys(ctx, e))?;
        } else {
            self.warnings.push(format!(
                "skipped {shown}: unsupported tar entry type {:?}",
                kind.as_byte() as char
            ));
        }
        Ok(())
    }

    /// Reads owner, mode, mtime and xattrs (filtered) of an entry.
    fn meta<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        shown: &str,
    ) -> Result<Meta, ImageError> {
        let h = entry.header();
        let bad =
            |what: &str, e: io::Error| ImageError::BadArchive(format!("{shown}: bad {what}: {e}"));
        // Some writers leave unused numeric fields empty (all NUL): read as 0.
        let empty = |f: &[u8]| f.iter().all(|&c| c == 0 || c == b' ');
        let old = h.as_old();
        let uid = if empty(&old.uid) {
            0
        } else {
            h.uid().map_err(|e| bad("uid", e))?
        };
        let gid = if empty(&old.gid) {
            0
        } else {
            h.gid().map_err(|e| bad("gid", e))?
        };
        let mode = h.mode().map_err(|e| bad("mode", e))? & 0o7777;
        let mut mtime_s = if empty(&old.mtime) {
            0
        } else {
            h.mtime().map_err(|e| bad("mtime", e))? as i64
        };
        let mut mtime_ns: i64 = 0;
        let uid = u32::try_from(uid)
            .map_err(|_| ImageError::BadArchive(format!("{shown}: uid {uid} out of range")))?;
        let gid = u32::try_from(gid)
            .map_err(|_| ImageError::BadArchive(format!("{shown}: gid {gid} out of range")))?;
        let mut xattrs = Vec::new();
        if let Some(pax) = entry.pax_extensions().map_err(|e| bad("pax header", e))? {
            for ext in pax {
                let ext = ext.map_err(|e| bad("pax header", e))?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    if keep_xattr(name) {
                        xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                    }
                } else if key == "mtime"
                    && let Ok(v) = ext.value()
                {
                    let (s, frac) = v.split_once('.').unwrap_or((v, ""));
                    if let Ok(s) = s.parse::<i64>() {
                        mtime_s = s;
                        let digits: String = frac.chars().take(9).collect();
                        if !digits.is_empty()
                            && let Ok(n) = format!("{digits:0<9}").parse::<i64>()
                        {
                            mtime_ns = if s < 0 { -n } else { n };
                        }
                    }
                }
            }
        }
        Ok(Meta {
            uid,
            gid,
            mode,
            mtime: TimeSpec::new(mtime_s, mtime_ns),
            xattrs,
        })
    }

    /// chown, chmod (after chown, which clears set-id bits), xattrs.
    fn apply_meta(&mut self, fd: RawFd, meta: &Meta, shown: &str) -> Result<(), ImageError> {
        let ctx = || format!("setting attributes of {shown}");
        nix::unistd::fchown(
            fd,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )
        .map_err(|e| sys(ctx, e))?;
        nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(meta.mode)).map_err(|e| sys(ctx, e))?;
        for (name, value) in &meta.xattrs {
            let Ok(cname) = std::ffi::CString::new(name.as_str()) else {
                self.warnings
                    .push(format!("ignored xattr {name:?} of {shown}: invalid name"));
                continue;
            };
            // SAFETY: `cname` is a valid NUL-terminated string and `value`
            // points to `value.len()` readable bytes for the whole call.
            let rc = unsafe {
                libc::fsetxattr(fd, cname.as_ptr(), value.as_ptr().cast(), value.len(), 0)
            };
            if rc != 0 {
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::ENOTSUP) | Some(libc::EPERM) | Some(libc::ERANGE)
                    | Some(libc::E2BIG) => {
                        self.warnings
                            .push(format!("could not set xattr {name} on {shown}: {err}"));
                    }
                    _ => return Err(ImageError::io(ctx(), err)),
                }
            }
        }
        Ok(())
    }

    /// Opens the directory `comps` (relative to the layer root), refusing any
    /// symlink or non-directory on the way; creates missing directories when `create`.
    fn walk(&self, comps: &[OsString], create: bool, shown: &str) -> Result<OwnedFd, ImageError> {
        let mut cur = self
            .root_fd
            .try_clone()
            .map_err(|e| ImageError::io("duplicating the layer root descriptor", e))?;
        for (i, c) in comps.iter().enumerate() {
            let fd = cur.as_raw_fd();
            let so_far = || {
                comps[..=i]
                    .iter()
                    .map(|c| c.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/")
            };
            let ctx = || format!("extracting {shown}");
            match type_at(fd, c).map_err(|e| sys(ctx, e))? {
                Some(SFlag::S_IFDIR) => {}
                Some(SFlag::S_IFLNK) => {
                    return Err(unsafe_entry(
                        shown,
                        format!(
                            "parent path {:?} is a symlink: refusing to write through it",
                            so_far()
                        ),
                    ));
                }
                Some(_) => {
                    return Err(unsafe_entry(
                        shown,
                        format!("parent path {:?} is not a directory", so_far()),
                    ));
                }
                None if create => {
                    nix::sys::stat::mkdirat(
                        Some(fd),
                        c.as_os_str(),
                        Mode::from_bits_truncate(0o755),
                    )
                    .map_err(|e| sys(ctx, e))?;
                }
                None => {
                    return Err(unsafe_entry(
                        shown,
                        format!("{:?} does not exist", so_far()),
                    ));
                }
            }
            cur = open_dir_at(fd, c).map_err(|e| match e {
                Errno::ELOOP | Errno::ENOTDIR => unsafe_entry(
                    shown,
                    format!("parent path {:?} is not a directory", so_far()),
                ),
                e => sys(ctx, e),
            })?;
        }
        Ok(cur)
    }

    /// Removes whatever exists at `name` (a later tar entry replaces an earlier one).
    fn remove_existing(
        &self,
        pfd: RawFd,
        name: &OsStr,
        comps: &[OsString],
        shown: &str,
    ) -> Result<(), ImageError> {
        let ctx = || format!("replacing {shown}");
        match type_at(pfd, name).map_err(|e| sys(ctx, e))? {
            None => Ok(()),
            Some(SFlag::S_IFDIR) => {
                // The parent chain was verified to be real directories, and
                // remove_dir_all does not follow symlinks inside the tree.
                let path: PathBuf = comps.iter().fold(self.root.clone(), |p, c| p.join(c));
                std::fs::remove_dir_all(&path).map_err(|e| ImageError::io(ctx(), e))
            }
            Some(_) => nix::unistd::unlinkat(Some(pfd), name, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| sys(ctx, e)),
        }
    }

    /// Refuses to write `bytes` more when that would eat into the reserve.
    fn check_space(&self, bytes: u64) -> Result<(), ImageError> {
        let st = nix::sys::statvfs::fstatvfs(&self.root_fd)
            .map_err(|e| sys(|| format!("statvfs {}", self.root.display()), e))?;
        let avail = (st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64);
        if bytes.saturating_add(SPACE_RESERVE) > avail {
            return Err(ImageError::NoSpace);
        }
        if st.files() > 0 && (st.files_available() as u64) < INODE_RESERVE {
            return Err(ImageError::NoSpace);
        }
        Ok(())
    }

    /// Sets directory mtimes (after all children were created).
    fn finish(&mut self) -> Result<(), ImageError> {
        let times = std::mem::take(&mut self.dir_times);
        for (comps, mtime) in times.iter().rev() {
            let shown = comps
                .iter()
                .map(|c| c.to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            // A directory may have been replaced by a later entry: ignore what is gone.
            let Ok(fd) = self.walk(comps, false, &shown) else {
                continue;
            };
            nix::sys::stat::futimens(fd.as_raw_fd(), mtime, mtime)
                .map_err(|e| sys(|| format!("setting the mtime of {shown}"), e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_paths() {
        let s = |p: &str| {
            sanitize(p.as_bytes(), p).map(|v| {
                v.into_iter()
                    .map(|c| c.into_string().unwrap())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(s("/etc/evil").unwrap(), vec!["etc", "evil"]);
        assert_eq!(s("./a//b/./c/").unwrap(), vec!["a", "b", "c"]);
        assert!(s("./").unwrap().is_empty());
        assert!(s("../../etc/evil").is_err());
        assert!(s("a/../b").is_err());
        assert!(sanitize(b"a\0b", "a").is_err());
        assert!(s(&"a/".repeat(MAX_PATH_DEPTH + 1)).is_err());
    }

    #[test]
    fn xattr_filter() {
        assert!(keep_xattr("user.foo"));
        assert!(keep_xattr("security.capability"));
        assert!(!keep_xattr("trusted.overlay.opaque"));
        assert!(!keep_xattr("trusted.foo"));
        assert!(!keep_xattr("security.selinux"));
        assert!(!keep_xattr("user.overlay.opaque"));
        assert!(!keep_xattr("system.posix_acl_access"));
    }
}
