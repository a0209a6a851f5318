//! The audit log: one row per write, with who did it, to what, from where, and JSON details. Rows
//! have no foreign keys, so they outlive what they describe. Every feature records through
//! [`record`], inside the transaction of the write it describes.

use serde_json::Value;

use crate::crypto::tokens::new_id;
use crate::db::Exec;
use crate::web::request_meta::RequestMeta;

/// Action names, stable: API clients filter on them.
pub mod action {
    /// An organization was created.
    pub const ORG_CREATED: &str = "organization.created";
    /// An organization was renamed (name or slug changed).
    pub const ORG_RENAMED: &str = "organization.renamed";
    /// An organization was deleted.
    pub const ORG_DELETED: &str = "organization.deleted";
    /// A member was added (CLI, API, invitation, sign-up).
    pub const MEMBER_ADDED: &str = "member.added";
    /// A member's role changed.
    pub const MEMBER_ROLE_CHANGED: &str = "member.role_changed";
    /// A member was removed or left.
    pub const MEMBER_REMOVED: &str = "member.removed";
    /// An invitation was created or renewed.
    pub const INVITATION_CREATED: &str = "invitation.created";
    /// An invitation was revoked.
    pub const INVITATION_REVOKED: &str = "invitation.revoked";
    /// An invitation was accepted.
    pub const INVITATION_ACCEPTED: &str = "invitation.accepted";
    /// A signing key was rotated (by the CLI or the rotation job).
    pub const SIGNING_KEY_ROTATED: &str = "signing_key.rotated";
    /// A rotated refresh token was presented again; its family was revoked (RFC 9700 §4.14.2).
    pub const REFRESH_REUSE_DETECTED: &str = "refresh_token.reuse_detected";
    /// A login succeeded.
    pub const LOGIN_SUCCEEDED: &str = "login.succeeded";
    /// A login failed.
    pub const LOGIN_FAILED: &str = "login.failed";
}

/// Who did something.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// The signed-in user, if any.
    pub user_id: Option<String>,
    /// The OAuth client acting (operator tokens, token endpoint), if any.
    pub client_id: Option<String>,
    /// Peer address and user agent.
    pub meta: RequestMeta,
}

impl Actor {
    /// A user acting from a request.
    pub fn user(user_id: impl Into<String>, meta: RequestMeta) -> Actor {
        Actor {
            user_id: Some(user_id.into()),
            client_id: None,
            meta,
        }
    }

    /// The operator on the command line (no user, no client, no address).
    pub fn cli() -> Actor {
        Actor::default()
    }
}

/// One audit event.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    /// The organization concerned, if any (operators see events without one).
    pub org_id: Option<&'a str>,
    /// Who.
    pub actor: &'a Actor,
    /// One of [`action`].
    pub action: &'static str,
    /// What kind of thing was acted on: `organization`, `user`, `invitation`, `signing_key`, ...
    pub target_type: Option<&'static str>,
    /// Its id.
    pub target_id: Option<&'a str>,
    /// Anything else worth keeping (old and new role, the new name, ...). Never secrets.
    pub details: Value,
}

/// Writes one audit event at `now`.
pub async fn record<'c>(
    ex: impl Exec<'c>,
    event: &AuditEvent<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let details = if event.details.is_null() {
        "{}".to_owned()
    } else {
        event.details.to_string()
    };
    sqlx::query(
        "insert into audit_events (id, org_id, actor_user_id, actor_client_id, action, target_type, \
         target_id, ip, user_agent, details, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(new_id())
    .bind(event.org_id)
    .bind(event.actor.user_id.as_deref())
    .bind(event.actor.client_id.as_deref())
    .bind(event.action)
    .bind(event.target_type)
    .bind(event.target_id)
    .bind(event.actor.meta.ip.as_deref())
    .bind(event.actor.meta.user_agent.as_deref())
    .bind(details)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}
