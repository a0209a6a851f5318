//! Background jobs with an injected clock: scheduled key rotation (next → active → retired →
//! deleted), purges, and the lease that keeps each job to one process at a time.

use latchkey::config::Config;
use latchkey::crypto::key_store;
use latchkey::jobs::{lease, purge};

use crate::helpers::{Backend, TestApp};

on_both_databases!(
    scheduled_rotation_publishes_activates_and_deletes,
    a_lease_has_one_holder_until_it_expires,
    purge_removes_only_what_has_expired,
);

fn config_of(app: &TestApp) -> Config {
    Config::from_lookup(|k| app.env.get(k).cloned()).unwrap()
}

async fn states(app: &TestApp) -> Vec<(String, String, String)> {
    key_store::list(&app.db.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.alg.as_str().to_owned(), k.state))
        .collect()
}

fn kids(states: &[(String, String, String)], alg: &str, state: &str) -> Vec<String> {
    states
        .iter()
        .filter(|(_, a, s)| a == alg && s == state)
        .map(|(k, _, _)| k.clone())
        .collect()
}

async fn scheduled_rotation_publishes_activates_and_deletes(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("LATCHKEY_KEY_ROTATION", "1d"),
            ("LATCHKEY_ACCESS_TOKEN_TTL", "10m"),
        ],
    )
    .await;
    let config = config_of(&app);
    let before = states(&app).await;
    let old_es = kids(&before, "ES256", "active");
    assert_eq!(old_es.len(), 1);

    // Not due yet: nothing happens.
    let idle = key_store::rotate_due(&app.db, &config, &app.clock, &app.kek)
        .await
        .unwrap();
    assert!(
        idle.published.is_empty() && idle.activated.is_empty(),
        "{idle:?}"
    );

    // Inside the publication lead: a next key per algorithm appears (and so in the JWKS).
    let lead = key_store::publish_lead(&config);
    app.clock.advance(24 * 3600 - lead + 1);
    let published = key_store::rotate_due(&app.db, &config, &app.clock, &app.kek)
        .await
        .unwrap();
    assert_eq!(published.published.len(), 2, "{published:?}");
    let next_es = kids(&states(&app).await, "ES256", "next");
    assert_eq!(next_es.len(), 1);

    // Due, and published long enough: the next key signs, the old one retires.
    app.clock.advance(lead);
    let rotated = key_store::rotate_due(&app.db, &config, &app.clock, &app.kek)
        .await
        .unwrap();
    assert_eq!(rotated.activated.len(), 2, "{rotated:?}");
    let after = states(&app).await;
    assert_eq!(kids(&after, "ES256", "active"), next_es);
    assert_eq!(kids(&after, "ES256", "retired"), old_es);

    // Once nothing it signed can be valid, the retired key is deleted.
    app.clock.advance(key_store::verify_window(&config) + 1);
    let pruned = key_store::rotate_due(&app.db, &config, &app.clock, &app.kek)
        .await
        .unwrap();
    assert!(pruned.deleted.contains(&old_es[0]), "{pruned:?}");
    assert!(kids(&states(&app).await, "ES256", "retired").is_empty());
}

async fn a_lease_has_one_holder_until_it_expires(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let now = app.clock.now() + 10_000; // clear of the server's own job runs

    assert!(
        lease::acquire(&app.db.pool, "test-job", "a", now, now + 55)
            .await
            .unwrap()
    );
    assert!(
        !lease::acquire(&app.db.pool, "test-job", "b", now + 1, now + 56)
            .await
            .unwrap()
    );
    assert!(
        lease::acquire(&app.db.pool, "test-job", "a", now + 2, now + 57)
            .await
            .unwrap(),
        "the holder renews"
    );
    assert!(
        lease::acquire(&app.db.pool, "test-job", "b", now + 57, now + 112)
            .await
            .unwrap(),
        "free once expired"
    );
}

async fn purge_removes_only_what_has_expired(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let now = app.clock.now();
    for (jti, exp) in [("old", now - 10), ("live", now + 600)] {
        sqlx::query("insert into revoked_access_tokens (jti, expires_at) values ($1, $2)")
            .bind(jti)
            .bind(exp)
            .execute(&app.db.pool)
            .await
            .unwrap();
    }

    let purged = purge::run(&app.db, now).await.unwrap();

    assert!(
        purged.rows.contains(&("revoked_access_tokens", 1)),
        "{purged:?}"
    );
    let left: Vec<String> = sqlx::query_scalar("select jti from revoked_access_tokens")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(left, vec!["live".to_owned()]);
}
