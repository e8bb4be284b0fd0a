//! The HTTP/1.1 request side of `surge serve --mode http` (RFC 9112): find a complete
//! request in the input, learn its length and whether the connection stays open.

use crate::http::{BodyLength, ChunkedDecoder, MAX_HEADERS, Message, framing};

/// Longest request header block accepted.
pub const MAX_HEADER: usize = 16 * 1024;

/// A complete request at the front of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Bytes of the request (headers and body).
    pub len: usize,
    /// Close the connection after answering.
    pub close: bool,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadRequest(pub &'static str);

/// Largest request body accepted.
const MAX_BODY: u64 = 64 << 20;

/// Looks for one complete request at the start of `input`: `Ok(None)` when more bytes are
/// needed. The head is parsed by `httparse` (RFC 9112 §3 request line, §5 fields); the body
/// is delimited by `Content-Length` or the chunked coding (§6.3, §7.1).
pub fn parse_request(input: &[u8]) -> Result<Option<Request>, BadRequest> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let head_len = match request.parse(input) {
        Ok(httparse::Status::Complete(len)) if len > MAX_HEADER => {
            return Err(BadRequest("request headers longer than 16 KiB"));
        }
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if input.len() > MAX_HEADER => {
            return Err(BadRequest("request headers longer than 16 KiB"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(BadRequest("more than 64 header fields"));
        }
        Err(httparse::Error::Version) => {
            return Err(BadRequest("version is not HTTP/1.0 or HTTP/1.1"));
        }
        Err(_) => return Err(BadRequest("bad request line or header field")),
    };
    let minor = request.version.unwrap_or_default();
    let framing = framing(request.headers, minor, Message::Request).map_err(|e| BadRequest(e.0))?;
    let body = input.get(head_len..).unwrap_or_default();
    let body_len = match framing.body {
        BodyLength::Fixed(n) if n > MAX_BODY => {
            return Err(BadRequest("request body larger than 64 MiB"));
        }
        BodyLength::Fixed(n) => n as usize,
        BodyLength::Chunked => {
            // Stateless: the chunk headers are read again from the start on every call;
            // the chunk data is skipped by length, so this is cheap.
            let mut decoder = ChunkedDecoder::new(MAX_BODY);
            let used = decoder.feed(body).map_err(|e| BadRequest(e.0))?;
            if !decoder.is_done() {
                return Ok(None);
            }
            used
        }
        // `framing` never says this of a request.
        BodyLength::UntilClose => return Err(BadRequest("request body without a length")),
    };
    let len = head_len + body_len;
    if input.len() < len {
        return Ok(None);
    }
    Ok(Some(Request {
        len,
        close: framing.close,
    }))
}

/// The response header for a body of `size` bytes.
pub fn response_head(size: usize, close: bool) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nServer: surge\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n{}\r\n",
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes()
}

/// The response to a request that did not parse.
pub const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nServer: surge\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_close_and_bodies() {
        let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET";
        assert_eq!(
            parse_request(get),
            Ok(Some(Request {
                len: 27,
                close: false
            }))
        );
        assert_eq!(parse_request(&get[..20]), Ok(None));
        let old = b"GET / HTTP/1.0\r\n\r\n";
        assert_eq!(
            parse_request(old),
            Ok(Some(Request {
                len: 18,
                close: true
            }))
        );
        let post = b"POST /p HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nab";
        assert_eq!(parse_request(post), Ok(None));
        let mut full = post.to_vec();
        full.push(b'c');
        assert_eq!(
            parse_request(&full),
            Ok(Some(Request {
                len: full.len(),
                close: true
            }))
        );
    }

    #[test]
    fn bad_requests_are_refused() {
        for bad in [
            &b"GET /\r\n\r\n"[..],
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/2\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nbroken\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 67108865\r\n\r\n",
        ] {
            assert!(parse_request(bad).is_err(), "{bad:?}");
        }
        assert!(parse_request(&vec![b'a'; MAX_HEADER + 1]).is_err());
    }

    #[test]
    fn chunked_request_bodies_are_read_to_their_end() {
        let post = b"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n";
        let mut input = post.to_vec();
        input.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        for cut in 0..post.len() {
            assert_eq!(parse_request(&post[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            parse_request(&input),
            Ok(Some(Request {
                len: post.len(),
                close: false
            }))
        );
    }

    #[test]
    fn response_head_has_the_length() {
        let head = String::from_utf8(response_head(42, true)).expect("utf8");
        assert!(head.contains("Content-Length: 42\r\n"));
        assert!(head.ends_with("Connection: close\r\n\r\n"));
    }
}
