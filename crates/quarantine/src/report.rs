//! Reports that teach the content classifier: held mail reported as a false
//! positive is learned as ham, mail reported as missed spam as spam, into the
//! site's model in the store; the gateway reloads it within seconds. Only
//! helpdesk and administrators report (the API checks): one model serves the
//! whole site, and a user must not be able to poison it.

use portcullis_classifier::{Class, Model};
use portcullis_store::{Store, StoreError};

/// What a report says the message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Report {
    /// A false positive: learned as ham.
    Ham,
    /// Missed spam: learned as spam.
    Spam,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the message does not parse as RFC 5322; nothing was learned")]
    Unparsable,
    #[error("the stored classifier model cannot be read: {0}")]
    Model(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Learns `raw` as the report says into the stored model (a new model when
/// none was trained yet). Returns the model's spam and ham counts after.
/// Blocking. A `portcullis train` saving at the same moment may win; the
/// report is then lost, not the model.
pub fn learn(
    store: &Store,
    id: &str,
    raw: &[u8],
    report: Report,
    actor: &str,
) -> Result<(u64, u64), ReportError> {
    let message = mail_parser::MessageParser::default()
        .parse(raw)
        .ok_or(ReportError::Unparsable)?;
    let mut model = match store.load_model(portcullis_classifier::STORE_NAME)? {
        Some((bytes, _)) => {
            Model::from_bytes(&bytes).map_err(|e| ReportError::Model(e.to_string()))?
        }
        None => Model::new(),
    };
    model.learn(
        &message,
        match report {
            Report::Ham => Class::Ham,
            Report::Spam => Class::Spam,
        },
    );
    store.save_model(portcullis_classifier::STORE_NAME, &model.to_bytes())?;
    let what = match report {
        Report::Ham => "report false positive",
        Report::Spam => "report missed spam",
    };
    store.audit(actor, what, id, 1, None)?;
    let (spam, ham) = model.learned();
    Ok((spam, ham))
}
