//! Every metric name and label, in one place: Prometheus naming (base units in the name, counters
//! ending in `_total`, <https://prometheus.io/docs/practices/naming/>), all prefixed `latchkey_`.
//!
//! Labels take values from small fixed sets only (route templates, grant types, outcomes, key ids of
//! the few active keys): never a user id, an email, a client id, an address or a secret, so the number
//! of series stays bounded whatever the traffic (Prometheus' "cardinality" advice).

/// Counter: HTTP requests answered on the public listener, by `route`, `method` and `status`.
pub const HTTP_REQUESTS: &str = "latchkey_http_requests_total";
/// Histogram: seconds from a request's arrival to its response headers, by `route` and `method`.
pub const HTTP_REQUEST_DURATION: &str = "latchkey_http_request_duration_seconds";
/// Counter: access tokens issued by the token endpoint, by `grant_type` and `client_type`.
pub const TOKENS_ISSUED: &str = "latchkey_tokens_issued_total";
/// Counter: sign-in attempts, by `method` and `outcome`.
pub const SIGN_INS: &str = "latchkey_sign_ins_total";
/// Counter: rotated refresh tokens presented again, which revoked their family (RFC 9700 §4.14.2).
pub const REFRESH_TOKEN_REUSE_DETECTED: &str = "latchkey_refresh_token_reuse_detected_total";
/// Counter: messages put in the outbox.
pub const MAIL_QUEUED: &str = "latchkey_mail_queued_total";
/// Counter: messages handed over to SMTP (or written as `.eml` files).
pub const MAIL_SENT: &str = "latchkey_mail_sent_total";
/// Counter: failed delivery attempts (each retry counts; the last one gives the message up).
pub const MAIL_FAILED: &str = "latchkey_mail_failed_total";
/// Gauge: age in seconds of the oldest message still waiting for delivery (0 when none waits).
pub const MAIL_QUEUE_OLDEST_AGE: &str = "latchkey_mail_queue_oldest_age_seconds";
/// Counter: back-channel logout tokens a relying party accepted.
pub const BACKCHANNEL_LOGOUT_DELIVERED: &str = "latchkey_backchannel_logout_delivered_total";
/// Counter: failed back-channel logout posts (each retry counts; the last one gives the logout up).
pub const BACKCHANNEL_LOGOUT_FAILED: &str = "latchkey_backchannel_logout_failed_total";
/// Gauge: seconds since each active signing key was created, by `kid` and `alg`.
pub const SIGNING_KEY_AGE: &str = "latchkey_signing_key_age_seconds";
/// Gauge: connections of the database pool, by `state` (`idle` or `in_use`).
pub const DB_POOL_CONNECTIONS: &str = "latchkey_db_pool_connections";
/// Gauge: the most connections the database pool opens.
pub const DB_POOL_MAX_CONNECTIONS: &str = "latchkey_db_pool_max_connections";
/// Gauge: when this process started serving, in unix seconds (the standard
/// `process_start_time_seconds`, with our prefix).
pub const PROCESS_START_TIME: &str = "latchkey_process_start_time_seconds";
/// Gauge: always 1, labelled with the running `version`.
pub const BUILD_INFO: &str = "latchkey_build_info";

/// Label: the route template axum matched (`/authorize`, `/api/v1/orgs/{org_id}`, …), or
/// [`UNMATCHED_ROUTE`].
pub const ROUTE: &str = "route";
/// Label: the HTTP method, one of [`HTTP_METHODS`] or [`OTHER`].
pub const METHOD: &str = "method";
/// Label: the HTTP status code (`200`, `404`, …).
pub const STATUS: &str = "status";
/// Label: the OAuth grant (`authorization_code`, `refresh_token`, `client_credentials`,
/// `urn:ietf:params:oauth:grant-type:device_code`).
pub const GRANT_TYPE: &str = "grant_type";
/// Label: [`CONFIDENTIAL`] or [`PUBLIC`] (RFC 6749 §2.1).
pub const CLIENT_TYPE: &str = "client_type";
/// Label: how an attempt ended: [`SUCCESS`], [`FAILURE`] or [`THROTTLED`].
pub const OUTCOME: &str = "outcome";
/// Label: a signing key's id.
pub const KID: &str = "kid";
/// Label: a signing key's JWS algorithm (`RS256`, `ES256`, `EdDSA`).
pub const ALG: &str = "alg";
/// Label: a pool connection's state: [`IDLE`] or [`IN_USE`].
pub const STATE: &str = "state";
/// Label: the running version.
pub const VERSION: &str = "version";

/// `route` of a request no route matched (404s of unknown paths): one series, whatever the path.
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// The methods named as such in `method`; any other is [`OTHER`].
pub const HTTP_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/// A label value for anything outside its fixed set.
pub const OTHER: &str = "other";
/// `client_type` of a client with a secret.
pub const CONFIDENTIAL: &str = "confidential";
/// `client_type` of a client without a secret (PKCE only).
pub const PUBLIC: &str = "public";
/// `outcome`: signed in (or the factor was accepted).
pub const SUCCESS: &str = "success";
/// `outcome`: the credential was checked and refused.
pub const FAILURE: &str = "failure";
/// `outcome`: refused before any check, too many recent failures.
pub const THROTTLED: &str = "throttled";
/// `state`: an open connection waiting in the pool.
pub const IDLE: &str = "idle";
/// `state`: a connection lent to a query or transaction.
pub const IN_USE: &str = "in_use";

/// `method` values of `latchkey_sign_ins_total`, from the login history's name of the factor an
/// attempt checked (the last part of `pwd+otp`, …): `(history name, label)`. Anything else is
/// [`OTHER`].
pub const SIGN_IN_METHODS: [(&str, &str); 7] = [
    ("pwd", "password"),
    ("email", "email"),
    ("passkey", "passkey"),
    ("otp", "totp"),
    ("totp", "totp"),
    ("recovery", "recovery_code"),
    ("fed", "federation"),
];

/// Upper bounds (seconds) of the latency histogram's buckets: from a cached JWKS answer (~1 ms) to
/// a password hash under load (~1 s) and the request timeout.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
