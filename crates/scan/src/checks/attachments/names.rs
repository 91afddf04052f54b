//! What an attachment's name claims: its extension as Windows would see it, the
//! extension the sender wants the reader to see (`invoice.pdf.exe`, a name padded
//! with spaces, a right-to-left override that reverses the tail), and whether the
//! declared Content-Type promises something harmless. Follows Windows file-name
//! rules (trailing dots and spaces are dropped, the last dot starts the extension)
//! and Unicode UAX #9 for the bidirectional controls.
//!
//! Hostile input: names from MIME headers (already decoded by `mail-parser`) and
//! from archive directories. Only the first [`MAX_NAME_CHARS`] characters are
//! looked at, each once; names are escaped before they reach a finding's detail.

/// Longer names are cut to this many characters before they are looked at.
const MAX_NAME_CHARS: usize = 512;
/// Characters of a name shown in a finding's detail.
const MAX_SHOWN_CHARS: usize = 120;
/// White space at the end of the stem that counts as padding to hide the real
/// extension off the edge of a file list.
const MIN_PADDING: usize = 3;

/// Extensions that Windows (or a common runtime on it) executes, installs, mounts
/// or treats as a shortcut when the user opens the file; with what each is.
const DANGEROUS: &[(&str, &str)] = &[
    ("exe", "Windows program"),
    ("scr", "screen saver program"),
    ("com", "DOS program"),
    ("pif", "program information file"),
    ("bat", "batch script"),
    ("cmd", "batch script"),
    ("js", "JScript"),
    ("jse", "encoded JScript"),
    ("vbs", "VBScript"),
    ("vbe", "encoded VBScript"),
    ("vb", "VBScript"),
    ("wsf", "Windows Script file"),
    ("wsh", "Windows Script Host settings"),
    ("wsc", "Windows Script component"),
    ("sct", "Windows Script component"),
    ("hta", "HTML application"),
    ("ps1", "PowerShell script"),
    ("psm1", "PowerShell module"),
    ("psc1", "PowerShell console file"),
    ("msh", "PowerShell script"),
    ("msi", "Windows installer"),
    ("msp", "Windows installer patch"),
    ("mst", "Windows installer transform"),
    ("msix", "app package"),
    ("msixbundle", "app package"),
    ("appx", "app package"),
    ("appxbundle", "app package"),
    ("application", "ClickOnce application"),
    ("appref-ms", "ClickOnce reference"),
    ("msc", "management console snap-in"),
    ("jar", "Java program"),
    ("jnlp", "Java Web Start file"),
    ("lnk", "Windows shortcut"),
    ("scf", "Explorer command file"),
    ("library-ms", "Windows library"),
    ("search-ms", "Windows saved search"),
    ("searchconnector-ms", "Windows search connector"),
    ("settingcontent-ms", "Windows settings shortcut"),
    ("iso", "disk image"),
    ("img", "disk image"),
    ("vhd", "virtual disk"),
    ("vhdx", "virtual disk"),
    ("reg", "registry file"),
    ("cpl", "control panel item"),
    ("chm", "compiled HTML help"),
    ("hlp", "Windows help"),
    ("inf", "setup information file"),
    ("ins", "Internet settings"),
    ("isp", "Internet settings"),
    ("dll", "program library"),
    ("ocx", "ActiveX control"),
    ("sys", "system driver"),
    ("drv", "device driver"),
    ("gadget", "desktop gadget"),
    ("diagcab", "troubleshooting pack"),
    ("xll", "Excel add-in program"),
    ("xbap", "browser application"),
    ("shb", "shell scrap object"),
    ("shs", "shell scrap object"),
    ("ws", "Windows script"),
    ("mde", "compiled Access database"),
    ("ade", "Access project"),
    ("adp", "Access project"),
    ("accde", "compiled Access database"),
    ("iqy", "Excel web query"),
    ("slk", "SYLK spreadsheet (runs Excel 4.0 macros)"),
    ("apk", "Android package"),
];

/// Extensions of documents, images and media a reader opens without fear: the
/// types an attacker pretends to send.
const HARMLESS: &[&str] = &[
    "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "rtf", "txt", "csv",
    "jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "webp", "heic", "svg", "mp3", "mp4", "wav",
    "avi", "mov", "wmv", "zip", "rar", "7z", "htm", "html", "eml", "msg", "xml", "ics",
];

/// Content-Types that promise a document, an image or media.
const HARMLESS_TYPES: &[&str] = &[
    "application/pdf",
    "application/msword",
    "application/rtf",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "text/plain",
    "text/csv",
    "text/rtf",
];
const HARMLESS_TYPE_PREFIXES: &[&str] = &[
    "image/",
    "audio/",
    "video/",
    "application/vnd.openxmlformats-officedocument.",
    "application/vnd.oasis.opendocument.",
];

/// What a name says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct NameInfo {
    /// The extension Windows acts on, lower case.
    pub ext: Option<String>,
    /// The extension before it (`pdf` in `invoice.pdf.exe`), lower case.
    pub inner_ext: Option<String>,
    /// White space hides the real extension (`invoice.pdf      .exe`).
    pub padded: bool,
    /// Bidirectional override or isolate controls reorder what is displayed.
    pub bidi: bool,
}

/// Controls that make displayed text run in another order (UAX #9 explicit
/// embeddings, overrides and isolates).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Characters that render as nothing: dropped before the name is read, as the
/// reader's eye drops them.
fn is_invisible(c: char) -> bool {
    is_bidi_control(c)
        || matches!(
            c,
            '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{00ad}'
        )
}

/// White space in the wide sense used for padding (includes fillers that render
/// blank in most fonts).
fn is_blank(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{2800}' | '\u{3164}' | '\u{115f}' | '\u{1160}')
}

fn extension(stem: &str) -> Option<(&str, &str)> {
    let (rest, ext) = stem.rsplit_once('.')?;
    let ok = !ext.is_empty()
        && ext.len() <= 20
        && ext
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    ok.then_some((rest, ext))
}

/// Reads a file name (a path is cut to its last component).
pub(crate) fn analyse(name: &str) -> NameInfo {
    let mut bidi = false;
    let mut clean = String::with_capacity(name.len().min(MAX_NAME_CHARS));
    for c in name.chars().take(MAX_NAME_CHARS) {
        if c == '\0' {
            // Some extractors stop at a NUL; the part before it is what they write.
            break;
        }
        if c == '/' || c == '\\' {
            clean.clear();
            continue;
        }
        if is_bidi_control(c) {
            bidi = true;
        }
        if !is_invisible(c) {
            clean.push(c);
        }
    }
    // Windows drops trailing dots and spaces when it saves a file.
    let trimmed = clean.trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    let Some((stem, ext)) = extension(trimmed) else {
        return NameInfo {
            bidi,
            ..NameInfo::default()
        };
    };
    let padding = stem.chars().rev().take_while(|&c| is_blank(c)).count();
    let stem = stem.trim_end_matches(|c: char| is_blank(c) || c == '.');
    NameInfo {
        ext: Some(ext.to_ascii_lowercase()),
        inner_ext: extension(stem).map(|(_, e)| e.to_ascii_lowercase()),
        padded: padding >= MIN_PADDING,
        bidi,
    }
}

/// What a dangerous extension is, if it is one.
pub(crate) fn dangerous(ext: &str) -> Option<&'static str> {
    DANGEROUS
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, what)| *what)
}

/// Whether an extension names a document, image or media type.
pub(crate) fn harmless_ext(ext: &str) -> bool {
    HARMLESS.contains(&ext)
}

/// Whether a Content-Type (`type/subtype`, lower case) promises a document,
/// image or media.
pub(crate) fn harmless_type(content_type: &str) -> bool {
    HARMLESS_TYPES.contains(&content_type)
        || HARMLESS_TYPE_PREFIXES
            .iter()
            .any(|p| content_type.starts_with(p))
}

/// A name made safe to show: controls and invisible characters are written as
/// `<U+XXXX>` so that a reversed name reads as it really is, and long names are cut.
pub(crate) fn shown(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if i >= MAX_SHOWN_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() || is_invisible(c) {
            out.push_str(&format!("<U+{:04X}>", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names() {
        let n = analyse("Report 2024.PDF");
        assert_eq!(n.ext.as_deref(), Some("pdf"));
        assert_eq!(n.inner_ext, None);
        assert!(!n.padded && !n.bidi);
        assert_eq!(analyse("README").ext, None);
        assert_eq!(analyse("archive.tar.gz").inner_ext.as_deref(), Some("tar"));
    }

    #[test]
    fn double_and_padded_extensions() {
        let n = analyse("invoice.pdf.exe");
        assert_eq!(
            (n.ext.as_deref(), n.inner_ext.as_deref()),
            (Some("exe"), Some("pdf"))
        );
        let n = analyse("invoice.pdf                                  .exe");
        assert!(n.padded);
        assert_eq!(n.inner_ext.as_deref(), Some("pdf"));
        let n = analyse("scan_2024\u{3000}\u{3000}\u{3000}\u{3000}.scr");
        assert!(n.padded);
        assert_eq!(n.ext.as_deref(), Some("scr"));
    }

    #[test]
    fn windows_drops_trailing_dots_and_spaces_and_paths_are_cut() {
        assert_eq!(analyse("setup.exe. . ").ext.as_deref(), Some("exe"));
        assert_eq!(analyse("a/b\\c/run.JS").ext.as_deref(), Some("js"));
        assert_eq!(analyse("evil.exe\0.txt").ext.as_deref(), Some("exe"));
    }

    #[test]
    fn right_to_left_override_is_seen_and_the_real_extension_read() {
        // Displays as "invoice_exe.pdf"; Windows runs it as .exe.
        let n = analyse("invoice_\u{202e}fdp.exe");
        assert!(n.bidi);
        assert_eq!(n.ext.as_deref(), Some("exe"));
        assert!(
            !analyse("\u{5d3}\u{5d5}\u{5d7}.pdf").bidi,
            "Hebrew letters alone are fine"
        );
        assert!(shown("a\u{202e}b").contains("<U+202E>"));
    }

    #[test]
    fn lists() {
        assert!(dangerous("exe").is_some() && dangerous("lnk").is_some());
        assert!(dangerous("pdf").is_none() && dangerous("docx").is_none());
        assert!(harmless_ext("jpg") && !harmless_ext("exe"));
        assert!(harmless_type("image/jpeg") && harmless_type("application/pdf"));
        assert!(!harmless_type("application/octet-stream"));
        assert!(shown(&"x".repeat(500)).chars().count() <= MAX_SHOWN_CHARS + 1);
    }
}
