//! Shell completions and man pages, generated from the clap definitions.

use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs, ManArgs};

pub fn completion(a: &CompletionArgs) -> Result<i32> {
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut Cli::command(), "berth", &mut script);
    super::emit(String::from_utf8_lossy(&script).trim_end())
}

/// berth.8 and one berth-COMMAND.8 per command (section 8: system administration, like runc's).
pub fn man(a: &ManArgs) -> Result<i32> {
    std::fs::create_dir_all(&a.dir).with_context(|| format!("create {}", a.dir.display()))?;
    let mut cmd = Cli::command();
    cmd.build();
    write_page(&cmd, "berth", &a.dir)?;
    Ok(0)
}

fn write_page(cmd: &clap::Command, name: &str, dir: &Path) -> Result<()> {
    let path = dir.join(format!("{name}.8"));
    let mut out =
        std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
    let page = cmd
        .clone()
        .name(name.to_string())
        .display_name(name.to_string());
    clap_mangen::Man::new(page)
        .section("8")
        .render(&mut out)
        .with_context(|| format!("write {}", path.display()))?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        write_page(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}
