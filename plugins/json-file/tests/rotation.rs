//! Rotation: the kept files, read oldest → newest as the host's reader
//! does, are always a whole-line suffix of the input, in order.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use common::{Rec, T0, driver, info, log_path, write};
use lookout_sdk::{LogDriver, LogStream};

fn input(n: usize) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            // Varied lengths, some escapes, a few partial-looking chunks.
            let pad = "x".repeat(i * 7 % 23);
            let l = if i % 97 == 0 {
                format!("line {i:06} \"quoted\"\t{pad}")
            } else {
                format!("line {i:06} {pad}\n")
            };
            Rec::out(l, T0 + i as i64 * 1_000)
        })
        .collect()
}

fn rotated(dir: &Path, k: u32, gz: bool) -> PathBuf {
    let mut p = log_path(dir).into_os_string();
    p.push(format!(".{k}{}", if gz { ".gz" } else { "" }));
    PathBuf::from(p)
}

/// Reads the files as the host's reader does: `.N(.gz)` … `.1(.gz)`, then
/// the current one; a plain file wins over its `.gz`.
fn read_all(dir: &Path, max_files: u32) -> (Vec<Vec<u8>>, Vec<usize>) {
    let mut out = Vec::new();
    let mut sizes = Vec::new();
    for k in (1..max_files).rev() {
        let plain = rotated(dir, k, false);
        let gz = rotated(dir, k, true);
        let data = match std::fs::read(&plain) {
            Ok(d) => d,
            Err(_) => match std::fs::File::open(&gz) {
                Ok(f) => {
                    let mut d = Vec::new();
                    flate2::read::GzDecoder::new(f).read_to_end(&mut d).unwrap();
                    d
                }
                Err(_) => continue,
            },
        };
        sizes.push(data.len());
        out.push(data);
    }
    out.push(std::fs::read(log_path(dir)).unwrap());
    (out, sizes)
}

/// Checks the files hold a whole-line suffix of `recs[..upto]`; returns
/// how many lines they hold.
fn check_suffix(dir: &Path, max_files: u32, recs: &[Rec], upto: usize, max_size: usize) -> usize {
    let (files, sizes) = read_all(dir, max_files);
    let mut logs = Vec::new();
    for f in &files {
        assert!(f.is_empty() || f.ends_with(b"\n"), "torn file");
        for l in f.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(l)
                .unwrap_or_else(|e| panic!("bad line {:?}: {e}", String::from_utf8_lossy(l)));
            logs.push(v["log"].as_str().unwrap().to_string());
        }
    }
    assert!(logs.len() <= upto);
    let first = upto - logs.len();
    for (j, l) in logs.iter().enumerate() {
        let want = String::from_utf8(recs[first + j].line.clone()).unwrap();
        assert_eq!(l, &want, "line {} of the kept files", j);
    }
    // Every rotated file reached max-size and holds at most one record past.
    for s in sizes {
        assert!(s >= max_size && s < max_size + 200, "rotated size {s}");
    }
    logs.len()
}

fn leftovers(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn rotation_keeps_a_whole_line_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let d = driver(&[("max-size", "1k"), ("max-file", "3")]).unwrap();
    let mut s = d.start(&info(dir.path())).unwrap();
    let recs = input(100_000);
    let sizes = [1usize, 2, 7, 50, 333, 1, 1000, 13, 4096];
    let (mut i, mut b) = (0, 0);
    while i < recs.len() {
        let n = sizes[b % sizes.len()].min(recs.len() - i);
        write(&mut s, &recs[i..i + n]).unwrap();
        i += n;
        b += 1;
        if b % 50 == 0 {
            let kept = check_suffix(dir.path(), 3, &recs, i, 1000);
            assert!(kept > 0);
        }
    }
    s.stop().unwrap();
    let kept = check_suffix(dir.path(), 3, &recs, recs.len(), 1000);
    assert!(kept > 10, "kept {kept}");
    let id = common::ID;
    assert_eq!(
        leftovers(dir.path()),
        [
            format!("{id}-json.log"),
            format!("{id}-json.log.1"),
            format!("{id}-json.log.2")
        ]
    );
}

#[test]
fn rotation_with_compress() {
    let dir = tempfile::tempdir().unwrap();
    let d = driver(&[("max-size", "1k"), ("max-file", "3"), ("compress", "true")]).unwrap();
    let recs = input(100_000);
    let sizes = [3usize, 1, 64, 500, 2, 10_000];
    let mut s = d.start(&info(dir.path())).unwrap();
    let (mut i, mut b) = (0, 0);
    while i < recs.len() {
        let n = sizes[b % sizes.len()].min(recs.len() - i);
        write(&mut s, &recs[i..i + n]).unwrap();
        i += n;
        b += 1;
    }
    s.stop().unwrap();
    let id = common::ID;
    assert_eq!(
        leftovers(dir.path()),
        [
            format!("{id}-json.log"),
            format!("{id}-json.log.1.gz"),
            format!("{id}-json.log.2.gz")
        ]
    );
    for k in [1, 2] {
        let st = std::process::Command::new("gzip")
            .arg("-t")
            .arg(rotated(dir.path(), k, true))
            .status()
            .unwrap();
        assert!(st.success(), "gzip -t .{k}.gz");
    }
    check_suffix(dir.path(), 3, &recs, recs.len(), 1000);

    // Docker's gzip header: {"lastTime":"…"} in the extra field, the time
    // of the file's last record.
    let f = std::fs::File::open(rotated(dir.path(), 1, true)).unwrap();
    let mut gz = flate2::read::GzDecoder::new(f);
    let mut data = Vec::new();
    gz.read_to_end(&mut data).unwrap();
    let extra = gz.header().unwrap().extra().unwrap().to_vec();
    let last: serde_json::Value = serde_json::from_slice(
        data.trim_ascii_end()
            .rsplit(|&b| b == b'\n')
            .next()
            .unwrap(),
    )
    .unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&extra).unwrap();
    assert_eq!(meta["lastTime"], last["time"]);
}

#[test]
fn restart_continues_the_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let recs = input(3_000);
    for (lo, hi, compress) in [
        (0, 1000, "false"),
        (1000, 2000, "true"),
        (2000, 3000, "false"),
    ] {
        let d = driver(&[
            ("max-size", "1k"),
            ("max-file", "4"),
            ("compress", compress),
        ])
        .unwrap();
        let mut s = d.start(&info(dir.path())).unwrap();
        for c in recs[lo..hi].chunks(37) {
            write(&mut s, c).unwrap();
        }
        s.stop().unwrap();
        check_suffix(dir.path(), 4, &recs, hi, 1000);
    }
}

#[test]
fn max_file_1_truncates_like_docker() {
    let dir = tempfile::tempdir().unwrap();
    let d = driver(&[("max-size", "1k")]).unwrap();
    let mut s = d.start(&info(dir.path())).unwrap();
    let recs = input(1000);
    for c in recs.chunks(9) {
        write(&mut s, c).unwrap();
    }
    s.stop().unwrap();
    let kept = check_suffix(dir.path(), 1, &recs, recs.len(), 1000);
    assert!(kept > 0);
    assert_eq!(leftovers(dir.path()).len(), 1);
    assert!(std::fs::metadata(log_path(dir.path())).unwrap().len() < 1200);
}

#[test]
fn unlimited_never_rotates() {
    let dir = tempfile::tempdir().unwrap();
    let d = driver(&[("max-file", "5")]).unwrap();
    let mut s = d.start(&info(dir.path())).unwrap();
    let recs = input(20_000);
    for c in recs.chunks(1000) {
        write(&mut s, c).unwrap();
    }
    s.stop().unwrap();
    assert_eq!(
        check_suffix(dir.path(), 1, &recs, recs.len(), 0),
        recs.len()
    );
    assert_eq!(leftovers(dir.path()).len(), 1);
}
