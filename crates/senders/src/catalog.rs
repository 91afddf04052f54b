//! The version catalogue: which releases of each recognisable mail server
//! exist, when they came out, which CVEs each fixed, how long each product
//! line is supported, and what a sender should install instead; and the
//! classification of a sending server's [`Software`] against it.
//!
//! # Data
//!
//! The built-in catalogue is `crates/senders/catalog/catalog.toml`, embedded
//! with `include_str!` ([`Catalog::builtin`]). Its header documents the TOML
//! format: `[[line]]` tables (a product line: version prefix with optional
//! `from`/`below` bounds, `end_of_support`, `unsupported`, `cloud`,
//! `recommended`, `more`) and `[[release]]` tables (one build: `name`,
//! `released`, `fixes = [CVE...]`). Sources: Microsoft Learn "Exchange Server
//! build numbers and release dates", the CSV in Microsoft's
//! Get-ExchangeBuildNumber repository, the Microsoft Security Update Guide,
//! exim.org's ChangeLog and security pages, sendmail's RELEASE_NOTES and
//! postfix.org announcements. Admins extend it with
//! `portcullis senders catalog import FILE` ([`Catalog::import`]).
//!
//! # Vulnerability model
//!
//! A release lists the CVEs it *fixes*. A build is open to every CVE fixed
//! by some release of its line that the build does not *contain*. A release
//! contains the fixes of every release of its own branch (an Exchange CU, an
//! Exim 4.99.x series: the first `branch_depth` version parts) at or below
//! it, and of every release of another branch that is a lower build and was
//! released no later (a missing date counts as "no later"). A build not in
//! the catalogue contains what the nearest release of its own branch at or
//! below it contains, or nothing if there is none.
//!
//! # Classification rules ([`Catalog::classify`])
//!
//! 1. A version in no line: status [`Status::Current`], `known = false`,
//!    reason "not in the catalogue": unknown software never leads to
//!    enforcement.
//! 2. A `cloud` line (Exchange Online's own 15.20+ builds): Current,
//!    `cloud = true`, never enforced.
//! 3. A line marked `unsupported`, or past its `end_of_support` date (the
//!    last supported day): [`Status::Unsupported`] (open CVEs still listed).
//! 4. A build newer than every release of its line: Current.
//! 5. Open CVEs: [`Status::Vulnerable`], listing them (at most
//!    [`MAX_LISTED_CVES`] in `cves`; [`Classification::open_to`] sees all).
//! 6. Older than the newest release of its line: [`Status::Outdated`].
//! 7. Otherwise Current.
//!
//! # Security posture
//!
//! Catalogue files are admin input: they are bounded ([`MAX_CATALOG_BYTES`],
//! [`MAX_ENTRIES`], field lengths), every entry is checked when loaded
//! (products, versions, dates, CVE ids, URLs, no control characters, no
//! duplicate builds or lines, no overlapping lines, every release inside a
//! line), and a bad file is refused whole with the entry at fault named.
//! Nothing here panics on file input.

use crate::software::{Product, Software, Status, Version};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::LazyLock;

/// The largest catalogue file accepted.
pub const MAX_CATALOG_BYTES: usize = 4 * 1024 * 1024;
/// The most `[[line]]` plus `[[release]]` entries in one catalogue.
pub const MAX_ENTRIES: usize = 50_000;
/// The most CVEs one release may list.
pub const MAX_FIXES_PER_RELEASE: usize = 200;
/// The most open CVEs listed in [`Classification::cves`].
pub const MAX_LISTED_CVES: usize = 20;
/// The longest name, reason or URL accepted.
pub const MAX_TEXT_LEN: usize = 300;

/// ProxyLogon (March 2021): fixed by the March 2021 SUs.
pub const PROXYLOGON: &[&str] = &[
    "CVE-2021-26855",
    "CVE-2021-26857",
    "CVE-2021-26858",
    "CVE-2021-27065",
];
/// ProxyShell: fixed by the April and May 2021 SUs.
pub const PROXYSHELL: &[&str] = &["CVE-2021-34473", "CVE-2021-34523", "CVE-2021-31207"];
/// ProxyNotShell: fixed by the November 2022 SUs.
pub const PROXYNOTSHELL: &[&str] = &["CVE-2022-41040", "CVE-2022-41082"];

static BUILTIN_TEXT: &str = include_str!("../catalog/catalog.toml");

static BUILTIN: LazyLock<Catalog> =
    LazyLock::new(|| Catalog::parse(BUILTIN_TEXT).unwrap_or_default());

/// A calendar date, held as days since 1970-01-01 (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i64);

impl Date {
    /// The date `y-m-d`, if it exists (years 1970 to 9999).
    pub fn from_ymd(y: i32, m: u32, d: u32) -> Option<Date> {
        if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
            return None;
        }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let days_in_month = match m {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        if d > days_in_month {
            return None;
        }
        // Days from civil (H. Hinnant's algorithm).
        let y = i64::from(y) - i64::from(m <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(m);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Some(Date(era * 146_097 + doe - 719_468))
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Date> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |s: &str| -> Option<u32> {
            s.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| s.parse().ok())
                .flatten()
        };
        let y = num(text.get(0..4)?)?;
        let m = num(text.get(5..7)?)?;
        let d = num(text.get(8..10)?)?;
        Date::from_ymd(i32::try_from(y).ok()?, m, d)
    }

    /// The UTC date of a Unix time.
    pub fn from_unix_secs(secs: i64) -> Date {
        Date(secs.div_euclid(86_400))
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i64 {
        self.0
    }

    /// (year, month, day).
    pub fn ymd(self) -> (i64, u32, u32) {
        let z = self.0 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        // d is 1..=31 and m 1..=12 by construction.
        (
            y,
            u32::try_from(m).unwrap_or(1),
            u32::try_from(d).unwrap_or(1),
        )
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// Why a catalogue file was refused. `entry` names the table at fault, as
/// `[[release]] #12 (exchange 15.1.2507.6)` (numbered from 1 in file order).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("catalogue file is {size} bytes, over the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("catalogue file is not valid: {0}")]
    Syntax(String),
    #[error("catalogue has {count} entries, over the limit of {max}")]
    TooManyEntries { count: usize, max: usize },
    #[error("{entry}: unknown product {product:?} (expected exchange, iis-smtp, exim, sendmail or postfix)")]
    UnknownProduct { entry: String, product: String },
    #[error("{entry}: {field} {value:?} is not a dotted numeric version")]
    BadVersion {
        entry: String,
        field: &'static str,
        value: String,
    },
    #[error("{entry}: {field} {value:?} is not a date (YYYY-MM-DD)")]
    BadDate {
        entry: String,
        field: &'static str,
        value: String,
    },
    #[error("{entry}: {cve:?} is not a CVE id (CVE-YYYY-NNNN)")]
    BadCve { entry: String, cve: String },
    #[error("{entry}: {problem}")]
    Invalid { entry: String, problem: String },
    #[error("{entry}: duplicate build: {product} {build} is already listed")]
    DuplicateBuild {
        entry: String,
        product: &'static str,
        build: String,
    },
    #[error("{entry}: duplicate line: {product} {name:?} is already listed")]
    DuplicateLine {
        entry: String,
        product: &'static str,
        name: String,
    },
    #[error("{entry}: overlaps line {other:?} (same prefix, overlapping from/below)")]
    OverlappingLines { entry: String, other: String },
    #[error("{entry}: build {build} lies in no [[line]] of {product}")]
    ReleaseOutsideLine {
        entry: String,
        product: &'static str,
        build: String,
    },
}

/// A product line and its support window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub product: Product,
    pub name: String,
    pub prefix: Version,
    pub from: Option<Version>,
    pub below: Option<Version>,
    /// The last day of support.
    pub end_of_support: Option<Date>,
    /// Unsupported whatever the date, for this reason.
    pub unsupported: Option<String>,
    /// A vendor's own cloud service: always current, never enforced.
    pub cloud: bool,
    /// Version parts naming a branch; `None`: prefix parts + 1.
    pub branch_depth: Option<usize>,
    pub recommended: Option<Version>,
    pub recommended_name: Option<String>,
    pub more: Option<String>,
}

impl Line {
    /// Whether `version` belongs to this line (prefix and bounds).
    pub fn contains(&self, version: &Version) -> bool {
        version.starts_with(&self.prefix)
            && self.from.as_ref().is_none_or(|f| version >= f)
            && self.below.as_ref().is_none_or(|b| version < b)
    }

    fn depth(&self) -> usize {
        self.branch_depth
            .unwrap_or(self.prefix.parts().len() + 1)
            .max(1)
    }

    fn branch(&self, v: &Version) -> Vec<u32> {
        let mut parts: Vec<u32> = v.parts().iter().copied().take(self.depth()).collect();
        parts.resize(self.depth(), 0);
        parts
    }

    /// Whether the line is unsupported on `today`.
    pub fn is_unsupported(&self, today: Date) -> bool {
        self.unsupported.is_some() || self.end_of_support.is_some_and(|eos| today > eos)
    }
}

/// One build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub product: Product,
    pub build: Version,
    pub name: String,
    pub released: Option<Date>,
    /// CVEs this release fixes.
    pub fixes: Vec<String>,
    pub more: Option<String>,
}

/// The catalogue: lines and releases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    lines: Vec<Line>,
    /// Sorted by (product, build).
    releases: Vec<Release>,
}

/// The catalogue's judgement of one sending server's software.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    pub software: Software,
    pub status: Status,
    /// The product line ("Exchange Server 2016").
    pub line: Option<String>,
    /// The exact release's name if known, else where it falls
    /// ("between X and Y").
    pub release: Option<String>,
    /// The exact build is in the catalogue.
    pub known: bool,
    /// One sentence the sender's admin understands.
    pub reason: String,
    /// Open CVEs (fixed in releases this build lacks), at most
    /// [`MAX_LISTED_CVES`], oldest fix first.
    pub cves: Vec<String>,
    /// How many CVEs are open in all.
    pub cves_total: usize,
    /// Every open CVE (what [`Classification::open_to`] consults).
    pub open_cves: Vec<String>,
    /// What to install: "15.2.2562.43 (Exchange Server SE RTM Jun26SU)".
    pub recommended: Option<String>,
    /// Where to read more.
    pub more: Option<String>,
    /// Exchange Online's own build: never enforced.
    pub cloud: bool,
}

impl Classification {
    /// Whether the build lacks the fix for `cve`.
    pub fn open_to(&self, cve: &str) -> bool {
        self.open_cves.iter().any(|c| c.eq_ignore_ascii_case(cve))
    }

    /// Whether the build predates the ProxyLogon fixes (CVE-2021-26855 and
    /// related, March 2021 SUs).
    pub fn predates_proxylogon(&self) -> bool {
        PROXYLOGON.iter().any(|c| self.open_to(c))
    }

    /// Whether the build predates the ProxyShell fixes (CVE-2021-34473 and
    /// related, April/May 2021 SUs).
    pub fn predates_proxyshell(&self) -> bool {
        PROXYSHELL.iter().any(|c| self.open_to(c))
    }

    /// Whether the build predates the ProxyNotShell fixes (CVE-2022-41040 and
    /// CVE-2022-41082, November 2022 SUs).
    pub fn predates_proxynotshell(&self) -> bool {
        PROXYNOTSHELL.iter().any(|c| self.open_to(c))
    }

    /// The named Exchange flaws the build predates the fixes for, as the
    /// probe states them.
    pub fn named_flaws(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.predates_proxylogon() {
            out.push("ProxyLogon (CVE-2021-26855 and related)");
        }
        if self.predates_proxyshell() {
            out.push("ProxyShell (CVE-2021-34473 and related)");
        }
        if self.predates_proxynotshell() {
            out.push("ProxyNotShell (CVE-2022-41040 and CVE-2022-41082)");
        }
        out
    }
}

// ---------------------------------------------------------------------------
// File form
// ---------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    line: Vec<RawLine>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    release: Vec<RawRelease>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    product: String,
    name: String,
    prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    below: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_of_support: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unsupported: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    cloud: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    branch_depth: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recommended: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recommended_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    more: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawRelease {
    product: String,
    build: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    released: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    fixes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    more: Option<String>,
}

fn check_text(entry: &str, field: &str, text: &str, required: bool) -> Result<(), CatalogError> {
    let invalid = |problem: String| CatalogError::Invalid {
        entry: entry.to_string(),
        problem,
    };
    if required && text.trim().is_empty() {
        return Err(invalid(format!("{field} is empty")));
    }
    if text.chars().count() > MAX_TEXT_LEN {
        return Err(invalid(format!(
            "{field} is longer than {MAX_TEXT_LEN} characters"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(format!("{field} contains a control character")));
    }
    Ok(())
}

fn check_url(entry: &str, url: &str) -> Result<(), CatalogError> {
    check_text(entry, "more", url, true)?;
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.contains(' ') {
        return Err(CatalogError::Invalid {
            entry: entry.to_string(),
            problem: format!("more {url:?} is not an http(s) URL"),
        });
    }
    Ok(())
}

fn is_cve(text: &str) -> bool {
    let mut parts = text.splitn(3, '-');
    let (Some(a), Some(y), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    a == "CVE"
        && y.len() == 4
        && y.bytes().all(|b| b.is_ascii_digit())
        && (4..=9).contains(&n.len())
        && n.bytes().all(|b| b.is_ascii_digit())
}

fn product(entry: &str, key: &str) -> Result<Product, CatalogError> {
    Product::from_key(key).ok_or_else(|| CatalogError::UnknownProduct {
        entry: entry.to_string(),
        product: key.to_string(),
    })
}

fn version(entry: &str, field: &'static str, text: &str) -> Result<Version, CatalogError> {
    Version::parse(text).ok_or_else(|| CatalogError::BadVersion {
        entry: entry.to_string(),
        field,
        value: text.to_string(),
    })
}

fn date(entry: &str, field: &'static str, text: &str) -> Result<Date, CatalogError> {
    Date::parse(text).ok_or_else(|| CatalogError::BadDate {
        entry: entry.to_string(),
        field,
        value: text.to_string(),
    })
}

fn line_entry(i: usize, raw: &RawLine) -> String {
    let name: String = raw.name.chars().take(80).collect();
    format!("[[line]] #{} ({:?})", i + 1, name)
}

fn release_entry(i: usize, raw: &RawRelease) -> String {
    let product: String = raw.product.chars().take(20).collect();
    let build: String = raw.build.chars().take(40).collect();
    format!("[[release]] #{} ({product} {build})", i + 1)
}

fn convert_line(entry: &str, raw: RawLine) -> Result<Line, CatalogError> {
    let product = product(entry, &raw.product)?;
    check_text(entry, "name", &raw.name, true)?;
    let prefix = version(entry, "prefix", &raw.prefix)?;
    let from = raw
        .from
        .as_deref()
        .map(|t| version(entry, "from", t))
        .transpose()?;
    let below = raw
        .below
        .as_deref()
        .map(|t| version(entry, "below", t))
        .transpose()?;
    let invalid = |problem: String| CatalogError::Invalid {
        entry: entry.to_string(),
        problem,
    };
    for (field, bound) in [("from", &from), ("below", &below)] {
        if let Some(b) = bound {
            if !b.starts_with(&prefix) {
                return Err(invalid(format!(
                    "{field} {b} does not start with prefix {prefix}"
                )));
            }
        }
    }
    if let (Some(f), Some(b)) = (&from, &below) {
        if f >= b {
            return Err(invalid(format!("from {f} is not below {b}")));
        }
    }
    let end_of_support = raw
        .end_of_support
        .as_deref()
        .map(|t| date(entry, "end_of_support", t))
        .transpose()?;
    if let Some(reason) = &raw.unsupported {
        check_text(entry, "unsupported", reason, true)?;
    }
    let branch_depth = match raw.branch_depth {
        None => None,
        Some(d) => match usize::try_from(d) {
            Ok(d) if (1..=crate::software::MAX_VERSION_PARTS).contains(&d) => Some(d),
            _ => {
                return Err(invalid(format!(
                    "branch_depth {d} is not between 1 and {}",
                    crate::software::MAX_VERSION_PARTS
                )))
            }
        },
    };
    let recommended = raw
        .recommended
        .as_deref()
        .map(|t| version(entry, "recommended", t))
        .transpose()?;
    if let Some(name) = &raw.recommended_name {
        check_text(entry, "recommended_name", name, true)?;
        if recommended.is_none() {
            return Err(invalid("recommended_name without recommended".into()));
        }
    }
    if let Some(url) = &raw.more {
        check_url(entry, url)?;
    }
    Ok(Line {
        product,
        name: raw.name,
        prefix,
        from,
        below,
        end_of_support,
        unsupported: raw.unsupported,
        cloud: raw.cloud,
        branch_depth,
        recommended,
        recommended_name: raw.recommended_name,
        more: raw.more,
    })
}

fn convert_release(entry: &str, raw: RawRelease) -> Result<Release, CatalogError> {
    let product = product(entry, &raw.product)?;
    let build = version(entry, "build", &raw.build)?;
    check_text(entry, "name", &raw.name, true)?;
    let released = raw
        .released
        .as_deref()
        .map(|t| date(entry, "released", t))
        .transpose()?;
    if raw.fixes.len() > MAX_FIXES_PER_RELEASE {
        return Err(CatalogError::Invalid {
            entry: entry.to_string(),
            problem: format!("more than {MAX_FIXES_PER_RELEASE} fixes"),
        });
    }
    let mut seen = HashSet::new();
    let mut fixes = Vec::with_capacity(raw.fixes.len());
    for cve in raw.fixes {
        if !is_cve(&cve) {
            let cve: String = cve.chars().take(40).collect();
            return Err(CatalogError::BadCve {
                entry: entry.to_string(),
                cve,
            });
        }
        if seen.insert(cve.clone()) {
            fixes.push(cve);
        }
    }
    if let Some(url) = &raw.more {
        check_url(entry, url)?;
    }
    Ok(Release {
        product,
        build,
        name: raw.name,
        released,
        fixes,
        more: raw.more,
    })
}

impl Catalog {
    /// The built-in catalogue (embedded `catalog/catalog.toml`), parsed once.
    /// A test guarantees it parses; were it ever broken, this is an empty
    /// catalogue (everything "not in the catalogue", nothing enforced), never
    /// a panic.
    pub fn builtin() -> &'static Catalog {
        &BUILTIN
    }

    /// The text of the built-in catalogue file.
    pub fn builtin_text() -> &'static str {
        BUILTIN_TEXT
    }

    /// Parses and checks a complete, self-contained catalogue file.
    pub fn parse(text: &str) -> Result<Catalog, CatalogError> {
        let catalog = Self::parse_entries(text)?;
        catalog.validate()?;
        Ok(catalog)
    }

    /// Reads a file that extends this catalogue (`portcullis senders catalog
    /// import FILE`): its entries are checked, merged (see [`Catalog::merge`])
    /// and the result checked as a whole (releases may lie in lines of either
    /// file). On any error `self` is unchanged.
    pub fn import(&mut self, text: &str) -> Result<(), CatalogError> {
        let other = Self::parse_entries(text)?;
        let mut merged = self.clone();
        merged.merge(other);
        merged.validate()?;
        *self = merged;
        Ok(())
    }

    /// Adds `other`'s entries: its lines replace lines of the same product
    /// and name, its releases replace releases of the same product and
    /// build; the rest are added. Call [`Catalog::validate`] afterwards if
    /// `other` was not checked against `self` ([`Catalog::import`] does).
    pub fn merge(&mut self, other: Catalog) {
        for line in other.lines {
            match self
                .lines
                .iter_mut()
                .find(|l| l.product == line.product && l.name == line.name)
            {
                Some(existing) => *existing = line,
                None => self.lines.push(line),
            }
        }
        for release in other.releases {
            match self
                .releases
                .binary_search_by(|r| (r.product, &r.build).cmp(&(release.product, &release.build)))
            {
                Ok(i) => self.releases[i] = release,
                Err(i) => self.releases.insert(i, release),
            }
        }
    }

    /// Serialises the catalogue in the file format (to store an imported
    /// catalogue); [`Catalog::parse`] reads it back to an equal catalogue.
    pub fn to_toml(&self) -> Result<String, CatalogError> {
        let raw = RawFile {
            line: self
                .lines
                .iter()
                .map(|l| RawLine {
                    product: l.product.key().to_string(),
                    name: l.name.clone(),
                    prefix: l.prefix.to_string(),
                    from: l.from.as_ref().map(Version::to_string),
                    below: l.below.as_ref().map(Version::to_string),
                    end_of_support: l.end_of_support.map(|d| d.to_string()),
                    unsupported: l.unsupported.clone(),
                    cloud: l.cloud,
                    branch_depth: l.branch_depth.and_then(|d| i64::try_from(d).ok()),
                    recommended: l.recommended.as_ref().map(Version::to_string),
                    recommended_name: l.recommended_name.clone(),
                    more: l.more.clone(),
                })
                .collect(),
            release: self
                .releases
                .iter()
                .map(|r| RawRelease {
                    product: r.product.key().to_string(),
                    build: r.build.to_string(),
                    name: r.name.clone(),
                    released: r.released.map(|d| d.to_string()),
                    fixes: r.fixes.clone(),
                    more: r.more.clone(),
                })
                .collect(),
        };
        let body = toml::to_string(&raw).map_err(|e| CatalogError::Syntax(e.to_string()))?;
        Ok(format!(
            "# Portcullis sender-software catalogue (exported; format: see the built-in catalog.toml)\n\n{body}"
        ))
    }

    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// All releases, by product then build.
    pub fn releases(&self) -> &[Release] {
        &self.releases
    }

    /// The release with exactly this build.
    pub fn release(&self, product: Product, build: &Version) -> Option<&Release> {
        self.releases
            .binary_search_by(|r| (r.product, &r.build).cmp(&(product, build)))
            .ok()
            .and_then(|i| self.releases.get(i))
    }

    /// The line `version` of `product` belongs to: the one with the longest
    /// prefix among those that contain it.
    pub fn line_for(&self, product: Product, version: &Version) -> Option<&Line> {
        self.lines
            .iter()
            .filter(|l| l.product == product && l.contains(version))
            .max_by_key(|l| l.prefix.parts().len())
    }

    /// The releases of `line`, by build.
    pub fn releases_of<'a>(&'a self, line: &'a Line) -> impl Iterator<Item = &'a Release> + 'a {
        self.releases.iter().filter(move |r| {
            r.product == line.product
                && self
                    .line_for(r.product, &r.build)
                    .is_some_and(|l| std::ptr::eq(l, line))
        })
    }

    /// Parses a file's entries, each checked on its own but not against
    /// each other or a line (a site's additions, whose releases may lie in
    /// built-in lines: check the merged whole with [`Catalog::validate`]).
    pub fn parse_unchecked(text: &str) -> Result<Catalog, CatalogError> {
        Self::parse_entries(text)
    }

    fn parse_entries(text: &str) -> Result<Catalog, CatalogError> {
        if text.len() > MAX_CATALOG_BYTES {
            return Err(CatalogError::TooLarge {
                size: text.len(),
                max: MAX_CATALOG_BYTES,
            });
        }
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            // toml's message names the line and column.
            CatalogError::Syntax(e.to_string().trim_end().to_string())
        })?;
        let count = raw.line.len() + raw.release.len();
        if count > MAX_ENTRIES {
            return Err(CatalogError::TooManyEntries {
                count,
                max: MAX_ENTRIES,
            });
        }
        let mut lines: Vec<Line> = Vec::with_capacity(raw.line.len());
        for (i, raw_line) in raw.line.into_iter().enumerate() {
            let entry = line_entry(i, &raw_line);
            let line = convert_line(&entry, raw_line)?;
            if lines
                .iter()
                .any(|l| l.product == line.product && l.name == line.name)
            {
                return Err(CatalogError::DuplicateLine {
                    entry,
                    product: line.product.key(),
                    name: line.name,
                });
            }
            lines.push(line);
        }
        let mut releases: Vec<Release> = Vec::with_capacity(raw.release.len());
        let mut builds: HashMap<(Product, Version), ()> = HashMap::new();
        for (i, raw_release) in raw.release.into_iter().enumerate() {
            let entry = release_entry(i, &raw_release);
            let release = convert_release(&entry, raw_release)?;
            if builds
                .insert((release.product, release.build.clone()), ())
                .is_some()
            {
                return Err(CatalogError::DuplicateBuild {
                    entry,
                    product: release.product.key(),
                    build: release.build.to_string(),
                });
            }
            releases.push(release);
        }
        releases.sort_by(|a, b| (a.product, &a.build).cmp(&(b.product, &b.build)));
        Ok(Catalog { lines, releases })
    }

    /// Checks the catalogue as a whole: lines with the same product and
    /// prefix must not overlap, and every release must lie in a line.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let describe = |l: &Line| format!("[[line]] ({:?})", l.name);
        for (i, a) in self.lines.iter().enumerate() {
            for b in &self.lines[..i] {
                if a.product != b.product || a.prefix.parts() != b.prefix.parts() {
                    continue;
                }
                // [from, below) ranges, None unbounded.
                let a_before_b = match (&a.below, &b.from) {
                    (Some(ab), Some(bf)) => ab <= bf,
                    _ => false,
                };
                let b_before_a = match (&b.below, &a.from) {
                    (Some(bb), Some(af)) => bb <= af,
                    _ => false,
                };
                if !a_before_b && !b_before_a {
                    return Err(CatalogError::OverlappingLines {
                        entry: describe(a),
                        other: b.name.clone(),
                    });
                }
            }
        }
        for r in &self.releases {
            if self.line_for(r.product, &r.build).is_none() {
                return Err(CatalogError::ReleaseOutsideLine {
                    entry: format!(
                        "[[release]] ({} {}, {:?})",
                        r.product.key(),
                        r.build,
                        r.name
                    ),
                    product: r.product.key(),
                    build: r.build.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Judges `software` as of `today`; see the module documentation for
    /// the rules.
    pub fn classify(&self, software: &Software, today: Date) -> Classification {
        let v = &software.version;
        let mut c = Classification {
            software: software.clone(),
            status: Status::Current,
            line: None,
            release: None,
            known: false,
            reason: String::new(),
            cves: Vec::new(),
            cves_total: 0,
            open_cves: Vec::new(),
            recommended: None,
            more: None,
            cloud: false,
        };
        let Some(line) = self.line_for(software.product, v) else {
            c.reason = format!(
                "{} {v} is not in the catalogue, so it is not judged",
                software.product
            );
            return c;
        };
        c.line = Some(line.name.clone());
        c.more = line.more.clone();
        c.recommended = line.recommended.as_ref().map(|r| {
            let name = line
                .recommended_name
                .clone()
                .or_else(|| self.release(line.product, r).map(|rel| rel.name.clone()));
            match name {
                Some(n) => format!("{r} ({n})"),
                None => r.to_string(),
            }
        });
        if line.cloud {
            c.cloud = true;
            c.reason = format!(
                "{v} is a build of {}, a cloud service its vendor keeps current; it is never enforced",
                line.name
            );
            return c;
        }
        // Releases not yet out on `today` do not count (undated ones do).
        let releases: Vec<&Release> = self
            .releases_of(line)
            .filter(|r| r.released.is_none_or(|d| d <= today))
            .collect();
        let exact = releases.iter().find(|r| &r.build == v);
        c.known = exact.is_some();
        let below = releases.iter().rev().find(|r| &r.build < v);
        let above = releases.iter().find(|r| &r.build > v);
        c.release = match (exact, below, above) {
            (Some(r), _, _) => Some(r.name.clone()),
            (None, Some(b), Some(a)) => Some(format!(
                "between {} ({}) and {} ({})",
                b.build, b.name, a.build, a.name
            )),
            (None, Some(b), None) => Some(format!(
                "newer than {} ({}), the newest known",
                b.build, b.name
            )),
            (None, None, Some(a)) => Some(format!(
                "older than {} ({}), the oldest known",
                a.build, a.name
            )),
            (None, None, None) => None,
        };
        if let Some(r) = exact {
            if r.more.is_some() {
                c.more = r.more.clone();
            }
        }
        let newest = releases.last();
        let newer_than_all = newest.is_none_or(|n| v > &n.build);
        if !newer_than_all {
            let contained = contained_fixes(line, &releases, v);
            let mut seen = HashSet::new();
            for r in &releases {
                for cve in &r.fixes {
                    if !contained.contains(cve.as_str()) && seen.insert(cve.as_str()) {
                        c.open_cves.push(cve.clone());
                    }
                }
            }
        }
        c.cves_total = c.open_cves.len();
        c.cves = c.open_cves.iter().take(MAX_LISTED_CVES).cloned().collect();
        let label = match &c.release {
            Some(r) if c.known => format!("{v} ({r})"),
            Some(r) => format!("{v} ({r})"),
            None => v.to_string(),
        };
        let missing = || {
            let shown: Vec<&str> = c.cves.iter().take(5).map(String::as_str).collect();
            let more = c.cves_total.saturating_sub(shown.len());
            if more > 0 {
                format!("{} and {more} more", shown.join(", "))
            } else {
                shown.join(", ")
            }
        };
        if line.is_unsupported(today) {
            c.status = Status::Unsupported;
            c.reason = match (&line.unsupported, line.end_of_support) {
                (Some(why), _) => format!("{}: {why}", line.name),
                (None, Some(eos)) => format!("{} reached end of support on {eos}", line.name),
                (None, None) => format!("{} is unsupported", line.name),
            };
            if c.cves_total > 0 {
                c.reason
                    .push_str(&format!("; {label} also lacks fixes for {}", missing()));
            }
        } else if newer_than_all {
            c.status = Status::Current;
            c.reason = match newest {
                Some(_) => format!(
                    "{label} is at least as new as every release of {} in the catalogue",
                    line.name
                ),
                None => format!("{v} is in {}, which is supported", line.name),
            };
        } else if c.cves_total > 0 {
            c.status = Status::Vulnerable;
            c.reason = format!(
                "{label} is missing security updates released since: {}",
                missing()
            );
        } else if let Some(n) = newest.filter(|n| v < &n.build) {
            c.status = Status::Outdated;
            c.reason = format!(
                "{label} is older than the newest release of {}, {} ({})",
                line.name, n.build, n.name
            );
        } else {
            c.status = Status::Current;
            c.reason = format!("{label} is the newest release of {}", line.name);
        }
        c
    }
}

/// The CVEs `v` contains fixes for (see the module documentation).
fn contained_fixes<'a>(line: &Line, releases: &[&'a Release], v: &Version) -> BTreeSet<&'a str> {
    let branch = line.branch(v);
    // The anchor: the release itself, or the nearest of its branch below it.
    let anchor = releases
        .iter()
        .rev()
        .find(|r| &r.build <= v && line.branch(&r.build) == branch);
    let mut out = BTreeSet::new();
    let Some(anchor) = anchor else {
        return out;
    };
    for r in releases {
        let same_branch = line.branch(&r.build) == branch;
        let included = if same_branch {
            r.build <= anchor.build
        } else {
            r.build < anchor.build
                && match (r.released, anchor.released) {
                    (Some(fix), Some(at)) => fix <= at,
                    _ => true,
                }
        };
        if included {
            out.extend(r.fixes.iter().map(String::as_str));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sw(product: Product, v: &str) -> Software {
        Software {
            product,
            version: Version::parse(v).expect("test version"),
        }
    }

    fn day(s: &str) -> Date {
        Date::parse(s).expect("test date")
    }

    fn classify(product: Product, v: &str, today: &str) -> Classification {
        Catalog::builtin().classify(&sw(product, v), day(today))
    }

    const REVIEW: &str = "2026-11-23";

    #[test]
    fn dates_round_trip() {
        assert_eq!(Date::parse("1970-01-01").map(Date::days), Some(0));
        assert_eq!(day("2025-10-14").to_string(), "2025-10-14");
        assert_eq!(day("2024-02-29").to_string(), "2024-02-29");
        assert!(Date::parse("2023-02-29").is_none());
        assert!(Date::parse("2023-13-01").is_none());
        assert!(Date::parse("2023-1-01").is_none());
        assert!(Date::parse("+023-01-01").is_none());
        assert_eq!(Date::from_unix_secs(1_700_000_000), day("2023-11-14"));
        assert_eq!(Date::from_unix_secs(-1), Date(-1));
        for d in (0..30_000).step_by(37) {
            let date = Date(d);
            assert_eq!(Date::parse(&date.to_string()), Some(date));
        }
    }

    #[test]
    fn builtin_parses_and_is_consistent() {
        let catalog = Catalog::parse(Catalog::builtin_text()).expect("built-in catalogue parses");
        assert_eq!(&catalog, Catalog::builtin());
        assert!(catalog.releases().len() > 200);
        for r in catalog.releases() {
            let line = catalog
                .line_for(r.product, &r.build)
                .expect("release in a line");
            assert!(!line.cloud, "{} in a cloud line", r.build);
        }
        for l in catalog.lines() {
            if let Some(rec) = &l.recommended {
                let target = catalog
                    .release(l.product, rec)
                    .unwrap_or_else(|| panic!("{}: recommended {rec} is not a release", l.name));
                let target_line = catalog.line_for(l.product, &target.build).expect("line");
                assert!(
                    target_line.end_of_support.is_none() && target_line.unsupported.is_none(),
                    "{}: recommends an unsupported build",
                    l.name
                );
            }
        }
        // Within a branch, later builds are not released earlier.
        for l in catalog.lines() {
            let rels: Vec<&Release> = catalog.releases_of(l).collect();
            for w in rels.windows(2) {
                if l.branch(&w[0].build) == l.branch(&w[1].build) {
                    if let (Some(a), Some(b)) = (w[0].released, w[1].released) {
                        assert!(a <= b, "{} after {}", w[0].name, w[1].name);
                    }
                }
            }
            for r in &rels {
                if let (Some(rel), Some(eos)) = (r.released, l.end_of_support) {
                    // ESU updates came out after end of support; none after 2027.
                    assert!(rel <= eos || rel < day("2027-01-01"), "{}", r.name);
                }
                assert!(r.released.is_none_or(|d| d <= day(REVIEW)), "{}", r.name);
            }
        }
        // Round trip through to_toml.
        let text = catalog.to_toml().expect("serialises");
        assert_eq!(Catalog::parse(&text).expect("re-parses"), catalog);
    }

    #[test]
    fn exchange_2016_cu23_is_unsupported_at_review() {
        let c = classify(Product::Exchange, "15.1.2507.35", REVIEW);
        assert_eq!(c.status, Status::Unsupported);
        assert_eq!(c.line.as_deref(), Some("Exchange Server 2016"));
        assert!(c.known);
        assert_eq!(
            c.release.as_deref(),
            Some("Exchange Server 2016 CU23 Nov23SU")
        );
        assert!(
            c.reason.contains("reached end of support on 2025-10-14"),
            "{}",
            c.reason
        );
        assert!(c.open_to("CVE-2024-26198"));
        assert!(!c.predates_proxylogon() && !c.predates_proxyshell());
        assert!(c
            .recommended
            .as_deref()
            .is_some_and(|r| r.starts_with("15.2.2562.43")));
        assert!(c.more.is_some());
        assert!(c.cves.len() <= MAX_LISTED_CVES);
    }

    #[test]
    fn exchange_2019_cu15_latest_before_and_after_end_of_support() {
        let before = classify(Product::Exchange, "15.2.1748.39", "2025-10-14");
        assert_eq!(before.status, Status::Current, "{}", before.reason);
        assert_eq!(before.line.as_deref(), Some("Exchange Server 2019"));
        let after = classify(Product::Exchange, "15.2.1748.39", "2025-10-15");
        assert_eq!(after.status, Status::Unsupported);
        // An older CU15 build before end of support: vulnerable.
        let old = classify(Product::Exchange, "15.2.1748.10", "2025-09-01");
        assert_eq!(old.status, Status::Vulnerable);
        assert!(old.open_to("CVE-2025-53786"));
    }

    #[test]
    fn exchange_se() {
        let latest = classify(Product::Exchange, "15.2.2562.43", REVIEW);
        assert_eq!(latest.status, Status::Current, "{}", latest.reason);
        assert_eq!(
            latest.line.as_deref(),
            Some("Exchange Server Subscription Edition")
        );
        let rtm_at_release = classify(Product::Exchange, "15.2.2562.17", "2025-07-15");
        assert_eq!(rtm_at_release.status, Status::Current);
        let rtm_later = classify(Product::Exchange, "15.2.2562.17", REVIEW);
        assert_eq!(rtm_later.status, Status::Vulnerable);
        assert!(rtm_later.open_to("CVE-2026-42897"));
        // A later SE build not yet in the catalogue is current.
        let newer = classify(Product::Exchange, "15.2.2600.5", REVIEW);
        assert_eq!(newer.status, Status::Current);
        assert!(!newer.known);
    }

    #[test]
    fn proxylogon_and_proxyshell_flags() {
        // 2013 CU23 before March 2021.
        let c = classify(Product::Exchange, "15.0.1497.2", REVIEW);
        assert_eq!(c.status, Status::Unsupported);
        assert!(c.open_to("CVE-2021-26855") && c.open_to("CVE-2021-34473"));
        assert!(c.predates_proxylogon() && c.predates_proxyshell() && c.predates_proxynotshell());
        assert_eq!(c.named_flaws().len(), 3);
        // Mar21SU: ProxyLogon fixed, ProxyShell not.
        let c = classify(Product::Exchange, "15.0.1497.12", REVIEW);
        assert!(!c.predates_proxylogon() && c.predates_proxyshell());
        // May21SU: both fixed.
        let c = classify(Product::Exchange, "15.0.1497.18", REVIEW);
        assert!(!c.predates_proxylogon() && !c.predates_proxyshell());
        assert!(c.predates_proxynotshell());
        for (build, logon, shell) in [
            ("15.1.2176.2", true, true),    // 2016 CU19 RTM
            ("15.1.2176.9", false, true),   // CU19 Mar21SU
            ("15.1.2106.13", false, true),  // CU18 Mar21SU
            ("15.1.2176.14", false, false), // CU19 May21SU
            ("15.1.2242.4", false, true),   // CU20 RTM contains the March fixes
            ("15.1.2242.10", false, false), // CU20 May21SU
            ("15.2.792.10", false, true),   // 2019 CU8 Mar21SU
            ("15.2.721.13", false, true),   // 2019 CU7 Mar21SU
            ("15.2.858.12", false, false),  // 2019 CU9 May21SU
            ("15.2.792.15", false, false),  // 2019 CU8 May21SU
            ("15.1.1466.3", true, true),    // 2016 CU9 RTM
            ("15.1.1466.16", false, true),  // CU9 Mar21SU
            ("15.1.1466.17", false, true),  // unknown build after CU9 Mar21SU
            ("15.1.1500.1", true, true),    // unknown CU: credited with nothing
        ] {
            let c = classify(Product::Exchange, build, REVIEW);
            assert_eq!(c.predates_proxylogon(), logon, "{build}: {:?}", c.open_cves);
            assert_eq!(c.predates_proxyshell(), shell, "{build}");
        }
        // CU22 Nov22SU contains the Aug22 fixes (shipped for CU22 too).
        let c = classify(Product::Exchange, "15.1.2375.37", REVIEW);
        assert!(!c.open_to("CVE-2022-30134") && !c.predates_proxynotshell());
        assert!(c.open_to("CVE-2023-21529"));
    }

    #[test]
    fn exchange_online_is_cloud_and_current() {
        for b in ["15.20.7452.28", "15.21.113.7"] {
            let c = classify(Product::Exchange, b, REVIEW);
            assert!(c.cloud);
            assert_eq!(c.status, Status::Current);
            assert_eq!(c.line.as_deref(), Some("Exchange Online"));
        }
    }

    #[test]
    fn unknown_versions_are_current_and_unknown() {
        let c = classify(Product::Exchange, "16.0.1.1", REVIEW);
        assert_eq!(c.status, Status::Current);
        assert!(!c.known && c.line.is_none());
        assert!(c.reason.contains("not in the catalogue"));
    }

    #[test]
    fn exim() {
        let c = classify(Product::Exim, "4.94.2", REVIEW);
        assert_eq!(c.status, Status::Vulnerable, "{}", c.reason);
        assert!(c.open_to("CVE-2023-51766"));
        assert!(!c.open_to("CVE-2020-28017"));
        let latest = classify(Product::Exim, "4.99.4", REVIEW);
        assert_eq!(latest.status, Status::Current, "{}", latest.reason);
        assert!(latest.known);
        let c = classify(Product::Exim, "4.93", REVIEW);
        assert_eq!(c.status, Status::Unsupported);
        let c = classify(Product::Exim, "4.97.1", REVIEW);
        assert!(!c.open_to("CVE-2023-51766") && !c.open_to("CVE-2023-42117"));
        assert!(c.open_to("CVE-2024-39929"));
        let c = classify(Product::Exim, "4.99.3", REVIEW);
        assert_eq!(c.status, Status::Outdated);
    }

    #[test]
    fn sendmail() {
        let c = classify(Product::Sendmail, "8.17.1", REVIEW);
        assert!(c.open_to("CVE-2023-51765"));
        assert_eq!(c.status, Status::Vulnerable);
        let c = classify(Product::Sendmail, "8.18.1", REVIEW);
        assert!(!c.open_to("CVE-2023-51765"));
        assert_eq!(c.status, Status::Outdated);
        let c = classify(Product::Sendmail, "8.14.7", REVIEW);
        assert!(c.open_to("CVE-2023-51765"));
        assert!(c.release.as_deref().is_some_and(|r| r.contains("oldest")));
    }

    #[test]
    fn iis_smtp_is_unsupported() {
        for v in [
            "6.0.3790.4675",
            "7.0.6002.18264",
            "7.5.7601.17514",
            "8.5.9600.16384",
        ] {
            let c = classify(Product::IisSmtp, v, REVIEW);
            assert_eq!(c.status, Status::Unsupported, "{v}");
        }
    }

    const GOOD: &str = r#"
[[line]]
product = "exim"
name = "Exim test"
prefix = "4"
[[release]]
product = "exim"
build = "4.1"
name = "one"
"#;

    #[test]
    fn bad_files_are_refused_naming_the_entry() {
        assert!(Catalog::parse(GOOD).is_ok());
        let cases: &[(&str, &str)] = &[
            (
                "product = \"exim\"\nbuild = \"4.1\"",
                "product = \"qmail\"\nbuild = \"4.1\"",
            ),
            ("build = \"4.1\"", "build = \"4.x\""),
            (
                "name = \"one\"",
                "name = \"one\"\nreleased = \"2024-02-30\"",
            ),
            ("name = \"one\"", "name = \"one\"\nfixes = [\"CVE-24-1\"]"),
            ("build = \"4.1\"", "build = \"5.1\""),
            ("name = \"one\"", "name = \"one\"\nsurprise = 1"),
            ("name = \"one\"", "name = \"o\\nne\""),
        ];
        let expect = [
            "[[release]] #1 (qmail 4.1): unknown product",
            "[[release]] #1 (exim 4.x): build \"4.x\" is not a dotted",
            "[[release]] #1 (exim 4.1): released \"2024-02-30\" is not a date",
            "is not a CVE id",
            "build 5.1 lies in no [[line]] of exim",
            "unknown field",
            "control character",
        ];
        for ((from, to), want) in cases.iter().zip(expect) {
            let text = GOOD.replacen(from, to, 1);
            let err = Catalog::parse(&text).expect_err(to).to_string();
            assert!(err.contains(want), "{to}: {err}");
        }
        let dup = format!(
            "{GOOD}\n[[release]]\nproduct = \"exim\"\nbuild = \"4.1.0\"\nname = \"again\"\n"
        );
        let err = Catalog::parse(&dup).expect_err("duplicate");
        assert!(matches!(err, CatalogError::DuplicateBuild { .. }), "{err}");
        assert!(err.to_string().contains("[[release]] #2"));
        let overlap = format!("{GOOD}\n[[line]]\nproduct = \"exim\"\nname = \"other\"\nprefix = \"4\"\nfrom = \"4.5\"\n");
        assert!(matches!(
            Catalog::parse(&overlap),
            Err(CatalogError::OverlappingLines { .. })
        ));
        let err = Catalog::parse("[[line]]\nproduct = ").expect_err("syntax");
        assert!(matches!(err, CatalogError::Syntax(_)));
    }

    #[test]
    fn oversized_files_are_refused() {
        let mut text = String::from(GOOD);
        text.push_str(&"#".repeat(MAX_CATALOG_BYTES));
        assert!(matches!(
            Catalog::parse(&text),
            Err(CatalogError::TooLarge { .. })
        ));
    }

    #[test]
    fn merge_replaces_and_adds() {
        let mut catalog = Catalog::builtin().clone();
        let before = catalog.releases().len();
        let extension = r#"
[[line]]
product = "exim"
name = "Exim 4.94 and later"
prefix = "4"
from = "4.94"
branch_depth = 2
recommended = "4.99.5"

[[release]]
product = "exim"
build = "4.99.5"
name = "Exim 4.99.5 (test)"
released = "2026-11-01"
fixes = ["CVE-2026-99999"]

[[release]]
product = "exim"
build = "4.94.2"
name = "Exim 4.94.2 renamed"
released = "2021-05-04"
"#;
        catalog.import(extension).expect("import");
        assert_eq!(catalog.releases().len(), before + 1);
        let v = Version::parse("4.94.2").expect("v");
        assert_eq!(
            catalog.release(Product::Exim, &v).map(|r| r.name.as_str()),
            Some("Exim 4.94.2 renamed")
        );
        let c = catalog.classify(&sw(Product::Exim, "4.99.4"), day(REVIEW));
        assert_eq!(c.status, Status::Vulnerable);
        assert!(c.open_to("CVE-2026-99999"));
        assert_eq!(
            c.recommended.as_deref(),
            Some("4.99.5 (Exim 4.99.5 (test))")
        );
        // The 21Nails fixes were dropped with the replaced 4.94.2 entry.
        let c = catalog.classify(&sw(Product::Exim, "4.94"), day(REVIEW));
        assert!(!c.open_to("CVE-2020-28017"));
        // A bad import leaves the catalogue unchanged.
        let snapshot = catalog.clone();
        let bad = "[[release]]\nproduct = \"exim\"\nbuild = \"2.1\"\nname = \"x\"\n";
        assert!(matches!(
            catalog.import(bad),
            Err(CatalogError::ReleaseOutsideLine { .. })
        ));
        assert_eq!(catalog, snapshot);
        // merge() itself adds a new line.
        let mut small = Catalog::parse(GOOD).expect("good");
        small.merge(
            Catalog::parse(
                &GOOD
                    .replace("Exim test", "Exim other")
                    .replace("4.1", "4.2"),
            )
            .expect("other"),
        );
        assert_eq!(small.lines().len(), 2);
        assert_eq!(small.releases().len(), 2);
    }
}
