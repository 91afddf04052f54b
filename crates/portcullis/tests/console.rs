//! The web console in a real browser: Debian's chromium, driven by
//! playwright-core (`tests/browser/console.mjs`), against the real binary.
//! An administrator signs in, filters held mail by the rule that held it,
//! opens a message, reads the verdict and the safe preview, releases it and
//! sees it delivered, and the copy arrives at the sink; a user then sees only
//! their own held mail, and a hostile subject stays text.
//!
//! The pictures go to a temporary folder; to refresh the ones in the
//! repository: `CONSOLE_SCREENSHOTS=docs/screenshots cargo nextest run -p
//! portcullis --test console`.
//!
//! A missing browser, node or playwright-core fails the test with the install
//! hint: `scripts/install-peers.sh`.

mod common;
use common::{browser_tools, repo, Gateway, Sink, CHROMIUM};
use std::process::Command;

const PASSWORD: &str = "correct horse battery staple";

fn hash() -> String {
    common::password_hash(PASSWORD)
}

/// Sends a multipart message (text with a link, a small attachment) and waits
/// until it is held; returns its id.
fn hold(gw: &Gateway, to: &str, subject: &str) -> String {
    let data = format!(
        "From: Sender <news@outside.test>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
         Message-ID: <{n}@outside.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello,\r\n\r\nplease release me. Details: https://example.test/track?id=1\r\n\r\n\
         --b1\r\nContent-Type: text/plain; name=\"notes.txt\"\r\n\
         Content-Disposition: attachment; filename=\"notes.txt\"\r\n\r\n\
         some notes\r\n--b1--\r\n",
        n = subject.len() + to.len() * 31,
    );
    let file = gw.dir.path().join(format!("msg-{}.eml", subject.len()));
    std::fs::write(&file, data).expect("write message");
    let run = gw.swaks(&[
        "--from",
        "news@outside.test",
        "--to",
        to,
        "--data",
        &file.display().to_string(),
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

#[test]
fn an_admin_releases_from_the_console_and_a_user_sees_only_their_own_mail() {
    let node = browser_tools();
    let sink = Sink::start(&[]);
    let h = hash();
    let rule = |name: &str, word: &str| {
        format!(
            "[[scan.rules]]\nname = \"{name}\"\npart = \"header\"\nheader = \"Subject\"\n\
             pattern = \"{word}\"\nscore = 9.0\ncategory = \"spam\"\n\
             detail = \"the subject says {word}\"\n"
        )
    };
    // Loopback is not trusted: the browser runs on this host, and must sign in.
    let gw = Gateway::start(
        "",
        &format!(
            "trust_loopback = false\n\
             [[domains]]\nname = \"example.test\"\ndeliver_to = \"smtp://127.0.0.1:{port}\"\n\
             [[users]]\nname = \"root\"\npassword_hash = \"{h}\"\nrole = \"admin\"\n\
             [[users]]\nname = \"alice@example.test\"\npassword_hash = \"{h}\"\n\
             [[users]]\nname = \"bob@example.test\"\npassword_hash = \"{h}\"\n\
             {}{}",
            rule("HOLD_CONSOLE", "CONSOLEHOLD"),
            rule("HOLD_OTHER", "OTHERHOLD"),
            port = sink.port,
        ),
    );
    let release = "CONSOLEHOLD quarterly report for carol";
    let own = "CONSOLEHOLD <img src=x onerror=alert(1)> for alice";
    let other = "CONSOLEHOLD private note for bob";
    let unrelated = "OTHERHOLD weekly digest";
    hold(&gw, "carol@example.test", release);
    hold(&gw, "alice@example.test", own);
    let bobs = hold(&gw, "bob@example.test", other);
    hold(&gw, "carol@example.test", unrelated);
    assert!(sink.messages().is_empty(), "held mail reached the sink");

    let shots = match std::env::var_os("CONSOLE_SCREENSHOTS") {
        Some(dir) => repo().join(dir),
        None => gw.dir.path().join("screenshots"),
    };
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let out = Command::new(node)
        .arg(repo().join("tests/browser/console.mjs"))
        .env("CONSOLE_URL", format!("http://127.0.0.1:{}", gw.http))
        .env("CONSOLE_PASSWORD", PASSWORD)
        .env("CONSOLE_ADMIN", "root")
        .env("CONSOLE_USER", "alice@example.test")
        .env("CONSOLE_USER_ADDRESS", "alice@example.test")
        .env("CONSOLE_SYMBOL", "HOLD_CONSOLE")
        .env("CONSOLE_RELEASE", release)
        .env("CONSOLE_OWN", own)
        .env("CONSOLE_OTHER", other)
        .env("CONSOLE_OTHER_ID", &bobs)
        .env("CONSOLE_UNRELATED", unrelated)
        .env("CONSOLE_SHOTS", &shots)
        .env("CHROMIUM", CHROMIUM)
        .output()
        .expect("run node");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the browser run failed:\n{said}\n{}",
        gw.log()
    );
    assert!(said.contains("console: all steps passed"), "{said}");

    // The copy the admin released is at the sink, and nothing else.
    let got = sink.wait_for(1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains(release), "{}", got[0]);
    assert!(got[0].contains("please release me"));
    for shot in ["console-list.png", "console-details.png"] {
        let png = std::fs::read(shots.join(shot)).expect(shot);
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{shot}");
    }
}
