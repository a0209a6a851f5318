//! The JSON API's shared plumbing, used by every feature's `/api/v1` handlers: the 405 fallback as
//! problem+json, a JSON body extractor whose every rejection is a problem with its own type, a query
//! extractor likewise, and keyset pagination with opaque cursors (`Page`, `Listing`, the `Link`
//! header).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// Items per page when the request names no `limit`.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest `limit` a list accepts.
pub const MAX_PAGE_SIZE: i64 = 200;
/// Longest cursor accepted (ours are far shorter).
const MAX_CURSOR_LEN: usize = 512;

/// 405 as problem+json (axum's own 405 has no body), the method-not-allowed fallback of every route
/// under /api (set here and, for the other features' API routes, in `app::router`). axum's method
/// router adds the `Allow` header listing the route's methods that RFC 9110 §15.5.6 requires, and
/// the error rendering middleware keeps it.
pub async fn method_not_allowed() -> AppError {
    AppError::problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this method is not allowed on this resource",
    )
}

/// A JSON request body (RFC 8259) deserialized into `T`, where every way to get it wrong is a
/// problem with a stable type: 400 `missing-body`, 415 `unsupported-media-type` (the body must be
/// `application/json`), 413 `payload-too-large`, 400 `malformed-json` (not JSON at all) and 400
/// `invalid-body` (wrong types, missing or unknown fields: bodies are `deny_unknown_fields`).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|mime| {
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload-too-large",
                    format!(
                        "the request body is larger than {} bytes",
                        crate::app::MAX_BODY_BYTES
                    ),
                )
            } else {
                AppError::problem(
                    StatusCode::BAD_REQUEST,
                    "unreadable-body",
                    "the request body could not be read",
                )
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(AppError::problem(
                StatusCode::BAD_REQUEST,
                "missing-body",
                "a JSON request body is required",
            ));
        }
        if !json_type {
            return Err(AppError::problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "the request body must be application/json",
            ));
        }
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            if e.is_data() {
                AppError::problem(StatusCode::BAD_REQUEST, "invalid-body", e.to_string())
            } else {
                AppError::problem(
                    StatusCode::BAD_REQUEST,
                    "malformed-json",
                    format!("the request body is not valid JSON: {e}"),
                )
            }
        })
    }
}

/// Query parameters deserialized into `T`; a bad one is 400 `invalid-query`. Unknown parameters are
/// ignored (caches and proxies add some).
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e| invalid_query(e.body_text()))
    }
}

/// 400 `invalid-query` about one parameter.
pub fn invalid_query(detail: impl Into<String>) -> AppError {
    AppError::problem(StatusCode::BAD_REQUEST, "invalid-query", detail)
}

/// Where a page starts and how long it is, from `limit` and `cursor`.
#[derive(Debug, Clone)]
pub struct Page {
    /// Items per page, 1 to [`MAX_PAGE_SIZE`].
    pub limit: i64,
    /// The `(time, id)` of the last item of the previous page.
    pub after: Option<(i64, String)>,
}

impl Page {
    /// Checks `limit` (1–200, default 50) and decodes `cursor` (400 `invalid-cursor`).
    pub fn new(limit: Option<i64>, cursor: Option<&str>) -> Result<Page, AppError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(invalid_query(format!(
                "limit must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        let after = cursor.map(decode_cursor).transpose()?;
        Ok(Page { limit, after })
    }

    /// The position for a store query.
    pub fn after(&self) -> Option<(i64, &str)> {
        self.after.as_ref().map(|(t, id)| (*t, id.as_str()))
    }

    /// How many rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// Cuts `rows` (fetched with [`Page::fetch`]) to the page and builds the list response, with a
    /// `next_cursor` at the last item when more follow.
    pub fn finish<R, T: Serialize>(
        &self,
        mut rows: Vec<R>,
        key: impl Fn(&R) -> (i64, String),
        item: impl Fn(R) -> T,
    ) -> Listing<T> {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(usize::try_from(self.limit).unwrap_or(0));
        let next_cursor = if more {
            rows.last().map(|r| encode_cursor(key(r)))
        } else {
            None
        };
        Listing {
            items: rows.into_iter().map(item).collect(),
            next_cursor,
        }
    }
}

/// A page of a list. It answers as a bare JSON array of the items (docs/api.md shows lists as arrays);
/// when more follow, [`link_next_page`] adds `Link: <same path and query, with cursor=…>; rel="next"`
/// (RFC 8288), the way GitHub's API paginates.
#[derive(Debug)]
pub struct Listing<T> {
    /// This page.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// The cursor of the next page, handed from a [`Listing`] to [`link_next_page`].
#[derive(Debug, Clone)]
struct NextCursor(String);

impl<T: Serialize> IntoResponse for Listing<T> {
    fn into_response(self) -> Response {
        let mut response = axum::Json(self.items).into_response();
        if let Some(cursor) = self.next_cursor {
            response.extensions_mut().insert(NextCursor(cursor));
        }
        response
    }
}

/// Middleware of the API router: turns a list's next cursor into an RFC 8288 `Link` header that
/// repeats the request's path and query (filters, `limit`) with the new `cursor`.
pub async fn link_next_page(request: Request, next: Next) -> Response {
    let uri = request.uri().clone();
    let mut response = next.run(request).await;
    let Some(NextCursor(cursor)) = response.extensions_mut().remove::<NextCursor>() else {
        return response;
    };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if name != "cursor" {
            query.append_pair(&name, &value);
        }
    }
    query.append_pair("cursor", &cursor);
    let link = format!("<{}?{}>; rel=\"next\"", uri.path(), query.finish());
    if let Ok(value) = HeaderValue::from_str(&link) {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

/// Cursors are opaque to clients: base64url of `time:id`.
fn encode_cursor((time, id): (i64, String)) -> String {
    URL_SAFE_NO_PAD.encode(format!("{time}:{id}"))
}

fn decode_cursor(cursor: &str) -> Result<(i64, String), AppError> {
    let bad = || {
        AppError::problem(
            StatusCode::BAD_REQUEST,
            "invalid-cursor",
            "the cursor is not one this API handed out",
        )
    };
    if cursor.is_empty() || cursor.len() > MAX_CURSOR_LEN {
        return Err(bad());
    }
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (time, id) = raw.split_once(':').ok_or_else(bad)?;
    let time = time.parse::<i64>().map_err(|_| bad())?;
    if id.is_empty() || id.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok((time, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = encode_cursor((1_700_000_000, "0192f0e2-abcd".to_owned()));
        assert_eq!(
            decode_cursor(&c).ok(),
            Some((1_700_000_000, "0192f0e2-abcd".to_owned()))
        );
        for bad in ["", "!!!", "bm9jb2xvbg", "YWJjOmRlZg"] {
            assert!(decode_cursor(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(Page::new(None, None).map(|p| p.limit).ok(), Some(50));
        assert!(Page::new(Some(0), None).is_err());
        assert!(Page::new(Some(201), None).is_err());
        assert!(Page::new(Some(200), None).is_ok());
    }
}
