//! Scanner plugins as [`berth_scan::Scanner`]s.

use std::sync::Arc;

use berth_scan::{Finding, ImageInfo, RootView, ScanError, Scanner, Severity};

use crate::bindings::scanner::exports::berth::plugin::scan as wit;
use crate::capabilities::image_fs::Rootfs;
use crate::plugin::{Exports, Plugin};
use crate::spec::Kind;
use crate::{PluginError, PluginManager, bounds};

/// One scanner plugin.
pub struct PluginScanner {
    plugin: Arc<Plugin>,
}

/// One scanner's result in [`PluginManager::scan`].
#[derive(Debug)]
pub struct ScanReport {
    pub scanner: String,
    pub result: Result<Vec<Finding>, PluginError>,
}

impl PluginScanner {
    /// Scans one image; the guest sees `fs` through the `rootfs` resource.
    pub fn scan_image(
        &self,
        image: &ImageInfo,
        fs: &RootView,
    ) -> Result<Vec<Finding>, PluginError> {
        let name = self.plugin.name().to_owned();
        let view = fs.try_clone().map_err(|e| PluginError::Host {
            plugin: name.clone(),
            message: format!(
                "duplicating the image root {}: {e}",
                fs.host_path().display()
            ),
        })?;
        let info = wit::ImageInfo {
            reference: image.reference.clone(),
            digest: image.digest.clone(),
            config_json: image.config_json.clone(),
        };
        let result = self.plugin.call(move |store, exports| {
            Box::pin(async move {
                let Exports::Scanner(s) = exports else {
                    return Err(wasmtime::format_err!("not a scanner"));
                };
                let handle = store.data_mut().table.push(Rootfs(view))?;
                let borrowed = wasmtime::component::Resource::<Rootfs>::new_borrow(handle.rep());
                let result = s
                    .berth_plugin_scan()
                    .call_scan(&mut *store, &info, borrowed)
                    .await;
                // The view is the caller's only for this call.
                store.data_mut().table.delete(handle)?;
                result
            })
        })?;
        match result {
            Ok(findings) => Ok(bounds::list(
                &name,
                "findings",
                findings,
                bounds::FINDINGS,
                finding,
            )),
            Err(wit::ScanError::Unsupported(m)) => Err(PluginError::Scan {
                plugin: name,
                unsupported: true,
                message: bounds::text(m, bounds::MESSAGE),
            }),
            Err(wit::ScanError::Failed(m)) => Err(PluginError::Scan {
                plugin: name,
                unsupported: false,
                message: bounds::text(m, bounds::MESSAGE),
            }),
        }
    }
}

impl Scanner for PluginScanner {
    fn name(&self) -> &str {
        self.plugin.name()
    }

    fn scan(&self, image: &ImageInfo, fs: &RootView) -> Result<Vec<Finding>, ScanError> {
        self.scan_image(image, fs).map_err(|e| match e {
            PluginError::Scan {
                plugin,
                unsupported: true,
                message,
            } => ScanError::Unsupported {
                scanner: plugin,
                reason: message,
            },
            other => ScanError::Failed {
                scanner: self.plugin.name().to_owned(),
                reason: other.to_string(),
            },
        })
    }
}

impl PluginManager {
    /// The enabled scanner plugins in order.
    pub fn scanners(&self) -> Vec<PluginScanner> {
        self.enabled_of(Kind::Scanner)
            .into_iter()
            .map(|plugin| PluginScanner { plugin })
            .collect()
    }

    /// One scanner plugin by name.
    pub fn scanner(&self, name: &str) -> Result<PluginScanner, PluginError> {
        Ok(PluginScanner {
            plugin: self.get(name, Kind::Scanner)?,
        })
    }

    /// Runs every enabled scanner on one image, in order. Blocking.
    pub fn scan(&self, image: &ImageInfo, fs: &RootView) -> Vec<ScanReport> {
        self.scanners()
            .into_iter()
            .map(|s| ScanReport {
                scanner: s.plugin.name().to_owned(),
                result: s.scan_image(image, fs),
            })
            .collect()
    }
}

fn finding(f: wit::Finding) -> Finding {
    let name = |s: String| bounds::text(s, bounds::NAME);
    Finding {
        kind: name(f.kind),
        id: name(f.id),
        package: name(f.package),
        ecosystem: name(f.ecosystem),
        installed_version: name(f.installed_version),
        fixed_version: f.fixed_version.map(name),
        severity: match f.severity {
            wit::Severity::None => Severity::None,
            wit::Severity::Unknown => Severity::Unknown,
            wit::Severity::Low => Severity::Low,
            wit::Severity::Medium => Severity::Medium,
            wit::Severity::High => Severity::High,
            wit::Severity::Critical => Severity::Critical,
        },
        title: bounds::text(f.title, bounds::VALUE),
        path: bounds::text(f.path, bounds::VALUE),
    }
}
