//! Shared HTTP plumbing: error rendering, security headers, static files, page rendering, signed
//! cookies and CSRF protection of forms, the API caller (Bearer), request metadata extractors, and the
//! server's accept loop with its limits.

pub mod api;
pub mod assets;
pub mod bearer;
pub mod client_addr;
pub mod csrf;
pub mod errors;
pub mod headers;
pub mod openapi;
pub mod page;
pub mod request_meta;
pub mod server;
pub mod signed_cookies;
