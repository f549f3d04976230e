//! `run` and `exec -t` in the foreground with a terminal bridge the user's tty: driven through
//! script(1), which gives the runtime a pty as a person at a shell would.

use std::path::{Path, PathBuf};
use std::process::Command;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

struct Bundle {
    dir: PathBuf,
    id: String,
}

impl Bundle {
    fn new(name: &str, terminal: bool, args: &[&str]) -> Bundle {
        let id = format!("tty-{name}-{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("berth-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        let bin = dir.join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
        for applet in ["sh", "tty", "sleep"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        let mut spec = berth::spec::example(false);
        spec["process"]["terminal"] = terminal.into();
        spec["process"]["args"] = serde_json::json!(args);
        spec["linux"]["cgroupsPath"] = format!("/berth-test/{id}").into();
        std::fs::write(dir.join("config.json"), spec.to_string()).unwrap();
        Bundle { dir, id }
    }

    fn root(&self) -> String {
        self.dir.join("state").display().to_string()
    }

    /// `berth ARGS` under script(1); its output and exit status.
    fn in_pty(&self, args: &str) -> (String, Option<i32>) {
        let cmd = format!("{BERTH} --root {} {args}", self.root());
        let out = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .expect("run script");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status.code(),
        )
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = Command::new(BERTH)
            .args(["--root", &self.root(), "delete", "--force", &self.id])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(h.path().join("berth-test"));
        }
        let _ = std::fs::remove_dir("/sys/fs/cgroup/berth-test");
    }
}

fn have_script() -> bool {
    let found = Path::new("/usr/bin/script").exists();
    if !found {
        eprintln!("skipped: no script(1) here");
    }
    found
}

#[test]
fn run_bridges_the_terminal() {
    if !have_script() {
        return;
    }
    let b = Bundle::new("run", true, &["sh", "-c", "tty; exit 7"]);
    let (out, code) = b.in_pty(&format!("run --bundle {} {}", b.dir.display(), b.id));
    assert!(
        out.contains("/dev/pts/"),
        "no pty in the container: {out:?}"
    );
    assert_eq!(code, Some(7), "{out:?}");
}

#[test]
fn exec_tty_bridges_the_terminal() {
    if !have_script() {
        return;
    }
    let b = Bundle::new("exec", false, &["sleep", "300"]);
    let run = Command::new(BERTH)
        .args([
            "--root",
            &b.root(),
            "run",
            "--detach",
            "--bundle",
            &b.dir.display().to_string(),
            &b.id,
        ])
        .status()
        .unwrap();
    assert!(run.success());
    let (out, code) = b.in_pty(&format!("exec -t {} sh -c 'tty; exit 5'", b.id));
    assert!(
        out.contains("/dev/pts/"),
        "no pty for the exec'd process: {out:?}"
    );
    assert_eq!(code, Some(5), "{out:?}");
}
