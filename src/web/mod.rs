//! Shared HTTP plumbing: error rendering, security headers, static files, page rendering, signed
//! cookies and CSRF protection of forms, the API caller (Bearer) and request metadata extractors.

pub mod assets;
pub mod bearer;
pub mod csrf;
pub mod errors;
pub mod headers;
pub mod page;
pub mod request_meta;
pub mod signed_cookies;
