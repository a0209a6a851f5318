//! Which user claims each scope releases (OIDC Core §5.4), shared by ID tokens and userinfo.

use serde_json::{Map, Value, json};

use crate::accounts::User;

/// True when the space-separated `scope` contains `name`.
pub fn has_scope(scope: &str, name: &str) -> bool {
    scope.split(' ').any(|s| s == name)
}

/// Adds `name` (scope `profile`) and `email`, `email_verified` (scope `email`).
pub fn add_user_claims(claims: &mut Map<String, Value>, user: &User, scope: &str) {
    if has_scope(scope, "profile") {
        claims.insert("name".into(), json!(user.name));
    }
    if has_scope(scope, "email") {
        claims.insert("email".into(), json!(user.email));
        claims.insert("email_verified".into(), json!(user.email_verified));
    }
}
