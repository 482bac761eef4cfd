//! The container engine: the container store (names, ids, persisted
//! records), the lifecycle (create, start, stop, kill, wait, remove), exit
//! observation through each container's shim, and live restore.
//!
//! The engine never runs a container itself: it writes the container's
//! [`ContainerSpec`](lookout_core::spec::ContainerSpec) into its state
//! directory and starts a `lookout-shim`, which runs the container, its log
//! pipeline and reports the exit in `exit.json`.

pub mod create;
pub mod events;
mod lifecycle;
pub mod names;
pub mod shim;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use lookout_cgroups::Layout;
use lookout_image::{ImageError, ImageStore, RootfsMount};
use tokio::sync::watch;

pub use lifecycle::{CreateRequest, WaitCondition, WaitResult, parse_signal};
pub use shim::ShimError;
pub use store::{Record, StateRecord, Status};

/// What the engine needs from the daemon's configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The data root.
    pub data_root: PathBuf,
    /// Parent cgroup of every container's cgroup.
    pub cgroup_parent: String,
    /// Default log driver.
    pub log_driver: String,
    /// Default log options.
    pub log_opts: BTreeMap<String, String>,
    /// Debug output.
    pub debug: bool,
}

/// Engine errors; each maps to the HTTP status dockerd uses.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No container by that name or id (404).
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// The request conflicts with the container's state (409).
    #[error("{0}")]
    Conflict(String),
    /// A bad parameter (400).
    #[error("{0}")]
    InvalidParameter(String),
    /// Nothing to do: already started / already stopped (304).
    #[error("not modified")]
    NotModified,
    /// Not supported (501).
    #[error("{0}")]
    NotImplemented(String),
    /// From the image store.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The container could not be started (400 for a command that cannot be
    /// run, else 500).
    #[error("{message}")]
    StartFailed {
        /// The runtime's message.
        message: String,
        /// The HTTP status.
        status: u16,
    },
    /// From a shim.
    #[error(transparent)]
    Shim(#[from] ShimError),
    /// Anything else (500).
    #[error("{0}")]
    Internal(String),
}

impl EngineError {
    /// The HTTP status of the error.
    pub fn status(&self) -> u16 {
        match self {
            EngineError::NoSuchContainer(_) => 404,
            EngineError::Conflict(_) => 409,
            EngineError::InvalidParameter(_) => 400,
            EngineError::NotModified => 304,
            EngineError::NotImplemented(_) => 501,
            EngineError::Image(e) => e.status_code(),
            EngineError::StartFailed { status, .. } => *status,
            EngineError::Shim(_) | EngineError::Internal(_) => 500,
        }
    }

    fn io(context: impl std::fmt::Display, e: std::io::Error) -> EngineError {
        EngineError::Internal(format!("{context}: {e}"))
    }
}

/// What waiters watch on a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Events {
    /// Incremented at every start.
    pub starts: u64,
    /// Incremented at every exit.
    pub exits: u64,
    /// Whether PID 1 runs.
    pub running: bool,
    /// Exit code of the last exit.
    pub exit_code: i64,
    /// Error of the last run, if any.
    pub error: Option<String>,
    /// Set once the container is removed.
    pub removed: bool,
}

/// One container.
pub struct Container {
    /// Full id.
    pub id: String,
    /// Its state directory.
    pub dir: PathBuf,
    rec: Mutex<Record>,
    events: watch::Sender<Events>,
    op: tokio::sync::Mutex<()>,
    mount: Mutex<Option<RootfsMount>>,
    attachers: Arc<AtomicUsize>,
    /// The next restart delay of the restart policy.
    restart_delay: Mutex<std::time::Duration>,
}

/// Counts an attach in progress while alive (auto-removal waits for it).
#[derive(Debug)]
pub struct AttachGuard(Arc<AtomicUsize>);

impl Drop for AttachGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container").field("id", &self.id).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Container {
    fn new(rec: Record, dir: PathBuf) -> Container {
        let running = rec.state.status == Status::Running;
        let (events, _) = watch::channel(Events {
            running,
            exit_code: rec.state.exit_code,
            ..Events::default()
        });
        Container {
            id: rec.id.clone(),
            dir,
            rec: Mutex::new(rec),
            events,
            op: tokio::sync::Mutex::new(()),
            mount: Mutex::new(None),
            attachers: Arc::new(AtomicUsize::new(0)),
            restart_delay: Mutex::new(lifecycle::RESTART_DELAY_MIN),
        }
    }

    /// A copy of the record.
    pub fn record(&self) -> Record {
        lock(&self.rec).clone()
    }

    /// Changes the record and persists it.
    fn update(&self, f: impl FnOnce(&mut Record)) -> Result<(), EngineError> {
        let mut r = lock(&self.rec);
        f(&mut r);
        r.save(&self.dir)
            .map_err(|e| EngineError::io(format!("saving the state of container {}", self.id), e))
    }

    /// Watches the container's starts, exits and removal.
    pub fn subscribe(&self) -> watch::Receiver<Events> {
        self.events.subscribe()
    }

    /// Whether PID 1 runs.
    pub fn is_running(&self) -> bool {
        lock(&self.rec).state.status == Status::Running
    }

    /// Registers an attach in progress until the guard is dropped.
    pub fn attach_guard(&self) -> AttachGuard {
        self.attachers.fetch_add(1, Ordering::SeqCst);
        AttachGuard(self.attachers.clone())
    }

    /// Attaches in progress.
    pub fn attachers(&self) -> usize {
        self.attachers.load(Ordering::SeqCst)
    }

    /// The name without its leading `/`.
    pub fn short_name(&self) -> String {
        lock(&self.rec).name.trim_start_matches('/').to_string()
    }
}

#[derive(Default)]
struct Containers {
    by_id: HashMap<String, Arc<Container>>,
    names: HashMap<String, String>,
}

/// The engine.
pub struct Engine {
    cfg: EngineConfig,
    images: Arc<ImageStore>,
    containers: Mutex<Containers>,
    layout: Option<Layout>,
    id: String,
    events: events::EventBus,
    /// Held for the engine's life: one daemon per data root.
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("data_root", &self.cfg.data_root)
            .finish()
    }
}

/// 32 random bytes as 64 hex digits.
pub fn random_hex64() -> String {
    let mut b = [0u8; 32];
    let mut got = 0;
    while got < b.len() {
        // SAFETY: getrandom writes at most the given length into the buffer.
        let n = unsafe { libc::getrandom(b[got..].as_mut_ptr().cast(), b.len() - got, 0) };
        if n > 0 {
            got += n as usize;
        }
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Engine {
    /// Opens the engine on the data root: creates its directories, opens the
    /// image store and loads every container record. Call
    /// [`Engine::restore`] next, inside the runtime, to re-adopt running
    /// containers.
    pub fn open(cfg: EngineConfig) -> Result<Arc<Engine>, EngineError> {
        let root = &cfg.data_root;
        for d in [root.clone(), root.join("containers"), root.join("plugins")] {
            std::fs::create_dir_all(&d)
                .map_err(|e| EngineError::io(format!("creating {}", d.display()), e))?;
        }
        let lock_path = root.join("lookoutd.lock");
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| EngineError::io(format!("opening {}", lock_path.display()), e))?;
        let lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| {
                EngineError::Internal(format!(
                    "the data root {} is in use by another lookoutd ({}: {e})",
                    root.display(),
                    lock_path.display()
                ))
            })?;
        let images = Arc::new(ImageStore::open(&root.join("image"))?);
        let id_file = root.join("engine-id");
        let id = match std::fs::read_to_string(&id_file) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
            _ => {
                let h = random_hex64();
                let id = format!(
                    "{}-{}-{}-{}-{}",
                    &h[0..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..32]
                );
                store::write_atomic(&id_file, id.as_bytes())
                    .map_err(|e| EngineError::io(format!("writing {}", id_file.display()), e))?;
                id
            }
        };
        let layout = Layout::detect().ok();
        let engine = Engine {
            cfg,
            images,
            containers: Mutex::new(Containers::default()),
            layout,
            id,
            events: events::EventBus::new(),
            _lock: lock,
        };
        engine.load()?;
        Ok(Arc::new(engine))
    }

    fn load(&self) -> Result<(), EngineError> {
        let dir = self.cfg.data_root.join("containers");
        let rd = std::fs::read_dir(&dir)
            .map_err(|e| EngineError::io(format!("reading {}", dir.display()), e))?;
        let mut cs = lock(&self.containers);
        for ent in rd.flatten() {
            let p = ent.path();
            if !p.is_dir() {
                continue;
            }
            match Record::load(&p) {
                Ok(r) => {
                    cs.names.insert(r.name.clone(), r.id.clone());
                    cs.by_id
                        .insert(r.id.clone(), Arc::new(Container::new(r, p)));
                }
                Err(e) => eprintln!(
                    "lookoutd: skipping container directory {}: {e}",
                    p.display()
                ),
            }
        }
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The image store.
    pub fn images(&self) -> &Arc<ImageStore> {
        &self.images
    }

    /// The host's cgroup layout, if it could be detected.
    pub fn layout(&self) -> Option<&Layout> {
        self.layout.as_ref()
    }

    /// The engine's persistent id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The event bus.
    pub fn events(&self) -> &events::EventBus {
        &self.events
    }

    /// Publishes a container event (attributes: name, image, labels and
    /// `extra`).
    pub fn container_event(&self, rec: &Record, action: &str, extra: &[(&str, String)]) {
        let mut attrs: BTreeMap<String, String> = rec
            .config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        attrs.insert("name".into(), rec.name.trim_start_matches('/').to_string());
        attrs.insert("image".into(), rec.image_ref.clone());
        for (k, v) in extra {
            attrs.insert((*k).to_string(), v.clone());
        }
        let mut e = events::Event::new("container", action, rec.id.clone(), attrs);
        e.from = Some(rec.image_ref.clone());
        self.events.publish(e);
    }

    /// Publishes an image event.
    pub fn image_event(&self, action: &str, id: &str, name: &str) {
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), name.to_string());
        self.events
            .publish(events::Event::new("image", action, id.to_string(), attrs));
    }

    /// The directory searched first for plugins.
    pub fn plugin_dir(&self) -> PathBuf {
        self.cfg.data_root.join("plugins")
    }

    /// Every container.
    pub fn list(&self) -> Vec<Arc<Container>> {
        lock(&self.containers).by_id.values().cloned().collect()
    }

    /// Finds a container by full id, name (with or without `/`) or unique id
    /// prefix.
    pub fn get(&self, key: &str) -> Result<Arc<Container>, EngineError> {
        let cs = lock(&self.containers);
        if key.is_empty() {
            return Err(EngineError::NoSuchContainer(key.to_string()));
        }
        if let Some(c) = cs.by_id.get(key) {
            return Ok(c.clone());
        }
        let name = if key.starts_with('/') {
            key.to_string()
        } else {
            format!("/{key}")
        };
        if let Some(id) = cs.names.get(&name)
            && let Some(c) = cs.by_id.get(id)
        {
            return Ok(c.clone());
        }
        let mut found = cs.by_id.iter().filter(|(id, _)| id.starts_with(key));
        match (found.next(), found.next()) {
            (Some((_, c)), None) => Ok(c.clone()),
            (Some(_), Some(_)) => Err(EngineError::InvalidParameter(format!(
                "multiple IDs found with provided prefix: {key}"
            ))),
            _ => Err(EngineError::NoSuchContainer(key.to_string())),
        }
    }

    /// Counts of containers: (running, paused, stopped).
    pub fn counts(&self) -> (usize, usize, usize) {
        let cs = lock(&self.containers);
        let running = cs.by_id.values().filter(|c| c.is_running()).count();
        (running, 0, cs.by_id.len() - running)
    }

    /// Image ids used by containers (for `rmi`).
    pub fn images_in_use(&self) -> HashMap<String, String> {
        lock(&self.containers)
            .by_id
            .values()
            .map(|c| (c.record().image_id, c.id.clone()))
            .collect()
    }

    fn dir_of(&self, id: &str) -> PathBuf {
        self.cfg.data_root.join("containers").join(id)
    }

    /// Whether `path` is a mount point.
    fn is_mounted(path: &Path) -> bool {
        RootfsMount::is_mounted(path)
    }
}
