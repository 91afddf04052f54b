//! Dangerous attachments through SMTP against the real binary: a program with a
//! double extension is refused, an encrypted archive hiding a script is held, a
//! macro document is named in the verdict, and an ordinary PDF passes.

mod common;
use common::{Gateway, Sink};
use std::io::Write;

fn gateway(sink: &Sink) -> Gateway {
    Gateway::start(
        "",
        &format!(
            "[[domains]]\nname = \"example.test\"\ndeliver_to = \"smtp://127.0.0.1:{}\"\n",
            sink.port
        ),
    )
}

fn send(gw: &Gateway, name: &str, data: &[u8]) -> common::SwaksRun {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, data).expect("write attachment");
    gw.swaks(&[
        "--from",
        "billing@outside.test",
        "--to",
        "bob@example.test",
        "--header",
        "Subject: your invoice",
        "--attach-type",
        "application/octet-stream",
        "--attach",
        &path.display().to_string(),
    ])
}

/// The smallest Windows program header the type check recognises.
fn pe() -> Vec<u8> {
    let mut v = vec![0u8; 0x200];
    v[..2].copy_from_slice(b"MZ");
    v[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    v[0x80..0x84].copy_from_slice(b"PE\0\0");
    v[0x84..0x86].copy_from_slice(&0x14cu16.to_le_bytes());
    v
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in files {
        w.start_file(*name, options).expect("zip entry");
        w.write_all(data).expect("zip data");
    }
    w.finish().expect("zip").into_inner()
}

/// Sets the "encrypted" flag (bit 0 of the general purpose flags) in every
/// local and central directory header, as a password-protected archive has.
fn mark_encrypted(mut zip: Vec<u8>) -> Vec<u8> {
    for (sig, flag_at) in [(&b"PK\x03\x04"[..], 6), (&b"PK\x01\x02"[..], 8)] {
        let offsets: Vec<usize> = zip
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == sig)
            .map(|(i, _)| i)
            .collect();
        for o in offsets {
            zip[o + flag_at] |= 1;
        }
    }
    zip
}

fn scanned_symbols(gw: &Gateway, id: &str, status: &str) -> String {
    gw.wait_status(id, status)["events"].to_string()
}

#[test]
fn a_program_with_a_double_extension_is_refused() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let run = send(&gw, "invoice.pdf.exe", &pe());
    assert!(
        run.server_said("550 5.7.1 Message rejected as"),
        "{}",
        run.transcript
    );
    assert!(
        run.transcript.contains("invoice.pdf.exe"),
        "{}",
        run.transcript
    );
}

#[test]
fn an_encrypted_archive_hiding_a_script_is_held() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let archive = mark_encrypted(zip_of(&[("payment.js", b"WScript.Echo('x')")]));
    let run = send(&gw, "invoice.zip", &archive);
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let id = run.queue_id();
    let events = scanned_symbols(&gw, &id, "quarantined");
    assert!(events.contains("ATTACH_ENCRYPTED"), "{events}");
    assert!(events.contains("payment.js"), "{events}");
}

#[test]
fn a_macro_document_is_named_and_an_ordinary_pdf_passes_clean() {
    let sink = Sink::start(&[]);
    let gw = gateway(&sink);
    let docm = zip_of(&[
        ("[Content_Types].xml", b"<Types><Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.ms-word.document.macroEnabled.main+xml\"/></Types>"),
        ("word/document.xml", b"<w:document/>"),
        ("word/vbaProject.bin", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 not a real project"),
    ]);
    let run = send(&gw, "report.docm", &docm);
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let events = scanned_symbols(&gw, &run.queue_id(), "delivered");
    assert!(events.contains("ATTACH_OFFICE_MACRO"), "{events}");

    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
    let run = send(&gw, "statement.pdf", pdf);
    assert!(run.server_said("250 2.0.0"), "{}", run.transcript);
    let t = gw.wait_status(&run.queue_id(), "delivered");
    assert!(!t["events"].to_string().contains("ATTACH_"), "{t:#}");
}
