//! `portcullis probe https://mail.example.com [--smtp HOST[:PORT]] [--ca FILE]
//! [--insecure] [--format text|json]`: asks one server the administrator names
//! which mail server software it runs, and prints the version catalogue's
//! verdict on it (the same catalogue and wording as `portcullis senders`).
//!
//! # What it reads
//!
//! - Over HTTPS (RFC 9110 semantics, RFC 9112 HTTP/1.1 messages), the Outlook
//!   on the web logon page of Exchange: `GET /owa/`, following the redirect
//!   Exchange answers with (`/owa/auth/logon.aspx?replaceCurrent=1&url=…` on
//!   2013 to SE, `/owa/auth/logon.aspx?url=…&reason=0` on 2010) at most
//!   [`MAX_REDIRECTS`] times and only on the same host and port; if that
//!   shows nothing, one `GET /owa/auth/logon.aspx?replaceCurrent=1&url=…`
//!   directly. From each response:
//!   - the `X-OWA-Version` header: the full build (`15.1.2507.6`), security
//!     update included; it wins when present;
//!   - the versioned resource paths of the page: `/owa/auth/15.1.2507/themes/…`
//!     (2013 and later: three parts, the cumulative update only),
//!     `/owa/14.3.513.0/themes/…` (2010) and `/owa/8.3.517.0/themes/…` (2007).
//!
//!   A three-part path names a cumulative update (CU) but not its security
//!   update (SU) level. It is judged as the CU's *first* release in the
//!   catalogue (its RTM build): the oldest build the server can be, whose
//!   fixes it certainly has. Each named flaw is then "yes" only if even the
//!   CU's newest SU in the catalogue lacks the fix, "no" if the CU's first
//!   release already has it, and "unknown" in between (a later SU of that CU
//!   fixed it, and the page cannot show whether it is installed). The status
//!   is the first release's, with the status the CU would have with every SU
//!   given beside it: a page path alone never proves a server current.
//!   (Judging the bare `15.1.2507` instead would place it before the CU's
//!   RTM, crediting it with nothing the CU shipped.)
//! - With `--smtp HOST[:PORT]` (port 25 by default), the SMTP greeting and the
//!   EHLO reply (RFC 5321 §4.2, §4.3.1), then `QUIT`: Exchange 2000/2003's
//!   `Microsoft ESMTP MAIL Service, Version: 6.0.3790.x` (the IIS SMTP
//!   service's version), Exim's `ESMTP Exim 4.96`, Sendmail's `ESMTP Sendmail
//!   8.15.2/8.15.2`, and whatever else
//!   [`portcullis_senders::identify::recognise_text`] knows. Exchange 2007
//!   and later (`Microsoft ESMTP MAIL Service ready at …`) and Postfix name no
//!   version: the probe says so.
//!
//! Every fact printed says where it came from (header, page path, banner).
//!
//! # Exit status
//!
//! 3 when anything found is outdated, vulnerable or unsupported (even if
//! another part of the probe failed: the finding stands); otherwise 1 when a
//! part failed (connection, TLS, malformed answer: a message says which);
//! otherwise 0 when what was found is current, 4 when nothing was recognised;
//! 2 for a bad command line or configuration, as every command.
//!
//! # Security posture
//!
//! Opt-in and narrow: it runs only when an administrator asks, talks only to
//! the host in the URL (and the `--smtp` host), follows redirects only on that
//! same host and port, and sends nothing but `GET` requests (no credentials,
//! no body) and SMTP `EHLO` and `QUIT`: no mail, no authentication. The
//! server's certificate is checked by default against the system's roots
//! (`/etc/ssl/certs/ca-certificates.crt`) or `--ca FILE`; `--insecure` skips
//! the check (self-signed Exchange installs are common) with a loud warning,
//! since anyone on the path could then answer. Everything is bounded: 10 s to
//! connect, for the TLS handshake and for each read, 30 s per exchange, at
//! most [`MAX_RESPONSE_BYTES`] of each HTTP response and
//! [`MAX_SMTP_REPLY_BYTES`] of each SMTP reply; what the server says is
//! untrusted text, cut and stripped of control characters before printing.

use crate::cli_senders::print_classification;
use crate::config::Config;
use anyhow::{anyhow, Context, Result};
use portcullis_senders::catalog::{Catalog, Classification, Date};
use portcullis_senders::{identify, site_catalog, Product, Software, Version};
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connecting, the TLS handshake, and each read.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// One whole request and response, or one SMTP reply.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// The most bytes of one HTTP response read (head and body).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// The most redirects followed, all on the URL's own host and port.
pub const MAX_REDIRECTS: usize = 3;
/// The most bytes of one SMTP reply read.
pub const MAX_SMTP_REPLY_BYTES: usize = 64 * 1024;
/// The most lines of one SMTP reply.
const MAX_SMTP_LINES: usize = 100;
/// The longest SMTP reply line accepted (RFC 5321 §4.5.3.1.5 says 512).
const MAX_SMTP_LINE: usize = 4096;
/// The longest piece of server text printed.
const SHOWN_CHARS: usize = 300;
/// Where the system's trusted roots are, first found wins.
const SYSTEM_ROOTS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];
/// Outlook on the web's start page; Exchange redirects it to the logon page.
const OWA_START: &str = "/owa/";
/// The forms-based logon page of Exchange 2010 to SE.
const OWA_LOGON: &str = "/owa/auth/logon.aspx";

#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// The server's HTTPS address, e.g. https://mail.example.com (only its
    /// host and port are used: the probe reads /owa/ there).
    pub url: String,
    /// Also read this server's SMTP greeting and EHLO reply (then QUIT; no
    /// mail is sent). Port 25 unless given.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub smtp: Option<String>,
    /// Trust the certificates in this PEM file instead of the system's roots.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Do not check the server's certificate (self-signed installs). Anyone
    /// on the path could answer instead.
    #[arg(long, conflicts_with = "ca")]
    pub insecure: bool,
    /// `text` or `json` (one object).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

pub fn run(config: &Config, args: &ProbeArgs) -> Result<ExitCode> {
    let usage = |message: String| {
        eprintln!("portcullis: {message}");
        Ok(ExitCode::from(2))
    };
    let origin = match parse_url(&args.url) {
        Ok(o) => o,
        Err(e) => return usage(format!("{}: {e}", shown(&args.url))),
    };
    let smtp = match args.smtp.as_deref().map(|s| parse_authority(s, 25)) {
        None => None,
        Some(Ok(target)) => Some(target),
        Some(Err(e)) => {
            return usage(format!(
                "--smtp {}: {e}",
                shown(args.smtp.as_deref().unwrap_or_default())
            ))
        }
    };
    let trust = if args.insecure {
        Trust::Insecure
    } else {
        match load_roots(args.ca.as_deref()) {
            Ok(t) => t,
            Err(e) => return usage(format!("{e:#}")),
        }
    };
    let catalog = site_catalog::load(&config.server.data_dir)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let today = Date::from_unix_secs(now);
    if let Trust::Insecure = trust {
        eprintln!(
            "portcullis: WARNING: --insecure: the certificate of {} is NOT checked; anyone on the \
             network path could answer in its place, and what follows may be theirs",
            origin.authority()
        );
    }
    let tls = client_config(&trust)?;
    let helo = config.server.hostname.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (https, smtp) = runtime.block_on(async {
        let https = probe_https(&origin, tls, &catalog, today).await;
        let smtp = match smtp {
            Some((host, port)) => Some(probe_smtp(&host, port, &helo, &catalog, today).await),
            None => None,
        };
        (https, smtp)
    });
    let parts: Vec<&Part> = std::iter::once(&https).chain(smtp.as_ref()).collect();
    let code = exit_code(&parts);
    for part in &parts {
        if let Some(e) = &part.error {
            eprintln!("portcullis: {}: {e}", part.target);
        }
    }
    if args.format == "json" {
        let out = serde_json::json!({
            "url": origin.url("/"),
            "certificate_checked": !matches!(trust, Trust::Insecure),
            "https": https.to_json(),
            "smtp": smtp.as_ref().map(Part::to_json),
            "exit_status": code,
            "result": result_text(code),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let trust_text = match &trust {
            Trust::Insecure => "certificate NOT checked: --insecure".to_string(),
            Trust::Roots { from, .. } => format!("certificate checked against {from}"),
        };
        println!("probe of {} ({trust_text})", origin.url("/"));
        for part in &parts {
            println!();
            part.print_text();
        }
        println!();
        println!("result: {} (exit status {code})", result_text(code));
    }
    Ok(ExitCode::from(code))
}

fn exit_code(parts: &[&Part]) -> u8 {
    let findings = || parts.iter().filter_map(|p| p.finding.as_ref());
    if findings().any(|f| f.classification.status.is_enforced()) {
        3
    } else if parts.iter().any(|p| p.error.is_some()) {
        1
    } else if findings().next().is_some() {
        0
    } else {
        4
    }
}

fn result_text(code: u8) -> &'static str {
    match code {
        0 => "what was found is current",
        3 => "outdated, vulnerable or unsupported software found",
        4 => "no server software recognised",
        _ => "the probe failed",
    }
}

// ---------------------------------------------------------------------------
// Addresses

/// The URL's scheme-less origin: host (IPv6 without brackets, lower case) and
/// port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    host: String,
    port: u16,
}

impl Origin {
    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 443 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.authority())
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `https://host[:port][/anything]`: the origin to probe.
fn parse_url(url: &str) -> Result<Origin, String> {
    let url = url.trim();
    let rest = match strip_prefix_ignore_case(url, "https://") {
        Some(rest) => rest,
        None if strip_prefix_ignore_case(url, "http://").is_some() => {
            return Err("write an https:// URL (Outlook on the web is served over HTTPS)".into())
        }
        None => return Err("not an https:// URL (write https://mail.example.com)".into()),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains('@') {
        return Err("a URL with credentials is refused".into());
    }
    let (host, port) = parse_authority(authority, 443)?;
    Ok(Origin { host, port })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
fn parse_authority(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let text = text.trim();
    let port_of = |p: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{} is not a port", shown(p))),
        }
    };
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or("unclosed [ in the address")?;
        inside
            .parse::<Ipv6Addr>()
            .map_err(|_| format!("[{}] is not an IPv6 address", shown(inside)))?;
        let port = match after {
            "" => default_port,
            p => port_of(p.strip_prefix(':').ok_or("junk after ]")?)?,
        };
        (inside.to_string(), port)
    } else if text.parse::<Ipv6Addr>().is_ok() {
        (text.to_string(), default_port)
    } else {
        match text.split_once(':') {
            Some((h, p)) => (h.to_string(), port_of(p)?),
            None => (text.to_string(), default_port),
        }
    };
    let valid_name = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':');
    if !valid_name {
        return Err("no valid host name".into());
    }
    Ok((host.to_ascii_lowercase(), port))
}

/// Where a redirect's `Location` leads, as a path on the same origin; an
/// error (the redirect is not followed) for another host, port or scheme.
fn redirect_path(origin: &Origin, current: &str, location: &str) -> Result<String, String> {
    let location = location.trim();
    let path = if let Some(rest) =
        strip_prefix_ignore_case(location, "https://").or_else(|| location.strip_prefix("//"))
    {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (host, port) = parse_authority(&rest[..end], 443)?;
        if !host.eq_ignore_ascii_case(&origin.host) || port != origin.port {
            return Err(format!(
                "leads to another host ({}); only {} is probed",
                shown(location),
                origin.authority()
            ));
        }
        match &rest[end..] {
            p if p.starts_with('/') => p.to_string(),
            p => format!("/{p}"),
        }
    } else if location.contains("://") {
        return Err(format!(
            "leads away from HTTPS ({}); not followed",
            shown(location)
        ));
    } else if location.starts_with('/') {
        location.to_string()
    } else {
        let base = current.split(['?', '#']).next().unwrap_or("/");
        let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
        format!("{dir}{location}")
    };
    let path = path.split('#').next().unwrap_or_default().to_string();
    if path.len() > 2048 || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!("leads to an unusable path ({})", shown(&path)));
    }
    Ok(path)
}

/// The logon page Exchange 2013 to SE redirects `/owa/` to.
fn logon_path(origin: &Origin) -> String {
    let back = origin.url(OWA_START);
    let mut encoded = String::new();
    for b in back.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02x}"));
        }
    }
    format!("{OWA_LOGON}?replaceCurrent=1&url={encoded}")
}

/// Server text made safe to print: control characters replaced, cut to
/// [`SHOWN_CHARS`] characters.
fn shown(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(SHOWN_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(SHOWN_CHARS).is_some() {
        out.push('…');
    }
    out
}

// ---------------------------------------------------------------------------
// TLS

enum Trust {
    Roots {
        roots: rustls::RootCertStore,
        from: String,
    },
    Insecure,
}

fn load_roots(ca: Option<&Path>) -> Result<Trust> {
    let path = match ca {
        Some(p) => p.to_path_buf(),
        None => SYSTEM_ROOTS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or_else(|| {
                anyhow!(
                    "no system certificate authorities found ({}); give --ca FILE",
                    SYSTEM_ROOTS.join(", ")
                )
            })?,
    };
    let pem = std::fs::read(&path)
        .with_context(|| format!("cannot read the certificates in {}", path.display()))?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    anyhow::ensure!(added > 0, "{} holds no usable certificate", path.display());
    Ok(Trust::Roots {
        roots,
        from: path.display().to_string(),
    })
}

fn client_config(trust: &Trust) -> Result<Arc<rustls::ClientConfig>> {
    match trust {
        Trust::Roots { roots, .. } => {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .context("TLS protocol versions")?
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            Ok(Arc::new(config))
        }
        // Accepts any certificate, but still checks that the server holds
        // the key of the one it showed.
        Trust::Insecure => Ok(portcullis_smtp::client::insecure_client_config()),
    }
}

/// A TLS failure in words an administrator acts on.
fn tls_error(origin: &Origin, e: &std::io::Error) -> String {
    use rustls::CertificateError as C;
    let hint = "give --ca FILE to trust a private authority, or --insecure to skip the check";
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    let host = origin.authority();
    match inner {
        Some(rustls::Error::InvalidCertificate(c)) => {
            let what = match c {
                C::UnknownIssuer => "is not signed by an authority this probe trusts".to_string(),
                C::NotValidForName => format!("is not valid for the name {}", origin.host),
                C::Expired => "has expired".to_string(),
                C::NotValidYet => "is not valid yet".to_string(),
                C::Revoked => "is revoked".to_string(),
                C::BadSignature => "has a bad signature".to_string(),
                other => format!("was refused ({other:?})"),
            };
            format!("TLS: the certificate of {host} {what}; {hint}")
        }
        Some(other) => format!("TLS handshake with {host} failed: {other}"),
        None => format!("TLS handshake with {host} failed: {e}"),
    }
}

// ---------------------------------------------------------------------------
// HTTP

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    truncated: bool,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let shown_target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    match tokio::time::timeout(TIMEOUT, TcpStream::connect((host, port))).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("cannot connect to {shown_target}: {e}")),
        Err(_) => Err(format!(
            "timed out connecting to {shown_target} (after {} s)",
            TIMEOUT.as_secs()
        )),
    }
}

/// One `GET` on a new connection (`Connection: close`), the response read
/// within the bounds.
async fn get(
    origin: &Origin,
    tls: &Arc<rustls::ClientConfig>,
    path: &str,
) -> Result<Response, String> {
    let tcp = connect(&origin.host, origin.port).await?;
    let name = ServerName::try_from(origin.host.clone())
        .map_err(|_| format!("{} is not a usable TLS server name", origin.host))?;
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    let mut stream = match tokio::time::timeout(TIMEOUT, connector.connect(name, tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(tls_error(origin, &e)),
        Err(_) => {
            return Err(format!(
                "TLS handshake with {} timed out (after {} s)",
                origin.authority(),
                TIMEOUT.as_secs()
            ))
        }
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: portcullis-probe/{}\r\n\
         Accept: text/html\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
        origin.authority(),
        env!("CARGO_PKG_VERSION")
    );
    let url = origin.url(path);
    let exchange = async {
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("sending the request: {e}"))?;
        stream
            .flush()
            .await
            .map_err(|e| format!("sending the request: {e}"))?;
        read_response(&mut stream).await
    };
    let (buf, truncated) = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
        .await
        .map_err(|_| {
            format!(
                "{}: no complete answer within {} s",
                shown(&url),
                EXCHANGE_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("{}: {e}", shown(&url)))?;
    parse_response(&buf, truncated).map_err(|e| format!("{}: {e}", shown(&url)))
}

/// Reads until the server closes, the response is complete, or
/// [`MAX_RESPONSE_BYTES`] (then `truncated`).
async fn read_response<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(Vec<u8>, bool), String> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        if response_complete(&buf) {
            return Ok((buf, false));
        }
        let n = match tokio::time::timeout(TIMEOUT, stream.read(&mut chunk)).await {
            Err(_) => return Err(format!("no data for {} s", TIMEOUT.as_secs())),
            Ok(Ok(n)) => n,
            // Many servers close without TLS close_notify; what came is kept.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => 0,
            Ok(Err(e)) => return Err(format!("reading the response: {e}")),
        };
        if n == 0 {
            return Ok((buf, false));
        }
        let room = MAX_RESPONSE_BYTES - buf.len();
        if n >= room {
            buf.extend_from_slice(&chunk[..room]);
            return Ok((buf, true));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether `buf` holds a whole response by its framing (RFC 9112 §6.3).
fn response_complete(buf: &[u8]) -> bool {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let body = &buf[end + 4..];
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if status == 204 || status == 304 {
        return true;
    }
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            return body.ends_with(b"\r\n0\r\n\r\n") || body.starts_with(b"0\r\n\r\n");
        }
        if name.eq_ignore_ascii_case("content-length") {
            return value.trim().parse::<usize>().is_ok_and(|n| body.len() >= n);
        }
    }
    false
}

fn parse_response(buf: &[u8], truncated: bool) -> Result<Response, String> {
    if buf.is_empty() {
        return Err("the server closed the connection without answering".into());
    }
    let (head, body) = match find(buf, b"\r\n\r\n") {
        Some(end) => (&buf[..end], &buf[end + 4..]),
        None if truncated => return Err("a response head over the size limit".into()),
        None => (buf, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut words = status_line.split_whitespace();
    let version = words.next().unwrap_or_default();
    let status = words
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..600).contains(s));
    let Some(status) = status.filter(|_| version.starts_with("HTTP/1.")) else {
        return Err(format!("not an HTTP/1.1 response ({})", shown(status_line)));
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut response = Response {
        status,
        headers,
        body: body.to_vec(),
        truncated,
    };
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        response.body = dechunk(&response.body);
    } else if let Some(n) = response
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        response.body.truncate(n);
    }
    Ok(response)
}

/// The body of a chunked message (RFC 9112 §7.1); what arrived of a cut one.
fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = find(s, b"\r\n") {
        let size = String::from_utf8_lossy(&s[..eol]);
        let size = size.split(';').next().unwrap_or_default().trim();
        let Ok(n) = usize::from_str_radix(size, 16) else {
            break;
        };
        let rest = &s[eol + 2..];
        if n == 0 {
            break;
        }
        let take = n.min(rest.len());
        out.extend_from_slice(&rest[..take]);
        if take < n {
            break;
        }
        s = &rest[n..];
        s = s.strip_prefix(b"\r\n").unwrap_or(s);
    }
    out
}

// ---------------------------------------------------------------------------
// What Exchange shows

/// A version Exchange showed, and where.
#[derive(Debug, Clone)]
struct Seen {
    version: Version,
    /// "X-OWA-Version header", "page path /owa/auth/15.1.2507/".
    what: String,
    /// The URL of the response.
    at: String,
    header: bool,
}

/// Whether `v` looks like an Exchange build: 8 (2007), 14 (2010) or 15
/// (2013 and later), three or four parts.
fn plausible_exchange(v: &Version) -> bool {
    (3..=4).contains(&v.parts().len()) && matches!(v.parts()[0], 8 | 14 | 15)
}

/// The versioned resource paths in a page: `/owa/auth/15.1.2507/…`,
/// `/owa/14.3.513.0/…`, `/owa/8.3.517.0/…`, as (version, path prefix), in
/// page order, each distinct once.
fn owa_paths(body: &str) -> Vec<(Version, String)> {
    let lower = body.to_ascii_lowercase();
    let mut out: Vec<(Version, String)> = Vec::new();
    for (i, _) in lower.match_indices("/owa/") {
        let mut at = i + "/owa/".len();
        if lower[at..].starts_with("auth/") {
            at += "auth/".len();
        }
        let digits = lower[at..]
            .bytes()
            .take(40)
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if digits == 0 || !lower[at + digits..].starts_with('/') {
            continue;
        }
        let text = &lower[at..at + digits];
        let Some(v) = Version::parse(text).filter(plausible_exchange) else {
            continue;
        };
        let path = lower[i..=at + digits].to_string();
        if !out.iter().any(|(_, p)| *p == path) {
            out.push((v, path));
        }
    }
    out
}

/// What the responses of one HTTPS probe showed.
fn evidence_of(response: &Response, url: &str) -> Vec<Seen> {
    let mut seen = Vec::new();
    if let Some(value) = response.header("x-owa-version") {
        if let Some(v) = Version::parse(value.trim()).filter(plausible_exchange) {
            seen.push(Seen {
                version: v,
                what: "X-OWA-Version header".into(),
                at: url.to_string(),
                header: true,
            });
        }
    }
    let body = String::from_utf8_lossy(&response.body);
    for (v, path) in owa_paths(&body) {
        seen.push(Seen {
            version: v,
            what: format!("page path {path}"),
            at: url.to_string(),
            header: false,
        });
    }
    seen
}

/// The best of what was seen: a header, else the most precise path (four
/// parts before three), else the highest.
fn best(seen: &[Seen]) -> Option<&Seen> {
    seen.iter().max_by(|a, b| {
        (a.header, a.version.parts().len(), &a.version).cmp(&(
            b.header,
            b.version.parts().len(),
            &b.version,
        ))
    })
}

// ---------------------------------------------------------------------------
// Judging

/// The catalogue's verdict on what one part of the probe found.
struct Finding {
    /// Where the version came from, for the reader.
    source: String,
    /// The version as the server showed it.
    seen: String,
    /// Whether the full build was seen (not only an Exchange CU).
    exact: bool,
    classification: Classification,
    /// With every security update of the CU (three-part versions only).
    cu_latest: Option<Classification>,
    /// `None`: unknown (the CU's SU level decides).
    proxylogon: Option<bool>,
    proxyshell: Option<bool>,
    note: Option<String>,
}

fn judge(catalog: &Catalog, software: Software, source: String, today: Date) -> Finding {
    let seen = software.version.to_string();
    let three_part_exchange =
        software.product == Product::Exchange && software.version.parts().len() == 3;
    if three_part_exchange {
        let cu: Vec<_> = catalog
            .releases()
            .iter()
            .filter(|r| {
                r.product == Product::Exchange
                    && r.build.parts().len() > 3
                    && r.build.starts_with(&software.version)
                    && r.released.is_none_or(|d| d <= today)
            })
            .collect();
        if let (Some(first), Some(last)) = (cu.first(), cu.last()) {
            let at = |r: &portcullis_senders::catalog::Release| {
                catalog.classify(
                    &Software {
                        product: Product::Exchange,
                        version: r.build.clone(),
                    },
                    today,
                )
            };
            let c = at(first);
            let newest = at(last);
            let flag = |oldest: bool, newest: bool| match (oldest, newest) {
                (false, _) => Some(false),
                (true, true) => Some(true),
                (true, false) => None,
            };
            let note = format!(
                "the page shows the cumulative update ({seen}) but not its security update level: \
                 judged as the CU's first release in the catalogue, {} ({}), the oldest build it \
                 can be; with every security update of this CU ({} ({})) it would be {}",
                first.build,
                first.name,
                last.build,
                last.name,
                newest.status.as_str()
            );
            return Finding {
                source,
                seen,
                exact: false,
                proxylogon: flag(c.predates_proxylogon(), newest.predates_proxylogon()),
                proxyshell: flag(c.predates_proxyshell(), newest.predates_proxyshell()),
                classification: c,
                cu_latest: Some(newest),
                note: Some(note),
            };
        }
        let c = catalog.classify(&software, today);
        return Finding {
            source,
            seen: seen.clone(),
            exact: false,
            proxylogon: Some(c.predates_proxylogon()),
            proxyshell: Some(c.predates_proxyshell()),
            classification: c,
            cu_latest: None,
            note: Some(format!(
                "the page shows the cumulative update ({seen}) but not its security update \
                 level, and the catalogue lists no release of that CU: judged as it stands"
            )),
        };
    }
    let c = catalog.classify(&software, today);
    Finding {
        source,
        seen,
        exact: true,
        proxylogon: Some(c.predates_proxylogon()),
        proxyshell: Some(c.predates_proxyshell()),
        classification: c,
        cu_latest: None,
        note: None,
    }
}

fn yes_no(flag: Option<bool>) -> &'static str {
    match flag {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown (the CU's first release lacks the fixes; a later security update of this CU has them, and the page cannot show whether it is installed)",
    }
}

// ---------------------------------------------------------------------------
// One part of the probe, and its report

struct Part {
    kind: &'static str,
    /// What was probed: the URL or `host:port`.
    target: String,
    /// What was sent and what came back, one line each.
    steps: Vec<String>,
    /// Versions or banners seen, with where.
    evidence: Vec<(String, String, String)>,
    finding: Option<Finding>,
    notes: Vec<String>,
    error: Option<String>,
}

impl Part {
    fn new(kind: &'static str, target: String) -> Part {
        Part {
            kind,
            target,
            steps: Vec::new(),
            evidence: Vec::new(),
            finding: None,
            notes: Vec::new(),
            error: None,
        }
    }

    fn print_text(&self) {
        println!("== {}: {} ==", self.kind.to_uppercase(), self.target);
        for s in &self.steps {
            println!("{s}");
        }
        for (what, value, at) in &self.evidence {
            println!("seen: {what}: {value} (at {at})");
        }
        if let Some(f) = &self.finding {
            println!(
                "found: {} {}, from the {}",
                f.classification.software.product, f.seen, f.source
            );
            if let Some(n) = &f.note {
                println!("note: {n}");
            }
            print_classification(&f.classification);
            if let Some(latest) = &f.cu_latest {
                println!(
                    "with every security update of this CU: {} ({})",
                    latest.status.as_str(),
                    latest.software.version
                );
            }
            if f.classification.software.product == Product::Exchange {
                println!(
                    "predates the ProxyLogon fixes (CVE-2021-26855 and related): {}",
                    yes_no(f.proxylogon)
                );
                println!(
                    "predates the ProxyShell fixes (CVE-2021-34473 and related): {}",
                    yes_no(f.proxyshell)
                );
            }
        }
        for n in &self.notes {
            println!("note: {n}");
        }
        if let Some(e) = &self.error {
            println!("error: {e}");
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let finding = self.finding.as_ref().map(|f| {
            let exchange = f.classification.software.product == Product::Exchange;
            serde_json::json!({
                "software": f.classification.software.to_string(),
                "product": f.classification.software.product.key(),
                "seen": f.seen,
                "exact_build": f.exact,
                "source": f.source,
                "note": f.note,
                "classification": f.classification,
                "with_every_cu_security_update": f.cu_latest.as_ref().map(|c| c.status),
                "predates_proxylogon": if exchange { serde_json::json!(f.proxylogon) } else { serde_json::Value::Null },
                "predates_proxyshell": if exchange { serde_json::json!(f.proxyshell) } else { serde_json::Value::Null },
            })
        });
        serde_json::json!({
            "target": self.target,
            "steps": self.steps,
            "evidence": self.evidence.iter().map(|(what, value, at)| serde_json::json!({
                "what": what, "value": value, "at": at,
            })).collect::<Vec<_>>(),
            "found": finding,
            "notes": self.notes,
            "error": self.error,
        })
    }
}

// ---------------------------------------------------------------------------
// The HTTPS probe

async fn probe_https(
    origin: &Origin,
    tls: Arc<rustls::ClientConfig>,
    catalog: &Catalog,
    today: Date,
) -> Part {
    let mut part = Part::new("https", origin.url("/"));
    let mut seen: Vec<Seen> = Vec::new();
    let mut path = OWA_START.to_string();
    let mut redirects = 0;
    let mut fetched_logon = false;
    let mut last_error = None;
    loop {
        fetched_logon |= path.starts_with(OWA_LOGON);
        match get(origin, &tls, &path).await {
            Err(e) => {
                last_error = Some(e);
                break;
            }
            Ok(response) => {
                let url = origin.url(&path);
                seen.extend(evidence_of(&response, &shown(&url)));
                let mut step = format!("GET {} -> {}", shown(&path), response.status);
                if response.truncated {
                    step.push_str(&format!(" (cut at {MAX_RESPONSE_BYTES} bytes)"));
                }
                let location = response.header("location").map(str::to_string);
                match location {
                    Some(loc) if (300..400).contains(&response.status) => {
                        step.push_str(&format!(", redirect to {}", shown(&loc)));
                        part.steps.push(step);
                        if redirects >= MAX_REDIRECTS {
                            part.notes.push(format!(
                                "more than {MAX_REDIRECTS} redirects: not followed further"
                            ));
                            break;
                        }
                        match redirect_path(origin, &path, &loc) {
                            Ok(next) => {
                                redirects += 1;
                                path = next;
                            }
                            Err(why) => {
                                part.notes.push(format!("the redirect {why}"));
                                break;
                            }
                        }
                    }
                    _ => {
                        part.steps.push(step);
                        break;
                    }
                }
            }
        }
    }
    // Nothing shown (Windows authentication on /owa/, a redirect elsewhere),
    // but the server answers: ask the logon page itself, once.
    if seen.is_empty() && !fetched_logon && last_error.is_none() {
        let logon = logon_path(origin);
        match get(origin, &tls, &logon).await {
            Ok(response) => {
                let url = origin.url(&logon);
                seen.extend(evidence_of(&response, &shown(&url)));
                part.steps
                    .push(format!("GET {} -> {}", shown(&logon), response.status));
            }
            Err(e) => last_error = Some(e),
        }
    }
    for s in &seen {
        part.evidence
            .push((s.what.clone(), s.version.to_string(), s.at.clone()));
    }
    match best(&seen) {
        Some(chosen) => {
            let software = Software {
                product: Product::Exchange,
                version: chosen.version.clone(),
            };
            let source = format!("{} of {}", chosen.what, chosen.at);
            for other in &seen {
                if !other.version.starts_with(&chosen.version)
                    && !chosen.version.starts_with(&other.version)
                {
                    part.notes.push(format!(
                        "the {} shows {}, which disagrees with the {} ({}); the latter is judged",
                        other.what, other.version, chosen.what, chosen.version
                    ));
                }
            }
            part.finding = Some(judge(catalog, software, source, today));
        }
        None if last_error.is_none() => part.notes.push(
            "no Exchange version shown (no X-OWA-Version header, no versioned /owa/ paths): \
             not Outlook on the web, or its build is hidden"
                .into(),
        ),
        None => {}
    }
    part.error = last_error;
    part
}

// ---------------------------------------------------------------------------
// The SMTP probe

struct SmtpReader<S> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> SmtpReader<S> {
    /// One reply (RFC 5321 §4.2): its code and lines, shown-safe.
    async fn reply(&mut self) -> Result<(u16, Vec<String>), String> {
        let read = async {
            let mut lines = Vec::new();
            let mut total = 0usize;
            loop {
                if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                    let raw: Vec<u8> = self.buf.drain(..=pos).collect();
                    let text = String::from_utf8_lossy(&raw);
                    let text = text.trim_end_matches(['\r', '\n']);
                    let b = text.as_bytes();
                    let code = (b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit))
                        .then(|| text[..3].parse::<u16>().ok())
                        .flatten();
                    let Some(code) = code else {
                        return Err(format!("not an SMTP reply: {}", shown(text)));
                    };
                    lines.push(shown(text));
                    match b.get(3) {
                        None | Some(b' ') => return Ok((code, lines)),
                        Some(b'-') if lines.len() < MAX_SMTP_LINES => continue,
                        Some(b'-') => {
                            return Err(format!("a reply of over {MAX_SMTP_LINES} lines"))
                        }
                        Some(_) => return Err(format!("not an SMTP reply: {}", shown(text))),
                    }
                }
                if self.buf.len() > MAX_SMTP_LINE {
                    return Err(format!("a reply line over {MAX_SMTP_LINE} bytes"));
                }
                let mut chunk = [0u8; 4096];
                let n = match tokio::time::timeout(TIMEOUT, self.stream.read(&mut chunk)).await {
                    Err(_) => return Err(format!("no reply for {} s", TIMEOUT.as_secs())),
                    Ok(Err(e)) => return Err(format!("reading: {e}")),
                    Ok(Ok(0)) => return Err("the server closed the connection".into()),
                    Ok(Ok(n)) => n,
                };
                total += n;
                if total > MAX_SMTP_REPLY_BYTES {
                    return Err(format!("a reply over {MAX_SMTP_REPLY_BYTES} bytes"));
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
        };
        tokio::time::timeout(EXCHANGE_TIMEOUT, read)
            .await
            .map_err(|_| format!("no complete reply within {} s", EXCHANGE_TIMEOUT.as_secs()))?
    }

    async fn send(&mut self, line: &str) -> Result<(), String> {
        let write = async {
            self.stream.write_all(line.as_bytes()).await?;
            self.stream.write_all(b"\r\n").await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("sending {line}: {e}")),
            Err(_) => Err(format!("sending {line}: timed out")),
        }
    }
}

/// Exchange 2000/2003's banner: `Microsoft ESMTP MAIL Service, Version:
/// 6.0.3790.4675 ready at …`, the IIS SMTP service's version.
fn iis_banner(text: &str) -> Option<Software> {
    const MARK: &str = "microsoft esmtp mail service, version:";
    let at = text.to_ascii_lowercase().find(MARK)? + MARK.len();
    let rest = text[at..].trim_start();
    let digits: String = rest
        .chars()
        .take(40)
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let version = Version::parse(digits.trim_end_matches('.'))?;
    (version.parts().len() >= 3).then_some(Software {
        product: Product::IisSmtp,
        version,
    })
}

/// What a greeting or EHLO reply says about the software, and a note for
/// products that name no version.
fn recognise_banner(text: &str) -> (Option<Software>, Option<String>) {
    if let Some(s) = iis_banner(text) {
        return (
            Some(s),
            Some("Exchange 2000/2003 write the version of the IIS SMTP service they run on".into()),
        );
    }
    if let Some(s) = identify::recognise_text(text) {
        return (Some(s), None);
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("microsoft esmtp mail service") {
        return (
            None,
            Some(
                "a Microsoft Exchange 2007 or later banner: it carries no version \
                 (the HTTPS probe of Outlook on the web shows the build)"
                    .into(),
            ),
        );
    }
    if lower.contains("postfix") {
        return (None, Some("Postfix: its banner carries no version".into()));
    }
    (None, None)
}

async fn probe_smtp(host: &str, port: u16, helo: &str, catalog: &Catalog, today: Date) -> Part {
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut part = Part::new("smtp", target.clone());
    let stream = match connect(host, port).await {
        Ok(s) => s,
        Err(e) => {
            part.error = Some(e);
            return part;
        }
    };
    let mut smtp = SmtpReader {
        stream,
        buf: Vec::new(),
    };
    let mut texts: Vec<(String, String)> = Vec::new();
    let session = async {
        let (code, greeting) = smtp.reply().await.map_err(|e| format!("greeting: {e}"))?;
        for l in &greeting {
            part.steps.push(format!("greeting: {l}"));
        }
        texts.push(("SMTP greeting".into(), greeting.join(" ")));
        if code != 220 {
            part.notes.push(format!(
                "the server refused the session ({code}); no EHLO sent"
            ));
        } else {
            smtp.send(&format!("EHLO {helo}")).await?;
            part.steps.push(format!("sent: EHLO {helo}"));
            let (_, ehlo) = smtp.reply().await.map_err(|e| format!("EHLO reply: {e}"))?;
            for l in &ehlo {
                part.steps.push(format!("EHLO reply: {l}"));
            }
            texts.push(("EHLO reply".into(), ehlo.join(" ")));
        }
        smtp.send("QUIT").await?;
        part.steps.push("sent: QUIT".into());
        // The 221 is a courtesy; its absence is no failure.
        if let Ok((_, bye)) = smtp.reply().await {
            if let Some(first) = bye.first() {
                part.steps.push(format!("QUIT reply: {first}"));
            }
        }
        Ok::<(), String>(())
    };
    let outcome = session.await;
    let mut found = false;
    for (what, text) in &texts {
        let (software, note) = recognise_banner(text);
        if let Some(n) = note {
            if !part.notes.contains(&n) {
                part.notes.push(n);
            }
        }
        if let Some(software) = software {
            part.evidence
                .push((what.clone(), software.to_string(), target.clone()));
            if !found {
                found = true;
                part.finding = Some(judge(
                    catalog,
                    software,
                    format!("{what} of {target}"),
                    today,
                ));
            }
        }
    }
    if !found && outcome.is_ok() && part.notes.is_empty() {
        part.notes
            .push("no software version recognised in the greeting or the EHLO reply".into());
    }
    part.error = outcome.err();
    part
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(host: &str, port: u16) -> Origin {
        Origin {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn urls_and_addresses() {
        assert_eq!(
            parse_url("https://Mail.Example.test/owa/"),
            Ok(origin("mail.example.test", 443))
        );
        assert_eq!(
            parse_url("HTTPS://mail.example.test:8443"),
            Ok(origin("mail.example.test", 8443))
        );
        assert_eq!(parse_url("https://[::1]:444/x"), Ok(origin("::1", 444)));
        for bad in [
            "http://mail.example.test",
            "mail.example.test",
            "https://",
            "https://user@mail.example.test",
            "https://mail.example.test:0",
            "https://mail.example.test:99999",
            "https://mail example.test",
            "https://[nope]/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_authority("mx.example.test", 25),
            Ok(("mx.example.test".into(), 25))
        );
        assert_eq!(
            parse_authority("mx.example.test:2525", 25),
            Ok(("mx.example.test".into(), 2525))
        );
        assert_eq!(parse_authority("::1", 25), Ok(("::1".into(), 25)));
        assert_eq!(parse_authority("[::1]:26", 25), Ok(("::1".into(), 26)));
        assert_eq!(origin("::1", 444).authority(), "[::1]:444");
        assert_eq!(
            origin("mail.example.test", 443).url("/owa/"),
            "https://mail.example.test/owa/"
        );
    }

    #[test]
    fn redirects_stay_on_the_host() {
        let o = origin("mail.example.test", 443);
        assert_eq!(
            redirect_path(
                &o,
                "/owa/",
                "https://MAIL.example.test/owa/auth/logon.aspx?url=x&reason=0"
            ),
            Ok("/owa/auth/logon.aspx?url=x&reason=0".into())
        );
        assert_eq!(
            redirect_path(&o, "/owa/", "/owa/auth/logon.aspx"),
            Ok("/owa/auth/logon.aspx".into())
        );
        assert_eq!(
            redirect_path(&o, "/owa/x?y=/z", "auth/logon.aspx"),
            Ok("/owa/auth/logon.aspx".into())
        );
        assert_eq!(
            redirect_path(&o, "/", "https://mail.example.test"),
            Ok("/".into())
        );
        for away in [
            "https://evil.example.test/owa/",
            "https://mail.example.test:444/owa/",
            "http://mail.example.test/owa/",
            "//evil.example.test/",
            "ftp://mail.example.test/",
            "/owa/a b",
        ] {
            assert!(redirect_path(&o, "/owa/", away).is_err(), "{away}");
        }
        assert_eq!(
            logon_path(&origin("mail.example.test", 8443)),
            "/owa/auth/logon.aspx?replaceCurrent=1&url=https%3a%2f%2fmail.example.test%3a8443%2fowa%2f"
        );
    }

    #[test]
    fn owa_paths_of_each_version() {
        let page = r#"<link rel="shortcut icon" href="/owa/auth/15.1.2507/themes/resources/favicon.ico">
            <link href="/owa/auth/15.1.2507/themes/resources/logon.css"><img src="/OWA/14.3.513.0/themes/base/lgntopl.gif">
            <img src="/owa/8.3.517.0/themes/base/x.gif"> /owa/auth/1.2.3/ /owa/auth/15.1/ /owa/auth/15.1.2507.x/"#;
        let found: Vec<String> = owa_paths(page)
            .iter()
            .map(|(v, p)| format!("{v} {p}"))
            .collect();
        assert_eq!(
            found,
            [
                "15.1.2507 /owa/auth/15.1.2507/",
                "14.3.513.0 /owa/14.3.513.0/",
                "8.3.517.0 /owa/8.3.517.0/"
            ]
        );
    }

    #[test]
    fn responses_are_framed() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-OWA-Version: 15.1.2507.6\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
        assert!(response_complete(chunked));
        let r = parse_response(chunked, false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello world");
        assert_eq!(r.header("x-owa-version"), Some("15.1.2507.6"));
        let sized = b"HTTP/1.1 302 Found\r\nContent-Length: 3\r\nLocation: /x\r\n\r\nabc";
        assert!(response_complete(sized));
        assert!(!response_complete(&sized[..sized.len() - 1]));
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n", false).is_err());
        assert!(parse_response(b"", false).is_err());
    }

    #[test]
    fn banners() {
        let (s, _) = recognise_banner(
            "220 mail.example.test Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675 ready at  Tue, 14 Nov 2023 10:00:00 +0100",
        );
        assert_eq!(
            s.map(|s| s.to_string()).as_deref(),
            Some("Microsoft SMTPSVC (IIS SMTP) 6.0.3790.4675")
        );
        let (s, _) =
            recognise_banner("220 mx.example.test ESMTP Exim 4.96 Tue, 14 Nov 2023 10:00:00 +0000");
        assert_eq!(s.map(|s| s.to_string()).as_deref(), Some("Exim 4.96"));
        let (s, _) = recognise_banner(
            "220 mx.example.test ESMTP Sendmail 8.15.2/8.15.2; Tue, 14 Nov 2023 10:00:00 GMT",
        );
        assert_eq!(s.map(|s| s.to_string()).as_deref(), Some("Sendmail 8.15.2"));
        let (s, note) = recognise_banner(
            "220 EX01.example.test Microsoft ESMTP MAIL Service ready at Tue, 14 Nov 2023 10:00:00 +0100",
        );
        assert!(s.is_none());
        assert!(note.is_some_and(|n| n.contains("no version")));
    }
}
