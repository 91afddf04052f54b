//! True file types by content ("magic bytes"), whatever the name or Content-Type
//! claims. Signatures follow the formats' own specifications: PE/COFF (Microsoft),
//! ELF (System V ABI), Mach-O (Apple), MS-CFB (compound files), MS-SHLLINK (LNK),
//! APPNOTE.TXT (ZIP), RFC 1952 (gzip), POSIX ustar, ECMA-119 (ISO 9660), ECMA-167
//! (UDF), the VHD and VHDX specifications, MS-ONESTORE (OneNote), MS-OXTNEF
//! (winmail.dat), ISO 32000 (PDF),
//! and the HTML "sniffing" rules of the WHATWG MIME Sniffing standard, simplified.
//!
//! Hostile input: the bytes of an attachment or archive entry. Sniffing only
//! compares fixed offsets inside the slice (every offset bounds-checked with
//! `get`) and scans at most the first [`HTML_SNIFF_LEN`] bytes for markup, so its
//! cost does not grow with the file.

/// How far into a file text markup is looked for.
const HTML_SNIFF_LEN: usize = 1024;

/// What a file really is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Pe,
    Elf,
    MachO,
    JavaClass,
    Shebang,
    Lnk,
    Ole,
    Zip,
    Rar,
    SevenZip,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
    Tar,
    Cab,
    Arj,
    Szdd,
    Cpio,
    Tnef,
    Iso,
    Vhd,
    Vhdx,
    Chm,
    OneNote,
    Pdf,
    Rtf,
    Html,
    Svg,
    Jpeg,
    Png,
    Gif,
    Tiff,
    Webp,
    Unknown,
}

/// The broad families the checks reason about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Native programs the operating system runs directly.
    Executable,
    /// Not a native program, but opened by Windows in a way that runs or mounts
    /// something (shortcuts, disk images, help files).
    Dangerous,
    /// Containers the scanner opens itself.
    Archive,
    /// Containers the scanner cannot open (RAR, 7z, ...).
    OpaqueArchive,
    Document,
    Image,
    /// HTML and SVG: rendered by a browser, may carry forms and scripts.
    Markup,
    Other,
}

impl Kind {
    /// A name for people.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Pe => "Windows PE executable",
            Kind::Elf => "ELF executable",
            Kind::MachO => "Mach-O executable",
            Kind::JavaClass => "Java class file",
            Kind::Shebang => "script with an interpreter line",
            Kind::Lnk => "Windows shortcut (LNK)",
            Kind::Ole => "OLE compound file",
            Kind::Zip => "ZIP archive",
            Kind::Rar => "RAR archive",
            Kind::SevenZip => "7-Zip archive",
            Kind::Gzip => "gzip data",
            Kind::Bzip2 => "bzip2 data",
            Kind::Xz => "xz data",
            Kind::Zstd => "zstd data",
            Kind::Tar => "tar archive",
            Kind::Cab => "Microsoft cabinet",
            Kind::Arj => "ARJ archive",
            Kind::Szdd => "MS-DOS COMPRESS (SZDD) data",
            Kind::Cpio => "cpio archive",
            Kind::Tnef => "Outlook TNEF (winmail.dat)",
            Kind::Iso => "ISO/UDF disk image",
            Kind::Vhd => "VHD disk image",
            Kind::Vhdx => "VHDX disk image",
            Kind::Chm => "compiled HTML help (CHM)",
            Kind::OneNote => "OneNote section",
            Kind::Pdf => "PDF document",
            Kind::Rtf => "RTF document",
            Kind::Html => "HTML document",
            Kind::Svg => "SVG image",
            Kind::Jpeg => "JPEG image",
            Kind::Png => "PNG image",
            Kind::Gif => "GIF image",
            Kind::Tiff => "TIFF image",
            Kind::Webp => "WebP image",
            Kind::Unknown => "unrecognised data",
        }
    }

    pub fn class(self) -> Class {
        match self {
            Kind::Pe | Kind::Elf | Kind::MachO => Class::Executable,
            Kind::Lnk | Kind::Iso | Kind::Vhd | Kind::Vhdx | Kind::Chm => Class::Dangerous,
            Kind::Zip | Kind::Gzip | Kind::Tar | Kind::Ole | Kind::Tnef => Class::Archive,
            Kind::Rar
            | Kind::SevenZip
            | Kind::Bzip2
            | Kind::Xz
            | Kind::Zstd
            | Kind::Cab
            | Kind::Arj
            | Kind::Szdd
            | Kind::Cpio => Class::OpaqueArchive,
            Kind::Pdf | Kind::Rtf | Kind::OneNote => Class::Document,
            Kind::Jpeg | Kind::Png | Kind::Gif | Kind::Tiff | Kind::Webp => Class::Image,
            Kind::Html | Kind::Svg => Class::Markup,
            // A script runs only through an interpreter the user starts; Windows
            // opens a shebang file by its extension like any text.
            Kind::Shebang | Kind::JavaClass | Kind::Unknown => Class::Other,
        }
    }
}

fn at(data: &[u8], offset: usize, magic: &[u8]) -> bool {
    data.get(offset..offset.saturating_add(magic.len())) == Some(magic)
}

fn u32_le(data: &[u8], offset: usize) -> Option<u32> {
    let b = data.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u32_be(data: &[u8], offset: usize) -> Option<u32> {
    let b = data.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// LNK header: size 0x4C and the ShellLink CLSID {00021401-0000-0000-C000-000000000046}.
const LNK_MAGIC: [u8; 20] = [
    0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46,
];
/// OneNote revision store file header GUID {7B5C52E4-D88C-4DA7-AEB1-5378D02996D3}.
const ONENOTE_MAGIC: [u8; 16] = [
    0xe4, 0x52, 0x5c, 0x7b, 0x8c, 0xd8, 0xa7, 0x4d, 0xae, 0xb1, 0x53, 0x78, 0xd0, 0x29, 0x96, 0xd3,
];

/// Signatures at the very start of a file, each naming one kind. No two of
/// them share a prefix, so their order does not matter.
const PREFIXES: &[(&[u8], Kind)] = &[
    (&LNK_MAGIC, Kind::Lnk),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", Kind::Ole),
    (b"PK\x03\x04", Kind::Zip),
    (b"PK\x05\x06", Kind::Zip),
    (b"PK\x07\x08", Kind::Zip),
    (b"Rar!\x1a\x07", Kind::Rar),
    (b"7z\xbc\xaf\x27\x1c", Kind::SevenZip),
    (b"\x1f\x8b\x08", Kind::Gzip),
    (b"\xfd7zXZ\x00", Kind::Xz),
    (b"\x28\xb5\x2f\xfd", Kind::Zstd),
    (b"MSCF\0\0\0\0", Kind::Cab),
    (b"SZDD\x88\xf0\x27\x33", Kind::Szdd),
    (b"KWAJ\x88\xf0\x27\xd1", Kind::Szdd),
    (b"070701", Kind::Cpio),
    (b"070702", Kind::Cpio),
    (b"070707", Kind::Cpio),
    (b"\x78\x9f\x3e\x22", Kind::Tnef),
    (b"ITSF", Kind::Chm),
    (b"vhdxfile", Kind::Vhdx),
    (b"conectix", Kind::Vhd),
    (&ONENOTE_MAGIC, Kind::OneNote),
    (b"\xff\xd8\xff", Kind::Jpeg),
    (b"\x89PNG\r\n\x1a\n", Kind::Png),
    (b"GIF87a", Kind::Gif),
    (b"GIF89a", Kind::Gif),
    (b"II*\0", Kind::Tiff),
    (b"MM\0*", Kind::Tiff),
    (b"{\\rt", Kind::Rtf),
];

/// The true type of `data` (a prefix of the file is enough: at least 64 KiB for
/// disk images, whose signature sits at 32 KiB).
pub(crate) fn sniff(data: &[u8]) -> Kind {
    if at(data, 0, b"MZ") && is_pe(data) {
        return Kind::Pe;
    }
    if at(data, 0, b"\x7fELF") {
        return Kind::Elf;
    }
    match u32_be(data, 0) {
        Some(0xfeed_face | 0xfeed_facf | 0xcefa_edfe | 0xcffa_edfe) => return Kind::MachO,
        // Universal Mach-O binaries and Java classes share 0xCAFEBABE; a fat header
        // counts a handful of architectures where a class file has its version (>= 45).
        Some(0xcafe_babe) => {
            return match u32_be(data, 4) {
                Some(n) if n < 45 => Kind::MachO,
                _ => Kind::JavaClass,
            };
        }
        _ => {}
    }
    if at(data, 0, b"#!/") || at(data, 0, b"#! /") {
        return Kind::Shebang;
    }
    // A fixed VHD has its footer at the end, whatever its first sector holds (a
    // dynamic one also copies it first): checked before any leading signature.
    if data.len() >= 512 && at(data, data.len() - 512, b"conectix") {
        return Kind::Vhd;
    }
    if let Some((_, kind)) = PREFIXES.iter().find(|(magic, _)| at(data, 0, magic)) {
        return *kind;
    }
    if at(data, 0, b"BZh") && at(data, 4, b"1AY&SY") {
        return Kind::Bzip2;
    }
    if at(data, 0, b"\x60\xea") && data.get(10) == Some(&2) {
        return Kind::Arj;
    }
    if at(data, 0, b"RIFF") && at(data, 8, b"WEBP") {
        return Kind::Webp;
    }
    // Readers accept "%PDF-" anywhere in the first kilobyte.
    let head = &data[..data.len().min(HTML_SNIFF_LEN)];
    if memchr::memmem::find(head, b"%PDF-").is_some() {
        return Kind::Pdf;
    }
    if is_tar(data) {
        return Kind::Tar;
    }
    // ISO 9660 and UDF volume descriptors start at sector 16 (byte 32768).
    for offset in [0x8001, 0x8801, 0x9001] {
        for id in [&b"CD001"[..], b"BEA01", b"NSR02", b"NSR03"] {
            if at(data, offset, id) {
                return Kind::Iso;
            }
        }
    }
    markup(head)
}

/// "MZ" alone is two printable letters; a PE file also has "PE\0\0" where the
/// DOS header points, or at least the DOS stub's message when it is cut short.
fn is_pe(data: &[u8]) -> bool {
    if let Some(lfanew) = u32_le(data, 0x3c) {
        if at(data, lfanew as usize, b"PE\0\0") {
            return true;
        }
    }
    let head = &data[..data.len().min(512)];
    memchr::memmem::find(head, b"This program cannot be run in DOS mode").is_some()
        || memchr::memmem::find(head, b"This program must be run under Win32").is_some()
}

/// A ustar header, or an old-style one whose checksum is right.
fn is_tar(data: &[u8]) -> bool {
    let Some(header) = data.get(..512) else {
        return false;
    };
    if at(header, 257, b"ustar") {
        return true;
    }
    header[0] != 0 && tar_checksum_ok(header)
}

/// The tar header checksum: the sum of all header bytes with the checksum field
/// read as spaces, stored as octal.
pub(crate) fn tar_checksum_ok(header: &[u8]) -> bool {
    let Some(field) = header.get(148..156) else {
        return false;
    };
    let Some(stored) = parse_octal(field) else {
        return false;
    };
    let sum: u64 = header
        .iter()
        .take(512)
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    stored == sum
}

/// An octal number field of a tar header (NUL- or space-terminated).
pub(crate) fn parse_octal(field: &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    let mut digits = 0;
    for &b in field {
        match b {
            b'0'..=b'7' => {
                value = value.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
                digits += 1;
            }
            b' ' if digits == 0 => {}
            b' ' | 0 => break,
            _ => return None,
        }
    }
    (digits > 0).then_some(value)
}

/// HTML or SVG text near the start (after a byte-order mark and white space).
fn markup(head: &[u8]) -> Kind {
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = text.iter().position(|b| !b.is_ascii_whitespace());
    let Some(text) = start.and_then(|s| text.get(s..)) else {
        return Kind::Unknown;
    };
    if text.first() != Some(&b'<') {
        return Kind::Unknown;
    }
    let lower = text.to_ascii_lowercase();
    if memchr::memmem::find(&lower, b"<svg").is_some() {
        return Kind::Svg;
    }
    const TAGS: [&[u8]; 10] = [
        b"<!doctype html",
        b"<html",
        b"<head",
        b"<body",
        b"<script",
        b"<meta",
        b"<form",
        b"<iframe",
        b"<title",
        b"<!--",
    ];
    if TAGS.iter().any(|t| lower.starts_with(t)) {
        return Kind::Html;
    }
    // An XML prolog or comment first: HTML if an html tag follows soon.
    if memchr::memmem::find(&lower, b"<html").is_some() {
        return Kind::Html;
    }
    Kind::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal PE: DOS header pointing at a PE signature.
    fn pe() -> Vec<u8> {
        let mut v = vec![0u8; 0x100];
        v[..2].copy_from_slice(b"MZ");
        v[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        v[0x80..0x84].copy_from_slice(b"PE\0\0");
        v[0x84..0x86].copy_from_slice(&0x14cu16.to_le_bytes());
        v
    }

    #[test]
    fn executables_are_recognised_by_their_headers() {
        assert_eq!(sniff(&pe()), Kind::Pe);
        assert_eq!(sniff(b"\x7fELF\x02\x01\x01\0"), Kind::Elf);
        assert_eq!(sniff(b"\xcf\xfa\xed\xfe\x07\0\0\x01"), Kind::MachO);
        assert_eq!(sniff(b"\xca\xfe\xba\xbe\0\0\0\x02"), Kind::MachO);
        assert_eq!(sniff(b"\xca\xfe\xba\xbe\0\0\0\x34"), Kind::JavaClass);
        assert_eq!(sniff(b"#!/bin/sh\necho hi\n"), Kind::Shebang);
    }

    #[test]
    fn mz_without_a_pe_header_is_not_an_executable() {
        assert_eq!(
            sniff(b"MZ is a postcode prefix, nothing more"),
            Kind::Unknown
        );
        let mut stub = b"MZ".to_vec();
        stub.extend_from_slice(&[0u8; 0x40]);
        stub.extend_from_slice(b"This program cannot be run in DOS mode.");
        assert_eq!(sniff(&stub), Kind::Pe);
    }

    #[test]
    fn containers_documents_and_images() {
        assert_eq!(sniff(b"PK\x03\x04\x14\0\0\0"), Kind::Zip);
        assert_eq!(sniff(b"Rar!\x1a\x07\x01\0"), Kind::Rar);
        assert_eq!(sniff(b"7z\xbc\xaf\x27\x1c\0\x04"), Kind::SevenZip);
        assert_eq!(sniff(b"\x1f\x8b\x08\0\0\0\0\0"), Kind::Gzip);
        assert_eq!(sniff(b"BZh91AY&SY"), Kind::Bzip2);
        assert_eq!(sniff(b"\xfd7zXZ\0\0"), Kind::Xz);
        assert_eq!(sniff(b"MSCF\0\0\0\0\x10"), Kind::Cab);
        assert_eq!(sniff(b"SZDD\x88\xf0\x27\x33A"), Kind::Szdd);
        assert_eq!(sniff(b"070701000000"), Kind::Cpio);
        assert_eq!(sniff(b"\x78\x9f\x3e\x22\x01\x00"), Kind::Tnef);
        assert_eq!(sniff(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\0"), Kind::Ole);
        assert_eq!(sniff(&LNK_MAGIC), Kind::Lnk);
        assert_eq!(sniff(b"%PDF-1.7\n%\xe2\xe3"), Kind::Pdf);
        assert_eq!(sniff(b"{\\rtf1\\ansi"), Kind::Rtf);
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"), Kind::Jpeg);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), Kind::Png);
        assert_eq!(sniff(b"GIF89a"), Kind::Gif);
        assert_eq!(sniff(b"vhdxfile"), Kind::Vhdx);
        let mut iso = vec![0u8; 0x8800];
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        assert_eq!(sniff(&iso), Kind::Iso);
    }

    #[test]
    fn tar_headers_are_checked() {
        let mut h = vec![0u8; 1024];
        h[..9].copy_from_slice(b"hello.txt");
        h[124..135].copy_from_slice(b"00000000005");
        h[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&h), Kind::Tar);
        // Without the ustar magic only a correct checksum makes it tar.
        h[257..262].copy_from_slice(&[0; 5]);
        assert_eq!(sniff(&h), Kind::Unknown);
        let sum: u64 = h[..512]
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert_eq!(sniff(&h), Kind::Tar);
    }

    #[test]
    fn markup_is_found_after_bom_and_space() {
        assert_eq!(sniff(b"\xef\xbb\xbf\n  <!DOCTYPE html><html>"), Kind::Html);
        assert_eq!(sniff(b"<?xml version=\"1.0\"?>\n<svg xmlns="), Kind::Svg);
        assert_eq!(sniff(b"<html><body>hi"), Kind::Html);
        assert_eq!(sniff(b"Dear customer, <html> is a tag"), Kind::Unknown);
        assert_eq!(sniff(b""), Kind::Unknown);
    }
}
