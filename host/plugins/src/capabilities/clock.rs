//! `berth:plugin/clock`: the host's wall clock.

use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::clock::{Host, add_to_linker as add};
use crate::state::HostState;

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add::<HostState, HasSelf<HostState>>(linker, |s| s)
}

impl Host for HostState {
    fn now(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}
