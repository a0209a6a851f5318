//! Verified domains: claiming a domain answers the TXT record to publish, the check reads it from a
//! loopback DNS server (`LATCHKEY_DNS_SERVER`), one organization at most verifies a domain, the
//! operator's `latchkey org verify-domain`, access rules and the audit trail.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::mgmt_helpers::{self as m, delete, get, post};
use crate::support::dns::DnsServer;

on_both_databases!(
    a_domain_is_claimed_then_verified_by_its_txt_record,
    a_domain_verified_by_one_organization_is_taken_for_others,
    domains_are_for_admins_of_their_organization_only,
    malformed_domains_are_refused,
    operators_verify_domains_with_the_cli,
    an_unreachable_dns_server_is_a_failed_check,
);

/// A server using `dns` as its only name server.
async fn app_with(backend: Backend, dns: &DnsServer) -> TestApp {
    let addr = dns.addr().to_string();
    TestApp::spawn_with(backend, &[("LATCHKEY_DNS_SERVER", addr.as_str())]).await
}

fn actions(log: &Value) -> Vec<String> {
    log.as_array()
        .expect("a JSON array")
        .iter()
        .map(|e| e["action"].as_str().expect("action").to_owned())
        .collect()
}

async fn a_domain_is_claimed_then_verified_by_its_txt_record(backend: Backend) {
    let dns = DnsServer::start().await;
    let app = app_with(backend, &dns).await;
    let client = m::org_client(&app).await;
    let (_, token) = m::person(&app, &client, "ada@acme.example").await;
    let org = post(&app, "/api/v1/orgs", &token, json!({"name": "Acme"})).await;
    let org_id = org.ok(201)["id"].as_str().expect("id").to_owned();
    assert_eq!(org.body["sso_required"], false);

    let claimed = post(
        &app,
        "/api/v1/orgs/acme/domains",
        &token,
        json!({"domain": "Acme.Example"}),
    )
    .await;
    let record = claimed.ok(201).clone();
    assert_eq!(
        claimed.location,
        format!("/api/v1/orgs/{org_id}/domains/acme.example")
    );
    assert_eq!(record["domain"], "acme.example", "lower-cased");
    assert_eq!(record["verified"], false);
    assert_eq!(record["verified_at"], Value::Null);
    assert!(record["created_at"].is_i64());
    assert_eq!(
        record["txt_record"]["name"],
        "_latchkey-challenge.acme.example"
    );
    assert_eq!(record["txt_record"]["type"], "TXT");
    let value = record["txt_record"]["value"]
        .as_str()
        .expect("value")
        .to_owned();
    let challenge = value
        .strip_prefix("latchkey-domain-verification=")
        .expect("the value's prefix");
    assert!(challenge.len() >= 32, "{challenge}");

    // Claiming again is idempotent: the same record, 200.
    let again = post(
        &app,
        "/api/v1/orgs/acme/domains",
        &token,
        json!({"domain": "acme.example"}),
    )
    .await;
    assert_eq!(again.ok(200), &record);

    // Nothing published yet.
    let verify = "/api/v1/orgs/acme/domains/acme.example/verify";
    let early = post(&app, verify, &token, json!({})).await;
    early.problem(422, "domain-not-verified");
    let detail = early.body["detail"].as_str().expect("detail");
    assert!(
        detail.contains("_latchkey-challenge.acme.example") && detail.contains(&value),
        "the detail names the record to publish: {detail}"
    );

    // A wrong value (say, another organization's) does not verify.
    dns.set_txt(
        "_latchkey-challenge.acme.example",
        &["latchkey-domain-verification=not-it", "v=spf1 -all"],
    );
    post(&app, verify, &token, json!({}))
        .await
        .problem(422, "domain-not-verified");

    // Published (next to other TXT strings): verified at the next check, no cache in the way.
    dns.set_txt(
        "_latchkey-challenge.acme.example",
        &["v=spf1 -all", value.as_str()],
    );
    let verified = post(&app, verify, &token, json!({})).await;
    let body = verified.ok(200).clone();
    assert_eq!(body["verified"], true);
    assert!(body["verified_at"].is_i64());
    assert_eq!(body["domain"], "acme.example");
    // Verifying again is a no-op, even once the record is gone.
    dns.clear("_latchkey-challenge.acme.example");
    assert_eq!(post(&app, verify, &token, json!({})).await.ok(200), &body);

    let one = get(&app, "/api/v1/orgs/acme/domains/ACME.example", &token).await;
    assert_eq!(one.ok(200), &body);
    let listed = get(&app, "/api/v1/orgs/acme/domains", &token).await;
    assert_eq!(listed.ok(200), &json!([body]));

    // Removed: gone, and audited.
    let path = "/api/v1/orgs/acme/domains/acme.example";
    assert_eq!(delete(&app, path, &token).await.status, 204);
    get(&app, path, &token)
        .await
        .problem(404, "domain-not-found");
    delete(&app, path, &token)
        .await
        .problem(404, "domain-not-found");
    post(&app, verify, &token, json!({}))
        .await
        .problem(404, "domain-not-found");
    let listed = get(&app, "/api/v1/orgs/acme/domains", &token).await;
    assert_eq!(listed.ok(200), &json!([]));

    let log = get(&app, "/api/v1/orgs/acme/audit-log", &token).await;
    let log = log.ok(200).clone();
    let domain_actions: Vec<String> = actions(&log)
        .into_iter()
        .filter(|a| a.starts_with("domain."))
        .collect();
    assert_eq!(
        domain_actions,
        vec![
            "domain.removed",
            "domain.verified",
            "domain.verification_failed",
            "domain.verification_failed",
            "domain.added",
        ]
    );
    let items = log.as_array().expect("array");
    let verified_event = items
        .iter()
        .find(|e| e["action"] == "domain.verified")
        .expect("domain.verified");
    assert_eq!(
        verified_event["details"],
        json!({"domain": "acme.example", "method": "dns"})
    );
    assert_eq!(verified_event["target_type"], "domain");
    assert_eq!(verified_event["target_id"], "acme.example");
    let failed = items
        .iter()
        .find(|e| e["action"] == "domain.verification_failed")
        .expect("domain.verification_failed");
    assert_eq!(failed["details"]["domain"], "acme.example");
    assert!(failed["details"]["reason"].is_string());
    let removed = items
        .iter()
        .find(|e| e["action"] == "domain.removed")
        .expect("domain.removed");
    assert_eq!(
        removed["details"],
        json!({"domain": "acme.example", "was_verified": true})
    );
}

async fn a_domain_verified_by_one_organization_is_taken_for_others(backend: Backend) {
    let dns = DnsServer::start().await;
    let app = app_with(backend, &dns).await;
    let client = m::org_client(&app).await;
    let (_, ada) = m::person(&app, &client, "ada@acme.example").await;
    let (_, eve) = m::person(&app, &client, "eve@evil.example").await;
    post(&app, "/api/v1/orgs", &ada, json!({"name": "Acme"}))
        .await
        .ok(201);
    post(&app, "/api/v1/orgs", &eve, json!({"name": "Evil"}))
        .await
        .ok(201);
    let body = json!({"domain": "acme.example"});
    let acme = post(&app, "/api/v1/orgs/acme/domains", &ada, body.clone()).await;
    let acme_value = acme.ok(201)["txt_record"]["value"]
        .as_str()
        .expect("value")
        .to_owned();
    // Before verification, several organizations may claim the domain, with their own challenges.
    let evil = post(&app, "/api/v1/orgs/evil/domains", &eve, body.clone()).await;
    let evil_value = evil.ok(201)["txt_record"]["value"]
        .as_str()
        .expect("value")
        .to_owned();
    assert_ne!(acme_value, evil_value);

    dns.set_txt("_latchkey-challenge.acme.example", &[acme_value.as_str()]);
    // The other organization's challenge is not published: it cannot verify.
    post(
        &app,
        "/api/v1/orgs/evil/domains/acme.example/verify",
        &eve,
        json!({}),
    )
    .await
    .problem(422, "domain-not-verified");
    post(
        &app,
        "/api/v1/orgs/acme/domains/acme.example/verify",
        &ada,
        json!({}),
    )
    .await
    .ok(200);

    // Now taken: the other claim cannot verify even with its own value published, and a new
    // claim is refused.
    dns.set_txt(
        "_latchkey-challenge.acme.example",
        &[acme_value.as_str(), evil_value.as_str()],
    );
    post(
        &app,
        "/api/v1/orgs/evil/domains/acme.example/verify",
        &eve,
        json!({}),
    )
    .await
    .problem(409, "domain-taken");
    post(&app, "/api/v1/orgs/evil/domains", &eve, body.clone())
        .await
        .problem(409, "domain-taken");
    post(
        &app,
        "/api/v1/orgs/evil/domains",
        &eve,
        json!({"domain": "ACME.EXAMPLE"}),
    )
    .await
    .problem(409, "domain-taken");
    // The operator cannot hand it over either.
    let out = app
        .cli(&[
            "org",
            "verify-domain",
            "--org",
            "evil",
            "--domain",
            "acme.example",
        ])
        .await;
    let line = out.refused();
    assert!(line.contains("acme.example"), "{line}");

    // Released by its owner, it may be verified by the other organization.
    assert_eq!(
        delete(&app, "/api/v1/orgs/acme/domains/acme.example", &ada)
            .await
            .status,
        204
    );
    let taken = post(
        &app,
        "/api/v1/orgs/evil/domains/acme.example/verify",
        &eve,
        json!({}),
    )
    .await;
    assert_eq!(taken.ok(200)["verified"], true);
}

async fn domains_are_for_admins_of_their_organization_only(backend: Backend) {
    let dns = DnsServer::start().await;
    let app = app_with(backend, &dns).await;
    let client = m::org_client(&app).await;
    let (_, ada) = m::person(&app, &client, "ada@acme.example").await;
    post(&app, "/api/v1/orgs", &ada, json!({"name": "Acme"}))
        .await
        .ok(201);
    let (_, eve) = m::person(&app, &client, "eve@evil.example").await;
    post(&app, "/api/v1/orgs", &eve, json!({"name": "Evil"}))
        .await
        .ok(201);
    let (_, bob) = m::person(&app, &client, "bob@acme.example").await;
    let (_, vic) = m::person(&app, &client, "vic@acme.example").await;
    let (_, adm) = m::person(&app, &client, "adm@acme.example").await;
    m::cli_member(&app, "acme", "bob@acme.example", "member").await;
    m::cli_member(&app, "acme", "vic@acme.example", "viewer").await;
    m::cli_member(&app, "acme", "adm@acme.example", "admin").await;

    post(
        &app,
        "/api/v1/orgs/acme/domains",
        &ada,
        json!({"domain": "acme.example"}),
    )
    .await
    .ok(201);
    let one = "/api/v1/orgs/acme/domains/acme.example";
    // Members and viewers neither read nor change the domains.
    for token in [&bob, &vic] {
        get(&app, "/api/v1/orgs/acme/domains", token)
            .await
            .problem(403, "role-insufficient");
        get(&app, one, token)
            .await
            .problem(403, "role-insufficient");
        post(
            &app,
            "/api/v1/orgs/acme/domains",
            token,
            json!({"domain": "other.example"}),
        )
        .await
        .problem(403, "role-insufficient");
        post(&app, &format!("{one}/verify"), token, json!({}))
            .await
            .problem(403, "role-insufficient");
        delete(&app, one, token)
            .await
            .problem(403, "role-insufficient");
    }
    // Another organization's admin sees nothing: 404 as for an organization that does not exist.
    get(&app, "/api/v1/orgs/acme/domains", &eve)
        .await
        .problem(404, "organization-not-found");
    delete(&app, one, &eve)
        .await
        .problem(404, "organization-not-found");
    // Nor through their own organization's path.
    get(&app, "/api/v1/orgs/evil/domains/acme.example", &eve)
        .await
        .problem(404, "domain-not-found");
    delete(&app, "/api/v1/orgs/evil/domains/acme.example", &eve)
        .await
        .problem(404, "domain-not-found");
    post(
        &app,
        "/api/v1/orgs/evil/domains/acme.example/verify",
        &eve,
        json!({}),
    )
    .await
    .problem(404, "domain-not-found");
    // Admins manage them; operators too.
    let listed = get(&app, "/api/v1/orgs/acme/domains", &adm).await;
    assert_eq!(listed.ok(200)[0]["domain"], "acme.example");
    post(
        &app,
        "/api/v1/orgs/acme/domains",
        &adm,
        json!({"domain": "acme-mail.example"}),
    )
    .await
    .ok(201);
    let operator = m::operator_token(&app).await;
    let listed = get(&app, "/api/v1/orgs/acme/domains", &operator).await;
    assert_eq!(
        listed
            .ok(200)
            .as_array()
            .expect("array")
            .iter()
            .map(|d| d["domain"].as_str().expect("domain"))
            .collect::<Vec<_>>(),
        vec!["acme-mail.example", "acme.example"]
    );
    // Without a token: 401.
    let anonymous = m::call(
        &app,
        reqwest::Method::GET,
        "/api/v1/orgs/acme/domains",
        None,
        None,
    )
    .await;
    assert_eq!(anonymous.status, 401);
    // A read-only token cannot write.
    let read_only = m::user_token(&app, &client, "adm@acme.example", "openid org:read").await;
    get(&app, "/api/v1/orgs/acme/domains", &read_only)
        .await
        .ok(200);
    let refused = post(
        &app,
        "/api/v1/orgs/acme/domains",
        &read_only,
        json!({"domain": "x.example"}),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
}

async fn malformed_domains_are_refused(backend: Backend) {
    let dns = DnsServer::start().await;
    let app = app_with(backend, &dns).await;
    let client = m::org_client(&app).await;
    let (_, ada) = m::person(&app, &client, "ada@acme.example").await;
    post(&app, "/api/v1/orgs", &ada, json!({"name": "Acme"}))
        .await
        .ok(201);
    let long = format!("{}example", "abcdefghi.".repeat(25));
    let long_label = format!("{}.example", "a".repeat(64));
    for bad in [
        "",
        "localhost",
        "acme.example.",
        ".acme.example",
        "acme..example",
        "-acme.example",
        "acme_x.example",
        "acme example",
        "ada@acme.example",
        "bücher.example",
        "192.168.1.1",
        "::1",
        "acme.123",
        long.as_str(),
        long_label.as_str(),
    ] {
        post(
            &app,
            "/api/v1/orgs/acme/domains",
            &ada,
            json!({"domain": bad}),
        )
        .await
        .problem(400, "invalid-domain");
    }
    for body in [
        json!({}),
        json!({"domain": 7}),
        json!({"domain": "a.example", "x": 1}),
    ] {
        post(&app, "/api/v1/orgs/acme/domains", &ada, body)
            .await
            .problem(400, "invalid-body");
    }
    assert_eq!(app.count("org_domains").await, 0);
}

async fn operators_verify_domains_with_the_cli(backend: Backend) {
    let dns = DnsServer::start().await;
    let app = app_with(backend, &dns).await;
    let client = m::org_client(&app).await;
    let (_, ada) = m::person(&app, &client, "ada@acme.example").await;
    let org = post(&app, "/api/v1/orgs", &ada, json!({"name": "Acme"})).await;
    let org_id = org.ok(201)["id"].as_str().expect("id").to_owned();

    // Unclaimed: claimed and verified at once, without DNS.
    let out = app
        .cli(&[
            "org",
            "verify-domain",
            "--org",
            "acme",
            "--domain",
            "Acme.Example",
        ])
        .await
        .json();
    assert_eq!(out["org_id"], org_id.as_str());
    assert_eq!(out["domain"], "acme.example");
    assert_eq!(out["verified"], true);
    assert!(out["verified_at"].is_i64());
    let read = get(&app, "/api/v1/orgs/acme/domains/acme.example", &ada).await;
    assert_eq!(read.ok(200)["verified"], true);
    assert_eq!(read.body["verified_at"], out["verified_at"]);
    // Again: the same answer.
    let again = app
        .cli(&[
            "org",
            "verify-domain",
            "--org",
            &org_id,
            "--domain",
            "acme.example",
        ])
        .await
        .json();
    assert_eq!(again, out);
    // A claim made through the API is verified in place.
    post(
        &app,
        "/api/v1/orgs/acme/domains",
        &ada,
        json!({"domain": "mail.acme.example"}),
    )
    .await
    .ok(201);
    app.cli(&[
        "org",
        "verify-domain",
        "--org",
        "acme",
        "--domain",
        "mail.acme.example",
    ])
    .await
    .json();
    let listed = get(&app, "/api/v1/orgs/acme/domains", &ada).await;
    assert!(
        listed
            .ok(200)
            .as_array()
            .expect("array")
            .iter()
            .all(|d| d["verified"] == true)
    );

    // Refusals: one line, nothing written.
    let before = app.count("org_domains").await;
    for (org, domain, says) in [
        ("nope", "other.example", "nope"),
        ("acme", "not a domain", "domain"),
        ("acme", "10.0.0.1", "IP"),
    ] {
        let line = app
            .cli(&["org", "verify-domain", "--org", org, "--domain", domain])
            .await
            .refused();
        assert!(line.contains(says), "{line}");
    }
    assert_eq!(app.count("org_domains").await, before);

    let operator = m::operator_token(&app).await;
    let log = get(
        &app,
        &format!("/api/v1/audit-log?org_id={org_id}&action=domain.verified"),
        &operator,
    )
    .await;
    let log = log.ok(200).clone();
    let items = log.as_array().expect("array");
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(item["details"]["method"], "operator");
        assert_eq!(item["actor_user_id"], Value::Null);
        assert_eq!(item["actor_client_id"], Value::Null);
    }
}

async fn an_unreachable_dns_server_is_a_failed_check(backend: Backend) {
    // A port nothing listens on (bound, then released).
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("addr").to_string();
    drop(socket);
    let app = TestApp::spawn_with(backend, &[("LATCHKEY_DNS_SERVER", addr.as_str())]).await;
    let client = m::org_client(&app).await;
    let (_, ada) = m::person(&app, &client, "ada@acme.example").await;
    post(&app, "/api/v1/orgs", &ada, json!({"name": "Acme"}))
        .await
        .ok(201);
    post(
        &app,
        "/api/v1/orgs/acme/domains",
        &ada,
        json!({"domain": "acme.example"}),
    )
    .await
    .ok(201);
    let started = std::time::Instant::now();
    let failed = post(
        &app,
        "/api/v1/orgs/acme/domains/acme.example/verify",
        &ada,
        json!({}),
    )
    .await;
    failed.problem(422, "domain-not-verified");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "bounded by the timeout"
    );
    let log = get(
        &app,
        "/api/v1/orgs/acme/audit-log?action=domain.verification_failed",
        &ada,
    )
    .await;
    assert_eq!(log.ok(200).as_array().expect("array").len(), 1);
}
