//! Starts a private `redis-server` for a test: on a free loopback port, in its own temporary
//! folder, with an append-only file so that a restart keeps the data. Stopped when dropped.
//!
//! There is no silent skip: without `redis-server` on PATH the test fails and says how to
//! install it.
#![allow(dead_code)]
// Waiting for a real process needs the real clock.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    /// Whether writes go to an append-only file synced on every write, to survive restarts.
    durable: bool,
    /// More settings for `redis-server`, as `--name value` pairs.
    extra: Vec<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl RedisServer {
    /// A server that keeps its data across `restart` (append-only file, synced on every write).
    pub fn start() -> Self {
        Self::start_with(true)
    }

    /// A server that keeps data in memory only, as a cache would: for benchmarks, where a disk
    /// sync per write would hide the cost of a round trip.
    pub fn start_ephemeral() -> Self {
        Self::start_with(false)
    }

    /// A server started with more settings, e.g. `["--maxmemory-policy", "allkeys-lru"]`.
    pub fn start_configured(extra: &[&str]) -> Self {
        Self::start_inner(true, extra.iter().map(|s| (*s).to_owned()).collect())
    }

    fn start_with(durable: bool) -> Self {
        Self::start_inner(durable, Vec::new())
    }

    fn start_inner(durable: bool, extra: Vec<String>) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "grantor-redis-{}-{}",
            std::process::id(),
            grantor::FamilyId::generate()
        ));
        std::fs::create_dir_all(&dir).expect("temporary folder");
        let mut server = Self {
            child: None,
            port: free_port(),
            dir,
            durable,
            extra,
        };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.join("redis.log")).expect("log file");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", ""])
            .args(["--appendonly", if self.durable { "yes" } else { "no" }])
            .args(["--appendfsync", "always"])
            .args(["--daemonize", "no"])
            .args(&self.extra)
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not on PATH, and the Redis tests need it. Install it \
                 (Debian: `sudo apt-get install redis-server`) or run `bash .ci/test`, which \
                 installs it."
            ),
            Err(e) => panic!("could not start redis-server: {e}"),
        };
        self.child = Some(child);
        self.wait_until_ready();
    }

    fn command(&self, command: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .ok()?;
        stream.write_all(command.as_bytes()).ok()?;
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(buf.get(..n)?).into_owned())
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self
                .command("PING\r\n")
                .is_some_and(|r| r.starts_with("+PONG"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        panic!("redis-server did not answer PING within 20 s; its log:\n{log}");
    }

    /// Stops the server cleanly (the append-only file keeps every write).
    pub fn stop(&mut self) {
        let _ = self.command("SHUTDOWN\r\n");
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and folder.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Watches what a Redis server is sent (`redis-cli monitor`), between marks, to count round
/// trips: the commands the connections send, not those a script runs inside Redis.
pub struct Monitor {
    child: Child,
    reader: std::thread::JoinHandle<String>,
    marks: redis::aio::MultiplexedConnection,
    next: usize,
}

impl Monitor {
    /// Starts watching the server at `url` (needs `stdbuf` and `redis-cli`, from coreutils and
    /// redis-tools, which Debian's redis-server brings), and sets the first mark.
    pub async fn start(url: &str) -> Self {
        let port = url.rsplit(':').next().unwrap_or("6379").to_owned();
        // Line-buffered, so that nothing it saw is still in its buffer when it is stopped.
        let mut child = Command::new("stdbuf")
            .args(["-oL", "redis-cli", "-p", &port, "monitor"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("stdbuf and redis-cli (coreutils, redis-tools) on PATH");
        // Read as it comes: a full pipe would stall the monitor, and what it held would be lost.
        let mut stdout = child.stdout.take().expect("monitor stdout");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let marks = redis::Client::open(url)
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("redis connection");
        let mut monitor = Self {
            child,
            reader,
            marks,
            next: 0,
        };
        // Until the monitor is attached, what is sent goes unseen: wait until it sees a mark.
        tokio::time::sleep(Duration::from_millis(300)).await;
        monitor.mark().await;
        monitor
    }

    /// Sets a mark in what the monitor sees.
    pub async fn mark(&mut self) {
        let _: String = redis::cmd("ECHO")
            .arg(format!("grantor-mark-{}", self.next))
            .query_async(&mut self.marks)
            .await
            .expect("ECHO");
        self.next += 1;
    }

    /// Sets a last mark, stops, and answers the round trips seen between each mark and the
    /// next (the marks themselves not counted).
    pub async fn stop(mut self) -> Vec<usize> {
        self.mark().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = self.child.kill();
        let _ = self.child.wait();
        let text = self.reader.join().expect("monitor reader");
        let mut counts = vec![0; self.next.saturating_sub(1)];
        let mut current: Option<usize> = None;
        for line in text.lines() {
            if let Some(mark) = line
                .split("grantor-mark-")
                .nth(1)
                .and_then(|rest| rest.trim_end_matches('"').parse::<usize>().ok())
            {
                current = Some(mark);
            } else if !line.contains(" lua]") {
                if let Some(count) = current.and_then(|m| counts.get_mut(m)) {
                    *count += 1;
                }
            }
        }
        counts
    }
}
