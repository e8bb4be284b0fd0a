//! The sender's SACK scoreboard (RFC 2018, RFC 6675 §3): which bytes above SND.UNA the peer
//! reported holding, as a bounded set of merged intervals.
//!
//! Hostile SACK streams (the CVE-2019-11477/11478 family: many tiny blocks, blocks out of the
//! window, reversed, overlapping or repeated) cost at most `max_ranges` steps per block and no
//! memory beyond `max_ranges` intervals: invalid blocks are rejected before they touch
//! anything, repeated ones add nothing, and a block that would need a new interval when the set
//! is full is ignored (the sender then learns less, which only makes it more conservative).

use super::seq::SeqNumber;
use crate::wire::SackBlocks;

/// How far below the cumulative ACK a D-SACK block may start (a maximal scaled window).
const MAX_DSACK_DISTANCE: u32 = 1 << 30;

/// How one SACK option was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SackSummary {
    /// The first block reported a duplicate (RFC 2883 D-SACK): `(left, right)`.
    pub dsack: Option<(SeqNumber, SeqNumber)>,
    /// Blocks dropped as invalid (reversed, outside [SND.UNA, SND.MAX]) or over the bound.
    pub rejected: u32,
    /// Bytes the option newly reported as held.
    pub newly_sacked: u32,
}

/// Sorted, disjoint, non-adjacent `[start, end)` intervals of SACKed sequence space.
#[derive(Debug, Clone)]
pub struct SackScoreboard {
    ranges: Vec<(SeqNumber, SeqNumber)>,
    max_ranges: usize,
    bytes: u32,
}

impl SackScoreboard {
    /// An empty scoreboard holding at most `max_ranges` intervals. Nothing is allocated until
    /// the first SACK block arrives (idle connections hold no scoreboard memory); then room
    /// for all `max_ranges`, once.
    pub fn new(max_ranges: usize) -> Self {
        SackScoreboard {
            ranges: Vec::new(),
            max_ranges: max_ranges.max(1),
            bytes: 0,
        }
    }

    /// Bytes held by the peer above SND.UNA.
    pub fn bytes(&self) -> u32 {
        self.bytes
    }

    /// The intervals, in sequence order.
    pub fn ranges(&self) -> &[(SeqNumber, SeqNumber)] {
        &self.ranges
    }

    /// True when nothing is SACKed.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The highest SACKed sequence number plus one (RFC 6675 "HighSACK" + 1), if any.
    pub fn high(&self) -> Option<SeqNumber> {
        self.ranges.last().map(|&(_, e)| e)
    }

    /// The interval that covers `seq`, if any.
    pub fn covering(&self, seq: SeqNumber) -> Option<(SeqNumber, SeqNumber)> {
        // Binary search: the last interval starting at or before `seq`.
        let i = self.ranges.partition_point(|&(s, _)| s <= seq);
        let &(s, e) = self.ranges.get(i.checked_sub(1)?)?;
        (seq < e).then_some((s, e))
    }

    /// True when `[start, end)` is entirely SACKed.
    pub fn covers(&self, start: SeqNumber, end: SeqNumber) -> bool {
        self.covering(start).is_some_and(|(_, e)| end <= e)
    }

    /// Bytes SACKed at or above `seq`.
    pub fn bytes_above(&self, seq: SeqNumber) -> u32 {
        let mut n = 0u32;
        for &(s, e) in self.ranges.iter().rev() {
            if e <= seq {
                break;
            }
            n = n.saturating_add(e.since(s.max_seq(seq)));
        }
        n
    }

    /// Forgets everything below `una` (the cumulative ACK moved). Nothing to forget on an
    /// empty board (every ACK of a loss-free exchange), and nothing to count.
    #[inline(always)]
    pub fn advance(&mut self, una: SeqNumber) {
        if self.ranges.is_empty() {
            return;
        }
        let mut dropped = 0u32;
        self.ranges.retain_mut(|(s, e)| {
            if *e <= una {
                dropped = dropped.saturating_add(e.since(*s));
                false
            } else {
                if *s < una {
                    dropped = dropped.saturating_add(una.since(*s));
                    *s = una;
                }
                true
            }
        });
        self.bytes = self.bytes.saturating_sub(dropped);
    }

    /// Forgets everything (the peer reneged, or the connection closed).
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.bytes = 0;
    }

    /// Reads one SACK option arriving with cumulative ACK `ack` while `[una, snd_max)` is
    /// outstanding (`una` already advanced to `ack`). Each newly covered piece goes to `on_new`
    /// as `(start, end)`, before merging, so the caller can mark what it sent there.
    pub fn apply(
        &mut self,
        ack: SeqNumber,
        una: SeqNumber,
        snd_max: SeqNumber,
        blocks: &SackBlocks,
        mut on_new: impl FnMut(SeqNumber, SeqNumber),
    ) -> SackSummary {
        let mut summary = SackSummary::default();
        let blocks = blocks.as_slice();
        for (i, &(l, r)) in blocks.iter().enumerate() {
            let (l, r) = (SeqNumber(l), SeqNumber(r));
            // Reversed or empty blocks are garbage.
            if r <= l {
                summary.rejected += 1;
                continue;
            }
            if i == 0 {
                // RFC 2883 §4: the first block is a D-SACK when it lies below the cumulative
                // ACK, or inside the second block.
                let inside_second = blocks.get(1).is_some_and(|&(l2, r2)| {
                    SeqNumber(l2) <= l && r <= SeqNumber(r2) && SeqNumber(l2) < SeqNumber(r2)
                });
                if r <= ack {
                    // Below the cumulative ACK: believable only within a window of it.
                    if ack.since(l) <= MAX_DSACK_DISTANCE {
                        summary.dsack = Some((l, r));
                    } else {
                        summary.rejected += 1;
                    }
                    continue;
                }
                if inside_second {
                    summary.dsack = Some((l, r));
                }
            }
            // RFC 2018 §3 / Linux tcp_is_sackblock_valid: a block names data in flight.
            if l < una || r > snd_max {
                summary.rejected += 1;
                continue;
            }
            match self.insert(l, r, &mut on_new) {
                Some(n) => summary.newly_sacked = summary.newly_sacked.saturating_add(n),
                None => summary.rejected += 1,
            }
        }
        summary
    }

    /// Adds `[l, r)`; returns the bytes newly covered, or `None` when the bound forbids it.
    fn insert(
        &mut self,
        l: SeqNumber,
        r: SeqNumber,
        on_new: &mut impl FnMut(SeqNumber, SeqNumber),
    ) -> Option<u32> {
        // First interval that ends at or after `l` (could touch), last that starts at or before `r`.
        let first = self.ranges.partition_point(|&(_, e)| e < l);
        let last = self.ranges.partition_point(|&(s, _)| s <= r);
        if first == last {
            // Touches nothing: a new interval.
            if self.ranges.len() >= self.max_ranges {
                return None;
            }
            if self.ranges.capacity() == 0 {
                self.ranges.reserve_exact(self.max_ranges);
            }
            self.ranges.insert(first, (l, r));
            on_new(l, r);
            let n = r.since(l);
            self.bytes = self.bytes.saturating_add(n);
            return Some(n);
        }
        // Merge ranges[first..last] with [l, r); report the gaps it fills.
        let mut cursor = l;
        let mut new = 0u32;
        for &(s, e) in &self.ranges[first..last] {
            if s > cursor {
                let gap_end = s.min_seq(r);
                if gap_end > cursor {
                    on_new(cursor, gap_end);
                    new = new.saturating_add(gap_end.since(cursor));
                }
            }
            cursor = cursor.max_seq(e);
        }
        if r > cursor {
            on_new(cursor, r);
            new = new.saturating_add(r.since(cursor));
        }
        let start = self.ranges[first].0.min_seq(l);
        let end = self.ranges[last - 1].1.max_seq(r);
        self.ranges[first] = (start, end);
        self.ranges.drain(first + 1..last);
        self.bytes = self.bytes.saturating_add(new);
        Some(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(n: u32) -> SeqNumber {
        SeqNumber(n)
    }

    fn blocks(b: &[(u32, u32)]) -> SackBlocks {
        let mut out = SackBlocks::new();
        for &(l, r) in b {
            out.push(l, r);
        }
        out
    }

    fn apply(sb: &mut SackScoreboard, ack: u32, max: u32, b: &[(u32, u32)]) -> SackSummary {
        sb.apply(s(ack), s(ack), s(max), &blocks(b), |_, _| {})
    }

    #[test]
    fn rfc2018_blocks_merge_and_count_new_bytes_once() {
        let mut sb = SackScoreboard::new(8);
        let r = apply(&mut sb, 100, 1000, &[(200, 300)]);
        assert_eq!(r.newly_sacked, 100);
        let r = apply(&mut sb, 100, 1000, &[(400, 500), (200, 300)]);
        assert_eq!(r.newly_sacked, 100, "the repeated block adds nothing");
        let mut pieces = Vec::new();
        sb.apply(s(100), s(100), s(1000), &blocks(&[(250, 450)]), |a, b| {
            pieces.push((a.0, b.0))
        });
        assert_eq!(pieces, vec![(300, 400)], "only the gap is new");
        assert_eq!(sb.ranges(), &[(s(200), s(500))]);
        assert_eq!(sb.bytes(), 300);
        assert!(sb.covers(s(250), s(500)));
        assert!(!sb.covers(s(150), s(250)));
        assert_eq!(sb.bytes_above(s(450)), 50);
        sb.advance(s(300));
        assert_eq!(sb.ranges(), &[(s(300), s(500))]);
        assert_eq!(sb.bytes(), 200);
    }

    #[test]
    fn rfc2883_dsack_below_ack_or_inside_second_block() {
        let mut sb = SackScoreboard::new(8);
        let r = apply(&mut sb, 500, 1000, &[(300, 400)]);
        assert_eq!(r.dsack, Some((s(300), s(400))));
        assert_eq!(r.newly_sacked, 0);
        assert!(sb.is_empty());
        let r = apply(&mut sb, 500, 1000, &[(600, 700), (550, 800)]);
        assert_eq!(r.dsack, Some((s(600), s(700))));
        assert_eq!(r.newly_sacked, 250);
        let r = apply(&mut sb, 500, 1000, &[(850, 900), (600, 700)]);
        assert_eq!(r.dsack, None);
    }

    #[test]
    fn hostile_blocks_are_rejected() {
        let mut sb = SackScoreboard::new(8);
        // Reversed, beyond SND.MAX, below SND.UNA (and not a D-SACK: not first), empty.
        let r = apply(
            &mut sb,
            100,
            1000,
            &[(500, 400), (900, 1100), (50, 150), (600, 600)],
        );
        assert_eq!(r.rejected, 4);
        assert!(sb.is_empty());
        // Wrapped far away: "below" by 2^31 - 1.
        let r = apply(&mut sb, 100, 1000, &[(0x8000_0100, 0x8000_0200)]);
        assert_eq!(r.rejected, 1);
        assert!(sb.is_empty());
    }

    #[test]
    fn many_tiny_blocks_stay_within_the_bound() {
        let mut sb = SackScoreboard::new(16);
        let mut rejected = 0;
        for i in 0..10_000u32 {
            let l = 1000 + 3 * i;
            rejected += apply(&mut sb, 1000, 200_000, &[(l, l + 1)]).rejected;
        }
        assert_eq!(sb.ranges().len(), 16);
        assert_eq!(rejected, 10_000 - 16);
        assert_eq!(sb.bytes(), 16);
        // One honest block covering everything still merges them all.
        let r = apply(&mut sb, 1000, 200_000, &[(1000, 2000)]);
        assert_eq!(sb.ranges(), &[(s(1000), s(2000))]);
        assert_eq!(r.newly_sacked, 1000 - 16);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Against any sequence of blocks, the scoreboard equals a byte-by-byte model (where
        /// the bound allowed the insert), stays sorted, disjoint and within its bound.
        #[test]
        fn matches_a_byte_model(
            base in any::<u32>(),
            ops in proptest::collection::vec((0u32..600, 0u32..600), 1..60),
        ) {
            let una = s(base);
            let max = una + 500u32;
            let mut sb = SackScoreboard::new(6);
            let mut model = [false; 500];
            for (a, b) in ops {
                let (l, r) = (una + a, una + b);
                let before = sb.clone();
                let mut fresh = 0u32;
                let res = sb.apply(una, una, max, &blocks(&[(l.0, r.0)]), |x, y| fresh += y.since(x));
                prop_assert_eq!(fresh, res.newly_sacked);
                if res.rejected == 0 && b > a && b <= 500 {
                    for m in &mut model[a as usize..b as usize] {
                        *m = true;
                    }
                } else {
                    prop_assert_eq!(sb.ranges(), before.ranges());
                }
                prop_assert!(sb.ranges().len() <= 6);
                for w in sb.ranges().windows(2) {
                    prop_assert!(w[0].1 < w[1].0, "sorted, disjoint, non-adjacent");
                }
                let held: u32 = model.iter().map(|&m| u32::from(m)).sum();
                prop_assert_eq!(sb.bytes(), held);
                for (i, &m) in model.iter().enumerate() {
                    prop_assert_eq!(sb.covers(una + i as u32, una + (i as u32 + 1)), m);
                }
            }
        }
    }
}
