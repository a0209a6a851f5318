//! Protocol parameters from a query string or an `application/x-www-form-urlencoded` body.
//!
//! RFC 6749 §3.1 and §3.2: "Request and response parameters MUST NOT be included more than once", and
//! parameters sent without a value are treated as omitted. The one exception is `resource` (RFC 8707
//! §2: "may be used multiple times"): a repeat is remembered instead of refused, so that the
//! authorization and token endpoints can answer `invalid_target` (we accept one resource per
//! request) at the client's redirect URI or in its JSON error, not on an error page.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};

/// Longest accepted parameter value; nothing legitimate comes close.
const MAX_VALUE_LEN: usize = 8 * 1024;

/// Parameters a protocol allows more than once (RFC 8707 §2: `resource`); the first value is kept
/// and [`Params::repeated`] tells that there were more.
const MAY_REPEAT: [&str; 1] = ["resource"];

/// Parsed parameters, each present at most once and never empty.
#[derive(Debug, Clone, Default)]
pub struct Params {
    values: HashMap<String, String>,
    /// Names of [`MAY_REPEAT`] parameters sent more than once (with a value).
    repeated: Vec<String>,
}

/// Why parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamsError {
    /// A parameter appeared twice.
    Repeated(String),
    /// A value is absurdly long.
    TooLong(String),
    /// The body is not form-encoded.
    NotForm,
}

impl std::fmt::Display for ParamsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamsError::Repeated(name) => write!(f, "parameter {name} is repeated"),
            ParamsError::TooLong(name) => write!(f, "parameter {name} is too long"),
            ParamsError::NotForm => {
                f.write_str("the body must be application/x-www-form-urlencoded")
            }
        }
    }
}

impl Params {
    /// Parses `a=1&b=2`.
    pub fn parse(encoded: &[u8]) -> Result<Params, ParamsError> {
        let mut map: HashMap<String, String> = HashMap::new();
        let mut repeated: Vec<String> = Vec::new();
        for (name, value) in url::form_urlencoded::parse(encoded) {
            if value.len() > MAX_VALUE_LEN {
                return Err(ParamsError::TooLong(name.into_owned()));
            }
            if MAY_REPEAT.contains(&name.as_ref()) {
                // Empty values count as omitted here too.
                if value.is_empty() {
                    continue;
                }
                match map.get(name.as_ref()) {
                    Some(_) => {
                        if !repeated.iter().any(|r| r == name.as_ref()) {
                            repeated.push(name.into_owned());
                        }
                    }
                    None => {
                        map.insert(name.into_owned(), value.into_owned());
                    }
                }
                continue;
            }
            if map.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(ParamsError::Repeated(name.into_owned()));
            }
        }
        map.retain(|_, v: &mut String| !v.is_empty());
        Ok(Params {
            values: map,
            repeated,
        })
    }

    /// Parses a form body after checking its content type.
    pub fn from_form(headers: &HeaderMap, body: &[u8]) -> Result<Params, ParamsError> {
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(ParamsError::NotForm);
        }
        Params::parse(body)
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// True when `name`, one of the parameters a protocol lets appear more than once (`resource`),
    /// was sent more than once with a value; [`Params::get`] gives the first.
    pub fn repeated(&self, name: &str) -> bool {
        self.repeated.iter().any(|r| r == name)
    }

    /// True when present.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// Re-encodes the parameters (used to carry an authorization request across the login page).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_repeats_and_drops_empty_values() {
        assert_eq!(
            Params::parse(b"a=1&a=2").err(),
            Some(ParamsError::Repeated("a".into()))
        );
        let p = Params::parse(b"a=1&b=&c=x%20y").unwrap_or_default();
        assert_eq!(p.get("a"), Some("1"));
        assert!(!p.has("b"));
        assert_eq!(p.get("c"), Some("x y"));
    }

    #[test]
    fn resource_may_repeat_and_the_repeat_is_remembered() {
        let p = Params::parse(b"resource=https%3A%2F%2Fa%2F&resource=https%3A%2F%2Fb%2F")
            .unwrap_or_default();
        assert_eq!(p.get("resource"), Some("https://a/"));
        assert!(p.repeated("resource"));
        let one = Params::parse(b"resource=&resource=https%3A%2F%2Fb%2F").unwrap_or_default();
        assert_eq!(one.get("resource"), Some("https://b/"));
        assert!(!one.repeated("resource"));
    }
}
