//! (stub until the cgroups branch lands)
use nix::unistd::Pid;
use nix::sys::signal::Signal;
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cgroup { path: String }
impl Cgroup {
    pub fn resolve(p: Option<&std::path::Path>, id: &str) -> crate::Result<Cgroup> { Ok(Cgroup { path: p.map(|p| p.display().to_string()).unwrap_or(id.into()) }) }
    pub fn create(&self) -> crate::Result<()> { Ok(()) }
    pub fn add(&self, _pid: Pid) -> crate::Result<()> { Ok(()) }
    pub fn pids(&self) -> crate::Result<Vec<Pid>> { Ok(vec![]) }
    pub fn kill_all(&self, _s: Signal) -> crate::Result<()> { Ok(()) }
    pub fn freeze(&self, _f: bool) -> crate::Result<()> { Ok(()) }
    pub fn is_frozen(&self) -> crate::Result<bool> { Ok(false) }
    pub fn destroy(&self) -> crate::Result<()> { Ok(()) }
}
