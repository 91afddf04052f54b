//! `[quarantine]`: who may release what (`release_policy`) and how long held
//! mail is kept: `[quarantine] retention_days` for every
//! category, and `[quarantine.retention_by_category]` to keep one longer or
//! shorter (e.g. malware for 90 days, for the incident report).

use portcullis_scan::Category;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[quarantine]` in the configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QuarantineConfig {
    /// Days a held message is kept before the purge may remove it.
    pub retention_days: u32,
    /// Days per verdict category (`spam`, `phishing`, `malware`, `policy`,
    /// `clean`), overriding `retention_days`.
    pub retention_by_category: BTreeMap<Category, u32>,
    /// Who may release what (see `policy`).
    pub release_policy: crate::ReleasePolicy,
}

impl Default for QuarantineConfig {
    fn default() -> Self {
        QuarantineConfig {
            retention_days: 30,
            retention_by_category: BTreeMap::new(),
            release_policy: crate::ReleasePolicy::default(),
        }
    }
}

const DAY_MS: i64 = 24 * 3600 * 1000;

impl QuarantineConfig {
    /// Checks the values; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let check = |key: String, days: u32| {
            if (1..=3650).contains(&days) {
                Ok(())
            } else {
                Err(format!(
                    "{key} = {days}: write a number of days from 1 to 3650"
                ))
            }
        };
        check("quarantine.retention_days".into(), self.retention_days)?;
        for (category, days) in &self.retention_by_category {
            check(
                format!("quarantine.retention_by_category.{}", category.as_str()),
                *days,
            )?;
        }
        Ok(())
    }

    /// When a message of `category` held at `held_at` (Unix ms) expires.
    pub fn expires_at(&self, held_at: i64, category: Category) -> i64 {
        let days = self
            .retention_by_category
            .get(&category)
            .copied()
            .unwrap_or(self.retention_days);
        held_at + i64::from(days) * DAY_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_category_can_be_kept_longer_than_the_default() {
        let config: QuarantineConfig =
            toml::from_str("retention_days = 10\n[retention_by_category]\nmalware = 90\n").unwrap();
        assert_eq!(config.expires_at(0, Category::Spam), 10 * DAY_MS);
        assert_eq!(config.expires_at(5, Category::Malware), 5 + 90 * DAY_MS);
        assert!(config.validate().is_ok());
        let zero: QuarantineConfig = toml::from_str("retention_days = 0").unwrap();
        assert!(zero.validate().unwrap_err().contains("retention_days = 0"));
        assert!(toml::from_str::<QuarantineConfig>("[retention_by_category]\nspamm = 1").is_err());
    }
}
