//! OpenID Connect Back-Channel Logout 1.0: when a browser session ends (sign-out, ended from
//! `/account`, a disabled user, a password reset), every client that got tokens in that session and
//! registered a `backchannel_logout_uri` is sent a signed logout token, queued and retried like mail.
