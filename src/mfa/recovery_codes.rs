//! Single-use recovery codes (OWASP ASVS V2.6: look-up secrets): ten made when a factor is set up
//! and whenever the person regenerates them, each accepted once, the way back in when the phone or
//! the passkey is lost.
//!
//! A code is 10 characters of a 32-letter alphabet (Crockford's base32: no `i`, `l`, `o`, `u`), 50
//! bits from the OS CSPRNG, shown as `xxxxx-xxxxx` and accepted in any case, with or without the
//! dash and spaces (and `i`/`l` read as `1`, `o` as `0`). Only an HMAC-SHA256 under a secret key,
//! bound to the user id, is stored (ASVS V2.6.2): a plain hash of 50 bits would be reversed
//! quickly from a database dump. The HMAC key is random, sealed under the key-encryption key in
//! `mfa_keys` (migration 0012), so `keys rewrap` moves it like every sealed secret. Using a code is
//! a conditional update on `used_at is null`, so it is never accepted twice, even by two processes
//! at once.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::mail::FactorChange;
use crate::accounts::User;
use crate::app::AppState;
use crate::audit::action;
use crate::crypto::kek::KeyEncryptionKey;
use crate::crypto::password::Password;
use crate::crypto::tokens::{hmac_sha256, new_id};
use crate::db::{Exec, Tx};
use crate::error::{AppError, Result};
use crate::routes;
use crate::self_service::notice;
use crate::self_service::pages::{holder, nav};
use crate::self_service::reauth::{self};
use crate::web::csrf;
use crate::web::page::{ASSET_VERSION, render};
use crate::web::request_meta::RequestMeta;

/// Codes made at a time.
pub const CODES: usize = 10;
/// Characters of a code (without the dash): 10 × 5 bits = 50 bits.
pub const CODE_CHARS: usize = 10;
/// Crockford's base32 alphabet, lower case: no `i`, `l`, `o` or `u` to misread.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Sealing purpose of the HMAC key ([`KeyEncryptionKey::seal`]).
const MAC_PURPOSE: &str = "recovery-codes";

/// The recovery-code page: how many are left, and regenerating them.
pub fn router() -> Router<AppState> {
    Router::new().route(
        routes::ACCOUNT_RECOVERY_CODES,
        get(codes_page).post(regenerate_submit),
    )
}

/// A fresh code, as shown (`xxxxx-xxxxx`).
fn new_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let chars: String = (0..CODE_CHARS)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    format!("{}-{}", &chars[..CODE_CHARS / 2], &chars[CODE_CHARS / 2..])
}

/// The code as typed, in its stored form (lower case, no dash or spaces, look-alikes mapped the
/// Crockford way); `None` when it cannot be a code.
pub fn normalise(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let mut code = String::with_capacity(CODE_CHARS);
    for c in typed.chars() {
        let c = match c.to_ascii_lowercase() {
            '-' | '_' => continue,
            c if c.is_whitespace() => continue,
            'i' | 'l' => '1',
            'o' => '0',
            c => c,
        };
        if !ALPHABET.contains(&u8::try_from(c).ok()?) {
            return None;
        }
        code.push(c);
    }
    (code.len() == CODE_CHARS).then_some(code)
}

/// Name of the HMAC key in `mfa_keys` (migration 0012).
const KEY_NAME: &str = "recovery-codes";

/// The HMAC key of the recovery codes: 32 random bytes made on first use, kept sealed under the
/// key-encryption key (purpose [`MAC_PURPOSE`], aad [`KEY_NAME`]) so that `keys rewrap` can move
/// it to a new KEK ([`rewrap`]); a key derived from the KEK itself would change with it and void
/// every code.
async fn mac_key(tx: &mut Tx, state: &AppState, now: i64) -> Result<Vec<u8>> {
    let select = "select key_sealed from mfa_keys where name = $1";
    let mut sealed: Option<String> = sqlx::query_scalar(select)
        .bind(KEY_NAME)
        .fetch_optional(&mut **tx)
        .await?;
    if sealed.is_none() {
        let mut key = vec![0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        let new = state
            .kek
            .seal(MAC_PURPOSE, KEY_NAME.as_bytes(), &key)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("cannot seal a key: {e}")))?;
        // Two first uses at once: one insert wins, both read the winner.
        sqlx::query(
            "insert into mfa_keys (name, key_sealed, created_at) values ($1, $2, $3) \
             on conflict (name) do nothing",
        )
        .bind(KEY_NAME)
        .bind(&new)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        sealed = sqlx::query_scalar(select)
            .bind(KEY_NAME)
            .fetch_optional(&mut **tx)
            .await?;
    }
    let sealed = sealed
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the recovery-code key is gone")))?;
    state
        .kek
        .open(MAC_PURPOSE, KEY_NAME.as_bytes(), &sealed)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("cannot open the recovery-code key: {e}")))
}

/// Re-seals the recovery-code key under `new` (opened with `old`) inside `tx`: part of
/// `latchkey keys rewrap` ([`crate::crypto::key_seal::rewrap`]).
pub async fn rewrap(tx: &mut Tx, old: &KeyEncryptionKey, new: &KeyEncryptionKey) -> Result<()> {
    let sealed: Option<String> =
        sqlx::query_scalar("select key_sealed from mfa_keys where name = $1")
            .bind(KEY_NAME)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(sealed) = sealed else {
        return Ok(());
    };
    let key = old
        .open(MAC_PURPOSE, KEY_NAME.as_bytes(), &sealed)
        .map_err(|_| {
            AppError::invalid(
                "the recovery-code key does not open with the current key-encryption key; \
                 nothing was changed",
            )
        })?;
    let resealed = new
        .seal(MAC_PURPOSE, KEY_NAME.as_bytes(), &key)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("cannot seal a key: {e}")))?;
    let done =
        sqlx::query("update mfa_keys set key_sealed = $1 where name = $2 and key_sealed = $3")
            .bind(&resealed)
            .bind(KEY_NAME)
            .bind(&sealed)
            .execute(&mut **tx)
            .await?;
    if done.rows_affected() != 1 {
        return Err(AppError::invalid(
            "the recovery-code key changed during the rewrap; nothing was changed, run it again",
        ));
    }
    Ok(())
}

/// The stored form of `code` (normalised) for `user_id` under `key`: base64url HMAC-SHA256, bound
/// to the user id.
fn code_mac(key: &[u8], user_id: &str, code: &str) -> Result<String> {
    let mac = hmac_sha256(key, &[user_id.as_bytes(), &[0], code.as_bytes()]).ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!("cannot compute a recovery code's HMAC"))
    })?;
    Ok(URL_SAFE_NO_PAD.encode(mac))
}

/// Replaces every recovery code of `user_id` by [`CODES`] new ones inside `tx`; returns them as they
/// are shown (once: only their HMACs are kept).
pub async fn replace(
    tx: &mut Tx,
    state: &AppState,
    user_id: &str,
    now: i64,
) -> Result<Vec<String>> {
    sqlx::query("delete from recovery_codes where user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    let key = mac_key(tx, state, now).await?;
    let mut shown = Vec::with_capacity(CODES);
    while shown.len() < CODES {
        let code = new_code();
        if shown.contains(&code) {
            continue;
        }
        let stored = normalise(&code).ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!("a new recovery code is malformed"))
        })?;
        sqlx::query(
            "insert into recovery_codes (id, user_id, code_hash, created_at, used_at) \
             values ($1, $2, $3, $4, null)",
        )
        .bind(new_id())
        .bind(user_id)
        .bind(code_mac(&key, user_id, &stored)?)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        shown.push(code);
    }
    Ok(shown)
}

/// Removes every recovery code of `user_id` (the last factor went: they would open nothing).
pub async fn delete_all<'c>(ex: impl Exec<'c>, user_id: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("delete from recovery_codes where user_id = $1")
        .bind(user_id)
        .execute(ex)
        .await?
        .rows_affected())
}

/// Unused codes of `user_id`.
pub async fn left<'c>(ex: impl Exec<'c>, user_id: &str) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as(
        "select count(*) from recovery_codes where user_id = $1 and used_at is null",
    )
    .bind(user_id)
    .fetch_one(ex)
    .await?;
    Ok(n)
}

/// Uses up `typed` for `user_id` inside `tx` when it is one of its unused codes; returns how many
/// are left after it, `None` when it is not (wrong, malformed, or used before).
pub async fn consume(
    tx: &mut Tx,
    state: &AppState,
    user_id: &str,
    typed: &str,
    now: i64,
) -> Result<Option<i64>> {
    let Some(code) = normalise(typed) else {
        return Ok(None);
    };
    let key = mac_key(tx, state, now).await?;
    let mac = code_mac(&key, user_id, &code)?;
    let done = sqlx::query(
        "update recovery_codes set used_at = $1 \
         where user_id = $2 and code_hash = $3 and used_at is null",
    )
    .bind(now)
    .bind(user_id)
    .bind(&mac)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    Ok(Some(left(&mut **tx, user_id).await?))
}

/// `GET /account/recovery-codes`.
#[derive(Template)]
#[template(path = "pages/account/recovery_codes.html")]
struct CodesPage<'a> {
    nav: Vec<(&'static str, &'static str, bool)>,
    csrf: &'a str,
    email: &'a str,
    /// The account has a factor the codes stand in for.
    has_factor: bool,
    left: i64,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    asset_version: &'a str,
}

/// The codes, shown once (after enrolment or regeneration).
#[derive(Template)]
#[template(path = "pages/account/recovery_codes_shown.html")]
pub struct ShownCodesPage<'a> {
    /// The account navigation.
    pub nav: Vec<(&'static str, &'static str, bool)>,
    /// The first sentence ("Your authenticator app is set up.", ...).
    pub lead: &'a str,
    /// The codes as shown.
    pub codes: &'a [String],
    /// Where "Continue" goes.
    pub continue_href: &'a str,
    /// Static asset version.
    pub asset_version: &'a str,
}

/// The page that shows `codes` once (200, never cached: [`render`] sets `no-store`).
pub fn shown_page(current: &str, lead: &str, codes: &[String], continue_href: &str) -> Response {
    render(&ShownCodesPage {
        nav: nav(current),
        lead,
        codes,
        continue_href,
        asset_version: ASSET_VERSION,
    })
}

async fn codes_view(
    state: &AppState,
    session: &Session,
    user: &User,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response> {
    let csrf = csrf::token()?;
    let notice = notice::take(session).await?;
    let factors = super::factors(&state.db.pool, &user.id).await?;
    let mut response = render(&CodesPage {
        nav: nav(routes::ACCOUNT_TOTP),
        csrf: &csrf,
        email: &user.email,
        has_factor: factors.any(),
        left: factors.recovery_codes,
        notice: notice.as_deref(),
        error,
        asset_version: ASSET_VERSION,
    });
    *response.status_mut() = status;
    Ok(response)
}

/// `GET /account/recovery-codes`: how many codes are left, and the form that makes new ones.
pub async fn codes_page(State(state): State<AppState>, session: Session) -> Result<Response> {
    let holder = match holder(&state, &session, routes::ACCOUNT_RECOVERY_CODES).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    codes_view(&state, &session, &holder.user, None, StatusCode::OK).await
}

/// Fields of the regenerate form.
#[derive(Deserialize)]
pub struct RegenerateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

/// `POST /account/recovery-codes`: after the password (re-authentication, throttled), ten new codes
/// replace the old ones, in one transaction with the audit event
/// (`mfa.recovery_codes_generated`) and the owner's mail; shown once.
pub async fn regenerate_submit(
    State(state): State<AppState>,
    session: Session,
    meta: RequestMeta,
    Form(mut form): Form<RegenerateForm>,
) -> Result<Response> {
    csrf::check(&form.csrf)?;
    let holder = match holder(&state, &session, routes::ACCOUNT_RECOVERY_CODES).await? {
        Ok(holder) => holder,
        Err(to_login) => return Ok(to_login),
    };
    let user = &holder.user;
    if !super::factors(&state.db.pool, &user.id).await?.any() {
        let message =
            "Recovery codes stand in for an authenticator app or a passkey. Set one up first.";
        return codes_view(
            &state,
            &session,
            user,
            Some(message),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let password = Password::new(std::mem::take(&mut form.password));
    if let Some(refused) = reauth::verify(&state, user, &password)
        .await?
        .page_refusal()
    {
        let message = Some(refused.message.as_str());
        let page = codes_view(&state, &session, user, message, refused.status).await?;
        return Ok(refused.finish(page));
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let codes = replace(&mut tx, &state, &user.id, now).await?;
    super::record_change(
        &mut tx,
        &state,
        &meta,
        super::Change {
            user_id: &user.id,
            email: &user.email,
            action: action::MFA_RECOVERY_CODES_GENERATED,
            details: json!({ "codes": CODES }),
            mail: FactorChange::RecoveryCodesGenerated,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    state.mailer.wake();
    tracing::info!(user_id = %user.id, "recovery codes regenerated");
    Ok(shown_page(
        routes::ACCOUNT_TOTP,
        "New recovery codes were made. The earlier ones no longer work.",
        &codes,
        routes::ACCOUNT_RECOVERY_CODES,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_codes_read_back_in_any_form() {
        for _ in 0..50 {
            let code = new_code();
            assert_eq!(code.len(), CODE_CHARS + 1);
            let plain = normalise(&code).unwrap_or_default();
            assert_eq!(plain.len(), CODE_CHARS);
            assert_eq!(
                normalise(&code.to_uppercase()).as_deref(),
                Some(plain.as_str())
            );
            assert_eq!(normalise(&plain).as_deref(), Some(plain.as_str()));
            let spaced = format!(" {} {} ", &plain[..5], &plain[5..]);
            assert_eq!(normalise(&spaced).as_deref(), Some(plain.as_str()));
        }
    }

    #[test]
    fn look_alikes_and_junk() {
        assert_eq!(normalise("IL0O0-abcde").as_deref(), Some("11000abcde"));
        for bad in [
            "",
            "abcd",
            "abcde-abcdef",
            "abcde-abcd!",
            "abcde-abcdu",
            "123456",
        ] {
            assert_eq!(normalise(bad), None, "{bad}");
        }
    }
}
