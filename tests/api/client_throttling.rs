//! Throttling of failed client authentication (token, revocation and introspection endpoints): per
//! client id 5 failures then a doubling delay, per address 100 per window, a further failure
//! answered 429 `invalid_client` with `Retry-After`; a correct secret is never refused.

use crate::helpers::{Backend, TestApp};
use crate::rp;
use crate::throttling::{count_where, retry_after};

on_both_databases!(
    wrong_client_secrets_are_throttled_per_client,
    one_address_gets_a_hundred_failed_client_authentications,
);

async fn wrong_client_secrets_are_throttled_per_client(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.clock.freeze();
    let client = app
        .register_client(&["--grant-type", "client_credentials"])
        .await;
    let form = [("grant_type", "client_credentials")];

    for _ in 0..5 {
        let refused = app
            .post_token(Some((&client.id, "not-the-secret")), &form)
            .await;
        assert_eq!(refused.status(), 401);
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
    }
    // Throttled: a wrong secret gets 429 with Retry-After and an RFC 6749 body ...
    let throttled = app
        .post_token(Some((&client.id, "not-the-secret")), &form)
        .await;
    assert_eq!(retry_after(&throttled), 1);
    assert_eq!(rp::header(&throttled, "cache-control"), "no-store");
    let body: serde_json::Value = throttled.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("retry later")
    );
    // ... while the right one is never refused: nobody can lock a client out by hammering its id.
    let fine = app
        .post_token(Some((&client.id, client.secret())), &form)
        .await;
    assert_eq!(fine.status(), 200, "{}", fine.text().await.unwrap());
    // Revocation and introspection authenticate the client the same way, throttle included.
    for path in ["/revoke", "/introspect"] {
        for (secret, expected) in [("not-the-secret", 429), (client.secret(), 200)] {
            let answer = rp::rp_http()
                .post(app.url(path))
                .basic_auth(&client.id, Some(secret))
                .form(&[("token", "anything")])
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), expected, "{path} {secret}");
        }
    }
    let audited = "select count(*) from audit_events where action = $1";
    assert_eq!(count_where(&app, audited, "client_auth.throttled").await, 3);

    // Another client is not affected; after the delay a failure counts again and doubles it.
    let other = app
        .register_client(&["--grant-type", "client_credentials"])
        .await;
    let fine = app
        .post_token(Some((&other.id, other.secret())), &form)
        .await;
    assert_eq!(fine.status(), 200);
    app.clock.advance(1);
    let again = app
        .post_token(Some((&client.id, "not-the-secret")), &form)
        .await;
    assert_eq!(again.status(), 401);
    let doubled = app
        .post_token(Some((&client.id, "not-the-secret")), &form)
        .await;
    assert_eq!(retry_after(&doubled), 2);
}

async fn one_address_gets_a_hundred_failed_client_authentications(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.clock.freeze();
    let client = app
        .register_client(&["--grant-type", "client_credentials"])
        .await;
    let form = [("grant_type", "client_credentials")];

    // 100 failures with 100 different (unknown) client ids from one address, then 429 for all.
    for i in 0..100 {
        let id = format!("guessed-client-{i}");
        let refused = app.post_token(Some((&id, "secret")), &form).await;
        assert_eq!(refused.status(), 401);
    }
    let throttled = app.post_token(Some((&client.id, "wrong")), &form).await;
    let wait = retry_after(&throttled);
    assert!((1..=900).contains(&wait), "{wait}");
    // A correct secret from that address is still served.
    let ok = app
        .post_token(Some((&client.id, client.secret())), &form)
        .await;
    assert_eq!(ok.status(), 200);

    // The window ends; a failure is an ordinary 401 again.
    app.clock.advance(wait);
    let refused = app.post_token(Some((&client.id, "wrong")), &form).await;
    assert_eq!(refused.status(), 401);
}
