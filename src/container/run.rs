//! `run`: create + start, and in the foreground wait for the container, forward signals to it,
//! bridge the user's terminal when process.terminal is set, and return its exit status.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::create::check;
use super::{create, delete, start, CreateOptions};
use crate::state::Store;
use crate::{console, Context, Result};

pub struct RunOptions<'a> {
    pub create: CreateOptions<'a>,
    pub detach: bool,
    /// Keep the container's state after it exits (runc --keep).
    pub keep: bool,
}

/// Run a container; returns the exit code for the runtime (the container's, or 128+signal).
pub fn run(store: &Store, mut opts: RunOptions) -> Result<i32> {
    let id = opts.create.id.to_string();
    if opts.detach {
        create(store, opts.create)?;
        start(store, &id)?;
        return Ok(0);
    }
    let checked = check(&opts.create)?;
    let subreaper = !opts.create.no_subreaper;
    let fg = Foreground::prepare(checked.terminal(), &mut opts.create.console, subreaper)?;
    let init = checked.create(store, opts.create)?;
    let result = fg.attach(init, || start(store, &id));
    if !opts.keep {
        if let Err(e) = delete(store, &id, true) {
            tracing::warn!("delete container {id:?} after run: {e}");
        }
    }
    result
}

/// The runtime's side of a container process it waits for: signals forwarded, children reaped,
/// the user's terminal bridged.
pub(crate) struct Foreground {
    signals: SignalFd,
    /// Our end of the console socket when we hold the pty ourselves.
    console: Option<OwnedFd>,
}

impl Foreground {
    /// Before the process exists: block the signals it should get (it unblocks them itself, so
    /// none is lost), and with a terminal and nobody to hand the pty to, take the pty ourselves
    /// (`console` gets the process's end). A `subreaper` also gets the process's orphans.
    pub(crate) fn prepare(
        terminal: bool,
        console: &mut Option<OwnedFd>,
        subreaper: bool,
    ) -> Result<Foreground> {
        let mut ours = None;
        if terminal && console.is_none() {
            let (mine, theirs) = socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .ctx(|| "create console socketpair")?;
            *console = Some(theirs);
            ours = Some(mine);
        }
        let mut set = SigSet::empty();
        for s in FORWARDED.iter().chain(&[Signal::SIGCHLD, Signal::SIGWINCH]) {
            set.add(*s);
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
            .ctx(|| "block signals")?;
        let signals =
            SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).ctx(|| "create signalfd")?;
        if subreaper {
            crate::process::become_subreaper()?;
        }
        Ok(Foreground {
            signals,
            console: ours,
        })
    }

    /// Once the process is ready: take its pty, let it go (`start`), and wait for it.
    pub(crate) fn attach(self, pid: Pid, start: impl FnOnce() -> Result<()>) -> Result<i32> {
        let master = match &self.console {
            Some(sock) => Some(console::receive(sock.as_fd())?),
            None => None,
        };
        start()?;
        let _raw = match &master {
            Some(m) => RawTerminal::enter(m.as_fd())?,
            None => None,
        };
        wait(pid, &self.signals, master.as_ref())
    }
}

/// Signals the user sends to the runtime that go on to the container.
const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGPIPE,
    Signal::SIGALRM,
    Signal::SIGTERM,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGIO,
    Signal::SIGPWR,
    Signal::SIGVTALRM,
    Signal::SIGPROF,
];

fn wait(init: Pid, sfd: &SignalFd, master: Option<&OwnedFd>) -> Result<i32> {
    let stdin = std::io::stdin();
    let mut stdin_open = master.is_some();
    let mut code = None;
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = master {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r.ctx(|| "poll")?,
        };
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            if let Some(info) = sfd.read_signal().ctx(|| "read signalfd")? {
                let sig = Signal::try_from(info.ssi_signo as i32).ok();
                match sig {
                    Some(Signal::SIGCHLD) => code = code.or(reap(init)?),
                    Some(Signal::SIGWINCH) => {
                        if let Some(m) = master {
                            copy_winsize(stdin.as_fd(), m.as_fd());
                        }
                    }
                    Some(s) => {
                        let _ = kill(init, s);
                    }
                    None => {}
                }
            }
        }
        if let Some(m) = master {
            // The pty keeps output after the process exits: drain it before we return.
            if ready[1] && !copy(m.as_fd(), std::io::stdout().as_fd(), &mut buf) {
                if let Some(c) = code {
                    return Ok(c);
                }
            }
            if stdin_open && ready.get(2).copied().unwrap_or(false) {
                stdin_open = copy(stdin.as_fd(), m.as_fd(), &mut buf);
            }
            continue;
        }
        if let Some(c) = code {
            return Ok(c);
        }
    }
}

/// Reap every exited child (we are a subreaper); the init's status becomes the exit code.
fn reap(init: Pid) -> Result<Option<i32>> {
    let mut code = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, c)) if pid == init => code = Some(c),
            Ok(WaitStatus::Signaled(pid, s, _)) if pid == init => code = Some(128 + s as i32),
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return Ok(code),
            Ok(_) => {}
            Err(e) => return Err(crate::Error::sys("wait for container", e)),
        }
    }
}

/// Copy what is readable now; false at end of input.
fn copy(from: BorrowedFd, to: BorrowedFd, buf: &mut [u8]) -> bool {
    match nix::unistd::read(from, buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                match nix::unistd::write(to, rest) {
                    Ok(w) => rest = &rest[w..],
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => break,
                }
            }
            true
        }
    }
}

nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);

fn copy_winsize(from: BorrowedFd, to: BorrowedFd) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: ws is a valid winsize for both ioctls; failures (stdin not a tty) are harmless.
    unsafe {
        // A terminal of unknown size (0x0) must not override process.consoleSize.
        if get_winsize(from.as_raw_fd(), &mut ws).is_ok() && (ws.ws_row, ws.ws_col) != (0, 0) {
            let _ = set_winsize(to.as_raw_fd(), &ws);
        }
    }
}

/// The user's terminal in raw mode while we bridge it, restored on drop.
struct RawTerminal(Termios);

impl RawTerminal {
    fn enter(master: BorrowedFd) -> Result<Option<RawTerminal>> {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return Ok(None);
        };
        copy_winsize(stdin.as_fd(), master);
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ctx(|| "set terminal raw")?;
        Ok(Some(RawTerminal(saved)))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.0);
    }
}
