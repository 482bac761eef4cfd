//! lookoutd: serves the Docker Engine API on a unix socket.

use std::sync::Arc;

use anyhow::{Context, Result};
use lookoutd::api::{self, Ctx};
use lookoutd::config::{Config, ConfigError, ListenAddr};
use lookoutd::engine::{Engine, EngineConfig};

fn main() {
    let cfg = match Config::from_args(std::env::args_os()) {
        Ok(c) => c,
        Err(ConfigError::Info(text)) => {
            print!("{text}");
            std::process::exit(0);
        }
        Err(ConfigError::Flags(msg)) => {
            eprint!("{msg}");
            std::process::exit(2);
        }
        Err(e) => {
            eprintln!("lookoutd: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = run(cfg) {
        eprintln!("lookoutd: {e:#}");
        std::process::exit(1);
    }
}

fn run(cfg: Config) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let r = rt.block_on(serve(cfg));
    // Blocking readers (followed logs) end when their client goes; do not
    // wait for them past a short grace.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    r
}

async fn serve(cfg: Config) -> Result<()> {
    // Bind first: a second daemon on the same socket stops here, before it
    // touches the data root.
    let mut listeners = Vec::new();
    for h in &cfg.hosts {
        let ListenAddr::Unix(path) = h;
        let l = api::bind_unix(path, cfg.group.as_deref())?;
        listeners.push((path.clone(), l));
    }
    let engine = match Engine::open(EngineConfig {
        data_root: cfg.data_root.clone(),
        cgroup_parent: cfg.cgroup_parent.clone(),
        log_driver: cfg.log_driver.clone(),
        log_opts: cfg.log_opts.clone(),
        debug: cfg.debug,
    }) {
        Ok(e) => e,
        Err(e) => {
            for (p, _) in &listeners {
                let _ = std::fs::remove_file(p);
            }
            return Err(e)
                .with_context(|| format!("opening the data root {}", cfg.data_root.display()));
        }
    };
    engine.restore().await;
    let ctx = Arc::new(Ctx {
        engine,
        debug: cfg.debug,
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let mut paths = Vec::new();
    for (path, l) in listeners {
        eprintln!("lookoutd: API listening on unix://{}", path.display());
        paths.push(path);
        tasks.push(tokio::spawn(api::serve(l, ctx.clone(), stop_rx.clone())));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("lookoutd: shutting down; containers keep running");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}
