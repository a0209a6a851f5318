//! Is a new password strong enough? The one check every path that sets a password calls (sign-up
//! page and API, invitation register, password reset, `latchkey user create`).
//!
//! NIST SP 800-63B §5.1.1.2 (memorized secret verifiers) asks verifiers to compare a new password
//! against "passwords obtained from previous breach corpuses", "dictionary words", "repetitive or
//! sequential characters" and "context-specific words, such as the name of the service, the
//! username", and to tell the subscriber why it was refused; it forbids composition rules. The
//! [`zxcvbn`] estimator does exactly that comparison offline (frequency lists drawn from leaked
//! password sets, English words, names, keyboard patterns, dates, sequences, l33t substitutions),
//! with the person's own email, name and the service name as extra dictionary words, and explains
//! what is wrong. Length limits stay in [`check_policy`].

use crate::crypto::password::{Password, check_policy};

/// Lowest acceptable zxcvbn score (0 to 4). 3 means "safely unguessable: moderate protection from
/// an offline slow-hash scenario" (at least 10^10 guesses), which is what an Argon2id hash at the
/// OWASP parameters is meant to protect; 2 ("somewhat guessable", 10^8 guesses) falls to one GPU in
/// hours once hashes leak.
pub const MIN_ZXCVBN_SCORE: u8 = 3;

/// Only this many leading characters are scored: zxcvbn's cost grows faster than linearly with the
/// length, and a prefix this long that is already strong keeps the whole password strong (the
/// upstream library gives the same advice).
const MAX_SCORED_CHARS: usize = 100;

/// A part of the person's identity (email local part, a word of their name) shorter than this is
/// not refused on sight: "ann" inside a passphrase is no leak; zxcvbn still weighs it.
const MIN_PERSONAL_CHARS: usize = 4;

/// The service's own name, a context-specific word (NIST SP 800-63B §5.1.1.2).
const SERVICE_WORD: &str = "latchkey";

/// Stable problem code (the last part of the RFC 9457 `type`) of a refused password.
pub const WEAK_PASSWORD: &str = "weak-password";

/// Said when zxcvbn has no more specific advice.
const GENERIC_ADVICE: &str = "Use a few unrelated words, or a longer passphrase.";

/// Why a new password was refused: a message that says what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WeakPassword(String);

impl WeakPassword {
    /// The message, safe to show (it never contains the password).
    pub fn message(&self) -> &str {
        &self.0
    }
}

/// Checks a new password for `email` (and the display `name`, possibly empty): the length policy,
/// then refuses one that contains the email's local part or the name, or that zxcvbn scores below
/// [`MIN_ZXCVBN_SCORE`] with the person's details as known words.
pub fn check_new_password(
    password: &Password,
    email: &str,
    name: &str,
) -> Result<(), WeakPassword> {
    check_policy(password).map_err(|e| WeakPassword(e.to_string()))?;
    let lowered = password.expose().to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    let personal = personal_words(local, name);
    if personal
        .iter()
        .any(|word| word.chars().count() >= MIN_PERSONAL_CHARS && lowered.contains(word.as_str()))
    {
        return Err(WeakPassword(
            "password must not contain your name or email address; \
             use a few unrelated words instead"
                .to_owned(),
        ));
    }
    let mut inputs: Vec<String> = personal;
    inputs.push(email.trim().to_lowercase());
    if let Some((_, domain)) = email.split_once('@') {
        inputs.extend(domain.split('.').map(str::to_lowercase));
    }
    inputs.push(SERVICE_WORD.to_owned());
    let inputs: Vec<&str> = inputs
        .iter()
        .map(String::as_str)
        .filter(|w| !w.is_empty())
        .collect();
    let scored: String = password.expose().chars().take(MAX_SCORED_CHARS).collect();
    let entropy = zxcvbn::zxcvbn(&scored, &inputs);
    if u8::from(entropy.score()) >= MIN_ZXCVBN_SCORE {
        return Ok(());
    }
    let mut advice: Vec<String> = Vec::new();
    if let Some(feedback) = entropy.feedback() {
        advice.extend(feedback.warning().map(|w| w.to_string()));
        advice.extend(feedback.suggestions().iter().map(ToString::to_string));
    }
    if advice.is_empty() {
        advice.push(GENERIC_ADVICE.to_owned());
    }
    Err(WeakPassword(format!(
        "password is too easy to guess. {}",
        advice.join(" ")
    )))
}

/// The person's own words, lower case: the email local part and its pieces, the name and its words.
fn personal_words(local: &str, name: &str) -> Vec<String> {
    let mut words = Vec::new();
    for whole in [local.trim(), name.trim()] {
        if whole.is_empty() {
            continue;
        }
        words.push(whole.to_lowercase());
        words.extend(
            whole
                .split(|c: char| !c.is_alphanumeric())
                .filter(|p| !p.is_empty() && *p != whole)
                .map(str::to_lowercase),
        );
    }
    words
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn check(password: &str, email: &str, name: &str) -> Result<(), WeakPassword> {
        check_new_password(&Password::new(password.to_owned()), email, name)
    }

    #[test]
    fn common_and_guessable_passwords_are_refused_with_advice() {
        for weak in [
            "password",
            "password123",
            "Summer2024!",
            "qwertyuiop",
            "aaaaaaaaaa",
        ] {
            let err = check(weak, "ada@example.com", "").expect_err(weak);
            assert!(
                err.message().starts_with("password is too easy to guess. "),
                "{err}"
            );
            assert!(err.message().len() > "password is too easy to guess. ".len());
        }
    }

    #[test]
    fn personal_words_are_refused() {
        let err = check("grace.hopper1906", "grace.hopper@example.com", "").expect_err("local");
        assert!(err.message().contains("name or email"), "{err}");
        check(
            "hopper lighthouse tangerine",
            "grace.hopper@example.com",
            "",
        )
        .expect_err("a piece of the local part");
        check("Lovelace-2024-rocks", "ada@example.com", "Ada Lovelace").expect_err("name");
        check("ADA LOVELACE 1815!!", "x@example.com", "Ada Lovelace").expect_err("name, any case");
        check("latchkey2024", "x@example.com", "").expect_err("the service name");
    }

    #[test]
    fn strong_passphrases_are_accepted() {
        for strong in [
            "tangerine lighthouse sofa",
            "correct horse battery staple",
            "mauve otter quietly juggles",
        ] {
            check(strong, "ada@example.com", "Ada Lovelace").expect(strong);
        }
        // A short personal piece ("ann") is no reason on its own.
        check("annual violet kettle drum", "ann@example.com", "Ann").expect("short names");
    }

    #[test]
    fn length_rules_still_apply() {
        assert!(check("short", "a@example.com", "").is_err());
        let long = "x".repeat(crate::crypto::password::MAX_PASSWORD_BYTES + 1);
        assert!(check(&long, "a@example.com", "").is_err());
    }
}
