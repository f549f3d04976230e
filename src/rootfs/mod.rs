//! (stub until the rootfs branch lands)
use std::path::Path;
use oci_spec::runtime::Spec;
pub struct Options<'a> { pub spec: &'a Spec, pub rootfs: &'a Path, pub bundle: &'a Path, pub no_pivot: bool, pub new_userns: bool }
pub fn validate(_s: &Spec) -> crate::Result<()> { Ok(()) }
pub fn prepare(_o: &Options) -> crate::Result<()> { Ok(()) }
pub fn pivot(o: &Options) -> crate::Result<()> { nix::unistd::chroot(o.rootfs).unwrap(); nix::unistd::chdir("/").unwrap(); Ok(()) }
pub fn finalize(_o: &Options) -> crate::Result<()> { Ok(()) }
