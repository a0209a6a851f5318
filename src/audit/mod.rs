//! The audit log and the login history, used by every feature.
//!
//! The audit log is one row per write, with who did it, to what, from where, and JSON details. Rows
//! have no foreign keys, so they outlive what they describe. Every feature records through
//! [`record`], inside the transaction of the write it describes. The login history (every sign-in
//! attempt) is in [`login_history`].

pub mod login_history;

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::crypto::tokens::new_id;
use crate::db::Exec;
use crate::web::bearer::ApiCaller;
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
    /// A refresh token was exchanged for tokens of another organization of the person, in a new
    /// family (recorded in the target organization's log; details: `from_org_id`,
    /// `from_family_id`).
    pub const ORGANIZATION_SWITCHED: &str = "refresh_token.organization_switched";
    /// A person approved a device (RFC 8628) on the `/device` page: recorded in the chosen
    /// organization's log, or without one (target: the client; details: `scope`).
    pub const DEVICE_APPROVED: &str = "device.approved";
    /// A person denied a device on the `/device` page (target: the client; details: `scope`).
    pub const DEVICE_DENIED: &str = "device.denied";
    /// A login succeeded.
    pub const LOGIN_SUCCEEDED: &str = "login.succeeded";
    /// A login failed.
    pub const LOGIN_FAILED: &str = "login.failed";
    /// A login was refused with 429 before any password check: too many recent failures for the
    /// account, the browser or the address (details: the typed email and which limit).
    pub const LOGIN_THROTTLED: &str = "login.throttled";
    /// A client authentication at a token-endpoint style endpoint was refused with 429 before the
    /// secret was checked: too many recent failures for the client id or the address.
    pub const CLIENT_AUTH_THROTTLED: &str = "client_auth.throttled";
    /// A password-reset link was asked for (target: the account, or none for an unknown address;
    /// the link itself is mailed unless the account's limit is reached).
    pub const PASSWORD_RESET_REQUESTED: &str = "password.reset_requested";
    /// A password was changed through a reset link (sessions and refresh tokens revoked).
    pub const PASSWORD_RESET: &str = "password.reset";
    /// An account was created by sign-up (page or API); the actor is anonymous, the target the new
    /// user. Counted per address for the sign-up limit.
    pub const USER_SIGNED_UP: &str = "user.signed_up";
    /// A sign-in came from a browser the account had not used before (alert mailed if enabled).
    pub const NEW_DEVICE_SIGN_IN: &str = "login.new_device";

    // Operator controls over users (`latchkey user …`, `/api/v1/users`; `accounts::admin`). The
    // actor is the CLI or the operator's client; the target is the user.
    /// An account was disabled: it cannot sign in, and its sessions and refresh tokens were ended
    /// (details: what ended).
    pub const USER_DISABLED: &str = "user.disabled";
    /// A disabled account was enabled again.
    pub const USER_ENABLED: &str = "user.enabled";
    /// An account was deleted (target id: the former user id; details: its email).
    pub const USER_DELETED: &str = "user.deleted";
    /// Every session and refresh-token family of an account was ended (details: how many).
    pub const USER_SESSIONS_ENDED: &str = "user.sessions_ended";
    /// An account's display name was changed (details: old and new name).
    pub const USER_RENAMED: &str = "user.renamed";

    // Your account: profile, email, password, deletion (the person acts on their own account).
    /// A person changed their display name (details: from, to).
    pub const USER_PROFILE_UPDATED: &str = "user.profile_updated";
    /// A person asked to change their sign-in address (a link went to the new one).
    pub const USER_EMAIL_CHANGE_REQUESTED: &str = "user.email_change_requested";
    /// A change of sign-in address was confirmed through the mailed link (details: from, to).
    pub const USER_EMAIL_CHANGED: &str = "user.email_changed";
    /// A person changed (or first set) their password on the account page (details: whether the
    /// other browsers were signed out).
    pub const USER_PASSWORD_CHANGED: &str = "user.password_changed";
    // A person deleting their own account records `USER_DELETED` (above), with the person as
    // the actor.

    // Email sign-in.
    /// Someone asked for a sign-in mail (`/login/email`), for a known address or not: the target
    /// is the account when the address has a usable one. No mail when it has none.
    pub const LOGIN_EMAIL_REQUESTED: &str = "login.email_requested";

    // Your account: sessions and connected apps (the person is the actor).
    /// A person ended one of their browser sessions (account page or `/api/v1/me/sessions/{sid}`).
    pub const SESSION_ENDED: &str = "session.ended";
    /// A person ended every browser session but the current one ("sign out everywhere else").
    pub const SESSIONS_ENDED_OTHERS: &str = "sessions.ended_others";
    /// A person removed an application's access: its consents deleted, its refresh tokens revoked.
    pub const APP_ACCESS_REMOVED: &str = "app.access_removed";

    // Multi-factor authentication (the person is the actor, or the operator for a reset).
    /// A second factor was refused at sign-in (a wrong TOTP or recovery code, a passkey that did
    /// not verify; details: the factor).
    pub const MFA_FAILED: &str = "mfa.failed";
    /// An authenticator app (TOTP) was confirmed with its first code.
    pub const MFA_TOTP_ENABLED: &str = "mfa.totp_enabled";
    /// The authenticator app (TOTP) was removed.
    pub const MFA_TOTP_REMOVED: &str = "mfa.totp_removed";
    /// New recovery codes replaced the old ones.
    pub const MFA_RECOVERY_CODES_GENERATED: &str = "mfa.recovery_codes_generated";
    /// A recovery code was used as the second factor (details: codes left).
    pub const MFA_RECOVERY_CODE_USED: &str = "mfa.recovery_code_used";
    /// A passkey was registered (details: its id and name).
    pub const MFA_PASSKEY_ADDED: &str = "mfa.passkey_added";
    /// A passkey was removed (details: its id and name).
    pub const MFA_PASSKEY_REMOVED: &str = "mfa.passkey_removed";
    /// An operator removed every factor of a user and ended every session.
    pub const MFA_RESET: &str = "mfa.reset";
    /// An owner changed whether an organization requires a second factor (details: `require_mfa`).
    pub const ORG_MFA_POLICY_CHANGED: &str = "organization.mfa_policy_changed";

    // Passkeys (beyond adding and removing).
    /// A passkey was renamed (details: its id, the old and the new name).
    pub const MFA_PASSKEY_RENAMED: &str = "mfa.passkey_renamed";

    // Enterprise SSO (`crate::federation`).
    /// A connection (upstream provider) was created (details: name, issuer, client_id; never the secret).
    pub const CONNECTION_CREATED: &str = "connection.created";
    /// A connection was changed (details: the fields changed; a new secret only as `client_secret: "changed"`).
    pub const CONNECTION_UPDATED: &str = "connection.updated";
    /// A connection was deleted (its linked identities with it).
    pub const CONNECTION_DELETED: &str = "connection.deleted";
    /// An organization claimed an email domain (details: domain).
    pub const DOMAIN_ADDED: &str = "domain.added";
    /// A domain was verified (details: domain, method `dns` or `operator`).
    pub const DOMAIN_VERIFIED: &str = "domain.verified";
    /// A domain check found no matching TXT record (details: domain, reason).
    pub const DOMAIN_VERIFICATION_FAILED: &str = "domain.verification_failed";
    /// A domain was removed from an organization.
    pub const DOMAIN_REMOVED: &str = "domain.removed";
    /// An upstream identity was linked to an account (details: connection, issuer, subject).
    pub const IDENTITY_LINKED: &str = "federation.identity_linked";
    /// A linked identity was removed (by its owner, on the account page).
    pub const IDENTITY_UNLINKED: &str = "federation.identity_unlinked";
    /// An account (and membership) was created by a first sign-in through a connection.
    pub const USER_PROVISIONED: &str = "federation.user_provisioned";
    /// A sign-in through a connection set a member's role from the role mapping (details: old, new).
    pub const ROLE_MAPPED: &str = "federation.role_mapped";
    /// A sign-in through a connection was refused (details: connection, reason).
    pub const FEDERATION_FAILED: &str = "federation.failed";
    /// An owner changed whether an organization requires sign-in through its provider (details:
    /// `sso_required`).
    pub const ORG_SSO_POLICY_CHANGED: &str = "organization.sso_policy_changed";

    // The client registry (`latchkey client …`, `/api/v1/clients`; `clients::manage`). The actor
    // is the CLI or the operator's client; the target is the client. Never a secret or its hash.
    /// A client was registered (details: name, public, grant types).
    pub const CLIENT_CREATED: &str = "client.created";
    /// A client's settings changed (details: `changes`, each changed field with its old and new
    /// value).
    pub const CLIENT_UPDATED: &str = "client.updated";
    /// A confidential client got a new secret (details: `grace_seconds`, and
    /// `previous_secret_expires_at` until which the old one is accepted, or null).
    pub const CLIENT_SECRET_ROTATED: &str = "client.secret_rotated";
    /// A client was deleted with its codes, refresh tokens and consents (details: name, what went).
    pub const CLIENT_DELETED: &str = "client.deleted";
    /// An initial access token for dynamic registration was issued (target: the token's id;
    /// details: `expires_at`; never the token).
    pub const CLIENT_REGISTRATION_TOKEN_CREATED: &str = "client.registration_token_created";
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

    /// The caller of the management API: the user (if a person) and the client the token was issued
    /// to.
    pub fn api(caller: &ApiCaller, meta: RequestMeta) -> Actor {
        Actor {
            user_id: caller.user_id().map(str::to_owned),
            client_id: Some(caller.token.client_id.clone()),
            meta,
        }
    }

    /// Someone not signed in, known only by the request (password-reset request, sign-up, ...).
    pub fn anonymous(meta: RequestMeta) -> Actor {
        Actor {
            user_id: None,
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

/// Events of `action` recorded from `ip` at or after `since`: the count behind per-address rate
/// limits (password-reset requests, sign-ups), read from the database so that every process agrees.
pub async fn count_from_ip<'c>(
    ex: impl Exec<'c>,
    action: &str,
    ip: &str,
    since: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from audit_events where ip = $1 and action = $2 and created_at >= $3",
    )
    .bind(ip)
    .bind(action)
    .bind(since)
    .fetch_one(ex)
    .await
}

/// Deletes up to `batch` audit events recorded before `before` (the retention purge); returns how
/// many went. The `audit_events_time` index keeps the selection to the rows deleted.
pub async fn delete_before<'c>(
    ex: impl Exec<'c>,
    before: i64,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from audit_events where id in \
         (select id from audit_events where created_at < $1 limit $2)",
    )
    .bind(before)
    .bind(batch)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

/// One audit event as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Event id (UUIDv7).
    pub id: String,
    /// The organization concerned, if any.
    pub org_id: Option<String>,
    /// One of [`action`].
    pub action: String,
    /// The acting user, if any.
    pub actor_user_id: Option<String>,
    /// The acting client, if any.
    pub actor_client_id: Option<String>,
    /// What kind of thing was acted on.
    pub target_type: Option<String>,
    /// Its id.
    pub target_id: Option<String>,
    /// Peer address of the request.
    pub ip: Option<String>,
    /// User agent of the request.
    pub user_agent: Option<String>,
    /// Details (JSON object).
    pub details: Value,
    /// Unix seconds.
    pub created_at: i64,
}

/// Which events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter<'a> {
    /// Only this organization's events (`None`: every event, for operators).
    pub org_id: Option<&'a str>,
    /// Only this action.
    pub action: Option<&'a str>,
    /// Only events at or after this time (unix seconds).
    pub from: Option<i64>,
    /// Only events at or before this time (unix seconds).
    pub to: Option<i64>,
    /// Only events strictly older than this `(created_at, id)` (the page cursor).
    pub before: Option<(i64, &'a str)>,
    /// At most this many.
    pub limit: i64,
}

fn entry_from_row(row: &AnyRow) -> Result<AuditEntry, sqlx::Error> {
    let details: String = row.try_get("details")?;
    Ok(AuditEntry {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        action: row.try_get("action")?,
        actor_user_id: row.try_get("actor_user_id")?,
        actor_client_id: row.try_get("actor_client_id")?,
        target_type: row.try_get("target_type")?,
        target_id: row.try_get("target_id")?,
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        // Written by `record` as JSON; anything else is shown as a string rather than failing.
        details: serde_json::from_str(&details).unwrap_or(Value::String(details)),
        created_at: row.try_get("created_at")?,
    })
}

/// Lists events matching `filter`, newest first (by time, then id).
pub async fn list<'c>(
    ex: impl Exec<'c>,
    filter: &AuditFilter<'_>,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    // Every condition is always present and neutralised by a null parameter, so the SQL is static.
    let (before_at, before_id) = match filter.before {
        Some((at, id)) => (Some(at), Some(id)),
        None => (None, None),
    };
    let rows = sqlx::query(
        "select id, org_id, action, actor_user_id, actor_client_id, target_type, target_id, ip, \
         user_agent, details, created_at from audit_events \
         where ($1 is null or org_id = $1) and ($2 is null or action = $2) \
         and ($3 is null or created_at >= $3) and ($4 is null or created_at <= $4) \
         and ($5 is null or created_at < $5 or (created_at = $5 and id < $6)) \
         order by created_at desc, id desc limit $7",
    )
    .bind(filter.org_id)
    .bind(filter.action)
    .bind(filter.from)
    .bind(filter.to)
    .bind(before_at)
    .bind(before_id)
    .bind(filter.limit)
    .fetch_all(ex)
    .await?;
    rows.iter().map(entry_from_row).collect()
}
