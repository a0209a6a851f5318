//! `latchkey client list|show|update|rotate-secret|delete`: each prints one JSON object and never a
//! secret (only `create` and `rotate-secret` print one, once; the database holds only its SHA-256
//! hash); rotation with a grace keeps the old secret working until the printed time, without one
//! the old secret is `invalid_client` at once; deletion makes the token endpoint refuse the client;
//! an unknown id or a bad value exits 1 with one line on stderr and changes nothing.

use serde_json::Value;

use crate::helpers::{Backend, TestApp};

on_both_databases!(
    create_list_show_update_never_print_a_secret,
    rotate_secret_with_and_without_grace,
    delete_makes_the_token_endpoint_refuse_the_client,
    update_checks_every_setting_as_create_does,
);

/// A confidential `client_credentials` client allowed `org:read`: `(client_id, secret)`.
async fn machine_client(app: &TestApp) -> (String, String) {
    let client = app
        .register_client(&["--grant-type", "client_credentials", "--scope", "org:read"])
        .await;
    let secret = client.secret().to_owned();
    (client.id, secret)
}

/// The status and body of a `client_credentials` token request authenticated with `secret`.
pub async fn client_credentials(app: &TestApp, id: &str, secret: &str) -> (u16, Value) {
    let response = app
        .post_token(Some((id, secret)), &[("grant_type", "client_credentials")])
        .await;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Asserts that `secret` gets a token.
#[track_caller]
fn assert_token((status, body): (u16, Value)) {
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
}

/// Asserts that the client authentication failed (RFC 6749 §5.2).
#[track_caller]
fn assert_invalid_client((status, body): (u16, Value)) {
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
}

/// The stored `secret_hash` of `id`.
async fn secret_hash(app: &TestApp, id: &str) -> Option<String> {
    sqlx::query_scalar("select secret_hash from clients where id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .expect("client row")
}

async fn create_list_show_update_never_print_a_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, secret) = machine_client(&app).await;
    let public = app.register_client(&["--public"]).await;
    assert!(public.secret.is_none());

    let hash = secret_hash(&app, &id).await.expect("a confidential client");
    assert_eq!(hash.len(), 64);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{hash}");
    assert_ne!(hash, secret);

    let list = app.cli(&["client", "list"]).await;
    assert!(!list.stdout.contains(&secret));
    assert!(!list.stdout.contains(&hash));
    let listed = list.json();
    let ids: Vec<&str> = listed["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .filter_map(|c| c["client_id"].as_str())
        .collect();
    assert_eq!(ids, [id.as_str(), public.id.as_str()]);

    let show = app.cli(&["client", "show", "--client-id", &id]).await;
    assert!(!show.stdout.contains(&secret));
    let shown = show.json();
    assert_eq!(shown["client_id"], id);
    assert_eq!(shown["name"], "Test RP");
    assert_eq!(
        shown["grant_types"],
        serde_json::json!(["client_credentials"])
    );
    assert_eq!(shown["scopes"], serde_json::json!(["org:read"]));
    assert_eq!(shown["public"], false);
    assert_eq!(shown["first_party"], false);
    assert!(shown["previous_secret_expires_at"].is_null());
    assert!(shown["created_at"].is_i64());
    assert!(shown.get("client_secret").is_none());
    assert!(shown.get("secret_hash").is_none());

    let updated = app
        .cli(&[
            "client",
            "update",
            "--client-id",
            &id,
            "--name",
            "Billing",
            "--redirect-uri",
            "https://billing.example.com/cb",
            "--first-party",
            "true",
        ])
        .await
        .json();
    assert_eq!(updated["name"], "Billing");
    assert_eq!(
        updated["redirect_uris"],
        serde_json::json!(["https://billing.example.com/cb"])
    );
    assert_eq!(updated["first_party"], true);
    assert_eq!(updated["scopes"], serde_json::json!(["org:read"]));

    // Bad values: one line, nothing changed.
    let before = app
        .cli(&["client", "show", "--client-id", &id])
        .await
        .json();
    for bad in [
        ["--redirect-uri", "not a uri"],
        ["--grant-type", "password"],
    ] {
        let mut args = vec!["client", "update", "--client-id", &id];
        args.extend_from_slice(&bad);
        let line = app.cli(&args).await.refused();
        assert!(!line.is_empty());
    }
    // A public client cannot use client_credentials.
    app.cli(&[
        "client",
        "update",
        "--client-id",
        &public.id,
        "--grant-type",
        "client_credentials",
    ])
    .await
    .refused();
    let after = app
        .cli(&["client", "show", "--client-id", &id])
        .await
        .json();
    assert_eq!(before, after);
    assert_eq!(secret_hash(&app, &id).await.as_deref(), Some(hash.as_str()));
    assert_token(client_credentials(&app, &id, &secret).await);

    // Unknown ids.
    for cmd in ["show", "delete", "rotate-secret"] {
        let out = app
            .cli(&["client", cmd, "--client-id", "no-such-client"])
            .await;
        assert_eq!(out.code, Some(1), "{cmd}: {}", out.stderr);
        out.refused();
    }
    let out = app
        .cli(&[
            "client",
            "update",
            "--client-id",
            "no-such-client",
            "--name",
            "X",
        ])
        .await;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    out.refused();
}

async fn rotate_secret_with_and_without_grace(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, old) = machine_client(&app).await;

    let rotated = app
        .cli(&[
            "client",
            "rotate-secret",
            "--client-id",
            &id,
            "--grace",
            "1h",
        ])
        .await
        .json();
    assert_eq!(rotated["client_id"], id);
    let new = rotated["client_secret"]
        .as_str()
        .expect("new secret")
        .to_owned();
    assert_ne!(new, old);
    let expires = rotated["previous_secret_expires_at"]
        .as_i64()
        .expect("expiry");
    let now = app.clock.now();
    assert!(
        (now + 3590..=now + 3610).contains(&expires),
        "{expires} vs {now}"
    );
    let shown = app.cli(&["client", "show", "--client-id", &id]).await;
    assert!(!shown.stdout.contains(&new) && !shown.stdout.contains(&old));
    assert_eq!(shown.json()["previous_secret_expires_at"], expires);
    let hash = secret_hash(&app, &id).await.expect("hash");
    assert_eq!(hash.len(), 64);
    assert_ne!(hash, new);

    // Both secrets work during the grace.
    assert_token(client_credentials(&app, &id, &old).await);
    assert_token(client_credentials(&app, &id, &new).await);
    assert_invalid_client(client_credentials(&app, &id, "wrong").await);

    // Rotating without a grace: only the newest secret works, at once.
    let rotated = app
        .cli(&[
            "client",
            "rotate-secret",
            "--client-id",
            &id,
            "--grace",
            "0s",
        ])
        .await
        .json();
    assert!(rotated["previous_secret_expires_at"].is_null(), "{rotated}");
    let newest = rotated["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    // The registry caches a client for one second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_invalid_client(client_credentials(&app, &id, &new).await);
    assert_invalid_client(client_credentials(&app, &id, &old).await);
    assert_token(client_credentials(&app, &id, &newest).await);

    // Refusals: too long a grace, a malformed one, a public client.
    for grace in ["31d", "soon"] {
        let out = app
            .cli(&[
                "client",
                "rotate-secret",
                "--client-id",
                &id,
                "--grace",
                grace,
            ])
            .await;
        out.refused();
    }
    let public = app.register_client(&["--public"]).await;
    app.cli(&["client", "rotate-secret", "--client-id", &public.id])
        .await
        .refused();
    assert!(
        app.cli(&["client", "show", "--client-id", &public.id])
            .await
            .json()["previous_secret_expires_at"]
            .is_null()
    );
    assert_token(client_credentials(&app, &id, &newest).await);
}

async fn delete_makes_the_token_endpoint_refuse_the_client(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (id, secret) = machine_client(&app).await;
    let (other, other_secret) = machine_client(&app).await;
    assert_token(client_credentials(&app, &id, &secret).await);

    let deleted = app
        .cli(&["client", "delete", "--client-id", &id])
        .await
        .json();
    assert_eq!(
        deleted,
        serde_json::json!({"client_id": id, "deleted": true})
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_invalid_client(client_credentials(&app, &id, &secret).await);
    let out = app.cli(&["client", "show", "--client-id", &id]).await;
    assert_eq!(out.code, Some(1));
    out.refused();
    let out = app.cli(&["client", "delete", "--client-id", &id]).await;
    assert_eq!(out.code, Some(1));
    out.refused();

    // The other client is untouched.
    assert_token(client_credentials(&app, &other, &other_secret).await);
    let listed = app.cli(&["client", "list"]).await.json();
    assert_eq!(listed["clients"].as_array().map(Vec::len), Some(1));
}

async fn update_checks_every_setting_as_create_does(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = app.register_client(&[]).await;
    let public = app.register_client(&["--public"]).await;

    // An algorithm of its own brings a signing key of that algorithm.
    let updated = app
        .cli(&[
            "client",
            "update",
            "--client-id",
            &client.id,
            "--id-token-alg",
            "EdDSA",
            "--require-org",
            "true",
            "--introspect",
            "true",
            "--post-logout-redirect-uri",
            "https://rp.example.com/bye",
        ])
        .await
        .json();
    assert_eq!(updated["id_token_alg"], "EdDSA");
    assert_eq!(updated["require_org"], true);
    assert_eq!(updated["introspect"], true);
    assert_eq!(
        updated["post_logout_redirect_uris"],
        serde_json::json!(["https://rp.example.com/bye"])
    );
    // The running server reloads its keys every second.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let jwks = app.jwks().await;
    assert!(
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .any(|k| k["alg"] == "EdDSA"),
        "{jwks}"
    );

    // Refusals, one line each, nothing changed.
    let before = app
        .cli(&["client", "show", "--client-id", &client.id])
        .await
        .json();
    let before_public = app
        .cli(&["client", "show", "--client-id", &public.id])
        .await
        .json();
    for args in [
        vec!["--first-party", "maybe"],
        vec!["--id-token-alg", "HS256"],
        vec!["--scope", "bad\"scope"],
        vec!["--post-logout-redirect-uri", "javascript:alert(1)"],
        vec!["--redirect-uri", "https://rp.example.com/cb#fragment"],
        vec!["--public"],
    ] {
        let mut all = vec!["client", "update", "--client-id", &client.id];
        all.extend_from_slice(&args);
        app.cli(&all).await.refused();
    }
    // PKCE stays required for a public client.
    app.cli(&[
        "client",
        "update",
        "--client-id",
        &public.id,
        "--allow-no-pkce",
        "true",
    ])
    .await
    .refused();
    assert_eq!(
        app.cli(&["client", "show", "--client-id", &client.id])
            .await
            .json(),
        before
    );
    assert_eq!(
        app.cli(&["client", "show", "--client-id", &public.id])
            .await
            .json(),
        before_public
    );
}
