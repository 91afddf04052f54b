//! What a sending server runs: a product and a dotted numeric version, and the
//! catalogue's judgement of it. Shared by recognition ([`crate::identify`]),
//! the catalogue ([`crate::catalog`]) and the schedule ([`crate::stage`]).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Sending software whose version can be recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Product {
    /// Microsoft Exchange Server (2007 and later: `Microsoft SMTP Server`).
    Exchange,
    /// The IIS SMTP service (`Microsoft SMTPSVC`), as in Exchange 2000/2003.
    IisSmtp,
    Exim,
    Sendmail,
    Postfix,
}

impl Product {
    /// The name people use.
    pub fn name(self) -> &'static str {
        match self {
            Product::Exchange => "Microsoft Exchange Server",
            Product::IisSmtp => "Microsoft SMTPSVC (IIS SMTP)",
            Product::Exim => "Exim",
            Product::Sendmail => "Sendmail",
            Product::Postfix => "Postfix",
        }
    }

    /// The key used in files, the store and the API (`exchange`, `iis-smtp`, ...).
    pub fn key(self) -> &'static str {
        match self {
            Product::Exchange => "exchange",
            Product::IisSmtp => "iis-smtp",
            Product::Exim => "exim",
            Product::Sendmail => "sendmail",
            Product::Postfix => "postfix",
        }
    }

    pub fn from_key(key: &str) -> Option<Product> {
        [
            Product::Exchange,
            Product::IisSmtp,
            Product::Exim,
            Product::Sendmail,
            Product::Postfix,
        ]
        .into_iter()
        .find(|p| p.key() == key)
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The most parts a version has (`15.1.2507.6` has four).
pub const MAX_VERSION_PARTS: usize = 6;

/// A dotted numeric version, compared part by part (a missing part is 0, so
/// `15.1` equals `15.1.0.0`; it is shown as written).
#[derive(Debug, Clone)]
pub struct Version(Vec<u32>);

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Version {}

impl std::hash::Hash for Version {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let end = self.0.iter().rposition(|&p| p != 0).map_or(0, |i| i + 1);
        self.0[..end].hash(state);
    }
}

impl Version {
    /// Parses `15.1.2507.6`; at most [`MAX_VERSION_PARTS`] parts of digits.
    pub fn parse(text: &str) -> Option<Version> {
        let parts: Vec<u32> = text
            .split('.')
            .map(|p| {
                if p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    None
                } else {
                    p.parse().ok()
                }
            })
            .collect::<Option<_>>()?;
        (!parts.is_empty() && parts.len() <= MAX_VERSION_PARTS).then_some(Version(parts))
    }

    pub fn parts(&self) -> &[u32] {
        &self.0
    }

    /// Whether `self` starts with all of `prefix`'s parts (`15.1.2507.6`
    /// starts with `15.1`).
    pub fn starts_with(&self, prefix: &Version) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let n = self.0.len().max(other.0.len());
        (0..n)
            .map(|i| {
                let a = self.0.get(i).copied().unwrap_or(0);
                let b = other.0.get(i).copied().unwrap_or(0);
                a.cmp(&b)
            })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for p in &self.0 {
            if !first {
                f.write_str(".")?;
            }
            write!(f, "{p}")?;
            first = false;
        }
        Ok(())
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Version::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a dotted version")))
    }
}

/// A product at a version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Software {
    pub product: Product,
    pub version: Version,
}

impl fmt::Display for Software {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.product, self.version)
    }
}

/// The catalogue's judgement of a version, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The latest release of a supported line, or one with no known issue.
    Current,
    /// A supported line, but a newer release fixes something.
    Outdated,
    /// A release with known vulnerabilities (CVEs) fixed in a later one.
    Vulnerable,
    /// A line its vendor no longer supports.
    Unsupported,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Current => "current",
            Status::Outdated => "outdated",
            Status::Vulnerable => "vulnerable",
            Status::Unsupported => "unsupported",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::Current,
            Status::Outdated,
            Status::Vulnerable,
            Status::Unsupported,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Whether the staged enforcement applies to a server in this state.
    pub fn is_enforced(self) -> bool {
        self != Status::Current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_part_by_part() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("15.1.2507.6") > v("15.1.2507.5"));
        assert!(v("15.1.2507.6") < v("15.2.0.0"));
        assert!(v("15.1") == v("15.1.0.0"));
        assert!(v("4.97.1") > v("4.97"));
        assert!(v("15.1.2507.6").starts_with(&v("15.1")));
        assert_eq!(v("8.15.2").to_string(), "8.15.2");
        for bad in [
            "",
            "1..2",
            "a.1",
            "1.2.3.4.5.6.7",
            "-1",
            "1.2.",
            "9999999999",
        ] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
    }
}
