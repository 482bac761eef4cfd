//! Hostile tarballs: nothing escapes the layer, nothing partial is left behind.

mod common;

use std::ffi::CString;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::*;
use lookout_image::{ImageError, ImportOptions};
use tar::EntryType;

/// Expects an `UnsafeEntry` error naming `path`, and a clean store.
fn assert_unsafe(t: &TestStore, tarball: &[u8], path: &str) {
    match t.store.import(tarball, &opts(None)) {
        Err(ImageError::UnsafeEntry { path: p, reason }) => {
            assert_eq!(p, path, "reason: {reason}");
            let msg = ImageError::UnsafeEntry { path: p, reason }.to_string();
            assert!(msg.contains(path), "{msg}");
        }
        other => panic!("expected UnsafeEntry for {path}, got {other:?}"),
    }
    t.assert_clean();
}

fn getxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings; buf is writable for buf.len() bytes.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| {
        buf.truncate(r as usize);
        buf
    })
}

#[test]
fn dotdot_is_refused() {
    let t = store();
    let mut b = builder();
    file(&mut b, "ok", b"fine");
    raw_entry(
        &mut b,
        EntryType::Regular,
        b"../../etc/evil",
        b"",
        b"pwned",
        0o644,
    );
    assert_unsafe(&t, &finish(b), "../../etc/evil");
    assert!(!t.dir.path().join("etc/evil").exists());
    assert!(!Path::new("/etc/evil").exists());

    let mut b = builder();
    raw_entry(
        &mut b,
        EntryType::Regular,
        b"a/../../x",
        b"",
        b"pwned",
        0o644,
    );
    assert_unsafe(&t, &finish(b), "a/../../x");
}

#[test]
fn absolute_paths_land_inside_the_layer() {
    let t = store();
    let mut b = builder();
    raw_entry(
        &mut b,
        EntryType::Regular,
        b"/etc/evil-lookout-test",
        b"",
        b"inside",
        0o644,
    );
    let img = t.store.import(&finish(b)[..], &opts(None)).unwrap().image;
    let layer = t.store.layer_dir(&img);
    assert_eq!(
        std::fs::read(layer.join("etc/evil-lookout-test")).unwrap(),
        b"inside"
    );
    assert!(!Path::new("/etc/evil-lookout-test").exists());
}

#[test]
fn no_write_through_symlinks() {
    let passwd_before = std::fs::read("/etc/passwd").unwrap();
    let t = store();
    let mut b = builder();
    symlink(&mut b, "lnk", "/etc");
    file(&mut b, "lnk/passwd", b"root::0:0::/:/bin/sh\n");
    assert_unsafe(&t, &finish(b), "lnk/passwd");
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), passwd_before);

    // A symlink to a directory we can observe, also via a directory entry.
    let victim = t.dir.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    let mut b = builder();
    symlink(&mut b, "v", victim.to_str().unwrap());
    dir(&mut b, "v/sub/");
    assert_unsafe(&t, &finish(b), "v/sub/");
    assert!(names(&victim).is_empty());

    // Chains: a -> b -> victim, and a relative escape.
    let mut b = builder();
    symlink(&mut b, "b", victim.to_str().unwrap());
    symlink(&mut b, "a", "b");
    file(&mut b, "a/x", b"x");
    assert_unsafe(&t, &finish(b), "a/x");
    let mut b = builder();
    symlink(&mut b, "up", "../../../../../../..");
    file(&mut b, "up/tmp/x", b"x");
    assert_unsafe(&t, &finish(b), "up/tmp/x");
    // Even a symlink to a directory inside the layer is not written through.
    let mut b = builder();
    dir(&mut b, "real/");
    symlink(&mut b, "alias", "real");
    file(&mut b, "alias/f", b"x");
    assert_unsafe(&t, &finish(b), "alias/f");
    assert!(names(&victim).is_empty());
}

#[test]
fn later_entries_replace_symlinks_instead_of_following_them() {
    let t = store();
    let target = t.dir.path().join("outside-file");
    std::fs::write(&target, b"original").unwrap();
    let mut b = builder();
    symlink(&mut b, "x", target.to_str().unwrap());
    file(&mut b, "x", b"replaced");
    let img = t.store.import(&finish(b)[..], &opts(None)).unwrap().image;
    let layer = t.store.layer_dir(&img);
    assert!(
        std::fs::symlink_metadata(layer.join("x"))
            .unwrap()
            .is_file()
    );
    assert_eq!(std::fs::read(layer.join("x")).unwrap(), b"replaced");
    assert_eq!(std::fs::read(&target).unwrap(), b"original");
}

#[test]
fn hardlinks_only_to_extracted_regular_files() {
    let t = store();
    for target in ["/etc/shadow", "etc/passwd", "../x", "../../etc/shadow"] {
        let mut b = builder();
        hardlink(&mut b, "h", target);
        assert_unsafe(&t, &finish(b), "h");
    }
    // To a symlink in the layer (which points outside): refused.
    let mut b = builder();
    symlink(&mut b, "s", "/etc/shadow");
    hardlink(&mut b, "h", "s");
    assert_unsafe(&t, &finish(b), "h");
    // Through a symlinked parent: refused.
    let mut b = builder();
    symlink(&mut b, "etc", "/etc");
    hardlink(&mut b, "h", "etc/passwd");
    assert_unsafe(&t, &finish(b), "h");
    // To a directory: refused.
    let mut b = builder();
    dir(&mut b, "d/");
    hardlink(&mut b, "h", "d");
    assert_unsafe(&t, &finish(b), "h");
    // A valid one (absolute name, made relative) works.
    let mut b = builder();
    file(&mut b, "f", b"data");
    hardlink(&mut b, "g", "/f");
    let img = t.store.import(&finish(b)[..], &opts(None)).unwrap().image;
    let layer = t.store.layer_dir(&img);
    assert_eq!(std::fs::metadata(layer.join("g")).unwrap().nlink(), 2);
}

#[test]
fn devices_and_fifos_are_skipped_with_warnings() {
    let t = store();
    let mut b = builder();
    dir(&mut b, "dev/");
    raw_entry(&mut b, EntryType::Char, b"dev/null", b"", b"", 0o666);
    raw_entry(&mut b, EntryType::Block, b"dev/sda", b"", b"", 0o660);
    raw_entry(&mut b, EntryType::Fifo, b"run/fifo", b"", b"", 0o600);
    file(&mut b, ".wh.gone", b"");
    file(&mut b, "etc/.wh..wh..opq", b"");
    file(&mut b, "kept", b"k");
    let imported = t.store.import(&finish(b)[..], &opts(None)).unwrap();
    let layer = t.store.layer_dir(&imported.image);
    for p in [
        "dev/null",
        "dev/sda",
        "run/fifo",
        ".wh.gone",
        "etc/.wh..wh..opq",
    ] {
        assert!(
            std::fs::symlink_metadata(layer.join(p)).is_err(),
            "{p} was created"
        );
    }
    assert!(layer.join("kept").is_file());
    let w = imported.warnings.join("\n");
    for p in ["dev/null", "dev/sda", "run/fifo", ".wh.gone"] {
        assert!(w.contains(p), "no warning for {p}: {w}");
    }
    assert!(w.contains("character device") && w.contains("fifo"), "{w}");
}

#[test]
fn xattrs_are_filtered_and_attributes_preserved() {
    let t = store();
    let mut b = builder();
    b.append_pax_extensions([
        ("SCHILY.xattr.trusted.overlay.opaque", &b"y"[..]),
        (
            "SCHILY.xattr.security.selinux",
            &b"system_u:object_r:bin_t:s0"[..],
        ),
        ("SCHILY.xattr.user.keep", &b"kept"[..]),
        ("mtime", &b"1600000000.5"[..]),
    ])
    .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(EntryType::Directory);
    h.set_size(0);
    h.set_mode(0o1777);
    h.set_mtime(1);
    b.append_data(&mut h, "opaque/", &[][..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_size(3);
    h.set_mode(0o4755);
    h.set_uid(1234);
    h.set_gid(5678);
    h.set_mtime(1_650_000_000);
    b.append_data(&mut h, "opaque/suid", &b"bin"[..]).unwrap();
    let img = t.store.import(&finish(b)[..], &opts(None)).unwrap().image;
    let layer = t.store.layer_dir(&img);
    let d = layer.join("opaque");
    assert_eq!(getxattr(&d, "trusted.overlay.opaque"), None);
    assert_eq!(
        getxattr(&d, "security.selinux")
            .as_deref()
            .filter(|v| v.starts_with(b"system_u")),
        None
    );
    assert_eq!(getxattr(&d, "user.keep").as_deref(), Some(&b"kept"[..]));
    let dm = std::fs::metadata(&d).unwrap();
    assert_eq!(dm.mode() & 0o7777, 0o1777);
    assert_eq!(dm.mtime(), 1_600_000_000);
    assert_eq!(dm.mtime_nsec(), 500_000_000);
    let m = std::fs::metadata(d.join("suid")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4755);
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    assert_eq!(m.mtime(), 1_650_000_000);
}

#[test]
fn size_bombs_are_refused() {
    let t = store();
    let limited = |max: u64| ImportOptions {
        max_expanded_bytes: max,
        ..Default::default()
    };
    // One file over the limit.
    let mut b = builder();
    file(&mut b, "big", &vec![0u8; 2 << 20]);
    let e = t
        .store
        .import(&finish(b)[..], &limited(1 << 20))
        .unwrap_err();
    assert!(
        matches!(e, ImageError::TooLarge { limit } if limit == 1 << 20),
        "{e}"
    );
    t.assert_clean();
    // Many files adding up over the limit.
    let mut b = builder();
    for i in 0..40 {
        file(&mut b, &format!("f{i}"), &vec![1u8; 64 << 10]);
    }
    let e = t
        .store
        .import(&finish(b)[..], &limited(1 << 20))
        .unwrap_err();
    assert!(matches!(e, ImageError::TooLarge { .. }), "{e}");
    t.assert_clean();
    // A header claiming a huge size (the data never comes).
    let mut b = builder();
    raw_entry(&mut b, EntryType::Regular, b"claims", b"", b"", 0o644);
    let mut tarball = finish(b);
    let mut h = tar::Header::new_gnu();
    h.as_mut_bytes().copy_from_slice(&tarball[..512]);
    h.set_size(1 << 40);
    h.set_cksum();
    tarball[..512].copy_from_slice(h.as_bytes());
    let e = t.store.import(&tarball[..], &limited(1 << 20)).unwrap_err();
    assert!(matches!(e, ImageError::TooLarge { .. }), "{e}");
    t.assert_clean();
    // A gzip bomb: 64 MiB of zeros compressed to ~64 KiB.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut b = tar::Builder::new(&mut gz);
    let mut h = tar::Header::new_gnu();
    h.set_size(64 << 20);
    h.set_mode(0o644);
    h.set_entry_type(EntryType::Regular);
    b.append_data(&mut h, "zeros", std::io::repeat(0).take_bytes(64 << 20))
        .unwrap();
    b.into_inner().unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 1 << 20);
    let e = t.store.import(&gz[..], &limited(8 << 20)).unwrap_err();
    assert!(matches!(e, ImageError::TooLarge { .. }), "{e}");
    t.assert_clean();
}

trait TakeBytes: std::io::Read + Sized {
    fn take_bytes(self, n: u64) -> std::io::Take<Self> {
        std::io::Read::take(self, n)
    }
}
impl<R: std::io::Read> TakeBytes for R {}

#[test]
fn truncated_and_garbage_archives() {
    let t = store();
    let good = small_rootfs();
    // Cut inside the data of the first file (header of etc/ + header of etc/hostname + 4 bytes).
    let cut = &good[..512 + 512 + 4];
    let e = t.store.import(cut, &opts(None)).unwrap_err();
    assert!(
        matches!(e, ImageError::BadArchive(ref m) if m.contains("truncated")),
        "{e}"
    );
    t.assert_clean();
    // Cut inside a header.
    let e = t.store.import(&good[..512 + 100], &opts(None)).unwrap_err();
    assert!(matches!(e, ImageError::BadArchive(_)), "{e}");
    t.assert_clean();
    // Garbage.
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let e = t.store.import(&garbage[..], &opts(None)).unwrap_err();
    assert!(
        matches!(e, ImageError::BadArchive(ref m) if m.contains("not a valid tar")),
        "{e}"
    );
    t.assert_clean();
    // Empty input.
    let e = t.store.import(&b""[..], &opts(None)).unwrap_err();
    assert!(matches!(e, ImageError::BadArchive(_)), "{e}");
    t.assert_clean();
    // Corrupt gzip.
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    gz.extend_from_slice(&garbage[..200]);
    let e = t.store.import(&gz[..], &opts(None)).unwrap_err();
    assert!(
        matches!(e, ImageError::BadArchive(_) | ImageError::Io { .. }),
        "{e}"
    );
    t.assert_clean();
    // Unsupported compression is named.
    let e = t
        .store
        .import(&b"\xfd7zXZ\0\0\0\0\0"[..], &opts(None))
        .unwrap_err();
    assert!(
        matches!(e, ImageError::BadArchive(ref m) if m.contains("xz")),
        "{e}"
    );
    t.assert_clean();
    // Corrupt bzip2.
    let e = t
        .store
        .import(&b"BZh91AY&SY\0\0\0\0"[..], &opts(None))
        .unwrap_err();
    assert!(
        matches!(e, ImageError::BadArchive(_) | ImageError::Io { .. }),
        "{e}"
    );
    t.assert_clean();
}

#[test]
fn odd_names() {
    let t = store();
    // NUL inside a PAX path.
    let mut b = builder();
    b.append_pax_extensions([("path", &b"a\0b"[..])]).unwrap();
    file(&mut b, "placeholder", b"x");
    let e = t.store.import(&finish(b)[..], &opts(None)).unwrap_err();
    assert!(
        matches!(e, ImageError::UnsafeEntry { ref reason, .. } if reason.contains("NUL")),
        "{e}"
    );
    t.assert_clean();
    // Long names (GNU long name) and non-UTF-8 bytes work.
    let long = format!("{}/{}", "d".repeat(200), "f".repeat(200));
    let mut b = builder();
    file(&mut b, &long, b"long");
    raw_entry(&mut b, EntryType::Regular, b"latin1-\xe9", b"", b"x", 0o644);
    let img = t.store.import(&finish(b)[..], &opts(None)).unwrap().image;
    let layer = t.store.layer_dir(&img);
    assert_eq!(std::fs::read(layer.join(&long)).unwrap(), b"long");
    use std::os::unix::ffi::OsStrExt;
    assert!(
        layer
            .join(std::ffi::OsStr::from_bytes(b"latin1-\xe9"))
            .is_file()
    );
    // A file entry whose parent is a regular file: refused.
    let mut b = builder();
    file(&mut b, "f", b"x");
    file(&mut b, "f/g", b"y");
    let e = t.store.import(&finish(b)[..], &opts(None)).unwrap_err();
    assert!(matches!(e, ImageError::UnsafeEntry { .. }), "{e}");
}

#[test]
fn overlay_whiteout_char_devices_are_not_created() {
    let t = store();
    let mut b = builder();
    raw_entry(&mut b, EntryType::Char, b"etc/deleted", b"", b"", 0);
    let imported = t.store.import(&finish(b)[..], &opts(None)).unwrap();
    let layer = t.store.layer_dir(&imported.image);
    let meta = std::fs::symlink_metadata(layer.join("etc/deleted"));
    assert!(
        meta.map(|m| !m.file_type().is_char_device())
            .unwrap_or(true)
    );
}

/// Unmounts a tmpfs on drop.
struct TmpfsGuard(std::path::PathBuf);

impl Drop for TmpfsGuard {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn free_space_is_respected() {
    let dir = tempfile::tempdir().unwrap();
    let fs_dir = dir.path().join("fs");
    std::fs::create_dir(&fs_dir).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &fs_dir,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=48m,mode=0700"),
    )
    .expect("mount tmpfs (needs root)");
    let _g = TmpfsGuard(fs_dir.clone());
    let store = lookout_image::ImageStore::open(&fs_dir.join("image")).unwrap();

    // 24 MiB would eat into the 32 MiB reserve of a 48 MiB filesystem.
    let mut b = builder();
    file(&mut b, "big", &vec![7u8; 24 << 20]);
    let e = store.import(&finish(b)[..], &opts(None)).unwrap_err();
    assert!(matches!(e, ImageError::NoSpace), "{e}");
    assert!(names(&fs_dir.join("image/tmp")).is_empty());
    assert!(names(&fs_dir.join("image/layers")).is_empty());

    // 4 MiB fits.
    let mut b = builder();
    file(&mut b, "small", &vec![7u8; 4 << 20]);
    store.import(&finish(b)[..], &opts(None)).unwrap();
}
