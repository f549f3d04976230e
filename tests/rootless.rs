//! berth run by an unprivileged user (nobody, 65534): the default state root under
//! $XDG_RUNTIME_DIR, a user namespace mapping only the user's own id (written by berth itself,
//! no newuidmap), no cgroup where the user may not make one, and a read-only /sys whose
//! submounts (the host's cgroup mounts) are read-only too.

use std::os::unix::fs::{chown, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");
const NOBODY: u32 = 65534;

struct Bundle {
    dir: PathBuf,
    id: String,
}

impl Bundle {
    /// A busybox bundle owned by nobody, from `spec --rootless` with nobody's maps.
    fn new(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Bundle {
        let id = format!("rootless-{name}-{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("berth-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        let bin = dir.join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(dir.join("xdg")).unwrap();
        std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
        for applet in ["sh", "cat", "id", "awk", "touch"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        let mut spec = berth::spec::example(true);
        let own = serde_json::json!([{ "containerID": 0, "hostID": NOBODY, "size": 1 }]);
        spec["linux"]["uidMappings"] = own.clone();
        spec["linux"]["gidMappings"] = own;
        spec["process"]["terminal"] = false.into();
        edit(&mut spec);
        std::fs::write(dir.join("config.json"), spec.to_string()).unwrap();
        let done = Command::new("chown")
            .args(["-R", &format!("{NOBODY}:{NOBODY}")])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(done.success());
        chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
        Bundle { dir, id }
    }

    /// `berth ARGS` as nobody, in the bundle, with $XDG_RUNTIME_DIR in it.
    fn berth(&self, args: &[&str]) -> Output {
        Command::new(BERTH)
            .args(args)
            .current_dir(&self.dir)
            .env("XDG_RUNTIME_DIR", self.dir.join("xdg"))
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
            .expect("run berth")
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = self.berth(&["delete", "--force", &self.id]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn runs_as_a_user_without_a_cgroup() {
    // Every mount at or below /sys, with its options: all must be read-only.
    let b = Bundle::new("run", |spec| {
        spec["process"]["args"] = serde_json::json!([
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map; awk '$5 ~ \"^/sys\" { print \"mount\", $5, $6 }' /proc/self/mountinfo"
        ]);
    });
    let out = b.berth(&["run", &b.id]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines[0], "0", "{all}");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", "65534", "1"],
        "{all}"
    );
    let mounts: Vec<&&str> = lines.iter().filter(|l| l.starts_with("mount ")).collect();
    assert!(mounts.len() > 1, "no /sys submounts: {all}");
    for m in mounts {
        assert!(m.split(' ').nth(2).unwrap().starts_with("ro"), "{m}");
    }
    // runc's default root for a user: $XDG_RUNTIME_DIR/berth, 0700 with the sticky bit.
    let root = std::fs::metadata(b.dir.join("xdg/berth")).unwrap();
    assert_eq!(root.mode() & 0o7777, 0o1700);
    assert_eq!(root.uid(), NOBODY);
}

#[test]
fn a_cgroups_path_the_user_cannot_make_is_an_error() {
    let b = Bundle::new("cgpath", |spec| {
        spec["linux"]["cgroupsPath"] = "/berth-test/rootless".into();
        spec["process"]["args"] = serde_json::json!(["true"]);
    });
    let out = b.berth(&["run", &b.id]);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains("rootless") && all.contains("linux.cgroupsPath"),
        "{all}"
    );
    // Without rootless cgroups, the permission error itself.
    let out = b.berth(&["--rootless", "false", "run", &b.id]);
    assert!(!out.status.success());
    assert!(text(&out).contains("EACCES"), "{}", text(&out));
}

#[test]
fn rootless_flag_takes_runc_values() {
    let b = Bundle::new("flag", |_| {});
    for ok in ["auto", "true", "0", "False"] {
        let out = b.berth(&["--rootless", ok, "list"]);
        assert!(out.status.success(), "--rootless {ok}: {}", text(&out));
    }
    let out = b.berth(&["--rootless", "maybe", "list"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("invalid value"), "{}", text(&out));
}
