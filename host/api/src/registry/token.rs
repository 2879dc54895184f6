//! Docker's token endpoint: `GET /token?service=&scope=` with basic or no
//! credentials, and the OAuth2 `POST /token` form that containerd tries first.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_auth::{Denial, TokenForm};

use super::{ApiError, Query, Shared};

pub(crate) async fn token(State(app): Shared, req: Request) -> Response {
    let method = req.method().clone();
    let client = super::client_addr(&req);
    let query = Query::parse(req.uri().query());
    let authz = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let form = if method == Method::POST {
        match axum::body::to_bytes(req.into_body(), 64 * 1024).await {
            Ok(b) => Some(serde_urlencoded_form(&b)),
            Err(e) => {
                return ApiError::Denied(Denial::BadRequest {
                    message: format!("reading the token request failed: {e}"),
                })
                .into_response();
            }
        }
    } else if method == Method::GET {
        None
    } else {
        return ApiError::unsupported(&method).into_response();
    };
    let service = query.get("service").map(str::to_string);
    let scopes = query.all("scope");
    let auth = app.auth.clone();
    let issued = super::blocking(move || {
        auth.issue_token(client, authz.as_deref(), service.as_deref(), &scopes, form)
            .map_err(ApiError::Denied)
    })
    .await;
    match issued {
        Ok(t) => (StatusCode::OK, axum::Json(t)).into_response(),
        Err(e) => e.into_response(),
    }
}

fn serde_urlencoded_form(body: &[u8]) -> TokenForm {
    let mut f = TokenForm::default();
    for (k, v) in form_urlencoded::parse(body) {
        let v = Some(v.into_owned());
        match k.as_ref() {
            "grant_type" => f.grant_type = v,
            "username" => f.username = v,
            "password" => f.password = v,
            "refresh_token" => f.refresh_token = v,
            "scope" => f.scope = v,
            "service" => f.service = v,
            "client_id" => f.client_id = v,
            "access_type" => f.access_type = v,
            _ => {}
        }
    }
    f
}
