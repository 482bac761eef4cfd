//! Measures the json-file encoder and the whole write path on 1 M records
//! of 100 bytes: `cargo run --release -p lookout-plugin-json-file --example encode_speed [DIR]`.

use std::time::Instant;

use lookout_plugin_json_file::JsonFile;
use lookout_plugin_json_file::encode::Encoder;
use lookout_sdk::abi::{LK_STREAM_STDOUT, LkBytes, LkKv, LkLogRecord};
use lookout_sdk::{ContainerInfo, Host, LogDriver, LogRecord, LogStream, Options};

fn main() {
    const N: usize = 1_000_000;
    const BATCH: usize = 1024;
    let lines: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let mut l = format!("{i:08} ").into_bytes();
            while l.len() < 99 {
                l.push(b'a' + (l.len() % 26) as u8);
            }
            l.push(b'\n');
            l
        })
        .collect();
    let t0 = 1_700_000_000_000_000_000i64;
    let recs: Vec<LkLogRecord> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| LkLogRecord {
            line: LkBytes::from_slice(l),
            time_unix_nano: t0 + i as i64 * 1_000,
            stream: LK_STREAM_STDOUT,
            flags: 0,
            partial_id: 0,
            partial_ordinal: 0,
            reserved: 0,
        })
        .collect();
    let recs = LogRecord::slice_from_abi(&recs);

    // Encoder only, into a reused buffer.
    let mut enc = Encoder::new(None);
    let mut buf = Vec::with_capacity(1 << 20);
    let mut bytes = 0;
    let start = Instant::now();
    for chunk in recs.chunks(BATCH) {
        buf.clear();
        for r in chunk {
            enc.encode(&mut buf, r);
        }
        bytes += buf.len();
    }
    let el = start.elapsed().as_secs_f64();
    println!(
        "encoder: {:.2} M records/s, {:.0} MB/s out ({} bytes)",
        N as f64 / el / 1e6,
        bytes as f64 / el / 1e6,
        bytes
    );

    // The whole stream: encode + write(2) to a file.
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/tmp".into());
    let dir = std::path::Path::new(&dir).join(format!("jf-speed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kv: [LkKv; 0] = [];
    // SAFETY: a null host is allowed.
    let d = JsonFile::init(
        unsafe { Host::from_raw(std::ptr::null()) },
        &Options::from_kv(&kv),
    )
    .unwrap();
    let info = ContainerInfo {
        id: "f".repeat(64),
        log_dir: dir.to_string_lossy().into_owned(),
        ..Default::default()
    };
    let mut s = d.start(&info).unwrap();
    let start = Instant::now();
    for chunk in recs.chunks(BATCH) {
        s.write(chunk).unwrap();
    }
    s.stop().unwrap();
    let el = start.elapsed().as_secs_f64();
    println!(
        "stream to {}: {:.2} M records/s",
        dir.display(),
        N as f64 / el / 1e6
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
