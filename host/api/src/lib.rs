//! berthd's HTTP surfaces as axum routers, built from shared state and
//! holding no logic of their own: handlers parse a request, call the
//! registry or control services, and render the result.
//!
//! - [`registry::app`]: the OCI Distribution endpoint (`/v2/...`) and the
//!   token endpoint (`/token`), behind the auth service.
//!
//! - [`control::app`]: the control plane (`/v1/...`) on the unix socket.
//!
//! Tests drive these routers in-process with `tower::ServiceExt::oneshot`.

pub mod control;
pub mod registry;
