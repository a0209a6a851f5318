//! Every path Latchkey serves, named once. Routers, the discovery document, templates and tests use
//! these constants, so a path cannot drift between them.

/// Liveness: the process is up.
pub const HEALTHZ: &str = "/healthz";
/// Readiness: the database answers.
pub const READYZ: &str = "/readyz";
/// Landing page (a small signed-in page when no authorization request is pending).
pub const HOME: &str = "/";
/// Embedded static files (CSS, images), served with long cache lifetimes.
pub const STATIC_PREFIX: &str = "/static";
/// Prefix of the JSON management API (errors there are RFC 9457 problem+json).
pub const API_PREFIX: &str = "/api/";

/// OpenID Connect Discovery 1.0 §4.
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// RFC 8414 §3 authorization server metadata.
pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
/// JWK Set with the public signing keys (RFC 7517 §5).
pub const JWKS: &str = "/jwks.json";
/// Authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2).
pub const AUTHORIZE: &str = "/authorize";
/// Where the browser returns after login or consent to finish a pending authorization request.
pub const AUTHORIZE_CONTINUE: &str = "/authorize/continue";
/// Token endpoint (RFC 6749 §3.2).
pub const TOKEN: &str = "/token";
/// UserInfo endpoint (OIDC Core §5.3).
pub const USERINFO: &str = "/userinfo";
/// Token revocation (RFC 7009).
pub const REVOCATION: &str = "/revoke";
/// Token introspection (RFC 7662).
pub const INTROSPECTION: &str = "/introspect";
/// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
pub const END_SESSION: &str = "/logout";

/// Login page.
pub const LOGIN: &str = "/login";
/// Consent page.
pub const CONSENT: &str = "/consent";
/// Organization picker shown during authorization to members of several organizations.
pub const ORGANIZATION_PICKER: &str = "/organization";
/// Sign-up page (when `LATCHKEY_SIGNUP=open`).
pub const SIGNUP: &str = "/signup";
/// "Check your inbox" page shown to a new account after the sign-up form.
pub const SIGNUP_DONE: &str = "/signup/welcome";
/// Email verification: the link in the mail (GET shows a confirm button, POST verifies).
pub const VERIFY_EMAIL: &str = "/verify-email";
/// Where a successful email verification lands (303 after the confirm button).
pub const VERIFY_EMAIL_DONE: &str = "/verify-email/verified";
/// Sends a signed-in, unverified user a new verification link.
pub const VERIFY_EMAIL_RESEND: &str = "/verify-email/resend";
/// Sign-up through the JSON API (no authentication; docs/api.md).
pub const API_SIGNUP: &str = "/api/v1/signup";
/// Management API: the calling user and their memberships.
pub const API_ME: &str = "/api/v1/me";
/// Management API: organizations (list, create).
pub const API_ORGS: &str = "/api/v1/orgs";
/// Management API: one organization, by id or slug.
pub const API_ORG: &str = "/api/v1/orgs/{org}";
/// Management API: the members of an organization.
pub const API_ORG_MEMBERS: &str = "/api/v1/orgs/{org}/members";
/// Management API: one member of an organization.
pub const API_ORG_MEMBER: &str = "/api/v1/orgs/{org}/members/{user_id}";
/// Management API: an organization's audit log (admins).
pub const API_ORG_AUDIT_LOG: &str = "/api/v1/orgs/{org}/audit-log";
/// Management API: the whole audit log (operators).
pub const API_AUDIT_LOG: &str = "/api/v1/audit-log";
/// Management API: the roles and what each may do.
pub const API_ROLES: &str = "/api/v1/roles";
/// Management API: usage statistics (operators).
pub const API_STATS: &str = "/api/v1/stats";

/// Invitations of one organization (management API): create with POST, list pending with GET.
pub const API_ORG_INVITATIONS: &str = "/api/v1/orgs/{org}/invitations";
/// One invitation of an organization (management API): revoke with DELETE.
pub const API_ORG_INVITATION: &str = "/api/v1/orgs/{org}/invitations/{id}";
/// Invitation accept page; the mailed link is `INVITATION?token=…` (the token moves to the session).
pub const INVITATION: &str = "/invitation";
/// Where a new person's name and password form posts (account created, invitation accepted).
pub const INVITATION_REGISTER: &str = "/invitation/register";
/// The "you joined" page shown after an invitation was accepted.
pub const INVITATION_ACCEPTED: &str = "/invitation/accepted";

/// Password reset, step 1: the form that asks for an email address (and mails a link).
pub const PASSWORD_FORGOT: &str = "/password/forgot";
/// Password reset, the neutral "check your inbox" page shown after step 1, account or not.
pub const PASSWORD_FORGOT_SENT: &str = "/password/forgot/sent";
/// Password reset, step 2: the mailed link `PASSWORD_RESET?token=…` and its new-password form.
pub const PASSWORD_RESET: &str = "/password/reset";
/// Where a successful password reset lands (303 after the form).
pub const PASSWORD_RESET_DONE: &str = "/password/reset/done";

/// Your account: the overview of the signed-in person's own account (signed out: to the login).
pub const ACCOUNT: &str = "/account";
/// Your account: name.
pub const ACCOUNT_PROFILE: &str = "/account/profile";
/// Your account: change the email address (a mailed link to the new address confirms it).
pub const ACCOUNT_EMAIL: &str = "/account/email";
/// Your account: the mailed link `ACCOUNT_EMAIL_CONFIRM?token=…` that confirms a new address.
pub const ACCOUNT_EMAIL_CONFIRM: &str = "/account/email/confirm";
/// Your account: change the password.
pub const ACCOUNT_PASSWORD: &str = "/account/password";
/// Your account: browser sessions and devices.
pub const ACCOUNT_SESSIONS: &str = "/account/sessions";
/// Your account: the applications given access (consents and refresh tokens).
pub const ACCOUNT_APPS: &str = "/account/apps";
/// Your account: the last sign-in attempts.
pub const ACCOUNT_HISTORY: &str = "/account/history";
/// Your account: memberships of organizations.
pub const ACCOUNT_ORGANIZATIONS: &str = "/account/organizations";
/// Your account: delete the account.
pub const ACCOUNT_DELETE: &str = "/account/delete";

/// Your account (API): the caller's live browser sessions (GET).
pub const API_ME_SESSIONS: &str = "/api/v1/me/sessions";
/// Your account (API): one session, by `sid` (DELETE ends it).
pub const API_ME_SESSION: &str = "/api/v1/me/sessions/{sid}";
/// Your account (API): end every session but the one the token was issued in (POST).
pub const API_ME_SESSIONS_END_OTHERS: &str = "/api/v1/me/sessions/end-others";
/// Your account (API): connected apps (GET).
pub const API_ME_APPS: &str = "/api/v1/me/apps";
/// Your account (API): one connected app, by client id (DELETE removes its access).
pub const API_ME_APP: &str = "/api/v1/me/apps/{client_id}";
/// Your account (API): the last sign-in attempts (GET).
pub const API_ME_LOGIN_HISTORY: &str = "/api/v1/me/login-history";
/// Your account (API): one membership (DELETE leaves the organization).
pub const API_ME_ORGANIZATION: &str = "/api/v1/me/organizations/{org}";

/// Operator API: users (GET lists, `?email=` searches, paginated).
pub const API_USERS: &str = "/api/v1/users";
/// Operator API: one user (GET, PATCH `{"disabled": …}`, DELETE).
pub const API_USER: &str = "/api/v1/users/{id}";
/// Operator API: end every session and refresh family of a user (POST).
pub const API_USER_SESSIONS_REVOKE: &str = "/api/v1/users/{id}/sessions/revoke";

// Your account: profile, email, password, deletion (sub-pages).
/// Your account: "check your inbox" after asking for a new address.
pub const ACCOUNT_EMAIL_SENT: &str = "/account/email/sent";
/// Where the browser lands after deleting its account (signed out).
pub const ACCOUNT_DELETED: &str = "/account/deleted";

// Email sign-in (a mailed link and code instead of a password).
/// Email sign-in: the "email me a sign-in link" form (GET) and the request (POST, answers the
/// "check your inbox" page with the code form).
pub const LOGIN_EMAIL: &str = "/login/email";
/// Email sign-in: where the code typed on the "check your inbox" page posts.
pub const LOGIN_EMAIL_CODE: &str = "/login/email/code";
/// Email sign-in: the mailed link `LOGIN_EMAIL_CONFIRM?token=…` (GET shows a button, POST signs in).
pub const LOGIN_EMAIL_CONFIRM: &str = "/login/email/confirm";

// Your account: sessions, connected apps, sign-in history, organizations (the forms' targets).
/// Your account: end one browser session (POST `sid`).
pub const ACCOUNT_SESSIONS_END: &str = "/account/sessions/end";
/// Your account: end every browser session but this one (POST).
pub const ACCOUNT_SESSIONS_END_OTHERS: &str = "/account/sessions/end-others";
/// Your account: remove an application's access (POST `client_id`).
pub const ACCOUNT_APPS_REMOVE: &str = "/account/apps/remove";
/// Your account: leave an organization (POST `org`).
pub const ACCOUNT_ORGANIZATIONS_LEAVE: &str = "/account/organizations/leave";

// Multi-factor authentication: TOTP and recovery codes.
/// Your account: the authenticator app (TOTP): enrolment (QR code, secret in `#totp-secret`, a form
/// with the input `code`), and its removal.
pub const ACCOUNT_TOTP: &str = "/account/totp";
/// Your account: the recovery codes (regenerate; shown once).
pub const ACCOUNT_RECOVERY_CODES: &str = "/account/recovery-codes";
/// Your account: remove the authenticator app (POST `password`).
pub const ACCOUNT_TOTP_REMOVE: &str = "/account/totp/remove";

// Multi-factor authentication: passkeys.
/// Your account: passkeys (list, add, rename, remove).
pub const ACCOUNT_PASSKEYS: &str = "/account/passkeys";
/// Your account: start adding a passkey (POST `name`; answers the page that runs the ceremony).
pub const ACCOUNT_PASSKEYS_ADD: &str = "/account/passkeys/add";
/// Your account: the authenticator's answer of a registration (POST `credential`).
pub const ACCOUNT_PASSKEYS_FINISH: &str = "/account/passkeys/finish";
/// Your account: remove a passkey (POST `id`, `password`).
pub const ACCOUNT_PASSKEYS_REMOVE: &str = "/account/passkeys/remove";
/// Your account: rename a passkey (POST `id`, `name`).
pub const ACCOUNT_PASSKEYS_RENAME: &str = "/account/passkeys/rename";
/// Second step with a passkey: the page offering it alone (GET), and the authenticator's answer
/// (POST `credential`).
pub const LOGIN_SECOND_FACTOR_PASSKEY: &str = "/login/second-factor/passkey";
/// "Sign in with a passkey" on the login page (POST `authz`, `next`; answers the ceremony page).
pub const LOGIN_PASSKEY: &str = "/login/passkey";
/// Sign-in with a passkey alone: the authenticator's answer (POST `credential`).
pub const LOGIN_PASSKEY_FINISH: &str = "/login/passkey/finish";

// Multi-factor authentication: the second step of a sign-in (and of a step-up).
/// The second factor after the first: the form with the input `code` (TOTP or recovery code), and
/// a passkey when the account has one.
pub const LOGIN_SECOND_FACTOR: &str = "/login/second-factor";

// Multi-factor authentication: operators.
/// Operator API: remove every second factor of a user (DELETE; scope `admin`).
pub const API_USER_MFA: &str = "/api/v1/users/{id}/mfa";

// Enterprise SSO (federation with upstream OpenID Connect providers).
/// Management API: an organization's connections (GET list, POST create; admins and owners).
pub const API_ORG_CONNECTIONS: &str = "/api/v1/orgs/{org}/connections";
/// Management API: one connection of an organization (GET, PATCH, DELETE).
pub const API_ORG_CONNECTION: &str = "/api/v1/orgs/{org}/connections/{id}";
/// Operator API: instance-wide connections (GET list, POST create; scope `admin`).
pub const API_CONNECTIONS: &str = "/api/v1/connections";
/// Operator API: one instance-wide connection (GET, PATCH, DELETE).
pub const API_CONNECTION: &str = "/api/v1/connections/{id}";
/// Management API: an organization's email domains (GET list, POST `{domain}` answers the TXT record).
pub const API_ORG_DOMAINS: &str = "/api/v1/orgs/{org}/domains";
/// Management API: one domain of an organization (GET, DELETE).
pub const API_ORG_DOMAIN: &str = "/api/v1/orgs/{org}/domains/{domain}";
/// Management API: check a domain's DNS TXT record and mark it verified (POST).
pub const API_ORG_DOMAIN_VERIFY: &str = "/api/v1/orgs/{org}/domains/{domain}/verify";
/// Starts a sign-in through a connection (GET `connection`, `authz`, `next`, `login_hint`): a 303 to
/// the upstream's authorization endpoint with PKCE, `state` and `nonce`.
pub const FEDERATION_START: &str = "/federation/start";
/// The redirect URI registered at every upstream provider: `ISSUER/federation/callback`.
pub const FEDERATION_CALLBACK: &str = "/federation/callback";
/// Home-realm discovery: the email-first step of the login page (POST `email`, `authz`, `next`).
pub const LOGIN_IDENTIFY: &str = "/login/identify";
/// Your account: upstream identities linked to the account (GET list, POST remove `id`).
pub const ACCOUNT_IDENTITIES: &str = "/account/identities";
/// Your account: remove a linked identity (POST `id`).
pub const ACCOUNT_IDENTITIES_REMOVE: &str = "/account/identities/remove";

// Operations.
/// The OpenAPI 3.1 description of everything under `/api/v1` (GET, no authentication).
pub const API_OPENAPI: &str = "/api/v1/openapi.json";
/// Operator API: OAuth clients (GET list, POST create; scope `admin`).
pub const API_CLIENTS: &str = "/api/v1/clients";
/// Operator API: one client, by `client_id` (GET, PATCH, DELETE).
pub const API_CLIENT: &str = "/api/v1/clients/{client_id}";
/// Operator API: a new secret for a confidential client (POST; the old one stays valid for a grace
/// period the request names).
pub const API_CLIENT_ROTATE_SECRET: &str = "/api/v1/clients/{client_id}/rotate-secret";
/// Prometheus metrics, served only on `LATCHKEY_METRICS_BIND`, never on the public listener.
pub const METRICS: &str = "/metrics";

// Protocol breadth: the device flow, pushed requests, dynamic registration. Clients find them
// through discovery only.
/// Device authorization endpoint (RFC 8628 §3.1).
pub const DEVICE_AUTHORIZATION: &str = "/device_authorization";
/// Where a person enters the user code of a device (RFC 8628 §3.3: `verification_uri`).
pub const DEVICE: &str = "/device";
/// Pushed authorization request endpoint (RFC 9126 §2).
pub const PUSHED_AUTHORIZATION_REQUEST: &str = "/par";
/// Client registration endpoint (RFC 7591 §3).
pub const REGISTRATION: &str = "/register";
/// Client configuration endpoint of a dynamically registered client (RFC 7592 §2).
pub const REGISTRATION_CLIENT: &str = "/register/{client_id}";
