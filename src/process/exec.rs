//! Finding the container's program in its PATH, and the final execve.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;

use crate::{Error, Result};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolve `process.args[0]` as execvp would, with the container's PATH, inside the container.
/// Done before "ready" so a missing program fails `create`, not `start`.
pub fn resolve(process: &Process) -> Result<PathBuf> {
    let arg0 = &process.args().as_ref().expect("validated")[0];
    if arg0.contains('/') {
        return Ok(PathBuf::from(arg0));
    }
    let env = process.env().as_deref().unwrap_or_default();
    let path = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
    path.split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(arg0))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .ok_or_else(|| Error::Init(format!("exec {arg0:?}: executable file not found in $PATH")))
}

pub fn exec(program: &Path, process: &Process) -> Result<Infallible> {
    let cstr = |s: &str| CString::new(s).map_err(|_| Error::config(format_args!("{s:?}: contains NUL")));
    let args = process.args().as_deref().unwrap_or_default();
    let argv = args.iter().map(|a| cstr(a)).collect::<Result<Vec<_>>>()?;
    let envp = process.env().iter().flatten().map(|e| cstr(e)).collect::<Result<Vec<_>>>()?;
    let path = cstr(&program.to_string_lossy())?;
    let err = nix::unistd::execve(&path, &argv, &envp).unwrap_err();
    Err(Error::sys(format!("exec {}", program.display()), err))
}
