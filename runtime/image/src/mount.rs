//! Copy-on-write overlayfs mounts for container root filesystems.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

use crate::ImageError;

/// Longest overlay option string `mount(2)` accepts (one page, with its NUL).
const MAX_MOUNT_DATA: usize = 4095;

/// An overlayfs mount of a container's root filesystem.
///
/// Dropping it does NOT unmount (mounts outlive daemon restarts; re-create the
/// handle with [`RootfsMount::adopt`]); call [`RootfsMount::unmount`], then
/// remove the container directory.
#[derive(Debug)]
pub struct RootfsMount {
    target: PathBuf,
    upper: PathBuf,
    work: PathBuf,
}

fn mount_err(what: String) -> ImageError {
    ImageError::Mount(what)
}

fn mkdir(p: &Path, mode: u32) -> Result<(), ImageError> {
    match fs::DirBuilder::new().mode(mode).create(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && p.is_dir() => Ok(()),
        Err(e) => Err(ImageError::io(format!("creating {}", p.display()), e)),
    }
}

/// Mounts overlayfs for a container: `lowers` (top first) as lowerdirs,
/// upper = `container_dir/diff`, work = `container_dir/work`, mounted at
/// `container_dir/merged` (all created as needed; `diff` gets the mode and
/// owner of the top lower's root, so `/` of the container looks like the
/// image's). Idempotent: when `merged` is already a mount point, returns a
/// handle to it.
pub fn mount_rootfs(lowers: &[PathBuf], container_dir: &Path) -> Result<RootfsMount, ImageError> {
    if lowers.is_empty() {
        return Err(mount_err("overlay needs at least one lower layer".into()));
    }
    for l in lowers {
        let s = l.to_string_lossy();
        if !l.is_absolute() || s.contains([',', ':', '\\']) {
            return Err(mount_err(format!(
                "layer path {s:?} must be absolute and free of ',', ':' and '\\'"
            )));
        }
        if !l.is_dir() {
            return Err(mount_err(format!("layer directory {s:?} does not exist")));
        }
    }
    let m = RootfsMount::adopt(container_dir);
    for p in [
        container_dir,
        m.upper.as_path(),
        m.work.as_path(),
        m.target.as_path(),
    ] {
        let s = p.to_string_lossy();
        if s.contains([',', ':', '\\']) {
            return Err(mount_err(format!(
                "path {s:?} must be free of ',', ':' and '\\'"
            )));
        }
    }
    mkdir(container_dir, 0o700)?;
    mkdir(&m.upper, 0o755)?;
    mkdir(&m.work, 0o700)?;
    mkdir(&m.target, 0o755)?;
    if RootfsMount::is_mounted(&m.target) {
        return Ok(m);
    }
    // The merged root takes the upper dir's attributes: mirror the image's `/`.
    let top = fs::metadata(&lowers[0])
        .map_err(|e| ImageError::io(format!("stat {}", lowers[0].display()), e))?;
    std::os::unix::fs::chown(&m.upper, Some(top.uid()), Some(top.gid()))
        .and_then(|()| {
            fs::set_permissions(&m.upper, fs::Permissions::from_mode(top.mode() & 0o7777))
        })
        .map_err(|e| ImageError::io(format!("setting attributes of {}", m.upper.display()), e))?;

    let lowerdir = lowers
        .iter()
        .map(|l| l.to_string_lossy())
        .collect::<Vec<_>>()
        .join(":");
    let data = format!(
        "lowerdir={lowerdir},upperdir={},workdir={}",
        m.upper.display(),
        m.work.display()
    );
    if data.len() > MAX_MOUNT_DATA {
        return Err(mount_err(format!(
            "overlay options for {} layers are {} bytes, over the {MAX_MOUNT_DATA}-byte limit",
            lowers.len(),
            data.len()
        )));
    }
    nix::mount::mount(
        Some("overlay"),
        &m.target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| {
        mount_err(format!(
            "mounting overlay at {} ({data}): {e}",
            m.target.display()
        ))
    })?;
    Ok(m)
}

/// Undoes the octal escapes (`\040` etc.) of `/proc/self/mountinfo` fields.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl RootfsMount {
    /// A handle for the (possibly already mounted) rootfs of `container_dir`,
    /// e.g. to unmount after a daemon restart. Does not mount anything.
    pub fn adopt(container_dir: &Path) -> RootfsMount {
        RootfsMount {
            target: container_dir.join("merged"),
            upper: container_dir.join("diff"),
            work: container_dir.join("work"),
        }
    }

    /// The mount point (`container_dir/merged`): the container's rootfs.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The container's writable layer (`container_dir/diff`).
    pub fn upper(&self) -> &Path {
        &self.upper
    }

    /// The overlay work directory (`container_dir/work`).
    pub fn work(&self) -> &Path {
        &self.work
    }

    /// Unmounts (no-op when not mounted); falls back to a lazy `MNT_DETACH`
    /// unmount when the mount is busy.
    pub fn unmount(&mut self) -> Result<(), ImageError> {
        if !Self::is_mounted(&self.target) {
            return Ok(());
        }
        match nix::mount::umount2(&self.target, MntFlags::empty()) {
            Ok(()) => Ok(()),
            Err(Errno::EBUSY) => {
                nix::mount::umount2(&self.target, MntFlags::MNT_DETACH).map_err(|e| {
                    mount_err(format!("lazily unmounting {}: {e}", self.target.display()))
                })
            }
            Err(Errno::EINVAL) if !Self::is_mounted(&self.target) => Ok(()),
            Err(e) => Err(mount_err(format!(
                "unmounting {}: {e}",
                self.target.display()
            ))),
        }
    }

    /// Whether `target` is a mount point, per `/proc/self/mountinfo`.
    pub fn is_mounted(target: &Path) -> bool {
        let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
            return false;
        };
        let canon = fs::canonicalize(target).ok();
        info.lines().any(|line| {
            line.split(' ').nth(4).is_some_and(|mp| {
                let mp = PathBuf::from(unescape_mountinfo(mp));
                mp == target || canon.as_deref() == Some(mp.as_path())
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape() {
        assert_eq!(unescape_mountinfo(r"/a\040b\134c"), "/a b\\c");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/x\04"), r"/x\04");
    }

    #[test]
    fn root_is_mounted() {
        assert!(RootfsMount::is_mounted(Path::new("/")));
        assert!(!RootfsMount::is_mounted(Path::new(
            "/definitely/not/a/mount"
        )));
    }
}
