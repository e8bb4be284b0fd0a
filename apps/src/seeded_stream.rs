//! The checked byte stream of `surge serve --mode stream` / `surge load --mode stream
//! --verify-bytes N`: the sender produces `N` pseudo-random bytes from a seed; the receiver
//! computes the SHA-256 of what arrived and of what the seed says should have, and
//! compares them at the end of the stream.
//!
//! On the wire, the load opens with a marker (`u`: it sends, `d`: the server sends) and a
//! header of the seed and the length (big-endian `u64`s); then the stream, then each side's
//! FIN.

use sha2::{Digest, Sha256};

/// Marker: the client sends the checked stream, the server receives and checks it.
pub const MARKER_UP: u8 = b'u';
/// Marker: the server sends the checked stream, the client receives and checks it.
pub const MARKER_DOWN: u8 = b'd';
/// Bytes after the marker: seed and length.
pub const HEADER_LEN: usize = 16;

/// The header after the marker.
pub fn header(seed: u64, len: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&seed.to_be_bytes());
    h[8..].copy_from_slice(&len.to_be_bytes());
    h
}

/// Seed and length from a header (`None` if `bytes` is short).
pub fn parse_header(bytes: &[u8]) -> Option<(u64, u64)> {
    let seed = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let len = u64::from_be_bytes(bytes.get(8..HEADER_LEN)?.try_into().ok()?);
    Some((seed, len))
}

/// SplitMix64 of `x`: each 8-byte word of the stream is a function of the seed and its
/// index, so any chunking of the stream gives the same bytes.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seeded stream: `len` bytes, produced from any position.
#[derive(Debug, Clone)]
pub struct SeededStream {
    seed: u64,
    len: u64,
    pos: u64,
}

impl SeededStream {
    /// The stream of `len` bytes for `seed`, at its start.
    pub fn new(seed: u64, len: u64) -> Self {
        Self { seed, len, pos: 0 }
    }

    /// Bytes not produced yet.
    pub fn remaining(&self) -> u64 {
        self.len - self.pos
    }

    /// Byte `i` of the stream.
    fn byte(&self, i: u64) -> u8 {
        let word = splitmix(self.seed ^ splitmix(i / 8));
        word.to_le_bytes()[(i % 8) as usize]
    }

    /// Fills `buf` with the next bytes (fewer at the end); returns how many.
    pub fn fill(&self, buf: &mut [u8]) -> usize {
        let n = usize::try_from(self.remaining())
            .unwrap_or(usize::MAX)
            .min(buf.len());
        for (k, b) in buf.iter_mut().take(n).enumerate() {
            *b = self.byte(self.pos + k as u64);
        }
        n
    }

    /// Moves on by `n` bytes (what a send took).
    pub fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n as u64).min(self.len);
    }
}

/// What a receiver concluded at the end of a checked stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The SHA-256 of what arrived equals that of the seeded stream.
    Match,
    /// Different bytes, or a different length.
    Mismatch,
}

/// The receiver's side: SHA-256 of what arrived and of what should have.
#[derive(Debug, Clone)]
pub struct StreamCheck {
    expected: SeededStream,
    received: u64,
    arrived: Sha256,
    wanted: Sha256,
    scratch: Vec<u8>,
}

impl StreamCheck {
    /// Checks the stream of `len` bytes for `seed`.
    pub fn new(seed: u64, len: u64) -> Self {
        Self {
            expected: SeededStream::new(seed, len),
            received: 0,
            arrived: Sha256::new(),
            wanted: Sha256::new(),
            scratch: Vec::new(),
        }
    }

    /// Hashes the next received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.received += data.len() as u64;
        self.arrived.update(data);
        self.scratch.resize(data.len(), 0);
        let n = self.expected.fill(&mut self.scratch);
        self.expected.advance(n);
        self.wanted.update(&self.scratch[..n]);
    }

    /// At the end of the stream: do the two digests (and so the lengths) agree?
    pub fn finish(mut self) -> Verdict {
        // Whatever did not arrive is still owed to the expected digest.
        let mut rest = vec![0u8; 64 * 1024];
        while self.expected.remaining() > 0 {
            let n = self.expected.fill(&mut rest);
            self.expected.advance(n);
            self.wanted.update(&rest[..n]);
        }
        if self.arrived.finalize() == self.wanted.finalize() {
            Verdict::Match
        } else {
            Verdict::Mismatch
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn produce(seed: u64, len: u64, chunk: usize) -> Vec<u8> {
        let mut s = SeededStream::new(seed, len);
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        while s.remaining() > 0 {
            let n = s.fill(&mut buf);
            out.extend_from_slice(&buf[..n]);
            s.advance(n);
        }
        out
    }

    #[test]
    fn the_stream_is_the_same_in_any_chunks_and_differs_by_seed() {
        let a = produce(7, 100_003, 4096);
        assert_eq!(a.len(), 100_003);
        assert_eq!(a, produce(7, 100_003, 13));
        assert_ne!(a, produce(8, 100_003, 4096));
        // Not a constant or a short cycle: every byte value shows up.
        let mut seen = [false; 256];
        for b in &a {
            seen[usize::from(*b)] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(parse_header(&header(7, 100_003)), Some((7, 100_003)));
        assert_eq!(parse_header(&header(7, 1)[..15]), None);
    }

    #[test]
    fn the_check_matches_the_stream_and_nothing_else() {
        let data = produce(3, 50_000, 1000);
        let check = |bytes: &[u8]| {
            let mut c = StreamCheck::new(3, 50_000);
            for part in bytes.chunks(777) {
                c.feed(part);
            }
            c.finish()
        };
        assert_eq!(check(&data), Verdict::Match);
        let mut flipped = data.clone();
        flipped[31_337] ^= 0x01;
        assert_eq!(check(&flipped), Verdict::Mismatch);
        assert_eq!(check(&data[..49_999]), Verdict::Mismatch, "short");
        let mut long = data.clone();
        long.push(0);
        assert_eq!(check(&long), Verdict::Mismatch, "long");
    }
}
