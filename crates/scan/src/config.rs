//! Scanner settings: the `[scan]` section of the configuration, read with serde so
//! that the binary embeds it as is. Every key has a documented default; unknown
//! keys are refused.

use crate::Thresholds;
use serde::Deserialize;
use std::collections::HashMap;

/// Everything the scanner is told by the admin.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanConfig {
    pub thresholds: Thresholds,
    /// Symbol name to the weight that replaces its default.
    pub weights: HashMap<String, f64>,
    /// The organisation's own domains (the gateway adds its `[[domains]]`):
    /// lookalikes of them and display names impersonating them are flagged.
    pub own_domains: Vec<String>,
    /// Brand domains whose lookalikes are flagged (e.g. "paypal.com").
    pub brands: Vec<String>,
    pub links: LinkConfig,
    pub attachments: AttachmentConfig,
    /// Admin rules: a regex over one header or the decoded body.
    pub rules: Vec<RuleConfig>,
    pub auth: AuthConfig,
    pub tag: TagConfig,
    /// The virus scanner; off when absent.
    pub clamd: Option<crate::clamd::ClamdConfig>,
    /// DNS block and allow lists; none by default.
    pub dnsbl: crate::dnsbl::DnsblConfig,
}

/// `[scan.tag]`: how delivered mail shows its verdict to the server downstream.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TagConfig {
    /// Put in front of the Subject of tagged mail, e.g. "[SPAM] ". Off by default:
    /// the X-Spam headers (and the SCL) are what mail servers and clients filter on.
    pub subject_prefix: Option<String>,
    /// Add `X-MS-Exchange-Organization-SCL` (spam confidence level) so that an
    /// Exchange server downstream files tagged mail in Junk: 6 for tagged mail,
    /// 9 for mail released from quarantine, 1 for the rest.
    pub exchange_scl: bool,
}

/// `[scan.links]`: local URL lists.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkConfig {
    /// Domains whose links are flagged (a domain covers its subdomains).
    pub block: Vec<String>,
    /// Domains whose links are never flagged.
    pub allow: Vec<String>,
    /// Shortener domains in addition to the built-in list.
    pub shorteners: Vec<String>,
}

/// `[scan.attachments]`: archive inspection limits and blocked types.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttachmentConfig {
    /// How deep archives inside archives are opened.
    pub max_depth: u32,
    /// Total bytes an archive may expand to before it counts as a bomb.
    pub max_expanded_bytes: u64,
    /// Expansion ratio (expanded / compressed) above which an archive is a bomb.
    pub max_ratio: u64,
    /// Entries per archive above which it counts as a bomb.
    pub max_entries: u64,
    /// Extensions (without dot, lowercase) refused in addition to the built-in list.
    pub blocked_extensions: Vec<String>,
}

impl Default for AttachmentConfig {
    fn default() -> Self {
        AttachmentConfig {
            max_depth: 3,
            max_expanded_bytes: 200 * 1024 * 1024,
            max_ratio: 100,
            max_entries: 10_000,
            blocked_extensions: Vec::new(),
        }
    }
}

/// Where an admin rule looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RulePart {
    Header,
    Body,
}

/// `[[scan.rules]]`: one admin regex rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The symbol name (upper case letters, digits and `_`).
    pub name: String,
    pub part: RulePart,
    /// For `part = "header"`: the header field name.
    #[serde(default)]
    pub header: Option<String>,
    pub pattern: String,
    pub score: f64,
    #[serde(default = "default_rule_category")]
    pub category: crate::Category,
    #[serde(default)]
    pub detail: Option<String>,
}

fn default_rule_category() -> crate::Category {
    crate::Category::Spam
}

/// `[scan.auth]`: SPF, DKIM, DMARC and ARC.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Whether authentication checks run (they need DNS).
    pub enabled: bool,
    /// Our authserv-id in Authentication-Results (RFC 8601); defaults to the
    /// gateway's host name. Headers claiming it are removed from incoming mail.
    pub authserv_id: Option<String>,
    /// authserv-ids of other hosts whose Authentication-Results are believed.
    pub trusted_authserv_ids: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: true,
            authserv_id: None,
            trusted_authserv_ids: Vec::new(),
        }
    }
}
