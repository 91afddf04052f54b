//! Delivery status notifications (RFC 3464, in an RFC 6522 multipart/report) for
//! recipients that failed for good, sent to the envelope sender. Never sent for
//! the null sender (a DSN about a DSN would loop) or when the recipient asked for
//! NOTIFY=NEVER (RFC 3461).

use crate::spool::Header;
use portcullis_smtp::session::Ret;

/// One failed recipient, as reported.
#[derive(Debug, Clone)]
pub struct Failure {
    pub address: String,
    pub orcpt: Option<String>,
    /// RFC 3463 status, e.g. `5.1.1`.
    pub status: String,
    /// The remote host that answered, when one did.
    pub remote: Option<String>,
    /// The reply or error text.
    pub diagnostic: String,
}

/// RFC 5322 date from Unix milliseconds.
pub fn rfc5322_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = portcullis_store::trace::civil_from_days(days);
    format!(
        "{}, {d} {} {y} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Builds the DSN message for `failures` of the message `header`/`original`.
pub fn build(
    hostname: &str,
    dsn_id: &str,
    header: &Header,
    original: &[u8],
    failures: &[Failure],
    now_ms: i64,
) -> Vec<u8> {
    let boundary = format!("{dsn_id}/{hostname}");
    let mut m = String::new();
    m.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n"
    ));
    m.push_str(&format!("To: <{}>\r\n", header.envelope.mail_from));
    m.push_str("Subject: Undelivered Mail Returned to Sender\r\n");
    m.push_str(&format!("Date: {}\r\n", rfc5322_date(now_ms)));
    m.push_str(&format!("Message-ID: <{dsn_id}@{hostname}>\r\n"));
    m.push_str("Auto-Submitted: auto-replied\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str("This is a MIME-encapsulated message.\r\n\r\n");
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    ));
    m.push_str(&format!(
        "This is the mail system at host {hostname}.\r\n\r\n\
         Your message could not be delivered to one or more recipients.\r\n\
         It is attached below. The reason for each recipient is:\r\n\r\n"
    ));
    for f in failures {
        m.push_str(&format!("<{}>: {}\r\n", f.address, one_line(&f.diagnostic)));
        if let Some(r) = &f.remote {
            m.push_str(&format!("    (answer from {})\r\n", one_line(r)));
        }
    }
    m.push_str(&format!("\r\nQueue id: {}\r\n\r\n", header.id));
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
    ));
    m.push_str(&format!("Reporting-MTA: dns; {hostname}\r\n"));
    if let Some(envid) = &header.envelope.envid {
        m.push_str(&format!("Original-Envelope-Id: {}\r\n", one_line(envid)));
    }
    m.push_str(&format!("X-Portcullis-Queue-ID: {}\r\n", header.id));
    m.push_str(&format!(
        "Arrival-Date: {}\r\n",
        rfc5322_date(header.received_at)
    ));
    for f in failures {
        m.push_str("\r\n");
        m.push_str(&format!("Final-Recipient: rfc822; {}\r\n", f.address));
        if let Some(o) = &f.orcpt {
            m.push_str(&format!("Original-Recipient: rfc822; {}\r\n", one_line(o)));
        }
        m.push_str("Action: failed\r\n");
        m.push_str(&format!("Status: {}\r\n", f.status));
        if let Some(r) = &f.remote {
            m.push_str(&format!("Remote-MTA: dns; {}\r\n", one_line(r)));
            m.push_str(&format!(
                "Diagnostic-Code: smtp; {}\r\n",
                one_line(&f.diagnostic)
            ));
        } else {
            m.push_str(&format!(
                "Diagnostic-Code: X-Portcullis; {}\r\n",
                one_line(&f.diagnostic)
            ));
        }
        m.push_str(&format!("Last-Attempt-Date: {}\r\n", rfc5322_date(now_ms)));
    }
    m.push_str("\r\n");
    let headers_only = header.envelope.ret == Some(Ret::Headers);
    if headers_only {
        m.push_str(&format!(
            "--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        ));
    } else {
        m.push_str(&format!(
            "--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n"
        ));
    }
    let mut out = m.into_bytes();
    let body = if headers_only {
        let end = original
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 2)
            .unwrap_or(original.len());
        &original[..end]
    } else {
        original
    };
    out.extend_from_slice(body);
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The RFC 3463 status for a failure reply, or a sensible default.
pub fn status_of(status: &str, code: u16) -> String {
    if !status.is_empty() {
        status.to_string()
    } else if code >= 500 {
        "5.0.0".into()
    } else {
        "4.0.0".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_smtp::{Envelope, Recipient};

    #[test]
    fn dsn_is_a_parseable_report() {
        let header = Header {
            reception: None,
            id: "ID1".into(),
            received_at: 0,
            envelope: Envelope {
                mail_from: "s@x.test".into(),
                recipients: vec![Recipient {
                    address: "r@y.test".into(),
                    notify: None,
                    orcpt: None,
                }],
                eight_bit: false,
                smtputf8: false,
                ret: Some(Ret::Headers),
                envid: Some("E1".into()),
            },
            size: 0,
        };
        let original = b"Subject: hi\r\nFrom: s@x.test\r\n\r\nsecret body\r\n";
        let dsn = build(
            "gw.test",
            "DSN1",
            &header,
            original,
            &[Failure {
                address: "r@y.test".into(),
                orcpt: None,
                status: "5.1.1".into(),
                remote: Some("mx.y.test[192.0.2.1]".into()),
                diagnostic: "550 5.1.1 no such user".into(),
            }],
            86_400_000,
        );
        let text = String::from_utf8(dsn).unwrap();
        assert!(text.contains("Status: 5.1.1\r\n"));
        assert!(text.contains("Original-Envelope-Id: E1"));
        assert!(text.contains("Content-Type: text/rfc822-headers"));
        assert!(
            !text.contains("secret body"),
            "RET=HDRS returns headers only"
        );
        assert!(text.contains("Date: Fri, 2 Jan 1970 00:00:00 +0000"));
    }
}
