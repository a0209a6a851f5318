//! Small signed cookies for what a browser must hold before it has a session: the CSRF token of
//! the pre-login forms ([`super::csrf`]) and the invitation being opened. Keeping these out of the
//! session store means an anonymous visitor's page views write nothing to the database (no session
//! row to fill the table with, nothing usable in a copy of it).
//!
//! Each value is `base64url(value).base64url(HMAC-SHA256(key, name ‖ 0 ‖ value))` with a key derived
//! from the key-encryption key, so every process sharing the database accepts what another set, and a
//! cookie written by anyone else (a sibling subdomain on an `http` issuer, a tampering client) is
//! ignored. Names get the `__Host-` prefix on `https` issuers (RFC 6265bis §4.1.3.2: Secure, `Path=/`,
//! no `Domain`); all are `HttpOnly` and `SameSite=Lax`.
//!
//! The page router's [`layer`] parses the request's cookies once and scopes them to the handler's
//! task, so that the code deep inside a handler can read and set them with [`get`] and [`set`] without
//! every handler threading a jar through; the layer appends the `Set-Cookie` headers to the response.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::app::AppState;
use crate::crypto::kek::KeyEncryptionKey;
use crate::crypto::tokens::{constant_time_eq, hmac_sha256};
use crate::error::{AppError, Result};

/// Purpose label of the signing key derived from the key-encryption key.
const KEY_PURPOSE: &str = "signed-cookies";
/// Cookie name prefix on `http://` development issuers.
const PREFIX: &str = "latchkey_";
/// Cookie name prefix on `https` issuers.
const SECURE_PREFIX: &str = "__Host-latchkey_";
/// Longest cookie value read (a signed value of ours is far shorter).
const MAX_VALUE_LEN: usize = 1024;

/// The signing key of these cookies, derived once from the key-encryption key (kept in
/// [`AppState`], not derived again per request).
#[derive(Clone)]
pub struct CookieKey([u8; 32]);

impl CookieKey {
    /// The cookie key of `kek`.
    pub fn derive(kek: &KeyEncryptionKey) -> CookieKey {
        CookieKey(kek.derive(KEY_PURPOSE))
    }
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKey(***)")
    }
}

tokio::task_local! {
    /// The cookies of the request whose handler runs on this task.
    static JAR: Arc<Jar>;
}

/// A cookie set or removed during the request.
struct Outgoing {
    /// The full cookie name (with its prefix).
    cookie: String,
    /// The value to sign and set; `None` removes the cookie.
    value: Option<String>,
    /// `Max-Age` in seconds; `None`: until the browser closes.
    max_age: Option<i64>,
}

/// One request's signed cookies: what arrived, and what the response must set.
struct Jar {
    key: [u8; 32],
    https: bool,
    incoming: HashMap<String, String>,
    outgoing: Mutex<Vec<Outgoing>>,
}

impl Jar {
    fn cookie_name(&self, name: &str) -> String {
        let prefix = if self.https { SECURE_PREFIX } else { PREFIX };
        format!("{prefix}{name}")
    }

    fn outgoing(&self) -> MutexGuard<'_, Vec<Outgoing>> {
        // A poisoned lock only means another holder panicked; the list itself stays usable.
        self.outgoing.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mac(&self, name: &str, value: &str) -> Option<[u8; 32]> {
        hmac_sha256(&self.key, &[name.as_bytes(), &[0], value.as_bytes()])
    }

    /// The verified value of cookie `name` as the handler should see it now.
    fn get(&self, name: &str) -> Option<String> {
        let cookie = self.cookie_name(name);
        if let Some(set) = self.outgoing().iter().rev().find(|o| o.cookie == cookie) {
            return set.value.clone();
        }
        let raw = self.incoming.get(&cookie)?;
        let (value, mac) = raw.split_once('.')?;
        let value = String::from_utf8(URL_SAFE_NO_PAD.decode(value).ok()?).ok()?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let expected = self.mac(&cookie, &value)?;
        constant_time_eq(&expected, &mac).then_some(value)
    }

    fn set_cookie_headers(&self, headers: &mut HeaderMap) {
        let secure = if self.https { "; Secure" } else { "" };
        for Outgoing {
            cookie,
            value,
            max_age,
        } in self.outgoing().iter()
        {
            let header = match value {
                Some(value) => {
                    let Some(mac) = self.mac(cookie, value) else {
                        tracing::error!(cookie = %cookie, "cannot sign a cookie");
                        continue;
                    };
                    let max_age = max_age
                        .map(|s| format!("; Max-Age={s}"))
                        .unwrap_or_default();
                    format!(
                        "{cookie}={}.{}{max_age}; Path=/; HttpOnly; SameSite=Lax{secure}",
                        URL_SAFE_NO_PAD.encode(value),
                        URL_SAFE_NO_PAD.encode(mac)
                    )
                }
                None => format!("{cookie}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax{secure}"),
            };
            if let Ok(header) = HeaderValue::from_str(&header) {
                headers.append(SET_COOKIE, header);
            }
        }
    }
}

/// The request's cookies by name (the first of duplicate names wins, RFC 6265 §5.4).
fn parse_cookies(headers: &HeaderMap) -> HashMap<String, String> {
    let mut cookies = HashMap::new();
    let pairs = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='));
    for (name, value) in pairs {
        if name.starts_with(PREFIX) || name.starts_with(SECURE_PREFIX) {
            let value = value.trim();
            if value.len() <= MAX_VALUE_LEN {
                cookies
                    .entry(name.to_owned())
                    .or_insert_with(|| value.to_owned());
            }
        }
    }
    cookies
}

/// Middleware of the page router: makes the request's signed cookies available to its handler and
/// writes the ones it set.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let jar = Arc::new(Jar {
        key: state.cookie_key.0,
        https: state.config.is_https(),
        incoming: parse_cookies(req.headers()),
        outgoing: Mutex::new(Vec::new()),
    });
    let mut response = super::page::scope(JAR.scope(jar.clone(), next.run(req))).await;
    jar.set_cookie_headers(response.headers_mut());
    response
}

/// The verified value of signed cookie `name`, or of the one set earlier in this request; `None`
/// when absent, tampered with, or outside the page router.
pub fn get(name: &str) -> Option<String> {
    JAR.try_with(|jar| jar.get(name)).ok().flatten()
}

/// Sets signed cookie `name` on the response (`max_age` in seconds; `None`: until the browser
/// closes).
pub fn set(name: &str, value: &str, max_age: Option<i64>) -> Result<()> {
    with_outgoing(name, Some(value.to_owned()), max_age)
}

/// Removes cookie `name` from the browser.
pub fn remove(name: &str) -> Result<()> {
    with_outgoing(name, None, None)
}

fn with_outgoing(name: &str, value: Option<String>, max_age: Option<i64>) -> Result<()> {
    JAR.try_with(|jar| {
        let cookie = jar.cookie_name(name);
        jar.outgoing().push(Outgoing {
            cookie,
            value,
            max_age,
        });
    })
    .map_err(|_| {
        AppError::Internal(anyhow::anyhow!(
            "signed cookie {name} set outside the page router"
        ))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn jar(incoming: &[(&str, &str)]) -> Jar {
        Jar {
            key: [3u8; 32],
            https: false,
            incoming: incoming
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            outgoing: Mutex::new(Vec::new()),
        }
    }

    fn signed(j: &Jar, name: &str, value: &str) -> String {
        let cookie = j.cookie_name(name);
        let mac = j.mac(&cookie, value).expect("mac");
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(value),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    #[test]
    fn a_signed_value_reads_back_and_a_tampered_one_does_not() {
        let j = jar(&[]);
        let good = signed(&j, "csrf", "abc");
        let j = jar(&[("latchkey_csrf", &good)]);
        assert_eq!(j.get("csrf").as_deref(), Some("abc"));
        // The same value under another name, a changed value, garbage: all ignored.
        let j = jar(&[("latchkey_invitation", &good)]);
        assert_eq!(j.get("invitation"), None);
        let forged = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode("abd"),
            good.split_once('.').unwrap().1
        );
        let j = jar(&[("latchkey_csrf", &forged)]);
        assert_eq!(j.get("csrf"), None);
        let j = jar(&[("latchkey_csrf", "not-signed")]);
        assert_eq!(j.get("csrf"), None);
    }

    #[test]
    fn values_set_in_the_request_are_seen_and_written() {
        let j = jar(&[]);
        j.outgoing().push(Outgoing {
            cookie: "latchkey_csrf".into(),
            value: Some("xyz".into()),
            max_age: None,
        });
        assert_eq!(j.get("csrf").as_deref(), Some("xyz"));
        let mut headers = HeaderMap::new();
        j.set_cookie_headers(&mut headers);
        let set = headers.get(SET_COOKIE).unwrap().to_str().unwrap();
        assert!(set.starts_with("latchkey_csrf="), "{set}");
        assert!(set.contains("HttpOnly; SameSite=Lax"), "{set}");
        assert!(!set.contains("Secure"), "{set}");
    }
}
