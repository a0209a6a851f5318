//! Reading the mail a test server sent: `.eml` files in its mail directory (the default backend of
//! `TestApp`), parsed with `mail-parser` (quoted-printable and base64 decoded).

use std::path::PathBuf;
use std::time::Duration;

use mail_parser::MessageParser;

use crate::helpers::TestApp;

/// How long [`wait_for_mail`] waits (the documented interface (README) promises hand-over within 5 s).
pub const MAIL_DEADLINE: Duration = Duration::from_secs(10);

/// One received message, decoded.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The `To` address (lower-cased).
    pub to: String,
    /// The decoded subject.
    pub subject: String,
    /// The `From` header as written (`Name <address>`).
    pub from: String,
    /// The `Message-ID`, without angle brackets.
    pub message_id: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body (empty when the message has none).
    pub html: String,
}

impl ReceivedMail {
    /// The first absolute URL in the text body whose path starts with `path`; panics (showing the
    /// body) when there is none.
    #[track_caller]
    pub fn link(&self, path: &str) -> String {
        self.text
            .split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '(' | ')'))
            .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
            .find(|w| {
                url::Url::parse(w)
                    .map(|u| u.path().starts_with(path))
                    .unwrap_or(false)
            })
            .map(|w| w.trim_end_matches(['.', ',']).to_owned())
            .unwrap_or_else(|| panic!("no link to {path} in the mail:\n{}", self.text))
    }
}

/// Parses a raw RFC 5322 message.
pub fn parse(raw: &[u8]) -> ReceivedMail {
    let message = MessageParser::default()
        .parse(raw)
        .unwrap_or_else(|| panic!("unparsable mail:\n{}", String::from_utf8_lossy(raw)));
    let address = |a: Option<&mail_parser::Address>| {
        a.and_then(|a| a.first())
            .map(|addr| {
                let email = addr.address().unwrap_or_default().to_owned();
                match addr.name() {
                    Some(name) => format!("{name} <{email}>"),
                    None => email,
                }
            })
            .unwrap_or_default()
    };
    let to = message
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_lowercase();
    ReceivedMail {
        to,
        subject: message.subject().unwrap_or_default().to_owned(),
        from: address(message.from()),
        message_id: message.message_id().unwrap_or_default().to_owned(),
        text: message
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
        html: message
            .body_html(0)
            .filter(|_| !message.html_body.is_empty() && message.html_body != message.text_body)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
    }
}

/// The `.eml` files in the app's mail directory.
fn eml_files(app: &TestApp) -> Vec<PathBuf> {
    let dir = PathBuf::from(&app.env["LATCHKEY_MAIL_DIR"]);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
}

/// Every message written so far to `to` (no waiting), oldest first; for asserting that NO mail
/// went to an address (after the action whose mail would have come with another one).
pub async fn mails_to(app: &TestApp, to: &str) -> Vec<ReceivedMail> {
    let to = to.to_lowercase();
    eml_files(app)
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(|raw| parse(&raw))
        .filter(|m| m.to == to)
        .collect()
}

/// Waits (up to [`MAIL_DEADLINE`]) for a message to `to` whose subject contains
/// `subject_contains`, and returns the newest such message.
#[track_caller]
pub fn wait_for_mail<'a>(
    app: &'a TestApp,
    to: &'a str,
    subject_contains: &'a str,
) -> impl std::future::Future<Output = ReceivedMail> + 'a {
    let caller = std::panic::Location::caller();
    async move {
        let deadline = tokio::time::Instant::now() + MAIL_DEADLINE;
        loop {
            let found = mails_to(app, to)
                .await
                .into_iter()
                .rev()
                .find(|m| m.subject.contains(subject_contains));
            if let Some(mail) = found {
                return mail;
            }
            if tokio::time::Instant::now() >= deadline {
                let seen: Vec<String> = eml_files(app)
                    .iter()
                    .filter_map(|p| std::fs::read(p).ok())
                    .map(|raw| parse(&raw))
                    .map(|m| format!("{} / {}", m.to, m.subject))
                    .collect();
                panic!(
                    "{caller}: no mail to {to} with subject containing {subject_contains:?} \
                     within {MAIL_DEADLINE:?}; seen: {seen:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
