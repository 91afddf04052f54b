//! Recipients' own rules about senders ("allow" from a release, a digest link
//! or the portal; "block" from the portal), applied to the verdict before it
//! is acted on.
//!
//! Only when every recipient of the message agrees does a rule apply (mail to
//! several people is judged once): all allow → delivered, with the symbol
//! `RECIPIENT_ALLOWS_SENDER` cancelling the score; all block → refused, with
//! `RECIPIENT_BLOCKS_SENDER`. An allow never lets through malware or phishing,
//! nor a sender whose authentication failed (SPF, DKIM or DMARC with a
//! positive score): the envelope sender is easy to forge, and an allow rule
//! must not be a way in for whoever forges it.
//!
//! The rules are read from the store at most every two seconds, not per
//! message: the mail path does no extra store read.

use portcullis_scan::{Action, Category, Symbol, Verdict};
use portcullis_store::digest::SenderRule;
use portcullis_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REFRESH: Duration = Duration::from_secs(2);

type Rules = HashMap<(String, String), SenderRule>;

pub struct SenderRules {
    store: Store,
    cache: Mutex<(Option<Instant>, Arc<Rules>)>,
}

impl SenderRules {
    pub fn new(store: Store) -> SenderRules {
        SenderRules {
            store,
            cache: Mutex::new((None, Arc::new(HashMap::new()))),
        }
    }

    /// The current rules, read again when the copy is older than [`REFRESH`].
    async fn current(&self) -> Arc<Rules> {
        let (fresh, rules) = match self.cache.lock() {
            Ok(c) => (c.0.is_some_and(|at| at.elapsed() < REFRESH), c.1.clone()),
            Err(_) => return Arc::new(HashMap::new()),
        };
        if fresh {
            return rules;
        }
        let store = self.store.clone();
        let loaded = tokio::task::spawn_blocking(move || store.sender_rules(None)).await;
        let rules = match loaded {
            Ok(Ok(list)) => Arc::new(
                list.into_iter()
                    .map(|e| {
                        (
                            (
                                e.recipient.to_ascii_lowercase(),
                                e.sender.to_ascii_lowercase(),
                            ),
                            e.rule,
                        )
                    })
                    .collect::<Rules>(),
            ),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the recipients' sender rules; using the last ones");
                rules
            }
            Err(_) => rules,
        };
        if let Ok(mut c) = self.cache.lock() {
            *c = (Some(Instant::now()), rules.clone());
        }
        rules
    }

    /// Applies the rules to a verdict.
    pub async fn apply(&self, mail_from: &str, recipients: &[String], verdict: &mut Verdict) {
        if mail_from.is_empty() || recipients.is_empty() {
            return;
        }
        let rules = self.current().await;
        if rules.is_empty() {
            return;
        }
        adjust(&rules, mail_from, recipients, verdict);
    }
}

fn adjust(rules: &Rules, mail_from: &str, recipients: &[String], verdict: &mut Verdict) {
    let sender = mail_from.to_ascii_lowercase();
    let all = |want: SenderRule| {
        recipients
            .iter()
            .all(|r| rules.get(&(r.to_ascii_lowercase(), sender.clone())) == Some(&want))
    };
    if all(SenderRule::Block) {
        verdict.symbols.push(Symbol {
            name: "RECIPIENT_BLOCKS_SENDER".into(),
            score: 1000.0,
            detail: format!("the recipient has blocked {mail_from}"),
            category: Category::Policy,
        });
        verdict.score += 1000.0;
        verdict.action = Action::Reject;
        verdict.category = Category::Policy;
        return;
    }
    let auth_failed = verdict.symbols.iter().any(|s| {
        s.score > 0.0
            && (s.name.starts_with("SPF_")
                || s.name.starts_with("DKIM_")
                || s.name.starts_with("DMARC_"))
    });
    let guarded = matches!(verdict.category, Category::Malware | Category::Phishing);
    if verdict.action != Action::Deliver && !guarded && !auth_failed && all(SenderRule::Allow) {
        let cancel = -verdict.score.max(0.0);
        verdict.symbols.push(Symbol {
            name: "RECIPIENT_ALLOWS_SENDER".into(),
            score: cancel,
            detail: format!("the recipient allows {mail_from}"),
            category: Category::Clean,
        });
        verdict.score += cancel;
        verdict.action = Action::Deliver;
        verdict.category = Category::Clean;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(category: Category, extra: Option<(&str, f64)>) -> Verdict {
        let mut symbols = vec![Symbol {
            name: "SOME_RULE".into(),
            score: 9.0,
            detail: String::new(),
            category,
        }];
        if let Some((name, score)) = extra {
            symbols.push(Symbol {
                name: name.into(),
                score,
                detail: String::new(),
                category: Category::Spam,
            });
        }
        Verdict {
            score: 9.0,
            symbols,
            category,
            action: Action::Quarantine,
        }
    }

    fn rules(list: &[(&str, SenderRule)]) -> Rules {
        list.iter()
            .map(|(r, rule)| ((r.to_string(), "s@x.test".to_string()), *rule))
            .collect()
    }

    #[test]
    fn an_allow_of_every_recipient_delivers_spam_but_not_phishing_or_forgeries() {
        let r = rules(&[
            ("a@o.test", SenderRule::Allow),
            ("b@o.test", SenderRule::Allow),
        ]);
        let both = ["a@o.test".to_string(), "B@o.test".to_string()];
        let mut v = verdict(Category::Spam, None);
        adjust(&r, "S@x.test", &both, &mut v);
        assert_eq!((v.action, v.score), (Action::Deliver, 0.0));
        assert_eq!(
            v.symbols.last().map(|s| s.name.as_str()),
            Some("RECIPIENT_ALLOWS_SENDER")
        );

        let mut p = verdict(Category::Phishing, None);
        adjust(&r, "s@x.test", &both, &mut p);
        assert_eq!(p.action, Action::Quarantine);
        let mut f = verdict(Category::Spam, Some(("SPF_FAIL", 3.0)));
        adjust(&r, "s@x.test", &both, &mut f);
        assert_eq!(f.action, Action::Quarantine);
        // One recipient without the rule: nothing changes.
        let mut m = verdict(Category::Spam, None);
        adjust(
            &r,
            "s@x.test",
            &["a@o.test".into(), "c@o.test".into()],
            &mut m,
        );
        assert_eq!(m.action, Action::Quarantine);
    }

    #[test]
    fn a_block_of_every_recipient_refuses() {
        let r = rules(&[("a@o.test", SenderRule::Block)]);
        let mut v = verdict(Category::Clean, None);
        v.action = Action::Deliver;
        adjust(&r, "s@x.test", &["a@o.test".into()], &mut v);
        assert_eq!((v.action, v.category), (Action::Reject, Category::Policy));
    }
}
