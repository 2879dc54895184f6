//! The host side of the imports: those every plugin gets (log, config,
//! clock) and the image-fs a scanner gets, one module each with its own
//! `add_to_linker`.

pub(crate) mod clock;
pub(crate) mod config;
pub(crate) mod image_fs;
pub(crate) mod log;

// `types` declares only types; its (empty) host trait still needs an impl.
impl crate::bindings::types::Host for crate::state::HostState {}
