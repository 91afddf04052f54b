//! `[digest]` in the configuration file.

use serde::Deserialize;
use std::net::SocketAddr;

/// A time of day, UTC, written `"HH:MM"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct DigestTime {
    /// Minutes after midnight UTC.
    pub minute_of_day: u32,
}

impl TryFrom<String> for DigestTime {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a time of day; write it as HH:MM (UTC), e.g. \"08:00\"");
        let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: u32 = h.parse().map_err(|_| bad())?;
        let m: u32 = m.parse().map_err(|_| bad())?;
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok(DigestTime {
            minute_of_day: h * 60 + m,
        })
    }
}

impl std::fmt::Display for DigestTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02}:{:02}",
            self.minute_of_day / 60,
            self.minute_of_day % 60
        )
    }
}

/// `[digest]`: mail to each recipient about their held mail.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DigestConfig {
    /// Send digests at `times`. Off, held mail is purged at its expiry
    /// without having been listed (nobody is told): leave it on.
    pub enabled: bool,
    /// When digests go out, UTC `HH:MM`; empty: only `portcullis digest send --now`.
    pub times: Vec<DigestTime>,
    /// Entries expiring within this many days are listed as expiring, and
    /// an entry listed as expiring is kept at least this long after.
    pub expiring_window_days: u32,
    /// How long a digest's links work.
    pub link_validity_days: u32,
    /// The digest's From address (default `postmaster@<server.hostname>`).
    pub from: Option<String>,
    /// The base URL of the links, as users' browsers reach the HTTP listener
    /// (default `http://<http.listen>`, with the host name for a wildcard
    /// address).
    pub console_url: Option<String>,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            enabled: true,
            times: vec![DigestTime {
                minute_of_day: 8 * 60,
            }],
            expiring_window_days: 3,
            link_validity_days: 7,
            from: None,
            console_url: None,
        }
    }
}

impl DigestConfig {
    /// Checks the values; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=365).contains(&self.expiring_window_days) {
            return Err(format!(
                "digest.expiring_window_days = {}: write a number of days from 1 to 365",
                self.expiring_window_days
            ));
        }
        if !(1..=365).contains(&self.link_validity_days) {
            return Err(format!(
                "digest.link_validity_days = {}: write a number of days from 1 to 365",
                self.link_validity_days
            ));
        }
        if let Some(from) = &self.from {
            if !plausible_address(from) {
                return Err(format!(
                    "digest.from = {from:?}: write a bare address such as postmaster@example.test"
                ));
            }
        }
        if let Some(url) = &self.console_url {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            let ok = rest.is_some_and(|r| {
                !r.is_empty()
                    && r.bytes()
                        .all(|b| b.is_ascii_graphic() && !b"\"'<>\\`".contains(&b))
                    && !r.contains(['?', '#'])
            });
            if !ok {
                return Err(format!(
                    "digest.console_url = {url:?}: write an http:// or https:// URL such as https://quarantine.example.test"
                ));
            }
        }
        Ok(())
    }

    /// The digest's From address.
    pub fn from_address(&self, hostname: &str) -> String {
        self.from
            .clone()
            .unwrap_or_else(|| format!("postmaster@{hostname}"))
    }

    /// The base URL links start with (no trailing slash).
    pub fn base_url(&self, hostname: &str, listen: SocketAddr) -> String {
        if let Some(url) = &self.console_url {
            return url.trim_end_matches('/').to_string();
        }
        let host = match listen.ip() {
            ip if ip.is_unspecified() => hostname.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        format!("http://{host}:{}", listen.port())
    }

    /// Days as milliseconds.
    pub fn expiring_window_ms(&self) -> i64 {
        i64::from(self.expiring_window_days) * crate::DAY_MS
    }
}

fn plausible_address(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && a.len() <= 254
        && a.bytes()
            .all(|b| b.is_ascii_graphic() && !b"<>()[]\\,;:\"".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_on_daily_at_eight() {
        let c: DigestConfig = toml::from_str("").unwrap();
        assert!(c.enabled);
        assert_eq!(c.times.len(), 1);
        assert_eq!(c.times[0].to_string(), "08:00");
        assert_eq!((c.expiring_window_days, c.link_validity_days), (3, 7));
        assert!(c.validate().is_ok());
        assert_eq!(c.from_address("gw.test"), "postmaster@gw.test");
    }

    #[test]
    fn bad_values_name_their_key() {
        assert!(toml::from_str::<DigestConfig>("times = [\"8:00\"]").is_err());
        assert!(toml::from_str::<DigestConfig>("times = [\"24:00\"]").is_err());
        assert!(toml::from_str::<DigestConfig>("time = [\"08:00\"]").is_err());
        let c: DigestConfig = toml::from_str("link_validity_days = 0").unwrap();
        assert!(c.validate().unwrap_err().contains("link_validity_days"));
        let c: DigestConfig = toml::from_str("from = \"Me <a@b.test>\"").unwrap();
        assert!(c.validate().unwrap_err().contains("digest.from"));
        let c: DigestConfig = toml::from_str("console_url = \"javascript:alert(1)\"").unwrap();
        assert!(c.validate().unwrap_err().contains("console_url"));
        let c: DigestConfig = toml::from_str("console_url = \"https://q.example.test/\"").unwrap();
        assert!(c.validate().is_ok());
        assert_eq!(
            c.base_url("gw", "0.0.0.0:1".parse().unwrap()),
            "https://q.example.test"
        );
    }

    #[test]
    fn the_default_base_url_is_the_listener_as_seen_from_the_host_name() {
        let c = DigestConfig::default();
        assert_eq!(
            c.base_url("gw.test", "0.0.0.0:8025".parse().unwrap()),
            "http://gw.test:8025"
        );
        assert_eq!(
            c.base_url("gw.test", "127.0.0.1:8025".parse().unwrap()),
            "http://127.0.0.1:8025"
        );
        assert_eq!(
            c.base_url("gw.test", "[::1]:8025".parse().unwrap()),
            "http://[::1]:8025"
        );
    }
}
