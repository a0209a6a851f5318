//! Security headers on every response, and `Cache-Control: no-store` for protocol responses.

use axum::http::{HeaderName, HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// Content Security Policy for our pages: nothing but our own stylesheet and images, no framing
/// (clickjacking defence for the login and consent pages), no `<base>` tricks. `form-action` is left
/// out on purpose: browsers apply it to the redirect that follows a form post, which must reach the
/// client's redirect URI.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

/// Content Security Policy of the pages that run a passkey ceremony (WebAuthn has no HTML form, so
/// they load `static/passkeys.js`): [`CONTENT_SECURITY_POLICY`] plus `script-src 'self'` — our own
/// file only, no inline script, no `eval`. Set by `mfa::passkeys::allow_script` on those pages.
pub const SCRIPT_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

/// The layers that add security headers unless a handler set its own.
pub fn security_layers() -> [SetResponseHeaderLayer<HeaderValue>; 4] {
    let layer = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    [
        layer(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        layer(header::X_FRAME_OPTIONS, "DENY"),
        layer(header::REFERRER_POLICY, "no-referrer"),
    ]
}

/// `Strict-Transport-Security` for an `https` issuer (RFC 6797 §6.1): browsers use only https for a
/// year, on this host and its subdomains, so a network attacker cannot strip TLS from a later visit.
/// Never sent for an `http` issuer (development), where it would be ignored at best.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000; includeSubDomains";

/// The layer adding [`STRICT_TRANSPORT_SECURITY`] to every response, when the issuer is `https`.
pub fn hsts_layer(issuer_is_https: bool) -> Option<SetResponseHeaderLayer<HeaderValue>> {
    issuer_is_https.then(|| {
        SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        )
    })
}

/// Marks a response uncacheable: `Cache-Control: no-store`, and `Pragma: no-cache` for HTTP/1.0
/// caches (RFC 6749 §5.1). Protocol responses carry tokens; pages carry CSRF tokens and personal data.
pub fn forbid_caching(response: &mut axum::response::Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}
