//! `create`: validate everything, then make the state dir, cgroup and exec fifo, start the init
//! and wait until it is ready. A failure undoes every step that was taken.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use crate::cgroups::{Cgroup, Driver, Made};
use crate::hooks::{self, HookKind};
use crate::namespaces::Plan;
use crate::process::{self, sync, InitArgs};
use crate::security::{lsm, seccomp};
use crate::state::{self, State, Status, Store};
use crate::{intel_rdt, netdev, pidfd_socket, rootfs, spec, Context, Error, Result};

pub struct CreateOptions<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    /// A connected console socket (see [`crate::console::connect`]); required with process.terminal.
    pub console: Option<OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Fds 3..3+N the container process inherits.
    pub preserve_fds: u32,
    /// systemd socket-activation fds passed on after the preserved ones; the process gets
    /// `LISTEN_FDS` for them (and `LISTEN_PID=1`, valid in its own pid namespace).
    pub listen_fds: u32,
    /// A connected socket that gets a pidfd of the init (see [`crate::pidfd_socket`]).
    pub pidfd_socket: Option<OwnedFd>,
    /// Do not make the runtime a child subreaper (runc's `run --no-subreaper`): orphans of the
    /// container's processes then go to the host's init. The init is our child either way.
    pub no_subreaper: bool,
    /// runc's rootless cgroup manager: a cgroup the caller may not create is skipped when the
    /// config allows it ([`crate::cgroups::may_skip`]), and device rules are not applied (the
    /// kernel lets no unprivileged user or user namespace set them).
    pub rootless_cgroups: bool,
    /// Who makes the container's cgroup.
    pub cgroup_driver: Driver,
}

/// Everything create made so far, undone on drop unless the create succeeded (`restore` uses
/// it too).
pub(crate) struct Undo {
    pub(crate) dir: Option<state::Dir>,
    /// The container's cgroup and the directories of it that create made: the cgroup was
    /// empty and thawed when create began, so every process in it is the container's.
    pub(crate) cgroup: Option<(Cgroup, Made)>,
    pub(crate) pids: Vec<Pid>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        for pid in &self.pids {
            let _ = kill(*pid, Signal::SIGKILL);
        }
        // Our children (and, as subreaper, their orphans) must be reaped before the cgroup goes.
        for pid in &self.pids {
            let _ = nix::sys::wait::waitpid(*pid, None);
        }
        if let Some((cg, made)) = &self.cgroup {
            let _ = cg.kill_all(Signal::SIGKILL);
            // systemd removes its unit's cgroup once the unit is stopped; otherwise only the
            // directories this create made go.
            let removed = match cg.is_systemd() {
                true => cg.destroy(),
                false => made.remove(),
            };
            if let Err(e) = removed {
                tracing::warn!("clean up after failed create: {e}");
            }
        }
        if let Err(e) = dir.remove() {
            tracing::warn!("clean up after failed create: {e}");
        }
    }
}

/// Create the container; returns the init's pid. The init then waits for `start`.
pub fn create(store: &Store, opts: CreateOptions) -> Result<Pid> {
    check(&opts)?.create(store, opts)
}

/// A bundle loaded and checked by [`check`]; nothing exists yet.
pub(crate) struct Checked {
    pub(crate) bundle: spec::Bundle,
    ns: Plan,
    pub(crate) cgroup: Cgroup,
}

/// Load the bundle and check everything that can be checked without touching the system.
pub(crate) fn check(opts: &CreateOptions) -> Result<Checked> {
    spec::validate_id(opts.id)?;
    let mut bundle = spec::load(opts.bundle)?;
    if opts.listen_fds > 0 {
        pass_listen_fds(&mut bundle.spec, opts.listen_fds);
    }
    let sp = &bundle.spec;
    spec::validate(sp)?;
    rootfs::validate(sp)?;
    hooks::validate(sp.hooks().as_ref())?;
    seccomp::validate(sp)?;
    let linux = sp.linux().as_ref().expect("validated");
    let process = sp.process().as_ref().expect("validated");
    validate_attrs(process, linux)?;
    let ns = Plan::from_linux(linux)?;
    let cgroup =
        Cgroup::resolve_with(opts.cgroup_driver, linux.cgroups_path().as_deref(), opts.id)?;
    crate::cgroups::validate_resources(linux.resources().as_ref().unwrap_or(&Default::default()))?;
    Ok(Checked { bundle, ns, cgroup })
}

impl Checked {
    /// process.terminal: whether the container wants a pty (`run` bridges it).
    pub fn terminal(&self) -> bool {
        let process = self.bundle.spec.process().as_ref().expect("validated");
        process.terminal().unwrap_or(false)
    }

    /// [`create`] from here; `opts` must be the ones checked (its console may be set since).
    pub fn create(self, store: &Store, opts: CreateOptions) -> Result<Pid> {
        let terminal = self.terminal();
        if terminal && opts.console.is_none() {
            return Err(Error::Usage(
                "process.terminal is set: --console-socket is required".into(),
            ));
        }
        if !terminal && opts.console.is_some() {
            return Err(Error::Usage(
                "--console-socket given but process.terminal is not set".into(),
            ));
        }
        make(store, opts, &self.bundle, &self.ns, self.cgroup)
    }
}

/// Everything `create` makes, undone by [`Undo`] if a step fails.
fn make(
    store: &Store,
    opts: CreateOptions,
    bundle: &spec::Bundle,
    ns: &Plan,
    cgroup: Cgroup,
) -> Result<Pid> {
    let sp = &bundle.spec;
    let linux = sp.linux().as_ref().expect("validated");
    let process = sp.process().as_ref().expect("validated");
    let resources = linux.resources().clone().unwrap_or_default();
    cgroup.check_unused()?;
    let dir = store.create(opts.id)?;
    let mut undo = Undo {
        dir: None,
        cgroup: None,
        pids: Vec::new(),
    };
    let fifo = dir.fifo();
    let lock_fd = dir.lock_fd().as_raw_fd();
    let dir_path = dir.path.clone();
    // Saved first with no init and no hooks, so that if this process is killed part-way,
    // `delete --force` finds the cgroup it may have made (and `list` shows it stopped).
    let mut saved = State {
        id: opts.id.to_string(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: state::now_rfc3339(),
        owner: owner(),
        annotations: sp.annotations().clone().unwrap_or_default(),
        cgroup: cgroup.clone(),
        hooks: None,
        seccomp: linux.seccomp().clone(),
        resources: linux.resources().clone(),
    };
    let saved_dir = undo.dir.insert(dir);
    saved_dir.save(&saved)?;
    // Writable by anyone: the init opens it after switching to the container's user.
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o622))
        .ctx(|| format!("mkfifo {}", fifo.display()))?;
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        &fifo,
        Mode::from_bits_truncate(0o622),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .ctx(|| format!("chmod {}", fifo.display()))?;
    let created_devices = linux.devices().as_deref().unwrap_or_default();
    // systemd makes its unit's cgroup once the first process exists (start_unit below).
    let systemd = cgroup.is_systemd();
    let cgroup = if systemd {
        cgroup
    } else {
        let (cgroup, made) = match cgroup.create() {
            Err(e)
                if opts.rootless_cgroups
                    && crate::cgroups::may_skip(
                        &e,
                        linux.cgroups_path().as_deref(),
                        &resources,
                    ) =>
            {
                tracing::debug!("rootless: the container runs without a cgroup of its own: {e}");
                saved.cgroup = Cgroup::none();
                (Cgroup::none(), Made::default())
            }
            Err(e) if opts.rootless_cgroups && crate::cgroups::denied(&e) => {
                return Err(Error::Init(format!(
                    "rootless: {e} (without write access to cgroups, a container needs no \
                     linux.cgroupsPath and no resource limits)"
                )))
            }
            r => (cgroup, r?),
        };
        undo.cgroup = Some((cgroup.clone(), made));
        if opts.rootless_cgroups {
            if !cgroup.is_none() {
                tracing::debug!("rootless: device rules are not applied");
                cgroup.update(&resources)?;
            }
        } else {
            cgroup.apply(&resources, created_devices)?;
        }
        cgroup
    };
    if !opts.no_subreaper {
        process::become_subreaper()?;
    }

    let listener = seccomp::connect_listener(linux)?;
    let procfs = crate::procfs::open_private()?;
    let cgroup_fd = match systemd {
        true => None,
        false => cgroup.open_for_clone(&[])?,
    };
    let joined_userns = ns
        .join
        .iter()
        .find(|(f, ..)| *f == nix::sched::CloneFlags::CLONE_NEWUSER)
        .map(|(_, fd, _)| fd.as_fd());
    let detached = rootfs::prepare_detached(
        sp,
        &bundle.rootfs,
        &bundle.dir,
        joined_userns,
        procfs.as_fd(),
    )?;
    let (chan, child_chan) = sync::pair()?;
    let args = InitArgs {
        id: opts.id,
        bundle,
        ns,
        fifo: &fifo,
        console: opts.console.as_ref().map(|c| c.as_fd()),
        seccomp_listener: listener.as_ref().map(|l| l.as_fd()),
        procfs: procfs.as_fd(),
        preserve_fds: opts.preserve_fds + opts.listen_fds,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        close_fds: &[lock_fd],
        cgroup: cgroup_fd.as_ref().map(|fd| fd.as_fd()),
        detached: &detached,
    };
    let spawned = process::spawn_init(&args, &chan, child_chan)?;
    let first = spawned.pid;
    undo.pids.push(first);
    if systemd {
        // After the clone: the D-Bus connection runs a thread, and this process forks no more.
        undo.cgroup = Some((cgroup.clone(), Made::default()));
        cgroup.start_unit(first, &resources, created_devices)?;
    } else if !spawned.in_cgroup {
        cgroup.add(first)?;
    }
    if let Some(adj) = process.oom_score_adj() {
        crate::procfs::write(
            procfs.as_fd(),
            &format!("{first}/oom_score_adj"),
            adj.to_string().as_bytes(),
        )
        .map_err(|e| Error::Init(format!("process.oomScoreAdj: {e}")))?;
    }
    // With one clone, the first child is the init, in its new network namespace, waiting for
    // "go": the devices arrive before any of its setup (its net sysctls may name them). Otherwise
    // that namespace exists only after "go", and they move once the init has mounted.
    let netdevs_early = ns.single_clone();
    if netdevs_early {
        netdev::move_into(linux, first)?;
    }

    saved.hooks = sp.hooks().clone();
    let init = process::drive(first, &chan, linux, ns, Some(procfs.as_fd()), |init| {
        if init != first {
            undo.pids.push(init);
        }
        saved.pid = init.as_raw();
        if !netdevs_early {
            // Before the hooks, which may configure them.
            netdev::move_into(linux, init)?;
        }
        let oci = serde_json::to_string(&saved.oci(Status::Creating)).expect("state serialises");
        hooks::run(HookKind::Prestart, sp.hooks().as_ref(), &oci)?;
        hooks::run(HookKind::CreateRuntime, sp.hooks().as_ref(), &oci)?;
        Ok(oci)
    })
    .map_err(|e| explain_oom(e, &saved.cgroup))?;
    if let Some(socket) = &opts.pidfd_socket {
        pidfd_socket::send(socket.as_fd(), init, pidfd_socket::Kind::Init)?;
    }
    saved.pid_start = state::process_start(init)?
        .ok_or_else(|| Error::Init("container init exited during create".into()))?;
    let dir = undo.dir.as_ref().expect("set above");
    dir.save(&saved)?;
    if let Some(p) = opts.pid_file {
        state::write_pid_file(p, init)?;
    }
    // Until now the init dies if we do (it waits for this on the channel): from here on the
    // saved state finds it.
    chan.send(&sync::Msg::Saved)?;
    tracing::debug!(
        "created container {} with init {init} in {}",
        opts.id,
        dir_path.display()
    );
    undo.dir = None;
    Ok(init)
}

/// An init the OOM killer ended could not say why: say it, as runc does.
fn explain_oom(e: Error, cgroup: &Cgroup) -> Error {
    if !cgroup.oom_killed() {
        return e;
    }
    Error::Init(format!(
        "container init was OOM-killed (linux.resources.memory.limit too low?): {e}"
    ))
}

/// The per-process and Linux attributes of the spec that have their own modules.
fn validate_attrs(
    process: &oci_spec::runtime::Process,
    linux: &oci_spec::runtime::Linux,
) -> Result<()> {
    process::sched::validate(process)?;
    lsm::validate(process, Some(linux))?;
    process::personality::validate(linux)?;
    process::mempolicy::validate(linux)?;
    intel_rdt::validate(linux)?;
    netdev::validate(linux)
}

pub(crate) fn owner() -> String {
    let uid = nix::unistd::geteuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(u)) => u.name,
        _ => uid.to_string(),
    }
}

fn pass_listen_fds(spec: &mut oci_spec::runtime::Spec, n: u32) {
    if let Some(p) = spec.process_mut() {
        let mut env = p.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={n}"));
        env.push("LISTEN_PID=1".into());
        p.set_env(Some(env));
    }
}
