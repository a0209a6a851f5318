//! Invitations: how a person joins an organization with a role chosen by an admin.
//!
//! An admin invites an address with a role through the management API ([`api`]); the invitation
//! carries a 256-bit single-use token that goes out by email only and is stored as its SHA-256 hash
//! ([`crate::crypto::tokens`]). The link opens the accept pages ([`pages`]): a signed-in person with the
//! invited address accepts with one click, someone with an account logs in first, and a new person
//! sets a name and a password (the account is created with a verified address: the link proved it).
//!
//! Lifecycle: `pending` → `accepted` (once) or `revoked`; `expired` is computed (a pending invitation
//! whose `expires_at` has passed), never stored. There is at most one pending invitation per
//! organization and address (a partial unique index): inviting again renews that row with a new
//! token, a new expiry and the new role, and mails the new link; the old link stops working.

pub mod api;
mod mail;
pub mod pages;
pub mod store;

use axum::Router;
use axum::routing::{get, post};
use serde::Serialize;

use crate::app::AppState;
use crate::orgs::roles::Role;
use crate::routes;

/// What is stored about an invitation's life (`expired` is derived, see [`Invitation::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredState {
    /// Waiting for the invitee (possibly expired).
    Pending,
    /// Used by the invitee; the link is dead.
    Accepted,
    /// Withdrawn by an admin; the link is dead.
    Revoked,
}

impl StoredState {
    /// The spelling in the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            StoredState::Pending => "pending",
            StoredState::Accepted => "accepted",
            StoredState::Revoked => "revoked",
        }
    }

    /// Parses the `state` column (the check constraint allows nothing else).
    pub fn parse(s: &str) -> Option<StoredState> {
        match s {
            "pending" => Some(StoredState::Pending),
            "accepted" => Some(StoredState::Accepted),
            "revoked" => Some(StoredState::Revoked),
            _ => None,
        }
    }
}

/// The state an API caller or the accept page sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = InvitationState)]
pub enum Status {
    /// Can be accepted.
    Pending,
    /// Was accepted.
    Accepted,
    /// Was pending when its lifetime (`LATCHKEY_INVITE_TTL`) ran out.
    Expired,
    /// Was revoked.
    Revoked,
}

/// One invitation (never its token: only the hash is stored, and it stays in [`store`]).
#[derive(Debug, Clone)]
pub struct Invitation {
    /// Random id (UUIDv7).
    pub id: String,
    /// The organization the invitee joins.
    pub org_id: String,
    /// The invited address, as the admin typed it.
    pub email: String,
    /// The role the invitee gets; fixed at invitation.
    pub role: Role,
    /// Stored state.
    pub state: StoredState,
    /// The user who invited (or renewed); `None` for an operator or a deleted user.
    pub invited_by: Option<String>,
    /// Unix seconds of the first invitation.
    pub created_at: i64,
    /// Unix seconds after which the link no longer works.
    pub expires_at: i64,
    /// Unix seconds of the acceptance.
    pub accepted_at: Option<i64>,
    /// The user who accepted.
    pub accepted_by: Option<String>,
}

impl Invitation {
    /// The state at `now`: a pending invitation is expired once `expires_at <= now`.
    pub fn status(&self, now: i64) -> Status {
        match self.state {
            StoredState::Pending if self.expires_at <= now => Status::Expired,
            StoredState::Pending => Status::Pending,
            StoredState::Accepted => Status::Accepted,
            StoredState::Revoked => Status::Revoked,
        }
    }
}

/// The accept pages (browser session layer).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            routes::INVITATION,
            get(pages::open::invitation_page).post(pages::accept::accept),
        )
        .route(routes::INVITATION_REGISTER, post(pages::accept::register))
        .route(routes::INVITATION_ACCEPTED, get(pages::accept::accepted))
}

/// The invitation endpoints of the management API (`/api/v1/orgs/{org}/invitations`).
pub fn api_router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(api::list, api::create))
        .routes(routes!(api::revoke))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invitation(state: StoredState, expires_at: i64) -> Invitation {
        Invitation {
            id: "i".into(),
            org_id: "o".into(),
            email: "a@example.com".into(),
            role: Role::Member,
            state,
            invited_by: None,
            created_at: 0,
            expires_at,
            accepted_at: None,
            accepted_by: None,
        }
    }

    #[test]
    fn expiry_is_computed_for_pending_only() {
        assert_eq!(
            invitation(StoredState::Pending, 10).status(9),
            Status::Pending
        );
        assert_eq!(
            invitation(StoredState::Pending, 10).status(10),
            Status::Expired
        );
        assert_eq!(
            invitation(StoredState::Accepted, 10).status(99),
            Status::Accepted
        );
        assert_eq!(
            invitation(StoredState::Revoked, 10).status(99),
            Status::Revoked
        );
    }

    #[test]
    fn states_round_trip() {
        for s in [
            StoredState::Pending,
            StoredState::Accepted,
            StoredState::Revoked,
        ] {
            assert_eq!(StoredState::parse(s.as_str()), Some(s));
        }
        assert_eq!(StoredState::parse("expired"), None);
    }
}
