//! The eBPF device filter of a cgroup v2 cgroup: the program (a handful of instructions, encoded
//! here: no BPF library) and the bpf(2) calls that load it and attach it in place of the one
//! berth attached before.
//!
//! The kernel runs every BPF_CGROUP_DEVICE program of a cgroup and its ancestors on each mknod
//! and on each open of a device node; access is granted only if all of them return 1.

use std::ffi::CStr;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;

use crate::{Context, Error, Result};

/// struct bpf_cgroup_dev_ctx: `access_type` holds the device type in its low 16 bits and the
/// access in its high 16 bits, then `major`, `minor` (all u32).
pub(super) const DEV_BLOCK: i32 = 1;
pub(super) const DEV_CHAR: i32 = 2;
pub(super) const ACC_MKNOD: u8 = 1;
pub(super) const ACC_READ: u8 = 2;
pub(super) const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// What berth names its programs, so that a re-apply replaces its own and leaves others alone.
const PROG_NAME: &CStr = c"berth_devices";
/// The program calls no kernel helper, so no GPL-compatible license is needed.
const LICENSE: &CStr = c"Apache-2.0";

/// One instruction, laid out as struct bpf_insn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(super) struct Insn {
    code: u8,
    /// dst_reg and src_reg, 4 bits each (dst in the low bits on little-endian machines).
    regs: u8,
    off: i16,
    imm: i32,
}

// Opcode parts: instruction class, operation, operand source and size.
const CLASS_LDX: u8 = 0x01;
const CLASS_ALU32: u8 = 0x04;
const CLASS_JMP: u8 = 0x05;
const MODE_MEM: u8 = 0x60;
const SIZE_W: u8 = 0x00;
const SRC_IMM: u8 = 0x00;
const SRC_REG: u8 = 0x08;
const OP_AND: u8 = 0x50;
const OP_RSH: u8 = 0x70;
const OP_MOV: u8 = 0xb0;
const OP_JEQ: u8 = 0x10;
const OP_JNE: u8 = 0x50;
const OP_EXIT: u8 = 0x90;

/// Registers the program uses: R0 the verdict, R1 the context on entry (then scratch), R2..R5
/// the device type, access, major and minor.
const R0: u8 = 0;
const R1: u8 = 1;
const TYPE: u8 = 2;
const ACCESS: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        let regs = if cfg!(target_endian = "little") {
            dst | src << 4
        } else {
            dst << 4 | src
        };
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }
    /// dst = *(u32 *)(src + off)
    const fn load_u32(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(CLASS_LDX | MODE_MEM | SIZE_W, dst, src, off, 0)
    }
    /// dst (32 bits) op= imm; the upper half of dst becomes zero.
    const fn alu32(op: u8, dst: u8, imm: i32) -> Insn {
        Insn::new(CLASS_ALU32 | op | SRC_IMM, dst, 0, 0, imm)
    }
    const fn mov32_reg(dst: u8, src: u8) -> Insn {
        Insn::new(CLASS_ALU32 | OP_MOV | SRC_REG, dst, src, 0, 0)
    }
    /// if dst op imm: skip `off` instructions (imm is sign-extended to 64 bits).
    const fn jump_imm(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(CLASS_JMP | op | SRC_IMM, dst, 0, off, imm)
    }
    const fn jump_reg(op: u8, dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(CLASS_JMP | op | SRC_REG, dst, src, off, 0)
    }
    const fn exit() -> Insn {
        Insn::new(CLASS_JMP | OP_EXIT, 0, 0, 0, 0)
    }
    /// R0 = verdict; exit.
    fn verdict(allow: bool) -> [Insn; 2] {
        [Insn::alu32(OP_MOV, R0, allow as i32), Insn::exit()]
    }
}

/// A device pattern of the program: type (DEV_BLOCK or DEV_CHAR), numbers (None matches any)
/// and the access bits it lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pattern {
    pub dev_type: i32,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

/// The program for a policy: `exceptions` get the verdict `!default_allow`, everything else
/// `default_allow`. An exception to "deny" (an allowed device) must list every access asked
/// for (an open for reading and writing needs both `r` and `w` in one pattern); an exception to
/// "allow" (a denied device) matches as soon as it lists any of them. That is how the v1
/// device controller matches its exceptions in the two modes.
pub(super) fn device_program(default_allow: bool, exceptions: &[Pattern]) -> Vec<Insn> {
    let mut p = vec![
        Insn::load_u32(TYPE, R1, 0),
        Insn::alu32(OP_AND, TYPE, 0xffff),
        Insn::load_u32(ACCESS, R1, 0),
        Insn::alu32(OP_RSH, ACCESS, 16),
        Insn::load_u32(MAJOR, R1, 4),
        Insn::load_u32(MINOR, R1, 8),
    ];
    for e in exceptions {
        // Each test jumps past the rest of the block when the pattern does not match; the
        // distances are set once the block's length is known.
        let mut block = vec![Insn::jump_imm(OP_JNE, TYPE, e.dev_type, 0)];
        if e.access & ACC_ALL != ACC_ALL {
            block.push(Insn::mov32_reg(R1, ACCESS));
            block.push(Insn::alu32(OP_AND, R1, e.access.into()));
            block.push(if default_allow {
                Insn::jump_imm(OP_JEQ, R1, 0, 0)
            } else {
                Insn::jump_reg(OP_JNE, R1, ACCESS, 0)
            });
        }
        // Numbers above i32::MAX become negative, sign-extended immediates that no u32 loaded
        // from the context equals: such a pattern matches nothing, and no device has them.
        for (reg, n) in [(MAJOR, e.major), (MINOR, e.minor)] {
            if let Some(n) = n {
                block.push(Insn::jump_imm(OP_JNE, reg, n as i32, 0));
            }
        }
        block.extend(Insn::verdict(!default_allow));
        // Every conditional jump of the block goes to its end (the verdict's exit stays).
        let len = block.len();
        for (i, insn) in block.iter_mut().enumerate() {
            if insn.code & 0x07 == CLASS_JMP && insn.code & 0xf0 != OP_EXIT {
                insn.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.extend(Insn::verdict(default_allow));
    p
}

// bpf(2) commands, program and attach types, flags (include/uapi/linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
/// The kernel attaches at most 64 programs of one type to a cgroup.
const MAX_PROGS: usize = 64;

/// The attr of BPF_PROG_LOAD, up to prog_name (all there since 4.15, as device programs are).
#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// The attr of BPF_PROG_ATTACH and BPF_PROG_DETACH.
#[repr(C)]
struct Attach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// The attr of BPF_PROG_QUERY. Padding is explicit: older kernels require it to be zero.
#[repr(C)]
struct Query {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: u32,
}

/// The attr of BPF_PROG_GET_FD_BY_ID.
#[repr(C)]
struct GetFdById {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// The attr of BPF_OBJ_GET_INFO_BY_FD.
#[repr(C)]
struct GetInfo {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// struct bpf_prog_info up to the program's name, all this needs.
#[repr(C)]
struct ProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
}

/// bpf(cmd, attr, sizeof attr).
///
/// # Safety
/// `attr` must be the attr struct of `cmd`, and every pointer in it valid for what `cmd` does
/// with it (read or written) during the call.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> nix::Result<i64> {
    // SAFETY: the caller vouches for attr; the kernel reads and writes at most size_of::<T>()
    // bytes of it.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    Errno::result(r)
}

/// Load `insns` as a BPF_PROG_TYPE_CGROUP_DEVICE program. A rejection is retried once with the
/// verifier's log, to say why.
fn load(insns: &[Insn]) -> Result<OwnedFd> {
    let mut name = [0u8; 16];
    name[..PROG_NAME.to_bytes().len()].copy_from_slice(PROG_NAME.to_bytes());
    let mut log = Vec::new();
    let attr = |log: &mut Vec<u8>| ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        log_level: u32::from(!log.is_empty()),
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
    };
    let what =
        "load the eBPF device filter (BPF_PROG_LOAD of a BPF_PROG_TYPE_CGROUP_DEVICE program)";
    // SAFETY: the attr points at insns, the license and the log buffer, all alive for the call;
    // the kernel writes at most log_size bytes to the log.
    let first = unsafe { bpf(BPF_PROG_LOAD, &mut attr(&mut log)) };
    let err = match first {
        // SAFETY: on success BPF_PROG_LOAD returns a new fd that nothing else owns.
        Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(Errno::ENOSYS) => {
            return Err(Error::sys(
                format!("{what}: the kernel has no bpf(2) system call"),
                Errno::ENOSYS,
            ))
        }
        Err(Errno::EPERM) => {
            return Err(Error::sys(
                format!("{what}: needs CAP_SYS_ADMIN (or CAP_BPF) in the initial user namespace"),
                Errno::EPERM,
            ))
        }
        Err(e) => e,
    };
    log.resize(1 << 16, 0);
    // SAFETY: as above.
    let again = unsafe { bpf(BPF_PROG_LOAD, &mut attr(&mut log)) };
    if let Ok(fd) = again {
        // SAFETY: as above.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    }
    let text = String::from_utf8_lossy(&log[..log.iter().position(|b| *b == 0).unwrap_or(0)])
        .trim()
        .to_string();
    let why = match text.lines().last() {
        // Nothing was verified: the kernel refused the program type itself.
        None if err == Errno::EINVAL => {
            "the kernel does not support BPF_PROG_TYPE_CGROUP_DEVICE programs (CONFIG_CGROUP_BPF)"
                .to_string()
        }
        None => "refused".to_string(),
        Some(last) => format!("the verifier refused it ({last})"),
    };
    Err(Error::sys(format!("{what}: {why}"), err))
}

/// The ids of the device programs attached to the cgroup `dir` itself (not its ancestors).
fn attached(dir: &File) -> nix::Result<Vec<u32>> {
    let mut ids = [0u32; MAX_PROGS];
    let mut attr = Query {
        target_fd: dir.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: MAX_PROGS as u32,
        pad: 0,
    };
    // SAFETY: prog_ids points at room for prog_cnt ids, alive for the call.
    unsafe { bpf(BPF_PROG_QUERY, &mut attr)? };
    Ok(ids[..(attr.prog_cnt as usize).min(MAX_PROGS)].to_vec())
}

/// An fd of the program with `id`, if it is one berth attached. None for another's program,
/// or one we may not open (an LSM can deny it; a device program can only deny more, so it can
/// stay), or one that is gone.
fn ours(id: u32) -> nix::Result<Option<OwnedFd>> {
    let mut attr = GetFdById {
        prog_id: id,
        next_id: 0,
        open_flags: 0,
    };
    // SAFETY: the attr holds no pointers.
    let fd = match unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) } {
        // SAFETY: a new fd that nothing else owns.
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd as i32) },
        Err(Errno::EPERM | Errno::EACCES | Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    // SAFETY: ProgInfo is plain integers and bytes, valid when zeroed.
    let mut info: ProgInfo = unsafe { std::mem::zeroed() };
    let mut attr = GetInfo {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<ProgInfo>() as u32,
        info: &mut info as *mut ProgInfo as u64,
    };
    // SAFETY: info points at info_len writable bytes, alive for the call.
    unsafe { bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)? };
    let name = CStr::from_bytes_until_nul(&info.name).unwrap_or_default();
    Ok((name == PROG_NAME).then_some(fd))
}

fn attach_cmd(cmd: libc::c_long, dir: &File, prog: &OwnedFd, flags: u32) -> nix::Result<()> {
    let mut attr = Attach {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
    };
    // SAFETY: the attr holds no pointers.
    unsafe { bpf(cmd, &mut attr) }.map(drop)
}

/// Make `insns` the device filter of the cgroup `dir`: load it, attach it (BPF_F_ALLOW_MULTI,
/// next to what is there), then detach the filters berth attached before. In between both
/// run and a device must pass both, so there is no moment without a filter.
pub(super) fn set_device_filter(dir: &Path, insns: &[Insn]) -> Result<()> {
    let on = || dir.display();
    let cgroup = File::open(dir).ctx(|| format!("open cgroup {}", on()))?;
    let prog = load(insns)?;
    let old = attached(&cgroup)
        .ctx(|| format!("list the device filters of {} (BPF_PROG_QUERY)", on()))?;
    attach_cmd(BPF_PROG_ATTACH, &cgroup, &prog, BPF_F_ALLOW_MULTI).ctx(|| {
        format!(
            "attach the eBPF device filter to {} (BPF_PROG_ATTACH)",
            on()
        )
    })?;
    for id in old {
        let what = || format!("replace device filter {id} of {}", on());
        if let Some(old) = ours(id).ctx(what)? {
            attach_cmd(BPF_PROG_DETACH, &cgroup, &old, 0).ctx(what)?;
        }
    }
    // The attached program lives as long as the cgroup; our fd is not needed for that.
    Ok(())
}

/// Run the program on one request, as the kernel would (only the opcodes we emit).
#[cfg(test)]
pub(super) fn run(p: &[Insn], dev_type: i32, access: u8, major: u32, minor: u32) -> u64 {
    let ctx = [(u32::from(access) << 16) | dev_type as u32, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0;
    loop {
        let i = p[pc];
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        let imm = i64::from(i.imm) as u64;
        pc += 1;
        let operand = if i.code & SRC_REG != 0 { r[src] } else { imm };
        match i.code {
            0x61 => {
                assert_eq!(src, 1, "loads only from the context");
                r[dst] = u64::from(ctx[i.off as usize / 4]);
            }
            0x54 | 0x74 | 0xb4 | 0xbc => {
                let v = r[dst] as u32;
                let o = operand as u32;
                r[dst] = u64::from(match i.code & 0xf0 {
                    OP_AND => v & o,
                    OP_RSH => v >> o,
                    _ => o,
                });
            }
            0x15 | 0x55 | 0x5d => {
                let equal = r[dst] == operand;
                if equal == (i.code & 0xf0 == OP_JEQ) {
                    pc += i.off as usize;
                }
            }
            0x95 => return r[0],
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(dev_type: i32, major: Option<u32>, minor: Option<u32>, access: u8) -> Pattern {
        Pattern {
            dev_type,
            major,
            minor,
            access,
        }
    }

    #[test]
    fn encoding() {
        let bytes = |i: Insn| -> [u8; 8] {
            // SAFETY: Insn is 8 bytes of plain integers.
            unsafe { std::mem::transmute(i) }
        };
        // As an assembler writes them: r2 = *(u32 *)(r1 + 4); w0 = 1; exit; if r1 != r3 goto +2.
        assert_eq!(
            bytes(Insn::load_u32(2, 1, 4)),
            [0x61, 0x12, 4, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            bytes(Insn::alu32(OP_MOV, 0, 1)),
            [0xb4, 0, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(bytes(Insn::exit()), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            bytes(Insn::jump_reg(OP_JNE, 1, 3, 2)),
            [0x5d, 0x31, 2, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn deny_all_is_the_prologue_and_a_verdict() {
        let p = device_program(false, &[]);
        assert_eq!(p.len(), 8);
        assert_eq!(p[6..], Insn::verdict(false));
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 3), 0);
    }

    #[test]
    fn one_allowed_device() {
        // c 1:3 rwm: no access test.
        let p = device_program(false, &[pattern(DEV_CHAR, Some(1), Some(3), ACC_ALL)]);
        let j = |reg, imm, off| Insn::jump_imm(OP_JNE, reg, imm, off);
        assert_eq!(
            p[6..],
            [
                j(TYPE, DEV_CHAR, 4),
                j(MAJOR, 1, 3),
                j(MINOR, 3, 2),
                Insn::alu32(OP_MOV, R0, 1),
                Insn::exit(),
                Insn::alu32(OP_MOV, R0, 0),
                Insn::exit(),
            ]
        );
    }

    #[test]
    fn access_tests_differ_by_mode() {
        // b *:* m allowed: every access must be listed.
        let p = device_program(false, &[pattern(DEV_BLOCK, None, None, ACC_MKNOD)]);
        assert_eq!(
            p[6..10],
            [
                Insn::jump_imm(OP_JNE, TYPE, DEV_BLOCK, 5),
                Insn::mov32_reg(R1, ACCESS),
                Insn::alu32(OP_AND, R1, ACC_MKNOD.into()),
                Insn::jump_reg(OP_JNE, R1, ACCESS, 2),
            ]
        );
        assert_eq!(run(&p, DEV_BLOCK, ACC_MKNOD, 8, 0), 1);
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 8, 0), 0);
        assert_eq!(run(&p, DEV_CHAR, ACC_MKNOD, 8, 0), 0);
        // c 1:* w denied: any listed access is enough.
        let p = device_program(true, &[pattern(DEV_CHAR, Some(1), None, ACC_WRITE)]);
        assert_eq!(p[9], Insn::jump_imm(OP_JEQ, R1, 0, 3));
        assert_eq!(run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 5), 0);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 5), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_WRITE, 2, 5), 1);
    }

    #[test]
    fn numbers_beyond_i32_match_nothing() {
        let p = device_program(false, &[pattern(DEV_CHAR, Some(u32::MAX), None, ACC_ALL)]);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, u32::MAX, 0), 0);
    }

    /// Open `device` from a shell moved into the cgroup `dir` first: the error text, if any.
    fn open_in(dir: &Path, device: &str) -> Option<String> {
        let out = std::process::Command::new("sh")
            .args(["-c", r#"echo $$ > "$0/cgroup.procs" && exec 3<>"$1""#])
            .arg(dir)
            .arg(device)
            .output()
            .expect("run sh");
        (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Load, attach, enforce and replace for real, in a cgroup of the cgroup2 hierarchy (the
    /// `unified` one of a hybrid host will do: device programs work there too). Needs root.
    #[test]
    fn filter_is_enforced_and_replaced() {
        let cgroup2 = super::super::layout::detect()
            .ok()
            .and_then(|hs| hs.into_iter().find(|h| h.controllers.is_empty()));
        let Some(h) = cgroup2.filter(|_| nix::unistd::geteuid().is_root()) else {
            eprintln!("skipped: needs root and a cgroup2 hierarchy");
            return;
        };
        let parent = h.mountpoint.join("berth-test");
        let dir = parent.join(format!("{}-bpf", std::process::id()));
        super::super::fs::mkdir_all(&dir, &mut Vec::new()).unwrap();
        let null = |allow| {
            pattern(
                DEV_CHAR,
                Some(1),
                Some(3),
                ACC_READ | ACC_WRITE | if allow { 0 } else { ACC_MKNOD },
            )
        };
        let result = std::panic::catch_unwind(|| {
            // Deny all but /dev/null.
            set_device_filter(&dir, &device_program(false, &[null(true)])).unwrap();
            assert_eq!(open_in(&dir, "/dev/null"), None);
            let err = open_in(&dir, "/dev/zero").expect("/dev/zero opened");
            assert!(err.contains("not permitted"), "{err}");
            // Allow all but /dev/null, in place of the first program.
            set_device_filter(&dir, &device_program(true, &[null(false)])).unwrap();
            assert_eq!(open_in(&dir, "/dev/zero"), None);
            let err = open_in(&dir, "/dev/null").expect("/dev/null opened");
            assert!(err.contains("not permitted"), "{err}");
            assert_eq!(attached(&File::open(&dir).unwrap()).unwrap().len(), 1);
        });
        super::super::fs::remove_tree(&dir).unwrap();
        let _ = std::fs::remove_dir(&parent);
        result.unwrap();
    }
}
