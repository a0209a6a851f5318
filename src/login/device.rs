//! Known browsers and the new-device alert (OWASP Authentication Cheat Sheet, "notify the user of
//! unusual sign-ins").
//!
//! Each browser gets a long-lived random cookie ([`DEVICE_COOKIE`], or [`SECURE_DEVICE_COOKIE`] on
//! `https` issuers: `__Host-` binds it to our origin). A successful login stores its SHA-256 per
//! account in `known_devices`. A login from a browser the account has not used before mails the
//! owner "New sign-in to your account" (time, address, browser) when `LATCHKEY_NEW_DEVICE_ALERTS`
//! is `on`, except for the account's very first login, which only registers the browser.

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use serde_json::json;

use super::store;
use crate::accounts::User;
use crate::app::AppState;
use crate::audit::{self, Actor, AuditEvent, action};
use crate::config::Config;
use crate::crypto::tokens::{SecretToken, random_token};
use crate::db::Tx;
use crate::error::Result;
use crate::mail::{self, MailContext, compose, format_utc};
use crate::routes;
use crate::web::request_meta::RequestMeta;

/// Device cookie on `http://` development issuers.
pub const DEVICE_COOKIE: &str = "latchkey_device";
/// Device cookie on `https` issuers (Secure, Path=/, no Domain: RFC 6265bis §4.1.3.2).
pub const SECURE_DEVICE_COOKIE: &str = "__Host-latchkey_device";
/// The device cookie lives a year (renewed at every login).
pub const DEVICE_COOKIE_MAX_AGE_SECS: i64 = 365 * 24 * 60 * 60;
/// Subject of the alert.
pub const NEW_DEVICE_SUBJECT: &str = "New sign-in to your account";
/// Longest browser description put in the mail.
const MAX_AGENT_CHARS: usize = 200;

/// Text of the alert.
#[derive(askama::Template)]
#[template(path = "mail/new_device.txt")]
struct AlertText<'a> {
    ctx: &'a MailContext,
    when: &'a str,
    ip: &'a str,
    agent: &'a str,
    forgot_link: &'a str,
}

/// HTML of the alert.
#[derive(askama::Template)]
#[template(path = "mail/new_device.html")]
struct AlertHtml<'a> {
    ctx: &'a MailContext,
    when: &'a str,
    ip: &'a str,
    agent: &'a str,
    forgot_link: &'a str,
}

/// The device cookie's name for this issuer.
pub fn cookie_name(config: &Config) -> &'static str {
    if config.is_https() {
        SECURE_DEVICE_COOKIE
    } else {
        DEVICE_COOKIE
    }
}

/// The browser's device token: the one its cookie carries when well-formed, else a new one.
pub fn device_token(headers: &HeaderMap, config: &Config) -> SecretToken {
    let name = cookie_name(config);
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| {
            (16..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(|v| SecretToken::new(v.to_owned()))
        .unwrap_or_else(random_token)
}

/// Adds the (renewed) device cookie to a response's headers.
pub fn set_cookie(headers: &mut HeaderMap, config: &Config, token: &SecretToken) {
    let secure = if config.is_https() { "; Secure" } else { "" };
    let cookie = format!(
        "{}={}; Max-Age={DEVICE_COOKIE_MAX_AGE_SECS}; Path=/; HttpOnly; SameSite=Lax{secure}",
        cookie_name(config),
        token.expose()
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.append(SET_COOKIE, value);
    }
}

/// Records this browser for `user` inside the login's transaction; for a browser the account had
/// not used before (and not its first ever), records an audit event and queues the alert when
/// enabled. True when a mail was queued (wake the mailer after the commit).
pub async fn recognise(
    tx: &mut Tx,
    state: &AppState,
    user: &User,
    meta: &RequestMeta,
    device: &SecretToken,
    now: i64,
) -> Result<bool> {
    let hash = device.hash();
    if store::touch_known_device(&mut **tx, &user.id, hash.as_str(), now).await? {
        return Ok(false);
    }
    let known = store::count_known_devices(&mut **tx, &user.id).await?;
    if !store::insert_known_device(&mut **tx, &user.id, hash.as_str(), now).await? || known == 0 {
        return Ok(false);
    }
    let alert = state.config.new_device_alerts;
    audit::record(
        &mut **tx,
        &AuditEvent {
            org_id: None,
            actor: &Actor::user(user.id.clone(), meta.clone()),
            action: action::NEW_DEVICE_SIGN_IN,
            target_type: Some("user"),
            target_id: Some(&user.id),
            details: json!({ "alert_mailed": alert }),
        },
        now,
    )
    .await?;
    if !alert {
        return Ok(false);
    }
    let ctx = MailContext::new(&state.config);
    let when = format_utc(now);
    let ip = meta.ip.as_deref().unwrap_or("an unknown address");
    let agent: String = meta
        .user_agent
        .as_deref()
        .unwrap_or("an unknown browser")
        .chars()
        .take(MAX_AGENT_CHARS)
        .collect();
    let forgot_link = ctx.link(routes::PASSWORD_FORGOT);
    let text = AlertText {
        ctx: &ctx,
        when: &when,
        ip,
        agent: &agent,
        forgot_link: &forgot_link,
    };
    let html = AlertHtml {
        ctx: &ctx,
        when: &when,
        ip,
        agent: &agent,
        forgot_link: &forgot_link,
    };
    let mail = compose(&user.email, NEW_DEVICE_SUBJECT, &text, &html)?;
    mail::queue(&mut **tx, &mail, now).await?;
    Ok(true)
}
