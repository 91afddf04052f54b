//! The click-time check: what the redirector does with a link's URL now, with
//! the lists and checks as they are today rather than when the mail arrived.
//!
//! The judgement reuses the scanner's `[scan.links]` lists and its per-URL
//! link checks ([`portcullis_scan::check_url`]):
//!
//! 1. A host under a `block` entry is [`ClickVerdict::Block`]ed (when it is
//!    under an `allow` entry too, the longer, more specific entry wins).
//! 2. A host under an `allow` entry, or in one of the organisation's own
//!    domains, is [`ClickVerdict::Allow`]ed.
//! 3. Otherwise any per-URL check with a positive weight (a public IP address
//!    for a host, a lookalike of an own domain or a protected brand, a
//!    deceptive internationalised name, a host name before `@`, an escaped
//!    host, an unusual port, a URL shortener) makes it a
//!    [`ClickVerdict::Warn`]: the clicker is shown where it goes and may go on.
//! 4. A URL the scanner cannot read as a web address is a warning too.
//!
//! Pure: no network, no clock; the same URL and lists give the same verdict.

use portcullis_scan::{Listing, ScanConfig};

/// The lists and settings a click is judged with: the scanner's.
#[derive(Debug, Clone, Default)]
pub struct ClickLists {
    scan: ScanConfig,
}

impl ClickLists {
    /// From the scanner's settings (with the gateway's own domains added, as
    /// the scanner has them).
    pub fn new(scan: ScanConfig) -> ClickLists {
        ClickLists { scan }
    }
}

/// What happens to a click.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClickVerdict {
    /// Redirect.
    Allow,
    /// Show where it goes and why it looks risky; the clicker may go on.
    Warn { reason: String },
    /// Refuse: the host is on the block list.
    Block { host: String, reason: String },
}

impl ClickVerdict {
    /// `allow`, `warn` or `block`, as the trace records it.
    pub fn name(&self) -> &'static str {
        match self {
            ClickVerdict::Allow => "allow",
            ClickVerdict::Warn { .. } => "warn",
            ClickVerdict::Block { .. } => "block",
        }
    }
}

/// Judges `url` with `lists` (see the module's notes for the order).
pub fn judge(url: &str, lists: &ClickLists) -> ClickVerdict {
    let Some(check) = portcullis_scan::check_url(&lists.scan, url) else {
        return ClickVerdict::Warn {
            reason: "the address cannot be read as a web address".into(),
        };
    };
    match &check.listing {
        Listing::Blocked { entry } => {
            return ClickVerdict::Block {
                reason: format!("{} is on this site's block list ({entry})", check.host),
                host: check.host,
            }
        }
        Listing::Allowed => return ClickVerdict::Allow,
        Listing::Unlisted => {}
    }
    let reasons: Vec<String> = check
        .symbols(&lists.scan)
        .into_iter()
        .filter(|s| s.score > 0.0)
        .map(|s| s.detail)
        .collect();
    if reasons.is_empty() {
        ClickVerdict::Allow
    } else {
        ClickVerdict::Warn {
            reason: reasons.join("; "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_scan::config::LinkConfig;

    fn lists() -> ClickLists {
        ClickLists::new(ScanConfig {
            own_domains: vec!["example.org".into()],
            links: LinkConfig {
                block: vec!["evil.example".into(), "bad.good.example".into()],
                allow: vec!["good.example".into(), "ok.evil.example".into()],
                shorteners: vec!["sho.rt".into()],
            },
            ..ScanConfig::default()
        })
    }

    #[test]
    fn an_ordinary_link_is_allowed() {
        for url in [
            "https://www.rust-lang.org/learn",
            "http://news.example.net/a?b=c#d",
            "https://portal.example.org/login",
        ] {
            assert_eq!(judge(url, &lists()), ClickVerdict::Allow, "{url}");
        }
    }

    #[test]
    fn a_block_listed_domain_and_its_subdomains_are_blocked() {
        let v = judge("https://login.evil.example/x", &lists());
        assert_eq!(v.name(), "block");
        let ClickVerdict::Block { host, reason } = v else {
            panic!("{v:?}")
        };
        assert_eq!(host, "login.evil.example");
        assert!(reason.contains("(evil.example)"), "{reason}");
        // Upper case and a trailing dot do not escape the list.
        assert_eq!(judge("HTTPS://EVIL.EXAMPLE./", &lists()).name(), "block");
        // Not a suffix match on the text: notevil.example is another domain.
        assert_eq!(
            judge("https://notevil.example/", &lists()),
            ClickVerdict::Allow
        );
    }

    #[test]
    fn the_longer_entry_wins_between_the_lists() {
        assert_eq!(
            judge("https://a.ok.evil.example/", &lists()),
            ClickVerdict::Allow
        );
        assert_eq!(
            judge("https://x.bad.good.example/", &lists()).name(),
            "block"
        );
        // An allow-listed host is not warned about either.
        assert_eq!(
            judge("http://3232235777.good.example/", &lists()),
            ClickVerdict::Allow
        );
    }

    #[test]
    fn risky_urls_are_warned_about_with_the_reason() {
        for (url, says) in [
            ("http://61.145.116.189/login", "IP address"),
            ("https://examp1e.org/reset", "imitates example.org"),
            ("https://paypa1.com/signin", "imitates paypal.com"),
            ("https://bit.ly/3xYz", "shortener"),
            ("https://sho.rt/a", "shortener"),
            ("http://paypal.com@203.0.113.7.nip.example/", "before '@'"),
            ("http://shop.example.net:8081/", "port 8081"),
        ] {
            let v = judge(url, &lists());
            let ClickVerdict::Warn { reason } = &v else {
                panic!("{url}: {v:?}")
            };
            assert!(reason.contains(says), "{url}: {reason}");
            assert_eq!(v.name(), "warn");
        }
    }

    #[test]
    fn a_symbol_weighted_to_zero_does_not_warn() {
        let mut scan = ScanConfig::default();
        scan.weights.insert("LINK_SHORTENER".into(), 0.0);
        assert_eq!(
            judge("https://bit.ly/3xYz", &ClickLists::new(scan)),
            ClickVerdict::Allow
        );
    }

    #[test]
    fn an_unreadable_url_is_a_warning() {
        assert_eq!(judge("not a url", &lists()).name(), "warn");
    }
}
