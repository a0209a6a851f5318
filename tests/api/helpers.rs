//! `TestApp`: a fresh database, a server on port 0 in this process, and helpers named after actions.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;

use latchkey::app::Server;
use latchkey::clock::Clock;
use latchkey::config::Config;
use latchkey::crypto::kek::KeyEncryptionKey;
use latchkey::db::Database;
use tokio::io::AsyncWriteExt;

use crate::support::postgres;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates, for each named `async fn test(backend: Backend)`, a module with a `sqlite` and a
/// `postgres` test. The PostgreSQL variant is skipped (loudly) when no server binaries are installed,
/// and fails instead under `CI=true` (see `support::postgres`).
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::support::postgres::shared().is_none() {
                    return;
                }
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}

/// A fresh database of the given backend; the returned guard keeps a SQLite file alive.
pub async fn fresh_database_url(backend: Backend) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("latchkey.db").display()),
        Backend::Postgres => {
            postgres::shared()
                .expect("PostgreSQL available")
                .create_database()
                .await
        }
    };
    (url, dir)
}

/// A running Latchkey on its own database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    /// `http://127.0.0.1:PORT` of the metrics listener, when `LATCHKEY_METRICS_BIND` was given.
    pub metrics_address: Option<String>,
    /// Environment the server was configured with; CLI runs get the same.
    pub env: HashMap<String, String>,
    /// The server's database, for asserting on rows.
    pub db: Database,
    /// HTTP client with a cookie store and no automatic redirects.
    pub http: reqwest::Client,
    /// The server's clock: [`Clock::advance`] moves "now" for the running server (code expiry, ...).
    pub clock: Clock,
    /// The server's key-encryption key (for calling key-store functions as the server would).
    pub kek: Arc<KeyEncryptionKey>,
    /// Holds the SQLite file and mail directory until the app is dropped.
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApp {
    /// Starts a server on a fresh database of `backend`.
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, &[]).await
    }

    /// Starts a server with extra `LATCHKEY_*` variables.
    pub async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
        let (database_url, dir) = fresh_database_url(backend).await;
        let env = test_env(&database_url, &dir, extra);
        let server = bind(&env).await.expect("server binds");
        TestApp::run(server, env, dir).await
    }

    /// Starts a server whose `LATCHKEY_ISSUER` is its own address (`http://127.0.0.1:PORT`), so that a
    /// relying party can discover it and validate `iss`: a free port is picked first and the server is
    /// bound to it, with a new port if another process took it in between.
    pub async fn spawn_with_own_issuer(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
        const ATTEMPTS: usize = 5;
        let (database_url, dir) = fresh_database_url(backend).await;
        for attempt in 1..=ATTEMPTS {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let bind_addr = format!("127.0.0.1:{port}");
            let issuer = format!("http://{bind_addr}");
            let mut all: Vec<(&str, &str)> = vec![
                ("LATCHKEY_BIND", bind_addr.as_str()),
                ("LATCHKEY_ISSUER", issuer.as_str()),
            ];
            all.extend_from_slice(extra);
            let env = test_env(&database_url, &dir, &all);
            match bind(&env).await {
                Ok(server) => return TestApp::run(server, env, dir).await,
                Err(e) if attempt < ATTEMPTS => {
                    eprintln!("binding {bind_addr} failed ({e}); retrying")
                }
                Err(e) => panic!("server binds: {e:#}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Runs a bound server in the background until the app is dropped.
    async fn run(
        (server, db, clock): (Server, Database, Clock),
        env: HashMap<String, String>,
        dir: tempfile::TempDir,
    ) -> TestApp {
        let address = format!("http://{}", server.local_addr().expect("local addr"));
        let metrics_address = server
            .metrics_addr()
            .map(|addr| format!("http://{}", addr.expect("metrics addr")));
        let kek = server.kek();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run_until(async move {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        TestApp {
            address,
            metrics_address,
            env,
            db,
            http,
            clock,
            kek,
            _dir: dir,
            shutdown: Some(tx),
        }
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// Runs the `latchkey` executable with this app's configuration.
    pub async fn cli(&self, args: &[&str]) -> CliOutput {
        run_cli(&self.env, args, None).await
    }

    /// Runs the `latchkey` executable with `stdin` as standard input.
    pub async fn cli_stdin(&self, args: &[&str], stdin: &str) -> CliOutput {
        run_cli(&self.env, args, Some(stdin)).await
    }

    /// `latchkey user create` with a password; returns the printed JSON.
    pub async fn create_user(&self, email: &str, password: &str) -> serde_json::Value {
        self.cli_stdin(
            &["user", "create", "--email", email, "--password-stdin"],
            password,
        )
        .await
        .json()
    }

    /// Binds another server on this app's database with this app's environment changed by `extra`
    /// (an empty value unsets a variable); the error is why it refused to start.
    pub async fn spawn_sibling(&self, extra: &[(&str, &str)]) -> anyhow::Result<Sibling> {
        let mut env = self.env.clone();
        for (k, v) in extra {
            env.insert((*k).into(), (*v).into());
        }
        let (server, _, _) = bind(&env).await?;
        let address = format!("http://{}", server.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run_until(async move {
            let _ = rx.await;
        }));
        Ok(Sibling {
            address,
            _shutdown: tx,
        })
    }

    /// Counts the rows of `table`.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(&self.db.pool)
            .await
            .expect("count rows")
    }
}

/// A fresh key-encryption key in its configured form (base64 of 32 random bytes).
pub fn new_kek() -> String {
    KeyEncryptionKey::ephemeral().to_base64()
}

/// The environment of a test server: its database, port 0, a mail directory, then `extra`. On
/// PostgreSQL a fresh `LATCHKEY_KEY_ENCRYPTION_KEY` (required there); on SQLite none, so the server
/// creates `latchkey.kek` beside the database file, as by default.
pub fn test_env(
    database_url: &str,
    dir: &tempfile::TempDir,
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("LATCHKEY_DATABASE_URL".into(), database_url.to_owned());
    if !database_url.starts_with("sqlite:") {
        env.insert("LATCHKEY_KEY_ENCRYPTION_KEY".into(), new_kek());
    }
    env.insert("LATCHKEY_BIND".into(), "127.0.0.1:0".into());
    env.insert(
        "LATCHKEY_MAIL_DIR".into(),
        dir.path().join("mail").display().to_string(),
    );
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    env
}

/// Opens the database and binds a server configured by `env`, with a clock the test keeps.
async fn bind(env: &HashMap<String, String>) -> anyhow::Result<(Server, Database, Clock)> {
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("valid test configuration");
    let db = Database::open(&config.database_url)
        .await
        .expect("database opens");
    let clock = Clock::system();
    let server = Server::bind(Arc::new(config), db.clone(), clock.clone()).await?;
    Ok((server, db, clock))
}

/// A second server on a [`TestApp`]'s database; stops when dropped.
pub struct Sibling {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// What a run of the executable left behind.
#[derive(Debug)]
pub struct CliOutput {
    pub success: bool,
    /// The exit status (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// Asserts success and parses stdout as one JSON object.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        assert!(self.success, "command failed: {}", self.stderr);
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// Asserts a refusal: non-zero exit, nothing on stdout, one line on stderr; returns that line.
    #[track_caller]
    pub fn refused(&self) -> String {
        assert!(
            !self.success,
            "command unexpectedly succeeded: {}",
            self.stdout
        );
        assert!(
            self.stdout.trim().is_empty(),
            "stdout must stay empty on refusal: {}",
            self.stdout
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one line on stderr, got: {}",
            self.stderr
        );
        lines[0].to_owned()
    }
}

/// Runs the `latchkey` executable with exactly `env` as its `LATCHKEY_*` configuration.
pub async fn run_cli(
    env: &HashMap<String, String>,
    args: &[&str],
    stdin: Option<&str>,
) -> CliOutput {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("latchkey runs");
    let mut pipe = child.stdin.take().expect("stdin");
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).await.expect("write stdin");
    }
    drop(pipe);
    let out = child.wait_with_output().await.expect("latchkey finishes");
    CliOutput {
        success: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
