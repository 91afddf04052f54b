//! Inbound SMTP against the real binary with swaks and raw sockets: the ESMTP
//! dialogue, TLS, submission with AUTH, relay rules, SMTP smuggling and limits.

mod common;
use common::{Gateway, Raw, Sink};

fn domain_to(sink: &Sink) -> String {
    format!(
        "[[domains]]\nname = \"example.test\"\ndeliver_to = \"smtp://127.0.0.1:{}\"\n",
        sink.port
    )
}

#[test]
fn plain_message_is_queued_delivered_and_traced() {
    let sink = Sink::start(&[]);
    let gw = Gateway::start("", &domain_to(&sink));
    let run = gw.swaks(&[
        "--from",
        "alice@sender.test",
        "--to",
        "bob@example.test",
        "--header",
        "Subject: quarterly report",
        "--header",
        "Message-Id: <plain-1@sender.test>",
    ]);
    assert!(run.ok, "{}", run.transcript);
    assert!(
        run.server_said("250 2.0.0 Ok: queued as"),
        "{}",
        run.transcript
    );
    let id = run.queue_id();

    let got = sink.wait_for(1);
    assert!(
        got[0].contains("X-Rcpt-Args: <bob@example.test>"),
        "{}",
        got[0]
    );
    assert!(got[0].contains("Subject: quarterly report"));
    assert!(
        got[0].contains(&format!("id {id}")),
        "Received header names the queue id: {}",
        got[0]
    );

    let m = gw.wait_status(&id, "delivered");
    assert_eq!(m["mail_from"], "alice@sender.test");
    assert_eq!(m["subject"], "quarterly report");
    assert_eq!(m["client_ip"], "127.0.0.1");
    assert_eq!(m["recipients"][0]["status"], "delivered");
    // Found by Message-ID with and without brackets.
    assert_eq!(
        gw.trace(&["--message-id", "plain-1@sender.test"])[0]["id"],
        id
    );
    assert_eq!(
        gw.trace(&["--message-id", "<plain-1@sender.test>"])[0]["id"],
        id
    );
    // And through the API.
    let (status, body) = gw.http_get("/api/messages?message_id=plain-1@sender.test");
    assert_eq!(status, 200);
    assert!(
        body.contains(&id) && body.contains("\"delivered\""),
        "{body}"
    );
}

#[test]
fn starttls_is_recorded_in_the_received_header_and_the_trace() {
    let sink = Sink::start(&[]);
    let gw = Gateway::start("", &domain_to(&sink));
    let run = gw.swaks(&["-tls", "--from", "a@sender.test", "--to", "b@example.test"]);
    assert!(run.ok, "{}", run.transcript);
    assert!(run.server_said("220 2.0.0"), "{}", run.transcript);
    let id = run.queue_id();
    let got = sink.wait_for(1);
    let received = got[0]
        .lines()
        .skip_while(|l| !l.contains(&format!("id {id}")))
        .take(1)
        .collect::<String>();
    assert!(got[0].contains("with ESMTPS id"), "{}", got[0]);
    assert!(
        got[0].contains("version=TLSv1.3") || got[0].contains("TLSv1.3"),
        "{}",
        got[0]
    );
    assert!(!received.is_empty(), "{}", got[0]);
    let m = gw.wait_status(&id, "delivered");
    assert!(
        m["tls"].as_str().unwrap_or("").starts_with("TLSv1."),
        "{m:#}"
    );
}

fn hash(password: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(common::BIN)
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let h = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(h.starts_with("$argon2id$"), "{h}");
    h
}

fn submission_gateway(sink: &Sink) -> Gateway {
    let users = format!(
        "[[users]]\nname = \"alice@example.test\"\npassword_hash = \"{}\"\n[auth]\nmax_failures = 3\nlockout = \"10m\"\n\
         [relay]\nsmarthost = \"smtp://127.0.0.1:{}\"\n{}",
        hash("correct horse"),
        sink.port,
        domain_to(sink)
    );
    // Nobody is trusted: only a login lets a client send outside example.test.
    Gateway::start("trusted_networks = []", &users)
}

#[test]
fn submission_offers_auth_only_under_tls_and_relays_for_users() {
    let sink = Sink::start(&[]);
    let gw = submission_gateway(&sink);
    let port = gw.submission;

    // Before STARTTLS: no AUTH in EHLO, and MAIL needs a login.
    let mut raw = Raw::connect(port);
    let ehlo = raw.cmd("EHLO client.test");
    assert!(
        ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    assert!(raw
        .cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABjb3JyZWN0IGhvcnNl")
        .starts_with("538 5.7.11"));
    assert!(raw
        .cmd("MAIL FROM:<alice@example.test>")
        .starts_with("530 5.7.0"));

    // PLAIN and LOGIN under STARTTLS, then mail to a foreign domain goes to the smarthost.
    for mech in ["PLAIN", "LOGIN"] {
        let run = common::swaks(
            port,
            &[
                "-tls",
                "-a",
                mech,
                "-au",
                "alice@example.test",
                "-ap",
                "correct horse",
                "--from",
                "alice@example.test",
                "--to",
                "friend@outside.test",
            ],
        );
        assert!(run.ok, "{}", run.transcript);
        assert!(run.server_said("235 2.7.0"), "{}", run.transcript);
        let m = gw.wait_status(&run.queue_id(), "delivered");
        assert_eq!(m["auth_user"], "alice@example.test");
    }
    let got = sink.wait_for(2);
    assert!(got.iter().all(|m| m.contains("X-Rcpt-Args: <friend@outside.test>") && m.contains("with ESMTPSA")), "{got:?}");
    assert!(
        !gw.log().contains("correct horse"),
        "the password reached the log"
    );
}

#[test]
fn implicit_tls_submission_on_465() {
    let sink = Sink::start(&[]);
    let gw = submission_gateway(&sink);
    let run = common::swaks(
        gw.submissions,
        &[
            "--tlsc",
            "-a",
            "PLAIN",
            "-au",
            "alice@example.test",
            "-ap",
            "correct horse",
            "--from",
            "alice@example.test",
            "--to",
            "x@outside.test",
        ],
    );
    assert!(run.ok, "{}", run.transcript);
    gw.wait_status(&run.queue_id(), "delivered");
}

#[test]
fn failed_logins_are_refused_then_locked_out() {
    let sink = Sink::start(&[]);
    let gw = submission_gateway(&sink);
    // max_failures = 3: two plain refusals, and the third failure closes the session.
    for attempt in 1..=3 {
        let run = common::swaks(
            gw.submission,
            &[
                "-tls",
                "-a",
                "PLAIN",
                "-au",
                "alice@example.test",
                "-ap",
                "wrong",
                "--from",
                "alice@example.test",
                "--to",
                "x@outside.test",
            ],
        );
        assert!(!run.ok);
        let expected = if attempt < 3 {
            "535 5.7.8"
        } else {
            "421 4.7.0"
        };
        assert!(
            run.server_said(expected),
            "attempt {attempt}: {}",
            run.transcript
        );
    }
    // Now even the right password is refused from this address for a while.
    let run = common::swaks(
        gw.submission,
        &[
            "-tls",
            "-a",
            "PLAIN",
            "-au",
            "alice@example.test",
            "-ap",
            "correct horse",
            "--from",
            "alice@example.test",
            "--to",
            "x@outside.test",
        ],
    );
    assert!(!run.ok, "{}", run.transcript);
    assert!(run.server_said("421 4.7.0"), "{}", run.transcript);
    assert!(!gw.log().contains("wrong"), "a password reached the log");
}

#[test]
fn no_open_relay_for_strangers() {
    let sink = Sink::start(&[]);
    let gw = Gateway::start("trusted_networks = []", &domain_to(&sink));
    let run = gw.swaks(&[
        "--from",
        "spammer@evil.test",
        "--to",
        "victim@elsewhere.test",
    ]);
    assert!(!run.ok);
    assert!(run.server_said("550 5.7.1"), "{}", run.transcript);
    // The trace records the refusal with the reason the client got.
    // (The trace is written asynchronously, a few milliseconds behind.)
    let rejected = gw.wait_trace(&["--from", "spammer@evil.test"], 1);
    assert_eq!(rejected[0]["status"], "rejected", "{rejected:?}");
    assert!(rejected[0]["reason"]
        .as_str()
        .unwrap_or("")
        .contains("5.7.1"));
    // Mail for the accepted domain still comes in from anyone.
    let run = gw.swaks(&["--from", "friend@evil.test", "--to", "bob@EXAMPLE.test"]);
    assert!(run.ok, "{}", run.transcript);
    sink.wait_for(1);
    let (_, metrics) = gw.http_get("/metrics");
    assert!(
        metrics.contains(
            "portcullis_smtp_messages_total{reason=\"relay_denied\",result=\"refused\"} 1"
        ),
        "{metrics}"
    );
}

/// Every bare-line-ending variant of the end-of-data marker, each followed by an
/// attempt to smuggle a second transaction.
const SMUGGLING: [&str; 8] = [
    "\n.\n",
    "\n.\r\n",
    "\r.\r",
    "\r.\r\n",
    "\r\n.\n",
    "\r\n.\r",
    "\n.\r",
    "\r\n.\r\r\n",
];

fn smuggling_payload(variant: &str) -> Vec<u8> {
    format!(
        "From: a@sender.test\r\nSubject: innocent\r\n\r\nhello{variant}MAIL FROM:<ceo@example.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nwire the money\r\n.\r\n"
    )
    .into_bytes()
}

/// Sends one variant byte for byte (`--no-data-fixup`) through swaks.
fn send_smuggling(gw: &Gateway, i: usize, variant: &str) -> common::SwaksRun {
    let file = gw.dir.path().join(format!("smuggle-{i}.eml"));
    std::fs::write(&file, smuggling_payload(variant)).unwrap();
    gw.swaks(&[
        "--from",
        "a@sender.test",
        "--to",
        "bob@example.test",
        "--data",
        file.to_str().unwrap(),
        "--no-data-fixup",
    ])
}

#[test]
fn smuggling_variants_are_refused_by_default() {
    let sink = Sink::start(&[]);
    let gw = Gateway::start("", &domain_to(&sink));
    for (i, variant) in SMUGGLING.iter().enumerate() {
        let run = send_smuggling(&gw, i, variant);
        assert!(!run.ok, "variant {variant:?} accepted:\n{}", run.transcript);
        assert!(
            run.server_said("550 5.5.2"),
            "variant {variant:?}:\n{}",
            run.transcript
        );
        assert!(
            !run.server_said("250 2.0.0 Ok: queued"),
            "variant {variant:?}:\n{}",
            run.transcript
        );
    }
    // A clean message afterwards proves the sessions stayed in step, and it is
    // the only thing that ever reaches the sink.
    let run = gw.swaks(&["--from", "a@sender.test", "--to", "bob@example.test"]);
    assert!(run.ok, "{}", run.transcript);
    gw.wait_status(&run.queue_id(), "delivered");
    let got = sink.messages();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(!got[0].contains("smuggled"));
    gw.wait_trace(&["--status", "rejected"], SMUGGLING.len());
}

#[test]
fn smuggling_variants_are_normalised_into_one_message_when_configured() {
    let sink = Sink::start(&[]);
    let gw = Gateway::start("bare_newlines = \"normalise\"", &domain_to(&sink));
    for (i, variant) in SMUGGLING.iter().enumerate() {
        let run = send_smuggling(&gw, i, variant);
        assert!(run.ok, "variant {variant:?}:\n{}", run.transcript);
        gw.wait_status(&run.queue_id(), "delivered");
    }
    let got = sink.wait_for(SMUGGLING.len());
    assert_eq!(got.len(), SMUGGLING.len(), "a message was split in two");
    for m in &got {
        // The would-be second transaction is body text of the first, for one recipient.
        assert_eq!(m.matches("X-Rcpt-Args:").count(), 1, "{m}");
        assert!(m.contains("X-Rcpt-Args: <bob@example.test>"), "{m}");
        assert!(m.contains("wire the money"), "{m}");
        assert!(
            !m.replace("\r\n", "").contains('\r'),
            "a bare CR went downstream: {m:?}"
        );
    }
}

#[test]
fn pipelined_commands_and_several_recipients() {
    let sink = Sink::start(&[]);
    let gw = Gateway::start("", &domain_to(&sink));
    let run = gw.swaks(&[
        "--pipeline",
        "--from",
        "a@sender.test",
        "--to",
        "b1@example.test,b2@example.test,b3@example.test",
    ]);
    assert!(run.ok, "{}", run.transcript);
    let m = gw.wait_status(&run.queue_id(), "delivered");
    assert_eq!(m["recipients"].as_array().unwrap().len(), 3);
    let got = sink.wait_for(1);
    assert_eq!(
        got.iter()
            .map(|m| m.matches("X-Rcpt-Args:").count())
            .sum::<usize>(),
        3
    );
}

#[test]
fn commands_pipelined_behind_starttls_are_discarded() {
    let gw = Gateway::start("", "[[domains]]\nname = \"example.test\"\n");
    let mut raw = Raw::connect(gw.smtp);
    raw.cmd("EHLO attacker.test");
    // The injected MAIL FROM arrives in the same packet as STARTTLS.
    raw.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n");
    assert!(raw.reply().starts_with("220 2.0.0"));
    let mut tls = common::tls_client(raw.stream);
    // Had the injected MAIL survived, this RCPT would be accepted.
    let reply = common::tls_cmd(&mut tls, "RCPT TO:<bob@example.test>");
    assert!(reply.starts_with("503 5.5.1"), "{reply}");
    assert!(common::tls_cmd(&mut tls, "EHLO attacker.test").starts_with("250"));
    assert!(common::tls_cmd(&mut tls, "MAIL FROM:<a@sender.test>").starts_with("250 2.1.0"));
}

#[test]
fn limits_and_replies_carry_enhanced_status_codes() {
    let gw = Gateway::start(
        "max_message_size = 20000\nmax_recipients = 2\nmax_connections_per_ip = 3",
        "[[domains]]\nname = \"example.test\"\n",
    );
    let mut raw = Raw::connect(gw.smtp);
    let ehlo = raw.cmd("EHLO client.test");
    for ext in [
        "PIPELINING",
        "SIZE 20000",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
        "CHUNKING",
        "DSN",
    ] {
        assert!(ehlo.contains(ext), "{ext} missing from {ehlo}");
    }
    assert!(raw.cmd("VRFY bob").starts_with("252 2.5.2"));
    assert!(raw.cmd("NOOP").starts_with("250 2.0.0"));
    assert!(raw.cmd("FROB").starts_with("500 5.5.1"));
    assert!(raw
        .cmd("RCPT TO:<bob@example.test>")
        .starts_with("503 5.5.1"));
    assert!(raw
        .cmd("MAIL FROM:<a@sender.test> SIZE=30000")
        .starts_with("552 5.3.4"));
    assert!(raw
        .cmd("MAIL FROM:<a@sender.test> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=x1")
        .starts_with("250 2.1.0"));
    assert!(raw
        .cmd("RCPT TO:<b1@example.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b1@example.test")
        .starts_with("250 2.1.5"));
    assert!(raw
        .cmd("RCPT TO:<b2@example.test>")
        .starts_with("250 2.1.5"));
    assert!(raw
        .cmd("RCPT TO:<b3@example.test>")
        .starts_with("452 4.5.3"));
    assert!(raw.cmd("DATA").starts_with("354"));
    let line = "x".repeat(100);
    let big = format!(
        "Subject: big\r\n\r\n{}\r\n.\r\n",
        vec![line.as_str(); 300].join("\r\n")
    );
    raw.send(big.as_bytes());
    assert!(raw.reply().starts_with("552 5.3.4"));
    assert!(raw.cmd("RSET").starts_with("250 2.0.0"));

    // BDAT (CHUNKING) with a message that holds a lone dot line.
    assert!(raw.cmd("MAIL FROM:<a@sender.test>").starts_with("250"));
    assert!(raw.cmd("RCPT TO:<b1@example.test>").starts_with("250"));
    let body = b"Subject: chunks\r\n\r\n.\r\nstill the body\r\n";
    raw.send(format!("BDAT {}\r\n", 20).as_bytes());
    raw.send(&body[..20]);
    assert!(raw.reply().starts_with("250 2.0.0"));
    raw.send(format!("BDAT {} LAST\r\n", body.len() - 20).as_bytes());
    raw.send(&body[20..]);
    let reply = raw.reply();
    assert!(reply.starts_with("250 2.0.0 Ok: queued as"), "{reply}");
    let id = reply.trim().rsplit(' ').next().unwrap().to_string();
    gw.wait_status(&id, "delivered");
    assert!(raw.cmd("QUIT").starts_with("221 2.0.0"));

    // Connections per client address.
    let _a = Raw::connect(gw.smtp);
    let _b = Raw::connect(gw.smtp);
    let _c = Raw::connect(gw.smtp);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.smtp)).unwrap();
    let mut buf = String::new();
    std::io::Read::read_to_string(&mut s, &mut buf).unwrap();
    assert!(buf.starts_with("421 4.7.0"), "{buf}");
}

#[test]
fn postfix_relays_through_the_gateway() {
    let sink = Sink::start(&[]);
    let gw = Gateway::start("", &domain_to(&sink));
    let postfix = common::Postfix::start(gw.smtp);
    let run = common::swaks(
        postfix.port,
        &[
            "--from",
            "a@sender.test",
            "--to",
            "bob@example.test",
            "--header",
            "Message-Id: <via-postfix@sender.test>",
        ],
    );
    assert!(run.ok, "{}", run.transcript);
    let got = sink.wait_for(1);
    assert!(
        got[0].contains("via-postfix@sender.test"),
        "{}\n{}",
        got[0],
        postfix.maillog()
    );
    let m = &gw.wait_trace(&["--message-id", "via-postfix@sender.test"], 1)[0];
    assert_eq!(m["helo"], "postfix-relay.test");
    gw.wait_status(m["id"].as_str().unwrap(), "delivered");
}
