//! `events [--stats] [--interval DURATION] ID`: one JSON event per line, as runc prints them.
//! Ends with status 0 when the container stops or when the reader goes away.

use anyhow::{bail, Result};
use berth::container;
use berth::state::Store;

use crate::cli::EventsArgs;

pub fn events(store: &Store, a: &EventsArgs) -> Result<i32> {
    if a.interval.is_zero() {
        bail!("duration interval must be greater than 0");
    }
    if a.stats {
        return super::emit(&serde_json::to_string(&container::stats(store, &a.id)?)?);
    }
    let mut events = container::events(store, &a.id, a.interval)?;
    while let Some(event) = events.next_event()? {
        if !super::write_line(&serde_json::to_string(&event)?)? {
            break;
        }
    }
    Ok(0)
}
