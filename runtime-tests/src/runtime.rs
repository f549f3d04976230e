//! Invoking the runtime under test, always with a deadline so a hung runtime
//! fails one test instead of hanging the suite.

use anyhow::{bail, Context, Result};
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Result of one runtime invocation.
#[derive(Debug)]
pub struct Out {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub what: String,
}

impl Out {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// Fails with the command and its stderr unless it exited 0.
    pub fn ok(self) -> Result<Out> {
        if !self.success() {
            bail!(
                "`{}` failed ({}): {}",
                self.what,
                self.describe(),
                self.stderr.trim()
            );
        }
        Ok(self)
    }

    /// Fails unless the command exited non-zero (a timeout is not a clean refusal).
    pub fn failed(self) -> Result<Out> {
        match self.status {
            None => bail!("`{}` timed out", self.what),
            Some(s) if s.success() => bail!("`{}` succeeded, expected an error", self.what),
            Some(_) => Ok(self),
        }
    }

    pub fn describe(&self) -> String {
        match self.status {
            None => "timed out".into(),
            Some(s) => s.to_string(),
        }
    }
}

/// A runtime process in flight. Its stdout/stderr go to files, not pipes: a
/// detached container inherits them and would keep a pipe open forever.
pub struct Running {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    deadline: Instant,
    what: String,
}

impl Running {
    /// What the runtime has written to stdout so far; it may still be running.
    pub fn stdout_so_far(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Whether the runtime has exited (it is then reaped by [`Running::wait`]).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    pub fn wait(mut self) -> Result<Out> {
        let status = loop {
            if let Some(s) = self.child.try_wait()? {
                break Some(s);
            }
            if Instant::now() >= self.deadline {
                self.kill();
                break None;
            }
            sleep(Duration::from_millis(10));
        };
        Ok(Out {
            status,
            stdout: fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: fs::read_to_string(&self.err).unwrap_or_default(),
            what: std::mem::take(&mut self.what),
        })
    }

    /// Kills the runtime and whatever it forked that is still in its process group.
    fn kill(&mut self) {
        // SAFETY: kill(2) touches no memory. The runtime leads its own process group (see
        // spawn), so this reaches only what it started.
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// A test that bails out early must not leave a runtime behind.
impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

pub struct Runtime {
    pub path: PathBuf,
    pub timeout: Duration,
    /// Run it as this (uid, gid), without supplementary groups (rootless mode).
    pub user: Option<(u32, u32)>,
    /// Global flags put before every command's own (`--runtime-arg`).
    pub global_args: Vec<String>,
}

impl Runtime {
    /// Starts `runtime ARGS`, capturing output into `outdir/<tag>.{out,err}`;
    /// `customize` may add fds or environment before spawning.
    pub fn spawn(
        &self,
        args: &[&str],
        outdir: &Path,
        tag: &str,
        customize: impl FnOnce(&mut Command),
    ) -> Result<Running> {
        let out = outdir.join(format!("{tag}.out"));
        let err = outdir.join(format!("{tag}.err"));
        let mut all: Vec<&str> = self.global_args.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        let what = format!("{} {}", self.path.display(), all.join(" "));
        let mut cmd = Command::new(&self.path);
        cmd.args(&all)
            .stdin(Stdio::null())
            .stdout(File::create(&out)?)
            .stderr(File::create(&err)?)
            .process_group(0);
        if let Some((uid, gid)) = self.user {
            // std drops the supplementary groups when root sets a uid.
            cmd.uid(uid).gid(gid).env_remove("XDG_RUNTIME_DIR");
        }
        customize(&mut cmd);
        let child = cmd.spawn().with_context(|| format!("spawning {what}"))?;
        Ok(Running {
            child,
            out,
            err,
            deadline: Instant::now() + self.timeout,
            what,
        })
    }
}
