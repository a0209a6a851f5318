//! The resource-server side of DPoP (RFC 9449 §7) for our own protected resources (`/userinfo`, the
//! management API): a token bound to a key (`cnf.jkt`) is accepted only under the `DPoP` scheme with
//! a proof by that key for this request (`htm`, `htu`, `ath`), once; it is refused as `Bearer`
//! (§7.2: no downgrade). An unbound token under the `DPoP` scheme is refused too: the scheme
//! promises a binding the token does not have. Unbound `Bearer` tokens are untouched.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use super::proof::{self, Expected, ProofError};
use super::{NoncePolicy, nonce};
use crate::app::AppState;
use crate::oauth::access_token::VerifiedAccessToken;

/// The authorization scheme an access token came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// RFC 6750 (header or form body).
    Bearer,
    /// RFC 9449 §7.1 (header only).
    Dpop,
}

/// A refusal at a resource server, answered 401 with a `DPoP` challenge (§7.1).
#[derive(Debug, Clone)]
pub struct ResourceError {
    /// `invalid_token`, `invalid_dpop_proof` or `use_dpop_nonce`.
    pub error: &'static str,
    /// For the developer of the client (no `"` or `\`).
    pub description: &'static str,
    /// A fresh nonce for the `DPoP-Nonce` header, on proof errors.
    pub nonce: Option<String>,
}

impl ResourceError {
    /// `invalid_token` under the DPoP scheme.
    pub fn invalid_token(description: &'static str) -> ResourceError {
        ResourceError {
            error: "invalid_token",
            description,
            nonce: None,
        }
    }

    /// The problem type of the management API for this refusal (`urn:latchkey:problem:…`).
    pub fn problem_code(&self) -> &'static str {
        match self.error {
            "invalid_dpop_proof" => "invalid-dpop-proof",
            "use_dpop_nonce" => "use-dpop-nonce",
            _ => "invalid-token",
        }
    }

    /// The `WWW-Authenticate` challenge (§7.1): the error, and the algorithms we accept.
    pub fn challenge(&self) -> String {
        format!(
            "DPoP error=\"{}\", error_description=\"{}\", algs=\"{}\"",
            self.error,
            self.description,
            super::SIGNING_ALGS.join(" ")
        )
    }

    /// Sets the challenge and, when there is one, the `DPoP-Nonce` header on `response`.
    pub fn apply(&self, response: &mut Response) {
        if let Ok(value) = HeaderValue::from_str(&self.challenge()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(nonce) = &self.nonce {
            nonce::attach_value(nonce, response);
        }
    }
}

/// The request a token was presented with.
#[derive(Debug, Clone, Copy)]
pub struct Presentation<'a> {
    /// Its headers (the `DPoP` proof).
    pub headers: &'a HeaderMap,
    /// Its method.
    pub method: &'a str,
    /// Its path (our routes; the public URL is the issuer followed by it).
    pub path: &'a str,
    /// How the token came.
    pub scheme: Scheme,
    /// The token.
    pub token: &'a str,
}

/// The `cnf.jkt` of a verified access token, if it is DPoP-bound (§6.1).
pub fn bound_jkt(token: &VerifiedAccessToken) -> Option<&str> {
    token
        .claims
        .get("cnf")
        .and_then(|cnf| cnf.get("jkt"))
        .and_then(|jkt| jkt.as_str())
}

/// Checks that `verified` may be used as it was presented (§7.1, §7.2).
pub async fn confirm(
    state: &AppState,
    presented: &Presentation<'_>,
    verified: &VerifiedAccessToken,
) -> Result<(), ResourceError> {
    let jkt = match (presented.scheme, bound_jkt(verified)) {
        (Scheme::Bearer, None) => return Ok(()),
        (Scheme::Bearer, Some(_)) => {
            return Err(ResourceError::invalid_token(
                "this access token is DPoP-bound: present it with the DPoP scheme and a proof",
            ));
        }
        (Scheme::Dpop, None) => {
            return Err(ResourceError::invalid_token(
                "this access token is not DPoP-bound: present it as a Bearer token",
            ));
        }
        (Scheme::Dpop, Some(jkt)) => jkt,
    };
    let refuse = |error: ProofError| {
        let (error, description) = match error {
            ProofError::Invalid(d) => ("invalid_dpop_proof", d),
            ProofError::UseNonce(d) => ("use_dpop_nonce", d),
            ProofError::Server => ("invalid_dpop_proof", "the DPoP proof could not be checked"),
        };
        ResourceError {
            error,
            description,
            nonce: Some(nonce::current(state)),
        }
    };
    let jwt = proof::header(presented.headers)
        .map_err(refuse)?
        .ok_or_else(|| refuse(ProofError::Invalid("a DPoP proof is required")))?;
    let url = format!("{}{}", state.config.issuer, presented.path);
    let expected = Expected {
        method: presented.method,
        url: &url,
        now: state.clock.now(),
        access_token: Some(presented.token),
        jkt: Some(jkt),
    };
    super::accept(state, jwt, &expected, NoncePolicy::IfPresent)
        .await
        .map_err(refuse)?;
    Ok(())
}
