//! The operator commands of the documented interface (README): their JSON, the rows they write, and their refusals (non-zero
//! exit, one line on stderr, nothing written).

use latchkey::crypto::tokens::TokenHash;
use sqlx::Row;

use crate::helpers::{Backend, TestApp};
use crate::rp::PASSWORD;

on_both_databases!(
    user_create_prints_json_and_stores_an_argon2id_hash,
    user_create_refuses_bad_input_and_writes_nothing,
    org_create_makes_the_caller_owner,
    org_create_refuses_bad_input_and_writes_nothing,
    org_add_member_adds_and_refuses,
    client_create_stores_only_the_secret_hash,
    client_create_refuses_bad_input,
    keys_start_with_active_rs256_and_es256_and_rotate,
    migrate_twice_is_a_no_op,
);

async fn user_create_prints_json_and_stores_an_argon2id_hash(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let out = app
        .cli_stdin(
            &[
                "user",
                "create",
                "--email",
                "Ada@Example.com",
                "--name",
                "Ada",
                "--password-stdin",
            ],
            "correct horse\n",
        )
        .await;

    let json = out.json();
    assert_eq!(json["email"], "Ada@Example.com");
    let id = json["id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID, not a sequential integer");
    let row =
        sqlx::query("select email, name, password_hash, email_verified from users where id = $1")
            .bind(id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(row.get::<String, _>("name"), "Ada");
    let hash: String = row.get("password_hash");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("correct horse"));
    assert_eq!(row.get::<i64, _>("email_verified"), 0);
}

async fn user_create_refuses_bad_input_and_writes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("a@example.com", PASSWORD).await;

    let duplicate = app
        .cli_stdin(
            &[
                "user",
                "create",
                "--email",
                "A@EXAMPLE.COM",
                "--password-stdin",
            ],
            PASSWORD,
        )
        .await;
    assert!(duplicate.refused().contains("already exists"));

    let short = app
        .cli_stdin(
            &[
                "user",
                "create",
                "--email",
                "b@example.com",
                "--password-stdin",
            ],
            "short",
        )
        .await;
    assert!(short.refused().contains("at least 8"));

    let empty = app
        .cli_stdin(
            &[
                "user",
                "create",
                "--email",
                "b@example.com",
                "--password-stdin",
            ],
            "",
        )
        .await;
    empty.refused();

    let bad_email = app
        .cli_stdin(
            &[
                "user",
                "create",
                "--email",
                "not-an-email",
                "--password-stdin",
            ],
            PASSWORD,
        )
        .await;
    assert!(bad_email.refused().contains("email"));

    let no_stdin_flag = app
        .cli(&["user", "create", "--email", "c@example.com"])
        .await;
    no_stdin_flag.refused();

    assert_eq!(app.count("users").await, 1);
}

async fn org_create_makes_the_caller_owner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.create_user("a@example.com", PASSWORD).await;

    let org = app
        .cli(&[
            "org",
            "create",
            "--name",
            "Acme Corp",
            "--owner",
            "A@example.com",
        ])
        .await
        .json();

    assert_eq!(org["name"], "Acme Corp");
    assert_eq!(org["slug"], "acme-corp");
    let role: String =
        sqlx::query_scalar("select role from memberships where org_id = $1 and user_id = $2")
            .bind(org["id"].as_str().unwrap())
            .bind(user["id"].as_str().unwrap())
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(role, "owner");

    let named = app
        .cli(&[
            "org",
            "create",
            "--name",
            "Beta",
            "--slug",
            "beta-eu",
            "--owner",
            "a@example.com",
        ])
        .await
        .json();
    assert_eq!(named["slug"], "beta-eu");
}

async fn org_create_refuses_bad_input_and_writes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("a@example.com", PASSWORD).await;
    app.cli(&[
        "org",
        "create",
        "--name",
        "Acme",
        "--owner",
        "a@example.com",
    ])
    .await
    .json();

    let taken = app
        .cli(&[
            "org",
            "create",
            "--name",
            "Other",
            "--slug",
            "acme",
            "--owner",
            "a@example.com",
        ])
        .await;
    assert!(taken.refused().contains("taken"));
    let unknown_owner = app
        .cli(&[
            "org",
            "create",
            "--name",
            "Zeta",
            "--owner",
            "nobody@example.com",
        ])
        .await;
    assert!(unknown_owner.refused().contains("nobody@example.com"));
    for bad_slug in ["AB", "Upper", "api", "-dash"] {
        let slug_arg = format!("--slug={bad_slug}");
        let out = app
            .cli(&[
                "org",
                "create",
                "--name",
                "Zeta",
                &slug_arg,
                "--owner",
                "a@example.com",
            ])
            .await;
        assert!(out.refused().contains("slug"), "{bad_slug}");
    }
    app.cli(&["org", "create", "--name", "   ", "--owner", "a@example.com"])
        .await
        .refused();

    assert_eq!(app.count("organizations").await, 1);
    assert_eq!(app.count("memberships").await, 1);
}

async fn org_add_member_adds_and_refuses(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("owner@example.com", PASSWORD).await;
    let bob = app.create_user("bob@example.com", PASSWORD).await;
    let org = app
        .cli(&[
            "org",
            "create",
            "--name",
            "Acme",
            "--owner",
            "owner@example.com",
        ])
        .await
        .json();

    let added = app
        .cli(&[
            "org",
            "add-member",
            "--org",
            "acme",
            "--email",
            "BOB@example.com",
            "--role",
            "admin",
        ])
        .await
        .json();
    assert_eq!(added["org_id"], org["id"]);
    assert_eq!(added["user_id"], bob["id"]);
    assert_eq!(added["role"], "admin");

    let by_id = app
        .cli(&[
            "org",
            "add-member",
            "--org",
            org["id"].as_str().unwrap(),
            "--email",
            "bob@example.com",
            "--role",
            "viewer",
        ])
        .await;
    assert!(by_id.refused().contains("already a member"));
    app.cli(&[
        "org",
        "add-member",
        "--org",
        "nope",
        "--email",
        "bob@example.com",
        "--role",
        "member",
    ])
    .await
    .refused();
    app.cli(&[
        "org",
        "add-member",
        "--org",
        "acme",
        "--email",
        "ghost@example.com",
        "--role",
        "member",
    ])
    .await
    .refused();
    let bad_role = app
        .cli(&[
            "org",
            "add-member",
            "--org",
            "acme",
            "--email",
            "bob@example.com",
            "--role",
            "god",
        ])
        .await;
    assert!(bad_role.refused().contains("role"));

    assert_eq!(app.count("memberships").await, 2);
}

async fn client_create_stores_only_the_secret_hash(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let confidential = app
        .cli(&[
            "client",
            "create",
            "--name",
            "Web",
            "--redirect-uri",
            "https://app.example.com/cb",
            "--first-party",
        ])
        .await
        .json();
    let public = app
        .cli(&[
            "client",
            "create",
            "--name",
            "SPA",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1:3000/cb",
            "--id-token-alg",
            "ES256",
        ])
        .await
        .json();

    let secret = confidential["client_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    let row = sqlx::query(
        "select secret_hash, grant_types, scopes, first_party from clients where id = $1",
    )
    .bind(confidential["client_id"].as_str().unwrap())
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        row.get::<String, _>("secret_hash"),
        TokenHash::of(secret).as_str()
    );
    assert_eq!(
        row.get::<String, _>("grant_types"),
        r#"["authorization_code","refresh_token"]"#
    );
    assert_eq!(
        row.get::<String, _>("scopes"),
        r#"["openid","profile","email","offline_access"]"#
    );
    assert_eq!(row.get::<i64, _>("first_party"), 1);

    assert!(public.get("client_secret").is_none());
    let hash: Option<String> = sqlx::query_scalar("select secret_hash from clients where id = $1")
        .bind(public["client_id"].as_str().unwrap())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(hash.is_none());
}

async fn client_create_refuses_bad_input(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for uri in [
        "not a uri",
        "/relative/cb",
        "https://app.example.com/cb#fragment",
        "javascript:alert(1)",
    ] {
        let out = app
            .cli(&["client", "create", "--name", "X", "--redirect-uri", uri])
            .await;
        assert!(out.refused().contains("redirect URI"), "{uri}");
    }
    app.cli(&[
        "client",
        "create",
        "--name",
        "X",
        "--grant-type",
        "implicit",
    ])
    .await
    .refused();
    app.cli(&[
        "client",
        "create",
        "--name",
        "X",
        "--public",
        "--grant-type",
        "client_credentials",
    ])
    .await
    .refused();
    app.cli(&["client", "create", "--name", "X", "--id-token-alg", "HS256"])
        .await
        .refused();
    app.cli(&["client", "create", "--name", "X", "--scope", "bad\"scope"])
        .await
        .refused();

    assert_eq!(app.count("clients").await, 0);
}

async fn keys_start_with_active_rs256_and_es256_and_rotate(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let listed = app.cli(&["keys", "list"]).await.json();
    let keys = listed["keys"].as_array().unwrap();
    let active = |alg: &str| {
        keys.iter()
            .filter(|k| k["alg"] == alg && k["state"] == "active")
            .count()
    };
    assert_eq!((active("RS256"), active("ES256")), (1, 1), "{listed}");
    let old_es = keys.iter().find(|k| k["alg"] == "ES256").unwrap()["kid"].clone();

    let rotated = app.cli(&["keys", "rotate"]).await.json();
    assert_eq!(rotated["alg"], "ES256", "defaults to the access-token alg");
    assert_ne!(rotated["kid"], old_es);

    let rsa = app.cli(&["keys", "rotate", "--alg", "RS256"]).await.json();
    assert_eq!(rsa["alg"], "RS256");

    let after = app.cli(&["keys", "list"]).await.json();
    let keys = after["keys"].as_array().unwrap();
    let state_of =
        |kid: &serde_json::Value| keys.iter().find(|k| &k["kid"] == kid).unwrap()["state"].clone();
    assert_eq!(state_of(&rotated["kid"]), "active");
    assert_eq!(
        state_of(&old_es),
        "retired",
        "the old key stays listed until its tokens expire"
    );
    assert_eq!(keys.iter().filter(|k| k["state"] == "active").count(), 2);

    app.cli(&["keys", "rotate", "--alg", "none"])
        .await
        .refused();
}

async fn migrate_twice_is_a_no_op(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("a@example.com", PASSWORD).await;

    let first = app.cli(&["migrate"]).await;
    let second = app.cli(&["migrate"]).await;

    assert!(
        first.success && second.success,
        "{} {}",
        first.stderr,
        second.stderr
    );
    assert_eq!(app.count("users").await, 1, "data survives");
    let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert_eq!(applied as usize, shipped, "each migration applied once");
}
