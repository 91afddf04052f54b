//! DNS block and allow lists through SMTP, answered by a real DNS server: the
//! client's address and the domains a message names are asked of the lists in
//! `[scan.dnsbl]`, listings add their symbols to the verdict, and a list's
//! error answers are reported, never counted.

mod common;
use common::{Dns, Gateway, Sink};

struct World {
    _dns: Dns,
    sink: Sink,
    gw: Gateway,
}

fn world() -> World {
    // The tests connect from 127.0.0.1: its query name is 1.0.0.127.<zone>.
    let dns = Dns::start(&[
        "--host-record=1.0.0.127.zen.test,127.0.0.4".to_string(),
        "--host-record=evil.test.dbl.test,127.0.1.2".to_string(),
        // A list that refuses this resolver (Spamhaus's public-resolver answer).
        "--host-record=1.0.0.127.refusing.test,127.255.255.254".to_string(),
        // A list answering a code the admin did not ask for.
        "--host-record=1.0.0.127.pbl.test,127.0.0.11".to_string(),
    ]);
    let sink = Sink::start(&[]);
    let gw = Gateway::start(
        // Loopback is trusted by default, and trusted clients are not checked.
        "trusted_networks = []",
        &format!(
            "{}\
             [scan.auth]\nenabled = false\n\
             [[scan.dnsbl.lists]]\nzone = \"zen.test\"\nkind = \"ip\"\nsymbol = \"RCVD_IN_ZEN\"\nscore = 6.0\n\
             codes = [\"127.0.0.2\", \"127.0.0.3\", \"127.0.0.4\"]\n\
             [[scan.dnsbl.lists]]\nzone = \"pbl.test\"\nkind = \"ip\"\nsymbol = \"RCVD_IN_PBL\"\nscore = 3.0\n\
             codes = [\"127.0.0.10\"]\n\
             [[scan.dnsbl.lists]]\nzone = \"refusing.test\"\nkind = \"ip\"\nsymbol = \"RCVD_IN_REFUSING\"\nscore = 50.0\n\
             [[scan.dnsbl.lists]]\nzone = \"dbl.test\"\nkind = \"domain\"\nsymbol = \"URIBL_DBL\"\nscore = 4.0\n",
            common::resolve_and_deliver(&dns, &sink)
        ),
    );
    World {
        _dns: dns,
        sink,
        gw,
    }
}

fn send(w: &World, name: &str, body: &str) -> common::SwaksRun {
    let data = format!(
        "From: Shop <news@shop.test>\r\nTo: bob@example.test\r\nSubject: offers\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{name}@shop.test>\r\n\r\n{body}\r\n"
    );
    w.gw.send_message("news@shop.test", "bob@example.test", &data)
}

/// The symbols of the trace's scan, as `(name, score, detail)`.
fn symbols(t: &serde_json::Value) -> Vec<(String, f64, String)> {
    t["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "scanned")
        .flat_map(|e| e["symbols"].as_array().cloned().unwrap_or_default())
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_string(),
                s["score"].as_f64().unwrap_or_default(),
                s["detail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_listed_client_and_a_listed_link_domain_add_up_and_errors_do_not_count() {
    let w = world();
    let run = send(
        &w,
        "both",
        "Our offers: http://www.evil.test/deal and https://shop.test/",
    );
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let t = w.gw.wait_status(&run.queue_id(), "quarantined");
    let found = symbols(&t);
    let names: Vec<&str> = found.iter().map(|s| s.0.as_str()).collect();
    let zen = found
        .iter()
        .find(|s| s.0 == "RCVD_IN_ZEN")
        .expect("RCVD_IN_ZEN");
    assert_eq!(zen.1, 6.0);
    assert!(
        zen.2.contains("zen.test lists 127.0.0.1 (127.0.0.4)"),
        "{zen:?}"
    );
    let dbl = found
        .iter()
        .find(|s| s.0 == "URIBL_DBL")
        .expect("URIBL_DBL");
    assert!(dbl.2.contains("dbl.test lists evil.test"), "{dbl:?}");
    // The refusal is reported with its answer, and not counted as a listing.
    assert!(!names.contains(&"RCVD_IN_REFUSING"), "{names:?}");
    let error = found
        .iter()
        .find(|s| s.0 == "DNSBL_ERROR")
        .expect("DNSBL_ERROR");
    assert_eq!(error.1, 0.0);
    assert!(
        error.2.contains("refusing.test answered 127.255.255.254"),
        "{error:?}"
    );
    // An answer outside the codes the admin chose is no listing either.
    assert!(!names.contains(&"RCVD_IN_PBL"), "{names:?}");
    // The admin learns of the refusing list from the metrics and the log.
    let (status, metrics) = w.gw.http_get("/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("portcullis_dnsbl_problems_total{problem=\"error\"} 1"),
        "{metrics}"
    );
    assert!(w
        .gw
        .log()
        .contains("refusing.test answered 127.255.255.254"));
}

#[test]
fn a_listed_client_alone_tags_and_the_mail_is_delivered() {
    let w = world();
    let run = send(&w, "client", "Our offers: https://shop.test/");
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let t = w.gw.wait_status(&run.queue_id(), "delivered");
    let names: Vec<String> = symbols(&t).into_iter().map(|s| s.0).collect();
    assert!(names.contains(&"RCVD_IN_ZEN".to_string()), "{names:?}");
    assert!(!names.contains(&"URIBL_DBL".to_string()), "{names:?}");
    let got = w.sink.wait_for(1);
    assert!(got[0].contains("X-Spam-Flag: YES"), "{}", got[0]);
    assert!(got[0].contains("RCVD_IN_ZEN"), "{}", got[0]);
}
