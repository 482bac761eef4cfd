//! Pure pieces of the container's configuration: hostname, environment,
//! `/etc/hosts`, the program's `PATH` candidates, cwd components.

use crate::spec::NetworkMode;

/// Docker's default `PATH`.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's `/etc/hosts` for a container without a network address.
pub const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost\n\
::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\n\
ff00::0\tip6-mcastprefix\n\
ff02::1\tip6-allnodes\n\
ff02::2\tip6-allrouters\n";

/// The container's hostname: the spec's; else, with host networking, the
/// host's (`host_hostname`, as Docker does); else the first 12 characters
/// of the id.
pub fn hostname(
    spec_hostname: Option<&str>,
    id: &str,
    mode: NetworkMode,
    host_hostname: Option<&str>,
) -> String {
    match (spec_hostname, mode, host_hostname) {
        (Some(h), _, _) if !h.is_empty() => h.to_string(),
        (_, NetworkMode::Host, Some(h)) if !h.is_empty() => h.to_string(),
        _ => id.chars().take(12).collect(),
    }
}

/// Checks a hostname: 1–64 bytes (the kernel's limit), no NUL, `/` or
/// whitespace.
pub fn check_hostname(h: &str) -> Result<(), String> {
    if h.is_empty() || h.len() > 64 {
        return Err(format!("invalid hostname {h:?}: must be 1 to 64 bytes"));
    }
    if h.bytes()
        .any(|b| b == 0 || b == b'/' || b.is_ascii_whitespace())
    {
        return Err(format!(
            "invalid hostname {h:?}: contains NUL, '/' or whitespace"
        ));
    }
    Ok(())
}

fn has_key(env: &[String], key: &str) -> bool {
    env.iter()
        .any(|e| e.split_once('=').map(|(k, _)| k) == Some(key))
}

/// The environment of PID 1: `spec_env` plus `PATH`, `HOSTNAME` and `HOME`
/// when missing (Docker's rules; `HOME` comes from the user's passwd entry).
pub fn environment(spec_env: &[String], hostname: &str, home: &str) -> Vec<String> {
    let mut env = spec_env.to_vec();
    if !has_key(&env, "PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if !has_key(&env, "HOSTNAME") {
        env.insert(1.min(env.len()), format!("HOSTNAME={hostname}"));
    }
    if !has_key(&env, "HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

/// The value of `key` in a `KEY=value` list (the last one wins).
pub fn env_value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .filter_map(|e| e.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// The container's `/etc/hosts`: the host's with host networking, Docker's
/// localhost lines otherwise.
pub fn hosts_file(mode: NetworkMode, host_hosts: Option<&str>) -> String {
    match mode {
        NetworkMode::Host => host_hosts.unwrap_or(DEFAULT_HOSTS).to_string(),
        NetworkMode::None => DEFAULT_HOSTS.to_string(),
    }
}

/// The paths `execve` tries for `prog`, in order: `prog` itself when it
/// contains a `/`, else each `PATH` entry joined with it (an empty entry is
/// the working directory).
pub fn exec_candidates(prog: &str, path: &str) -> Vec<String> {
    if prog.contains('/') {
        return vec![prog.to_string()];
    }
    path.split(':')
        .map(|d| {
            let d = if d.is_empty() { "." } else { d };
            format!("{}/{prog}", d.trim_end_matches('/'))
        })
        .collect()
}

/// The working directory normalised (absolute, no `.`/`..`/empty
/// components) and its ancestors to create, top-down.
pub fn cwd_components(cwd: Option<&str>) -> Result<(String, Vec<String>), String> {
    let cwd = cwd.filter(|c| !c.is_empty()).unwrap_or("/");
    if !cwd.starts_with('/') {
        return Err(format!("working directory {cwd:?} is not absolute"));
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in cwd.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut prefixes = Vec::new();
    let mut cur = String::new();
    for p in &parts {
        cur.push('/');
        cur.push_str(p);
        prefixes.push(cur.clone());
    }
    let norm = if cur.is_empty() { "/".to_string() } else { cur };
    Ok((norm, prefixes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_defaults_to_short_id() {
        let none = NetworkMode::None;
        let host = NetworkMode::Host;
        assert_eq!(
            hostname(None, "0123456789abcdef0123", none, Some("vm")),
            "0123456789ab"
        );
        assert_eq!(hostname(Some(""), "abc", none, None), "abc");
        assert_eq!(
            hostname(Some("web"), "0123456789abcdef", host, Some("vm")),
            "web"
        );
        assert_eq!(hostname(None, "0123456789abcdef", host, Some("vm")), "vm");
        assert_eq!(
            hostname(None, "0123456789abcdef", host, None),
            "0123456789ab"
        );
        assert!(check_hostname("web-1").is_ok());
        assert!(check_hostname("a b").is_err());
        assert!(check_hostname(&"x".repeat(65)).is_err());
    }

    #[test]
    fn env_adds_defaults_when_missing() {
        let e = environment(&["A=1".into()], "h", "/root");
        assert_eq!(
            e,
            vec![
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=h".to_string(),
                "A=1".into(),
                "HOME=/root".into()
            ]
        );
        let e = environment(
            &["PATH=/x".into(), "HOSTNAME=y".into(), "HOME=/h".into()],
            "h",
            "/root",
        );
        assert_eq!(e, vec!["PATH=/x", "HOSTNAME=y", "HOME=/h"]);
        assert_eq!(env_value(&e, "PATH"), Some("/x"));
        assert_eq!(env_value(&e, "NOPE"), None);
    }

    #[test]
    fn hosts_content() {
        let none = hosts_file(NetworkMode::None, Some("10.0.0.1 host\n"));
        assert!(
            none.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        );
        assert_eq!(
            hosts_file(NetworkMode::Host, Some("10.0.0.1 host\n")),
            "10.0.0.1 host\n"
        );
    }

    #[test]
    fn candidates() {
        assert_eq!(exec_candidates("/bin/sh", "/x"), vec!["/bin/sh"]);
        assert_eq!(exec_candidates("./a", "/x"), vec!["./a"]);
        assert_eq!(
            exec_candidates("ls", "/usr/bin:/bin/::/y"),
            vec!["/usr/bin/ls", "/bin/ls", "./ls", "/y/ls"]
        );
    }

    #[test]
    fn cwd() {
        assert_eq!(cwd_components(None).unwrap(), ("/".into(), vec![]));
        assert_eq!(
            cwd_components(Some("/a//b/./c/../d/")).unwrap(),
            (
                "/a/b/d".into(),
                vec!["/a".into(), "/a/b".into(), "/a/b/d".into()]
            )
        );
        assert!(cwd_components(Some("rel")).is_err());
    }
}
