//! The operator's client management API (`/api/v1/clients`, scope `admin`).

use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;

/// The routes of `/api/v1/clients` (filled in by the client-management work).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
