//! The one way Latchkey talks to upstream providers (RFC 9700 §4.x server-side request forgery
//! guidance; OWASP SSRF prevention): every request of discovery, the JWKS, the token endpoint and
//! userinfo goes through [`Upstream`], which
//! - accepts `https` only, and plain `http` only to a loopback host when
//!   `LATCHKEY_ALLOW_INSECURE_UPSTREAMS=true` (tests, development);
//! - refuses private, link-local, shared, documentation, multicast and unspecified addresses, for
//!   an address in the URL and for every address a name resolves to (checked in the resolver the
//!   connection uses, so a name cannot resolve to a public address for the check and to a private
//!   one for the connection); loopback only under the same setting;
//! - follows no redirect, uses no proxy from the environment, and bounds time and response size.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::CoreProviderMetadata;
use openidconnect::{HttpRequest, HttpResponse, IssuerUrl};
use url::Url;

use crate::config::Config;

/// Longest wait for a connection to an upstream.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time one request to an upstream may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read from an upstream (a discovery document or JWKS is a few KiB).
const MAX_RESPONSE_BYTES: usize = 512 * 1024;

/// Why an upstream could not be used; the message is safe to show to the admin who configured it.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The address is not allowed (scheme, private address, redirect).
    #[error("{0}")]
    Refused(String),
    /// The upstream did not answer (connection, timeout, size).
    #[error("{0}")]
    Unreachable(String),
    /// The upstream answered something unusable (status, JSON, metadata).
    #[error("{0}")]
    Invalid(String),
}

/// The guarded HTTP client to upstream providers; cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    http: reqwest::Client,
    allow_loopback: bool,
}

impl Upstream {
    /// The client for `config` (`LATCHKEY_ALLOW_INSECURE_UPSTREAMS`).
    pub fn new(config: &Config) -> anyhow::Result<Upstream> {
        let allow_loopback = config.allow_insecure_upstreams;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver { allow_loopback }))
            .build()?;
        Ok(Upstream {
            http,
            allow_loopback,
        })
    }

    /// Checks `raw` as an upstream address (scheme, host): the URL when allowed.
    pub fn check_url(&self, raw: &str) -> Result<Url, UpstreamError> {
        let url = Url::parse(raw)
            .map_err(|_| UpstreamError::Refused(format!("{raw:?} is not an absolute URL")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UpstreamError::Refused(
                "an upstream URL carries no user name or password".into(),
            ));
        }
        let loopback_host = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => {
                check_ip(IpAddr::V4(ip), self.allow_loopback)?;
                ip.is_loopback()
            }
            Some(url::Host::Ipv6(ip)) => {
                check_ip(IpAddr::V6(ip), self.allow_loopback)?;
                ip.is_loopback()
            }
            None => return Err(UpstreamError::Refused(format!("{raw:?} has no host"))),
        };
        match url.scheme() {
            "https" => {}
            "http" if self.allow_loopback && loopback_host => {}
            "http" if loopback_host => {
                return Err(UpstreamError::Refused(
                    "an upstream on this machine needs LATCHKEY_ALLOW_INSECURE_UPSTREAMS=true"
                        .into(),
                ));
            }
            _ => {
                return Err(UpstreamError::Refused(format!(
                    "{raw:?} is not an https URL"
                )));
            }
        }
        Ok(url)
    }

    /// One request through the guard, as the `openidconnect` crate's HTTP client: the URL checked,
    /// no redirect followed (a 3xx is an error), the body bounded.
    pub async fn call(&self, request: HttpRequest) -> Result<HttpResponse, UpstreamError> {
        {
            self.check_url(&request.uri().to_string())?;
            let request = reqwest::Request::try_from(request)
                .map_err(|e| UpstreamError::Invalid(format!("request: {e}")))?;
            let url = request.url().clone();
            let mut response = self.http.execute(request).await.map_err(|e| {
                UpstreamError::Unreachable(format!("{}: {}", without_query(&url), error_chain(&e)))
            })?;
            if response.status().is_redirection() {
                return Err(UpstreamError::Refused(format!(
                    "{} answered a redirect, which is not followed",
                    without_query(&url)
                )));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| {
                UpstreamError::Unreachable(format!("{}: {}", without_query(&url), error_chain(&e)))
            })? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(UpstreamError::Invalid(format!(
                        "{} answered more than {MAX_RESPONSE_BYTES} bytes",
                        without_query(&url)
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            let mut out = axum::http::Response::builder().status(response.status());
            if let Some(headers) = out.headers_mut() {
                *headers = response.headers().clone();
            }
            out.body(body)
                .map_err(|e| UpstreamError::Invalid(format!("response: {e}")))
        }
    }

    /// The upstream's OpenID Connect Discovery metadata and its JWKS (both fetched through the
    /// guard; the `openidconnect` crate checks that the document's `issuer` is `issuer` exactly).
    pub async fn discover(&self, issuer: &str) -> Result<CoreProviderMetadata, UpstreamError> {
        self.check_url(issuer)?;
        let issuer_url = IssuerUrl::new(issuer.to_owned())
            .map_err(|_| UpstreamError::Refused(format!("{issuer:?} is not a URL")))?;
        CoreProviderMetadata::discover_async(issuer_url, self)
            .await
            .map_err(|e| match e {
                openidconnect::DiscoveryError::Request(inner) => inner,
                other => UpstreamError::Invalid(format!(
                    "the discovery document of {issuer} is not usable: {}",
                    error_chain(&other)
                )),
            })
    }
}

/// [`Upstream`] as the `openidconnect` crate's HTTP client. A closure over [`Upstream::call`] would
/// do, but its future is `Send` only for one lifetime, which an axum handler awaiting discovery
/// cannot satisfy; the boxed future here is `Send` for every lifetime.
impl<'c> openidconnect::AsyncHttpClient<'c> for Upstream {
    type Error = UpstreamError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<HttpResponse, UpstreamError>> + Send + 'c>,
    >;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(Upstream::call(self, request))
    }
}

/// The URL without its query (which may carry a code or state) for messages and logs.
fn without_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

/// An error with its sources, on one line (messages of upstream failures).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Whether `ip` may be connected to: public addresses, and loopback when `allow_loopback`.
pub fn check_ip(ip: IpAddr, allow_loopback: bool) -> Result<(), UpstreamError> {
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    if ip.is_loopback() {
        return if allow_loopback {
            Ok(())
        } else {
            Err(UpstreamError::Refused(format!(
                "{ip} is a loopback address (allowed only with LATCHKEY_ALLOW_INSECURE_UPSTREAMS=true)"
            )))
        };
    }
    let private = match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // RFC 6598 shared address space
                || (a == 192 && b == 0 && v4.octets()[2] == 0) // RFC 6890 protocol assignments
                || (a == 198 && (b == 18 || b == 19)) // RFC 2544 benchmarking
                || a >= 240 // reserved
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local, RFC 4193
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || first == 0x2001 && v6.segments()[1] == 0xdb8 // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b // NAT64 (embeds IPv4)
        }
    };
    if private {
        return Err(UpstreamError::Refused(format!(
            "{ip} is a private or reserved address"
        )));
    }
    Ok(())
}

/// Resolves names with the system resolver and keeps only addresses [`check_ip`] allows; a name with
/// none left fails, so the connection cannot reach a private address through DNS.
struct GuardedResolver {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| check_ip(a.ip(), allow_loopback).is_ok())
                .collect();
            if allowed.is_empty() {
                let reason = match found.first() {
                    Some(a) => match check_ip(a.ip(), allow_loopback) {
                        Err(e) => format!("{host} resolves to a refused address: {e}"),
                        Ok(()) => format!("{host} has no address"),
                    },
                    None => format!("{host} has no address"),
                };
                return Err(reason.into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Compiles only while discovery can be awaited in an axum handler (its future is `Send`).
    #[allow(dead_code)]
    fn discovery_future_is_send(u: &Upstream) {
        fn is_send<T: Send>(_: T) {}
        is_send(u.discover("https://issuer.example"));
    }

    #[test]
    fn private_addresses_are_refused() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::",
        ] {
            assert!(check_ip(ip.parse().unwrap(), true).is_err(), "{ip}");
        }
        assert!(check_ip("127.0.0.1".parse().unwrap(), false).is_err());
        assert!(check_ip("127.0.0.1".parse().unwrap(), true).is_ok());
        assert!(check_ip("::1".parse().unwrap(), true).is_ok());
        assert!(check_ip("93.184.216.34".parse().unwrap(), false).is_ok());
        assert!(check_ip("2606:4700::1111".parse().unwrap(), false).is_ok());
    }
}
