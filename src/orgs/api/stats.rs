//! `GET /api/v1/stats` (operators only): users by status, users per role, members per organization
//! and sign-ups per UTC day.
//!
//! Filters choose the users counted, in every figure: `from` and `to` (unix seconds, inclusive)
//! bound the sign-up time, `status` is `verified`, `unverified` or `disabled`.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::error::Result;
use crate::orgs::roles::Role;
use crate::orgs::stats::{self, DAY_SECS, UserFilter};
use crate::web::api::{ApiQuery, invalid_query};
use crate::web::bearer::ApiCaller;
use crate::web::openapi::{BadRequest, Forbidden, Unauthorized};

/// Statuses the `status` filter takes.
pub const STATUSES: [&str; 3] = ["verified", "unverified", "disabled"];

/// Query of `GET /api/v1/stats`.
#[derive(Debug, Serialize, Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Count only users who signed up at or after this time (Unix seconds).
    from: Option<i64>,
    /// Count only users who signed up at or before this time (Unix seconds).
    to: Option<i64>,
    /// Count only users of this status: `verified`, `unverified` or `disabled`.
    #[param(pattern = "^(verified|unverified|disabled)$")]
    status: Option<String>,
}

/// Sign-ups of one UTC day.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignupDay {
    /// The day, `YYYY-MM-DD`.
    date: String,
    /// Its start (Unix seconds).
    day_start: i64,
    /// Users who signed up that day.
    signups: i64,
}

/// The body of `GET /api/v1/stats`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// The filters applied (null when not given).
    filters: StatsQuery,
    /// Users by status.
    users: stats::UserCounts,
    /// Users per role (`owner`, `admin`, `member`, `viewer`; a user counts once per role they hold
    /// somewhere) and `none` (in no organization).
    #[schema(value_type = std::collections::BTreeMap<String, i64>)]
    users_per_role: Map<String, Value>,
    /// Members per organization, by slug.
    members_per_organization: Vec<stats::OrgMembers>,
    /// Sign-ups per UTC day with any.
    signups_per_day: Vec<SignupDay>,
}

/// `YYYY-MM-DD` of a day number since the Unix epoch (UTC).
fn date_of(day: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(day.saturating_mul(DAY_SECS)) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Err(_) => day.to_string(),
    }
}

/// `GET /api/v1/stats?from=&to=&status=`: figures over the users the filters choose.
#[utoipa::path(
    operation_id = "stats",
    get,
    path = crate::routes::API_STATS,
    tag = "users",
    params(StatsQuery),
    responses(
        (status = 200, description = "Figures over the users the filters choose", body = Stats),
        BadRequest, Unauthorized, Forbidden,
    ),
    security(("bearer" = [])),
)]
pub async fn stats(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<Json<Stats>> {
    caller.require_operator()?;
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from > to
    {
        return Err(invalid_query("from must not be after to"));
    }
    if let Some(status) = query.status.as_deref()
        && !STATUSES.contains(&status)
    {
        return Err(invalid_query(format!(
            "status must be one of {}",
            STATUSES.join(", ")
        )));
    }
    let filter = UserFilter {
        from: query.from,
        to: query.to,
        status: query.status.as_deref(),
    };
    let db = &state.db.pool;
    let users = stats::user_counts(db, &filter).await?;
    let per_role = stats::users_per_role(db, &filter).await?;
    let mut roles = Map::new();
    for role in Role::ALL {
        let n = per_role
            .iter()
            .find(|(r, _)| r == role.as_str())
            .map_or(0, |(_, n)| *n);
        roles.insert(role.as_str().to_owned(), json!(n));
    }
    roles.insert(
        "none".to_owned(),
        json!(stats::users_without_org(db, &filter).await?),
    );
    let orgs = stats::members_per_org(db, &filter).await?;
    let signups_per_day = stats::signups_per_day(db, &filter)
        .await?
        .into_iter()
        .map(|(day, signups)| SignupDay {
            date: date_of(day),
            day_start: day * DAY_SECS,
            signups,
        })
        .collect();
    Ok(Json(Stats {
        filters: query,
        users,
        users_per_role: roles,
        members_per_organization: orgs,
        signups_per_day,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_days() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(20_000), "2024-10-04");
    }
}
