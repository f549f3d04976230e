//! `state ID`: the runtime-spec state document, indented as runc prints it.

use anyhow::Result;
use berth::state::Store;

pub fn state(store: &Store, id: &str) -> Result<i32> {
    let (state, status) = berth::container::state(store, id)?;
    super::emit(&serde_json::to_string_pretty(&state.oci(status))?)
}
