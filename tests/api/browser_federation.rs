//! Enterprise SSO in a real browser, with a real upstream: a second `latchkey serve` process acts as
//! the company's identity provider. An organization here connects it, verifies its domain against a
//! DNS server on loopback, and a new person of that domain signs in in Chromium through home-realm
//! discovery (email first, then the upstream's own login page), is provisioned with the role its
//! upstream role maps to, and the relying party's tokens carry the organization and that role.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::browser::{backend_name, browser, closed_port};
use crate::helpers::{Backend, TestApp, run_cli};
use crate::mgmt_helpers::{self, post};
use crate::multi_process::spawn_serve;
use crate::rp::{PASSWORD, decode_jwt};
use crate::support::dns::DnsServer;

on_both_databases!(new_person_signs_in_through_the_company_provider);

async fn new_person_signs_in_through_the_company_provider(backend: Backend) {
    let Some(browser) = browser().await else {
        return;
    };
    let dns = DnsServer::start().await;

    // The company's identity provider: another Latchkey, as its own process, named `localhost` (a
    // host of its own for the browser's cookies). Ann is an owner of the company there.
    let upstream_dir = tempfile::tempdir().expect("temp dir");
    let port = closed_port();
    let upstream_issuer = format!("http://localhost:{port}");
    let upstream_env: HashMap<String, String> = [
        (
            "LATCHKEY_DATABASE_URL",
            format!(
                "sqlite://{}",
                upstream_dir.path().join("upstream.db").display()
            ),
        ),
        ("LATCHKEY_BIND", format!("127.0.0.1:{port}")),
        ("LATCHKEY_ISSUER", upstream_issuer.clone()),
        (
            "LATCHKEY_MAIL_DIR",
            upstream_dir.path().join("mail").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    run_cli(&upstream_env, &["migrate"], None).await;
    let _upstream = spawn_serve(&upstream_env).await;
    run_cli(
        &upstream_env,
        &[
            "user",
            "create",
            "--email",
            "ann@acme.test",
            "--password-stdin",
        ],
        Some(PASSWORD),
    )
    .await
    .json();
    run_cli(
        &upstream_env,
        &[
            "org",
            "create",
            "--name",
            "Acme Corp",
            "--owner",
            "ann@acme.test",
        ],
        None,
    )
    .await
    .json();

    // Latchkey, where Acme's administrator connects the provider and verifies acme.test.
    let dns_addr = dns.addr().to_string();
    let app = TestApp::spawn_with_own_issuer(
        backend,
        &[
            ("LATCHKEY_ALLOW_INSECURE_UPSTREAMS", "true"),
            ("LATCHKEY_DNS_SERVER", dns_addr.as_str()),
        ],
    )
    .await;
    let upstream_client = run_cli(
        &upstream_env,
        &[
            "client",
            "create",
            "--name",
            "Latchkey SSO",
            "--redirect-uri",
            &app.url("/federation/callback"),
            "--first-party",
        ],
        None,
    )
    .await
    .json();
    let org_client = mgmt_helpers::org_client(&app).await;
    let (_, admin) = mgmt_helpers::person(&app, &org_client, "it@acme-admin.test").await;
    let org = post(
        &app,
        "/api/v1/orgs",
        &admin,
        json!({"name": "Acme", "slug": "acme"}),
    )
    .await;
    assert_eq!(org.status, 201, "{}", org.body);
    let connection = post(
        &app,
        "/api/v1/orgs/acme/connections",
        &admin,
        json!({
            "name": "Acme SSO",
            "issuer": upstream_issuer,
            "client_id": upstream_client["client_id"],
            "client_secret": upstream_client["client_secret"],
            "role_mapping": {"claim": "roles", "map": {"owner": "admin"}, "default_role": "viewer"},
        }),
    )
    .await;
    assert_eq!(connection.status, 201, "{}", connection.body);
    let claim = post(
        &app,
        "/api/v1/orgs/acme/domains",
        &admin,
        json!({"domain": "acme.test"}),
    )
    .await;
    assert_eq!(claim.status, 201, "{}", claim.body);
    let record = &claim.body["txt_record"];
    dns.set_txt(
        record["name"].as_str().expect("record name"),
        &[record["value"].as_str().expect("record value")],
    );
    let verified = post(
        &app,
        "/api/v1/orgs/acme/domains/acme.test/verify",
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(verified.status, 200, "{}", verified.body);

    // A relying party here.
    let redirect_uri = format!("http://127.0.0.1:{}/callback", closed_port());
    let rp = app
        .cli(&[
            "client",
            "create",
            "--name",
            "Acme Dashboard",
            "--redirect-uri",
            &redirect_uri,
            "--first-party",
        ])
        .await
        .json();
    let rp_id = rp["client_id"].as_str().expect("client_id");
    let (verifier, challenge) = crate::rp::pkce();
    let mut authorize = url::Url::parse(&app.url("/authorize")).expect("authorize URL");
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", rp_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", "openid email")
        .append_pair("state", "st-sso")
        .append_pair("nonce", "n-sso")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let name = backend_name(backend);

    // Home-realm discovery: the login page asks for the address only.
    browser.goto(authorize.as_str()).await;
    browser.wait_for("form[action='/login/identify']").await;
    assert!(
        browser
            .client
            .find(fantoccini::Locator::Css("input[name=password]"))
            .await
            .is_err(),
        "the first step asks for the address only"
    );
    browser
        .screenshot(&format!("federation-{name}-email-first"))
        .await;
    browser.fill("email", "ann@acme.test").await;
    browser.submit().await;

    // Straight to the company's provider, whose login page has the address filled in.
    browser
        .wait_for_url(&format!("{upstream_issuer}/login"))
        .await;
    let email = browser
        .wait_for("input[name=email]")
        .await
        .prop("value")
        .await
        .expect("email value");
    assert_eq!(email.as_deref(), Some("ann@acme.test"));
    browser.fill("password", PASSWORD).await;
    browser.submit().await;

    // Back here, provisioned, and on to the relying party with a code.
    let landed = browser.wait_for_url(&redirect_uri).await;
    let query: HashMap<String, String> = landed.query_pairs().into_owned().collect();
    assert_eq!(query.get("state").map(String::as_str), Some("st-sso"));
    let code = query.get("code").expect("a code for the relying party");
    let tokens: Value = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(rp_id, rp["client_secret"].as_str())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", verifier.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token JSON");
    let (_, id_token) = decode_jwt(tokens["id_token"].as_str().expect("id_token"));
    let (_, access_token) = decode_jwt(tokens["access_token"].as_str().expect("access_token"));
    for claims in [&id_token, &access_token] {
        assert_eq!(claims["org_slug"], "acme", "{claims}");
        assert_eq!(claims["roles"], json!(["admin"]), "{claims}");
    }
    assert!(
        id_token["amr"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("fed"))),
        "amr carries fed: {id_token}"
    );
    assert_eq!(id_token["email"], "ann@acme.test");
    let members = mgmt_helpers::get(&app, "/api/v1/orgs/acme/members", &admin).await;
    assert!(
        members.body.to_string().contains("ann@acme.test"),
        "Ann is a member now: {}",
        members.body
    );
    browser.close().await;
}
