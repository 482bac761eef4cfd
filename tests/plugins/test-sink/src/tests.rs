use super::*;

use std::ffi::CStr;
use std::time::Instant;

use lookout_sdk::abi::{LK_FATAL, LK_OK, LK_STREAM_STDOUT, LkBytes, LkErrBuf, LkKv, LkLogRecord};
use lookout_sdk::{LogRecord, Status};

/// Pairs borrowing `pairs`' strings (keep them alive while the result is used).
fn kv(pairs: &[(&str, &str)]) -> Vec<LkKv> {
    pairs
        .iter()
        .map(|(k, v)| LkKv {
            key: LkBytes::from_slice(k.as_bytes()),
            value: LkBytes::from_slice(v.as_bytes()),
        })
        .collect()
}

fn parse(pairs: &[(&str, &str)]) -> Result<Config, Error> {
    let v = kv(pairs);
    Config::parse(&Options::from_kv(&v))
}

fn records(lines: &[&'static [u8]]) -> Vec<LkLogRecord> {
    lines
        .iter()
        .map(|l| LkLogRecord {
            line: LkBytes::from_slice(l),
            time_unix_nano: 1,
            stream: LK_STREAM_STDOUT,
            flags: 0,
            partial_id: 0,
            partial_ordinal: 0,
            reserved: 0,
        })
        .collect()
}

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("test-sink-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn stream(pairs: &[(&str, &str)]) -> SinkStream {
    let v = kv(pairs);
    let o = Options::from_kv(&v);
    TestSink::validate(&o).unwrap();
    // SAFETY: a null host is allowed (it ignores log calls).
    let host = unsafe { Host::from_raw(std::ptr::null()) };
    let d = TestSink::init(host, &o).unwrap();
    d.start(&ContainerInfo::default()).unwrap()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

// ------------------------------------------------------------ options

#[test]
fn defaults() {
    let c = parse(&[]).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.behavior, Behavior::Ok);
    assert_eq!(c.delay, Duration::from_micros(1000));
}

#[test]
fn every_option_is_parsed() {
    let c = parse(&[
        ("out", "/tmp/o"),
        ("behavior", "stall"),
        ("release", "/tmp/r"),
        ("panic-after", "3"),
        ("fail-after", "4"),
        ("retry-times", "5"),
        ("delay-us", "6"),
    ])
    .unwrap();
    assert_eq!(
        c,
        Config {
            out: Some("/tmp/o".into()),
            behavior: Behavior::Stall,
            release: Some("/tmp/r".into()),
            panic_after: 3,
            fail_after: 4,
            retry_times: 5,
            delay: Duration::from_micros(6),
        }
    );
    for (name, b) in Behavior::ALL {
        let mut opts = vec![("behavior", name)];
        if b == Behavior::Stall {
            opts.push(("release", "/r"));
        }
        assert_eq!(parse(&opts).unwrap().behavior, b, "{name}");
    }
}

#[test]
fn unknown_key_is_named() {
    let e = parse(&[("out", "/o"), ("max-size", "1k")]).unwrap_err();
    assert_eq!(e.status, Status::Fatal);
    assert_eq!(
        e.message,
        "unknown log opt 'max-size' for test-sink log driver"
    );
}

#[test]
fn bad_values_name_key_and_value() {
    for key in ["panic-after", "fail-after", "retry-times", "delay-us"] {
        for bad in ["-1", "x", "", "1.5"] {
            let e = parse(&[(key, bad)]).unwrap_err();
            assert_eq!(e.status, Status::Fatal);
            assert!(
                e.message.contains(key) && e.message.contains(&format!("{bad:?}")),
                "{}",
                e.message
            );
        }
    }
    let e = parse(&[("behavior", "explode")]).unwrap_err();
    assert!(
        e.message.contains("behavior") && e.message.contains("explode"),
        "{}",
        e.message
    );
    let e = parse(&[("out", "")]).unwrap_err();
    assert!(e.message.contains("out"), "{}", e.message);
}

#[test]
fn stall_needs_release() {
    let e = parse(&[("behavior", "stall")]).unwrap_err();
    assert!(e.message.contains("release"), "{}", e.message);
}

// ---------------------------------------------------------- behaviours

#[test]
fn ok_appends_bytes_and_writes_summary() {
    let d = scratch("ok");
    let out = d.join("out");
    let o = out.to_str().unwrap();
    let mut s = stream(&[("out", o)]);
    let r1 = records(&[b"one\n", b"two\xff\0\r\n"]);
    let r2 = records(&[b"three"]);
    s.write(LogRecord::slice_from_abi(&r1)).unwrap();
    s.write(LogRecord::slice_from_abi(&r2)).unwrap();
    s.write(&[]).unwrap();
    assert_eq!((s.records(), s.bytes(), s.calls()), (3, 16, 3));
    s.stop().unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"one\ntwo\xff\0\r\nthree");
    let summary = d.join("out.summary");
    assert_eq!(read(&summary), "records=3 bytes=16 calls=3\n");

    // A second stream appends to both files.
    let mut s = stream(&[("out", o)]);
    s.write(LogRecord::slice_from_abi(&r2)).unwrap();
    s.stop().unwrap();
    assert_eq!(
        read(&summary),
        "records=3 bytes=16 calls=3\nrecords=1 bytes=5 calls=1\n"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn fatal_after_n_records() {
    let d = scratch("fatal");
    let out = d.join("out");
    let mut s = stream(&[
        ("out", out.to_str().unwrap()),
        ("behavior", "fatal"),
        ("fail-after", "2"),
    ]);
    let r = records(&[b"a\n"]);
    s.write(LogRecord::slice_from_abi(&r)).unwrap();
    let r = records(&[b"b\n", b"c\n", b"d\n"]);
    let e = s.write(LogRecord::slice_from_abi(&r)).unwrap_err();
    assert_eq!((e.status, e.written), (Status::Fatal, 1));
    assert!(e.message.contains("deliberate fatal"), "{}", e.message);
    assert_eq!(read(&out), "a\nb\n");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn retry_then_write() {
    let mut s = stream(&[("behavior", "retry"), ("retry-times", "2")]);
    let r = records(&[b"a\n", b"b\n"]);
    for i in 1..=2 {
        let e = s.write(LogRecord::slice_from_abi(&r)).unwrap_err();
        assert_eq!((e.status, e.written), (Status::Retry, 0));
        assert!(
            e.message.contains(&format!("retry {i} of 2")),
            "{}",
            e.message
        );
    }
    s.write(LogRecord::slice_from_abi(&r)).unwrap();
    assert_eq!(s.summary(), "records=2 bytes=4 calls=3");
}

#[test]
fn drop_every_call() {
    let mut s = stream(&[("behavior", "drop")]);
    let r = records(&[b"a\n"]);
    for _ in 0..2 {
        let e = s.write(LogRecord::slice_from_abi(&r)).unwrap_err();
        assert_eq!((e.status, e.written), (Status::Drop, 0));
    }
    assert_eq!(s.summary(), "records=0 bytes=0 calls=2");
}

#[test]
fn slow_sleeps_per_call() {
    let mut s = stream(&[("behavior", "slow"), ("delay-us", "20000")]);
    let r = records(&[b"a\n", b"b\n"]);
    let t = Instant::now();
    s.write(LogRecord::slice_from_abi(&r)).unwrap();
    s.write(LogRecord::slice_from_abi(&r)).unwrap();
    assert!(t.elapsed() >= Duration::from_millis(40));
    assert_eq!(s.records(), 4);
}

#[test]
fn stall_waits_for_release() {
    let d = scratch("stall");
    let out = d.join("out");
    let release = d.join("release");
    let mut s = stream(&[
        ("out", out.to_str().unwrap()),
        ("behavior", "stall"),
        ("release", release.to_str().unwrap()),
    ]);
    let t = std::thread::spawn(move || {
        let r = records(&[b"a\n"]);
        s.write(LogRecord::slice_from_abi(&r)).unwrap();
        s
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(!t.is_finished(), "write did not stall");
    assert_eq!(read(&out), "");
    std::fs::write(&release, "").unwrap();
    let s = t.join().unwrap();
    assert_eq!(read(&out), "a\n");
    assert_eq!(s.summary(), "records=1 bytes=2 calls=1");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Through the exported C ABI, as the host calls it: the panic is caught by
/// the SDK and reported as fatal with its message.
#[test]
fn panic_after_n_records_through_the_abi() {
    let d = scratch("panic");
    let out = d.join("out");
    let o = out.to_str().unwrap();

    // SAFETY: the entry point accepts a null host.
    let p = unsafe { &*crate::lookout_plugin_v1(std::ptr::null()) };
    // SAFETY: the descriptor's strings and table are static.
    let (name, fns) = unsafe { (CStr::from_ptr(p.name), &*p.fns) };
    assert_eq!(name.to_str().unwrap(), NAME);

    let mut buf = [0u8; 256];
    let mut err = LkErrBuf {
        buf: buf.as_mut_ptr(),
        cap: buf.len(),
        len: 0,
    };
    let opts = kv(&[("out", o), ("behavior", "panic"), ("panic-after", "1")]);
    let mut inst = std::ptr::null_mut();
    let mut st = std::ptr::null_mut();
    let r = records(&[b"a\n", b"b\n"]);
    let mut written = 0;
    // SAFETY: every pointer addresses live memory of the right type; the
    // stream and instance come from the same table and are used once.
    unsafe {
        let init = fns.init.unwrap();
        let ok = init(
            std::ptr::null(),
            opts.as_ptr(),
            opts.len(),
            &mut inst,
            &mut err,
        );
        assert_eq!(ok, LK_OK);
        assert_eq!(
            fns.start.unwrap()(inst, std::ptr::null(), &mut st, &mut err),
            LK_OK
        );
        let status = fns.write_logs.unwrap()(st, r.as_ptr(), r.len(), &mut written, &mut err);
        assert_eq!(status, LK_FATAL);
    }
    let msg = String::from_utf8_lossy(&buf[..err.len]).into_owned();
    assert!(msg.contains(PANIC_MESSAGE), "{msg}");
    assert_eq!(read(&out), "a\n");
    // SAFETY: as above; stop frees the stream, shutdown the instance.
    unsafe {
        assert_eq!(fns.stop.unwrap()(st, &mut err), LK_FATAL);
        fns.shutdown.unwrap()(inst);
    }
    assert!(!d.join("out.summary").exists());
    std::fs::remove_dir_all(&d).unwrap();
}
