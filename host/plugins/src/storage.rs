//! A storage-backend plugin as a [`berth_content::BlobBackend`]. The
//! backend looks the plugin up by name on every call, so a reload or a
//! disable takes effect at once; a writer keeps the instance it started on
//! (its `writer` resource lives in that instance's store).

use std::sync::Arc;

use berth_content::{BackendBlob, BackendError, BackendWriter, BlobBackend};
use berth_oci::Digest;
use wasmtime::component::ResourceAny;

use crate::bindings::storage::exports::berth::plugin::storage as wit;
use crate::plugin::{Exports, Plugin, Warm};
use crate::spec::Kind;
use crate::{PluginError, PluginManager, StorageFailure};

struct PluginBackend {
    manager: PluginManager,
    name: String,
}

impl PluginManager {
    /// The storage plugin `name` as a blob backend for the content store.
    /// Fails now if there is no such storage plugin.
    pub fn storage_backend(&self, name: &str) -> Result<Arc<dyn BlobBackend>, PluginError> {
        self.get(name, Kind::StorageBackend)?;
        Ok(Arc::new(PluginBackend {
            manager: self.clone(),
            name: name.to_owned(),
        }))
    }
}

impl PluginBackend {
    fn plugin(&self) -> Result<Arc<Plugin>, BackendError> {
        self.manager
            .get(&self.name, Kind::StorageBackend)
            .map_err(|e| BackendError::Unavailable(e.to_string()))
    }

    fn call<R>(
        &self,
        f: impl FnOnce(
            &mut wasmtime::Store<crate::state::HostState>,
            &wit::Guest,
        ) -> wasmtime::Result<Result<R, wit::StorageError>>,
    ) -> Result<R, BackendError> {
        let plugin = self.plugin()?;
        let result = plugin
            .call(|store, exports| match exports {
                Exports::Storage(s) => f(store, s.berth_plugin_storage()),
                _ => Err(wasmtime::format_err!("not a storage backend")),
            })
            .map_err(unavailable)?;
        result.map_err(|e| backend_error(&self.name, e))
    }
}

impl BlobBackend for PluginBackend {
    fn stat(&self, digest: &Digest) -> Result<Option<u64>, BackendError> {
        let d = digest.to_string();
        self.call(|store, s| s.call_stat(store, &d))
    }

    fn read(&self, digest: &Digest, offset: u64, len: u32) -> Result<Vec<u8>, BackendError> {
        let d = digest.to_string();
        self.call(|store, s| s.call_read(store, &d, offset, len))
            .map_err(|e| match e {
                BackendError::NotFound(_) => BackendError::NotFound(d.clone()),
                other => other,
            })
    }

    fn begin_write(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<Box<dyn BackendWriter>, BackendError> {
        let plugin = self.plugin()?;
        plugin.breaker.check(plugin.name()).map_err(unavailable)?;
        let mut warm = plugin
            .checkout()
            .map_err(|e| unavailable(plugin.failed(e)))?;
        let d = digest.to_string();
        let started = plugin.run_on(&mut warm, |store, exports| match exports {
            Exports::Storage(s) => s.berth_plugin_storage().call_begin_write(store, &d, size),
            _ => Err(wasmtime::format_err!("not a storage backend")),
        });
        match started {
            Ok(Ok(resource)) => Ok(Box::new(PluginWriter {
                plugin,
                warm: Some(warm),
                resource: Some(resource),
            })),
            Ok(Err(e)) => {
                plugin.checkin(warm);
                Err(backend_error(&self.name, e))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    fn delete(&self, digest: &Digest) -> Result<bool, BackendError> {
        let d = digest.to_string();
        self.call(|store, s| s.call_delete(store, &d))
    }

    fn list(&self, after: Option<&Digest>, limit: u32) -> Result<Vec<BackendBlob>, BackendError> {
        let after = after.map(ToString::to_string);
        let blobs = self.call(|store, s| s.call_list(store, after.as_deref(), limit))?;
        blobs
            .into_iter()
            .map(|b| {
                let digest = b.digest.parse::<Digest>().map_err(|e| {
                    BackendError::Io(format!(
                        "storage plugin {} listed an invalid digest {:?}: {e}",
                        self.name, b.digest
                    ))
                })?;
                Ok(BackendBlob {
                    digest,
                    size: b.size,
                })
            })
            .collect()
    }
}

/// A blob being written; owns the instance its `writer` resource lives in.
struct PluginWriter {
    plugin: Arc<Plugin>,
    warm: Option<Warm>,
    resource: Option<ResourceAny>,
}

impl PluginWriter {
    fn step<R>(
        &mut self,
        f: impl FnOnce(
            &mut wasmtime::Store<crate::state::HostState>,
            wit::GuestWriter<'_>,
            ResourceAny,
        ) -> wasmtime::Result<Result<R, wit::StorageError>>,
    ) -> Result<R, BackendError> {
        let (Some(warm), Some(resource)) = (self.warm.as_mut(), self.resource) else {
            return Err(BackendError::Unavailable(format!(
                "storage plugin {}: the writer already failed",
                self.plugin.name()
            )));
        };
        let result = self.plugin.run_on(warm, |store, exports| match exports {
            Exports::Storage(s) => f(store, s.berth_plugin_storage().writer(), resource),
            _ => Err(wasmtime::format_err!("not a storage backend")),
        });
        match result {
            Ok(r) => r.map_err(|e| backend_error(self.plugin.name(), e)),
            Err(e) => {
                // The store is poisoned: drop it with its resource.
                self.warm = None;
                self.resource = None;
                Err(unavailable(e))
            }
        }
    }

    /// Drops the guest resource and returns the instance to the pool.
    fn finish(&mut self) {
        if let (Some(mut warm), Some(resource)) = (self.warm.take(), self.resource.take())
            && resource.resource_drop(&mut warm.store).is_ok()
        {
            self.plugin.checkin(warm);
        }
    }
}

impl BackendWriter for PluginWriter {
    fn write(&mut self, chunk: &[u8]) -> Result<(), BackendError> {
        self.step(|store, w, r| w.call_write(store, r, chunk))
    }

    fn commit(mut self: Box<Self>, size: u64) -> Result<(), BackendError> {
        let result = self.step(|store, w, r| w.call_commit(store, r, size));
        self.finish();
        result
    }

    fn abort(mut self: Box<Self>) {
        let _ = self.step(|store, w, r| w.call_abort(store, r).map(Ok));
        self.finish();
    }
}

impl Drop for PluginWriter {
    fn drop(&mut self) {
        if self.resource.is_some() {
            let _ = self.step(|store, w, r| w.call_abort(store, r).map(Ok));
            self.finish();
        }
    }
}

fn unavailable(e: PluginError) -> BackendError {
    BackendError::Unavailable(e.to_string())
}

fn backend_error(plugin: &str, e: wit::StorageError) -> BackendError {
    let failure = match e {
        wit::StorageError::NotFound => StorageFailure::NotFound,
        wit::StorageError::Io(m) => StorageFailure::Io(m),
        wit::StorageError::Unsupported(m) => StorageFailure::Unsupported(m),
        wit::StorageError::InvalidConfig(m) => StorageFailure::InvalidConfig(m),
    };
    match failure {
        StorageFailure::NotFound => BackendError::NotFound(String::new()),
        StorageFailure::Io(m) => BackendError::Io(format!("storage plugin {plugin}: {m}")),
        StorageFailure::Unsupported(m) => {
            BackendError::Unsupported(format!("storage plugin {plugin}: {m}"))
        }
        StorageFailure::InvalidConfig(m) => {
            BackendError::InvalidConfig(format!("storage plugin {plugin}: {m}"))
        }
    }
}
