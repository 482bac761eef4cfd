//! The `json-file` log driver: Docker's default driver, on-disk format byte
//! for byte.
//!
//! Each record becomes one line of `<log_dir>/<id>-json.log`:
//!
//! ```text
//! {"log":"hello\n","stream":"stdout","attrs":{"tag":"web"},"time":"2019-01-01T11:11:11.111Z"}
//! ```
//!
//! Options (Docker's): `max-size` (unlimited by default; Docker's
//! `units.FromHumanSize`, so `1k` = 1000 bytes), `max-file` (default 1),
//! `compress` (needs `max-file` ≥ 2 and `max-size`), `labels`,
//! `labels-regex`, `env`, `env-regex` and `tag` (no default tag).
//!
//! Writes are batched: a whole batch is encoded into one reused buffer and
//! written with one `write` per file segment (segments end at rotation
//! points). A failed write is cut back to the last whole record and
//! reported as a retry.

use std::path::Path;
use std::sync::Arc;

use lookout_sdk::abi::LK_CAP_READABLE;
use lookout_sdk::attrs::{ATTR_KEYS, ExtraAttributes, to_go_json};
use lookout_sdk::tag::{TAG_KEY, Tag};
use lookout_sdk::units::from_human_size;
use lookout_sdk::{ContainerInfo, Error, Host, LogDriver, LogRecord, LogStream, Options};

pub mod encode;
mod file;

use encode::Encoder;
use file::{LogFile, Rotation};

/// The driver's name.
pub const NAME: &str = "json-file";

/// Every option the driver knows.
pub const KNOWN_OPTIONS: [&str; 8] = [
    "max-size",
    "max-file",
    "compress",
    ATTR_KEYS[0],
    ATTR_KEYS[1],
    ATTR_KEYS[2],
    ATTR_KEYS[3],
    TAG_KEY,
];

/// A batch is written in segments of at most about this many bytes, so a
/// huge batch does not grow the buffer without bound, and a nearly full disk
/// still takes the records that fit (a failed segment is cut back whole).
const SEGMENT_MAX: usize = 64 << 10;

/// Validated options.
#[derive(Debug)]
struct Config {
    rot: Rotation,
    attrs: ExtraAttributes,
    tag: Tag,
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn parse_config(opts: &Options<'_>) -> Result<Config, Error> {
    opts.check_known(NAME, &KNOWN_OPTIONS)?;
    let max_size = match opts.get("max-size") {
        None => None,
        Some(v) => {
            let n = from_human_size(&v).map_err(|e| Error::invalid_option(NAME, "max-size", e))?;
            if n <= 0 {
                return Err(Error::invalid_option(
                    NAME,
                    "max-size",
                    format_args!("{v:?}: max-size must be a positive number"),
                ));
            }
            Some(n as u64)
        }
    };
    let max_files = match opts.get("max-file") {
        None => 1,
        Some(v) => {
            let n: i64 = v.parse().map_err(|_| {
                Error::invalid_option(NAME, "max-file", format_args!("{v:?} is not an integer"))
            })?;
            if n < 1 {
                return Err(Error::invalid_option(
                    NAME,
                    "max-file",
                    format_args!("{v:?}: max-file cannot be less than 1"),
                ));
            }
            u32::try_from(n).map_err(|_| {
                Error::invalid_option(NAME, "max-file", format_args!("{v:?} is too large"))
            })?
        }
    };
    let compress = match opts.get("compress") {
        None => false,
        Some(v) => parse_go_bool(&v).ok_or_else(|| {
            Error::invalid_option(NAME, "compress", format_args!("{v:?} is not a boolean"))
        })?,
    };
    if compress && (max_files == 1 || max_size.is_none()) {
        return Err(Error::invalid_option(
            NAME,
            "compress",
            "compress cannot be true when max-file is less than 2 or max-size is not set",
        ));
    }
    Ok(Config {
        rot: Rotation {
            max_size,
            max_files,
            compress,
        },
        attrs: ExtraAttributes::from_options(NAME, opts)?,
        // Docker's json-file has no default tag.
        tag: Tag::from_options(NAME, opts, "")?,
    })
}

/// The json-file driver instance: validated options.
pub struct JsonFile {
    cfg: Config,
    host: Arc<Host>,
}

impl LogDriver for JsonFile {
    const NAME: &'static str = NAME;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const CAPS: u64 = LK_CAP_READABLE;
    type Stream = JsonFileStream;

    fn validate(opts: &Options<'_>) -> Result<(), Error> {
        parse_config(opts).map(drop)
    }

    fn init(host: Host, opts: &Options<'_>) -> Result<Self, Error> {
        Ok(JsonFile {
            cfg: parse_config(opts)?,
            host: Arc::new(host),
        })
    }

    fn start(&self, info: &ContainerInfo) -> Result<JsonFileStream, Error> {
        if info.id.is_empty() {
            return Err(Error::fatal(format!("{NAME}: the container id is empty")));
        }
        if info.id.contains('/') || info.id == "." || info.id == ".." {
            return Err(Error::fatal(format!(
                "{NAME}: invalid container id {:?}",
                info.id
            )));
        }
        if info.log_dir.is_empty() {
            return Err(Error::fatal(format!("{NAME}: no log directory given")));
        }
        let mut attrs = self.cfg.attrs.extract(info);
        let tag = self.cfg.tag.render(info)?;
        if !tag.is_empty() {
            attrs.insert("tag".to_string(), tag);
        }
        let attrs_json = (!attrs.is_empty()).then(|| to_go_json(&attrs));
        let path = Path::new(&info.log_dir).join(format!("{}-json.log", info.id));
        let file = LogFile::open(path.clone(), self.cfg.rot, self.host.clone())
            .map_err(|e| Error::fatal(format!("{}: {e}", path.display())))?;
        Ok(JsonFileStream {
            enc: Encoder::new(attrs_json.as_deref()),
            file,
            buf: Vec::with_capacity(64 * 1024),
        })
    }
}

/// One container's json-file.
pub struct JsonFileStream {
    enc: Encoder,
    file: LogFile,
    buf: Vec<u8>,
}

impl JsonFileStream {
    fn retry(&self, written: usize, what: &str, e: std::io::Error) -> Error {
        Error::retry(
            written,
            format!("{}: {what}{e}", self.file.path().display()),
        )
    }
}

impl LogStream for JsonFileStream {
    fn write(&mut self, records: &[LogRecord]) -> Result<(), Error> {
        let n = records.len();
        let mut i = 0;
        while i < n {
            if self.file.needs_rotation()
                && let Err(e) = self.file.rotate()
            {
                return Err(self.retry(i, "rotating: ", e));
            }
            let start = i;
            let room = self.file.room();
            self.buf.clear();
            let mut last_time;
            loop {
                let r = &records[i];
                self.enc.encode(&mut self.buf, r);
                last_time = r.time_unix_nano();
                i += 1;
                if i == n || self.buf.len() as u64 >= room || self.buf.len() >= SEGMENT_MAX {
                    break;
                }
            }
            if let Err(e) = self.file.append(&self.buf, last_time) {
                // Records before `start` are in the file (maybe an older
                // one, before a rotation); this segment was cut back.
                return Err(self.retry(start, "", e));
            }
        }
        if self.buf.capacity() > 4 * SEGMENT_MAX {
            self.buf = Vec::with_capacity(64 * 1024);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        // Every write went straight to the kernel.
        Ok(())
    }

    fn stop(mut self) -> Result<(), Error> {
        self.file.wait_compression();
        Ok(())
    }
}

lookout_sdk::export_log_driver!(JsonFile);
