//! Docker image references: `[domain[:port]/]path[:tag]`, normalised to the
//! familiar form (`docker.io/library/busybox` → `busybox`).

use crate::ImageError;

/// Maximum length of a repository name (Docker's limit).
const MAX_NAME_LEN: usize = 255;
/// Maximum length of a tag.
const MAX_TAG_LEN: usize = 128;

/// A parsed `repo:tag` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamedTag {
    pub repo: String,
    pub tag: String,
}

impl NamedTag {
    /// `repo:tag`.
    pub(crate) fn full(&self) -> String {
        format!("{}:{}", self.repo, self.tag)
    }
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_lower_alnum(b[0]) || !is_lower_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_lower_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__", or any number of "-".
        let start = i;
        while i < b.len() && !is_lower_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A registry host: dot-separated `[a-zA-Z0-9-]` labels, optional `:port`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// `[\w][\w.-]{0,127}`
pub(crate) fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}

/// Whether `s` is 64 lowercase hex digits (a full image id without `sha256:`).
pub(crate) fn is_full_hex(s: &str) -> bool {
    s.len() == 64 && is_hex(s)
}

/// Whether `s` is non-empty lowercase hex.
pub(crate) fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// Validates and normalises a repository name (no tag).
pub(crate) fn parse_repo(repo: &str) -> Result<String, ImageError> {
    let bad = |why: &str| ImageError::InvalidReference(format!("{repo:?}: {why}"));
    if repo.is_empty() {
        return Err(bad("empty repository name"));
    }
    if repo.len() > MAX_NAME_LEN {
        return Err(bad(
            "repository name must not be longer than 255 characters",
        ));
    }
    if repo.contains('@') {
        return Err(bad("digest references are not supported"));
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    let first = parts[0];
    let has_domain = parts.len() > 1
        && (first.contains('.')
            || first.contains(':')
            || first == "localhost"
            || first.bytes().any(|c| c.is_ascii_uppercase()));
    if has_domain {
        if !valid_domain(first) {
            return Err(bad("invalid registry host"));
        }
        parts.remove(0);
    }
    for p in &parts {
        if p.bytes().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("repository name must be lowercase"));
        }
        if !valid_path_component(p) {
            return Err(bad("invalid repository name component"));
        }
    }
    if !has_domain && parts.len() == 1 && is_full_hex(parts[0]) {
        return Err(bad("cannot specify 64-byte hexadecimal strings"));
    }
    // Familiar form: drop docker.io and library/.
    let mut name = repo.to_string();
    for prefix in ["docker.io/", "index.docker.io/", "registry-1.docker.io/"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            name = rest.to_string();
            break;
        }
    }
    if let Some(rest) = name.strip_prefix("library/")
        && !rest.contains('/')
    {
        name = rest.to_string();
    }
    Ok(name)
}

/// Parses `repo[:tag]` (tag defaults to `latest`).
pub(crate) fn parse_named(reference: &str) -> Result<NamedTag, ImageError> {
    let (repo, tag) = split_tag(reference);
    let repo = parse_repo(repo)?;
    let tag = tag.unwrap_or("latest");
    if !valid_tag(tag) {
        return Err(ImageError::InvalidReference(format!(
            "{reference:?}: invalid tag {tag:?}"
        )));
    }
    Ok(NamedTag {
        repo,
        tag: tag.to_string(),
    })
}

/// Splits `repo[:tag]` at the last `:` that follows the last `/`.
pub(crate) fn split_tag(reference: &str) -> (&str, Option<&str>) {
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(i) => (&reference[..slash + i], Some(&reference[slash + i + 1..])),
        None => (reference, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let n = parse_named("busybox").unwrap();
        assert_eq!(n.full(), "busybox:latest");
        assert_eq!(
            parse_named("docker.io/library/busybox:1.36")
                .unwrap()
                .full(),
            "busybox:1.36"
        );
        assert_eq!(
            parse_named("library/alpine").unwrap().full(),
            "alpine:latest"
        );
        assert_eq!(
            parse_named("localhost:5000/a/b:v1").unwrap().full(),
            "localhost:5000/a/b:v1"
        );
        assert_eq!(
            parse_named("my-app_x.y:v1.0-rc").unwrap().full(),
            "my-app_x.y:v1.0-rc"
        );
        assert_eq!(
            parse_named("registry.example.com:5000/team/app")
                .unwrap()
                .tag,
            "latest"
        );
        for bad in [
            "",
            "Busybox",
            "a//b",
            "a:",
            ":a",
            "a:b:c",
            "-a",
            "a-",
            "a..b",
            "a@sha256:00",
            "a:-x",
            "../x",
            "a b",
            &"a".repeat(256),
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(parse_named(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn split() {
        assert_eq!(split_tag("a:b"), ("a", Some("b")));
        assert_eq!(split_tag("host:5000/a"), ("host:5000/a", None));
        assert_eq!(split_tag("host:5000/a:t"), ("host:5000/a", Some("t")));
    }
}
