//! The process's one wasmtime [`Engine`]: component model, epoch
//! interruption driven by a ticker thread, the pooling allocator and
//! parallel compilation. Plus one [`Linker`] per world, built once, with
//! WASI's asynchronous host functions (its waits are futures a call's
//! deadline can drop; see `runner`).

use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::state::HostState;
use crate::{PluginError, capabilities};

/// How often the ticker advances the epoch; deadlines are counted in ticks,
/// so a call overruns its timeout by at most about one tick.
pub const TICK: Duration = Duration::from_millis(1);

/// The most instances (warm or in a call) the pooling allocator holds at
/// once, across all plugins.
pub const POOL_INSTANCES: u32 = 256;

/// The largest linear memory any plugin may have (the cap of `memory_mib`).
pub const MAX_MEMORY_MIB: u64 = 1024;

/// The engine and the linkers of every world, shared by every manager.
pub(crate) struct Shared {
    pub engine: Engine,
    /// Both editions of the hook contract import the same interfaces.
    pub hook: Linker<HostState>,
    pub auth: Linker<HostState>,
    pub scanner: Linker<HostState>,
    pub storage: Linker<HostState>,
}

static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();

/// The process's engine, created (and its ticker started) on first use.
pub(crate) fn shared() -> Result<&'static Shared, PluginError> {
    SHARED
        .get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|message| PluginError::Engine {
            message: message.clone(),
        })
}

/// The settings that make a precompiled artifact valid for this engine, as
/// a string folded into the cache key.
pub(crate) fn settings_fingerprint() -> String {
    format!(
        "component-model epoch pooling({POOL_INSTANCES},{MAX_MEMORY_MIB}MiB) opt=speed target={}",
        std::env::consts::ARCH
    )
}

fn config() -> Config {
    let mut pool = PoolingAllocationConfig::default();
    // A wasip2 component built by rustc is a handful of core instances
    // (the program, the WASI adapter, shims) with a memory and tables each.
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 8)
        .total_memories(POOL_INSTANCES * 2)
        .total_tables(POOL_INSTANCES * 8)
        .total_stacks(POOL_INSTANCES)
        .max_core_instances_per_component(32)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        .max_memory_size((MAX_MEMORY_MIB << 20) as usize)
        // Keep a few slots' pages resident so a fresh instance of a hot
        // plugin does not fault its memory in again.
        .max_unused_warm_slots(32);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .parallel_compilation(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

fn build() -> wasmtime::Result<Shared> {
    let engine = Engine::new(&config())?;
    start_ticker(&engine)?;
    Ok(Shared {
        hook: linker(&engine, false)?,
        auth: linker(&engine, false)?,
        scanner: linker(&engine, true)?,
        storage: linker(&engine, false)?,
        engine,
    })
}

fn linker(engine: &Engine, image_fs: bool) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    crate::bindings::types::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    capabilities::log::add_to_linker(&mut linker)?;
    capabilities::config::add_to_linker(&mut linker)?;
    capabilities::clock::add_to_linker(&mut linker)?;
    if image_fs {
        capabilities::image_fs::add_to_linker(&mut linker)?;
    }
    Ok(linker)
}

/// The ticker lives as long as the process, like the engine it drives.
fn start_ticker(engine: &Engine) -> wasmtime::Result<()> {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("berth-plugin-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })?;
    Ok(())
}

/// Epoch ticks for a timeout: at least one, plus one for the tick already
/// under way.
pub(crate) fn ticks(timeout: Duration) -> u64 {
    (timeout.as_micros() / TICK.as_micros().max(1)) as u64 + 1
}
