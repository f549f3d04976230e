//! `restore`: a new container (id, bundle, state dir, cgroup, as `create` makes them) whose
//! processes CRIU brings back from a checkpoint instead of a new init. CRIU gets a copy of the
//! rootfs with the bundle's bind mounts in place, made in a mount namespace of our own so
//! nothing of it outlives us. From CRIU's `setup-namespaces` the prestart and createRuntime
//! hooks run; at `post-restore` the state is saved; then poststart hooks run and the container
//! is an ordinary running one.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, SFlag};
use nix::unistd::Pid;

use super::{bind_mounts, ext_mount, external_namespaces, load_descriptors, CommonOptions};
use crate::container::create::{check, owner, Undo};
use crate::container::run::Foreground;
use crate::container::CreateOptions;
use crate::criu::{self, CgroupRoot, InheritFd, Opts, ReqType};
use crate::hooks::{self, HookKind};
use crate::rootfs::paths::{self, Kind};
use crate::state::{self, State, Status, Store};
use crate::{Context, Error, Result};

/// The rootfs as CRIU sees it, in the state dir (as runc's `criu-root`).
const CRIU_ROOT: &str = "criu-root";

pub struct RestoreOptions<'a> {
    pub common: CommonOptions,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    /// Gets the pty master of a container with a terminal (CRIU's orphan pts master).
    pub console: Option<OwnedFd>,
    /// Return once restored; otherwise wait for the container and delete it, as `run` does.
    pub detach: bool,
    pub no_subreaper: bool,
    /// Accepted as runc does: CRIU sets up the restored root itself.
    pub no_pivot: bool,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
}

/// Restore a container from `image_path`; returns the runtime's exit code (the container's in
/// the foreground).
pub fn restore(store: &Store, o: RestoreOptions) -> Result<i32> {
    let create = CreateOptions {
        id: o.id,
        bundle: o.bundle,
        pid_file: o.pid_file,
        console: None,
        no_pivot: o.no_pivot,
        no_new_keyring: false,
        preserve_fds: 0,
        listen_fds: 0,
        pidfd_socket: None,
        no_subreaper: o.no_subreaper,
        rootless_cgroups: false,
        cgroup_driver: crate::cgroups::Driver::Cgroupfs,
    };
    let checked = check(&create)?;
    let bundle = &checked.bundle;
    let sp = &bundle.spec;
    let linux = sp.linux().as_ref().expect("validated");
    // The rootfs and its bind mounts, for CRIU only: in a mount namespace of our own. First,
    // so the dirs CRIU gets as fds are mounts of that namespace (else it cannot mount there).
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .ctx(|| "unshare the mount namespace for criu")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .ctx(|| "make / private for criu")?;
    // Before anything is made: a missing image is the caller's mistake, not a half-restore.
    let (mut opts, dirs) = o.common.opts("restore.log", false)?;
    let descriptors = load_descriptors(&o.common.image_path)?;
    let fg = match o.detach {
        true => None,
        false => Some(Foreground::prepare(false, &mut None, !o.no_subreaper)?),
    };

    let dir = store.create(o.id)?;
    let criu_root = dir.path.join(CRIU_ROOT);
    let mut undo = Undo {
        dir: Some(dir),
        cgroup: None,
        pids: Vec::new(),
    };
    let cgroup = checked.cgroup.clone();
    cgroup.check_unused()?;
    let made = cgroup.create()?;
    undo.cgroup = Some((cgroup.clone(), made));
    cgroup.apply(
        &linux.resources().clone().unwrap_or_default(),
        linux.devices().as_deref().unwrap_or_default(),
    )?;
    if !o.no_subreaper {
        crate::process::become_subreaper()?;
    }

    std::fs::create_dir(&criu_root).ctx(|| format!("create {}", criu_root.display()))?;
    mount(
        Some(&bundle.rootfs),
        &criu_root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| {
        format!(
            "bind {} on {}",
            bundle.rootfs.display(),
            criu_root.display()
        )
    })?;
    let _unmount = Unmount(&criu_root);
    prepare_mounts(&bundle.dir, &criu_root, sp, &mut opts)?;

    opts.set_root(criu_root.to_string_lossy().into_owned());
    opts.set_rst_sibling(true);
    opts.set_evasive_devices(true);
    if let Some(p) = &o.lsm_profile {
        opts.set_lsm_profile(p.clone());
    }
    if let Some(c) = &o.lsm_mount_context {
        opts.set_lsm_mount_context(c.clone());
    }
    // Namespaces joined by path are joined again; pipes that were the init's stdio become ours.
    let mut pass: Vec<OwnedFd> = Vec::new();
    external_namespaces(sp, |ns, path| {
        let fd = nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ctx(|| format!("open namespace {}", path.display()))?;
        opts.inherit_fd.push(inherit(
            &rust_criu::criu_ns_to_key(ns),
            4 + pass.len() as i32,
        ));
        pass.push(fd);
        Ok(())
    })?;
    for (n, what) in descriptors.iter().enumerate().take(3) {
        if what.starts_with("pipe:") {
            opts.inherit_fd.push(inherit(what, n as i32));
        }
    }

    let mut saved = State {
        id: o.id.to_string(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: state::now_rfc3339(),
        owner: owner(),
        annotations: sp.annotations().clone().unwrap_or_default(),
        cgroup: cgroup.clone(),
        hooks: sp.hooks().clone(),
        seccomp: linux.seccomp().clone(),
        resources: linux.resources().clone(),
    };
    let request = criu::Request {
        criu: &o.common.criu,
        kind: ReqType::RESTORE,
        opts,
        pass_fds: pass.iter().map(|f| f.as_fd()).collect(),
        log: dirs.log.clone(),
    };
    let console = o.console.as_ref().map(|c| c.as_fd());
    let resp = request.run(
        |criu_pid, opts| {
            // CRIU restores the processes into its own cgroups: the container's.
            cgroup.add(criu_pid)?;
            opts.cg_root = cgroup_roots(criu_pid)?;
            Ok(())
        },
        |n| {
            let pid = Pid::from_raw(n.pid);
            match n.script {
                "setup-namespaces" => {
                    saved.pid = n.pid;
                    let oci = oci_json(&saved, Status::Creating);
                    hooks::run(HookKind::Prestart, sp.hooks().as_ref(), &oci)?;
                    hooks::run(HookKind::CreateRuntime, sp.hooks().as_ref(), &oci)
                }
                "post-restore" => {
                    undo.pids.push(pid);
                    saved.pid = n.pid;
                    saved.pid_start = state::process_start(pid)?.ok_or_else(|| {
                        Error::Criu(format!("restored init {pid} exited at once"))
                    })?;
                    undo.dir.as_ref().expect("set above").save(&saved)
                }
                "orphan-pts-master" => match (console, n.fd) {
                    (Some(sock), Some(master)) => send_master(sock, master.as_fd()),
                    _ => Ok(()),
                },
                _ => Ok(()),
            }
        },
    )?;
    drop(dirs);
    let init = Pid::from_raw(resp.restore.pid());
    if saved.pid_start == 0 {
        return Err(Error::Criu(
            "criu restored without a post-restore notice".into(),
        ));
    }
    hooks::run(
        HookKind::Poststart,
        sp.hooks().as_ref(),
        &oci_json(&saved, Status::Running),
    )?;
    if let Some(p) = o.pid_file {
        state::write_pid_file(p, init)?;
    }
    undo.dir = None;
    tracing::debug!("restored container {} with init {init}", o.id);
    let Some(fg) = fg else { return Ok(0) };
    let status = fg.attach(init, || Ok(()));
    if let Err(e) = crate::container::delete(store, o.id, true) {
        tracing::warn!("delete container {:?} after restore: {e}", o.id);
    }
    status
}

fn oci_json(state: &State, status: Status) -> String {
    serde_json::to_string(&state.oci(status)).expect("state serialises")
}

fn inherit(key: &str, fd: i32) -> InheritFd {
    let mut i = InheritFd::new();
    i.set_key(key.into());
    i.set_fd(fd);
    i
}

fn send_master(sock: BorrowedFd, master: BorrowedFd) -> Result<()> {
    crate::console::send_fd(sock, master, b"/dev/ptmx", "pty master to console socket")
}

/// The bundle's bind mounts where CRIU expects them: their mount points made in the rootfs
/// (except under a tmpfs, whose content CRIU restores), the sources bound there so mount
/// points inside them exist too, and each named to CRIU as external.
fn prepare_mounts(
    bundle: &Path,
    root: &Path,
    sp: &oci_spec::runtime::Spec,
    opts: &mut Opts,
) -> Result<()> {
    let tmpfs: Vec<&Path> = sp
        .mounts()
        .iter()
        .flatten()
        .filter(|m| m.typ().as_deref() == Some("tmpfs"))
        .map(|m| m.destination().as_path())
        .collect();
    let root_fd = paths::open_root(root)?;
    for m in bind_mounts(sp) {
        let dest = m.destination();
        let source: PathBuf = match m.source() {
            Some(s) if s.is_absolute() => s.clone(),
            Some(s) => bundle.join(s),
            None => continue,
        };
        opts.ext_mnt.push(ext_mount(
            &dest.to_string_lossy(),
            &source.to_string_lossy(),
        ));
        if tmpfs.iter().any(|t| dest.starts_with(t)) {
            continue;
        }
        let what = || format!("prepare bind mount {} for criu", dest.display());
        let src = nix::fcntl::open(
            &source,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ctx(what)?;
        let kind = match SFlag::from_bits_truncate(fstat(&src).ctx(what)?.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFDIR => Kind::Dir,
            _ => Kind::File,
        };
        let target = paths::create(root_fd.as_fd(), dest, kind).ctx(what)?;
        crate::rootfs::mount::bind_fd(&src, &target, MsFlags::MS_REC).ctx(what)?;
    }
    Ok(())
}

/// `criu_pid`'s cgroups (it was just moved into the container's) as CRIU's cgroup roots: the
/// v1 hierarchies by controller, the unified one as the default on a pure v2 host.
fn cgroup_roots(criu_pid: Pid) -> Result<Vec<CgroupRoot>> {
    let path = format!("/proc/{criu_pid}/cgroup");
    let text = std::fs::read_to_string(&path).ctx(|| format!("read {path}"))?;
    let mut roots = Vec::new();
    let v1 = text.lines().any(|l| !l.starts_with("0::"));
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrl, dir) = match (parts.next(), parts.next(), parts.next()) {
            (Some(n), Some(c), Some(d)) => (n, c, d),
            _ => continue,
        };
        let mut root = CgroupRoot::new();
        root.set_path(dir.into());
        match ctrl {
            "" if v1 => continue,
            "" => {}
            c => root.set_ctrl(c.into()),
        }
        roots.push(root);
    }
    Ok(roots)
}

/// CRIU's view of the rootfs goes when the restore ends (with our mount namespace at exit).
struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = umount2(self.0, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(self.0);
    }
}
