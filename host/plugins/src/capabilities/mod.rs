//! The host side of the imports every plugin gets, one module each.

pub(crate) mod clock;
pub(crate) mod config;
pub(crate) mod log;

// `types` declares only types; its (empty) host trait still needs an impl.
impl crate::bindings::types::Host for crate::state::HostState {}
