//! Image references (`[registry/]repository[:tag][@digest]`), normalised the
//! way Docker normalises them: `busybox` is `docker.io/library/busybox:latest`.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};
use crate::name::{NameError, validate_repository, validate_tag};

/// The registry a reference without a host part names.
pub const DEFAULT_REGISTRY: &str = "docker.io";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("image reference is empty")]
    Empty,
    // The cause is part of the message (not a `source`), so it is said once
    // however the error is printed.
    #[error("image reference {reference:?}: {reason}")]
    Name {
        reference: String,
        reason: NameError,
    },
    #[error("image reference {reference:?}: {reason}")]
    Digest {
        reference: String,
        reason: DigestError,
    },
}

/// A parsed image reference. `tag` is `latest` when neither a tag nor a
/// digest was given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// The tag or digest to ask the registry for (`digest` wins, as in Docker).
    pub fn object(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same image with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The host to connect to: Docker Hub's API lives on another host than its name.
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let name_err = |reason| ReferenceError::Name {
            reference: s.to_string(),
            reason,
        };
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let digest = d
                    .parse::<Digest>()
                    .map_err(|reason| ReferenceError::Digest {
                        reference: s.to_string(),
                        reason,
                    })?;
                (r, Some(digest))
            }
            None => (s, None),
        };
        // A ':' after the last '/' separates the tag; one before it is a port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            validate_tag(t).map_err(name_err)?;
        }
        let (registry, repository) = match name.split_once('/') {
            Some((host, path))
                if host.contains('.') || host.contains(':') || host == "localhost" =>
            {
                (host.to_string(), path.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        validate_repository(&repository).map_err(name_err)?;
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_normalisation() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("user/app:1", "docker.io/user/app:1"),
            ("localhost:5000/a/b", "localhost:5000/a/b:latest"),
            ("localhost/a", "localhost/a:latest"),
            ("127.0.0.1:5000/x:v2", "127.0.0.1:5000/x:v2"),
            ("quay.io/org/img:tag", "quay.io/org/img:tag"),
        ];
        for (input, want) in cases {
            assert_eq!(
                input.parse::<Reference>().unwrap().to_string(),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn digest_references() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r: Reference = format!("localhost:5000/a@{d}").parse().unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.object(), d);
        let r: Reference = format!("localhost:5000/a:t@{d}").parse().unwrap();
        assert_eq!(r.object(), d);
        assert_eq!(r.tag.as_deref(), Some("t"));
    }

    #[test]
    fn refuses_bad_references() {
        for bad in [
            "",
            "UPPER",
            "a/../b",
            "a:",
            "a@sha256:12",
            "localhost:5000/",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} accepted");
        }
    }
}
