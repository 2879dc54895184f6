//! Per-plugin counters and a latency histogram, rendered for `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::Serialize;

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 20] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
    500_000, 1_000_000, 10_000_000, 60_000_000,
];

/// Counters of one plugin; kept across reloads of the same name.
#[derive(Default)]
pub struct Metrics {
    calls: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    memory_limits: AtomicU64,
    traps: AtomicU64,
    denials: AtomicU64,
    audit_denials: AtomicU64,
    cut_offs: AtomicU64,
    sum_ns: AtomicU64,
    // One more than the bounds: the last counts everything slower.
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
}

/// A copy of a plugin's metrics at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    pub calls: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub memory_limits: u64,
    pub traps: u64,
    pub denials: u64,
    pub audit_denials: u64,
    pub cut_offs: u64,
    /// Estimated from the histogram: the upper bound of the bucket holding
    /// the median (and the 99th percentile), in microseconds.
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
}

impl Metrics {
    pub(crate) fn call(&self, elapsed: Duration) {
        self.calls.fetch_add(1, Relaxed);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Relaxed,
        );
        let slot = BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BUCKETS_US.len());
        self.buckets[slot].fetch_add(1, Relaxed);
    }

    pub(crate) fn error(&self, error: &crate::PluginError) {
        self.errors.fetch_add(1, Relaxed);
        match error {
            crate::PluginError::Timeout { .. } => self.timeouts.fetch_add(1, Relaxed),
            crate::PluginError::MemoryLimit { .. } => self.memory_limits.fetch_add(1, Relaxed),
            crate::PluginError::Trap { .. } => self.traps.fetch_add(1, Relaxed),
            crate::PluginError::CutOff { .. }
            | crate::PluginError::Stuck { .. }
            | crate::PluginError::Busy { .. } => self.cut_offs.fetch_add(1, Relaxed),
            _ => 0,
        };
    }

    pub(crate) fn denial(&self, audit: bool) {
        if audit {
            self.audit_denials.fetch_add(1, Relaxed);
        } else {
            self.denials.fetch_add(1, Relaxed);
        }
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        MetricsSnapshot {
            calls: self.calls.load(Relaxed),
            errors: self.errors.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            memory_limits: self.memory_limits.load(Relaxed),
            traps: self.traps.load(Relaxed),
            denials: self.denials.load(Relaxed),
            audit_denials: self.audit_denials.load(Relaxed),
            cut_offs: self.cut_offs.load(Relaxed),
            p50_us: quantile(&counts, 0.50),
            p99_us: quantile(&counts, 0.99),
        }
    }

    /// Appends this plugin's series in Prometheus text format (without the
    /// `# HELP`/`# TYPE` lines, which [`render_header`] writes once).
    pub(crate) fn render(&self, plugin: &str, kind: &str, out: &mut String) {
        let l = format!("plugin=\"{}\",kind=\"{kind}\"", escape(plugin));
        let s = self.snapshot();
        let _ = writeln!(out, "berth_plugin_calls_total{{{l}}} {}", s.calls);
        let _ = writeln!(out, "berth_plugin_errors_total{{{l}}} {}", s.errors);
        let _ = writeln!(out, "berth_plugin_timeouts_total{{{l}}} {}", s.timeouts);
        let _ = writeln!(
            out,
            "berth_plugin_memory_limits_total{{{l}}} {}",
            s.memory_limits
        );
        let _ = writeln!(out, "berth_plugin_traps_total{{{l}}} {}", s.traps);
        let _ = writeln!(out, "berth_plugin_cut_offs_total{{{l}}} {}", s.cut_offs);
        let _ = writeln!(out, "berth_plugin_denials_total{{{l}}} {}", s.denials);
        let _ = writeln!(
            out,
            "berth_plugin_audit_denials_total{{{l}}} {}",
            s.audit_denials
        );
        let mut cumulative = 0;
        for (i, bound) in BUCKETS_US.iter().enumerate() {
            cumulative += self.buckets[i].load(Relaxed);
            let _ = writeln!(
                out,
                "berth_plugin_call_seconds_bucket{{{l},le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            );
        }
        cumulative += self.buckets[BUCKETS_US.len()].load(Relaxed);
        let _ = writeln!(
            out,
            "berth_plugin_call_seconds_bucket{{{l},le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            out,
            "berth_plugin_call_seconds_sum{{{l}}} {}",
            self.sum_ns.load(Relaxed) as f64 / 1e9
        );
        let _ = writeln!(out, "berth_plugin_call_seconds_count{{{l}}} {cumulative}");
    }
}

pub(crate) fn render_header(out: &mut String) {
    for (name, kind, help) in [
        ("berth_plugin_calls_total", "counter", "Plugin calls."),
        (
            "berth_plugin_errors_total",
            "counter",
            "Plugin calls that failed.",
        ),
        (
            "berth_plugin_timeouts_total",
            "counter",
            "Plugin calls stopped at their deadline.",
        ),
        (
            "berth_plugin_memory_limits_total",
            "counter",
            "Plugin calls stopped at their memory cap.",
        ),
        (
            "berth_plugin_traps_total",
            "counter",
            "Plugin calls that trapped (panics included).",
        ),
        (
            "berth_plugin_cut_offs_total",
            "counter",
            "Calls refused while the plugin was cut off.",
        ),
        ("berth_plugin_denials_total", "counter", "Enforced denials."),
        (
            "berth_plugin_audit_denials_total",
            "counter",
            "Denials of audit-mode plugins (not enforced).",
        ),
        (
            "berth_plugin_call_seconds",
            "histogram",
            "Latency of plugin calls.",
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
}

fn quantile(counts: &[u64], q: f64) -> Option<u64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return Some(BUCKETS_US.get(i).copied().unwrap_or(u64::MAX));
        }
    }
    None
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}
