//! ARC sealing (RFC 8617) of the messages the gateway has changed.
//!
//! Rewriting a message's links changes its body, which breaks the sender's
//! DKIM signature (RFC 6376) for every host after the gateway. An ARC set
//! added after the change tells those hosts what the gateway saw before it:
//! the `ARC-Authentication-Results` carry our authentication results, the
//! `ARC-Message-Signature` signs the message as we pass it on, and the
//! `ARC-Seal` signs the whole chain of ARC sets, with `cv=` saying how the
//! chain the message arrived with validated. [`ArcSigner::seal`] returns the
//! three header fields to prepend; [`ArcSigner::dns_record`] is the key
//! record (RFC 6376 §3.6.1, `v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo>`) to
//! publish at `<selector>._domainkey.<domain>` so that others can verify them.
//!
//! The chain as received is not looked up again: the scanner validated it on
//! the original message and keeps the outcome in a [`SealInput`]. Our change
//! touches only bodies and adds our own header fields at the top, so the
//! earlier ARC header fields are byte-identical in the changed message and
//! the chain can be rebuilt from them. A chain whose last seal says
//! `cv=fail` is never sealed further (RFC 8617 §5.1.2), nor one whose
//! validation could not be completed (a temporary DNS error): a `cv=fail`
//! added for a passing chain would condemn it for every later host.
//!
//! Keys are RSA, 2048 bits, signing with `rsa-sha256`: the only algorithm
//! RFC 8617 allows. They are generated with the RustCrypto `rsa` crate
//! (`ring`, which signs, cannot generate RSA keys) and kept as PKCS#8 PEM;
//! a PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`, as `openssl genrsa` writes) is
//! accepted too.
//!
//! Security posture: the key file is written with mode 0600 (its folder 0700),
//! atomically and never over an existing key; the key is never printed or
//! logged, and `Debug` shows only the domain and the selector. The message is
//! hostile: one that cannot be parsed, or whose ARC header fields are
//! malformed or incomplete, is an error and gets no seal, never a panic.

use base64::Engine;
use mail_auth::arc::{ArcSealer, Set};
use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::{Header, HeaderWriter};
use mail_auth::dkim::Done;
use mail_auth::{ArcOutput, AuthenticatedMessage, DkimResult};
use portcullis_scan::SealInput;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::der::zeroize::Zeroizing;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The size of a generated key, and the least accepted.
pub const KEY_BITS: usize = 2048;

/// The most ARC sets a message may carry (RFC 8617 §4.2.1: `i=` is 1 to 50).
pub const MAX_SETS: usize = 50;

/// The header fields the `ARC-Message-Signature` signs (those missing from a
/// message are signed as absent, so they cannot be added later).
pub const SIGNED_HEADERS: [&str; 13] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "DKIM-Signature",
];

/// The longest character-string in a TXT record (RFC 1035 §3.3).
pub const TXT_STRING_MAX: usize = 255;

/// Why a key could not be had or a message could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum ArcError {
    #[error("ARC key {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The key file holds no usable RSA private key (the reason never quotes
    /// the key).
    #[error("ARC key: {0}")]
    BadKey(String),
    /// The signing domain or selector is not a domain name.
    #[error("ARC {what} {value:?} is not a domain name (letters, digits, '-' and '_' in dot-separated labels)")]
    BadName { what: &'static str, value: String },
    #[error("generating the ARC key: {0}")]
    Generate(String),
    /// The message's ARC chain (or its absence) does not allow a new set.
    #[error("the message cannot be ARC-sealed: {0}")]
    CannotSeal(String),
    #[error("the message cannot be parsed for ARC sealing")]
    Unparsable,
}

/// A key record to publish in DNS: a TXT record named `name` holding `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// `<selector>._domainkey.<domain>`, without the final dot.
    pub name: String,
    /// `v=DKIM1; k=rsa; p=<base64 of the SubjectPublicKeyInfo DER>`.
    pub value: String,
}

impl DnsRecord {
    /// The value cut into the character-strings of a TXT record, each at most
    /// [`TXT_STRING_MAX`] bytes; verifiers join them without separators.
    pub fn txt_strings(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let mut rest = self.value.as_str();
        while !rest.is_empty() {
            let mut end = rest.len().min(TXT_STRING_MAX);
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            let (head, tail) = rest.split_at(end);
            out.push(head);
            rest = tail;
        }
        out
    }

    /// The record as a zone-file line:
    /// `<name>. IN TXT "<at most 255 bytes>" "<the rest>"`.
    pub fn zone_line(&self) -> String {
        let mut line = format!("{}. IN TXT", self.name);
        for part in self.txt_strings() {
            line.push_str(" \"");
            for c in part.chars() {
                if c == '"' || c == '\\' {
                    line.push('\\');
                }
                line.push(c);
            }
            line.push('"');
        }
        line
    }
}

/// The gateway's ARC signing identity: a domain (`d=`), a selector (`s=`) and
/// an RSA key. Its `Debug` shows the domain and the selector only.
pub struct ArcSigner {
    domain: String,
    selector: String,
    sealer: ArcSealer<RsaKey<Sha256>, Done>,
    /// The public key as a DER SubjectPublicKeyInfo.
    public_spki: Vec<u8>,
}

impl std::fmt::Debug for ArcSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArcSigner")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

impl ArcSigner {
    /// Reads the key in `path` (PKCS#8 or PKCS#1 PEM), or, when there is no
    /// such file, generates a 2048-bit RSA key and writes it there (mode
    /// 0600; missing folders are made with mode 0700). The flag is true when
    /// the key was generated now: its DNS record is not published yet.
    pub fn load_or_generate(
        path: &Path,
        domain: &str,
        selector: &str,
    ) -> Result<(ArcSigner, bool), ArcError> {
        check_names(domain, selector)?;
        match read_key(path)? {
            Some(pem) => Ok((ArcSigner::from_pem(&pem, domain, selector)?, false)),
            None => {
                let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, KEY_BITS)
                    .map_err(|e| ArcError::Generate(e.to_string()))?;
                let pem = key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| ArcError::Generate(e.to_string()))?;
                if write_new_key(path, pem.as_bytes())? {
                    Ok((ArcSigner::from_rsa(&key, domain, selector)?, true))
                } else {
                    // Another process wrote its key first: use that one.
                    let pem = read_key(path)?.ok_or_else(|| ArcError::Io {
                        path: path.to_path_buf(),
                        source: std::io::ErrorKind::NotFound.into(),
                    })?;
                    Ok((ArcSigner::from_pem(&pem, domain, selector)?, false))
                }
            }
        }
    }

    /// A signer from a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`) or
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`), RSA of at least 2048 bits.
    pub fn from_pem(pem: &str, domain: &str, selector: &str) -> Result<ArcSigner, ArcError> {
        check_names(domain, selector)?;
        let key = if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            RsaPrivateKey::from_pkcs1_pem(pem)
                .map_err(|e| ArcError::BadKey(format!("not a PKCS#1 RSA private key: {e}")))?
        } else if pem.contains("-----BEGIN PRIVATE KEY-----") {
            RsaPrivateKey::from_pkcs8_pem(pem)
                .map_err(|e| ArcError::BadKey(format!("not a PKCS#8 RSA private key: {e}")))?
        } else if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(ArcError::BadKey(
                "the key is encrypted; store it unencrypted (mode 0600), e.g. with `openssl pkey`"
                    .into(),
            ));
        } else {
            return Err(ArcError::BadKey(
                "no `BEGIN PRIVATE KEY` or `BEGIN RSA PRIVATE KEY` PEM block".into(),
            ));
        };
        ArcSigner::from_rsa(&key, domain, selector)
    }

    fn from_rsa(key: &RsaPrivateKey, domain: &str, selector: &str) -> Result<ArcSigner, ArcError> {
        check_names(domain, selector)?;
        let bits = key.size() * 8;
        if bits < KEY_BITS {
            return Err(ArcError::BadKey(format!(
                "an RSA key of {bits} bits is too weak; ARC keys have at least {KEY_BITS}"
            )));
        }
        let public_spki = key
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| ArcError::BadKey(e.to_string()))?
            .as_bytes()
            .to_vec();
        // mail-auth's ring backend signs; it loads PKCS#8 DER.
        let der = key
            .to_pkcs8_der()
            .map_err(|e| ArcError::BadKey(e.to_string()))?;
        let ring_key = RsaKey::<Sha256>::from_key_der(rustls_pki_types::PrivateKeyDer::Pkcs8(
            rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_bytes()),
        ))
        .map_err(|e| ArcError::BadKey(e.to_string()))?;
        let sealer = ArcSealer::from_key(ring_key)
            .domain(domain)
            .selector(selector)
            .headers(SIGNED_HEADERS);
        Ok(ArcSigner {
            domain: domain.to_string(),
            selector: selector.to_string(),
            sealer,
            public_spki,
        })
    }

    /// The signing domain (`d=`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The selector (`s=`).
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// The key record to publish (RFC 6376 §3.6.1).
    pub fn dns_record(&self) -> DnsRecord {
        DnsRecord {
            name: format!("{}._domainkey.{}", self.selector, self.domain),
            value: format!(
                "v=DKIM1; k=rsa; p={}",
                base64::engine::general_purpose::STANDARD.encode(&self.public_spki)
            ),
        }
    }

    /// Seals `message`, the message as the gateway passes it on (after its
    /// changes), with `input`, what the scanner saw of it as received.
    /// Returns `ARC-Seal`, `ARC-Message-Signature` and
    /// `ARC-Authentication-Results`, each CRLF-terminated, to prepend to it.
    pub fn seal(&self, message: &[u8], input: &SealInput) -> Result<String, ArcError> {
        let parsed = AuthenticatedMessage::parse(message).ok_or(ArcError::Unparsable)?;
        let received = chain_as_received(&parsed, input.chain())?;
        let set = self
            .sealer
            .seal(&parsed, input.results(), &received)
            .map_err(|e| ArcError::CannotSeal(e.to_string()))?;
        Ok(set.to_header())
    }
}

/// The ARC chain of `message` with the validation `result` it had when it
/// arrived, as mail-auth's verifier would have returned it.
fn chain_as_received<'x>(
    message: &'x AuthenticatedMessage<'x>,
    result: &DkimResult,
) -> Result<ArcOutput<'x>, ArcError> {
    let cannot = |why: &str| Err(ArcError::CannotSeal(why.to_string()));
    if message.has_arc_errors {
        return cannot("its ARC header fields are malformed");
    }
    let sets = message.ams_headers.len();
    if sets != message.as_headers.len() || sets != message.aar_headers.len() {
        return cannot("its ARC sets are incomplete");
    }
    if sets >= MAX_SETS {
        return cannot("its ARC chain already has the most sets allowed (50)");
    }
    match (sets, result) {
        (0, DkimResult::None) => return Ok(ArcOutput::default()),
        (0, _) => return cannot("it no longer carries the ARC chain it arrived with"),
        (_, DkimResult::None) => {
            return cannot("it carries ARC sets but arrived without an ARC chain")
        }
        (_, DkimResult::TempError(e)) => {
            return Err(ArcError::CannotSeal(format!(
                "its ARC chain could not be validated for now: {e}"
            )))
        }
        _ => {}
    }
    let mut output = ArcOutput::default().with_result(result.clone());
    for (pos, ((seal, signature), results)) in message
        .as_headers
        .iter()
        .zip(&message.ams_headers)
        .zip(&message.aar_headers)
        .enumerate()
    {
        let i = pos + 1;
        if [seal.header.i, signature.header.i, results.header.i]
            .iter()
            .any(|&n| n as usize != i)
        {
            return Err(ArcError::CannotSeal(format!(
                "its ARC set {i} is missing or numbered twice"
            )));
        }
        output = output.with_set(Set {
            signature: Header::new(signature.name, signature.value, &signature.header),
            seal: Header::new(seal.name, seal.value, &seal.header),
            results: Header::new(results.name, results.value, &results.header),
        });
    }
    if !output.can_be_sealed() {
        return cannot("its ARC chain ends in cv=fail and must not be sealed further");
    }
    Ok(output)
}

/// A domain or selector as it may appear in `d=`/`s=` and a DNS name:
/// dot-separated labels of letters, digits, `-` and `_`.
fn check_names(domain: &str, selector: &str) -> Result<(), ArcError> {
    for (what, value) in [("domain", domain), ("selector", selector)] {
        let ok = !value.is_empty()
            && value.len() <= 253
            && value.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !ok {
            return Err(ArcError::BadName {
                what,
                value: value.to_string(),
            });
        }
    }
    Ok(())
}

/// The key file's text, or `None` when there is no such file.
fn read_key(path: &Path) -> Result<Option<Zeroizing<String>>, ArcError> {
    let io = |source| ArcError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            match std::str::from_utf8(&bytes) {
                Ok(text) => Ok(Some(Zeroizing::new(text.to_string()))),
                Err(_) => Err(ArcError::BadKey(format!(
                    "{} is not a PEM text file",
                    path.display()
                ))),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(e)),
    }
}

/// Writes a new key file atomically: a temporary file in the same folder
/// (mode 0600, fsynced) is linked to `path`, which never replaces a key
/// already there, then the folder is fsynced. `false` when `path` appeared
/// meanwhile (another process generated a key first).
fn write_new_key(path: &Path, contents: &[u8]) -> Result<bool, ArcError> {
    let io = |p: &Path, source| ArcError::Io {
        path: p.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(&dir).map_err(|e| io(&dir, e))?;

    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "arc.key".into());
    let tmp = dir.join(format!(
        ".{name}.{}.{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(contents)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp, e));
    }
    // A hard link publishes the whole file at once and, unlike a rename,
    // never replaces a key another process has just written. Filesystems
    // without hard links get the rename.
    let placed = match std::fs::hard_link(&tmp, path) {
        Ok(()) => {
            let _ = std::fs::remove_file(&tmp);
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(&tmp);
            Ok(false)
        }
        Err(_) => std::fs::rename(&tmp, path).map(|()| true).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(path, e)
        }),
    }?;
    // The new name must survive a crash too.
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(&dir, e))?;
    Ok(placed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_auth::hickory_resolver::config::{
        ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
    };
    use mail_auth::{AuthenticationResults, MessageAuthenticator};
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::DecodePublicKey;
    use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    const MESSAGE: &str = concat!(
        "From: Alice <alice@sender.test>\r\n",
        "To: bob@gw.test\r\n",
        "Subject: the report\r\n",
        "Date: Mon, 2 Jun 2025 10:00:00 +0000\r\n",
        "Message-ID: <1@sender.test>\r\n",
        "MIME-Version: 1.0\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "\r\n",
        "See https://files.sender.test/report.pdf today.\r\n",
    );

    fn pkcs8_pem(bits: usize) -> String {
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).expect("generate");
        key.to_pkcs8_pem(LineEnding::LF).expect("pem").to_string()
    }

    fn signer(domain: &str, selector: &str) -> ArcSigner {
        ArcSigner::from_pem(&pkcs8_pem(KEY_BITS), domain, selector).expect("signer")
    }

    fn input(authserv_id: &'static str, chain: DkimResult) -> SealInput {
        SealInput::new(AuthenticationResults::new(authserv_id), chain)
    }

    /// `p=` of a key record, decoded.
    fn public_der(record: &DnsRecord) -> Vec<u8> {
        let p = record.value.rsplit_once("p=").expect("p= in the record").1;
        base64::engine::general_purpose::STANDARD
            .decode(p)
            .expect("base64")
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn the_key_is_generated_once_kept_private_and_reloaded_identically() {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join("arc").join("keys");
        let path = dir.join("arc.key");
        let (first, generated) = ArcSigner::load_or_generate(&path, "gw.test", "arc1").unwrap();
        assert!(generated);
        #[cfg(unix)]
        {
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&data.path().join("arc")), 0o700);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"));
        // Nothing but the key is left in the folder.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

        let (again, generated) = ArcSigner::load_or_generate(&path, "gw.test", "arc1").unwrap();
        assert!(!generated);
        assert_eq!(again.dns_record(), first.dns_record());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

        // Debug names the identity, never the key.
        let shown = format!("{again:?}");
        assert!(
            shown.contains("gw.test") && shown.contains("arc1"),
            "{shown}"
        );
        assert!(
            !shown.contains("PRIVATE") && !shown.contains("MII"),
            "{shown}"
        );
    }

    #[test]
    fn an_openssl_genrsa_pkcs1_key_is_accepted() {
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, KEY_BITS).unwrap();
        let pem = key.to_pkcs1_pem(LineEnding::LF).unwrap();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let data = tempfile::tempdir().unwrap();
        let path = data.path().join("arc.key");
        std::fs::write(&path, pem.as_bytes()).unwrap();
        let (signer, generated) = ArcSigner::load_or_generate(&path, "gw.test", "s").unwrap();
        assert!(!generated);
        let spki = key.to_public_key().to_public_key_der().unwrap();
        assert_eq!(public_der(&signer.dns_record()), spki.as_bytes());
        // The admin's file is left as it was.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), pem.as_str());
    }

    #[test]
    fn unusable_keys_and_names_are_refused() {
        for junk in [
            "",
            "hello",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            assert!(
                matches!(
                    ArcSigner::from_pem(junk, "gw.test", "s"),
                    Err(ArcError::BadKey(_))
                ),
                "{junk:?}"
            );
        }
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(matches!(
            ArcSigner::from_pem(encrypted, "gw.test", "s"),
            Err(ArcError::BadKey(_))
        ));
        let weak = pkcs8_pem(1024);
        match ArcSigner::from_pem(&weak, "gw.test", "s") {
            Err(ArcError::BadKey(why)) => assert!(why.contains("1024"), "{why}"),
            other => panic!("{other:?}"),
        }
        let pem = pkcs8_pem(KEY_BITS);
        for (domain, selector) in [
            ("", "s"),
            ("gw.test", ""),
            ("gw.test; x=1", "s"),
            ("gw.test", "s\r\nBcc: x"),
            ("gw..test", "s"),
        ] {
            assert!(
                matches!(
                    ArcSigner::from_pem(&pem, domain, selector),
                    Err(ArcError::BadName { .. })
                ),
                "{domain:?} {selector:?}"
            );
        }
        // An unreadable key file is an I/O error naming the path.
        let data = tempfile::tempdir().unwrap();
        match ArcSigner::load_or_generate(data.path(), "gw.test", "s") {
            Err(e @ ArcError::Io { .. }) => {
                assert!(e.to_string().contains(&data.path().display().to_string()))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_dns_record_carries_the_spki_of_the_key() {
        let pem = pkcs8_pem(KEY_BITS);
        let signer = ArcSigner::from_pem(&pem, "gw.test", "arc1").unwrap();
        let record = signer.dns_record();
        assert_eq!(record.name, "arc1._domainkey.gw.test");
        assert!(
            record.value.starts_with("v=DKIM1; k=rsa; p="),
            "{}",
            record.value
        );
        let public = rsa::RsaPublicKey::from_public_key_der(&public_der(&record)).unwrap();
        let private = RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(public, private.to_public_key());
        assert_eq!(public.size() * 8, KEY_BITS);
    }

    #[test]
    fn the_zone_line_splits_the_value_at_255_bytes() {
        let record = signer("gw.test", "arc1").dns_record();
        let parts = record.txt_strings();
        assert_eq!(
            parts.len(),
            2,
            "a 2048-bit key's record is 256 to 510 bytes"
        );
        assert_eq!(parts[0].len(), 255);
        assert_eq!(parts.concat(), record.value);
        assert_eq!(
            record.zone_line(),
            format!(
                "arc1._domainkey.gw.test. IN TXT \"{}\" \"{}\"",
                parts[0], parts[1]
            )
        );
        for (len, want) in [
            (0, vec![]),
            (255, vec![255]),
            (256, vec![255, 1]),
            (600, vec![255, 255, 90]),
        ] {
            let r = DnsRecord {
                name: "s._domainkey.gw.test".into(),
                value: "a".repeat(len),
            };
            let got: Vec<usize> = r.txt_strings().iter().map(|p| p.len()).collect();
            assert_eq!(got, want, "{len}");
        }
    }

    #[test]
    fn a_plain_message_gets_the_first_arc_set() {
        let signer = signer("gw.test", "arc1");
        let headers = signer
            .seal(MESSAGE.as_bytes(), &input("mx.gw.test", DkimResult::None))
            .unwrap();
        assert!(headers.ends_with("\r\n"));
        assert!(!headers.replace("\r\n", "").contains('\n'), "bare LF");
        let names: Vec<&str> = headers
            .split("\r\n")
            .filter(|l| !l.is_empty() && !l.starts_with([' ', '\t']))
            .map(|l| l.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            [
                "ARC-Seal",
                "ARC-Message-Signature",
                "ARC-Authentication-Results"
            ]
        );
        assert!(
            headers.starts_with("ARC-Seal: i=1; a=rsa-sha256; s=arc1; d=gw.test; cv=none;"),
            "{headers}"
        );
        assert!(headers.contains("ARC-Message-Signature: i=1; a=rsa-sha256; s=arc1; d=gw.test;"));
        assert!(headers.contains("ARC-Authentication-Results: i=1; mx.gw.test"));
        let ams = headers.to_ascii_lowercase();
        for h in [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "dkim-signature",
        ] {
            assert!(ams.contains(h), "{h} not signed: {headers}");
        }
    }

    #[test]
    fn messages_that_cannot_be_sealed_are_errors() {
        let ours = signer("gw.test", "arc1");
        for garbage in [&b""[..], b"\r\n\r\nbody only\r\n"] {
            assert!(matches!(
                ours.seal(garbage, &input("gw.test", DkimResult::None)),
                Err(ArcError::Unparsable)
            ));
        }
        // A first set whose chain failed (cv=fail) ends the chain.
        let sealed_fail = {
            let first = signer("first.test", "s1");
            let fields = first
                .seal(MESSAGE.as_bytes(), &input("first.test", DkimResult::None))
                .unwrap();
            let i1 = format!("{fields}{MESSAGE}");
            let broken =
                DkimResult::Fail(mail_auth::Error::Arc(mail_auth::arc::ArcError::BrokenChain));
            let fields = ours.seal(i1.as_bytes(), &input("gw.test", broken)).unwrap();
            assert!(
                fields.contains("i=2") && fields.contains("cv=fail"),
                "{fields}"
            );
            format!("{fields}{i1}")
        };
        let again = ours.seal(sealed_fail.as_bytes(), &input("gw.test", DkimResult::Pass));
        match again {
            Err(ArcError::CannotSeal(why)) => assert!(why.contains("cv=fail"), "{why}"),
            other => panic!("{other:?}"),
        }
        // ARC sets present but the chain result says none, and the reverse.
        let one_set = format!(
            "{}{MESSAGE}",
            ours.seal(MESSAGE.as_bytes(), &input("gw.test", DkimResult::None))
                .unwrap()
        );
        for (raw, chain) in [
            (one_set.as_str(), DkimResult::None),
            (MESSAGE, DkimResult::Pass),
            (
                one_set.as_str(),
                DkimResult::TempError(mail_auth::Error::Dns(mail_auth::DnsError::Resolver(
                    "timeout".into(),
                ))),
            ),
        ] {
            assert!(
                matches!(
                    ours.seal(raw.as_bytes(), &input("gw.test", chain.clone())),
                    Err(ArcError::CannotSeal(_))
                ),
                "{chain:?}"
            );
        }
        // A set with a missing part is refused, not sealed over.
        let no_aar: String = one_set
            .split_inclusive("\r\n")
            .filter(|l| !l.starts_with("ARC-Authentication-Results:"))
            .collect();
        assert!(matches!(
            ours.seal(no_aar.as_bytes(), &input("gw.test", DkimResult::Pass)),
            Err(ArcError::CannotSeal(_))
        ));
    }

    /// dnsmasq answering only the given key records (and NXDOMAIN for the
    /// rest of `.test`), on a free loopback port; stopped when dropped.
    struct Dns {
        port: u16,
        child: Child,
    }

    impl Drop for Dns {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn dnsmasq() -> std::path::PathBuf {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(Into::into))
            .map(|d| d.join("dnsmasq"))
            .find(|p| p.is_file())
            .expect("dnsmasq is needed to verify ARC seals (apt-get install dnsmasq)")
    }

    impl Dns {
        fn start(records: &[DnsRecord]) -> Dns {
            let bin = dnsmasq();
            for _attempt in 0..10 {
                let port = TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .expect("a free port")
                    .port();
                let mut command = Command::new(&bin);
                command.args([
                    "--keep-in-foreground",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--no-poll",
                    "--bind-interfaces",
                    "--listen-address=127.0.0.1",
                    "--pid-file=",
                    "--local=/test/",
                ]);
                command.arg(format!("--port={port}"));
                // No shell is involved, so the strings are not quoted
                // (dnsmasq would keep the quotes); commas separate them.
                for r in records {
                    assert!(!r.value.contains(','), "a comma would split the value");
                    let strings = r.txt_strings().join(",");
                    command.arg(format!("--txt-record={},{strings}", r.name));
                }
                let mut child = command
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start dnsmasq");
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    // dnsmasq listens on TCP and UDP on the same port.
                    if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                        return Dns { port, child };
                    }
                    if let Ok(Some(_)) = child.try_wait() {
                        break; // the port was taken meanwhile: try another
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        panic!("dnsmasq did not start listening on port {port}");
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            panic!("dnsmasq could not find a free port");
        }

        fn authenticator(&self) -> MessageAuthenticator {
            let mut opts = ResolverOpts::default();
            opts.timeout = Duration::from_secs(3);
            opts.attempts = 2;
            let mut udp = ConnectionConfig::udp();
            udp.port = self.port;
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = self.port;
            let server =
                NameServerConfig::new(IpAddr::V4(Ipv4Addr::LOCALHOST), true, vec![udp, tcp]);
            MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![server]), opts)
                .expect("resolver")
        }
    }

    async fn verify(auth: &MessageAuthenticator, raw: &str) -> DkimResult {
        let message = AuthenticatedMessage::parse(raw.as_bytes()).expect("parse");
        auth.verify_arc(&message).await.result().clone()
    }

    #[tokio::test]
    async fn a_sealed_message_verifies() {
        let signer = signer("gw.test", "arc1");
        let dns = Dns::start(&[signer.dns_record()]);
        let auth = dns.authenticator();
        let fields = signer
            .seal(MESSAGE.as_bytes(), &input("mx.gw.test", DkimResult::None))
            .unwrap();
        let sealed = format!("{fields}{MESSAGE}");
        assert_eq!(verify(&auth, &sealed).await, DkimResult::Pass, "{sealed}");

        // The seal is worth something: a changed body no longer verifies.
        let tampered = sealed.replace("today", "tomorrow");
        assert_ne!(verify(&auth, &tampered).await, DkimResult::Pass);
    }

    #[tokio::test]
    async fn a_forwarded_chain_is_sealed_again_after_the_change() {
        let first = signer("forwarder.test", "fw");
        let ours = signer("gw.test", "arc1");
        let dns = Dns::start(&[first.dns_record(), ours.dns_record()]);
        let auth = dns.authenticator();

        // A forwarder sealed the message (i=1) before it reached us.
        let fields = first
            .seal(
                MESSAGE.as_bytes(),
                &input("mx.forwarder.test", DkimResult::None),
            )
            .unwrap();
        let received = format!("{fields}{MESSAGE}");

        // What the scanner does on arrival: validate the chain, keep the result.
        let parsed = AuthenticatedMessage::parse(received.as_bytes()).unwrap();
        let arc = auth.verify_arc(&parsed).await;
        assert_eq!(arc.result(), &DkimResult::Pass);
        let results = AuthenticationResults::new("mx.gw.test")
            .with_arc_result(&arc, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        let seal_input = SealInput::new(results, arc.result().clone());

        // Our change: a rewritten link and a header field of our own on top.
        let changed = format!(
            "X-Portcullis-Links: rewritten\r\n{}",
            received.replace(
                "https://files.sender.test/report.pdf",
                "https://links.gw.test/l/AAAA"
            )
        );
        // The forwarder's signature no longer covers the message.
        assert_ne!(verify(&auth, &changed).await, DkimResult::Pass);

        let fields = ours.seal(changed.as_bytes(), &seal_input).unwrap();
        assert!(
            fields.starts_with("ARC-Seal: i=2; a=rsa-sha256; s=arc1; d=gw.test; cv=pass;"),
            "{fields}"
        );
        assert!(fields.contains("ARC-Authentication-Results: i=2; mx.gw.test"));
        assert!(fields.contains("arc=pass"), "{fields}");
        let sealed = format!("{fields}{changed}");
        assert_eq!(verify(&auth, &sealed).await, DkimResult::Pass, "{sealed}");
    }
}
