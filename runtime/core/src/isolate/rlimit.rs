//! `--ulimit` names and checks.

use crate::spec::RlimitSpec;

/// Docker's rlimit names and the kernel's resource numbers.
#[allow(clippy::unnecessary_cast)] // c_int on musl, u32 on glibc
pub const NAMES: [(&str, u32); 15] = [
    ("core", libc::RLIMIT_CORE as u32),
    ("cpu", libc::RLIMIT_CPU as u32),
    ("data", libc::RLIMIT_DATA as u32),
    ("fsize", libc::RLIMIT_FSIZE as u32),
    ("locks", libc::RLIMIT_LOCKS as u32),
    ("memlock", libc::RLIMIT_MEMLOCK as u32),
    ("msgqueue", libc::RLIMIT_MSGQUEUE as u32),
    ("nice", libc::RLIMIT_NICE as u32),
    ("nofile", libc::RLIMIT_NOFILE as u32),
    ("nproc", libc::RLIMIT_NPROC as u32),
    ("rss", libc::RLIMIT_RSS as u32),
    ("rtprio", libc::RLIMIT_RTPRIO as u32),
    ("rttime", libc::RLIMIT_RTTIME as u32),
    ("sigpending", libc::RLIMIT_SIGPENDING as u32),
    ("stack", libc::RLIMIT_STACK as u32),
];

/// "Unlimited".
pub const INFINITY: u64 = libc::RLIM_INFINITY;

/// One checked limit, ready for `setrlimit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// Kernel resource number (`RLIMIT_*`).
    pub resource: u32,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// Why a `--ulimit` was refused; the message names the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RlimitError {
    /// Not one of Docker's names.
    #[error("unknown ulimit {0:?}")]
    Unknown(String),
    /// Soft above hard.
    #[error("ulimit {name}: soft limit {soft} is above the hard limit {hard}")]
    SoftAboveHard {
        /// The limit.
        name: String,
        /// Soft value.
        soft: u64,
        /// Hard value.
        hard: u64,
    },
    /// Above what the engine itself may set (raising a hard limit needs
    /// CAP_SYS_RESOURCE).
    #[error(
        "ulimit {name}: hard limit {hard} is above the engine's hard limit {max} (raising it needs CAP_SYS_RESOURCE)"
    )]
    AboveCaller {
        /// The limit.
        name: String,
        /// The requested hard limit.
        hard: u64,
        /// The caller's hard limit.
        max: u64,
    },
    /// A limit named twice.
    #[error("ulimit {0} given more than once")]
    Duplicate(String),
}

/// The resource number of a Docker rlimit name.
pub fn resource(name: &str) -> Option<u32> {
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// Checks `specs` against the caller's hard limits (`caller_hard(resource)`).
pub fn check(
    specs: &[RlimitSpec],
    caller_hard: impl Fn(u32) -> u64,
) -> Result<Vec<Rlimit>, RlimitError> {
    let mut out: Vec<Rlimit> = Vec::new();
    for s in specs {
        let resource = resource(&s.name).ok_or_else(|| RlimitError::Unknown(s.name.clone()))?;
        if out.iter().any(|r| r.resource == resource) {
            return Err(RlimitError::Duplicate(s.name.clone()));
        }
        if s.soft > s.hard {
            return Err(RlimitError::SoftAboveHard {
                name: s.name.clone(),
                soft: s.soft,
                hard: s.hard,
            });
        }
        let max = caller_hard(resource);
        if max != INFINITY && s.hard > max {
            return Err(RlimitError::AboveCaller {
                name: s.name.clone(),
                hard: s.hard,
                max,
            });
        }
        out.push(Rlimit {
            resource,
            soft: s.soft,
            hard: s.hard,
        });
    }
    Ok(out)
}

/// The calling process's hard limit for `resource`.
pub fn own_hard_limit(resource: u32) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid, owned `lim`.
    let rc = unsafe { libc::getrlimit(resource as _, &mut lim) };
    if rc == 0 { lim.rlim_max } else { INFINITY }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, soft: u64, hard: u64) -> RlimitSpec {
        RlimitSpec {
            name: name.into(),
            soft,
            hard,
        }
    }

    #[test]
    fn accepts_within_caller_limits() {
        let r = check(&[spec("nofile", 100, 200)], |_| 1000).unwrap();
        assert_eq!(Some(r[0].resource), resource("nofile"));
        assert_eq!((r[0].soft, r[0].hard), (100, 200));
        assert!(check(&[spec("core", 0, u64::MAX)], |_| INFINITY).is_ok());
    }

    #[test]
    fn refusals_name_the_limit() {
        let e = check(&[spec("nofile", 10, 99999)], |_| 20000).unwrap_err();
        assert!(e.to_string().contains("ulimit nofile"), "{e}");
        assert!(e.to_string().contains("20000"), "{e}");
        assert_eq!(
            check(&[spec("files", 1, 1)], |_| INFINITY),
            Err(RlimitError::Unknown("files".into()))
        );
        assert!(matches!(
            check(&[spec("nproc", 5, 1)], |_| INFINITY),
            Err(RlimitError::SoftAboveHard { .. })
        ));
        assert!(matches!(
            check(&[spec("nproc", 1, 1), spec("nproc", 1, 1)], |_| INFINITY),
            Err(RlimitError::Duplicate(_))
        ));
    }
}
