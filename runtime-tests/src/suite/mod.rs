//! The tests. Each is a plain function over a fresh context; the tables in the
//! submodules name them.

use crate::harness::Ctx;
use anyhow::{bail, Result};
use std::fmt;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

mod apparmor;
mod attacks;
mod attrs;
mod cgroups;
mod checkpoint;
pub mod console;
mod errors;
pub mod exec;
mod features;
mod hooks;
mod idmap;
pub mod inside;
pub mod lifecycle;
mod seccomp;
mod selinux;

pub type Test = (&'static str, fn(&mut Ctx) -> Result<()>);

pub fn all() -> Vec<Test> {
    [
        lifecycle::TESTS,
        errors::TESTS,
        inside::TESTS,
        idmap::TESTS,
        hooks::TESTS,
        console::TESTS,
        features::TESTS,
        exec::TESTS,
        seccomp::TESTS,
        attacks::TESTS,
        cgroups::TESTS,
        attrs::TESTS,
        apparmor::TESTS,
        selinux::TESTS,
        checkpoint::TESTS,
    ]
    .concat()
}

/// Returned (as an error) by a test that cannot run on this host.
#[derive(Debug)]
pub struct Skip(pub String);

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Skip {}

pub fn skip(why: impl Into<String>) -> anyhow::Error {
    Skip(why.into()).into()
}

/// Polls until `cond` holds or the context's timeout passes.
pub fn wait_for(ctx: &Ctx, what: &str, mut cond: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + ctx.timeout();
    while !cond() {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        sleep(Duration::from_millis(20));
    }
    Ok(())
}

pub fn wait_file(ctx: &Ctx, path: &Path) -> Result<()> {
    wait_for(ctx, &path.display().to_string(), || path.exists())
}

/// A process is gone once it has no /proc entry or is a zombie nobody reaped.
pub fn process_gone(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}
