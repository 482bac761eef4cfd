//! The narrow file-system interface every cgroup access goes through.
//!
//! The manager and the counter parsers never touch `std::fs` directly: they
//! call a [`CgroupFs`]. [`HostFs`] is the real one; tests substitute one that
//! plays the kernel's part on a temporary directory (populating control files
//! when a directory is created), or simply point [`HostFs`] at fixture trees.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Reads and writes files relative to cgroup directories.
pub trait CgroupFs: Send + Sync {
    /// Reads `file` in the cgroup directory `dir` as text.
    fn read(&self, dir: &Path, file: &str) -> io::Result<String>;

    /// Writes `value` to `file` in `dir` with a single `write(2)`, without
    /// creating the file (a control the kernel does not offer stays missing).
    fn write(&self, dir: &Path, file: &str, value: &str) -> io::Result<()>;

    /// Whether `file` exists in `dir`.
    fn exists(&self, dir: &Path, file: &str) -> bool;

    /// Whether the directory `dir` exists.
    fn dir_exists(&self, dir: &Path) -> bool;

    /// Creates the directory `dir` (its parent exists); fails if it exists.
    fn create_dir(&self, dir: &Path) -> io::Result<()>;

    /// Removes the (cgroup) directory `dir`.
    fn remove_dir(&self, dir: &Path) -> io::Result<()>;

    /// Lists the sub-directories (child cgroups) of `dir`.
    fn child_dirs(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
}

/// The host's file system: what the engine uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostFs;

impl CgroupFs for HostFs {
    fn read(&self, dir: &Path, file: &str) -> io::Result<String> {
        fs::read_to_string(dir.join(file))
    }

    fn write(&self, dir: &Path, file: &str, value: &str) -> io::Result<()> {
        // Cgroup files act on each write(2) separately: write the whole value
        // at once and report a short write rather than splitting it.
        let mut f = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(dir.join(file))?;
        let n = f.write(value.as_bytes())?;
        if n != value.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {n} of {} bytes", value.len()),
            ));
        }
        Ok(())
    }

    fn exists(&self, dir: &Path, file: &str) -> bool {
        dir.join(file).exists()
    }

    fn dir_exists(&self, dir: &Path) -> bool {
        dir.is_dir()
    }

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir(dir)
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        fs::remove_dir(dir)
    }

    fn child_dirs(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let ft = entry.file_type()?;
            // /sys/block's entries are symlinks to directories.
            if ft.is_dir() || (ft.is_symlink() && entry.path().is_dir()) {
                out.push(entry.path());
            }
        }
        out.sort();
        Ok(out)
    }
}
