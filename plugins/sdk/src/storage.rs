//! Storage backends: the [`StorageBackend`] and [`BlobWriter`] traits and
//! [`export_storage!`](crate::export_storage).

use std::cell::RefCell;

use crate::bindings::storage::exports::berth::plugin::storage::GuestWriter;
pub use crate::bindings::storage::exports::berth::plugin::storage::{BlobInfo, StorageError};

// wit-bindgen derives `Display` (via `Debug`) and `Error` for WIT error variants.

/// One blob being written (see the WIT's `writer`). Dropping it without [`commit`] must leave
/// nothing visible; implement `Drop` to clean up, or rely on [`abort`] being called.
///
/// [`commit`]: BlobWriter::commit
/// [`abort`]: BlobWriter::abort
pub trait BlobWriter: 'static {
    /// Appends a chunk.
    fn write(&mut self, chunk: &[u8]) -> Result<(), StorageError>;
    /// Makes the blob visible, atomically; `size` is the total written.
    fn commit(self, size: u64) -> Result<(), StorageError>
    where
        Self: Sized;
    /// Throws away what was written.
    fn abort(self)
    where
        Self: Sized;
}

/// A content-addressed blob store. One instance (created with `Default`) serves every call.
pub trait StorageBackend {
    /// The writer [`begin_write`](StorageBackend::begin_write) returns.
    type Writer: BlobWriter;

    /// The size of a blob, or `None` if it is not stored.
    fn stat(&self, digest: &str) -> Result<Option<u64>, StorageError>;
    /// Up to `length` bytes from `offset`; empty at or past the end.
    fn read(&self, digest: &str, offset: u64, length: u32) -> Result<Vec<u8>, StorageError>;
    /// Starts writing blob `digest` of `size` bytes.
    fn begin_write(&self, digest: &str, size: u64) -> Result<Self::Writer, StorageError>;
    /// Deletes a blob; `false` if it was not there.
    fn delete(&self, digest: &str) -> Result<bool, StorageError>;
    /// Blobs in digest order after `after`, at most `limit`.
    fn list(&self, after: Option<&str>, limit: u32) -> Result<Vec<BlobInfo>, StorageError>;
}

/// The resource berth holds for one [`BlobWriter`]: the WIT methods take `&self`, and
/// `commit`/`abort` consume the writer, so it sits in a `RefCell<Option<_>>`.
#[doc(hidden)]
pub struct WriterSlot<W: BlobWriter>(RefCell<Option<W>>);

impl<W: BlobWriter> WriterSlot<W> {
    pub fn new(writer: W) -> Self {
        WriterSlot(RefCell::new(Some(writer)))
    }

    fn finished() -> StorageError {
        StorageError::Io("the writer was already committed or aborted".to_owned())
    }
}

impl<W: BlobWriter> GuestWriter for WriterSlot<W> {
    fn write(&self, chunk: Vec<u8>) -> Result<(), StorageError> {
        match self.0.borrow_mut().as_mut() {
            Some(writer) => writer.write(&chunk),
            None => Err(Self::finished()),
        }
    }

    fn commit(&self, size: u64) -> Result<(), StorageError> {
        match self.0.borrow_mut().take() {
            Some(writer) => writer.commit(size),
            None => Err(Self::finished()),
        }
    }

    fn abort(&self) {
        if let Some(writer) = self.0.borrow_mut().take() {
            writer.abort();
        }
    }
}

/// Exports a [`StorageBackend`] type as the plugin's `storage-backend` world.
#[macro_export]
macro_rules! export_storage {
    ($ty:ident) => {
        const _: () = {
            thread_local! {
                static __BERTH_STORAGE: $ty = <$ty as ::core::default::Default>::default();
            }


            struct __BerthStorageExport;

            type __BerthWriter =
                $crate::storage::WriterSlot<<$ty as $crate::storage::StorageBackend>::Writer>;

            impl $crate::bindings::storage::exports::berth::plugin::storage::Guest
                for __BerthStorageExport
            {
                type Writer = __BerthWriter;

                fn stat(
                    digest: ::std::string::String,
                ) -> ::core::result::Result<
                    ::core::option::Option<u64>,
                    $crate::storage::StorageError,
                > {
                    __BERTH_STORAGE.with(|s| $crate::storage::StorageBackend::stat(s, &digest))
                }

                fn read(
                    digest: ::std::string::String,
                    offset: u64,
                    length: u32,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, $crate::storage::StorageError>
                {
                    __BERTH_STORAGE
                        .with(|s| $crate::storage::StorageBackend::read(s, &digest, offset, length))
                }

                fn begin_write(
                    digest: ::std::string::String,
                    size: u64,
                ) -> ::core::result::Result<
                    $crate::bindings::storage::exports::berth::plugin::storage::Writer,
                    $crate::storage::StorageError,
                > {
                    let writer = __BERTH_STORAGE
                        .with(|s| $crate::storage::StorageBackend::begin_write(s, &digest, size))?;
                    Ok(
                        $crate::bindings::storage::exports::berth::plugin::storage::Writer::new(
                            __BerthWriter::new(writer),
                        ),
                    )
                }

                fn delete(
                    digest: ::std::string::String,
                ) -> ::core::result::Result<bool, $crate::storage::StorageError> {
                    __BERTH_STORAGE.with(|s| $crate::storage::StorageBackend::delete(s, &digest))
                }

                fn list(
                    after: ::core::option::Option<::std::string::String>,
                    limit: u32,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<$crate::storage::BlobInfo>,
                    $crate::storage::StorageError,
                > {
                    __BERTH_STORAGE
                        .with(|s| $crate::storage::StorageBackend::list(s, after.as_deref(), limit))
                }
            }

            // Native builds (unit tests) skip the exports: their wasm symbol names do not link

            // into a native cdylib.

            #[cfg(target_arch = "wasm32")]

            $crate::bindings::storage::__export_storage_world!(
                __BerthStorageExport with_types_in $crate::bindings::storage
            );
            // Natively, keep the plugin type "used" so its code is still type- and
            // lint-checked, and unit tests see no dead-code noise.
            #[cfg(not(target_arch = "wasm32"))]
            const _: () = {
                let _ = <__BerthStorageExport as $crate::bindings::storage::exports::berth::plugin::storage::Guest>::stat;
            };
        };
    };
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    /// Records what the slot does with it.
    struct Recorder(Rc<RefCell<Vec<String>>>);

    impl BlobWriter for Recorder {
        fn write(&mut self, chunk: &[u8]) -> Result<(), StorageError> {
            self.0.borrow_mut().push(format!("write {}", chunk.len()));
            Ok(())
        }
        fn commit(self, size: u64) -> Result<(), StorageError> {
            self.0.borrow_mut().push(format!("commit {size}"));
            Ok(())
        }
        fn abort(self) {
            self.0.borrow_mut().push("abort".to_owned());
        }
    }

    impl Drop for Recorder {
        fn drop(&mut self) {
            self.0.borrow_mut().push("drop".to_owned());
        }
    }

    #[test]
    fn a_slot_commits_once_and_refuses_use_after() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let slot = WriterSlot::new(Recorder(log.clone()));
        slot.write(vec![0; 3]).unwrap();
        slot.commit(3).unwrap();
        assert!(matches!(slot.write(vec![1]), Err(StorageError::Io(_))));
        assert!(matches!(slot.commit(3), Err(StorageError::Io(_))));
        slot.abort();
        assert_eq!(*log.borrow(), vec!["write 3", "commit 3", "drop"]);
    }

    #[test]
    fn abort_and_drop_reach_the_writer() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let slot = WriterSlot::new(Recorder(log.clone()));
        slot.abort();
        assert_eq!(*log.borrow(), vec!["abort", "drop"]);
        let dropped = Rc::new(RefCell::new(Vec::new()));
        drop(WriterSlot::new(Recorder(dropped.clone())));
        assert_eq!(*dropped.borrow(), vec!["drop"]);
    }
}
