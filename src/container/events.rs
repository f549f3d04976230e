//! `events`: a container's cgroup stats every interval and its OOMs as they happen, as
//! `runc events` reports them, until the container stops.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::Serialize;

use super::wrong;
use crate::cgroups::{Cgroup, OomWatch, Stats};
use crate::state::{Status, Store};
use crate::{syscall, Context, Result};

/// One line of `events` output: `{"type":"stats","id":...,"data":{...}}` or `{"type":"oom",...}`.
#[derive(Debug, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

/// The stats of a container that has not stopped, as one event (`events --stats`).
pub fn stats(store: &Store, id: &str) -> Result<Event> {
    let (cgroup, _) = open(store, id)?;
    Ok(Event {
        kind: "stats",
        id: id.to_string(),
        data: Some(cgroup.stats()?),
    })
}

/// Start following a container that has not stopped; see [`Events::next`].
pub fn events(store: &Store, id: &str, interval: Duration) -> Result<Events> {
    let (cgroup, init) = open(store, id)?;
    let oom = cgroup.watch_oom()?;
    if oom.is_none() {
        tracing::debug!("container {id:?}: no memory controller, so no oom events");
    }
    Ok(Events {
        id: id.to_string(),
        cgroup,
        init,
        oom,
        interval,
        next_stats: Instant::now() + interval,
        stopped: false,
    })
}

/// The container's cgroup and a pidfd of its init (readable once the init exits). No lock is
/// kept: `events` runs for as long as the container does and must not hold up `delete`.
fn open(store: &Store, id: &str) -> Result<(Cgroup, OwnedFd)> {
    let dir = store.open(id, false)?;
    let state = dir
        .load()?
        .ok_or_else(|| wrong(id, "get events of", Status::Creating))?;
    let gone = || wrong(id, "get events of", Status::Stopped);
    let init = match syscall::pidfd_open(state.init_pid()) {
        Err(nix::Error::ESRCH) => return Err(gone()),
        r => r.ctx(|| format!("pidfd_open of container {id:?}'s init (pid {})", state.pid))?,
    };
    // Checked after the pidfd is open: it then refers to our init, not to a reuse of its pid.
    if dir.status(&state) == Status::Stopped {
        return Err(gone());
    }
    Ok((state.cgroup, init))
}

pub struct Events {
    id: String,
    cgroup: Cgroup,
    init: OwnedFd,
    oom: Option<OomWatch>,
    interval: Duration,
    next_stats: Instant,
    stopped: bool,
}

impl Events {
    /// Block until the next event: stats once per interval (the first after one interval, as
    /// runc's ticker), an OOM as soon as the kernel reports it. None once the container stopped.
    /// Stats that cannot be read are logged and skipped, as runc does.
    pub fn next_event(&mut self) -> Result<Option<Event>> {
        while !self.stopped {
            let wait = self.next_stats.saturating_duration_since(Instant::now());
            let millis = wait.as_micros().div_ceil(1000);
            let timeout = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
            let mut fds = vec![PollFd::new(self.init.as_fd(), PollFlags::POLLIN)];
            if let Some(w) = &self.oom {
                fds.push(PollFd::new(w.fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Err(nix::Error::EINTR) => continue,
                r => r.ctx(|| "poll")?,
            };
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(fds);
            let exited = ready[0];
            // The kernel may report an OOM that killed the init a little after the exit: look
            // at the OOM state on exit too, so that such an OOM is not lost.
            if exited || ready.get(1) == Some(&true) {
                self.stopped = exited;
                if let Some(w) = &mut self.oom {
                    if w.check()? {
                        return Ok(Some(Event {
                            kind: "oom",
                            id: self.id.clone(),
                            data: None,
                        }));
                    }
                }
                continue;
            }
            if Instant::now() >= self.next_stats {
                self.next_stats += self.interval;
                match self.cgroup.stats() {
                    Ok(s) => {
                        return Ok(Some(Event {
                            kind: "stats",
                            id: self.id.clone(),
                            data: Some(s),
                        }))
                    }
                    Err(e) => tracing::error!("container {:?}: {e}", self.id),
                }
            }
        }
        Ok(None)
    }
}
