//! Static files, embedded in the binary so that `latchkey` runs from any directory.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;

/// Static files are versioned by URL (`?v=`), so browsers may keep them for a year.
const STATIC_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// The embedded files: name, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/style.css"),
    ),
    (
        "passkeys.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/passkeys.js"),
    ),
    (
        "logo.svg",
        "image/svg+xml",
        include_bytes!("../../static/logo.svg"),
    ),
];

/// `GET /static/{file}`
pub async fn serve(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, STATIC_CACHE_CONTROL),
            ],
            *bytes,
        )
            .into_response(),
        None => AppError::not_found("no such file").into_response(),
    }
}
