//! Helpers shared by the json-file integration tests: build options,
//! container info and raw ABI records, and drive a stream through the
//! `LogDriver` / `LogStream` traits.
#![allow(dead_code)]

use std::path::Path;

use lookout_plugin_json_file::{JsonFile, JsonFileStream};
use lookout_sdk::abi::{LK_STREAM_STDERR, LK_STREAM_STDOUT, LkBytes, LkKv, LkLogRecord};
use lookout_sdk::{ContainerInfo, Error, Host, LogDriver, LogRecord, LogStream, Options};

/// A 64-hex container id.
pub const ID: &str = "4f6b0c1f0b8e4d9e8a1c2b3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071";

/// A record owned by the test.
#[derive(Clone, Debug)]
pub struct Rec {
    pub line: Vec<u8>,
    pub time: i64,
    pub stream: u32,
    pub flags: u32,
}

impl Rec {
    pub fn out(line: impl AsRef<[u8]>, time: i64) -> Rec {
        Rec {
            line: line.as_ref().to_vec(),
            time,
            stream: LK_STREAM_STDOUT,
            flags: 0,
        }
    }
    pub fn err(line: impl AsRef<[u8]>, time: i64) -> Rec {
        Rec {
            stream: LK_STREAM_STDERR,
            ..Rec::out(line, time)
        }
    }
}

/// Borrows the records as ABI records (valid while `recs` lives).
pub fn raw(recs: &[Rec]) -> Vec<LkLogRecord> {
    recs.iter()
        .map(|r| LkLogRecord {
            line: LkBytes::from_slice(&r.line),
            time_unix_nano: r.time,
            stream: r.stream,
            flags: r.flags,
            partial_id: 0,
            partial_ordinal: 0,
            reserved: 0,
        })
        .collect()
}

/// Runs `f` with the options as the host would pass them.
pub fn with_opts<T>(opts: &[(&str, &str)], f: impl FnOnce(&Options<'_>) -> T) -> T {
    let kv: Vec<LkKv> = opts
        .iter()
        .map(|(k, v)| LkKv {
            key: LkBytes::from_slice(k.as_bytes()),
            value: LkBytes::from_slice(v.as_bytes()),
        })
        .collect();
    f(&Options::from_kv(&kv))
}

/// `validate` + `init`, as the SDK's thunk does.
pub fn driver(opts: &[(&str, &str)]) -> Result<JsonFile, Error> {
    with_opts(opts, |o| {
        JsonFile::validate(o)?;
        // SAFETY: a null host is allowed (no diagnostics).
        let host = unsafe { Host::from_raw(std::ptr::null()) };
        JsonFile::init(host, o)
    })
}

/// A container whose logs go to `dir`.
pub fn info(dir: &Path) -> ContainerInfo {
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    ContainerInfo {
        id: ID.into(),
        name: "web".into(),
        image_id: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
        image_name: "img:1".into(),
        command: "/bin/sh -c run".into(),
        hostname: "4f6b0c1f0b8e".into(),
        daemon_name: "lookout".into(),
        log_dir: dir.to_string_lossy().into_owned(),
        created_unix_nano: 0,
        labels: vec![s("team", "obs"), s("tier", "front")],
        env: vec![s("PATH", "/usr/bin"), s("MODE", "prod")],
    }
}

/// The current log file's path in `dir`.
pub fn log_path(dir: &Path) -> std::path::PathBuf {
    dir.join(format!("{ID}-json.log"))
}

/// Writes records through the trait.
pub fn write(s: &mut JsonFileStream, recs: &[Rec]) -> Result<(), Error> {
    let raw = raw(recs);
    s.write(LogRecord::slice_from_abi(&raw))
}

/// Starts a stream with `opts`, writes `recs`, stops, returns the file.
pub fn encode(opts: &[(&str, &str)], recs: &[Rec]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let d = driver(opts).unwrap();
    let mut s = d.start(&info(dir.path())).unwrap();
    write(&mut s, recs).unwrap();
    s.flush().unwrap();
    s.stop().unwrap();
    std::fs::read(log_path(dir.path())).unwrap()
}

/// 2019-01-01T11:11:11Z in Unix nanoseconds.
pub const T0: i64 = 1_546_341_071_000_000_000;
