//! The log reader on hand-written json-file fixtures: whole reads, tail,
//! since/until, malformed lines, details, and following through
//! hand-made rotation, compression and half-written lines.

mod reader_util;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use lookout_core::logs::reader::{
    DecodeErrorKind, LogReader, ReadError, ReadOptions, ReadWarning, StopSignal, Stream,
};
use reader_util::*;

/// Records 0..40 in `.3.gz` (0..10), `.2` (10..20), `.1` (20..30, with a
/// `.1.gz` twin holding garbage that must not be read) and the current file
/// (30..40 plus half of record 40), and a `.tmp` file of garbage.
fn fixture(dir: &Path) {
    write_gz(&path(dir, 3, true), lines(0..10).as_bytes());
    fs::write(path(dir, 2, false), lines(10..20)).unwrap();
    fs::write(path(dir, 1, false), lines(20..30)).unwrap();
    write_gz(&path(dir, 1, true), b"not the plain file's records\n");
    let mut cur = lines(30..40);
    let next = lines(40..41);
    cur.push_str(&next[..next.len() / 2]);
    fs::write(path(dir, 0, false), cur).unwrap();
    fs::write(dir.join(format!("{ID}-json.log.1.gz.tmp")), "garbage\n").unwrap();
}

fn opts() -> ReadOptions {
    ReadOptions::default()
}

#[test]
fn reads_every_file_in_order_and_holds_back_the_half_line() {
    let d = tempfile::tempdir().unwrap();
    fixture(d.path());
    let (entries, summary) = read(d.path(), opts());
    assert_eq!(
        entries.iter().map(num).collect::<Vec<_>>(),
        (0..40).collect::<Vec<_>>()
    );
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.line, text(i).as_bytes());
        assert_eq!(e.time_unix_nano, t(i));
        let want = if i % 2 == 0 {
            Stream::Stdout
        } else {
            Stream::Stderr
        };
        assert_eq!(e.stream, want);
        assert!(e.attrs.is_empty());
    }
    assert_eq!(summary.entries, 40);
    assert_eq!(summary.malformed, 0);
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
}

#[test]
fn tail_counts_back_across_plain_and_compressed_files() {
    let d = tempfile::tempdir().unwrap();
    fixture(d.path());
    for n in 0..=45 {
        let got = nums(
            d.path(),
            ReadOptions {
                tail: Some(n),
                ..opts()
            },
        );
        let want: Vec<usize> = (40usize.saturating_sub(n)..40).collect();
        assert_eq!(got, want, "tail {n}");
    }
    // The same with the oldest file compressed in the middle of the walk.
    fs::remove_file(path(d.path(), 2, false)).unwrap();
    write_gz(&path(d.path(), 2, true), lines(10..20).as_bytes());
    for n in [5, 10, 15, 25, 31, 40, 100] {
        let got = nums(
            d.path(),
            ReadOptions {
                tail: Some(n),
                ..opts()
            },
        );
        let want: Vec<usize> = (40usize.saturating_sub(n)..40).collect();
        assert_eq!(got, want, "tail {n}");
    }
}

#[test]
fn since_and_until_select_exact_boundaries() {
    let d = tempfile::tempdir().unwrap();
    fixture(d.path());
    let range = |since: Option<i64>, until: Option<i64>| {
        nums(
            d.path(),
            ReadOptions {
                since,
                until,
                ..opts()
            },
        )
    };
    for i in [0, 1, 9, 10, 11, 19, 20, 29, 30, 39] {
        assert_eq!(
            range(Some(t(i)), None),
            (i..40).collect::<Vec<_>>(),
            "since t({i})"
        );
        assert_eq!(
            range(Some(t(i) + 1), None),
            (i + 1..40).collect::<Vec<_>>(),
            "since t({i})+1"
        );
        assert_eq!(
            range(Some(t(i) - 1), None),
            (i..40).collect::<Vec<_>>(),
            "since t({i})-1"
        );
        assert_eq!(
            range(None, Some(t(i))),
            (0..=i).collect::<Vec<_>>(),
            "until t({i})"
        );
        assert_eq!(
            range(None, Some(t(i) - 1)),
            (0..i).collect::<Vec<_>>(),
            "until t({i})-1"
        );
    }
    assert_eq!(
        range(Some(t(12)), Some(t(33))),
        (12..=33).collect::<Vec<_>>()
    );
    assert_eq!(range(Some(t(12)), Some(t(12))), vec![12]);
    assert_eq!(range(Some(t(13)), Some(t(12))), Vec::<usize>::new());
    assert_eq!(range(Some(t(40)), None), Vec::<usize>::new());
    assert_eq!(range(None, Some(t(0) - 1)), Vec::<usize>::new());
}

#[test]
fn since_skips_whole_files_without_decoding_them() {
    let d = tempfile::tempdir().unwrap();
    fixture(d.path());
    // Corrupt the middle of the two oldest files: a read that decoded them
    // would count malformed lines.
    let mut two = lines(10..20);
    two.insert_str(two.len() / 2, "garbage\n");
    fs::write(path(d.path(), 2, false), two).unwrap();
    let mut three = lines(0..10).into_bytes();
    let at = lines(0..3).len();
    three.splice(at..at, b"garbage\n".iter().copied());
    write_gz(&path(d.path(), 3, true), &three);

    let (e, s) = read(
        d.path(),
        ReadOptions {
            since: Some(t(20)),
            ..opts()
        },
    );
    assert_eq!(
        e.iter().map(num).collect::<Vec<_>>(),
        (20..40).collect::<Vec<_>>()
    );
    assert_eq!(s.malformed, 0);
    let (e, s) = read(
        d.path(),
        ReadOptions {
            since: Some(t(19)),
            ..opts()
        },
    );
    assert_eq!(
        e.iter().map(num).collect::<Vec<_>>(),
        (19..40).collect::<Vec<_>>()
    );
    assert_eq!(s.malformed, 1, "the plain .2 is read, the .3.gz is skipped");
    // Tail walking back stops at files entirely before `since`.
    let (e, s) = read(
        d.path(),
        ReadOptions {
            tail: Some(35),
            since: Some(t(20)),
            ..opts()
        },
    );
    assert_eq!(
        e.iter().map(num).collect::<Vec<_>>(),
        (20..40).collect::<Vec<_>>()
    );
    assert_eq!(s.malformed, 0);
    // Without since, everything is decoded: both bad lines are counted.
    let (e, s) = read(d.path(), opts());
    assert_eq!(e.len(), 40);
    assert_eq!(s.malformed, 2);
}

#[test]
fn tail_then_since_until_like_docker() {
    let d = tempfile::tempdir().unwrap();
    fixture(d.path());
    let q = |tail, since, until| {
        nums(
            d.path(),
            ReadOptions {
                tail: Some(tail),
                since,
                until,
                ..opts()
            },
        )
    };
    // The last 10 records, then filtered.
    assert_eq!(q(10, Some(t(35)), None), (35..40).collect::<Vec<_>>());
    assert_eq!(q(10, Some(t(5)), None), (30..40).collect::<Vec<_>>());
    assert_eq!(q(10, None, Some(t(33))), (30..=33).collect::<Vec<_>>());
    // moby: `--tail 10 --until T` with T before the last 10 gives nothing.
    assert_eq!(q(10, None, Some(t(20))), Vec::<usize>::new());
    assert_eq!(
        q(25, Some(t(18)), Some(t(22))),
        (18..=22).collect::<Vec<_>>()
    );
}

#[test]
fn malformed_lines_are_skipped_and_reported_with_file_and_offset() {
    let d = tempfile::tempdir().unwrap();
    let good = lines(0..3);
    let first = lines(0..1);
    let bad1 = "{\"log\":\"x\",\"stream\":\"stdout\"}\n";
    let bad2 = "\n";
    let bad3 = "{\"log\":\"unterminated\n";
    let content = format!(
        "{first}{bad1}{}{bad2}{bad3}{}",
        &good[first.len()..],
        lines(3..4)
    );
    fs::write(path(d.path(), 0, false), &content).unwrap();
    let (e, s) = read(d.path(), opts());
    assert_eq!(e.iter().map(num).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    assert_eq!(s.malformed, 3);
    assert_eq!(s.warnings_total, 3);
    let ReadWarning::Malformed(m) = &s.warnings[0] else {
        panic!("{:?}", s.warnings[0]);
    };
    assert_eq!(m.path, path(d.path(), 0, false));
    assert_eq!(m.offset, first.len() as u64);
    assert_eq!(m.kind, DecodeErrorKind::MissingTime);
    let msg = m.to_string();
    assert!(msg.contains(&format!("{ID}-json.log")), "{msg}");
    assert!(
        msg.contains(&format!("byte offset {}", first.len())),
        "{msg}"
    );
    let ReadWarning::Malformed(m) = &s.warnings[1] else {
        panic!();
    };
    assert_eq!(m.kind, DecodeErrorKind::Empty);
    let ReadWarning::Malformed(m) = &s.warnings[2] else {
        panic!();
    };
    assert_eq!(m.kind, DecodeErrorKind::Truncated);
    // A malformed line still counts as a line for tail, as in moby.
    assert_eq!(
        nums(
            d.path(),
            ReadOptions {
                tail: Some(4),
                ..opts()
            }
        ),
        vec![2, 3]
    );
}

#[test]
fn escapes_partials_and_details() {
    let d = tempfile::tempdir().unwrap();
    type Rec<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);
    let recs: Vec<Rec<'_>> = vec![
        (
            "tab\there \"q\" \\ <&> é 中 😀 \u{1b}[0m\r\n",
            "stdout",
            vec![],
        ),
        (
            "a partial chunk without newline ",
            "stderr",
            vec![("tag", "web")],
        ),
        (
            "and its end\n",
            "stderr",
            vec![("tag", "web"), ("team", "o\"bs")],
        ),
        ("", "stdin", vec![]),
    ];
    let mut content = String::new();
    for (i, (log, stream, attrs)) in recs.iter().enumerate() {
        content.push_str(&json_line(log, stream, attrs, t(i)));
    }
    // Invalid UTF-8 was stored as U+FFFD and a lone surrogate decodes to it.
    content.push_str("{\"log\":\"\\ufffd\\ud800x\\n\",\"stream\":\"stdout\",\"time\":\"2019-01-01T11:11:11.000004Z\"}\n");
    fs::write(path(d.path(), 0, false), &content).unwrap();

    let (e, _) = read(d.path(), opts());
    assert_eq!(e.len(), 5);
    for (i, (log, _, _)) in recs.iter().enumerate() {
        assert_eq!(e[i].line, log.as_bytes());
        assert!(e[i].attrs.is_empty());
    }
    assert_eq!(e[3].stream, Stream::Stdin);
    assert_eq!(e[4].line, "\u{fffd}\u{fffd}x\n".as_bytes());
    assert_eq!(e[4].time_unix_nano, T0 + 4_000);

    let (e, _) = read(
        d.path(),
        ReadOptions {
            details: true,
            ..opts()
        },
    );
    assert_eq!(e[1].attrs, vec![("tag".to_string(), "web".to_string())]);
    assert_eq!(
        e[2].attrs,
        vec![
            ("tag".to_string(), "web".to_string()),
            ("team".to_string(), "o\"bs".to_string())
        ]
    );
    assert!(e[0].attrs.is_empty());
}

#[test]
fn missing_dir_is_an_error_and_empty_dir_is_empty() {
    let d = tempfile::tempdir().unwrap();
    let r = LogReader::new(d.path().join("nope"), ID).read(&opts(), &StopSignal::new(), |_| true);
    assert!(matches!(r, Err(ReadError::Dir { .. })), "{r:?}");
    assert!(r.unwrap_err().to_string().contains("nope"));
    let (e, s) = read(
        d.path(),
        ReadOptions {
            tail: Some(5),
            ..opts()
        },
    );
    assert!(e.is_empty());
    assert_eq!(s.entries, 0);
}

#[test]
fn the_sink_can_stop_the_read() {
    let d = tempfile::tempdir().unwrap();
    fixture(d.path());
    let mut got = Vec::new();
    let s = LogReader::new(d.path(), ID)
        .read(&opts(), &StopSignal::new(), |e| {
            got.push(e.time_unix_nano);
            got.len() < 15
        })
        .unwrap();
    assert_eq!(got.len(), 15);
    assert_eq!(s.entries, 15);
}

// ---- following ----------------------------------------------------------

#[test]
fn follow_never_returns_a_half_written_line() {
    let d = tempfile::tempdir().unwrap();
    let cur = path(d.path(), 0, false);
    fs::write(&cur, lines(0..5)).unwrap();
    let f = Follower::start(d.path(), opts());
    assert_eq!(
        f.take(5).iter().map(num).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );

    let next = lines(5..6);
    let (a, b) = next.split_at(next.len() / 2);
    append(&cur, a.as_bytes());
    assert!(f.drain_for(Duration::from_millis(300)).is_empty());
    // Complete all but the newline: still nothing.
    append(&cur, &b.as_bytes()[..b.len() - 1]);
    assert!(f.drain_for(Duration::from_millis(300)).is_empty());
    let t0 = Instant::now();
    append(&cur, b"\n");
    let e = f.take(1);
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(num(&e[0]), 5);
    assert_eq!(e[0].line, text(5).as_bytes());

    // A half line left when the writer finishes is reported, not returned.
    append(&cur, a.as_bytes());
    let (rest, s) = f.finish();
    assert!(rest.is_empty());
    assert_eq!(s.entries, 6);
    assert!(
        matches!(s.warnings.as_slice(), [ReadWarning::Truncated { .. }]),
        "{:?}",
        s.warnings
    );
}

#[test]
fn follow_with_tail_zero_returns_only_new_records() {
    let d = tempfile::tempdir().unwrap();
    fixture(d.path());
    let f = Follower::start(
        d.path(),
        ReadOptions {
            tail: Some(0),
            ..opts()
        },
    );
    std::thread::sleep(Duration::from_millis(100));
    // Completes the half-written record 40: it was not returned yet, so it
    // is new.
    let rest = lines(40..41);
    append(
        &path(d.path(), 0, false),
        &rest.as_bytes()[rest.len() / 2..],
    );
    append(&path(d.path(), 0, false), lines(41..43).as_bytes());
    let (mut got, s) = {
        let first = f.take(3);
        let (r, s) = f.finish();
        (first.into_iter().chain(r).collect::<Vec<_>>(), s)
    };
    got.sort_by_key(|e| e.time_unix_nano);
    assert_eq!(got.iter().map(num).collect::<Vec<_>>(), vec![40, 41, 42]);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn follow_with_tail_then_new_records() {
    let d = tempfile::tempdir().unwrap();
    fixture(d.path());
    let f = Follower::start(
        d.path(),
        ReadOptions {
            tail: Some(12),
            ..opts()
        },
    );
    let first = f.take(12);
    assert_eq!(
        first.iter().map(num).collect::<Vec<_>>(),
        (28..40).collect::<Vec<_>>()
    );
    let rest = lines(40..41);
    append(
        &path(d.path(), 0, false),
        &rest.as_bytes()[rest.len() / 2..],
    );
    assert_eq!(num(&f.take(1)[0]), 40);
    let (r, _) = f.finish();
    assert!(r.is_empty());
}

#[test]
fn finish_drains_what_is_left_and_cancel_returns_at_once() {
    let d = tempfile::tempdir().unwrap();
    let cur = path(d.path(), 0, false);
    fs::write(&cur, lines(0..3)).unwrap();

    let f = Follower::start(d.path(), opts());
    assert_eq!(f.take(3).len(), 3);
    // Written right before `finish`: must still come out.
    append(&cur, lines(3..10).as_bytes());
    let (rest, s) = f.finish();
    assert_eq!(
        rest.iter().map(num).collect::<Vec<_>>(),
        (3..10).collect::<Vec<_>>()
    );
    assert_eq!(s.entries, 10);

    // An idle follower wakes at once on cancel.
    let f = Follower::start(
        d.path(),
        ReadOptions {
            tail: Some(0),
            ..opts()
        },
    );
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    f.stop.cancel();
    let s = f.handle.join().unwrap();
    assert!(
        t0.elapsed() < Duration::from_millis(250),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(s.entries, 0);

    // `finish` before anything is read still drains everything.
    let stop = StopSignal::new();
    stop.finish();
    let mut n = 0;
    LogReader::new(d.path(), ID)
        .read(
            &ReadOptions {
                follow: true,
                ..opts()
            },
            &stop,
            |_| {
                n += 1;
                true
            },
        )
        .unwrap();
    assert_eq!(n, 10);
}

/// CPU time (user + system) this thread used, from /proc, in ms.
fn thread_cpu_ms() -> u64 {
    let stat = fs::read_to_string("/proc/thread-self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the name.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks * 1000 / 100
}

#[test]
fn an_idle_follower_does_not_spin() {
    let d = tempfile::tempdir().unwrap();
    fs::write(path(d.path(), 0, false), lines(0..3)).unwrap();
    let stop = StopSignal::new();
    let s2 = stop.clone();
    let dir = d.path().to_path_buf();
    let h = std::thread::spawn(move || {
        let before = thread_cpu_ms();
        LogReader::new(&dir, ID)
            .read(
                &ReadOptions {
                    follow: true,
                    ..opts()
                },
                &s2,
                |_| true,
            )
            .unwrap();
        thread_cpu_ms() - before
    });
    std::thread::sleep(Duration::from_millis(1500));
    stop.cancel();
    let cpu = h.join().unwrap();
    assert!(cpu <= 60, "idle follower used {cpu} ms of CPU in 1.5 s");
}

/// Rotates like json-file: `.k` → `.k+1` (oldest first), current → `.1`,
/// fresh current; optionally compresses `.1` as the writer's background
/// thread does (`.1` → `.1.gz.tmp` → `.1.gz`, unlink `.1`).
fn rotate(dir: &Path, max_file: u32, compress: bool) {
    let top = max_file - 1;
    let _ = fs::remove_file(path(dir, top, false));
    let _ = fs::remove_file(path(dir, top, true));
    for k in (2..=top).rev() {
        let _ = fs::rename(path(dir, k - 1, false), path(dir, k, false));
        let _ = fs::rename(path(dir, k - 1, true), path(dir, k, true));
    }
    fs::rename(path(dir, 0, false), path(dir, 1, false)).unwrap();
    fs::write(path(dir, 0, false), "").unwrap();
    if compress {
        let data = fs::read(path(dir, 1, false)).unwrap();
        let tmp = dir.join(format!("{ID}-json.log.1.gz.tmp"));
        write_gz(&tmp, &data);
        fs::rename(&tmp, path(dir, 1, true)).unwrap();
        fs::remove_file(path(dir, 1, false)).unwrap();
    }
}

#[test]
fn follow_through_hand_made_rotation_and_compression() {
    for compress in [false, true] {
        let d = tempfile::tempdir().unwrap();
        let cur = path(d.path(), 0, false);
        fs::write(&cur, lines(0..5)).unwrap();
        let f = Follower::start(d.path(), opts());
        assert_eq!(f.take(5).len(), 5);
        let mut next = 5;
        for round in 0..30 {
            // Lines written just before the rotation are in the renamed
            // inode only.
            append(&cur, lines(next..next + 3).as_bytes());
            next += 3;
            rotate(d.path(), 4, compress);
            append(&cur, lines(next..next + 2).as_bytes());
            next += 2;
            if round % 3 == 0 {
                // Let the follower fall two rotations behind.
                rotate(d.path(), 4, compress);
            }
            let got = f.take(5);
            let want: Vec<usize> = (next - 5..next).collect();
            assert_eq!(
                got.iter().map(num).collect::<Vec<_>>(),
                want,
                "compress {compress} round {round}"
            );
        }
        let (rest, s) = f.finish();
        assert!(rest.is_empty(), "{rest:?}");
        assert_eq!(s.entries, next as u64);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }
}

#[test]
fn follow_after_truncation_in_place() {
    // json-file with max-file=1 truncates the same file instead of rotating.
    let d = tempfile::tempdir().unwrap();
    let cur = path(d.path(), 0, false);
    fs::write(&cur, lines(0..5)).unwrap();
    let f = Follower::start(d.path(), opts());
    assert_eq!(f.take(5).len(), 5);
    fs::OpenOptions::new()
        .write(true)
        .open(&cur)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    append(&cur, lines(5..7).as_bytes());
    assert_eq!(f.take(2).iter().map(num).collect::<Vec<_>>(), vec![5, 6]);
    let (rest, s) = f.finish();
    assert!(rest.is_empty());
    assert!(
        s.warnings
            .iter()
            .all(|w| matches!(w, ReadWarning::FileTruncated { .. })),
        "{:?}",
        s.warnings
    );
}

#[test]
fn follow_ends_after_until() {
    let d = tempfile::tempdir().unwrap();
    let cur = path(d.path(), 0, false);
    fs::write(&cur, lines(0..5)).unwrap();
    let f = Follower::start(
        d.path(),
        ReadOptions {
            until: Some(t(7)),
            ..opts()
        },
    );
    assert_eq!(f.take(5).len(), 5);
    append(&cur, lines(5..12).as_bytes());
    let s = f.handle.join().unwrap();
    let got: Vec<usize> = f.rx.try_iter().map(|e| num(&e)).collect();
    assert_eq!(got, vec![5, 6, 7]);
    assert_eq!(s.entries, 8);
}

#[test]
fn follow_starts_with_the_first_file_that_appears() {
    let d = tempfile::tempdir().unwrap();
    let f = Follower::start(d.path(), opts());
    std::thread::sleep(Duration::from_millis(100));
    let cur = path(d.path(), 0, false);
    append(&cur, lines(0..3).as_bytes());
    rotate(d.path(), 3, true);
    append(&cur, lines(3..4).as_bytes());
    assert_eq!(
        f.take(4).iter().map(num).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    let (rest, _) = f.finish();
    assert!(rest.is_empty());
}
