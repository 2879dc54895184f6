//! What each plugin's `Store` holds: its name and configuration, its WASI
//! context (the sandbox), its resource table, its memory limiter and the
//! pipes that capture its stdout and stderr.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How much of a store's stdout or stderr is kept. A store whose pipes are
/// more than half full is retired after the call, so a chatty plugin gets a
/// fresh one; a single call writing more than this fails its write.
pub(crate) const OUTPUT_CAPACITY: usize = 256 * 1024;

/// A plugin's configuration as the guest sees it.
pub(crate) struct PluginConfig {
    pub json: String,
    pub table: serde_json::Map<String, serde_json::Value>,
}

pub(crate) struct HostState {
    pub plugin: Arc<str>,
    pub config: Arc<PluginConfig>,
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: Limiter,
    pub stdout: Output,
    pub stderr: Output,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A captured output stream and how much of it was already logged.
pub(crate) struct Output {
    pub pipe: MemoryOutputPipe,
    seen: usize,
}

impl Output {
    pub fn new() -> Output {
        Output {
            pipe: MemoryOutputPipe::new(OUTPUT_CAPACITY),
            seen: 0,
        }
    }

    /// What was written since the last call.
    pub fn take_new(&mut self) -> String {
        let all = self.pipe.contents();
        if all.len() <= self.seen {
            return String::new();
        }
        let new = String::from_utf8_lossy(&all[self.seen..]).into_owned();
        self.seen = all.len();
        new
    }

    pub fn nearly_full(&self) -> bool {
        self.seen > OUTPUT_CAPACITY / 2
    }
}

/// [`StoreLimits`] with a note of whether the memory cap was what failed,
/// so a trap can be told apart from running out of memory.
pub(crate) struct Limiter {
    limits: StoreLimits,
    pub memory_cap: usize,
    pub hit_memory_cap: bool,
}

impl Limiter {
    pub fn new(memory_cap: usize) -> Limiter {
        Limiter {
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_cap)
                .table_elements(1_000_000)
                .instances(64)
                .tables(64)
                .memories(8)
                .trap_on_grow_failure(true)
                .build(),
            memory_cap,
            hit_memory_cap: false,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let result = self.limits.memory_growing(current, desired, maximum);
        if !matches!(result, Ok(true)) {
            self.hit_memory_cap = true;
        }
        result
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}
