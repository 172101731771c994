//! The real programs integration tests start (`redis-server`, `ffmpeg`, `percept serve`) and
//! what starting them takes: a program found where Debian installs it, the rule for one that
//! is missing, a free loopback port, and a child process that cannot outlive its test.
//!
//! Panics rather than returning errors: a program that cannot be started is a failed test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether a program a test needs (`what`) is installed (`found`). Under `CI=true` a missing
/// program is a failure, since scripts/test installs it there and a skip would hide one;
/// elsewhere the test is skipped, saying so.
pub fn installed_or_skip(what: &str, found: bool) -> bool {
    assert!(
        found || std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {what} is missing (scripts/test installs it)"
    );
    if !found {
        eprintln!("\n!!! SKIPPED: {what} is not installed (scripts/test installs it) !!!\n");
    }
    found
}

/// `program` on the `PATH`, else in `/usr/bin` or `/usr/sbin` (where Debian puts
/// `redis-server`, outside a normal user's `PATH`).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// `redis-server`'s path when the test can run; `None` (after [`installed_or_skip`]'s
/// message) when it must skip.
pub fn redis_or_skip() -> Option<PathBuf> {
    let found = find_program("redis-server");
    installed_or_skip("redis-server", found.is_some());
    found
}

/// A loopback port nothing listens on (the OS's pick, released at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
        .port()
}

/// A child process killed (SIGKILL) and reaped when dropped, so a failed test leaves nothing
/// running behind it.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `redis-server` (`binary`) on a free loopback port, without persistence, once it answers
/// `PING`; the process and its port.
pub fn start_redis(binary: &Path) -> (Killed, u16) {
    start_redis_on(binary, free_port())
}

/// [`start_redis`] on a given `port` (a test restarting Redis where its clients expect it).
pub fn start_redis_on(binary: &Path, port: u16) -> (Killed, u16) {
    let child = Command::new(binary)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    let redis = Killed(child);
    let started = Instant::now();
    while !answers_ping(port) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis-server did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (redis, port)
}

/// Whether a Redis server on loopback `port` answers `PING` with `+PONG`.
fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut reply = [0u8; 5];
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .is_ok()
        && stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG"
}
