//! linux.seccomp. libseccomp compiles the profile to BPF in the init before "ready" (so a profile
//! the kernel can't take fails `create`); `exec` installs it with one seccomp(2) call right before
//! execve, so the runtime's own setup runs unfiltered.
//!
//! As with runc, a profile must allow what the runtime still does after the load: capset (when
//! the filter needed CAP_SYS_ADMIN, see [`crate::process::exec::prepare`]), sendmsg (with a
//! listener) and execve.

use std::fs::File;
use std::io::{Read, Seek};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::{
    Arch, Linux, LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompArg,
    LinuxSeccompFilterFlag as Flag, LinuxSeccompOperator as Op, Spec,
};

use crate::{Context, Error, Result};

/// A larger errno is clamped to this by the kernel (MAX_ERRNO): refuse it rather than change it.
const MAX_ERRNO: u32 = 4095;
/// Arguments a syscall rule can test.
const MAX_ARGS: usize = 6;
/// The kernel's limit on one BPF program (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;
/// The runtime sends the notify fd with this syscall after the load: notifying it would deadlock.
const SEND_SYSCALL: &str = "sendmsg";

/// One syscall rule, checked: each inner list of conditions is ANDed, the lists are ORed.
struct Rule<'a> {
    field: String,
    names: &'a [String],
    action: ScmpAction,
    conditions: Vec<Vec<ScmpArgCompare>>,
}

/// The profile, checked without the kernel.
struct Plan<'a> {
    default: ScmpAction,
    archs: Vec<ScmpArch>,
    flags: libc::c_ulong,
    rules: Vec<Rule<'a>>,
    notify: bool,
}

/// Refuse a profile that can't be honoured before `create` changes anything.
pub fn validate(spec: &Spec) -> Result<()> {
    match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(sc) => plan(sc).map(drop),
        None => Ok(()),
    }
}

fn plan(sc: &LinuxSeccomp) -> Result<Plan<'_>> {
    let default = action(
        sc.default_action(),
        sc.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )?;
    if default == ScmpAction::Notify {
        return Err(Error::config(
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action (the runtime's last syscalls would wait for the listener)",
        ));
    }
    let mut rules = Vec::new();
    for (i, sys) in sc.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let action = action(sys.action(), sys.errno_ret(), &format!("{field}.errnoRet"))?;
        if action == ScmpAction::Notify && sys.names().iter().any(|n| n == SEND_SYSCALL) {
            return Err(Error::config(format_args!(
                "{field}.action: SCMP_ACT_NOTIFY cannot be used for {SEND_SYSCALL}: the runtime sends the listener its fd with it"
            )));
        }
        let conditions = conditions(sys.args().as_deref().unwrap_or_default(), &field)?;
        rules.push(Rule {
            field,
            names: sys.names(),
            action,
            conditions,
        });
    }
    let notify = rules.iter().any(|r| r.action == ScmpAction::Notify);
    if notify && sc.listener_path().is_none() {
        return Err(Error::config(
            "linux.seccomp.listenerPath: required by the SCMP_ACT_NOTIFY rules",
        ));
    }
    let mut flags = if notify {
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
    } else {
        0
    };
    for f in sc.flags().iter().flatten() {
        flags |= match f {
            Flag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            Flag::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            // Only meaningful with a listener; libseccomp (and so runc) drops it otherwise.
            Flag::SeccompFilterFlagWaitKillableRecv if notify => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
            Flag::SeccompFilterFlagWaitKillableRecv => 0,
            // The init is single-threaded: there is no other thread to synchronise.
            Flag::SeccompFilterFlagTsync => 0,
        };
    }
    let archs = sc
        .architectures()
        .iter()
        .flatten()
        .map(|a| arch(*a))
        .collect();
    Ok(Plan {
        default,
        archs,
        flags,
        rules,
        notify,
    })
}

/// `errno_field` names the errnoRet that goes with the action, for the range error.
fn action(action: Action, errno_ret: Option<u32>, errno_field: &str) -> Result<ScmpAction> {
    let ret = |max: u32| match errno_ret {
        Some(e) if e > max => Err(Error::config(format_args!(
            "{errno_field}: {e} is out of range (0..={max})"
        ))),
        e => Ok(e.unwrap_or(libc::EPERM as u32)),
    };
    Ok(match action {
        Action::ScmpActKill | Action::ScmpActKillThread => ScmpAction::KillThread,
        Action::ScmpActKillProcess => ScmpAction::KillProcess,
        Action::ScmpActTrap => ScmpAction::Trap,
        Action::ScmpActErrno => ScmpAction::Errno(ret(MAX_ERRNO)? as i32),
        Action::ScmpActTrace => ScmpAction::Trace(ret(u16::MAX.into())? as u16),
        Action::ScmpActLog => ScmpAction::Log,
        Action::ScmpActNotify => ScmpAction::Notify,
        Action::ScmpActAllow => ScmpAction::Allow,
    })
}

/// Conditions on different arguments are ANDed; several on the same argument can't all hold at
/// once, so each of them makes its own rule (ORed), combined with the conditions on the others.
fn conditions(args: &[LinuxSeccompArg], field: &str) -> Result<Vec<Vec<ScmpArgCompare>>> {
    let mut by_index: [Vec<ScmpArgCompare>; MAX_ARGS] = Default::default();
    for (j, a) in args.iter().enumerate() {
        let Some(slot) = by_index.get_mut(a.index()) else {
            return Err(Error::config(format_args!(
                "{field}.args[{j}].index: {} is out of range (0..{MAX_ARGS})",
                a.index()
            )));
        };
        let op = match a.op() {
            Op::ScmpCmpNe => ScmpCompareOp::NotEqual,
            Op::ScmpCmpLt => ScmpCompareOp::Less,
            Op::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
            Op::ScmpCmpEq => ScmpCompareOp::Equal,
            Op::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
            Op::ScmpCmpGt => ScmpCompareOp::Greater,
            // (arg & value) == valueTwo
            Op::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(a.value()),
        };
        let datum = if a.op() == Op::ScmpCmpMaskedEq {
            a.value_two().unwrap_or(0)
        } else {
            a.value()
        };
        slot.push(ScmpArgCompare::new(a.index() as u32, op, datum));
    }
    // The cartesian product of the per-argument alternatives.
    let mut out = vec![Vec::new()];
    for alternatives in by_index.iter().filter(|v| !v.is_empty()) {
        out = out
            .iter()
            .flat_map(|prefix| {
                alternatives
                    .iter()
                    .map(move |c| [prefix.as_slice(), &[*c]].concat())
            })
            .collect();
    }
    Ok(out)
}

fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// Connect to linux.seccomp.listenerPath. Done by the runtime before the clone: the path is on
/// the host. None without a listener, or when no rule notifies (nothing would ever be sent).
pub fn connect_listener(linux: &Linux) -> Result<Option<OwnedFd>> {
    let Some(sc) = linux.seccomp().as_ref() else {
        return Ok(None);
    };
    let Some(path) = sc.listener_path() else {
        return Ok(None);
    };
    if !sc
        .syscalls()
        .iter()
        .flatten()
        .any(|s| s.action() == Action::ScmpActNotify)
    {
        tracing::warn!(
            "linux.seccomp.listenerPath {}: no SCMP_ACT_NOTIFY rule, not used",
            path.display()
        );
        return Ok(None);
    }
    // std's sockets are close-on-exec.
    let stream = UnixStream::connect(path)
        .ctx(|| format!("linux.seccomp.listenerPath: connect {}", path.display()))?;
    Ok(Some(stream.into()))
}

/// A compiled filter, ready to be installed.
pub struct Filter<'a> {
    prog: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
    /// Where the notify fd goes, and the message that goes with it.
    listener: Option<(BorrowedFd<'a>, String)>,
}

/// Compile the profile. `state` is the container's state JSON, sent to the listener with the
/// notify fd as runc's `ContainerProcessState`.
pub fn compile<'a>(
    sc: &LinuxSeccomp,
    listener: Option<BorrowedFd<'a>>,
    state: &str,
) -> Result<Filter<'a>> {
    let plan = plan(sc)?;
    let lib = |what: &str, e: libseccomp::error::SeccompError| {
        Error::Init(format!("linux.seccomp: {what}: {e}"))
    };
    let mut ctx = ScmpFilterContext::new(plan.default).map_err(|e| lib("create filter", e))?;
    for a in &plan.archs {
        ctx.add_arch(*a)
            .map_err(|e| lib(&format!("add architecture {a:?}"), e))?;
    }
    for rule in &plan.rules {
        // libseccomp refuses a rule that repeats the default action; it would change nothing.
        if rule.action == plan.default {
            continue;
        }
        for name in rule.names {
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                tracing::debug!("{}.names: unknown syscall {name:?}, skipped", rule.field);
                continue;
            };
            for c in &rule.conditions {
                ctx.add_rule_conditional(rule.action, nr, c)
                    .map_err(|e| lib(&format!("{}: add rule for {name}", rule.field), e))?;
            }
        }
    }
    let prog = export(&ctx)?;
    let listener = match (listener, plan.notify) {
        (Some(fd), true) => Some((fd, listener_message(sc, state)?)),
        (None, true) => {
            return Err(Error::Init(
                "linux.seccomp.listenerPath: not connected".into(),
            ))
        }
        (_, false) => None,
    };
    Ok(Filter {
        prog,
        flags: plan.flags,
        listener,
    })
}

/// The BPF program libseccomp generates, read back through a memfd (libseccomp 2.5 can only
/// write it to an fd).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>> {
    let fd = nix::sys::memfd::memfd_create("seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .ctx(|| "linux.seccomp: memfd_create")?;
    let mut file = File::from(fd);
    ctx.export_bpf(file.as_fd())
        .map_err(|e| Error::Init(format!("linux.seccomp: export filter: {e}")))?;
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut bytes))
        .ctx(|| "linux.seccomp: read filter")?;
    let prog: Vec<libc::sock_filter> = bytes
        .chunks_exact(std::mem::size_of::<libc::sock_filter>())
        .map(|b| libc::sock_filter {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect();
    if prog.len() > MAX_INSNS {
        return Err(Error::Init(format!(
            "linux.seccomp: the filter has {} instructions, more than the kernel's {MAX_INSNS}",
            prog.len()
        )));
    }
    Ok(prog)
}

fn listener_message(sc: &LinuxSeccomp, state: &str) -> Result<String> {
    let state: serde_json::Value =
        serde_json::from_str(state).map_err(|e| Error::Init(format!("container state: {e}")))?;
    let msg = serde_json::json!({
        "ociVersion": crate::state::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": state["pid"],
        "metadata": sc.listener_metadata().as_deref().unwrap_or_default(),
        "state": state,
    });
    Ok(msg.to_string())
}

impl Filter<'_> {
    /// Install the filter, and send its notify fd to the listener. From here on only the
    /// syscalls listed at the top of this file may run.
    pub fn load(&self) -> Result<()> {
        let prog = libc::sock_fprog {
            len: self.prog.len() as u16, // checked against MAX_INSNS in export()
            filter: self.prog.as_ptr().cast_mut(),
        };
        // SAFETY: prog describes a live BPF program that the kernel copies and verifies.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &prog,
            )
        };
        let fd = nix::errno::Errno::result(r)
            .ctx(|| format!("linux.seccomp: load filter (flags {:#x})", self.flags))?;
        let Some((sock, msg)) = &self.listener else {
            return Ok(());
        };
        // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returned a new fd we own.
        let notify = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let fds = [notify.as_raw_fd()];
        let iov = [std::io::IoSlice::new(msg.as_bytes())];
        sendmsg::<()>(
            sock.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .ctx(|| "linux.seccomp.listenerPath: send the notify fd")?;
        // The notify fd is close-on-exec: leave it to execve rather than make a close(2) here.
        let _ = notify.into_raw_fd();
        Ok(())
    }
}

/// linux.seccomp in the `features` document: what [`plan`] accepts.
pub fn features() -> serde_json::Value {
    const ARCHS: &[&str] = &[
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_ARM",
        "SCMP_ARCH_LOONGARCH64",
        "SCMP_ARCH_M68K",
        "SCMP_ARCH_MIPS",
        "SCMP_ARCH_MIPS64",
        "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL",
        "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32",
        "SCMP_ARCH_PARISC",
        "SCMP_ARCH_PARISC64",
        "SCMP_ARCH_PPC",
        "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE",
        "SCMP_ARCH_RISCV64",
        "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X",
        "SCMP_ARCH_SH",
        "SCMP_ARCH_SHEB",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X86_64",
    ];
    // Only what the installed libseccomp can put in a filter (2.5 has no LoongArch, say).
    let archs: Vec<&str> = ARCHS
        .iter()
        .copied()
        .filter(|a| libseccomp_takes(a))
        .collect();
    serde_json::json!({
        "enabled": true,
        "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
        "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
        "archs": archs,
        "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
    })
}

/// Whether libseccomp can add this architecture (as the spec names it) to a filter.
fn libseccomp_takes(name: &str) -> bool {
    let Ok(a) = serde_json::from_value::<Arch>(serde_json::Value::from(name)) else {
        return false;
    };
    ScmpFilterContext::new(ScmpAction::Allow).is_ok_and(|mut ctx| ctx.add_arch(arch(a)).is_ok())
}
