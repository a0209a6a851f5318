//! What every account page shares: the signed-in person (signed out: to the login page, which comes
//! back here) and the navigation; and the overview at `/account`.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use tower_sessions::Session;

use crate::accounts::{self, User};
use crate::app::AppState;
use crate::error::Result;
use crate::login::session::{self, SignedIn};
use crate::oauth::authorize::see_other;
use crate::routes;
use crate::web::page::{ASSET_VERSION, render};

/// The sections of the account pages, in the order of the navigation.
pub const SECTIONS: [(&str, &str); 12] = [
    (routes::ACCOUNT, "Overview"),
    (routes::ACCOUNT_PROFILE, "Profile"),
    (routes::ACCOUNT_EMAIL, "Email"),
    (routes::ACCOUNT_PASSWORD, "Password"),
    (routes::ACCOUNT_TOTP, "Two-factor authentication"),
    (routes::ACCOUNT_PASSKEYS, "Passkeys"),
    (routes::ACCOUNT_IDENTITIES, "Linked sign-ins"),
    (routes::ACCOUNT_SESSIONS, "Sessions and devices"),
    (routes::ACCOUNT_APPS, "Connected apps"),
    (routes::ACCOUNT_HISTORY, "Sign-in history"),
    (routes::ACCOUNT_ORGANIZATIONS, "Organizations"),
    (routes::ACCOUNT_DELETE, "Delete account"),
];

/// The person an account page is for.
#[derive(Debug, Clone)]
pub struct AccountHolder {
    /// The account as it is now.
    pub user: User,
    /// The browser session (its `sid` marks "this browser").
    pub session: SignedIn,
}

/// The signed-in person, or the response that sends a signed-out browser to the login page (which
/// returns to `here` afterwards). A session whose user was deleted or disabled meanwhile counts as
/// signed out.
pub async fn holder(
    state: &AppState,
    session: &Session,
    here: &str,
) -> Result<std::result::Result<AccountHolder, Response>> {
    let to_login = || {
        let next = url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>();
        see_other(&format!("{}?next={next}", routes::LOGIN))
    };
    let Some(signed) = session::signed_in(session, &state.clock).await? else {
        return Ok(Err(to_login()));
    };
    match accounts::store::find_by_id(&state.db.pool, &signed.user_id).await? {
        Some(user) if !user.disabled => Ok(Ok(AccountHolder {
            user,
            session: signed,
        })),
        _ => Ok(Err(to_login())),
    }
}

/// How recent a sign-in must be to add a second factor. A browser session left open (or stolen)
/// must not be enough to attach the attacker's authenticator, which would then lock the owner out
/// and pass for a second factor (OWASP ASVS V3.7.1: re-authenticate before sensitive changes); a
/// person who just signed in is not asked twice.
pub const RECENT_SIGN_IN_SECS: i64 = 15 * 60;

/// [`holder`], when the sign-in is at most [`RECENT_SIGN_IN_SECS`] old; an older one is sent to the
/// login page to sign in again (the same session and `sid` go on), which comes back to `here`.
pub async fn recently_signed_in_holder(
    state: &AppState,
    session: &Session,
    here: &str,
) -> Result<std::result::Result<AccountHolder, Response>> {
    let holder = match holder(state, session, here).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(Err(to_login)),
    };
    if state.clock.now() - holder.session.auth_time <= RECENT_SIGN_IN_SECS {
        return Ok(Ok(holder));
    }
    let next = url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>();
    Ok(Err(see_other(&format!("{}?next={next}", routes::LOGIN))))
}

/// The navigation column: each section with whether it is the current one.
pub fn nav(current: &str) -> Vec<(&'static str, &'static str, bool)> {
    SECTIONS
        .iter()
        .map(|(path, label)| (*path, *label, *path == current))
        .collect()
}

/// `GET /account`.
#[derive(Template)]
#[template(path = "pages/account/overview.html")]
struct OverviewPage<'a> {
    nav: Vec<(&'static str, &'static str, bool)>,
    user: &'a User,
    factors: crate::mfa::Factors,
    /// Names of the sign-in providers linked to the account (enterprise SSO).
    linked: Vec<String>,
    asset_version: &'a str,
}

/// `GET /account`: who is signed in, the state of the second factors, the linked sign-in providers,
/// and the way to each section.
pub async fn overview(State(state): State<AppState>, session: Session) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    let factors = crate::mfa::factors(&state.db.pool, &holder.user.id).await?;
    let linked =
        crate::federation::identities::store::list_for_user(&state.db.pool, &holder.user.id)
            .await?
            .into_iter()
            .map(|l| l.connection_name)
            .collect();
    Ok(render(&OverviewPage {
        nav: nav(routes::ACCOUNT),
        user: &holder.user,
        factors,
        linked,
        asset_version: ASSET_VERSION,
    }))
}
