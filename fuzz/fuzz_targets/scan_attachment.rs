//! The attachment checks (magic bytes, archives, Office documents, HTML) on any
//! bytes, delivered as a base64 attachment whose name the first byte picks.
#![no_main]
use base64::Engine;

const NAMES: [&str; 16] = [
    "a.zip",
    "a.docx",
    "a.doc",
    "a.xlsm",
    "a.xls",
    "a.pdf",
    "a.html",
    "a.svg",
    "a.tar",
    "a.gz",
    "a.jar",
    "a.iso",
    "a.rar",
    "invoice.pdf.exe",
    "a.7z",
    "a",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let name = NAMES[usize::from(pick) % NAMES.len()];
    let body = base64::engine::general_purpose::STANDARD.encode(content);
    let mut raw = format!(
        "From: a@sender.example\r\nTo: user@example.org\r\nSubject: file\r\n\
         Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <f@sender.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
         --b\r\nContent-Type: application/octet-stream; name=\"{name}\"\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    for line in body.as_bytes().chunks(76) {
        raw.extend_from_slice(line);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"--b--\r\n");
    portcullis_fuzz::scan_all(&raw);
});
