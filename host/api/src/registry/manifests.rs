//! Manifests, tag lists, the catalog and referrers.

use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_oci::{ErrorCode, media_types};
use berth_registry::Page;

use super::{ApiError, Query, RegistryApp};

fn parse_n(query: &Query) -> Result<Option<usize>, ApiError> {
    query
        .get("n")
        .map(|n| {
            n.parse::<usize>().map_err(|_| {
                ApiError::client(ErrorCode::Unsupported, format!("n={n:?} is not a number"))
                    .with_status(400)
            })
        })
        .transpose()
}

impl ApiError {
    pub(crate) fn with_status(self, s: u16) -> ApiError {
        match self {
            ApiError::Registry(e) => ApiError::Registry(e.with_status(s)),
            other => other,
        }
    }
}

fn link(path: &str, page: &Page, n: Option<usize>) -> Option<String> {
    let (true, Some(last), Some(n)) = (page.more, page.items.last(), n) else {
        return None;
    };
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("last", last)
        .append_pair("n", &n.to_string())
        .finish();
    Some(format!("<{path}?{q}>; rel=\"next\""))
}

fn json_page(
    key: &str,
    extra: Option<(&str, &str)>,
    page: &Page,
    link: Option<String>,
) -> Response {
    let mut body = serde_json::Map::new();
    if let Some((k, v)) = extra {
        body.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    body.insert(key.to_string(), serde_json::json!(page.items));
    let mut resp = (StatusCode::OK, axum::Json(serde_json::Value::Object(body))).into_response();
    if let Some(l) = link.and_then(|l| l.parse().ok()) {
        resp.headers_mut().insert(header::LINK, l);
    }
    resp
}

pub(crate) fn tags(app: &RegistryApp, repo: &str, query: &Query) -> Result<Response, ApiError> {
    let n = parse_n(query)?;
    let page = app.registry.tags(repo, n, query.get("last"))?;
    let l = link(&format!("/v2/{repo}/tags/list"), &page, n);
    Ok(json_page("tags", Some(("name", repo)), &page, l))
}

pub(crate) fn catalog(app: &RegistryApp, query: &Query) -> Result<Response, ApiError> {
    let n = parse_n(query)?;
    let page = app.registry.catalog(n, query.get("last"))?;
    let l = link("/v2/_catalog", &page, n);
    Ok(json_page("repositories", None, &page, l))
}

pub(crate) fn referrers(
    app: &RegistryApp,
    repo: &str,
    digest: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let at = query.get("artifactType");
    let (body, filtered) = app.registry.referrers(repo, digest, at)?;
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, media_types::OCI_INDEX)],
        body,
    )
        .into_response();
    if filtered {
        resp.headers_mut().insert(
            "OCI-Filters-Applied",
            http::HeaderValue::from_static("artifactType"),
        );
    }
    Ok(resp)
}

pub(crate) async fn handle(
    app: &RegistryApp,
    repo: &str,
    reference: &str,
    method: Method,
    query: &Query,
    req: Request,
) -> Result<Response, ApiError> {
    match method {
        Method::GET | Method::HEAD => {
            let m = app
                .registry
                .manifest_get(repo, reference, method == Method::GET)
                .await?;
            let etag = format!("\"{}\"", m.digest);
            // Manifests are immutable by digest, so a matching ETag means the
            // client's copy is current: 304 and no body.
            let cached = req
                .headers()
                .get_all(header::IF_NONE_MATCH)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*");
            let headers = [
                (header::CONTENT_TYPE, m.media_type.clone()),
                (header::CONTENT_LENGTH, m.size.to_string()),
                (
                    header::HeaderName::from_static("docker-content-digest"),
                    m.digest.to_string(),
                ),
                (header::ETAG, etag),
            ];
            Ok(if cached {
                let [_, _, digest, etag] = headers;
                (StatusCode::NOT_MODIFIED, [digest, etag]).into_response()
            } else if method == Method::GET {
                (StatusCode::OK, headers, m.body).into_response()
            } else {
                (StatusCode::OK, headers).into_response()
            })
        }
        Method::PUT => {
            let content_type = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let limit =
                usize::try_from(app.registry.config().max_manifest_bytes).unwrap_or(usize::MAX);
            // Past the limit is 413 SIZE_INVALID, as the registry answers a
            // declared-too-large manifest; other read failures are the
            // client's broken body.
            let body = axum::body::to_bytes(req.into_body(), limit)
                .await
                .map_err(|e| {
                    let too_big = std::error::Error::source(&e)
                        .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
                    if too_big {
                        ApiError::client(
                            ErrorCode::SizeInvalid,
                            format!("manifest is larger than the limit of {limit} bytes"),
                        )
                        .with_status(413)
                    } else {
                        ApiError::client(
                            ErrorCode::ManifestInvalid,
                            format!("reading the manifest failed: {e}"),
                        )
                    }
                })?;
            let put = app
                .registry
                .manifest_put(
                    repo,
                    reference,
                    &query.all("tag"),
                    content_type.as_deref(),
                    &body,
                )
                .await?;
            if let Some(tx) = &app.pushed {
                // The receiver may be gone at shutdown; the push stands.
                let _ = tx.send((repo.to_string(), put.digest.clone()));
            }
            let mut resp = (
                StatusCode::CREATED,
                [
                    (
                        header::LOCATION,
                        format!("/v2/{repo}/manifests/{}", put.digest),
                    ),
                    (
                        header::HeaderName::from_static("docker-content-digest"),
                        put.digest.to_string(),
                    ),
                    (header::CONTENT_LENGTH, "0".to_string()),
                ],
            )
                .into_response();
            if let Some(s) = put.subject.and_then(|s| s.to_string().parse().ok()) {
                resp.headers_mut().insert("OCI-Subject", s);
            }
            for t in put.tags.iter().filter_map(|t| t.parse().ok()) {
                resp.headers_mut().append("OCI-Tag", t);
            }
            Ok(resp)
        }
        Method::DELETE => {
            app.registry.manifest_delete(repo, reference).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        m => Err(ApiError::unsupported(&m)),
    }
}
