//! Quarantine digests and retention against the real binary: mail held for
//! two users, `portcullis digest send --now`, each digest received by a real
//! smtp-sink, parsed as MIME and checked (only the user's own entries, text
//! and HTML, the links the release policy allows per category, hostile
//! subjects escaped); a link's GET does nothing, its POST releases once;
//! altered, expired and replayed links are refused. And the purge: nothing
//! is deleted before a digest listed it as expiring; pinned and extended
//! entries stay.

mod common;
use common::{Gateway, Sink};
use mail_parser::MimeHeaders;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// A gateway accepting example.test for the sink, holding mail by subject:
/// HOLDSPAM as spam, HOLDPHISH as phishing, HOLDMALWARE as malware. Digests
/// go out only when asked (`times = []`), so none races the test.
fn gateway(sink: &Sink) -> Gateway {
    let rule = |name: &str, word: &str, category: &str| {
        format!(
            "[[scan.rules]]\nname = \"{name}\"\npart = \"header\"\nheader = \"Subject\"\n\
             pattern = \"{word}\"\nscore = 9.0\ncategory = \"{category}\"\ndetail = \"test rule\"\n"
        )
    };
    Gateway::start(
        "",
        &format!(
            "[[domains]]\nname = \"example.test\"\ndeliver_to = \"smtp://127.0.0.1:{}\"\n{}{}{}\
             [digest]\ntimes = []\n",
            sink.port,
            rule("HOLD_SPAM", "HOLDSPAM", "spam"),
            rule("HOLD_PHISH", "HOLDPHISH", "phishing"),
            rule("HOLD_MALWARE", "HOLDMALWARE", "malware"),
        ),
    )
}

fn send(gw: &Gateway, to: &str, subject: &str) -> String {
    let header = format!("Subject: {subject}");
    let run = gw.swaks(&[
        "--from",
        "sender@outside.test",
        "--to",
        to,
        "--header",
        &header,
        "--body",
        "Please hold this.\n",
    ]);
    assert!(
        run.server_said("250 2.0.0 Ok: queued as"),
        "{}",
        run.transcript
    );
    let id = run.queue_id();
    gw.wait_status(&id, "quarantined");
    id
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn send_digests(gw: &Gateway) -> String {
    ok(&gw.cli(&["digest", "send", "--now"]))
}

/// One HTTP exchange: (status, head, body).
fn http(port: u16, method: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect http");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read");
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// The path of a link (`/q/...`).
fn path_of(url: &str) -> String {
    let at = url.find("/q/").expect("a /q/ link");
    url[at..].trim().to_string()
}

struct Digest {
    to: String,
    text: String,
    html: String,
}

/// The digests among the sink's messages (by their Auto-Submitted field).
fn digests(messages: &[String]) -> Vec<Digest> {
    messages
        .iter()
        .filter_map(|raw| {
            let m = mail_parser::MessageParser::default().parse(raw.as_bytes())?;
            m.header("Auto-Submitted")?;
            assert_eq!(
                m.content_type().map(|c| (c.ctype(), c.subtype())),
                Some(("multipart", Some("alternative"))),
                "{raw}"
            );
            assert!(m.subject()?.starts_with("Quarantine digest:"), "{raw}");
            let from = m.from()?.first()?.address()?.to_string();
            assert_eq!(from, "postmaster@gw.portcullis.test");
            Some(Digest {
                to: m.to()?.first()?.address()?.to_string(),
                text: m.body_text(0)?.to_string(),
                html: m.body_html(0)?.to_string(),
            })
        })
        .collect()
}

/// The entry of a text digest that mentions `word` (a blank-line block).
fn block<'a>(text: &'a str, word: &str) -> &'a str {
    text.split("\n\n")
        .find(|b| b.contains(word))
        .unwrap_or_else(|| panic!("no entry with {word} in:\n{text}"))
}

/// The link for `label` in an entry block.
fn link(block: &str, label: &str) -> Option<String> {
    block
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{label}: ")))
        .map(path_of)
}

fn status(gw: &Gateway, id: &str) -> (String, i64, bool) {
    let out = gw.cli(&["quarantine", "show", id, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let e = &v["entries"][0];
    (
        e["status"].as_str().unwrap_or_default().to_string(),
        e["expires_at"].as_i64().unwrap_or_default(),
        e["pinned"].as_bool().unwrap_or_default(),
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn each_user_gets_a_digest_of_their_own_held_mail_whose_links_act_once_on_post_only() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let spam = send(
        &gw,
        "alice@example.test",
        "HOLDSPAM cheap <script>alert(1)</script>\"><img src=x>",
    );
    let phish = send(&gw, "alice@example.test", "HOLDPHISH verify your account");
    let malware = send(&gw, "alice@example.test", "HOLDMALWARE invoice attached");
    let bobs = send(&gw, "bob@example.test", "HOLDSPAM for bob only");

    let said = send_digests(&gw);
    assert!(said.contains("queued 2 digests listing 4"), "{said}");
    let all = digests(&sink.wait_for(2));
    assert_eq!(all.len(), 2);
    let alice = all
        .iter()
        .find(|d| d.to == "alice@example.test")
        .expect("alice's digest");
    let bob = all
        .iter()
        .find(|d| d.to == "bob@example.test")
        .expect("bob's digest");

    // Each digest lists only its recipient's mail, in both parts.
    for part in [&alice.text, &alice.html] {
        assert!(part.contains("HOLDSPAM cheap"), "{part}");
        assert!(part.contains("HOLDPHISH verify your account"));
        assert!(part.contains("HOLDMALWARE invoice attached"));
        assert!(!part.contains("for bob only"));
    }
    assert!(bob.text.contains("HOLDSPAM for bob only") && bob.html.contains("for bob only"));
    assert!(!bob.text.contains("HOLDPHISH") && !bob.text.contains("alice"));
    // The hostile subject is data in the HTML part.
    assert!(!alice.html.contains("<script>"), "{}", alice.html);
    assert!(!alice.html.contains("<img src=x>"), "{}", alice.html);
    assert!(alice
        .html
        .contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x&gt;"));

    // Links per the default release policy: spam is released by its
    // recipient (and its sender may be allowed), phishing must be requested,
    // malware has none.
    let spam_block = block(&alice.text, "HOLDSPAM");
    let release = link(spam_block, "Release").expect("a release link for spam");
    let allow = link(spam_block, "Allow sender").expect("an allow-sender link for spam");
    assert_eq!(link(spam_block, "Request release"), None);
    let phish_block = block(&alice.text, "HOLDPHISH");
    let request = link(phish_block, "Request release").expect("a request link for phishing");
    assert_eq!(link(phish_block, "Release"), None);
    assert_eq!(link(phish_block, "Allow sender"), None);
    let malware_block = block(&alice.text, "HOLDMALWARE");
    assert!(!malware_block.contains("/q/"), "{malware_block}");
    assert!(malware_block.contains("Only an administrator"));
    // The HTML part has the same links.
    for l in [&release, &allow, &request] {
        assert!(alice.html.contains(l.as_str()), "{l} in {}", alice.html);
    }

    // Nothing new to report: a second run sends nothing.
    let again = send_digests(&gw);
    assert!(again.contains("queued 0 digests"), "{again}");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(sink.messages().len(), 2);

    // A GET (a scanner or a link preview) shows a confirmation and acts not.
    let (code, head, body) = http(gw.http, "GET", &release);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("<form method=\"post\">"), "{body}");
    assert!(body.contains("HOLDSPAM cheap &lt;script&gt;"), "{body}");
    assert!(!body.contains("<script>"), "{body}");
    for h in [
        "content-security-policy: default-src 'none'",
        "x-frame-options: deny",
        "referrer-policy: no-referrer",
        "cache-control: no-store",
    ] {
        assert!(head.contains(h), "{h} in {head}");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status(&gw, &spam).0, "held");
    assert_eq!(sink.messages().len(), 2);

    // The POST releases, to that recipient only.
    let (code, _, body) = http(gw.http, "POST", &release);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Released"), "{body}");
    let got = sink.wait_for(3);
    assert!(
        got.iter()
            .any(|m| m.contains("HOLDSPAM cheap") && !m.contains("Auto-Submitted")),
        "{got:?}"
    );
    common::wait_until(
        "the release to be delivered",
        Duration::from_secs(20),
        || status(&gw, &spam).0 == "delivered",
    );

    // The same link again: refused, and no second copy.
    let (code, _, body) = http(gw.http, "POST", &release);
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("already used"), "{body}");
    let (code, _, _) = http(gw.http, "GET", &release);
    assert_eq!(code, 409);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(sink.messages().len(), 3);

    // One character changed: not ours.
    let mut altered = release.clone().into_bytes();
    let i = altered.len() / 2;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for method in ["GET", "POST"] {
        let (code, _, body) = http(gw.http, method, &altered);
        assert_eq!(code, 403, "{method}: {body}");
        assert!(body.contains("not valid"), "{body}");
    }

    // Expired: a link signed with this gateway's key, a minute past its time.
    let key = portcullis_digest::LinkKey::load(&gw.data().join("digest-link.key"))
        .expect("the gateway made its link key");
    let claims = portcullis_digest::LinkClaims::new(
        portcullis_digest::LinkAction::RequestRelease,
        &phish,
        "alice@example.test",
        now_ms() / 1000 - 60,
    );
    let expired = format!("/q/{}", portcullis_digest::token::sign(&key, &claims));
    for method in ["GET", "POST"] {
        let (code, _, body) = http(gw.http, method, &expired);
        assert_eq!(code, 410, "{method}: {body}");
        assert!(body.contains("expired"), "{body}");
    }
    assert_eq!(status(&gw, &phish).0, "held");

    // A link made for alice's copy acts on nothing else: Bob's mail stays.
    // The phishing request goes to an administrator.
    let (code, _, body) = http(gw.http, "POST", &request);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Release requested"), "{body}");
    assert_eq!(status(&gw, &phish).0, "requested");
    let (code, _, body) = http(gw.http, "POST", &allow);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("sender@outside.test"), "{body}");
    assert_eq!(status(&gw, &bobs).0, "held");
    assert_eq!(status(&gw, &malware).0, "held");

    // The store remembers the allowed sender, for alice only.
    let db = rusqlite::Connection::open(gw.data().join("trace.sqlite")).unwrap();
    let rules: Vec<(String, String, String)> = db
        .prepare("SELECT recipient, sender, rule FROM sender_rules")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rules,
        [(
            "alice@example.test".into(),
            "sender@outside.test".into(),
            "allow".into()
        )]
    );
}

/// Sets `expires_at` of a held message's entries, with the gateway stopped.
fn set_expiry(gw: &Gateway, id: &str, at: i64) {
    let db = rusqlite::Connection::open(gw.data().join("trace.sqlite")).unwrap();
    let n = db
        .execute(
            "UPDATE held SET expires_at = ? WHERE message = ?",
            rusqlite::params![at, id],
        )
        .unwrap();
    assert_eq!(n, 1);
}

fn events(gw: &Gateway, id: &str) -> Vec<String> {
    gw.trace(&["--id", id])
        .first()
        .and_then(|m| m["events"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn nothing_is_purged_before_a_digest_listed_it_as_expiring_and_pinned_or_extended_mail_stays() {
    let sink = Sink::start(&[]);
    let mut gw = gateway(&sink);
    let purged = send(&gw, "carol@example.test", "HOLDSPAM one to purge");
    let pinned = send(&gw, "carol@example.test", "HOLDSPAM one to pin");
    let extended = send(&gw, "carol@example.test", "HOLDSPAM one to extend");
    let quarantine = gw.data().join("quarantine");
    let file = |id: &str| quarantine.join(format!("{id}.held"));

    // Past their expiry, but never listed in a digest: the purge (at start)
    // keeps them.
    gw.terminate();
    for id in [&purged, &pinned, &extended] {
        set_expiry(&gw, id, now_ms() - 3_600_000);
    }
    gw.spawn();
    std::thread::sleep(Duration::from_secs(2));
    for id in [&purged, &pinned, &extended] {
        assert_eq!(status(&gw, id).0, "held", "{id}");
        assert!(file(id).exists());
        assert!(!events(&gw, id).contains(&"purged".to_string()));
    }

    // The next digest lists them as expiring, and they are kept the warning
    // window (3 days) after it.
    let before = now_ms();
    send_digests(&gw);
    let d = digests(&sink.wait_for(1));
    let soon = d[0].text.split("Newly held").next().unwrap_or_default();
    assert!(soon.contains("To be deleted soon"), "{}", d[0].text);
    for subject in ["one to purge", "one to pin", "one to extend"] {
        assert!(soon.contains(subject), "{subject} in {}", d[0].text);
    }
    for id in [&purged, &pinned, &extended] {
        let (s, expires_at, _) = status(&gw, id);
        assert_eq!(s, "held");
        assert!(expires_at >= before + 3 * DAY_MS, "{id}: {expires_at}");
    }

    // An administrator pins one and extends another.
    let said = ok(&gw.cli(&["quarantine", "pin", &pinned]));
    assert!(said.contains("pinned"), "{said}");
    assert!(status(&gw, &pinned).2);
    let said = ok(&gw.cli(&["quarantine", "extend", &extended, "--days", "2"]));
    assert!(said.contains("kept until"), "{said}");
    assert!(status(&gw, &extended).1 >= before + 5 * DAY_MS);
    let bad = gw.cli(&["quarantine", "extend", &extended, "--days", "0"]);
    assert_eq!(bad.status.code(), Some(3), "{bad:?}");
    let unknown = gw.cli(&["quarantine", "pin", "NOSUCHMESSAGE0"]);
    assert_eq!(unknown.status.code(), Some(1), "{unknown:?}");

    // All three past their (new) expiry: only the one listed and neither
    // pinned nor extended since is purged, with its stored file.
    gw.terminate();
    for id in [&purged, &pinned, &extended] {
        set_expiry(&gw, id, now_ms() - 60_000);
    }
    gw.spawn();
    // Status first, then the audit line, then the stored file goes: wait for
    // the last step.
    common::wait_until("the purge at start", Duration::from_secs(30), || {
        status(&gw, &purged).0 == "expired" && !file(&purged).exists()
    });
    // The trace's writer records the event a moment after the status changed.
    common::wait_until("the purge in the trace", Duration::from_secs(10), || {
        events(&gw, &purged).contains(&"purged".to_string())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status(&gw, &pinned).0, "held");
    assert_eq!(status(&gw, &extended).0, "held");
    assert!(file(&pinned).exists() && file(&extended).exists());
    let db = rusqlite::Connection::open(gw.data().join("trace.sqlite")).unwrap();
    let (actor, target): (String, String) = db
        .query_row(
            "SELECT actor, target FROM audit WHERE action = 'expire'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (actor.as_str(), target.as_str()),
        ("retention", purged.as_str())
    );

    // A released copy cannot come back from an expired entry.
    let out = gw.cli(&["quarantine", "release", &purged]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}
