//! Secure links in the message path: inbound mail from an external sender
//! reaches the downstream server (smtp-sink) with its links rewritten and an
//! ARC set that validates (mail-auth, against the gateway's key published in
//! dnsmasq); mail from the organisation's own servers is left alone; the
//! trace says who received which URL, and the link decodes to its original.

mod common;
use common::{Dns, Gateway, Sink};
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};

const HTML_MAIL: &str = "From: Alice <alice@pass.test>\r\nTo: bob@example.test\r\n\
Subject: your invoice\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <links-1@pass.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
See https://invoices.shop.test/inv/42 or write to mailto:billing@shop.test\r\n\
--b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
<p><a href=3D\"https://invoices.shop.test/inv/42\">your invoice</a>\r\n\
<a href=3D\"mailto:billing@shop.test\">mail us</a></p>\r\n\
--b1--\r\n";

struct World {
    _dns: Dns,
    sink: Sink,
    gw: Gateway,
    _dir: tempfile::TempDir,
    sender_key: String,
}

/// A gateway with links on; `trusted` lists its trusted networks.
fn world(trusted: &str) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sender_key, public) = common::rsa_key(dir.path());
    let dns = Dns::start(&[
        common::txt("pass.test", "v=spf1 ip4:127.0.0.1 -all"),
        common::txt(
            "s1._domainkey.pass.test",
            &format!("v=DKIM1; k=rsa; p={public}"),
        ),
        common::txt("_dmarc.pass.test", "v=DMARC1; p=reject"),
    ]);
    let sink = Sink::start(&[]);
    let gw = Gateway::start(
        &format!("trusted_networks = [{trusted}]"),
        &format!(
            "{}\
             [links]\nenabled = true\nhost = \"links.example.test\"\n\
             [[scan.rules]]\nname = \"HOLD_ME\"\npart = \"header\"\nheader = \"Subject\"\n\
             pattern = \"HOLDME\"\nscore = 9.0\ncategory = \"spam\"\ndetail = \"test rule\"\n",
            common::resolve_and_deliver(&dns, &sink)
        ),
    );
    World {
        _dns: dns,
        sink,
        gw,
        _dir: dir,
        sender_key,
    }
}

fn signed(w: &World, body: &str) -> String {
    common::dkim_signed(&w.sender_key, "pass.test", body)
}

fn send(w: &World, data: &str) -> common::SwaksRun {
    w.gw.send_message("alice@pass.test", "bob@example.test", data)
}

/// The message as the downstream server got it: smtp-sink's own X- lines
/// before it removed, line ends as on the wire.
fn delivered(dump: &str) -> Vec<u8> {
    let start = dump
        .find("\nARC-Seal:")
        .or_else(|| dump.find("\nAuthentication-Results:"))
        .or_else(|| dump.find("\nReceived:"))
        .map(|i| i + 1)
        .unwrap_or(0);
    let text = &dump[start..];
    let mut out = Vec::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn verifier(port: u16) -> MessageAuthenticator {
    let mut udp = ConnectionConfig::udp();
    udp.port = port;
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = port;
    let servers = vec![NameServerConfig::new(
        "127.0.0.1".parse().expect("ip"),
        true,
        vec![udp, tcp],
    )];
    MessageAuthenticator::new(
        ResolverConfig::from_name_servers(servers),
        ResolverOpts::default(),
    )
    .expect("resolver")
}

/// The message's ARC chain is ours (i=1), validates against the key the
/// gateway generated, published as `links arc-record` prints it, and carries
/// the sender's passing results although its DKIM no longer verifies.
fn assert_sealed_by_us(w: &World, dump: &str) {
    assert!(dump.contains("ARC-Seal: i=1; a=rsa-sha256"), "{dump}");
    let record = w.gw.cli(&["links", "arc-record"]);
    let record = String::from_utf8_lossy(&record.stdout).to_string();
    assert!(
        record.starts_with("portcullis._domainkey.gw.portcullis.test."),
        "{record}"
    );
    let value: String = record
        .split('"')
        .skip(1)
        .step_by(2)
        .collect::<Vec<_>>()
        .concat();
    assert!(value.starts_with("v=DKIM1; k=rsa; p="), "{record}");
    let published = Dns::start(&[common::txt(
        "portcullis._domainkey.gw.portcullis.test",
        &value,
    )]);
    let raw = delivered(dump);
    let message = AuthenticatedMessage::parse(&raw).expect("parse delivered");
    let auth = verifier(published.port);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let arc = rt.block_on(auth.verify_arc(&message));
    assert_eq!(arc.result(), &DkimResult::Pass, "{dump}");
    // The sender's DKIM signature no longer verifies over the changed body:
    // what the seal is for. Its result is carried in the seal.
    let dkim = rt.block_on(auth.verify_dkim(&message));
    assert!(
        !dkim.iter().any(|d| d.result() == &DkimResult::Pass),
        "{dkim:?}"
    );
    let aar = dump
        .split("ARC-Authentication-Results: ")
        .nth(1)
        .expect("AAR");
    let aar: String = aar.lines().take(6).collect();
    assert!(
        aar.contains("dkim=pass") && aar.contains("dmarc=pass"),
        "{aar}"
    );
}

#[test]
fn inbound_links_are_rewritten_and_the_arc_seal_validates() {
    let w = world("");
    let run = send(&w, &signed(&w, HTML_MAIL));
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let id = run.queue_id();
    let got = w.sink.wait_for(1);
    let dump = &got[0];

    // Both parts' links point at the link host; mailto is left alone; the
    // original URL is nowhere in the body any more.
    assert!(
        dump.matches("https://links.example.test/l/").count() >= 2,
        "{dump}"
    );
    assert!(!dump.contains("https://invoices.shop.test"), "{dump}");
    assert_eq!(
        dump.matches("mailto:billing@shop.test").count(),
        2,
        "{dump}"
    );
    assert!(dump.contains(">your invoice</a>"), "link text kept: {dump}");

    // The link decodes to the original, for this message and recipient.
    let link_start = dump
        .find("https://links.example.test/l/")
        .expect("a secure link");
    let link: String = dump[link_start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "/:._-".contains(*c))
        .collect();
    let out = w.gw.cli(&["links", "decode", &link]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("url: https://invoices.shop.test/inv/42"),
        "{text}"
    );
    assert!(text.contains(&format!("message: {id}")), "{text}");

    // The ARC set is ours, first in the chain, and validates against the key
    // the gateway generated, published as `links arc-record` prints it.
    assert_sealed_by_us(&w, dump);

    // The trace knows which URLs the message carried, and who received them.
    let t = w.gw.wait_status(&id, "delivered");
    let event = t["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["kind"] == "links_rewritten")
        .cloned()
        .unwrap_or_else(|| panic!("no links_rewritten event: {t}"));
    assert_eq!(event["rewritten"], 2, "{event}");
    assert_eq!(event["arc_sealed"], true, "{event}");
    assert_eq!(event["urls"][0], "https://invoices.shop.test/inv/42");
    let out = w.gw.cli(&["links", "exposure", "--domain", "shop.test"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("received (1 messages)"), "{text}");
    assert!(
        text.contains(&id) && text.contains("bob@example.test"),
        "{text}"
    );
}

#[test]
fn mail_from_the_organisations_own_servers_is_not_rewritten() {
    // Loopback trusted: the client is one of our servers.
    let w = world("\"127.0.0.0/8\"");
    let run = send(&w, HTML_MAIL);
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let got = w.sink.wait_for(1);
    assert!(
        got[0].contains("https://invoices.shop.test/inv/42"),
        "{}",
        got[0]
    );
    assert!(!got[0].contains("links.example.test"), "{}", got[0]);
    assert!(!got[0].contains("ARC-Seal:"), "{}", got[0]);
}

#[test]
fn the_arc_record_is_stable_and_the_generated_key_private() {
    let w = world("");
    let first = w.gw.cli(&["links", "arc-record"]);
    let second = w.gw.cli(&["links", "arc-record"]);
    assert!(first.status.success());
    assert_eq!(first.stdout, second.stdout);
    let key = w.gw.data().join("links/arc/portcullis.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key).expect("key file").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "{key:?}");
    assert!(!w.gw.log().contains("PRIVATE KEY"));
}

#[test]
fn held_mail_is_rewritten_and_sealed_when_it_is_released() {
    let w = world("");
    let held = HTML_MAIL.replace("Subject: your invoice", "Subject: HOLDME your invoice");
    let run = send(&w, &signed(&w, &held));
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let id = run.queue_id();
    w.gw.wait_status(&id, "quarantined");
    // Held as it came: the preview and a re-scan see the original links.
    let out = w.gw.cli(&["quarantine", "show", &id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("links.example.test"), "{text}");

    let out = w.gw.cli(&["quarantine", "release", &id]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = w.sink.wait_for(1);
    let dump = &got[0];
    assert!(dump.contains("https://links.example.test/l/"), "{dump}");
    assert!(!dump.contains("https://invoices.shop.test"), "{dump}");
    assert_sealed_by_us(&w, dump);
    // The links belong to the released copy's trace.
    // "released ID to RECIPIENTS as RELEASE-ID"
    let release_id = text
        .trim()
        .rsplit(" as ")
        .next()
        .unwrap_or_else(|| panic!("no release id in {text:?}"))
        .to_string();
    let t = w.gw.wait_status(&release_id, "delivered");
    assert!(
        t["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["kind"] == "links_rewritten" && e["arc_sealed"] == true),
        "{t}"
    );
}
