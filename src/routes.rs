//! Every path Latchkey serves, named once. Routers, the discovery document, templates and tests use
//! these constants, so a path cannot drift between them.

/// Liveness: the process is up.
pub const HEALTHZ: &str = "/healthz";
/// Readiness: the database answers.
pub const READYZ: &str = "/readyz";
/// Landing page.
pub const HOME: &str = "/";
/// Embedded static files (CSS, images), served with long cache lifetimes.
pub const STATIC_PREFIX: &str = "/static";
/// Prefix of the JSON management API (errors there are RFC 9457 problem+json).
pub const API_PREFIX: &str = "/api/";
