//! Signed action links: what a digest's button may do, for whom, until when.
//!
//! A token is base64url (RFC 4648 §5, no padding) of a small binary payload
//! followed by its HMAC-SHA256 (RFC 2104) under the site's link key:
//!
//! ```text
//! version (1) | action (1) | expires, Unix seconds (8, big-endian) | nonce (16)
//! | message id length (1) | message id | recipient (the rest, UTF-8) | tag (32)
//! ```
//!
//! The tag is checked (in constant time) before anything in the payload is
//! believed; only then the expiry. The nonce makes every link unique, so a
//! link that acts can be recorded as used and refused the second time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::io::Write;
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const TAG_LEN: usize = 32;
const NONCE_LEN: usize = 16;
/// version, action, expiry, nonce, id length.
const FIXED_LEN: usize = 1 + 1 + 8 + NONCE_LEN + 1;
/// Longer tokens are refused unread (an id of 64 and an address of 320,
/// encoded, stay well below).
pub const MAX_TOKEN_LEN: usize = 1024;
/// Bytes in a link key.
pub const KEY_LEN: usize = 32;

/// What a link does when its button is pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkAction {
    /// Release the held copy to its recipient.
    Release,
    /// Ask an administrator to release it.
    RequestRelease,
    /// Add the sender to the recipient's allowed senders.
    AllowSender,
}

impl LinkAction {
    fn code(self) -> u8 {
        match self {
            LinkAction::Release => 1,
            LinkAction::RequestRelease => 2,
            LinkAction::AllowSender => 3,
        }
    }

    fn from_code(c: u8) -> Option<LinkAction> {
        match c {
            1 => Some(LinkAction::Release),
            2 => Some(LinkAction::RequestRelease),
            3 => Some(LinkAction::AllowSender),
            _ => None,
        }
    }

    /// Words for a button or a log line.
    pub fn label(self) -> &'static str {
        match self {
            LinkAction::Release => "Release",
            LinkAction::RequestRelease => "Request release",
            LinkAction::AllowSender => "Allow sender",
        }
    }
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    pub action: LinkAction,
    /// The held message's id.
    pub message: String,
    /// The recipient whose copy it is: the only one the link acts for.
    pub recipient: String,
    /// Unix seconds after which the link is refused.
    pub expires_at: i64,
    /// Random, unique per link; recorded when the link is used.
    pub nonce: [u8; NONCE_LEN],
}

impl LinkClaims {
    /// New claims with a fresh random nonce.
    pub fn new(action: LinkAction, message: &str, recipient: &str, expires_at: i64) -> Self {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        LinkClaims {
            action,
            message: message.to_string(),
            recipient: recipient.to_string(),
            expires_at,
            nonce,
        }
    }

    /// The nonce as text, as the store records used links.
    pub fn nonce_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.nonce)
    }
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token this site could have made: wrong length or encoding.
    #[error("the link is malformed")]
    Malformed,
    /// The signature does not match: altered, or made with another key.
    #[error("the link's signature does not match")]
    Tampered,
    /// Authentic, but past its expiry.
    #[error("the link has expired")]
    Expired,
}

/// The secret that signs links. Its bytes are never printed or logged.
#[derive(Clone)]
pub struct LinkKey([u8; KEY_LEN]);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(..)")
    }
}

/// A key file that could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("link key {0}: {1}")]
    Io(String, std::io::Error),
    #[error("link key {0} is not {KEY_LEN} bytes; remove it to make a new one (links already sent stop working)")]
    Damaged(String),
}

impl LinkKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> LinkKey {
        LinkKey(bytes)
    }

    /// A fresh random key (for tests and first starts).
    pub fn generate() -> LinkKey {
        let mut k = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut k);
        LinkKey(k)
    }

    /// Reads the key at `path`.
    pub fn load(path: &Path) -> Result<LinkKey, KeyError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| KeyError::Io(shown.clone(), e))?;
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| KeyError::Damaged(shown))?;
        Ok(LinkKey(key))
    }

    /// Reads the key at `path`, making it (mode 0600, fsynced) if there is
    /// none yet. Two processes starting at once agree: the file is created
    /// exclusively and the loser reads the winner's key.
    pub fn load_or_create(path: &Path) -> Result<LinkKey, KeyError> {
        let shown = path.display().to_string();
        if path.exists() {
            return LinkKey::load(path);
        }
        let key = LinkKey::generate();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(mut f) => {
                f.write_all(&key.0)
                    .and_then(|_| f.sync_all())
                    .map_err(|e| KeyError::Io(shown, e))?;
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => LinkKey::load(path),
            Err(e) => Err(KeyError::Io(shown, e)),
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length; this cannot fail.
        <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC accepts any key length")
    }
}

/// Makes the token for `claims`. Message ids longer than 255 bytes cannot be
/// signed (ours are 16).
pub fn sign(key: &LinkKey, claims: &LinkClaims) -> String {
    let id = claims.message.as_bytes();
    let id = &id[..id.len().min(255)];
    let mut payload = Vec::with_capacity(FIXED_LEN + id.len() + claims.recipient.len() + TAG_LEN);
    payload.push(VERSION);
    payload.push(claims.action.code());
    payload.extend_from_slice(&claims.expires_at.to_be_bytes());
    payload.extend_from_slice(&claims.nonce);
    payload.push(id.len() as u8);
    payload.extend_from_slice(id);
    payload.extend_from_slice(claims.recipient.as_bytes());
    let mut mac = key.mac();
    mac.update(&payload);
    payload.extend_from_slice(&mac.finalize().into_bytes());
    URL_SAFE_NO_PAD.encode(payload)
}

/// Checks a token and returns what it says. `now` is Unix seconds.
pub fn verify(key: &LinkKey, token: &str, now: i64) -> Result<LinkClaims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| TokenError::Malformed)?;
    if bytes.len() < FIXED_LEN + TAG_LEN {
        return Err(TokenError::Malformed);
    }
    let (payload, tag) = bytes.split_at(bytes.len() - TAG_LEN);
    let mut mac = key.mac();
    mac.update(payload);
    mac.verify_slice(tag).map_err(|_| TokenError::Tampered)?;
    // Signed by us: what follows can only fail for a token of another version.
    if payload[0] != VERSION {
        return Err(TokenError::Malformed);
    }
    let action = LinkAction::from_code(payload[1]).ok_or(TokenError::Malformed)?;
    let mut expiry = [0u8; 8];
    expiry.copy_from_slice(&payload[2..10]);
    let expires_at = i64::from_be_bytes(expiry);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&payload[10..10 + NONCE_LEN]);
    let id_len = payload[FIXED_LEN - 1] as usize;
    let rest = &payload[FIXED_LEN..];
    if rest.len() < id_len {
        return Err(TokenError::Malformed);
    }
    let (id, recipient) = rest.split_at(id_len);
    let message = std::str::from_utf8(id).map_err(|_| TokenError::Malformed)?;
    let recipient = std::str::from_utf8(recipient).map_err(|_| TokenError::Malformed)?;
    if now > expires_at {
        return Err(TokenError::Expired);
    }
    Ok(LinkClaims {
        action,
        message: message.to_string(),
        recipient: recipient.to_string(),
        expires_at,
        nonce,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(expires_at: i64) -> LinkClaims {
        LinkClaims::new(
            LinkAction::Release,
            "D2107H64DXJG0000",
            "alice@example.test",
            expires_at,
        )
    }

    #[test]
    fn a_signed_token_verifies_and_says_what_was_signed() {
        let key = LinkKey::generate();
        let c = claims(2_000);
        let token = sign(&key, &c);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(verify(&key, &token, 1_000), Ok(c.clone()));
        // Two links for the same thing differ (their nonces do).
        let other = claims(2_000);
        assert_ne!(sign(&key, &other), token);
        assert_ne!(other.nonce_text(), c.nonce_text());
    }

    #[test]
    fn every_altered_character_is_refused() {
        let key = LinkKey::generate();
        let token = sign(&key, &claims(2_000));
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            let got = verify(&key, &altered, 1_000);
            assert!(
                matches!(got, Err(TokenError::Tampered | TokenError::Malformed)),
                "position {i}: {got:?}"
            );
        }
    }

    #[test]
    fn expired_wrong_key_and_garbage_are_told_apart() {
        let key = LinkKey::generate();
        let token = sign(&key, &claims(2_000));
        assert_eq!(verify(&key, &token, 2_001), Err(TokenError::Expired));
        assert_eq!(verify(&key, &token, 2_000).map(|c| c.expires_at), Ok(2_000));
        assert_eq!(
            verify(&LinkKey::generate(), &token, 1_000),
            Err(TokenError::Tampered)
        );
        assert_eq!(verify(&key, "", 1_000), Err(TokenError::Malformed));
        assert_eq!(
            verify(&key, "not*base64", 1_000),
            Err(TokenError::Malformed)
        );
        assert_eq!(verify(&key, "AAAA", 1_000), Err(TokenError::Malformed));
        let long = "A".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(verify(&key, &long, 1_000), Err(TokenError::Malformed));
    }

    #[test]
    fn an_expiry_cannot_be_extended_by_editing_the_payload() {
        let key = LinkKey::generate();
        let token = sign(&key, &claims(2_000));
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[2..10].copy_from_slice(&i64::MAX.to_be_bytes());
        let forged = URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(verify(&key, &forged, 3_000), Err(TokenError::Tampered));
    }

    #[test]
    fn the_key_file_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("digest-link.key");
        let a = LinkKey::load_or_create(&path).unwrap();
        let b = LinkKey::load_or_create(&path).unwrap();
        assert_eq!(a.0, b.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(format!("{a:?}"), "LinkKey(..)");
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(LinkKey::load(&path), Err(KeyError::Damaged(_))));
    }
}
