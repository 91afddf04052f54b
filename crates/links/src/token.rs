//! The token of a rewritten link: which URL it stands for, in which message,
//! for whom, since when, signed by which key.
//!
//! A token is base64url (RFC 4648 §5, no padding) of a small binary payload
//! followed by its HMAC-SHA256 (RFC 2104) under the key named in it:
//!
//! ```text
//! version (1) = 1 | key id (1) | issued at, Unix seconds (8, big-endian, signed)
//! | recipient hash (8) | trace id length (1) | trace id (UTF-8)
//! | URL (the rest, UTF-8) | tag (32)
//! ```
//!
//! The tag covers every byte before it. Verifying checks the length of the
//! text before decoding it, then the version and that the key id is in the
//! ring, then the tag (in constant time), and only then reads the fields.
//!
//! The recipient hash is the first 8 bytes of HMAC-SHA256 under the same key
//! of `portcullis links recipient\0` and the lower-cased address: it tells
//! whether a click comes from a link made for a given recipient without
//! putting the address in the link, and cannot be computed without the key.
//!
//! Bounds: a URL of at most [`MAX_URL_LEN`] bytes (longer ones are not
//! signed: such a link is to be left as it is), a trace id of at most 255
//! bytes, so a token is at most 5,870 characters and the rewritten link fits
//! a web server's usual 8 KiB request line; longer text is refused unread.

use crate::keys::KeyRing;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;

const VERSION: u8 = 1;
const TAG_LEN: usize = 32;
/// Bytes in a recipient hash.
pub const RECIPIENT_HASH_LEN: usize = 8;
/// version, key id, issued at, recipient hash, trace id length.
const FIXED_LEN: usize = 1 + 1 + 8 + RECIPIENT_HASH_LEN + 1;
/// The longest URL a token carries, in bytes.
pub const MAX_URL_LEN: usize = 4096;
/// The longest trace id a token carries, in bytes.
pub const MAX_MESSAGE_LEN: usize = 255;
/// Longer token text is refused before it is decoded. The longest token,
/// with a URL of [`MAX_URL_LEN`] and a trace id of 255 bytes, is 5,870
/// characters.
pub const MAX_TOKEN_LEN: usize = 6144;
const RECIPIENT_CONTEXT: &[u8] = b"portcullis links recipient\0";

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkToken {
    /// The original URL: absolute, `http` or `https`.
    pub url: String,
    /// The trace id of the message the link was in.
    pub message: String,
    /// The keyed hash of the recipient's address (see the module's notes).
    pub recipient_hash: [u8; RECIPIENT_HASH_LEN],
    /// When the link was rewritten, Unix seconds.
    pub issued_at: i64,
    /// The key that signs (or signed) it.
    pub key_id: u8,
}

/// Why a token is refused, or cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token this site could have made: bad encoding, too short, an
    /// unknown version, or fields that do not parse.
    #[error("the link is malformed")]
    Malformed,
    /// Signed by a key this site does not have (retired, or never ours).
    #[error("the link names key {0}, which this site does not have (retired, or never ours)")]
    UnknownKey(u8),
    /// The tag does not match: the link was altered, or forged.
    #[error("the link's signature does not match: it was altered or forged")]
    Tampered,
    /// Too long to be a token, or (when signing) a URL or trace id over its bound.
    #[error("the link is too long")]
    TooLong,
    /// When signing: not an absolute http or https URL, or one with spaces or
    /// control characters.
    #[error("not an http or https URL")]
    UnsupportedUrl,
}

impl LinkToken {
    /// A token for `url`, as found in message `message` for `recipient`,
    /// to be signed by the ring's newest key.
    pub fn new(
        ring: &KeyRing,
        url: &str,
        message: &str,
        recipient: &str,
        issued_at: i64,
    ) -> Result<LinkToken, TokenError> {
        let key_id = ring.newest().ok_or(TokenError::UnknownKey(0))?;
        let recipient_hash = recipient_hash(ring, key_id, recipient).expect("the newest key");
        Ok(LinkToken {
            url: url.to_string(),
            message: message.to_string(),
            recipient_hash,
            issued_at,
            key_id,
        })
    }

    /// Whether the link was made for `recipient` (compared without regard to case).
    pub fn is_for(&self, ring: &KeyRing, recipient: &str) -> bool {
        recipient_hash(ring, self.key_id, recipient).is_some_and(|h| {
            // Not secret, but compared in constant time all the same.
            h.iter()
                .zip(self.recipient_hash.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
        })
    }
}

/// The keyed hash of `recipient` under key `key_id`; `None` if the ring has
/// no such key.
pub fn recipient_hash(
    ring: &KeyRing,
    key_id: u8,
    recipient: &str,
) -> Option<[u8; RECIPIENT_HASH_LEN]> {
    let mut mac = ring.mac(key_id)?;
    mac.update(RECIPIENT_CONTEXT);
    mac.update(recipient.trim().to_lowercase().as_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; RECIPIENT_HASH_LEN];
    out.copy_from_slice(&full[..RECIPIENT_HASH_LEN]);
    Some(out)
}

/// An absolute http or https URL without whitespace or control characters
/// (RFC 3986 §3; non-ASCII is allowed, as mail carries IRIs).
fn acceptable_url(url: &str) -> bool {
    let lower = url
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return false;
    };
    !rest.is_empty()
        && !rest.starts_with('/')
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Makes the token for `token`, signed by the key it names.
pub fn sign(ring: &KeyRing, token: &LinkToken) -> Result<String, TokenError> {
    let message = token.message.as_bytes();
    if token.url.len() > MAX_URL_LEN || message.len() > MAX_MESSAGE_LEN {
        return Err(TokenError::TooLong);
    }
    if !acceptable_url(&token.url) {
        return Err(TokenError::UnsupportedUrl);
    }
    let mut mac = ring
        .mac(token.key_id)
        .ok_or(TokenError::UnknownKey(token.key_id))?;
    let mut payload = Vec::with_capacity(FIXED_LEN + message.len() + token.url.len() + TAG_LEN);
    payload.push(VERSION);
    payload.push(token.key_id);
    payload.extend_from_slice(&token.issued_at.to_be_bytes());
    payload.extend_from_slice(&token.recipient_hash);
    payload.push(message.len() as u8);
    payload.extend_from_slice(message);
    payload.extend_from_slice(token.url.as_bytes());
    mac.update(&payload);
    payload.extend_from_slice(&mac.finalize().into_bytes());
    Ok(URL_SAFE_NO_PAD.encode(payload))
}

/// Checks a token and returns what it says. Nothing in an unverified token is
/// returned, logged or acted on.
pub fn verify(ring: &KeyRing, token: &str) -> Result<LinkToken, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| TokenError::Malformed)?;
    if bytes.len() < FIXED_LEN + TAG_LEN || bytes[0] != VERSION {
        return Err(TokenError::Malformed);
    }
    let key_id = bytes[1];
    let mut mac = ring.mac(key_id).ok_or(TokenError::UnknownKey(key_id))?;
    let (payload, tag) = bytes.split_at(bytes.len() - TAG_LEN);
    mac.update(payload);
    mac.verify_slice(tag).map_err(|_| TokenError::Tampered)?;
    // Signed by us: what follows fails only for a token we should not have made.
    let issued_at = i64::from_be_bytes(payload[2..10].try_into().expect("8 bytes"));
    let recipient_hash: [u8; RECIPIENT_HASH_LEN] = payload[10..10 + RECIPIENT_HASH_LEN]
        .try_into()
        .expect("8 bytes");
    let message_len = payload[FIXED_LEN - 1] as usize;
    let rest = &payload[FIXED_LEN..];
    if rest.len() < message_len {
        return Err(TokenError::Malformed);
    }
    let (message, url) = rest.split_at(message_len);
    let message = std::str::from_utf8(message).map_err(|_| TokenError::Malformed)?;
    let url = std::str::from_utf8(url).map_err(|_| TokenError::Malformed)?;
    if url.len() > MAX_URL_LEN || !acceptable_url(url) {
        return Err(TokenError::Malformed);
    }
    Ok(LinkToken {
        url: url.to_string(),
        message: message.to_string(),
        recipient_hash,
        issued_at,
        key_id,
    })
}

/// The token in a rewritten link (`https://host/l/TOKEN`, with any query or
/// fragment after it ignored), or the text itself if it is not such a link.
pub fn token_in(link: &str) -> &str {
    let link = link.trim();
    let Some(at) = link.rfind("/l/") else {
        return link;
    };
    let tail = &link[at + 3..];
    let end = tail.find(['?', '#', '/']).unwrap_or(tail.len());
    &tail[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://example.test/path?q=1#frag";

    fn token(ring: &KeyRing, url: &str) -> LinkToken {
        LinkToken::new(
            ring,
            url,
            "D2107H64DXJG0000",
            "Alice@Example.test",
            1_795_000_000,
        )
        .unwrap()
    }

    #[test]
    fn a_signed_token_verifies_and_says_what_was_signed() {
        let ring = KeyRing::generate();
        let t = token(&ring, URL);
        let text = sign(&ring, &t).unwrap();
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let back = verify(&ring, &text).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.key_id, 1);
        assert!(back.is_for(&ring, "alice@example.test"));
        assert!(back.is_for(&ring, " ALICE@example.TEST"));
        assert!(!back.is_for(&ring, "bob@example.test"));
        // The address is not in the token.
        let raw = URL_SAFE_NO_PAD.decode(&text).unwrap();
        assert!(!raw.windows(5).any(|w| w.eq_ignore_ascii_case(b"alice")));
        // Another ring's hash of the same address differs.
        let other = KeyRing::generate();
        assert_ne!(
            recipient_hash(&other, 1, "alice@example.test"),
            Some(t.recipient_hash)
        );
    }

    #[test]
    fn every_altered_character_or_bit_is_refused() {
        let ring = KeyRing::from_keys([(1, [1u8; 32]), (2, [2u8; 32])]);
        let text = sign(&ring, &token(&ring, URL)).unwrap();
        for i in 0..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            let got = verify(&ring, &altered);
            assert!(got.is_err(), "character {i}: {got:?}");
        }
        let raw = URL_SAFE_NO_PAD.decode(&text).unwrap();
        for i in 0..raw.len() {
            for bit in 0..8 {
                let mut b = raw.clone();
                b[i] ^= 1 << bit;
                let got = verify(&ring, &URL_SAFE_NO_PAD.encode(&b));
                assert!(
                    matches!(
                        got,
                        Err(TokenError::Tampered
                            | TokenError::Malformed
                            | TokenError::UnknownKey(_))
                    ),
                    "byte {i} bit {bit}: {got:?}"
                );
            }
        }
        // Truncated or extended, it fails too.
        assert!(verify(&ring, &text[..text.len() - 1]).is_err());
        assert!(verify(&ring, &format!("{text}A")).is_err());
        let mut longer = raw.clone();
        longer.insert(FIXED_LEN, b'x');
        assert_eq!(
            verify(&ring, &URL_SAFE_NO_PAD.encode(&longer)),
            Err(TokenError::Tampered)
        );
    }

    #[test]
    fn a_url_cannot_be_swapped_under_a_valid_tag() {
        let ring = KeyRing::generate();
        let text = sign(&ring, &token(&ring, "https://good.test/")).unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&text).unwrap();
        let (payload, tag) = raw.split_at(raw.len() - TAG_LEN);
        let at = payload.len() - "https://good.test/".len();
        let mut forged = payload[..at].to_vec();
        forged.extend_from_slice(b"https://evil.test/");
        forged.extend_from_slice(tag);
        assert_eq!(
            verify(&ring, &URL_SAFE_NO_PAD.encode(forged)),
            Err(TokenError::Tampered)
        );
        // Nor signed by a key of another site.
        let other = KeyRing::generate();
        assert_eq!(verify(&other, &text), Err(TokenError::Tampered));
    }

    #[test]
    fn old_keys_verify_after_rotation_and_removed_keys_are_unknown() {
        let mut ring = KeyRing::generate();
        let old = sign(&ring, &token(&ring, URL)).unwrap();
        assert_eq!(ring.rotate().unwrap(), 2);
        let new = token(&ring, URL);
        assert_eq!(new.key_id, 2, "the newest key signs");
        let new = sign(&ring, &new).unwrap();
        assert_eq!(verify(&ring, &old).unwrap().key_id, 1);
        assert_eq!(verify(&ring, &new).unwrap().key_id, 2);
        assert!(ring.remove(1));
        assert_eq!(verify(&ring, &old), Err(TokenError::UnknownKey(1)));
        assert_eq!(verify(&ring, &new).unwrap().key_id, 2);
        // Signing with a key that is gone, or with an empty ring, fails.
        let mut t = token(&ring, URL);
        t.key_id = 1;
        assert_eq!(sign(&ring, &t), Err(TokenError::UnknownKey(1)));
        assert!(LinkToken::new(&KeyRing::from_keys([]), URL, "m", "r", 0).is_err());
    }

    #[test]
    fn unicode_urls_and_trace_ids_survive() {
        let ring = KeyRing::generate();
        let url = "https://bücher.example/straße?q=日本語&x=🦀#ç";
        let mut t = token(&ring, url);
        t.message = "trace-ü-🦀".into();
        t.issued_at = -1;
        assert_eq!(verify(&ring, &sign(&ring, &t).unwrap()).unwrap(), t);
    }

    #[test]
    fn the_longest_url_is_signed_and_longer_ones_are_not() {
        let ring = KeyRing::generate();
        let base = "https://example.test/";
        // Multi-byte characters count in bytes.
        let mut url = format!("{base}{}", "é".repeat((MAX_URL_LEN - base.len()) / 2));
        while url.len() < MAX_URL_LEN {
            url.push('a');
        }
        assert_eq!(url.len(), MAX_URL_LEN);
        let mut t = token(&ring, &url);
        t.message = "m".repeat(MAX_MESSAGE_LEN);
        let text = sign(&ring, &t).unwrap();
        assert!(text.len() <= MAX_TOKEN_LEN, "{}", text.len());
        assert_eq!(text.len(), 5870);
        assert_eq!(verify(&ring, &text).unwrap(), t);

        url.push('a');
        assert_eq!(sign(&ring, &token(&ring, &url)), Err(TokenError::TooLong));
        t.url = URL.into();
        t.message.push('m');
        assert_eq!(sign(&ring, &t), Err(TokenError::TooLong));
        let huge = "A".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(verify(&ring, &huge), Err(TokenError::TooLong));
    }

    #[test]
    fn only_absolute_web_urls_are_signed() {
        let ring = KeyRing::generate();
        for bad in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "ftp://example.test/",
            "//example.test/",
            "/relative",
            "https://",
            "https:///path",
            "https://exa mple.test/",
            "https://example.test/\r\nLocation: x",
            "https://example.test/\u{0}",
            "",
        ] {
            assert_eq!(
                sign(&ring, &token(&ring, bad)),
                Err(TokenError::UnsupportedUrl),
                "{bad:?}"
            );
        }
        for good in ["HTTP://Example.test", "https://example.test:8443/a?b"] {
            assert!(sign(&ring, &token(&ring, good)).is_ok(), "{good}");
        }
    }

    #[test]
    fn garbage_is_malformed() {
        let ring = KeyRing::generate();
        for bad in ["", "not*base64", "AAAA", "A", "====", "l/abc"] {
            assert_eq!(verify(&ring, bad), Err(TokenError::Malformed), "{bad:?}");
        }
        // Another version, well formed and long enough, is still refused.
        let mut raw = URL_SAFE_NO_PAD
            .decode(sign(&ring, &token(&ring, URL)).unwrap())
            .unwrap();
        raw[0] = 2;
        assert_eq!(
            verify(&ring, &URL_SAFE_NO_PAD.encode(raw)),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn the_token_is_found_in_a_rewritten_link() {
        assert_eq!(token_in("https://links.example.test/l/abc_-1"), "abc_-1");
        assert_eq!(token_in(" https://h/l/abc?utm=x#y \n"), "abc");
        assert_eq!(token_in("https://h/l/abc/"), "abc");
        assert_eq!(token_in("abc"), "abc");
    }
}
