//! The container's device allow-list: which device nodes its processes may
//! create (`m`), read (`r`) and write (`w`).
//!
//! A [`DeviceRule`] is one line of the v1 `devices` controller's language
//! (`c 1:3 rwm`, `a *:* rwm`). [`crate::Cgroup::set_devices`] applies a list
//! of them the way runc does:
//!
//! * with a v1 `devices` hierarchy (v1 and hybrid layouts), by writing `a` to
//!   `devices.deny` and then every rule, in order, to `devices.allow` or
//!   `devices.deny`;
//! * on v2, which has no devices controller, by loading an eBPF program of
//!   type `BPF_PROG_TYPE_CGROUP_DEVICE` that implements the same list and
//!   attaching it to the cgroup's directory ([`attach_bpf_device_filter`]).
//!
//! Both paths share the v1 kernel's semantics, which [`Effective`] models: a
//! rule of type `a` resets the default (allow or deny everything) and clears
//! the exceptions; any other rule adds an exception to the default or
//! removes (the given access of) an identical one. A request is granted by
//! an allow-list when one exception covers all the access asked for, and
//! refused by a deny-list when any exception overlaps it.

mod bpf;

use std::fmt;
use std::str::FromStr;

use crate::error::{CgroupError, Result};

pub use bpf::{attach_bpf_device_filter, attached_device_programs};

/// The kind of device a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// Every device (`a`); in the v1 language such a rule resets the default.
    All,
    /// Character devices (`c`).
    Char,
    /// Block devices (`b`).
    Block,
}

impl DeviceKind {
    /// The letter the v1 `devices` files use: `a`, `c` or `b`.
    pub fn as_char(self) -> char {
        match self {
            DeviceKind::All => 'a',
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        }
    }
}

/// The access bits of a rule or request, as in `struct bpf_cgroup_dev_ctx`:
/// mknod 1, read 2, write 4.
pub(crate) const ACC_MKNOD: u32 = 1;
/// Read access (`r`).
pub(crate) const ACC_READ: u32 = 2;
/// Write access (`w`).
pub(crate) const ACC_WRITE: u32 = 4;
/// Every access (`rwm`).
pub(crate) const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// The largest device number (major or minor) a rule may name: the kernel
/// keeps them as `u32` and uses `u32::MAX` for the `*` wildcard.
pub const MAX_DEVICE_NUMBER: i64 = u32::MAX as i64 - 1;

/// One rule of the device allow-list, as in the OCI runtime spec's
/// `linux.resources.devices` and the v1 `devices.allow`/`devices.deny` files.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceRule {
    /// Whether the rule grants (`devices.allow`) or refuses (`devices.deny`).
    pub allow: bool,
    /// The device kind it applies to.
    pub kind: DeviceKind,
    /// The major number; `None` for every major (`*`).
    pub major: Option<i64>,
    /// The minor number; `None` for every minor (`*`).
    pub minor: Option<i64>,
    /// The access: a non-empty subset of `rwm` (read, write, mknod).
    pub access: String,
}

/// A character-device allow rule with `rwm` access.
fn allow_char(major: Option<i64>, minor: Option<i64>, access: &str) -> DeviceRule {
    DeviceRule {
        allow: true,
        kind: DeviceKind::Char,
        major,
        minor,
        access: access.to_string(),
    }
}

/// The rules every container gets unless privileged: Docker's default spec
/// denies everything (`a *:* rwm`), then runc appends its `AllowedDevices`
/// (libcontainer/specconv): mknod of any character or block device, and
/// `rwm` on `/dev/null` (1:3), `/dev/random` (1:8), `/dev/full` (1:7),
/// `/dev/tty` (5:0), `/dev/zero` (1:5), `/dev/urandom` (1:9), the pty
/// slaves (136:*), `/dev/ptmx` (5:2) and `/dev/net/tun` (10:200, dropped in
/// runc 1.2.0 and restored in 1.2.3 for compatibility).
pub fn default_rules() -> Vec<DeviceRule> {
    vec![
        DeviceRule {
            allow: false,
            kind: DeviceKind::All,
            major: None,
            minor: None,
            access: "rwm".to_string(),
        },
        allow_char(None, None, "m"),
        DeviceRule {
            allow: true,
            kind: DeviceKind::Block,
            major: None,
            minor: None,
            access: "m".to_string(),
        },
        allow_char(Some(1), Some(3), "rwm"),
        allow_char(Some(1), Some(8), "rwm"),
        allow_char(Some(1), Some(7), "rwm"),
        allow_char(Some(5), Some(0), "rwm"),
        allow_char(Some(1), Some(5), "rwm"),
        allow_char(Some(1), Some(9), "rwm"),
        allow_char(Some(136), None, "rwm"),
        allow_char(Some(5), Some(2), "rwm"),
        allow_char(Some(10), Some(200), "rwm"),
    ]
}

/// Parses an access string (`rwm`, `r`, `mw`…) into access bits.
fn parse_access(access: &str) -> std::result::Result<u32, String> {
    if access.is_empty() {
        return Err("the access is empty (want a subset of \"rwm\")".to_string());
    }
    let mut bits = 0;
    for c in access.chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            other => {
                return Err(format!(
                    "unknown access {other:?} in {access:?} (want a subset of \"rwm\")"
                ));
            }
        };
    }
    Ok(bits)
}

/// Formats access bits as `rwm`'s subset, in that order.
fn format_access(bits: u32) -> String {
    let mut s = String::new();
    for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
        if bits & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// Parses a major or minor number (`*` for any).
fn parse_number(what: &str, s: &str) -> std::result::Result<Option<i64>, String> {
    if s == "*" {
        return Ok(None);
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad {what} number {s:?} (want a number or \"*\")"));
    }
    match s.parse::<i64>() {
        Ok(n) if n <= MAX_DEVICE_NUMBER => Ok(Some(n)),
        _ => Err(format!(
            "{what} number {s} is out of range (at most {MAX_DEVICE_NUMBER})"
        )),
    }
}

fn check_number(what: &str, n: Option<i64>) -> std::result::Result<(), String> {
    match n {
        Some(n) if !(0..=MAX_DEVICE_NUMBER).contains(&n) => Err(format!(
            "{what} number {n} is out of range (0 to {MAX_DEVICE_NUMBER})"
        )),
        _ => Ok(()),
    }
}

impl DeviceRule {
    /// The rule in the v1 `devices.allow`/`devices.deny` syntax:
    /// `c 1:3 rwm`, `b *:* m`, `a *:* rwm`. Whether it allows or denies is
    /// not part of the text (it is the file written to).
    pub fn to_v1_string(&self) -> String {
        let num = |n: Option<i64>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        let access = parse_access(&self.access)
            .map(format_access)
            .unwrap_or_else(|_| self.access.clone());
        format!(
            "{} {}:{} {}",
            self.kind.as_char(),
            num(self.major),
            num(self.minor),
            access
        )
    }

    /// Parses a rule in the v1 syntax Docker's `--device-cgroup-rule` takes:
    /// `TYPE MAJOR:MINOR ACCESS` (`c 1:3 rwm`, `b 8:* r`, `c *:* m`), or a
    /// lone `a` (every device, `rwm`). The result is an allow rule; set
    /// [`DeviceRule::allow`] to `false` for a deny one. The access is stored
    /// in `rwm` order. Errors name the rule and the bad part.
    pub fn parse(s: &str) -> Result<DeviceRule> {
        let bad = |reason: String| CgroupError::InvalidDeviceRule {
            rule: s.to_string(),
            reason,
        };
        let fields: Vec<&str> = s.split_whitespace().collect();
        let kind = match fields.first().copied() {
            Some("a") => DeviceKind::All,
            Some("c") => DeviceKind::Char,
            Some("b") => DeviceKind::Block,
            Some(other) => {
                return Err(bad(format!(
                    "unknown device type {other:?} (want \"a\", \"b\" or \"c\")"
                )));
            }
            None => return Err(bad("the rule is empty".to_string())),
        };
        if kind == DeviceKind::All && fields.len() == 1 {
            return Ok(DeviceRule {
                allow: true,
                kind,
                major: None,
                minor: None,
                access: "rwm".to_string(),
            });
        }
        let [_, numbers, access] = fields[..] else {
            return Err(bad(format!(
                "want \"TYPE MAJOR:MINOR ACCESS\" (like \"c 1:3 rwm\"), got {} field(s)",
                fields.len()
            )));
        };
        let Some((major, minor)) = numbers.split_once(':') else {
            return Err(bad(format!(
                "bad device numbers {numbers:?} (want MAJOR:MINOR, like \"1:3\" or \"136:*\")"
            )));
        };
        let major = parse_number("major", major).map_err(bad)?;
        let minor = parse_number("minor", minor).map_err(bad)?;
        let access = format_access(parse_access(access).map_err(bad)?);
        Ok(DeviceRule {
            allow: true,
            kind,
            major,
            minor,
            access,
        })
    }

    /// Checks the fields a caller may have set by hand: the access is a
    /// non-empty subset of `rwm` and the numbers are in range.
    pub fn validate(&self) -> Result<()> {
        self.access_bits().map(|_| ())
    }

    /// The access bits (mknod 1, read 2, write 4), after validation.
    pub(crate) fn access_bits(&self) -> Result<u32> {
        let bad = |reason: String| CgroupError::InvalidDeviceRule {
            rule: format!(
                "{} {}",
                if self.allow { "allow" } else { "deny" },
                self.to_v1_string()
            ),
            reason,
        };
        check_number("major", self.major).map_err(bad)?;
        check_number("minor", self.minor).map_err(bad)?;
        parse_access(&self.access).map_err(bad)
    }
}

impl fmt::Display for DeviceRule {
    /// `allow c 1:3 rwm` / `deny a *:* rwm`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.allow { "allow" } else { "deny" };
        write!(f, "{verb} {}", self.to_v1_string())
    }
}

impl FromStr for DeviceRule {
    type Err = CgroupError;

    /// [`DeviceRule::parse`].
    fn from_str(s: &str) -> Result<DeviceRule> {
        DeviceRule::parse(s)
    }
}

/// One exception of an [`Effective`] list: a device pattern and the access
/// bits it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    /// `Char` or `Block` (an `a` rule never becomes an exception).
    pub kind: DeviceKind,
    /// The major number, `None` for any.
    pub major: Option<u32>,
    /// The minor number, `None` for any.
    pub minor: Option<u32>,
    /// Access bits: mknod 1, read 2, write 4.
    pub access: u32,
}

impl Exception {
    fn same_device(&self, other: &Exception) -> bool {
        self.kind == other.kind && self.major == other.major && self.minor == other.minor
    }

    fn matches_device(&self, kind: DeviceKind, major: u32, minor: u32) -> bool {
        (self.kind == DeviceKind::All || self.kind == kind)
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
    }
}

/// What a list of rules amounts to, computed as the v1 kernel does while
/// the rules are written one by one: a default and exceptions to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// Whether devices no exception names are allowed (a deny-list) or
    /// denied (an allow-list, the usual case).
    pub default_allow: bool,
    /// The exceptions: allowed devices when `default_allow` is false, denied
    /// ones otherwise.
    pub exceptions: Vec<Exception>,
}

impl Effective {
    /// Replays `rules` over an allow-everything default (a new v1 cgroup
    /// under an unrestricted parent), as the kernel's `devices.allow` and
    /// `devices.deny` handlers do.
    pub fn from_rules(rules: &[DeviceRule]) -> Result<Effective> {
        let mut eff = Effective {
            default_allow: true,
            exceptions: Vec::new(),
        };
        for rule in rules {
            let access = rule.access_bits()?;
            if rule.kind == DeviceKind::All {
                // Any `a` line resets the behaviour and drops the exceptions.
                eff.default_allow = rule.allow;
                eff.exceptions.clear();
                continue;
            }
            let ex = Exception {
                kind: rule.kind,
                major: rule.major.map(to_u32),
                minor: rule.minor.map(to_u32),
                access,
            };
            if rule.allow == eff.default_allow {
                // Allowing under allow-all (or denying under deny-all) takes
                // the access off an identical exception.
                for e in eff.exceptions.iter_mut().filter(|e| e.same_device(&ex)) {
                    e.access &= !ex.access;
                }
                eff.exceptions.retain(|e| e.access != 0);
            } else if let Some(e) = eff.exceptions.iter_mut().find(|e| e.same_device(&ex)) {
                e.access |= ex.access;
            } else {
                eff.exceptions.push(ex);
            }
        }
        Ok(eff)
    }

    /// Whether a process may use device `kind` `major:minor` with `access`
    /// (bits: mknod 1, read 2, write 4). On an allow-list one exception must
    /// cover every bit asked for; on a deny-list any overlap refuses.
    pub fn allows(&self, kind: DeviceKind, major: u32, minor: u32, access: u32) -> bool {
        let mut hits = self
            .exceptions
            .iter()
            .filter(|e| e.matches_device(kind, major, minor));
        if self.default_allow {
            !hits.any(|e| e.access & access != 0)
        } else {
            hits.any(|e| access & !e.access == 0)
        }
    }
}

/// A validated number (`0..=MAX_DEVICE_NUMBER`) as the kernel's `u32`.
fn to_u32(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        let r = DeviceRule::parse("c 1:3 rwm").unwrap();
        assert_eq!(r, allow_char(Some(1), Some(3), "rwm"));
        assert_eq!(r.to_v1_string(), "c 1:3 rwm");
        assert_eq!(r.to_string(), "allow c 1:3 rwm");
        let r: DeviceRule = "b 8:* mr".parse().unwrap();
        assert_eq!(r.kind, DeviceKind::Block);
        assert_eq!((r.major, r.minor), (Some(8), None));
        assert_eq!(r.access, "rm");
        assert_eq!(r.to_v1_string(), "b 8:* rm");
        let a = DeviceRule::parse("a").unwrap();
        assert_eq!(a.to_v1_string(), "a *:* rwm");
        assert_eq!(DeviceRule::parse("  a  *:*   rwm ").unwrap(), a);
        let mut d = DeviceRule::parse("c *:* m").unwrap();
        d.allow = false;
        assert_eq!(d.to_string(), "deny c *:* m");
        for rule in default_rules() {
            let mut back = DeviceRule::parse(&rule.to_v1_string()).unwrap();
            back.allow = rule.allow;
            assert_eq!(back, rule);
        }
    }

    #[test]
    fn parse_errors_name_the_bad_value() {
        for (bad, want) in [
            ("", "empty"),
            ("x 1:3 rwm", "\"x\""),
            ("c 1:3", "2 field(s)"),
            ("c 1:3 rwm extra", "4 field(s)"),
            ("c 13 rwm", "\"13\""),
            ("c a:3 rwm", "major number \"a\""),
            ("c 1:-3 rwm", "minor number \"-3\""),
            ("c 1:3 rwx", "'x'"),
            ("c 1:3 rwx", "\"rwx\""),
            ("c 99999999999:3 r", "out of range"),
        ] {
            let e = DeviceRule::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
            assert!(e.contains(want), "{bad:?}: {e}");
        }
        let mut r = allow_char(Some(-1), None, "r");
        assert!(r.validate().unwrap_err().to_string().contains("-1"));
        r.major = Some(1);
        r.access = String::new();
        assert!(r.validate().unwrap_err().to_string().contains("empty"));
        r.access = "rq".to_string();
        let e = r.validate().unwrap_err().to_string();
        assert!(e.contains("allow c 1:* rq") && e.contains("'q'"), "{e}");
    }

    #[test]
    fn default_rules_are_runcs() {
        let text: Vec<String> = default_rules().iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "deny a *:* rwm",
                "allow c *:* m",
                "allow b *:* m",
                "allow c 1:3 rwm",
                "allow c 1:8 rwm",
                "allow c 1:7 rwm",
                "allow c 5:0 rwm",
                "allow c 1:5 rwm",
                "allow c 1:9 rwm",
                "allow c 136:* rwm",
                "allow c 5:2 rwm",
                "allow c 10:200 rwm",
            ]
        );
    }

    #[test]
    fn effective_default_rules() {
        let eff = Effective::from_rules(&default_rules()).unwrap();
        assert!(!eff.default_allow);
        assert_eq!(eff.exceptions.len(), 11);
        let c = DeviceKind::Char;
        let b = DeviceKind::Block;
        assert!(eff.allows(c, 1, 3, ACC_READ | ACC_WRITE));
        assert!(eff.allows(c, 136, 7, ACC_ALL));
        assert!(eff.allows(b, 8, 0, ACC_MKNOD));
        assert!(eff.allows(c, 4, 1, ACC_MKNOD));
        assert!(!eff.allows(b, 8, 0, ACC_READ));
        assert!(!eff.allows(b, 8, 0, ACC_READ | ACC_MKNOD));
        assert!(!eff.allows(c, 4, 1, ACC_WRITE));
        assert!(!eff.allows(c, 10, 229, ACC_READ));
    }

    #[test]
    fn effective_follows_the_v1_kernel() {
        let rules = |lines: &[(&str, bool)]| -> Vec<DeviceRule> {
            lines
                .iter()
                .map(|(l, allow)| DeviceRule {
                    allow: *allow,
                    ..DeviceRule::parse(l).unwrap()
                })
                .collect()
        };
        let c = DeviceKind::Char;
        // A deny-list: allow everything but writing to 1:3.
        let eff = Effective::from_rules(&rules(&[("a", true), ("c 1:3 w", false)])).unwrap();
        assert!(eff.default_allow);
        assert!(eff.allows(c, 1, 3, ACC_READ));
        assert!(!eff.allows(c, 1, 3, ACC_READ | ACC_WRITE));
        assert!(eff.allows(c, 1, 5, ACC_ALL));
        // Re-allowing takes the exception away.
        let eff = Effective::from_rules(&rules(&[
            ("a", true),
            ("c 1:3 w", false),
            ("c 1:3 w", true),
        ]))
        .unwrap();
        assert!(eff.exceptions.is_empty());
        // On an allow-list, a deny trims an identical exception only.
        let eff = Effective::from_rules(&rules(&[
            ("a", false),
            ("c 1:3 rwm", true),
            ("c 1:3 w", false),
            ("c 1:* r", false),
            ("c 1:5 r", true),
            ("c 1:5 w", true),
        ]))
        .unwrap();
        assert_eq!(eff.exceptions.len(), 2);
        assert!(eff.allows(c, 1, 3, ACC_READ | ACC_MKNOD));
        assert!(!eff.allows(c, 1, 3, ACC_WRITE));
        assert!(eff.allows(c, 1, 5, ACC_READ | ACC_WRITE));
        // A later `a` wipes what came before.
        let eff = Effective::from_rules(&rules(&[("c 1:3 rwm", true), ("a", false)])).unwrap();
        assert_eq!(
            eff,
            Effective {
                default_allow: false,
                exceptions: vec![]
            }
        );
        // No rules: the parent's allow-all.
        assert!(Effective::from_rules(&[]).unwrap().default_allow);
    }
}
