//! The six hooks: when they run, what they get on stdin, args/env, failures.
//!
//! Every hook appends its name to `markers/order` and saves its stdin state as
//! `markers/<name>.json`. The markers dir is bind-mounted at the same path in
//! the container, so the same script works for hooks that run in the
//! container's mount namespace.

use super::errors::create_fails;
use super::{wait_file, Test};
use crate::harness::Ctx;
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::time::Instant;

pub const TESTS: &[Test] = &[
    ("hooks/order-and-state", order_and_state),
    ("hooks/args-and-env", args_and_env),
    ("hooks/failing-create-runtime", |c| {
        let b = c.bundle(|v| v["hooks"] = json!({ "createRuntime": [sh("exit 1")] }))?;
        create_fails(c, &b, &b.id)
    }),
    ("hooks/timeout", |c| {
        let mut hook = sh("sleep 60");
        hook["timeout"] = json!(1);
        let b = c.bundle(|v| v["hooks"] = json!({ "createRuntime": [hook] }))?;
        let started = Instant::now();
        create_fails(c, &b, &b.id)?;
        // Well below our own kill deadline: the runtime itself must stop the hook.
        ensure!(started.elapsed() < c.timeout() / 2, "create took {:?} with a 1s hook timeout", started.elapsed());
        Ok(())
    }),
];

const HOOKS: &[&str] = &["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];

fn sh(script: &str) -> Value {
    json!({ "path": "/bin/sh", "args": ["sh", "-c", script] })
}

fn marker_hook(dir: &Path, name: &str) -> Value {
    let d = dir.display();
    sh(&format!("cat > {d}/{name}.json && echo {name} >> {d}/order"))
}

fn order(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("order")).unwrap_or_default().lines().map(String::from).collect()
}

fn order_and_state(ctx: &mut Ctx) -> Result<()> {
    let markers = ctx.dir.join("markers");
    fs::create_dir_all(&markers)?;
    let m = markers.display().to_string();
    // The process proves startContainer ran before it, then waits for /tmp/go.
    let script = format!("test -e {m}/startContainer.json && touch /tmp/saw-start-hook; while [ ! -e /tmp/go ]; do sleep 0.1; done");
    let b = ctx.bundle(|v| {
        v["hooks"] = HOOKS.iter().map(|h| (h.to_string(), json!([marker_hook(&markers, h)]))).collect();
        v["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": m, "type": "bind", "source": m, "options": ["rbind", "rw"],
        }));
        v["process"]["args"] = json!(["sh", "-c", script]);
    })?;

    ctx.rt(&["create", "--bundle", b.dir_str(), &b.id])?.ok()?;
    let created = order(&markers);
    let mut want: Vec<&str> = vec!["prestart", "createRuntime", "createContainer"];
    // prestart is an alias of the createRuntime point; their relative order is not fixed.
    let mut got = created.clone();
    let head = got.len().min(2);
    got[..head].sort_by_key(|h| h != "prestart");
    ensure!(got == want, "hooks run by create: {created:?}, want {want:?}");
    let pid = ctx.state(&b.id)?["pid"].clone();

    ctx.rt(&["start", &b.id])?.ok()?;
    want.extend(["startContainer", "poststart"]);
    ensure!(order(&markers) == want, "hooks after start: {:?}, want {want:?}", order(&markers));
    wait_file(ctx, &b.rootfs().join("tmp/saw-start-hook")).context("startContainer did not run before the process")?;

    fs::write(b.rootfs().join("tmp/go"), "")?;
    ctx.wait_status(&b.id, "stopped")?;
    ctx.rt(&["delete", &b.id])?.ok()?;
    want.push("poststop");
    ensure!(order(&markers) == want, "hooks after delete: {:?}, want {want:?}", order(&markers));

    for (hook, status) in [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let text = fs::read_to_string(markers.join(format!("{hook}.json")))?;
        let st: Value = serde_json::from_str(&text).with_context(|| format!("{hook} stdin: {text:?}"))?;
        ensure!(st["id"] == b.id.as_str(), "{hook} got id {}", st["id"]);
        ensure!(st["bundle"] == b.dir_str(), "{hook} got bundle {}", st["bundle"]);
        ensure!(st["status"] == status, "{hook} got status {}, want {status}", st["status"]);
        if hook != "poststop" {
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
