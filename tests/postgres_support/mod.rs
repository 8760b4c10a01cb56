//! Starts a private PostgreSQL server for a test binary: a temporary cluster (`initdb`) on a free
//! loopback port, run as the `postgres` user when the tests run as root (PostgreSQL refuses to
//! run as root). One server serves the whole test binary; it stops, and its folder goes, when
//! the binary exits (a shell beside it waits for the test process's end).
//!
//! There is no silent skip: without PostgreSQL's server programs the test fails and says how to
//! install them.
#![allow(dead_code)]
// Waiting for a real process needs the real clock.
#![allow(clippy::disallowed_methods)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The running server: its URL, and the shell that stops it when this process ends.
pub struct PostgresServer {
    url: String,
    /// Its stdin is a pipe nobody writes: when this process exits the pipe closes, and the shell
    /// stops the server and removes its folder.
    _watch: Mutex<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Where `initdb`, `postgres` and `pg_isready` are: beside `initdb` on PATH, or in Debian's
/// versioned folder.
fn server_bin() -> PathBuf {
    let on_path = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|p| !p.is_empty());
    // Through any symlink, to the folder that holds pg_isready too.
    if let Some(initdb) = on_path.and_then(|p| std::fs::canonicalize(p).ok()) {
        if let Some(dir) = initdb.parent() {
            return dir.to_path_buf();
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .filter(|bin| bin.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server programs (initdb, postgres) are not installed, and the \
             PostgreSQL tests need them. Install them (Debian: `sudo apt-get install \
             postgresql`) or run `bash .ci/test`, which installs them."
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `script` run by `sh`, as the `postgres` user when this process is root.
fn shell(script: &str) -> Command {
    if is_root() {
        // runuser lives in /usr/sbin, which a root shell's PATH may lack.
        let runuser = ["/usr/sbin/runuser", "/sbin/runuser"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("runuser");
        let mut command = Command::new(runuser);
        command.args(["-u", "postgres", "--", "sh", "-c", script]);
        command
    } else {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }
}

impl PostgresServer {
    /// The server of this test binary, started on first use. If it could not start, every test
    /// that asks fails at once with the first failure's reason.
    pub fn shared() -> &'static PostgresServer {
        static SERVER: OnceLock<Result<PostgresServer, String>> = OnceLock::new();
        match SERVER.get_or_init(PostgresServer::start) {
            Ok(server) => server,
            Err(why) => panic!("{why}"),
        }
    }

    /// A URL to its database `postgres`, as user `grantor` (no password: the cluster trusts
    /// loopback connections). The server takes connections as soon as `shared` answers.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn start() -> Result<Self, String> {
        let bin = server_bin();
        let dir = std::env::temp_dir().join(format!(
            "grantor-pg-{}-{}",
            std::process::id(),
            grantor::FamilyId::generate()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("temporary folder: {e}"))?;
        let started = Self::start_in(&bin, &dir);
        if started.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        started
    }

    fn start_in(bin: &Path, dir: &Path) -> Result<Self, String> {
        if is_root() {
            let chowned = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir)
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !chowned.success() {
                return Err(format!("could not hand {dir:?} to the postgres user"));
            }
        }
        let data = dir.join("data");
        let port = free_port();
        let log = dir.join("postgres.log");
        let initdb = shell(&format!(
            "'{bin}/initdb' -D '{data}' -U grantor -A trust --no-sync -E UTF8 >'{dir}/initdb.log' 2>&1",
            bin = bin.display(),
            data = data.display(),
            dir = dir.display(),
        ))
        .status()
        .map_err(|e| format!("initdb: {e}"))?;
        if !initdb.success() {
            let out = std::fs::read_to_string(dir.join("initdb.log")).unwrap_or_default();
            return Err(format!("initdb failed:\n{out}"));
        }
        // The server runs until this process's end closes the shell's stdin; then the shell
        // stops it (a fast shutdown) and removes the folder. TCP only: no socket file, whose
        // path could outgrow the limit under a long temporary folder.
        let mut watch = shell(&format!(
            "'{bin}/postgres' -D '{data}' -p {port} -c listen_addresses=127.0.0.1 \
             -c unix_socket_directories='' \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=300 >'{log}' 2>&1 & pid=$!; \
             cat >/dev/null; kill -INT $pid; wait $pid; rm -rf '{dir}'",
            bin = bin.display(),
            data = data.display(),
            dir = dir.display(),
            log = log.display(),
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start postgres: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = || std::fs::read_to_string(&log).unwrap_or_default();
            if let Ok(Some(status)) = watch.try_wait() {
                return Err(format!("postgres stopped ({status}); its log:\n{}", log()));
            }
            if Instant::now() > deadline {
                let _ = watch.kill();
                return Err(format!(
                    "postgres did not listen within 30 s; its log:\n{}",
                    log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Listening is not yet taking connections ("the database system is starting up"):
        // wait until it is, so that every test may connect at once.
        loop {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .map_err(|e| format!("pg_isready: {e}"))?;
            if ready.success() {
                break;
            }
            if Instant::now() > deadline {
                let _ = watch.kill();
                return Err("postgres did not take connections within 30 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            url: format!("postgres://grantor@127.0.0.1:{port}/postgres"),
            _watch: Mutex::new(watch),
        })
    }
}
