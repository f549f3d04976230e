//! What is particular to cgroup v1 hierarchies: cpuset set-up and the freezer controller.
//! (Resource limits for v1 controllers will go here too.)

use std::path::Path;
use std::time::Duration;

use super::fs::{poll_until, read, write};
use crate::{Error, Result};

/// A new v1 cpuset cgroup starts with empty `cpuset.cpus`/`cpuset.mems`, and no task may join
/// it until both are set: fill in every empty one from its parent, from the top of the
/// hierarchy at `mountpoint` down to `dir`.
pub(super) fn init_cpuset(mountpoint: &Path, dir: &Path) -> Result<()> {
    let Ok(below) = dir.strip_prefix(mountpoint) else {
        return Ok(());
    };
    let mut parent = mountpoint.to_path_buf();
    for name in below {
        let child = parent.join(name);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if read(&child.join(file))?.trim().is_empty() {
                write(&child.join(file), read(&parent.join(file))?.trim())?;
            }
        }
        parent = child;
    }
    Ok(())
}

const STATE: &str = "freezer.state";
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

/// Freeze the freezer cgroup `dir` and wait until it reads FROZEN (it reads FREEZING while
/// tasks are still on their way). If it does not get there in time, thaw it and fail.
pub(super) fn freeze(dir: &Path) -> Result<()> {
    let state = dir.join(STATE);
    let mut tries = 0u32;
    let frozen = poll_until(FREEZE_TIMEOUT, || {
        tries += 1;
        // A task caught in a vfork or in the middle of exiting can leave the cgroup stuck in
        // FREEZING; thawing and asking again now and then gets it unstuck.
        if tries % 50 == 0 {
            write(&state, "THAWED")?;
        }
        write(&state, "FROZEN")?;
        Ok(read(&state)?.trim() == "FROZEN")
    })?;
    if frozen {
        return Ok(());
    }
    thaw(dir)?;
    Err(Error::sys(
        format!(
            "freeze {}: still not FROZEN after {FREEZE_TIMEOUT:?}",
            state.display()
        ),
        nix::Error::EBUSY,
    ))
}

pub(super) fn thaw(dir: &Path) -> Result<()> {
    write(&dir.join(STATE), "THAWED")
}

/// Whether `dir` is paused: FROZEN, or FREEZING, which it reads while a freeze is in force but
/// some task is not frozen yet (one that just joined, or one a fatal signal woke up).
pub(super) fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(read(&dir.join(STATE))?.trim() != "THAWED")
}
