//! Roles and the one permission table every check uses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A member's role in one organization, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including deleting the organization and managing owners.
    Owner,
    /// Manages members and invitations up to their own role.
    Admin,
    /// An ordinary member.
    Member,
    /// Read-only access.
    Viewer,
}

/// Something a member may be allowed to do in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read the organization and its member list.
    ReadOrg,
    /// Rename the organization.
    UpdateOrg,
    /// Delete the organization.
    DeleteOrg,
    /// Change roles and remove members (up to the actor's own role).
    ManageMembers,
    /// Create, list and revoke invitations.
    ManageInvitations,
    /// Read the audit log.
    ReadAuditLog,
    /// Grant or take the owner role; set the organization's `require_mfa` and `sso_required` (who
    /// must show a second factor, or sign in through the organization's provider, is a decision
    /// about every member, the owners' like who the owners are).
    ManageOwners,
}

impl Permission {
    /// True for permissions that change something (they need the `org:write` scope).
    pub fn is_write(self) -> bool {
        !matches!(self, Permission::ReadOrg | Permission::ReadAuditLog)
    }

    /// What the permission allows, in a sentence (shown by `GET /api/v1/roles`).
    pub fn description(self) -> &'static str {
        match self {
            Permission::ReadOrg => "read the organization and its member list",
            Permission::UpdateOrg => "rename the organization or change its slug",
            Permission::DeleteOrg => "delete the organization",
            Permission::ManageMembers => {
                "change members' roles and remove members, up to one's own role"
            }
            Permission::ManageInvitations => "invite people, list and revoke invitations",
            Permission::ReadAuditLog => "read the organization's audit log",
            Permission::ManageOwners => {
                "grant or take the owner role, require a second factor of every member who signs \
                 in (require_mfa), and require sign-in through the organization's provider of its \
                 verified-domain members (sso_required)"
            }
        }
    }

    /// Every permission, in display order.
    pub const ALL: [Permission; 7] = [
        Permission::ReadOrg,
        Permission::UpdateOrg,
        Permission::DeleteOrg,
        Permission::ManageMembers,
        Permission::ManageInvitations,
        Permission::ReadAuditLog,
        Permission::ManageOwners,
    ];
}

impl Role {
    /// All roles, strongest first.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    /// The role's name as stored and as it appears in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// Higher is stronger.
    pub fn rank(self) -> u8 {
        match self {
            Role::Owner => 4,
            Role::Admin => 3,
            Role::Member => 2,
            Role::Viewer => 1,
        }
    }

    /// True when this role is at least as strong as `other`.
    pub fn at_least(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }

    /// The permission table: the weakest role that holds each permission.
    pub fn can(self, permission: Permission) -> bool {
        let needed = match permission {
            Permission::ReadOrg => Role::Viewer,
            Permission::UpdateOrg | Permission::ManageMembers | Permission::ManageInvitations => {
                Role::Admin
            }
            Permission::ReadAuditLog => Role::Admin,
            Permission::DeleteOrg | Permission::ManageOwners => Role::Owner,
        };
        self.at_least(needed)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("invalid role {s:?}: expected one of owner, admin, member, viewer")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_order() {
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
        assert!("Admin".parse::<Role>().is_err());
        assert!("superuser".parse::<Role>().is_err());
        assert!(Role::Owner.at_least(Role::Admin));
        assert!(!Role::Viewer.at_least(Role::Member));
    }

    #[test]
    fn permission_table() {
        assert!(Role::Viewer.can(Permission::ReadOrg));
        assert!(!Role::Member.can(Permission::ManageMembers));
        assert!(Role::Admin.can(Permission::ManageInvitations));
        assert!(!Role::Admin.can(Permission::DeleteOrg));
        assert!(Role::Owner.can(Permission::ManageOwners));
        assert!(!Role::Admin.can(Permission::ManageOwners));
    }
}
