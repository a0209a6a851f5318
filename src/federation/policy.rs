//! `sso_required`: an organization whose verified-domain members may sign in to it only through
//! its connection. Checked where the organization of an authorization request is known
//! ([`crate::oauth::authorize`]) and at the token endpoint (code and refresh), against the live flag.
