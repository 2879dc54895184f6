//! `berth:plugin/log`: guest records go to `tracing`, tagged with the
//! plugin's name.

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::log::{Host, Level, add_to_linker as add};
use crate::bindings::types::Pair;
use crate::bounds;
use crate::state::HostState;

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add::<HostState, HasSelf<HostState>>(linker, |s| s)
}

impl Host for HostState {
    fn emit(&mut self, level: Level, message: String, fields: Vec<Pair>) {
        // Cut, so a plugin cannot flood the log.
        let message = bounds::text(message, bounds::LOG);
        let fields = bounds::list(&self.plugin, "log fields", fields, bounds::ENTRIES, |p| {
            format!("{}={}", p.key, p.value)
        })
        .join(" ");
        let fields = bounds::text(fields, bounds::LOG);
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(target: "berth_plugin", plugin, fields, "{message}"),
            Level::Debug => tracing::debug!(target: "berth_plugin", plugin, fields, "{message}"),
            Level::Info => tracing::info!(target: "berth_plugin", plugin, fields, "{message}"),
            Level::Warn => tracing::warn!(target: "berth_plugin", plugin, fields, "{message}"),
            Level::Error => tracing::error!(target: "berth_plugin", plugin, fields, "{message}"),
        }
    }

    fn enabled(&mut self, level: Level) -> bool {
        match level {
            Level::Trace => tracing::enabled!(target: "berth_plugin", tracing::Level::TRACE),
            Level::Debug => tracing::enabled!(target: "berth_plugin", tracing::Level::DEBUG),
            Level::Info => tracing::enabled!(target: "berth_plugin", tracing::Level::INFO),
            Level::Warn => tracing::enabled!(target: "berth_plugin", tracing::Level::WARN),
            Level::Error => tracing::enabled!(target: "berth_plugin", tracing::Level::ERROR),
        }
    }
}
