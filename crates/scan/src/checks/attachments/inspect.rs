//! The inspector: applies every type, name, document and markup check to one file
//! (an attachment, an archive entry, a file embedded in a document), opens
//! containers through `archive` and `office`, and gathers the evidence per symbol.
//!
//! Hostile input: the file's bytes and name. Containers are opened only while the
//! nesting stays within `max_depth`; every file counts against `max_entries`;
//! everything decompressed counts against `max_expanded_bytes` (see `archive`).
//! Evidence kept per symbol is bounded ([`MAX_SHOWN`] items shown, paths
//! remembered only up to [`MAX_REMEMBERED`] for de-duplication).

use super::magic::{self, Class, Kind};
use super::{html, names, office, Sym};
use crate::config::AttachmentConfig;
use std::collections::{BTreeMap, HashSet};

/// Items of evidence shown in one finding's detail.
const MAX_SHOWN: usize = 5;
/// Paths remembered per symbol so that one file counts once.
const MAX_REMEMBERED: usize = 1024;
/// Bytes of one stream of a compound file that are read.
const MAX_OLE_STREAM: usize = 16 * 1024 * 1024;
/// Files embedded in one OneNote section that are looked at.
const MAX_ONENOTE_FILES: usize = 64;
/// Name extensions that mark markup even when the content does not start like it.
const MARKUP_EXTS: &[&str] = &["htm", "html", "xhtml", "shtml", "svg", "hta"];

/// One file to inspect.
pub(super) struct FileRef<'d> {
    /// Where it is, for people: `outer.zip/inner/setup.exe`.
    pub path: String,
    /// Its own name as given (a header parameter or an archive entry name).
    pub name: Option<&'d str>,
    /// The declared Content-Type (`type/subtype`, lower case), for attachments.
    pub declared: Option<&'d str>,
    pub data: &'d [u8],
    /// `data` is the whole file (not cut at a size limit, not a failed read).
    pub complete: bool,
    /// How many containers it is inside (0 for an attachment).
    pub level: u32,
    /// A VBA project already reported by its container (`vbaProject.bin`).
    pub vba_known: bool,
    /// The reader sees it as a file (it has a name or is an attachment by
    /// disposition, or sits in a container), not as part of the message body.
    pub as_file: bool,
}

impl<'d> FileRef<'d> {
    /// An entry of this container.
    pub fn child(&self, name: Option<&'d str>, data: &'d [u8], complete: bool) -> FileRef<'d> {
        let shown = name.map_or_else(|| "(embedded file)".to_string(), names::shown);
        FileRef {
            path: format!("{}/{}", self.path, shown),
            name,
            declared: None,
            data,
            complete,
            level: self.level + 1,
            vba_known: false,
            as_file: true,
        }
    }
}

/// Evidence for one symbol.
#[derive(Default)]
struct Evidence {
    shown: Vec<String>,
    seen: HashSet<String>,
    total: usize,
}

/// Inspection state for one message.
pub(super) struct Inspector<'c> {
    pub cfg: &'c AttachmentConfig,
    blocked: Vec<String>,
    /// Bytes decompressed so far, all archives of the message together.
    pub expanded: u64,
    /// Files looked at inside containers so far.
    pub entries: u64,
    /// A limit was hit: stop opening anything more in this attachment.
    pub stopped: bool,
    hits: BTreeMap<Sym, Evidence>,
}

impl<'c> Inspector<'c> {
    pub fn new(cfg: &'c AttachmentConfig) -> Inspector<'c> {
        let blocked = cfg
            .blocked_extensions
            .iter()
            .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        Inspector {
            cfg,
            blocked,
            expanded: 0,
            entries: 0,
            stopped: false,
            hits: BTreeMap::new(),
        }
    }

    /// Records evidence for `sym` about the file at `path`.
    pub fn hit(&mut self, sym: Sym, path: &str, reason: impl AsRef<str>) {
        let e = self.hits.entry(sym).or_default();
        if e.seen.contains(path) {
            return;
        }
        if e.seen.len() < MAX_REMEMBERED {
            e.seen.insert(path.to_string());
        }
        e.total += 1;
        if e.shown.len() < MAX_SHOWN {
            e.shown.push(format!("{path} ({})", reason.as_ref()));
        }
    }

    /// The findings, one per symbol, in the symbols' fixed order.
    pub fn findings(self) -> Vec<crate::Finding> {
        self.hits
            .into_iter()
            .map(|(sym, e)| {
                let mut detail = format!("{}: {}", sym.summary(), e.shown.join("; "));
                if e.total > e.shown.len() {
                    detail.push_str(&format!(" and {} more", e.total - e.shown.len()));
                }
                crate::Finding::new(sym.name(), sym.score(), sym.category(), detail)
            })
            .collect()
    }

    /// Counts one more file inside a container; false (and a bomb) past the limit.
    pub fn count_entry(&mut self, container: &str) -> bool {
        self.entries += 1;
        if self.entries > self.cfg.max_entries {
            self.bomb(
                container,
                format!("more than {} files inside archives", self.cfg.max_entries),
            );
            return false;
        }
        true
    }

    pub fn bomb(&mut self, path: &str, reason: String) {
        self.hit(Sym::ArchiveBomb, path, reason);
        self.stopped = true;
    }

    /// Whether the container `f` may be opened (its contents would sit one level
    /// deeper); reports it when it may not.
    pub fn enter(&mut self, f: &FileRef<'_>, kind: Kind) -> bool {
        if self.stopped {
            return false;
        }
        if f.level >= self.cfg.max_depth {
            self.hit(
                Sym::ArchiveTooDeep,
                &f.path,
                format!("{} at nesting level {}", kind.label(), f.level + 1),
            );
            return false;
        }
        true
    }

    /// Every check on one file, then its contents if it is a container.
    pub fn inspect(&mut self, f: &FileRef<'_>) {
        if self.stopped {
            return;
        }
        let kind = magic::sniff(f.data);
        let class = kind.class();
        let info = f.name.map(names::analyse).unwrap_or_default();
        let ext = info.ext.as_deref();
        let blocked = ext.filter(|e| self.blocked.iter().any(|b| b == e));
        let dangerous_ext = ext.and_then(|e| names::dangerous(e).map(|what| (e, what)));

        if let Some(e) = blocked {
            self.hit(
                Sym::BlockedExt,
                &f.path,
                format!(".{e} is blocked by policy"),
            );
        }
        if info.bidi {
            self.hit(
                Sym::BidiName,
                &f.path,
                format!("really ends in .{}", ext.unwrap_or("?")),
            );
        }
        if class == Class::Executable {
            self.hit(Sym::Executable, &f.path, kind.label());
        } else if blocked.is_none() {
            if let Some((e, what)) = dangerous_ext {
                self.hit(Sym::DangerousType, &f.path, format!(".{e}: {what}"));
            } else if class == Class::Dangerous {
                self.hit(Sym::DangerousType, &f.path, kind.label());
            }
        }
        if matches!(class, Class::Executable | Class::Dangerous) {
            let claim = match ext {
                Some(e) if names::harmless_ext(e) => Some(format!("named .{e}")),
                _ if dangerous_ext.is_none() && blocked.is_none() => f
                    .declared
                    .filter(|t| names::harmless_type(t))
                    .map(|t| format!("declared as {t}")),
                _ => None,
            };
            if let Some(claim) = claim {
                self.hit(
                    Sym::DisguisedType,
                    &f.path,
                    format!("{} {claim}", kind.label()),
                );
            }
        }
        if dangerous_ext.is_some() || blocked.is_some() {
            let inner = info.inner_ext.as_deref().filter(|e| names::harmless_ext(e));
            if let Some(inner) = inner {
                self.hit(
                    Sym::DoubleExt,
                    &f.path,
                    format!(".{inner} before .{}", ext.unwrap_or("?")),
                );
            } else if info.padded {
                self.hit(Sym::DoubleExt, &f.path, "white space pads the name");
            }
        }

        if ext == Some("url") {
            if let Some(target) = shortcut_target(f.data) {
                self.hit(
                    Sym::DangerousType,
                    &f.path,
                    format!("Internet shortcut to {}", names::shown(&target)),
                );
            }
        }
        match kind {
            Kind::Zip => self.open_zip(f),
            Kind::Gzip => self.open_gzip(f),
            Kind::Tar => self.open_tar(f),
            Kind::Tnef => self.open_tnef(f),
            Kind::Ole => self.open_ole(f),
            Kind::OneNote => self.open_onenote(f),
            Kind::Rtf => self.open_rtf(f),
            Kind::Html => self.markup(f, false),
            Kind::Svg => self.markup(f, true),
            _ if class == Class::OpaqueArchive => {
                self.hit(Sym::Uninspectable, &f.path, kind.label());
            }
            Kind::Unknown if wants_markup(f.name, f.declared) => {
                self.markup(f, ext == Some("svg"));
            }
            _ => {}
        }
    }

    fn markup(&mut self, f: &FileRef<'_>, svg: bool) {
        // An unnamed inline HTML part is message body, which the body checks judge.
        if !f.as_file {
            return;
        }
        let m = html::inspect(f.data, svg);
        if m.password {
            self.hit(Sym::HtmlCredentials, &f.path, "password field");
        }
        if let Some(host) = m.foreign_form {
            self.hit(
                Sym::HtmlForeignForm,
                &f.path,
                format!("form posts to {host}"),
            );
        }
        if let Some(what) = m.redirect {
            self.hit(Sym::HtmlRedirect, &f.path, what);
        }
        if m.smuggling {
            self.hit(
                Sym::HtmlSmuggling,
                &f.path,
                "builds a file from embedded data and saves it",
            );
        }
        if m.svg_script {
            self.hit(Sym::SvgScript, &f.path, "script or event handler");
        }
        if m.hta && !self.has_path(Sym::DangerousType, &f.path) {
            self.hit(Sym::DangerousType, &f.path, "HTML application (HTA)");
        }
        if !m.payloads.is_empty() && self.enter(f, Kind::Html) {
            for payload in &m.payloads {
                if self.stopped || !self.count_entry(&f.path) {
                    return;
                }
                let child = f.child(None, payload, true);
                self.inspect(&child);
            }
        }
    }

    fn has_path(&self, sym: Sym, path: &str) -> bool {
        self.hits.get(&sym).is_some_and(|e| e.seen.contains(path))
    }

    fn open_ole(&mut self, f: &FileRef<'_>) {
        if !self.enter(f, Kind::Ole) {
            return;
        }
        let Ok(ole) = office::inspect_ole(f.data, MAX_OLE_STREAM) else {
            return;
        };
        if ole.msi && !self.has_path(Sym::DangerousType, &f.path) {
            self.hit(Sym::DangerousType, &f.path, "Windows Installer package");
        }
        if ole.vba && !f.vba_known {
            self.hit(Sym::OfficeMacro, &f.path, "VBA project");
        }
        if !ole.autoexec.is_empty() {
            self.hit(Sym::MacroAutoexec, &f.path, ole.autoexec.join(", "));
        }
        if !ole.suspicious.is_empty() {
            self.hit(Sym::MacroSuspicious, &f.path, ole.suspicious.join(", "));
        }
        if let Some(state) = ole.xlm {
            self.hit(Sym::XlmMacro, &f.path, format!("{state} macro sheet"));
        }
        if let Some(what) = ole.encrypted {
            self.hit(Sym::Encrypted, &f.path, what);
        }
        if ole.equation {
            self.hit(Sym::EquationObject, &f.path, "Equation Native stream");
        }
        for e in &ole.embedded {
            if self.stopped || !self.count_entry(&f.path) {
                return;
            }
            let child = f.child(e.name.as_deref(), &e.data, true);
            self.inspect(&child);
        }
    }

    fn open_rtf(&mut self, f: &FileRef<'_>) {
        if !self.enter(f, Kind::Rtf) {
            return;
        }
        for (class, e) in office::rtf_objects(f.data, MAX_OLE_STREAM) {
            if self.stopped || !self.count_entry(&f.path) {
                return;
            }
            if class.to_ascii_lowercase().starts_with("equation") {
                let shown = names::shown(&class);
                self.hit(Sym::EquationObject, &f.path, format!("{shown} object"));
            }
            let child = f.child(e.name.as_deref(), &e.data, true);
            self.inspect(&child);
        }
    }

    /// A OneNote section carries attached files as FileDataStoreObjects
    /// (MS-ONESTORE 2.6.13): a GUID, a 64-bit length, 12 reserved bytes, the data.
    /// Pictures are stored the same way, so only files that are not images count.
    fn open_onenote(&mut self, f: &FileRef<'_>) {
        const FILE_DATA: [u8; 16] = [
            0xe7, 0x16, 0xe3, 0xbd, 0x65, 0x26, 0x11, 0x45, 0xa4, 0xc4, 0x8d, 0x4d, 0x0b, 0x7a,
            0x9e, 0xac,
        ];
        if !self.enter(f, Kind::OneNote) {
            return;
        }
        let starts: Vec<usize> = memchr::memmem::find_iter(f.data, &FILE_DATA)
            .take(MAX_ONENOTE_FILES)
            .collect();
        for start in starts {
            let Some(len) = f
                .data
                .get(start + 16..start + 24)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_le_bytes)
            else {
                continue;
            };
            let from = start + 36;
            // The stored length is believed only as far as the file really goes.
            let to = usize::try_from(len)
                .map_or(f.data.len(), |l| from.saturating_add(l))
                .min(f.data.len());
            let Some(data) = f.data.get(from..to) else {
                continue;
            };
            if self.stopped || !self.count_entry(&f.path) {
                return;
            }
            let kind = magic::sniff(data);
            if kind.class() != Class::Image {
                self.hit(
                    Sym::DangerousType,
                    &f.path,
                    format!("OneNote section with an embedded file ({})", kind.label()),
                );
            }
            let child = f.child(None, data, true);
            self.inspect(&child);
        }
    }
}

/// The target of an Internet shortcut (`.url`, an INI file) when it is not a web
/// page: `file:` and UNC paths fetch and run files from a share (and leak the
/// user's NTLM hash, as a UNC icon path does), other schemes start local handlers.
fn shortcut_target(data: &[u8]) -> Option<String> {
    const WEB: &[&str] = &["http://", "https://", "mailto:", "ftp://", "news:"];
    let text = String::from_utf8_lossy(&data[..data.len().min(64 * 1024)]);
    text.lines().take(1000).find_map(|line| {
        let (key, value) = line.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        let lower = value.to_ascii_lowercase();
        let risky = match key.as_str() {
            "url" | "baseurl" => !value.is_empty() && !WEB.iter().any(|w| lower.starts_with(w)),
            "iconfile" => lower.starts_with("\\\\") || lower.starts_with("file:"),
            _ => false,
        };
        risky.then(|| value.chars().take(100).collect())
    })
}

/// A file whose name or declared type says HTML or SVG.
fn wants_markup(name: Option<&str>, declared: Option<&str>) -> bool {
    let by_name = name
        .and_then(|n| names::analyse(n).ext)
        .is_some_and(|e| MARKUP_EXTS.contains(&e.as_str()));
    by_name || matches!(declared, Some("text/html" | "image/svg+xml"))
}

/// Whether an entry of this name should be kept whole in memory so that its
/// content can be examined (markup and OOXML relationship parts).
pub(super) fn keep_by_name(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".rels") || wants_markup(Some(name), None)
}

/// Whether a file starting with `prefix` is a kind that is opened or read whole.
pub(super) fn keep_by_kind(prefix: &[u8]) -> bool {
    matches!(
        magic::sniff(prefix),
        Kind::Zip
            | Kind::Gzip
            | Kind::Tar
            | Kind::Tnef
            | Kind::Ole
            | Kind::OneNote
            | Kind::Html
            | Kind::Svg
            | Kind::Rtf
    )
}
