//! Loading and validating a bundle's config.json. Everything that can be checked without touching
//! the system is checked here, so a bad config is refused before `create` changes anything.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::error::io_text;
use crate::{Context, Error, Result};

/// A loaded bundle: its canonical directory, its config, and the canonical rootfs path.
#[derive(Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub spec: Spec,
}

/// Load `<bundle>/config.json` and resolve `root.path` against the bundle.
pub fn load(bundle: &Path) -> Result<Bundle> {
    let dir = bundle
        .canonicalize()
        .ctx(|| format!("bundle {}", bundle.display()))?;
    let path = dir.join("config.json");
    let text = std::fs::read(&path).ctx(|| format!("read {}", path.display()))?;
    // The error names the field: "linux.seccomp.syscalls[2].action: unknown variant ...".
    let spec: Spec =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&text))
            .map_err(|e| Error::config(format_args!("{}: {e}", path.display())))?;
    check_version(spec.version())?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::config("root: missing"))?;
    // An empty path would make the bundle directory itself the rootfs.
    if root.path().as_os_str().is_empty() {
        return Err(Error::config("root.path: must not be empty"));
    }
    let rootfs = dir.join(root.path());
    let rootfs = rootfs.canonicalize().map_err(|e| {
        Error::config(format_args!(
            "root.path {}: {}",
            rootfs.display(),
            io_text(&e)
        ))
    })?;
    if !rootfs.is_dir() {
        return Err(Error::config(format_args!(
            "root.path {}: not a directory",
            rootfs.display()
        )));
    }
    Ok(Bundle { dir, rootfs, spec })
}

/// The runtime-spec says a runtime must refuse a config of a major version it does not know.
fn check_version(version: &str) -> Result<()> {
    let major = version.split('.').next().unwrap_or_default();
    if major != "1" {
        return Err(Error::config(format_args!(
            "ociVersion {version:?}: unsupported (this runtime supports 1.x)"
        )));
    }
    Ok(())
}

/// Checks of the process and the Linux section that don't depend on other modules.
pub fn validate(spec: &Spec) -> Result<()> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::config("process: missing"))?;
    validate_process(process)?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::config("linux: missing"))?;
    let has_ns = |t: LinuxNamespaceType| linux.namespaces().iter().flatten().any(|n| n.typ() == t);
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has_ns(LinuxNamespaceType::Uts) {
        return Err(Error::config("hostname: requires a uts namespace"));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !has_ns(LinuxNamespaceType::Uts)
    {
        return Err(Error::config("domainname: requires a uts namespace"));
    }
    // Without one the container shares the runtime's mount namespace, which berth then leaves
    // as it is: the process is only chrooted into the rootfs. runc refuses masked and read-only
    // paths there too; its mounts would land in (and outlive the container in) the host's.
    if !has_ns(LinuxNamespaceType::Mount) {
        let needs_mounts = [
            (
                "mounts",
                spec.mounts().as_ref().is_some_and(|m| !m.is_empty()),
            ),
            (
                "linux.maskedPaths",
                linux.masked_paths().as_ref().is_some_and(|p| !p.is_empty()),
            ),
            (
                "linux.readonlyPaths",
                linux
                    .readonly_paths()
                    .as_ref()
                    .is_some_and(|p| !p.is_empty()),
            ),
            (
                "linux.rootfsPropagation",
                linux.rootfs_propagation().is_some(),
            ),
            (
                "root.readonly",
                spec.root()
                    .as_ref()
                    .is_some_and(|r| r.readonly() == Some(true)),
            ),
        ];
        if let Some((field, _)) = needs_mounts.iter().find(|(_, set)| *set) {
            return Err(Error::config(format_args!(
                "{field}: needs a mount namespace (linux.namespaces has none: the container shares the runtime's)"
            )));
        }
    }
    for key in linux.sysctl().iter().flat_map(|s| s.keys()) {
        if let Some(ns) = sysctl_namespace(key) {
            if !has_ns(ns) {
                return Err(Error::config(format_args!(
                    "linux.sysctl {key:?}: requires a {ns} namespace"
                )));
            }
        } else {
            return Err(Error::config(format_args!(
                "linux.sysctl {key:?}: not namespaced, refusing to change the host's value"
            )));
        }
    }
    Ok(())
}

/// Checks of a process (the init's, or one `exec` adds) that need nothing but the process.
pub fn validate_process(process: &Process) -> Result<()> {
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::config("process.args: must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(Error::config(format_args!(
            "process.cwd {:?}: must be an absolute path",
            process.cwd()
        )));
    }
    // execve would take a NUL as the end of the entry; one without `=` is no variable at all.
    for (i, e) in process.env().iter().flatten().enumerate() {
        let why = match e.split_once('=') {
            _ if e.contains('\0') => "contains a NUL byte",
            None => "has no '=' (NAME=VALUE)",
            Some(("", _)) => "has an empty name",
            Some(_) => continue,
        };
        return Err(Error::config(format_args!("process.env[{i}] {e:?}: {why}")));
    }
    Ok(())
}

/// The namespace a sysctl belongs to, for the sysctls the kernel namespaces (as runc allows them).
fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else if key.starts_with("user.") {
        // The ucount limits of the container's own user namespace (runc 1.4 allows them).
        Some(LinuxNamespaceType::User)
    } else {
        None
    }
}

/// A container id must be a single path component we can use as a directory name.
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |why| Err(Error::InvalidId(id.to_string(), why));
    if id.is_empty() {
        return bad("must not be empty");
    }
    if id == "." || id == ".." {
        return bad("must not be . or ..");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
    {
        return bad("may contain only letters, digits, '_', '+', '-' and '.'");
    }
    if id.len() > 1024 {
        return bad("is too long");
    }
    Ok(())
}

/// The config.json `berth spec` writes: runc's default, so bundles made for one run on the other.
pub fn example(rootless: bool) -> serde_json::Value {
    let caps = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut spec = serde_json::json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": { "bounding": caps, "effective": caps, "permitted": caps },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "berth",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" },
                { "type": "mount" }, { "type": "cgroup" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        let linux = &mut spec["linux"];
        linux["uidMappings"] = serde_json::json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
        linux["gidMappings"] = serde_json::json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
        linux["namespaces"] = serde_json::json!([
            { "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" },
            { "type": "cgroup" }, { "type": "user" }
        ]);
        linux.as_object_mut().expect("object").remove("resources");
        // As runc's: without its own network namespace an unprivileged container can't mount
        // sysfs: bind it (berth makes its submounts read-only too).
        let mounts = spec["mounts"].as_array_mut().expect("array");
        for m in mounts.iter_mut().filter(|m| m["destination"] == "/sys") {
            *m = serde_json::json!({ "destination": "/sys", "type": "none", "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"] });
        }
        for m in mounts.iter_mut().filter(|m| m["destination"] == "/dev/pts") {
            m["options"] = serde_json::json!([
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620"
            ]);
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b", "ä"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn versions() {
        assert!(check_version("1.0.2-dev").is_ok());
        assert!(check_version("1.3.0").is_ok());
        assert!(check_version("2.0.0").is_err());
        assert!(check_version("").is_err());
    }

    #[test]
    fn parse_errors_name_the_field() {
        let dir = std::env::temp_dir().join(format!("berth-spec-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        for (linux, field) in [
            (
                r#"{"resources":{"cpu":{"quota":5,"shares":-2}}}"#,
                "linux.resources.cpu.shares",
            ),
            (
                r#"{"resources":{"devices":[{"allow":false},{"allow":true,"type":"x"}]}}"#,
                "linux.resources.devices[1].type",
            ),
        ] {
            let config =
                format!(r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},"linux":{linux}}}"#);
            std::fs::write(dir.join("config.json"), config).unwrap();
            let err = load(&dir).unwrap_err().to_string();
            assert!(err.contains(field), "{err:?} does not name {field}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sysctls() {
        assert_eq!(
            sysctl_namespace("net.ipv4.ip_forward"),
            Some(LinuxNamespaceType::Network)
        );
        assert_eq!(
            sysctl_namespace("fs.mqueue.msg_max"),
            Some(LinuxNamespaceType::Ipc)
        );
        assert_eq!(sysctl_namespace("vm.swappiness"), None);
    }
}
