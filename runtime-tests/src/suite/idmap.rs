//! Idmapped bind mounts (runtime-spec 1.2: mounts[].uidMappings/gidMappings, `idmap`, `ridmap`),
//! bind sources only host root can reach, and `user.*` sysctls, seen from inside a container
//! with its own user namespace.

use super::errors::create_fails_naming;
use super::{skip, wait_for, Test};
use crate::harness::{ns_inode, Ctx};
use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use std::ffi::CString;
use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TESTS: &[Test] = &[
    ("inside/idmap-owner-mapped", owner_mapped),
    ("inside/idmap-create-maps-back", create_maps_back),
    ("inside/idmap-recursive-submounts", recursive_submounts),
    (
        "inside/idmap-mapping-outside-userns",
        mapping_outside_userns,
    ),
    ("inside/idmap-refused-configs", refused_configs),
    ("inside/idmap-crun-ranges", crun_ranges),
    ("inside/idmap-keeps-host-locks", keeps_host_locks),
    ("inside/userns-bind-source-host-only", bind_source_host_only),
    ("inside/sysctl-user", sysctl_user),
];

/// The container's user namespace in every test here. Its root may not write the rootfs (owned
/// by host root), so mount destinations are made in its /tmp (mode 1777).
const HOST_BASE: u32 = 100000;

fn userns(v: &mut Value) {
    let map = json!([{ "containerID": 0, "hostID": HOST_BASE, "size": 65536 }]);
    v["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({ "type": "user" }));
    v["linux"]["uidMappings"] = map.clone();
    v["linux"]["gidMappings"] = map;
}

fn map(ranges: &[(u32, u32)]) -> Value {
    ranges
        .iter()
        .map(|(c, h)| json!({ "containerID": c, "hostID": h, "size": 1 }))
        .collect()
}

fn bind(v: &mut Value, source: &Path, dest: &str, options: &[&str]) -> usize {
    let mounts = v["mounts"].as_array_mut().expect("mounts");
    mounts
        .push(json!({ "source": source, "destination": dest, "type": "bind", "options": options }));
    mounts.len() - 1
}

/// A source directory anyone may write, holding `root-file` (0:0) and `user-file` (1000:2000).
/// It is owned by 500:600, which every mapping that writes in it maps: the kernel refuses
/// writes in a directory whose owner the mount cannot map.
fn source(ctx: &Ctx, name: &str) -> Result<PathBuf> {
    let dir = ctx.dir.join(name);
    fs::create_dir_all(&dir)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777))?;
    chown(&dir, Some(500), Some(600))?;
    fs::write(dir.join("root-file"), "")?;
    fs::write(dir.join("user-file"), "")?;
    chown(dir.join("user-file"), Some(1000), Some(2000))?;
    Ok(dir)
}

fn overflow_id() -> Result<u32> {
    Ok(fs::read_to_string("/proc/sys/kernel/overflowuid")?
        .trim()
        .parse()?)
}

fn owner(r: &crate::report::Report, path: &str) -> Result<(u64, u64)> {
    let st = r.probe(&format!("stat:{path}"))?;
    Ok((
        st["uid"].as_u64().context("uid")?,
        st["gid"].as_u64().context("gid")?,
    ))
}

fn host_owner(path: &Path) -> Result<(u64, u64)> {
    let m = fs::metadata(path).with_context(|| format!("stat {}", path.display()))?;
    Ok((u64::from(m.uid()), u64::from(m.gid())))
}

/// Skip unless the kernel can idmap a mount of `dir`'s filesystem (Linux 5.12; tmpfs only from
/// 6.3): the test itself clones it and sets MOUNT_ATTR_IDMAP with a user namespace of its own.
fn require_idmap(ctx: &mut Ctx, dir: &Path) -> Result<()> {
    // The kernel idmaps only with a user namespace that has a mapping.
    let unshare = ["--user", "--map-root-user", "sleep", "300"];
    let pid = match ctx.child(Command::new("unshare").args(unshare)) {
        Ok(pid) => pid.to_string(),
        Err(e)
            if e.root_cause()
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == ErrorKind::NotFound) =>
        {
            return Err(skip("unshare(1) is not installed"));
        }
        Err(e) => return Err(e),
    };
    let host = ns_inode("self", "user")?;
    wait_for(ctx, "unshare to map its user namespace", || {
        ns_inode(&pid, "user").is_ok_and(|i| i != host)
            && fs::read_to_string(format!("/proc/{pid}/uid_map")).is_ok_and(|m| !m.is_empty())
    })?;
    let ns = fs::File::open(format!("/proc/{pid}/ns/user"))?;
    let path = CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: path is NUL-terminated and outlives the call, which returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(skip(format!(
            "open_tree: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: fd was just returned to us by open_tree and nobody else owns it.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // struct mount_attr: attr_set, attr_clr, propagation, userns_fd.
    let attr: [u64; 4] = [0x0010_0000, 0, 0, ns.as_raw_fd() as u64];
    // SAFETY: the path is an empty NUL-terminated string and attr a live mount_attr of the size
    // passed; the kernel only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(skip(format!(
            "this kernel cannot idmap a mount of {} ({e})",
            dir.display()
        )));
    }
    Ok(())
}

/// A file owned by host uid X is seen inside as the id the mount's mapping makes of it.
fn owner_mapped(ctx: &mut Ctx) -> Result<()> {
    let src = source(ctx, "src")?;
    require_idmap(ctx, &src)?;
    let r = ctx.check(
        |v| {
            userns(v);
            // The container's own mapping: host ids are seen as the container sees them.
            bind(v, &src, "/tmp/own", &["bind", "idmap"]);
            // An explicit one: filesystem 1000:2000 appears as host 100005:100007, that is 5:7.
            let i = bind(v, &src, "/tmp/given", &["bind"]);
            v["mounts"][i]["uidMappings"] = map(&[(1000, HOST_BASE + 5)]);
            v["mounts"][i]["gidMappings"] = map(&[(2000, HOST_BASE + 7)]);
        },
        &[
            "stat:/tmp/own/user-file",
            "stat:/tmp/own/root-file",
            "stat:/tmp/given/user-file",
            "stat:/tmp/given/root-file",
        ],
    )?;
    let nobody = u64::from(overflow_id()?);
    for (path, want) in [
        ("/tmp/own/user-file", (1000, 2000)),
        ("/tmp/own/root-file", (0, 0)),
        ("/tmp/given/user-file", (5, 7)),
        ("/tmp/given/root-file", (nobody, nobody)),
    ] {
        let got = owner(&r, path)?;
        ensure!(
            got == want,
            "{path} is owned by {got:?} inside, want {want:?}"
        );
    }
    Ok(())
}

/// A file the container creates lands on the host with the id mapped back through the mount.
fn create_maps_back(ctx: &mut Ctx) -> Result<()> {
    let src = source(ctx, "src")?;
    require_idmap(ctx, &src)?;
    let r = ctx.check(
        |v| {
            userns(v);
            bind(v, &src, "/tmp/own", &["bind", "idmap"]);
            // The container's root (host 100000) writes as filesystem 500:600.
            let i = bind(v, &src, "/tmp/given", &["bind"]);
            v["mounts"][i]["uidMappings"] = map(&[(500, HOST_BASE)]);
            v["mounts"][i]["gidMappings"] = map(&[(600, HOST_BASE)]);
        },
        &["write:/tmp/own/new-own", "write:/tmp/given/new-given"],
    )?;
    r.probe("write:/tmp/own/new-own")?;
    r.probe("write:/tmp/given/new-given")?;
    for (file, want) in [("new-own", (0, 0)), ("new-given", (500, 600))] {
        let got = host_owner(&src.join(file))?;
        ensure!(
            got == want,
            "{file} is owned by {got:?} on the host, want {want:?}"
        );
    }
    Ok(())
}

/// A bind mount the test puts on the host, detached when the test ends.
struct HostMount(CString);

impl HostMount {
    fn bind(from: &Path, to: &Path) -> Result<HostMount> {
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes());
        let (from, to) = (c(from)?, c(to)?);
        mount(Some(&from), &to, libc::MS_BIND)?;
        Ok(HostMount(to))
    }

    fn make_readonly(&self) -> Result<()> {
        mount(
            None,
            &self.0,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
        )
    }
}

fn mount(from: Option<&CString>, to: &CString, flags: libc::c_ulong) -> Result<()> {
    let from_ptr = from.map_or(std::ptr::null(), |f| f.as_ptr());
    // SAFETY: the paths are NUL-terminated (or null) and outlive the call; no fs type or data.
    let r = unsafe {
        libc::mount(
            from_ptr,
            to.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    };
    if r < 0 {
        bail!(
            "mount {from:?} on {to:?} (flags {flags:#x}): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

impl Drop for HostMount {
    fn drop(&mut self) {
        // SAFETY: the path is NUL-terminated and lives as long as self.
        unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
    }
}

/// `ridmap` idmaps the submounts of an `rbind` too; `idmap` only its top mount.
fn recursive_submounts(ctx: &mut Ctx) -> Result<()> {
    let tree = source(ctx, "tree")?;
    let sub = source(ctx, "sub")?;
    require_idmap(ctx, &tree)?;
    fs::create_dir_all(tree.join("sub"))?;
    let _mount = HostMount::bind(&sub, &tree.join("sub"))?;
    let r = ctx.check(
        |v| {
            userns(v);
            bind(v, &tree, "/tmp/all", &["rbind", "ridmap"]);
            bind(v, &tree, "/tmp/top", &["rbind", "idmap"]);
        },
        &[
            "stat:/tmp/all/root-file",
            "stat:/tmp/all/sub/root-file",
            "stat:/tmp/top/root-file",
            "stat:/tmp/top/sub/root-file",
        ],
    )?;
    let nobody = u64::from(overflow_id()?);
    for (path, want) in [
        ("/tmp/all/root-file", (0, 0)),
        ("/tmp/all/sub/root-file", (0, 0)),
        ("/tmp/top/root-file", (0, 0)),
        // Not idmapped: host root is not in the container's user namespace.
        ("/tmp/top/sub/root-file", (nobody, nobody)),
    ] {
        let got = owner(&r, path)?;
        ensure!(
            got == want,
            "{path} is owned by {got:?} inside, want {want:?}"
        );
    }
    Ok(())
}

/// A mapping onto host ids outside the container's user namespace: its files are seen as the
/// overflow id, and a file the container's root would create there has no filesystem id to get,
/// so the kernel refuses it with EOVERFLOW.
fn mapping_outside_userns(ctx: &mut Ctx) -> Result<()> {
    let src = source(ctx, "src")?;
    require_idmap(ctx, &src)?;
    let r = ctx.check(
        |v| {
            userns(v);
            let i = bind(v, &src, "/tmp/outside", &["bind", "idmap"]);
            let map = json!([{ "containerID": 0, "hostID": 2 * HOST_BASE, "size": 65536 }]);
            v["mounts"][i]["uidMappings"] = map.clone();
            v["mounts"][i]["gidMappings"] = map;
        },
        &["stat:/tmp/outside/root-file", "write:/tmp/outside/new"],
    )?;
    let nobody = u64::from(overflow_id()?);
    let got = owner(&r, "/tmp/outside/root-file")?;
    ensure!(
        got == (nobody, nobody),
        "root-file is owned by {got:?} inside"
    );
    let errno = r.probe_errno("write:/tmp/outside/new")?;
    ensure!(
        errno == i64::from(libc::EOVERFLOW),
        "creating a file: errno {errno}, want EOVERFLOW"
    );
    ensure!(!src.join("new").exists(), "the file was created");
    Ok(())
}

/// What runc 1.5 refuses, refused at create with an error naming the mount.
fn refused_configs(ctx: &mut Ctx) -> Result<()> {
    let src = source(ctx, "src")?;
    // Only bind mounts can be idmapped.
    create_fails_naming(ctx, "/tmp/idmapped-tmpfs", |v| {
        userns(v);
        v["mounts"].as_array_mut().expect("mounts").push(json!({
            "source": "tmpfs", "destination": "/tmp/idmapped-tmpfs", "type": "tmpfs", "options": ["idmap"]
        }));
    })?;
    // uidMappings without gidMappings.
    create_fails_naming(ctx, "/tmp/only-uids", |v| {
        userns(v);
        let i = bind(v, &src, "/tmp/only-uids", &["bind"]);
        v["mounts"][i]["uidMappings"] = map(&[(0, HOST_BASE)]);
    })?;
    // idmap without a mapping, in a container without a user namespace to take one from.
    create_fails_naming(ctx, "/tmp/no-mapping", |v| {
        bind(v, &src, "/tmp/no-mapping", &["bind", "idmap"]);
    })
}

/// crun's `idmap=uids=FS-HOST-SIZE#@FS-CONTAINER-SIZE;gids=...` form; `@` ranges name ids of
/// the container's user namespace, and one outside it is refused naming the mount.
fn crun_ranges(ctx: &mut Ctx) -> Result<()> {
    let src = source(ctx, "src")?;
    require_idmap(ctx, &src)?;
    let r = ctx.check(
        |v| {
            userns(v);
            let opt = format!(
                "idmap=uids=1000-{}-1#@500-0-1;gids=2000-{}-1#@600-0-1",
                HOST_BASE + 5,
                HOST_BASE + 7
            );
            bind(v, &src, "/tmp/crun", &["bind", &opt]);
        },
        &["stat:/tmp/crun/user-file", "write:/tmp/crun/new"],
    )?;
    let got = owner(&r, "/tmp/crun/user-file")?;
    ensure!(
        got == (5, 7),
        "user-file is owned by {got:?} inside, want (5, 7)"
    );
    r.probe("write:/tmp/crun/new")?;
    let got = host_owner(&src.join("new"))?;
    ensure!(
        got == (500, 600),
        "new is owned by {got:?} on the host, want (500, 600)"
    );
    create_fails_naming(ctx, "/tmp/outside", |v| {
        userns(v);
        bind(
            v,
            &src,
            "/tmp/outside",
            &["bind", "idmap=uids=@0-70000-1;gids=@0-0-1"],
        );
    })
}

/// An idmapped mount of a source the host mounted read-only stays read-only: the container's
/// root (with CAP_SYS_ADMIN in its user namespace) cannot remount it read-write, as it cannot
/// a plain bind of it (the kernel locks the flags of mounts a less privileged namespace gets).
fn keeps_host_locks(ctx: &mut Ctx) -> Result<()> {
    let src = source(ctx, "src")?;
    require_idmap(ctx, &src)?;
    let ro = ctx.dir.join("ro");
    fs::create_dir_all(&ro)?;
    let host = HostMount::bind(&src, &ro)?;
    host.make_readonly()?;
    let b =
        ctx.bundle(|v| {
            userns(v);
            bind(v, &ro, "/tmp/ro", &["bind", "idmap"]);
            let caps = &mut v["process"]["capabilities"];
            for set in ["bounding", "effective", "permitted"] {
                caps[set]
                    .as_array_mut()
                    .expect("caps")
                    .push(json!("CAP_SYS_ADMIN"));
            }
            v["process"]["args"] =
                json!(["sh", "-c",
            "mount -o remount,bind,rw /tmp/ro && echo remounted; touch /tmp/ro/written; true"]);
        })?;
    let out = ctx.rt(&["run", "--bundle", b.dir_str(), &b.id])?.ok()?;
    ensure!(
        !out.stdout.contains("remounted"),
        "the container remounted the read-only source read-write"
    );
    ensure!(
        !src.join("written").exists(),
        "the container wrote to the read-only source"
    );
    Ok(())
}

/// A plain bind source below a directory only host root may search (as containerd's sandbox
/// shm in its 0700 state dir) still reaches a container whose root is only its user
/// namespace's: the runtime opens it, not the container.
fn bind_source_host_only(ctx: &mut Ctx) -> Result<()> {
    let private = ctx.dir.join("private");
    let src = private.join("src");
    fs::create_dir_all(&src)?;
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700))?;
    fs::write(src.join("file"), "reached\n")?;
    fs::set_permissions(src.join("file"), fs::Permissions::from_mode(0o644))?;
    let r = ctx.check(
        |v| {
            userns(v);
            bind(v, &src, "/tmp/private", &["bind", "ro"]);
        },
        &["read:/tmp/private/file"],
    )?;
    let got = r
        .probe("read:/tmp/private/file")?
        .as_str()
        .unwrap_or_default();
    ensure!(got == "reached\n", "read {got:?}");
    Ok(())
}

/// `user.*` sysctls set the limits of the container's own user namespace; without one they
/// would be the host's, and are refused.
fn sysctl_user(ctx: &mut Ctx) -> Result<()> {
    const FILE: &str = "/proc/sys/user/max_user_namespaces";
    let host = fs::read_to_string(FILE)?;
    let r = ctx.check(
        |v| {
            userns(v);
            v["linux"]["sysctl"] = json!({ "user.max_user_namespaces": "7" });
        },
        &[&format!("read:{FILE}")],
    )?;
    let got = r
        .probe(&format!("read:{FILE}"))?
        .as_str()
        .unwrap_or_default()
        .trim()
        .to_string();
    ensure!(got == "7", "{FILE} inside is {got:?}, want 7");
    ensure!(
        fs::read_to_string(FILE)? == host,
        "{FILE} changed on the host"
    );
    create_fails_naming(ctx, "user.max_user_namespaces", |v| {
        v["linux"]["sysctl"] = json!({ "user.max_user_namespaces": "7" });
    })
}
