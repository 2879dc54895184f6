//! `berth:plugin/image-fs`: the `rootfs` resource a scanner reads an image
//! through, backed by [`berth_scan::RootView`] (which never leaves the
//! image's root).

use berth_scan::{Entry as NativeEntry, FileKind as NativeKind, FsError as NativeError, RootView};
use wasmtime::component::{HasSelf, Linker, Resource};

use crate::bindings::image_fs::{Entry, FileKind, FsError, Host, HostRootfs, add_to_linker as add};
use crate::state::HostState;

/// The host object behind a guest's `rootfs` handle: its own duplicate of
/// the caller's view, valid for one `scan` call.
pub struct Rootfs(pub(crate) RootView);

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add::<HostState, HasSelf<HostState>>(linker, |s| s)
}

impl Host for HostState {}

impl HostState {
    fn view(&self, handle: &Resource<Rootfs>) -> Result<&RootView, FsError> {
        self.table
            .get(handle)
            .map(|r| &r.0)
            .map_err(|e| FsError::Io(format!("stale rootfs handle: {e}")))
    }
}

impl HostRootfs for HostState {
    fn list_dir(&mut self, this: Resource<Rootfs>, path: String) -> Result<Vec<Entry>, FsError> {
        let view = self.view(&this)?;
        view.list_dir(&path)
            .map(|entries| entries.into_iter().map(entry).collect())
            .map_err(error)
    }

    fn stat(&mut self, this: Resource<Rootfs>, path: String) -> Result<Entry, FsError> {
        self.view(&this)?.stat(&path).map(entry).map_err(error)
    }

    fn read(
        &mut self,
        this: Resource<Rootfs>,
        path: String,
        offset: u64,
        length: u32,
    ) -> Result<Vec<u8>, FsError> {
        self.view(&this)?.read(&path, offset, length).map_err(error)
    }

    fn drop(&mut self, this: Resource<Rootfs>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

fn entry(e: NativeEntry) -> Entry {
    Entry {
        name: e.name,
        kind: match e.kind {
            NativeKind::File => FileKind::File,
            NativeKind::Directory => FileKind::Directory,
            NativeKind::Symlink => FileKind::Symlink,
            NativeKind::Other => FileKind::Other,
        },
        size: e.size,
        mode: e.mode,
        link_target: e.link_target,
    }
}

fn error(e: NativeError) -> FsError {
    match e {
        NativeError::NotFound => FsError::NotFound,
        NativeError::NotADirectory => FsError::NotADirectory,
        NativeError::IsADirectory => FsError::IsADirectory,
        NativeError::InvalidPath(_) => FsError::InvalidPath,
        NativeError::Denied(m) => FsError::Denied(m),
        NativeError::Io(m) => FsError::Io(m),
    }
}
