//! The JWK Set endpoint ([RFC 7517 §5]), advertised as `jwks_uri` ([OIDC Discovery 1.0 §3]).
//!
//! Serves the public halves of every key that can still verify a live token (next, active and
//! retired; see [`crate::crypto::keyring`]), pre-serialized by the [`Keyring`] at each change, so a
//! request costs a lock-free-in-practice `Arc` clone and no allocation of the body.
//!
//! * `Content-Type: application/json`: RFC 7517 §8.5 registers `application/jwk-set+json`, but
//!   relying-party libraries expect plain JSON from `jwks_uri`.
//! * `Cache-Control: public, max-age=300`: short enough that a rotation propagates within minutes
//!   even to caches that never revalidate, while resource servers refetch at once on an unknown
//!   `kid` ([OIDC Core §10.1.1]). New keys are published as `next` before they sign.
//! * `ETag` with `If-None-Match` → `304 Not Modified` ([RFC 9110 §13.1.2], weak comparison), so
//!   revalidation costs no body.
//! * `Access-Control-Allow-Origin: *`: the document is public and browser clients verify tokens too.
//!
//! [RFC 7517 §5]: https://www.rfc-editor.org/rfc/rfc7517#section-5
//! [OIDC Discovery 1.0 §3]: https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderMetadata
//! [OIDC Core §10.1.1]: https://openid.net/specs/openid-connect-core-1_0.html#RotateSigKeys
//! [RFC 9110 §13.1.2]: https://www.rfc-editor.org/rfc/rfc9110#section-13.1.2
//! [`Keyring`]: crate::crypto::keyring::Keyring

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;

/// `Cache-Control` of the JWK Set: public, five minutes.
pub const CACHE_CONTROL: &str = "public, max-age=300";

/// `GET /jwks.json`: the public signing keys, with `ETag` and `304 Not Modified` on a match.
pub async fn jwks(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let doc = state.keyring.jwks_document();
    let cache_headers = [
        (header::ETAG, doc.etag.clone()),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        ),
        (
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        ),
    ];
    if none_match(&headers, doc.etag.as_bytes()) {
        // RFC 9110 §15.4.5: a 304 repeats ETag and Cache-Control.
        return (StatusCode::NOT_MODIFIED, cache_headers).into_response();
    }
    (
        cache_headers,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        doc.json,
    )
        .into_response()
}

/// Whether an `If-None-Match` header matches `etag` (RFC 9110 §13.1.2): `*`, or any listed entity tag
/// equal to it under weak comparison (a `W/` prefix is ignored).
fn none_match(headers: &HeaderMap, etag: &[u8]) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(|tag| tag.trim_ascii())
        .any(|tag| tag == b"*" || tag.strip_prefix(b"W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn with(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::IF_NONE_MATCH, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn if_none_match() {
        let etag = b"\"abc\"";
        assert!(!none_match(&HeaderMap::new(), etag));
        assert!(none_match(&with(&["\"abc\""]), etag));
        assert!(none_match(&with(&["W/\"abc\""]), etag));
        assert!(none_match(&with(&["\"x\", \"abc\""]), etag));
        assert!(none_match(&with(&["\"x\"", "\"abc\""]), etag));
        assert!(none_match(&with(&["*"]), etag));
        assert!(!none_match(&with(&["\"abcd\""]), etag));
        assert!(!none_match(&with(&["abc"]), etag));
    }
}
