//! Dockerfile-style `--change` instructions applied to an imported image's config.

use crate::{ImageConfig, ImageError};

/// Applies each change in order to `config`.
pub(crate) fn apply_changes(
    config: &mut ImageConfig,
    changes: &[String],
) -> Result<(), ImageError> {
    for change in changes {
        apply_change(config, change)?;
    }
    Ok(())
}

fn bad(change: &str, why: impl std::fmt::Display) -> ImageError {
    ImageError::BadChange(format!("{change:?}: {why}"))
}

fn apply_change(config: &mut ImageConfig, change: &str) -> Result<(), ImageError> {
    let trimmed = change.trim();
    let (instr, rest) = match trimmed.find(char::is_whitespace) {
        Some(i) => (&trimmed[..i], trimmed[i..].trim()),
        None => (trimmed, ""),
    };
    if instr.is_empty() {
        return Err(bad(change, "empty instruction"));
    }
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => config.cmd = Some(exec_or_shell(change, rest)?),
        "ENTRYPOINT" => config.entrypoint = Some(exec_or_shell(change, rest)?),
        "ENV" => {
            for (k, v) in key_values(change, rest)? {
                if k.contains('=') {
                    return Err(bad(change, format!("invalid variable name {k:?}")));
                }
                let prefix = format!("{k}=");
                config.env.retain(|e| !e.starts_with(&prefix) && e != &k);
                config.env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            for (k, v) in key_values(change, rest)? {
                config.labels.insert(k, v);
            }
        }
        "WORKDIR" => {
            if rest.is_empty() {
                return Err(bad(change, "WORKDIR requires a path"));
            }
            let path = unquote_word(change, rest)?;
            config.working_dir = if path.starts_with('/') {
                path
            } else {
                let base = if config.working_dir.is_empty() {
                    "/"
                } else {
                    &config.working_dir
                };
                format!("{}/{}", base.trim_end_matches('/'), path)
            };
        }
        "USER" => {
            if rest.is_empty() || rest.contains(char::is_whitespace) {
                return Err(bad(change, "USER requires exactly one argument"));
            }
            config.user = rest.to_string();
        }
        "EXPOSE" => {
            if rest.is_empty() {
                return Err(bad(change, "EXPOSE requires at least one port"));
            }
            for word in split_words(change, rest)? {
                for port in parse_ports(change, &word)? {
                    if !config.exposed_ports.contains(&port) {
                        config.exposed_ports.push(port);
                    }
                }
            }
            config.exposed_ports.sort();
        }
        other => {
            return Err(ImageError::BadChange(format!(
                "{other} is not a supported change instruction (in {change:?}); supported: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR"
            )));
        }
    }
    Ok(())
}

/// `["a", "b"]` (exec form) or `a b` (shell form → `/bin/sh -c "a b"`).
fn exec_or_shell(change: &str, rest: &str) -> Result<Vec<String>, ImageError> {
    if rest.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(rest)
    {
        return Ok(v);
    }
    if rest.is_empty() {
        return Err(bad(change, "missing command"));
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
}

/// Splits on unquoted whitespace; removes quotes; `\` escapes the next
/// character outside single quotes.
fn split_words(change: &str, s: &str) -> Result<Vec<String>, ImageError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(bad(change, "unterminated single quote")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x) => cur.push(x),
                            None => return Err(bad(change, "trailing backslash")),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(bad(change, "unterminated double quote")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(x) => cur.push(x),
                    None => return Err(bad(change, "trailing backslash")),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

fn unquote_word(change: &str, s: &str) -> Result<String, ImageError> {
    let words = split_words(change, s)?;
    if words.len() != 1 {
        return Err(bad(change, "expected exactly one argument"));
    }
    Ok(words.into_iter().next().unwrap_or_default())
}

/// `k=v k2="v 2"` or the legacy `k value with spaces`.
fn key_values(change: &str, rest: &str) -> Result<Vec<(String, String)>, ImageError> {
    if rest.is_empty() {
        return Err(bad(change, "requires at least one key=value argument"));
    }
    let first_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if !rest[..first_end].contains('=') {
        // Legacy form: `KEY value...`.
        let key = &rest[..first_end];
        let value = rest[first_end..].trim();
        if value.is_empty() {
            return Err(bad(
                change,
                format!("{key:?} needs a value (use KEY=value)"),
            ));
        }
        return Ok(vec![(key.to_string(), unquote_legacy(change, value)?)]);
    }
    let mut out = Vec::new();
    for word in split_words(change, rest)? {
        let Some((k, v)) = word.split_once('=') else {
            return Err(bad(
                change,
                format!("{word:?} is not of the form key=value"),
            ));
        };
        if k.is_empty() {
            return Err(bad(change, "empty key"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

fn unquote_legacy(change: &str, value: &str) -> Result<String, ImageError> {
    let quoted = (value.starts_with('"') && value.ends_with('"'))
        || (value.starts_with('\'') && value.ends_with('\''));
    if quoted && value.len() >= 2 {
        unquote_word(change, value)
    } else {
        Ok(value.to_string())
    }
}

/// `80`, `80/tcp`, `53/udp`, `8000-8002/tcp` → `["8000/tcp", ...]`.
fn parse_ports(change: &str, word: &str) -> Result<Vec<String>, ImageError> {
    let (ports, proto) = match word.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (word, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad(
            change,
            format!("invalid protocol {proto:?} in {word:?}"),
        ));
    }
    let port = |s: &str| -> Result<u16, ImageError> {
        match s.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(bad(change, format!("invalid port {s:?}"))),
        }
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(ports)?;
            (p, p)
        }
    };
    if lo > hi {
        return Err(bad(change, format!("invalid port range {ports:?}")));
    }
    if u32::from(hi - lo) >= 65_535 / 2 {
        return Err(bad(change, format!("port range {ports:?} too large")));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(changes: &[&str]) -> Result<ImageConfig, ImageError> {
        let mut c = ImageConfig::default();
        let v: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_changes(&mut c, &v)?;
        Ok(c)
    }

    #[test]
    fn all_instructions() {
        let c = cfg(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /bin/init --flag",
            "ENV A=b C=\"d e\"",
            "env LEGACY value with spaces",
            "ENV A=overridden",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER 1000:1000",
            "LABEL k=v \"x y\"=z",
            "EXPOSE 80 53/udp 8000-8001/TCP",
        ])
        .unwrap();
        assert_eq!(
            c.cmd,
            Some(vec!["sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(
            c.entrypoint,
            Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                "/bin/init --flag".into()
            ])
        );
        assert_eq!(
            c.env,
            vec!["C=d e", "LEGACY=value with spaces", "A=overridden"]
        );
        assert_eq!(c.working_dir, "/srv/app");
        assert_eq!(c.user, "1000:1000");
        assert_eq!(c.labels.get("k").map(String::as_str), Some("v"));
        assert_eq!(c.labels.get("x y").map(String::as_str), Some("z"));
        assert_eq!(
            c.exposed_ports,
            vec!["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]
        );
    }

    #[test]
    fn shell_form_cmd_and_empty_exec() {
        let c = cfg(&["CMD sh -c x", "ENTRYPOINT []"]).unwrap();
        assert_eq!(
            c.cmd,
            Some(vec!["/bin/sh".into(), "-c".into(), "sh -c x".into()])
        );
        assert_eq!(c.entrypoint, Some(vec![]));
    }

    #[test]
    fn errors_name_the_problem() {
        let e = cfg(&["RUN rm -rf /"]).unwrap_err().to_string();
        assert!(e.contains("RUN"), "{e}");
        for bad_change in [
            "CMD",
            "ENV",
            "ENV =x",
            "EXPOSE 0",
            "EXPOSE 70000",
            "EXPOSE 80/xyz",
            "USER",
            "WORKDIR",
            "LABEL \"k=v",
            "",
        ] {
            let e = cfg(&[bad_change]).unwrap_err();
            assert!(matches!(e, ImageError::BadChange(_)), "{bad_change:?}: {e}");
        }
    }
}
