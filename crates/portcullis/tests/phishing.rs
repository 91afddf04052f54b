//! Phishing-style messages through SMTP against the real binary: links whose
//! text shows the organisation's domain while they lead to a lookalike, and a
//! newsletter with tracking links that must pass untouched.

mod common;
use common::{Gateway, Sink};

fn gateway(sink: &Sink) -> Gateway {
    Gateway::start(
        "",
        &format!(
            "[[domains]]\nname = \"example.test\"\ndeliver_to = \"smtp://127.0.0.1:{}\"\n\
             [scan]\nbrands = [\"paypal.com\"]\n",
            sink.port
        ),
    )
}

fn send_html(gw: &Gateway, from: &str, subject: &str, html: &str) -> common::SwaksRun {
    gw.swaks(&[
        "--from",
        from,
        "--to",
        "bob@example.test",
        "--header",
        &format!("Subject: {subject}"),
        "--header",
        "Content-Type: text/html; charset=utf-8",
        "--body",
        html,
    ])
}

#[test]
fn a_link_showing_our_domain_but_leading_to_a_lookalike_is_held_as_phishing() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let run = send_html(
        &gw,
        "it-support@helpdesk-mail.test",
        "Password expiry notice",
        "<p>Your password expires today.</p>\
         <p><a href=\"http://examp1e.test/owa/login\">https://mail.example.test/owa</a></p>",
    );
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let t = gw.wait_status(&run.queue_id(), "quarantined");
    assert_eq!(t["category"], "phishing", "{t:#}");
    let events = t["events"].to_string();
    assert!(events.contains("LINK_LOOKALIKE_OWN_DOMAIN"), "{events}");
    assert!(events.contains("examp1e.test"), "{events}");
    assert!(sink.messages().is_empty());
}

#[test]
fn a_brand_lookalike_behind_an_ip_and_userinfo_is_refused() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let run = send_html(
        &gw,
        "service@accounts-notice.test",
        "Your account is limited",
        "<a href=\"http://paypal.com@3232235777/verify\">https://www.paypal.com/verify</a> \
         <a href=\"https://paypa1.com/signin\">Sign in</a>",
    );
    assert!(
        run.server_said("550 5.7.1 Message rejected as phishing"),
        "{}",
        run.transcript
    );
}

#[test]
fn a_newsletter_with_tracking_links_is_delivered_clean() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let run = send_html(
        &gw,
        "news@shop.test",
        "This week's offers",
        "<p>Hello!</p><a href=\"https://click.shop.test/t?u=https%3A%2F%2Fshop.test%2Fsale\">See the sale</a> \
         <img src=\"https://track.shop.test/open.gif\" width=1 height=1>",
    );
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let t = gw.wait_status(&run.queue_id(), "delivered");
    assert_eq!(t["action"], "deliver", "{t:#}");
    assert!(!t["events"].to_string().contains("LINK_"), "{t:#}");
}
