//! The verdict: what the scanner concluded and why. Every reason is a named symbol
//! with its weight and a detail a person can read; the action follows from the total
//! score and the configured thresholds, the highest one reached winning.

use serde::{Deserialize, Serialize};

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Symbol {
    pub name: String,
    pub score: f64,
    pub detail: String,
    /// What the symbol points at (absent in verdicts stored before it was kept).
    #[serde(default)]
    pub category: Category,
}

/// What kind of mail the scanner thinks this is.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    #[default]
    Clean,
    Spam,
    Phishing,
    Malware,
    Policy,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Clean => "clean",
            Category::Spam => "spam",
            Category::Phishing => "phishing",
            Category::Malware => "malware",
            Category::Policy => "policy",
        }
    }
}

/// What the gateway does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Deliver,
    Tag,
    Quarantine,
    Reject,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deliver => "deliver",
            Action::Tag => "tag",
            Action::Quarantine => "quarantine",
            Action::Reject => "reject",
        }
    }
}

/// Score limits for each action (`[scan.thresholds]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    pub tag: f64,
    pub quarantine: f64,
    pub reject: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            tag: 5.0,
            quarantine: 8.0,
            reject: 15.0,
        }
    }
}

impl Thresholds {
    /// The highest action whose threshold the score reaches.
    pub fn action_for(&self, score: f64) -> Action {
        if score >= self.reject {
            Action::Reject
        } else if score >= self.quarantine {
            Action::Quarantine
        } else if score >= self.tag {
            Action::Tag
        } else {
            Action::Deliver
        }
    }
}

/// The scanner's conclusion about one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub score: f64,
    pub symbols: Vec<Symbol>,
    pub category: Category,
    pub action: Action,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_threshold_reached_wins() {
        let t = Thresholds::default();
        assert_eq!(t.action_for(0.0), Action::Deliver);
        assert_eq!(t.action_for(4.99), Action::Deliver);
        assert_eq!(t.action_for(5.0), Action::Tag);
        assert_eq!(t.action_for(8.0), Action::Quarantine);
        assert_eq!(t.action_for(15.0), Action::Reject);
        assert_eq!(t.action_for(1000.0), Action::Reject);
    }

    #[test]
    fn verdicts_serialise_with_lowercase_names() {
        let v = Verdict {
            score: 1.0,
            symbols: vec![],
            category: Category::Phishing,
            action: Action::Quarantine,
        };
        let json = serde_json::to_string(&v).unwrap();
        assert!(
            json.contains("\"phishing\"") && json.contains("\"quarantine\""),
            "{json}"
        );
    }
}
