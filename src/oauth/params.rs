//! Protocol parameters from a query string or an `application/x-www-form-urlencoded` body.
//!
//! RFC 6749 §3.1 and §3.2: "Request and response parameters MUST NOT be included more than once", and
//! parameters sent without a value are treated as omitted.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};

/// Longest accepted parameter value; nothing legitimate comes close.
const MAX_VALUE_LEN: usize = 8 * 1024;

/// Parsed parameters, each present at most once and never empty.
#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, String>);

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
        let mut map = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(encoded) {
            if value.len() > MAX_VALUE_LEN {
                return Err(ParamsError::TooLong(name.into_owned()));
            }
            if map.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(ParamsError::Repeated(name.into_owned()));
            }
        }
        map.retain(|_, v: &mut String| !v.is_empty());
        Ok(Params(map))
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
        self.0.get(name).map(String::as_str)
    }

    /// True when present.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Re-encodes the parameters (used to carry an authorization request across the login page).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
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
}
