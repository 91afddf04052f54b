//! The real peers the end-to-end tests run against: the `portcullis` binary itself,
//! `smtp-sink` as the downstream server, `dnsmasq` as the DNS server, `swaks` as the
//! client and a private Postfix instance. Each is a child process on loopback ports
//! in its own temporary folder, stopped when its handle is dropped.
//!
//! A missing peer fails the test with the install hint: `scripts/install-peers.sh`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// A loopback port nobody uses right now, for TCP and UDP. It is taken below the
/// kernel's ephemeral range (32768 and up), so the outgoing connections of other
/// tests running at the same time cannot land on it between this call and the
/// moment a peer binds it, and never handed out twice by one test process.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ (u64::from(std::process::id()) << 20);
    loop {
        // splitmix64 over a per-process sequence: distinct test processes spread out.
        let mut z = seed.wrapping_add(
            COUNTER
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let port = 20_000 + (z % 12_000) as u16;
        // Never the same port twice in one process: a gateway takes four in a
        // row, and none is bound yet when the next is chosen.
        static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
        {
            given.push(port);
            return port;
        }
    }
}

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: run scripts/install-peers.sh (the test suite does)");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Polls `f` until it is true; panics with `what` after `limit`. Only for waiting
/// on other processes; the limit is generous because the machine is shared.
pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn port_open(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A running gateway.
pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub smtp: u16,
    pub http: u16,
    pub submission: u16,
    pub submissions: u16,
    config_body: String,
    child: Option<Child>,
}

impl Gateway {
    /// Starts the binary with `[server]`, `[smtp]` listeners and `[http]` filled in;
    /// `extra` adds keys: it may contain a `[smtp.more]`-free `[smtp]` body through
    /// `smtp_extra`, and whole other sections.
    pub fn start(smtp_extra: &str, extra: &str) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let (smtp, http, submission, submissions) =
            (free_port(), free_port(), free_port(), free_port());
        let config_body = format!(
            "[server]\nhostname = \"gw.portcullis.test\"\ndata_dir = \"{data}\"\n\
             [smtp]\nlisten = [\"127.0.0.1:{smtp}\"]\nsubmission = [\"127.0.0.1:{submission}\"]\n\
             submissions = [\"127.0.0.1:{submissions}\"]\n{smtp_extra}\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\n{extra}\n",
            data = dir.path().join("data").display(),
        );
        let mut g = Gateway {
            dir,
            smtp,
            http,
            submission,
            submissions,
            config_body,
            child: None,
        };
        std::fs::write(g.config_path(), &g.config_body).expect("write config");
        g.spawn();
        g
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("portcullis.toml")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// Starts (or restarts) the process and waits for its HTTP listener.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("gateway.log"))
            .expect("log file");
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(self.config_path())
            .env("PORTCULLIS_LOG", "info,portcullis_smtp=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start portcullis");
        self.child = Some(child);
        let http = self.http;
        let smtp = self.smtp;
        let started = Instant::now();
        while !(port_open(http) && port_open(smtp)) {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("portcullis exited with {status} at start:\n{}", self.log());
            }
            if started.elapsed() > Duration::from_secs(30) {
                panic!("portcullis did not start listening:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// `kill -9`: no chance to flush or finish anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("kill");
        let start = Instant::now();
        loop {
            if let Some(s) = c.try_wait().expect("wait") {
                return s;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = c.kill();
                panic!("portcullis did not stop on SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `portcullis ARGS --config FILE`.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(self.config_path())
            .output()
            .expect("run portcullis")
    }

    /// `portcullis trace ... --format json` parsed.
    pub fn trace(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let mut all = vec!["trace"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--format", "json"]);
        let out = self.cli(&all);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "trace output is not JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// Waits until a trace query finds at least `n` messages.
    pub fn wait_trace(&self, args: &[&str], n: usize) -> Vec<serde_json::Value> {
        let mut found = Vec::new();
        wait_until(
            &format!("{n} trace entries for {args:?}"),
            Duration::from_secs(30),
            || {
                found = self.trace(args);
                found.len() >= n
            },
        );
        found
    }

    /// Waits until the message with this queue id has `status`.
    pub fn wait_status(&self, id: &str, status: &str) -> serde_json::Value {
        let mut last = serde_json::Value::Null;
        let limit = Duration::from_secs(60);
        let start = Instant::now();
        loop {
            if let Some(m) = self.trace(&["--id", id]).into_iter().next() {
                if m["status"] == status {
                    return m;
                }
                last = m;
            }
            if start.elapsed() > limit {
                panic!(
                    "{id} never became {status}; last trace: {last:#}\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A GET on the HTTP listener: (status, body).
    pub fn http_get(&self, path: &str) -> (u16, String) {
        http(self.http, "GET", path)
    }

    /// `swaks --server 127.0.0.1:SMTP ARGS`.
    pub fn swaks(&self, args: &[&str]) -> SwaksRun {
        swaks(self.smtp, args)
    }

    /// Sends `data` (a whole message, headers included) from `from` to `to`.
    pub fn send_message(&self, from: &str, to: &str, data: &str) -> SwaksRun {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(data.as_bytes()).expect("write message");
        let path = file.path().display().to_string();
        swaks(self.smtp, &["--from", from, "--to", to, "--data", &path])
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A minimal HTTP/1.1 exchange with `Connection: close`.
pub fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect http");
    write!(s, "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read");
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The transcript and exit status of one swaks run.
pub struct SwaksRun {
    pub ok: bool,
    pub transcript: String,
}

impl SwaksRun {
    /// The queue id from `250 2.0.0 Ok: queued as ID`.
    pub fn queue_id(&self) -> String {
        self.transcript
            .lines()
            .find_map(|l| l.split("queued as ").nth(1))
            .map(|id| id.trim().to_string())
            .unwrap_or_else(|| panic!("no queue id in:\n{}", self.transcript))
    }

    /// The trace id a refusal names (`... trace id ID` at the end of the reply).
    pub fn trace_id(&self) -> String {
        self.transcript
            .lines()
            .find_map(|l| l.rsplit_once("trace id ").map(|(_, id)| id))
            .map(|id| id.trim().trim_end_matches(')').to_string())
            .unwrap_or_else(|| panic!("no trace id in:\n{}", self.transcript))
    }

    /// Whether a server line (`<-` or `<~` in swaks' transcript) starts with `prefix`.
    pub fn server_said(&self, prefix: &str) -> bool {
        self.transcript.lines().any(|l| {
            // `<-` plain, `<~` under TLS, a `*` marks an error reply.
            let l = l.trim_start();
            l.strip_prefix('<')
                .map(|r| r.trim_start_matches(['-', '~', '*']))
                .is_some_and(|r| r.trim_start().starts_with(prefix))
        })
    }
}

pub fn swaks(port: u16, args: &[&str]) -> SwaksRun {
    let out = Command::new(tool("swaks"))
        .args(["--server", &format!("127.0.0.1:{port}"), "--timeout", "60"])
        .args(args)
        .output()
        .expect("run swaks");
    SwaksRun {
        ok: out.status.success(),
        transcript: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The contents of every file in `dir`, in name order (empty if it does not exist).
pub fn read_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

/// `smtp-sink`: a downstream SMTP (or LMTP) server that writes every message it
/// accepts to a file.
pub struct Sink {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    args: Vec<String>,
}

impl Sink {
    pub fn start(extra: &[&str]) -> Sink {
        Sink::start_on(free_port(), extra)
    }

    pub fn start_on(port: u16, extra: &[&str]) -> Sink {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Sink {
            port,
            dir,
            child: None,
            args: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(tool("smtp-sink"));
        if is_root() {
            cmd.args(["-u", "root"]);
        }
        cmd.args(&self.args)
            .arg("-d")
            .arg(format!("{}/%Y%m%d%H%M%S.", self.dir.path().display()))
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("256")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(cmd.spawn().expect("start smtp-sink"));
        let port = self.port;
        wait_until("smtp-sink to listen", Duration::from_secs(10), || {
            port_open(port)
        });
    }

    /// The messages received so far (each file holds smtp-sink's X- headers, then
    /// the message). smtp-sink creates its dump file when the transaction starts
    /// and writes it as data arrives, so a file it still holds open is skipped.
    pub fn messages(&self) -> Vec<String> {
        // List first, then ask which are open: a file created after the open
        // check would otherwise pass as closed while still empty.
        let mut files: Vec<_> = std::fs::read_dir(self.dir.path())
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        let open = self.files_held_open();
        files.retain(|p| !open.contains(p));
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }

    fn files_held_open(&self) -> Vec<PathBuf> {
        let Some(pid) = self.child.as_ref().map(|c| c.id()) else {
            return Vec::new();
        };
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .filter(|t| t.starts_with(self.dir.path()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until at least `n` messages arrived.
    pub fn wait_for(&self, n: usize) -> Vec<String> {
        // The snapshot that satisfied the wait is the one returned: a second
        // look could catch the sink in the middle of its next write.
        let mut got = Vec::new();
        wait_until(
            &format!("{n} message(s) at the sink"),
            Duration::from_secs(90),
            || {
                got = self.messages();
                got.len() >= n
            },
        );
        got
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private clamd on a free TCP port with a signature file made here: EICAR
/// and `clam.exe` from clamav-testfiles, as MD5 signatures (`sigtool --md5`).
/// Nothing is downloaded; the system's clamd, if any, is not touched.
pub struct Clamd {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

pub const EICAR: &str = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// A file from Debian's clamav-testfiles.
pub fn clam_testfile(name: &str) -> Vec<u8> {
    let path = Path::new("/usr/share/clamav-testfiles").join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; install clamav-testfiles (scripts/install-peers.sh does)",
            path.display()
        )
    })
}

impl Clamd {
    pub fn start() -> Clamd {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("db");
        std::fs::create_dir_all(&db).expect("db folder");
        let eicar = dir.path().join("eicar.com");
        std::fs::write(&eicar, EICAR).expect("eicar");
        let clam = dir.path().join("clam.exe");
        std::fs::write(&clam, clam_testfile("clam.exe")).expect("clam.exe");
        let mut hdb = String::new();
        for (file, name) in [
            (&eicar, "Portcullis-Test-EICAR"),
            (&clam, "Portcullis-Test-ClamExe"),
        ] {
            let out = Command::new(tool("sigtool"))
                .arg("--md5")
                .arg(file)
                .output()
                .expect("sigtool");
            let line = String::from_utf8_lossy(&out.stdout);
            let (sig, _) = line.trim().rsplit_once(':').expect("sigtool --md5 output");
            hdb.push_str(&format!("{sig}:{name}\n"));
        }
        std::fs::write(db.join("portcullis-test.hdb"), hdb).expect("hdb");
        let port = free_port();
        let conf = dir.path().join("clamd.conf");
        std::fs::write(
            &conf,
            format!(
                "Foreground yes\nDatabaseDirectory {}\nTCPSocket {port}\nTCPAddr 127.0.0.1\n\
                 LogFile {}\nPidFile {}\nUser {}\n",
                db.display(),
                dir.path().join("clamd.log").display(),
                dir.path().join("clamd.pid").display(),
                if is_root() { "root" } else { "nobody" },
            ),
        )
        .expect("clamd.conf");
        let mut c = Clamd {
            port,
            child: None,
            dir,
        };
        c.spawn();
        c
    }

    pub fn spawn(&mut self) {
        let conf = self.dir.path().join("clamd.conf");
        self.child = Some(
            Command::new(tool("clamd"))
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start clamd"),
        );
        let port = self.port;
        wait_until("clamd to answer PING", Duration::from_secs(60), || {
            let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                return false;
            };
            let _ = s.write_all(b"zPING\0");
            let mut buf = [0u8; 16];
            matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"PONG"))
        });
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// dnsmasq answering only from its command line.
pub struct Dns {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Dns {
    /// `records` are dnsmasq options such as `--mx-host=a.test,mx.a.test,10`.
    pub fn start(records: &[String]) -> Dns {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let child = Command::new(tool("dnsmasq"))
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--pid-file=",
                // Authoritative for the test zones: unknown names under .test get
                // NXDOMAIN as from a real server, not REFUSED.
                "--local=/test/",
            ])
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-facility={}",
                dir.path().join("dnsmasq.log").display()
            ))
            .args(records)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dnsmasq");
        // dnsmasq also listens on TCP on the same port.
        wait_until("dnsmasq to listen", Duration::from_secs(10), || {
            port_open(port)
        });
        Dns {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private Postfix instance relaying everything to 127.0.0.1:`next_hop`.
pub struct Postfix {
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Postfix {
    pub fn start(next_hop: u16) -> Postfix {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/peers/postfix-relay.sh");
        let out = Command::new("bash")
            .arg(&script)
            .args([
                "start",
                &dir.path().display().to_string(),
                &port.to_string(),
                &next_hop.to_string(),
            ])
            .output()
            .expect("run postfix-relay.sh");
        assert!(
            out.status.success(),
            "postfix did not start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Postfix { port, dir }
    }

    pub fn maillog(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/peers/postfix-relay.sh");
        let _ = Command::new("bash")
            .arg(script)
            .args(["stop", &self.dir.path().display().to_string()])
            .output();
    }
}

/// Speaks raw SMTP: for the byte-exact cases swaks cannot produce.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut r = Raw {
            stream,
            buf: Vec::new(),
        };
        let greeting = r.reply();
        assert!(greeting.starts_with("220"), "greeting: {greeting}");
        r
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads one complete (possibly multi-line) reply.
    pub fn reply(&mut self) -> String {
        let mut out = String::new();
        loop {
            let line = self.line();
            out.push_str(&line);
            out.push('\n');
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return out;
            }
        }
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..pos + 2).collect();
                return String::from_utf8_lossy(&line[..pos]).into_owned();
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).expect("read reply");
            assert!(
                n > 0,
                "connection closed; got so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends a command line and returns the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }
}

/// Accepts any certificate: the tests talk to the gateway's self-signed one.
#[derive(Debug)]
struct AnyCert(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Completes a TLS handshake on a socket after `220 Ready to start TLS`.
pub fn tls_client(stream: TcpStream) -> TlsStream {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("tls");
    rustls::StreamOwned::new(conn, stream)
}

/// One command over TLS; returns the complete reply.
pub fn tls_cmd(tls: &mut TlsStream, line: &str) -> String {
    tls.write_all(format!("{line}\r\n").as_bytes())
        .expect("write");
    tls.flush().expect("flush");
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        tls.read_exact(&mut byte).expect("read");
        out.push(byte[0]);
        if out.ends_with(b"\r\n") {
            let text = String::from_utf8_lossy(&out).into_owned();
            let last = text
                .trim_end()
                .rsplit("\r\n")
                .next()
                .unwrap_or("")
                .to_string();
            if last.len() < 4 || last.as_bytes()[3] != b'-' {
                return text;
            }
        }
    }
}

/// Debian's chromium, which the browser tests drive through playwright-core.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The repository's top folder.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// node, chromium and playwright-core (in `tests/browser`), or a failure that
/// says how to get them. Returns node's path.
pub fn browser_tools() -> PathBuf {
    let node = ["/usr/bin/node", "/usr/local/bin/node"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let folder = repo().join("tests/browser");
    let mut missing = Vec::new();
    if node.is_none() {
        missing.push("node (Debian's nodejs)".to_string());
    }
    if !Path::new(CHROMIUM).exists() {
        missing.push(format!("{CHROMIUM} (Debian's chromium)"));
    }
    if !folder
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        missing.push(format!(
            "playwright-core in {}/node_modules",
            folder.display()
        ));
    }
    assert!(
        missing.is_empty(),
        "the browser test cannot run: missing {}. Run scripts/install-peers.sh \
         (it installs chromium and nodejs and runs npm ci in tests/browser)",
        missing.join(", ")
    );
    node.expect("checked above")
}

/// The argon2 hash of `password`, as `portcullis hash-password` makes it.
pub fn password_hash(password: &str) -> String {
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("hash-password");
    writeln!(child.stdin.take().expect("stdin"), "{password}").expect("write");
    let out = child.wait_with_output().expect("hash-password ran");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An RSA key pair: (PKCS#8 PEM private key, base64 SubjectPublicKeyInfo).
pub fn rsa_key(dir: &std::path::Path) -> (String, String) {
    let key = dir.join("dkim.pem");
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (install it with scripts/install-peers.sh)")
        .success();
    assert!(ok, "openssl genpkey failed");
    let public = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl pkey -in {} -pubout -outform DER | base64 -w0",
            key.display()
        ))
        .output()
        .expect("openssl pkey");
    (
        std::fs::read_to_string(&key).expect("key"),
        String::from_utf8(public.stdout).expect("base64"),
    )
}

/// Configuration that sends the gateway's DNS questions to `dns` and delivers
/// mail for example.test to `sink`: where every test of the scanning path
/// starts.
pub fn resolve_and_deliver(dns: &Dns, sink: &Sink) -> String {
    format!(
        "[dns]\nservers = [\"127.0.0.1:{}\"]\n\
         [[domains]]\nname = \"example.test\"\ndeliver_to = \"smtp://127.0.0.1:{}\"\n",
        dns.port, sink.port
    )
}

/// dnsmasq TXT option with the value split into 200-byte strings (a TXT string
/// holds at most 255 bytes; DKIM joins them). No shell is involved, so the
/// strings are not quoted (dnsmasq would keep the quotes); commas separate them.
pub fn txt(name: &str, value: &str) -> String {
    assert!(!value.contains(','), "a comma would split the TXT value");
    let parts: Vec<String> = value
        .as_bytes()
        .chunks(200)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!("--txt-record={name},{}", parts.join(","))
}

/// `body` with a DKIM signature (RFC 6376) by `domain`, selector `s1`, with
/// the PKCS#8 PEM key `key_pem`, over From, To, Subject, Date and Message-ID.
pub fn dkim_signed(key_pem: &str, domain: &str, body: &str) -> String {
    use mail_auth::common::crypto::{RsaKey, Sha256};
    use mail_auth::common::headers::HeaderWriter;
    let der = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .expect("read key")
        .expect("a private key");
    let key = RsaKey::<Sha256>::from_key_der(der).expect("key");
    let signature = mail_auth::dkim::DkimSigner::from_key(key)
        .domain(domain)
        .selector("s1")
        .headers(["From", "To", "Subject", "Date", "Message-ID"])
        .sign(body.as_bytes())
        .expect("sign");
    format!("{}{body}", signature.to_header())
}
