//! DPoP (RFC 9449): the nonce dance at the token endpoint, access tokens bound to the proof's key
//! (`cnf.jkt`, `token_type: DPoP`), a public client's refresh tokens bound to it, and the checks at
//! our resource servers (`/api/v1/…`, `/userinfo`): scheme, proof signature, `htm`, `htu`, `iat`,
//! `ath`, key, nonce, and single use, across two servers on one database; authorization codes bound
//! to a key by `dpop_jkt` at `/authorize` or by a proof at `/par` (§10, §10.1).

use serde_json::Value;

use crate::dpop_helpers::{self as d, DpopKey, Proof};
use crate::helpers::{Backend, TestApp};
use crate::rp::{self, Consent, REDIRECT_URI, RegisteredClient};

on_both_databases!(
    client_credentials_tokens_are_bound_and_proofs_checked_at_the_api,
    proofs_are_single_use_across_servers,
    token_endpoint_refuses_bad_proofs,
    public_code_flow_binds_access_and_refresh_tokens,
    dpop_jkt_at_authorize_binds_the_code,
    par_with_a_proof_binds_the_code,
    par_refuses_a_mismatching_dpop_jkt_and_bad_proofs,
    malformed_dpop_jkt_is_refused,
);

/// A confidential operator client (`client_credentials` with `admin`).
async fn operator_client(app: &TestApp) -> RegisteredClient {
    app.register_client(&["--grant-type", "client_credentials", "--scope", "admin"])
        .await
}

/// A DPoP-bound operator token for `key`.
async fn bound_operator_token(app: &TestApp, client: &RegisteredClient, key: &DpopKey) -> String {
    let body =
        d::token_with_nonce_dance(app, client, key, &[("grant_type", "client_credentials")]).await;
    assert_eq!(body["token_type"], "DPoP", "{body}");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// `method base+path` with `Authorization: scheme token` and an optional `DPoP` proof: status,
/// headers and JSON body.
async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    auth: (&str, &str),
    proof: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = rp::rp_http()
        .request(method, format!("{base}{path}"))
        .header("authorization", format!("{} {}", auth.0, auth.1));
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

fn text(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .unwrap_or_default()
}

/// Asserts a 401 problem of type `code` with a `DPoP` challenge naming `error`.
#[track_caller]
fn assert_refused(
    (status, headers, body): &(u16, reqwest::header::HeaderMap, Value),
    code: &str,
    error: &str,
) {
    assert_eq!(*status, 401, "{body}");
    assert_eq!(
        body["type"],
        format!("urn:latchkey:problem:{code}"),
        "{body}"
    );
    let challenge = text(headers, "www-authenticate");
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(
        challenge.contains(&format!("error=\"{error}\"")),
        "{challenge}"
    );
    assert!(challenge.contains("algs=\"ES256"), "{challenge}");
}

async fn client_credentials_tokens_are_bound_and_proofs_checked_at_the_api(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = operator_client(&app).await;
    let key = DpopKey::generate();
    let token = bound_operator_token(&app, &client, &key).await;
    let (_, claims) = rp::decode_jwt(&token);
    assert_eq!(claims["cnf"]["jkt"], key.thumbprint().as_str(), "{claims}");

    let issuer = app.issuer();
    let path = latchkey::routes::API_CLIENTS;
    let htu = format!("{issuer}{path}");
    let get = reqwest::Method::GET;
    let proof = |p: Proof<'_>| {
        key.proof(
            "GET",
            &htu,
            &Proof {
                access_token: Some(&token),
                ..p
            },
        )
    };
    let dpop = ("DPoP", token.as_str());

    // With a proof by the token's key: accepted, and the answer is the documented one.
    let ok = call(
        &app.address,
        get.clone(),
        path,
        dpop,
        Some(&proof(Proof::default())),
    )
    .await;
    assert_eq!(ok.0, 200, "{}", ok.2);
    let document = crate::openapi_validation::document(&app).await;
    crate::openapi_validation::assert_documented(
        &document,
        "GET",
        path,
        ok.0,
        &text(&ok.1, "content-type"),
        &ok.2,
    );
    // A nonce is optional at resource servers, but checked when sent.
    let nonce = d::fresh_nonce(&app, &client, &key).await;
    let with_nonce = proof(Proof {
        nonce: Some(&nonce),
        ..Proof::default()
    });
    assert_eq!(
        call(&app.address, get.clone(), path, dpop, Some(&with_nonce))
            .await
            .0,
        200
    );
    let stale = call(
        &app.address,
        get.clone(),
        path,
        dpop,
        Some(&proof(Proof {
            nonce: Some("not-a-nonce-of-ours"),
            ..Proof::default()
        })),
    )
    .await;
    assert_refused(&stale, "use-dpop-nonce", "use_dpop_nonce");
    assert!(!text(&stale.1, "dpop-nonce").is_empty());

    // No downgrade: the bound token as Bearer, with or without a proof.
    let bearer = call(&app.address, get.clone(), path, ("Bearer", &token), None).await;
    assert_refused(&bearer, "invalid-token", "invalid_token");
    let bearer_with_proof = call(
        &app.address,
        get.clone(),
        path,
        ("Bearer", &token),
        Some(&proof(Proof::default())),
    )
    .await;
    assert_eq!(bearer_with_proof.0, 401);
    // The DPoP scheme without a proof.
    let missing = call(&app.address, get.clone(), path, dpop, None).await;
    assert_refused(&missing, "invalid-dpop-proof", "invalid_dpop_proof");

    // Proofs that are not this request's, or not this key's, or not well made.
    let other = DpopKey::generate();
    let wrong_key = other.proof(
        "GET",
        &htu,
        &Proof {
            access_token: Some(&token),
            ..Proof::default()
        },
    );
    let wrong_htm = key.proof(
        "POST",
        &htu,
        &Proof {
            access_token: Some(&token),
            ..Proof::default()
        },
    );
    let wrong_htu = key.proof(
        "GET",
        &format!("{issuer}/api/v1/users"),
        &Proof {
            access_token: Some(&token),
            ..Proof::default()
        },
    );
    let expired = proof(Proof {
        iat: Some(d::now() - 600),
        ..Proof::default()
    });
    let future = proof(Proof {
        iat: Some(d::now() + 600),
        ..Proof::default()
    });
    let no_ath = key.proof("GET", &htu, &Proof::default());
    let wrong_ath = proof(Proof {
        ath: Some(&d::ath_of("another token")),
        ..Proof::default()
    });
    let wrong_typ = proof(Proof {
        typ: Some("JWT"),
        ..Proof::default()
    });
    // The header names another key than the one that signed: the signature does not verify.
    let bad_signature = proof(Proof {
        jwk: Some(other.public.clone()),
        ..Proof::default()
    });
    let private_jwk = proof(Proof {
        jwk: Some(key.private_jwk()),
        ..Proof::default()
    });
    let mut tampered: Vec<String> = proof(Proof::default())
        .split('.')
        .map(str::to_owned)
        .collect();
    tampered[2] = d::ath_of("not a signature");
    let tampered = tampered.join(".");
    for (why, bad) in [
        ("another key", wrong_key.as_str()),
        ("wrong htm", &wrong_htm),
        ("wrong htu", &wrong_htu),
        ("iat ten minutes ago", &expired),
        ("iat ten minutes ahead", &future),
        ("no ath", &no_ath),
        ("wrong ath", &wrong_ath),
        ("typ JWT", &wrong_typ),
        ("bad signature", &bad_signature),
        ("private jwk", &private_jwk),
        ("tampered signature", &tampered),
        ("not a JWT", "garbage"),
    ] {
        let answer = call(&app.address, get.clone(), path, dpop, Some(bad)).await;
        assert_eq!(answer.0, 401, "{why}: {}", answer.2);
        assert_refused(&answer, "invalid-dpop-proof", "invalid_dpop_proof");
    }
    // Two DPoP headers.
    let two = rp::rp_http()
        .get(app.url(path))
        .header("authorization", format!("DPoP {token}"))
        .header("DPoP", proof(Proof::default()))
        .header("DPoP", proof(Proof::default()))
        .send()
        .await
        .expect("sent");
    assert_eq!(two.status(), 401);

    // An unbound token keeps working as Bearer, and is refused under the DPoP scheme.
    let unbound = crate::mgmt_helpers::operator_token(&app).await;
    assert!(rp::decode_jwt(&unbound).1.get("cnf").is_none());
    assert_eq!(
        call(&app.address, get.clone(), path, ("Bearer", &unbound), None)
            .await
            .0,
        200
    );
    let unbound_proof = key.proof(
        "GET",
        &htu,
        &Proof {
            access_token: Some(&unbound),
            ..Proof::default()
        },
    );
    let as_dpop = call(
        &app.address,
        get,
        path,
        ("DPoP", &unbound),
        Some(&unbound_proof),
    )
    .await;
    assert_refused(&as_dpop, "invalid-token", "invalid_token");

    // Introspection tells the binding (RFC 9449 §6.2).
    let response = rp::rp_http()
        .post(app.url(latchkey::routes::INTROSPECTION))
        .basic_auth(&client.id, Some(client.secret()))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .expect("sent");
    let introspected = rp::json_with_status(response, 200).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["token_type"], "DPoP");
    assert_eq!(introspected["cnf"]["jkt"], key.thumbprint().as_str());
}

async fn proofs_are_single_use_across_servers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sibling = app.spawn_sibling(&[]).await.expect("a sibling server");
    let client = operator_client(&app).await;
    let key = DpopKey::generate();
    let token = bound_operator_token(&app, &client, &key).await;
    let path = latchkey::routes::API_CLIENTS;
    let htu = format!("{}{path}", app.issuer());
    let dpop = ("DPoP", token.as_str());
    let proof = || {
        key.proof(
            "GET",
            &htu,
            &Proof {
                access_token: Some(&token),
                ..Proof::default()
            },
        )
    };
    let get = reqwest::Method::GET;

    // The same proof twice at one server.
    let once = proof();
    assert_eq!(
        call(&app.address, get.clone(), path, dpop, Some(&once))
            .await
            .0,
        200
    );
    let again = call(&app.address, get.clone(), path, dpop, Some(&once)).await;
    assert_refused(&again, "invalid-dpop-proof", "invalid_dpop_proof");
    // ... and at the other server, in both directions.
    let replayed = call(&sibling.address, get.clone(), path, dpop, Some(&once)).await;
    assert_refused(&replayed, "invalid-dpop-proof", "invalid_dpop_proof");
    let first_at_sibling = proof();
    let accepted = call(
        &sibling.address,
        get.clone(),
        path,
        dpop,
        Some(&first_at_sibling),
    )
    .await;
    assert_eq!(accepted.0, 200, "{}", accepted.2);
    let back = call(
        &app.address,
        get.clone(),
        path,
        dpop,
        Some(&first_at_sibling),
    )
    .await;
    assert_refused(&back, "invalid-dpop-proof", "invalid_dpop_proof");

    // The sibling accepts this server's nonces at the token endpoint (same key, no shared state).
    let nonce = d::fresh_nonce(&app, &client, &key).await;
    let token_proof = key.proof(
        "POST",
        &format!("{}/token", app.issuer()),
        &Proof {
            nonce: Some(&nonce),
            ..Proof::default()
        },
    );
    let at_sibling = rp::rp_http()
        .post(format!("{}/token", sibling.address))
        .basic_auth(&client.id, Some(client.secret()))
        .header("DPoP", &token_proof)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("sent");
    let body = rp::json_with_status(at_sibling, 200).await;
    assert_eq!(body["token_type"], "DPoP");
    // That token-endpoint proof is spent too.
    let replay = d::post_token(
        &app,
        &client,
        &[("grant_type", "client_credentials")],
        Some(&token_proof),
    )
    .await;
    let body = rp::json_with_status(replay, 400).await;
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");

    // Spent proofs are purged once they are too old to be accepted anyway.
    assert!(app.count("dpop_proofs").await >= 4);
    latchkey::jobs::purge::run(&app.db, d::now() + 3600)
        .await
        .expect("purge");
    assert_eq!(app.count("dpop_proofs").await, 0);
}

async fn token_endpoint_refuses_bad_proofs(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = operator_client(&app).await;
    let key = DpopKey::generate();
    let form = [("grant_type", "client_credentials")];
    let htu = format!("{}/token", app.issuer());
    let nonce = d::fresh_nonce(&app, &client, &key).await;
    let with = |htm: &str, htu: &str, p: Proof<'_>| {
        key.proof(
            htm,
            htu,
            &Proof {
                nonce: Some(&nonce),
                ..p
            },
        )
    };
    let cases = [
        (
            "wrong htm",
            with("GET", &htu, Proof::default()),
            "invalid_dpop_proof",
        ),
        (
            "wrong htu",
            with(
                "POST",
                &format!("{}/userinfo", app.issuer()),
                Proof::default(),
            ),
            "invalid_dpop_proof",
        ),
        (
            "old iat",
            with(
                "POST",
                &htu,
                Proof {
                    iat: Some(d::now() - 600),
                    ..Proof::default()
                },
            ),
            "invalid_dpop_proof",
        ),
        (
            "private jwk",
            with(
                "POST",
                &htu,
                Proof {
                    jwk: Some(key.private_jwk()),
                    ..Proof::default()
                },
            ),
            "invalid_dpop_proof",
        ),
        (
            "a nonce not ours",
            key.proof(
                "POST",
                &htu,
                &Proof {
                    nonce: Some("made-up"),
                    ..Proof::default()
                },
            ),
            "use_dpop_nonce",
        ),
        ("not a JWT", "x.y.z".to_owned(), "invalid_dpop_proof"),
    ];
    for (why, proof, error) in cases {
        let response = d::post_token(&app, &client, &form, Some(&proof)).await;
        assert!(!rp::header(&response, "dpop-nonce").is_empty(), "{why}");
        assert_eq!(rp::header(&response, "cache-control"), "no-store", "{why}");
        let body = rp::json_with_status(response, 400).await;
        assert_eq!(body["error"], error, "{why}: {body}");
    }
    // Two DPoP headers.
    let two = rp::rp_http()
        .post(app.url("/token"))
        .basic_auth(&client.id, Some(client.secret()))
        .header("DPoP", with("POST", &htu, Proof::default()))
        .header("DPoP", with("POST", &htu, Proof::default()))
        .form(&form)
        .send()
        .await
        .expect("sent");
    let body = rp::json_with_status(two, 400).await;
    assert_eq!(body["error"], "invalid_dpop_proof");
    // A nonce lives 5 to 10 minutes: eleven minutes later it is stale, and the answer brings the
    // current one.
    app.clock.advance(660);
    let later = d::now() + 660;
    let stale = key.proof(
        "POST",
        &htu,
        &Proof {
            nonce: Some(&nonce),
            iat: Some(later),
            ..Proof::default()
        },
    );
    let response = d::post_token(&app, &client, &form, Some(&stale)).await;
    let current = rp::header(&response, "dpop-nonce");
    assert_ne!(current, nonce);
    let body = rp::json_with_status(response, 400).await;
    assert_eq!(body["error"], "use_dpop_nonce", "{body}");
    let fresh = key.proof(
        "POST",
        &htu,
        &Proof {
            nonce: Some(&current),
            iat: Some(later),
            ..Proof::default()
        },
    );
    let body =
        rp::json_with_status(d::post_token(&app, &client, &form, Some(&fresh)).await, 200).await;
    assert_eq!(body["token_type"], "DPoP");
    app.clock.advance(-660);
    // Without any proof: an unbound Bearer token, as before.
    let plain = rp::json_with_status(d::post_token(&app, &client, &form, None).await, 200).await;
    assert_eq!(plain["token_type"], "Bearer");
    assert!(
        rp::decode_jwt(plain["access_token"].as_str().expect("token"))
            .1
            .get("cnf")
            .is_none()
    );
}

async fn public_code_flow_binds_access_and_refresh_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person("ada@example.com", "Ada").await;
    let client = app
        .register_client(&[
            "--public",
            "--scope",
            "openid",
            "--scope",
            "email",
            "--scope",
            "offline_access",
            "--scope",
            "account:read",
        ])
        .await;
    let key = DpopKey::generate();
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&[
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid email offline_access account:read"),
        ("state", "st"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let code = rp::authorize(
        &app,
        &rp::browser(),
        &url,
        "ada@example.com",
        Consent::Allow,
    )
    .await
    .callback
    .code();
    // The nonce dance does not spend the code: the proof is refused before the grant runs.
    let tokens = d::token_with_nonce_dance(
        &app,
        &client,
        &key,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client.id),
            ("code", &code),
            ("code_verifier", &verifier),
            ("redirect_uri", REDIRECT_URI),
        ],
    )
    .await;
    assert_eq!(tokens["token_type"], "DPoP", "{tokens}");
    let access = tokens["access_token"].as_str().expect("access_token");
    let refresh = tokens["refresh_token"].as_str().expect("refresh_token");
    assert_eq!(
        rp::decode_jwt(access).1["cnf"]["jkt"],
        key.thumbprint().as_str()
    );

    // /userinfo (GET and POST) and /api/v1/me with proofs; Bearer refused.
    let issuer = app.issuer();
    for (method, path) in [
        (reqwest::Method::GET, "/userinfo"),
        (reqwest::Method::POST, "/userinfo"),
        (reqwest::Method::GET, latchkey::routes::API_ME),
    ] {
        let proof = key.proof(
            method.as_str(),
            &format!("{issuer}{path}"),
            &Proof {
                access_token: Some(access),
                ..Proof::default()
            },
        );
        let (status, _, body) = call(
            &app.address,
            method.clone(),
            path,
            ("DPoP", access),
            Some(&proof),
        )
        .await;
        assert_eq!(status, 200, "{method} {path}: {body}");
        let (status, headers, body) =
            call(&app.address, method.clone(), path, ("Bearer", access), None).await;
        assert_eq!(status, 401, "{method} {path} as Bearer: {body}");
        assert!(text(&headers, "www-authenticate").starts_with("DPoP "));
    }
    let userinfo_htu = format!("{issuer}/userinfo");
    let other = DpopKey::generate();
    let foreign = other.proof(
        "GET",
        &userinfo_htu,
        &Proof {
            access_token: Some(access),
            ..Proof::default()
        },
    );
    let (status, headers, body) = call(
        &app.address,
        reqwest::Method::GET,
        "/userinfo",
        ("DPoP", access),
        Some(&foreign),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_dpop_proof");
    assert!(text(&headers, "www-authenticate").contains("error=\"invalid_dpop_proof\""));

    // Refreshing the bound family: no proof, another key's proof: refused; the same key: new tokens
    // bound to it.
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", client.id.as_str()),
        ("refresh_token", refresh),
    ];
    let body = rp::json_with_status(d::post_token(&app, &client, &form, None).await, 400).await;
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    let other_tokens = d::post_token(
        &app,
        &client,
        &form,
        Some(&other.proof(
            "POST",
            &format!("{issuer}/token"),
            &Proof {
                nonce: Some(&d::fresh_nonce(&app, &client, &other).await),
                ..Proof::default()
            },
        )),
    )
    .await;
    let body = rp::json_with_status(other_tokens, 400).await;
    assert_eq!(body["error"], "invalid_grant", "{body}");
    let refreshed = d::token_with_nonce_dance(&app, &client, &key, &form).await;
    assert_eq!(refreshed["token_type"], "DPoP");
    let new_access = refreshed["access_token"].as_str().expect("access_token");
    assert_eq!(
        rp::decode_jwt(new_access).1["cnf"]["jkt"],
        key.thumbprint().as_str()
    );
    let new_refresh = refreshed["refresh_token"].as_str().expect("refresh_token");
    assert_ne!(new_refresh, refresh);
    // The successor stays bound.
    let next = [
        ("grant_type", "refresh_token"),
        ("client_id", client.id.as_str()),
        ("refresh_token", new_refresh),
    ];
    let body = rp::json_with_status(d::post_token(&app, &client, &next, None).await, 400).await;
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
}

// Binding the authorization code (RFC 9449 §10, §10.1).

/// A person to sign in and a confidential client for the code flow.
async fn code_flow_setup(backend: Backend) -> (TestApp, RegisteredClient) {
    let app = TestApp::spawn(backend).await;
    app.create_person("ada@example.com", "Ada").await;
    let client = app.register_client(&[]).await;
    (app, client)
}

/// The authorization request parameters of `client` with a PKCE `challenge`, and `extra`.
fn code_request<'a>(
    client: &'a RegisteredClient,
    challenge: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid email"),
        ("state", "st"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    params
}

/// Signs in through `url` and returns the code.
async fn code_from(app: &TestApp, url: &str) -> String {
    rp::authorize(app, &rp::browser(), url, "ada@example.com", Consent::Allow)
        .await
        .callback
        .code()
}

/// The token request redeeming `code`.
fn redemption<'a>(code: &'a str, verifier: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", verifier),
        ("redirect_uri", REDIRECT_URI),
    ]
}

/// A proof for the token endpoint by `key`, with a current nonce.
async fn token_proof(app: &TestApp, client: &RegisteredClient, key: &DpopKey) -> String {
    let nonce = d::fresh_nonce(app, client, key).await;
    key.proof(
        "POST",
        &format!("{}/token", app.issuer()),
        &Proof {
            nonce: Some(&nonce),
            ..Proof::default()
        },
    )
}

/// A code bound to `key`: refused without a proof (`invalid_dpop_proof`) and with another key's
/// (`invalid_grant`), neither spending it; then redeemed with `key`'s proof into a token bound to it.
async fn assert_code_bound_to(
    app: &TestApp,
    client: &RegisteredClient,
    key: &DpopKey,
    code: &str,
    verifier: &str,
) {
    let form = redemption(code, verifier);
    let none = d::post_token(app, client, &form, None).await;
    let body = rp::json_with_status(none, 400).await;
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("authorization code")),
        "{body}"
    );
    let other = DpopKey::generate();
    let foreign = token_proof(app, client, &other).await;
    let body =
        rp::json_with_status(d::post_token(app, client, &form, Some(&foreign)).await, 400).await;
    assert_eq!(body["error"], "invalid_grant", "{body}");
    let tokens = d::token_with_nonce_dance(app, client, key, &form).await;
    assert_eq!(tokens["token_type"], "DPoP", "{tokens}");
    let access = tokens["access_token"].as_str().expect("access_token");
    assert_eq!(
        rp::decode_jwt(access).1["cnf"]["jkt"],
        key.thumbprint().as_str()
    );
}

async fn dpop_jkt_at_authorize_binds_the_code(backend: Backend) {
    let (app, client) = code_flow_setup(backend).await;
    let key = DpopKey::generate();
    let jkt = key.thumbprint();
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&code_request(&client, &challenge, &[("dpop_jkt", &jkt)]));
    let code = code_from(&app, &url).await;
    assert_code_bound_to(&app, &client, &key, &code, &verifier).await;

    // Without dpop_jkt the code is not bound: a bearer redemption works as before.
    let (verifier, challenge) = rp::pkce();
    let url = app.authorize_url(&code_request(&client, &challenge, &[]));
    let code = code_from(&app, &url).await;
    let tokens = rp::json_with_status(
        d::post_token(&app, &client, &redemption(&code, &verifier), None).await,
        200,
    )
    .await;
    assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
}

async fn par_with_a_proof_binds_the_code(backend: Backend) {
    let (app, client) = code_flow_setup(backend).await;
    let key = DpopKey::generate();
    let (verifier, challenge) = rp::pkce();
    let mut form = code_request(&client, &challenge, &[]);
    form.retain(|(name, _)| *name != "client_id");
    // The nonce dance at /par, then 201 with a fresh nonce; no dpop_jkt was sent.
    let pushed = d::with_nonce_dance(&app, &client, &key, "/par", &form).await;
    let pushed = rp::json_with_status(pushed, 201).await;
    let request_uri = pushed["request_uri"].as_str().expect("request_uri");
    let url = app.authorize_url(&[("client_id", &client.id), ("request_uri", request_uri)]);
    let code = code_from(&app, &url).await;
    assert_code_bound_to(&app, &client, &key, &code, &verifier).await;

    // dpop_jkt naming the proof's own key is accepted.
    let (_, challenge) = rp::pkce();
    let jkt = key.thumbprint();
    let mut form = code_request(&client, &challenge, &[("dpop_jkt", &jkt)]);
    form.retain(|(name, _)| *name != "client_id");
    let proof = key.proof(
        "POST",
        &format!("{}/par", app.issuer()),
        &Proof {
            nonce: Some(&d::fresh_nonce(&app, &client, &key).await),
            ..Proof::default()
        },
    );
    rp::json_with_status(d::post_par(&app, &client, &form, Some(&proof)).await, 201).await;
}

async fn par_refuses_a_mismatching_dpop_jkt_and_bad_proofs(backend: Backend) {
    let (app, client) = code_flow_setup(backend).await;
    let key = DpopKey::generate();
    let other = DpopKey::generate();
    let (_, challenge) = rp::pkce();
    let par_htu = format!("{}/par", app.issuer());
    let nonce = d::fresh_nonce(&app, &client, &key).await;
    let with_nonce = Proof {
        nonce: Some(&nonce),
        ..Proof::default()
    };
    // RFC 9449 §10.1: dpop_jkt and a proof by another key "MUST" be rejected.
    let other_jkt = other.thumbprint();
    let mut form = code_request(&client, &challenge, &[("dpop_jkt", &other_jkt)]);
    form.retain(|(name, _)| *name != "client_id");
    let proof = key.proof("POST", &par_htu, &with_nonce);
    let response = d::post_par(&app, &client, &form, Some(&proof)).await;
    assert!(!rp::header(&response, "dpop-nonce").is_empty());
    let body = rp::json_with_status(response, 400).await;
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");

    // Proofs that are not for this request: the token endpoint's, a GET, a replayed one.
    form.retain(|(name, _)| *name != "dpop_jkt");
    let for_token = key.proof("POST", &format!("{}/token", app.issuer()), &with_nonce);
    let for_get = key.proof("GET", &par_htu, &with_nonce);
    for bad in [
        for_token.as_str(),
        for_get.as_str(),
        proof.as_str(),
        "not.a.jwt",
    ] {
        let response = d::post_par(&app, &client, &form, Some(bad)).await;
        assert!(!rp::header(&response, "dpop-nonce").is_empty());
        let body = rp::json_with_status(response, 400).await;
        assert_eq!(body["error"], "invalid_dpop_proof", "{bad}: {body}");
    }
    // Nothing was stored.
    let stored: i64 = sqlx::query_scalar("select count(*) from pushed_authorization_requests")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(stored, 0);
}

async fn malformed_dpop_jkt_is_refused(backend: Backend) {
    let (app, client) = code_flow_setup(backend).await;
    let (_, challenge) = rp::pkce();
    let thumbprint = DpopKey::generate().thumbprint();
    // Padded, too short, outside the base64url alphabet (standard base64's `+`, PKCE's `~`).
    let padded = format!("{thumbprint}=");
    let plus = format!("+{}", &thumbprint[1..]);
    let tilde = "~".repeat(43);
    for value in [&padded, &thumbprint[1..], &plus, &tilde] {
        // At /authorize: the redirect URI is trusted, so the error goes back to it.
        let url = app.authorize_url(&code_request(&client, &challenge, &[("dpop_jkt", value)]));
        let response = rp::browser().get(&url).send().await.expect("authorize");
        assert_eq!(response.status(), 303, "{value}");
        let callback = rp::Callback {
            url: rp::location(&app, &response),
        };
        callback.assert_at(REDIRECT_URI);
        assert_eq!(callback.error(), "invalid_request", "{value}");
        assert_eq!(callback.get("state").as_deref(), Some("st"));
        assert!(callback.get("code").is_none());
        // At /par: the same validation, as a JSON error.
        let mut form = code_request(&client, &challenge, &[("dpop_jkt", value)]);
        form.retain(|(name, _)| *name != "client_id");
        let body = rp::json_with_status(d::post_par(&app, &client, &form, None).await, 400).await;
        assert_eq!(body["error"], "invalid_request", "{value}: {body}");
    }
}
