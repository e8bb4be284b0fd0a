//! TCP option parsing and emission (RFC 9293 §3.2, RFC 7323, RFC 2018).

use super::tcp::{SackBlocks, TcpOptions};
use super::{WireError, read_u16, read_u32, write_u16, write_u32};

const KIND_EOL: u8 = 0;
const KIND_NOP: u8 = 1;
const KIND_MSS: u8 = 2;
const KIND_WINDOW_SCALE: u8 = 3;
const KIND_SACK_PERMITTED: u8 = 4;
const KIND_SACK: u8 = 5;
const KIND_TIMESTAMP: u8 = 8;

/// The options area of nearly every segment of a connection with timestamps starts so:
/// NOP, NOP, then the timestamps option's kind and length (Linux's layout; 12 bytes in
/// all with the two values).
pub(super) const TIMESTAMP_ONLY_PREFIX: [u8; 4] = [KIND_NOP, KIND_NOP, KIND_TIMESTAMP, 10];

/// Bytes of that options area: the prefix and the two 32-bit values.
pub(super) const TIMESTAMP_AREA_LEN: usize = 12;

/// RFC 7323 §2.3: the largest shift count.
pub const MAX_WINDOW_SCALE: u8 = 14;

impl TcpOptions {
    /// Parses an options area.
    ///
    /// EOL ends the list, NOP is skipped, unknown kinds are skipped by their
    /// length. As Linux's `tcp_parse_options` does, a malformed option never
    /// costs the segment: a length byte missing, below 2 or running past the
    /// area ends the parse (the options before it count), and a known kind with
    /// the wrong length is ignored. A window scale above 14 is taken as 14
    /// (RFC 7323 §2.3: "MUST use 14 instead"). A repeated option overwrites the
    /// earlier one.
    #[inline(always)]
    pub fn parse(area: &[u8]) -> Result<TcpOptions, WireError> {
        // The layout of nearly every segment of a connection with timestamps (NOP,
        // NOP, TS; Linux's `tcp_fast_parse_options` predicts it the same way): read
        // it without the loop. Same result as the loop below gives for it.
        if let Some(timestamp) = Self::parse_timestamp_only(area) {
            return Ok(TcpOptions {
                timestamp: Some(timestamp),
                ..TcpOptions::default()
            });
        }
        Ok(Self::parse_any(area))
    }

    /// The timestamps of an options area laid out as [`TIMESTAMP_ONLY_PREFIX`] and the
    /// two values, nothing else; `None` for any other area (which [`Self::parse_any`]
    /// then reads).
    #[inline(always)]
    fn parse_timestamp_only(area: &[u8]) -> Option<(u32, u32)> {
        let area = <&[u8; TIMESTAMP_AREA_LEN]>::try_from(area).ok()?;
        Self::is_timestamp_only(area).then(|| Self::timestamp_values(area))
    }

    /// Whether a 12-byte options area is laid out as [`TIMESTAMP_ONLY_PREFIX`] and the
    /// two values. Apart from [`Self::timestamp_values`], so that the one-pass frame
    /// parse can tell the layout before the checksums and read the values after them.
    #[inline(always)]
    pub(super) fn is_timestamp_only(area: &[u8; TIMESTAMP_AREA_LEN]) -> bool {
        // One 32-bit compare (a pattern over the array compares byte by byte).
        u32::from_ne_bytes([area[0], area[1], area[2], area[3]])
            == u32::from_ne_bytes(TIMESTAMP_ONLY_PREFIX)
    }

    /// The (TSval, TSecr) of an area [`Self::is_timestamp_only`] accepted.
    #[inline(always)]
    pub(super) fn timestamp_values(area: &[u8; TIMESTAMP_AREA_LEN]) -> (u32, u32) {
        (read_u32(area, 4), read_u32(area, 8))
    }

    /// The general parse behind [`TcpOptions::parse`]: any layout. Out of line, so
    /// the timestamps-only check inlines into the per-segment parse without it.
    #[inline(never)]
    fn parse_any(area: &[u8]) -> TcpOptions {
        let mut opts = TcpOptions::default();
        let mut i = 0;
        while let Some(&kind) = area.get(i) {
            match kind {
                // RFC 9293 §3.2: End of Option List; the rest is padding.
                KIND_EOL => break,
                KIND_NOP => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            // RFC 9293 §3.1 (MUST-7): an illegal option length must not crash
            // us; the length counts kind and length octets, and one below 2 or
            // past the area leaves nothing trustworthy after it.
            let Some(len) = area.get(i + 1).map(|l| usize::from(*l)) else {
                break;
            };
            let Some(body) = area.get(i + 2..i + len).filter(|_| len >= 2) else {
                break;
            };
            match (kind, len) {
                (KIND_MSS, 4) => opts.mss = Some(read_u16(body, 0)),
                (KIND_WINDOW_SCALE, 3) => opts.window_scale = Some(body[0].min(MAX_WINDOW_SCALE)),
                (KIND_SACK_PERMITTED, 2) => opts.sack_permitted = true,
                // RFC 2018 §3: 8 bytes per block, 1 to 4 blocks.
                (KIND_SACK, 10 | 18 | 26 | 34) => {
                    let mut blocks = SackBlocks::new();
                    for b in body.chunks_exact(8) {
                        blocks.push(read_u32(b, 0), read_u32(b, 4));
                    }
                    opts.sack_blocks = blocks;
                }
                (KIND_TIMESTAMP, 10) => {
                    opts.timestamp = Some((read_u32(body, 0), read_u32(body, 4)))
                }
                // Unknown kinds, and known kinds with the wrong length: skipped.
                _ => {}
            }
            i += len;
        }
        opts
    }

    /// The timestamps when they are the only option (laid out as
    /// [`TIMESTAMP_ONLY_PREFIX`] and the two values): the header nearly every segment
    /// of a connection with timestamps carries.
    #[inline]
    pub(super) fn timestamp_only(&self) -> Option<(u32, u32)> {
        match self {
            TcpOptions {
                mss: None,
                window_scale: None,
                sack_permitted: false,
                sack_blocks,
                timestamp: Some(ts),
            } if sack_blocks.is_empty() => Some(*ts),
            _ => None,
        }
    }

    /// Bytes of options before SACK blocks (each part NOP-padded to 4 bytes).
    fn fixed_len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        n += match (self.sack_permitted, self.timestamp.is_some()) {
            (true, true) => 12,  // SACK-permitted, TS (Linux layout)
            (false, true) => 12, // NOP, NOP, TS
            (true, false) => 4,  // NOP, NOP, SACK-permitted
            (false, false) => 0,
        };
        if self.window_scale.is_some() {
            n += 4; // NOP, WS
        }
        n
    }

    /// How many SACK blocks `emit` writes: as many as fit in the 40-byte area
    /// after the other options (three beside timestamps, RFC 2018 §3).
    pub fn emitted_sack_blocks(&self) -> usize {
        if self.sack_blocks.is_empty() {
            return 0;
        }
        let room = 40usize.saturating_sub(self.fixed_len() + 4) / 8;
        room.min(self.sack_blocks.len())
    }

    /// Length of the options area `emit` writes (a multiple of 4, at most 40).
    pub fn emitted_len(&self) -> usize {
        let sack = self.emitted_sack_blocks();
        self.fixed_len() + if sack > 0 { 4 + 8 * sack } else { 0 }
    }

    /// Writes the options into `area`, which is exactly [`Self::emitted_len`]
    /// bytes long. Every option is NOP-aligned to 4 bytes, so no padding is needed.
    pub(crate) fn emit(&self, area: &mut [u8]) {
        let mut i = 0;
        if let Some(mss) = self.mss {
            area[i] = KIND_MSS;
            area[i + 1] = 4;
            write_u16(area, i + 2, mss);
            i += 4;
        }
        match (self.sack_permitted, self.timestamp) {
            (true, Some(_)) => {
                area[i..i + 2].copy_from_slice(&[KIND_SACK_PERMITTED, 2]);
                i += 2;
            }
            (false, Some(_)) => {
                area[i..i + 2].copy_from_slice(&[KIND_NOP, KIND_NOP]);
                i += 2;
            }
            (true, None) => {
                area[i..i + 4].copy_from_slice(&[KIND_NOP, KIND_NOP, KIND_SACK_PERMITTED, 2]);
                i += 4;
            }
            (false, None) => {}
        }
        if let Some((tsval, tsecr)) = self.timestamp {
            area[i] = KIND_TIMESTAMP;
            area[i + 1] = 10;
            write_u32(area, i + 2, tsval);
            write_u32(area, i + 6, tsecr);
            i += 10;
        }
        if let Some(shift) = self.window_scale {
            // RFC 7323 §2.3: never send a shift count above 14.
            area[i..i + 4].copy_from_slice(&[
                KIND_NOP,
                KIND_WINDOW_SCALE,
                3,
                shift.min(MAX_WINDOW_SCALE),
            ]);
            i += 4;
        }
        let n = self.emitted_sack_blocks();
        if n > 0 {
            // n <= 4, so the length 2 + 8n <= 34 fits in u8.
            area[i..i + 4].copy_from_slice(&[KIND_NOP, KIND_NOP, KIND_SACK, (2 + 8 * n) as u8]);
            i += 4;
            for &(left, right) in &self.sack_blocks.as_slice()[..n] {
                write_u32(area, i, left);
                write_u32(area, i + 4, right);
                i += 8;
            }
        }
        debug_assert_eq!(i, area.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The predicted layout gives what the general parse gives, for any
    /// timestamp values, and near misses of the layout go the general way.
    #[test]
    fn the_timestamp_fast_path_agrees_with_the_general_parse() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..10_000 {
            let v = next().to_be_bytes();
            let mut area = vec![KIND_NOP, KIND_NOP, KIND_TIMESTAMP, 10];
            area.extend_from_slice(&v);
            let fast = TcpOptions::parse(&area).expect("parse");
            assert_eq!(fast, TcpOptions::parse_any(&area));
            assert_eq!(
                fast.timestamp,
                Some((read_u32(&v, 0), read_u32(&v, 4))),
                "{area:?}"
            );
            // Near misses: a byte of the prefix changed, the area cut or lengthened.
            let i = (next() % 4) as usize;
            let mut other = area.clone();
            other[i] = (next() % 256) as u8;
            assert_eq!(
                TcpOptions::parse(&other).expect("parse"),
                TcpOptions::parse_any(&other)
            );
            for len in [11, 13, 16] {
                let mut cut = area.clone();
                cut.resize(len, (next() % 256) as u8);
                assert_eq!(
                    TcpOptions::parse(&cut).expect("parse"),
                    TcpOptions::parse_any(&cut)
                );
            }
        }
    }
}
