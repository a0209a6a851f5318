//! Outgoing mail. A feature queues a [`Mail`] with [`queue`] inside the transaction of the action that
//! causes it (so the mail goes out if and only if the action happened), commits, then calls
//! [`Mailer::wake`]; the delivery loop sends queued mail through SMTP or writes `.eml` files, with
//! retries, so a slow or down SMTP server never blocks a request or loses a message.

pub mod delivery;
pub mod store;
pub mod template;
pub mod transport;

use std::sync::Arc;

use tokio::sync::Notify;

pub use store::queue;
pub use template::{MailContext, compose, format_utc};

/// One message to send.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body, sent as the `multipart/alternative` sibling of the text.
    pub html: Option<String>,
}

/// Handle on the delivery loop, shared through `AppState`.
#[derive(Debug, Clone, Default)]
pub struct Mailer {
    wake: Arc<Notify>,
}

impl Mailer {
    /// Tells the delivery loop that new mail is queued (call after the commit).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Completes when [`Mailer::wake`] was called.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}
