//! Parse `/v2/...` paths once. The path is used as sent (not
//! percent-decoded), so `%2e%2e` and friends are simply invalid names.

use berth_oci::ErrorCode;

use super::ApiError;

#[derive(Debug, PartialEq)]
pub(crate) enum Route {
    Base,
    Catalog,
    Tags { repo: String },
    Manifest { repo: String, reference: String },
    Blob { repo: String, digest: String },
    UploadStart { repo: String },
    Upload { repo: String, id: String },
    Referrers { repo: String, digest: String },
}

impl Route {
    /// The methods the endpoint serves, for the `Allow` header of a 405.
    pub(crate) fn allowed_methods(&self) -> &'static str {
        match self {
            Route::Base | Route::Catalog | Route::Tags { .. } | Route::Referrers { .. } => {
                "GET, HEAD"
            }
            Route::Manifest { .. } => "GET, HEAD, PUT, DELETE",
            Route::Blob { .. } => "GET, HEAD, DELETE",
            Route::UploadStart { .. } => "POST",
            Route::Upload { .. } => "GET, HEAD, PATCH, PUT, DELETE",
        }
    }
}

pub(crate) fn parse(path: &str) -> Result<Route, ApiError> {
    let rest = path.strip_prefix("/v2").unwrap_or(path);
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(Route::Base);
    }
    if rest == "_catalog" {
        return Ok(Route::Catalog);
    }
    let name = |repo: &str| -> Result<String, ApiError> {
        berth_oci::validate_repository(repo)
            .map(|()| repo.to_string())
            .map_err(|e| ApiError::client(ErrorCode::NameInvalid, e.to_string()))
    };
    if let Some(repo) = rest.strip_suffix("/tags/list") {
        return Ok(Route::Tags { repo: name(repo)? });
    }
    if let Some(repo) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Ok(Route::UploadStart { repo: name(repo)? });
    }
    if let Some((repo, id)) = rest.rsplit_once("/blobs/uploads/") {
        return Ok(Route::Upload {
            repo: name(repo)?,
            id: id.to_string(),
        });
    }
    if let Some((repo, reference)) = rest.rsplit_once("/manifests/") {
        return Ok(Route::Manifest {
            repo: name(repo)?,
            reference: reference.to_string(),
        });
    }
    if let Some((repo, digest)) = rest.rsplit_once("/blobs/") {
        return Ok(Route::Blob {
            repo: name(repo)?,
            digest: digest.to_string(),
        });
    }
    if let Some((repo, digest)) = rest.rsplit_once("/referrers/") {
        return Ok(Route::Referrers {
            repo: name(repo)?,
            digest: digest.to_string(),
        });
    }
    Err(ApiError::not_found(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(parse("/v2/").unwrap(), Route::Base);
        assert_eq!(
            parse("/v2/a/b/tags/list").unwrap(),
            Route::Tags { repo: "a/b".into() }
        );
        assert_eq!(
            parse("/v2/a/manifests/blobs/manifests/v1").unwrap(),
            Route::Manifest {
                repo: "a/manifests/blobs".into(),
                reference: "v1".into()
            }
        );
        assert_eq!(
            parse("/v2/x/blobs/uploads/").unwrap(),
            Route::UploadStart { repo: "x".into() }
        );
        assert_eq!(
            parse("/v2/x/blobs/uploads/abc").unwrap(),
            Route::Upload {
                repo: "x".into(),
                id: "abc".into()
            }
        );
        for bad in [
            "/v2/../x/tags/list",
            "/v2/%2e%2e/x/blobs/uploads/",
            "/v2/A/manifests/v",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
