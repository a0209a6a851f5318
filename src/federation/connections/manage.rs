//! The one implementation behind the connection API (an organization's and the operator's) and
//! `latchkey connection …`: the rules a connection's fields follow, the upstream checked by
//! discovery at save time, and every write in one transaction with its audit event. The client
//! secret is write-only: it is sealed by the store and appears in no answer, log or audit event.

use axum::http::StatusCode;
use openidconnect::IssuerUrl;
use openidconnect::core::CoreResponseType;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use super::store::{self, NewConnection};
use super::{Connection, DEFAULT_SCOPES, RoleMapping};
use crate::audit::{self, Actor, AuditEvent, action};
use crate::config::Config;
use crate::crypto::kek::KeyEncryptionKey;
use crate::db::Database;
use crate::error::{AppError, Result};
use crate::federation::upstream::{Upstream, UpstreamError};
use crate::orgs::roles::Role;

/// Longest display name, in characters.
pub const MAX_NAME_LEN: usize = 100;
/// Longest client id, in characters.
pub const MAX_CLIENT_ID_LEN: usize = 255;
/// Longest client secret, in characters.
pub const MAX_CLIENT_SECRET_LEN: usize = 1024;
/// Longest issuer URL, in characters.
pub const MAX_ISSUER_LEN: usize = 1000;
/// Most scopes a connection asks for.
pub const MAX_SCOPES: usize = 50;
/// Longest scope token, in characters.
pub const MAX_SCOPE_LEN: usize = 100;
/// Longest role-mapping claim name, in characters.
pub const MAX_CLAIM_LEN: usize = 100;
/// Most entries of a role mapping.
pub const MAX_MAPPING_ENTRIES: usize = 100;

/// Whose connections: one organization's, or the instance's (`org_id` null).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    /// The connections of this organization (its id).
    Org(&'a str),
    /// The instance-wide connections (operators).
    Instance,
}

impl Owner<'_> {
    fn org_id(&self) -> Option<&str> {
        match self {
            Owner::Org(id) => Some(id),
            Owner::Instance => None,
        }
    }

    fn owns(&self, conn: &Connection) -> bool {
        conn.org_id.as_deref() == self.org_id()
    }
}

/// What a connection is created from (the body of `POST …/connections`, and the CLI's options).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionInput {
    /// Display name ("Continue with NAME").
    pub name: String,
    /// The upstream's issuer identifier.
    pub issuer: String,
    /// Our client id at the upstream.
    pub client_id: String,
    /// Our client secret at the upstream.
    pub client_secret: String,
    /// Scopes to ask for (default [`DEFAULT_SCOPES`]).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// The role mapping (organizations' connections only).
    #[serde(default)]
    pub role_mapping: Option<RoleMapping>,
}

/// A change to a connection (the body of `PATCH …/connections/{id}`): any subset of the fields.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionPatch {
    /// New display name.
    #[serde(default)]
    pub name: Option<String>,
    /// New issuer (discovered again).
    #[serde(default)]
    pub issuer: Option<String>,
    /// New client id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// New client secret (sealed again).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// New scopes.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// `Some(None)` (JSON `null`) removes the mapping; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<RoleMapping>)]
    pub role_mapping: Option<Option<RoleMapping>>,
}

impl ConnectionPatch {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.issuer.is_none()
            && self.client_id.is_none()
            && self.client_secret.is_none()
            && self.scopes.is_none()
            && self.role_mapping.is_none()
    }
}

/// A field that is present (even `null`) deserializes to `Some(value)`, so `null` and "absent"
/// differ (`#[serde(default)]` gives `None` for absent).
fn present<'de, D, T>(deserializer: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A connection as the API and the CLI show it: never the secret; with `redirect_uri`, what the
/// admin registers at the upstream.
pub fn connection_json(conn: &Connection, config: &Config) -> Value {
    json!({
        "id": conn.id,
        "org_id": conn.org_id,
        "name": conn.name,
        "issuer": conn.issuer,
        "client_id": conn.client_id,
        "scopes": conn.scopes,
        "role_mapping": conn.role_mapping,
        "redirect_uri": crate::federation::redirect_uri(config),
        "created_at": conn.created_at,
        "updated_at": conn.updated_at,
    })
}

/// 400 `invalid-body` about one field.
fn invalid(detail: impl Into<String>) -> AppError {
    AppError::problem(StatusCode::BAD_REQUEST, "invalid-body", detail)
}

/// 404 `connection-not-found`: no such connection, or one of another organization (or of the
/// instance), whose existence does not leak.
pub fn not_found() -> AppError {
    AppError::problem(
        StatusCode::NOT_FOUND,
        "connection-not-found",
        "no such connection",
    )
}

fn validate_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control)
    {
        return Err(invalid(format!(
            "name must be 1 to {MAX_NAME_LEN} characters without control characters"
        )));
    }
    Ok(name.to_owned())
}

fn validate_client_id(raw: &str) -> Result<String> {
    if raw.is_empty()
        || raw.chars().count() > MAX_CLIENT_ID_LEN
        || raw.chars().any(char::is_control)
    {
        return Err(invalid(format!(
            "client_id must be 1 to {MAX_CLIENT_ID_LEN} characters without control characters"
        )));
    }
    Ok(raw.to_owned())
}

fn validate_client_secret(raw: &str) -> Result<()> {
    if raw.is_empty() || raw.chars().count() > MAX_CLIENT_SECRET_LEN {
        return Err(invalid(format!(
            "client_secret must be 1 to {MAX_CLIENT_SECRET_LEN} characters"
        )));
    }
    Ok(())
}

/// Scope tokens (RFC 6749 §3.3: `1*( %x21 / %x23-5B / %x5D-7E )`), duplicates dropped, `openid`
/// first (OpenID Connect Core §3.1.2.1: without it the upstream does no OpenID Connect).
fn validate_scopes(raw: Option<&[String]>) -> Result<Vec<String>> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect());
    };
    if raw.len() > MAX_SCOPES {
        return Err(invalid(format!("at most {MAX_SCOPES} scopes")));
    }
    let mut scopes = vec!["openid".to_owned()];
    for scope in raw {
        let token_char = |c: char| {
            c == '\x21' || ('\x23'..='\x5b').contains(&c) || ('\x5d'..='\x7e').contains(&c)
        };
        if scope.is_empty() || scope.len() > MAX_SCOPE_LEN || !scope.chars().all(token_char) {
            return Err(invalid(format!(
                "{scope:?} is not a scope token (RFC 6749 §3.3: 1 to {MAX_SCOPE_LEN} printable \
                 ASCII characters without space, '\"' or '\\')"
            )));
        }
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    Ok(scopes)
}

/// A mapping's claim and size, and its roles: `owner` is refused (ownership is granted only in
/// Latchkey, never by an upstream's claim).
fn validate_mapping(mapping: &RoleMapping) -> Result<()> {
    let claim = mapping.claim.trim();
    if claim.is_empty()
        || mapping.claim.chars().count() > MAX_CLAIM_LEN
        || mapping.claim.chars().any(char::is_control)
    {
        return Err(invalid(format!(
            "role_mapping.claim must be 1 to {MAX_CLAIM_LEN} characters without control characters"
        )));
    }
    if mapping.map.len() > MAX_MAPPING_ENTRIES {
        return Err(invalid(format!(
            "role_mapping.map has at most {MAX_MAPPING_ENTRIES} entries"
        )));
    }
    let owner =
        mapping.map.values().any(|r| *r == Role::Owner) || mapping.default_role == Role::Owner;
    if owner {
        return Err(invalid(
            "role_mapping may give admin, member or viewer; the owner role is granted only in \
             Latchkey",
        ));
    }
    Ok(())
}

/// An instance-wide connection has no organization to map roles into.
fn check_mapping_owner(owner: Owner<'_>, mapping: Option<&RoleMapping>) -> Result<()> {
    match mapping {
        Some(_) if owner == Owner::Instance => Err(invalid(
            "an instance-wide connection has no role_mapping: there is no organization to map into",
        )),
        Some(m) => validate_mapping(m),
        None => Ok(()),
    }
}

/// Checks `issuer` the way a sign-in will use it: discovery (the document's `issuer` equal to
/// `issuer`, OpenID Connect Discovery 1.0 §4.3) and its keys fetched through the guarded client,
/// then what the code flow needs: `code` among `response_types_supported`, a token endpoint, at
/// least one key, and `S256` when the document lists `code_challenge_methods_supported` (RFC 8414
/// §2; RFC 7636 §4.2: the flow sends only S256 challenges).
pub async fn check_issuer(upstream: &Upstream, issuer: &str) -> Result<()> {
    if issuer.chars().count() > MAX_ISSUER_LEN {
        return Err(issuer_problem(UpstreamError::Refused(format!(
            "the issuer is longer than {MAX_ISSUER_LEN} characters"
        ))));
    }
    let metadata = upstream.discover(issuer).await.map_err(issuer_problem)?;
    let unusable = |why: &str| {
        issuer_problem(UpstreamError::Invalid(format!(
            "the upstream {issuer} is not usable: {why}"
        )))
    };
    if !metadata
        .response_types_supported()
        .iter()
        .any(|types| types.as_slice() == [CoreResponseType::Code])
    {
        return Err(unusable(
            "its response_types_supported does not list \"code\"",
        ));
    }
    if metadata.token_endpoint().is_none() {
        return Err(unusable("its discovery document has no token_endpoint"));
    }
    if metadata.jwks().keys().is_empty() {
        return Err(unusable("its JWKS has no key"));
    }
    let methods = pkce_methods(upstream, issuer)
        .await
        .map_err(issuer_problem)?;
    if let Some(methods) = methods
        && !methods.iter().any(|m| m == "S256")
    {
        return Err(unusable(
            "its code_challenge_methods_supported does not list \"S256\"",
        ));
    }
    Ok(())
}

/// `code_challenge_methods_supported` of the discovery document (the `openidconnect` crate's core
/// metadata does not read it), fetched again through the guarded client.
async fn pkce_methods(
    upstream: &Upstream,
    issuer: &str,
) -> std::result::Result<Option<Vec<String>>, UpstreamError> {
    let url = IssuerUrl::new(issuer.to_owned())
        .and_then(|i| i.join(".well-known/openid-configuration"))
        .map_err(|_| UpstreamError::Refused(format!("{issuer:?} is not a URL")))?;
    let request = axum::http::Request::builder()
        .method(axum::http::Method::GET)
        .uri(url.as_str())
        .header(axum::http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| UpstreamError::Invalid(format!("request: {e}")))?;
    let response = upstream.call(request).await?;
    if !response.status().is_success() {
        return Err(UpstreamError::Invalid(format!(
            "{url} answered {}",
            response.status()
        )));
    }
    let doc: Value = serde_json::from_slice(response.body())
        .map_err(|e| UpstreamError::Invalid(format!("{url} is not JSON: {e}")))?;
    match doc.get("code_challenge_methods_supported") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        )),
        Some(_) => Err(UpstreamError::Invalid(format!(
            "{url}: code_challenge_methods_supported is not an array"
        ))),
    }
}

/// The problem an unusable issuer answers: 400 `issuer-refused` (an address not allowed),
/// 422 `issuer-unreachable`, 422 `issuer-invalid`; the detail is the upstream error's message.
pub fn issuer_problem(e: UpstreamError) -> AppError {
    match e {
        UpstreamError::Refused(m) => {
            AppError::problem(StatusCode::BAD_REQUEST, "issuer-refused", m)
        }
        UpstreamError::Unreachable(m) => {
            AppError::problem(StatusCode::UNPROCESSABLE_ENTITY, "issuer-unreachable", m)
        }
        UpstreamError::Invalid(m) => {
            AppError::problem(StatusCode::UNPROCESSABLE_ENTITY, "issuer-invalid", m)
        }
    }
}

/// What the create and update need besides the database.
pub struct Services<'a> {
    /// The database.
    pub db: &'a Database,
    /// Seals the client secret.
    pub kek: &'a KeyEncryptionKey,
    /// Discovers the issuer.
    pub upstream: &'a Upstream,
    /// Who acts (audit).
    pub actor: &'a Actor,
    /// Unix seconds.
    pub now: i64,
}

/// Creates a connection of `owner` from `input` after checking every field and the issuer; records
/// `connection.created` in the same transaction.
pub async fn create(
    svc: &Services<'_>,
    owner: Owner<'_>,
    input: ConnectionInput,
) -> Result<Connection> {
    let name = validate_name(&input.name)?;
    let client_id = validate_client_id(&input.client_id)?;
    validate_client_secret(&input.client_secret)?;
    let scopes = validate_scopes(input.scopes.as_deref())?;
    check_mapping_owner(owner, input.role_mapping.as_ref())?;
    // Outside the transaction: a slow upstream must not hold the database.
    check_issuer(svc.upstream, &input.issuer).await?;
    let new = NewConnection {
        org_id: owner.org_id(),
        name: &name,
        issuer: &input.issuer,
        client_id: &client_id,
        client_secret: &input.client_secret,
        scopes: &scopes,
        role_mapping: input.role_mapping.as_ref(),
    };
    let mut tx = svc.db.begin().await?;
    let conn = store::insert(&mut *tx, svc.kek, &new, svc.now).await?;
    let event = AuditEvent {
        org_id: conn.org_id.as_deref(),
        actor: svc.actor,
        action: action::CONNECTION_CREATED,
        target_type: Some("connection"),
        target_id: Some(&conn.id),
        details: json!({
            "name": conn.name,
            "issuer": conn.issuer,
            "client_id": conn.client_id,
            "scopes": conn.scopes,
            "role_mapping": conn.role_mapping,
        }),
    };
    audit::record(&mut *tx, &event, svc.now).await?;
    tx.commit().await?;
    Ok(conn)
}

/// The connections of `owner`, oldest first.
pub async fn list(db: &Database, owner: Owner<'_>) -> Result<Vec<Connection>> {
    match owner {
        Owner::Org(org_id) => store::list_for_org(&db.pool, org_id).await,
        Owner::Instance => store::list_instance(&db.pool).await,
    }
}

/// Connection `id` of `owner` (404 `connection-not-found` for one of anyone else).
pub async fn find<'c>(
    ex: impl crate::db::Exec<'c>,
    owner: Owner<'_>,
    id: &str,
) -> Result<Connection> {
    match store::find(ex, id).await? {
        Some(conn) if owner.owns(&conn) => Ok(conn),
        _ => Err(not_found()),
    }
}

/// Applies `patch` to connection `id` of `owner`: every given field checked, a new issuer
/// discovered, a new secret sealed; `connection.updated` records the fields changed (a new secret
/// only as `"client_secret": "changed"`). Nothing changed: the connection as it is, no event.
pub async fn update(
    svc: &Services<'_>,
    owner: Owner<'_>,
    id: &str,
    patch: ConnectionPatch,
) -> Result<Connection> {
    if patch.is_empty() {
        return Err(invalid(
            "give at least one of name, issuer, client_id, client_secret, scopes and role_mapping",
        ));
    }
    let name = patch.name.as_deref().map(validate_name).transpose()?;
    let client_id = patch
        .client_id
        .as_deref()
        .map(validate_client_id)
        .transpose()?;
    if let Some(secret) = &patch.client_secret {
        validate_client_secret(secret)?;
    }
    let scopes = match &patch.scopes {
        Some(s) => Some(validate_scopes(Some(s))?),
        None => None,
    };
    if let Some(mapping) = &patch.role_mapping {
        check_mapping_owner(owner, mapping.as_ref())?;
    }
    // 404 before any request to an upstream: a caller learns nothing of another's connection.
    let current = find(&svc.db.pool, owner, id).await?;
    if let Some(issuer) = &patch.issuer
        && *issuer != current.issuer
    {
        check_issuer(svc.upstream, issuer).await?;
    }
    let mut tx = svc.db.begin().await?;
    // Read again inside the transaction: the row may have gone meanwhile.
    let old = find(&mut *tx, owner, id).await?;
    let mut new = old.clone();
    let mut changed = Map::new();
    if let Some(name) = name
        && name != old.name
    {
        changed.insert("name".into(), json!(name));
        new.name = name;
    }
    if let Some(issuer) = patch.issuer
        && issuer != old.issuer
    {
        // Discovered above, or the issuer the connection had when read first (checked when saved).
        changed.insert("issuer".into(), json!(issuer));
        new.issuer = issuer;
    }
    if let Some(client_id) = client_id
        && client_id != old.client_id
    {
        changed.insert("client_id".into(), json!(client_id));
        new.client_id = client_id;
    }
    if let Some(scopes) = scopes
        && scopes != old.scopes
    {
        changed.insert("scopes".into(), json!(scopes));
        new.scopes = scopes;
    }
    if let Some(mapping) = patch.role_mapping
        && mapping != old.role_mapping
    {
        changed.insert("role_mapping".into(), json!(mapping));
        new.role_mapping = mapping;
    }
    if patch.client_secret.is_some() {
        // Never the secret itself, nor whether it equals the old one.
        changed.insert("client_secret".into(), json!("changed"));
    }
    if changed.is_empty() {
        return Ok(old);
    }
    new.updated_at = svc.now;
    if !store::update(
        &mut *tx,
        svc.kek,
        &new,
        patch.client_secret.as_deref(),
        svc.now,
    )
    .await?
    {
        return Err(not_found());
    }
    let event = AuditEvent {
        org_id: new.org_id.as_deref(),
        actor: svc.actor,
        action: action::CONNECTION_UPDATED,
        target_type: Some("connection"),
        target_id: Some(&new.id),
        details: Value::Object(changed),
    };
    audit::record(&mut *tx, &event, svc.now).await?;
    tx.commit().await?;
    Ok(new)
}

/// Deletes connection `id` of `owner` with its linked identities; records `connection.deleted`
/// (with how many identities went).
pub async fn delete(
    db: &Database,
    owner: Owner<'_>,
    id: &str,
    actor: &Actor,
    now: i64,
) -> Result<Connection> {
    let mut tx = db.begin().await?;
    let conn = find(&mut *tx, owner, id).await?;
    let identities = store::count_identities(&mut *tx, &conn.id).await?;
    let event = AuditEvent {
        org_id: conn.org_id.as_deref(),
        actor,
        action: action::CONNECTION_DELETED,
        target_type: Some("connection"),
        target_id: Some(&conn.id),
        details: json!({
            "name": conn.name,
            "issuer": conn.issuer,
            "identities_removed": identities,
        }),
    };
    audit::record(&mut *tx, &event, now).await?;
    if !store::delete(&mut *tx, &conn.id).await? {
        return Err(not_found());
    }
    tx.commit().await?;
    Ok(conn)
}

/// Re-seals every connection's client secret under `new` (opened with `old`) inside `tx`: part of
/// `latchkey keys rewrap` ([`crate::crypto::key_seal::rewrap`]), so the database is entirely under
/// one key-encryption key or the other. Fails (the caller's transaction is rolled back) when a
/// secret does not open with `old` or changed meanwhile. Returns how many were re-sealed.
pub async fn rewrap(
    tx: &mut crate::db::Tx,
    old: &KeyEncryptionKey,
    new: &KeyEncryptionKey,
) -> Result<usize> {
    let mut rewrapped = 0;
    for (id, sealed) in store::sealed_secrets(&mut **tx).await? {
        let secret = old
            .open(super::SECRET_PURPOSE, id.as_bytes(), &sealed)
            .map_err(|_| {
                AppError::invalid(format!(
                    "the client secret of connection {id} does not open with the current \
                     key-encryption key; nothing was changed"
                ))
            })?;
        let resealed = new
            .seal(super::SECRET_PURPOSE, id.as_bytes(), &secret)
            .map_err(|e| {
                AppError::Internal(anyhow::anyhow!("cannot seal a connection secret: {e}"))
            })?;
        if !store::replace_sealed(&mut **tx, &id, &sealed, &resealed).await? {
            return Err(AppError::invalid(format!(
                "connection {id} changed during the rewrap; nothing was changed, run it again"
            )));
        }
        rewrapped += 1;
    }
    Ok(rewrapped)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn scopes_get_openid_first_and_tokens_are_checked() {
        assert_eq!(validate_scopes(None).unwrap(), DEFAULT_SCOPES);
        let s = validate_scopes(Some(&["email".into(), "groups".into(), "email".into()])).unwrap();
        assert_eq!(s, ["openid", "email", "groups"]);
        let s = validate_scopes(Some(&["profile".into(), "openid".into()])).unwrap();
        assert_eq!(s, ["openid", "profile"]);
        for bad in ["", "a b", "a\"b", "a\\b", "é"] {
            assert!(validate_scopes(Some(&[bad.into()])).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mappings_never_grant_owner() {
        let m: RoleMapping =
            serde_json::from_value(json!({"claim": "groups", "map": {"x": "owner"}})).unwrap();
        assert!(validate_mapping(&m).is_err());
        let m: RoleMapping =
            serde_json::from_value(json!({"claim": "groups", "default_role": "owner"})).unwrap();
        assert!(validate_mapping(&m).is_err());
        let m: RoleMapping = serde_json::from_value(json!({"claim": " "})).unwrap();
        assert!(validate_mapping(&m).is_err());
        let m: RoleMapping =
            serde_json::from_value(json!({"claim": "groups", "map": {"x": "admin"}})).unwrap();
        assert!(validate_mapping(&m).is_ok());
        assert!(check_mapping_owner(Owner::Instance, Some(&m)).is_err());
    }

    #[test]
    fn null_role_mapping_differs_from_absent() {
        let p: ConnectionPatch = serde_json::from_value(json!({"role_mapping": null})).unwrap();
        assert_eq!(p.role_mapping, Some(None));
        let p: ConnectionPatch = serde_json::from_value(json!({"name": "x"})).unwrap();
        assert_eq!(p.role_mapping, None);
    }
}
