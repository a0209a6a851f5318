//! Validation of client registration input.

use url::Url;

use super::GrantType;
use crate::error::{AppError, Result};

/// Schemes that must never be redirect targets (script execution, local files).
const FORBIDDEN_SCHEMES: &[&str] = &["javascript", "data", "file", "vbscript", "about", "blob"];

/// Longest accepted URI.
const MAX_URI_LEN: usize = 2000;

/// Validates redirect URIs: absolute, no fragment (RFC 6749 §3.1.2), no user info, not a scripting or
/// local scheme; `https`, `http` (development), or a private-use scheme for native apps (RFC 8252 §7.1).
/// Duplicates are removed; order is kept.
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
        if !out.contains(uri) {
            out.push(uri.clone());
        }
    }
    Ok(out)
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
                "invalid grant type {g:?}: expected authorization_code, refresh_token or client_credentials"
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
        ] {
            assert!(
                uris(&v(&[bad]), "redirect URI").is_err(),
                "{bad:?} accepted"
            );
        }
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
