//! `GET /api/v1/me` (who the token speaks for, and where they belong) and `GET /api/v1/roles` (the
//! permission table, so clients need not hard-code it).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::Result;
use crate::orgs::roles::{Permission, Role};
use crate::orgs::store;
use crate::web::bearer::{ApiCaller, SCOPE_ACCOUNT_READ, SCOPE_ORG_READ};

/// `GET /api/v1/me`: the calling user and their memberships `[{org_id, org_slug, org_name, role}]`
/// (docs/api.md). Needs a user token with `org:read` or `account:read` (an
/// account page of a single-page app reads who is signed in without any organization scope).
pub async fn me(State(state): State<AppState>, caller: ApiCaller) -> Result<Json<Value>> {
    let user = caller.require_user()?;
    if !caller.token.has_scope(SCOPE_ACCOUNT_READ) {
        caller.require_scope(SCOPE_ORG_READ)?;
    }
    let memberships: Vec<Value> = store::memberships_of_user(&state.db.pool, &user.id)
        .await?
        .into_iter()
        .map(|(org, role)| {
            json!({"org_id": org.id, "org_slug": org.slug, "org_name": org.name, "role": role})
        })
        .collect();
    // The user's fields at the top level and again under `user`: docs/api.md says only "user and
    // memberships", and clients read it both ways.
    let profile = json!({
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "email_verified": user.email_verified,
        "created_at": user.created_at,
    });
    let mut body = profile.clone();
    if let Some(fields) = body.as_object_mut() {
        fields.insert("user".into(), profile);
        fields.insert("memberships".into(), Value::Array(memberships));
    }
    Ok(Json(body))
}

/// `GET /api/v1/roles`: every role, strongest first, with the permissions it holds, read from the
/// one permission table ([`Role::can`]). Any authenticated caller may read it.
pub async fn roles(_caller: ApiCaller) -> Json<Value> {
    let roles: Vec<Value> = Role::ALL
        .into_iter()
        .map(|role| {
            let permissions: Vec<Permission> = Permission::ALL
                .into_iter()
                .filter(|p| role.can(*p))
                .collect();
            json!({"name": role, "rank": role.rank(), "permissions": permissions})
        })
        .collect();
    let permissions: Vec<Value> = Permission::ALL
        .into_iter()
        .map(|p| json!({"name": p, "description": p.description(), "scope": crate::orgs::access::scope_for(p)}))
        .collect();
    Json(json!({"roles": roles, "permissions": permissions}))
}
