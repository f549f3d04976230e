//! checkpoint/restore through CRIU. Each test skips, saying why, unless RUNTIME_TESTS_CRIU=1,
//! where `criu` is missing or `criu check` fails (CRIU needs kernel features our hybrid hosts' kernel lacks; the cgroup
//! v2 VM has them). The containers' stdio is /dev/null inside: CRIU cannot dump an fd of a
//! host file from outside the container's mounts.

use super::{skip, wait_for, Test};
use crate::harness::{cgroup_dirs, Bundle, Ctx};
use anyhow::{ensure, Context, Result};
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

pub const TESTS: &[Test] = &[
    ("checkpoint/count-continues", count_continues),
    ("checkpoint/leave-running", leave_running),
    ("checkpoint/pre-dump-then-dump", pre_dump_then_dump),
    ("checkpoint/tcp-established", tcp_established),
    (
        "checkpoint/restore-new-id-and-bundle",
        restore_new_id_and_bundle,
    ),
    ("checkpoint/restore-busy-id-fails", restore_busy_id_fails),
    (
        "checkpoint/restore-missing-image-fails",
        restore_missing_image_fails,
    ),
    (
        "checkpoint/restore-bad-flag-value-fails",
        restore_bad_flag_value_fails,
    ),
];

/// Counts into /count, one more every 0.1 s, with its stdio inside the container.
const COUNTER: &str = "exec </dev/null >/dev/null 2>&1; i=0; \
    while true; do i=$((i+1)); echo $i > /count.tmp; mv /count.tmp /count; sleep 0.1; done";

/// Skips unless asked for (`RUNTIME_TESTS_CRIU=1`, which `make vm-test` sets: CRIU is only run
/// where it is known to work), CRIU is installed and `criu check` passes on this kernel.
fn need_criu() -> Result<()> {
    if std::env::var_os("RUNTIME_TESTS_CRIU").is_none_or(|v| v != "1") {
        return Err(skip(
            "CRIU tests run only with RUNTIME_TESTS_CRIU=1 (make vm-test sets it)",
        ));
    }
    let out = match Command::new("criu").arg("check").output() {
        Ok(o) => o,
        Err(e) => return Err(skip(format!("criu is not installed: {e}"))),
    };
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let last = text.lines().last().unwrap_or("").trim().to_string();
        return Err(skip(format!("`criu check` fails on this kernel: {last}")));
    }
    Ok(())
}

fn counter_bundle(ctx: &mut Ctx) -> Result<Bundle> {
    ctx.bundle(|v| v["process"]["args"] = json!(["sh", "-c", COUNTER]))
}

fn run_detached(ctx: &mut Ctx, b: &Bundle) -> Result<()> {
    ctx.rt(&["run", "--detach", "--bundle", b.dir_str(), &b.id])?
        .ok()?;
    ctx.wait_status(&b.id, "running").map(drop)
}

fn count(b: &Bundle) -> u64 {
    fs::read_to_string(b.rootfs().join("count"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until the count in `b`'s rootfs exceeds `past`; returns it.
fn count_past(ctx: &Ctx, b: &Bundle, past: u64) -> Result<u64> {
    wait_for(ctx, &format!("/count above {past}"), || count(b) > past)?;
    Ok(count(b))
}

/// The first count written after `at`: a restored counter goes on from `at`, where a new
/// one would start again at 1.
fn next_count(ctx: &Ctx, b: &Bundle, at: u64) -> Result<u64> {
    wait_for(ctx, "the count to move", || count(b) != at)?;
    let next = count(b);
    ensure!(next > at, "the count started again: {next} after {at}");
    Ok(next)
}

fn image_dir(ctx: &Ctx, name: &str) -> PathBuf {
    ctx.dir.join(name)
}

fn checkpoint(ctx: &mut Ctx, id: &str, images: &Path, extra: &[&str]) -> Result<()> {
    let images = images.to_str().expect("utf-8 temp path");
    let mut args = vec!["checkpoint", "--image-path", images];
    args.extend_from_slice(extra);
    args.push(id);
    ctx.rt(&args)?.ok().map(drop)
}

fn restore(ctx: &mut Ctx, b: &Bundle, id: &str, images: &Path, extra: &[&str]) -> Result<()> {
    let images = images.to_str().expect("utf-8 temp path");
    let mut args = vec!["restore", "--detach", "--image-path", images];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--bundle", b.dir_str(), id]);
    ctx.rt(&args)?.ok()?;
    ctx.track(id);
    ctx.wait_status(id, "running").map(drop)
}

/// The checkpointed container is gone and its count stands still.
fn stopped_at(ctx: &mut Ctx, b: &Bundle) -> Result<u64> {
    ensure!(
        !ctx.rt(&["state", &b.id])?.success(),
        "the container still exists after checkpoint"
    );
    let at = count(b);
    sleep(Duration::from_millis(500));
    ensure!(count(b) == at, "the count went on after checkpoint");
    Ok(at)
}

/// A restored container is an ordinary one: exec and kill work, delete removes it.
fn ordinary(ctx: &mut Ctx, id: &str) -> Result<()> {
    let out = ctx.rt(&["exec", id, "cat", "/count"])?.ok()?;
    ensure!(
        out.stdout.trim().parse::<u64>().is_ok(),
        "exec in the restored container printed {:?}",
        out.stdout
    );
    ctx.rt(&["kill", id, "KILL"])?.ok()?;
    ctx.wait_status(id, "stopped")?;
    ctx.rt(&["delete", id])?.ok().map(drop)
}

fn count_continues(ctx: &mut Ctx) -> Result<()> {
    need_criu()?;
    let b = counter_bundle(ctx)?;
    run_detached(ctx, &b)?;
    count_past(ctx, &b, 3)?;
    let images = image_dir(ctx, "images");
    checkpoint(ctx, &b.id, &images, &[])?;
    let at = stopped_at(ctx, &b)?;
    restore(ctx, &b, &b.id, &images, &[])?;
    let st = ctx.state(&b.id)?;
    ensure!(st["pid"].as_i64().unwrap_or(0) > 0, "restored state: {st}");
    let first = next_count(ctx, &b, at)?;
    count_past(ctx, &b, first)?;
    ordinary(ctx, &b.id)
}

fn leave_running(ctx: &mut Ctx) -> Result<()> {
    need_criu()?;
    let b = counter_bundle(ctx)?;
    run_detached(ctx, &b)?;
    let before = count_past(ctx, &b, 2)?;
    let images = image_dir(ctx, "images");
    checkpoint(ctx, &b.id, &images, &["--leave-running"])?;
    ctx.wait_status(&b.id, "running")?;
    count_past(ctx, &b, before + 2)?;
    ensure!(
        images.join("inventory.img").exists(),
        "no inventory.img in the image dir"
    );
    Ok(())
}

fn pre_dump_then_dump(ctx: &mut Ctx) -> Result<()> {
    need_criu()?;
    let b = counter_bundle(ctx)?;
    run_detached(ctx, &b)?;
    count_past(ctx, &b, 2)?;
    let pre = image_dir(ctx, "pre");
    let full = image_dir(ctx, "full");
    checkpoint(ctx, &b.id, &pre, &["--pre-dump"])?;
    ctx.wait_status(&b.id, "running")?;
    let after_pre = count_past(ctx, &b, count(&b))?;
    checkpoint(ctx, &b.id, &full, &["--parent-path", "../pre"])?;
    let at = stopped_at(ctx, &b)?;
    ensure!(
        at >= after_pre,
        "count {at} after the dump, {after_pre} before"
    );
    ensure!(
        full.join("parent").exists(),
        "the dump did not link its parent image"
    );
    restore(ctx, &b, &b.id, &full, &[])?;
    next_count(ctx, &b, at)?;
    ordinary(ctx, &b.id)
}

/// A server and a client in the container, talking over loopback; the client (once the server
/// listens on port 5555 = 0x15B3, over IPv4 or IPv6) sends a line every 0.1 s, the server
/// writes them to /received (its stdin never ends: busybox's nc stops at EOF there).
fn tcp_established(ctx: &mut Ctx) -> Result<()> {
    need_criu()?;
    let script = "exec </dev/null >/dev/null 2>/tcp.err; ip link set lo up; \
        sleep 100000 | nc -l -p 5555 > /received & \
        until cat /proc/net/tcp /proc/net/tcp6 | grep -q ':15B3 [0-9A-F]*:0000 0A'; do sleep 0.1; done; \
        i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done | nc 127.0.0.1 5555; \
        sleep 1000";
    let b = ctx.bundle(|v| {
        v["process"]["args"] = json!(["sh", "-c", script]);
        let caps = json!(["CAP_NET_ADMIN", "CAP_KILL"]);
        for set in ["bounding", "effective", "permitted"] {
            v["process"]["capabilities"][set] = caps.clone();
        }
    })?;
    run_detached(ctx, &b)?;
    let received = b.rootfs().join("received");
    let lines = |p: &Path| {
        fs::read_to_string(p)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let errors = || fs::read_to_string(b.rootfs().join("tcp.err")).unwrap_or_default();
    wait_for(ctx, "lines over the connection", || lines(&received) > 3)
        .with_context(|| format!("the container's stderr: {}", errors()))?;
    let images = image_dir(ctx, "images");
    checkpoint(ctx, &b.id, &images, &["--tcp-established"])?;
    ensure!(
        !ctx.rt(&["state", &b.id])?.success(),
        "the container still exists after checkpoint"
    );
    let at = lines(&received);
    restore(ctx, &b, &b.id, &images, &["--tcp-established"])?;
    wait_for(ctx, "more lines over the restored connection", || {
        lines(&received) > at + 3
    })?;
    let text = fs::read_to_string(&received)?;
    let got: Vec<u64> = text.lines().filter_map(|l| l.parse().ok()).collect();
    let in_order = got.windows(2).all(|w| w[1] == w[0] + 1);
    ensure!(
        in_order,
        "lines lost or repeated across the restore: {got:?}"
    );
    Ok(())
}

fn restore_new_id_and_bundle(ctx: &mut Ctx) -> Result<()> {
    need_criu()?;
    let a = counter_bundle(ctx)?;
    run_detached(ctx, &a)?;
    count_past(ctx, &a, 3)?;
    let images = image_dir(ctx, "images");
    checkpoint(ctx, &a.id, &images, &[])?;
    let at = stopped_at(ctx, &a)?;
    let b = counter_bundle(ctx)?;
    restore(ctx, &b, &b.id, &images, &[])?;
    // The new rootfs has no /count yet: the restored counter writes its next one there.
    wait_for(ctx, "a count in the new bundle", || count(&b) > 0)?;
    ensure!(
        count(&b) > at,
        "the new bundle's count {} is not past {at}",
        count(&b)
    );
    ensure!(count(&a) == at, "the old bundle's count moved");
    let st = ctx.state(&b.id)?;
    ensure!(
        st["bundle"].as_str() == Some(b.dir_str()),
        "restored container's bundle: {st}"
    );
    ensure!(
        !cgroup_dirs(&b.cgroup).is_empty(),
        "the restored container has no cgroup {}",
        b.cgroup
    );
    ordinary(ctx, &b.id)
}

/// Checkpointed images of a counter, the container gone; for the failure tests.
fn images_of_counter(ctx: &mut Ctx) -> Result<(Bundle, PathBuf)> {
    let a = counter_bundle(ctx)?;
    run_detached(ctx, &a)?;
    count_past(ctx, &a, 2)?;
    let images = image_dir(ctx, "images");
    checkpoint(ctx, &a.id, &images, &[])?;
    Ok((a, images))
}

fn restore_busy_id_fails(ctx: &mut Ctx) -> Result<()> {
    need_criu()?;
    let (_, images) = images_of_counter(ctx)?;
    let busy = counter_bundle(ctx)?;
    run_detached(ctx, &busy)?;
    let b = counter_bundle(ctx)?;
    let imgs = images.to_str().expect("utf-8 temp path");
    let out = ctx
        .rt(&[
            "restore",
            "-d",
            "--image-path",
            imgs,
            "--bundle",
            b.dir_str(),
            &busy.id,
        ])?
        .failed()?;
    ensure!(
        out.stderr.contains("exist"),
        "error does not say the id exists: {}",
        out.stderr.trim()
    );
    let st = ctx.state(&busy.id)?;
    ensure!(st["status"] == "running", "the busy container: {st}");
    ensure!(
        cgroup_dirs(&b.cgroup).is_empty(),
        "the failed restore left cgroup {}",
        b.cgroup
    );
    ensure!(
        count(&b) == 0,
        "something ran in the failed restore's rootfs"
    );
    Ok(())
}

fn restore_missing_image_fails(ctx: &mut Ctx) -> Result<()> {
    need_criu()?;
    let b = counter_bundle(ctx)?;
    let missing = image_dir(ctx, "no-such-images");
    let imgs = missing.to_str().expect("utf-8 temp path");
    let out = ctx
        .rt(&[
            "restore",
            "-d",
            "--image-path",
            imgs,
            "--bundle",
            b.dir_str(),
            &b.id,
        ])?
        .failed()?;
    ensure!(
        !out.stderr.trim().is_empty(),
        "no error message for a missing image"
    );
    ctx.assert_nothing_left(&b.id, &b.cgroup)
}

fn restore_bad_flag_value_fails(ctx: &mut Ctx) -> Result<()> {
    need_criu()?;
    let (_, images) = images_of_counter(ctx)?;
    let b = counter_bundle(ctx)?;
    let imgs = images.to_str().expect("utf-8 temp path");
    let out = ctx
        .rt(&[
            "restore",
            "-d",
            "--manage-cgroups-mode",
            "bogus",
            "--image-path",
            imgs,
            "--bundle",
            b.dir_str(),
            &b.id,
        ])?
        .failed()?;
    ensure!(
        out.stderr.contains("manage-cgroups-mode"),
        "error does not name the flag: {}",
        out.stderr.trim()
    );
    ctx.assert_nothing_left(&b.id, &b.cgroup)
        .context("after a restore with a bad flag value")
}
