//! lookout images: content-addressed layers, safe import of rootfs tarballs, and overlayfs mounts for containers.
//!
//! The [`ImageStore`] lives under `<data-root>/image` and has this layout:
//!
//! ```text
//! layers/<hex>/          extracted layer (the overlay lowerdir); <hex> = sha256 of the uncompressed tar
//! layers/<hex>.json      layer metadata (diff id, expanded size)
//! configs/<hex>.json     image config (OCI/Docker image config JSON); image id = sha256:<hex of this file>
//! repositories.json      tags -> image id
//! tmp/                   in-progress imports and deletions (cleaned on open)
//! ```
//!
//! Every metadata file is written atomically (temp file, fsync, rename, fsync dir).
//! Layer extraction treats the tar stream as hostile: see [`ImageStore::import`].

use std::collections::BTreeMap;
use std::io;

mod changes;
mod config;
mod extract;
mod mount;
mod reference;
mod store;

pub use mount::{RootfsMount, mount_rootfs};
pub use store::ImageStore;

/// Default bound on the expanded (extracted) size of an import: used when
/// [`ImportOptions::max_expanded_bytes`] is 0.
pub const DEFAULT_MAX_EXPANDED_BYTES: u64 = 32 << 30;

/// Maximum number of tar entries one import may contain (inode-bomb guard).
pub const MAX_ENTRIES: u64 = 1_000_000;

/// Maximum number of path components of one tar entry.
pub const MAX_PATH_DEPTH: usize = 256;

/// Options of [`ImageStore::import`] (`docker import` / `POST /images/create?fromSrc=`).
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Dockerfile-style changes applied to the image config, e.g. `CMD ["sh"]`,
    /// `CMD sh -c x`, `ENV A=b`, `WORKDIR /x`, `ENTRYPOINT [...]`, `USER x`,
    /// `LABEL k=v`, `EXPOSE 80/tcp`. Any other instruction is a
    /// [`ImageError::BadChange`] naming it.
    pub changes: Vec<String>,
    /// `repo[:tag]` to tag the new image with (tag defaults to `latest`).
    pub reference: Option<String>,
    /// Commit message, stored as the config's `comment` and in its history.
    pub message: Option<String>,
    /// Bound on the expanded size (sum of regular file sizes, and of the raw tar
    /// stream); 0 means [`DEFAULT_MAX_EXPANDED_BYTES`].
    pub max_expanded_bytes: u64,
}

/// An image of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `sha256:<hex>` of the image config JSON.
    pub id: String,
    /// `repo:tag` references pointing at this image (empty when untagged; the
    /// CLI renders that as `<none>:<none>`), sorted.
    pub repo_tags: Vec<String>,
    /// Creation time, seconds since the Unix epoch.
    pub created_unix: i64,
    /// Expanded size of the image's layer in bytes (sum of regular file sizes).
    pub size: u64,
    /// The container configuration of the image.
    pub config: ImageConfig,
    /// `sha256:<hex>` of the uncompressed layer tar (the diff id).
    pub layer_id: String,
    /// The import message (`comment` of the config), empty when none.
    pub comment: String,
    /// Architecture, e.g. `amd64`.
    pub architecture: String,
    /// Operating system, `linux`.
    pub os: String,
}

/// The container configuration carried by an image (the `config` object of an
/// OCI/Docker image config).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `Cmd`; `None` when unset.
    pub cmd: Option<Vec<String>>,
    /// `Entrypoint`; `None` when unset.
    pub entrypoint: Option<Vec<String>>,
    /// `Env`, `KEY=value` entries.
    pub env: Vec<String>,
    /// `WorkingDir`, empty when unset.
    pub working_dir: String,
    /// `User`, empty when unset.
    pub user: String,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
    /// `ExposedPorts` keys, e.g. `80/tcp`, sorted.
    pub exposed_ports: Vec<String>,
}

/// Result of [`ImageStore::import`].
#[derive(Debug, Clone)]
pub struct Imported {
    /// The new image.
    pub image: Image,
    /// Entries that were skipped (device nodes, fifos, whiteouts, unsupported
    /// types) or xattrs that could not be set, one human-readable line each.
    pub warnings: Vec<String>,
}

/// One item of the result of [`ImageStore::remove`] (Docker's `ImageDeleteResponseItem`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A `repo:tag` reference was removed.
    Untagged(String),
    /// An image (`sha256:` id) or its layer (`sha256:` diff id) was deleted.
    Deleted(String),
}

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The image does not exist (HTTP 404).
    #[error("No such image: {0}")]
    NotFound(String),
    /// The operation conflicts with the image's state (HTTP 409); the message is complete.
    #[error("{0}")]
    Conflict(String),
    /// A reference or tag is malformed (HTTP 400).
    #[error("invalid reference format: {0}")]
    InvalidReference(String),
    /// An id prefix matches several images (HTTP 400).
    #[error("image reference {0} is ambiguous: it matches several images")]
    Ambiguous(String),
    /// A `changes` instruction is malformed or unsupported (HTTP 400).
    #[error("invalid change: {0}")]
    BadChange(String),
    /// A tar entry would escape the layer or is otherwise refused (HTTP 400).
    #[error("unsafe tar entry {path:?}: {reason}")]
    UnsafeEntry {
        /// The entry's path as found in the tar.
        path: String,
        /// Why it was refused.
        reason: String,
    },
    /// The archive is not a readable tar stream (truncated, corrupt, unsupported compression) (HTTP 400).
    #[error("invalid archive: {0}")]
    BadArchive(String),
    /// The expanded image exceeds the import limit (HTTP 400/413).
    #[error("image too large: expanded size exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Not enough free space (or inodes) in the store's filesystem (HTTP 507/500).
    #[error("no space left in the image store")]
    NoSpace,
    /// A mount or unmount failed.
    #[error("mount error: {0}")]
    Mount(String),
    /// Any other I/O error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl ImageError {
    /// The HTTP status Docker's API uses for this error.
    pub fn status_code(&self) -> u16 {
        match self {
            ImageError::NotFound(_) => 404,
            ImageError::Conflict(_) => 409,
            ImageError::InvalidReference(_)
            | ImageError::Ambiguous(_)
            | ImageError::BadChange(_)
            | ImageError::UnsafeEntry { .. }
            | ImageError::BadArchive(_)
            | ImageError::TooLarge { .. } => 400,
            ImageError::NoSpace | ImageError::Mount(_) | ImageError::Io { .. } => 500,
        }
    }

    /// Builds an [`ImageError::Io`], mapping ENOSPC/EDQUOT to [`ImageError::NoSpace`].
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> ImageError {
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => ImageError::NoSpace,
            _ => ImageError::Io {
                context: context.into(),
                source,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_maps_to_no_space() {
        let e = ImageError::io("writing x", io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(matches!(e, ImageError::NoSpace));
        let e = ImageError::io("writing x", io::Error::from_raw_os_error(libc::EDQUOT));
        assert!(matches!(e, ImageError::NoSpace));
        let e = ImageError::io("writing x", io::Error::from_raw_os_error(libc::EIO));
        assert_eq!(e.status_code(), 500);
        assert!(e.to_string().starts_with("writing x: "), "{e}");
        assert_eq!(
            ImageError::NotFound("a:b".into()).to_string(),
            "No such image: a:b"
        );
    }
}
