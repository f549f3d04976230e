//! `pause ID` and `resume ID`.

use anyhow::Result;
use berth::state::Store;

pub fn pause(store: &Store, id: &str) -> Result<i32> {
    berth::container::pause(store, id)?;
    Ok(0)
}

pub fn resume(store: &Store, id: &str) -> Result<i32> {
    berth::container::resume(store, id)?;
    Ok(0)
}
