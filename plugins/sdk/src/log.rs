//! Logging into berthd's log through the `log` import.
//!
//! The macros format only when the host keeps records at that level, so a `debug!` in a hot
//! handler costs one host call when debug logging is off.

use std::cell::Cell;

use crate::bindings::common::berth::plugin::log as host;
pub use crate::bindings::common::berth::plugin::log::Level;
use crate::bindings::common::berth::plugin::types::Pair;

thread_local! {
    /// Set while the SDK probes a hook's handlers for `subscriptions`: the probe's sample
    /// events are not real, so what handlers log about them must not reach the operator.
    static MUTED: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn set_muted(muted: bool) {
    MUTED.with(|m| m.set(muted));
}

/// Whether a record at `level` would be kept by the host.
pub fn enabled(level: Level) -> bool {
    !MUTED.with(Cell::get) && host::enabled(level)
}

/// Emits one record with key/value fields.
pub fn emit(level: Level, message: &str, fields: &[(&str, &str)]) {
    if MUTED.with(Cell::get) {
        return;
    }
    let fields: Vec<Pair> = fields
        .iter()
        .map(|(key, value)| Pair {
            key: (*key).to_owned(),
            value: (*value).to_owned(),
        })
        .collect();
    host::emit(level, message, &fields);
}

#[doc(hidden)]
pub fn __emit_fmt(level: Level, args: std::fmt::Arguments<'_>) {
    if enabled(level) {
        host::emit(level, &args.to_string(), &[]);
    }
}

/// Logs at `trace` level: `trace!("read {} bytes", n)`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log::__emit_fmt($crate::log::Level::Trace, format_args!($($arg)+)) };
}

/// Logs at `debug` level: `debug!("cache hit for {user}")`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log::__emit_fmt($crate::log::Level::Debug, format_args!($($arg)+)) };
}

/// Logs at `info` level: `info!("denied {}", spec.name)`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log::__emit_fmt($crate::log::Level::Info, format_args!($($arg)+)) };
}

/// Logs at `warn` level: `warn!("htpasswd {path} unreadable: {err}")`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log::__emit_fmt($crate::log::Level::Warn, format_args!($($arg)+)) };
}

/// Logs at `error` level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log::__emit_fmt($crate::log::Level::Error, format_args!($($arg)+)) };
}
