//! The server as wrk, oha and ab take it: `http://host[:port]/path`, host names resolved
//! through the system resolver (`/etc/hosts` first: a lab namespace's own under
//! `ip netns exec`). And the request body read from `--body-file`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

use anyhow::{Context, bail, ensure};

/// Largest request body accepted from a file.
const MAX_BODY: u64 = 64 << 20;

/// A parsed `http://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `host[:port]` as written (the `Host` header).
    pub authority: String,
    /// The host name or address (brackets removed from an IPv6 literal).
    pub host: String,
    /// The port (80 when the URL has none).
    pub port: u16,
    /// Path and query (`/` when the URL has none); the fragment is dropped.
    pub path: String,
}

impl Url {
    /// The first address of the host (IPv4 first: surge's stack speaks IPv4).
    pub fn resolve(&self) -> anyhow::Result<SocketAddr> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {}", self.host))?
            .collect();
        addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .copied()
            .with_context(|| format!("{} has no address", self.host))
    }
}

/// Parses `http://host[:port][/path][?query][#fragment]` (RFC 9110 §4.2.1).
pub fn parse_url(text: &str) -> anyhow::Result<Url> {
    let Some((scheme, rest)) = text.split_once("://") else {
        bail!("{text:?} is not a URL (expected http://host:port/path)");
    };
    if scheme.eq_ignore_ascii_case("https") {
        bail!("https is not supported (surge load speaks plain HTTP/1.1)");
    }
    ensure!(
        scheme.eq_ignore_ascii_case("http"),
        "{text:?}: the scheme must be http"
    );
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    ensure!(
        !authority.contains('@'),
        "{text:?}: user information in the URL is not supported"
    );
    ensure!(!authority.is_empty(), "{text:?}: no host");
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .with_context(|| format!("{text:?}: unclosed [ in the host"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    ensure!(!host.is_empty(), "{text:?}: no host");
    let port = match port {
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .with_context(|| format!("{text:?}: the port must be 1-65535"))?,
    };
    ensure!(
        path.bytes().all(|b| b.is_ascii_graphic()),
        "{text:?}: the path must contain no spaces or control characters"
    );
    Ok(Url {
        authority: authority.to_string(),
        host: host.to_string(),
        port,
        path,
    })
}

/// Reads `--body-file` (at most 64 MiB).
pub fn read_body(path: &Path) -> anyhow::Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("--body-file {}", path.display()))?
        .len();
    ensure!(
        len <= MAX_BODY,
        "--body-file {}: {len} bytes, at most 64 MiB",
        path.display()
    );
    std::fs::read(path).with_context(|| format!("reading --body-file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(authority: &str, host: &str, port: u16, path: &str) -> Url {
        Url {
            authority: authority.into(),
            host: host.into(),
            port,
            path: path.into(),
        }
    }

    #[test]
    fn urls_as_wrk_takes_them() {
        let ok = |t: &str| parse_url(t).expect(t);
        assert_eq!(
            ok("http://b.lab:8080/x/y?z=1#frag"),
            url("b.lab:8080", "b.lab", 8080, "/x/y?z=1")
        );
        assert_eq!(
            ok("http://198.18.0.2"),
            url("198.18.0.2", "198.18.0.2", 80, "/")
        );
        assert_eq!(ok("HTTP://h?q"), url("h", "h", 80, "/?q"));
        assert_eq!(ok("http://[::1]:81/"), url("[::1]:81", "::1", 81, "/"));
        for bad in [
            "b.lab:80/",
            "https://b.lab/",
            "ftp://b.lab/",
            "http://",
            "http://:80/",
            "http://h:0/",
            "http://h:99999/",
            "http://h:x/",
            "http://u:p@h/",
            "http://[::1/",
            "http://h/a b",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn literal_and_local_names_resolve() {
        assert_eq!(
            ok_resolve("http://127.0.0.1:81/"),
            "127.0.0.1:81".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(ok_resolve("http://localhost:82/").port(), 82);
    }

    fn ok_resolve(t: &str) -> SocketAddr {
        parse_url(t).expect(t).resolve().expect(t)
    }
}
