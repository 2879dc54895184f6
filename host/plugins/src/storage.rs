//! A storage-backend plugin as a [`berth_content::BlobBackend`]. The
//! backend looks the plugin up by name on every call, so a reload or a
//! disable takes effect at once; a writer keeps the instance it started on
//! (its `writer` resource lives in that instance's store).

use std::sync::Arc;

use berth_content::{BackendBlob, BackendError, BackendWriter, BlobBackend};
use berth_oci::Digest;
use wasmtime::component::ResourceAny;

use crate::bindings::storage::exports::berth::plugin::storage as wit;
use crate::plugin::{Admission, CallFuture, Exports, Plugin, Warm};
use crate::spec::Kind;
use crate::{PluginError, PluginManager, StorageFailure, bounds};

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

/// The storage interface of an instance's exports.
fn storage_of(exports: &Exports) -> wasmtime::Result<&wit::Guest> {
    match exports {
        Exports::Storage(s) => Ok(s.berth_plugin_storage()),
        _ => Err(wasmtime::format_err!("not a storage backend")),
    }
}

impl PluginBackend {
    fn plugin(&self) -> Result<Arc<Plugin>, BackendError> {
        self.manager
            .get(&self.name, Kind::StorageBackend)
            .map_err(|e| BackendError::Unavailable(e.to_string()))
    }

    fn call<R, F>(&self, f: F) -> Result<R, BackendError>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(
                &'a mut wasmtime::Store<crate::state::HostState>,
                &'a Exports,
            ) -> CallFuture<'a, Result<R, wit::StorageError>>
            + Send
            + 'static,
    {
        let plugin = self.plugin()?;
        let result = plugin.call(f).map_err(unavailable)?;
        result.map_err(|e| backend_error(&self.name, e))
    }
}

impl BlobBackend for PluginBackend {
    fn stat(&self, digest: &Digest) -> Result<Option<u64>, BackendError> {
        let d = digest.to_string();
        self.call(move |store, exports| {
            Box::pin(async move { storage_of(exports)?.call_stat(store, &d).await })
        })
    }

    fn read(&self, digest: &Digest, offset: u64, len: u32) -> Result<Vec<u8>, BackendError> {
        let d = digest.to_string();
        let asked = d.clone();
        let data = self
            .call(move |store, exports| {
                Box::pin(async move {
                    storage_of(exports)?
                        .call_read(store, &asked, offset, len)
                        .await
                })
            })
            .map_err(|e| match e {
                BackendError::NotFound(_) => BackendError::NotFound(d.clone()),
                other => other,
            })?;
        // More than was asked for is the plugin's error, not berth's memory.
        if data.len() > len as usize {
            return Err(BackendError::Io(format!(
                "storage plugin {} returned {} bytes of {d} for a read of {len}",
                self.name,
                data.len()
            )));
        }
        Ok(data)
    }

    fn begin_write(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<Box<dyn BackendWriter>, BackendError> {
        let plugin = self.plugin()?;
        let admission = plugin.admit().map_err(unavailable)?;
        let warm = plugin
            .checkout()
            .map_err(|e| unavailable(plugin.failed(e)))?;
        let d = digest.to_string();
        let (warm, started) = plugin.run_on(warm, move |store, exports| {
            Box::pin(async move { storage_of(exports)?.call_begin_write(store, &d, size).await })
        });
        match (warm, started) {
            (Some(warm), Ok(Ok(resource))) => Ok(Box::new(PluginWriter {
                plugin,
                warm: Some(warm),
                resource: Some(resource),
                _admission: admission,
            })),
            (warm, Ok(Err(e))) => {
                if let Some(warm) = warm {
                    plugin.checkin(warm);
                }
                Err(backend_error(&self.name, e))
            }
            (_, Err(e)) => Err(unavailable(e)),
            (None, Ok(Ok(_))) => Err(BackendError::Unavailable(format!(
                "storage plugin {}: its instance was lost",
                self.name
            ))),
        }
    }

    fn delete(&self, digest: &Digest) -> Result<bool, BackendError> {
        let d = digest.to_string();
        self.call(move |store, exports| {
            Box::pin(async move { storage_of(exports)?.call_delete(store, &d).await })
        })
    }

    fn list(&self, after: Option<&Digest>, limit: u32) -> Result<Vec<BackendBlob>, BackendError> {
        let after = after.map(ToString::to_string);
        let blobs = self.call(move |store, exports| {
            Box::pin(async move {
                storage_of(exports)?
                    .call_list(store, after.as_deref(), limit)
                    .await
            })
        })?;
        bounds::list(&self.name, "blobs", blobs, limit as usize, |b| b)
            .into_iter()
            .map(|b| {
                let digest = b.digest.parse::<Digest>().map_err(|e| {
                    BackendError::Io(format!(
                        "storage plugin {} listed an invalid digest {:?}: {e}",
                        self.name,
                        bounds::text(b.digest.clone(), bounds::NAME)
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

/// A blob being written; owns the instance its `writer` resource lives in,
/// and that instance's place among the plugin's calls in flight.
struct PluginWriter {
    plugin: Arc<Plugin>,
    warm: Option<Warm>,
    resource: Option<ResourceAny>,
    _admission: Admission,
}

impl PluginWriter {
    fn step<R, F>(&mut self, f: F) -> Result<R, BackendError>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(
                &'a mut wasmtime::Store<crate::state::HostState>,
                wit::GuestWriter<'a>,
                ResourceAny,
            ) -> CallFuture<'a, Result<R, wit::StorageError>>
            + Send
            + 'static,
    {
        let (Some(warm), Some(resource)) = (self.warm.take(), self.resource) else {
            return Err(BackendError::Unavailable(format!(
                "storage plugin {}: the writer already failed",
                self.plugin.name()
            )));
        };
        let (warm, result) = self.plugin.run_on(warm, move |store, exports| {
            Box::pin(async move { f(store, storage_of(exports)?.writer(), resource).await })
        });
        // After a failed call the store is gone, and its resource with it.
        self.warm = warm;
        if self.warm.is_none() {
            self.resource = None;
        }
        match result {
            Ok(r) => r.map_err(|e| backend_error(self.plugin.name(), e)),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Drops the guest resource and returns the instance to the pool.
    fn finish(&mut self) {
        let (Some(warm), Some(resource)) = (self.warm.take(), self.resource.take()) else {
            return;
        };
        let (warm, dropped) = self.plugin.run_on(warm, move |store, _| {
            Box::pin(async move { resource.resource_drop_async(store).await })
        });
        if let (Some(warm), Ok(())) = (warm, dropped) {
            self.plugin.checkin(warm);
        }
    }
}

impl BackendWriter for PluginWriter {
    fn write(&mut self, chunk: &[u8]) -> Result<(), BackendError> {
        // A call past its deadline may outlive this one: it owns its copy.
        let chunk = chunk.to_vec();
        self.step(move |store, w, r| Box::pin(async move { w.call_write(store, r, &chunk).await }))
    }

    fn commit(mut self: Box<Self>, size: u64) -> Result<(), BackendError> {
        let result = self
            .step(move |store, w, r| Box::pin(async move { w.call_commit(store, r, size).await }));
        self.finish();
        result
    }

    fn abort(mut self: Box<Self>) {
        let _ =
            self.step(|store, w, r| Box::pin(async move { w.call_abort(store, r).await.map(Ok) }));
        self.finish();
    }
}

impl Drop for PluginWriter {
    fn drop(&mut self) {
        if self.resource.is_some() {
            let _ = self
                .step(|store, w, r| Box::pin(async move { w.call_abort(store, r).await.map(Ok) }));
            self.finish();
        }
    }
}

fn unavailable(e: PluginError) -> BackendError {
    BackendError::Unavailable(e.to_string())
}

fn backend_error(plugin: &str, e: wit::StorageError) -> BackendError {
    let cut = |m: String| bounds::text(m, bounds::MESSAGE);
    let failure = match e {
        wit::StorageError::NotFound => StorageFailure::NotFound,
        wit::StorageError::Io(m) => StorageFailure::Io(cut(m)),
        wit::StorageError::Unsupported(m) => StorageFailure::Unsupported(cut(m)),
        wit::StorageError::InvalidConfig(m) => StorageFailure::InvalidConfig(cut(m)),
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
