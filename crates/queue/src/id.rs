//! Queue ids: 16 characters of Crockford base32 over (milliseconds, process salt,
//! counter). They sort by arrival time and stay unique across restarts and nodes.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A fresh queue id.
pub fn new_id() -> String {
    static SALT: OnceLock<u16> = OnceLock::new();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let salt = *SALT.get_or_init(rand::random::<u16>) as u128;
    let ms = portcullis_store::now_ms() as u128 & ((1 << 42) - 1);
    let count = (COUNTER.fetch_add(1, Ordering::Relaxed) & ((1 << 22) - 1)) as u128;
    let mut v = (ms << 38) | (salt << 22) | count;
    let mut out = [0u8; 16];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(v & 31) as usize];
        v >>= 5;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// True for strings that could be a queue id: safe to use in a file name.
pub fn is_valid(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_valid_and_ordered() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert!(is_valid(&a) && is_valid(&b));
        assert!(!is_valid("../../etc/passwd"));
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(new_id() > a);
    }
}
