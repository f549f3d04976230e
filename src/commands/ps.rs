//! `ps ID [-f table|json] [-- PS-ARGS...]`: json prints the container's pids as an array; table
//! runs ps(1) (default `-ef`) and keeps its header and the container's lines, as runc does.

use std::process::Command;

use anyhow::{bail, Context, Result};
use berth::state::Store;

use crate::cli::{ListFormat, PsArgs};

pub fn ps(store: &Store, a: &PsArgs) -> Result<i32> {
    let pids: Vec<i32> = berth::container::pids(store, &a.id)?
        .iter()
        .map(|p| p.as_raw())
        .collect();
    if a.format == ListFormat::Json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args.clone()
    };
    let out = Command::new("ps").args(&args).output().context("run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(column) = header.split_whitespace().position(|f| f == "PID") else {
        bail!("ps {}: no PID column in its output", args.join(" "));
    };
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(0)
}
