//! Who may release what: per verdict category, whether the recipient may
//! release their own copy, must ask an administrator (request, then approve or
//! deny), or cannot see a way out at all (administrators only).
//!
//! `[quarantine.release_policy]` in the configuration; the defaults are the
//! issue's: users release their own spam; phishing and policy need a request
//! and an administrator's approval; malware is for administrators only. Helpdesk
//! staff release everything but malware; administrators release everything.

use portcullis_scan::Category;
use serde::Deserialize;

/// What a recipient may do with their own held copy of one category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRight {
    /// Release it themselves.
    Release,
    /// Ask for release; an administrator or helpdesk approves or denies.
    Request,
    /// Nothing: only administrators can release it.
    Admin,
}

/// The roles of the console and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Their own held mail only.
    User,
    /// Everyone's held mail; release everything but malware.
    Helpdesk,
    /// Everything.
    Admin,
}

/// What one role may do with one held entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Release,
    Request,
    None,
}

/// `[quarantine.release_policy]`: the user's right per category.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReleasePolicy {
    pub spam: UserRight,
    pub phishing: UserRight,
    pub malware: UserRight,
    pub policy: UserRight,
    pub clean: UserRight,
}

impl Default for ReleasePolicy {
    fn default() -> Self {
        ReleasePolicy {
            spam: UserRight::Release,
            phishing: UserRight::Request,
            malware: UserRight::Admin,
            policy: UserRight::Request,
            clean: UserRight::Release,
        }
    }
}

impl ReleasePolicy {
    /// The user's right for a category.
    pub fn user_right(&self, category: Category) -> UserRight {
        match category {
            Category::Spam => self.spam,
            Category::Phishing => self.phishing,
            Category::Malware => self.malware,
            Category::Policy => self.policy,
            Category::Clean => self.clean,
        }
    }

    /// What `role` may do with a held entry of `category`. (Whether a user
    /// owns the entry is checked by the caller: a user sees only their own.)
    pub fn permission(&self, role: Role, category: Category) -> Permission {
        match role {
            Role::Admin => Permission::Release,
            Role::Helpdesk if category == Category::Malware => Permission::None,
            Role::Helpdesk => Permission::Release,
            Role::User => match self.user_right(category) {
                UserRight::Release => Permission::Release,
                UserRight::Request => Permission::Request,
                UserRight::Admin => Permission::None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_follow_the_category() {
        let p = ReleasePolicy::default();
        assert_eq!(
            p.permission(Role::User, Category::Spam),
            Permission::Release
        );
        assert_eq!(
            p.permission(Role::User, Category::Phishing),
            Permission::Request
        );
        assert_eq!(
            p.permission(Role::User, Category::Policy),
            Permission::Request
        );
        assert_eq!(
            p.permission(Role::User, Category::Malware),
            Permission::None
        );
        assert_eq!(
            p.permission(Role::Helpdesk, Category::Phishing),
            Permission::Release
        );
        assert_eq!(
            p.permission(Role::Helpdesk, Category::Malware),
            Permission::None
        );
        assert_eq!(
            p.permission(Role::Admin, Category::Malware),
            Permission::Release
        );
    }

    #[test]
    fn an_organisation_can_make_users_ask_even_for_spam() {
        let p: ReleasePolicy = toml::from_str("spam = \"request\"").unwrap();
        assert_eq!(
            p.permission(Role::User, Category::Spam),
            Permission::Request
        );
        assert!(toml::from_str::<ReleasePolicy>("spam = \"maybe\"").is_err());
    }
}
