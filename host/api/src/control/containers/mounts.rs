//! What a container mounts besides its root: `-v`, `--mount`, `--tmpfs`,
//! and anonymous volumes for the image's `VOLUME` paths.

use std::path::Path;

use berth_runtime::ExtraMount;

use crate::control::volumes;
use crate::control::{ControlApp, ControlError};

/// One mount as the user asked for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Wanted {
    Bind {
        source: String,
        destination: String,
        read_only: bool,
    },
    /// `anonymous`: named by berth, removed with its container.
    Volume {
        name: String,
        destination: String,
        read_only: bool,
        anonymous: bool,
    },
    Tmpfs {
        destination: String,
    },
}

impl Wanted {
    fn destination(&self) -> &str {
        match self {
            Wanted::Bind { destination, .. }
            | Wanted::Volume { destination, .. }
            | Wanted::Tmpfs { destination } => destination,
        }
    }
}

/// `-v /host:/ctr[:ro|rw]` (a bind) or `-v NAME:/ctr[:ro|rw]` (a volume).
pub(crate) fn parse_v(v: &str) -> Result<Wanted, ControlError> {
    let parts: Vec<&str> = v.split(':').collect();
    let (source, destination, read_only) = match parts.as_slice() {
        [d] if d.starts_with('/') => {
            return Ok(Wanted::Volume {
                name: volumes::anonymous_name(),
                destination: d.to_string(),
                read_only: false,
                anonymous: true,
            });
        }
        [s, d] => (*s, *d, false),
        [s, d, "ro"] => (*s, *d, true),
        [s, d, "rw"] => (*s, *d, false),
        _ => {
            return Err(ControlError::bad_request(format!(
                "-v {v:?}: use /host/path:/ctr/path[:ro] or NAME:/ctr/path[:ro]"
            )));
        }
    };
    if !destination.starts_with('/') {
        return Err(ControlError::bad_request(format!(
            "-v {v:?}: the container path must be absolute"
        )));
    }
    Ok(if source.starts_with('/') {
        Wanted::Bind {
            source: source.into(),
            destination: destination.into(),
            read_only,
        }
    } else {
        Wanted::Volume {
            name: source.into(),
            destination: destination.into(),
            read_only,
            anonymous: false,
        }
    })
}

/// `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly]`.
pub(crate) fn parse_mount(m: &str) -> Result<Wanted, ControlError> {
    let (mut kind, mut source, mut target, mut ro) = ("volume", None, None, false);
    for field in m.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => {
                kind = if v == "bind" {
                    "bind"
                } else if v == "tmpfs" {
                    "tmpfs"
                } else if v == "volume" {
                    "volume"
                } else {
                    return Err(ControlError::bad_request(format!(
                        "--mount {m:?}: type must be bind, volume or tmpfs"
                    )));
                }
            }
            "source" | "src" => source = Some(v.to_string()),
            "target" | "destination" | "dst" => target = Some(v.to_string()),
            "readonly" | "ro" => ro = v.is_empty() || v == "true" || v == "1",
            other => {
                return Err(ControlError::bad_request(format!(
                    "--mount {m:?}: unknown field {other:?}"
                )));
            }
        }
    }
    let destination = target
        .ok_or_else(|| ControlError::bad_request(format!("--mount {m:?}: target= is required")))?;
    Ok(match (kind, source) {
        ("tmpfs", _) => Wanted::Tmpfs { destination },
        ("bind", Some(s)) if s.starts_with('/') => Wanted::Bind {
            source: s,
            destination,
            read_only: ro,
        },
        ("bind", _) => {
            return Err(ControlError::bad_request(format!(
                "--mount {m:?}: a bind needs an absolute source="
            )));
        }
        (_, Some(name)) => Wanted::Volume {
            name,
            destination,
            read_only: ro,
            anonymous: false,
        },
        (_, None) => Wanted::Volume {
            name: volumes::anonymous_name(),
            destination,
            read_only: ro,
            anonymous: true,
        },
    })
}

/// What [`resolve`] found.
pub(crate) struct Resolved {
    pub mounts: Vec<ExtraMount>,
    pub named: Vec<String>,
    pub anonymous: Vec<String>,
    /// The volumes made now (named or anonymous), for [`unmake`] should
    /// the create fail after all.
    pub made: Vec<String>,
}

/// The mounts to hand the runtime, with volumes created (and seeded from
/// the image at `rootfs` when new) and anonymous volumes added for image
/// `VOLUME` paths nothing else covers. Returns them and the volume names
/// used (anonymous ones second), for container `id`. On failure, the
/// volumes it made are removed again. Blocking (seeding copies files):
/// call it off the async workers.
pub(crate) fn resolve(
    app: &ControlApp,
    id: &str,
    rootfs: &Path,
    wanted: &[Wanted],
    image_volumes: &[String],
) -> Result<Resolved, ControlError> {
    let mut made = Vec::new();
    let resolved = resolve_into(app, id, rootfs, wanted, image_volumes, &mut made);
    if resolved.is_err() {
        unmake(app, &made);
    }
    resolved
}

/// Remove the volumes a create made ([`Resolved::made`]) when it fails.
/// Blocking: call it off the async workers.
pub(crate) fn unmake(app: &ControlApp, made: &[String]) {
    for name in made {
        if let Err(e) = volumes::remove_volume(app, name) {
            tracing::warn!(volume = %name, error = %e, "removing a volume made for a container that failed");
        }
    }
}

fn resolve_into(
    app: &ControlApp,
    id: &str,
    rootfs: &Path,
    wanted: &[Wanted],
    image_volumes: &[String],
    made: &mut Vec<String>,
) -> Result<Resolved, ControlError> {
    let mut all = wanted.to_vec();
    for path in image_volumes {
        if !all.iter().any(|w| w.destination() == path) {
            all.push(Wanted::Volume {
                name: volumes::anonymous_name(),
                destination: path.clone(),
                read_only: false,
                anonymous: true,
            });
        }
    }
    let (mut mounts, mut named, mut anonymous) = (Vec::new(), Vec::new(), Vec::new());
    for w in all {
        match w {
            Wanted::Bind {
                source,
                destination,
                read_only,
            } => mounts.push(ExtraMount::Bind {
                source: source.into(),
                destination,
                read_only,
            }),
            Wanted::Tmpfs { destination } => mounts.push(ExtraMount::Tmpfs {
                destination,
                options: vec![],
            }),
            Wanted::Volume {
                name,
                destination,
                read_only,
                anonymous: anon,
            } => {
                let (vol, created) = volumes::ensure(app, &name, anon.then_some(id))?;
                // Docker seeds a volume from the image only while it is new.
                if created {
                    made.push(name.clone());
                    volumes::seed(rootfs, &destination, &vol)?;
                }
                mounts.push(ExtraMount::Bind {
                    source: vol.mountpoint.clone(),
                    destination,
                    read_only,
                });
                if anon {
                    anonymous.push(name)
                } else {
                    named.push(name)
                }
            }
        }
    }
    Ok(Resolved {
        mounts,
        named,
        anonymous,
        made: made.clone(),
    })
}
