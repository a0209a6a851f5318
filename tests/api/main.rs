//! Latchkey's integration tests: one binary, driving the server only through its front doors (HTTP on
//! port 0 and the `latchkey` executable). Every test runs twice, on SQLite and on PostgreSQL, through
//! the [`on_both_databases!`] macro.

#[macro_use]
mod helpers;
mod support;

mod account_activity;
mod account_profile;
mod authorize_rules;
mod bounded;
mod browser;
mod browser_account;
mod browser_account_profile;
mod browser_accounts;
mod browser_capture;
mod browser_email_signin;
mod browser_pages;
mod cli;
mod client_throttling;
mod config;
mod email_signin;
mod email_verification;
mod hardening;
mod hardening_introspection;
mod hardening_transport;
mod health;
mod invitations;
mod invitations_api;
mod invitations_pages;
mod jobs;
mod logout;
mod mail;
mod mfa_policy;
mod mfa_reset;
mod mgmt_audit;
mod mgmt_helpers;
mod mgmt_isolation;
mod mgmt_members;
mod mgmt_orgs;
mod mgmt_stats;
mod multi_process;
mod new_device;
mod oidc_flow;
mod oidc_metadata;
mod org_login;
mod org_login_tokens;
mod password_strength;
mod proxies;
mod recovery;
mod refresh;
mod resource_server;
mod revocation;
mod rp;
mod secrets;
mod serve;
mod session_privacy;
mod sessions;
mod signup;
mod signup_api;
mod throttling;
mod token_rules;
mod users_admin;
mod users_cli;
