//! The link rewriter on any bytes as a message: it must never fail on
//! malformed MIME, and what it writes must parse and keep the headers' end.
#![no_main]
use portcullis_links::{rewrite, KeyRing, Rewrite, VendorLinks};
use std::sync::OnceLock;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static KEYS: OnceLock<KeyRing> = OnceLock::new();
    let keys =
        KEYS.get_or_init(|| KeyRing::from_keys([(1, [7u8; portcullis_links::keys::KEY_LEN])]));
    let keep = vec!["example.org".to_string()];
    let ctx = Rewrite {
        keys,
        host: "links.example.org",
        message: "t-0001",
        recipient: "user@example.org",
        now: 1_700_000_000,
        do_not_rewrite: &keep,
        vendor_links: VendorLinks::Unwrap,
    };
    if let Ok(out) = rewrite(data, &ctx) {
        if out.rewritten == 0 && out.unwrapped == 0 {
            assert_eq!(
                out.message, data,
                "a message with nothing rewritten must be unchanged"
            );
        }
        // Mail may pass the gateway twice: its own output is input too.
        let _ = rewrite(&out.message, &ctx);
    }
});
