//! The grants of the token endpoint, one module each.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use crate::accounts::{self, User};
use crate::app::AppState;
use crate::oauth::error::OAuthError;

/// The user a grant speaks for, if they may still sign in: a deleted or disabled user gets
/// `invalid_grant` (RFC 6749 §5.2), whatever code or refresh token they hold.
pub async fn active_user(state: &AppState, user_id: &str) -> Result<User, OAuthError> {
    accounts::store::find_by_id(&state.db.pool, user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| OAuthError::invalid_grant("the user can no longer sign in"))
}
