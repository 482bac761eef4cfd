//! Following: keep reading the file being written, and move to its
//! successor when it is rotated.
//!
//! The open handle survives rotation (the renamed inode still holds the
//! writer's last records) and compression (an unlinked inode stays
//! readable). Once the current path names another inode, the writer is done
//! with ours, so it is drained to its end; the successor is then found by
//! locating our file in a fresh listing (by inode, or, once compressed, by
//! content) and taking the next newer one. Waiting is inotify on the
//! directory plus the stop signal's wake-up socket; without inotify, a
//! 50 ms poll.

use std::io::{self, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::files::{self, Identity, Lines, LogPaths, OpenLog};
use super::{
    CANCELLED, Emitter, FINISHED, Flow, LogEntry, ReadError, ReadWarning, StopSignal, io_err,
};

/// A plain file being read, with its incomplete last line held back.
#[derive(Debug)]
pub(crate) struct Live {
    pub log: OpenLog,
    /// Positioned where the file's own offset is.
    pub lines: Lines,
}

/// Where following stands.
#[derive(Debug)]
pub(crate) enum Cursor {
    /// Nothing read yet: start with the oldest file that appears.
    Start,
    /// Reading this file.
    Live(Live),
    /// This file is read to its end; next comes its successor.
    Done(Identity),
}

/// Waits for something to happen in the log directory or to the signal.
pub(crate) struct Waiter {
    inotify: Option<Inotify>,
}

const SAFETY_TIMEOUT_MS: u16 = 500;
const POLL_FALLBACK_MS: u16 = 50;

impl Waiter {
    pub fn new(dir: &Path) -> Waiter {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .and_then(|i| {
                let flags = AddWatchFlags::IN_MODIFY
                    | AddWatchFlags::IN_CREATE
                    | AddWatchFlags::IN_MOVED_FROM
                    | AddWatchFlags::IN_MOVED_TO
                    | AddWatchFlags::IN_DELETE
                    | AddWatchFlags::IN_CLOSE_WRITE;
                i.add_watch(dir, flags)?;
                Ok(i)
            })
            .ok();
        Waiter { inotify }
    }

    /// Blocks until the directory changes, the signal fires or a timeout
    /// passes (500 ms with inotify as a safety net, 50 ms without), then
    /// drops the queued events: the caller re-checks everything anyway.
    fn wait(&mut self, stop: &StopSignal) {
        let mut fds = Vec::with_capacity(2);
        if let Some(i) = &self.inotify {
            fds.push(PollFd::new(i.as_fd(), PollFlags::POLLIN));
        }
        let wake = stop.wake_fd();
        if let Some(w) = wake {
            fds.push(PollFd::new(w, PollFlags::POLLIN));
        }
        let ms = if self.inotify.is_some() {
            SAFETY_TIMEOUT_MS
        } else {
            POLL_FALLBACK_MS
        };
        if fds.is_empty() {
            std::thread::sleep(Duration::from_millis(u64::from(ms)));
        } else {
            let _ = poll(&mut fds, PollTimeout::from(ms));
        }
        drop(fds);
        if let Some(i) = &self.inotify {
            while matches!(i.read_events(), Ok(ev) if !ev.is_empty()) {}
        }
    }
}

/// What comes after the file we finished.
enum Next {
    Open { log: OpenLog, missed: bool },
    NotYet,
}

/// Finds and opens the file following `cursor` (`Start` or `Done`), making
/// sure no rotation happened between looking and opening.
fn next_file(paths: &LogPaths, cursor: &Cursor) -> io::Result<Next> {
    for attempt in 0..200 {
        if attempt > 4 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let listing = paths.list()?;
        let (below, missed) = match cursor {
            Cursor::Done(id) => match id.locate(paths, &listing)? {
                Some(k) => (Some(k), false),
                None => (None, true),
            },
            _ => (None, false),
        };
        let Some(entry) = listing.next_newer(below) else {
            if paths.list()? == listing {
                return Ok(Next::NotYet);
            }
            continue;
        };
        let Some(log) = files::open_entry(paths, entry)? else {
            continue;
        };
        if paths.list()? != listing {
            continue;
        }
        return Ok(Next::Open {
            log,
            missed: missed && !listing.entries.is_empty(),
        });
    }
    Ok(Next::NotYet)
}

/// Handles a file that got shorter than what was read (json-file with
/// max-file=1 truncates instead of rotating; a failed append is cut back):
/// restarts at the last complete line if it is still there, else at the
/// beginning. Returns whether the file was cut to before that line (records
/// written and cut between two looks are lost).
fn shrunk(live: &mut Live) -> io::Result<bool> {
    let len = live.log.file.metadata()?.len();
    let done = live.lines.offset();
    if len >= done + live.lines.pending().len() as u64 {
        return Ok(false);
    }
    let restart = if len >= done { done } else { 0 };
    (&live.log.file).seek(SeekFrom::Start(restart))?;
    live.lines = Lines::new(restart);
    Ok(restart < done)
}

/// Whether the current path still names `ino`.
fn still_current(paths: &LogPaths, ino: u64) -> io::Result<bool> {
    match std::fs::metadata(paths.current()) {
        Ok(md) => Ok(md.ino() == ino),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Follows from `cursor` until the signal, the sink or `until` ends it.
pub(crate) fn run<F>(
    paths: &LogPaths,
    mut cursor: Cursor,
    em: &mut Emitter<F>,
    stop: &StopSignal,
    waiter: &mut Waiter,
) -> Result<(), ReadError>
where
    F: FnMut(&LogEntry<'_>) -> bool,
{
    loop {
        // Read the state before reading the files: after `finish`, one more
        // pass drains everything the writer wrote.
        let state = stop.state();
        if state == CANCELLED {
            return Ok(());
        }
        let finishing = state == FINISHED;
        cursor = match cursor {
            Cursor::Live(mut live) => {
                let path = live.log.path.clone();
                let pump = |em: &mut Emitter<F>, live: &mut Live| {
                    em.pump(&mut live.lines, &mut &live.log.file, &live.log.path, stop)
                        .map_err(|e| io_err(&live.log.path, e))
                };
                if pump(em, &mut live)? == Flow::Stop {
                    return Ok(());
                }
                if shrunk(&mut live).map_err(|e| io_err(&path, e))? {
                    em.warn(ReadWarning::FileTruncated { path });
                    Cursor::Live(live)
                } else if still_current(paths, live.log.ino).map_err(|e| io_err(&path, e))? {
                    if finishing {
                        truncated(em, &live);
                        return Ok(());
                    }
                    waiter.wait(stop);
                    Cursor::Live(live)
                } else {
                    // Rotated: the writer is done with this inode. Drain it.
                    if pump(em, &mut live)? == Flow::Stop {
                        return Ok(());
                    }
                    truncated(em, &live);
                    Cursor::Done(Identity::of(live.log).map_err(|e| io_err(&path, e))?)
                }
            }
            other => match next_file(paths, &other).map_err(|e| io_err(&paths.dir, e))? {
                Next::NotYet => {
                    if finishing {
                        return Ok(());
                    }
                    waiter.wait(stop);
                    other
                }
                Next::Open { log, missed } => {
                    if missed && let Cursor::Done(id) = &other {
                        em.warn(ReadWarning::MissedRotation {
                            after: id.path.clone(),
                        });
                    }
                    drop(other);
                    if log.gz {
                        if em.pump_gz(&log, stop) == Flow::Stop {
                            return Ok(());
                        }
                        let path = log.path.clone();
                        Cursor::Done(Identity::of(log).map_err(|e| io_err(&path, e))?)
                    } else {
                        Cursor::Live(Live {
                            log,
                            lines: Lines::new(0),
                        })
                    }
                }
            },
        };
    }
}

fn truncated<F>(em: &mut Emitter<F>, live: &Live)
where
    F: FnMut(&LogEntry<'_>) -> bool,
{
    if !live.lines.pending().is_empty() {
        em.warn(ReadWarning::Truncated {
            path: live.log.path.clone(),
            offset: live.lines.offset(),
        });
    }
}
