//! `surge load --mode stream --verify-bytes N`: one connection's checked seeded stream,
//! sent (up) or received and SHA-256-checked (down), and how it ended.

use super::config::Direction;
use super::counts::Counts;
use crate::seeded_stream::{MARKER_DOWN, MARKER_UP, SeededStream, StreamCheck, Verdict, header};

/// The checked stream of one connection.
#[derive(Debug, Clone)]
pub enum VerifiedStream {
    /// We send it; the server checks it.
    Up(SeededStream),
    /// The server sends it; we check it.
    Down(Box<StreamCheck>),
}

impl VerifiedStream {
    /// Starts one: queues the marker and header on `out` (the connection's first bytes).
    pub fn open(direction: Direction, seed: u64, len: u64, out: &mut Vec<u8>) -> Self {
        let (marker, stream) = match direction {
            Direction::Up => (MARKER_UP, Self::Up(SeededStream::new(seed, len))),
            Direction::Down => (
                MARKER_DOWN,
                Self::Down(Box::new(StreamCheck::new(seed, len))),
            ),
        };
        out.push(marker);
        out.extend_from_slice(&header(seed, len));
        stream
    }

    /// Up: fills `buf` with the next bytes to send; `None` once all were sent (and for
    /// down, which sends nothing).
    pub fn fill(&self, buf: &mut [u8]) -> Option<usize> {
        match self {
            Self::Up(s) if s.remaining() > 0 => Some(s.fill(buf)),
            _ => None,
        }
    }

    /// Up: `n` bytes were taken by the socket.
    pub fn sent(&mut self, n: usize) {
        if let Self::Up(s) = self {
            s.advance(n);
        }
    }

    /// Down: bytes that arrived.
    pub fn received(&mut self, data: &[u8]) {
        if let Self::Down(c) = self {
            c.feed(data);
        }
    }

    /// The server's FIN arrived (`shut`: ours had been sent before): counts the verdict
    /// (down) and whether the stream closed cleanly.
    pub fn finish(self, shut: bool, counts: &mut Counts) {
        match self {
            Self::Up(s) => {
                // Up: the server's FIN must answer ours, after all was sent.
                if shut && s.remaining() == 0 {
                    counts.streams_closed_cleanly += 1;
                }
            }
            Self::Down(c) => {
                match c.finish() {
                    Verdict::Match => counts.streams_verified += 1,
                    Verdict::Mismatch => counts.streams_mismatched += 1,
                }
                // Down: the server's FIN ends the stream; ours follows in close.
                counts.streams_closed_cleanly += 1;
            }
        }
    }
}
