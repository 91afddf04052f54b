//! The statistical classifier's opinion as graded symbols, in the manner of
//! rspamd and SpamAssassin: the spam probability falls in one of the
//! classifier's bands (`portcullis_classifier::BANDS`), each a symbol with a
//! rising score. `BAYES_HAM_99` and `BAYES_HAM_90` (negative) for mail the model
//! finds ham; `BAYES_SPAM_50` (4, one short of the tag threshold) up to
//! `BAYES_SPAM_999` (10, quarantine) for spam. The uncertain middle gives no
//! symbol. Silent while the model has learned too little, or knows too little
//! of the message, to judge.
//!
//! Standards: none beyond the parsed message (RFC 5322, RFC 2045–2049).
//!
//! Hostile input: the classifier bounds its own work per message (tokens,
//! bytes, parts); this check only maps its number to a symbol.

use super::View;
use crate::{Category, Finding};
use portcullis_classifier::{band, Model};

pub(crate) fn check(view: &View<'_>, model: &Model) -> Vec<Finding> {
    let Some(message) = view.parsed else {
        return Vec::new();
    };
    let Some(opinion) = model.classify(message) else {
        return Vec::new();
    };
    let Some(b) = band(opinion.spam_probability) else {
        return Vec::new();
    };
    let category = if b.score > 0.0 {
        Category::Spam
    } else {
        Category::Clean
    };
    let detail = format!(
        "the classifier puts the spam probability at {:.1}% ({} known features)",
        opinion.spam_probability * 100.0,
        opinion.known_features
    );
    vec![Finding::new(b.symbol, b.score, category, detail)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Envelope, ScanConfig};
    use portcullis_classifier::Class;

    fn parse(raw: &str) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .expect("test message parses")
    }

    fn spam(i: usize) -> String {
        format!(
            "From: Deals {i} <deals{i}@promo-{}.test>\r\nTo: undisclosed-recipients:;\r\n\
             Subject: Cheap meds and FREE money {i}!!!\r\n\r\n\
             Buy cheap viagra now, limited offer, click here for free money and \
             cheap pills, act now, winner {i}\r\n",
            i % 7
        )
    }

    fn ham(i: usize) -> String {
        format!(
            "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n\
             Subject: Re: build failure on the release branch {i}\r\n\r\n\
             The nightly build of the release branch failed again in the linker \
             step; the patch from yesterday fixes the test harness {i}.\r\n"
        )
    }

    fn trained() -> Model {
        let mut model = Model::new();
        for i in 0..60 {
            model.learn(&parse(&spam(i)), Class::Spam);
            model.learn(&parse(&ham(i)), Class::Ham);
        }
        model
    }

    fn symbols(model: &Model, raw: &str) -> Vec<Finding> {
        let message = parse(raw);
        let envelope = Envelope::default();
        let config = ScanConfig::default();
        let view = View {
            raw: raw.as_bytes(),
            parsed: Some(&message),
            envelope: &envelope,
            config: &config,
        };
        check(&view, model)
    }

    #[test]
    fn confident_spam_alone_reaches_the_tag_threshold() {
        let found = symbols(&trained(), &spam(1000));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].name.starts_with("BAYES_SPAM_"),
            "{:?}",
            found[0].name
        );
        assert!(found[0].default_score >= 5.0);
        assert_eq!(found[0].category, Category::Spam);
    }

    #[test]
    fn likely_ham_scores_below_zero() {
        let found = symbols(&trained(), &ham(1000));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].name.starts_with("BAYES_HAM_"),
            "{:?}",
            found[0].name
        );
        assert!(found[0].default_score < 0.0);
        assert_eq!(found[0].category, Category::Clean);
    }

    #[test]
    fn an_untrained_model_says_nothing() {
        assert!(symbols(&Model::new(), &spam(1)).is_empty());
    }
}
