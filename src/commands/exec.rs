//! `exec ID [COMMAND...]`: the process comes from `--process FILE`, or from the container's own
//! config.json process with the command and flags applied, as runc builds it.

use anyhow::{bail, Context, Result};
use berth::container::{self, ExecOptions};
use berth::state::Store;
use oci_spec::runtime::{Capability, Process};

use crate::cli::ExecArgs;

pub fn exec(store: &Store, a: &ExecArgs) -> Result<i32> {
    if a.process.is_some() && (a.process_label.is_some() || a.apparmor.is_some()) {
        bail!("--process-label and --apparmor build a process from flags: with --process, set them in its file");
    }
    let process = match &a.process {
        Some(path) => {
            let text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
            serde_json::from_slice(&text)
                .with_context(|| format!("invalid process json {}", path.display()))?
        }
        None => from_flags(store, a)?,
    };
    let console = a
        .console_socket
        .as_deref()
        .map(berth::console::connect)
        .transpose()?;
    let opts = ExecOptions {
        id: &a.id,
        process,
        console,
        pid_file: a.pid_file.as_deref(),
        detach: a.detach,
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        sub_cgroups: a.cgroup.clone(),
        pidfd_socket: a
            .pidfd_socket
            .as_deref()
            .map(berth::pidfd_socket::connect)
            .transpose()?,
    };
    Ok(container::exec(store, opts)?)
}

fn from_flags(store: &Store, a: &ExecArgs) -> Result<Process> {
    if a.command.is_empty() {
        bail!("exec: a command is required (or --process FILE)");
    }
    let (state, _) = container::state(store, &a.id)?;
    let bundle = berth::spec::load(&state.bundle)?;
    let mut p = bundle.spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    // Checked against the host's LSMs by the library, as the config's own labels are.
    if let Some(label) = &a.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    if let Some(profile) = &a.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut user = p.user().clone();
    if let Some(spec) = &a.user {
        let (uid, gid) = spec
            .split_once(':')
            .map_or((spec.as_str(), None), |(u, g)| (u, Some(g)));
        user.set_uid(
            uid.parse()
                .with_context(|| format!("--user {spec:?}: uid must be a number"))?,
        );
        if let Some(g) = gid {
            user.set_gid(
                g.parse()
                    .with_context(|| format!("--user {spec:?}: gid must be a number"))?,
            );
        }
    }
    if !a.additional_gids.is_empty() {
        user.set_additional_gids(Some(a.additional_gids.clone()));
    }
    p.set_user(user);
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &a.cap {
            let cap: Capability = serde_json::from_value(serde_json::Value::from(name.as_str()))
                .with_context(|| format!("--cap {name:?}: unknown capability"))?;
            let add = |s: &Option<_>| {
                let mut s: std::collections::HashSet<Capability> = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}
