//! Lookalike domains: a link host made to be read as a protected domain (the
//! organisation's own domains, configured brands and a short built-in list of
//! the brands most often impersonated) without being it. Four ways are found:
//! confusable characters (`pаypal.com` with a Cyrillic `а`, `paypa1.com`,
//! `rnicrosoft.com`), one typing slip (`paypall.com`, `micorsoft.com`), the
//! brand as a hyphenated word of another name (`paypal-secure.com`,
//! `micros0ft-support.com`), and the whole protected domain put in front of
//! another one (`paypal.com.evil.test`). Also internationalised host labels that
//! mix scripts or whose every character imitates Latin.
//!
//! Standards: UTS #39 (Unicode security mechanisms: confusable skeletons and
//! mixed-script detection, from the `unicode-security` crate), UTS #46 and
//! RFC 5890 (IDNA labels), the Public Suffix List (registrable domains).
//!
//! Hostile input: host names come from the message. Labels are cut at
//! [`MAX_LABEL_CHARS`] characters before a skeleton or an edit distance is
//! computed, so each comparison costs a bounded amount; the caller compares a
//! bounded number of distinct domains.

use std::sync::LazyLock;
use unicode_security::{skeleton as uts39_skeleton, RestrictionLevel, RestrictionLevelDetection};

/// Characters of a label compared (DNS allows 63 octets per label).
const MAX_LABEL_CHARS: usize = 63;

/// How far the lookalikes of a target are looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Confusable characters, and the whole domain put in front of another.
    Exact,
    /// Also one typing slip, and the name hyphenated with a word that lures
    /// (`paypal-secure`, `microsoft-support`), so that the brand's own
    /// `amazon-adsystem.com` or `google-analytics.com` are not taken for fakes.
    Lure,
    /// Also the name hyphenated with any word: configured domains, whose
    /// owner lists its own hyphenated domains in `[scan.links] allow`.
    Any,
}

/// Built-in brands, the ones most often impersonated. Brands whose name is a
/// common word (`apple`, `live`, `office`, `chase`) or one typing slip from
/// one (`binance`/`finance`, `icloud`/`ucloud`) are matched exactly only, so
/// that `office-depot.com` or `finance.example` are not taken for them.
const BUILTIN_BRANDS: &[(&str, Reach)] = &[
    ("paypal.com", Reach::Lure),
    ("microsoft.com", Reach::Lure),
    ("microsoftonline.com", Reach::Lure),
    ("office365.com", Reach::Lure),
    ("office.com", Reach::Exact),
    ("outlook.com", Reach::Exact),
    ("live.com", Reach::Exact),
    ("sharepoint.com", Reach::Lure),
    ("apple.com", Reach::Exact),
    ("icloud.com", Reach::Exact),
    ("amazon.com", Reach::Lure),
    ("netflix.com", Reach::Lure),
    ("google.com", Reach::Lure),
    ("gmail.com", Reach::Exact),
    ("facebook.com", Reach::Lure),
    ("instagram.com", Reach::Lure),
    ("whatsapp.com", Reach::Lure),
    ("linkedin.com", Reach::Lure),
    ("dropbox.com", Reach::Lure),
    ("docusign.com", Reach::Lure),
    ("adobe.com", Reach::Exact),
    ("dhl.com", Reach::Exact),
    ("fedex.com", Reach::Exact),
    ("ups.com", Reach::Exact),
    ("usps.com", Reach::Exact),
    ("chase.com", Reach::Exact),
    ("wellsfargo.com", Reach::Lure),
    ("bankofamerica.com", Reach::Lure),
    ("citibank.com", Reach::Lure),
    ("americanexpress.com", Reach::Lure),
    ("ebay.com", Reach::Exact),
    ("coinbase.com", Reach::Lure),
    ("binance.com", Reach::Exact),
    ("steamcommunity.com", Reach::Lure),
    ("yahoo.com", Reach::Exact),
];

/// Words that phishing domains join to a brand's name.
const LURES: &[&str] = &[
    "access",
    "account",
    "accounts",
    "alert",
    "alerts",
    "auth",
    "billing",
    "check",
    "confirm",
    "customer",
    "help",
    "helpdesk",
    "id",
    "invoice",
    "limited",
    "login",
    "logon",
    "notice",
    "official",
    "online",
    "pay",
    "payment",
    "portal",
    "protect",
    "protection",
    "recovery",
    "refund",
    "resolution",
    "review",
    "safe",
    "secure",
    "security",
    "service",
    "services",
    "signin",
    "support",
    "team",
    "unlock",
    "update",
    "verify",
    "verification",
    "wallet",
];

/// A domain that lookalikes are compared with.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Registrable domain, lowercase ASCII (punycode).
    pub domain: String,
    /// Its first label, e.g. `paypal`.
    label: String,
    /// The UTS #39 skeleton of the label, lowercased.
    skeleton: String,
    /// One of the organisation's own domains (else a brand).
    pub own: bool,
    reach: Reach,
}

impl Target {
    /// A target from a configured domain; `None` for an empty or invalid name.
    pub fn new(domain: &str, own: bool, reach: Reach) -> Option<Target> {
        let d = domain.trim().trim_end_matches('.').trim_start_matches("*.");
        let ascii = if d.is_ascii() {
            d.to_ascii_lowercase()
        } else {
            url::quirks::domain_to_ascii(d)
        };
        if ascii.is_empty() {
            return None;
        }
        let registrable = super::normalise::registrable_domain(&ascii).to_string();
        let unicode = if registrable.contains("xn--") {
            url::quirks::domain_to_unicode(&registrable)
        } else {
            registrable.clone()
        };
        let label = super::normalise::registrable_label(&unicode).to_string();
        if label.is_empty() {
            return None;
        }
        Some(Target {
            skeleton: skeleton(&label),
            domain: registrable,
            label,
            own,
            reach,
        })
    }
}

/// The built-in brand targets, built once.
static BUILTIN: LazyLock<Vec<Target>> = LazyLock::new(|| {
    BUILTIN_BRANDS
        .iter()
        .filter_map(|&(d, reach)| Target::new(d, false, reach))
        .collect()
});

/// The targets for one message: the configured ones (own domains first, as
/// the more specific finding, then brands), then the built-in brands, which
/// are built once and not copied.
#[derive(Debug)]
pub(crate) struct Targets {
    configured: Vec<Target>,
}

impl Targets {
    pub fn new(own: &[String], brands: &[String]) -> Targets {
        let configured = own
            .iter()
            .filter_map(|d| Target::new(d, true, Reach::Any))
            .chain(
                brands
                    .iter()
                    .filter_map(|d| Target::new(d, false, Reach::Any)),
            )
            .collect();
        Targets { configured }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Target> {
        self.configured.iter().chain(
            BUILTIN
                .iter()
                .filter(|b| !self.configured.iter().any(|t| t.domain == b.domain)),
        )
    }
}

/// How a host imitates a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Likeness {
    /// Same skeleton, other characters.
    Confusable,
    /// One character added, dropped, changed or two swapped.
    Typo,
    /// The target's name as a hyphenated word of the name.
    Hyphenated,
    /// The whole target domain in front of another registrable domain.
    InSubdomain,
}

impl Likeness {
    pub fn describe(self) -> &'static str {
        match self {
            Likeness::Confusable => "characters that look the same",
            Likeness::Typo => "one character changed, added, dropped or swapped",
            Likeness::Hyphenated => "the name as part of a longer hyphenated name",
            Likeness::InSubdomain => "the whole domain put in front of another domain",
        }
    }
}

/// Whether `host` (lowercase ASCII, registrable domain `registrable`, Unicode
/// form `unicode_registrable`) imitates one of `targets`, and how.
pub(crate) fn lookalike<'t>(
    host: &str,
    registrable: &str,
    unicode_registrable: &str,
    targets: &'t Targets,
) -> Option<(&'t Target, Likeness)> {
    if targets.iter().any(|t| t.domain == registrable) {
        return None;
    }
    let label = super::normalise::registrable_label(unicode_registrable);
    let label: String = label.chars().take(MAX_LABEL_CHARS).collect();
    let skel = skeleton(&label);
    let sub = host
        .strip_suffix(registrable)
        .and_then(|s| s.strip_suffix('.'))
        .unwrap_or("");
    for t in targets.iter() {
        // The same name under another suffix (paypal.de) is usually the
        // brand's own; only a changed name is a lookalike.
        if label == t.label {
            continue;
        }
        if skel == t.skeleton {
            return Some((t, Likeness::Confusable));
        }
        if !sub.is_empty() && contains_at_dots(sub, &t.domain) {
            return Some((t, Likeness::InSubdomain));
        }
        if t.reach == Reach::Exact {
            continue;
        }
        let n = t.skeleton.chars().count();
        if n >= 6 && within_one_edit(&skel, &t.skeleton) {
            return Some((t, Likeness::Typo));
        }
        if n >= 4
            && contains_hyphenated(&skel, &t.skeleton)
            && (t.reach == Reach::Any || skel.split('-').any(|w| LURES.contains(&w)))
        {
            return Some((t, Likeness::Hyphenated));
        }
    }
    None
}

/// The UTS #39 skeleton of `s`, lowercased (host names are compared without
/// case, and the skeleton maps `0` to `O`).
pub(crate) fn skeleton(s: &str) -> String {
    let cut: String = s
        .chars()
        .take(MAX_LABEL_CHARS)
        .flat_map(char::to_lowercase)
        .collect();
    let mut out: String = uts39_skeleton(&cut).collect();
    if out.is_ascii() {
        out.make_ascii_lowercase();
        out
    } else {
        out.to_lowercase()
    }
}

/// Whether `haystack` has `word` as a whole dot-separated sequence of labels.
fn contains_at_dots(haystack: &str, word: &str) -> bool {
    haystack.len() >= word.len()
        && haystack
            .match_indices(word)
            .any(|(i, _)| bounded(haystack, i, word.len(), '.'))
}

/// Whether `name` has `word` as a word between hyphens (or its ends), and is
/// more than that word.
fn contains_hyphenated(name: &str, word: &str) -> bool {
    name.len() > word.len()
        && name.contains('-')
        && name
            .match_indices(word)
            .any(|(i, _)| bounded(name, i, word.len(), '-'))
}

/// Whether `s[i..i + len]` starts and ends at `sep` or the ends of `s`.
fn bounded(s: &str, i: usize, len: usize, sep: char) -> bool {
    let before = s[..i].chars().next_back();
    let after = s[i + len..].chars().next();
    before.is_none_or(|c| c == sep) && after.is_none_or(|c| c == sep)
}

/// Whether `a` and `b` differ by exactly one insertion, deletion, substitution
/// or swap of two neighbouring characters (optimal string alignment distance
/// 1). Linear: the strings are walked once from each end.
fn within_one_edit(a: &str, b: &str) -> bool {
    if a == b {
        return false;
    }
    if a.is_ascii() && b.is_ascii() {
        // Host labels are nearly always ASCII: no allocation then.
        return one_edit(a.as_bytes(), b.as_bytes());
    }
    let a: Vec<char> = a.chars().take(MAX_LABEL_CHARS).collect();
    let b: Vec<char> = b.chars().take(MAX_LABEL_CHARS).collect();
    one_edit(&a, &b)
}

fn one_edit<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ra, rb) = (a.len() - prefix - suffix, b.len() - prefix - suffix);
    match (ra, rb) {
        // One inserted, dropped or changed character.
        (0, 1) | (1, 0) | (1, 1) => true,
        // Two neighbours swapped.
        (2, 2) => a[prefix] == b[prefix + 1] && a[prefix + 1] == b[prefix],
        _ => false,
    }
}

/// Why an internationalised host name is deceptive, if it is: a label that
/// mixes scripts in a way UTS #39 calls only minimally restrictive (Latin with
/// Cyrillic or Greek; Latin with Han and Kana or Hangul is fine), or, under an
/// ASCII top-level domain, a label written wholly in another script with
/// characters that all imitate Latin letters (as browsers judge it: a Cyrillic
/// name under `.рф` is ordinary). The public suffix itself is not judged.
/// `ascii_host` is the same name in punycode.
pub(crate) fn idn_deception(
    unicode_host: &str,
    ascii_host: &str,
) -> Option<(String, &'static str)> {
    let suffix = psl::suffix_str(ascii_host).unwrap_or("");
    let suffix_labels = suffix.split('.').filter(|l| !l.is_empty()).count();
    let ascii_tld = !suffix.contains("xn--");
    let labels: Vec<&str> = unicode_host.split('.').collect();
    let owned = labels.len().saturating_sub(suffix_labels);
    for label in &labels[..owned] {
        if label.is_ascii() {
            continue;
        }
        let label: String = label.chars().take(MAX_LABEL_CHARS).collect();
        // Hyphens and digits belong to every script; UTS #39 does not allow
        // '-' in identifiers, so it is left out of the judgement.
        let letters: String = label.chars().filter(|&c| c != '-').collect();
        if letters.as_str().detect_restriction_level() >= RestrictionLevel::MinimallyRestrictive {
            return Some((label, "mixes scripts"));
        }
        let imitates = ascii_tld && !letters.chars().any(is_latin_letter) && {
            let skel = skeleton(&letters);
            skel.is_ascii() && skel.chars().any(|c| c.is_ascii_alphabetic())
        };
        if imitates {
            return Some((label, "is written in characters that imitate Latin letters"));
        }
    }
    None
}

/// Whether `c` is a letter of the Latin script (ASCII, Latin-1, Latin
/// Extended-A/B, IPA, Latin Extended Additional).
fn is_latin_letter(c: char) -> bool {
    c.is_ascii_alphabetic()
        || matches!(c, '\u{c0}'..='\u{24f}' | '\u{250}'..='\u{2af}' | '\u{1e00}'..='\u{1eff}')
            && c != '\u{d7}'
            && c != '\u{f7}'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(host: &str, own: &[&str], brands: &[&str]) -> Option<(String, Likeness)> {
        let own: Vec<String> = own.iter().map(|s| s.to_string()).collect();
        let brands: Vec<String> = brands.iter().map(|s| s.to_string()).collect();
        let targets = Targets::new(&own, &brands);
        let url = super::super::normalise::normalise(&format!("http://{host}/"))?;
        let super::super::normalise::Host::Domain {
            ascii,
            unicode,
            registrable,
        } = &url.host
        else {
            return None;
        };
        let unicode_registrable = if registrable.contains("xn--") {
            url::quirks::domain_to_unicode(registrable)
        } else {
            registrable.clone()
        };
        let _ = unicode;
        lookalike(ascii, registrable, &unicode_registrable, &targets)
            .map(|(t, how)| (t.domain.clone(), how))
    }

    #[test]
    fn confusable_characters_are_caught() {
        let paypal = Some(("paypal.com".to_string(), Likeness::Confusable));
        assert_eq!(find("paypa1.com", &[], &["paypal.com"]), paypal);
        assert_eq!(find("www.p\u{430}ypal.com", &[], &["paypal.com"]), paypal);
        assert_eq!(
            find("rnicrosoft.com", &[], &[]),
            Some(("microsoft.com".to_string(), Likeness::Confusable))
        );
        assert_eq!(
            find("examp1e.org", &["example.org"], &[]),
            Some(("example.org".to_string(), Likeness::Confusable))
        );
    }

    #[test]
    fn typing_slips_hyphenated_names_and_prefixed_domains_are_caught() {
        assert_eq!(
            find("paypall.com", &[], &[]).map(|x| x.1),
            Some(Likeness::Typo)
        );
        assert_eq!(
            find("micorsoft.net", &[], &[]).map(|x| x.1),
            Some(Likeness::Typo)
        );
        assert_eq!(
            find("micros0ft-support.com", &[], &[]).map(|x| x.1),
            Some(Likeness::Hyphenated)
        );
        assert_eq!(
            find("secure-paypal-login.net", &[], &[]).map(|x| x.1),
            Some(Likeness::Hyphenated)
        );
        assert_eq!(
            find("paypal.com.account-verify.test", &[], &[]).map(|x| x.1),
            Some(Likeness::InSubdomain)
        );
    }

    #[test]
    fn the_real_domains_and_ordinary_names_are_not_lookalikes() {
        for host in [
            "www.paypal.com",
            "paypal.de",
            "paypalobjects.com",
            "office-depot.com",
            "live-music.org",
            "apply.com",
            "example.com",
            "lists.sourceforge.net",
            "news.google.com",
            "googlegroups.com",
            "amazon-adsystem.com",
            "www.google-analytics.com",
            "paypal-community.com",
            "finance.example",
            "ucloud.cn",
        ] {
            assert_eq!(find(host, &["example.org"], &[]), None, "{host}");
        }
    }

    #[test]
    fn configured_domains_are_matched_further_than_built_in_brands() {
        // Any hyphenated use of a configured name is suspect...
        assert_eq!(
            find("example-hr.com", &["example.org"], &[]).map(|x| x.1),
            Some(Likeness::Hyphenated)
        );
        assert_eq!(
            find("paypal-community.com", &[], &["paypal.com"]).map(|x| x.1),
            Some(Likeness::Hyphenated)
        );
        // ...a built-in brand's only with a lure word.
        assert_eq!(find("paypal-community.com", &[], &[]), None);
        assert_eq!(
            find("paypal-community-login.com", &[], &[]).map(|x| x.1),
            Some(Likeness::Hyphenated)
        );
    }

    #[test]
    fn edit_distance_is_exactly_one() {
        assert!(within_one_edit("paypal", "paypa"));
        assert!(within_one_edit("paypal", "paypial"));
        assert!(within_one_edit("paypal", "paypol"));
        assert!(within_one_edit("paypal", "papyal"));
        assert!(!within_one_edit("paypal", "paypal"));
        assert!(!within_one_edit("paypal", "pyapla"));
        assert!(!within_one_edit("paypal", "pay"));
    }

    #[test]
    fn deceptive_idn_labels_are_named() {
        let idn = |unicode: &str| idn_deception(unicode, &url::quirks::domain_to_ascii(unicode));
        assert!(idn("p\u{430}ypal.com").is_some_and(|(_, why)| why == "mixes scripts"));
        assert!(
            idn("secure.p\u{430}ypal-login.com").is_some_and(|(l, _)| l == "p\u{430}ypal-login")
        );
        // "аррӏе" in Cyrillic letters only, under .com.
        assert!(idn("\u{430}\u{440}\u{440}\u{4cf}\u{435}.com")
            .is_some_and(|(_, why)| why.contains("imitate Latin")));
        for honest in [
            "bücher.example",
            "bærum.no",
            "straße.de",
            "яндекс.рф",
            "сахар.рф",
            "мир.рус",
            "例え.jp",
            "sony電器.jp",
            "한국-test.kr",
            "example.com",
            "ак.срб",
        ] {
            assert_eq!(idn(honest), None, "{honest}");
        }
    }
}
