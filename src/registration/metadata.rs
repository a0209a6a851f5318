//! RFC 7591 §2 client metadata: what a registration (or an RFC 7592 update) may ask for, checked
//! and turned into the registry's [`NewClient`], and the metadata answered back.
//!
//! What a self-registered client may be is narrower than what an operator may register: never
//! first-party (it is asked for consent), never an introspector, always PKCE, no
//! `client_credentials` (a client acting for itself would hold tokens nobody consented to), and
//! only the scopes people grant (never `admin`).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::clients::{Client, DEVICE_CODE_GRANT, GrantType, NewClient};
use crate::config::SigningAlg;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oidc::discovery::SCOPES_SUPPORTED;

/// The scope a registered client may never have: it makes `client_credentials` tokens operators.
const OPERATOR_SCOPE: &str = crate::web::bearer::SCOPE_ADMIN;

/// `token_endpoint_auth_method` values (RFC 7591 §2).
pub const AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

/// Grant types a registered client may use.
const GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", DEVICE_CODE_GRANT];

/// The members of RFC 7591 §2 we act on; unknown members are ignored (§2: "The authorization
/// server MUST ignore any client metadata sent by the client that it does not understand").
#[derive(Debug, Default, Deserialize)]
pub struct Metadata {
    /// RFC 7592 §2.2: the client's id, in an update.
    pub client_id: Option<String>,
    /// RFC 7592 §2.2: the client's secret, in an update (must be the current one if sent).
    pub client_secret: Option<String>,
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    client_name: Option<String>,
    scope: Option<String>,
    post_logout_redirect_uris: Option<Vec<String>>,
    backchannel_logout_uri: Option<String>,
    id_token_signed_response_alg: Option<String>,
    require_pushed_authorization_requests: Option<bool>,
}

/// Metadata checked: the client to register (or the settings to replace) and how it authenticates.
#[derive(Debug)]
pub struct Checked {
    /// What the registry stores.
    pub client: NewClient,
    /// `client_secret_basic`, `client_secret_post` or `none` (`public` follows from it).
    pub auth_method: String,
}

/// `invalid_client_metadata` (RFC 7591 §3.2.2).
pub fn invalid(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
}

/// `invalid_redirect_uri` (RFC 7591 §3.2.2).
fn invalid_redirect(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRedirectUri, description)
}

/// Parses a JSON body as client metadata: an object, with members of the right types.
pub fn parse(body: &[u8]) -> Result<Metadata, OAuthError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| invalid("the body must be a JSON object of client metadata"))?;
    if !value.is_object() {
        return Err(invalid("the body must be a JSON object of client metadata"));
    }
    serde_json::from_value(value).map_err(|e| invalid(format!("malformed client metadata: {e}")))
}

/// Checks `metadata` by the rules above; the registry's own rules (URI syntax, scope syntax, the
/// back-channel logout URI, the name) are checked again by `clients::create` or
/// `clients::manage::update`.
pub fn check(metadata: &Metadata) -> Result<Checked, OAuthError> {
    let auth_method = metadata
        .token_endpoint_auth_method
        .clone()
        .unwrap_or_else(|| "client_secret_basic".to_owned());
    if !AUTH_METHODS.contains(&auth_method.as_str()) {
        return Err(invalid(format!(
            "token_endpoint_auth_method must be one of {}",
            AUTH_METHODS.join(", ")
        )));
    }
    // RFC 7591 §2: grant_types defaults to authorization_code, response_types to code.
    let grant_types = metadata
        .grant_types
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".to_owned()]);
    if grant_types.is_empty() {
        return Err(invalid("grant_types must not be empty"));
    }
    if let Some(g) = grant_types
        .iter()
        .find(|g| !GRANT_TYPES.contains(&g.as_str()))
    {
        return Err(invalid(format!(
            "grant type {g} cannot be registered: use {}",
            GRANT_TYPES.join(", ")
        )));
    }
    let code_flow = grant_types.iter().any(|g| g == "authorization_code");
    let response_types = metadata.response_types.clone().unwrap_or_else(|| {
        if code_flow {
            vec!["code".to_owned()]
        } else {
            vec![]
        }
    });
    if response_types.iter().any(|r| r != "code") {
        return Err(invalid("only the response type code is supported"));
    }
    // RFC 7591 §2.1: response_types and grant_types must agree.
    if response_types.is_empty() == code_flow {
        return Err(invalid(
            "response_types code goes with the authorization_code grant type, and only with it",
        ));
    }
    let redirect_uris = metadata.redirect_uris.clone().unwrap_or_default();
    if code_flow && redirect_uris.is_empty() {
        return Err(invalid_redirect(
            "redirect_uris is required for the authorization_code grant",
        ));
    }
    crate::clients::validate::uris(&redirect_uris, "redirect URI")
        .map_err(|e| invalid_redirect(e.to_string()))?;
    let scopes: Vec<String> = match &metadata.scope {
        None => Vec::new(),
        Some(scope) => {
            let scopes: Vec<String> = scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if scopes.is_empty() {
                return Err(invalid("scope must name at least one scope"));
            }
            if let Some(s) = scopes
                .iter()
                .find(|s| *s == OPERATOR_SCOPE || !SCOPES_SUPPORTED.contains(&s.as_str()))
            {
                return Err(invalid(format!("scope {s} cannot be registered")));
            }
            scopes
        }
    };
    let id_token_alg =
        match &metadata.id_token_signed_response_alg {
            None => None,
            Some(alg) => Some(alg.parse::<SigningAlg>().map_err(|_| {
                invalid("id_token_signed_response_alg must be RS256, ES256 or EdDSA")
            })?),
        };
    let client = NewClient {
        name: metadata
            .client_name
            .clone()
            .unwrap_or_else(|| "Unnamed application".to_owned()),
        redirect_uris,
        post_logout_redirect_uris: metadata
            .post_logout_redirect_uris
            .clone()
            .unwrap_or_default(),
        grant_types,
        scopes,
        public: auth_method == "none",
        first_party: false,
        require_org: false,
        id_token_alg,
        allow_no_pkce: false,
        introspect: false,
        backchannel_logout_uri: metadata.backchannel_logout_uri.clone(),
        resources: Vec::new(),
        require_par: metadata
            .require_pushed_authorization_requests
            .unwrap_or(false),
    };
    Ok(Checked {
        client,
        auth_method,
    })
}

/// The client's metadata as registered (RFC 7591 §3.2.1), without secrets or tokens.
pub fn of(client: &Client, auth_method: &str) -> Map<String, Value> {
    let code_flow = client.grant_types.contains(&GrantType::AuthorizationCode);
    let mut map = Map::new();
    map.insert("client_id".into(), json!(client.id));
    map.insert("client_id_issued_at".into(), json!(client.created_at));
    map.insert("client_name".into(), json!(client.name));
    map.insert("redirect_uris".into(), json!(client.redirect_uris));
    map.insert("token_endpoint_auth_method".into(), json!(auth_method));
    map.insert(
        "grant_types".into(),
        json!(
            client
                .grant_types
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
        ),
    );
    map.insert(
        "response_types".into(),
        json!(if code_flow { vec!["code"] } else { vec![] }),
    );
    map.insert("scope".into(), json!(client.scopes.join(" ")));
    map.insert(
        "post_logout_redirect_uris".into(),
        json!(client.post_logout_redirect_uris),
    );
    if let Some(uri) = &client.backchannel_logout_uri {
        map.insert("backchannel_logout_uri".into(), json!(uri));
    }
    if let Some(alg) = client.id_token_alg {
        map.insert("id_token_signed_response_alg".into(), json!(alg.as_str()));
    }
    map.insert(
        "require_pushed_authorization_requests".into(),
        json!(client.require_par),
    );
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(body: Value) -> Result<Checked, OAuthError> {
        check(&parse(body.to_string().as_bytes())?)
    }

    #[test]
    fn defaults_and_refusals() {
        let ok = checked(json!({"redirect_uris": ["https://a.example/cb"], "x-unknown": 1}));
        assert!(
            ok.as_ref()
                .is_ok_and(|c| c.auth_method == "client_secret_basic"
                    && !c.client.public
                    && !c.client.first_party)
        );
        for (body, code) in [
            (
                json!({"redirect_uris": ["http://a.example/cb"]}),
                "invalid_redirect_uri",
            ),
            (json!({}), "invalid_redirect_uri"),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "scope": "openid admin"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": "https://a.example/cb"}),
                "invalid_client_metadata",
            ),
            (json!([1]), "invalid_client_metadata"),
        ] {
            let err = checked(body.clone()).err().map(|e| e.code.as_str());
            assert_eq!(err, Some(code), "{body}");
        }
    }
}
