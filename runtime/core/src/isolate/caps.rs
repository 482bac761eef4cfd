//! Capability names and Docker's rules for `--cap-add` / `--cap-drop`.

/// Capability names by number (`CAP_` prefix omitted), as in
/// `linux/capability.h` up to `CAP_CHECKPOINT_RESTORE` (40).
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Docker's default capability set.
pub const DOCKER_DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Docker's default set as a mask (`0x00000000a80425fb`).
pub fn docker_default_mask() -> u64 {
    DOCKER_DEFAULT
        .iter()
        .filter_map(|n| number(n))
        .fold(0, |m, c| m | (1u64 << c))
}

/// Why a capability list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    /// A name that is no Linux capability.
    #[error("unknown capability {0:?}")]
    Unknown(String),
    /// A capability this kernel does not know.
    #[error("capability {name:?} is not supported by this kernel (last capability is {last})")]
    Unsupported {
        /// The name as given.
        name: String,
        /// `/proc/sys/kernel/cap_last_cap`.
        last: u32,
    },
    /// A capability the engine itself does not hold, so cannot grant.
    #[error("cannot add capability CAP_{0}: the engine does not hold it")]
    NotHeld(&'static str),
}

/// The number of a capability name (`CAP_` prefix optional, any case).
pub fn number(name: &str) -> Option<u32> {
    let up = name.trim().to_ascii_uppercase();
    let bare = up.strip_prefix("CAP_").unwrap_or(&up);
    NAMES.iter().position(|n| *n == bare).map(|p| p as u32)
}

fn is_all(name: &str) -> bool {
    name.trim().eq_ignore_ascii_case("ALL")
}

fn mask_of(names: &[String], last_cap: u32) -> Result<u64, CapError> {
    let mut m = 0;
    for n in names.iter().filter(|n| !is_all(n)) {
        let c = number(n).ok_or_else(|| CapError::Unknown(n.clone()))?;
        if c > last_cap {
            return Err(CapError::Unsupported {
                name: n.clone(),
                last: last_cap,
            });
        }
        m |= 1u64 << c;
    }
    Ok(m)
}

/// The container's capability set from Docker's default, `add` and `drop`
/// (Docker's `TweakCapabilities`): `add` containing `ALL` gives every
/// capability the engine holds (`held`) minus `drop`; `drop` containing
/// `ALL` gives exactly `add`; otherwise default minus `drop` plus `add`.
/// A named capability the engine does not hold is refused.
pub fn container_caps(
    add: &[String],
    drop: &[String],
    last_cap: u32,
    held: u64,
) -> Result<u64, CapError> {
    let add_mask = mask_of(add, last_cap)?;
    let drop_mask = mask_of(drop, last_cap)?;
    let known = if last_cap >= 63 {
        u64::MAX
    } else {
        (1u64 << (last_cap + 1)) - 1
    };
    let caps = if add.iter().any(|n| is_all(n)) {
        known & held & !drop_mask
    } else if drop.iter().any(|n| is_all(n)) {
        add_mask
    } else {
        (docker_default_mask() & !drop_mask) | add_mask
    };
    if let Some(c) = (0..=last_cap.min(63)).find(|c| caps & !held & (1u64 << c) != 0) {
        return Err(CapError::NotHeld(
            NAMES.get(c as usize).copied().unwrap_or("?"),
        ));
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }
    const HELD: u64 = 0x000001fffeffffff;

    #[test]
    fn default_mask_is_dockers() {
        assert_eq!(docker_default_mask(), 0x00000000a80425fb);
        assert_eq!(container_caps(&[], &[], 40, HELD), Ok(0xa80425fb));
    }

    #[test]
    fn names() {
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("sys_admin"), Some(21));
        assert_eq!(number("cap_net_raw"), Some(13));
        assert_eq!(number("nope"), None);
    }

    #[test]
    fn add_and_drop() {
        let c = container_caps(&s(&["sys_admin"]), &s(&["CAP_NET_RAW"]), 40, HELD).unwrap();
        assert_eq!(c, (0xa80425fb & !(1 << 13)) | (1 << 21));
        let c = container_caps(&s(&["chown"]), &s(&["all"]), 40, HELD).unwrap();
        assert_eq!(c, 1);
        let c = container_caps(&s(&["ALL"]), &s(&["mknod"]), 40, HELD).unwrap();
        assert_eq!(c, HELD & !(1 << 27));
        assert_eq!(container_caps(&[], &s(&["ALL"]), 40, HELD), Ok(0));
    }

    #[test]
    fn refusals() {
        assert_eq!(
            container_caps(&s(&["FLY"]), &[], 40, HELD),
            Err(CapError::Unknown("FLY".into()))
        );
        assert!(matches!(
            container_caps(&[], &s(&["bpf"]), 38, HELD),
            Err(CapError::Unsupported { .. })
        ));
        let e = container_caps(&s(&["SYS_RESOURCE"]), &[], 40, HELD).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot add capability CAP_SYS_RESOURCE: the engine does not hold it"
        );
    }
}
