//! Timing of the log reader on a 1 M-record json-file log (ignored by
//! default; run in release:
//! `cargo test --release -p lookout-core --test reader_perf -- --ignored --nocapture`).

mod reader_util;

use std::io::Write;
use std::time::Instant;

use lookout_core::logs::reader::{LogReader, ReadOptions, StopSignal};
use reader_util::{ID, json_line, path, t};

#[test]
#[ignore = "timing; run in release"]
fn read_one_million_records() {
    const N: usize = 1_000_000;
    let d = tempfile::tempdir().unwrap();
    {
        let f = std::fs::File::create(path(d.path(), 0, false)).unwrap();
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        // ~100-byte lines, like the reference measurement.
        let pad = "x".repeat(80);
        for i in 0..N {
            let text = format!("{i:08} {pad} <{}>\n", i % 10);
            w.write_all(json_line(&text, "stdout", &[], t(i)).as_bytes())
                .unwrap();
        }
        w.flush().unwrap();
    }
    let size = std::fs::metadata(path(d.path(), 0, false)).unwrap().len();
    let reader = LogReader::new(d.path(), ID);
    let stop = StopSignal::new();
    let run = |opts: &ReadOptions| {
        let mut n = 0u64;
        let mut bytes = 0usize;
        let t0 = Instant::now();
        reader
            .read(opts, &stop, |e| {
                n += 1;
                bytes += e.line.len();
                true
            })
            .unwrap();
        (t0.elapsed(), n, bytes)
    };
    // Warm the page cache once.
    run(&ReadOptions::default());
    for _ in 0..3 {
        let (el, n, bytes) = run(&ReadOptions::default());
        assert_eq!(n, N as u64);
        eprintln!("whole ({size} B file): {n} entries, {bytes} B of text in {el:?}");
        let (el, n, _) = run(&ReadOptions {
            tail: Some(10),
            ..Default::default()
        });
        assert_eq!(n, 10);
        eprintln!("tail 10: {el:?}");
        let (el, n, _) = run(&ReadOptions {
            since: Some(t(N - 1000)),
            ..Default::default()
        });
        assert_eq!(n, 1000);
        eprintln!("since (last 1000 of one file): {el:?}");
    }
}
