//! The six hooks: when they run, what they get on stdin, args/env, failures.
//!
//! Every hook appends its name to `markers/order` and saves its stdin state as
//! `markers/<name>.json`. The markers dir is bind-mounted at the same path in
//! the container, so the same script works for hooks that run in the
//! container's mount namespace.

use super::errors::create_fails;
use super::{process_gone, wait_file, wait_for, Test};
use crate::harness::{Bundle, Ctx};
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const TESTS: &[Test] = &[
    ("hooks/create-runs-create-hooks", |c| {
        let o = observe(c)?;
        // prestart and createRuntime run at the same point; their relative order is not fixed.
        let mut got = o.after_create.clone();
        let head = got.len().min(2);
        got[..head].sort_by_key(|h| h != "prestart");
        expect_hooks(
            "create",
            &got,
            &["prestart", "createRuntime", "createContainer"],
        )
    }),
    ("hooks/start-runs-start-hooks", |c| {
        let o = observe(c)?;
        ensure!(
            o.process_saw_start_hook,
            "startContainer had not run when the process started"
        );
        expect_hooks(
            "start",
            o.after_start
                .get(o.after_create.len()..)
                .unwrap_or_default(),
            &["startContainer", "poststart"],
        )
    }),
    ("hooks/delete-runs-poststop", |c| {
        let o = observe(c)?;
        expect_hooks(
            "delete",
            o.after_delete
                .get(o.after_start.len()..)
                .unwrap_or_default(),
            &["poststop"],
        )
    }),
    ("hooks/state-on-stdin", state_on_stdin),
    ("hooks/args-and-env", args_and_env),
    ("hooks/failing-poststart-stops-container", failing_poststart),
    ("hooks/failing-create-runtime", |c| {
        let b = c.bundle(|v| v["hooks"] = json!({ "createRuntime": [sh("exit 1")] }))?;
        create_fails(c, &b, &b.id)
    }),
    ("hooks/timeout", |c| {
        let pid_file = c.dir.join("hook.pid");
        let mut hook = sh(&format!("echo $$ > {}; exec sleep 60", pid_file.display()));
        hook["timeout"] = json!(1);
        let b = c.bundle(|v| v["hooks"] = json!({ "createRuntime": [hook] }))?;
        let started = Instant::now();
        create_fails(c, &b, &b.id)?;
        let pid: i64 = fs::read_to_string(&pid_file)
            .context("hook did not run")?
            .trim()
            .parse()?;
        ensure!(
            process_gone(pid),
            "the timed-out hook (pid {pid}) is still running"
        );
        // Well below our own kill deadline: the runtime itself must stop the hook.
        ensure!(
            started.elapsed() < c.timeout() / 2,
            "create took {:?} with a 1s hook timeout",
            started.elapsed()
        );
        Ok(())
    }),
    // The state on stdin is bigger than a pipe buffer and the hook never reads it: the
    // timeout must still hold (a runtime blocked writing stdin never gets to it).
    ("hooks/timeout-with-large-state", |c| {
        let mut hook = sh("exec sleep 60");
        hook["timeout"] = json!(1);
        let b = c.bundle(|v| {
            v["hooks"] = json!({ "createRuntime": [hook] });
            v["annotations"] = json!({ "org.example.big": "x".repeat(1 << 20) });
        })?;
        let started = Instant::now();
        create_fails(c, &b, &b.id)?;
        ensure!(
            started.elapsed() < c.timeout() / 2,
            "create took {:?} with a 1s hook timeout",
            started.elapsed()
        );
        Ok(())
    }),
    ("hooks/hanging-poststart-leaves-commands-working", |c| {
        hanging_hook(c, "poststart")
    }),
    (
        "hooks/hanging-start-container-leaves-commands-working",
        |c| hanging_hook(c, "startContainer"),
    ),
];

/// While a `start` waits for a hook of `kind` that hangs, the container's other commands
/// answer (runc holds no lock meanwhile): `state`, `list`, `kill`, `delete --force`.
fn hanging_hook(ctx: &mut Ctx, kind: &str) -> Result<()> {
    let dir = ctx.dir.join("hang");
    fs::create_dir_all(&dir)?;
    ctx.hand_over(&dir)?;
    let d = dir.display().to_string();
    let hook = sh(&format!(
        "touch {d}/started; while [ ! -e {d}/go ]; do sleep 0.1; done"
    ));
    let b = ctx.bundle(|v| {
        v["hooks"] = json!({ kind: [hook] });
        // startContainer runs in the container's mount namespace: the dir is there too.
        v["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": d, "type": "bind", "source": d, "options": ["rbind", "rw"],
        }));
        v["process"]["args"] = json!(["sleep", "300"]);
    })?;
    ctx.rt(&["create", "--bundle", b.dir_str(), &b.id])?.ok()?;
    let pid = ctx.state(&b.id)?["pid"].as_i64().context("no pid")?;
    let start = ctx.spawn(&["start", &b.id])?;
    wait_file(ctx, &dir.join("started"))?;
    let result = (|| -> Result<()> {
        ctx.state(&b.id)?;
        let list = ctx.rt(&["list", "-q"])?.ok()?;
        ensure!(
            list.stdout.lines().any(|l| l.trim() == b.id),
            "`list -q` lacks {}: {}",
            b.id,
            list.stdout
        );
        ctx.rt(&["kill", &b.id, "KILL"])?.ok()?;
        wait_for(ctx, "the container's init to die", || process_gone(pid))?;
        ctx.rt(&["delete", "--force", &b.id])?.ok()?;
        ctx.assert_nothing_left(&b.id, &b.cgroup)
    })();
    fs::write(dir.join("go"), "")?;
    let _ = start.wait()?;
    result
}

const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

fn sh(script: &str) -> Value {
    json!({ "path": "/bin/sh", "args": ["sh", "-c", script] })
}

fn marker_hook(dir: &Path, name: &str) -> Value {
    let d = dir.display();
    sh(&format!(
        "cat > {d}/{name}.json && echo {name} >> {d}/order"
    ))
}

fn order(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("order"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn expect_hooks(step: &str, got: &[String], want: &[&str]) -> Result<()> {
    ensure!(got == want, "hooks run by {step}: {got:?}, want {want:?}");
    Ok(())
}

/// What one container with every hook showed over create, start, exit and delete.
struct Observed {
    bundle: Bundle,
    markers: PathBuf,
    pid: Value,
    after_create: Vec<String>,
    after_start: Vec<String>,
    after_delete: Vec<String>,
    process_saw_start_hook: bool,
}

fn observe(ctx: &mut Ctx) -> Result<Observed> {
    let markers = ctx.dir.join("markers");
    fs::create_dir_all(&markers)?;
    ctx.hand_over(&markers)?;
    let m = markers.display().to_string();
    // The process records whether startContainer ran before it, then waits for /tmp/go.
    let script = format!(
        "if [ -e {m}/startContainer.json ]; then echo yes; else echo no; fi > /tmp/.saw && mv /tmp/.saw /tmp/saw; \
         while [ ! -e /tmp/go ]; do sleep 0.1; done"
    );
    let b = ctx.bundle(|v| {
        v["hooks"] = HOOKS
            .iter()
            .map(|h| (h.to_string(), json!([marker_hook(&markers, h)])))
            .collect();
        v["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": m, "type": "bind", "source": m, "options": ["rbind", "rw"],
        }));
        v["process"]["args"] = json!(["sh", "-c", script]);
    })?;

    ctx.rt(&["create", "--bundle", b.dir_str(), &b.id])?.ok()?;
    let after_create = order(&markers);
    let pid = ctx.state(&b.id)?["pid"].clone();
    ctx.rt(&["start", &b.id])?.ok()?;
    let after_start = order(&markers);
    let saw = b.rootfs().join("tmp/saw");
    wait_file(ctx, &saw)?;
    let process_saw_start_hook = fs::read_to_string(&saw)?.trim() == "yes";
    fs::write(b.rootfs().join("tmp/go"), "")?;
    ctx.wait_status(&b.id, "stopped")?;
    ctx.rt(&["delete", &b.id])?.ok()?;
    let after_delete = order(&markers);
    Ok(Observed {
        bundle: b,
        markers,
        pid,
        after_create,
        after_start,
        after_delete,
        process_saw_start_hook,
    })
}

fn state_on_stdin(ctx: &mut Ctx) -> Result<()> {
    let o = observe(ctx)?;
    let host_pid = o.pid.as_i64().context("no pid in state")?;
    // The pid is as seen from where the hook runs: createContainer and
    // startContainer run in the container's (new) pid namespace, where it is 1.
    for (hook, status, pid) in [
        ("prestart", "creating", Some(host_pid)),
        ("createRuntime", "creating", Some(host_pid)),
        ("createContainer", "creating", Some(1)),
        ("startContainer", "created", Some(1)),
        ("poststart", "running", Some(host_pid)),
        ("poststop", "stopped", None),
    ] {
        let text = fs::read_to_string(o.markers.join(format!("{hook}.json")))
            .with_context(|| format!("{hook} did not run"))?;
        let st: Value =
            serde_json::from_str(&text).with_context(|| format!("{hook} stdin: {text:?}"))?;
        ensure!(
            st["id"] == o.bundle.id.as_str(),
            "{hook} got id {}",
            st["id"]
        );
        ensure!(
            st["bundle"] == o.bundle.dir_str(),
            "{hook} got bundle {}",
            st["bundle"]
        );
        ensure!(
            st["status"] == status,
            "{hook} got status {}, want {status}",
            st["status"]
        );
        if let Some(pid) = pid {
            ensure!(st["pid"] == pid, "{hook} got pid {}, want {pid}", st["pid"]);
        }
    }
    Ok(())
}

fn args_and_env(ctx: &mut Ctx) -> Result<()> {
    let out = ctx.dir.join("hook-out");
    let script = format!("echo \"$0|$1|$RT_HOOK\" > {}", out.display());
    let b = ctx.bundle(|v| {
        v["hooks"] = json!({ "createRuntime": [{
            "path": "/bin/sh", "args": ["sh", "-c", script, "zero", "one"], "env": ["RT_HOOK=yes"],
        }] });
    })?;
    ctx.rt(&["create", "--bundle", b.dir_str(), &b.id])?.ok()?;
    let got = fs::read_to_string(&out).context("hook did not run")?;
    ensure!(got.trim() == "zero|one|yes", "hook saw args/env {got:?}");
    Ok(())
}

/// A failing poststart hook is an error and stops the container (runc kills it): containerd's
/// shim, told start failed, would otherwise keep a running container it thinks is created.
fn failing_poststart(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(|v| {
        v["hooks"] = json!({ "poststart": [sh("exit 1")] });
        v["process"]["args"] = json!(["sleep", "1000"]);
    })?;
    let created = ctx.rt(&["create", "--bundle", b.dir_str(), &b.id])?;
    if !created.success() {
        // runc 1.1 runs poststart hooks at the end of create: then create fails and undoes all.
        created.failed()?;
        return ctx.assert_nothing_left(&b.id, &b.cgroup);
    }
    let pid = ctx.state(&b.id)?["pid"]
        .as_i64()
        .context("no pid in state")?;
    ctx.rt(&["start", &b.id])?.failed()?;
    wait_for(ctx, "the container's process to die", || process_gone(pid))?;
    ctx.wait_status(&b.id, "stopped")?;
    ctx.rt(&["delete", &b.id])?.ok()?;
    Ok(())
}
