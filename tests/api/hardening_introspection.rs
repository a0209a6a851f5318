//! Protocol hardening: introspecting another client's token needs the per-client permission
//! `client create --introspect` (RFC 7662 §4); the operator scope `admin` is not that permission.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::rp::{self, REDIRECT_URI, RegisteredClient};

on_both_databases!(introspecting_other_clients_tokens_needs_the_introspect_permission);

/// A `client_credentials` client with `scope` and `extra` flags.
async fn service(app: &TestApp, scope: &str, extra: &[&str]) -> RegisteredClient {
    let mut args = vec!["--grant-type", "client_credentials", "--scope", scope];
    args.extend_from_slice(extra);
    app.register_client(&args).await
}

/// `POST /introspect` by `caller` about `token`.
async fn introspect(app: &TestApp, caller: &RegisteredClient, token: &str) -> Value {
    let response = rp::rp_http()
        .post(app.url("/introspect"))
        .basic_auth(&caller.id, Some(caller.secret()))
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspection sent");
    rp::json_with_status(response, 200).await
}

async fn introspecting_other_clients_tokens_needs_the_introspect_permission(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = service(&app, "org:read", &[]).await;
    let operator = service(&app, "admin", &[]).await;
    let resource_server = service(&app, "org:read", &["--introspect"]).await;
    let response = app
        .post_token(
            Some((&owner.id, owner.secret())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let body = rp::json_with_status(response, 200).await;
    let token = body["access_token"].as_str().expect("access token");

    // Its own token, and anyone's for the client registered with --introspect.
    assert_eq!(introspect(&app, &owner, token).await["active"], true);
    let seen = introspect(&app, &resource_server, token).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["client_id"], owner.id.as_str());
    // A client whose tokens carry `admin` learns nothing (RFC 7662 §2.2).
    assert_eq!(
        introspect(&app, &operator, token).await,
        json!({"active": false})
    );
    // A public client cannot introspect at all, so it cannot be given the permission.
    let line = app
        .cli(&[
            "client",
            "create",
            "--name",
            "SPA",
            "--redirect-uri",
            REDIRECT_URI,
            "--public",
            "--introspect",
        ])
        .await
        .refused();
    assert!(line.contains("--introspect"), "{line}");
}
