//! The database session store behind tower-sessions, driven through its `SessionStore` API.

use std::collections::HashMap;

use latchkey::clock::Clock;
use latchkey::login::session_store::{DbSessionStore, USER_ID_KEY};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::Error;

use crate::helpers::{Backend, TestApp};
use crate::rp;
use crate::rp::PASSWORD;

on_both_databases!(
    created_sessions_load_back,
    saving_updates_the_row_in_place,
    sessions_of_a_user_end_together,
    save_does_not_revive_an_ended_session,
    expired_sessions_load_as_none,
    deleted_sessions_are_gone,
    purge_removes_only_expired_sessions,
    create_draws_a_new_id_on_collision,
    unknown_user_id_is_a_backend_error,
    undecodable_data_is_a_decode_error,
    login_works_after_the_clock_moves_a_day,
    an_idle_session_is_refused,
    a_session_in_use_outlives_the_idle_timeout
);

/// A store on the app's database with a clock of its own.
fn store(app: &TestApp) -> (DbSessionStore, Clock) {
    let clock = Clock::system();
    (DbSessionStore::new(app.db.clone(), clock.clone()), clock)
}

/// A record with `data` expiring `ttl` seconds after `clock`'s now.
fn record(clock: &Clock, ttl: i64, data: Value) -> Record {
    let data: HashMap<String, Value> = serde_json::from_value(data).unwrap();
    Record {
        id: Id::default(),
        data,
        expiry_date: OffsetDateTime::from_unix_timestamp(clock.now() + ttl).unwrap(),
    }
}

/// The key of a session's row: the SHA-256 (hex) of its id, never the id itself.
fn stored_id(id: &Id) -> String {
    latchkey::crypto::tokens::TokenHash::of(&id.to_string()).into_inner()
}

async fn column<T>(app: &TestApp, column: &str, id: &Id) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + Unpin,
{
    sqlx::query_scalar(&format!("select {column} from sessions where id = $1"))
        .bind(stored_id(id))
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

async fn created_sessions_load_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (store, clock) = store(&app);
    let mut rec = record(&clock, 3600, json!({"csrf": "abc", "n": 3, "list": [1, 2]}));

    let before = clock.now();

    store.create(&mut rec).await.unwrap();

    let loaded = store.load(&rec.id).await.unwrap().expect("session found");
    assert_eq!(
        loaded, rec,
        "id, data and expiry (whole seconds) round-trip"
    );
    let created_at = column::<i64>(&app, "created_at", &rec.id).await;
    assert!((before..=clock.now()).contains(&created_at), "{created_at}");
    assert_eq!(
        column::<Option<String>>(&app, "user_id", &rec.id).await,
        None
    );
    assert!(store.load(&Id::default()).await.unwrap().is_none());
}

async fn saving_updates_the_row_in_place(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (store, clock) = store(&app);
    let mut rec = record(&clock, 3600, json!({"step": 1}));
    store.create(&mut rec).await.unwrap();
    let created_at = column::<i64>(&app, "created_at", &rec.id).await;

    clock.advance(100);
    rec.data.insert("step".into(), json!(2));
    rec.expiry_date = OffsetDateTime::from_unix_timestamp(clock.now() + 3600).unwrap();
    store.save(&rec).await.unwrap();
    rec.data.insert("step".into(), json!(3));
    store.save(&rec).await.unwrap();

    assert_eq!(app.count("sessions").await, 1);
    assert_eq!(store.load(&rec.id).await.unwrap(), Some(rec.clone()));
    assert_eq!(
        column::<i64>(&app, "created_at", &rec.id).await,
        created_at,
        "the absolute lifetime starts at creation"
    );
}

async fn sessions_of_a_user_end_together(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (store, clock) = store(&app);
    let alice = app.create_user("alice@example.com", PASSWORD).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = app.create_user("bob@example.com", PASSWORD).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut laptop = record(&clock, 3600, json!({USER_ID_KEY: alice}));
    let mut phone = record(&clock, 3600, json!({}));
    let mut bobs = record(&clock, 3600, json!({USER_ID_KEY: bob}));
    store.create(&mut laptop).await.unwrap();
    store.create(&mut phone).await.unwrap();
    store.create(&mut bobs).await.unwrap();
    assert_eq!(
        column::<Option<String>>(&app, "user_id", &laptop.id).await,
        Some(alice.clone())
    );
    assert_eq!(
        column::<Option<String>>(&app, "user_id", &phone.id).await,
        None
    );
    // Signing in on the phone is a save with the user's id in the data.
    phone.data.insert(USER_ID_KEY.into(), json!(alice));
    store.save(&phone).await.unwrap();
    assert_eq!(
        column::<Option<String>>(&app, "user_id", &phone.id).await,
        Some(alice.clone())
    );

    let ended = store.delete_for_user(&alice).await.unwrap();

    assert_eq!(ended, 2);
    assert!(store.load(&laptop.id).await.unwrap().is_none());
    assert!(store.load(&phone.id).await.unwrap().is_none());
    assert!(
        store.load(&bobs.id).await.unwrap().is_some(),
        "other users keep theirs"
    );
    // Signing out removes the key, and the column follows.
    bobs.data.remove(USER_ID_KEY);
    store.save(&bobs).await.unwrap();
    assert_eq!(
        column::<Option<String>>(&app, "user_id", &bobs.id).await,
        None
    );
    assert_eq!(store.delete_for_user(&bob).await.unwrap(), 0);
}

/// A request that loaded its session before a password reset ended it must not bring it back.
async fn save_does_not_revive_an_ended_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (store, clock) = store(&app);
    let user = app.create_user("alice@example.com", PASSWORD).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut rec = record(&clock, 3600, json!({USER_ID_KEY: user}));
    store.create(&mut rec).await.unwrap();
    let in_flight = store.load(&rec.id).await.unwrap().unwrap();

    store.delete_for_user(&user).await.unwrap();
    store.save(&in_flight).await.unwrap();

    assert!(store.load(&rec.id).await.unwrap().is_none());
    assert_eq!(app.count("sessions").await, 0);
}

async fn expired_sessions_load_as_none(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (store, clock) = store(&app);
    let mut rec = record(&clock, 60, json!({"k": "v"}));
    store.create(&mut rec).await.unwrap();

    // The clock also moves on its own (system time), so leave a margin before the end.
    clock.advance(50);
    assert!(store.load(&rec.id).await.unwrap().is_some());
    clock.advance(10);
    assert!(
        store.load(&rec.id).await.unwrap().is_none(),
        "expired at expires_at"
    );
}

async fn deleted_sessions_are_gone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (store, clock) = store(&app);
    let mut rec = record(&clock, 3600, json!({"k": "v"}));
    store.create(&mut rec).await.unwrap();

    store.delete(&rec.id).await.unwrap();

    assert!(store.load(&rec.id).await.unwrap().is_none());
    assert_eq!(app.count("sessions").await, 0);
    store.delete(&rec.id).await.unwrap();
}

async fn purge_removes_only_expired_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (store, clock) = store(&app);
    for ttl in [60, 120, 3600] {
        store
            .create(&mut record(&clock, ttl, json!({})))
            .await
            .unwrap();
    }
    assert_eq!(store.purge_expired().await.unwrap(), 0);

    clock.advance(120);

    assert_eq!(store.purge_expired().await.unwrap(), 2);
    assert_eq!(app.count("sessions").await, 1);
}

async fn create_draws_a_new_id_on_collision(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (store, clock) = store(&app);
    let mut first = record(&clock, 3600, json!({"who": "first"}));
    store.create(&mut first).await.unwrap();
    let mut second = record(&clock, 3600, json!({"who": "second"}));
    second.id = first.id;

    store.create(&mut second).await.unwrap();

    assert_ne!(second.id, first.id);
    assert_eq!(store.load(&first.id).await.unwrap(), Some(first));
    assert_eq!(store.load(&second.id).await.unwrap(), Some(second));
}

async fn unknown_user_id_is_a_backend_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (store, clock) = store(&app);
    let mut rec = record(&clock, 3600, json!({USER_ID_KEY: "no-such-user"}));

    let err = store.create(&mut rec).await.unwrap_err();

    assert!(matches!(err, Error::Backend(_)), "{err:?}");
    assert_eq!(app.count("sessions").await, 0);
}

async fn undecodable_data_is_a_decode_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (store, clock) = store(&app);
    let mut rec = record(&clock, 3600, json!({}));
    store.create(&mut rec).await.unwrap();
    sqlx::query("update sessions set data = 'not json' where id = $1")
        .bind(stored_id(&rec.id))
        .execute(&app.db.pool)
        .await
        .unwrap();

    let err = store.load(&rec.id).await.unwrap_err();

    assert!(matches!(err, Error::Decode(_)), "{err:?}");
}

/// The idle timeout (8 h) and absolute timeout (24 h) of browser sessions, in seconds.
const IDLE: i64 = 8 * 3600;
const ABSOLUTE: i64 = 24 * 3600;

/// Whether `browser`'s session is signed in, as the home page says.
async fn signed_in(app: &TestApp, browser: &reqwest::Client) -> bool {
    let response = browser.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap().contains("Signed in as")
}

/// Session expiry follows the server's clock, not the system's: after the clock moves a day (more
/// than the idle timeout), a new login still gives a working session.
async fn login_works_after_the_clock_moves_a_day(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person("alice@example.com", "Alice").await;
    app.clock.advance(25 * 3600);
    let browser = rp::browser();

    rp::sign_in(&app, &browser, "alice@example.com").await;

    assert!(signed_in(&app, &browser).await, "the new session works");
    app.clock.advance(IDLE - 60);
    assert!(
        signed_in(&app, &browser).await,
        "and lasts its idle timeout"
    );
}

async fn an_idle_session_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person("alice@example.com", "Alice").await;
    app.clock.advance(25 * 3600);
    let browser = rp::browser();
    rp::sign_in(&app, &browser, "alice@example.com").await;

    app.clock.advance(IDLE + 1);

    assert!(!signed_in(&app, &browser).await, "idle past the timeout");
    // The stale cookie does not get in the way of signing in again.
    rp::sign_in(&app, &browser, "alice@example.com").await;
    assert!(signed_in(&app, &browser).await);
}

/// Each use renews the idle timeout, up to the absolute timeout after sign-in.
async fn a_session_in_use_outlives_the_idle_timeout(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_person("alice@example.com", "Alice").await;
    let browser = rp::browser();
    rp::sign_in(&app, &browser, "alice@example.com").await;

    for _ in 0..3 {
        app.clock.advance(IDLE - 3600);
        assert!(
            signed_in(&app, &browser).await,
            "used within the idle timeout"
        );
    }
    app.clock.advance(ABSOLUTE - 3 * (IDLE - 3600) + 1);

    assert!(
        !signed_in(&app, &browser).await,
        "past the absolute timeout"
    );
}
