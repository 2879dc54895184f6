//! How much of a layer berth will read before refusing it. A layer is
//! untrusted input that a registry or an archive hands berthd: a few
//! megabytes of gzip can expand to gigabytes of tar, and tar extension
//! headers (PAX records, GNU long names) are read whole into memory by any
//! tar reader. These limits bound both the memory an apply holds and the
//! disk it fills.

/// Limits on one layer, checked while it streams; exceeding one fails the
/// apply with an error naming the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of tar headers read for one entry: its header blocks and its
    /// PAX records, GNU long name and long link together (and a PAX
    /// global header on its own). Go's archive/tar allows 1 MiB per
    /// extension; nothing a real tool writes comes near.
    pub max_header_bytes: u64,
    /// Bytes of uncompressed tar in the whole layer.
    pub max_layer_bytes: u64,
    /// Tar entries in the layer, PAX global headers included (the
    /// extension headers that describe an entry are part of it).
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 1 << 20,
            max_layer_bytes: 64 << 30,
            max_entries: 1 << 20,
        }
    }
}
