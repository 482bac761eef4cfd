//! Reading and writing files inside a container's root filesystem from the
//! host, with every path resolved inside the rootfs (`openat2` with
//! `RESOLVE_IN_ROOT`), so a symlink in the image can never make the engine
//! read or write a host file.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// An open root filesystem directory.
#[derive(Debug)]
pub struct RootDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// `struct open_how` of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

impl RootDir {
    /// Opens the rootfs directory `path`.
    pub fn open(path: &Path) -> io::Result<RootDir> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
        // SAFETY: `c` is a valid NUL-terminated string; open returns a new fd
        // or -1.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(RootDir {
            // SAFETY: `fd` was just returned by open and is owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: path.to_path_buf(),
        })
    }

    /// The rootfs path on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `rel` (relative to the rootfs; symlinks resolved inside it).
    pub fn open_in(&self, rel: &str, flags: i32, mode: u32) -> io::Result<File> {
        let c = cstr(rel.trim_start_matches('/'))?;
        let how = OpenHow {
            flags: (flags | libc::O_CLOEXEC) as u64,
            mode: if flags & libc::O_CREAT != 0 {
                mode as u64
            } else {
                0
            },
            resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
        };
        // SAFETY: the dirfd is open, `c` is NUL-terminated and `how` is a
        // valid open_how whose size is passed along.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.fd.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: openat2 returned a new fd that nobody else owns.
        Ok(unsafe { File::from_raw_fd(fd as i32) })
    }

    /// Reads `rel` as text; `None` when it does not exist.
    pub fn read_optional(&self, rel: &str) -> io::Result<Option<String>> {
        match self.open_in(rel, libc::O_RDONLY, 0) {
            Ok(mut f) => {
                let mut s = String::new();
                f.read_to_string(&mut s)?;
                Ok(Some(s))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates or truncates `rel` with `content` (mode 0644).
    pub fn write(&self, rel: &str, content: &[u8]) -> io::Result<()> {
        let mut f = self.open_in(rel, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, 0o644)?;
        f.write_all(content)
    }

    /// Creates the top-level directory `name` (one component) when missing
    /// and refuses it when it is a symlink or not a directory, so mounts
    /// onto it stay inside the rootfs.
    pub fn ensure_top_dir(&self, name: &str) -> io::Result<()> {
        let c = cstr(name)?;
        // SAFETY: dirfd open, `c` NUL-terminated.
        let rc = unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), 0o755) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e);
            }
        }
        // SAFETY: an all-zero `stat` is a valid value for fstatat to fill.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: dirfd open, `c` NUL-terminated, `st` writable.
        let rc = unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("/{name} in the rootfs is not a directory (a symlink or file)"),
            ));
        }
        Ok(())
    }
}
