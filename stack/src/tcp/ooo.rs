//! Out-of-order bookkeeping: which sequence ranges beyond `RCV.NXT` are already stored.
//!
//! The bytes themselves sit in the receive ring at their final place; this queue only
//! remembers the ranges (at most `max_ranges` of them, at most `max_bytes` in total).

use super::seq::SeqNumber;
use crate::wire::SackBlocks;

/// Sorted, disjoint, non-adjacent ranges `[start, end)` of received out-of-order data.
#[derive(Debug, Clone)]
pub struct OutOfOrderQueue {
    ranges: Vec<(SeqNumber, SeqNumber)>,
    // u32 bounds keep the connection small (issue 13: 2 KB per idle connection).
    max_ranges: u32,
    max_bytes: u32,
    bytes: usize,
    /// Starts of the ranges that most recently received a segment, newest first: RFC 2018
    /// §4 puts the newest in the first SACK block and repeats the most recently reported
    /// ones after it, so a sender learns of every range even when ACKs are lost and there
    /// are more ranges than blocks.
    recent: [SeqNumber; RECENT],
    recent_len: u8,
}

/// Ranges remembered by recency: the SACK blocks one ACK carries (four at most).
const RECENT: usize = 4;

impl OutOfOrderQueue {
    /// An empty queue. The range vector is allocated whole on the first out-of-order
    /// segment (an in-order connection never holds it), and never again.
    pub fn new(max_ranges: usize, max_bytes: usize) -> Self {
        let max_ranges = max_ranges.max(1);
        OutOfOrderQueue {
            ranges: Vec::new(),
            max_ranges: u32::try_from(max_ranges).unwrap_or(u32::MAX),
            max_bytes: u32::try_from(max_bytes).unwrap_or(u32::MAX),
            bytes: 0,
            recent: [SeqNumber(0); RECENT],
            recent_len: 0,
        }
    }

    /// Raises the byte bound to `max_bytes` (never lowers it): the receive buffer grew.
    pub fn raise_max_bytes(&mut self, max_bytes: usize) {
        self.max_bytes = self
            .max_bytes
            .max(u32::try_from(max_bytes).unwrap_or(u32::MAX));
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// True when no out-of-order data is held.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The ranges, in sequence order.
    pub fn ranges(&self) -> &[(SeqNumber, SeqNumber)] {
        &self.ranges
    }

    /// Would `[start, end)` fit within the bounds? (Overlap with held data is free.)
    pub fn can_insert(&self, start: SeqNumber, end: SeqNumber) -> bool {
        let new_bytes = self.uncovered(start, end);
        if self.bytes + new_bytes > self.max_bytes as usize {
            return false;
        }
        // A range that touches nothing adds one; the merge may also remove some.
        let touches = self.ranges.iter().any(|&(s, e)| start <= e && s <= end);
        touches || self.ranges.len() < self.max_ranges as usize
    }

    fn uncovered(&self, start: SeqNumber, end: SeqNumber) -> usize {
        let mut covered = 0u32;
        for &(s, e) in &self.ranges {
            let lo = s.max_seq(start);
            let hi = e.min_seq(end);
            if hi > lo {
                covered += hi.since(lo);
            }
        }
        end.since(start).saturating_sub(covered) as usize
    }

    /// Records `[start, end)`; returns false (recording nothing) when bounds forbid it.
    ///
    /// When the bounds are reached, ranges above the new segment are forgotten, highest
    /// first, to make room (Linux's `tcp_prune_ofo_queue`; RFC 2018 §8 lets a receiver
    /// discard data it reported in SACK blocks): data nearer `RCV.NXT` is what fills the
    /// hole. Refusing it instead let a reordering path fill the range bound with
    /// isolated segments far ahead and drop every retransmission of the hole, so the
    /// connection crawled through retransmission timeouts (10 ms +- 2 ms of jitter on the
    /// lab's router). Returns the number of ranges forgotten through `pruned`.
    pub fn insert(&mut self, start: SeqNumber, end: SeqNumber) -> bool {
        self.insert_pruning(start, end).is_some()
    }

    /// [`OutOfOrderQueue::insert`], returning how many ranges were forgotten to make room
    /// (`None`: nothing recorded).
    pub fn insert_pruning(&mut self, start: SeqNumber, end: SeqNumber) -> Option<usize> {
        if end <= start {
            return Some(0);
        }
        if !self.can_insert(start, end) && !self.fits_after_pruning(start, end) {
            return None;
        }
        let mut pruned = 0;
        while !self.can_insert(start, end) {
            match self.ranges.last() {
                Some(&(s, _)) if start < s => {
                    self.forget_last();
                    pruned += 1;
                }
                _ => return None,
            }
        }
        if self.ranges.capacity() == 0 {
            self.ranges.reserve_exact(self.max_ranges as usize + 1);
        }
        self.bytes += self.uncovered(start, end);
        let mut new_start = start;
        let mut new_end = end;
        // Merge every range overlapping or adjacent to the new one.
        self.ranges.retain(|&(s, e)| {
            if s <= new_end && new_start <= e {
                new_start = new_start.min_seq(s);
                new_end = new_end.max_seq(e);
                false
            } else {
                true
            }
        });
        let pos = self
            .ranges
            .iter()
            .position(|&(s, _)| s > new_start)
            .unwrap_or(self.ranges.len());
        self.ranges.insert(pos, (new_start, new_end));
        // The merged range goes first; the ranges it swallowed leave the list.
        let mut recent = [new_start; RECENT];
        let mut n = 1;
        for r in self.recent() {
            if n < RECENT && !(new_start <= r && r <= new_end) {
                recent[n] = r;
                n += 1;
            }
        }
        self.recent = recent;
        self.recent_len = n as u8;
        Some(pruned)
    }

    /// Would `[start, end)` fit once every range starting above `start` is forgotten?
    fn fits_after_pruning(&self, start: SeqNumber, end: SeqNumber) -> bool {
        let kept = || self.ranges.iter().filter(|&&(s, _)| s <= start);
        let kept_bytes: usize = kept().map(|&(s, e)| e.since(s) as usize).sum();
        let covered: u32 = kept()
            .map(|&(s, e)| {
                let (lo, hi) = (s.max_seq(start), e.min_seq(end));
                if hi > lo { hi.since(lo) } else { 0 }
            })
            .sum();
        let new_bytes = end.since(start).saturating_sub(covered) as usize;
        let touches = kept().any(|&(s, e)| start <= e && s <= end);
        kept_bytes + new_bytes <= self.max_bytes as usize
            && (touches || kept().count() < self.max_ranges as usize)
    }

    /// Forgets the highest range (its bytes stay in the ring until overwritten).
    fn forget_last(&mut self) {
        if let Some((s, e)) = self.ranges.pop() {
            self.bytes = self.bytes.saturating_sub(e.since(s) as usize);
            self.forget_recent(s);
        }
    }

    fn forget_recent(&mut self, start: SeqNumber) {
        let len = usize::from(self.recent_len);
        if let Some(i) = self.recent[..len].iter().position(|&r| r == start) {
            self.recent.copy_within(i + 1..len, i);
            self.recent_len -= 1;
        }
    }

    /// The starts of the most recently changed ranges, newest first.
    fn recent(&self) -> impl Iterator<Item = SeqNumber> + '_ {
        self.recent[..usize::from(self.recent_len)].iter().copied()
    }

    /// If the first range starts at or before `rcv_nxt`, removes it and returns its end.
    pub fn pop_contiguous(&mut self, rcv_nxt: SeqNumber) -> Option<SeqNumber> {
        let &(s, e) = self.ranges.first()?;
        if s > rcv_nxt {
            return None;
        }
        self.ranges.remove(0);
        self.bytes = self.bytes.saturating_sub(e.since(s) as usize);
        self.forget_recent(s);
        Some(e)
    }

    /// Forgets everything (e.g. when the connection is reset).
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.bytes = 0;
        self.recent_len = 0;
    }

    /// SACK blocks (RFC 2018 §4): the range holding the newest segment first, then the
    /// ranges that most recently changed, then the lowest others.
    pub fn sack_blocks(&self, max: usize) -> SackBlocks {
        let mut blocks = SackBlocks::new();
        let mut listed = [None; RECENT];
        for (slot, start) in listed.iter_mut().zip(self.recent()) {
            if blocks.len() >= max {
                break;
            }
            if let Some(&(s, e)) = self.ranges.iter().find(|&&(s, _)| s == start) {
                blocks.push(s.0, e.0);
                *slot = Some(s);
            }
        }
        for &(s, e) in &self.ranges {
            if blocks.len() >= max {
                break;
            }
            if !listed.contains(&Some(s)) {
                blocks.push(s.0, e.0);
            }
        }
        blocks.truncate(max);
        blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> SeqNumber {
        SeqNumber(n)
    }

    #[test]
    fn merges_and_pops() {
        let mut q = OutOfOrderQueue::new(4, 1000);
        assert!(q.insert(s(20), s(30)));
        assert!(q.insert(s(40), s(50)));
        assert!(q.insert(s(30), s(40)));
        assert_eq!(q.ranges(), &[(s(20), s(50))]);
        assert_eq!(q.bytes(), 30);
        assert_eq!(q.pop_contiguous(s(10)), None);
        assert_eq!(q.pop_contiguous(s(25)), Some(s(50)));
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn bounds_are_enforced() {
        let mut q = OutOfOrderQueue::new(2, 25);
        assert!(q.insert(s(10), s(20)));
        assert!(q.insert(s(30), s(40)));
        assert!(!q.insert(s(50), s(51)), "third hole exceeds range bound");
        assert!(q.insert(s(15), s(25)));
        assert_eq!(q.bytes(), 25);
        // 15..26 adds one byte: 26 > 25, so the range above it goes (it lies further from
        // RCV.NXT than the new data).
        assert_eq!(q.insert_pruning(s(15), s(26)), Some(1));
        assert_eq!(q.ranges(), &[(s(10), s(26))]);
        assert_eq!(q.bytes(), 16);
    }

    #[test]
    fn sack_blocks_put_latest_first() {
        let mut q = OutOfOrderQueue::new(8, 1000);
        q.insert(s(10), s(20));
        q.insert(s(30), s(40));
        q.insert(s(50), s(60));
        q.insert(s(35), s(45));
        // The newest first, then the most recently changed (RFC 2018 §4).
        let b = q.sack_blocks(3);
        assert_eq!(b.as_slice(), &[(30, 45), (50, 60), (10, 20)]);
        assert_eq!(q.sack_blocks(1).as_slice(), &[(30, 45)]);
    }

    #[test]
    fn sack_blocks_rotate_through_more_ranges_than_blocks() {
        let mut q = OutOfOrderQueue::new(16, 10_000);
        for i in 0..8u32 {
            q.insert(s(100 + 20 * i), s(110 + 20 * i));
        }
        // Newest first, then the three before it: each range gets reported.
        assert_eq!(
            q.sack_blocks(4).as_slice(),
            &[(240, 250), (220, 230), (200, 210), (180, 190)]
        );
        // A segment extending an older range makes it the newest.
        q.insert(s(110), s(115));
        assert_eq!(
            q.sack_blocks(3).as_slice(),
            &[(100, 115), (240, 250), (220, 230)]
        );
        // Once a range is delivered it is no longer reported.
        assert_eq!(q.pop_contiguous(s(100)), Some(s(115)));
        assert_eq!(
            q.sack_blocks(3).as_slice(),
            &[(240, 250), (220, 230), (200, 210)]
        );
    }

    #[test]
    fn full_queue_forgets_the_highest_ranges_for_data_below_them() {
        let mut q = OutOfOrderQueue::new(3, 1000);
        assert!(q.insert(s(100), s(110)));
        assert!(q.insert(s(200), s(210)));
        assert!(q.insert(s(300), s(310)));
        // Above every range: refused, as before.
        assert_eq!(q.insert_pruning(s(400), s(410)), None);
        // Below the highest: the highest is forgotten to make room.
        assert_eq!(q.insert_pruning(s(50), s(60)), Some(1));
        assert_eq!(
            q.ranges(),
            &[(s(50), s(60)), (s(100), s(110)), (s(200), s(210))]
        );
        assert_eq!(q.bytes(), 30);
        assert_eq!(
            q.sack_blocks(4).as_slice(),
            &[(50, 60), (200, 210), (100, 110)]
        );
        // The byte bound prunes the same way, as many ranges as it takes.
        let mut q = OutOfOrderQueue::new(8, 30);
        for i in 0..3u32 {
            assert!(q.insert(s(100 + 100 * i), s(110 + 100 * i)));
        }
        assert_eq!(q.insert_pruning(s(20), s(45)), Some(3));
        assert_eq!(q.ranges(), &[(s(20), s(45))]);
        assert_eq!(q.bytes(), 25);
        // More than the whole bound: refused, and what was held stays.
        assert_eq!(q.insert_pruning(s(0), s(40)), None);
        assert_eq!(q.ranges(), &[(s(20), s(45))]);
    }

    #[test]
    fn wraps_around_zero() {
        let mut q = OutOfOrderQueue::new(4, 1000);
        assert!(q.insert(s(u32::MAX - 5), s(5)));
        assert_eq!(q.bytes(), 11);
        assert_eq!(q.pop_contiguous(s(u32::MAX - 5)), Some(s(5)));
    }
}
