//! Local delivery into Maildir folders (one per recipient address), the embedded
//! default so a newcomer sees mail arrive without any mail server downstream.
//! Files are written to `tmp/`, fsynced, then renamed into `new/` as the Maildir
//! convention requires, so a reader never sees a partial message.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A folder name for an address that cannot escape the Maildir root.
pub fn folder_for(root: &Path, address: &str) -> PathBuf {
    let safe: String = address
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '-' | '_' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    let safe = if safe.is_empty() { "_" } else { safe };
    root.join(safe)
}

/// Delivers one copy for `address`; returns the file name.
pub fn deliver(
    root: &Path,
    address: &str,
    mail_from: &str,
    id: &str,
    hostname: &str,
    message: &[u8],
) -> std::io::Result<PathBuf> {
    let folder = folder_for(root, address);
    for sub in ["tmp", "new", "cur"] {
        fs::create_dir_all(folder.join(sub))?;
    }
    let unique = format!(
        "{}.{}_{}.{}",
        portcullis_store::now_ms() / 1000,
        id,
        rand::random::<u32>(),
        hostname.replace(['/', ':'], "_")
    );
    let tmp = folder.join("tmp").join(&unique);
    let new = folder.join("new").join(&unique);
    let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    let mut head =
        format!("Return-Path: <{mail_from}>\r\nDelivered-To: {address}\r\n").into_bytes();
    head.extend_from_slice(message);
    f.write_all(&head)?;
    f.sync_all()?;
    fs::rename(&tmp, &new)?;
    File::open(folder.join("new"))?.sync_all()?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_cannot_escape_the_root() {
        let root = Path::new("/m");
        assert_eq!(folder_for(root, "../../etc@x"), Path::new("/m/_.._etc@x"));
        assert!(folder_for(root, "a/../../b").starts_with("/m"));
        assert_eq!(
            folder_for(root, "User@Example.test"),
            Path::new("/m/user@example.test")
        );
    }
}
