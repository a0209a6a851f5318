//! Organization slugs: the short, URL-safe names used in `organization=` and API paths.

use axum::http::StatusCode;

use crate::error::{AppError, Result};

/// Shortest slug.
pub const MIN_SLUG_LEN: usize = 3;
/// Longest slug (a DNS label, so a slug can become a subdomain).
pub const MAX_SLUG_LEN: usize = 63;

/// Words that name our own routes or would confuse people, refused as slugs.
const RESERVED: &[&str] = &[
    "account",
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "authorize",
    "billing",
    "consent",
    "default",
    "health",
    "healthz",
    "help",
    "introspect",
    "invitations",
    "invite",
    "jwks",
    "latchkey",
    "login",
    "logout",
    "mail",
    "me",
    "new",
    "oauth",
    "oidc",
    "org",
    "orgs",
    "password",
    "readyz",
    "register",
    "reset",
    "revoke",
    "root",
    "security",
    "settings",
    "signin",
    "signup",
    "static",
    "status",
    "support",
    "system",
    "token",
    "userinfo",
    "users",
    "verify-email",
    "well-known",
    "www",
];

/// Checks a slug (400 `invalid-slug` otherwise): lowercase ASCII letters, digits and inner hyphens, 3–63 characters, not reserved and
/// not shaped like an id (so `ID_OR_SLUG` is never ambiguous).
pub fn validate(slug: &str) -> Result<()> {
    let invalid = |why: &str| {
        AppError::problem(
            StatusCode::BAD_REQUEST,
            "invalid-slug",
            format!("invalid slug {slug:?}: {why}"),
        )
    };
    if slug.len() < MIN_SLUG_LEN || slug.len() > MAX_SLUG_LEN {
        return Err(invalid("must be 3 to 63 characters"));
    }
    if !slug
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(invalid("use lowercase letters, digits and hyphens"));
    }
    if slug.starts_with('-') || slug.ends_with('-') {
        return Err(invalid("must not start or end with a hyphen"));
    }
    if RESERVED.contains(&slug) {
        return Err(invalid("this word is reserved"));
    }
    if uuid::Uuid::parse_str(slug).is_ok() {
        return Err(invalid("must not look like an id"));
    }
    Ok(())
}

/// Derives a slug from an organization name: lowercase, runs of other characters become one hyphen.
pub fn from_name(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(MAX_SLUG_LEN);
    slug.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_from_names() {
        assert_eq!(from_name("Acme"), "acme");
        assert_eq!(from_name("  Acme, Inc. (EU) "), "acme-inc-eu");
        assert_eq!(from_name(&"x".repeat(80)).len(), MAX_SLUG_LEN);
    }

    #[test]
    fn validates() {
        assert!(validate("acme").is_ok());
        assert!(validate("acme-eu-2").is_ok());
        for bad in [
            "ab",
            "Acme",
            "-acme",
            "acme-",
            "ac me",
            "api",
            "0192f0e2-0000-7000-8000-000000000000",
        ] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate(&"a".repeat(64)).is_err());
    }
}
