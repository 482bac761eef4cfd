//! A full disk: a write fails with a retry naming the path, the file keeps
//! only whole records, and a retry after space is freed completes it.
//!
//! The test re-executes itself under `unshare --mount --propagation
//! private` and mounts a 256 KiB tmpfs there, so the host's mount table is
//! never touched. It needs root, as the whole suite does.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Rec, T0, driver, info, log_path, write};
use lookout_sdk::{LogDriver, LogStream, Status};

const ENV: &str = "LOOKOUT_JSON_FILE_FULL_DISK_DIR";
const NAME: &str = "full_disk_is_a_retry_and_never_tears_a_record";

#[test]
fn full_disk_is_a_retry_and_never_tears_a_record() {
    if let Ok(dir) = std::env::var(ENV) {
        in_namespace(Path::new(&dir));
        return;
    }
    let uid = Command::new("id").arg("-u").output().ok();
    let root = uid.is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    assert!(
        root,
        "needs root for a private tmpfs mount (run the suite as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let st = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(ENV, dir.path())
        .status()
        .expect("run unshare");
    assert!(st.success(), "child test failed: {st}");
}

/// Lines decoded from the file (panics on a torn or invalid line).
fn logs(p: &Path) -> Vec<String> {
    let data = std::fs::read(p).unwrap();
    assert!(
        data.is_empty() || data.ends_with(b"\n"),
        "file ends mid-record"
    );
    data.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).unwrap();
            v["log"].as_str().unwrap().to_string()
        })
        .collect()
}

fn in_namespace(dir: &Path) {
    let st = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=256k",
            "lookout-test",
            &*dir.to_string_lossy(),
        ])
        .status()
        .unwrap();
    assert!(st.success(), "mount tmpfs");
    // Room to give back later.
    let filler = dir.join("filler");
    std::fs::write(&filler, vec![0u8; 96 * 1024]).unwrap();

    let recs: Vec<Rec> = (0..400)
        .map(|i| {
            let body: String = (0..1500)
                .map(|j| (b'a' + ((i + j) % 26) as u8) as char)
                .collect();
            Rec::out(format!("{i:04} \"{body}\"\n"), T0 + i as i64)
        })
        .collect();
    let want = |n: usize| -> Vec<String> {
        recs[..n]
            .iter()
            .map(|r| String::from_utf8(r.line.clone()).unwrap())
            .collect()
    };

    let d = driver(&[]).unwrap();
    let mut s = d.start(&info(dir)).unwrap();
    let path = log_path(dir);
    let mut done = 0;
    let mut failed = None;
    while done < recs.len() {
        let batch = &recs[done..(done + 16).min(recs.len())];
        match write(&mut s, batch) {
            Ok(()) => done += batch.len(),
            Err(e) => {
                assert_eq!(e.status, Status::Retry, "{e:?}");
                assert!(
                    e.message.contains(&*path.to_string_lossy()),
                    "{}",
                    e.message
                );
                assert!(e.written < batch.len());
                done += e.written;
                failed = Some(e.message);
                break;
            }
        }
    }
    let msg = failed.expect("the disk never filled up");
    eprintln!("full disk reported as: {msg}");
    assert!(done > 0 && done < recs.len());
    assert_eq!(logs(&path), want(done));

    // Still full: the same retry, the file unchanged.
    let len = std::fs::metadata(&path).unwrap().len();
    let e = write(&mut s, &recs[done..(done + 16).min(recs.len())]).unwrap_err();
    assert_eq!(e.status, Status::Retry);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    done += e.written;
    assert_eq!(logs(&path), want(done));

    // Free space; the host retries from `written` and everything lands.
    std::fs::remove_file(&filler).unwrap();
    let upto = (done + 40).min(recs.len());
    write(&mut s, &recs[done..upto]).unwrap();
    s.stop().unwrap();
    assert_eq!(logs(&path), want(upto));
}
