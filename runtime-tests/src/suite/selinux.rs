//! process.selinuxLabel, linux.mountLabel and `exec --process-label` where SELinux is enabled
//! (the VM of `make vm-test` boots once with VM_SELINUX=1, under hack/vm/selinux-policy.conf):
//! the process runs with its label as it sees itself, new mounts carry the mount label. Without
//! SELinux, an empty mount label is no label, and any other is a clear error. The labels must be
//! valid contexts of the loaded policy: the tests skip otherwise.

use super::errors::create_fails_naming;
use super::{skip, Test};
use crate::harness::Ctx;
use crate::report::Report;
use crate::suite::lifecycle::running_sleeper;
use anyhow::{ensure, Result};
use serde_json::json;
use std::fs;
use std::path::Path;

pub const TESTS: &[Test] = &[
    ("selinux/labels", labels),
    ("selinux/exec-label", exec_label),
    ("selinux/invalid-label", |c| {
        labels_valid()?;
        create_fails_naming(c, "selinux", |v| {
            v["process"]["selinuxLabel"] = json!("system_u:system_r:no_such_t:s0")
        })
    }),
    ("selinux/empty-mount-label", |c| {
        c.check(|v| v["linux"]["mountLabel"] = json!(""), &[])
            .map(drop)
    }),
    ("selinux/mount-label-without-selinux", |c| {
        if enabled() {
            return Err(skip("the host has SELinux"));
        }
        create_fails_naming(c, "mountLabel", |v| {
            v["linux"]["mountLabel"] = json!(MOUNT_LABEL)
        })
    }),
];

/// Labels as container engines make them: MLS, with a category pair (a comma to quote).
const PROCESS_LABEL: &str = "system_u:system_r:container_t:s0:c1,c2";
const MOUNT_LABEL: &str = "system_u:object_r:container_file_t:s0:c1,c2";

const SELINUXFS: &str = "/sys/fs/selinux";

fn enabled() -> bool {
    Path::new(SELINUXFS).join("enforce").exists()
}

/// Skips unless SELinux is enabled with a policy that knows both test labels.
fn labels_valid() -> Result<()> {
    if !enabled() {
        return Err(skip("SELinux is not enabled"));
    }
    for label in [PROCESS_LABEL, MOUNT_LABEL] {
        // selinuxfs `context` validates a context (EINVAL when the policy does not define it).
        if let Err(e) = fs::write(Path::new(SELINUXFS).join("context"), label) {
            return Err(skip(format!(
                "the loaded policy does not take {label}: {e}"
            )));
        }
    }
    Ok(())
}

/// The label the checker reported for itself.
fn own_label(r: &Report) -> Result<String> {
    let l = r
        .probe("read:/proc/self/attr/current")?
        .as_str()
        .unwrap_or_default();
    Ok(l.trim_end_matches(['\n', '\0']).to_string())
}

fn labels(ctx: &mut Ctx) -> Result<()> {
    labels_valid()?;
    let r = ctx.check(
        |v| {
            v["process"]["selinuxLabel"] = json!(PROCESS_LABEL);
            v["linux"]["mountLabel"] = json!(MOUNT_LABEL);
        },
        &["read:/proc/self/attr/current", "selinux:/dev/mqueue"],
    )?;
    let own = own_label(&r)?;
    ensure!(
        own == PROCESS_LABEL,
        "the process runs as {own:?}, want {PROCESS_LABEL}"
    );
    // The session keyring the runtime made for the container is the container's too.
    let keyring = r.get("keyring_label");
    ensure!(
        keyring == PROCESS_LABEL,
        "the session keyring is labelled {keyring}, want {PROCESS_LABEL}"
    );
    // mountinfo shows a context with a comma quoted.
    let context = format!("context=\"{MOUNT_LABEL}\"");
    for path in ["/dev", "/dev/shm", "/dev/pts"] {
        let line = r.mount_line(path)?;
        ensure!(
            line.contains(&context),
            "{path} is mounted without {context}: {line}"
        );
    }
    let proc = r.mount_line("/proc")?;
    ensure!(!proc.contains("context="), "/proc got a context: {proc}");
    let mqueue = r.probe("selinux:/dev/mqueue")?;
    ensure!(
        mqueue == MOUNT_LABEL,
        "/dev/mqueue is labelled {mqueue}, want {MOUNT_LABEL}"
    );
    Ok(())
}

fn exec_label(ctx: &mut Ctx) -> Result<()> {
    labels_valid()?;
    let (b, _) = running_sleeper(ctx)?;
    let out = ctx
        .rt(&[
            "exec",
            "--process-label",
            PROCESS_LABEL,
            &b.id,
            "/checker",
            "read:/proc/self/attr/current",
        ])?
        .ok()?;
    let own = own_label(&Report::parse(&out.stdout)?)?;
    ensure!(
        own == PROCESS_LABEL,
        "the exec'd process runs as {own:?}, want {PROCESS_LABEL}"
    );
    Ok(())
}
