//! The HTTP/1.1 request side of `surge serve --mode http` (RFC 9112): find a complete
//! request in the input, learn its length and whether the connection stays open.

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

/// Looks for one complete request at the start of `input`: `Ok(None)` when more bytes are needed.
pub fn parse_request(input: &[u8]) -> Result<Option<Request>, BadRequest> {
    let Some(head_len) = input
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
    else {
        if input.len() > MAX_HEADER {
            return Err(BadRequest("request headers longer than 16 KiB"));
        }
        return Ok(None);
    };
    if head_len > MAX_HEADER {
        return Err(BadRequest("request headers longer than 16 KiB"));
    }
    let head = std::str::from_utf8(input.get(..head_len).unwrap_or_default())
        .map_err(|_| BadRequest("headers are not UTF-8"))?;
    let mut lines = head.split("\r\n");
    // RFC 9112 §3: request-line = method SP request-target SP HTTP-version
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BadRequest("request line is not METHOD TARGET VERSION"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) || target.is_empty() {
        return Err(BadRequest("bad method or target"));
    }
    let mut close = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(BadRequest("version is not HTTP/1.0 or HTTP/1.1")),
    };
    let mut body = 0usize;
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or(BadRequest("header line without a colon"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            body = value
                .parse()
                .map_err(|_| BadRequest("Content-Length is not a number"))?;
            if body > 64 << 20 {
                return Err(BadRequest("request body larger than 64 MiB"));
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(BadRequest("Transfer-Encoding is not supported"));
        } else if name.eq_ignore_ascii_case("connection") {
            // RFC 9112 §9.3: "close" ends the connection; HTTP/1.0 needs "keep-alive" to stay.
            if value.eq_ignore_ascii_case("close") {
                close = true;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                close = false;
            }
        }
    }
    let len = head_len + body;
    if input.len() < len {
        return Ok(None);
    }
    Ok(Some(Request { len, close }))
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
            b"get / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/2\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nbroken\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
        ] {
            assert!(parse_request(bad).is_err(), "{bad:?}");
        }
        assert!(parse_request(&vec![b'a'; MAX_HEADER + 1]).is_err());
    }

    #[test]
    fn response_head_has_the_length() {
        let head = String::from_utf8(response_head(42, true)).expect("utf8");
        assert!(head.contains("Content-Length: 42\r\n"));
        assert!(head.ends_with("Connection: close\r\n\r\n"));
    }
}
