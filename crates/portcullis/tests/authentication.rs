//! Sender authentication through SMTP: SPF, DKIM and DMARC evaluated against
//! dnsmasq serving test zones, with a DKIM key made in the test. A message that
//! passes gets our Authentication-Results; one failing DMARC from a p=reject
//! domain is refused in the session and one from a p=quarantine domain is held;
//! forged results claiming our name are removed.

mod common;
use common::{Dns, Gateway, Sink};

struct World {
    _dns: Dns,
    sink: Sink,
    gw: Gateway,
    key_pem: String,
    _keys: tempfile::TempDir,
}

fn world() -> World {
    let keys = tempfile::tempdir().expect("tempdir");
    let (key_pem, public) = common::rsa_key(keys.path());
    let dns = Dns::start(&[
        // pass.test: our client may send, signs with s1, asks for rejection.
        common::txt("pass.test", "v=spf1 ip4:127.0.0.1 -all"),
        common::txt(
            "s1._domainkey.pass.test",
            &format!("v=DKIM1; k=rsa; p={public}"),
        ),
        common::txt("_dmarc.pass.test", "v=DMARC1; p=reject"),
        // bank.test: nobody but 192.0.2.1 may send, and it wants forgeries rejected.
        common::txt("bank.test", "v=spf1 ip4:192.0.2.1 -all"),
        common::txt("_dmarc.bank.test", "v=DMARC1; p=reject"),
        // shop.test: the same, but asks for quarantine.
        common::txt("shop.test", "v=spf1 ip4:192.0.2.1 -all"),
        common::txt("_dmarc.shop.test", "v=DMARC1; p=quarantine"),
    ]);
    let sink = Sink::start(&[]);
    // Loopback is trusted by default, and trusted clients are not checked.
    let gw = Gateway::start(
        "trusted_networks = []",
        &format!(
            "{}\
             [scan.auth]\ntrusted_authserv_ids = [\"relay.example.test\"]\n",
            common::resolve_and_deliver(&dns, &sink)
        ),
    );
    World {
        _dns: dns,
        sink,
        gw,
        key_pem,
        _keys: keys,
    }
}

fn message(from: &str, extra: &str) -> String {
    format!(
        "{extra}From: {from}\r\nTo: bob@example.test\r\nSubject: statement\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <auth-{}@test>\r\n\r\n\
         Your statement is ready.\r\n",
        from.len()
    )
}

fn send(w: &World, mail_from: &str, data: &str) -> common::SwaksRun {
    w.gw.send_message(mail_from, "bob@example.test", data)
}

#[test]
fn a_signed_message_from_an_allowed_host_passes_and_carries_our_results() {
    let w = world();
    let body = message(
        "alice@pass.test",
        "Authentication-Results: gw.portcullis.test; dmarc=pass (forged)\r\n",
    );
    let signed = common::dkim_signed(&w.key_pem, "pass.test", &body);
    let run = send(&w, "alice@pass.test", &signed);
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let id = run.queue_id();
    let got = w.sink.wait_for(1);
    let m = &got[0];
    let ar = m
        .split("\nAuthentication-Results: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no Authentication-Results: {m}"));
    assert!(ar.starts_with("gw.portcullis.test"), "{m}");
    for want in ["dkim=pass", "spf=pass", "dmarc=pass"] {
        assert!(m.contains(want), "{want} missing:\n{m}");
    }
    // The forged field claiming our name is gone: ours is the only one.
    assert_eq!(m.matches("Authentication-Results:").count(), 1, "{m}");
    assert!(!m.contains("(forged)"), "{m}");

    let t = w.gw.wait_status(&id, "delivered");
    let names: Vec<String> = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "scanned")
        .flat_map(|e| e["symbols"].as_array().cloned().unwrap_or_default())
        .map(|s| s["name"].as_str().unwrap_or_default().to_string())
        .collect();
    for want in ["DKIM_PASS", "SPF_PASS", "DMARC_PASS"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
}

#[test]
fn a_forgery_of_a_p_reject_domain_is_refused_in_the_session() {
    let w = world();
    let run = send(&w, "security@bank.test", &message("security@bank.test", ""));
    assert!(
        run.server_said("550 5.7.1 Message rejected as phishing (DMARC_POLICY_REJECT:"),
        "{}",
        run.transcript
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(w.sink.messages().is_empty());
}

#[test]
fn a_forgery_of_a_p_quarantine_domain_is_held() {
    let w = world();
    let run = send(&w, "orders@shop.test", &message("orders@shop.test", ""));
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let id = run.queue_id();
    let t = w.gw.wait_status(&id, "quarantined");
    assert_eq!(t["category"], "phishing");
    let out = w.gw.cli(&["quarantine", "show", &id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("DMARC_POLICY_QUARANTINE") && text.contains("SPF_FAIL"),
        "{text}"
    );
}

#[test]
fn a_trusted_relays_dmarc_failure_counts_and_an_unknown_hosts_does_not() {
    let w = world();
    let trusted = message(
        "news@elsewhere.test",
        "Authentication-Results: relay.example.test; dmarc=fail header.from=elsewhere.test\r\n",
    );
    let run = send(&w, "news@elsewhere.test", &trusted);
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let t = w.gw.wait_status(&run.queue_id(), "delivered");
    let text = t.to_string();
    assert!(text.contains("UPSTREAM_DMARC_FAIL"), "{text}");

    let untrusted = message(
        "news@elsewhere.test",
        "Authentication-Results: random.test; dmarc=fail header.from=elsewhere.test\r\n",
    );
    let run = send(&w, "news@elsewhere.test", &untrusted);
    let t = w.gw.wait_status(&run.queue_id(), "delivered");
    assert!(!t.to_string().contains("UPSTREAM_DMARC_FAIL"), "{t}");
}
