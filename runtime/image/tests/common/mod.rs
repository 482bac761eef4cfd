//! Helpers shared by the integration tests: stores in temp dirs and tar builders,
//! including hostile entries written with raw headers.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use lookout_image::{ImageStore, ImportOptions};
use tar::{Builder, EntryType, Header};

/// A store in its own temp dir.
pub struct TestStore {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// The store, rooted at `dir/image`.
    pub store: ImageStore,
}

impl TestStore {
    /// The store root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("image")
    }

    /// Names in `root/tmp` (must be empty after every import, failed or not).
    pub fn tmp_entries(&self) -> Vec<String> {
        names(&self.root().join("tmp"))
    }

    /// Layer directories (not the `.json` metadata).
    pub fn layer_dirs(&self) -> Vec<String> {
        names(&self.root().join("layers"))
            .into_iter()
            .filter(|n| !n.ends_with(".json"))
            .collect()
    }

    /// Asserts that a failed import left nothing behind.
    pub fn assert_clean(&self) {
        assert!(
            self.tmp_entries().is_empty(),
            "leftover temp dirs: {:?}",
            self.tmp_entries()
        );
        assert!(
            self.layer_dirs().is_empty(),
            "leftover layers: {:?}",
            self.layer_dirs()
        );
        assert!(
            names(&self.root().join("configs")).is_empty(),
            "leftover configs"
        );
    }
}

/// Sorted names of a directory's entries.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A fresh store.
pub fn store() -> TestStore {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(&dir.path().join("image")).expect("open store");
    TestStore { dir, store }
}

/// Import options with a reference and a 64 MiB limit.
pub fn opts(reference: Option<&str>) -> ImportOptions {
    ImportOptions {
        reference: reference.map(str::to_string),
        max_expanded_bytes: 64 << 20,
        ..Default::default()
    }
}

/// A tar builder writing to memory.
pub fn builder() -> Builder<Vec<u8>> {
    Builder::new(Vec::new())
}

/// A GNU header with everything but the name set.
fn header(kind: EntryType, size: u64, mode: u32) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

/// Writes `bytes` into a fixed-size NUL-padded header field.
fn put(field: &mut [u8], bytes: &[u8]) {
    assert!(bytes.len() <= field.len(), "name too long for a raw header");
    field.fill(0);
    field[..bytes.len()].copy_from_slice(bytes);
}

/// Appends an entry with raw (unchecked) name and link name bytes.
pub fn raw_entry(
    b: &mut Builder<Vec<u8>>,
    kind: EntryType,
    name: &[u8],
    link: &[u8],
    data: &[u8],
    mode: u32,
) {
    let mut h = header(kind, data.len() as u64, mode);
    put(&mut h.as_old_mut().name, name);
    put(&mut h.as_old_mut().linkname, link);
    h.set_cksum();
    b.append(&h, data).expect("append raw entry");
}

/// Appends a regular file.
pub fn file(b: &mut Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = header(EntryType::Regular, data.len() as u64, 0o644);
    b.append_data(&mut h, name, data).expect("append file");
}

/// Appends a directory.
pub fn dir(b: &mut Builder<Vec<u8>>, name: &str) {
    let mut h = header(EntryType::Directory, 0, 0o755);
    b.append_data(&mut h, name, &[][..]).expect("append dir");
}

/// Appends a symlink `name -> target` (target unchecked).
pub fn symlink(b: &mut Builder<Vec<u8>>, name: &str, target: &str) {
    raw_entry(
        b,
        EntryType::Symlink,
        name.as_bytes(),
        target.as_bytes(),
        &[],
        0o777,
    );
}

/// Appends a hardlink `name => target` (target unchecked).
pub fn hardlink(b: &mut Builder<Vec<u8>>, name: &str, target: &str) {
    raw_entry(
        b,
        EntryType::Link,
        name.as_bytes(),
        target.as_bytes(),
        &[],
        0o644,
    );
}

/// Finishes the archive.
pub fn finish(b: Builder<Vec<u8>>) -> Vec<u8> {
    b.into_inner().expect("finish tar")
}

/// A small valid rootfs: etc/hostname, bin/tool, a symlink and a hardlink.
pub fn small_rootfs() -> Vec<u8> {
    let mut b = builder();
    dir(&mut b, "etc/");
    file(&mut b, "etc/hostname", b"lookout\n");
    file(&mut b, "etc/os-release", b"NAME=test\n");
    dir(&mut b, "bin/");
    file(&mut b, "bin/tool", b"#!/bin/sh\necho hi\n");
    symlink(&mut b, "bin/sh", "tool");
    hardlink(&mut b, "bin/tool2", "bin/tool");
    finish(b)
}

/// Path of the busybox rootfs tarball built by `scripts/build-rootfs.sh`.
pub fn busybox_tar() -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../build/rootfs/busybox.tar");
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): build it with scripts/build-rootfs.sh before running these tests",
            p.display()
        )
    })
}

/// sha256 hex of bytes.
pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}
