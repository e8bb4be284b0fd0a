//! What `surge load` writes and how it recognises the end of a response: fixed-size
//! messages (rr, crr) or HTTP/1.1 (RFC 9112): heads parsed by `httparse`, bodies by
//! `Content-Length`, chunked transfer coding (with trailers) or the connection's end.

use crate::http::{BodyLength, ChunkedDecoder, FramingError, MAX_HEADERS, Message};

/// How responses are delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Every response is exactly this many bytes.
    Fixed(usize),
    /// HTTP/1.x responses; `head`: the requests are HEAD, so no response has a body.
    Http {
        /// The requests are HEAD.
        head: bool,
    },
}

/// What an HTTP request says besides its path and `Connection` (RFC 9112 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method token.
    pub method: String,
    /// Header fields in the order sent, `Host` first.
    pub headers: Vec<(String, String)>,
    /// The body, sent with its `Content-Length` (none when empty).
    pub body: Vec<u8>,
}

/// Header fields `--header` may not set: `surge load` frames the messages itself.
const FRAMING_FIELDS: [(&str, &str); 3] = [
    ("content-length", "it follows the body"),
    ("transfer-encoding", "bodies are sent with a Content-Length"),
    ("connection", "use --close"),
];

/// RFC 9110 §5.6.2: tchar, the characters of a token (method, field name).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl HttpRequest {
    /// Checks `--method` and `--header` values; `host` is the default `Host` (the URL's
    /// authority or the target address), `body` the request body.
    pub fn new(
        method: Option<&str>,
        host: String,
        headers: &[String],
        body: Vec<u8>,
    ) -> anyhow::Result<Self> {
        let method = match method {
            Some(m) => m.to_string(),
            None if body.is_empty() => "GET".to_string(),
            None => "POST".to_string(),
        };
        anyhow::ensure!(
            is_token(&method),
            "--method {method:?} is not an HTTP token"
        );
        let mut fields = vec![
            ("Host".to_string(), host),
            ("User-Agent".to_string(), "surge".to_string()),
        ];
        for header in headers {
            let Some((name, value)) = header.split_once(':') else {
                anyhow::bail!("--header {header:?}: expected 'Name: value'");
            };
            let value = value.trim_matches([' ', '\t']);
            anyhow::ensure!(is_token(name), "--header {header:?}: bad field name");
            // RFC 9110 §5.5: field values hold no CR, LF or NUL.
            anyhow::ensure!(
                !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0),
                "--header {header:?}: the value holds a line break or NUL"
            );
            if let Some((_, why)) = FRAMING_FIELDS
                .iter()
                .find(|(n, _)| name.eq_ignore_ascii_case(n))
            {
                anyhow::bail!("--header {name}: not settable ({why})");
            }
            let replaced = fields
                .iter_mut()
                .take(2)
                .find(|(n, _)| n.eq_ignore_ascii_case(name));
            match replaced {
                Some(field) => *field = (name.to_string(), value.to_string()),
                None => fields.push((name.to_string(), value.to_string())),
            }
        }
        Ok(Self {
            method,
            headers: fields,
            body,
        })
    }
}

/// The request bytes for one transaction: `size` bytes for fixed framing, else the HTTP
/// request for `path`.
pub fn build_request(
    framing: Framing,
    http: &HttpRequest,
    path: &str,
    size: usize,
    close: bool,
) -> Vec<u8> {
    match framing {
        Framing::Fixed(_) => vec![b'q'; size],
        Framing::Http { .. } => {
            let mut head = format!("{} {path} HTTP/1.1\r\n", http.method);
            for (name, value) in &http.headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            if !http.body.is_empty() {
                head.push_str(&format!("Content-Length: {}\r\n", http.body.len()));
            }
            if close {
                head.push_str("Connection: close\r\n");
            }
            head.push_str("\r\n");
            let mut bytes = head.into_bytes();
            bytes.extend_from_slice(&http.body);
            bytes
        }
    }
}

/// A response that finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completed {
    /// The HTTP status code (`None` for fixed framing).
    pub status: Option<u16>,
    /// The server will close the connection after this response.
    pub close: bool,
}

impl Completed {
    /// A fixed-size response, or an HTTP status of 2xx or 3xx.
    pub fn status_ok(&self) -> bool {
        self.status.is_none_or(|s| (200..400).contains(&s))
    }
}

/// The response did not follow the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl From<FramingError> for Malformed {
    fn from(e: FramingError) -> Self {
        Malformed(e.0)
    }
}

/// Longest HTTP header block accepted.
const MAX_HEADER: usize = 64 * 1024;
/// Largest chunked response body accepted.
const MAX_CHUNKED_BODY: u64 = 1 << 40;

/// Where an HTTP response is.
#[derive(Debug)]
enum HttpState {
    /// Collecting the header block.
    Headers(Vec<u8>),
    /// Reading a body of known length.
    Body { remaining: u64, done: Completed },
    /// Reading a chunked body.
    Chunked {
        decoder: ChunkedDecoder,
        done: Completed,
    },
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
                Framing::Http { .. } => 0,
            },
            http: HttpState::Headers(Vec::new()),
        }
    }

    /// Whether part of a response has arrived.
    pub fn in_progress(&self) -> bool {
        match (self.framing, &self.http) {
            (Framing::Fixed(size), _) => self.remaining != size,
            (Framing::Http { .. }, HttpState::Headers(buf)) => !buf.is_empty(),
            (Framing::Http { .. }, _) => true,
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
                            status: None,
                            close: false,
                        });
                        self.remaining = size;
                    }
                }
                Ok(())
            }
            Framing::Http { head } => {
                while !data.is_empty() {
                    data = self.feed_http(data, head, out)?;
                }
                Ok(())
            }
        }
    }

    /// Consumes a prefix of `data` for HTTP framing; returns what is left.
    fn feed_http<'a>(
        &mut self,
        data: &'a [u8],
        head_request: bool,
        out: &mut Vec<Completed>,
    ) -> Result<&'a [u8], Malformed> {
        match &mut self.http {
            HttpState::Headers(buf) => {
                let before = buf.len();
                buf.extend_from_slice(data);
                // httparse re-reads the block from its start: only try once a line ended.
                if !data.contains(&b'\n') {
                    return if buf.len() > MAX_HEADER {
                        Err(Malformed("response headers longer than 64 KiB"))
                    } else {
                        Ok(&[])
                    };
                }
                let Some((end, head)) = parse_head(buf, head_request)? else {
                    if buf.len() > MAX_HEADER {
                        return Err(Malformed("response headers longer than 64 KiB"));
                    }
                    return Ok(&[]);
                };
                let rest = data.get(end.saturating_sub(before)..).unwrap_or_default();
                self.http = match head {
                    // RFC 9110 §15.2: a 1xx is interim; the final response follows.
                    Head::Interim => HttpState::Headers(Vec::new()),
                    Head::Final { body, done } => match body {
                        BodyLength::Fixed(0) => {
                            out.push(done);
                            HttpState::Headers(Vec::new())
                        }
                        BodyLength::Fixed(n) => HttpState::Body { remaining: n, done },
                        BodyLength::Chunked => HttpState::Chunked {
                            decoder: ChunkedDecoder::new(MAX_CHUNKED_BODY),
                            done,
                        },
                        BodyLength::UntilClose => HttpState::UntilEof { done },
                    },
                };
                Ok(rest)
            }
            HttpState::Body { remaining, done } => {
                let take = usize::try_from(*remaining)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                *remaining -= take as u64;
                if *remaining == 0 {
                    out.push(*done);
                    self.http = HttpState::Headers(Vec::new());
                }
                Ok(data.get(take..).unwrap_or_default())
            }
            HttpState::Chunked { decoder, done } => {
                let used = decoder.feed(data)?;
                if decoder.is_done() {
                    out.push(*done);
                    self.http = HttpState::Headers(Vec::new());
                }
                Ok(data.get(used..).unwrap_or_default())
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

/// A parsed status line and headers.
enum Head {
    /// 1xx: another head follows.
    Interim,
    /// The final response head.
    Final { body: BodyLength, done: Completed },
}

/// Parses the head at the start of `block` (RFC 9112 §4 status line, §5 fields, §6.3 body
/// length): `Ok(None)` while incomplete, else its length and meaning.
fn parse_head(block: &[u8], head_request: bool) -> Result<Option<(usize, Head)>, Malformed> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let len = match response.parse(block) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Malformed("more than 64 header fields"));
        }
        Err(httparse::Error::Version) => {
            return Err(Malformed("status line is not HTTP/1.0 or HTTP/1.1"));
        }
        Err(httparse::Error::Status) => {
            return Err(Malformed("status code is not three digits"));
        }
        Err(_) => return Err(Malformed("bad status line or header field")),
    };
    let status = response.code.unwrap_or_default();
    let minor = response.version.unwrap_or_default();
    if status == 101 {
        return Err(Malformed("101 Switching Protocols (not HTTP/1.1 any more)"));
    }
    if (100..200).contains(&status) {
        return Ok(Some((len, Head::Interim)));
    }
    let framing = crate::http::framing(response.headers, minor, Message::Response)?;
    // RFC 9112 §6.3 (1): responses to HEAD, 204 and 304 have no body, whatever they say.
    let body = if head_request || status == 204 || status == 304 {
        BodyLength::Fixed(0)
    } else {
        framing.body
    };
    let done = Completed {
        status: Some(status),
        close: framing.close || body == BodyLength::UntilClose,
    };
    Ok(Some((len, Head::Final { body, done })))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTTP: Framing = Framing::Http { head: false };

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

    fn done(status: u16, close: bool) -> Completed {
        Completed {
            status: Some(status),
            close,
        }
    }

    #[test]
    fn fixed_responses_split_across_reads() {
        let mut p = ResponseParser::new(Framing::Fixed(4));
        let out = feed_all(&mut p, &[b"ab", b"cdef", b"ghijk"]).expect("parse");
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(Completed::status_ok));
        assert!(p.in_progress());
    }

    #[test]
    fn http_keep_alive_pipelined_and_byte_by_byte() {
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 404 No\r\ncontent-length: 0\r\n\r\n";
        let mut p = ResponseParser::new(HTTP);
        let out = feed_all(&mut p, &[two]).expect("parse");
        assert_eq!(out, vec![done(200, false), done(404, false)]);
        assert!(!out[1].status_ok());
        let mut p = ResponseParser::new(HTTP);
        let chunks: Vec<&[u8]> = two.chunks(1).collect();
        assert_eq!(feed_all(&mut p, &chunks).expect("parse").len(), 2);
        assert!(!p.in_progress());
    }

    #[test]
    fn http10_without_length_ends_at_eof() {
        let mut p = ResponseParser::new(HTTP);
        let out = feed_all(
            &mut p,
            &[b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody", b"more"],
        )
        .expect("parse");
        assert!(out.is_empty());
        assert_eq!(p.finish_at_eof(), Some(done(200, true)));
    }

    /// A chunked response with an extension and trailers, then a Content-Length one.
    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;a=b\r\nwiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\nHTTP/1.1 503 Busy\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno";

    #[test]
    fn chunked_responses_split_across_reads_at_every_byte_boundary() {
        for a in 0..=CHUNKED.len() {
            // Two cuts: the first at every boundary, the second a few bytes further.
            for b in [a, (a + 1).min(CHUNKED.len()), (a + 7).min(CHUNKED.len())] {
                let mut p = ResponseParser::new(HTTP);
                let pieces = [&CHUNKED[..a], &CHUNKED[a..b], &CHUNKED[b..]];
                let out = feed_all(&mut p, &pieces).expect("parse");
                assert_eq!(out, vec![done(200, false), done(503, true)], "cuts {a} {b}");
                assert!(!p.in_progress(), "cuts {a} {b}");
            }
        }
        let mut p = ResponseParser::new(HTTP);
        let bytes: Vec<&[u8]> = CHUNKED.chunks(1).collect();
        assert_eq!(feed_all(&mut p, &bytes).expect("parse").len(), 2);
    }

    #[test]
    fn malformed_chunk_sizes_are_malformed_not_panics() {
        for size in [
            "x",
            "-1",
            "",
            " ",
            "1 2",
            "0x5",
            "fffffffffffffffffff",
            "5\n\n",
        ] {
            let text = format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\nhello\r\n0\r\n\r\n"
            );
            let bytes = text.as_bytes();
            // Whole, and split at every boundary: the same verdict, never a panic.
            for cut in 0..=bytes.len() {
                let mut p = ResponseParser::new(HTTP);
                let result = feed_all(&mut p, &[&bytes[..cut], &bytes[cut..]]);
                assert!(result.is_err(), "size {size:?} cut at {cut}: {result:?}");
            }
        }
    }

    #[test]
    fn interim_head_and_bodiless_statuses() {
        let mut p = ResponseParser::new(HTTP);
        let out = feed_all(
            &mut p,
            &[b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Same\r\nContent-Length: 9\r\n\r\n"],
        )
        .expect("parse");
        assert_eq!(out, vec![done(204, false), done(304, false)]);
        // The answer to HEAD announces a length but carries no body.
        let mut p = ResponseParser::new(Framing::Http { head: true });
        let out = feed_all(
            &mut p,
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"],
        )
        .expect("parse");
        assert_eq!(out, vec![done(200, false), done(200, false)]);
    }

    #[test]
    fn malformed_responses_are_errors() {
        for bad in [
            &b"SMTP 220 hi\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        ] {
            let mut p = ResponseParser::new(HTTP);
            assert!(feed_all(&mut p, &[bad]).is_err(), "{bad:?}");
        }
        let mut p = ResponseParser::new(HTTP);
        let long = vec![b'a'; MAX_HEADER + 10];
        assert!(feed_all(&mut p, &[b"HTTP/1.1 200 OK\r\nX: ", &long]).is_err());
        let mut p = ResponseParser::new(HTTP);
        let many = "X: y\r\n".repeat(MAX_HEADERS + 1);
        let text = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert!(feed_all(&mut p, &[text.as_bytes()]).is_err());
    }

    fn request(method: Option<&str>, headers: &[&str], body: &[u8]) -> anyhow::Result<HttpRequest> {
        let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        HttpRequest::new(method, "h:1".to_string(), &headers, body.to_vec())
    }

    #[test]
    fn requests_have_the_asked_shape() {
        let get = request(None, &[], b"").expect("request");
        assert_eq!(
            build_request(Framing::Fixed(1), &get, "/", 5, false),
            b"qqqqq"
        );
        assert_eq!(
            build_request(HTTP, &get, "/x", 0, true),
            b"GET /x HTTP/1.1\r\nHost: h:1\r\nUser-Agent: surge\r\nConnection: close\r\n\r\n"
        );
        let post = request(None, &[], b"qqq").expect("request");
        let bytes = build_request(HTTP, &post, "/", 3, false);
        assert!(bytes.starts_with(b"POST / HTTP/1.1\r\n"));
        assert!(bytes.ends_with(b"Content-Length: 3\r\n\r\nqqq"));
        let put = request(
            Some("PUT"),
            &["host: b.lab", "X-Trace:  abc ", "Accept: */*"],
            b"{}",
        )
        .expect("request");
        assert_eq!(
            String::from_utf8(build_request(HTTP, &put, "/k", 2, false)).expect("utf8"),
            "PUT /k HTTP/1.1\r\nhost: b.lab\r\nUser-Agent: surge\r\nX-Trace: abc\r\nAccept: */*\r\nContent-Length: 2\r\n\r\n{}"
        );
        // What the server would make of it: the request parses, one whole message.
        let bytes = build_request(HTTP, &put, "/k", 2, false);
        assert_eq!(
            crate::serve::http::parse_request(&bytes).map(|r| r.map(|r| r.len)),
            Ok(Some(bytes.len()))
        );
    }

    #[test]
    fn bad_methods_and_headers_are_refused() {
        for (method, header) in [
            (Some("G T"), ""),
            (Some(""), ""),
            (None, "no colon"),
            (None, "Bad Name: x"),
            (None, "X: a\r\nInjected: 1"),
            (None, "Content-Length: 5"),
            (None, "transfer-encoding: chunked"),
            (None, "Connection: close"),
        ] {
            let headers: &[&str] = if header.is_empty() { &[] } else { &[header] };
            assert!(
                request(method, headers, b"").is_err(),
                "{method:?} {header:?}"
            );
        }
    }
}
