//! The mail delivery loop: `.eml` files without SMTP, a real SMTP exchange, retries with backoff while
//! the server is down, and one delivery per message when two processes share the outbox.

use latchkey::jobs::outbox::deliver_due;
use latchkey::mail::delivery::{self, Deliverer, MAX_ATTEMPTS};
use latchkey::mail::transport::Transport;
use latchkey::mail::{self, Mail, Mailer};

use crate::helpers::{Backend, TestApp};
use crate::support::mail::{mails_to, wait_for_mail};
use crate::support::smtp::SmtpSink;

on_both_databases!(
    file_backend_writes_one_eml_per_message,
    smtp_backend_hands_over_text_and_html,
    smtp_down_then_back_still_delivers,
    two_processes_send_each_message_once,
    delivery_gives_up_after_the_last_attempt,
);

fn sample(to: &str, subject: &str) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text:
            "Hello in text.\nSecond line with ünïcode and a link https://example.test/x?a=1&b=2\n"
                .to_owned(),
        html: Some("<p>Hello in <b>HTML</b> &amp; ünïcode.</p>".to_owned()),
    }
}

/// Queues `mail` as a feature would (in the database) and wakes nobody: the loop's poll finds it.
async fn queue(app: &TestApp, mail: &Mail) {
    mail::queue(&app.db.pool, mail, app.clock.now())
        .await
        .expect("queue mail");
}

async fn outbox_row(app: &TestApp) -> (i64, Option<i64>, Option<String>) {
    sqlx::query_as("select attempts, sent_at, last_error from mail_outbox")
        .fetch_one(&app.db.pool)
        .await
        .expect("one outbox row")
}

/// Subject, text body and HTML body of the one outbox row.
async fn outbox_body(app: &TestApp) -> (String, String, Option<String>) {
    sqlx::query_as("select subject, text_body, html_body from mail_outbox")
        .fetch_one(&app.db.pool)
        .await
        .expect("one outbox row")
}

async fn file_backend_writes_one_eml_per_message(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, &[("LATCHKEY_MAIL_FROM", "Acme ID <id@acme.test>")]).await;
    queue(&app, &sample("Alice@Example.test", "First message")).await;
    queue(&app, &sample("bob@example.test", "Second message")).await;

    let first = wait_for_mail(&app, "alice@example.test", "First").await;
    assert_eq!(first.subject, "First message");
    assert_eq!(first.from, "Acme ID <id@acme.test>");
    assert!(first.text.contains("ünïcode"), "{}", first.text);
    assert!(first.html.contains("<b>HTML</b>"), "{}", first.html);
    assert_eq!(first.link("/x"), "https://example.test/x?a=1&b=2");
    wait_for_mail(&app, "bob@example.test", "Second").await;

    // Each message once, marked sent; nothing to an address nobody wrote to.
    assert_eq!(mails_to(&app, "alice@example.test").await.len(), 1);
    assert!(mails_to(&app, "carol@example.test").await.is_empty());
    let unsent: i64 = sqlx::query_scalar("select count(*) from mail_outbox where sent_at is null")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(unsent, 0);
}

async fn smtp_backend_hands_over_text_and_html(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(
        backend,
        &[
            ("LATCHKEY_SMTP_URL", sink.url().as_str()),
            ("LATCHKEY_MAIL_FROM", "Acme ID <id@acme.test>"),
        ],
    )
    .await;
    queue(&app, &sample("dana@example.test", "Over SMTP")).await;

    let got = sink.wait_for("dana@example.test", "Over SMTP").await;
    assert_eq!(got.from, "Acme ID <id@acme.test>");
    assert!(got.message_id.ends_with("@acme.test"), "{}", got.message_id);
    assert!(
        got.text.contains("Second line with ünïcode"),
        "{}",
        got.text
    );
    assert!(
        got.html.contains("<b>HTML</b> &amp; ünïcode"),
        "{}",
        got.html
    );
    // Not written as a file as well.
    assert!(mails_to(&app, "dana@example.test").await.is_empty());
    let (attempts, sent_at, _) = outbox_row(&app).await;
    assert_eq!(attempts, 1);
    assert!(sent_at.is_some());
}

async fn smtp_down_then_back_still_delivers(backend: Backend) {
    let mut sink = SmtpSink::start().await;
    sink.stop();
    let app = TestApp::spawn_with(backend, &[("LATCHKEY_SMTP_URL", sink.url().as_str())]).await;
    queue(&app, &sample("erin@example.test", "Despite an outage")).await;

    // The first attempt fails (connection refused) and is scheduled again with a backoff.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let (attempts, sent_at, error) = loop {
        let row = outbox_row(&app).await;
        if row.0 >= 1 {
            break row;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no attempt was made"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(attempts, 1);
    assert!(sent_at.is_none());
    let error = error.expect("the failure is recorded");
    assert!(error.contains("smtp"), "{error}");

    // Back up; once the retry is due (the clock moves past the backoff) the message goes out once.
    sink.restart().await;
    app.clock.advance(60);
    let got = sink
        .wait_for("erin@example.test", "Despite an outage")
        .await;
    assert!(got.text.contains("Hello in text."));
    // The loop marks the row sent just after the server took the message: wait for that.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let error = loop {
        let (_, sent_at, error) = outbox_row(&app).await;
        if sent_at.is_some() {
            break error;
        }
        assert!(tokio::time::Instant::now() < deadline, "never marked sent");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(error.is_none());
    assert_eq!(sink.received().len(), 1);
}

async fn two_processes_send_each_message_once(backend: Backend) {
    // A second delivery loop on the same database stands for a second `latchkey serve` process.
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(backend, &[("LATCHKEY_SMTP_URL", sink.url().as_str())]).await;
    let config = latchkey::config::Config::from_lookup(|k| app.env.get(k).cloned()).unwrap();
    let other = delivery::start(
        Deliverer {
            transport: Transport::from_config(&config).unwrap(),
            db: app.db.clone(),
            clock: app.clock.clone(),
            from: config.mail_from.clone(),
        },
        Mailer::default(),
    );
    for i in 0..20 {
        queue(
            &app,
            &sample("fay@example.test", &format!("Message {i:02}")),
        )
        .await;
    }
    for i in 0..20 {
        sink.wait_for("fay@example.test", &format!("Message {i:02}"))
            .await;
    }
    // Both loops poll every second: give a doubled send the time to show up, then count.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    other.stop().await;
    assert_eq!(sink.received().len(), 20, "a message was sent twice");
}

async fn delivery_gives_up_after_the_last_attempt(backend: Backend) {
    // Nothing listens on the sink's port once it is stopped: every attempt fails at once.
    let mut sink = SmtpSink::start().await;
    sink.stop();
    let app = TestApp::spawn_with(backend, &[("LATCHKEY_SMTP_URL", sink.url().as_str())]).await;
    let config = latchkey::config::Config::from_lookup(|k| app.env.get(k).cloned()).unwrap();
    let deliverer = Deliverer {
        transport: Transport::from_config(&config).unwrap(),
        db: app.db.clone(),
        clock: app.clock.clone(),
        from: config.mail_from.clone(),
    };
    queue(&app, &sample("gus@example.test", "Never delivered")).await;
    let (_, keep_going) = tokio::sync::watch::channel(false);
    for _ in 0..200 {
        let (attempts, _, _) = outbox_row(&app).await;
        if attempts >= MAX_ATTEMPTS {
            break;
        }
        // While it will be retried, the body is kept.
        assert!(outbox_body(&app).await.1.contains("Hello in text."));
        deliver_due(&deliverer, &keep_going).await.unwrap();
        app.clock.advance(601);
    }
    let (attempts, sent_at, error) = outbox_row(&app).await;
    assert_eq!(attempts, MAX_ATTEMPTS);
    assert!(sent_at.is_none());
    assert!(error.is_some());
    // Given up: the record stays, the body (live links) is emptied.
    let (subject, text, html) = outbox_body(&app).await;
    assert_eq!(subject, "Never delivered");
    assert_eq!((text.as_str(), html), ("", None));
    // Given up: later passes leave it alone.
    app.clock.advance(3600);
    deliver_due(&deliverer, &keep_going).await.unwrap();
    assert_eq!(outbox_row(&app).await.0, MAX_ATTEMPTS);
}
