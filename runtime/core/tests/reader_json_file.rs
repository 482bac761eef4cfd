//! The log reader on files written by the real json-file plugin, driven
//! through the `LogDriver` / `LogStream` traits: reads compared with the
//! input, and a follower keeping up with a writer that rotates every
//! kilobyte.

mod reader_util;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lookout_core::logs::reader::{LogReader, ReadOptions, ReadWarning, StopSignal, Stream};
use lookout_plugin_json_file::{JsonFile, JsonFileStream};
use lookout_sdk::abi::{LK_STREAM_STDERR, LK_STREAM_STDOUT, LkBytes, LkKv, LkLogRecord};
use lookout_sdk::{ContainerInfo, Host, LogDriver, LogRecord, LogStream, Options};
use reader_util::{ID, nums, t, text};

fn driver(opts: &[(&str, &str)]) -> JsonFile {
    let kv: Vec<LkKv> = opts
        .iter()
        .map(|(k, v)| LkKv {
            key: LkBytes::from_slice(k.as_bytes()),
            value: LkBytes::from_slice(v.as_bytes()),
        })
        .collect();
    let o = Options::from_kv(&kv);
    JsonFile::validate(&o).unwrap();
    // SAFETY: a null host is allowed (the plugin then has no diagnostics).
    let host = unsafe { Host::from_raw(std::ptr::null()) };
    JsonFile::init(host, &o).unwrap()
}

fn start(dir: &Path, opts: &[(&str, &str)]) -> JsonFileStream {
    let info = ContainerInfo {
        id: ID.into(),
        name: "web".into(),
        image_name: "img:1".into(),
        log_dir: dir.to_string_lossy().into_owned(),
        labels: vec![("team".into(), "obs".into())],
        ..ContainerInfo::default()
    };
    driver(opts).start(&info).unwrap()
}

/// Writes test records `range` (text [`text`], time [`t`]) in one batch.
fn write(s: &mut JsonFileStream, range: std::ops::Range<usize>) {
    let texts: Vec<String> = range.clone().map(text).collect();
    let raw: Vec<LkLogRecord> = range
        .zip(&texts)
        .map(|(i, l)| LkLogRecord {
            line: LkBytes::from_slice(l.as_bytes()),
            time_unix_nano: t(i),
            stream: if i % 2 == 0 {
                LK_STREAM_STDOUT
            } else {
                LK_STREAM_STDERR
            },
            flags: 0,
            partial_id: 0,
            partial_ordinal: 0,
            reserved: 0,
        })
        .collect();
    s.write(LogRecord::slice_from_abi(&raw)).unwrap();
}

#[test]
fn reads_of_plugin_files_match_the_input() {
    let d = tempfile::tempdir().unwrap();
    let mut s = start(
        d.path(),
        &[
            ("max-size", "4k"),
            ("max-file", "5"),
            ("compress", "true"),
            ("labels", "team"),
        ],
    );
    for i in (0..2000).step_by(7) {
        write(&mut s, i..(i + 7).min(2000));
    }
    s.stop().unwrap();

    // The kept files hold a suffix of the input; find where it starts.
    let all = nums(d.path(), ReadOptions::default());
    let first = all[0];
    assert!(first > 0, "rotation should have dropped the oldest records");
    assert_eq!(all, (first..2000).collect::<Vec<_>>());
    let names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.ends_with(".gz")), "{names:?}");

    for n in [0, 1, 10, 37, 100, 150, 400, 10_000] {
        let got = nums(
            d.path(),
            ReadOptions {
                tail: Some(n),
                ..Default::default()
            },
        );
        let want: Vec<usize> = (2000usize.saturating_sub(n).max(first)..2000).collect();
        assert_eq!(got, want, "tail {n}");
    }
    // Around the file boundaries (each file holds 40 records here).
    for i in [first, first + 1, first + 39, first + 40, first + 41, 1999] {
        let since = nums(
            d.path(),
            ReadOptions {
                since: Some(t(i)),
                ..Default::default()
            },
        );
        assert_eq!(since, (i..2000).collect::<Vec<_>>(), "since t({i})");
        let until = nums(
            d.path(),
            ReadOptions {
                until: Some(t(i)),
                ..Default::default()
            },
        );
        assert_eq!(until, (first..=i).collect::<Vec<_>>(), "until t({i})");
    }

    let since = nums(
        d.path(),
        ReadOptions {
            since: Some(t(first - 100)),
            ..Default::default()
        },
    );
    assert_eq!(since, (first..2000).collect::<Vec<_>>());
    let until = nums(
        d.path(),
        ReadOptions {
            until: Some(t(first - 100)),
            ..Default::default()
        },
    );
    assert!(until.is_empty());

    let mut got = Vec::new();
    LogReader::new(d.path(), ID)
        .read(
            &ReadOptions {
                tail: Some(2),
                details: true,
                ..Default::default()
            },
            &StopSignal::new(),
            |e| {
                got.push(e.to_owned_entry());
                true
            },
        )
        .unwrap();
    assert_eq!(got[0].attrs, vec![("team".to_string(), "obs".to_string())]);
    assert_eq!(
        (got[0].stream, got[1].stream),
        (Stream::Stdout, Stream::Stderr)
    );
}

/// A follower in a thread while a writer streams 100 000 records through
/// max-size=1k, max-file=3; the writer waits whenever the follower is more
/// than a few records behind, so no file ages out unread, and the follower
/// must see every record exactly once, in order.
fn stream_through_rotation(compress: bool) {
    const N: usize = 100_000;
    const BATCH: usize = 3;
    const SLACK: u64 = 3;
    let d = tempfile::tempdir().unwrap();
    let compress_opt = if compress { "true" } else { "false" };
    let mut s = start(
        d.path(),
        &[
            ("max-size", "1k"),
            ("max-file", "3"),
            ("compress", compress_opt),
        ],
    );

    let received = Arc::new(AtomicU64::new(0));
    let stop = StopSignal::new();
    let follower = {
        let dir = d.path().to_path_buf();
        let received = received.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::with_capacity(N);
            let summary = LogReader::new(&dir, ID)
                .read(
                    &ReadOptions {
                        follow: true,
                        ..Default::default()
                    },
                    &stop,
                    |e| {
                        let s = std::str::from_utf8(e.line).unwrap();
                        let i: usize = s.trim_end().strip_prefix("line ").unwrap().parse().unwrap();
                        assert_eq!(e.time_unix_nano, t(i));
                        seen.push(i);
                        received.fetch_add(1, Ordering::Release);
                        true
                    },
                )
                .unwrap();
            (seen, summary)
        })
    };

    let started = Instant::now();
    let mut i = 0;
    while i < N {
        let end = (i + BATCH).min(N);
        write(&mut s, i..end);
        i = end;
        let deadline = Instant::now() + Duration::from_secs(20);
        while received.load(Ordering::Acquire) + SLACK < i as u64 {
            assert!(
                Instant::now() < deadline,
                "follower stuck at {}",
                received.load(Ordering::Acquire)
            );
            std::thread::sleep(Duration::from_micros(20));
        }
    }
    s.stop().unwrap();
    stop.finish();
    let (seen, summary) = follower.join().unwrap();
    eprintln!(
        "compress={compress}: {N} records through rotation in {:?}",
        started.elapsed()
    );
    assert_eq!(seen.len(), N, "warnings: {:?}", summary.warnings);
    assert!(
        seen.iter().enumerate().all(|(k, &v)| k == v),
        "out of order or duplicated"
    );
    assert_eq!(summary.entries, N as u64);
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    let gz = std::fs::read_dir(d.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".gz")
        })
        .count();
    assert_eq!(gz > 0, compress);
}

#[test]
fn follower_sees_100k_records_exactly_once_through_rotation() {
    stream_through_rotation(false);
}

#[test]
fn follower_sees_100k_records_exactly_once_through_rotation_and_compression() {
    stream_through_rotation(true);
}

/// Without the writer waiting, files can age out before the follower gets
/// to them (max-file=3): the output must still be in order without
/// duplicates, end with the last record, and any gap must be reported.
#[test]
fn free_running_writer_gives_in_order_output_without_duplicates() {
    const N: usize = 30_000;
    let d = tempfile::tempdir().unwrap();
    let mut s = start(
        d.path(),
        &[("max-size", "1k"), ("max-file", "3"), ("compress", "true")],
    );
    let stop = StopSignal::new();
    let follower = {
        let dir = d.path().to_path_buf();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let summary = LogReader::new(&dir, ID)
                .read(
                    &ReadOptions {
                        follow: true,
                        ..Default::default()
                    },
                    &stop,
                    |e| {
                        let s = std::str::from_utf8(e.line).unwrap();
                        seen.push(s.trim_end()[5..].parse::<usize>().unwrap());
                        true
                    },
                )
                .unwrap();
            (seen, summary)
        })
    };
    for i in (0..N).step_by(5) {
        write(&mut s, i..i + 5);
    }
    s.stop().unwrap();
    stop.finish();
    let (seen, summary) = follower.join().unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "out of order or duplicated"
    );
    assert_eq!(seen.last(), Some(&(N - 1)));
    let gaps = seen.windows(2).filter(|w| w[1] != w[0] + 1).count();
    let missed = summary
        .warnings
        .iter()
        .filter(|w| matches!(w, ReadWarning::MissedRotation { .. }))
        .count() as u64;
    eprintln!(
        "free-running: {} of {N} seen, {gaps} gaps, {missed} missed-rotation warnings",
        seen.len()
    );
    assert!(
        gaps == 0 || summary.warnings_total > 0,
        "a gap without a warning"
    );
}
