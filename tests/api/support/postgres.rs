//! Throwaway PostgreSQL clusters for the integration tests.
//!
//! Every integration test runs once on SQLite and once on PostgreSQL. This
//! module provides the PostgreSQL side without any pre-existing server:
//!
//! * [`shared()`] lazily starts ONE cluster per test-binary run (race-free via
//!   a [`OnceLock`]); tests get a fresh, uniquely named database on it with
//!   [`PgCluster::create_database`].
//! * [`start_dedicated()`] starts a separate cluster owned by a single test,
//!   for tests that stop and restart the database server.
//!
//! The server binaries are taken from `/usr/lib/postgresql/<highest>/bin` or,
//! failing that, `initdb`/`pg_ctl` on `PATH`. Without them the PostgreSQL
//! half of the tests is skipped with a loud message on stderr — except when
//! `CI=true`, where missing binaries are a hard failure.
//!
//! Cleanup: statics are never dropped in Rust, so right after a cluster starts
//! a detached watchdog shell polls the test process and, once it is gone
//! (normal exit, panic or kill), stops the cluster and removes its directory.
//!
//! Everything here is plain blocking `std::process`/`std::thread` code (apart
//! from `create_database`), so it is safe to call from a current-thread tokio
//! runtime: nothing waits on the async executor.

// The test binary may not use every helper in every configuration.
#![allow(dead_code)]

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

const SKIP_MESSAGE: &str = "SKIPPED: PostgreSQL server binaries not found (install postgresql); \
                            PostgreSQL tests did not run";

/// How many times a cluster start is attempted (each with a fresh port).
const START_ATTEMPTS: usize = 3;

/// Located PostgreSQL server binaries.
#[derive(Debug, Clone)]
struct PgBins {
    initdb: PathBuf,
    pg_ctl: PathBuf,
}

/// A running throwaway PostgreSQL cluster (trust auth, superuser `postgres`,
/// listening on `127.0.0.1:port` and on a Unix socket in its data directory).
#[derive(Debug)]
pub struct PgCluster {
    bins: PgBins,
    /// Data directory (also holds the server log `log` and the Unix socket).
    dir: PathBuf,
    port: u16,
    /// Whether server commands run as the `postgres` user via `runuser`
    /// (because this process is root and `initdb` refuses to run as root).
    as_postgres: bool,
}

/// The cluster shared by all tests of this test-binary run, started lazily on
/// first use. `None` when no PostgreSQL binaries are installed (after printing
/// a SKIPPED line once; panics instead when `CI=true`). Panics — in every
/// caller — if the binaries exist but the cluster could not be started.
pub fn shared() -> Option<&'static PgCluster> {
    static SHARED: OnceLock<Result<Option<PgCluster>, String>> = OnceLock::new();
    let state = SHARED.get_or_init(|| match find_bins_or_skip() {
        None => Ok(None),
        Some(bins) => PgCluster::start_new(bins).map(Some),
    });
    match state {
        Ok(cluster) => cluster.as_ref(),
        Err(message) => panic!("shared PostgreSQL test cluster failed to start:\n{message}"),
    }
}

/// Starts a separate cluster owned by the caller (for tests that stop and
/// restart the database). Same skip semantics as [`shared()`]; panics with the
/// server log if the cluster cannot be started. Dropping it stops the server
/// and removes its directory.
pub fn start_dedicated() -> Option<PgCluster> {
    let bins = find_bins_or_skip()?;
    match PgCluster::start_new(bins) {
        Ok(cluster) => Some(cluster),
        Err(message) => panic!("dedicated PostgreSQL test cluster failed to start:\n{message}"),
    }
}

impl PgCluster {
    /// TCP port the server listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of the `postgres` maintenance database, as superuser `postgres`.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Creates a fresh, uniquely named empty database (`lk_<uuid>`) and
    /// returns its URL (`postgres://postgres@127.0.0.1:PORT/lk_...`).
    pub async fn create_database(&self) -> String {
        use sqlx::{Connection, Executor};

        let name = format!("lk_{}", uuid::Uuid::new_v4().simple());
        let admin_url = self.admin_url();
        let mut attempt = 0;
        let mut conn = loop {
            attempt += 1;
            match sqlx::postgres::PgConnection::connect(&admin_url).await {
                Ok(conn) => break conn,
                Err(e) if attempt < 5 => {
                    eprintln!(
                        "connecting to {admin_url} failed (attempt {attempt}): {e}; retrying"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!(
                    "cannot connect to PostgreSQL test cluster at {admin_url}: {e}\n{}",
                    self.log_excerpt()
                ),
            }
        };
        conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {admin_url} failed: {e}"));
        // Closing politely is best effort; the database exists either way.
        let _ = conn.close().await;
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Stops the server (fast shutdown) and waits until it is down.
    /// Panics with the server log if that fails.
    pub fn stop(&self) {
        let mut cmd = self.server_command(&self.bins.pg_ctl);
        cmd.arg("stop")
            .arg("-D")
            .arg(&self.dir)
            .args(["-m", "fast", "-w", "-t", "60"]);
        if let Err(message) = run(&mut cmd) {
            panic!("{message}\n{}", self.log_excerpt());
        }
    }

    /// Starts the (stopped) server again on the same port and waits until it
    /// accepts connections. Panics with the server log if that fails.
    pub fn start(&self) {
        if let Err(message) = self.pg_ctl_start() {
            panic!("{message}");
        }
    }

    /// Creates the data directory, runs `initdb` and starts the server,
    /// retrying with a new port (and a new directory) if the start fails.
    /// Spawns the cleanup watchdog on success.
    fn start_new(bins: PgBins) -> Result<Self, String> {
        let started = Instant::now();
        let as_postgres = running_as_root();
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            let dir = create_cluster_dir(as_postgres)?;
            let port = free_port()?;
            let cluster = PgCluster {
                bins: bins.clone(),
                dir,
                port,
                as_postgres,
            };
            // From here on `cluster`'s Drop removes the directory on failure.
            let result = cluster.initdb().and_then(|()| cluster.pg_ctl_start());
            match result {
                Ok(()) => {
                    cluster.spawn_watchdog();
                    eprintln!(
                        "PostgreSQL test cluster started on 127.0.0.1:{port} in {} ms (dir {})",
                        started.elapsed().as_millis(),
                        cluster.dir.display(),
                    );
                    return Ok(cluster);
                }
                Err(message) => {
                    eprintln!(
                        "starting PostgreSQL test cluster failed (attempt {attempt}/{START_ATTEMPTS}):\n{message}"
                    );
                    failures.push(message);
                }
            }
        }
        Err(failures.join("\n----\n"))
    }

    fn initdb(&self) -> Result<(), String> {
        let mut cmd = self.server_command(&self.bins.initdb);
        cmd.arg("-D").arg(&self.dir).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        run(&mut cmd)
    }

    /// `pg_ctl start -w` with the test-friendly server options; on failure the
    /// error contains the server log.
    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=500 -c shared_buffers=64MB",
            self.port,
            self.dir.display(),
        );
        let mut cmd = self.server_command(&self.bins.pg_ctl);
        cmd.arg("-D")
            .arg(&self.dir)
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t", "60", "-o"])
            .arg(options)
            .arg("start");
        run(&mut cmd).map_err(|message| format!("{message}\n{}", self.log_excerpt()))
    }

    /// Detached shell that waits for this test process to end, then stops the
    /// cluster (immediate shutdown) and removes its directory. It runs in its
    /// own process group so a Ctrl-C on the test run does not kill it first.
    #[allow(clippy::zombie_processes)] // deliberately never waited for
    fn spawn_watchdog(&self) {
        let stop = self.shell_server_command(&format!(
            "{} stop -D {} -m immediate -w -t 30",
            shell_quote(&self.bins.pg_ctl.to_string_lossy()),
            shell_quote(&self.dir.to_string_lossy()),
        ));
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = shell_quote(&self.dir.to_string_lossy()),
        );
        let spawned = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        if let Err(e) = spawned {
            eprintln!(
                "WARNING: could not spawn the PostgreSQL cleanup watchdog ({e}); cluster in {} may outlive the tests",
                self.dir.display()
            );
        }
    }

    /// A command running `program` as the cluster owner (via `runuser` when
    /// this process is root), detached from our process group.
    fn server_command(&self, program: &Path) -> Command {
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new(runuser());
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        cmd.current_dir("/").stdin(Stdio::null()).process_group(0);
        cmd
    }

    /// Shell-text version of [`Self::server_command`] for the watchdog.
    fn shell_server_command(&self, command: &str) -> String {
        if self.as_postgres {
            format!("{} -u postgres -- {command}", shell_quote(runuser()))
        } else {
            command.to_string()
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// The tail of the server log, for error messages.
    fn log_excerpt(&self) -> String {
        let path = self.log_path();
        match fs::read_to_string(&path) {
            Ok(log) => {
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(60)..];
                format!(
                    "--- server log {} ---\n{}\n--- end of log ---",
                    path.display(),
                    tail.join("\n")
                )
            }
            Err(e) => format!("(server log {} unreadable: {e})", path.display()),
        }
    }
}

impl Drop for PgCluster {
    /// Stops the server (immediate) and removes the directory. Never runs for
    /// the shared cluster (a static); its watchdog cleans up instead.
    fn drop(&mut self) {
        let _ = self
            .server_command(&self.bins.pg_ctl)
            .arg("stop")
            .arg("-D")
            .arg(&self.dir)
            .args(["-m", "immediate", "-w", "-t", "30"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Locates the binaries, or reports their absence: prints the SKIPPED line
/// once and returns `None`, or panics when running under CI.
fn find_bins_or_skip() -> Option<PgBins> {
    static BINS: OnceLock<Option<PgBins>> = OnceLock::new();
    static SKIP_NOTICE: Once = Once::new();
    let bins = BINS.get_or_init(find_bins).clone();
    if bins.is_none() {
        if is_ci() {
            panic!("{SKIP_MESSAGE} (CI=true: PostgreSQL is required)");
        }
        // Written to the real stderr, not via `eprintln!`, so that the test
        // harness's output capture cannot swallow it for passing tests.
        SKIP_NOTICE.call_once(|| {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!!!!!!! {SKIP_MESSAGE} !!!!!!!!!!\n"
            );
        });
    }
    bins
}

fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// `/usr/lib/postgresql/<highest version>/bin`, else `initdb`/`pg_ctl` on PATH.
fn find_bins() -> Option<PgBins> {
    let from_bin_dir = |dir: &Path| {
        let initdb = dir.join("initdb");
        let pg_ctl = dir.join("pg_ctl");
        (is_executable(&initdb) && is_executable(&pg_ctl)).then_some(PgBins { initdb, pg_ctl })
    };

    let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version: Vec<u32> = name
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort();
    if let Some(bins) = versions.iter().rev().find_map(|(_, dir)| from_bin_dir(dir)) {
        return Some(bins);
    }

    let path = std::env::var_os("PATH")?;
    let find = |name: &str| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    };
    Some(PgBins {
        initdb: find("initdb")?,
        pg_ctl: find("pg_ctl")?,
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Effective uid 0? Read from `/proc/self/status` (no libc needed), falling
/// back to `id -u`.
fn running_as_root() -> bool {
    // "Uid:  real effective saved filesystem"
    let euid = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
        });
    if let Some(euid) = euid {
        return euid == "0";
    }
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// `runuser` (util-linux), by absolute path when found: root's PATH may lack
/// the sbin directories.
fn runuser() -> &'static str {
    ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .into_iter()
        .find(|p| is_executable(Path::new(p)))
        .unwrap_or("runuser")
}

/// A new empty directory under /tmp, mode 0700, owned by `postgres` when we
/// are root (so the server, running as `postgres`, can use it). The name is
/// short because the server's Unix socket lives in it (path length limit).
fn create_cluster_dir(as_postgres: bool) -> Result<PathBuf, String> {
    let dir = PathBuf::from(format!("/tmp/lkpg-{}", uuid::Uuid::new_v4().simple()));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if as_postgres {
        let mut cmd = Command::new("chown");
        cmd.arg("-R").arg("postgres").arg(&dir);
        if let Err(message) = run(&mut cmd) {
            let _ = fs::remove_dir_all(&dir);
            return Err(format!(
                "{message}\n(running as root: the `postgres` user must exist, as the postgresql package creates it)"
            ));
        }
    }
    Ok(dir)
}

/// A currently free TCP port on 127.0.0.1 (bound, then released).
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot find a free TCP port: {e}"))
}

/// Runs `cmd` to completion; `Err` with the command line and its output
/// unless it succeeded.
fn run(cmd: &mut Command) -> Result<(), String> {
    match cmd.output() {
        Err(e) => Err(format!("{cmd:?}: could not run the program: {e}")),
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{cmd:?} failed ({}):\n--- stdout ---\n{}--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        )),
    }
}

/// Single-quotes `s` for `sh`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
