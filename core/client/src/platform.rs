//! Platforms (`os/architecture[/variant]`) and choosing one manifest of an
//! index for them.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use berth_oci::Descriptor;

/// A target platform, as in an index's `platform` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// The platform this program runs on, in Go's (and OCI's) names.
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Platform::new("linux", arch, None)
    }

    /// Whether an index entry's platform serves this one. A variant asked
    /// for must match; one not asked for matches any (arm64 ≡ arm64/v8).
    pub fn matches(&self, d: &Descriptor) -> bool {
        let Some(p) = d
            .platform
            .as_ref()
            .and_then(|v| DescPlatform::deserialize(v).ok())
        else {
            return false;
        };
        p.os == self.os
            && p.architecture == self.architecture
            && match (&self.variant, &p.variant) {
                (None, _) => true,
                (Some(want), Some(have)) => want == have,
                (Some(want), None) => self.architecture == "arm64" && want == "v8",
            }
    }

    /// `os/arch[/variant]` of an index entry, for error messages.
    pub fn describe(d: &Descriptor) -> String {
        match d
            .platform
            .as_ref()
            .and_then(|v| DescPlatform::deserialize(v).ok())
        {
            Some(p) => match p.variant {
                Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                None => format!("{}/{}", p.os, p.architecture),
            },
            None => "unknown".to_string(),
        }
    }

    /// Pick the manifest for this platform from an index's entries.
    pub fn choose<'a>(&self, manifests: &'a [Descriptor]) -> Option<&'a Descriptor> {
        manifests.iter().find(|d| self.matches(d))
    }
}

#[derive(Deserialize)]
struct DescPlatform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

/// Why a platform string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("platform {0:?} is not of the form os/architecture[/variant]")]
pub struct PlatformError(pub String);

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(PlatformError(s.to_string()));
        }
        match parts.as_slice() {
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(PlatformError(s.to_string())),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test should stop loudly at the first surprise
mod tests {
    use super::*;

    fn entry(platform: serde_json::Value) -> Descriptor {
        serde_json::from_value(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "size": 1,
            "platform": platform,
        }))
        .unwrap()
    }

    #[test]
    fn parses_and_prints() {
        let p: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(p.variant.as_deref(), Some("v7"));
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//v7".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn chooses_by_os_arch_and_variant() {
        let list = vec![
            entry(serde_json::json!({"os":"linux","architecture":"arm","variant":"v6"})),
            entry(serde_json::json!({"os":"linux","architecture":"arm","variant":"v7"})),
            entry(serde_json::json!({"os":"linux","architecture":"arm64"})),
            entry(serde_json::json!({"os":"windows","architecture":"amd64"})),
        ];
        let pick = |s: &str| {
            s.parse::<Platform>()
                .unwrap()
                .choose(&list)
                .map(Platform::describe)
        };
        assert_eq!(pick("linux/arm/v7").as_deref(), Some("linux/arm/v7"));
        assert_eq!(pick("linux/arm").as_deref(), Some("linux/arm/v6"));
        assert_eq!(pick("linux/arm64/v8").as_deref(), Some("linux/arm64"));
        assert_eq!(pick("linux/amd64"), None);
        assert_eq!(pick("windows/amd64").as_deref(), Some("windows/amd64"));
    }
}
