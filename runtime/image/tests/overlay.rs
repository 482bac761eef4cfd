//! Overlayfs rootfs mounts over imported layers (needs root and overlayfs).

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use common::*;
use lookout_image::{RootfsMount, mount_rootfs};

/// Unmounts on drop, so a failing assertion leaves no mount behind.
struct Guard(RootfsMount);

impl Drop for Guard {
    fn drop(&mut self) {
        if RootfsMount::is_mounted(self.0.target()) {
            let _ = nix::mount::umount2(self.0.target(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let d = dir.to_string_lossy().into_owned();
    info.lines()
        .filter(|l| l.contains(&d))
        .map(str::to_string)
        .collect()
}

#[test]
fn copy_on_write_rootfs() {
    let t = store();
    let img = t
        .store
        .import(&small_rootfs()[..], &opts(Some("cow")))
        .unwrap()
        .image;
    let layer = t.store.layer_dir(&img);
    let cdir = t.dir.path().join("containers/c1");
    std::fs::create_dir_all(cdir.parent().unwrap()).unwrap();

    let mut g = Guard(mount_rootfs(std::slice::from_ref(&layer), &cdir).expect("mount overlay"));
    let merged = g.0.target().to_path_buf();
    assert_eq!(merged, cdir.join("merged"));
    assert!(RootfsMount::is_mounted(&merged));
    assert_eq!(
        std::fs::read(merged.join("etc/hostname")).unwrap(),
        b"lookout\n"
    );

    // Idempotent: mounting again returns the existing mount.
    let again = mount_rootfs(std::slice::from_ref(&layer), &cdir).unwrap();
    assert_eq!(again.target(), merged);
    assert_eq!(mounts_under(&cdir).len(), 1);

    // Writes go to the upper dir, not the layer.
    std::fs::write(merged.join("etc/new"), b"written").unwrap();
    assert_eq!(
        std::fs::read(cdir.join("diff/etc/new")).unwrap(),
        b"written"
    );
    assert!(!layer.join("etc/new").exists());
    std::fs::write(merged.join("etc/hostname"), b"changed\n").unwrap();
    assert_eq!(
        std::fs::read(layer.join("etc/hostname")).unwrap(),
        b"lookout\n"
    );

    // Deleting a lower file leaves a whiteout (0/0 char device) in the upper dir.
    std::fs::remove_file(merged.join("etc/os-release")).unwrap();
    assert!(!merged.join("etc/os-release").exists());
    let wh = std::fs::symlink_metadata(cdir.join("diff/etc/os-release")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(layer.join("etc/os-release").is_file());

    // Force-removing the image while mounted keeps the layer.
    t.store.remove("cow", true, &|_: &str| false).unwrap();
    assert!(layer.is_dir(), "a mounted layer is not deleted");

    g.0.unmount().unwrap();
    assert!(!RootfsMount::is_mounted(&merged));
    assert!(
        mounts_under(t.dir.path()).is_empty(),
        "{:?}",
        mounts_under(t.dir.path())
    );
    // Unmounting twice is fine; the caller then removes the directory.
    g.0.unmount().unwrap();
    std::fs::remove_dir_all(&cdir).unwrap();
}

#[test]
fn busy_mount_is_detached_and_adopt_works() {
    let t = store();
    let img = t
        .store
        .import(&small_rootfs()[..], &opts(None))
        .unwrap()
        .image;
    let layer = t.store.layer_dir(&img);
    let cdir = t.dir.path().join("c2");
    let _g = Guard(mount_rootfs(&[layer], &cdir).unwrap());
    // Keep the mount busy with an open file.
    let busy = std::fs::File::open(cdir.join("merged/etc/hostname")).unwrap();
    let mut adopted = RootfsMount::adopt(&cdir);
    adopted.unmount().unwrap();
    assert!(!RootfsMount::is_mounted(&cdir.join("merged")));
    drop(busy);
    assert!(mounts_under(t.dir.path()).is_empty());
}

#[test]
fn several_lowers_top_first() {
    let t = store();
    let mut b = builder();
    file(&mut b, "which", b"bottom");
    file(&mut b, "only-bottom", b"b");
    let bottom = t.store.import(&finish(b)[..], &opts(None)).unwrap().image;
    let mut b = builder();
    file(&mut b, "which", b"top");
    let top = t.store.import(&finish(b)[..], &opts(None)).unwrap().image;
    let lowers: Vec<PathBuf> = vec![t.store.layer_dir(&top), t.store.layer_dir(&bottom)];
    let cdir = t.dir.path().join("c3");
    let mut g = Guard(mount_rootfs(&lowers, &cdir).unwrap());
    let m = g.0.target().to_path_buf();
    assert_eq!(std::fs::read(m.join("which")).unwrap(), b"top");
    assert_eq!(std::fs::read(m.join("only-bottom")).unwrap(), b"b");
    g.0.unmount().unwrap();
    assert!(mounts_under(t.dir.path()).is_empty());
}

#[test]
fn bad_lowers_are_refused() {
    let t = store();
    let cdir = t.dir.path().join("c4");
    assert!(mount_rootfs(&[], &cdir).is_err());
    assert!(mount_rootfs(&[PathBuf::from("relative")], &cdir).is_err());
    assert!(mount_rootfs(&[t.dir.path().join("a,upperdir=/x")], &cdir).is_err());
    assert!(mount_rootfs(&[t.dir.path().join("missing")], &cdir).is_err());
    assert!(mounts_under(t.dir.path()).is_empty());
}
