//! Import, list/get/tag/remove of the image store, on a real filesystem.

mod common;

use std::io::Write;

use common::*;
use lookout_image::{ImageError, ImportOptions, Removed};

#[test]
fn busybox_import_with_changes() {
    let tarball = busybox_tar();
    let t = store();
    let opts = ImportOptions {
        changes: vec![
            r#"CMD ["sh"]"#.into(),
            "ENV PATH=/usr/bin:/bin GREETING=\"hello world\"".into(),
            "WORKDIR /srv".into(),
            r#"ENTRYPOINT ["/bin/busybox"]"#.into(),
            "USER nobody".into(),
            "LABEL org.example=yes".into(),
            "EXPOSE 8080".into(),
        ],
        reference: Some("busybox:test".into()),
        message: Some("imported for tests".into()),
        max_expanded_bytes: 256 << 20,
    };
    let imported = t.store.import(&tarball[..], &opts).expect("import busybox");
    let img = imported.image;
    let c = &img.config;
    assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(c.entrypoint, Some(vec!["/bin/busybox".to_string()]));
    assert_eq!(c.env, vec!["PATH=/usr/bin:/bin", "GREETING=hello world"]);
    assert_eq!(c.working_dir, "/srv");
    assert_eq!(c.user, "nobody");
    assert_eq!(c.labels.get("org.example").map(String::as_str), Some("yes"));
    assert_eq!(c.exposed_ports, vec!["8080/tcp"]);
    assert_eq!(img.repo_tags, vec!["busybox:test"]);
    assert_eq!(img.comment, "imported for tests");
    assert_eq!(img.os, "linux");
    assert!(!img.architecture.is_empty());
    assert!(img.size > 0);
    assert!(img.created_unix > 1_700_000_000);

    // Ids: layer = sha256 of the tar, image = sha256 of the config file.
    assert_eq!(img.layer_id, format!("sha256:{}", sha256_hex(&tarball)));
    let hex = img.id.strip_prefix("sha256:").expect("sha256: id");
    let cfg = std::fs::read(t.root().join("configs").join(format!("{hex}.json"))).unwrap();
    assert_eq!(sha256_hex(&cfg), hex);
    let json: serde_json::Value = serde_json::from_slice(&cfg).unwrap();
    assert_eq!(json["rootfs"]["type"], "layers");
    assert_eq!(json["rootfs"]["diff_ids"][0], img.layer_id.as_str());
    assert_eq!(json["config"]["Cmd"][0], "sh");
    assert_eq!(json["config"]["WorkingDir"], "/srv");
    assert!(json["config"]["ExposedPorts"]["8080/tcp"].is_object());

    let layer = t.store.layer_dir(&img);
    assert!(
        layer.join("bin/busybox").is_file(),
        "busybox binary extracted"
    );
    assert!(t.tmp_entries().is_empty());

    // get by every kind of reference.
    for r in [img.id.as_str(), hex, &hex[..12], &hex[..1], "busybox:test"] {
        assert_eq!(t.store.get(r).unwrap().id, img.id, "get({r})");
    }
    assert!(matches!(
        t.store.get("busybox"),
        Err(ImageError::NotFound(_))
    ));
    t.store.tag(&hex[..12], "busybox", None).unwrap();
    assert_eq!(t.store.get("busybox").unwrap().id, img.id);
    assert_eq!(
        t.store.get("busybox:latest").unwrap().repo_tags,
        vec!["busybox:latest", "busybox:test"]
    );

    let list = t.store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0], t.store.get(&img.id).unwrap());

    let e = t.store.get("nosuch:tag").unwrap_err();
    assert_eq!(e.to_string(), "No such image: nosuch:tag");
    assert_eq!(e.status_code(), 404);
    assert!(matches!(
        t.store.get("UPPER"),
        Err(ImageError::InvalidReference(_))
    ));
}

#[test]
fn remove_semantics() {
    let t = store();
    let img = t
        .store
        .import(&small_rootfs()[..], &opts(Some("app:1")))
        .unwrap()
        .image;
    t.store.tag("app:1", "app", Some("2")).unwrap();
    t.store.tag(&img.id, "other/app:v1", None).unwrap();
    assert_eq!(
        t.store.get(&img.id).unwrap().repo_tags,
        vec!["app:1", "app:2", "other/app:v1"]
    );
    let not_used = |_: &str| false;
    let used = |_: &str| true;

    // A tag among several: untag only (even when in use).
    assert_eq!(
        t.store.remove("app:1", false, &used).unwrap(),
        vec![Removed::Untagged("app:1".into())]
    );
    assert!(matches!(t.store.get("app:1"), Err(ImageError::NotFound(_))));

    // By id with several tags: conflict without force.
    let e = t.store.remove(&img.id, false, &not_used).unwrap_err();
    assert!(matches!(e, ImageError::Conflict(_)), "{e}");
    assert_eq!(e.status_code(), 409);
    t.store.remove("other/app:v1", false, &not_used).unwrap();

    // Last tag while in use: conflict without force.
    let e = t.store.remove("app:2", false, &used).unwrap_err();
    assert!(
        matches!(e, ImageError::Conflict(ref m) if m.contains("app:2")),
        "{e}"
    );
    // Not in use: untag + delete image + delete its layer.
    let layer = t.store.layer_dir(&img);
    let removed = t.store.remove("app:2", false, &not_used).unwrap();
    assert_eq!(
        removed,
        vec![
            Removed::Untagged("app:2".into()),
            Removed::Deleted(img.id.clone()),
            Removed::Deleted(img.layer_id.clone()),
        ]
    );
    assert!(matches!(t.store.get(&img.id), Err(ImageError::NotFound(_))));
    assert!(!layer.exists());
    assert!(t.store.list().unwrap().is_empty());
    assert!(t.tmp_entries().is_empty());
}

#[test]
fn remove_by_id_force_and_in_use() {
    let t = store();
    let a = t
        .store
        .import(&small_rootfs()[..], &opts(Some("a")))
        .unwrap()
        .image;
    let b = t
        .store
        .import(&small_rootfs()[..], &opts(None))
        .unwrap()
        .image;
    assert_ne!(a.id, b.id, "config has a new created time");
    assert_eq!(a.layer_id, b.layer_id, "identical content shares the layer");
    assert_eq!(t.layer_dirs().len(), 1);
    assert!(b.repo_tags.is_empty());

    // Untagged image by id, in use: conflict; forced: deleted, layer kept (shared).
    let e = t
        .store
        .remove(&b.id[7..19], false, &|id: &str| id == b.id)
        .unwrap_err();
    assert!(matches!(e, ImageError::Conflict(_)));
    let r = t
        .store
        .remove(&b.id[7..19], true, &|id: &str| id == b.id)
        .unwrap();
    assert_eq!(r, vec![Removed::Deleted(b.id.clone())]);
    assert!(t.store.layer_dir(&a).is_dir(), "layer still used by a");

    // Forced removal of an in-use image keeps its layer for the container.
    t.store.tag("a", "a", Some("x")).unwrap();
    let r = t.store.remove(&a.id, true, &|_: &str| true).unwrap();
    assert_eq!(
        r,
        vec![
            Removed::Untagged("a:latest".into()),
            Removed::Untagged("a:x".into()),
            Removed::Deleted(a.id.clone())
        ]
    );
    assert!(t.store.layer_dir(&a).is_dir());
    assert!(t.store.list().unwrap().is_empty());

    // The orphaned layer is pruned once no container keeps it.
    let layer = t.store.layer_dir(&a);
    assert!(t.store.prune_layers(&|p| p == layer).unwrap().is_empty());
    assert!(layer.is_dir());
    assert_eq!(
        t.store.prune_layers(&|_| false).unwrap(),
        vec![Removed::Deleted(a.layer_id.clone())]
    );
    assert!(!layer.exists());
    assert!(t.layer_dirs().is_empty());
    assert!(t.tmp_entries().is_empty());
}

#[test]
fn gzip_import_has_the_plain_diff_id() {
    let t = store();
    let plain = small_rootfs();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let img = t.store.import(&gz[..], &opts(Some("gz:1"))).unwrap().image;
    assert_eq!(img.layer_id, format!("sha256:{}", sha256_hex(&plain)));
    let layer = t.store.layer_dir(&img);
    assert_eq!(
        std::fs::read(layer.join("etc/hostname")).unwrap(),
        b"lookout\n"
    );
    assert_eq!(
        std::fs::read_link(layer.join("bin/sh")).unwrap().to_str(),
        Some("tool")
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(layer.join("bin/tool")).unwrap().ino(),
        std::fs::metadata(layer.join("bin/tool2")).unwrap().ino()
    );
    assert!(t.tmp_entries().is_empty());
}

#[test]
fn bzip2_import_has_the_plain_diff_id() {
    let t = store();
    let plain = small_rootfs();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(&plain).unwrap();
    let bz = bz.finish().unwrap();
    let img = t.store.import(&bz[..], &opts(None)).unwrap().image;
    assert_eq!(img.layer_id, format!("sha256:{}", sha256_hex(&plain)));
    assert!(t.store.layer_dir(&img).join("bin/tool").is_file());
}

#[test]
fn tag_moves_and_validates() {
    let t = store();
    let a = t
        .store
        .import(&small_rootfs()[..], &opts(Some("x:1")))
        .unwrap()
        .image;
    let b = t
        .store
        .import(&small_rootfs()[..], &opts(Some("x:1")))
        .unwrap()
        .image;
    assert!(
        t.store.get(&a.id).unwrap().repo_tags.is_empty(),
        "tag moved to the new image"
    );
    assert_eq!(t.store.get("x:1").unwrap().id, b.id);
    assert!(matches!(
        t.store.tag(&b.id, "Bad", None),
        Err(ImageError::InvalidReference(_))
    ));
    assert!(matches!(
        t.store.tag(&b.id, "ok", Some("bad tag")),
        Err(ImageError::InvalidReference(_))
    ));
    assert!(matches!(
        t.store.tag("missing", "ok", None),
        Err(ImageError::NotFound(_))
    ));
    t.store
        .tag("x:1", "docker.io/library/short", Some("v"))
        .unwrap();
    assert_eq!(t.store.get("short:v").unwrap().id, b.id);
    // Persisted: a reopened store sees the same.
    let reopened = lookout_image::ImageStore::open(&t.root()).unwrap();
    assert_eq!(reopened.get("short:v").unwrap().id, b.id);
    assert_eq!(reopened.list().unwrap().len(), 2);
}

#[test]
fn bad_changes_fail_before_extracting() {
    let t = store();
    let o = ImportOptions {
        changes: vec!["RUN echo nope".into()],
        ..opts(None)
    };
    let e = t.store.import(&small_rootfs()[..], &o).unwrap_err();
    assert!(
        matches!(e, ImageError::BadChange(ref m) if m.contains("RUN")),
        "{e}"
    );
    t.assert_clean();
    let e = t
        .store
        .import(&small_rootfs()[..], &opts(Some("UPPER:x")))
        .unwrap_err();
    assert!(matches!(e, ImageError::InvalidReference(_)), "{e}");
    t.assert_clean();
}

#[test]
fn concurrent_imports_share_one_layer() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<lookout_image::ImageStore>();
    let t = store();
    let tarball = small_rootfs();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (store, tarball) = (&t.store, &tarball);
                s.spawn(move || {
                    let r = format!("par:{i}");
                    store
                        .import(&tarball[..], &opts(Some(&r)))
                        .unwrap()
                        .image
                        .id
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(t.layer_dirs().len(), 1);
    assert!(t.tmp_entries().is_empty());
    let list = t.store.list().unwrap();
    assert_eq!(
        list.len(),
        ids.iter().collect::<std::collections::BTreeSet<_>>().len()
    );
    for i in 0..4 {
        assert!(t.store.get(&format!("par:{i}")).is_ok());
    }
}

#[test]
fn ambiguous_prefix() {
    let t = store();
    let mut seen = std::collections::BTreeMap::new();
    // 17 images: two must share their first hex digit.
    for _ in 0..17 {
        let id = t
            .store
            .import(&small_rootfs()[..], &opts(None))
            .unwrap()
            .image
            .id;
        let first = id[7..8].to_string();
        if let Some(other) = seen.insert(first.clone(), id.clone()) {
            let e = t.store.get(&first).unwrap_err();
            assert!(
                matches!(e, ImageError::Ambiguous(ref r) if r == &first),
                "{e}"
            );
            assert_eq!(e.status_code(), 400);
            // Longer, unique prefixes still resolve.
            assert_eq!(t.store.get(&id[..20]).unwrap().id, id);
            assert_eq!(t.store.get(&other[7..27]).unwrap().id, other);
            return;
        }
    }
    panic!("no two of 17 ids shared a first hex digit");
}
