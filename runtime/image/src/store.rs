//! The image store: metadata, tags, import and removal.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{self, ConfigFile, ContainerConfig, History, RootFs};
use crate::reference::{self, NamedTag};
use crate::{
    DEFAULT_MAX_EXPANDED_BYTES, Image, ImageConfig, ImageError, ImportOptions, Imported, Removed,
};

/// Metadata of an extracted layer (`layers/<hex>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LayerMeta {
    diff_id: String,
    size: u64,
}

/// `repositories.json`: repo → (`repo:tag` → image id), Docker's layout.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Repositories {
    #[serde(rename = "Repositories", default)]
    repos: BTreeMap<String, BTreeMap<String, String>>,
}

impl Repositories {
    fn lookup(&self, n: &NamedTag) -> Option<&String> {
        self.repos.get(&n.repo)?.get(&n.full())
    }

    fn set(&mut self, n: &NamedTag, id: &str) {
        self.repos
            .entry(n.repo.clone())
            .or_default()
            .insert(n.full(), id.to_string());
    }

    fn remove(&mut self, n: &NamedTag) {
        if let Some(tags) = self.repos.get_mut(&n.repo) {
            tags.remove(&n.full());
            if tags.is_empty() {
                self.repos.remove(&n.repo);
            }
        }
    }

    /// All `repo:tag` pointing at `id`, sorted.
    fn tags_of(&self, id: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .repos
            .values()
            .flat_map(|m| m.iter())
            .filter(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.clone())
            .collect();
        v.sort();
        v
    }
}

/// How a reference was resolved.
enum Resolved {
    /// Through a `repo:tag`.
    Tag(NamedTag),
    /// Through a full id or an id prefix.
    Id,
}

/// Held while mutating the store: the in-process mutex and an flock on `root/.lock`.
struct StoreLock<'a> {
    _guard: MutexGuard<'a, ()>,
    _flock: Flock<File>,
}

/// Counter making temp names unique within the process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn tmp_name(prefix: &str) -> String {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

fn hex_of(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

fn short(hex: &str) -> &str {
    &hex[..hex.len().min(12)]
}

/// Writes `bytes` to `path` atomically: temp file in the same directory,
/// fsync, rename, fsync of the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{}", tmp_name(&name)));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| ImageError::io(format!("creating {}", tmp.display()), e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| ImageError::io(format!("writing {}", tmp.display()), e))?;
        fs::rename(&tmp, path)
            .map_err(|e| ImageError::io(format!("renaming to {}", path.display()), e))?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn fsync_dir(dir: &Path) -> Result<(), ImageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ImageError::io(format!("syncing {}", dir.display()), e))
}

/// Removes a temp directory on drop unless disarmed.
struct TempDir(Option<PathBuf>);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_dir_all(&p);
        }
    }
}

/// Whether any mount in this namespace mentions `path` (e.g. as an overlay lowerdir).
fn mentioned_in_mountinfo(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let p = path.to_string_lossy();
    info.lines().any(|l| l.contains(p.as_ref()))
}

/// The daemon's image store, rooted at `<data-root>/image`. `Send + Sync`:
/// share it behind an `Arc`; mutations are serialised internally (and across
/// processes with an flock on `root/.lock`).
#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    lock: Mutex<()>,
}

impl ImageStore {
    /// Opens (creating if needed, mode 0700) the store at `root`, removing
    /// leftovers of interrupted imports/deletions under `root/tmp`.
    pub fn open(root: &Path) -> Result<ImageStore, ImageError> {
        let mut b = fs::DirBuilder::new();
        b.recursive(true).mode(0o700);
        for d in [
            root.to_path_buf(),
            root.join("layers"),
            root.join("configs"),
            root.join("tmp"),
        ] {
            b.create(&d)
                .map_err(|e| ImageError::io(format!("creating {}", d.display()), e))?;
        }
        let store = ImageStore {
            root: root.to_path_buf(),
            lock: Mutex::new(()),
        };
        {
            let _l = store.lock()?;
            let tmp = root.join("tmp");
            let entries = fs::read_dir(&tmp)
                .map_err(|e| ImageError::io(format!("reading {}", tmp.display()), e))?;
            for e in entries.flatten() {
                let p = e.path();
                let r = if e.file_type().is_ok_and(|t| t.is_dir()) {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
                r.map_err(|e| ImageError::io(format!("removing stale {}", p.display()), e))?;
            }
        }
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock(&self) -> Result<StoreLock<'_>, ImageError> {
        let guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.root.join(".lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| ImageError::io(format!("opening {}", path.display()), e))?;
        let flock = Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| ImageError::io(format!("locking {}", path.display()), e.into()))?;
        Ok(StoreLock {
            _guard: guard,
            _flock: flock,
        })
    }

    fn repos_path(&self) -> PathBuf {
        self.root.join("repositories.json")
    }

    fn config_path(&self, hex: &str) -> PathBuf {
        self.root.join("configs").join(format!("{hex}.json"))
    }

    fn layer_path(&self, hex: &str) -> PathBuf {
        self.root.join("layers").join(hex)
    }

    fn layer_meta_path(&self, hex: &str) -> PathBuf {
        self.root.join("layers").join(format!("{hex}.json"))
    }

    fn load_repos(&self) -> Result<Repositories, ImageError> {
        let p = self.repos_path();
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                ImageError::io(format!("parsing {}", p.display()), std::io::Error::other(e))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Repositories::default()),
            Err(e) => Err(ImageError::io(format!("reading {}", p.display()), e)),
        }
    }

    fn save_repos(&self, repos: &Repositories) -> Result<(), ImageError> {
        let bytes = serde_json::to_vec_pretty(repos)
            .map_err(|e| ImageError::io("serialising repositories", std::io::Error::other(e)))?;
        write_atomic(&self.repos_path(), &bytes)
    }

    /// Hex ids of all images.
    fn all_hexes(&self) -> Result<Vec<String>, ImageError> {
        let dir = self.root.join("configs");
        let rd = fs::read_dir(&dir)
            .map_err(|e| ImageError::io(format!("reading {}", dir.display()), e))?;
        let mut out = Vec::new();
        for e in rd {
            let e = e.map_err(|e| ImageError::io(format!("reading {}", dir.display()), e))?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            if let Some(hex) = name.strip_suffix(".json")
                && reference::is_full_hex(hex)
            {
                out.push(hex.to_string());
            }
        }
        Ok(out)
    }

    fn load_config(&self, hex: &str) -> Result<ConfigFile, ImageError> {
        let p = self.config_path(hex);
        let bytes = fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ImageError::NotFound(format!("sha256:{hex}"))
            } else {
                ImageError::io(format!("reading {}", p.display()), e)
            }
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ImageError::io(format!("parsing {}", p.display()), std::io::Error::other(e))
        })
    }

    fn load_image(&self, hex: &str, repos: &Repositories) -> Result<Image, ImageError> {
        let cfg = self.load_config(hex)?;
        let layer_id = cfg.rootfs.diff_ids.first().cloned().unwrap_or_default();
        let size = fs::read(self.layer_meta_path(hex_of(&layer_id)))
            .ok()
            .and_then(|b| serde_json::from_slice::<LayerMeta>(&b).ok())
            .map_or(0, |m| m.size);
        let id = format!("sha256:{hex}");
        Ok(Image {
            repo_tags: repos.tags_of(&id),
            id,
            created_unix: config::parse_rfc3339(&cfg.created).unwrap_or(0),
            size,
            config: cfg.config.to_image_config(),
            layer_id,
            comment: cfg.comment,
            architecture: cfg.architecture,
            os: cfg.os,
        })
    }

    /// Resolves a reference to an image hex id.
    fn resolve(
        &self,
        reference: &str,
        repos: &Repositories,
    ) -> Result<(String, Resolved), ImageError> {
        let not_found = || ImageError::NotFound(reference.to_string());
        if let Some(h) = reference.strip_prefix("sha256:") {
            if !reference::is_hex(h) {
                return Err(ImageError::InvalidReference(format!(
                    "{reference:?}: invalid image id"
                )));
            }
            return self.by_prefix(h, reference).map(|h| (h, Resolved::Id));
        }
        if reference::is_full_hex(reference) {
            return self
                .by_prefix(reference, reference)
                .map(|h| (h, Resolved::Id));
        }
        let named = reference::parse_named(reference);
        if let Ok(n) = &named
            && let Some(id) = repos.lookup(n)
        {
            return Ok((hex_of(id).to_string(), Resolved::Tag(n.clone())));
        }
        if reference::is_hex(reference) {
            return self
                .by_prefix(reference, reference)
                .map(|h| (h, Resolved::Id));
        }
        match named {
            Ok(_) => Err(not_found()),
            Err(e) => Err(e),
        }
    }

    fn by_prefix(&self, prefix: &str, reference: &str) -> Result<String, ImageError> {
        if reference::is_full_hex(prefix) {
            return if self.config_path(prefix).exists() {
                Ok(prefix.to_string())
            } else {
                Err(ImageError::NotFound(reference.to_string()))
            };
        }
        let mut found: Vec<String> = self
            .all_hexes()?
            .into_iter()
            .filter(|h| h.starts_with(prefix))
            .collect();
        match found.len() {
            0 => Err(ImageError::NotFound(reference.to_string())),
            1 => Ok(found.remove(0)),
            _ => Err(ImageError::Ambiguous(reference.to_string())),
        }
    }

    /// Imports a rootfs tarball read from `r` as a new single-layer image.
    ///
    /// The stream may be a plain, gzip- or bzip2-compressed tar (detected by
    /// magic; xz/zstd are refused with [`ImageError::BadArchive`]). It is hashed
    /// while being extracted into a temp dir under `root/tmp`, which is renamed
    /// to `layers/<diff hex>` only when complete (or dropped when a layer with
    /// the same content exists). On any error nothing is left behind.
    ///
    /// The tar is treated as hostile: see the `extract` module docs — `..`
    /// refused, leading `/` stripped, nothing written through symlinks,
    /// hardlinks only to regular files already in the layer, device nodes and
    /// fifos skipped (listed in [`Imported::warnings`]), `.wh.*` dropped,
    /// xattrs limited to `user.*` and `security.capability`, expanded size
    /// bounded by [`ImportOptions::max_expanded_bytes`] and by free space.
    pub fn import(&self, r: impl Read, opts: &ImportOptions) -> Result<Imported, ImageError> {
        let named = opts
            .reference
            .as_deref()
            .map(reference::parse_named)
            .transpose()?;
        let mut image_config = ImageConfig::default();
        crate::changes::apply_changes(&mut image_config, &opts.changes)?;
        let max = if opts.max_expanded_bytes == 0 {
            DEFAULT_MAX_EXPANDED_BYTES
        } else {
            opts.max_expanded_bytes
        };

        let tmp = self.root.join("tmp").join(tmp_name("import"));
        let mut guard = TempDir(Some(tmp.clone()));
        let layer_tmp = tmp.join("layer");
        let mut b = fs::DirBuilder::new();
        b.mode(0o700);
        b.create(&tmp)
            .map_err(|e| ImageError::io(format!("creating {}", tmp.display()), e))?;
        b.mode(0o755);
        b.create(&layer_tmp)
            .map_err(|e| ImageError::io(format!("creating {}", layer_tmp.display()), e))?;

        let ex = crate::extract::extract(r, &layer_tmp, max)?;
        let d = File::open(&layer_tmp)
            .map_err(|e| ImageError::io(format!("opening {}", layer_tmp.display()), e))?;
        nix::unistd::syncfs(d.as_raw_fd())
            .map_err(|e| ImageError::io(format!("syncing {}", layer_tmp.display()), e.into()))?;
        drop(d);

        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let created = config::format_rfc3339(now.as_secs() as i64, now.subsec_nanos());
        let layer_id = format!("sha256:{}", ex.diff_hex);
        let comment = opts.message.clone().unwrap_or_default();
        let cfg = ConfigFile {
            architecture: config::host_architecture().to_string(),
            comment: comment.clone(),
            config: ContainerConfig::from_image_config(&image_config),
            created: created.clone(),
            history: vec![History {
                created,
                created_by: String::new(),
                comment: if comment.is_empty() {
                    "Imported from tarball".into()
                } else {
                    comment.clone()
                },
            }],
            os: "linux".into(),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![layer_id.clone()],
            },
        };
        let cfg_bytes = serde_json::to_vec(&cfg).map_err(|e| {
            ImageError::io("serialising the image config", std::io::Error::other(e))
        })?;
        let hex = hex::encode(Sha256::digest(&cfg_bytes));
        let id = format!("sha256:{hex}");

        let _l = self.lock()?;
        let layer_dir = self.layer_path(&ex.diff_hex);
        if !layer_dir.is_dir() {
            let meta = LayerMeta {
                diff_id: layer_id.clone(),
                size: ex.size,
            };
            let mb = serde_json::to_vec(&meta).map_err(|e| {
                ImageError::io("serialising layer metadata", std::io::Error::other(e))
            })?;
            write_atomic(&self.layer_meta_path(&ex.diff_hex), &mb)?;
            fs::rename(&layer_tmp, &layer_dir)
                .map_err(|e| ImageError::io(format!("renaming into {}", layer_dir.display()), e))?;
            fsync_dir(&self.root.join("layers"))?;
        }
        write_atomic(&self.config_path(&hex), &cfg_bytes)?;
        let mut repos = self.load_repos()?;
        if let Some(n) = &named {
            repos.set(n, &id);
            self.save_repos(&repos)?;
        }
        let image = self.load_image(&hex, &repos)?;
        drop(_l);
        if let Some(p) = guard.0.take() {
            let _ = fs::remove_dir_all(&p);
        }
        Ok(Imported {
            image,
            warnings: ex.warnings,
        })
    }

    /// All images, newest first.
    pub fn list(&self) -> Result<Vec<Image>, ImageError> {
        let repos = self.load_repos()?;
        let mut out = Vec::new();
        for hex in self.all_hexes()? {
            match self.load_image(&hex, &repos) {
                Ok(i) => out.push(i),
                // Deleted concurrently.
                Err(ImageError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| {
            b.created_unix
                .cmp(&a.created_unix)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// Resolves an image by full id (`sha256:<hex>` or bare hex), unique id
    /// prefix (≥ 1 hex char; [`ImageError::Ambiguous`] when several match), or
    /// `repo:tag` / `repo` (= `repo:latest`). A tag is preferred over an id
    /// prefix that looks the same, as in Docker.
    pub fn get(&self, reference: &str) -> Result<Image, ImageError> {
        let repos = self.load_repos()?;
        let (hex, _) = self.resolve(reference, &repos)?;
        self.load_image(&hex, &repos)
    }

    /// Tags the image `reference` as `repo:tag`; with `tag` `None` the tag in
    /// `repo` is used, else `latest`. Moves the tag if it pointed elsewhere.
    pub fn tag(&self, reference: &str, repo: &str, tag: Option<&str>) -> Result<(), ImageError> {
        let named = match tag {
            Some(t) if !t.is_empty() => {
                let repo = reference::parse_repo(repo)?;
                if !reference::valid_tag(t) {
                    return Err(ImageError::InvalidReference(format!("{t:?}: invalid tag")));
                }
                NamedTag {
                    repo,
                    tag: t.to_string(),
                }
            }
            _ => reference::parse_named(repo)?,
        };
        let _l = self.lock()?;
        let mut repos = self.load_repos()?;
        let (hex, _) = self.resolve(reference, &repos)?;
        repos.set(&named, &format!("sha256:{hex}"));
        self.save_repos(&repos)
    }

    /// Removes an image or a tag, with Docker `rmi` semantics.
    ///
    /// - By `repo:tag` when the image has other tags: only untags.
    /// - By the last tag, or by id/prefix: untags everything and deletes the
    ///   image — refused with [`ImageError::Conflict`] when `in_use(image id)`
    ///   and not `force`, and (by id) when the image has several tags and not
    ///   `force`.
    ///
    /// The layer is deleted too (reported as a second `Deleted`) unless another
    /// image shares it, a mount references it, or the image is in use (force):
    /// containers keep their lower layer.
    pub fn remove(
        &self,
        reference: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<Removed>, ImageError> {
        let _l = self.lock()?;
        let mut repos = self.load_repos()?;
        let (hex, how) = self.resolve(reference, &repos)?;
        let id = format!("sha256:{hex}");
        let tags = repos.tags_of(&id);
        let mut out = Vec::new();
        match how {
            Resolved::Tag(n) => {
                if tags.len() > 1 {
                    repos.remove(&n);
                    self.save_repos(&repos)?;
                    return Ok(vec![Removed::Untagged(n.full())]);
                }
                if !force && in_use(&id) {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to remove repository reference \"{}\" (must force) - container is using its referenced image {}",
                        n.full(),
                        short(&hex)
                    )));
                }
            }
            Resolved::Id => {
                if tags.len() > 1 && !force {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                        short(&hex)
                    )));
                }
                if !force && in_use(&id) {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to delete {} (must be forced) - image is being used by a container",
                        short(&hex)
                    )));
                }
            }
        }
        let used = in_use(&id);
        for t in &tags {
            let n = reference::parse_named(t)?;
            repos.remove(&n);
            out.push(Removed::Untagged(t.clone()));
        }
        if !tags.is_empty() {
            self.save_repos(&repos)?;
        }
        let cfg = self.load_config(&hex)?;
        let cp = self.config_path(&hex);
        fs::remove_file(&cp)
            .map_err(|e| ImageError::io(format!("removing {}", cp.display()), e))?;
        fsync_dir(&self.root.join("configs"))?;
        out.push(Removed::Deleted(id));

        if let Some(layer_id) = cfg.rootfs.diff_ids.first() {
            let lhex = hex_of(layer_id).to_string();
            if !used && !self.layer_shared(&lhex)? && reference::is_full_hex(&lhex) {
                let dir = self.layer_path(&lhex);
                if dir.is_dir() && !mentioned_in_mountinfo(&dir) {
                    self.delete_layer(&lhex)?;
                    out.push(Removed::Deleted(layer_id.clone()));
                }
            }
        }
        Ok(out)
    }

    /// Deletes layers that no image references any more (left behind by a
    /// forced removal of an in-use image), unless a mount references them or
    /// `keep(layer_dir)` says a container still uses them. Returns a
    /// `Deleted(layer id)` per removed layer.
    pub fn prune_layers(&self, keep: &dyn Fn(&Path) -> bool) -> Result<Vec<Removed>, ImageError> {
        let _l = self.lock()?;
        let dir = self.root.join("layers");
        let rd = fs::read_dir(&dir)
            .map_err(|e| ImageError::io(format!("reading {}", dir.display()), e))?;
        let mut out = Vec::new();
        for e in rd {
            let e = e.map_err(|e| ImageError::io(format!("reading {}", dir.display()), e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !reference::is_full_hex(&name) || !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = e.path();
            if self.layer_shared(&name)? || mentioned_in_mountinfo(&path) || keep(&path) {
                continue;
            }
            self.delete_layer(&name)?;
            out.push(Removed::Deleted(format!("sha256:{name}")));
        }
        Ok(out)
    }

    /// Removes `layers/<lhex>` (renamed into `tmp/` first, so a crash never
    /// leaves a half-deleted layer in place) and its metadata.
    fn delete_layer(&self, lhex: &str) -> Result<(), ImageError> {
        let dir = self.layer_path(lhex);
        let trash = self.root.join("tmp").join(tmp_name("rm"));
        fs::rename(&dir, &trash)
            .map_err(|e| ImageError::io(format!("removing {}", dir.display()), e))?;
        let _ = fs::remove_file(self.layer_meta_path(lhex));
        let _ = fsync_dir(&self.root.join("layers"));
        fs::remove_dir_all(&trash)
            .map_err(|e| ImageError::io(format!("removing {}", trash.display()), e))
    }

    /// Whether any remaining image uses the layer `lhex`.
    fn layer_shared(&self, lhex: &str) -> Result<bool, ImageError> {
        for h in self.all_hexes()? {
            if let Ok(c) = self.load_config(&h)
                && c.rootfs.diff_ids.iter().any(|d| hex_of(d) == lhex)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The directory of the image's (single) layer: the overlay lowerdir.
    pub fn layer_dir(&self, image: &Image) -> PathBuf {
        self.layer_path(hex_of(&image.layer_id))
    }
}
