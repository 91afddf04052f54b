//! The secure links' redirector against the real binary: links signed with
//! `portcullis links sign` for a message that went through the gateway are
//! followed, warned about or blocked by `GET /l/<token>`; an altered token
//! redirects nowhere; every click lands in the message's trace and in
//! `GET /api/links/clicks`; `portcullis links check` says the same verdicts.

mod common;
use common::{wait_until, Gateway, Sink};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const GOOD: &str = "https://www.rust-lang.org/learn?x=1";
const BLOCKED: &str = "https://login.evil.example/reset";
const RISKY: &str = "http://61.145.116.189/login";

/// One raw HTTP/1.1 exchange: (status, headers as "name: value" lines with
/// the name in lower case, body).
fn exchange(port: u16, method: &str, path: &str, body: &str) -> (u16, Vec<String>, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect http");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read");
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .map(|l| match l.split_once(':') {
            Some((n, v)) => format!("{}: {}", n.to_ascii_lowercase(), v.trim()),
            None => l.to_string(),
        })
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [String], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find_map(|h| h.strip_prefix(&format!("{name}: ")))
}

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
    let token = link.rsplit_once("/l/").expect("a rewritten link").1;
    format!("/l/{token}")
}

#[test]
fn links_are_followed_warned_about_or_blocked_and_every_click_is_traced() {
    let sink = Sink::start(&[]);
    let gw = Gateway::start(
        "",
        &format!(
            "[[domains]]\nname = \"example.test\"\ndeliver_to = \"smtp://127.0.0.1:{}\"\n\
             [scan.auth]\nenabled = false\n[scan.links]\nblock = [\"evil.example\"]\n\
             [links]\nhost = \"links.example.test\"\n",
            sink.port
        ),
    );
    let run = gw.swaks(&["--from", "alice@sender.test", "--to", "bob@example.test"]);
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let trace = run.queue_id();
    gw.wait_status(&trace, "delivered");

    // A good link: 302 to its URL, not cached, no referrer.
    let good = sign(&gw, GOOD, &trace);
    let (status, headers, _) = exchange(gw.http, "GET", &good, "");
    assert_eq!(status, 302, "{headers:?}");
    assert_eq!(header(&headers, "location"), Some(GOOD));
    assert_eq!(header(&headers, "cache-control"), Some("no-store"));
    assert_eq!(header(&headers, "referrer-policy"), Some("no-referrer"));

    // A block-listed one: 403, naming the host, no Location, no link to it.
    let blocked = sign(&gw, BLOCKED, &trace);
    let (status, headers, body) = exchange(gw.http, "GET", &blocked, "");
    assert_eq!(status, 403, "{body}");
    assert!(header(&headers, "location").is_none(), "{headers:?}");
    assert!(body.contains("login.evil.example"), "{body}");
    assert!(body.contains("block list"), "{body}");
    assert!(!body.contains("href"), "{body}");
    assert!(header(&headers, "content-security-policy").is_some());
    // Nor can a POST go on past a block.
    let (status, headers, _) = exchange(gw.http, "POST", &blocked, "confirm=yes");
    assert_eq!(status, 403);
    assert!(header(&headers, "location").is_none());

    // An altered token: 400, nowhere to go, nothing of its URL shown.
    for (i, _) in good.char_indices().skip(4).step_by(7) {
        let mut altered = good.clone().into_bytes();
        altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        for method in ["GET", "POST"] {
            let (status, headers, body) = exchange(gw.http, method, &altered, "confirm=yes");
            assert_eq!(status, 400, "{method} {altered}: {body}");
            assert!(header(&headers, "location").is_none(), "{headers:?}");
            assert!(!body.contains("rust-lang"), "{body}");
            assert!(body.contains("not valid"), "{body}");
        }
    }
    let (status, _, _) = exchange(gw.http, "GET", "/l/AAAA", "");
    assert_eq!(status, 400);

    // A risky one: a warning with the URL as text; only a confirmed POST goes on.
    let risky = sign(&gw, RISKY, &trace);
    let (status, headers, body) = exchange(gw.http, "GET", &risky, "");
    assert_eq!(status, 200, "{body}");
    assert!(header(&headers, "location").is_none());
    assert!(
        body.contains(RISKY) && body.contains("IP address"),
        "{body}"
    );
    assert!(body.contains("Continue") && body.contains("method=\"post\""));
    assert!(!body.contains(&format!("href=\"{RISKY}")), "{body}");
    let (status, headers, _) = exchange(gw.http, "POST", &risky, "");
    assert_eq!(status, 200);
    assert!(header(&headers, "location").is_none());
    let (status, headers, _) = exchange(gw.http, "POST", &risky, "confirm=yes");
    assert_eq!(status, 302);
    assert_eq!(header(&headers, "location"), Some(RISKY));

    // Every click is in the message's trace, a moment later: GET good (allow),
    // GET and POST blocked (block twice), GET risky (warn), confirmed POST
    // (continued). Altered links name no message.
    let mut verdicts = Vec::new();
    wait_until("the clicks in the trace", Duration::from_secs(30), || {
        let t = gw.trace(&["--id", &trace]);
        verdicts = t[0]["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "clicked")
            .map(|e| {
                assert_eq!(e["recipient_hash"].as_str().unwrap().len(), 16, "{e}");
                assert_eq!(e["client_ip"], "127.0.0.1");
                format!(
                    "{} {}",
                    e["verdict"].as_str().unwrap(),
                    e["url"].as_str().unwrap()
                )
            })
            .collect();
        verdicts.len() >= 5
    });
    assert_eq!(
        verdicts,
        [
            format!("allow {GOOD}"),
            format!("block {BLOCKED}"),
            format!("block {BLOCKED}"),
            format!("warn {RISKY}"),
            format!("continued {RISKY}"),
        ]
    );

    // Administrators list who clicked a URL.
    let (status, body) =
        gw.http_get("/api/links/clicks?url=https%3A%2F%2Flogin.evil.example%2Freset");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let clicks = v["clicks"].as_array().unwrap();
    assert_eq!(clicks.len(), 2, "{v:#}");
    assert_eq!(clicks[0]["message"], trace.as_str());
    assert_eq!(clicks[0]["verdict"], "block");
    assert!(clicks[0]["at_rfc3339"].as_str().unwrap().ends_with('Z'));
    let (status, _) = gw.http_get("/api/links/clicks");
    assert_eq!(status, 400);

    // The command line says the same.
    for (url, code, word) in [
        (GOOD, 0, "allow"),
        (RISKY, 3, "warn"),
        (BLOCKED, 4, "block"),
    ] {
        let out = gw.cli(&["links", "check", url]);
        assert_eq!(out.status.code(), Some(code), "{url}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).starts_with(word));
    }
}
