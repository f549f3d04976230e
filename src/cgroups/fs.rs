//! Reading, writing, creating and removing cgroupfs files and directories, shared by v1 and v2.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use crate::{Context, Error, Result};

pub(super) fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).ctx(|| format!("read {}", path.display()))
}

/// Write `value` to a control file in one write(2); never creates the file.
pub(super) fn write(path: &Path, value: &str) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .ctx(|| format!("write {value} to {}", path.display()))
}

/// Create `dir` and its missing parents, pushing each directory this call made (outermost first)
/// onto `created`, so that a failed create can undo exactly its own work.
pub(super) fn mkdir_all(dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let mut attempts = 0;
    'again: loop {
        let missing: Vec<&Path> = dir.ancestors().take_while(|p| !p.exists()).collect();
        for path in missing.into_iter().rev() {
            match fs::create_dir(path) {
                Ok(()) => created.push(path.to_path_buf()),
                // Another runtime made it in between: it is theirs, not ours to undo.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                // A shared parent was removed in between (its last other user deleted it).
                Err(e) if e.kind() == ErrorKind::NotFound && attempts < 5 => {
                    attempts += 1;
                    continue 'again;
                }
                Err(e) => return Err(Error::io(format!("create cgroup {}", path.display()), e)),
            }
        }
        return Ok(());
    }
}

/// Remove the cgroup `dir` and any cgroups below it, deepest first. A missing cgroup is fine.
pub(super) fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        entries => entries.ctx(|| format!("read directory {}", dir.display()))?,
    };
    for entry in entries {
        let entry = entry.ctx(|| format!("read directory {}", dir.display()))?;
        // Only sub-cgroups are directories; control files go away with their cgroup.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    rmdir(dir)
}

/// rmdir a cgroup, retrying EBUSY for about a second: tasks that were just killed leave their
/// cgroup only once they have finished exiting.
fn rmdir(dir: &Path) -> Result<()> {
    let mut delay = Duration::from_millis(10);
    loop {
        match fs::remove_dir(dir) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && delay < Duration::from_secs(1) => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            r => return r.ctx(|| format!("remove cgroup {}", dir.display())),
        }
    }
}

/// Append the pids in cgroup `dir` and in all cgroups below it to `out`.
pub(super) fn procs_tree(dir: &Path, out: &mut Vec<Pid>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    for line in read(&procs)?.lines() {
        let pid = line.trim().parse().map_err(|_| {
            Error::io(
                format!("read {}: bad pid {line:?}", procs.display()),
                ErrorKind::InvalidData.into(),
            )
        })?;
        out.push(Pid::from_raw(pid));
    }
    for entry in fs::read_dir(dir).ctx(|| format!("read directory {}", dir.display()))? {
        let entry = entry.ctx(|| format!("read directory {}", dir.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            match procs_tree(&entry.path(), out) {
                // The container removed a cgroup of its own while we looked.
                Err(e) if e.errno() == Some(nix::Error::ENOENT) => {}
                r => r?,
            }
        }
    }
    Ok(())
}

/// Call `done` every few milliseconds until it returns true (→ true) or `timeout` passes (→ false).
pub(super) fn poll_until(
    timeout: Duration,
    mut done: impl FnMut() -> Result<bool>,
) -> Result<bool> {
    let start = Instant::now();
    let mut delay = Duration::from_micros(100);
    loop {
        if done()? {
            return Ok(true);
        }
        if start.elapsed() >= timeout {
            return Ok(false);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    }
}
