//! Every path Latchkey serves, named once. Routers, the discovery document, templates and tests use
//! these constants, so a path cannot drift between them.

/// Liveness: the process is up.
pub const HEALTHZ: &str = "/healthz";
/// Readiness: the database answers.
pub const READYZ: &str = "/readyz";
/// Landing page (a small signed-in page when no authorization request is pending).
pub const HOME: &str = "/";
/// Embedded static files (CSS, images), served with long cache lifetimes.
pub const STATIC_PREFIX: &str = "/static";
/// Prefix of the JSON management API (errors there are RFC 9457 problem+json).
pub const API_PREFIX: &str = "/api/";

/// OpenID Connect Discovery 1.0 §4.
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// RFC 8414 §3 authorization server metadata.
pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
/// JWK Set with the public signing keys (RFC 7517 §5).
pub const JWKS: &str = "/jwks.json";
/// Authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2).
pub const AUTHORIZE: &str = "/authorize";
/// Where the browser returns after login or consent to finish a pending authorization request.
pub const AUTHORIZE_CONTINUE: &str = "/authorize/continue";
/// Token endpoint (RFC 6749 §3.2).
pub const TOKEN: &str = "/token";
/// UserInfo endpoint (OIDC Core §5.3).
pub const USERINFO: &str = "/userinfo";
/// Token revocation (RFC 7009).
pub const REVOCATION: &str = "/revoke";
/// Token introspection (RFC 7662).
pub const INTROSPECTION: &str = "/introspect";
/// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
pub const END_SESSION: &str = "/logout";

/// Login page.
pub const LOGIN: &str = "/login";
/// Consent page.
pub const CONSENT: &str = "/consent";
