//! runtime-tests: an OCI runtime-spec conformance suite that judges a
//! runc-compatible runtime through its command line.

mod harness;
mod report;
mod rootless;
mod runtime;
mod suite;
mod xfail;

use anyhow::{bail, ensure, Context, Result};
use harness::{Ctx, Env, CGROUP_PARENT};
use runtime::Runtime;
use std::fs;
use std::os::unix::process::CommandExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

const USAGE: &str =
    "usage: runtime-tests --runtime PATH [--runtime-name NAME] [--filter PATTERN] [--keep]
                     [--checker PATH] [--mkrootfs PATH] [--rootless [--rootless-cgroup]]
                     [--runtime-arg ARG]... [--systemd-cgroups]
--rootless: the runtime runs as a user the run creates (see src/rootless.rs); with
  --rootless-cgroup (pure cgroup v2) the suite's cgroup parent is delegated to that user
--runtime-arg: a global flag for every runtime command, e.g. --runtime-arg=--systemd-cgroup
--systemd-cgroups: bundles name their cgroup as systemd drivers want it (slice:prefix:name)
env: RUNTIME_TESTS_TIMEOUT_SCALE multiplies the 20s per-command timeout";
const BASE_TIMEOUT: Duration = Duration::from_secs(20);
/// Where the static checker is built (see runtime-tests/README.md).
const CHECKER_TARGET: &str = "x86_64-unknown-linux-gnu/release/checker";

struct Opts {
    runtime: PathBuf,
    name: String,
    filter: Option<String>,
    keep: bool,
    checker: Option<PathBuf>,
    mkrootfs: PathBuf,
    rootless: bool,
    rootless_cgroup: bool,
    runtime_args: Vec<String>,
    systemd_cgroups: bool,
}

fn parse_args() -> Result<Opts> {
    let mut args = std::env::args().skip(1);
    let (mut runtime, mut name, mut filter, mut keep, mut checker) =
        (None, None, None, false, None);
    let (mut rootless, mut rootless_cgroup) = (false, false);
    let mut mkrootfs = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../hack/mkrootfs"));
    let (mut runtime_args, mut systemd_cgroups) = (Vec::new(), false);
    while let Some(arg) = args.next() {
        if let Some(v) = arg.strip_prefix("--runtime-arg=") {
            runtime_args.push(v.to_string());
            continue;
        }
        let mut value = || {
            args.next()
                .with_context(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--runtime" => runtime = Some(PathBuf::from(value()?)),
            "--runtime-name" => name = Some(value()?),
            "--filter" => filter = Some(value()?),
            "--checker" => checker = Some(PathBuf::from(value()?)),
            "--mkrootfs" => mkrootfs = PathBuf::from(value()?),
            "--keep" => keep = true,
            "--rootless" => rootless = true,
            "--rootless-cgroup" => rootless_cgroup = true,
            "--runtime-arg" => runtime_args.push(value()?),
            "--systemd-cgroups" => systemd_cgroups = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => bail!("unknown argument {arg}\n{USAGE}"),
        }
    }
    let runtime = runtime.context(USAGE)?;
    let name = match name {
        Some(n) => n,
        None => runtime
            .file_name()
            .context("runtime path has no file name")?
            .to_string_lossy()
            .into_owned(),
    };
    Ok(Opts {
        runtime,
        name,
        filter,
        keep,
        checker,
        mkrootfs,
        rootless,
        rootless_cgroup,
        runtime_args,
        systemd_cgroups,
    })
}

/// True if the ELF file has no program interpreter, i.e. runs in an empty rootfs.
fn is_static_elf(path: &Path) -> Result<bool> {
    const PT_INTERP: u32 = 3;
    let data = fs::read(path)?;
    ensure!(
        data.len() > 64 && data.starts_with(b"\x7fELF") && data[4] == 2,
        "{} is not a 64-bit ELF",
        path.display()
    );
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(data[0x20..0x28].try_into()?) as usize;
    let (entsize, count) = (u16_at(0x36), u16_at(0x38));
    Ok((0..count).all(|i| {
        let o = phoff + i * entsize;
        data.get(o..o + 4)
            .is_none_or(|t| u32::from_le_bytes(t.try_into().expect("4 bytes")) != PT_INTERP)
    }))
}

/// --checker, else a static checker next to our executable or in the cargo target dir.
fn find_checker(given: Option<PathBuf>) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable has no directory")?;
    let candidates = match given {
        Some(p) => vec![p],
        None => vec![dir.join("checker"), dir.join("..").join(CHECKER_TARGET)],
    };
    for c in &candidates {
        if c.is_file() && is_static_elf(c)? {
            return Ok(c.canonicalize()?);
        }
    }
    bail!(
        "no static checker among {candidates:?}; build it with\n  RUSTFLAGS=\"-C target-feature=+crt-static\" \
         cargo build --release -p runtime-tests --bin checker --target x86_64-unknown-linux-gnu"
    )
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("runtime-tests: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool> {
    let opts = parse_args()?;
    let scale: f64 = match std::env::var("RUNTIME_TESTS_TIMEOUT_SCALE") {
        Ok(s) => s
            .parse()
            .context("RUNTIME_TESTS_TIMEOUT_SCALE must be a number")?,
        Err(_) => 1.0,
    };
    ensure!(scale > 0.0, "RUNTIME_TESTS_TIMEOUT_SCALE must be positive");
    let runtime_path = opts
        .runtime
        .canonicalize()
        .with_context(|| format!("runtime {}", opts.runtime.display()))?;
    let checker = find_checker(opts.checker)?;

    let workdir = std::env::temp_dir().join(format!("runtime-tests-{}", std::process::id()));
    let rootfs = workdir.join("rootfs");
    fs::create_dir_all(&workdir)?;
    let built = Command::new(&opts.mkrootfs)
        .arg(&rootfs)
        .status()
        .with_context(|| format!("running {}", opts.mkrootfs.display()))?;
    ensure!(built.success(), "{} failed", opts.mkrootfs.display());

    let user = if opts.rootless {
        Some(rootless::User::create(opts.rootless_cgroup)?)
    } else {
        ensure!(!opts.rootless_cgroup, "--rootless-cgroup needs --rootless");
        None
    };
    if let Some(u) = &user {
        // Bundles and state dirs below it belong to the user, who must reach them.
        fs::set_permissions(
            &workdir,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
        let runs = Command::new(&runtime_path)
            .arg("--version")
            .uid(u.uid)
            .gid(u.gid)
            .output()?;
        ensure!(
            runs.status.success(),
            "--rootless: user {} cannot run {} (a directory on its path not open to others?)",
            u.name,
            runtime_path.display()
        );
    }
    harness::set_systemd_cgroups(opts.systemd_cgroups);
    let env = Env {
        runtime: Runtime {
            path: runtime_path,
            timeout: BASE_TIMEOUT.mul_f64(scale),
            user: user.as_ref().map(|u| (u.uid, u.gid)),
            global_args: opts.runtime_args,
        },
        checker,
        rootfs,
        workdir: workdir.clone(),
        keep: opts.keep,
        rootless: user,
    };
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (name, test) in suite::all() {
        if opts
            .filter
            .as_ref()
            .is_some_and(|f| !name.contains(f.as_str()))
        {
            continue;
        }
        let delegated = env
            .rootless
            .as_ref()
            .is_some_and(|u| u.delegation.is_some());
        if let Some(why) = env
            .rootless
            .as_ref()
            .and(rootless::skipped(name, delegated))
        {
            skipped += 1;
            println!("skip {name}: rootless: {why}");
            continue;
        }
        let result = match Ctx::new(&env, name) {
            // The context is dropped (and cleans up) before the result is reported.
            Ok(mut ctx) => catch_unwind(AssertUnwindSafe(|| test(&mut ctx))).unwrap_or_else(|p| {
                bail!(
                    "panicked: {}",
                    p.downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| p.downcast_ref::<&str>().copied())
                        .unwrap_or_default()
                )
            }),
            Err(e) => Err(e),
        };
        let expected = xfail::expected_failure(&opts.name, name).or_else(|| {
            env.rootless
                .as_ref()
                .and(rootless::expected_failure(&opts.name, name))
        });
        match (result, expected) {
            (Ok(()), None) => {
                passed += 1;
                println!("ok {name}");
            }
            (Ok(()), Some(why)) => {
                passed += 1;
                println!("ok {name}");
                eprintln!("note: {name} passes but is listed as an expected failure ({why}); update src/xfail.rs");
            }
            (Err(e), _) if e.downcast_ref::<suite::Skip>().is_some() => {
                skipped += 1;
                println!("skip {name}: {e}");
            }
            (Err(e), Some(why)) => {
                skipped += 1;
                println!("xfail {name}: {why} [{}]", one_line(&format!("{e:#}")));
            }
            (Err(e), None) => {
                failed += 1;
                println!("not ok {name}: {}", one_line(&format!("{e:#}")));
            }
        }
    }
    // Shared parents: removed only once empty, and only by the run that is ending.
    for h in harness::hierarchies() {
        let _ = fs::remove_dir(h.join(CGROUP_PARENT));
    }
    harness::stop_systemd_slice();
    if !opts.keep {
        let _ = fs::remove_dir_all(&workdir);
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    Ok(failed == 0)
}
