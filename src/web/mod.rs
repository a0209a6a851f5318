//! Shared HTTP plumbing: error rendering, security headers, static files, page rendering, the API
//! caller (Bearer) and request metadata extractors.

pub mod assets;
pub mod bearer;
pub mod client_addr;
pub mod errors;
pub mod headers;
pub mod page;
pub mod request_meta;
