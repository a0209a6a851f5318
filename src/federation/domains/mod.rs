//! Verified email domains: an organization claims a domain, publishes the DNS TXT record it is
//! given, and has it checked ([`dns`]); operators may verify one directly
//! (`latchkey org verify-domain`). A domain is verified by at most one organization (a unique index).
//! Verified domains route addresses to the organization's provider ([`super::home_realm`]), let
//! its connections mark provisioned addresses verified ([`super::provisioning`]), and bound
//! `sso_required` ([`super::policy`]).

pub mod api;
pub mod dns;
pub mod store;

/// The label under which the TXT record is published: `_latchkey-challenge.DOMAIN`.
pub const TXT_LABEL: &str = "_latchkey-challenge";
/// The start of the TXT record's value: `latchkey-domain-verification=CHALLENGE`.
pub const TXT_VALUE_PREFIX: &str = "latchkey-domain-verification=";

/// `latchkey org verify-domain`: marks `domain` verified for `org` (id or slug) without the DNS check,
/// claiming it first when needed; audited `domain.verified` with method `operator`. Prints
/// `{org_id, domain, verified: true, verified_at}`.
pub async fn verify_by_operator(
    _db: &crate::db::Database,
    _clock: &crate::clock::Clock,
    _org: &str,
    _domain: &str,
) -> crate::error::Result<serde_json::Value> {
    Err(crate::error::AppError::invalid("not built yet"))
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
    use super::email_domain;

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
