//! `[links]`: the secure links' settings: whether inbound mail's links are
//! rewritten, the link host, what is never rewritten, and the ARC sealer's
//! identity (the domain and selector of its DNS key record, RFC 6376 §3.6.1).

use serde::Deserialize;
use std::path::PathBuf;

/// The selector of the ARC key record when none is configured.
pub const DEFAULT_ARC_SELECTOR: &str = "portcullis";

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LinksConfig {
    /// Rewrite the links of inbound mail from external senders.
    pub enabled: bool,
    /// The host name rewritten links point to: `https://<host>/l/<token>`.
    pub host: Option<String>,
    /// Domains whose links (and their subdomains') are left as they are.
    pub do_not_rewrite: Vec<String>,
    /// Rewrite links in mail between the site's own domains too.
    pub rewrite_internal: bool,
    /// Links other vendors wrapped: unwrapped and wrapped in ours, or kept.
    pub vendor_links: crate::vendors::VendorLinks,
    /// The `d=` of the ARC sets the gateway adds after rewriting: the domain
    /// under which its key record is published. Default: the server's host
    /// name.
    pub arc_domain: Option<String>,
    /// The `s=` of the ARC sets: the key record is at
    /// `<arc_selector>._domainkey.<arc_domain>`.
    pub arc_selector: String,
    /// The ARC signing key (PEM, RSA). Default: generated at first start into
    /// `<data_dir>/links/arc/<arc_selector>.key`.
    pub arc_key: Option<PathBuf>,
}

impl Default for LinksConfig {
    fn default() -> Self {
        LinksConfig {
            enabled: false,
            host: None,
            do_not_rewrite: Vec::new(),
            rewrite_internal: false,
            vendor_links: crate::vendors::VendorLinks::Unwrap,
            arc_domain: None,
            arc_selector: DEFAULT_ARC_SELECTOR.into(),
            arc_key: None,
        }
    }
}

impl LinksConfig {
    /// The ARC key file: `arc_key`, or `<data_dir>/links/arc/<selector>.key`.
    pub fn arc_key_path(&self, data_dir: &std::path::Path) -> PathBuf {
        self.arc_key.clone().unwrap_or_else(|| {
            data_dir
                .join("links")
                .join("arc")
                .join(format!("{}.key", self.arc_selector))
        })
    }

    /// The ARC sealer's domain: `arc_domain`, or the server's host name.
    pub fn arc_domain_or<'a>(&'a self, hostname: &'a str) -> &'a str {
        self.arc_domain
            .as_deref()
            .unwrap_or(hostname)
            .trim_end_matches('.')
    }

    /// Checks the values; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        match &self.host {
            Some(host) if !plausible_host(host) => {
                return Err(format!(
                    "links.host = {host:?}: write a host name such as links.example.test (no scheme, port or path)"
                ));
            }
            None if self.enabled => {
                return Err(
                    "links.host: needed when links.enabled is true (e.g. \"links.example.test\")"
                        .into(),
                );
            }
            _ => {}
        }
        if let Some(d) = &self.arc_domain {
            if !plausible_host(d) {
                return Err(format!(
                    "links.arc_domain = {d:?}: write a domain name such as example.test"
                ));
            }
        }
        let s = &self.arc_selector;
        if s.is_empty()
            || s.len() > 63
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "links.arc_selector = {s:?}: one DNS label of letters, digits, '-' or '_'"
            ));
        }
        for d in &self.do_not_rewrite {
            if !plausible_host(d) {
                return Err(format!(
                    "links.do_not_rewrite: {d:?} is not a domain name such as example.test"
                ));
            }
        }
        Ok(())
    }
}

/// A DNS name (RFC 1035 §2.3.1 with digits first allowed, RFC 1123): dot-separated
/// labels of letters, digits and inner hyphens, 63 bytes each, 253 in all, at
/// least two labels, and a last label that is not all digits.
fn plausible_host(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && !labels
            .last()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LinksConfig, String> {
        let c: LinksConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn defaults_are_off_and_valid() {
        let c = parse("").unwrap();
        assert_eq!(c, LinksConfig::default());
        assert!(!c.enabled && !c.rewrite_internal && c.host.is_none());
    }

    #[test]
    fn a_full_section_parses() {
        let c = parse(
            r#"
            enabled = true
            host = "links.example.test"
            do_not_rewrite = ["example.test", "intranet.example.test."]
            rewrite_internal = true
            vendor_links = "keep"
            arc_domain = "example.test"
            arc_selector = "gw2026"
            arc_key = "/etc/portcullis/arc.pem"
            "#,
        )
        .unwrap();
        assert_eq!(c.arc_selector, "gw2026");
        assert_eq!(c.vendor_links, crate::vendors::VendorLinks::Keep);
        assert_eq!(c.host.as_deref(), Some("links.example.test"));
        assert_eq!(c.do_not_rewrite.len(), 2);
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        assert!(parse("enabled = true").unwrap_err().contains("links.host"));
        assert!(parse("hots = \"x\"").unwrap_err().contains("unknown field"));
        for bad in [
            "https://links.example.test",
            "links.example.test:443",
            "links.example.test/l",
            "localhost",
            "-a.example.test",
            "a..example.test",
            "10.0.0.1",
            "",
            "exa mple.test",
        ] {
            let err = parse(&format!("host = {bad:?}")).unwrap_err();
            assert!(err.contains("links.host"), "{bad}: {err}");
        }
        assert!(parse("arc_selector = \"a.b\"")
            .unwrap_err()
            .contains("links.arc_selector"));
        assert!(parse("arc_domain = \"x\"")
            .unwrap_err()
            .contains("links.arc_domain"));
        let err = parse("do_not_rewrite = [\"*.example.test\"]").unwrap_err();
        assert!(err.contains("links.do_not_rewrite"), "{err}");
        assert!(parse("host = \"links.example.test.\"").is_ok());
    }
}
