//! Noticing the OOM killer in a container's cgroup, for `events` (and `create`, whose init it
//! may kill).
//!
//! v1: an eventfd registered for memory.oom_control through cgroup.event_control; the kernel
//! signals it on every OOM in the cgroup (and once more when the cgroup is removed, which is not
//! an OOM). v2: inotify on memory.events, whose `oom` and `oom_kill` counters only grow; an OOM
//! is a rise of either since the last look.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::{fs, stats, Cgroup};
use crate::{Context, Result};

pub struct OomWatch {
    kind: Kind,
}

enum Kind {
    V1 {
        efd: EventFd,
        oom_control: PathBuf,
    },
    V2 {
        inotify: Inotify,
        dir: PathBuf,
        seen: u64,
    },
}

impl Cgroup {
    /// Start watching for OOMs; None when the cgroup has no memory controller to watch.
    pub fn watch_oom(&self) -> Result<Option<OomWatch>> {
        if let Some(h) = self.v1.iter().find(|h| h.has("memory")) {
            return v1_watch(&h.dir).map(Some);
        }
        match self.unified.as_deref() {
            Some(dir) if self.v1.is_empty() && dir.join("memory.events").exists() => {
                let events = dir.join("memory.events");
                let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
                    .ctx(|| "inotify_init")?;
                inotify
                    .add_watch(&events, AddWatchFlags::IN_MODIFY)
                    .ctx(|| format!("watch {}", events.display()))?;
                // After the watch is in place: a rise between the two is not missed.
                let seen = oom_count(dir)?;
                Ok(Some(OomWatch {
                    kind: Kind::V2 {
                        inotify,
                        dir: dir.to_path_buf(),
                        seen,
                    },
                }))
            }
            _ => Ok(None),
        }
    }
}

impl Cgroup {
    /// Whether the OOM killer has killed a process of the cgroup (memory.oom_control's
    /// `oom_kill` on v1, memory.events' on v2); false where neither can be read.
    pub fn oom_killed(&self) -> bool {
        let (dir, file) = match self.v1.iter().find(|h| h.has("memory")) {
            Some(h) => (h.dir.as_path(), "memory.oom_control"),
            None => match self.unified.as_deref() {
                Some(dir) if self.v1.is_empty() => (dir, "memory.events"),
                _ => return false,
            },
        };
        stats::keyed(dir, file).is_ok_and(|c| c.get("oom_kill").is_some_and(|n| *n > 0))
    }
}

fn v1_watch(dir: &Path) -> Result<OomWatch> {
    let oom_control = dir.join("memory.oom_control");
    let efd =
        EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK).ctx(|| "eventfd")?;
    let control =
        std::fs::File::open(&oom_control).ctx(|| format!("open {}", oom_control.display()))?;
    // The kernel keeps its own reference to memory.oom_control once registered.
    let line = format!("{} {}", efd.as_fd().as_raw_fd(), control.as_raw_fd());
    fs::write(&dir.join("cgroup.event_control"), &line)?;
    Ok(OomWatch {
        kind: Kind::V1 { efd, oom_control },
    })
}

/// oom + oom_kill of memory.events: an OOM raises at least one of them.
fn oom_count(dir: &Path) -> Result<u64> {
    let counters = stats::keyed(dir, "memory.events")?;
    Ok(counters.get("oom").copied().unwrap_or(0) + counters.get("oom_kill").copied().unwrap_or(0))
}

impl OomWatch {
    /// The fd to poll for readability; then call [`OomWatch::check`].
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.kind {
            Kind::V1 { efd, .. } => efd.as_fd(),
            Kind::V2 { inotify, .. } => inotify.as_fd(),
        }
    }

    /// Whether an OOM happened since the last check; never blocks.
    pub fn check(&mut self) -> Result<bool> {
        match &mut self.kind {
            Kind::V1 { efd, oom_control } => match efd.read() {
                Err(nix::Error::EAGAIN) => Ok(false),
                // Signalled by the cgroup's removal, not by an OOM.
                Ok(_) => Ok(oom_control.exists()),
                Err(e) => Err(e).ctx(|| "read the oom eventfd"),
            },
            Kind::V2 { inotify, dir, seen } => {
                match inotify.read_events() {
                    Ok(_) | Err(nix::Error::EAGAIN) => {}
                    Err(e) => {
                        return Err(e).ctx(|| {
                            format!("read inotify events of {}/memory.events", dir.display())
                        })
                    }
                }
                // Gone with its cgroup: no further OOM can happen.
                let Some(now) = stats::optional(oom_count(dir))? else {
                    return Ok(false);
                };
                let rose = now > *seen;
                *seen = now;
                Ok(rose)
            }
        }
    }
}
