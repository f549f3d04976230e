//! `checkpoint` and `restore`, which share CRIU's flags.

use std::path::Path;

use anyhow::{bail, Context, Result};
use berth::checkpoint::{self, CgroupsMode, CheckpointOptions, CommonOptions, RestoreOptions};
use berth::state::Store;

use crate::cli::{self, CheckpointArgs, CriuArgs, RestoreArgs};

fn common(criu: &Path, a: &CriuArgs) -> Result<CommonOptions> {
    let mut empty_ns = 0;
    for ns in &a.empty_ns {
        match berth::criu::namespace_flag(ns) {
            Some(f) => empty_ns |= f,
            None => bail!("--empty-ns: unknown namespace {ns:?}"),
        }
    }
    Ok(CommonOptions {
        criu: criu.to_path_buf(),
        image_path: a.image_path.clone(),
        work_path: a.work_path.clone(),
        tcp_established: a.tcp_established,
        ext_unix_sk: a.ext_unix_sk,
        shell_job: a.shell_job,
        file_locks: a.file_locks,
        lazy_pages: a.lazy_pages,
        auto_dedup: a.auto_dedup,
        manage_cgroups_mode: a.manage_cgroups_mode.map(|m| match m {
            cli::CgroupsMode::Soft => CgroupsMode::Soft,
            cli::CgroupsMode::Full => CgroupsMode::Full,
            cli::CgroupsMode::Strict => CgroupsMode::Strict,
            cli::CgroupsMode::Ignore => CgroupsMode::Ignore,
        }),
        empty_ns,
    })
}

/// `ADDRESS:PORT`, as runc splits it (the last colon, so an IPv6 address keeps its own).
fn page_server(s: &str) -> Result<(String, i32)> {
    let (addr, port) = s
        .rsplit_once(':')
        .with_context(|| format!("--page-server {s:?}: want ADDRESS:PORT"))?;
    let port = port
        .parse()
        .with_context(|| format!("--page-server {s:?}: bad port"))?;
    Ok((addr.to_string(), port))
}

pub fn checkpoint(store: &Store, criu: &Path, a: &CheckpointArgs) -> Result<i32> {
    let opts = CheckpointOptions {
        common: common(criu, &a.criu)?,
        parent_path: a.parent_path.clone(),
        leave_running: a.leave_running,
        tcp_skip_in_flight: a.tcp_skip_in_flight,
        link_remap: a.link_remap,
        pre_dump: a.pre_dump,
        status_fd: (a.status_fd >= 0).then_some(a.status_fd),
        page_server: a.page_server.as_deref().map(page_server).transpose()?,
    };
    checkpoint::checkpoint(store, &a.id, &opts)?;
    Ok(0)
}

pub fn restore(store: &Store, criu: &Path, a: &RestoreArgs) -> Result<i32> {
    let console = a
        .console_socket
        .as_deref()
        .map(berth::console::connect)
        .transpose()?;
    let opts = RestoreOptions {
        common: common(criu, &a.criu)?,
        id: &a.id,
        bundle: &a.bundle,
        pid_file: a.pid_file.as_deref(),
        console,
        detach: a.detach,
        no_subreaper: a.no_subreaper,
        no_pivot: a.no_pivot,
        lsm_profile: a.lsm_profile.clone(),
        lsm_mount_context: a.lsm_mount_context.clone(),
    };
    Ok(checkpoint::restore(store, opts)?)
}
