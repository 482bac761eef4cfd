//! lookout-bench: measures lookout beside the floor (and the peers where
//! they are installed) in one run, and prints ratios.
//!
//! `lookout-bench logs` runs the log-pipeline workloads; each measurement runs
//! in a fresh child process so its peak RSS is its own.

mod runtime;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use lookout_abi::{LK_STREAM_STDOUT, LkLogRecord};
use lookout_core::logs::options::Mode;
use lookout_core::logs::pipeline::{DriverSpec, Pipeline, Sink};
use lookout_core::logs::setup::{self, DriverRequest};
use lookout_core::plugin::{ContainerInfo, PluginPath, WriteOutcome};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "lookout benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The log pipeline workloads (a)–(d) and the latency check.
    Logs {
        /// Lines for workloads (a) and (b).
        #[arg(long, default_value_t = 1_000_000)]
        lines: u64,
        /// Scratch directory (default: a new dir under /tmp).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The log reader behind `logs`: a json-file log read whole, `tail 10`
    /// and `since`, beside `cat` and `tail` on the same file.
    Reader {
        /// Records in the log.
        #[arg(long, default_value_t = 1_000_000)]
        lines: u64,
        /// Scratch directory (default: a new dir under /tmp).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Container start-to-exit of `/bin/true`: the daemonless path beside
    /// the floor (unshare + chroot) and runc/crun where installed.
    Start {
        /// Timed runs of each.
        #[arg(long, default_value_t = 50)]
        runs: usize,
        /// The root filesystem.
        #[arg(long, default_value = "build/rootfs/busybox")]
        rootfs: PathBuf,
    },
    /// Memory of the shims of idle containers (PSS and RSS).
    ShimMem {
        /// Idle containers.
        #[arg(long, default_value_t = 10)]
        containers: usize,
        /// The root filesystem.
        #[arg(long, default_value = "build/rootfs/busybox")]
        rootfs: PathBuf,
    },
    /// Internal: one measurement, printed as a result line.
    #[command(hide = true)]
    One {
        #[arg(long)]
        workload: String,
        #[arg(long)]
        sink: String,
        #[arg(long)]
        lines: u64,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 0)]
        rate: u64,
    },
    /// Internal: writes a workload's bytes to stdout.
    #[command(hide = true)]
    Produce {
        #[arg(long)]
        workload: String,
        #[arg(long)]
        lines: u64,
        /// Lines per second (0: as fast as possible).
        #[arg(long, default_value_t = 0)]
        rate: u64,
    },
}

/// What one measurement reports.
#[derive(Debug, Default, Clone)]
struct Res {
    secs: f64,
    cpu_secs: f64,
    lines: u64,
    bytes: u64,
    ok: bool,
    p50: u64,
    p99: u64,
    p999: u64,
    rss_kb: u64,
    note: String,
}

impl Res {
    fn to_line(&self) -> String {
        format!(
            "RESULT {} {} {} {} {} {} {} {} {} {}",
            self.secs,
            self.cpu_secs,
            self.lines,
            self.bytes,
            self.ok as u8,
            self.p50,
            self.p99,
            self.p999,
            self.rss_kb,
            self.note.replace(' ', "_")
        )
    }
    fn parse(s: &str) -> Option<Res> {
        let l = s.lines().find(|l| l.starts_with("RESULT "))?;
        let f: Vec<&str> = l.split(' ').skip(1).collect();
        Some(Res {
            secs: f.first()?.parse().ok()?,
            cpu_secs: f.get(1)?.parse().ok()?,
            lines: f.get(2)?.parse().ok()?,
            bytes: f.get(3)?.parse().ok()?,
            ok: f.get(4)? == &"1",
            p50: f.get(5)?.parse().ok()?,
            p99: f.get(6)?.parse().ok()?,
            p999: f.get(7)?.parse().ok()?,
            rss_kb: f.get(8)?.parse().ok()?,
            note: f.get(9).map(|s| s.replace('_', " ")).unwrap_or_default(),
        })
    }
}

fn rusage() -> (f64, u64) {
    // SAFETY: getrusage fills the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_utime) + t(ru.ru_stime), ru.ru_maxrss as u64)
}

/// Bytes of a workload: (a)/(b) 100-byte lines, (c1) 64 KiB lines,
/// (c2) 10 MB without newline.
fn workload_bytes(w: &str, lines: u64) -> (Vec<u8>, u64) {
    match w {
        "a" | "b" | "d" => {
            let mut line = vec![b'x'; 99];
            line.push(b'\n');
            let mut v = Vec::with_capacity(100 * lines as usize);
            for i in 0..lines {
                let s = format!("{i:012}");
                let at = v.len();
                v.extend_from_slice(&line);
                v[at..at + 12].copy_from_slice(s.as_bytes());
            }
            (v, lines)
        }
        "c1" => {
            let mut line = vec![b'y'; 64 * 1024 - 1];
            line.push(b'\n');
            (line.repeat(1000), 1000)
        }
        "c2" => (vec![b'z'; 10_000_000], 1),
        _ => (Vec::new(), 0),
    }
}

/// `LOOKOUT_BENCH_VERBOSE=1`: the producer's lateness and the driver's
/// call times on stderr.
fn verbose() -> bool {
    std::env::var_os("LOOKOUT_BENCH_VERBOSE").is_some_and(|v| v == "1")
}

fn produce(w: &str, lines: u64, rate: u64) -> Result<()> {
    let (data, _) = workload_bytes(w, lines);
    let mut out = std::io::stdout().lock();
    if rate == 0 {
        for c in data.chunks(1 << 20) {
            out.write_all(c)?;
        }
        return Ok(());
    }
    // Paced: a burst every millisecond.
    let per_tick = (rate / 1000).max(1) as usize * 100;
    let start = Instant::now();
    // How late the producer itself was (a late tick writes two bursts at
    // once, and their records wait behind each other): reported on stderr.
    let (mut late, mut worst) = (0u64, Duration::ZERO);
    for (i, c) in data.chunks(per_tick).enumerate() {
        let due = start + Duration::from_millis(i as u64);
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let lag = Instant::now().saturating_duration_since(due);
        if lag > Duration::from_millis(1) {
            late += 1;
        }
        worst = worst.max(lag);
        out.write_all(c)?;
        out.flush()?;
    }
    if verbose() {
        eprintln!(
            "producer: {late} ticks over 1 ms late, worst {} µs",
            worst.as_micros()
        );
    }
    Ok(())
}

fn plugin_path() -> PluginPath {
    let exe = std::env::current_exe().unwrap_or_default();
    let bindir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    PluginPath::new(vec![bindir.clone(), bindir.join("deps")])
}

/// The producer command of a workload: busybox `yes | head` for (a), this
/// binary for the others.
fn producer_cmd(w: &str, lines: u64, rate: u64) -> Result<Command> {
    if w == "a" {
        let bb = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .context("workload (a) needs busybox (apt-get install busybox-static)")?;
        let line = "x".repeat(99);
        let mut c = Command::new(bb);
        c.args([
            "sh",
            "-c",
            &format!("{bb} yes {line} | {bb} head -n {lines}"),
        ]);
        return Ok(c);
    }
    let mut c = Command::new(std::env::current_exe()?);
    c.args([
        "produce",
        "--workload",
        w,
        "--lines",
        &lines.to_string(),
        "--rate",
        &rate.to_string(),
    ]);
    Ok(c)
}

/// A sink that only counts: the pipeline without any plugin work.
struct NullSink;
impl Sink for NullSink {
    fn write(&mut self, _recs: &[LkLogRecord]) -> WriteOutcome {
        WriteOutcome::Ok
    }
    fn flush(&mut self) -> Result<(), String> {
        Ok(())
    }
    fn stop(self: Box<Self>) -> Result<(), String> {
        Ok(())
    }
}

fn one(w: &str, sink: &str, lines: u64, dir: &Path, rate: u64) -> Result<Res> {
    let expect_lines = match w {
        "c1" => 1000,
        "c2" => 1,
        _ => lines,
    };
    std::fs::create_dir_all(dir)?;
    let t0 = Instant::now();
    let (cpu0, _) = rusage();
    let mut res = Res::default();
    match sink {
        "floor" => {
            // producer | cat > file
            let out = dir.join("floor.out");
            let mut prod = producer_cmd(w, lines, rate)?
                .stdout(Stdio::piped())
                .spawn()?;
            let mut cat = Command::new("cat")
                .stdin(prod.stdout.take().context("pipe")?)
                .stdout(std::fs::File::create(&out)?)
                .spawn()?;
            prod.wait()?;
            cat.wait()?;
            res.secs = t0.elapsed().as_secs_f64();
            res.rss_kb = rusage().1;
            res.bytes = std::fs::metadata(&out)?.len();
            res.lines = count_lines(&out)?;
            res.ok = if w == "c2" {
                res.bytes == 10_000_000
            } else {
                res.lines == expect_lines
            };
        }
        "json-file" | "null" | "memory" | "memory-plugin" => {
            let specs = match sink {
                "json-file" => {
                    let meta = ContainerInfo {
                        id: "b".repeat(64),
                        log_dir: dir.to_string_lossy().into_owned(),
                        ..Default::default()
                    };
                    let (_, specs) = setup::open(
                        &plugin_path(),
                        &[DriverRequest::new("json-file", &[])],
                        &meta,
                    )?;
                    specs
                }
                "memory-plugin" => {
                    let meta = ContainerInfo {
                        id: "c".repeat(64),
                        log_dir: dir.to_string_lossy().into_owned(),
                        ..Default::default()
                    };
                    setup::open(
                        &plugin_path(),
                        &[DriverRequest::new("test-sink", &[])],
                        &meta,
                    )?
                    .1
                }
                _ => vec![DriverSpec {
                    name: "null".into(),
                    mode: Mode::Blocking,
                    sink: Box::new(NullSink),
                }],
            };
            let p = Pipeline::start(specs, 16 * 1024)?;
            if w == "d" {
                // From memory: no process, no disk.
                let (data, _) = workload_bytes("d", lines);
                let t = Instant::now();
                let (c0, _) = rusage();
                let mut sp = p.splitter(LK_STREAM_STDOUT);
                p.submit(&mut sp, &data, true);
                let rep = p.close();
                res.secs = t.elapsed().as_secs_f64();
                res.cpu_secs = rusage().0 - c0;
                fill(&mut res, &rep, expect_lines, data.len() as u64);
                res.note = format!(
                    "{:.2} M lines per CPU-second",
                    lines as f64 / res.cpu_secs / 1e6
                );
            } else {
                let mut prod = producer_cmd(w, lines, rate)?
                    .stdout(Stdio::piped())
                    .spawn()?;
                let fd: OwnedFd = prod.stdout.take().context("pipe")?.into();
                p.pump(vec![(fd, LK_STREAM_STDOUT)])?;
                prod.wait()?;
                let rep = p.close();
                res.secs = t0.elapsed().as_secs_f64();
                res.rss_kb = rusage().1;
                let bytes = rep.bytes;
                fill(&mut res, &rep, expect_lines, bytes);
                if w == "c1" || w == "c2" {
                    // Long lines become several records: check bytes only.
                    let want = if w == "c1" {
                        1000 * 64 * 1024
                    } else {
                        10_000_000
                    };
                    res.ok = rep.bytes == want
                        && rep
                            .drivers
                            .iter()
                            .all(|d| d.delivered_bytes == want && d.dropped == 0);
                }
                if sink == "json-file" {
                    let f = dir.join(format!("{}-json.log", "b".repeat(64)));
                    let n = count_lines(&f)?;
                    res.note = format!("{n} json records on disk");
                    res.ok &= n == rep.drivers[0].delivered;
                }
            }
        }
        other => bail!("unknown sink {other}"),
    }
    let (cpu1, rss) = rusage();
    if res.cpu_secs == 0.0 {
        res.cpu_secs = cpu1 - cpu0;
    }
    if res.rss_kb == 0 {
        res.rss_kb = rss;
    }
    Ok(res)
}

fn fill(res: &mut Res, rep: &lookout_core::logs::pipeline::PipelineReport, lines: u64, bytes: u64) {
    let d = &rep.drivers[0];
    if verbose() {
        eprintln!(
            "driver {}: {} calls, call time p50/p99/p99.9/max {}/{}/{}/{} µs",
            d.name,
            d.calls,
            d.call_ns[0] / 1000,
            d.call_ns[1] / 1000,
            d.call_ns[2] / 1000,
            d.call_ns[3] / 1000
        );
    }
    res.lines = d.delivered;
    res.bytes = d.delivered_bytes;
    res.ok = d.delivered == rep.records && d.dropped == 0 && d.delivered_bytes == bytes;
    if lines > 0 && rep.records != lines {
        res.ok = false;
    }
    res.p50 = d.latency_ns[0];
    res.p99 = d.latency_ns[1];
    res.p999 = d.latency_ns[2];
}

/// Counts newlines in a file without holding it in memory.
fn count_lines(p: &Path) -> Result<u64> {
    use std::io::Read;
    let mut f = std::fs::File::open(p)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let r = f.read(&mut buf)?;
        if r == 0 {
            return Ok(n);
        }
        n += buf[..r].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

fn run_child(w: &str, sink: &str, lines: u64, dir: &Path, rate: u64) -> Result<Res> {
    let sub = dir.join(format!("{w}-{sink}"));
    let _ = std::fs::remove_dir_all(&sub);
    // Every measurement starts with no dirty page cache left by the one
    // before: the kernel's writeback of earlier workloads' hundreds of MB
    // would otherwise compete with this one (floors included).
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let out = Command::new(std::env::current_exe()?)
        .args([
            "one",
            "--workload",
            w,
            "--sink",
            sink,
            "--lines",
            &lines.to_string(),
            "--dir",
            sub.to_str().context("utf-8 dir")?,
            "--rate",
            &rate.to_string(),
        ])
        .output()?;
    let _ = std::fs::remove_dir_all(&sub);
    let s = String::from_utf8_lossy(&out.stdout);
    Res::parse(&s).with_context(|| {
        format!(
            "{w}/{sink} failed: {}{}",
            s,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn us(ns: u64) -> String {
    format!("{:.0}", ns as f64 / 1000.0)
}

fn logs(lines: u64, dir: Option<PathBuf>) -> Result<()> {
    let dir = match dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("lookout-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    println!(
        "lookout-bench logs: {lines} lines, scratch {}, {} CPUs",
        dir.display(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "| workload | sink | lines/s | MB/s | ratio to floor | latency p50/p99/p99.9 µs | peak RSS MB | all bytes arrived | note |"
    );
    println!("|---|---|---:|---:|---:|---|---:|---|---|");
    let row = |w: &str, name: &str, sink: &str, r: &Res, floor: Option<&Res>| {
        let rate = r.lines as f64 / r.secs;
        let mbs = r.bytes as f64 / r.secs / 1e6;
        let ratio = floor
            .map(|f| format!("{:.2}", f.secs / r.secs))
            .unwrap_or_else(|| "1.00".into());
        let lat = if sink == "floor" {
            "-".to_string()
        } else {
            format!("{}/{}/{}", us(r.p50), us(r.p99), us(r.p999))
        };
        println!(
            "| {w} {name} | {sink} | {:.2} M | {:.0} | {ratio} | {lat} | {:.1} | {} | {} |",
            rate / 1e6,
            mbs,
            r.rss_kb as f64 / 1024.0,
            if r.ok { "yes" } else { "NO" },
            r.note
        );
    };
    let mut max_rate = 0.0f64;
    for (w, name, n) in [
        ("a", "busybox yes|head, 100 B lines", lines),
        ("b", "fast producer, 100 B lines", lines),
        ("c1", "1000 x 64 KiB lines", 1000),
        ("c2", "10 MB, no newline", 1),
    ] {
        let floor = run_child(w, "floor", n, &dir, 0)?;
        row(w, name, "floor", &floor, None);
        let lk = run_child(w, "json-file", n, &dir, 0)?;
        row(w, name, "json-file", &lk, Some(&floor));
        if w == "b" {
            max_rate = lk.lines as f64 / lk.secs;
        }
    }
    let d = run_child("d", "memory", lines * 5, &dir, 0)?;
    row("d", "from memory", "null sink", &d, None);
    let d2 = run_child("d", "memory-plugin", lines * 5, &dir, 0)?;
    row("d", "from memory", "counting plugin (ABI)", &d2, None);
    // Latency at half the maximum end-to-end rate, paced producer.
    let half = (max_rate / 2.0) as u64;
    let n = (half * 3).max(100_000);
    let l = run_child("b", "json-file", n, &dir, half)?;
    row(
        "b",
        &format!("paced at {:.2} M lines/s (half of max)", half as f64 / 1e6),
        "json-file",
        &l,
        None,
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Best of three wall-clock times of `f`, which returns a count to check.
fn best_of(mut f: impl FnMut() -> Result<u64>, want: u64) -> Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let n = f()?;
        best = best.min(t.elapsed());
        if n != want {
            bail!("expected {want} records, got {n}");
        }
    }
    Ok(best)
}

fn reader(lines: u64, dir: Option<PathBuf>) -> Result<()> {
    use lookout_core::logs::reader::{LogReader, ReadOptions, StopSignal};
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("lookout-bench-reader-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir)?;
    let id = "e".repeat(64);
    // The log, written by the real pipeline and json-file plugin.
    let meta = ContainerInfo {
        id: id.clone(),
        log_dir: dir.to_string_lossy().into_owned(),
        ..Default::default()
    };
    let (_, specs) = setup::open(
        &plugin_path(),
        &[DriverRequest::new("json-file", &[])],
        &meta,
    )?;
    let p = Pipeline::start(specs, 16 * 1024)?;
    let (data, _) = workload_bytes("d", lines);
    let mut sp = p.splitter(LK_STREAM_STDOUT);
    p.submit(&mut sp, &data, true);
    drop(data);
    let rep = p.close();
    if rep.drivers[0].delivered != lines {
        bail!("writing the log lost records: {:?}", rep.drivers[0]);
    }
    let file = dir.join(format!("{id}-json.log"));
    let size = std::fs::metadata(&file)?.len();
    // The since point: the time of the record 1000 from the end.
    let mut times = Vec::new();
    let stop = StopSignal::new();
    let rd = LogReader::new(&dir, &id);
    rd.read(
        &ReadOptions {
            tail: Some(1000),
            ..Default::default()
        },
        &stop,
        |e| {
            times.push(e.time_unix_nano);
            true
        },
    )?;
    let since = *times.first().context("empty log")?;
    // Records share their read's time, so more than 1000 may qualify.
    let mut want_since = 0u64;
    rd.read(&ReadOptions::default(), &stop, |e| {
        want_since += u64::from(e.time_unix_nano >= since);
        true
    })?;
    let count = |opts: ReadOptions| -> Result<u64> {
        let mut n = 0u64;
        rd.read(&opts, &stop, |_| {
            n += 1;
            true
        })?;
        Ok(n)
    };
    let sh = |cmd: &str| -> Result<u64> {
        let st = Command::new("sh").args(["-c", cmd]).status()?;
        if !st.success() {
            bail!("{cmd} failed");
        }
        Ok(0)
    };
    let f = file.display().to_string();
    // Warm the page cache.
    sh(&format!("cat {f} > /dev/null"))?;
    let cat = best_of(|| sh(&format!("cat {f} > /dev/null")), 0)?;
    let tail = best_of(|| sh(&format!("tail -n 10 {f} > /dev/null")), 0)?;
    let whole = best_of(|| count(ReadOptions::default()), lines)?;
    let tail10 = best_of(
        || {
            count(ReadOptions {
                tail: Some(10),
                ..Default::default()
            })
        },
        10,
    )?;
    let since_t = best_of(
        || {
            count(ReadOptions {
                since: Some(since),
                ..Default::default()
            })
        },
        want_since,
    )?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "lookout-bench reader: {lines} records, {:.0} MB json-file, best of 3, page cache warm",
        size as f64 / 1e6
    );
    println!("| read | floor | floor ms | lookout reader ms | ratio (reader / floor) |");
    println!("|---|---|---:|---:|---:|");
    println!(
        "| whole log | cat > /dev/null | {:.1} | {:.1} | {:.2} |",
        ms(cat),
        ms(whole),
        ms(whole) / ms(cat)
    );
    println!(
        "| tail 10 | tail -n 10 | {:.2} | {:.2} | {:.2} |",
        ms(tail),
        ms(tail10),
        ms(tail10) / ms(tail)
    );
    println!(
        "| since (last {want_since}) | – | – | {:.1} | – |",
        ms(since_t)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Logs { lines, dir } => logs(lines, dir),
        Cmd::Reader { lines, dir } => reader(lines, dir),
        Cmd::Start { runs, rootfs } => runtime::start(runs, &rootfs),
        Cmd::ShimMem { containers, rootfs } => runtime::shim_mem(containers, &rootfs),
        Cmd::One {
            workload,
            sink,
            lines,
            dir,
            rate,
        } => {
            let r = one(&workload, &sink, lines, &dir, rate)?;
            println!("{}", r.to_line());
            Ok(())
        }
        Cmd::Produce {
            workload,
            lines,
            rate,
        } => produce(&workload, lines, rate),
    }
}
