//! `[links]`: the secure links' settings. Only `host` is used so far (by
//! `portcullis links sign`); the others are read and checked for the link
//! rewriting that is to come, and change nothing yet.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LinksConfig {
    /// Rewrite inbound links (not built yet: no effect so far).
    pub enabled: bool,
    /// The host name rewritten links point to: `https://<host>/l/<token>`.
    pub host: Option<String>,
    /// Domains whose links are left as they are (not built yet).
    pub do_not_rewrite: Vec<String>,
    /// Rewrite links in mail between the site's own domains too (not built yet).
    pub rewrite_internal: bool,
}

impl LinksConfig {
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
            "#,
        )
        .unwrap();
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
        let err = parse("do_not_rewrite = [\"*.example.test\"]").unwrap_err();
        assert!(err.contains("links.do_not_rewrite"), "{err}");
        assert!(parse("host = \"links.example.test.\"").is_ok());
    }
}
