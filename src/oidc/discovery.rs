//! Provider metadata: [OpenID Connect Discovery 1.0 §3–4] at `/.well-known/openid-configuration`
//! and [RFC 8414 §3] authorization server metadata at `/.well-known/oauth-authorization-server`.
//!
//! Both paths serve the same document: RFC 8414 §2 defines its members as a superset-compatible
//! registry with the OIDC ones, and §3 lets a server publish OIDC members there. Every endpoint is
//! the issuer followed by a path from [`crate::routes`], so the document cannot drift from the router;
//! clients find endpoints only through it (docs/endpoints.md).
//!
//! The document depends only on the configuration, so it is serialized once at startup into
//! [`Discovery`] and each request clones a reference-counted buffer. It is public and changes only on
//! a restart with another configuration, hence `Cache-Control: public, max-age=3600`. CORS is open
//! (`Access-Control-Allow-Origin: *`) because browser-based clients read it cross-origin and it
//! holds nothing secret.
//!
//! [OpenID Connect Discovery 1.0 §3–4]: https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderMetadata
//! [RFC 8414 §3]: https://www.rfc-editor.org/rfc/rfc8414#section-3

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::config::{Config, SigningAlg};
use crate::routes;

/// `Cache-Control` of the metadata documents: public, one hour.
pub const CACHE_CONTROL: &str = "public, max-age=3600";

/// Scopes clients may request (OIDC Core §5.4 plus offline access, the management API scopes and
/// the your-account API scopes).
pub const SCOPES_SUPPORTED: [&str; 8] = [
    "openid",
    "profile",
    "email",
    "offline_access",
    "org:read",
    "org:write",
    "account:read",
    "account:write",
];

/// Claims that may appear in ID tokens and userinfo responses.
pub const CLAIMS_SUPPORTED: [&str; 18] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "azp",
    "at_hash",
    "sid",
    "amr",
    "acr",
    "name",
    "email",
    "email_verified",
    "org_id",
    "org_slug",
    "roles",
];

/// The metadata document for `config`, with absolute endpoint URLs under `config.issuer`.
pub fn document(config: &Config) -> Value {
    let issuer = config.issuer.as_str();
    let url = |path: &str| format!("{issuer}{path}");
    let client_auth = ["client_secret_basic", "client_secret_post"];
    let algs = [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA].map(|a| a.as_str());
    let mut doc = json!({
        "issuer": issuer,
        "authorization_endpoint": url(routes::AUTHORIZE),
        "token_endpoint": url(routes::TOKEN),
        "userinfo_endpoint": url(routes::USERINFO),
        "jwks_uri": url(routes::JWKS),
        "revocation_endpoint": url(routes::REVOCATION),
        "introspection_endpoint": url(routes::INTROSPECTION),
        "end_session_endpoint": url(routes::END_SESSION),
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            crate::clients::DEVICE_CODE_GRANT,
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": client_auth,
        "introspection_endpoint_auth_methods_supported": client_auth,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": CLAIMS_SUPPORTED,
        // OIDC Discovery §3: the classes `acr_values` may ask for (`mfa`: two factors).
        "acr_values_supported": crate::mfa::ACR_VALUES,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "frontchannel_logout_supported": false,
        // OpenID Connect Back-Channel Logout 1.0 §2.1: logout tokens carry `sid`.
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        // RFC 8628 §4.
        "device_authorization_endpoint": url(routes::DEVICE_AUTHORIZATION),
        // RFC 9126 §5: per client (`client create --require-par`), not for every client.
        "pushed_authorization_request_endpoint": url(routes::PUSHED_AUTHORIZATION_REQUEST),
        "require_pushed_authorization_requests": false,
        // RFC 9449 §5.1.
        "dpop_signing_alg_values_supported": crate::dpop::SIGNING_ALGS,
    });
    // RFC 7591 §3 / RFC 8414 §2: the registration endpoint exists only when it is switched on.
    if config.dynamic_registration != crate::config::DynamicRegistration::Off
        && let Some(map) = doc.as_object_mut()
    {
        map.insert(
            "registration_endpoint".into(),
            Value::String(url(routes::REGISTRATION)),
        );
    }
    doc
}

/// The metadata document, serialized once; cloning shares the buffer.
#[derive(Debug, Clone)]
pub struct Discovery(Bytes);

impl Discovery {
    /// Serializes [`document`] for `config`.
    pub fn new(config: &Config) -> Discovery {
        Discovery(Bytes::from(document(config).to_string()))
    }

    /// The serialized JSON document.
    pub fn bytes(&self) -> Bytes {
        self.0.clone()
    }

    /// The document as an HTTP response.
    fn response(&self) -> Response {
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static(CACHE_CONTROL),
                ),
                (
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                ),
            ],
            self.bytes(),
        )
            .into_response()
    }
}

/// `GET /.well-known/openid-configuration`: OpenID Provider Metadata (OIDC Discovery 1.0 §4).
pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    state.discovery.response()
}

/// `GET /.well-known/oauth-authorization-server`: authorization server metadata (RFC 8414 §3), the
/// same document.
pub async fn oauth_authorization_server(State(state): State<AppState>) -> Response {
    state.discovery.response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn config(issuer: &str) -> Config {
        Config::from_lookup(|k| (k == "LATCHKEY_ISSUER").then(|| issuer.to_owned())).unwrap()
    }

    #[test]
    fn endpoints_are_absolute_under_the_issuer() {
        let doc = document(&config("https://id.example.com/t1"));
        assert_eq!(doc["issuer"], "https://id.example.com/t1");
        assert_eq!(doc["token_endpoint"], "https://id.example.com/t1/token");
        assert_eq!(
            doc["jwks_uri"],
            format!("https://id.example.com/t1{}", routes::JWKS)
        );
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert!(doc.get("userinfo_signing_alg_values_supported").is_none());
    }

    #[test]
    fn serialized_once_and_parses_back() {
        let c = config("http://localhost:8080");
        let d = Discovery::new(&c);
        let parsed: Value = serde_json::from_slice(&d.bytes()).unwrap();
        assert_eq!(parsed, document(&c));
        assert_eq!(
            d.bytes().as_ptr(),
            d.clone().bytes().as_ptr(),
            "shared buffer"
        );
    }
}
