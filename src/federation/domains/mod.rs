//! Verified email domains: an organization claims a domain, publishes the DNS TXT record it is
//! given, and has it checked ([`dns`]); operators may verify one directly
//! (`latchkey org verify-domain`). A domain is verified by at most one organization (a unique index).
//! Verified domains route addresses to the organization's provider ([`super::home_realm`]), let
//! its connections mark provisioned addresses verified ([`super::provisioning`]), and bound
//! `sso_required` ([`super::policy`]).

pub mod api;
pub mod dns;
pub mod store;

use std::net::IpAddr;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::audit::{self, Actor, AuditEvent, action};
use crate::clock::Clock;
use crate::db::{Database, Tx};
use crate::error::{AppError, Result};
use crate::orgs;
use store::OrgDomain;

/// The label under which the TXT record is published: `_latchkey-challenge.DOMAIN`.
pub const TXT_LABEL: &str = "_latchkey-challenge";
/// The start of the TXT record's value: `latchkey-domain-verification=CHALLENGE`.
pub const TXT_VALUE_PREFIX: &str = "latchkey-domain-verification=";

/// Longest domain name (RFC 1035 §2.3.4: 255 octets on the wire, 253 characters written out).
pub const MAX_DOMAIN_LEN: usize = 253;
/// Longest label (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// Checks and normalises a domain an organization claims: lower-cased, LDH labels (RFC 1035
/// §2.3.1, RFC 5890 A-labels included) of 1–63 characters that neither start nor end with a hyphen,
/// at least two labels, at most 253 characters, no trailing dot, and not an IP address (nor a
/// numeric top-level label, RFC 3696 §2). 400 `invalid-domain` otherwise.
pub fn validate_domain(raw: &str) -> Result<String> {
    let domain = raw.trim().to_ascii_lowercase();
    let refuse = |why: &str| {
        AppError::problem(
            StatusCode::BAD_REQUEST,
            "invalid-domain",
            format!("{why}: give a domain name such as acme.example"),
        )
    };
    if domain.is_empty() {
        return Err(refuse("the domain is empty"));
    }
    if domain.len() > MAX_DOMAIN_LEN {
        return Err(refuse("the domain is longer than 253 characters"));
    }
    if domain.ends_with('.') {
        return Err(refuse("the domain must not end with a dot"));
    }
    if domain.parse::<IpAddr>().is_ok() {
        return Err(refuse("an IP address is not a domain"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(refuse("the domain needs at least two labels"));
    }
    let ldh = |label: &&str| {
        !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if !labels.iter().all(ldh) {
        return Err(refuse(
            "each label must be 1 to 63 letters, digits or inner hyphens",
        ));
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(refuse("the last label must not be numeric"));
    }
    Ok(domain)
}

/// The name of the TXT record that proves `domain`: `_latchkey-challenge.DOMAIN`.
pub fn txt_name(domain: &str) -> String {
    format!("{TXT_LABEL}.{domain}")
}

/// The value of the TXT record for `challenge`: `latchkey-domain-verification=CHALLENGE`.
pub fn txt_value(challenge: &str) -> String {
    format!("{TXT_VALUE_PREFIX}{challenge}")
}

/// A new challenge: 256 random bits, base64url (43 characters, all valid in a TXT string).
pub fn new_challenge() -> String {
    crate::crypto::tokens::random_token().into_inner()
}

/// A claim as the API and the CLI show it, with the record to publish.
pub fn domain_json(claim: &OrgDomain) -> Value {
    json!({
        "domain": claim.domain,
        "verified": claim.verified_at.is_some(),
        "verified_at": claim.verified_at,
        "created_at": claim.created_at,
        "txt_record": {
            "name": txt_name(&claim.domain),
            "type": "TXT",
            "value": txt_value(&claim.challenge),
        },
    })
}

/// 409 `domain-taken`: another organization verified the domain.
pub fn domain_taken(domain: &str) -> AppError {
    AppError::problem(
        StatusCode::CONFLICT,
        "domain-taken",
        format!("{domain} is verified by another organization"),
    )
}

/// 404 `domain-not-found`: the organization has not claimed the domain.
pub fn domain_not_found(domain: &str) -> AppError {
    AppError::problem(
        StatusCode::NOT_FOUND,
        "domain-not-found",
        format!("the organization has not claimed {domain}"),
    )
}

/// How a claim went.
#[derive(Debug, Clone)]
pub enum Claimed {
    /// A new claim.
    New(OrgDomain),
    /// The organization had claimed it already (claiming is idempotent).
    Existing(OrgDomain),
}

/// Claims `domain` (validated) for `org_id` inside `tx`, audited `domain.added` when new. 409
/// `domain-taken` when another organization verified it: a claim could never be verified then.
pub async fn claim(
    tx: &mut Tx,
    org_id: &str,
    domain: &str,
    actor: &Actor,
    now: i64,
) -> Result<Claimed> {
    if let Some(owner) = store::verified_owner(&mut **tx, domain).await?
        && owner != org_id
    {
        return Err(domain_taken(domain));
    }
    if let Some(existing) = store::find(&mut **tx, org_id, domain).await? {
        return Ok(Claimed::Existing(existing));
    }
    let claim = OrgDomain {
        org_id: org_id.to_owned(),
        domain: domain.to_owned(),
        challenge: new_challenge(),
        created_at: now,
        verified_at: None,
    };
    if !store::insert(&mut **tx, &claim).await? {
        // The primary key refused it: only this organization's own claim can collide.
        return store::find(&mut **tx, org_id, domain)
            .await?
            .map(Claimed::Existing)
            .ok_or_else(|| domain_not_found(domain));
    }
    let event = AuditEvent {
        org_id: Some(org_id),
        actor,
        action: action::DOMAIN_ADDED,
        target_type: Some("domain"),
        target_id: Some(domain),
        details: json!({"domain": domain}),
    };
    audit::record(&mut **tx, &event, now).await?;
    Ok(Claimed::New(claim))
}

/// Marks `org_id`'s claim of `domain` verified inside `tx` and records `domain.verified` with
/// `method` (`dns` or `operator`). 409 `domain-taken` when another organization verified it first
/// (the unique index decides a race; on PostgreSQL the transaction is then aborted, and the caller
/// drops it), 404 when the claim is gone.
pub async fn mark_verified(
    tx: &mut Tx,
    org_id: &str,
    domain: &str,
    method: &str,
    actor: &Actor,
    now: i64,
) -> Result<OrgDomain> {
    match store::mark_verified(&mut **tx, org_id, domain, now).await? {
        store::MarkVerified::Done => {}
        store::MarkVerified::NoClaim => return Err(domain_not_found(domain)),
        store::MarkVerified::Taken => return Err(domain_taken(domain)),
    }
    let verified = store::find(&mut **tx, org_id, domain)
        .await?
        .ok_or_else(|| domain_not_found(domain))?;
    let event = AuditEvent {
        org_id: Some(org_id),
        actor,
        action: action::DOMAIN_VERIFIED,
        target_type: Some("domain"),
        target_id: Some(domain),
        details: json!({"domain": domain, "method": method}),
    };
    audit::record(&mut **tx, &event, now).await?;
    Ok(verified)
}

/// `latchkey org verify-domain`: marks `domain` verified for `org` (id or slug) without the DNS check,
/// claiming it first when needed, in one transaction; audited `domain.verified` with method
/// `operator` (and `domain.added` for a new claim). Prints `{org_id, domain, verified: true,
/// verified_at}`. Refuses a malformed domain (400), an unknown organization (404) and a domain
/// verified by another organization (409); writes nothing then.
pub async fn verify_by_operator(
    db: &Database,
    clock: &Clock,
    org: &str,
    domain: &str,
) -> Result<Value> {
    let domain = validate_domain(domain)?;
    let actor = Actor::cli();
    let now = clock.now();
    let mut tx = db.begin().await?;
    let org = orgs::store::find_org(&mut *tx, org.trim())
        .await?
        .ok_or_else(|| AppError::not_found(format!("no organization {:?}", org.trim())))?;
    let claimed = match claim(&mut tx, &org.id, &domain, &actor, now).await? {
        Claimed::New(c) | Claimed::Existing(c) => c,
    };
    let verified = if claimed.verified_at.is_some() {
        claimed
    } else {
        mark_verified(&mut tx, &org.id, &domain, "operator", &actor, now).await?
    };
    tx.commit().await?;
    Ok(json!({
        "org_id": org.id,
        "domain": verified.domain,
        "verified": true,
        "verified_at": verified.verified_at,
    }))
}

/// The domain of an email address, lower-cased (`None` without an `@`).
pub fn email_domain(email: &str) -> Option<String> {
    let (_, domain) = email.rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    (!domain.is_empty()).then_some(domain)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{email_domain, validate_domain};

    #[test]
    fn domains_accepted_and_refused() {
        assert_eq!(validate_domain(" Acme.Example ").unwrap(), "acme.example");
        assert_eq!(
            validate_domain("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert_eq!(validate_domain("a-b.c1.example").unwrap(), "a-b.c1.example");
        for bad in [
            "",
            "example",
            "acme.example.",
            ".acme.example",
            "acme..example",
            "-acme.example",
            "acme-.example",
            "ac_me.example",
            "acme example.com",
            "bücher.example",
            "10.0.0.1",
            "::1",
            "[::1]",
            "acme.123",
            "a@acme.example",
        ] {
            assert!(validate_domain(bad).is_err(), "{bad:?} accepted");
        }
        let long_label = format!("{}.example", "a".repeat(64));
        assert!(validate_domain(&long_label).is_err());
        let long = format!("{}example", "abcdefghi.".repeat(25));
        assert!(long.len() > 253);
        assert!(validate_domain(&long).is_err());
    }

    #[test]
    fn domain_of_an_address() {
        assert_eq!(
            email_domain("Ann@Acme.Example").as_deref(),
            Some("acme.example")
        );
        assert_eq!(
            email_domain("a@b@acme.example.").as_deref(),
            Some("acme.example")
        );
        assert_eq!(email_domain("no-at"), None);
        assert_eq!(email_domain("a@"), None);
    }
}
