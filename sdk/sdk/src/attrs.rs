//! Docker's "extra attributes": container labels and environment variables
//! a user asks a log driver to attach to every record.
//!
//! The log-opts are those of Docker's `logger.Info.ExtraAttributes`:
//!
//! * `labels`: comma-separated label keys;
//! * `labels-regex`: a regular expression matched (unanchored) against every
//!   label key;
//! * `env`: comma-separated environment variable names;
//! * `env-regex`: a regular expression matched against every variable name.
//!
//! They are applied in that order into one map, so a later source overwrites
//! an earlier one for the same key. Keys come out sorted (a [`BTreeMap`]),
//! which is also the order Go's `encoding/json` writes a map in.
//!
//! Parse the options once at init with [`ExtraAttributes::from_options`]
//! (a bad regular expression is an error naming the option and its value),
//! then call [`ExtraAttributes::extract`] per container.

use std::collections::{BTreeMap, HashMap};

use regex::Regex;

use crate::{ContainerInfo, Error, Options};

/// The log-opt keys this module reads; drivers add them to their known keys.
pub const ATTR_KEYS: [&str; 4] = ["labels", "labels-regex", "env", "env-regex"];

/// Parsed `labels` / `labels-regex` / `env` / `env-regex` options.
#[derive(Clone, Debug, Default)]
pub struct ExtraAttributes {
    labels: Vec<String>,
    labels_regex: Option<Regex>,
    env: Vec<String>,
    env_regex: Option<Regex>,
}

impl ExtraAttributes {
    /// Reads the four options. An empty value means "not set", as in Docker.
    /// A regular expression that does not compile is an error naming the
    /// option and the value.
    pub fn from_options(driver: &str, opts: &Options<'_>) -> Result<Self, Error> {
        let list = |key: &str| -> Vec<String> {
            match opts.get(key) {
                Some(v) if !v.is_empty() => v.split(',').map(str::to_string).collect(),
                _ => Vec::new(),
            }
        };
        let re = |key: &str| -> Result<Option<Regex>, Error> {
            match opts.get(key) {
                Some(v) if !v.is_empty() => Regex::new(&v).map(Some).map_err(|e| {
                    Error::invalid_option(
                        driver,
                        key,
                        format_args!("bad regular expression {v:?}: {e}"),
                    )
                }),
                _ => Ok(None),
            }
        };
        Ok(ExtraAttributes {
            labels: list("labels"),
            labels_regex: re("labels-regex")?,
            env: list("env"),
            env_regex: re("env-regex")?,
        })
    }

    /// True when no option asks for any attribute.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
            && self.labels_regex.is_none()
            && self.env.is_empty()
            && self.env_regex.is_none()
    }

    /// Picks the requested labels and environment variables of a container.
    pub fn extract(&self, info: &ContainerInfo) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if self.is_empty() {
            return out;
        }
        // Later duplicates win, as when Go builds a map from a list.
        let labels: HashMap<&str, &str> = info
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for k in &self.labels {
            if let Some(v) = labels.get(k.as_str()) {
                out.insert(k.clone(), (*v).to_string());
            }
        }
        if let Some(re) = &self.labels_regex {
            for (k, v) in &labels {
                if re.is_match(k) {
                    out.insert((*k).to_string(), (*v).to_string());
                }
            }
        }
        let env: HashMap<&str, &str> = info
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for k in &self.env {
            if let Some(v) = env.get(k.as_str()) {
                out.insert(k.clone(), (*v).to_string());
            }
        }
        if let Some(re) = &self.env_regex {
            for (k, v) in &env {
                if re.is_match(k) {
                    out.insert((*k).to_string(), (*v).to_string());
                }
            }
        }
        out
    }
}

/// One-shot form of [`ExtraAttributes::from_options`] +
/// [`ExtraAttributes::extract`].
pub fn extra_attributes(
    driver: &str,
    opts: &Options<'_>,
    info: &ContainerInfo,
) -> Result<BTreeMap<String, String>, Error> {
    Ok(ExtraAttributes::from_options(driver, opts)?.extract(info))
}

/// Appends `s` as a JSON string the way Go's `encoding/json` writes one
/// (Go 1.22 and later): `"` and `\` backslash-escaped; `\b \f \n \r \t`
/// short forms; other bytes below 0x20 as `\u00xx`; with `escape_html`,
/// `<`, `>` and `&` as `\u003c`, `\u003e`, `\u0026`; U+2028 and U+2029 as
/// `\u2028` and `\u2029`; everything else (DEL, `/`, non-ASCII) raw.
pub fn write_go_json_string(out: &mut String, s: &str, escape_html: bool) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{2028}' => Some("\\u2028"),
            '\u{2029}' => Some("\\u2029"),
            '<' | '>' | '&' if escape_html => None,
            c if (c as u32) >= 0x20 => continue,
            _ => None,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let b = c as u32 as u8;
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Encodes a string map as Go's `json.Marshal(map[string]string)` does:
/// keys sorted, no spaces, HTML characters escaped.
pub fn to_go_json(map: &BTreeMap<String, String>) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_go_json_string(&mut out, k, true);
        out.push(':');
        write_go_json_string(&mut out, v, true);
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_abi::{LkBytes, LkKv};

    fn kv<'a>(pairs: &'a [(&'a str, &'a str)]) -> Vec<LkKv> {
        pairs
            .iter()
            .map(|(k, v)| LkKv {
                key: LkBytes::from_slice(k.as_bytes()),
                value: LkBytes::from_slice(v.as_bytes()),
            })
            .collect()
    }

    fn info() -> ContainerInfo {
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        ContainerInfo {
            labels: vec![
                s("team", "obs"),
                s("com.example.tier", "front"),
                s("com.example.zone", "eu"),
                s("other", "x"),
            ],
            env: vec![
                s("PATH", "/bin"),
                s("APP_MODE", "prod"),
                s("APP_LEVEL", "debug"),
                s("HOME", "/root"),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn picks_labels_and_env_sorted() {
        let raw = kv(&[
            ("labels", "team,missing"),
            ("labels-regex", "^com\\.example\\."),
            ("env", "HOME,NOPE"),
            ("env-regex", "^APP_"),
        ]);
        let m = extra_attributes("t", &Options::from_kv(&raw), &info()).unwrap();
        let got: Vec<_> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            got,
            [
                "APP_LEVEL=debug",
                "APP_MODE=prod",
                "HOME=/root",
                "com.example.tier=front",
                "com.example.zone=eu",
                "team=obs"
            ]
        );
    }

    #[test]
    fn nothing_requested_gives_nothing() {
        let raw = kv(&[("labels", ""), ("env", "")]);
        let a = ExtraAttributes::from_options("t", &Options::from_kv(&raw)).unwrap();
        assert!(a.is_empty());
        assert!(a.extract(&info()).is_empty());
    }

    #[test]
    fn env_overrides_label_with_same_key() {
        let mut i = info();
        i.labels.push(("HOME".into(), "label".into()));
        let raw = kv(&[("labels", "HOME"), ("env", "HOME")]);
        let m = extra_attributes("t", &Options::from_kv(&raw), &i).unwrap();
        assert_eq!(m["HOME"], "/root");
    }

    #[test]
    fn bad_regex_names_option_and_value() {
        for key in ["labels-regex", "env-regex"] {
            let raw = kv(&[(key, "a(b")]);
            let e =
                ExtraAttributes::from_options("json-file", &Options::from_kv(&raw)).unwrap_err();
            assert!(e.message.contains(key), "{}", e.message);
            assert!(e.message.contains("a(b"), "{}", e.message);
            assert!(e.message.contains("json-file"), "{}", e.message);
        }
    }

    #[test]
    fn go_json_encoding() {
        let mut m = BTreeMap::new();
        m.insert("tag".to_string(), "web/img:1".to_string());
        m.insert("team".to_string(), "obs".to_string());
        assert_eq!(to_go_json(&m), r#"{"tag":"web/img:1","team":"obs"}"#);
        let mut s = String::new();
        write_go_json_string(
            &mut s,
            "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1b}<>&\u{7f}é\u{2028}\u{2029}/",
            true,
        );
        assert_eq!(
            s,
            r#""a\"b\\c\n\r\t\b\f\u0001\u001b\u003c\u003e\u0026"#.to_string()
                + "\u{7f}é"
                + r#"\u2028\u2029/""#
        );
        let mut s = String::new();
        write_go_json_string(&mut s, "<&>", false);
        assert_eq!(s, r#""<&>""#);
    }
}
