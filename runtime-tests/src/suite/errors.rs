//! Invalid configs and ids: `create` must fail and change nothing.

use super::Test;
use crate::harness::{base_config, Bundle, Ctx};
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;

pub const TESTS: &[Test] = &[
    ("create-error/malformed-json", |c| {
        let b = c.bundle(|_| {})?;
        fs::write(b.config_path(), "{ this is not json")?;
        create_fails(c, &b, &b.id)
    }),
    ("create-error/truncated-json", |c| {
        let b = c.bundle(|_| {})?;
        let full = serde_json::to_string(&base_config(&b.cgroup))?;
        fs::write(b.config_path(), &full[..full.len() / 2])?;
        create_fails(c, &b, &b.id)
    }),
    // Runtimes must refuse a major version they do not implement.
    ("create-error/unsupported-major-version", |c| {
        let b = c.bundle(|v| v["ociVersion"] = json!("2.0.0"))?;
        create_fails(c, &b, &b.id)
    }),
    ("create-error/missing-rootfs", |c| {
        let b = c.bundle(|v| v["root"]["path"] = json!("no-such-rootfs"))?;
        create_fails(c, &b, &b.id)
    }),
    ("create-error/id-with-slash", |c| {
        let b = c.bundle(|_| {})?;
        create_fails(c, &b, "runtime-tests/escape")
    }),
    ("create-error/id-dotdot", |c| {
        let b = c.bundle(|_| {})?;
        create_fails(c, &b, "..")
    }),
    ("create-error/missing-hook-binary", |c| {
        let b =
            c.bundle(|v| v["hooks"] = json!({ "createRuntime": [{ "path": "/no/such/hook" }] }))?;
        create_fails(c, &b, &b.id)
    }),
    // The spec: a capability name the runtime cannot map MUST be an error.
    ("create-error/unknown-capability", |c| {
        create_fails_naming(c, "CAP_NO_SUCH_THING", |v| {
            v["process"]["capabilities"]["bounding"]
                .as_array_mut()
                .expect("bounding")
                .push(json!("CAP_NO_SUCH_THING"))
        })
    }),
    // The program passes every check the runtime can make, then execve fails after start
    // (its interpreter is missing): the error must still reach the user.
    ("run-error/exec-fails-after-start", |c| {
        let b = c.bundle(|v| v["process"]["args"] = json!(["/bad-interpreter"]))?;
        let script = b.rootfs().join("bad-interpreter");
        fs::write(&script, "#!/no/such/interpreter\n")?;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
        let out = c.rt(&["run", "--bundle", b.dir_str(), &b.id])?.failed()?;
        ensure!(
            out.stderr.contains("/bad-interpreter"),
            "the error does not name the program: {}",
            out.stderr.trim()
        );
        Ok(())
    }),
    ("create-error/invalid-namespace-path", |c| {
        let b = c.bundle(|v| {
            v["linux"]["namespaces"][1] = json!({ "type": "network", "path": "/no/such/ns" })
        })?;
        create_fails(c, &b, &b.id)
    }),
    // Engines turn these errors into exit statuses by their wording (Podman: 127 for "no such
    // file or directory" / "executable file not found in", 126 for "permission denied").
    ("create-error/program-missing", |c| {
        program_fails(c, "/no/such/program", &["no such file or directory"])
    }),
    ("create-error/program-not-in-path", |c| {
        program_fails(
            c,
            "no-such-program",
            &["executable file not found in", "no such file or directory"],
        )
    }),
    ("create-error/program-not-executable", |c| {
        program_fails(c, "/etc/passwd", &["permission denied"])
    }),
    // -1 is "unchanged" to setresuid(2): the process would stay root.
    ("create-error/uid-minus-one", |c| {
        create_fails_naming(c, "uid", |v| v["process"]["user"]["uid"] = json!(u32::MAX))
    }),
    ("create-error/gid-minus-one", |c| {
        create_fails_naming(c, "gid", |v| v["process"]["user"]["gid"] = json!(u32::MAX))
    }),
    // Refused at create, not found out inside the container once `start` has said yes.
    ("create-error/env-without-equals", |c| {
        create_fails_naming(c, "env", |v| push_env(v, "NO_EQUALS_SIGN"))
    }),
    ("create-error/env-with-nul", |c| {
        create_fails_naming(c, "env", |v| push_env(v, "A=before\u{0}after"))
    }),
    // Only a procfs may be the container's /proc: masked and read-only paths mean nothing on a
    // tmpfs, and the runtime would write procfs files into it.
    ("create-error/tmpfs-at-proc", |c| {
        create_fails_naming(c, "proc", |v| {
            for m in v["mounts"].as_array_mut().expect("mounts") {
                if m["destination"] == "/proc" {
                    *m = json!({ "destination": "/proc", "type": "tmpfs", "source": "tmpfs" });
                }
            }
        })
    }),
    // linux.resources the kernel would refuse, or that no kernel file takes.
    ("create-error/negative-memory-limit", |c| {
        create_fails_naming(c, "memory", |v| {
            v["linux"]["resources"]["memory"] = json!({ "limit": -5 })
        })
    }),
    ("create-error/cpus-not-on-host", |c| {
        let cpus = format!("0-{}", last_possible_cpu()? + 1);
        create_fails_naming(c, "cpus", |v| {
            v["linux"]["resources"]["cpu"] = json!({ "cpus": cpus })
        })
    }),
    ("create-error/device-rule-bad-type", |c| {
        create_fails_naming(c, "type", |v| {
            let rule =
                json!({ "allow": true, "type": "x", "major": 1, "minor": 3, "access": "rwm" });
            v["linux"]["resources"]["devices"]
                .as_array_mut()
                .expect("base config has device rules")
                .push(rule)
        })
    }),
    // The key, or (runc on a v1 or hybrid host) the whole field, which it refuses there.
    ("create-error/unknown-unified-key", |c| {
        create_fails_naming_one_of(c, &["pids.bogus", "unified"], |v| {
            v["linux"]["resources"]["unified"] = json!({ "pids.bogus": "1" })
        })
    }),
];

fn push_env(config: &mut Value, entry: &str) {
    config["process"]["env"]
        .as_array_mut()
        .expect("base config has env")
        .push(json!(entry));
}

/// The highest CPU number this host could ever have.
fn last_possible_cpu() -> Result<u32> {
    let possible = fs::read_to_string("/sys/devices/system/cpu/possible")?;
    let last = possible
        .trim()
        .rsplit([',', '-'])
        .next()
        .unwrap_or_default();
    last.parse()
        .with_context(|| format!("/sys/devices/system/cpu/possible: {possible:?}"))
}

/// `create` of the base config edited by `edit` must fail, say `field` (case-insensitively)
/// on stderr, and leave no state and no cgroup.
pub fn create_fails_naming(
    ctx: &mut Ctx,
    field: &str,
    edit: impl FnOnce(&mut Value),
) -> Result<()> {
    create_fails_naming_one_of(ctx, &[field], edit)
}

/// Like [`create_fails_naming`], where saying any of `fields` will do.
fn create_fails_naming_one_of(
    ctx: &mut Ctx,
    fields: &[&str],
    edit: impl FnOnce(&mut Value),
) -> Result<()> {
    let b = ctx.bundle(edit)?;
    let said = create_refused(ctx, &b, &b.id)?.to_lowercase();
    ensure!(
        fields.iter().any(|f| said.contains(&f.to_lowercase())),
        "the error names none of {fields:?}: {}",
        said.trim()
    );
    Ok(())
}

/// `create` of a bundle whose process.args[0] is `program` must fail like [`create_fails`], with
/// an error that says one of `wording` (case-insensitive).
fn program_fails(ctx: &mut Ctx, program: &str, wording: &[&str]) -> Result<()> {
    create_fails_naming_one_of(ctx, wording, |v| v["process"]["args"] = json!([program]))
}

/// `create` of bundle `b` as `id` must exit non-zero and leave no state and no cgroup.
pub fn create_fails(ctx: &mut Ctx, b: &Bundle, id: &str) -> Result<()> {
    create_refused(ctx, b, id).map(drop)
}

/// The stderr of a `create` that failed and left nothing behind.
fn create_refused(ctx: &mut Ctx, b: &Bundle, id: &str) -> Result<String> {
    ctx.track(id);
    let out = ctx.rt(&["create", "--bundle", b.dir_str(), id])?.failed()?;
    ctx.assert_nothing_left(id, &b.cgroup)?;
    Ok(out.stderr)
}
