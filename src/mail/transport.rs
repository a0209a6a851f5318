//! Where mail goes: an SMTP server (lettre), or `.eml` files in a directory when no SMTP server is
//! configured (development and tests).
//!
//! `smtp://HOST[:PORT]` upgrades with STARTTLS (RFC 3207) and refuses to send in clear text
//! (lettre's `Tls::Required`), unless the host is loopback or the URL says `?tls=opportunistic`
//! (lettre's `Tls::Opportunistic`: STARTTLS when the server offers it, clear text otherwise); see
//! `config::StartTls`. `smtps://HOST[:PORT]` uses implicit TLS (RFC 8314 §3.3).
//! Credentials come from the URL's user info (percent-decoded). Every SMTP command times out after
//! [`SMTP_TIMEOUT`], so a stuck server delays only the delivery loop, never a request.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::Mail;
use crate::config::{Config, SmtpUrl, StartTls};

/// Timeout of each SMTP command (connect, EHLO, DATA, ...).
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default port of `smtp://` (RFC 5321 §4.5.4.2 relay port; submission servers usually need `:587`).
const SMTP_PORT: u16 = 25;
/// Default port of `smtps://` (RFC 8314 §7.3, submissions).
const SMTPS_PORT: u16 = 465;

/// Why a message could not be handed over. The text never contains the SMTP password.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The message itself is unusable (a malformed recipient address): retrying cannot help.
    #[error("message rejected: {0}")]
    Permanent(String),
    /// The server or the directory failed this time; a later attempt may succeed.
    #[error("{0}")]
    Temporary(String),
}

/// The configured way out.
#[derive(Clone)]
pub enum Transport {
    /// An SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// One `.eml` file per message in this directory.
    Files(PathBuf),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Smtp(_) => f.write_str("Transport::Smtp"),
            Transport::Files(dir) => f.debug_tuple("Transport::Files").field(dir).finish(),
        }
    }
}

impl Transport {
    /// Builds the transport the configuration asks for.
    pub fn from_config(config: &Config) -> anyhow::Result<Transport> {
        match &config.smtp_url {
            Some(url) => Ok(Transport::Smtp(smtp(url)?)),
            None => Ok(Transport::Files(config.mail_dir.clone())),
        }
    }

    /// Hands one message over (SMTP) or writes it (files).
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| SendError::Temporary(format!("smtp: {e}"))),
            Transport::Files(dir) => write_eml(dir, &message.formatted()).await.map_err(|e| {
                SendError::Temporary(format!("cannot write to {}: {e}", dir.display()))
            }),
        }
    }
}

/// The SMTP transport for `url`.
fn smtp(url: &SmtpUrl) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let parsed = url::Url::parse(url.expose()).map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| anyhow::anyhow!("{url}: no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let params = TlsParameters::new(host.clone())?;
    let (tls, default_port) = match (parsed.scheme(), url.starttls()) {
        ("smtps", _) => (Tls::Wrapper(params), SMTPS_PORT),
        (_, StartTls::Required) => (Tls::Required(params), SMTP_PORT),
        (_, StartTls::Opportunistic) => (Tls::Opportunistic(params), SMTP_PORT),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(parsed.port().unwrap_or(default_port))
        .tls(tls)
        .timeout(Some(SMTP_TIMEOUT));
    if !parsed.username().is_empty() {
        builder = builder.credentials(Credentials::new(
            decode_userinfo(parsed.username()),
            decode_userinfo(parsed.password().unwrap_or("")),
        ));
    }
    Ok(builder.build())
}

/// Decodes a percent-encoded user or password of a URL (RFC 3986 §3.2.1). Form decoding does that
/// once `+` and `&`, literal in user info but special in forms, are escaped.
fn decode_userinfo(s: &str) -> String {
    let escaped = s.replace('+', "%2B").replace('&', "%26");
    url::form_urlencoded::parse(format!("x={escaped}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Writes `bytes` as `<uuid>.eml` in `dir` (created if missing), through a temporary name and a
/// rename, so a reader of the directory never sees half a message.
async fn write_eml(dir: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let name = uuid::Uuid::now_v7();
    let partial = dir.join(format!(".{name}.eml.partial"));
    tokio::fs::write(&partial, bytes).await?;
    tokio::fs::rename(&partial, dir.join(format!("{name}.eml"))).await
}

/// A unique `Message-ID` (RFC 5322 §3.6.4) in the sender's domain, so it says who sent it (not
/// the name of whatever host the process runs on).
fn message_id(from: &Mailbox) -> String {
    format!(
        "<{}@{}>",
        uuid::Uuid::new_v4().simple(),
        from.email.domain()
    )
}

/// Builds the MIME message: From the configured sender, a Message-ID, the Date of the action, and a
/// `multipart/alternative` body (text first, then HTML; RFC 2046 §5.1.4) when there is HTML.
pub fn build_message(from: &Mailbox, mail: &Mail, date_unix: i64) -> Result<Message, SendError> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|_| SendError::Permanent("malformed recipient address".into()))?;
    let date = UNIX_EPOCH + Duration::from_secs(u64::try_from(date_unix).unwrap_or(0));
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .message_id(Some(message_id(from)))
        .date(date);
    let built = match &mail.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            html.clone(),
        )),
        None => builder.singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(mail.text.clone()),
        ),
    };
    built.map_err(|e| SendError::Permanent(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_percent_decoded() {
        assert_eq!(decode_userinfo("user%40example.com"), "user@example.com");
        assert_eq!(decode_userinfo("p%3Ass+w&rd%25"), "p:ss+w&rd%");
        assert_eq!(decode_userinfo("plain"), "plain");
        assert_eq!(decode_userinfo(""), "");
    }

    #[test]
    fn smtp_and_smtps_urls_build_transports() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://mail.example.com?tls=required",
            "smtps://u%40x:p%2Fw@mail.example.com",
            "smtps://[::1]:465",
        ] {
            let parsed = crate::config::Config::from_lookup(|k| {
                (k == "LATCHKEY_SMTP_URL").then(|| url.to_owned())
            })
            .unwrap_or_else(|e| panic!("{url}: {e}"));
            let transport =
                Transport::from_config(&parsed).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(matches!(transport, Transport::Smtp(_)), "{url}");
        }
    }

    #[test]
    fn a_malformed_recipient_is_a_permanent_failure() {
        let from: Mailbox = "Latchkey <no-reply@example.com>"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        let mail = Mail {
            to: "not an address".into(),
            subject: "s".into(),
            text: "t".into(),
            html: None,
        };
        assert!(matches!(
            build_message(&from, &mail, 0),
            Err(SendError::Permanent(_))
        ));
        let ok = Mail {
            to: "a@example.com".into(),
            ..mail
        };
        let message = build_message(&from, &ok, 1_700_000_000).unwrap_or_else(|e| panic!("{e}"));
        let raw = String::from_utf8_lossy(&message.formatted()).into_owned();
        assert!(raw.contains("Message-ID: <"), "{raw}");
        assert!(raw.contains("@example.com>"), "{raw}");
        assert!(
            raw.contains("Date: Tue, 14 Nov 2023 22:13:20 +0000"),
            "{raw}"
        );
    }
}
