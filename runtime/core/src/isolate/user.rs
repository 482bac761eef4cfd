//! Resolving the container's user (`--user`) in the container's own
//! `/etc/passwd` and `/etc/group`, with runc's (and so Docker's) rules.
//!
//! * `name` or `uid`: the first passwd entry whose name or uid matches; a
//!   numeric uid without an entry is allowed (gid 0, home `/`); an unknown
//!   name is an error.
//! * `user:group`: the group is looked up by name or gid in `/etc/group`; a
//!   numeric gid without an entry is allowed; an unknown name is an error.
//! * Supplementary groups: the primary group first (as Docker does since
//!   20.10.18, CVE-2022-36109), then, only in the implicit form (no group
//!   given), every group listing the matched user's name as a member.

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Member user names.
    pub members: Vec<String>,
}

/// The identity the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary group ids (`setgroups`).
    pub sgids: Vec<u32>,
    /// Home directory (for `HOME` when the spec does not set it).
    pub home: String,
}

/// Why a user spec could not be resolved; the message names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// The user spec is malformed.
    #[error("invalid user {0:?}: expected name, uid, name:group or uid:gid")]
    Invalid(String),
    /// A user name not found in the container's passwd file.
    #[error("user {0:?} not found in /etc/passwd")]
    UnknownUser(String),
    /// A group name not found in the container's group file.
    #[error("group {0:?} not found in /etc/group")]
    UnknownGroup(String),
}

/// Parses `/etc/passwd` text; malformed lines and comments are skipped.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].trim().parse().ok()?,
                gid: f[3].trim().parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// Parses `/etc/group` text; malformed lines and comments are skipped.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].trim().parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn parse_id(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Resolves `spec` (`None` or empty: root) against the container's passwd
/// and group files (`None`: the file does not exist).
pub fn resolve_user(
    spec: Option<&str>,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ExecUser, UserError> {
    let spec = spec.unwrap_or("").trim();
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if group_arg.is_some_and(|g| g.is_empty() || g.contains(':')) {
        return Err(UserError::Invalid(spec.to_string()));
    }
    if user_arg.is_empty() && group_arg.is_some() {
        return Err(UserError::Invalid(spec.to_string()));
    }
    let users = passwd.map(parse_passwd).unwrap_or_default();
    let groups = group.map(parse_group).unwrap_or_default();

    let mut out = ExecUser {
        uid: 0,
        gid: 0,
        sgids: Vec::new(),
        home: "/".to_string(),
    };
    let matched = if user_arg.is_empty() {
        users.iter().find(|u| u.uid == 0)
    } else {
        users
            .iter()
            .find(|u| u.name == user_arg || parse_id(user_arg) == Some(u.uid))
    };
    let matched_name = match matched {
        Some(u) => {
            out.uid = u.uid;
            out.gid = u.gid;
            if !u.home.is_empty() {
                out.home = u.home.clone();
            }
            Some(u.name.clone())
        }
        None if user_arg.is_empty() => None,
        None => match parse_id(user_arg) {
            Some(uid) => {
                out.uid = uid;
                None
            }
            None if user_arg.bytes().all(|b| b.is_ascii_digit() || b == b'-') => {
                return Err(UserError::Invalid(spec.to_string()));
            }
            None => return Err(UserError::UnknownUser(user_arg.to_string())),
        },
    };

    if let Some(g) = group_arg {
        if let Some(e) = groups
            .iter()
            .find(|e| e.name == g || parse_id(g) == Some(e.gid))
        {
            out.gid = e.gid;
        } else if let Some(gid) = parse_id(g) {
            out.gid = gid;
        } else {
            return Err(UserError::UnknownGroup(g.to_string()));
        }
    }
    out.sgids.push(out.gid);
    if let (None, Some(name)) = (group_arg, &matched_name) {
        for e in groups
            .iter()
            .filter(|e| e.members.iter().any(|m| m == name))
        {
            if !out.sgids.contains(&e.gid) {
                out.sgids.push(e.gid);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # comment\n\
        daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
        broken line\n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
        app:x:1000:1000:app:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app,other\naudio:x:29:app\n\
        nogroup:x:65534:\napp:x:1000:\nstaff:x:50:\n";

    fn r(spec: Option<&str>) -> Result<ExecUser, UserError> {
        resolve_user(spec, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn parses_files() {
        let p = parse_passwd(PASSWD);
        assert_eq!(p.len(), 4);
        assert_eq!(p[3].home, "/home/app");
        let g = parse_group(GROUP);
        assert_eq!(g[1].members, vec!["app", "other"]);
        assert!(g[0].members.is_empty());
    }

    #[test]
    fn default_is_root() {
        let u = r(None).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        assert_eq!(u.sgids, vec![0]);
        let u = resolve_user(None, None, None).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/"));
    }

    #[test]
    fn by_name_with_supplementary_groups() {
        let u = r(Some("app")).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.sgids, vec![1000, 10, 29]);
        assert_eq!(u.home, "/home/app");
        let u = r(Some("nobody")).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.home.as_str()),
            (65534, 65534, "/nonexistent")
        );
    }

    #[test]
    fn numeric_forms() {
        let u = r(Some("1000")).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.sgids, vec![1000, 10, 29]);
        let u = r(Some("4242")).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        let u = r(Some("1000:1000")).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.sgids, vec![1000], "explicit group: only the primary");
        let u = r(Some("4242:4343")).unwrap();
        assert_eq!((u.uid, u.gid), (4242, 4343));
    }

    #[test]
    fn name_and_group() {
        let u = r(Some("app:staff")).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        assert_eq!(u.sgids, vec![50]);
        let u = r(Some("root:wheel")).unwrap();
        assert_eq!((u.uid, u.gid), (0, 10));
    }

    #[test]
    fn errors_name_the_value() {
        let e = r(Some("bob")).unwrap_err();
        assert_eq!(e.to_string(), "user \"bob\" not found in /etc/passwd");
        let e = r(Some("app:nosuch")).unwrap_err();
        assert_eq!(e.to_string(), "group \"nosuch\" not found in /etc/group");
        assert!(matches!(r(Some("app:")), Err(UserError::Invalid(_))));
        assert!(matches!(r(Some(":wheel")), Err(UserError::Invalid(_))));
        assert!(matches!(r(Some("-1")), Err(UserError::Invalid(_))));
        assert!(matches!(
            resolve_user(Some("app"), None, None),
            Err(UserError::UnknownUser(_))
        ));
    }
}
