//! HTTP/1.1 message framing shared by `surge load` (responses) and `surge serve` (requests),
//! by RFC 9112: how long a body is (§6), the chunked transfer coding (§7.1) and whether the
//! connection stays open (§9). Start lines and header fields are parsed by `httparse`; this
//! module reads what they mean. Nothing here panics or allocates more than its bounded
//! line buffer, whatever the peer sends.

/// The peer broke the framing rules; the connection cannot be read further.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramingError(pub &'static str);

/// Header fields accepted in one head (more is an error, not a panic).
pub const MAX_HEADERS: usize = 64;

/// Longest chunk-size line (with extensions) and trailer section accepted.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

/// How a message body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLength {
    /// Exactly this many bytes (`Content-Length`, or none at all).
    Fixed(u64),
    /// `Transfer-Encoding` with chunked last: chunks, then trailers.
    Chunked,
    /// Until the connection closes (responses only).
    UntilClose,
}

/// What the framing header fields of one message say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Framing {
    /// The body's delimitation.
    pub body: BodyLength,
    /// `Connection: close` (or HTTP/1.0 without `keep-alive`); a body read until close
    /// closes the connection too, whatever this says.
    pub close: bool,
}

/// Which kind of message the headers belong to (the rules differ a little).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// A request (no body unless announced).
    Request,
    /// A response (no length: read until close).
    Response,
}

/// Reads `Content-Length`, `Transfer-Encoding` and `Connection` of a message of HTTP/1.`minor`.
pub fn framing(
    headers: &[httparse::Header<'_>],
    minor: u8,
    message: Message,
) -> Result<Framing, FramingError> {
    // RFC 9112 §9.3: HTTP/1.1 stays open unless "close"; HTTP/1.0 closes unless "keep-alive".
    let mut close = minor == 0;
    let mut length: Option<u64> = None;
    let mut transfer_coding: Option<&[u8]> = None;
    let mut chunked_last = false;
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            // RFC 9110 §8.6: a list of identical values is one value; anything else is an error.
            for item in h.value.split(|&b| b == b',') {
                let n = parse_decimal(trim(item))
                    .ok_or(FramingError("Content-Length is not a number"))?;
                if length.is_some_and(|old| old != n) {
                    return Err(FramingError("conflicting Content-Length values"));
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            for coding in h.value.split(|&b| b == b',').map(trim) {
                if coding.is_empty() {
                    continue;
                }
                // RFC 9112 §7.1: chunked is applied once, and last.
                if chunked_last {
                    return Err(FramingError("a transfer coding after chunked"));
                }
                chunked_last = coding.eq_ignore_ascii_case(b"chunked");
                transfer_coding = Some(coding);
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && minor == 0 {
                    close = false;
                }
            }
        }
    }
    let body = match (transfer_coding, length) {
        // RFC 9112 §6.3 (3): both is a smuggling attempt; treated as an error.
        (Some(_), Some(_)) => {
            return Err(FramingError("both Transfer-Encoding and Content-Length"));
        }
        (Some(_), None) if chunked_last => BodyLength::Chunked,
        // RFC 9112 §6.3 (4): a request without chunked last cannot be delimited (400); a
        // response is read until the connection closes.
        (Some(_), None) => match message {
            Message::Request => {
                return Err(FramingError("Transfer-Encoding without chunked last"));
            }
            Message::Response => BodyLength::UntilClose,
        },
        (None, Some(n)) => BodyLength::Fixed(n),
        // RFC 9112 §6.3 (6, 8): no length: a request has no body, a response ends at close.
        (None, None) => match message {
            Message::Request => BodyLength::Fixed(0),
            Message::Response => BodyLength::UntilClose,
        },
    };
    Ok(Framing { body, close })
}

/// Optional whitespace around a list item.
fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// A non-empty run of ASCII digits that fits in a u64.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Where a chunked body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line (into the line buffer).
    Size,
    /// Skipping this many bytes of chunk data.
    Data(u64),
    /// Expecting the CRLF after chunk data; `true` once the CR was seen.
    DataEnd(bool),
    /// Reading the trailer section after the last chunk (into the line buffer).
    Trailers,
    /// The body is complete.
    Done,
}

/// Follows a chunked body (RFC 9112 §7.1) fed in pieces of any size, without keeping the
/// data: it only finds where the body ends. Chunk extensions and trailer fields are parsed
/// (by `httparse`) and ignored.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: ChunkState,
    /// A partial chunk-size line or trailer section.
    line: Vec<u8>,
    /// Chunk data seen so far.
    data: u64,
    /// Most chunk data accepted.
    max_data: u64,
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body of at most `max_data` data bytes.
    pub fn new(max_data: u64) -> Self {
        Self {
            state: ChunkState::Size,
            line: Vec::new(),
            data: 0,
            max_data,
        }
    }

    /// Whether the last chunk and the trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Chunk data bytes seen so far.
    #[cfg(test)]
    pub fn data_len(&self) -> u64 {
        self.data
    }

    /// Consumes a prefix of `input`; returns how many bytes belonged to the body (all of
    /// them unless the body ended inside `input`).
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, FramingError> {
        let mut used = 0;
        while used < input.len() && self.state != ChunkState::Done {
            let rest = input.get(used..).unwrap_or_default();
            used += match self.state {
                ChunkState::Size => self.feed_size_line(rest)?,
                ChunkState::Data(left) => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd(false)
                    } else {
                        ChunkState::Data(left)
                    };
                    take
                }
                ChunkState::DataEnd(cr_seen) => {
                    // RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
                    match (cr_seen, rest.first()) {
                        (false, Some(b'\r')) => self.state = ChunkState::DataEnd(true),
                        (_, Some(b'\n')) => self.state = ChunkState::Size,
                        _ => return Err(FramingError("chunk data not followed by CRLF")),
                    }
                    1
                }
                ChunkState::Trailers => self.feed_trailers(rest)?,
                ChunkState::Done => 0,
            };
        }
        Ok(used)
    }

    /// Buffers a chunk-size line; once whole, starts the chunk (or the trailers).
    fn feed_size_line(&mut self, rest: &[u8]) -> Result<usize, FramingError> {
        let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
            self.line.extend_from_slice(rest);
            if self.line.len() > MAX_CHUNK_LINE {
                return Err(FramingError("chunk-size line too long"));
            }
            return Ok(rest.len());
        };
        let take = newline + 1;
        self.line
            .extend_from_slice(rest.get(..take).unwrap_or_default());
        if self.line.len() > MAX_CHUNK_LINE {
            return Err(FramingError("chunk-size line too long"));
        }
        // RFC 9112 §7.1: chunk-size = 1*HEXDIG (httparse lets an empty one through).
        if !self.line.first().is_some_and(u8::is_ascii_hexdigit) {
            return Err(FramingError("bad chunk size"));
        }
        let size = match httparse::parse_chunk_size(&self.line) {
            Ok(httparse::Status::Complete((_, size))) => size,
            Ok(httparse::Status::Partial) | Err(_) => {
                return Err(FramingError("bad chunk size"));
            }
        };
        self.line.clear();
        if size == 0 {
            // RFC 9112 §7.1: last-chunk, then the trailer section, then CRLF.
            self.state = ChunkState::Trailers;
        } else {
            self.data = self
                .data
                .checked_add(size)
                .filter(|&d| d <= self.max_data)
                .ok_or(FramingError("chunked body too large"))?;
            self.state = ChunkState::Data(size);
        }
        Ok(take)
    }

    /// Buffers the trailer section until its empty line.
    fn feed_trailers(&mut self, rest: &[u8]) -> Result<usize, FramingError> {
        let before = self.line.len();
        self.line.extend_from_slice(rest);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::parse_headers(&self.line, &mut headers) {
            Ok(httparse::Status::Complete((len, _))) => {
                self.line.clear();
                self.state = ChunkState::Done;
                Ok(len.saturating_sub(before))
            }
            Ok(httparse::Status::Partial) if self.line.len() > MAX_TRAILERS => {
                Err(FramingError("trailer section too long"))
            }
            Ok(httparse::Status::Partial) => Ok(rest.len()),
            Err(_) => Err(FramingError("bad trailer field")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&'static str, &'static [u8])]) -> Vec<httparse::Header<'static>> {
        list.iter()
            .map(|(name, value)| httparse::Header { name, value })
            .collect()
    }

    #[test]
    fn framing_follows_rfc_9112_section_6_3() {
        let f = |h: &[(&'static str, &'static [u8])], minor, m| framing(&headers(h), minor, m);
        use BodyLength::*;
        use Message::*;
        let ok = |body, close| Ok(Framing { body, close });
        assert_eq!(
            f(&[("Content-Length", b"12")], 1, Response),
            ok(Fixed(12), false)
        );
        assert_eq!(
            f(&[("content-length", b"3, 3")], 1, Response),
            ok(Fixed(3), false)
        );
        assert_eq!(f(&[], 1, Request), ok(Fixed(0), false));
        assert_eq!(f(&[], 1, Response), ok(UntilClose, false));
        assert_eq!(
            f(&[("Transfer-Encoding", b"gzip, chunked")], 1, Response),
            ok(Chunked, false)
        );
        assert_eq!(
            f(&[("Transfer-Encoding", b"gzip")], 1, Response),
            ok(UntilClose, false)
        );
        assert_eq!(
            f(&[("Content-Length", b"0")], 0, Response),
            ok(Fixed(0), true)
        );
        assert_eq!(
            f(
                &[("Content-Length", b"0"), ("Connection", b"Keep-Alive")],
                0,
                Response
            ),
            ok(Fixed(0), false)
        );
        assert_eq!(
            f(
                &[("Connection", b"upgrade, close"), ("Content-Length", b"1")],
                1,
                Request
            ),
            ok(Fixed(1), true)
        );
        for bad in [
            &[("Content-Length", &b"x"[..])][..],
            &[("Content-Length", b"")],
            &[("Content-Length", b"-1")],
            &[("Content-Length", b"99999999999999999999999")],
            &[("Content-Length", b"1"), ("Content-Length", b"2")],
            &[("Content-Length", b"1, 2")],
            &[("Transfer-Encoding", b"chunked"), ("Content-Length", b"2")],
            &[("Transfer-Encoding", b"chunked, gzip")],
        ] {
            assert!(f(bad, 1, Response).is_err(), "{bad:?}");
        }
        assert!(f(&[("Transfer-Encoding", b"gzip")], 1, Request).is_err());
    }

    const BODY: &[u8] =
        b"5;ext=1\r\nhello\r\n0b\r\n, surge!!!!\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n";

    #[test]
    fn a_chunked_body_ends_where_it_should_at_every_split() {
        let mut whole = BODY.to_vec();
        whole.extend_from_slice(b"HTTP/1.1 next");
        for split in 0..=whole.len() {
            let mut d = ChunkedDecoder::new(1 << 20);
            let (a, b) = whole.split_at(split);
            let used_a = d.feed(a).expect("first part");
            let used_b = if d.is_done() {
                0
            } else {
                d.feed(b).expect("second part")
            };
            assert!(d.is_done(), "split at {split}");
            assert_eq!(used_a + used_b, BODY.len(), "split at {split}");
            assert_eq!(d.data_len(), 16);
        }
        let mut d = ChunkedDecoder::new(1 << 20);
        let used: usize = whole
            .iter()
            .map(|b| d.feed(std::slice::from_ref(b)).expect("byte"))
            .sum();
        assert_eq!(used, BODY.len());
        assert!(d.is_done());
    }

    #[test]
    fn malformed_chunks_are_errors_not_panics() {
        for bad in [
            &b"x\r\n"[..],
            b"-1\r\n",
            b"\r\n",
            b"ffffffffffffffffff\r\n",
            b"5\r\nhelloXX",
            b"5\r\nhello\rX",
            b"0\r\nno colon\r\n\r\n",
            b"100001\r\n",
        ] {
            let mut d = ChunkedDecoder::new(1 << 20);
            assert!(d.feed(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut d = ChunkedDecoder::new(1 << 20);
        assert!(d.feed(&[b'1'; MAX_CHUNK_LINE + 1]).is_err());
        let mut d = ChunkedDecoder::new(1 << 20);
        let mut long = b"0\r\nX: ".to_vec();
        long.resize(MAX_TRAILERS + 10, b'a');
        assert!(d.feed(&long).is_err());
    }
}
