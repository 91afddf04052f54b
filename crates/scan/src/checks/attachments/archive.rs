//! Archives opened in memory: ZIP (APPNOTE.TXT, read with the `zip` crate; stored
//! and deflated entries), gzip (RFC 1952, `flate2`), tar (POSIX ustar with the
//! GNU long-name and pax `path` extensions) and Outlook's TNEF (MS-OXTNEF,
//! `winmail.dat`, whose attachments are files like any other). Each entry becomes a file for the
//! inspector, which may open it in turn while the nesting allows.
//!
//! Hostile input: the archive. Nothing it declares is trusted: the number of ZIP
//! central-directory records is counted in the bytes before the `zip` crate parses
//! them (so `max_entries` bounds its work); declared sizes only serve to refuse an
//! archive early; every entry is decompressed through `take()` with the bytes still
//! allowed (`max_expanded_bytes` for the whole message, and `max_ratio` times the
//! archive's own size, never less than [`RATIO_FLOOR`]), and reading one byte more
//! than allowed marks an archive bomb. TNEF and tar lengths are believed only as
//! far as the data goes. An entry is kept in memory only when it is
//! itself to be opened or read (at most [`MAX_KEEP`] bytes); other entries are only
//! sniffed ([`SNIFF_LEN`] bytes) and counted. Nothing is written to disk.

use super::inspect::{keep_by_kind, keep_by_name, FileRef, Inspector};
use super::magic::{parse_octal, tar_checksum_ok, Kind};
use super::{names, Sym};
use std::io::{Cursor, Read};

/// Bytes read from each entry to find its type (disk images sign at 32 KiB).
const SNIFF_LEN: u64 = 64 * 1024;
/// Largest entry kept whole to be opened or read.
const MAX_KEEP: u64 = 32 * 1024 * 1024;
/// Archives may always expand to this much, whatever their ratio: small archives
/// of repetitive text legitimately compress far beyond `max_ratio`.
pub(super) const RATIO_FLOOR: u64 = 4 * 1024 * 1024;
/// Longest GNU long name or pax path read from a tar archive.
const MAX_TAR_NAME: usize = 4096;

/// How much one archive has expanded and may still expand.
struct Expansion {
    expanded: u64,
    cap: u64,
}

/// One entry, decompressed as far as it was needed.
struct Entry {
    data: Vec<u8>,
    complete: bool,
}

/// What went wrong reading an entry: only a limit matters to the caller.
enum ReadStop {
    Limit,
}

impl Expansion {
    fn new(archive_len: usize, max_ratio: u64) -> Expansion {
        Expansion {
            expanded: 0,
            cap: (archive_len as u64)
                .saturating_mul(max_ratio)
                .max(RATIO_FLOOR),
        }
    }
}

/// Reads and discards the rest of `r`, counting bytes; a read error ends it.
fn drain(r: &mut impl Read) -> u64 {
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => return total,
            Ok(n) => total += n as u64,
        }
    }
}

impl Inspector<'_> {
    /// Bytes the next entry of `arch` may expand to, and why it stops there.
    fn allowance(&self, arch: &Expansion) -> (u64, String) {
        let total_left = self.cfg.max_expanded_bytes.saturating_sub(self.expanded);
        let ratio_left = arch.cap.saturating_sub(arch.expanded);
        if total_left <= ratio_left {
            let why = format!(
                "expands past max_expanded_bytes ({} bytes)",
                self.cfg.max_expanded_bytes
            );
            (total_left, why)
        } else {
            let why = format!(
                "expands more than max_ratio ({}) times its size",
                self.cfg.max_ratio
            );
            (ratio_left, why)
        }
    }

    /// Decompresses one entry within the limits: sniffs its start, keeps it
    /// whole when it must be examined, counts the rest.
    fn read_entry(
        &mut self,
        r: impl Read,
        arch: &mut Expansion,
        container: &str,
        keep_hint: bool,
    ) -> Result<Entry, ReadStop> {
        let (allow, why) = self.allowance(arch);
        let mut limited = r.take(allow.saturating_add(1));
        let mut data = Vec::new();
        let mut failed = (&mut limited)
            .take(SNIFF_LEN)
            .read_to_end(&mut data)
            .is_err();
        let keep = !failed && (keep_hint || keep_by_kind(&data));
        if keep {
            let room = MAX_KEEP.saturating_sub(data.len() as u64);
            failed = (&mut limited).take(room).read_to_end(&mut data).is_err();
        }
        let rest = if failed { 0 } else { drain(&mut limited) };
        let total = data.len() as u64 + rest;
        self.expanded = self.expanded.saturating_add(total);
        arch.expanded = arch.expanded.saturating_add(total);
        if total > allow {
            self.bomb(container, why);
            return Err(ReadStop::Limit);
        }
        Ok(Entry {
            complete: keep && !failed && rest == 0,
            data,
        })
    }

    pub(super) fn open_zip(&mut self, f: &FileRef<'_>) {
        if !f.complete || !self.enter(f, Kind::Zip) {
            return;
        }
        // Each central-directory record carries this signature; the zip crate
        // parses no more records than there are.
        let records = memchr::memmem::find_iter(f.data, b"PK\x01\x02").count() as u64;
        let left = self.cfg.max_entries.saturating_sub(self.entries);
        if records > left {
            self.bomb(
                &f.path,
                format!("{records} entries (max_entries {})", self.cfg.max_entries),
            );
            return;
        }
        let mut zip = match zip::ZipArchive::new(Cursor::new(f.data)) {
            Ok(z) => z,
            Err(e) => {
                self.hit(Sym::Uninspectable, &f.path, format!("damaged ZIP: {e}"));
                return;
            }
        };
        struct Meta {
            name: String,
            encrypted: bool,
            dir: bool,
            method: zip::CompressionMethod,
        }
        let mut metas = Vec::with_capacity(zip.len());
        let mut declared: u64 = 0;
        for i in 0..zip.len() {
            let Ok(e) = zip.by_index_data(i) else {
                continue;
            };
            declared = declared.saturating_add(e.size());
            metas.push(Meta {
                name: String::from_utf8_lossy(e.name_raw()).into_owned(),
                encrypted: e.encrypted(),
                dir: e.is_dir(),
                method: e.compression(),
            });
        }
        let mut arch = Expansion::new(f.data.len(), self.cfg.max_ratio);
        let (allow, why) = self.allowance(&arch);
        if declared > allow {
            self.bomb(&f.path, format!("declares {declared} bytes: {why}"));
            return;
        }
        let ooxml = metas.iter().any(|m| m.name == "[Content_Types].xml");
        let manifest = metas.iter().any(|m| m.name == "META-INF/MANIFEST.MF");
        if manifest && metas.iter().any(|m| m.name.ends_with(".class")) {
            self.hit(Sym::DangerousType, &f.path, "Java archive (JAR)");
        }
        if zip.has_duplicate_names() {
            self.hit(
                Sym::Uninspectable,
                &f.path,
                "several entries share a name, hiding all but one",
            );
        }
        for (i, m) in metas.iter().enumerate() {
            if self.stopped {
                return;
            }
            if m.dir {
                continue;
            }
            if !self.count_entry(&f.path) {
                return;
            }
            let lower = m.name.to_ascii_lowercase();
            let vba_project = ooxml && lower.ends_with("vbaproject.bin");
            if vba_project {
                self.hit(Sym::OfficeMacro, &f.path, format!("contains {}", m.name));
            }
            if ooxml && lower.starts_with("xl/macrosheets/") {
                self.hit(Sym::XlmMacro, &f.path, format!("contains {}", m.name));
            }
            if m.encrypted {
                self.hit(Sym::Encrypted, &f.path, "encrypted ZIP entries");
                self.inspect(&f.child(Some(&m.name), &[], false));
                continue;
            }
            // The raw data is decompressed here rather than by the zip crate, which
            // stops at the declared size: what other unzip tools would really
            // produce is what counts against the limits.
            let raw = match zip.by_index_raw(i) {
                Ok(r) => r,
                Err(e) => {
                    let shown = names::shown(&m.name);
                    self.hit(Sym::Uninspectable, &f.path, format!("{shown}: {e}"));
                    self.inspect(&f.child(Some(&m.name), &[], false));
                    continue;
                }
            };
            let keep = keep_by_name(&m.name);
            let read = match m.method {
                zip::CompressionMethod::Stored => self.read_entry(raw, &mut arch, &f.path, keep),
                zip::CompressionMethod::Deflated => {
                    let inflate = flate2::read::DeflateDecoder::new(raw);
                    self.read_entry(inflate, &mut arch, &f.path, keep)
                }
                other => {
                    let shown = names::shown(&m.name);
                    self.hit(
                        Sym::Uninspectable,
                        &f.path,
                        format!("{shown}: compression method {other:?}"),
                    );
                    drop(raw);
                    self.inspect(&f.child(Some(&m.name), &[], false));
                    continue;
                }
            };
            let Ok(entry) = read else {
                return;
            };
            if ooxml && lower.ends_with(".rels") {
                if let Some(what) = super::office::external_relationship(&entry.data) {
                    self.hit(Sym::OfficeExternal, &f.path, what);
                }
            }
            let mut child = f.child(Some(&m.name), &entry.data, entry.complete);
            child.vba_known = vba_project;
            self.inspect(&child);
        }
    }

    pub(super) fn open_gzip(&mut self, f: &FileRef<'_>) {
        if !self.enter(f, Kind::Gzip) || !self.count_entry(&f.path) {
            return;
        }
        let mut arch = Expansion::new(f.data.len(), self.cfg.max_ratio);
        let mut decoder = flate2::read::MultiGzDecoder::new(f.data);
        let Ok(entry) = self.read_entry(&mut decoder, &mut arch, &f.path, true) else {
            return;
        };
        // The name stored in the gzip header, else the outer name without ".gz".
        let stored = decoder
            .header()
            .and_then(|h| h.filename())
            .map(|n| String::from_utf8_lossy(&n[..n.len().min(MAX_TAR_NAME)]).into_owned());
        let derived = f.name.and_then(|n| {
            let lower = n.to_ascii_lowercase();
            if lower.ends_with(".tgz") {
                Some(format!("{}.tar", &n[..n.len() - 4]))
            } else if lower.ends_with(".gz") {
                Some(n[..n.len() - 3].to_string())
            } else {
                None
            }
        });
        let name = stored.or(derived);
        let mut child = f.child(name.as_deref(), &entry.data, entry.complete);
        // A .tar.gz is one archive to its user: the tar inside does not count as
        // a level of its own. Any other content does, so gzip in gzip stays bounded.
        if super::magic::sniff(&entry.data) == Kind::Tar {
            child.level = f.level;
        }
        self.inspect(&child);
    }

    pub(super) fn open_tar(&mut self, f: &FileRef<'_>) {
        if !self.enter(f, Kind::Tar) {
            return;
        }
        let data = f.data;
        let mut offset = 0usize;
        let mut long_name: Option<String> = None;
        while let Some(header) = data.get(offset..offset + 512) {
            if self.stopped || header.iter().all(|&b| b == 0) || !tar_checksum_ok(header) {
                return;
            }
            let size = tar_size(&header[124..136]).unwrap_or(0);
            let start = offset + 512;
            // The declared size is believed only as far as the data goes.
            let end = usize::try_from(size)
                .map_or(data.len(), |s| start.saturating_add(s))
                .min(data.len());
            let body = &data[start..end];
            match header[156] {
                b'L' => long_name = Some(cstring(body)),
                b'x' => long_name = pax_path(body).or(long_name),
                b'0' | 0 | b'7' => {
                    if !self.count_entry(&f.path) {
                        return;
                    }
                    let name = long_name.take().unwrap_or_else(|| ustar_name(header));
                    let child = f.child(Some(&name), body, (end - start) as u64 == size);
                    self.inspect(&child);
                }
                _ => long_name = None,
            }
            let padded = end.saturating_add(511) / 512 * 512;
            if padded <= offset {
                return;
            }
            offset = padded;
        }
    }
}

impl Inspector<'_> {
    /// Outlook's TNEF (MS-OXTNEF 2.1.3): a signature, a key, then attributes
    /// (level, id, length, data, checksum). An attachment starts with
    /// attAttachRendData; attAttachTitle names it and attAttachData holds it.
    pub(super) fn open_tnef(&mut self, f: &FileRef<'_>) {
        const REND_DATA: u32 = 0x0006_9002;
        const TITLE: u32 = 0x0001_8010;
        const DATA: u32 = 0x0006_800f;
        if !self.enter(f, Kind::Tnef) {
            return;
        }
        let data = f.data;
        let mut files: Vec<(Option<String>, &[u8])> = Vec::new();
        let mut name: Option<String> = None;
        let mut offset = 6usize;
        while let (Some(id), Some(len)) = (le32(data, offset + 1), le32(data, offset + 5)) {
            let start = offset + 9;
            let Some(end) = start.checked_add(len as usize).filter(|&e| e <= data.len()) else {
                break;
            };
            let body = &data[start..end];
            match id {
                REND_DATA => name = None,
                TITLE => name = Some(cstring(body)),
                DATA => files.push((name.take(), body)),
                _ => {}
            }
            offset = end + 2;
        }
        for (name, body) in files {
            if self.stopped || !self.count_entry(&f.path) {
                return;
            }
            let child = f.child(name.as_deref(), body, true);
            self.inspect(&child);
        }
    }
}

fn le32(data: &[u8], offset: usize) -> Option<u32> {
    let b = data.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A tar size field: octal, or GNU base-256 when the high bit is set.
fn tar_size(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    parse_octal(field)
}

fn cstring(bytes: &[u8]) -> String {
    let bytes = &bytes[..bytes.len().min(MAX_TAR_NAME)];
    let end = memchr::memchr(0, bytes).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The name of a ustar header: prefix (345..500) and name (0..100).
fn ustar_name(header: &[u8]) -> String {
    let name = cstring(&header[..100]);
    if &header[257..262] == b"ustar" && header[345] != 0 {
        format!("{}/{}", cstring(&header[345..500]), name)
    } else {
        name
    }
}

/// The `path` record of a pax extended header ("<len> path=<value>\n" records).
fn pax_path(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]);
    text.lines()
        .find_map(|l| l.split_once(" path=").map(|(_, v)| v))
        .map(|v| v.chars().take(MAX_TAR_NAME).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_sizes_in_octal_and_base_256() {
        assert_eq!(tar_size(b"00000001750\0"), Some(1000));
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[11] = 0x10;
        assert_eq!(tar_size(&big), Some(16));
        assert_eq!(tar_size(&[0xff; 12]), None, "overflow is refused");
        assert_eq!(
            pax_path(b"30 path=dir/long name.exe\n").as_deref(),
            Some("dir/long name.exe")
        );
    }

    #[test]
    fn the_ratio_cap_never_falls_below_the_floor() {
        assert_eq!(Expansion::new(10, 100).cap, RATIO_FLOOR);
        assert_eq!(Expansion::new(1 << 20, 100).cap, 100 << 20);
        assert_eq!(Expansion::new(usize::MAX, u64::MAX).cap, u64::MAX);
    }
}
