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
    // A repository name may itself contain `blobs`, `manifests`, `tags`,
    // `uploads` or `referrers` as components (`a/manifests/blobs` is a valid
    // name), but a reference, digest or upload id never contains `/`: the
    // route is in the last two to four segments, so read it from the end.
    let segments: Vec<&str> = rest.split('/').collect();
    let n = segments.len();
    let at = |i: usize| n.checked_sub(i).map(|k| segments[k]);
    let repo = |len: usize| -> Result<String, ApiError> {
        let name = segments[..n - len].join("/");
        berth_oci::validate_repository(&name)
            .map(|()| name)
            .map_err(|e| ApiError::client(ErrorCode::NameInvalid, e.to_string()))
    };
    let last = at(1).unwrap_or_default().to_string();
    let route = match (at(3), at(2), at(1)) {
        (_, Some("tags"), Some("list")) if n > 2 => Route::Tags { repo: repo(2)? },
        (_, Some("manifests"), Some(_)) if n > 2 => Route::Manifest {
            repo: repo(2)?,
            reference: last,
        },
        (_, Some("blobs"), Some("uploads")) if n > 2 => Route::UploadStart { repo: repo(2)? },
        (Some("blobs"), Some("uploads"), Some("")) if n > 3 => {
            Route::UploadStart { repo: repo(3)? }
        }
        (Some("blobs"), Some("uploads"), Some(_)) if n > 3 => Route::Upload {
            repo: repo(3)?,
            id: last,
        },
        (_, Some("blobs"), Some(_)) if n > 2 => Route::Blob {
            repo: repo(2)?,
            digest: last,
        },
        (_, Some("referrers"), Some(_)) if n > 2 => Route::Referrers {
            repo: repo(2)?,
            digest: last,
        },
        _ => return Err(ApiError::not_found(path)),
    };
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn routes() {
        assert_eq!(parse("/v2/").unwrap(), Route::Base);
        assert_eq!(parse("/v2").unwrap(), Route::Base);
        assert_eq!(parse("/v2/_catalog").unwrap(), Route::Catalog);
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
            parse("/v2/x/blobs/uploads").unwrap(),
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
            "/v2//x/tags/list",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        for not_a_route in [
            "/v2/tags/list",
            "/v2/manifests/v1",
            "/v2/blobs/uploads/",
            "/v2/x/uploads/abc",
            "/v2/x",
            "/v2/x/y",
        ] {
            assert!(parse(not_a_route).is_err(), "{not_a_route}");
        }
    }

    /// Repository names with each word the routes use, at each position.
    fn tricky_repositories() -> Vec<String> {
        let words = ["blobs", "manifests", "tags", "list", "uploads", "referrers"];
        let mut names = Vec::new();
        for w in words {
            names.push(format!("a/{w}"));
            names.push(format!("{w}/a"));
            names.push(format!("a/{w}/b"));
            names.push(w.to_string());
            for v in words {
                names.push(format!("{w}/{v}"));
                names.push(format!("x/{w}/{v}"));
            }
        }
        names.push("a/blobs/uploads".into());
        names.push("x/manifests/y".into());
        names.push("tags/list".into());
        names.push("blobs/uploads/x".into());
        names
    }

    #[test]
    fn every_route_of_every_tricky_repository() {
        for repo in tricky_repositories() {
            let r = || repo.clone();
            let cases = [
                (format!("/v2/{repo}/tags/list"), Route::Tags { repo: r() }),
                (
                    format!("/v2/{repo}/manifests/latest"),
                    Route::Manifest {
                        repo: r(),
                        reference: "latest".into(),
                    },
                ),
                // Tags that are themselves route words.
                (
                    format!("/v2/{repo}/manifests/list"),
                    Route::Manifest {
                        repo: r(),
                        reference: "list".into(),
                    },
                ),
                (
                    format!("/v2/{repo}/manifests/uploads"),
                    Route::Manifest {
                        repo: r(),
                        reference: "uploads".into(),
                    },
                ),
                (
                    format!("/v2/{repo}/manifests/{DIGEST}"),
                    Route::Manifest {
                        repo: r(),
                        reference: DIGEST.into(),
                    },
                ),
                (
                    format!("/v2/{repo}/blobs/{DIGEST}"),
                    Route::Blob {
                        repo: r(),
                        digest: DIGEST.into(),
                    },
                ),
                (
                    format!("/v2/{repo}/blobs/uploads/"),
                    Route::UploadStart { repo: r() },
                ),
                (
                    format!("/v2/{repo}/blobs/uploads"),
                    Route::UploadStart { repo: r() },
                ),
                (
                    format!("/v2/{repo}/blobs/uploads/3f2c-9a"),
                    Route::Upload {
                        repo: r(),
                        id: "3f2c-9a".into(),
                    },
                ),
                (
                    format!("/v2/{repo}/referrers/{DIGEST}"),
                    Route::Referrers {
                        repo: r(),
                        digest: DIGEST.into(),
                    },
                ),
            ];
            for (path, want) in cases {
                assert_eq!(parse(&path).ok(), Some(want), "{path}");
            }
        }
    }

    #[test]
    fn the_example_of_the_defect() {
        // A blob of `a/manifests`, not the manifest `blobs/...` of `a`.
        assert_eq!(
            parse(&format!("/v2/a/manifests/blobs/{DIGEST}")).ok(),
            Some(Route::Blob {
                repo: "a/manifests".into(),
                digest: DIGEST.into()
            })
        );
    }
}
