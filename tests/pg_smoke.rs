#[path = "api/support/postgres.rs"]
mod postgres;

use sqlx::{Connection, Executor, Row};
use std::time::Instant;

async fn select1(url: &str) {
    let mut c = sqlx::postgres::PgConnection::connect(url)
        .await
        .expect("connect");
    let row = c
        .fetch_one("select 1::int4 as one, current_database() as db")
        .await
        .expect("select");
    let one: i32 = row.get("one");
    let db: String = row.get("db");
    assert_eq!(one, 1);
    assert!(url.ends_with(&db), "{url} vs {db}");
    c.close().await.ok();
}

#[tokio::test]
async fn shared_a() {
    let t = Instant::now();
    let pg = postgres::shared().expect("pg");
    eprintln!("shared() took {:?}", t.elapsed());
    for _ in 0..2 {
        let t = Instant::now();
        let url = postgres::shared().unwrap().create_database().await;
        eprintln!("create_database took {:?}: {url}", t.elapsed());
        select1(&url).await;
    }
    assert!(pg.admin_url().contains(&pg.port().to_string()));
}

#[tokio::test]
async fn shared_b() {
    let pg = postgres::shared().expect("pg");
    let url = pg.create_database().await;
    select1(&url).await;
}

#[test]
fn shared_c_sync() {
    let pg = postgres::shared().expect("pg");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(pg.create_database());
    rt.block_on(select1(&url));
}

#[tokio::test]
async fn dedicated() {
    let t = Instant::now();
    let pg = postgres::start_dedicated().expect("pg");
    eprintln!("start_dedicated took {:?}", t.elapsed());
    let url = pg.create_database().await;
    select1(&url).await;
    let t = Instant::now();
    pg.stop();
    eprintln!("stop took {:?}", t.elapsed());
    assert!(sqlx::postgres::PgConnection::connect(&url).await.is_err());
    let t = Instant::now();
    pg.start();
    eprintln!("start took {:?}", t.elapsed());
    select1(&url).await;
}
