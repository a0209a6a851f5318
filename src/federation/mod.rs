//! Enterprise SSO: sign-in through upstream OpenID Connect providers ("connections") of an
//! organization or of the whole instance, with the `openidconnect` crate as the relying party.
//!
//! | module | what lives there |
//! |---|---|
//! | [`connections`] | the connection type and its role mapping, its store (secret sealed under the KEK), the one implementation of creating, changing and deleting them (`manage`, used by the API and `latchkey connection`), the management API of an organization's and the operator's connections |
//! | [`upstream`] | the one HTTP client to upstream providers (https only, no redirects, timeouts, private addresses refused) and discovery of their metadata and keys |
//! | [`flow`] | `/federation/start` and `/federation/callback`: code flow with PKCE, `state` and `nonce`, the ID token fully validated, then the sign-in continues as any other |
//! | [`identities`] | upstream identities linked to accounts by (connection, `iss`, `sub`), the link made after a password sign-in, and the account page that lists and removes them (SQL in `identities::store`) |
//! | [`provisioning`] | just-in-time accounts and memberships, and the role mapping applied at every sign-in |
//! | [`domains`] | verified email domains: the DNS TXT challenge, the check (hickory-resolver), the API and the operator's override |
//! | [`home_realm`] | home-realm discovery: the email-first login step and where an address goes |
//! | [`policy`] | `sso_required`: an organization's verified-domain members sign in to it only through its provider |
//!
//! A sign-in through a connection ends in [`crate::login::completion::finish_sign_in`] like any
//! other, with `amr` `["fed"]` ([`AMR_FED`]).

pub mod connections;
pub mod domains;
pub mod flow;
pub mod home_realm;
pub mod identities;
pub mod policy;
pub mod provisioning;
pub mod upstream;

use axum::Router;

use crate::app::AppState;
use crate::config::Config;
use crate::routes;

/// The `amr` value of a sign-in through an upstream provider (RFC 8176 has none for federation;
/// `fed` is the value the contract names).
pub const AMR_FED: &str = "fed";

/// The redirect URI to register at every upstream provider: `ISSUER/federation/callback`.
pub fn redirect_uri(config: &Config) -> String {
    format!("{}{}", config.issuer, routes::FEDERATION_CALLBACK)
}

/// Whether a sign-in's `amr` went through an upstream provider.
pub fn is_federated(amr: &[String]) -> bool {
    amr.iter().any(|m| m == AMR_FED)
}

/// The browser side: the sign-in through a connection, home-realm discovery, linked identities.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(flow::router())
        .merge(home_realm::router())
        .merge(identities::router())
}

/// The management API: connections (organizations' and the operator's) and domains.
pub fn api_router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .merge(connections::api::router())
        .merge(domains::api::router())
}
