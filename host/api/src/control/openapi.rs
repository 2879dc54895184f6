//! The OpenAPI 3 document of the control plane, served at
//! `GET /v1/openapi.json` and checked in as `docs/openapi.json`.
//!
//! The schemas come from `berth-api-types`; the operations are listed here,
//! one stub per route of [`super::app`], so the handlers stay free of
//! documentation attributes. Every operation also answers errors as
//! [`ErrorBody`] (4XX and 5XX, added in one place by [`document`]); the
//! extractors' own rejections of a malformed body or query are plain text.
//! When a route is added to `app`, add it here too: the test beside this
//! file compares the two lists.

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod tests;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use berth_api_types::*;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder, Schema};
use utoipa::{OpenApi, PartialSchema, ToSchema};

/// Bytes: a tar stream, a multiplexed stream, a component, log text.
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}
impl ToSchema for Binary {}

/// Newline-delimited JSON: one [`Event`] per line, the last `done` or
/// `error`.
pub struct ProgressStream;

impl PartialSchema for ProgressStream {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "newline-delimited JSON: one Event per line; the last is `done` (its `result` \
                 an Image for a pull, a PushResponse for a push) or `error`",
            ))
            .into()
    }
}
impl ToSchema for ProgressStream {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "berth control API",
        description = "berthd's control plane (`/v1`), on its unix socket (and TCP when \
                       configured, behind the auth providers). Errors are JSON `{code, message}`.",
        license(name = "Apache-2.0"),
    ),
    paths(
        info,
        openapi_json,
        healthz,
        metrics,
        images_list,
        images_remove,
        images_pull,
        images_push,
        images_tag,
        images_inspect,
        images_history,
        images_mount,
        images_unmount,
        images_prune,
        images_save,
        images_load,
        images_import,
        images_scan,
        scans_get,
        users_list,
        users_add,
        users_remove,
        registry_gc,
        containers_list,
        containers_run,
        containers_inspect,
        containers_remove,
        containers_logs,
        containers_wait,
        containers_kill,
        containers_stop,
        containers_start,
        containers_attach,
        containers_resize,
        containers_restart,
        containers_pause,
        containers_unpause,
        containers_stats,
        containers_exec,
        containers_update,
        containers_top,
        containers_get_archive,
        containers_put_archive,
        volumes_list,
        volumes_create,
        volumes_prune,
        volumes_inspect,
        volumes_remove,
        networks_list,
        networks_create,
        networks_inspect,
        networks_remove,
        plugins_list,
        plugins_install,
        plugins_push,
        plugins_inspect,
        plugins_remove,
        plugins_enable,
        plugins_disable,
        plugins_reload,
    ),
    components(schemas(ErrorBody, Event, Binary))
)]
struct ApiDoc;

/// The document, with the error answers every operation can give.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let error = |what: &str| {
        ResponseBuilder::new()
            .description(what)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorBody",
                    ))))
                    .build(),
            )
            .content(
                "text/plain",
                ContentBuilder::new().schema(Some(String::schema())).build(),
            )
            .build()
    };
    let add = |op: &mut Option<Operation>| {
        if let Some(op) = op {
            let r = &mut op.responses.responses;
            r.entry("4XX".into()).or_insert_with(|| {
                error("the request was refused: `{code, message}` (plain text when the body or query does not parse)").into()
            });
            r.entry("5XX".into())
                .or_insert_with(|| error("the daemon failed: `{code, message}`").into());
        }
    };
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ] {
            add(op);
        }
    }
    doc
}

/// The document as served and checked in: pretty JSON and a final newline.
pub fn document_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut s = document()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        s.push('\n');
        s
    })
}

/// `GET /v1/openapi.json`.
pub(crate) async fn serve() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
}

/// The routes the document lists, as `(method, path)`: for the test that
/// keeps it in step with the router.
pub fn operations() -> BTreeMap<String, Vec<String>> {
    let doc = ApiDoc::openapi();
    doc.paths
        .paths
        .iter()
        .map(|(path, item)| {
            let mut methods = Vec::new();
            for (m, op) in [
                ("GET", &item.get),
                ("PUT", &item.put),
                ("POST", &item.post),
                ("DELETE", &item.delete),
            ] {
                if op.is_some() {
                    methods.push(m.to_string());
                }
            }
            (path.clone(), methods)
        })
        .collect()
}

// ---- system ----

#[utoipa::path(get, path = "/v1/info", tag = "system",
    responses((status = 200, description = "the daemon", body = Info)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn info() {}

#[utoipa::path(get, path = "/v1/openapi.json", tag = "system",
    responses((status = 200, description = "this document", body = Object)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn openapi_json() {}

#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn healthz() {}

#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn metrics() {}

// ---- images ----

#[utoipa::path(get, path = "/v1/images", tag = "images",
    responses((status = 200, description = "the local images", body = Vec<Image>)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn images_list() {}

#[utoipa::path(delete, path = "/v1/images", tag = "images", params(RefQuery),
    responses((status = 200, description = "the image removed", body = Image)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn images_remove() {}

#[utoipa::path(post, path = "/v1/images/pull", tag = "images", request_body = PullRequest,
    responses((status = 200, description = "progress, then the image pulled", body = ProgressStream, content_type = "application/x-ndjson")))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn images_pull() {}

#[utoipa::path(post, path = "/v1/images/push", tag = "images", request_body = PushRequest,
    responses((status = 200, description = "progress, then what was pushed", body = ProgressStream, content_type = "application/x-ndjson")))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn images_push() {}

#[utoipa::path(post, path = "/v1/images/tag", tag = "images", request_body = TagRequest,
    responses((status = 201, description = "the new tag's image", body = Image)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn images_tag() {}

#[utoipa::path(get, path = "/v1/images/inspect", tag = "images", params(RefQuery),
    responses((status = 200, description = "the image and its config", body = ImageInspect)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn images_inspect() {}

#[utoipa::path(get, path = "/v1/images/history", tag = "images", params(RefQuery),
    responses((status = 200, description = "the config's history", body = Vec<HistoryEntry>)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn images_history() {}

#[utoipa::path(post, path = "/v1/images/mount", tag = "images", request_body = MountRequest,
    responses((status = 204, description = "mounted read-only")))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn images_mount() {}

#[utoipa::path(post, path = "/v1/images/unmount", tag = "images", request_body = UnmountRequest,
    responses((status = 204, description = "unmounted")))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn images_unmount() {}

#[utoipa::path(post, path = "/v1/images/prune", tag = "images",
    responses((status = 200, description = "what was removed", body = ImagePruneResponse)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn images_prune() {}

#[utoipa::path(get, path = "/v1/images/save", tag = "images", params(SaveQuery),
    responses((status = 200, description = "an OCI (or docker) image archive", body = Binary, content_type = "application/x-tar")))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn images_save() {}

#[utoipa::path(post, path = "/v1/images/load", tag = "images", params(LoadQuery),
    request_body(content = Binary, content_type = "application/x-tar", description = "an OCI or docker image archive"),
    responses((status = 200, description = "the images loaded", body = Vec<Image>)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn images_load() {}

#[utoipa::path(post, path = "/v1/images/import", tag = "images", params(ImportQuery),
    request_body(content = Binary, content_type = "application/x-tar", description = "a root file system tar"),
    responses((status = 200, description = "the image made (null if the archive held none)", body = Option<Image>)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn images_import() {}

#[utoipa::path(post, path = "/v1/images/scan", tag = "images", request_body = ScanRequest,
    responses((status = 200, description = "every scanner's report", body = ScanResponse)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn images_scan() {}

#[utoipa::path(get, path = "/v1/scans/{digest}", tag = "images",
    params(("digest" = String, Path, description = "a pushed manifest's digest")),
    responses((status = 200, description = "the scan-on-push report: a ScanResponse with `repository`, or `{repository, digest, error}`", body = Object)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn scans_get() {}

// ---- registry ----

#[utoipa::path(get, path = "/v1/registry/users", tag = "registry",
    responses((status = 200, description = "the registry's users", body = Vec<User>)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn users_list() {}

#[utoipa::path(post, path = "/v1/registry/users", tag = "registry", request_body = AddUser,
    responses((status = 201, description = "added")))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn users_add() {}

#[utoipa::path(delete, path = "/v1/registry/users/{name}", tag = "registry",
    params(("name" = String, Path)),
    responses((status = 204, description = "removed")))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn users_remove() {}

#[utoipa::path(post, path = "/v1/registry/gc", tag = "registry",
    responses((status = 200, description = "what was collected", body = GcReport)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn registry_gc() {}

// ---- containers ----

#[utoipa::path(get, path = "/v1/containers", tag = "containers", params(ListQuery),
    responses((status = 200, description = "the containers (running ones unless `all`)", body = Vec<ContainerSummary>)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_list() {}

#[utoipa::path(post, path = "/v1/containers", tag = "containers", request_body = RunRequest,
    responses((status = 200, description = "the container; unless detached or `no_start`, also how it ended and its output", body = RunResponse)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_run() {}

#[utoipa::path(get, path = "/v1/containers/{id}", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name")),
    responses((status = 200, description = "the container", body = ContainerInspect)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_inspect() {}

#[utoipa::path(delete, path = "/v1/containers/{id}", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name"), RemoveQuery),
    responses((status = 200, description = "removed", body = RemovedContainer)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_remove() {}

#[utoipa::path(get, path = "/v1/containers/{id}/logs", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name"), LogsQuery),
    responses((status = 200, description = "the log entries as text (followed with `follow`)", body = Binary, content_type = "text/plain; charset=utf-8")))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_logs() {}

#[utoipa::path(post, path = "/v1/containers/{id}/wait", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name")),
    responses((status = 200, description = "how it ended", body = StatusResponse)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_wait() {}

#[utoipa::path(post, path = "/v1/containers/{id}/kill", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name"), KillQuery),
    responses((status = 204, description = "signalled")))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_kill() {}

#[utoipa::path(post, path = "/v1/containers/{id}/stop", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name"), StopQuery),
    responses((status = 200, description = "how it ended", body = StatusResponse)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_stop() {}

#[utoipa::path(post, path = "/v1/containers/{id}/start", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name")),
    responses((status = 200, description = "its status", body = StatusResponse)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_start() {}

#[utoipa::path(post, path = "/v1/containers/{id}/attach", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name"), AttachQuery),
    request_body(content = Binary, content_type = "application/octet-stream", description = "the container's stdin, with `stdin=1`"),
    responses((status = 200, description = "output frames: 8-byte header (stream 1 stdout, 2 stderr, 3 exit; 3 zero bytes; big-endian u32 length), then the payload", body = Binary, content_type = "application/vnd.docker.multiplexed-stream")))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_attach() {}

#[utoipa::path(post, path = "/v1/containers/{id}/resize", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name"), ResizeQuery),
    responses((status = 204, description = "resized")))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_resize() {}

#[utoipa::path(post, path = "/v1/containers/{id}/restart", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name"), StopQuery),
    responses((status = 200, description = "its status", body = StatusResponse)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_restart() {}

#[utoipa::path(post, path = "/v1/containers/{id}/pause", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name")),
    responses((status = 204, description = "frozen")))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_pause() {}

#[utoipa::path(post, path = "/v1/containers/{id}/unpause", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name")),
    responses((status = 204, description = "thawed")))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_unpause() {}

#[utoipa::path(get, path = "/v1/containers/{id}/stats", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name")),
    responses((status = 200, description = "its cgroup counters", body = Stats)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_stats() {}

#[utoipa::path(post, path = "/v1/containers/{id}/exec", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name")),
    request_body(content = Binary, content_type = "application/octet-stream", description = "an ExecRequest as one JSON line, then (with `stdin`) the command's stdin"),
    responses((status = 200, description = "a detached exec's container id, or the command's output as multiplexed frames (see attach), the last an exit frame", content(
        (ExecDetached = "application/json"),
        (Binary = "application/vnd.docker.multiplexed-stream"),
    ))))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_exec() {}

#[utoipa::path(post, path = "/v1/containers/{id}/update", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name")),
    request_body = UpdateRequest,
    responses((status = 200, description = "the settings now in force", body = UpdateResponse)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_update() {}

#[utoipa::path(get, path = "/v1/containers/{id}/top", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name")),
    responses((status = 200, description = "its processes, as `ps -ef`", body = Top)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_top() {}

#[utoipa::path(get, path = "/v1/containers/{id}/archive", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name"), ArchiveQuery),
    responses((status = 200, description = "a tar of the path, or with `stat` whether it exists", content(
        (PathStat = "application/json"),
        (Binary = "application/x-tar"),
    ))))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_get_archive() {}

#[utoipa::path(put, path = "/v1/containers/{id}/archive", tag = "containers",
    params(("id" = String, Path, description = "a container's id, id prefix or name"), ArchiveQuery),
    request_body(content = Binary, content_type = "application/x-tar", description = "a tar to extract at `path`"),
    responses((status = 200, description = "what was extracted", body = ArchiveExtracted)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn containers_put_archive() {}

// ---- volumes ----

#[utoipa::path(get, path = "/v1/volumes", tag = "volumes",
    responses((status = 200, description = "the volumes", body = Vec<Volume>)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn volumes_list() {}

#[utoipa::path(post, path = "/v1/volumes", tag = "volumes", request_body = CreateVolume,
    responses((status = 201, description = "the volume (an existing one of that name as it is)", body = Volume)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn volumes_create() {}

#[utoipa::path(post, path = "/v1/volumes/prune", tag = "volumes",
    responses((status = 200, description = "the volumes no container uses, removed", body = VolumePruneResponse)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn volumes_prune() {}

#[utoipa::path(get, path = "/v1/volumes/{name}", tag = "volumes",
    params(("name" = String, Path)),
    responses((status = 200, description = "the volume and who uses it", body = VolumeInspect)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn volumes_inspect() {}

#[utoipa::path(delete, path = "/v1/volumes/{name}", tag = "volumes",
    params(("name" = String, Path)),
    responses((status = 204, description = "removed")))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn volumes_remove() {}

// ---- networks ----

#[utoipa::path(get, path = "/v1/networks", tag = "networks",
    responses((status = 200, description = "the networks", body = Vec<Network>)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn networks_list() {}

#[utoipa::path(post, path = "/v1/networks", tag = "networks", request_body = CreateNetwork,
    responses((status = 201, description = "the network", body = Network)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn networks_create() {}

#[utoipa::path(get, path = "/v1/networks/{name}", tag = "networks",
    params(("name" = String, Path)),
    responses((status = 200, description = "the network and its endpoints", body = NetworkInspect)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn networks_inspect() {}

#[utoipa::path(delete, path = "/v1/networks/{name}", tag = "networks",
    params(("name" = String, Path)),
    responses((status = 204, description = "removed")))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn networks_remove() {}

// ---- plugins ----

#[utoipa::path(get, path = "/v1/plugins", tag = "plugins",
    responses((status = 200, description = "the loaded plugins", body = Vec<PluginInfo>)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn plugins_list() {}

#[utoipa::path(post, path = "/v1/plugins", tag = "plugins",
    request_body(content = PluginSpec, description = "a plugin spec, as `[[plugin]]` in berth.toml"),
    responses((status = 201, description = "the plugin loaded", body = PluginInfo)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn plugins_install() {}

#[utoipa::path(post, path = "/v1/plugins/push", tag = "plugins", params(PluginPushQuery),
    request_body(content = Binary, content_type = "application/octet-stream", description = "a Wasm component"),
    responses((status = 200, description = "where it went", body = PluginPushResponse)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn plugins_push() {}

#[utoipa::path(get, path = "/v1/plugins/{name}", tag = "plugins",
    params(("name" = String, Path)),
    responses((status = 200, description = "the plugin", body = PluginInfo)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn plugins_inspect() {}

#[utoipa::path(delete, path = "/v1/plugins/{name}", tag = "plugins",
    params(("name" = String, Path)),
    responses((status = 200, description = "removed", body = PluginRemoved)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn plugins_remove() {}

#[utoipa::path(post, path = "/v1/plugins/{name}/enable", tag = "plugins",
    params(("name" = String, Path)),
    responses((status = 200, description = "the plugin", body = PluginInfo)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn plugins_enable() {}

#[utoipa::path(post, path = "/v1/plugins/{name}/disable", tag = "plugins",
    params(("name" = String, Path)),
    responses((status = 200, description = "the plugin", body = PluginInfo)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn plugins_disable() {}

#[utoipa::path(post, path = "/v1/plugins/{name}/reload", tag = "plugins",
    params(("name" = String, Path)),
    responses((status = 200, description = "the plugin", body = PluginInfo)))]
#[allow(dead_code)] // reason: a documentation stub, never called
fn plugins_reload() {}
