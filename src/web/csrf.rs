//! CSRF protection of every form (OWASP CSRF Prevention Cheat Sheet, "signed double-submit
//! cookie"): the token lives in a signed, `HttpOnly`, `SameSite=Lax` cookie
//! ([`super::signed_cookies`]) and every form posts it back in a hidden field; a POST whose field does
//! not equal the cookie (compared in constant time) is refused. Another site can neither read the
//! cookie nor write one we accept, so it cannot forge the field.
//!
//! The token needs no session, so a visitor who only looks at the login or sign-up page leaves no
//! row in the database. It is replaced at sign-in ([`renew`]), so a token seen before the login is
//! worthless after it (OWASP ASVS V3.2.1 applied to the CSRF token).

use super::signed_cookies;
use crate::crypto::tokens::{constant_time_eq, random_token};
use crate::error::{AppError, Result};

/// Name of the signed cookie holding the token (prefixed by [`signed_cookies`]).
const CSRF_COOKIE: &str = "csrf";

/// What a refused form says.
pub const CSRF_REFUSED: &str =
    "This form has expired or was not sent by this site. Go back, reload the page and try again.";

/// This browser's CSRF token for the forms of the page being rendered, created on first use.
pub fn token() -> Result<String> {
    if let Some(token) = signed_cookies::get(CSRF_COOKIE) {
        return Ok(token);
    }
    renew()
}

/// Replaces this browser's CSRF token (at sign-in) and returns the new one.
pub fn renew() -> Result<String> {
    let token = random_token().into_inner();
    signed_cookies::set(CSRF_COOKIE, &token, None)?;
    Ok(token)
}

/// Checks a form's token against the cookie in constant time; a mismatch is a 400 page.
pub fn check(presented: &str) -> Result<()> {
    match signed_cookies::get(CSRF_COOKIE) {
        Some(expected)
            if !presented.is_empty()
                && constant_time_eq(expected.as_bytes(), presented.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err(AppError::invalid(CSRF_REFUSED)),
    }
}
