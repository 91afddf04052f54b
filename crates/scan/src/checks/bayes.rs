//! The statistical classifier's opinion as symbols: `BAYES_SPAM` when the learned
//! model finds the message likely spam, `BAYES_HAM` (a negative weight) when it
//! finds it likely ham. Silent while the model has learned too little.

use super::View;
use crate::{Category, Finding};
use portcullis_classifier::Model;

pub(crate) fn check(view: &View<'_>, model: &Model) -> Vec<Finding> {
    let Some(message) = view.parsed else {
        return Vec::new();
    };
    let Some(opinion) = model.classify(message) else {
        return Vec::new();
    };
    let p = opinion.spam_probability;
    let detail = format!(
        "the classifier puts the spam probability at {:.1}% ({} known features)",
        p * 100.0,
        opinion.known_features
    );
    if p >= 0.9 {
        vec![Finding::new("BAYES_SPAM", 6.0, Category::Spam, detail)]
    } else if p <= 0.1 {
        vec![Finding::new("BAYES_HAM", -3.0, Category::Clean, detail)]
    } else {
        Vec::new()
    }
}
