//! `checkpoint` and `restore` through CRIU ([`crate::criu`]), described to it as runc does: the
//! container's bind mounts as external mounts, namespaces joined by path as external
//! namespaces, its cgroup (frozen for the dump, CRIU's own cgroup roots for the restore), and
//! the init's stdio in `descriptors.json` so a restore can hand pipes back in.

mod restore;

pub use restore::{restore, RestoreOptions};

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use crate::criu::{self, CgMode, ExtMount, Opts, ReqType};
use crate::state::{Status, Store};
use crate::{spec, Context, Error, Result};

/// The init's fds 0-2 as `/proc/PID/fd` links read them, in the image dir (runc's file name).
const DESCRIPTORS: &str = "descriptors.json";
/// CRIU's log level for every request: 4 = debug, as runc asks.
const LOG_LEVEL: i32 = 4;

/// `--manage-cgroups-mode`: what CRIU does with the cgroups' properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupsMode {
    Soft,
    Full,
    Strict,
    Ignore,
}

impl CgroupsMode {
    fn rpc(self) -> CgMode {
        match self {
            CgroupsMode::Soft => CgMode::SOFT,
            CgroupsMode::Full => CgMode::FULL,
            CgroupsMode::Strict => CgMode::STRICT,
            CgroupsMode::Ignore => CgMode::IGNORE,
        }
    }
}

/// What checkpoint and restore both take (runc's flags of the same names).
#[derive(Clone, Debug, Default)]
pub struct CommonOptions {
    /// The criu binary: `--criu`, else `criu` from PATH.
    pub criu: PathBuf,
    pub image_path: PathBuf,
    /// CRIU's work dir (its log goes there); the image dir if absent.
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub lazy_pages: bool,
    pub auto_dedup: bool,
    pub manage_cgroups_mode: Option<CgroupsMode>,
    /// Clone flags of the namespaces CRIU makes empty instead of restoring (`--empty-ns`).
    pub empty_ns: u32,
}

#[derive(Clone, Debug, Default)]
pub struct CheckpointOptions {
    pub common: CommonOptions,
    /// The previous (pre-)dump, relative to the image dir as CRIU reads it.
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub tcp_skip_in_flight: bool,
    pub link_remap: bool,
    /// Only the memory, with tracking on, for a later dump with `parent_path`.
    pub pre_dump: bool,
    /// With lazy pages: an fd of ours that gets a `\0` once the pages can be served.
    pub status_fd: Option<i32>,
    /// `ADDRESS:PORT` of a page server to send the memory to.
    pub page_server: Option<(String, i32)>,
}

impl CommonOptions {
    /// The request's options both commands set the same way; the fds must outlive the request.
    /// A checkpoint makes its image dir (`make_images`); a restore needs an existing one.
    fn opts(&self, log_file: &str, make_images: bool) -> Result<(Opts, Dirs)> {
        let images = open_dir(&self.image_path, make_images)?;
        let work = match &self.work_path {
            Some(p) => Some(open_dir(p, true)?),
            None => None,
        };
        let mut o = Opts::new();
        o.set_images_dir_fd(images.as_raw_fd());
        if let Some(w) = &work {
            o.set_work_dir_fd(w.as_raw_fd());
        }
        o.set_log_level(LOG_LEVEL);
        o.set_log_file(log_file.into());
        o.set_manage_cgroups(true);
        if let Some(m) = self.manage_cgroups_mode {
            o.set_manage_cgroups_mode(m.rpc());
        }
        o.set_orphan_pts_master(true);
        o.set_shell_job(self.shell_job);
        o.set_ext_unix_sk(self.ext_unix_sk);
        o.set_tcp_established(self.tcp_established);
        o.set_file_locks(self.file_locks);
        o.set_empty_ns(self.empty_ns);
        o.set_auto_dedup(self.auto_dedup);
        o.set_lazy_pages(self.lazy_pages);
        let log = self
            .work_path
            .as_deref()
            .unwrap_or(&self.image_path)
            .join(log_file);
        Ok((
            o,
            Dirs {
                _images: images,
                _work: work,
                log,
            },
        ))
    }
}

/// The dirs CRIU reads through `/proc/<our pid>/fd/N` while it works, and its log's path.
struct Dirs {
    _images: OwnedFd,
    _work: Option<OwnedFd>,
    log: PathBuf,
}

/// Open a directory for CRIU, making it first (0700, as runc does) when `make` is set.
fn open_dir(path: &Path, make: bool) -> Result<OwnedFd> {
    if make {
        match nix::unistd::mkdir(path, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("create {}", path.display()), e)),
        }
    }
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open checkpoint dir {}", path.display()))
}

/// Checkpoint a running or paused container into `image_path`. Unless `leave_running` (or
/// `pre_dump`), CRIU ends its processes and the container is then deleted, as runc does.
pub fn checkpoint(store: &Store, id: &str, o: &CheckpointOptions) -> Result<()> {
    let dir = store.open(id, true)?;
    let state = dir.load()?.ok_or_else(|| Error::WrongState {
        op: "checkpoint",
        id: id.into(),
        status: Status::Creating.to_string(),
    })?;
    let status = dir.status(&state);
    if !matches!(status, Status::Running | Status::Paused) {
        return Err(Error::WrongState {
            op: "checkpoint",
            id: id.into(),
            status: status.to_string(),
        });
    }
    // Mounts and namespace paths as the bundle describes them (the state keeps neither).
    let bundle = spec::load(&state.bundle)?;
    let log_file = if o.pre_dump {
        "pre-dump.log"
    } else {
        "dump.log"
    };
    let (mut opts, dirs) = o.common.opts(log_file, true)?;
    opts.set_pid(state.pid);
    opts.set_root(state.rootfs.to_string_lossy().into_owned());
    opts.set_leave_running(o.leave_running);
    opts.set_tcp_skip_in_flight(o.tcp_skip_in_flight);
    opts.set_link_remap(o.link_remap);
    if let Some(f) = state.cgroup.freezer_dir() {
        opts.set_freeze_cgroup(f.to_string_lossy().into_owned());
    }
    if let Some(parent) = &o.parent_path {
        opts.set_parent_img(parent.to_string_lossy().into_owned());
        opts.set_track_mem(true);
    }
    let kind = if o.pre_dump {
        opts.set_track_mem(true);
        ReqType::PRE_DUMP
    } else {
        ReqType::DUMP
    };
    if o.common.lazy_pages {
        if let Some(fd) = o.status_fd {
            opts.set_status_fd(fd);
        }
    }
    if let Some((address, port)) = &o.page_server {
        let mut ps = criu::PageServer::new();
        ps.set_address(address.clone());
        ps.set_port(*port);
        opts.ps = protobuf::MessageField::some(ps);
    }
    // The memory is all a pre-dump writes.
    if !o.pre_dump {
        for m in bind_mounts(&bundle.spec) {
            let dest = m.destination().to_string_lossy().into_owned();
            opts.ext_mnt.push(ext_mount(&dest, &dest));
        }
        external_namespaces(&bundle.spec, |ns, path| {
            let st = nix::sys::stat::stat(path).ctx(|| format!("stat {}", path.display()))?;
            opts.external.push(format!(
                "{ns}[{}]:{}",
                st.st_ino,
                rust_criu::criu_ns_to_key(ns)
            ));
            Ok(())
        })?;
        save_descriptors(state.pid, &o.common.image_path)?;
    }
    let request = criu::Request {
        criu: &o.common.criu,
        kind,
        opts,
        pass_fds: Vec::new(),
        log: dirs.log.clone(),
    };
    request.run(
        |_, _| Ok(()),
        |n| match (n.script, o.status_fd) {
            // CRIU 3.15+ says so here when it serves lazy pages.
            ("status-ready", Some(fd)) => {
                // SAFETY: the caller handed us this fd (`--status-fd`) for this one write.
                let f = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                nix::unistd::write(f, &[0]).ctx(|| format!("write to --status-fd {fd}"))?;
                Ok(())
            }
            _ => Ok(()),
        },
    )?;
    drop(dirs);
    if o.leave_running || o.pre_dump {
        return Ok(());
    }
    drop(dir);
    crate::container::delete(store, id, true)
}

/// config.json's bind mounts: CRIU cannot dump what they show, only that they are there.
fn bind_mounts(spec: &Spec) -> impl Iterator<Item = &Mount> {
    spec.mounts().iter().flatten().filter(|m| {
        m.typ().as_deref() == Some("bind")
            || m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind")
    })
}

fn ext_mount(key: &str, val: &str) -> ExtMount {
    let mut m = ExtMount::new();
    m.set_key(key.into());
    m.set_val(val.into());
    m
}

/// The network and pid namespaces the container joined by path: CRIU leaves them out of the
/// dump, and a restore joins them again (runc's `extRootNetNS`, `extRootPidNS`).
fn external_namespaces(spec: &Spec, mut each: impl FnMut(&str, &Path) -> Result<()>) -> Result<()> {
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    for ns in namespaces.into_iter().flatten() {
        let name = match ns.typ() {
            LinuxNamespaceType::Network => "net",
            LinuxNamespaceType::Pid => "pid",
            _ => continue,
        };
        if let Some(path) = ns.path() {
            each(name, path)?;
        }
    }
    Ok(())
}

/// What the init's fds 0-2 were, so a restore can give it the caller's pipes instead.
fn save_descriptors(pid: i32, images: &Path) -> Result<()> {
    let fds: Vec<String> = (0..3)
        .map(|n| {
            std::fs::read_link(format!("/proc/{pid}/fd/{n}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "/dev/null".into())
        })
        .collect();
    let json = serde_json::to_vec(&fds).expect("strings serialise");
    crate::state::write_atomic(&images.join(DESCRIPTORS), &json, 0o600)
}

/// The init's stdio as the checkpoint recorded it (none for an image made elsewhere).
fn load_descriptors(images: &Path) -> Result<Vec<String>> {
    let path = images.join(DESCRIPTORS);
    match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| Error::config(format_args!("{}: {e}", path.display()))),
    }
}
