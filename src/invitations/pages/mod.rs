//! The accept pages. The mailed link `GET /invitation?token=…` moves the token's hash into a signed
//! cookie and redirects to `/invitation`, so the token leaves the address bar, the history and any
//! `Referer` (RFC 9700 §4.2.4 makes the same point about codes); the raw token is never stored.
//! `/invitation` then shows what fits the visitor: accept with one click, log in first, create an
//! account, "this is not your invitation", or why the link no longer works.
//!
//! [`open`] renders the page for the invitation in the session, [`accept`] handles the forms (every
//! one with a CSRF token, 303 after the POST) and the "you joined" page.

pub mod accept;
pub mod open;

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::Invitation;
use crate::login::session::session_error;
use crate::web::page::{ASSET_VERSION, render};
use crate::web::signed_cookies;

/// Signed cookie holding the SHA-256 (hex) of the token of the invitation being opened: a cookie,
/// not a session value, so that opening the mailed link writes nothing before the person acts.
const TOKEN_HASH_COOKIE: &str = "invitation";
/// Session key: what the last accepted invitation gave, for the "you joined" page.
const ACCEPTED_KEY: &str = "invitation_accepted";

/// What the "you joined" page shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Accepted {
    /// The organization joined.
    org_id: String,
    /// The role the person now holds there.
    role: String,
    /// True when the person was a member already and kept their role.
    kept_existing: bool,
}

/// The hash of the invitation token this browser opened, if any.
fn token_hash() -> Option<crate::crypto::tokens::TokenHash> {
    signed_cookies::get(TOKEN_HASH_COOKIE).map(crate::crypto::tokens::TokenHash::from_hex)
}

/// Why there is nothing to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
    /// No link was opened in this browser.
    NoLink,
    /// The token matches no invitation (mistyped, or replaced by a newer invitation).
    Unknown,
    /// Accepted already.
    Used,
    /// Withdrawn by an admin.
    Revoked,
    /// Its lifetime ran out.
    Expired,
}

/// A page that explains, without a form.
#[derive(Template)]
#[template(path = "pages/invitation_notice.html")]
struct NoticePage<'a> {
    title: &'a str,
    lead: &'a str,
    detail: &'a str,
    asset_version: &'a str,
}

/// The page for a link that no longer (or never did) work: 404 for an unknown link, 410 Gone for
/// one that was used, revoked or has expired.
fn gone_page(why: Gone) -> Response {
    let (status, title, lead, detail) = match why {
        Gone::NoLink => (
            StatusCode::NOT_FOUND,
            "No invitation to show",
            "Open the link in your invitation email to see the invitation.",
            "If the link does not work, ask the person who invited you to send a new invitation.",
        ),
        Gone::Unknown => (
            StatusCode::NOT_FOUND,
            "This invitation link is not valid",
            "The link may be incomplete, or a newer invitation replaced it.",
            "Use the link in the most recent invitation email, or ask the person who invited you to send a new one.",
        ),
        Gone::Used => (
            StatusCode::GONE,
            "This invitation was already used",
            "Someone accepted this invitation; each link works only once.",
            "If it was you, you already belong to the organization: just sign in. Otherwise ask for a new invitation.",
        ),
        Gone::Revoked => (
            StatusCode::GONE,
            "This invitation was withdrawn",
            "An administrator of the organization revoked this invitation.",
            "If you still need access, ask them to invite you again.",
        ),
        Gone::Expired => (
            StatusCode::GONE,
            "This invitation has expired",
            "Invitation links work only for a limited time, and this one has run out.",
            "Ask the person who invited you to send a new invitation.",
        ),
    };
    let mut response = render(&NoticePage {
        title,
        lead,
        detail,
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = status;
    response
}

/// Why `inv` cannot be accepted at `now`, if it cannot.
fn unusable(inv: &Invitation, now: i64) -> Option<Gone> {
    match inv.status(now) {
        super::Status::Pending => None,
        super::Status::Accepted => Some(Gone::Used),
        super::Status::Revoked => Some(Gone::Revoked),
        super::Status::Expired => Some(Gone::Expired),
    }
}
