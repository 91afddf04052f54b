//! Signed tokens from the web: a secure link's token (the click path) and a
//! quarantine digest's action token. Anything a browser sends must be refused
//! cleanly unless the key signed it.
#![no_main]
use portcullis_digest::token::LinkKey;
use portcullis_links::token::token_in;
use portcullis_links::KeyRing;
use std::sync::OnceLock;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    let ring =
        RING.get_or_init(|| KeyRing::from_keys([(1, [7u8; portcullis_links::keys::KEY_LEN])]));
    let digest_key = LinkKey::from_bytes([9u8; portcullis_digest::token::KEY_LEN]);
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = portcullis_links::verify(ring, token_in(s));
    let _ = portcullis_links::verify(ring, s);
    let _ = portcullis_digest::token::verify(&digest_key, s, 1_700_000_000);
});
