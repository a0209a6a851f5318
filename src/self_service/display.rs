//! How the account pages (and the `/api/v1/me` JSON, for `browser`) show times, browsers and sign-in
//! methods to a person: small, pure functions, tested here.

/// Longest raw `User-Agent` shown when no browser name is recognised.
const RAW_USER_AGENT_CHARS: usize = 60;

/// Unix seconds as `YYYY-MM-DD HH:MM UTC` (every account page shows UTC: the server cannot know
/// the reader's time zone without JavaScript).
pub fn utc(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        // Out of the representable range: only a corrupt row gets here.
        Err(_) => "unknown".to_owned(),
    }
}

/// A short readable name for a `User-Agent`: "Chrome on Linux", "Firefox on Windows", "Safari on
/// iPhone"; the raw string cut to 60 characters when browser or system is not recognised, "Unknown
/// browser" when there is none.
///
/// User-Agent strings carry every engine's token for compatibility (Chrome's says "Safari", Edge's
/// says "Chrome"), so the more specific tokens are looked for first.
pub fn browser_name(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.map(str::trim).filter(|ua| !ua.is_empty()) else {
        return "Unknown browser".to_owned();
    };
    let browser = if ua.contains("Edg/") || ua.contains("EdgA/") || ua.contains("EdgiOS/") {
        Some("Edge")
    } else if ua.contains("OPR/") || ua.contains("Opera") {
        Some("Opera")
    } else if ua.contains("Firefox/") || ua.contains("FxiOS/") {
        Some("Firefox")
    } else if ua.contains("Chromium/") {
        Some("Chromium")
    } else if ua.contains("Chrome/") || ua.contains("CriOS/") {
        Some("Chrome")
    } else if ua.contains("Safari/") && ua.contains("Version/") {
        Some("Safari")
    } else {
        None
    };
    let system = if ua.contains("iPhone") {
        Some("iPhone")
    } else if ua.contains("iPad") {
        Some("iPad")
    } else if ua.contains("Android") {
        Some("Android")
    } else if ua.contains("Windows") {
        Some("Windows")
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        Some("macOS")
    } else if ua.contains("CrOS") {
        Some("ChromeOS")
    } else if ua.contains("Linux") {
        Some("Linux")
    } else {
        None
    };
    match (browser, system) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        _ => ua.chars().take(RAW_USER_AGENT_CHARS).collect(),
    }
}

/// How a person signed in, from the RFC 8176 `amr` value stored with the attempt. Rows older than
/// migration 0008 have none: the password was the only way to sign in then. A sign-in with a
/// second factor ([`crate::mfa::second_step`]) is stored as `first+second` (`pwd+otp`,
/// `pwd+recovery`, `session+otp` for a step-up of a signed-in session) and reads "Password +
/// authenticator app".
pub fn method_label(method: Option<&str>) -> String {
    match method {
        None | Some("pwd") => "Password".to_owned(),
        Some("email" | "otp") => "Email link or code".to_owned(),
        Some("totp") => "Authenticator app code".to_owned(),
        Some("session") => "Signed-in session".to_owned(),
        Some("passkey" | "hwk" | "swk") => "Passkey".to_owned(),
        Some(combined) => match combined.split_once('+') {
            Some((first, second)) => {
                format!(
                    "{} + {}",
                    method_label(Some(first)),
                    second_factor_label(second)
                )
            }
            None => combined.to_owned(),
        },
    }
}

/// The second factor of a combined method, in lower case after "Password + ".
fn second_factor_label(method: &str) -> String {
    match method {
        "otp" | "totp" => "authenticator app".to_owned(),
        "recovery" => "recovery code".to_owned(),
        "passkey" | "hwk" | "swk" => "passkey".to_owned(),
        other => other.to_owned(),
    }
}

/// An attempt's stored outcome as a word for the page.
pub fn outcome_label(outcome: &str) -> &'static str {
    match outcome {
        "succeeded" => "Succeeded",
        "throttled" => "Throttled (too many attempts)",
        _ => "Failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_is_minutes_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(utc(i64::MAX), "unknown");
    }

    #[test]
    fn common_browsers_get_short_names() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/120.0.0.0 Safari/537.36",
                "Chrome on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
                "Firefox on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
                "Safari on iPhone",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like \
                 Gecko) Version/17.1 Safari/605.1.15",
                "Safari on macOS",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/120.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
                "Chrome on iPhone",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 HeadlessChrome/120.0.0.0 Safari/537.36",
                "Chrome on Linux",
            ),
        ];
        for (ua, name) in cases {
            assert_eq!(browser_name(Some(ua)), name, "{ua}");
        }
    }

    #[test]
    fn unknown_agents_are_shown_raw_and_cut() {
        assert_eq!(browser_name(Some("curl/8.4.0")), "curl/8.4.0");
        let long = "x".repeat(200);
        assert_eq!(browser_name(Some(&long)).chars().count(), 60);
        // Cutting counts characters, not bytes: a multi-byte agent is never split inside one.
        let wide = "é".repeat(100);
        assert_eq!(browser_name(Some(&wide)), "é".repeat(60));
        assert_eq!(browser_name(None), "Unknown browser");
        assert_eq!(browser_name(Some("   ")), "Unknown browser");
        // A browser on an unrecognised system is shown raw too (no half-names).
        assert_eq!(
            browser_name(Some("Mozilla/5.0 (Plan9) Firefox/99.0")),
            "Mozilla/5.0 (Plan9) Firefox/99.0"
        );
    }

    #[test]
    fn methods_and_outcomes_read_as_words() {
        assert_eq!(method_label(Some("pwd")), "Password");
        assert_eq!(method_label(None), "Password");
        assert_eq!(method_label(Some("email")), "Email link or code");
        assert_eq!(method_label(Some("otp")), "Email link or code");
        assert_eq!(method_label(Some("hwk")), "Passkey");
        assert_eq!(method_label(Some("magic")), "magic");
        assert_eq!(
            method_label(Some("pwd+otp")),
            "Password + authenticator app"
        );
        assert_eq!(
            method_label(Some("email+recovery")),
            "Email link or code + recovery code"
        );
        assert_eq!(
            method_label(Some("session+otp")),
            "Signed-in session + authenticator app"
        );
        assert_eq!(method_label(Some("pwd+passkey")), "Password + passkey");
        assert_eq!(outcome_label("succeeded"), "Succeeded");
        assert_eq!(outcome_label("failed"), "Failed");
        assert_eq!(outcome_label("throttled"), "Throttled (too many attempts)");
    }
}
