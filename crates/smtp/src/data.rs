//! The DATA receiver: turns the dot-stuffed byte stream after `354` into the message,
//! and decides exactly where it ends.
//!
//! SMTP smuggling (the 2023 "SMTP smuggling" class, and bare-CR/LF variants) works by
//! making two servers disagree on where a message ends. Here only `<CR><LF>.<CR><LF>`
//! ends DATA (RFC 5321 section 4.1.1.4). A bare `<LF>` or bare `<CR>` is never a line
//! end for that purpose: `<LF>.<LF>`, `<LF>.<CR><LF>`, `<CR><LF>.<LF>`, `<CR>.<CR>`
//! and every other mix stay inside the message. What happens to a message that
//! contains a bare line ending is the [`BareNewlinePolicy`]: by default it is
//! refused once the real end arrives (as Postfix's `smtpd_forbid_bare_newline`),
//! or, when configured, each bare `<CR>` / `<LF>` is rewritten to `<CR><LF>` in the
//! stored copy, where a later relay's dot-stuffing keeps any dot line harmless.
//!
//! Limits (size, line length, header size) never stop the reading: the receiver keeps
//! consuming up to the real end so that the session stays in step with the client,
//! and the caller replies with the first limit that was exceeded.

use memchr::memchr2;

/// What to do with a message that contains a bare `<CR>` or `<LF>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BareNewlinePolicy {
    /// Refuse the message with `550 5.5.2` after reading it to its real end.
    #[default]
    Reject,
    /// Store it with every bare `<CR>` or `<LF>` turned into `<CR><LF>`.
    Normalise,
}

/// Limits applied while the message streams in.
#[derive(Debug, Clone, Copy)]
pub struct DataLimits {
    pub max_size: usize,
    pub max_line_length: usize,
    pub max_header_size: usize,
    pub bare_newlines: BareNewlinePolicy,
}

/// The first limit or rule a message broke, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataProblem {
    TooLarge,
    LineTooLong,
    HeaderTooLarge,
    BareNewline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// After `<CR><LF>` (or at the very start): a dot here may be stuffing or the end.
    LineStart,
    /// After a bare newline that was normalised: a new line for the content, but a dot
    /// here is plain content and never the end.
    SoftLineStart,
    /// Inside a line.
    Body,
    /// Just read `<CR>` inside a line.
    Cr,
    /// Read `.` at a line start.
    Dot,
    /// Read `.<CR>` at a line start.
    DotCr,
}

/// Incremental DATA receiver. Feed it bytes with [`DataReceiver::feed`] until it
/// reports the end; the unconsumed rest of the input belongs to the next command.
pub struct DataReceiver {
    limits: DataLimits,
    state: State,
    message: Vec<u8>,
    /// Bytes seen (after unstuffing), counted even once storing stopped.
    size: usize,
    line_len: usize,
    in_header: bool,
    header_size: usize,
    problem: Option<DataProblem>,
    /// BDAT content: dots are plain content and nothing ends the message.
    transparent: bool,
}

impl DataReceiver {
    pub fn new(limits: DataLimits) -> Self {
        DataReceiver {
            limits,
            state: State::LineStart,
            message: Vec::with_capacity(16 * 1024),
            size: 0,
            line_len: 0,
            in_header: true,
            header_size: 0,
            problem: None,
            transparent: false,
        }
    }

    /// Makes the receiver check content without DATA's dot rules (for BDAT).
    pub fn set_transparent(&mut self) {
        self.transparent = true;
    }

    /// Consumes bytes from `input`. Returns `Some(consumed)` when the end-of-data
    /// marker was read (`consumed` includes it), `None` when all of `input` was
    /// consumed and more is needed.
    pub fn feed(&mut self, input: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Body => {
                    // Fast path: copy the run of ordinary bytes up to the next CR or LF.
                    let rest = &input[i..];
                    let run = memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
                    self.content(&rest[..run]);
                    i += run;
                    if i < input.len() {
                        let b = input[i];
                        i += 1;
                        if b == b'\r' {
                            self.state = State::Cr;
                        } else {
                            self.bare_newline();
                        }
                    }
                }
                State::LineStart => {
                    let b = input[i];
                    if b == b'.' && !self.transparent {
                        i += 1;
                        self.state = State::Dot;
                    } else {
                        self.state = State::Body;
                    }
                }
                State::SoftLineStart => self.state = State::Body,
                State::Dot => {
                    let b = input[i];
                    if b == b'\r' {
                        i += 1;
                        self.state = State::DotCr;
                    } else {
                        // RFC 5321 4.5.2: the leading dot of a stuffed line is removed.
                        // A bare LF right after it is handled as any other byte.
                        self.state = State::Body;
                    }
                }
                State::DotCr => {
                    let b = input[i];
                    if b == b'\n' {
                        return Some(i + 1);
                    }
                    // `.<CR>` followed by something else: a bare CR after a (removed) dot.
                    self.state = State::Cr;
                }
                State::Cr => {
                    let b = input[i];
                    if b == b'\n' {
                        i += 1;
                        self.end_line();
                        self.state = State::LineStart;
                    } else {
                        // A bare CR; the byte after it is looked at again in Body.
                        self.bare_cr();
                    }
                }
            }
        }
        None
    }

    /// The received message (unstuffed), or the first problem found.
    pub fn finish(self) -> Result<Vec<u8>, DataProblem> {
        match self.problem {
            Some(p) => Err(p),
            None => Ok(self.message),
        }
    }

    /// Size in bytes of what the client sent, after unstuffing.
    pub fn size(&self) -> usize {
        self.size
    }

    fn note(&mut self, p: DataProblem) {
        if self.problem.is_none() {
            self.problem = Some(p);
        }
    }

    fn content(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.size += bytes.len();
        self.line_len += bytes.len();
        if self.in_header {
            self.header_size += bytes.len();
            if self.header_size > self.limits.max_header_size {
                self.note(DataProblem::HeaderTooLarge);
            }
        }
        if self.line_len > self.limits.max_line_length {
            self.note(DataProblem::LineTooLong);
        }
        if self.size > self.limits.max_size {
            self.note(DataProblem::TooLarge);
        }
        if self.problem.is_none() {
            self.message.extend_from_slice(bytes);
        } else if !self.message.is_empty() {
            // Nothing more will be delivered: free the memory now.
            self.message = Vec::new();
        }
    }

    fn end_line(&mut self) {
        if self.in_header && self.line_len == 0 {
            self.in_header = false;
        }
        self.line_len = 0;
        self.content_crlf();
    }

    fn content_crlf(&mut self) {
        self.size += 2;
        if self.in_header {
            self.header_size += 2;
        }
        if self.size > self.limits.max_size {
            self.note(DataProblem::TooLarge);
        }
        if self.problem.is_none() {
            self.message.extend_from_slice(b"\r\n");
        }
    }

    fn bare_newline(&mut self) {
        match self.limits.bare_newlines {
            BareNewlinePolicy::Reject => {
                self.note(DataProblem::BareNewline);
                self.state = State::Body;
            }
            BareNewlinePolicy::Normalise => {
                if self.in_header && self.line_len == 0 {
                    self.in_header = false;
                }
                self.line_len = 0;
                self.content_crlf();
                self.state = State::SoftLineStart;
            }
        }
    }

    fn bare_cr(&mut self) {
        self.bare_newline();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(policy: BareNewlinePolicy) -> DataLimits {
        DataLimits {
            max_size: 1 << 20,
            max_line_length: 1000,
            max_header_size: 10_000,
            bare_newlines: policy,
        }
    }

    /// Feeds `input` in chunks of `chunk` bytes; returns the message (or problem) and
    /// how many bytes were consumed, or None if the end was never found.
    fn run(
        input: &[u8],
        chunk: usize,
        policy: BareNewlinePolicy,
    ) -> Option<(Result<Vec<u8>, DataProblem>, usize)> {
        let mut rx = DataReceiver::new(limits(policy));
        let mut offset = 0;
        for part in input.chunks(chunk) {
            if let Some(n) = rx.feed(part) {
                return Some((rx.finish(), offset + n));
            }
            offset += part.len();
        }
        None
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf_in_any_chunking() {
        let input = b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n";
        for chunk in 1..input.len() {
            let (msg, used) = run(input, chunk, BareNewlinePolicy::Reject).unwrap();
            assert_eq!(msg.unwrap(), b"Subject: x\r\n\r\nhello\r\n");
            assert_eq!(&input[used..], b"QUIT\r\n");
        }
    }

    #[test]
    fn empty_message_ends_at_once() {
        let (msg, used) = run(b".\r\n", 3, BareNewlinePolicy::Reject).unwrap();
        assert_eq!(msg.unwrap(), b"");
        assert_eq!(used, 3);
    }

    #[test]
    fn dot_stuffing_is_removed() {
        let input = b"a\r\n..b\r\n..\r\n.\r\n";
        let (msg, _) = run(input, 64, BareNewlinePolicy::Reject).unwrap();
        assert_eq!(msg.unwrap(), b"a\r\n.b\r\n.\r\n");
    }

    /// Every smuggling variant: none may end the message early, in either policy.
    #[test]
    fn bare_newline_variants_never_end_the_message() {
        let variants: &[&[u8]] = &[
            b"\n.\n",
            b"\n.\r\n",
            b"\r.\r",
            b"\r.\r\n",
            b"\r\n.\n",
            b"\r\n.\r",
            b"\n.\r",
            b"\r.\n",
            b"\r\n.\r\r\n",
        ];
        for policy in [BareNewlinePolicy::Reject, BareNewlinePolicy::Normalise] {
            for v in variants {
                let mut input = b"Subject: x\r\n\r\nbody".to_vec();
                input.extend_from_slice(v);
                input.extend_from_slice(b"MAIL FROM:<evil@x.test>\r\nRCPT TO:<v@y.test>\r\nDATA\r\nsmuggled\r\n.\r\nQUIT\r\n");
                for chunk in [1, 2, 3, 7, 4096] {
                    let (msg, used) =
                        run(&input, chunk, policy).unwrap_or_else(|| panic!("{v:?} never ended"));
                    // The end found is the real one, after the smuggled text.
                    assert_eq!(
                        &input[used..],
                        b"QUIT\r\n",
                        "{v:?} {policy:?} chunk {chunk}"
                    );
                    match policy {
                        BareNewlinePolicy::Reject => {
                            assert_eq!(msg, Err(DataProblem::BareNewline), "{v:?}")
                        }
                        BareNewlinePolicy::Normalise => {
                            let m = msg.unwrap();
                            // Every line ending of the stored copy is CRLF.
                            for (i, b) in m.iter().enumerate() {
                                if *b == b'\n' {
                                    assert_eq!(m[i - 1], b'\r', "{v:?}");
                                }
                                if *b == b'\r' {
                                    assert_eq!(m.get(i + 1), Some(&b'\n'), "{v:?}");
                                }
                            }
                            assert!(m.windows(8).any(|w| w == b"smuggled"));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn limits_are_reported_after_reading_to_the_end() {
        let mut rx = DataReceiver::new(DataLimits {
            max_size: 100,
            ..limits(BareNewlinePolicy::Reject)
        });
        let mut input = b"Subject: big\r\n\r\n".to_vec();
        input.extend(std::iter::repeat_n(b"0123456789\r\n", 50).flatten());
        input.extend_from_slice(b".\r\nNOOP\r\n");
        let used = rx.feed(&input).unwrap();
        assert_eq!(&input[used..], b"NOOP\r\n");
        assert!(rx.size() > 100);
        assert_eq!(rx.finish(), Err(DataProblem::TooLarge));
    }

    #[test]
    fn long_lines_and_big_headers_are_problems() {
        let mut rx = DataReceiver::new(DataLimits {
            max_line_length: 10,
            ..limits(BareNewlinePolicy::Reject)
        });
        assert!(rx
            .feed(b"Subject: x\r\n\r\n0123456789ABC\r\n.\r\n")
            .is_some());
        assert_eq!(rx.finish(), Err(DataProblem::LineTooLong));

        let mut rx = DataReceiver::new(DataLimits {
            max_header_size: 20,
            ..limits(BareNewlinePolicy::Reject)
        });
        assert!(rx
            .feed(b"Subject: x\r\nX-A: 1234567890\r\n\r\nbody\r\n.\r\n")
            .is_some());
        assert_eq!(rx.finish(), Err(DataProblem::HeaderTooLarge));
    }
}
