//! Latchkey: a multi-tenant OpenID Connect / OAuth 2.0 authorization server with organizations built in.
//!
//! One binary serves relying parties (authorization code + PKCE, ID tokens, rotating refresh tokens,
//! RFC 9068 JWT access tokens carrying the user's organization and role), people in a browser
//! (server-rendered pages), resource servers (JWKS) and operators (CLI, management API). It runs on an
//! embedded SQLite file by default and on PostgreSQL shared by several processes.
//!
//! # Layout
//! Modules are cut by feature, not by layer; each feature keeps its SQL in `store.rs`.
//!
//! | module | what lives there |
//! |---|---|
//! | `main.rs` | thin binary: parse the CLI, read the configuration, start logging, dispatch |
//! | [`cli`] | the clap command line and the operator commands (`user`, `org`, `client` (`cli::clients`), `keys`, `connection`; `healthcheck`, `backup`, `config check` in `cli::ops`) |
//! | [`config`] | [`config::Config`] from `LATCHKEY_*` variables, validated, secrets redacted; split by concern (value types and parsers, secrets, the effective configuration of `config check`) |
//! | [`telemetry`] | tracing to stderr as text or JSON |
//! | [`metrics`] | Prometheus metrics: the `metrics` facade's recorder, the request layer, the gauges read at scrape, and `GET /metrics` on `LATCHKEY_METRICS_BIND` only |
//! | [`app`] | [`app::AppState`], router assembly, layers, the server and graceful shutdown |
//! | [`routes`] | every path as a `pub const` |
//! | [`error`] | [`error::AppError`], rendered as an HTML page or RFC 9457 problem+json |
//! | [`db`] | one sqlx (`Any`) code base for SQLite and PostgreSQL, migrations, transactions |
//! | [`clock`] | injectable time |
//! | [`web`] | shared HTTP plumbing: the API's JSON and query extractors, 405 and pagination (`web::api`), the OpenAPI document of `/api/v1` assembled from the feature routers (`web::openapi`), error rendering, security headers, static files, page rendering, signed cookies and the CSRF double-submit cookie, the API's Bearer caller, request metadata and the client address behind trusted proxies (`web::client_addr`), the accept loop with its limits (header-read timeout, connection cap, request timeout) |
//! | [`audit`] | the audit log (every feature records its writes through [`audit::record`]) and the login history |
//! | [`crypto`] | Argon2id passwords, random tokens stored as SHA-256, signing keys (josekit), their store (private halves sealed under the key-encryption key), the in-memory keyring, and the key-encryption key itself (configured, or `latchkey.kek` beside SQLite) |
//! | [`accounts`] | users: validation, creation, lookup; password strength; sign-up (page and JSON API) and email verification; what ends an account's sign-ins or the account itself (`accounts::lifecycle`: sessions, refresh families, disable, delete); the operator's controls over users (`accounts::admin`, the `user` commands and `/api/v1/users` in `accounts::admin_api`) |
//! | [`orgs`] | organizations, memberships, roles and the permission table, slugs, operator stats, the organizations' management API (`orgs::api`, `/api/v1`) with its one access check (`orgs::access`), and the organization picker at login (`orgs::picker`) |
//! | [`federation`] | enterprise SSO: connections to upstream OpenID Connect providers (an organization's or the instance's), the sign-in through them (`openidconnect` as the relying party, behind one guarded HTTP client), linked identities, just-in-time provisioning with role mapping, verified domains (DNS TXT), home-realm discovery, and `sso_required` |
//! | [`invitations`] | invitations: the management API (create, renew, list, revoke), the mail, and the accept pages |
//! | [`clients`] | the OAuth client registry, its validation, a one-second cache for the hot path, and the operator's management of clients (`clients::manage` behind the `client` commands and `/api/v1/clients` in `clients::api`; secret rotation with a grace period) |
//! | [`mail`] | outgoing mail: the outbox queue and its delivery loop (SMTP or `.eml` files) |
//! | [`jobs`] | background work (expiry purges, retention of the audit log and login history, signing-key rotation) under database leases, stopped cleanly; `jobs::outbox`, the one delivery loop of queued rows (mail, back-channel logout tokens) |
//! | [`login`] | the login page, sign-in by a mailed link or 6-digit code (`login::email_signin`), the shared end of every sign-in (`login::completion`), browser sessions (tower-sessions on our own tables), known browsers and the new-device alert, throttling of failed sign-ins and client authentications (`login::throttle`) |
//! | [`mfa`] | second factors: TOTP authenticators, recovery codes, passkeys (webauthn-rs); the second step of a sign-in and of a step-up; `acr` from `amr`; the operator's reset; the mails about factor changes |
//! | [`oauth`] | authorization endpoint and consent page, token endpoint and grants (organization switching on the refresh grant), client authentication, PKCE, RFC 9068 access tokens, pushed authorization requests (`oauth::par`, RFC 9126), resource indicators (`oauth::resource`, RFC 8707), `OAuthError` |
//! | [`device`] | the device authorization grant (RFC 8628): `/device_authorization`, the `/device` page, the polling grant |
//! | [`dpop`] | DPoP (RFC 9449): proofs, nonces, replay detection, sender-constrained tokens at the token endpoint and at resource servers |
//! | [`registration`] | dynamic client registration (RFC 7591) and management (RFC 7592) behind initial access tokens |
//! | [`oidc`] | discovery, JWKS, ID tokens, claims by scope, userinfo, RP-initiated logout, back-channel logout (`oidc::backchannel`: logout tokens queued and retried) |
//! | [`recovery`] | password reset by mail: request and confirm pages, single-use 15-minute links, limits |
//! | [`self_service`] | your account: the `/account` pages (profile, email, password, sessions and devices, connected apps, sign-in history, organizations, deletion) and `/api/v1/me/…` |
//!
//! Outside `src/`: `migrations/{sqlite,postgres}` (same numbering), `templates/` (askama pages on one base
//! layout, and `mail/` text + HTML pairs), `static/` (embedded in the binary), `examples/`
//! (`resource_server.rs`), `bench/` (load scripts), `tests/api/` (one integration-test binary; every test
//! runs on SQLite and PostgreSQL), `.ci/run` (what CI runs).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod accounts;
pub mod app;
pub mod audit;
pub mod cli;
pub mod clients;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod device;
pub mod dpop;
pub mod error;
pub mod federation;
pub mod invitations;
pub mod jobs;
pub mod login;
pub mod mail;
pub mod metrics;
pub mod mfa;
pub mod oauth;
pub mod oidc;
pub mod orgs;
pub mod recovery;
pub mod registration;
pub mod routes;
pub mod self_service;
pub mod telemetry;
pub mod web;
