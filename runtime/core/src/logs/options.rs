//! Log options the host consumes itself, split from the ones that go to the
//! driver's own `validate`.

use crate::plugin::PluginError;

/// Keys the host takes out of `--log-opt` before the driver sees them.
pub const HOST_KEYS: &[&str] = &[
    "mode",
    "max-buffer-size",
    "max-line-size",
    "log-stdin",
    "cache-disabled",
    "cache-max-size",
    "cache-max-file",
    "cache-compress",
];

/// Docker's default `max-buffer-size` for non-blocking mode.
pub const DEFAULT_MAX_BUFFER: usize = 1 << 20;
/// Docker's line cut: 16 KiB.
pub const DEFAULT_MAX_LINE: usize = 16 * 1024;
/// Queue bound of blocking mode: how much the pipeline holds before the
/// container's writes block.
pub const BLOCKING_QUEUE_BYTES: usize = 4 << 20;

/// What happens when a driver's queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The reader waits, the pipe fills, the container's writes block:
    /// nothing is lost.
    Blocking,
    /// Records that do not fit in `max_buffer` bytes are dropped and counted.
    NonBlocking {
        /// Queue bound in bytes.
        max_buffer: usize,
    },
}

/// Options of the dual-logging cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheOptions {
    /// `cache-disabled`.
    pub disabled: bool,
    /// `cache-max-size` in bytes (Docker's default 20m).
    pub max_size: u64,
    /// `cache-max-file` (default 5).
    pub max_file: u32,
    /// `cache-compress` (default true).
    pub compress: bool,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            disabled: false,
            max_size: 20 << 20,
            max_file: 5,
            compress: true,
        }
    }
}

/// The host's share of the log options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostLogOptions {
    /// Queue behaviour.
    pub mode: Mode,
    /// Lines longer than this are cut into partial records.
    pub max_line_size: usize,
    /// Record the container's standard input as a stream.
    pub log_stdin: bool,
    /// Dual-logging cache settings.
    pub cache: CacheOptions,
}

impl Default for HostLogOptions {
    fn default() -> Self {
        HostLogOptions {
            mode: Mode::Blocking,
            max_line_size: DEFAULT_MAX_LINE,
            log_stdin: false,
            cache: CacheOptions::default(),
        }
    }
}

fn bad(key: &str, value: &str, reason: impl Into<String>) -> PluginError {
    PluginError::HostOption {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Parses a size as Docker does for these options (`units.RAMInBytes`:
/// `1k` = 1024), refusing negative values.
fn parse_size(s: &str) -> Result<u64, String> {
    let n = lookout_sdk::units::ram_in_bytes(s).map_err(|e| e.to_string())?;
    u64::try_from(n).map_err(|_| "must not be negative".to_string())
}

fn parse_bool(key: &str, v: &str) -> Result<bool, PluginError> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(bad(key, v, "expected true or false")),
    }
}

impl HostLogOptions {
    /// Takes the host keys out of `opts`; returns them parsed and the rest
    /// (the driver's keys, in order).
    pub fn split(
        opts: &[(String, String)],
    ) -> Result<(HostLogOptions, Vec<(String, String)>), PluginError> {
        let mut h = HostLogOptions::default();
        let mut rest = Vec::new();
        let mut mode = None;
        let mut max_buffer = None;
        for (k, v) in opts {
            match k.as_str() {
                "mode" => {
                    mode = Some(match v.as_str() {
                        "blocking" | "" => false,
                        "non-blocking" => true,
                        _ => return Err(bad(k, v, "expected blocking or non-blocking")),
                    })
                }
                "max-buffer-size" => {
                    let n = parse_size(v).map_err(|e| bad(k, v, e))?;
                    if n == 0 {
                        return Err(bad(k, v, "must be greater than 0"));
                    }
                    max_buffer = Some(usize::try_from(n).map_err(|_| bad(k, v, "too large"))?);
                }
                "max-line-size" => {
                    let n = parse_size(v).map_err(|e| bad(k, v, e))?;
                    if !(64..=(64 << 20)).contains(&n) {
                        return Err(bad(k, v, "must be between 64 bytes and 64 MiB"));
                    }
                    h.max_line_size = n as usize;
                }
                "log-stdin" => h.log_stdin = parse_bool(k, v)?,
                "cache-disabled" => h.cache.disabled = parse_bool(k, v)?,
                "cache-compress" => h.cache.compress = parse_bool(k, v)?,
                "cache-max-size" => {
                    let n = parse_size(v).map_err(|e| bad(k, v, e))?;
                    if n == 0 {
                        return Err(bad(k, v, "must be greater than 0"));
                    }
                    h.cache.max_size = n;
                }
                "cache-max-file" => {
                    h.cache.max_file = v
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| bad(k, v, "expected a whole number of at least 1"))?;
                }
                _ => rest.push((k.clone(), v.clone())),
            }
        }
        match (mode, max_buffer) {
            (Some(true), mb) => {
                h.mode = Mode::NonBlocking {
                    max_buffer: mb.unwrap_or(DEFAULT_MAX_BUFFER),
                }
            }
            (_, Some(mb)) => {
                return Err(bad(
                    "max-buffer-size",
                    &mb.to_string(),
                    "only supported with mode=non-blocking",
                ));
            }
            _ => {}
        }
        Ok((h, rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn host_keys_are_taken_out_and_the_rest_kept_in_order() {
        let (h, rest) = HostLogOptions::split(&kv(&[
            ("max-size", "1m"),
            ("mode", "non-blocking"),
            ("max-buffer-size", "4m"),
            ("max-file", "3"),
            ("max-line-size", "1k"),
        ]))
        .unwrap();
        assert_eq!(
            h.mode,
            Mode::NonBlocking {
                max_buffer: 4 << 20
            }
        );
        assert_eq!(h.max_line_size, 1024);
        assert_eq!(rest, kv(&[("max-size", "1m"), ("max-file", "3")]));
    }

    #[test]
    fn bad_values_are_named() {
        for (k, v) in [
            ("mode", "sometimes"),
            ("max-buffer-size", "lots"),
            ("max-line-size", "1"),
            ("log-stdin", "maybe"),
            ("cache-max-file", "0"),
        ] {
            let e = HostLogOptions::split(&kv(&[("mode", "non-blocking"), (k, v)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(k) && e.contains(v), "{e}");
        }
        let e = HostLogOptions::split(&kv(&[("max-buffer-size", "1m")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("non-blocking"), "{e}");
    }

    #[test]
    fn sizes_parse_like_docker() {
        assert_eq!(parse_size("10m").unwrap(), 10 << 20);
        assert_eq!(parse_size("1k").unwrap(), 1024);
        assert_eq!(parse_size("1KB").unwrap(), 1024);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert!(parse_size("-1").is_err());
        assert!(parse_size("ten").is_err());
        assert!(parse_size("1x").is_err());
    }
}
