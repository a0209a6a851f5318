//! Validation of client registration input.

use std::net::{Ipv4Addr, Ipv6Addr};

use url::Url;

use super::GrantType;
use crate::error::{AppError, Result};

/// Schemes that must never be redirect targets (script execution, local files).
const FORBIDDEN_SCHEMES: &[&str] = &["javascript", "data", "file", "vbscript", "about", "blob"];

/// Longest accepted URI.
const MAX_URI_LEN: usize = 2000;

/// Validates redirect URIs: absolute, no fragment (RFC 6749 §3.1.2), no user info, not a scripting or
/// local scheme; `https`, `http` only on a loopback IP literal (RFC 8252 §7.3 and §8.3: `127.0.0.0/8`
/// or `[::1]`, never `localhost`, which a hostile resolver or hosts file may point elsewhere), or a
/// private-use scheme for native apps (RFC 8252 §7.1). Duplicates are removed; order is kept.
pub fn uris(raw: &[String], what: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for uri in raw {
        let invalid = |why: &str| AppError::invalid(format!("invalid {what} {uri:?}: {why}"));
        if uri.len() > MAX_URI_LEN {
            return Err(invalid("too long"));
        }
        let parsed = Url::parse(uri).map_err(|_| invalid("not an absolute URI"))?;
        if parsed.fragment().is_some() || uri.contains('#') {
            return Err(invalid("must not contain a fragment"));
        }
        if FORBIDDEN_SCHEMES.contains(&parsed.scheme()) {
            return Err(invalid("scheme not allowed"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid("must not contain user information"));
        }
        let web = matches!(parsed.scheme(), "http" | "https");
        // WHATWG parsing repairs `http:///x` into `http://x/`; the registered text must name a host itself.
        let names_host = uri
            .get(parsed.scheme().len()..)
            .is_some_and(|rest| rest.starts_with("://") && !rest[3..].starts_with('/'));
        if web && (!names_host || parsed.host_str().is_none_or(str::is_empty)) {
            return Err(invalid("needs a host"));
        }
        // RFC 8252 §8.3: plain http only to the device itself, named by an IP literal.
        if parsed.scheme() == "http" && split_loopback(uri).is_none() {
            return Err(invalid(
                "http is only allowed on a loopback IP literal (127.0.0.1 or [::1]); use https",
            ));
        }
        if !out.contains(uri) {
            out.push(uri.clone());
        }
    }
    Ok(out)
}

/// Validates a back-channel logout URI (OpenID Connect Back-Channel Logout 1.0 §2.2): absolute,
/// no fragment, no user information; `https`, or `http` on a loopback IP literal (a relying party on
/// the same machine, as for redirect URIs). Returned as given.
pub fn backchannel_logout_uri(uri: &str) -> Result<String> {
    let checked = uris(&[uri.to_owned()], "back-channel logout URI")?;
    let invalid = || {
        AppError::invalid(format!(
            "invalid back-channel logout URI {uri:?}: must be https (or http on a loopback IP literal)"
        ))
    };
    let parsed = Url::parse(uri).map_err(|_| invalid())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid());
    }
    checked.into_iter().next().ok_or_else(invalid)
}

/// Validates resource indicators (RFC 8707 §2): absolute URIs without a fragment, no user
/// information, at most `MAX_URI_LEN` long. Duplicates are removed; order is kept.
pub fn resources(raw: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for uri in raw {
        if let Some(why) = resource_problem(uri) {
            return Err(AppError::invalid(format!(
                "invalid resource {uri:?}: {why}"
            )));
        }
        if !out.contains(uri) {
            out.push(uri.clone());
        }
    }
    Ok(out)
}

/// Why `uri` is not a valid resource indicator (RFC 8707 §2: "an absolute URI … MUST NOT include
/// a fragment component"), or `None` when it is one. Shared by registration and by the
/// authorization and token endpoints, which answer `invalid_target` instead.
pub fn resource_problem(uri: &str) -> Option<&'static str> {
    if uri.len() > MAX_URI_LEN {
        return Some("too long");
    }
    let Ok(parsed) = Url::parse(uri) else {
        return Some("not an absolute URI");
    };
    if parsed.fragment().is_some() || uri.contains('#') {
        return Some("must not contain a fragment");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Some("must not contain user information");
    }
    None
}

/// True when the redirect URI of an authorization request matches a registered one: exact string
/// comparison (RFC 9700 §4.1.3), except that for a registered `http` URI on a loopback IP literal any
/// port is accepted (RFC 8252 §7.3: native apps listen on an ephemeral port chosen at request time);
/// everything but the port must still be identical.
pub fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    match (split_loopback(registered), split_loopback(requested)) {
        (Some((r_host, r_rest)), Some((q_host, q_rest))) => r_host == q_host && r_rest == q_rest,
        _ => false,
    }
}

/// Splits an `http` URI on a loopback IP literal into `http://HOST` and what follows the port
/// (path, query); `None` for any other URI. The host must be written as a literal: `127.x.y.z` in
/// strict dotted-quad form or a bracketed IPv6 address equal to `::1`; a port, when present, is
/// 1 to 5 digits within `u16`.
fn split_loopback(uri: &str) -> Option<(&str, &str)> {
    const SCHEME: &str = "http://";
    let after = uri.strip_prefix(SCHEME)?;
    let host_len = if after.starts_with('[') {
        after.find(']')? + 1
    } else {
        after.find([':', '/', '?', '#']).unwrap_or(after.len())
    };
    let host = &after[..host_len];
    let loopback = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6
            .parse::<Ipv6Addr>()
            .is_ok_and(|ip| ip == Ipv6Addr::LOCALHOST),
        None => host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback()),
    };
    if !loopback {
        return None;
    }
    let mut rest = &after[host_len..];
    if let Some(port_and_rest) = rest.strip_prefix(':') {
        let digits = port_and_rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(port_and_rest.len());
        port_and_rest[..digits].parse::<u16>().ok()?;
        rest = &port_and_rest[digits..];
    }
    if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
        return None;
    }
    Some((&uri[..SCHEME.len() + host_len], rest))
}

/// Validates grant types; none given means `authorization_code` with `refresh_token`.
pub fn grant_types(raw: &[String]) -> Result<Vec<GrantType>> {
    if raw.is_empty() {
        return Ok(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]);
    }
    let mut out = Vec::new();
    for g in raw {
        let grant = GrantType::parse(g).ok_or_else(|| {
            AppError::invalid(format!(
                "invalid grant type {g:?}: expected authorization_code, refresh_token, client_credentials or {}",
                super::DEVICE_CODE_GRANT
            ))
        })?;
        if !out.contains(&grant) {
            out.push(grant);
        }
    }
    Ok(out)
}

/// Validates scope names (RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`).
pub fn scopes(raw: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for s in raw
        .iter()
        .flat_map(|s| s.split(' '))
        .filter(|s| !s.is_empty())
    {
        let ok = s.len() <= 100
            && s.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !ok {
            return Err(AppError::invalid(format!("invalid scope {s:?}")));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    if out.is_empty() {
        return Err(AppError::invalid("at least one scope is required"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn accepts_web_and_native_redirects() {
        let ok = v(&[
            "https://app.example.com/cb",
            "http://127.0.0.1:8000/cb?x=1",
            "http://127.0.0.2/cb",
            "http://[::1]:9/cb",
            "com.example.app:/oauth",
        ]);
        assert_eq!(uris(&ok, "redirect URI").ok(), Some(ok.clone()));
    }

    #[test]
    fn refuses_bad_redirects() {
        for bad in [
            "/relative",
            "not a uri",
            "https://a.example/cb#frag",
            "javascript:alert(1)",
            "https://u:p@a.example/",
            "data:text/html,x",
            "http:///path",
            "http://localhost:8000/cb",
            "http://rp.example.com/cb",
            "http://127.1/cb",
            "http://[::2]/cb",
            "http://10.0.0.1/cb",
        ] {
            assert!(
                uris(&v(&[bad]), "redirect URI").is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn loopback_redirects_match_on_any_port_and_nothing_else() {
        let reg = "http://127.0.0.1:8000/cb?x=1";
        assert!(redirect_uri_matches(reg, reg));
        assert!(redirect_uri_matches(reg, "http://127.0.0.1:51234/cb?x=1"));
        assert!(redirect_uri_matches(reg, "http://127.0.0.1/cb?x=1"));
        assert!(redirect_uri_matches(
            "http://[::1]/cb",
            "http://[::1]:40000/cb"
        ));
        for other in [
            "http://127.0.0.1:51234/cb?x=2",
            "http://127.0.0.1:51234/cb",
            "http://127.0.0.1:51234/cb/?x=1",
            "http://127.0.0.2:8000/cb?x=1",
            "http://localhost:8000/cb?x=1",
            "https://127.0.0.1:8000/cb?x=1",
            "http://127.0.0.1:99999/cb?x=1",
            "http://127.0.0.1:80a/cb?x=1",
            "http://127.0.0.1:8000@evil.example/cb?x=1",
        ] {
            assert!(!redirect_uri_matches(reg, other), "{other:?} matched");
        }
        // Anything but loopback http is exact matching.
        let https = "https://rp.example.com:443/cb";
        assert!(!redirect_uri_matches(
            https,
            "https://rp.example.com:8443/cb"
        ));
        assert!(!redirect_uri_matches(
            "com.example.app:/oauth",
            "com.example.app:/oauth2"
        ));
    }

    #[test]
    fn grant_types_default_and_refuse_unknown() {
        assert_eq!(
            grant_types(&[]).ok(),
            Some(vec![GrantType::AuthorizationCode, GrantType::RefreshToken])
        );
        assert!(grant_types(&v(&["implicit"])).is_err());
        assert!(grant_types(&v(&["password"])).is_err());
    }

    #[test]
    fn scopes_follow_rfc6749_syntax() {
        assert_eq!(
            scopes(&v(&["openid org:read"])).ok(),
            Some(v(&["openid", "org:read"]))
        );
        assert!(scopes(&v(&["bad\"scope"])).is_err());
        assert!(scopes(&v(&[""])).is_err());
    }
}
