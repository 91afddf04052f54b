//! The catalogue a site uses: the built-in one, extended by the entries an
//! administrator imported (`portcullis senders catalog import FILE`), or
//! replaced by an imported file (`--replace`). Imports are kept in the data
//! folder, `<data_dir>/senders/catalog.toml`, checked before they are written
//! (atomically: a temporary file, fsync, rename), so the file there always
//! parses; `catalog.replaces-builtin` next to it marks a replacement.

use crate::catalog::{Catalog, CatalogError, MAX_CATALOG_BYTES};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the site's catalogue cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SiteCatalogError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Invalid { path: PathBuf, source: CatalogError },
    #[error("{path}: over {MAX_CATALOG_BYTES} bytes")]
    TooLarge { path: PathBuf },
}

fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("senders")
}

/// Where imported entries are kept.
pub fn path(data_dir: &Path) -> PathBuf {
    dir(data_dir).join("catalog.toml")
}

fn marker(data_dir: &Path) -> PathBuf {
    dir(data_dir).join("catalog.replaces-builtin")
}

fn read(path: &Path) -> Result<Option<String>, SiteCatalogError> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_CATALOG_BYTES as u64 => {
            return Err(SiteCatalogError::TooLarge {
                path: path.to_path_buf(),
            })
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SiteCatalogError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    }
    std::fs::read_to_string(path)
        .map(Some)
        .map_err(|source| SiteCatalogError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// The catalogue in force for the data folder.
pub fn load(data_dir: &Path) -> Result<Catalog, SiteCatalogError> {
    let file = path(data_dir);
    let Some(text) = read(&file)? else {
        return Ok(Catalog::builtin().clone());
    };
    let invalid = |source| SiteCatalogError::Invalid {
        path: file.clone(),
        source,
    };
    if marker(data_dir).exists() {
        Catalog::parse(&text).map_err(invalid)
    } else {
        let mut c = Catalog::builtin().clone();
        c.import(&text).map_err(invalid)?;
        Ok(c)
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub lines: usize,
    pub releases: usize,
}

/// Checks `text` (read from `from`, which errors name) and keeps it: merged
/// into the entries imported before, or, with `replace`, as the whole
/// catalogue instead of the built-in one.
pub fn import(
    data_dir: &Path,
    from: &Path,
    text: &str,
    replace: bool,
) -> Result<Imported, SiteCatalogError> {
    let file = path(data_dir);
    let invalid = |source| SiteCatalogError::Invalid {
        path: from.to_path_buf(),
        source,
    };
    if text.len() > MAX_CATALOG_BYTES {
        return Err(SiteCatalogError::TooLarge {
            path: from.to_path_buf(),
        });
    }
    let kept = if replace {
        Catalog::parse(text).map_err(invalid)?
    } else {
        // The file keeps only the site's own entries; check them against the
        // built-in catalogue they extend.
        let mut own = match (read(&file)?, marker(data_dir).exists()) {
            (Some(before), false) => {
                Catalog::parse_unchecked(&before).map_err(|source| SiteCatalogError::Invalid {
                    path: file.clone(),
                    source,
                })?
            }
            _ => Catalog::default(),
        };
        own.merge(Catalog::parse_unchecked(text).map_err(invalid)?);
        let mut whole = Catalog::builtin().clone();
        whole.merge(own.clone());
        whole.validate().map_err(invalid)?;
        own
    };
    let counts = Imported {
        lines: kept.lines().len(),
        releases: kept.releases().len(),
    };
    let body = kept.to_toml().map_err(invalid)?;
    write_atomically(&dir(data_dir), &file, body.as_bytes())?;
    let mark = marker(data_dir);
    if replace {
        write_atomically(
            &dir(data_dir),
            &mark,
            b"the imported catalog.toml replaces the built-in catalogue\n",
        )?;
    } else if mark.exists() {
        std::fs::remove_file(&mark).map_err(|source| SiteCatalogError::Io {
            path: mark.clone(),
            source,
        })?;
    }
    Ok(counts)
}

fn write_atomically(dir: &Path, file: &Path, body: &[u8]) -> Result<(), SiteCatalogError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SiteCatalogError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = file.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(body).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, file).map_err(io(file))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}
