//! Who is on the other end of a request, as far as we can tell: the client address and the browser's
//! `User-Agent`. Recorded in the audit log and the login history; the address also keys the
//! per-address limits (sign-up, password-reset requests, failed sign-ins and client
//! authentications). The address is the TCP peer, or, behind a trusted reverse proxy
//! (`LATCHKEY_TRUSTED_PROXIES`), the client the proxy headers name ([`client_addr`]).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::client_addr::{self, client_addr};
use crate::app::AppState;

/// Longest `User-Agent` we keep.
pub const MAX_USER_AGENT_LEN: usize = 512;

/// The client address and user agent of a request.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// Client IP address: the peer, or the client named by a trusted proxy's headers.
    pub ip: Option<String>,
    /// `User-Agent`, cut to [`MAX_USER_AGENT_LEN`] characters.
    pub user_agent: Option<String>,
}

impl RequestMeta {
    /// The key per-address limits count under ([`client_addr::limit_key`]: IPv6 per /64); `None`
    /// when the address is unknown.
    pub fn limit_key(&self) -> Option<String> {
        self.ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .map(client_addr::limit_key)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta
where
    AppState: FromRef<S>,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let config = AppState::from_ref(state).config;
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| {
                client_addr(addr.ip(), &parts.headers, &config.trusted_proxies).to_string()
            });
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT_LEN).collect());
        Ok(RequestMeta { ip, user_agent })
    }
}
