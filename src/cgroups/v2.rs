//! What is particular to the cgroup v2 (unified) hierarchy: cgroup.freeze and cgroup.kill.
//! (Enabling controllers and resource limits for v2 will go here too.)

use std::path::Path;
use std::time::Duration;

use super::fs::{poll_until, read, write};
use crate::{Error, Result};

const FREEZE: &str = "cgroup.freeze";
const KILL: &str = "cgroup.kill";
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the kernel offers cgroup.freeze (5.2+) on `dir`.
pub(super) fn can_freeze(dir: &Path) -> bool {
    dir.join(FREEZE).exists()
}

/// Whether the kernel offers cgroup.kill (5.14+) on `dir`.
pub(super) fn can_kill(dir: &Path) -> bool {
    dir.join(KILL).exists()
}

/// Freeze or thaw `dir`; a freeze waits until cgroup.events reports every task frozen, and if
/// that does not happen in time the cgroup is thawed again and the freeze fails.
pub(super) fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    write(&dir.join(FREEZE), if frozen { "1" } else { "0" })?;
    if !frozen {
        return Ok(());
    }
    if poll_until(FREEZE_TIMEOUT, || all_frozen(dir))? {
        return Ok(());
    }
    write(&dir.join(FREEZE), "0")?;
    Err(Error::sys(
        format!(
            "freeze {}: not frozen after {FREEZE_TIMEOUT:?}",
            dir.display()
        ),
        nix::Error::EBUSY,
    ))
}

/// Whether `dir` is paused: a freeze was asked of it, or a frozen ancestor holds it. (A task
/// that a fatal signal woke up is briefly not frozen while it exits; it is still paused.)
pub(super) fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(read(&dir.join(FREEZE))?.trim() == "1" || all_frozen(dir)?)
}

/// Whether cgroup.events says every task of `dir` is frozen.
fn all_frozen(dir: &Path) -> Result<bool> {
    let events = read(&dir.join("cgroup.events"))?;
    Ok(events.lines().any(|l| l.trim() == "frozen 1"))
}

/// SIGKILL every task in `dir` and below, atomically with respect to forks.
pub(super) fn kill(dir: &Path) -> Result<()> {
    write(&dir.join(KILL), "1")
}
