//! The click-time redirector in a real browser: Debian's chromium, driven by
//! playwright-core (`tests/browser/redirector.mjs`), against the real binary.
//! A good link lands on its target, served by this test on loopback; a
//! block-listed one shows the block page and the browser never asks the
//! blocked host; a tampered token shows the error page and goes nowhere.
//!
//! The links are signed for the configured link host
//! (`https://links.example.test/l/<token>`); the browser opens their paths on
//! the gateway's HTTP listener instead.
//!
//! A missing browser, node or playwright-core fails the test with the install
//! hint: `scripts/install-peers.sh`.

mod common;
use common::{browser_tools, repo, wait_until, Gateway, Sink, CHROMIUM};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MARKER: &str = "Portcullis redirector target reached";
const BLOCKED_DOMAIN: &str = "evil.example";
const BLOCKED: &str = "https://login.evil.example/reset";

/// The link's target: a small HTTP server on loopback that answers every
/// request with a page showing [`MARKER`] and notes each request line.
fn serve_target() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the target");
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let noted = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            noted.lock().unwrap().push(line.trim_end().to_string());
            // The rest of the head; a GET has no body.
            loop {
                let mut h = String::new();
                match reader.read_line(&mut h) {
                    Ok(n) if n > 2 => continue,
                    _ => break,
                }
            }
            let body = format!(
                "<!doctype html><html><head><title>Target</title></head>\
                 <body><h1>{MARKER}</h1></body></html>"
            );
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, seen)
}

/// `portcullis links sign`, and the `/l/<token>` path of the link it prints.
fn sign(gw: &Gateway, url: &str, trace: &str) -> String {
    let out = gw.cli(&[
        "links",
        "sign",
        url,
        "--message",
        trace,
        "--recipient",
        "bob@example.test",
    ]);
    assert!(out.status.success(), "{out:?}");
    let link = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        link.starts_with("https://links.example.test/l/"),
        "signed for another host: {link}"
    );
    let token = link.rsplit_once("/l/").expect("a rewritten link").1;
    format!("/l/{token}")
}

#[test]
fn a_browser_lands_on_good_links_and_is_stopped_by_blocked_and_tampered_ones() {
    let node = browser_tools();
    let sink = Sink::start(&[]);
    // `[links] enabled` stays off (rewriting is not wired yet); the host is
    // what the links are signed for, and the redirector answers on the
    // HTTP listener whatever host the browser asked for.
    let gw = Gateway::start(
        "",
        &format!(
            "[[domains]]\nname = \"example.test\"\ndeliver_to = \"smtp://127.0.0.1:{}\"\n\
             [scan.auth]\nenabled = false\n[scan.links]\nblock = [\"{BLOCKED_DOMAIN}\"]\n\
             [links]\nhost = \"links.example.test\"\n",
            sink.port
        ),
    );
    let run = gw.swaks(&["--from", "alice@sender.test", "--to", "bob@example.test"]);
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let trace = run.queue_id();
    gw.wait_status(&trace, "delivered");

    let (target_port, target_seen) = serve_target();
    let target = format!("http://127.0.0.1:{target_port}/welcome?from=mail");
    // The target is on loopback with a port of its own: the click-time checks
    // call that an unusual port and warn, so the browser sees the warning
    // first and reaches the target through its Continue button (the POST
    // path). Say so here, so that a change in the verdict shows up as such.
    let check = gw.cli(&["links", "check", &target]);
    assert_eq!(check.status.code(), Some(3), "not a warning: {check:?}");
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("port"),
        "{check:?}"
    );

    let good = sign(&gw, &target, &trace);
    let blocked = sign(&gw, BLOCKED, &trace);
    // One character of the token changed, in the middle (the last one may
    // only carry padding bits): it must no longer verify.
    let tampered = {
        let mut bytes = good.clone().into_bytes();
        let i = "/l/".len() + (bytes.len() - "/l/".len()) / 2;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    };
    let decoded = gw.cli(&["links", "decode", &tampered["/l/".len()..]]);
    assert_eq!(decoded.status.code(), Some(1), "still valid: {decoded:?}");

    let out = Command::new(node)
        .arg(repo().join("tests/browser/redirector.mjs"))
        .env("REDIRECTOR_URL", format!("http://127.0.0.1:{}", gw.http))
        .env("GOOD_PATH", &good)
        .env("TARGET_URL", &target)
        .env("TARGET_MARKER", MARKER)
        .env("BLOCKED_PATH", &blocked)
        .env("BLOCKED_HOST", "login.evil.example")
        .env("BLOCKED_DOMAIN", BLOCKED_DOMAIN)
        .env("TAMPERED_PATH", &tampered)
        .env("CHROMIUM", CHROMIUM)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let said = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the browser run failed:\n{said}\n{}",
        gw.log()
    );
    // Shown with `--no-capture`: the steps and the requests of each.
    println!("{said}");
    let summary: serde_json::Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("redirector: "))
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_else(|| panic!("no summary from the browser run:\n{said}"));
    assert_eq!(summary["passed"], true, "{summary:#}");
    assert_eq!(summary["good"]["final_url"], target.as_str(), "{summary:#}");
    assert_eq!(summary["good"]["marker"], true, "{summary:#}");
    assert_eq!(summary["blocked"]["status"], 403, "{summary:#}");
    assert_eq!(summary["tampered"]["status"], 400, "{summary:#}");
    for step in ["blocked", "tampered"] {
        for r in summary[step]["requests"].as_array().unwrap() {
            let r = r.as_str().unwrap();
            assert!(
                r.contains(&format!("//127.0.0.1:{}/", gw.http)),
                "{step}: the browser left the gateway: {r}"
            );
        }
    }

    // The target was asked for the page the link carried, by the browser.
    let seen = target_seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|l| l == "GET /welcome?from=mail HTTP/1.1"),
        "{seen:?}"
    );

    // The clicks are in the message's trace: the warning, the Continue, the
    // block. The tampered token names no message.
    let mut verdicts = Vec::new();
    wait_until("the clicks in the trace", Duration::from_secs(30), || {
        let t = gw.trace(&["--id", &trace]);
        verdicts = t[0]["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "clicked")
            .map(|e| {
                format!(
                    "{} {}",
                    e["verdict"].as_str().unwrap(),
                    e["url"].as_str().unwrap()
                )
            })
            .collect();
        verdicts.len() >= 3
    });
    assert_eq!(
        verdicts,
        [
            format!("warn {target}"),
            format!("continued {target}"),
            format!("block {BLOCKED}"),
        ]
    );
}
