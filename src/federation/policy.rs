//! `sso_required`: an organization whose verified-domain members may sign in to it only through
//! its connection. Checked where the organization of an authorization request is known
//! ([`crate::oauth::authorize`]) and at the token endpoint (code and refresh), against the live flag.
//!
//! The policy binds a member when all hold: the organization requires it, the member's address is
//! in a domain the organization verified ([`super::domains`]: proof that the organization speaks
//! for those addresses), and the organization has a connection to send them to. Members outside
//! its verified domains (contractors) keep signing in as before, and the same person's other
//! organizations are not touched.
//!
//! What satisfies the policy is `fed` in the sign-in's `amr` ([`super::is_federated`]): the session,
//! the codes and the refresh families record how a person signed in, not through which connection,
//! so a sign-in through any connection (an instance-wide one included) counts.

use super::connections::Connection;
use super::domains;
use crate::db::Exec;
use crate::error::Result;

/// The connection that the member with `user_email` must sign in to `org_id` through (its oldest),
/// or `None` when the policy does not bind them (module doc). No query when `sso_required` is off.
pub async fn required_connection<'c>(
    ex: impl Exec<'c>,
    org_id: &str,
    sso_required: bool,
    user_email: &str,
) -> Result<Option<Connection>> {
    if !sso_required {
        return Ok(None);
    }
    let Some(domain) = domains::email_domain(user_email) else {
        return Ok(None);
    };
    domains::store::connection_if_verified(ex, org_id, &domain).await
}

/// The message of a refusal: at the authorization endpoint (`login_required` with `prompt=none`)
/// and, with "; sign in again", at the token endpoint (`invalid_grant`).
pub const REQUIRES_SSO: &str = "the organization requires sign-in through its identity provider";
