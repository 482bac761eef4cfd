//! Container names: validation and Docker-style random names
//! (`adjective_surname`).

/// Adjectives of generated names.
const ADJECTIVES: &[&str] = &[
    "amber", "brave", "calm", "clever", "cosmic", "daring", "eager", "fearless", "gentle",
    "glowing", "happy", "hardy", "honest", "humble", "jolly", "keen", "kind", "lively", "lucid",
    "merry", "mighty", "nimble", "noble", "patient", "placid", "proud", "quiet", "quirky", "rapid",
    "serene", "sharp", "shiny", "silent", "snowy", "steady", "sunny", "swift", "tidy", "vivid",
    "witty", "zealous",
];

/// Surnames of generated names (scientists and engineers).
const SURNAMES: &[&str] = &[
    "agnesi",
    "babbage",
    "bardeen",
    "bohr",
    "boole",
    "cerf",
    "curie",
    "darwin",
    "dijkstra",
    "euler",
    "faraday",
    "fermi",
    "feynman",
    "franklin",
    "gauss",
    "goldberg",
    "hamilton",
    "hopper",
    "hypatia",
    "kepler",
    "knuth",
    "lamarr",
    "lamport",
    "liskov",
    "lovelace",
    "maxwell",
    "meitner",
    "mirzakhani",
    "newton",
    "noether",
    "pascal",
    "ritchie",
    "shannon",
    "thompson",
    "torvalds",
    "turing",
    "wilson",
    "wozniak",
    "yalow",
    "zuse",
];

/// Why a name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
pub struct InvalidName(pub String);

/// Checks a user-given name (`/` prefix optional) as dockerd does
/// (`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`) and returns it with its leading `/`.
pub fn normalize(name: &str) -> Result<String, InvalidName> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let b = bare.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(format!("/{bare}"))
    } else {
        Err(InvalidName(name.to_string()))
    }
}

/// A random `adjective_surname`; after `retry` failed attempts a digit is
/// appended, as Docker does.
pub fn random_name(seed: u64, retry: u32) -> String {
    let a = ADJECTIVES[(seed % ADJECTIVES.len() as u64) as usize];
    let s = SURNAMES[((seed / ADJECTIVES.len() as u64) % SURNAMES.len() as u64) as usize];
    if retry == 0 {
        format!("{a}_{s}")
    } else {
        format!("{a}_{s}{}", (seed >> 32) % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_like_dockerd() {
        assert_eq!(normalize("web").unwrap(), "/web");
        assert_eq!(normalize("/web-1.a_b").unwrap(), "/web-1.a_b");
        assert!(normalize("a").is_err());
        assert!(normalize("-ab").is_err());
        assert!(normalize("a b").is_err());
        assert_eq!(
            normalize("x/y").unwrap_err().to_string(),
            "Invalid container name (x/y), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
    }

    #[test]
    fn random_names_are_valid() {
        for seed in [0u64, 1, 77, u64::MAX, 123_456_789_012] {
            for retry in 0..3 {
                let n = random_name(seed, retry);
                assert!(normalize(&n).is_ok(), "{n}");
                assert!(n.contains('_'));
            }
        }
    }
}
