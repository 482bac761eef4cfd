//! Where plugins are looked for, and the file names a driver may have.

use super::{PluginError, PluginKind};
use std::path::{Path, PathBuf};

/// Environment variable holding extra plugin directories, `:`-separated.
pub const PLUGIN_PATH_ENV: &str = "LOOKOUT_PLUGIN_PATH";

/// An ordered list of directories searched for plugin libraries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginPath {
    dirs: Vec<PathBuf>,
}

impl PluginPath {
    /// An explicit list.
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        PluginPath { dirs }
    }

    /// The standard order: `<data_root>/plugins`, the system directories next
    /// to the running binary (`<bindir>/../lib/lookout/plugins` and
    /// `<bindir>` itself, where cargo puts the libraries it builds), then the
    /// directories of `LOOKOUT_PLUGIN_PATH`.
    pub fn standard(data_root: Option<&Path>) -> Self {
        let mut dirs = Vec::new();
        if let Some(root) = data_root {
            dirs.push(root.join("plugins"));
        }
        if let Some(bindir) = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
        {
            if let Some(prefix) = bindir.parent() {
                dirs.push(prefix.join("lib/lookout/plugins"));
            }
            // Test binaries live in target/<profile>/deps, next to the
            // libraries this build made; target/<profile> may hold older
            // copies, so it comes after.
            let parent = bindir
                .parent()
                .filter(|_| bindir.file_name().is_some_and(|n| n == "deps"))
                .map(Path::to_path_buf);
            dirs.push(bindir);
            dirs.extend(parent);
        }
        if let Some(extra) = std::env::var_os(PLUGIN_PATH_ENV) {
            dirs.extend(std::env::split_paths(&extra).filter(|p| !p.as_os_str().is_empty()));
        }
        let mut seen = std::collections::HashSet::new();
        dirs.retain(|d| seen.insert(d.clone()));
        PluginPath { dirs }
    }

    /// The directories, in search order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// File names a plugin called `name` may have, in order of preference.
    pub fn candidates(name: &str) -> [String; 3] {
        [
            format!("liblookout_plugin_{}.so", name.replace(['-', '.'], "_")),
            format!("lookout-plugin-{name}.so"),
            format!("{name}.so"),
        ]
    }

    /// Finds the library of `name`: the first candidate file in the first
    /// directory that has one.
    pub fn find(&self, kind: PluginKind, name: &str) -> Result<PathBuf, PluginError> {
        check_name(kind, name)?;
        let candidates = Self::candidates(name);
        for dir in &self.dirs {
            for c in &candidates {
                let p = dir.join(c);
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        Err(PluginError::NotFound {
            kind,
            name: name.to_string(),
            candidates: candidates.join(", "),
            searched: if self.dirs.is_empty() {
                "(no plugin directories)".to_string()
            } else {
                self.dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
    }
}

fn check_name(kind: PluginKind, name: &str) -> Result<(), PluginError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(PluginError::InvalidName {
            kind,
            name: name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_the_directory_are_refused() {
        let p = PluginPath::new(vec![]);
        for bad in ["", "../x", "a/b", ".hidden", "x y"] {
            assert!(matches!(
                p.find(PluginKind::Log, bad),
                Err(PluginError::InvalidName { .. })
            ));
        }
    }

    #[test]
    fn not_found_lists_every_directory_and_file_name() {
        let p = PluginPath::new(vec!["/nonexistent/a".into(), "/nonexistent/b".into()]);
        let e = p
            .find(PluginKind::Log, "json-file")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/a") && e.contains("/nonexistent/b"),
            "{e}"
        );
        assert!(e.contains("liblookout_plugin_json_file.so"), "{e}");
        assert!(e.contains("\"json-file\""), "{e}");
    }

    #[test]
    fn first_directory_wins() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(b.path().join("x.so"), b"").unwrap();
        std::fs::write(a.path().join("liblookout_plugin_x.so"), b"").unwrap();
        let p = PluginPath::new(vec![a.path().into(), b.path().into()]);
        assert_eq!(
            p.find(PluginKind::Log, "x").unwrap(),
            a.path().join("liblookout_plugin_x.so")
        );
    }
}
