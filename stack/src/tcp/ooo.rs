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
    max_ranges: usize,
    max_bytes: usize,
    bytes: usize,
    /// The range that holds the most recently received segment (RFC 2018 §4: first SACK block).
    latest: Option<SeqNumber>,
}

impl OutOfOrderQueue {
    /// An empty queue. The range vector is allocated whole on the first out-of-order
    /// segment (an in-order connection never holds it), and never again.
    pub fn new(max_ranges: usize, max_bytes: usize) -> Self {
        let max_ranges = max_ranges.max(1);
        OutOfOrderQueue {
            ranges: Vec::new(),
            max_ranges,
            max_bytes,
            bytes: 0,
            latest: None,
        }
    }

    /// Raises the byte bound to `max_bytes` (never lowers it): the receive buffer grew.
    pub fn raise_max_bytes(&mut self, max_bytes: usize) {
        self.max_bytes = self.max_bytes.max(max_bytes);
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
        if self.bytes + new_bytes > self.max_bytes {
            return false;
        }
        // A range that touches nothing adds one; the merge may also remove some.
        let touches = self.ranges.iter().any(|&(s, e)| start <= e && s <= end);
        touches || self.ranges.len() < self.max_ranges
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
    pub fn insert(&mut self, start: SeqNumber, end: SeqNumber) -> bool {
        if end <= start {
            return true;
        }
        if !self.can_insert(start, end) {
            return false;
        }
        if self.ranges.capacity() == 0 {
            self.ranges.reserve_exact(self.max_ranges + 1);
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
        self.latest = Some(new_start);
        true
    }

    /// If the first range starts at or before `rcv_nxt`, removes it and returns its end.
    pub fn pop_contiguous(&mut self, rcv_nxt: SeqNumber) -> Option<SeqNumber> {
        let &(s, e) = self.ranges.first()?;
        if s > rcv_nxt {
            return None;
        }
        self.ranges.remove(0);
        self.bytes = self.bytes.saturating_sub(e.since(s) as usize);
        if self.latest == Some(s) {
            self.latest = None;
        }
        Some(e)
    }

    /// Forgets everything (e.g. when the connection is reset).
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.bytes = 0;
        self.latest = None;
    }

    /// SACK blocks (RFC 2018 §4): the most recent range first, then the others in order.
    pub fn sack_blocks(&self, max: usize) -> SackBlocks {
        let mut blocks = SackBlocks::new();
        let latest = self
            .latest
            .and_then(|l| self.ranges.iter().find(|&&(s, _)| s == l));
        if let Some(&(s, e)) = latest {
            blocks.push(s.0, e.0);
        }
        for &(s, e) in &self.ranges {
            if blocks.len() >= max {
                break;
            }
            if Some(s) != self.latest {
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
        assert!(!q.insert(s(15), s(26)), "overlap adds 6 bytes: 26 > 25");
        assert!(q.insert(s(15), s(25)));
        assert_eq!(q.bytes(), 25);
    }

    #[test]
    fn sack_blocks_put_latest_first() {
        let mut q = OutOfOrderQueue::new(8, 1000);
        q.insert(s(10), s(20));
        q.insert(s(30), s(40));
        q.insert(s(50), s(60));
        q.insert(s(35), s(45));
        let b = q.sack_blocks(3);
        assert_eq!(b.as_slice(), &[(30, 45), (10, 20), (50, 60)]);
        assert_eq!(q.sack_blocks(1).as_slice(), &[(30, 45)]);
    }

    #[test]
    fn wraps_around_zero() {
        let mut q = OutOfOrderQueue::new(4, 1000);
        assert!(q.insert(s(u32::MAX - 5), s(5)));
        assert_eq!(q.bytes(), 11);
        assert_eq!(q.pop_contiguous(s(u32::MAX - 5)), Some(s(5)));
    }
}
