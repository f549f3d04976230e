//! The command line, as runc spells it: global flags, then one struct per command.

mod values;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "A runc-compatible OCI container runtime"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// `--version`'s text after "berth ", in runc's layout (`runc version 1.1.5`, `spec: ...`,
/// `libseccomp: ...`): Docker parses the "version" line for `docker info` and warns without it.
pub fn version() -> String {
    let mut text = format!(
        "version {}\nspec: {}",
        env!("CARGO_PKG_VERSION"),
        berth::state::OCI_VERSION
    );
    if let Ok(v) = libseccomp::ScmpVersion::current() {
        text += &format!("\nlibseccomp: {v}");
    }
    text
}

#[derive(Args, Debug)]
pub struct Global {
    /// Directory for the containers' state [default: /run/berth; for a non-root user
    /// $XDG_RUNTIME_DIR/berth]
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Write log lines to this file instead of stderr
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug messages too
    #[arg(long, global = true)]
    pub debug: bool,
    /// Let systemd make the container's cgroup: a transient scope unit (linux.cgroupsPath as
    /// slice:prefix:name; needs systemd as init and cgroup v2)
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Rootless cgroups (auto, true or false): cgroups the caller may not write are skipped;
    /// auto means true unless run by root outside a user namespace. Before the command, as in
    /// runc (`spec --rootless` is another flag)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = values::bool_or_auto)]
    pub rootless: Option<values::BoolOrAuto>,
    /// The criu binary for checkpoint and restore
    #[arg(long, global = true, default_value = "criu")]
    pub criu: PathBuf,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container from a bundle; it waits for `start`
    Create(CreateArgs),
    /// Start a created container's program
    Start(IdArg),
    /// Create and start a container, and by default wait for it
    Run(RunArgs),
    /// Print the state of a container as JSON
    State(IdArg),
    /// List containers
    List(ListArgs),
    /// Send a signal to a container's init (or to all its processes)
    Kill(KillArgs),
    /// Delete a container and everything create made for it
    Delete(DeleteArgs),
    /// Run a new process in a running container
    Exec(Box<ExecArgs>),
    /// Freeze every process of a running container
    Pause(IdArg),
    /// Thaw a paused container
    Resume(IdArg),
    /// List the processes of a container
    Ps(PsArgs),
    /// Print a container's resource usage every interval, and its OOMs, as JSON lines
    Events(EventsArgs),
    /// Change the resource limits of a running container
    Update(Box<UpdateArgs>),
    /// Checkpoint a running container with CRIU
    Checkpoint(Box<CheckpointArgs>),
    /// Restore a container from a checkpoint
    Restore(Box<RestoreArgs>),
    /// Write a default config.json
    Spec(SpecArgs),
    /// Print the features this runtime supports (runtime-spec features.md)
    Features,
    /// Print a shell completion script
    Completion(CompletionArgs),
    /// Write man pages for every command into a directory
    #[command(hide = true)]
    Man(ManArgs),
}

#[derive(Args, Debug)]
pub struct IdArg {
    pub id: String,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub id: String,
    /// The bundle directory (holding config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the init's pid to this file
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is set
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (rootfs on ramfs)
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not give the container its own session keyring
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N more fds (3 to 3+N-1) to the container process
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Unix socket that receives a pidfd of the container's init
    #[arg(long)]
    pub pidfd_socket: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the container runs, instead of waiting for it
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    /// Do not reap the orphans of the container's processes (they go to the host's init)
    #[arg(long)]
    pub no_subreaper: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Print only the ids
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    pub id: String,
    /// table: `ps` output for the container's processes; json: their pids
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Arguments for ps(1) (default -ef), after `--`
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    pub id: String,
    /// A signal name (with or without SIG) or number
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
    /// Signal every process of the container
    #[arg(short, long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    pub id: String,
    /// Kill a running container first; succeed if it does not exist
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Where to write config.json
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// A spec for a container run by an unprivileged user
    #[arg(long)]
    pub rootless: bool,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    pub id: String,
    /// The command and its arguments (unless --process is given)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// A process JSON (runtime-spec `process`) instead of the command and flags
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Unix socket that receives the pty master with --tty
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the new process
    #[arg(long)]
    pub pidfd_socket: Option<PathBuf>,
    /// Working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE), repeatable
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// uid[:gid] to run as
    #[arg(short, long)]
    pub user: Option<String>,
    /// An additional gid, repeatable
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Return once the process runs
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid to this file
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// SELinux label for the process
    #[arg(long)]
    pub process_label: Option<String>,
    /// AppArmor profile for the process
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Set no_new_privs for the process
    #[arg(long)]
    pub no_new_privs: bool,
    /// Add a capability (to the bounding, effective and permitted sets), repeatable
    #[arg(long)]
    pub cap: Vec<String>,
    /// Pass N more fds (3 to 3+N-1) to the process
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Put the process in a sub-cgroup of the container ([controller:]path)
    #[arg(long)]
    pub cgroup: Vec<String>,
    /// Exec even when the container is paused
    #[arg(long)]
    pub ignore_paused: bool,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    pub id: String,
    /// How often to print stats (a Go duration: 5s, 500ms, 1m30s)
    #[arg(long, default_value = "5s", value_parser = values::go_duration)]
    pub interval: Duration,
    /// Print the container's stats once and exit
    #[arg(long)]
    pub stats: bool,
}

/// runc's update flags. Numbers may be negative (`--cpu-quota -1`); memory sizes take units
/// (`512M`, `1.5g`) as Docker's RAMInBytes reads them.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    pub id: String,
    /// A linux.resources JSON file, or - for stdin; the other flags are then ignored
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Block IO weight (10 to 1000)
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period (µs)
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota (µs per period; -1 for none)
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS burst (µs)
    #[arg(long)]
    pub cpu_burst: Option<u64>,
    /// CPU shares (relative weight)
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// CPU realtime period (µs)
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime (µs per period)
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// SCHED_IDLE for the cgroup: 1, or 0 for the default
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_idle: Option<i64>,
    /// CPUs to use, e.g. 0-2,4
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Obsolete: ignored with a warning, as runc does
    #[arg(long, hide = true)]
    pub kernel_memory: Option<String>,
    /// Obsolete: ignored with a warning, as runc does
    #[arg(long, hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit (bytes, or with a unit such as 512M; -1 for none)
    #[arg(long, allow_negative_numbers = true, value_parser = values::ram_in_bytes)]
    pub memory: Option<i64>,
    /// Memory soft limit
    #[arg(long, allow_negative_numbers = true, value_parser = values::ram_in_bytes)]
    pub memory_reservation: Option<i64>,
    /// Memory plus swap limit; -1 for unlimited swap
    #[arg(long, allow_negative_numbers = true, value_parser = values::ram_in_bytes)]
    pub memory_swap: Option<i64>,
    /// Maximum number of pids (0 keeps the current limit)
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Intel RDT L3 cache schema (not supported: refused)
    #[arg(long)]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported: refused)
    #[arg(long)]
    pub mem_bw_schema: Option<String>,
}

#[derive(Args, Debug)]
pub struct CompletionArgs {
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    pub dir: PathBuf,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupsMode {
    Soft,
    Full,
    Strict,
    Ignore,
}

/// The flags checkpoint and restore share, as runc spells them.
#[derive(Args, Debug)]
pub struct CriuArgs {
    /// Directory of the checkpoint's images
    #[arg(long, default_value = "checkpoint")]
    pub image_path: PathBuf,
    /// Directory for CRIU's log and work files (default: the image path)
    #[arg(long)]
    pub work_path: Option<PathBuf>,
    /// Checkpoint/restore established TCP connections
    #[arg(long)]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long)]
    pub ext_unix_sk: bool,
    /// Allow shell jobs (a session or terminal shared with the caller)
    #[arg(long)]
    pub shell_job: bool,
    /// Handle file locks
    #[arg(long)]
    pub file_locks: bool,
    /// Lazy migration: memory pages are fetched on demand
    #[arg(long)]
    pub lazy_pages: bool,
    /// What CRIU does with cgroup properties
    #[arg(long, value_enum)]
    pub manage_cgroups_mode: Option<CgroupsMode>,
    /// Make this namespace empty instead of restoring it (network, ...), repeatable
    #[arg(long)]
    pub empty_ns: Vec<String>,
    /// Deduplicate memory pages of the parent image
    #[arg(long)]
    pub auto_dedup: bool,
}

#[derive(Args, Debug)]
pub struct CheckpointArgs {
    pub id: String,
    #[command(flatten)]
    pub criu: CriuArgs,
    /// The parent (pre-)dump's image path, relative to --image-path
    #[arg(long)]
    pub parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint
    #[arg(long)]
    pub leave_running: bool,
    /// Skip in-flight TCP connections
    #[arg(long)]
    pub tcp_skip_in_flight: bool,
    /// Allow link-remap files (open but unlinked)
    #[arg(long)]
    pub link_remap: bool,
    /// With --lazy-pages: an fd that gets a 0 byte once the pages can be served
    #[arg(long, allow_negative_numbers = true, default_value_t = -1)]
    pub status_fd: i32,
    /// ADDRESS:PORT of a page server to send the memory to
    #[arg(long)]
    pub page_server: Option<String>,
    /// Dump the memory only (tracking changes), for a later dump with --parent-path
    #[arg(long)]
    pub pre_dump: bool,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    pub id: String,
    #[command(flatten)]
    pub criu: CriuArgs,
    /// The bundle directory (holding config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Return once restored instead of waiting for the container
    #[arg(short, long)]
    pub detach: bool,
    /// Unix socket that receives the pty master of a container with a terminal
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Write the restored init's pid to this file
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Do not become a subreaper of the restored processes
    #[arg(long)]
    pub no_subreaper: bool,
    /// Accepted for runc compatibility: CRIU sets up the restored root itself
    #[arg(long)]
    pub no_pivot: bool,
    /// LSM profile for the restored processes (apparmor:NAME or selinux:LABEL)
    #[arg(long)]
    pub lsm_profile: Option<String>,
    /// SELinux context of the restored mounts
    #[arg(long)]
    pub lsm_mount_context: Option<String>,
}
