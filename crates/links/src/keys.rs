//! The key ring that signs and verifies link tokens.
//!
//! Keys live in `<data_dir>/links/keys` (mode 0700), one file per key, named by
//! its id (`1.key` … `255.key`) and holding its 32 random bytes (mode 0600). The
//! newest key (the highest id) signs; every key in the folder verifies, so
//! after a rotation the links already sent keep working. Removing a key's file
//! retires it: its links are then refused as signed by an unknown key. Files
//! with other names are ignored.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Bytes in a link key.
pub const KEY_LEN: usize = 32;

/// A key folder or file that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("link key {0}: {1}")]
    Io(String, std::io::Error),
    #[error("link key {0} is not {KEY_LEN} bytes; remove it (links it signed stop working) or restore it from a backup")]
    Damaged(String),
    #[error("link key ids run out at 255; remove retired keys from {0} first")]
    Exhausted(String),
    #[error("no link key in {0}: the key ring has not been made yet")]
    Empty(String),
}

/// Signing and verifying keys by id. Its `Debug` shows the ids only.
#[derive(Clone, Default)]
pub struct KeyRing {
    keys: BTreeMap<u8, [u8; KEY_LEN]>,
    /// Where the keys are kept; `None` for a ring held only in memory.
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("ids", &self.ids())
            .field("dir", &self.dir)
            .finish()
    }
}

fn random_key() -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    rand::rngs::OsRng.fill_bytes(&mut k);
    k
}

impl KeyRing {
    /// The key folder under a data folder.
    pub fn dir_in(data_dir: &Path) -> PathBuf {
        data_dir.join("links").join("keys")
    }

    /// A ring held only in memory (for tests), from ids and key bytes.
    pub fn from_keys(keys: impl IntoIterator<Item = (u8, [u8; KEY_LEN])>) -> KeyRing {
        KeyRing {
            keys: keys.into_iter().collect(),
            dir: None,
        }
    }

    /// An in-memory ring of one fresh random key, id 1.
    pub fn generate() -> KeyRing {
        KeyRing::from_keys([(1, random_key())])
    }

    /// The key ids, oldest first.
    pub fn ids(&self) -> Vec<u8> {
        self.keys.keys().copied().collect()
    }

    /// The id of the key that signs: the newest.
    pub fn newest(&self) -> Option<u8> {
        self.keys.keys().next_back().copied()
    }

    pub fn contains(&self, id: u8) -> bool {
        self.keys.contains_key(&id)
    }

    /// Forgets a key in memory (its file, if any, stays).
    pub fn remove(&mut self, id: u8) -> bool {
        self.keys.remove(&id).is_some()
    }

    pub(crate) fn mac(&self, id: u8) -> Option<HmacSha256> {
        self.keys
            .get(&id)
            .map(|k| <HmacSha256 as Mac>::new_from_slice(k).expect("HMAC accepts any key length"))
    }

    /// Reads the keys in `dir`; a missing folder is an empty ring.
    pub fn load(dir: &Path) -> Result<KeyRing, KeyError> {
        let shown = |p: &Path| p.display().to_string();
        let mut keys = BTreeMap::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(KeyRing {
                    keys,
                    dir: Some(dir.to_path_buf()),
                })
            }
            Err(e) => return Err(KeyError::Io(shown(dir), e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| KeyError::Io(shown(dir), e))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(parse_key_name) else {
                continue;
            };
            let path = entry.path();
            let bytes = std::fs::read(&path).map_err(|e| KeyError::Io(shown(&path), e))?;
            let key: [u8; KEY_LEN] = bytes
                .try_into()
                .map_err(|_| KeyError::Damaged(shown(&path)))?;
            keys.insert(id, key);
        }
        Ok(KeyRing {
            keys,
            dir: Some(dir.to_path_buf()),
        })
    }

    /// Reads the keys in `dir`, making the folder and the first key if there
    /// are none yet.
    pub fn load_or_create(dir: &Path) -> Result<KeyRing, KeyError> {
        let mut ring = KeyRing::load(dir)?;
        if ring.keys.is_empty() {
            ring.rotate()?;
        }
        Ok(ring)
    }

    /// Reads the keys in `dir` and refuses an empty ring (for verifying,
    /// which must not make keys).
    pub fn load_existing(dir: &Path) -> Result<KeyRing, KeyError> {
        let ring = KeyRing::load(dir)?;
        if ring.keys.is_empty() {
            return Err(KeyError::Empty(dir.display().to_string()));
        }
        Ok(ring)
    }

    /// Adds a new newest key and returns its id. A ring with a folder writes
    /// the key there first (mode 0600, fsynced, created exclusively, so two
    /// processes rotating at once make two keys rather than one overwriting
    /// the other).
    pub fn rotate(&mut self) -> Result<u8, KeyError> {
        loop {
            let id = match self.newest() {
                None => 1,
                Some(255) => {
                    let shown = self
                        .dir
                        .as_deref()
                        .map(|d| d.display().to_string())
                        .unwrap_or_else(|| "the key ring".into());
                    return Err(KeyError::Exhausted(shown));
                }
                Some(n) => n + 1,
            };
            let key = random_key();
            let Some(dir) = self.dir.clone() else {
                self.keys.insert(id, key);
                return Ok(id);
            };
            make_private_dir(&dir)?;
            let path = dir.join(format!("{id}.key"));
            let shown = path.display().to_string();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(&path) {
                Ok(mut f) => {
                    f.write_all(&key)
                        .and_then(|_| f.sync_all())
                        .map_err(|e| KeyError::Io(shown.clone(), e))?;
                    // The new name must survive a crash too.
                    if let Ok(d) = std::fs::File::open(&dir) {
                        let _ = d.sync_all();
                    }
                    self.keys.insert(id, key);
                    return Ok(id);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // Another process made this id meanwhile: take its keys
                    // and try the next id.
                    let again = KeyRing::load(&dir)?;
                    self.keys.extend(again.keys);
                    if !self.keys.contains_key(&id) {
                        return Err(KeyError::Damaged(shown));
                    }
                }
                Err(e) => return Err(KeyError::Io(shown, e)),
            }
        }
    }
}

/// `17.key` is key 17; ids are 1 to 255, written without leading zeros.
fn parse_key_name(name: &str) -> Option<u8> {
    let digits = name.strip_suffix(".key")?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn make_private_dir(dir: &Path) -> Result<(), KeyError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| KeyError::Io(dir.display().to_string(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_first_key_is_made_once_and_kept_private() {
        let data = tempfile::tempdir().unwrap();
        let dir = KeyRing::dir_in(data.path());
        assert!(KeyRing::load(&dir).unwrap().ids().is_empty());
        assert!(matches!(
            KeyRing::load_existing(&dir),
            Err(KeyError::Empty(_))
        ));
        let a = KeyRing::load_or_create(&dir).unwrap();
        let b = KeyRing::load_or_create(&dir).unwrap();
        assert_eq!(a.ids(), vec![1]);
        assert_eq!(a.keys, b.keys);
        #[cfg(unix)]
        {
            assert_eq!(mode(&dir.join("1.key")), 0o600);
            assert_eq!(mode(&dir), 0o700);
        }
        let shown = format!("{a:?}");
        assert!(shown.contains("ids: [1]"), "{shown}");
        let key_hex: String = a.keys[&1].iter().map(|b| format!("{b:02x}")).collect();
        assert!(!shown.contains(&key_hex));
        assert!(!shown.contains(&format!("{:?}", a.keys[&1])));
    }

    #[test]
    fn rotation_adds_a_newest_key_and_keeps_the_old_ones() {
        let data = tempfile::tempdir().unwrap();
        let dir = KeyRing::dir_in(data.path());
        let mut ring = KeyRing::load_or_create(&dir).unwrap();
        assert_eq!(ring.rotate().unwrap(), 2);
        assert_eq!(ring.newest(), Some(2));
        #[cfg(unix)]
        assert_eq!(mode(&dir.join("2.key")), 0o600);
        let reread = KeyRing::load_existing(&dir).unwrap();
        assert_eq!(reread.keys, ring.keys);
        // A stale ring rotating after another process did takes the next id.
        let mut stale = KeyRing::load(&dir).unwrap();
        ring.rotate().unwrap();
        assert_eq!(stale.rotate().unwrap(), 4);
        assert_eq!(KeyRing::load(&dir).unwrap().ids(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn other_files_are_ignored_and_damaged_keys_refused() {
        let data = tempfile::tempdir().unwrap();
        let dir = KeyRing::dir_in(data.path());
        KeyRing::load_or_create(&dir).unwrap();
        for name in ["README", "01.key", "0.key", "256.key", "1.key~", ".key"] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        assert_eq!(KeyRing::load(&dir).unwrap().ids(), vec![1]);
        std::fs::write(dir.join("7.key"), b"short").unwrap();
        assert!(matches!(KeyRing::load(&dir), Err(KeyError::Damaged(_))));
    }

    #[test]
    fn ids_run_out_at_255() {
        let mut ring = KeyRing::from_keys([(255, [7u8; KEY_LEN])]);
        assert!(matches!(ring.rotate(), Err(KeyError::Exhausted(_))));
        let mut ring = KeyRing::from_keys([(254, [7u8; KEY_LEN])]);
        assert_eq!(ring.rotate().unwrap(), 255);
    }
}
