//! The authenticator app (TOTP, RFC 6238 with the parameters every app reads: HMAC-SHA-1, 6 digits,
//! 30-second steps): secrets, codes, and their checks. The enrolment and removal pages are
//! [`pages`], the SQL [`store`].
//!
//! The secret is 160 bits from the OS CSPRNG (RFC 4226 §4 R6 recommends 160), sealed under the
//! key-encryption key with the user id as associated data ([`SEAL_PURPOSE`]). A code is accepted
//! for the step before, the step of and the step after "now" (RFC 6238 §5.2: one step of clock
//! drift either way) and only once: the accepted step must be later than the last one accepted
//! (RFC 6238 §5.2 "MUST NOT accept the second attempt of the same OTP"), which is written with a
//! conditional update so that two processes sharing PostgreSQL cannot both accept it.

pub mod pages;
pub mod store;

pub use pages::router;

use rand::RngCore;
use totp_rs::{Algorithm, TOTP};

use crate::app::AppState;
use crate::crypto::kek::KeyEncryptionKey;
use crate::crypto::tokens::constant_time_eq;
use crate::db::Tx;
use crate::error::{AppError, Result};

/// Digits of a code (RFC 6238 / RFC 4226 default).
pub const DIGITS: usize = 6;
/// Seconds of one time step (RFC 6238 §4.1 X, the default).
pub const STEP_SECS: i64 = 30;
/// Bytes of a secret: 160 bits, the length of an HMAC-SHA-1 key (RFC 4226 §4 R6).
pub const SECRET_BYTES: usize = 20;
/// Sealing purpose of the secret ([`crate::crypto::kek::KeyEncryptionKey::seal`]; aad: the user id).
pub const SEAL_PURPOSE: &str = "totp-secret";
/// Steps of clock drift accepted on either side of "now" (RFC 6238 §5.2 recommends at most one).
const DRIFT_STEPS: i64 = 1;

/// A fresh random secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

/// The RFC 6238 generator of `secret`, labelled for `account` at `issuer` (the label only matters
/// for the otpauth URI).
fn generator(secret: &[u8], issuer: &str, account: &str) -> TOTP {
    // `new_unchecked`: the secret is ours (always 160 bits), and the label may hold a ':' that
    // `get_url` percent-encodes anyway.
    TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        0,
        STEP_SECS.unsigned_abs(),
        secret.to_vec(),
        Some(issuer.to_owned()),
        account.to_owned(),
    )
}

/// The secret as people type it into an app: base32 (RFC 4648), upper case, no padding.
pub fn secret_base32(secret: &[u8]) -> String {
    generator(secret, "", "").get_secret_base32()
}

/// The `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…` URI of the Key Uri Format that
/// authenticator apps scan (SHA-1, 6 digits and 30 s are the defaults, so left out).
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> String {
    generator(secret, issuer, account).get_url()
}

/// The QR code of `uri` as an inline SVG element, rendered on the server (no script, no image
/// request): the XML declaration is left out so it can sit inside an HTML page.
pub fn qr_svg(uri: &str) -> Result<String> {
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("cannot make the QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => svg,
    })
}

/// The issuer label shown in authenticator apps: the host of our issuer URL (e.g.
/// `id.example.com`), or "Latchkey".
pub fn issuer_label(state: &AppState) -> String {
    url::Url::parse(&state.config.issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "Latchkey".to_owned())
}

/// The code as typed without the spaces people add ("123 456"); `None` when it is not
/// [`DIGITS`] ASCII digits (then it is not a TOTP code).
pub fn normalise(typed: &str) -> Option<String> {
    if typed.len() > 32 {
        return None;
    }
    let code: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    (code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

/// The time step (RFC 6238 T) of unix time `now`.
pub fn step_of(now: i64) -> i64 {
    now.div_euclid(STEP_SECS)
}

/// The step whose code `code` is, among the steps around `now` ([`DRIFT_STEPS`]); every candidate is
/// compared in constant time, none skipped, so the time taken says nothing about which matched.
pub fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let totp = generator(secret, "", "");
    let current = step_of(now);
    let mut found = None;
    for step in (current - DRIFT_STEPS)..=(current + DRIFT_STEPS) {
        let Ok(time) = u64::try_from(step * STEP_SECS) else {
            continue;
        };
        if constant_time_eq(totp.generate(time).as_bytes(), code.as_bytes()) {
            found = Some(step);
        }
    }
    found
}

/// Seals `secret` for the row of `user_id`.
pub fn seal(state: &AppState, user_id: &str, secret: &[u8]) -> Result<String> {
    state
        .kek
        .seal(SEAL_PURPOSE, user_id.as_bytes(), secret)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("cannot seal the TOTP secret: {e}")))
}

/// Opens the sealed secret of `user_id`.
pub fn open(state: &AppState, user_id: &str, sealed: &str) -> Result<Vec<u8>> {
    state
        .kek
        .open(SEAL_PURPOSE, user_id.as_bytes(), sealed)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("cannot open the TOTP secret: {e}")))
}

/// Re-seals every authenticator secret under `new` (opened with `old`) inside `tx`: part of
/// `latchkey keys rewrap` ([`crate::crypto::key_seal::rewrap`]), so the database is entirely under
/// one key-encryption key or the other. Fails (the caller's transaction is rolled back) when a
/// secret does not open with `old` or changed meanwhile. Returns how many were re-sealed.
pub async fn rewrap(tx: &mut Tx, old: &KeyEncryptionKey, new: &KeyEncryptionKey) -> Result<usize> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("select user_id, secret_sealed from totp_factors order by user_id")
            .fetch_all(&mut **tx)
            .await?;
    let mut rewrapped = 0;
    for (user_id, sealed) in rows {
        let secret = old
            .open(SEAL_PURPOSE, user_id.as_bytes(), &sealed)
            .map_err(|_| {
                AppError::invalid(format!(
                    "the authenticator secret of user {user_id} does not open with the current \
                     key-encryption key; nothing was changed"
                ))
            })?;
        let resealed = new
            .seal(SEAL_PURPOSE, user_id.as_bytes(), &secret)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("cannot seal a TOTP secret: {e}")))?;
        if !store::replace_sealed(&mut **tx, &user_id, &sealed, &resealed).await? {
            return Err(AppError::invalid(format!(
                "the authenticator of user {user_id} changed during the rewrap; nothing was \
                 changed, run it again"
            )));
        }
        rewrapped += 1;
    }
    Ok(rewrapped)
}

/// The outcome of a code presented as a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Right, and now used up.
    Accepted,
    /// Right, but its step (or a later one) was already accepted: a replay (RFC 6238 §5.2).
    Reused,
    /// Wrong, malformed, or the account has no confirmed authenticator.
    Wrong,
}

/// Checks `typed` against the confirmed authenticator of `user_id` at `now`, and uses it up when
/// it is right.
pub async fn verify(state: &AppState, user_id: &str, typed: &str, now: i64) -> Result<Checked> {
    let Some(code) = normalise(typed) else {
        return Ok(Checked::Wrong);
    };
    let Some(row) = store::find(&state.db.pool, user_id)
        .await?
        .filter(|r| r.confirmed_at.is_some())
    else {
        return Ok(Checked::Wrong);
    };
    let secret = open(state, user_id, &row.secret_sealed)?;
    let Some(step) = matching_step(&secret, &code, now) else {
        return Ok(Checked::Wrong);
    };
    if store::accept_step(&state.db.pool, user_id, step).await? {
        Ok(Checked::Accepted)
    } else {
        Ok(Checked::Reused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 column (8 digits there; the last 6 are ours).
    #[test]
    fn rfc6238_test_vectors() {
        let secret = b"12345678901234567890";
        let totp = generator(secret, "", "");
        for (time, expected) in [
            (59u64, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(totp.generate(time), expected, "T = {time}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_one_either_side_only() {
        let secret = new_secret();
        let now = 1_700_000_015;
        let totp = generator(&secret, "", "");
        let code = totp.generate(u64::try_from(now).unwrap_or_default());
        assert_eq!(matching_step(&secret, &code, now), Some(step_of(now)));
        assert_eq!(
            matching_step(&secret, &code, now + STEP_SECS),
            Some(step_of(now))
        );
        assert_eq!(
            matching_step(&secret, &code, now - STEP_SECS),
            Some(step_of(now))
        );
        assert_eq!(matching_step(&secret, &code, now + 2 * STEP_SECS), None);
    }

    #[test]
    fn codes_are_six_digits_spaces_allowed() {
        assert_eq!(normalise(" 123 456 ").as_deref(), Some("123456"));
        for bad in ["12345", "1234567", "12345a", "", "١٢٣٤٥٦"] {
            assert_eq!(normalise(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_uri_and_secret_are_what_apps_read() {
        let secret = new_secret();
        let b32 = secret_base32(&secret);
        assert_eq!(b32.len(), 32);
        assert!(!b32.contains('='));
        let uri = otpauth_uri(&secret, "id.example.com", "ann@example.com");
        assert!(
            uri.starts_with("otpauth://totp/id.example.com:ann%40example.com?"),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={b32}")), "{uri}");
        assert!(uri.contains("issuer=id.example.com"), "{uri}");
        let svg = qr_svg(&uri).unwrap_or_default();
        assert!(svg.starts_with("<svg"), "{svg}");
    }
}
