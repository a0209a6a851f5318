//! Who is on the other end of a request, as far as we can tell: the peer address and the browser's
//! `User-Agent`. Recorded in the audit log and the login history; the address also keys the
//! per-address limits of sign-up and password-reset requests, and nothing else is decided by it.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

/// Longest `User-Agent` we keep.
pub const MAX_USER_AGENT_LEN: usize = 512;

/// The peer address and user agent of a request.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// Peer IP address (no proxy headers are trusted).
    pub ip: Option<String>,
    /// `User-Agent`, cut to [`MAX_USER_AGENT_LEN`] characters.
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT_LEN).collect());
        Ok(RequestMeta { ip, user_agent })
    }
}
