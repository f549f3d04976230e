//! process.apparmorProfile and `exec --apparmor`, where AppArmor is enabled: the process runs
//! confined by the profile, as it sees itself; a profile that is not loaded fails cleanly.
//! The tests load their own permissive profile with apparmor_parser (the VM of `make vm-test`
//! has both); without AppArmor, securityfs or the parser they skip.

use super::errors::create_fails_naming;
use super::{skip, Test};
use crate::harness::Ctx;
use crate::report::Report;
use crate::suite::exec::procs;
use crate::suite::lifecycle::running_sleeper;
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::process::Command;

pub const TESTS: &[Test] = &[
    ("apparmor/profile", profile_applied),
    ("apparmor/exec", exec_profile),
    ("apparmor/missing-profile", |c| {
        profile(c)?;
        create_fails_naming(c, "apparmor", |v| {
            v["process"]["apparmorProfile"] = json!("runtime-tests-not-loaded")
        })
    }),
];

/// The name of the test profile.
pub const PROFILE: &str = "runtime-tests";

/// Allows everything: the tests look at the label, not at what it denies.
const POLICY: &str = "profile runtime-tests flags=(attach_disconnected,mediate_deleted) {
  file,
  capability,
  network,
  signal,
  ptrace,
  unix,
  mount,
  umount,
  pivot_root,
}
";

const SECURITYFS: &str = "/sys/kernel/security/apparmor";

/// The test profile, loaded if it is not yet; skips where AppArmor cannot confine.
pub fn profile(ctx: &Ctx) -> Result<&'static str> {
    let enabled = fs::read_to_string("/sys/module/apparmor/parameters/enabled");
    if !enabled.is_ok_and(|s| s.starts_with('Y')) {
        return Err(skip("AppArmor is not enabled"));
    }
    let profiles = Path::new(SECURITYFS).join("profiles");
    let loaded = || {
        fs::read_to_string(&profiles)
            .is_ok_and(|l| l.lines().any(|l| l.starts_with(&format!("{PROFILE} ("))))
    };
    if !Path::new(SECURITYFS).is_dir() {
        return Err(skip(format!(
            "AppArmor is enabled but {SECURITYFS} is missing (securityfs not mounted)"
        )));
    }
    if loaded() {
        return Ok(PROFILE);
    }
    let file = ctx.dir.join("apparmor-profile");
    fs::write(&file, POLICY)?;
    // -r: load or replace; -K: no cache (nothing to write it to in a throwaway VM).
    let out = match Command::new("apparmor_parser")
        .arg("-r")
        .arg("-K")
        .arg(&file)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            return Err(skip(format!(
                "profile {PROFILE} is not loaded and apparmor_parser cannot run: {e}"
            )))
        }
    };
    ensure!(
        out.status.success(),
        "apparmor_parser -r failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    ensure!(
        loaded(),
        "apparmor_parser succeeded but {} does not list {PROFILE}",
        profiles.display()
    );
    Ok(PROFILE)
}

/// The probes that show the process's own AppArmor label (the apparmor/ one since Linux 5.8).
pub const LABEL_PROBES: &[&str] = &[
    "read:/proc/self/attr/apparmor/current",
    "read:/proc/self/attr/current",
];

/// The label the checker reported, from the first of [`LABEL_PROBES`] that could be read.
fn label(r: &Report) -> Result<String> {
    LABEL_PROBES
        .iter()
        .find_map(|p| r.probe(p).ok().and_then(Value::as_str))
        .map(|s| s.trim_end_matches(['\n', '\0']).to_string())
        .with_context(|| format!("no label could be read: {}", r.get("probes")))
}

/// AppArmor labels read `NAME (MODE)`; unconfined processes read `unconfined`.
pub fn confined_by(label: &str, profile: &str) -> bool {
    label.split(" (").next() == Some(profile)
}

fn profile_applied(ctx: &mut Ctx) -> Result<()> {
    let p = profile(ctx)?;
    let r = ctx.check(|v| v["process"]["apparmorProfile"] = json!(p), LABEL_PROBES)?;
    let label = label(&r)?;
    ensure!(
        confined_by(&label, p),
        "the process runs as {label:?}, want {p}"
    );
    Ok(())
}

/// A process `exec --apparmor` adds to an unconfined container runs confined; the container's
/// init stays as it was.
fn exec_profile(ctx: &mut Ctx) -> Result<()> {
    let p = profile(ctx)?;
    let (b, _) = running_sleeper(ctx)?;
    let mut args = vec!["exec", "--apparmor", p, &b.id, "/checker"];
    args.extend_from_slice(LABEL_PROBES);
    let out = ctx.rt(&args)?.ok()?;
    let label = label(&Report::parse(&out.stdout)?)?;
    ensure!(
        confined_by(&label, p),
        "the exec'd process runs as {label:?}, want {p}"
    );
    let before = procs(&b)?;
    let out = ctx
        .rt(&[
            "exec",
            "--apparmor",
            "runtime-tests-not-loaded",
            &b.id,
            "sleep",
            "300",
        ])?
        .failed()?;
    ensure!(
        out.stderr.to_lowercase().contains("apparmor"),
        "the error does not name AppArmor: {}",
        out.stderr.trim()
    );
    ensure!(
        procs(&b)? == before,
        "the failed exec left a process: {before:?} -> {:?}",
        procs(&b)?
    );
    Ok(())
}
