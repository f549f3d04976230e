//! The last steps of every container process (the init and, later, `exec`'d ones): rlimits,
//! cwd, program lookup, user and capabilities, then the seccomp filter and the final execve.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;

use super::{rlimits, sched, user};
use crate::security::{capabilities, lsm, seccomp};
use crate::{syscall, Context, Error, Result};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What [`prepare`] leaves for [`exec`].
pub struct Prepared<'a> {
    program: PathBuf,
    seccomp: Option<seccomp::Filter<'a>>,
    /// The final capability sets, when CAP_SYS_ADMIN was kept to load the filter.
    caps: Option<capabilities::Sets>,
}

/// Everything that can fail for a bad config, done before "ready".
pub fn prepare<'a>(
    process: &Process,
    seccomp: Option<seccomp::Filter<'a>>,
    procfs: Option<BorrowedFd>,
) -> Result<Prepared<'a>> {
    // While still privileged: real-time classes and LSM transitions need capabilities.
    sched::apply(process)?;
    lsm::apply(process, procfs)?;
    rlimits::apply(process.rlimits().as_deref().unwrap_or_default())?;
    user::enter_cwd(process.cwd())?;
    let program = resolve(process)?;
    capabilities::drop_bounding(process.capabilities().as_ref())?;
    user::switch(process.user())?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: kept until then.
    let keep = seccomp.is_some() && !nnp;
    let sets = capabilities::apply(process.capabilities().as_ref(), keep)?;
    if nnp {
        nix::sys::prctl::set_no_new_privs().ctx(|| "set no_new_privs")?;
    }
    Ok(Prepared {
        program,
        seccomp,
        caps: keep.then_some(sets),
    })
}

/// Resolve `process.args[0]` as execvp would, with the container's PATH, inside the container.
/// Done before "ready" so a missing program fails `create`, not `start`.
fn resolve(process: &Process) -> Result<PathBuf> {
    let arg0 = &process.args().as_ref().expect("validated")[0];
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if arg0.contains('/') {
        let path = PathBuf::from(arg0);
        return match path.metadata() {
            Err(e) => Err(Error::io(format!("exec {arg0:?}"), e)),
            // What execve would say: engines map "permission denied" to exit status 126.
            Ok(_) if !executable(&path) => Err(Error::sys(
                format!("exec {arg0:?}"),
                nix::errno::Errno::EACCES,
            )),
            Ok(_) => Ok(path),
        };
    }
    let env = process.env().as_deref().unwrap_or_default();
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(arg0))
        .find(|p| executable(p))
        .ok_or_else(|| Error::Init(format!("exec {arg0:?}: executable file not found in $PATH")))
}

/// Exec the program with only stdio and `preserve_fds` more fds. What allocates comes before the
/// seccomp filter: after it, only the syscalls its module lists may run.
pub fn exec(prepared: Prepared, process: &Process, preserve_fds: u32) -> Result<Infallible> {
    let cstr =
        |s: &str| CString::new(s).map_err(|_| Error::config(format_args!("{s:?}: contains NUL")));
    let args = process.args().as_deref().unwrap_or_default();
    let argv = args.iter().map(|a| cstr(a)).collect::<Result<Vec<_>>>()?;
    let envp = process
        .env()
        .iter()
        .flatten()
        .map(|e| cstr(e))
        .collect::<Result<Vec<_>>>()?;
    let program = &prepared.program;
    let path = cstr(&program.to_string_lossy())?;
    // Before the filter, which need not allow close_range (runc marks them early too).
    syscall::cloexec_from(3 + preserve_fds).ctx(|| "mark fds close-on-exec")?;
    if let Some(filter) = &prepared.seccomp {
        filter.load()?;
    }
    if let Some(sets) = prepared.caps {
        sets.set()?;
    }
    let err = nix::unistd::execve(&path, &argv, &envp).unwrap_err();
    Err(Error::sys(format!("exec {}", program.display()), err))
}
