//! `berth:plugin/config`: the plugin's own `[plugin.config]` table, as JSON.

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::config::{Host, add_to_linker as add};
use crate::state::HostState;

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add::<HostState, HasSelf<HostState>>(linker, |s| s)
}

impl Host for HostState {
    fn json(&mut self) -> String {
        self.config.json.clone()
    }

    fn get(&mut self, key: String) -> Option<String> {
        self.config.table.get(&key).map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}
