//! The state store: `<root>/<id>/state.json`, written atomically, one lock per container so
//! concurrent commands on a container serialise. The status is never stored: it is derived from
//! the init process (pid + start time, so a reused pid is not mistaken for it), the exec fifo
//! and the cgroup freezer.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::{Context, Error, Result};

/// The runtime-spec version our `state` output follows.
pub const OCI_VERSION: &str = "1.3.0";
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What we keep about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub pid: i32,
    /// Start time of the init (field 22 of /proc/<pid>/stat): pid-reuse safe identity.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: Cgroup,
    /// The hooks still to run after create (poststart, poststop), as in config.json.
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The seccomp profile, which processes added by `exec` get too. Kept from create, so a
    /// later edit of config.json changes nothing for a running container.
    #[serde(default)]
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// linux.resources as applied to the cgroup: from config.json at create, then as `update`
    /// changed them, which merges onto (and re-applies) what is here.
    #[serde(default)]
    pub resources: Option<oci_spec::runtime::LinuxResources>,
}

/// The state document of the runtime-spec (what `state` prints and hooks read on stdin).
#[derive(Debug, Serialize)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'static str,
    pub id: &'a str,
    pub pid: i32,
    pub status: String,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
}

impl State {
    pub fn oci(&self, status: Status) -> OciState<'_> {
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        OciState {
            oci_version: OCI_VERSION,
            id: &self.id,
            pid,
            status: status.to_string(),
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: &self.owner,
            annotations: &self.annotations,
        }
    }

    pub fn init_pid(&self) -> Pid {
        Pid::from_raw(self.pid)
    }

    /// Whether the init we started is still alive (a zombie counts as gone).
    pub fn init_alive(&self) -> bool {
        matches!(process_start(self.init_pid()), Ok(Some(t)) if t == self.pid_start)
    }
}

/// Start time of a live (non-zombie) process, None if it is gone.
pub fn process_start(pid: Pid) -> Result<Option<u64>> {
    let text = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("read /proc/{pid}/stat"), e)),
    };
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return Ok(None);
    }
    let start = fields.get(19).and_then(|s| s.parse().ok());
    start
        .map(Some)
        .ok_or_else(|| Error::Init(format!("parse /proc/{pid}/stat")))
}

/// The directory that holds every container's state (`--root`).
pub struct Store {
    root: PathBuf,
}

/// One container's locked state directory. The lock is held while this lives.
pub struct Dir {
    pub id: String,
    pub path: PathBuf,
    lock: Flock<OwnedFd>,
}

impl Store {
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Make the state dir of a new container and lock it; an existing one means a duplicate id.
    pub fn create(&self, id: &str) -> Result<Dir> {
        std::fs::create_dir_all(&self.root)
            .ctx(|| format!("create state root {}", self.root.display()))?;
        let path = self.root.join(id);
        match nix::unistd::mkdir(&path, Mode::from_bits_truncate(0o711)) {
            Err(nix::errno::Errno::EEXIST) => return Err(Error::Exists(id.to_string())),
            r => r.ctx(|| format!("create state dir {}", path.display()))?,
        }
        self.lock_dir(id, path, FlockArg::LockExclusive)
    }

    /// Lock an existing container's state dir (shared for readers, exclusive for changes).
    pub fn open(&self, id: &str, exclusive: bool) -> Result<Dir> {
        crate::spec::validate_id(id)?;
        let arg = if exclusive {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockShared
        };
        self.lock_dir(id, self.root.join(id), arg)
    }

    fn lock_dir(&self, id: &str, path: PathBuf, arg: FlockArg) -> Result<Dir> {
        let fd = match open(
            &path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Err(nix::errno::Errno::ENOENT) => return Err(Error::NotFound(id.to_string())),
            r => r.ctx(|| format!("open state dir {}", path.display()))?,
        };
        let lock = Flock::lock(fd, arg)
            .map_err(|(_, e)| Error::sys(format!("lock {}", path.display()), e))?;
        // A `delete` we waited for may have removed the dir meanwhile: it is gone, not creating.
        let held = nix::sys::stat::fstat(&*lock).ctx(|| format!("stat {}", path.display()))?;
        match nix::sys::stat::stat(&path) {
            Ok(now) if (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino) => {}
            Ok(_) | Err(nix::errno::Errno::ENOENT) => return Err(Error::NotFound(id.to_string())),
            Err(e) => return Err(Error::sys(format!("stat {}", path.display()), e)),
        }
        Ok(Dir {
            id: id.to_string(),
            path,
            lock,
        })
    }

    /// The ids of every container with a state dir, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            r => r.ctx(|| format!("read state root {}", self.root.display()))?,
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

impl Dir {
    /// The raw lock fd, which a forked child must close so it does not hold the lock.
    pub fn lock_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.lock.as_fd()
    }

    pub fn fifo(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// The saved state; a dir without one belongs to a container still being created.
    pub fn load(&self) -> Result<Option<State>> {
        let path = self.path.join(STATE_FILE);
        match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Init(format!("parse {}: {e}", path.display()))),
        }
    }

    pub fn save(&self, state: &State) -> Result<()> {
        let bytes = serde_json::to_vec(state).expect("state serialises");
        write_atomic(&self.path.join(STATE_FILE), &bytes, 0o600)
    }

    /// The status of a container whose state was saved.
    pub fn status(&self, state: &State) -> Status {
        if !state.init_alive() {
            Status::Stopped
        } else if self.fifo().exists() {
            Status::Created
        } else if state.cgroup.is_frozen().unwrap_or(false) {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// Remove the state dir (the lock goes with it).
    pub fn remove(self) -> Result<()> {
        std::fs::remove_dir_all(&self.path)
            .ctx(|| format!("remove state dir {}", self.path.display()))
    }
}

/// Write a file by renaming a complete temporary one over it, so readers never see half of it.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(bytes)?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(format!("write {}", path.display()), e)
    })
}

/// RFC 3339 time with nanoseconds, as runc writes `created` and log timestamps.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// The pid file is written whole or not at all: containerd and conmon read it as soon as it exists.
pub fn write_pid_file(path: &Path, pid: Pid) -> Result<()> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ctx(|| "getcwd")?.join(path)
    };
    write_atomic(&path, pid.to_string().as_bytes(), 0o644)
}
