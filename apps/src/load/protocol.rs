//! What `surge load` writes and how it recognises the end of a response: fixed-size
//! messages (rr, crr) or HTTP/1.1 (RFC 9112) with `Content-Length`.

/// How responses are delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Every response is exactly this many bytes.
    Fixed(usize),
    /// HTTP/1.x responses.
    Http,
}

/// The request bytes for one transaction.
pub fn build_request(
    framing: Framing,
    host: &str,
    path: &str,
    body: usize,
    close: bool,
) -> Vec<u8> {
    match framing {
        Framing::Fixed(_) => vec![b'q'; body],
        Framing::Http => {
            let method = if body > 0 { "POST" } else { "GET" };
            let mut head =
                format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: surge\r\n");
            if body > 0 {
                head.push_str(&format!("Content-Length: {body}\r\n"));
            }
            if close {
                head.push_str("Connection: close\r\n");
            }
            head.push_str("\r\n");
            let mut bytes = head.into_bytes();
            bytes.resize(bytes.len() + body, b'q');
            bytes
        }
    }
}

/// A response that finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completed {
    /// HTTP status 2xx or 3xx (always true for fixed framing).
    pub status_ok: bool,
    /// The server will close the connection after this response.
    pub close: bool,
}

/// The response did not follow the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// Longest HTTP header block accepted.
const MAX_HEADER: usize = 64 * 1024;

/// Where an HTTP response is.
#[derive(Debug)]
enum HttpState {
    /// Collecting the header block.
    Headers(Vec<u8>),
    /// Reading a body of known length.
    Body { remaining: usize, done: Completed },
    /// Reading a body that ends when the connection does.
    UntilEof { done: Completed },
}

/// Splits a byte stream into responses.
#[derive(Debug)]
pub struct ResponseParser {
    framing: Framing,
    /// Fixed framing: bytes of the current response still expected.
    remaining: usize,
    http: HttpState,
}

impl ResponseParser {
    /// A parser at the start of a response.
    pub fn new(framing: Framing) -> Self {
        Self {
            framing,
            remaining: match framing {
                Framing::Fixed(size) => size,
                Framing::Http => 0,
            },
            http: HttpState::Headers(Vec::new()),
        }
    }

    /// Whether part of a response has arrived.
    pub fn in_progress(&self) -> bool {
        match (self.framing, &self.http) {
            (Framing::Fixed(size), _) => self.remaining != size,
            (Framing::Http, HttpState::Headers(buf)) => !buf.is_empty(),
            (Framing::Http, _) => true,
        }
    }

    /// Consumes `data`, appending every response it completes to `out`.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<Completed>) -> Result<(), Malformed> {
        match self.framing {
            Framing::Fixed(size) => {
                if size == 0 {
                    return Err(Malformed("data for a zero-size response"));
                }
                while !data.is_empty() {
                    let take = self.remaining.min(data.len());
                    self.remaining -= take;
                    data = data.get(take..).unwrap_or_default();
                    if self.remaining == 0 {
                        out.push(Completed {
                            status_ok: true,
                            close: false,
                        });
                        self.remaining = size;
                    }
                }
                Ok(())
            }
            Framing::Http => {
                while !data.is_empty() {
                    data = self.feed_http(data, out)?;
                }
                Ok(())
            }
        }
    }

    /// Consumes a prefix of `data` for HTTP framing; returns what is left.
    fn feed_http<'a>(
        &mut self,
        data: &'a [u8],
        out: &mut Vec<Completed>,
    ) -> Result<&'a [u8], Malformed> {
        match &mut self.http {
            HttpState::Headers(buf) => {
                let searched = buf.len().saturating_sub(3);
                buf.extend_from_slice(data);
                let Some(end) = find(buf.get(searched..).unwrap_or_default(), b"\r\n\r\n")
                    .map(|i| searched + i + 4)
                else {
                    if buf.len() > MAX_HEADER {
                        return Err(Malformed("response headers longer than 64 KiB"));
                    }
                    return Ok(&[]);
                };
                let consumed_from_data = end - (buf.len() - data.len());
                let head = parse_head(buf.get(..end).unwrap_or_default())?;
                let rest = data.get(consumed_from_data..).unwrap_or_default();
                self.http = match head.body {
                    Body::Length(0) => {
                        out.push(head.done);
                        HttpState::Headers(Vec::new())
                    }
                    Body::Length(n) => HttpState::Body {
                        remaining: n,
                        done: head.done,
                    },
                    Body::UntilEof => HttpState::UntilEof { done: head.done },
                };
                Ok(rest)
            }
            HttpState::Body { remaining, done } => {
                let take = (*remaining).min(data.len());
                *remaining -= take;
                if *remaining == 0 {
                    out.push(*done);
                    self.http = HttpState::Headers(Vec::new());
                }
                Ok(data.get(take..).unwrap_or_default())
            }
            HttpState::UntilEof { .. } => Ok(&[]),
        }
    }

    /// The connection ended: completes a close-delimited body, if one was being read.
    pub fn finish_at_eof(&mut self) -> Option<Completed> {
        match std::mem::replace(&mut self.http, HttpState::Headers(Vec::new())) {
            HttpState::UntilEof { done } => Some(done),
            _ => None,
        }
    }
}

/// How an HTTP body is delimited.
enum Body {
    Length(usize),
    UntilEof,
}

/// A parsed status line and headers.
struct Head {
    body: Body,
    done: Completed,
}

/// Parses a complete header block (ending in CRLF CRLF).
fn parse_head(block: &[u8]) -> Result<Head, Malformed> {
    let text = std::str::from_utf8(block).map_err(|_| Malformed("headers are not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(Malformed("status line is not HTTP/1.0 or HTTP/1.1")),
    };
    let status: u16 = parts
        .next()
        .filter(|s| s.len() == 3)
        .and_then(|s| s.parse().ok())
        .ok_or(Malformed("status code is not three digits"))?;
    let mut length = None;
    let mut close = http10;
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or(Malformed("header line without a colon"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .parse()
                .map_err(|_| Malformed("Content-Length is not a number"))?;
            if length.is_some_and(|old| old != n) {
                return Err(Malformed("conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Malformed("Transfer-Encoding is not supported"));
        } else if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                close = true;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                close = false;
            }
        }
    }
    let done = Completed {
        status_ok: (200..400).contains(&status),
        close,
    };
    // RFC 9112 §6.3: 1xx, 204 and 304 have no body; otherwise Content-Length, else until close.
    let body = if (100..200).contains(&status) || status == 204 || status == 304 {
        Body::Length(0)
    } else if let Some(n) = length {
        Body::Length(n)
    } else {
        Body::UntilEof
    };
    Ok(Head { body, done })
}

/// The first index of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(
        parser: &mut ResponseParser,
        chunks: &[&[u8]],
    ) -> Result<Vec<Completed>, Malformed> {
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn fixed_responses_split_across_reads() {
        let mut p = ResponseParser::new(Framing::Fixed(4));
        let out = feed_all(&mut p, &[b"ab", b"cdef", b"ghijk"]).expect("parse");
        assert_eq!(out.len(), 2);
        assert!(p.in_progress());
    }

    #[test]
    fn http_keep_alive_pipelined_and_byte_by_byte() {
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 404 No\r\ncontent-length: 0\r\n\r\n";
        let mut p = ResponseParser::new(Framing::Http);
        let out = feed_all(&mut p, &[two]).expect("parse");
        assert_eq!(
            out,
            vec![
                Completed {
                    status_ok: true,
                    close: false
                },
                Completed {
                    status_ok: false,
                    close: false
                }
            ]
        );
        let mut p = ResponseParser::new(Framing::Http);
        let chunks: Vec<&[u8]> = two.chunks(1).collect();
        assert_eq!(feed_all(&mut p, &chunks).expect("parse").len(), 2);
        assert!(!p.in_progress());
    }

    #[test]
    fn http10_without_length_ends_at_eof() {
        let mut p = ResponseParser::new(Framing::Http);
        let out = feed_all(
            &mut p,
            &[b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody", b"more"],
        )
        .expect("parse");
        assert!(out.is_empty());
        assert_eq!(
            p.finish_at_eof(),
            Some(Completed {
                status_ok: true,
                close: true
            })
        );
    }

    #[test]
    fn malformed_responses_are_errors() {
        for bad in [
            &b"SMTP 220 hi\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            let mut p = ResponseParser::new(Framing::Http);
            assert!(feed_all(&mut p, &[bad]).is_err(), "{bad:?}");
        }
        let mut p = ResponseParser::new(Framing::Http);
        let long = vec![b'a'; MAX_HEADER + 10];
        assert!(feed_all(&mut p, &[b"HTTP/1.1 200 OK\r\nX: ", &long]).is_err());
    }

    #[test]
    fn requests_have_the_asked_shape() {
        assert_eq!(
            build_request(Framing::Fixed(1), "h", "/", 5, false),
            b"qqqqq"
        );
        let get = build_request(Framing::Http, "h:1", "/x", 0, true);
        assert_eq!(
            get,
            b"GET /x HTTP/1.1\r\nHost: h:1\r\nUser-Agent: surge\r\nConnection: close\r\n\r\n"
        );
        let post = build_request(Framing::Http, "h", "/", 3, false);
        assert!(post.ends_with(b"Content-Length: 3\r\n\r\nqqq"));
    }
}
