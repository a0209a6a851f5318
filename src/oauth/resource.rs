//! Resource indicators (RFC 8707): a client names the resource server it wants an access token for
//! with `resource` at the authorization and token endpoints; it may name only resources it
//! registered (`client create --resource URI`), and the access token's `aud` is that resource.
//!
//! Choices where RFC 8707 leaves room (docs/tokens.md "Resource indicators"):
//! * One resource per request (§2 allows several; an access token here has one audience). A second
//!   `resource` is `invalid_target`.
//! * Registered resources are compared as exact strings (no normalization), like redirect URIs.
//! * A resource bound by the authorization request (kept on the code, then on the refresh-token
//!   family) is the only one the token endpoint accepts for that grant (§2.2: "downscoping" to a
//!   subset; with one value the subset is that value); without one, a token request may name any
//!   registered resource for that one access token.
//! * A bound resource the client no longer has registered is refused too: the operator's removal
//!   takes effect at the next token request.

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use crate::clients::{Client, validate};

/// The parameter's name (RFC 8707 §2).
pub const PARAM: &str = "resource";

/// `invalid_target` (RFC 8707 §2) with `why`.
fn invalid_target(why: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidTarget, why)
}

/// The `resource` of a request, checked against `client`'s registered resources: `None` when the
/// request names none; `invalid_target` when it names more than one, a malformed URI (relative, with
/// a fragment, §2) or one the client did not register. The authorization endpoint sends the error
/// to the redirect URI; the token endpoint answers it with 400.
pub fn requested<'p>(client: &Client, params: &'p Params) -> Result<Option<&'p str>, OAuthError> {
    if params.repeated(PARAM) {
        return Err(invalid_target("only one resource per request"));
    }
    let Some(resource) = params.get(PARAM) else {
        return Ok(None);
    };
    if let Some(why) = validate::resource_problem(resource) {
        return Err(invalid_target(format!("resource is invalid: {why}")));
    }
    check_registered(client, resource)?;
    Ok(Some(resource))
}

/// `invalid_target` unless `resource` is one of `client`'s registered resources (exact match).
fn check_registered(client: &Client, resource: &str) -> Result<(), OAuthError> {
    if client.resources.iter().any(|r| r == resource) {
        Ok(())
    } else {
        Err(invalid_target(
            "the resource is not registered for this client",
        ))
    }
}

/// The audience of an access token issued by a grant whose authorization bound `bound` (the
/// code's or the refresh-token family's resource; `None` for none, and always for
/// `client_credentials`): the requested resource, which must equal `bound` when there is one;
/// `bound` when the request names none. `None` means the client itself (`aud` = `client_id`).
pub fn for_token<'a>(
    client: &Client,
    params: &'a Params,
    bound: Option<&'a str>,
) -> Result<Option<&'a str>, OAuthError> {
    let requested = requested(client, params)?;
    match (bound, requested) {
        (Some(b), Some(r)) if b != r => Err(invalid_target(
            "the resource differs from the one of the authorization",
        )),
        (Some(b), _) => {
            check_registered(client, b)?;
            Ok(Some(b))
        }
        (None, r) => Ok(r),
    }
}
