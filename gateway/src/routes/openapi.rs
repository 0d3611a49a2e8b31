//! `GET /openapi.json`: the OpenAPI 3.1 document of every route, checked in as
//! `gateway/openapi.json` and compiled into the binary. Unauthenticated, like `/healthz`.
//! `tests/it/openapi.rs` keeps it honest: every route the router registers is documented, every
//! documented route is served, and this route serves exactly the checked-in file.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The checked-in document.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT).into_response()
}
