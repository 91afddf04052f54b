//! The trace: Received fields (RFC 5321 section 4.4), newest first. Each relay
//! prepends one, so going down the list goes back in time. A later hop that
//! claims to be a day older than the hop above it, a hop whose client greeted
//! with someone else's public address, and an endless trace are the marks of
//! forged or padded traces.
//!
//! Standards: RFC 5321 sections 4.4 (Received), 4.1.3 (address literals) and
//! 6.3 (hop counting against loops); RFC 3848 (ESMTPA and kin mark an
//! authenticated client, whose greeting we do not judge).
//!
//! Hostile input: the trace is written by every hop, the first ones by the
//! sender itself. At most [`super::MAX_RECEIVED`] fields are read (parsed by
//! `mail-parser` and a date after the last `;`), in one pass.

use super::{canonical_ip, is_public, Head, View};
use crate::{Category, Finding};
use std::net::IpAddr;

/// A hop dated this much after the hop above it is out of order (clocks are
/// often wrong by hours, rarely by a day).
const DISORDER: i64 = 24 * 3600;
/// More hops than this is a loop or padding; real mail has under 20.
const TOO_MANY: usize = 40;

pub(super) fn check(view: &View<'_>, head: &Head<'_>, out: &mut Vec<Finding>) {
    disorder(head, out);
    helo_mismatch(view, head, out);
    if head.received_count > TOO_MANY {
        out.push(Finding::new(
            "RECEIVED_TOO_MANY",
            0.5,
            Category::Spam,
            format!(
                "the message has {} Received fields, more than the {TOO_MANY} any real route needs",
                head.received_count
            ),
        ));
    }
}

fn disorder(head: &Head<'_>, out: &mut Vec<Finding>) {
    let mut above: Option<(usize, i64)> = None;
    for (i, hop) in head.received.iter().enumerate() {
        let Some(t) = hop.time else {
            continue;
        };
        if let Some((j, upper)) = above {
            if t - upper > DISORDER {
                out.push(Finding::new(
                    "RECEIVED_DATE_DISORDER",
                    1.0,
                    Category::Spam,
                    format!(
                        "Received field {} is dated {} hours after field {} above it, though it records an earlier hop",
                        i + 1,
                        (t - upper) / 3600,
                        j + 1
                    ),
                ));
                return;
            }
        }
        above = Some((i, t));
    }
}

fn helo_mismatch(view: &View<'_>, head: &Head<'_>, out: &mut Vec<Finding>) {
    let client = view.envelope.client_ip.map(canonical_ip);
    for (i, hop) in head.received.iter().enumerate() {
        let (Some(helo), Some(from)) = (hop.helo_ip, hop.from_ip) else {
            continue;
        };
        // The hop the envelope describes is judged from the envelope.
        if hop.authenticated || Some(from) == client || same_network(helo, from) || !is_public(helo)
        {
            continue;
        }
        out.push(Finding::new(
            "RECEIVED_HELO_IP_MISMATCH",
            1.0,
            Category::Spam,
            format!(
                "Received field {} records a client at {from} that greeted as {helo}, another public address",
                i + 1
            ),
        ));
        return;
    }
}

/// Same address, or the same IPv4 /16 or IPv6 /32: a dial-up client whose
/// address changed within its provider since it last looked.
fn same_network(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..2] == b.octets()[..2],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.segments()[..2] == b.segments()[..2],
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::{Envelope, ScanConfig};

    fn with_hop(received: &str) -> String {
        CLEAN.replacen("From:", &format!("Received: {received}\r\nFrom:"), 1)
    }

    #[test]
    fn a_lower_hop_a_day_later_is_disorder() {
        let raw = with_hop("from a.example (a.example [198.51.100.1]) by mail.sender.example; Sat, 24 Aug 2002 12:00:00 +0000");
        let f = run(&raw);
        let hit = f
            .iter()
            .find(|f| f.name == "RECEIVED_DATE_DISORDER")
            .unwrap();
        assert!(
            hit.detail.contains("field 2") && hit.detail.contains("48 hours"),
            "{}",
            hit.detail
        );
        // A clock a few hours off is ordinary.
        let raw = with_hop("from a.example (a.example [198.51.100.1]) by mail.sender.example; Thu, 22 Aug 2002 20:00:00 +0000");
        assert!(!fires(&raw, "RECEIVED_DATE_DISORDER"));
        // A date no strict reader accepts (asctime) is skipped, not misread.
        let raw = with_hop("FROM barge.example BY webshield ; Thu Aug 22 10:45:49 2002 +0100");
        assert!(!fires(&raw, "RECEIVED_DATE_DISORDER"));
        // Older hops below are the normal order.
        let raw = with_hop("from a.example (a.example [198.51.100.1]) by mail.sender.example; Mon, 19 Aug 2002 20:00:00 +0000");
        assert!(!fires(&raw, "RECEIVED_DATE_DISORDER"));
    }

    #[test]
    fn a_helo_with_another_public_address_fires() {
        let raw = with_hop("from 200.161.16.132 (unknown [210.19.113.130]) by smtp.easydns.example (Postfix) with SMTP id 694632EE5A; Thu, 22 Aug 2002 11:00:00 +0000");
        let f = run(&raw);
        let hit = f
            .iter()
            .find(|f| f.name == "RECEIVED_HELO_IP_MISMATCH")
            .unwrap();
        assert!(
            hit.detail.contains("210.19.113.130") && hit.detail.contains("200.161.16.132"),
            "{}",
            hit.detail
        );
    }

    #[test]
    fn natted_authenticated_and_matching_helos_do_not_fire() {
        for hop in [
            // A LAN client behind NAT greets with its private address.
            "from 192.168.1.2 (smtp.piercelaw.example [216.204.12.219]) by x.example (Postfix) with ESMTP id 8C5E; Thu, 22 Aug 2002 11:00:00 -0700",
            // A logged-in client may say what it likes.
            "from [200.161.16.132] (dsl.example [203.0.113.77]) by x.example (Postfix) with ESMTPSA id 8C5E; Thu, 22 Aug 2002 11:00:00 +0000",
            "from [203.0.113.77] (dsl.example [203.0.113.77]) by x.example (Postfix) with ESMTP id 8C5E; Thu, 22 Aug 2002 11:00:00 +0000",
            "from mail.example (mail.example [203.0.113.77]) by x.example (Postfix) with ESMTP id 8C5E; Thu, 22 Aug 2002 11:00:00 +0000",
            // A dial-up client whose address changed within its provider.
            "from [209.103.203.97] (dial-in.example [209.103.203.104]) by x.example with ESMTP id 8C5E; Thu, 22 Aug 2002 11:00:00 +0000",
        ] {
            assert!(!fires(&with_hop(hop), "RECEIVED_HELO_IP_MISMATCH"), "{hop}");
        }
    }

    #[test]
    fn the_hop_the_envelope_describes_is_left_to_the_envelope() {
        let raw = with_hop("from 200.161.16.132 (unknown [203.0.113.77]) by mx.org.example with ESMTP; Thu, 22 Aug 2002 11:00:00 +0000");
        let env = Envelope {
            client_ip: Some("203.0.113.77".parse().unwrap()),
            ..Envelope::default()
        };
        let f = run_with(&raw, &env, &ScanConfig::default());
        assert!(!names(&f).contains(&"RECEIVED_HELO_IP_MISMATCH"));
        // The same hop in a file is judged from the trace.
        assert!(fires(&raw, "RECEIVED_HELO_IP_MISMATCH"));
    }

    #[test]
    fn an_endless_trace_fires() {
        let hop = "Received: from a.example by b.example; Thu, 22 Aug 2002 11:00:00 +0000\r\n";
        let raw = format!("{}{CLEAN}", hop.repeat(45));
        let f = run(&raw);
        let hit = f.iter().find(|f| f.name == "RECEIVED_TOO_MANY").unwrap();
        assert!(hit.detail.contains("46 Received"), "{}", hit.detail);
        assert!(!fires(
            &format!("{}{CLEAN}", hop.repeat(20)),
            "RECEIVED_TOO_MANY"
        ));
    }
}
