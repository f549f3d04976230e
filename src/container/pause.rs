//! `pause`, `resume` and `ps`: freezing and listing the processes of a container's cgroup.

use nix::unistd::Pid;

use super::wrong;
use crate::state::{Status, Store};
use crate::Result;

/// Freeze every process of a running container; `state` then says `paused`.
pub fn pause(store: &Store, id: &str) -> Result<()> {
    set_frozen(store, id, "pause", Status::Running, true)
}

/// Thaw a paused container.
pub fn resume(store: &Store, id: &str) -> Result<()> {
    set_frozen(store, id, "resume", Status::Paused, false)
}

fn set_frozen(store: &Store, id: &str, op: &'static str, from: Status, frozen: bool) -> Result<()> {
    // Exclusive: a concurrent pause and resume must not interleave their status checks.
    let dir = store.open(id, true)?;
    let state = dir.load()?.ok_or_else(|| wrong(id, op, Status::Creating))?;
    let status = dir.status(&state);
    if status != from {
        return Err(wrong(id, op, status));
    }
    state.cgroup.freeze(frozen)
}

/// The pids of every process in the container's cgroup (host pid namespace), sorted.
pub fn pids(store: &Store, id: &str) -> Result<Vec<Pid>> {
    let dir = store.open(id, false)?;
    let state = dir
        .load()?
        .ok_or_else(|| wrong(id, "list processes of", Status::Creating))?;
    state.cgroup.pids()
}
