//! User codes (RFC 8628 §6.1): eight letters from an alphabet without vowels (no words can be
//! spelt) and without letters easily confused on a screen, shown `XXXX-XXXX`; what people type is
//! normalised before it is hashed and looked up, so case, dashes and spaces do not matter.

use rand::Rng as _;

/// The alphabet of RFC 8628 §6.1's example: 20 consonants, 20^8 ≈ 2^34.5 codes.
pub const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Characters in a user code.
pub const LEN: usize = 8;

/// A new user code in its normalised form (eight letters, no dash), uniformly drawn from the OS
/// CSPRNG (`gen_range` rejects the biased tail, so no letter is likelier than another).
pub fn generate() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..LEN)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// What a person typed, normalised (RFC 8628 §6.1: case-insensitive, punctuation ignored): upper
/// case, dashes and white space dropped; `None` unless eight letters of the alphabet remain.
pub fn normalise(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid = code.len() == LEN && code.bytes().all(|b| ALPHABET.contains(&b));
    valid.then_some(code)
}

/// A normalised code as it is shown: `XXXX-XXXX`.
pub fn display(code: &str) -> String {
    match (code.get(..4), code.get(4..)) {
        (Some(head), Some(tail)) => format!("{head}-{tail}"),
        _ => code.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_eight_letters_of_the_alphabet() {
        for _ in 0..100 {
            let code = generate();
            assert_eq!(normalise(&code).as_deref(), Some(code.as_str()));
        }
    }

    #[test]
    fn typing_is_forgiving_but_only_of_case_dashes_and_spaces() {
        assert_eq!(normalise("bcdf-ghjk").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalise(" BCDF GHJK ").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalise("BCDFGHJK").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalise("BCDF-GHJ"), None);
        assert_eq!(normalise("BCDF-GHJKL"), None);
        assert_eq!(
            normalise("ABCD-EFGH"),
            None,
            "vowels are not in the alphabet"
        );
        assert_eq!(normalise("BCDF_GHJK"), None);
        assert_eq!(normalise(""), None);
        assert_eq!(display("BCDFGHJK"), "BCDF-GHJK");
    }
}
