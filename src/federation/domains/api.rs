//! The management API of an organization's domains: claim (`POST …/domains {domain}` answers the
//! TXT record to publish), list, read, remove, and `POST …/domains/{domain}/verify`. Admins and
//! owners only: a verified domain routes sign-ins and bounds `sso_required`, so it is managed like
//! the organization itself.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dns::{self, TxtAnswer};
use super::store::{self, OrgDomain};
use super::{Claimed, domain_json, domain_not_found, domain_taken, txt_name, txt_value};
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::db::Exec;
use crate::error::{AppError, Result};
use crate::orgs::access::{OrgAccess, authorize};
use crate::orgs::roles::{Permission, Role};
use crate::routes;
use crate::web::api::ApiJson;
use crate::web::bearer::ApiCaller;
use crate::web::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unprocessable,
    UnsupportedMediaType,
};
use crate::web::request_meta::RequestMeta;

/// The domain routes of the management API, each with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(read, remove))
        .routes(routes!(verify))
}

/// The DNS record that proves control of a domain.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a description only
pub struct TxtRecord {
    /// `_latchkey-challenge.DOMAIN`.
    name: String,
    /// Always `TXT`.
    #[schema(pattern = "^TXT$")]
    r#type: String,
    /// The value to publish.
    value: String,
}

/// A domain claim as the API answers it ([`domain_json`], which renders it; this type only
/// describes it in the OpenAPI document).
#[derive(utoipa::ToSchema)]
#[schema(as = Domain)]
#[allow(dead_code)] // a description only
pub struct DomainView {
    /// The domain, lower-case.
    domain: String,
    /// Whether the TXT record was found.
    verified: bool,
    /// Unix seconds of the verification; null until verified.
    verified_at: Option<i64>,
    /// Unix seconds of the claim.
    created_at: i64,
    /// The record to publish.
    txt_record: TxtRecord,
}

/// Reads need `org:read` and the admin role (the permission table has no read permission for
/// admins but the audit log's, so the role is checked here, with the same 403 as [`authorize`]).
async fn authorize_read<'c>(
    ex: impl Exec<'c>,
    caller: &ApiCaller,
    org_ref: &str,
) -> Result<OrgAccess> {
    let access = authorize(ex, caller, org_ref, Permission::ReadOrg).await?;
    if let Some(role) = access.role
        && !role.at_least(Role::Admin)
    {
        return Err(AppError::problem(
            StatusCode::FORBIDDEN,
            "role-insufficient",
            format!("the {role} role may not do this"),
        ));
    }
    Ok(access)
}

/// Writes: admins and owners, `org:write` (the permission of renaming the organization).
async fn authorize_write<'c>(
    ex: impl Exec<'c>,
    caller: &ApiCaller,
    org_ref: &str,
) -> Result<OrgAccess> {
    authorize(ex, caller, org_ref, Permission::UpdateOrg).await
}

/// Body of `POST /api/v1/orgs/{org}/domains`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    /// The domain to claim (e.g. `example.com`).
    domain: String,
}

/// `POST /api/v1/orgs/{org}/domains` `{domain}`: claims a domain; 201 with `Location` and the TXT
/// record to publish, or 200 with the organization's existing claim (idempotent). 400
/// `invalid-domain`, 409 `domain-taken` (verified by another organization). Audited `domain.added`.
#[utoipa::path(
    operation_id = "domains_add",
    post,
    path = crate::routes::API_ORG_DOMAINS,
    tag = "sso",
    params(("org" = String, Path, description = "The organization's id or slug")),
    request_body = AddDomain,
    responses(
        (status = 201, description = "Claimed; publish the TXT record, then verify", body = DomainView, headers(("Location" = String, description = "The claim's URL"))),
        (status = 200, description = "The organization's existing claim", body = DomainView),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, UnsupportedMediaType,
    ),
    security(("bearer" = [])),
)]
pub async fn add(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
    Path(org_ref): Path<String>,
    ApiJson(body): ApiJson<AddDomain>,
) -> Result<Response> {
    let mut tx = state.db.begin().await?;
    let access = authorize_write(&mut *tx, &caller, &org_ref).await?;
    let domain = super::validate_domain(&body.domain)?;
    let actor = Actor::api(&caller, meta);
    let claimed = super::claim(&mut tx, &access.org.id, &domain, &actor, state.clock.now()).await?;
    tx.commit().await?;
    Ok(match claimed {
        Claimed::Existing(existing) => Json(domain_json(&existing)).into_response(),
        Claimed::New(new) => {
            let mut response = (StatusCode::CREATED, Json(domain_json(&new))).into_response();
            let location = format!("{}/{}/domains/{}", routes::API_ORGS, access.org.id, domain);
            if let Ok(location) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
    })
}

/// `GET /api/v1/orgs/{org}/domains`: a JSON array, alphabetically (like every list of the API).
#[utoipa::path(
    operation_id = "domains_list",
    get,
    path = crate::routes::API_ORG_DOMAINS,
    tag = "sso",
    params(("org" = String, Path, description = "The organization's id or slug")),
    responses(
        (status = 200, description = "The organization's domains, alphabetically", body = [DomainView]),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(org_ref): Path<String>,
) -> Result<Json<Value>> {
    let access = authorize_read(&state.db.pool, &caller, &org_ref).await?;
    let domains = store::list_for_org(&state.db.pool, &access.org.id).await?;
    Ok(Json(Value::Array(
        domains.iter().map(domain_json).collect(),
    )))
}

/// The organization's claim of the domain in the path (compared lower-case); 404
/// `domain-not-found` otherwise, also for another organization's claim.
async fn claim_in_path<'c>(ex: impl Exec<'c>, org_id: &str, raw: &str) -> Result<OrgDomain> {
    let domain = raw.trim().to_ascii_lowercase();
    store::find(ex, org_id, &domain)
        .await?
        .ok_or_else(|| domain_not_found(&domain))
}

/// `GET /api/v1/orgs/{org}/domains/{domain}`: one claim.
#[utoipa::path(
    operation_id = "domains_read",
    get,
    path = crate::routes::API_ORG_DOMAIN,
    tag = "sso",
    params(("org" = String, Path, description = "The organization's id or slug"), ("domain" = String, Path, description = "The domain")),
    responses(
        (status = 200, description = "The claim", body = DomainView),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn read(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path((org_ref, domain)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let access = authorize_read(&state.db.pool, &caller, &org_ref).await?;
    let claim = claim_in_path(&state.db.pool, &access.org.id, &domain).await?;
    Ok(Json(domain_json(&claim)))
}

/// `DELETE /api/v1/orgs/{org}/domains/{domain}`: removes the claim (verified or not); 204, audited
/// `domain.removed`. Members of the domain are then no longer bound by `sso_required`.
#[utoipa::path(
    operation_id = "domains_remove",
    delete,
    path = crate::routes::API_ORG_DOMAIN,
    tag = "sso",
    params(("org" = String, Path, description = "The organization's id or slug"), ("domain" = String, Path, description = "The domain")),
    responses(
        (status = 204, description = "Removed"),
        BadRequest, Unauthorized, Forbidden, NotFound,
    ),
    security(("bearer" = [])),
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
    Path((org_ref, domain)): Path<(String, String)>,
) -> Result<StatusCode> {
    let mut tx = state.db.begin().await?;
    let access = authorize_write(&mut *tx, &caller, &org_ref).await?;
    let claim = claim_in_path(&mut *tx, &access.org.id, &domain).await?;
    store::delete(&mut *tx, &access.org.id, &claim.domain).await?;
    let actor = Actor::api(&caller, meta);
    let event = AuditEvent {
        org_id: Some(&access.org.id),
        actor: &actor,
        action: action::DOMAIN_REMOVED,
        target_type: Some("domain"),
        target_id: Some(&claim.domain),
        details: json!({"domain": claim.domain, "was_verified": claim.verified_at.is_some()}),
    };
    audit::record(&mut *tx, &event, state.clock.now()).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/orgs/{org}/domains/{domain}/verify`: looks up the TXT record
/// `_latchkey-challenge.DOMAIN` ([`dns`]); one string equal to the expected value verifies the
/// domain: 200 with `verified: true`, audited `domain.verified` `{method: "dns"}`. A domain
/// verified already answers 200 without a lookup. No such record, another value or a failed
/// lookup: 422 `domain-not-verified` naming the record to publish, audited
/// `domain.verification_failed`. 409 `domain-taken` when another organization verified it.
#[utoipa::path(
    operation_id = "domains_verify",
    post,
    path = crate::routes::API_ORG_DOMAIN_VERIFY,
    tag = "sso",
    params(("org" = String, Path, description = "The organization's id or slug"), ("domain" = String, Path, description = "The domain")),
    responses(
        (status = 200, description = "Verified", body = DomainView),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, Unprocessable,
    ),
    security(("bearer" = [])),
)]
pub async fn verify(
    State(state): State<AppState>,
    caller: ApiCaller,
    meta: RequestMeta,
    Path((org_ref, domain)): Path<(String, String)>,
) -> Result<Json<Value>> {
    // The lookup takes up to seconds: no transaction is held across it.
    let access = authorize_write(&state.db.pool, &caller, &org_ref).await?;
    let org_id = access.org.id.as_str();
    let claim = claim_in_path(&state.db.pool, org_id, &domain).await?;
    if claim.verified_at.is_some() {
        return Ok(Json(domain_json(&claim)));
    }
    if store::verified_owner(&state.db.pool, &claim.domain)
        .await?
        .is_some_and(|owner| owner != org_id)
    {
        return Err(domain_taken(&claim.domain));
    }
    let name = txt_name(&claim.domain);
    let expected = txt_value(&claim.challenge);
    let answer = dns::lookup_txt(state.config.dns_server, &name).await;
    let actor = Actor::api(&caller, meta);
    let now = state.clock.now();
    let failure = match &answer {
        TxtAnswer::Found(values) if values.iter().any(|v| v.trim() == expected) => None,
        TxtAnswer::Found(_) => Some("the TXT record has another value".to_owned()),
        TxtAnswer::NoRecord => Some("no TXT record".to_owned()),
        TxtAnswer::Failed(why) => Some(format!("lookup failed: {why}")),
    };
    if let Some(reason) = failure {
        let event = AuditEvent {
            org_id: Some(org_id),
            actor: &actor,
            action: action::DOMAIN_VERIFICATION_FAILED,
            target_type: Some("domain"),
            target_id: Some(&claim.domain),
            details: json!({"domain": claim.domain, "reason": reason}),
        };
        audit::record(&state.db.pool, &event, now).await?;
        let found = match answer {
            TxtAnswer::Found(_) => "a TXT record with another value was found",
            TxtAnswer::NoRecord => "no TXT record was found",
            TxtAnswer::Failed(_) => "the DNS lookup failed",
        };
        return Err(AppError::problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "domain-not-verified",
            format!(
                "{found} at {name}: publish a TXT record {name} with the value {expected} and \
                 verify again (DNS changes may take a while to appear)"
            ),
        ));
    }
    let mut tx = state.db.begin().await?;
    let verified = super::mark_verified(&mut tx, org_id, &claim.domain, "dns", &actor, now).await?;
    tx.commit().await?;
    Ok(Json(domain_json(&verified)))
}
