//! Rendering askama templates into responses.

use std::cell::Cell;
use std::future::Future;

use askama::Template;
use axum::response::{Html, IntoResponse, Response};

use crate::error::AppError;

/// Version string appended to static URLs so they can be cached for a year (`?v=`).
pub const ASSET_VERSION: &str = env!("CARGO_PKG_VERSION");

tokio::task_local! {
    /// Whether the handler running on this task found a signed-in user (the page header then links
    /// to the account pages).
    static SIGNED_IN: Cell<bool>;
}

/// Runs a page handler with its page context (see [`signed_in`]); the page router's cookie layer
/// wraps every page in it.
pub async fn scope<F: Future>(handler: F) -> F::Output {
    SIGNED_IN.scope(Cell::new(false), handler).await
}

/// Notes that this request's browser is signed in (called by the session code when it finds or
/// makes a signed-in user).
pub fn note_signed_in() {
    let _ = SIGNED_IN.try_with(|cell| cell.set(true));
}

/// True when this request's handler found a signed-in user: the base layout then shows a link to
/// the account pages in its header, so every page of a signed-in person leads there.
pub fn signed_in() -> bool {
    SIGNED_IN.try_with(Cell::get).unwrap_or(false)
}

/// Renders a template as an HTML response; a template error is an internal error.
///
/// Pages carry CSRF tokens and personal data, so they are never stored by caches (`no-store`).
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = Html(html).into_response();
            super::headers::forbid_caching(&mut response);
            response
        }
        Err(err) => AppError::Internal(err.into()).into_response(),
    }
}

/// True when a form's "confirm password" field was sent and differs from the password. Pages always
/// send it (it catches a typo in a field nobody can see); a client posting without it is not refused.
pub fn mismatched(password: &str, confirmation: Option<&str>) -> bool {
    confirmation.is_some_and(|c| c != password)
}

/// `message` as a sentence for a page: first letter in upper case and a final period ("password must
/// be …" → "Password must be …."). Errors of shared checks are lower-case phrases, as API details.
pub fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::sentence;

    #[test]
    fn messages_read_as_sentences() {
        assert_eq!(
            sentence("the two passwords do not match"),
            "The two passwords do not match."
        );
        assert_eq!(sentence("done."), "Done.");
        assert_eq!(sentence("élan"), "Élan.");
        assert_eq!(sentence(""), ".");
    }
}
