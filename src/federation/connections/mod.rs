//! Connections: upstream OpenID Connect providers of one organization (`org_id`) or of the whole
//! instance (`org_id` none, shown as "Continue with NAME" on the login page), with the role mapping
//! that sets a member's role from a claim of the upstream's ID token at every sign-in.

pub mod api;
pub mod manage;
pub mod store;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::orgs::roles::Role;

/// Scopes asked of an upstream when a connection names none.
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "email", "profile"];

/// The KEK purpose under which client secrets are sealed (associated data: the connection id).
pub const SECRET_PURPOSE: &str = "connection-secret";

/// An upstream provider. The client secret is not here: it is write-only ([`store::client_secret`]).
#[derive(Debug, Clone, Serialize)]
pub struct Connection {
    /// Random id (UUIDv7).
    pub id: String,
    /// The organization it belongs to; `None`: instance-wide (operators).
    pub org_id: Option<String>,
    /// Display name ("Continue with NAME").
    pub name: String,
    /// The upstream's issuer identifier, exactly as in its `iss`.
    pub issuer: String,
    /// Our client id at the upstream.
    pub client_id: String,
    /// Scopes asked of the upstream (always with `openid`).
    pub scopes: Vec<String>,
    /// How the upstream's claims set the role in the connection's organization.
    pub role_mapping: Option<RoleMapping>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// `{claim, map, default_role}`: the role in the organization is the strongest role that `map`
/// gives one of the values of `claim` (a string or an array of strings in the upstream's ID token),
/// else `default_role`. Roles mapped are `admin`, `member` and `viewer`: ownership is only granted
/// here, so an owner's role is never changed by a mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleMapping {
    /// The claim read (e.g. `groups`).
    pub claim: String,
    /// Claim value → role.
    #[serde(default)]
    pub map: BTreeMap<String, Role>,
    /// The role when no value maps (`member` when not given).
    #[serde(default = "default_role")]
    pub default_role: Role,
}

fn default_role() -> Role {
    Role::Member
}

impl RoleMapping {
    /// The role `claims` (the upstream's ID token claims, and userinfo's when fetched) map to.
    pub fn role_for(&self, claims: &serde_json::Value) -> Role {
        let values: Vec<&str> = match claims.get(&self.claim) {
            Some(serde_json::Value::String(s)) => vec![s.as_str()],
            Some(serde_json::Value::Array(items)) => {
                items.iter().filter_map(|v| v.as_str()).collect()
            }
            _ => Vec::new(),
        };
        values
            .iter()
            .filter_map(|v| self.map.get(*v).copied())
            .max_by_key(|r| r.rank())
            .unwrap_or(self.default_role)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strongest_mapped_role_else_default() {
        let m: RoleMapping = serde_json::from_value(json!({
            "claim": "groups",
            "map": {"idp-admins": "admin", "idp-readers": "viewer"},
            "default_role": "member"
        }))
        .unwrap();
        assert_eq!(
            m.role_for(&json!({"groups": ["idp-readers", "idp-admins"]})),
            Role::Admin
        );
        assert_eq!(m.role_for(&json!({"groups": "idp-readers"})), Role::Viewer);
        assert_eq!(m.role_for(&json!({"groups": ["other"]})), Role::Member);
        assert_eq!(m.role_for(&json!({})), Role::Member);
        let d: RoleMapping = serde_json::from_value(json!({"claim": "groups"})).unwrap();
        assert_eq!(d.default_role, Role::Member);
    }
}
