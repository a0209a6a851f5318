//! A real SMTP server on loopback for tests: the subset of RFC 5321 a submitting client uses (EHLO /
//! HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT). It keeps every message it accepted
//! and can be stopped and restarted on the same port (the "server down, then back" test).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::mail::{MAIL_DEADLINE, ReceivedMail, parse};

/// A running (or stopped) SMTP sink.
pub struct SmtpSink {
    port: u16,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    server: Option<JoinHandle<()>>,
}

impl SmtpSink {
    /// Starts a sink on a free loopback port.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let port = listener.local_addr().expect("sink addr").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let server = Some(tokio::spawn(serve(listener, received.clone())));
        SmtpSink {
            port,
            received,
            server,
        }
    }

    /// `smtp://127.0.0.1:PORT`, for `LATCHKEY_SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stops listening (connections are refused until [`SmtpSink::restart`]).
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    /// Listens again on the same port, keeping what was received.
    pub async fn restart(&mut self) {
        self.stop();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    eprintln!("sink rebind: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot rebind the SMTP sink on {}: {e}", self.port),
            }
        };
        self.server = Some(tokio::spawn(serve(listener, self.received.clone())));
    }

    /// Every message received so far, oldest first.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.received
            .lock()
            .expect("sink lock")
            .iter()
            .map(|raw| parse(raw))
            .collect()
    }

    /// Waits (up to [`MAIL_DEADLINE`]) for a message to `to` whose subject contains the text.
    pub async fn wait_for(&self, to: &str, subject_contains: &str) -> ReceivedMail {
        let deadline = tokio::time::Instant::now() + MAIL_DEADLINE;
        let to = to.to_lowercase();
        loop {
            if let Some(m) = self
                .received()
                .into_iter()
                .rev()
                .find(|m| m.to == to && m.subject.contains(subject_contains))
            {
                return m;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no mail to {to} with subject containing {subject_contains:?} reached the SMTP \
                 sink within {MAIL_DEADLINE:?}; received: {:?}",
                self.received()
                    .iter()
                    .map(|m| format!("{} / {}", m.to, m.subject))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accepts connections until aborted; each session runs in its own task, aborted with the server.
async fn serve(listener: TcpListener, received: Arc<Mutex<Vec<Vec<u8>>>>) {
    let mut sessions = tokio::task::JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        sessions.spawn(session(stream, received.clone()));
    }
}

/// One SMTP session.
async fn session(stream: TcpStream, received: Arc<Mutex<Vec<Vec<u8>>>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let reply = |s: &str| format!("{s}\r\n").into_bytes();
    if write
        .write_all(&reply("220 sink.test ESMTP ready"))
        .await
        .is_err()
    {
        return;
    }
    let mut has_sender = false;
    let mut recipients = 0;
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end().to_ascii_uppercase();
        let answer: Vec<u8> = if command.starts_with("EHLO") {
            reply("250-sink.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING")
        } else if command.starts_with("HELO") {
            reply("250 sink.test")
        } else if command.starts_with("MAIL FROM:") {
            has_sender = true;
            recipients = 0;
            reply("250 OK")
        } else if command.starts_with("RCPT TO:") {
            if has_sender {
                recipients += 1;
                reply("250 OK")
            } else {
                reply("503 MAIL first")
            }
        } else if command == "DATA" {
            if !has_sender || recipients == 0 {
                reply("503 RCPT first")
            } else {
                if write
                    .write_all(&reply("354 end with <CRLF>.<CRLF>"))
                    .await
                    .is_err()
                {
                    return;
                }
                let mut message = Vec::new();
                loop {
                    let mut data = String::new();
                    match lines.read_line(&mut data).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if data == ".\r\n" || data == ".\n" {
                        break;
                    }
                    // RFC 5321 §4.5.2: a leading dot was doubled by the client.
                    let data = data.strip_prefix('.').unwrap_or(&data);
                    message.extend_from_slice(data.as_bytes());
                }
                received.lock().expect("sink lock").push(message);
                has_sender = false;
                recipients = 0;
                reply("250 OK queued")
            }
        } else if command == "RSET" {
            has_sender = false;
            recipients = 0;
            reply("250 OK")
        } else if command.starts_with("NOOP") {
            reply("250 OK")
        } else if command == "QUIT" {
            let _ = write.write_all(&reply("221 bye")).await;
            return;
        } else {
            reply("502 command not implemented")
        };
        if write.write_all(&answer).await.is_err() {
            return;
        }
    }
}
