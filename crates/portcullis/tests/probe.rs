//! `portcullis probe`: against a local HTTPS server that answers as an Exchange
//! Server's Outlook on the web does (a certificate from a test authority given
//! with `--ca`), and a plain SMTP server that greets as Exim or Postfix does.

mod common;

use common::BIN;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A test authority and a `localhost` certificate it signed.
struct Pki {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn pki(name: &str) -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.distinguished_name
        .push(DnType::CommonName, format!("{name} test authority"));
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let leaf_key = KeyPair::generate().expect("server key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .expect("server certificate");
    Pki {
        ca_pem: ca_cert.pem(),
        chain: vec![leaf_cert.der().clone(), ca_cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

/// Answers a request path (given the server's port) with a whole response.
type Route = Arc<dyn Fn(&str, u16) -> Vec<u8> + Send + Sync>;

/// A local HTTPS server on 127.0.0.1; every request head it receives is kept.
struct Https {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

fn https_server(pki: &Pki, route: Route) -> Https {
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(pki.chain.clone(), pki.key.clone_key())
        .expect("server config"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { continue };
            let (config, route, log) = (config.clone(), route.clone(), log.clone());
            std::thread::spawn(move || {
                let _ = serve_one(tcp, config, &*route, port, &log);
            });
        }
    });
    Https { port, requests }
}

fn serve_one(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    route: &(dyn Fn(&str, u16) -> Vec<u8> + Send + Sync),
    port: u16,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf)?;
        if n == 0 || request.len() > 64 * 1024 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&request).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    log.lock().expect("log").push(head);
    tls.write_all(&route(&path, port))?;
    tls.conn.send_close_notify();
    tls.flush()?;
    Ok(())
}

/// The logon page of Exchange 2013 and later, with its versioned resources.
fn logon_page(cu: &str) -> String {
    format!(
        r#"<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" "http://www.w3.org/TR/html4/loose.dtd">
<!-- {{57A118C6-2DA9-419d-BE9A-F92B0F9A418B}} -->
<html dir="ltr">
<head>
<meta http-equiv="X-UA-Compatible" content="IE=10" />
<link rel="shortcut icon" href="/owa/auth/{cu}/themes/resources/favicon.ico" type="image/x-icon">
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">
<meta http-equiv="Cache-Control" content="no-cache">
<meta http-equiv="Pragma" content="no-cache">
<meta http-equiv="Expires" content="-1">
<meta name="Robots" content="NOINDEX, NOFOLLOW">
<title>Outlook</title>
<style>
@font-face {{ font-family: "Segoe UI WPC"; src: url("/owa/auth/{cu}/themes/resources/segoeui-regular.eot?#iefix") format("embedded-opentype"); }}
</style>
<link type="text/css" rel="stylesheet" href="/owa/auth/{cu}/themes/resources/logon.css">
<link type="text/css" rel="stylesheet" href="/owa/auth/{cu}/themes/resources/owafont_ltr.css">
<script type="text/javascript" src="/owa/auth/{cu}/scripts/premium/flogon.js"></script>
</head>
<body class="signInBg" style="background: #f2f2f2 url('/owa/auth/{cu}/themes/resources/bg_gradient.jpg') repeat-x">
<form action="/owa/auth.owa" method="POST" name="logonForm" ENCTYPE="application/x-www-form-urlencoded" autocomplete="off">
<input type="hidden" name="destination" value="https://localhost/owa/">
<input type="hidden" name="flags" value="4">
<input type="hidden" name="forcedownlevel" value="0">
<div id="lgnDiv" class="logonDiv">
<div class="signInImageHeader"><img class="mouseHeader" src="/owa/auth/{cu}/themes/resources/owa_text_blue.png"></div>
<div class="signInInputLabel" id="userNameLabel">Domain\user name:</div>
<div><input id="username" name="username" class="signInInputText" role="textbox"></div>
<div class="signInInputLabel" id="passwordLabel">Password:</div>
<div><input id="password" onfocus="g_fFcs=0" name="password" value="" type="password" class="signInInputText"></div>
<div class="signInEnter"><div onclick="clkLgn()" class="signinbutton" role="button" tabIndex="0">
<img class="imgLnk" src="/owa/auth/{cu}/themes/resources/Sign_in_arrow.png" alt="">
<span class="signinTxt">sign in</span></div></div>
</div>
</form>
</body>
</html>
"#
    )
}

/// As Exchange answers: `/owa/` redirects to the logon page, which says its
/// build in `X-OWA-Version` (if `header`) and its CU in its resource paths;
/// the page is sent chunked, as IIS does.
fn exchange(header: Option<&'static str>, cu: &'static str) -> Route {
    Arc::new(move |path: &str, port: u16| {
        if path == "/owa/" || path == "/owa" {
            let location = format!(
                "https://localhost:{port}/owa/auth/logon.aspx?replaceCurrent=1&url=https%3a%2f%2flocalhost%3a{port}%2fowa%2f"
            );
            let body = format!(
                "<html><head><title>Object moved</title></head><body>\r\n<h2>Object moved to <a href=\"{location}\">here</a>.</h2>\r\n</body></html>\r\n"
            );
            format!(
                "HTTP/1.1 302 Found\r\nCache-Control: private\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Location: {location}\r\nServer: Microsoft-IIS/10.0\r\nrequest-id: 1b0f5e0a-6f0a-4a3e-9c1e-3a3c9d1f6e01\r\n\
                 X-Powered-By: ASP.NET\r\nX-FEServer: EX01\r\nDate: Mon, 23 Nov 2026 10:00:00 GMT\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        } else if path.starts_with("/owa/auth/logon.aspx") {
            let page = logon_page(cu);
            let mut out = String::from(
                "HTTP/1.1 200 OK\r\nCache-Control: no-cache, no-store\r\nPragma: no-cache\r\n\
                 Content-Type: text/html; charset=utf-8\r\nExpires: -1\r\nServer: Microsoft-IIS/10.0\r\n\
                 request-id: 7c2b8e4d-1f3a-4b5c-8d9e-0a1b2c3d4e5f\r\nX-Frame-Options: SAMEORIGIN\r\n",
            );
            if let Some(v) = header {
                out.push_str(&format!("X-OWA-Version: {v}\r\n"));
            }
            out.push_str(
                "X-Powered-By: ASP.NET\r\nX-FEServer: EX01\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            for chunk in page.as_bytes().chunks(700) {
                out.push_str(&format!("{:x}\r\n", chunk.len()));
                out.push_str(std::str::from_utf8(chunk).expect("ascii page"));
                out.push_str("\r\n");
            }
            out.push_str("0\r\n\r\n");
            out.into_bytes()
        } else {
            not_found()
        }
    })
}

fn not_found() -> Vec<u8> {
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\nNot Found"
        .to_vec()
}

/// A plain SMTP server that greets with `greeting`, answers EHLO and QUIT,
/// and keeps the commands it receives.
fn smtp_server(greeting: &'static str) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let commands = Arc::new(Mutex::new(Vec::new()));
    let log = commands.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = (|| -> std::io::Result<()> {
                stream.write_all(format!("{greeting}\r\n").as_bytes())?;
                let mut reader = BufReader::new(stream.try_clone()?);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    let line = line.trim_end().to_string();
                    log.lock().expect("log").push(line.clone());
                    let verb = line
                        .split(' ')
                        .next()
                        .unwrap_or_default()
                        .to_ascii_uppercase();
                    match verb.as_str() {
                        "EHLO" => stream.write_all(
                            b"250-mx.example.test Hello localhost [127.0.0.1]\r\n250-SIZE 52428800\r\n\
                              250-8BITMIME\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 HELP\r\n",
                        )?,
                        "QUIT" => {
                            stream.write_all(b"221 mx.example.test closing connection\r\n")?;
                            return Ok(());
                        }
                        _ => stream.write_all(b"500 unrecognized command\r\n")?,
                    }
                }
            })();
        }
    });
    (port, commands)
}

struct Probe {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A folder with a configuration whose data folder is inside it, and the
/// authority's certificate file.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "[server]\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("portcullis.toml"), config).expect("config");
        Setup { dir }
    }

    fn ca_file(&self, pki: &Pki, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, &pki.ca_pem).expect("CA file");
        path
    }

    fn probe(&self, args: &[&str]) -> Probe {
        let out = Command::new(BIN)
            .arg("probe")
            .args(args)
            .arg("--config")
            .arg(self.dir.path().join("portcullis.toml"))
            .output()
            .expect("run portcullis probe");
        Probe {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

const LOGON_NO: &str = "predates the ProxyLogon fixes (CVE-2021-26855 and related): no";
const SHELL_NO: &str = "predates the ProxyShell fixes (CVE-2021-34473 and related): no";
const LOGON_YES: &str = "predates the ProxyLogon fixes (CVE-2021-26855 and related): yes";
const SHELL_YES: &str = "predates the ProxyShell fixes (CVE-2021-34473 and related): yes";

#[test]
fn exchange_2016_cu23_from_the_header() {
    let setup = Setup::new();
    let pki = pki("exchange");
    let ca = setup.ca_file(&pki, "ca.pem");
    let server = https_server(&pki, exchange(Some("15.1.2507.6"), "15.1.2507"));
    let url = format!("https://localhost:{}", server.port);
    let p = setup.probe(&[&url, "--ca", path_str(&ca)]);
    assert_eq!(p.code, 3, "{}\n{}", p.stdout, p.stderr);
    for want in [
        "software: Microsoft Exchange Server 15.1.2507.6",
        "line: Exchange Server 2016",
        "status: unsupported",
        "release: Exchange Server 2016 CU23",
        "from the X-OWA-Version header of",
        "seen: page path /owa/auth/15.1.2507/: 15.1.2507",
        "GET /owa/ -> 302",
        LOGON_NO,
        SHELL_NO,
        "certificate checked against",
    ] {
        assert!(p.stdout.contains(want), "missing {want:?}:\n{}", p.stdout);
    }
    // Only GETs, each on its own connection, first /owa/, then where it led.
    let requests = server.requests.lock().expect("requests").clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[0].starts_with("GET /owa/ HTTP/1.1\r\n"));
    assert!(requests[1]
        .starts_with("GET /owa/auth/logon.aspx?replaceCurrent=1&url=https%3a%2f%2flocalhost%3a"));
    for r in &requests {
        assert!(r.contains("\r\nConnection: close\r\n"), "{r}");
        assert!(
            r.contains(&format!("\r\nHost: localhost:{}\r\n", server.port)),
            "{r}"
        );
    }

    // The same as one JSON object.
    let p = setup.probe(&[&url, "--ca", path_str(&ca), "--format", "json"]);
    assert_eq!(p.code, 3, "{}", p.stderr);
    let v: serde_json::Value = serde_json::from_str(&p.stdout).expect("one JSON object");
    let found = &v["https"]["found"];
    assert_eq!(found["software"], "Microsoft Exchange Server 15.1.2507.6");
    assert_eq!(found["classification"]["status"], "unsupported");
    assert_eq!(found["classification"]["line"], "Exchange Server 2016");
    assert_eq!(found["predates_proxylogon"], false);
    assert_eq!(found["predates_proxyshell"], false);
    assert_eq!(found["exact_build"], true);
    assert_eq!(v["exit_status"], 3);
    assert!(v["smtp"].is_null());
}

#[test]
fn exchange_2013_cu23_before_march_2021_predates_both() {
    let setup = Setup::new();
    let pki = pki("exchange 2013");
    let ca = setup.ca_file(&pki, "ca.pem");
    let server = https_server(&pki, exchange(Some("15.0.1497.2"), "15.0.1497"));
    let p = setup.probe(&[
        &format!("https://localhost:{}/owa/", server.port),
        "--ca",
        path_str(&ca),
    ]);
    assert_eq!(p.code, 3, "{}\n{}", p.stdout, p.stderr);
    for want in [
        "software: Microsoft Exchange Server 15.0.1497.2",
        "line: Exchange Server 2013",
        "status: unsupported",
        "CVE-2021-26855",
        LOGON_YES,
        SHELL_YES,
    ] {
        assert!(p.stdout.contains(want), "missing {want:?}:\n{}", p.stdout);
    }
}

#[test]
fn the_page_path_alone_names_the_cu() {
    let setup = Setup::new();
    let pki = pki("no header");
    let ca = setup.ca_file(&pki, "ca.pem");
    let server = https_server(&pki, exchange(None, "15.1.2507"));
    let p = setup.probe(&[
        &format!("https://localhost:{}", server.port),
        "--ca",
        path_str(&ca),
    ]);
    assert_eq!(p.code, 3, "{}\n{}", p.stdout, p.stderr);
    for want in [
        "found: Microsoft Exchange Server 15.1.2507, from the page path /owa/auth/15.1.2507/ of https://localhost:",
        "not its security update level",
        "software: Microsoft Exchange Server 15.1.2507.6",
        "line: Exchange Server 2016",
        "status: unsupported",
        LOGON_NO,
        SHELL_NO,
    ] {
        assert!(p.stdout.contains(want), "missing {want:?}:\n{}", p.stdout);
    }
    assert!(!p.stdout.contains("X-OWA-Version header"), "{}", p.stdout);
    let p = setup.probe(&[
        &format!("https://localhost:{}", server.port),
        "--ca",
        path_str(&ca),
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&p.stdout).expect("JSON");
    assert_eq!(v["https"]["found"]["exact_build"], false);
    assert_eq!(v["https"]["found"]["seen"], "15.1.2507");

    // 2013 CU23 shipped before March 2021 and got the fixes in later SUs: the
    // path alone cannot tell.
    let server = https_server(&pki, exchange(None, "15.0.1497"));
    let p = setup.probe(&[
        &format!("https://localhost:{}", server.port),
        "--ca",
        path_str(&ca),
    ]);
    assert_eq!(p.code, 3, "{}\n{}", p.stdout, p.stderr);
    for want in [
        "software: Microsoft Exchange Server 15.0.1497.2",
        "predates the ProxyLogon fixes (CVE-2021-26855 and related): unknown",
        "predates the ProxyShell fixes (CVE-2021-34473 and related): unknown",
    ] {
        assert!(p.stdout.contains(want), "missing {want:?}:\n{}", p.stdout);
    }
}

#[test]
fn a_certificate_from_another_authority_fails_unless_insecure() {
    let setup = Setup::new();
    let server_pki = pki("the server's");
    let other = pki("another");
    let wrong_ca = setup.ca_file(&other, "other-ca.pem");
    let server = https_server(&server_pki, exchange(Some("15.1.2507.6"), "15.1.2507"));
    let url = format!("https://localhost:{}", server.port);
    let p = setup.probe(&[&url, "--ca", path_str(&wrong_ca)]);
    assert_eq!(p.code, 1, "{}\n{}", p.stdout, p.stderr);
    assert!(
        p.stderr.contains(&format!(
            "TLS: the certificate of localhost:{} is not signed by an authority this probe trusts",
            server.port
        )),
        "{}",
        p.stderr
    );
    assert!(p.stderr.contains("--insecure"), "{}", p.stderr);
    assert!(!p.stdout.contains("software:"), "{}", p.stdout);
    assert!(server.requests.lock().expect("requests").is_empty());

    let p = setup.probe(&[&url, "--insecure"]);
    assert_eq!(p.code, 3, "{}\n{}", p.stdout, p.stderr);
    assert!(p.stderr.contains("WARNING: --insecure"), "{}", p.stderr);
    assert!(p.stdout.contains("certificate NOT checked"), "{}", p.stdout);
    assert!(
        p.stdout.contains("line: Exchange Server 2016"),
        "{}",
        p.stdout
    );
}

#[test]
fn nothing_listening_is_a_clear_failure() {
    let setup = Setup::new();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let p = setup.probe(&[&format!("https://127.0.0.1:{port}"), "--insecure"]);
    assert_eq!(p.code, 1, "{}\n{}", p.stdout, p.stderr);
    assert!(
        p.stderr
            .contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{}",
        p.stderr
    );
    let p = setup.probe(&["http://mail.example.test"]);
    assert_eq!(p.code, 2, "{}", p.stderr);
    assert!(p.stderr.contains("https://"), "{}", p.stderr);
}

#[test]
fn an_exim_banner_over_smtp() {
    let setup = Setup::new();
    let pki = pki("exim");
    let ca = setup.ca_file(&pki, "ca.pem");
    let server = https_server(&pki, exchange(Some("15.1.2507.6"), "15.1.2507"));
    let (smtp, commands) =
        smtp_server("220 mx.example.test ESMTP Exim 4.94.2 Mon, 23 Nov 2026 10:00:00 +0000");
    let target = format!("127.0.0.1:{smtp}");
    let p = setup.probe(&[
        &format!("https://localhost:{}", server.port),
        "--ca",
        path_str(&ca),
        "--smtp",
        &target,
    ]);
    assert_eq!(p.code, 3, "{}\n{}", p.stdout, p.stderr);
    let smtp_part = p
        .stdout
        .split(&format!("== SMTP: {target} =="))
        .nth(1)
        .unwrap_or_else(|| panic!("no SMTP section:\n{}", p.stdout));
    for want in [
        "greeting: 220 mx.example.test ESMTP Exim 4.94.2",
        &format!("found: Exim 4.94.2, from the SMTP greeting of {target}"),
        "software: Exim 4.94.2",
        "status: vulnerable",
        "CVE-2023-51766",
        "QUIT reply: 221",
    ] {
        assert!(smtp_part.contains(want), "missing {want:?}:\n{}", p.stdout);
    }
    assert!(!smtp_part.contains("ProxyLogon"), "{smtp_part}");
    let sent = commands.lock().expect("commands").clone();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].starts_with("EHLO "), "{sent:?}");
    assert_eq!(sent[1], "QUIT");

    let p = setup.probe(&[
        &format!("https://localhost:{}", server.port),
        "--ca",
        path_str(&ca),
        "--smtp",
        &target,
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&p.stdout).expect("JSON");
    assert_eq!(v["smtp"]["found"]["software"], "Exim 4.94.2");
    assert_eq!(v["smtp"]["found"]["classification"]["status"], "vulnerable");
    assert!(v["smtp"]["found"]["predates_proxylogon"].is_null());
}

#[test]
fn nothing_recognised() {
    let setup = Setup::new();
    let pki = pki("plain");
    let ca = setup.ca_file(&pki, "ca.pem");
    // /owa/ leads to another host (not followed); the logon page is missing.
    let route: Route = Arc::new(|path: &str, _port: u16| {
        if path == "/owa/" {
            b"HTTP/1.1 302 Found\r\nLocation: https://elsewhere.example.test/owa/\r\nContent-Length: 0\r\n\r\n"
                .to_vec()
        } else {
            not_found()
        }
    });
    let server = https_server(&pki, route);
    let (smtp, _) = smtp_server("220 mx.example.test ESMTP Postfix (Debian/GNU)");
    let p = setup.probe(&[
        &format!("https://localhost:{}", server.port),
        "--ca",
        path_str(&ca),
        "--smtp",
        &format!("localhost:{smtp}"),
    ]);
    assert_eq!(p.code, 4, "{}\n{}", p.stdout, p.stderr);
    for want in [
        "leads to another host",
        "no Exchange version shown",
        "Postfix: its banner carries no version",
        "result: no server software recognised",
    ] {
        assert!(p.stdout.contains(want), "missing {want:?}:\n{}", p.stdout);
    }
    let requests = server.requests.lock().expect("requests").clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
}
