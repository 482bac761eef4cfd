//! `lookout-shim logs`: prints a container's logs through the reader.

use anyhow::{Context, Result, bail};
use lookout_core::logs::reader::{LogReader, ReadOptions, StopSignal, parse_rfc3339_nano};
use std::io::Write;
use std::path::PathBuf;

fn time_arg(s: &Option<String>) -> Result<Option<i64>> {
    s.as_ref()
        .map(|t| {
            parse_rfc3339_nano(t.as_bytes())
                .with_context(|| format!("invalid time {t:?}: expected RFC 3339"))
        })
        .transpose()
}

/// Prints the records of container `id` whose files are in `log_dir`.
#[allow(clippy::too_many_arguments)]
pub fn logs(
    id: String,
    log_dir: PathBuf,
    tail: Option<usize>,
    since: Option<String>,
    until: Option<String>,
    timestamps: bool,
    details: bool,
) -> Result<()> {
    if !log_dir.is_dir() {
        bail!("no log directory {}", log_dir.display());
    }
    let opts = ReadOptions {
        tail,
        since: time_arg(&since)?,
        until: time_arg(&until)?,
        follow: false,
        details,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut werr = None;
    LogReader::new(&log_dir, &id).read(&opts, &StopSignal::new(), |e| {
        let mut w = || -> std::io::Result<()> {
            if timestamps {
                write!(
                    out,
                    "{} ",
                    lookout_core::logs::reader::format_rfc3339_nano(e.time_unix_nano)
                )?;
            }
            if details && !e.attrs.is_empty() {
                let a: Vec<String> = e.attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(out, "{} ", a.join(","))?;
            }
            out.write_all(e.line)
        };
        match w() {
            Ok(()) => true,
            Err(x) => {
                werr = Some(x);
                false
            }
        }
    })?;
    out.flush()?;
    if let Some(e) = werr.filter(|e| e.kind() != std::io::ErrorKind::BrokenPipe) {
        return Err(e.into());
    }
    Ok(())
}
