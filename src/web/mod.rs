//! Shared HTTP plumbing: error rendering, security headers, static files, page rendering.

pub mod assets;
pub mod errors;
pub mod headers;
pub mod page;
