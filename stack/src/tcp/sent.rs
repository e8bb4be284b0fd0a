//! The retransmission queue's bookkeeping: one record per segment sent and not yet
//! cumulatively acknowledged, with its send time (for RACK, RFC 8985) and its SACK and loss
//! marks (the RFC 6675 scoreboard at segment granularity).
//!
//! The bytes stay in the send ring; a record is 64 bytes (32 of them the delivery-rate
//! snapshot, `rate.rs`). Records are made only when new data
//! goes out and split only when a retransmission must be cut to a smaller MSS, never by what a
//! peer SACKs, so their number is bounded by what we sent (and by `max_segments`).

use super::rate::RateSnapshot;
use super::seq::SeqNumber;
use crate::time::Instant;
use std::collections::VecDeque;

/// One segment in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SentSegment {
    /// First sequence number.
    pub start: SeqNumber,
    /// One past the last (the FIN counts).
    pub end: SeqNumber,
    /// Carries our FIN.
    pub fin: bool,
    /// Time of the latest (re)transmission.
    pub sent_at: Instant,
    /// Retransmitted at least once.
    pub retransmitted: bool,
    /// The peer SACKed all of it.
    pub sacked: bool,
    /// Marked lost (RACK, or everything unSACKed on an RTO).
    pub lost: bool,
    /// Marked lost and retransmitted since: back in the pipe.
    pub retrans_in_flight: bool,
    /// The delivery-rate sampler's state at the latest (re)transmission.
    pub rate: RateSnapshot,
}

impl SentSegment {
    /// A fresh record for `[start, end)` sent at `now`, with an empty rate snapshot.
    pub fn new(start: SeqNumber, end: SeqNumber, fin: bool, now: Instant) -> Self {
        SentSegment {
            start,
            end,
            fin,
            sent_at: now,
            retransmitted: false,
            sacked: false,
            lost: false,
            retrans_in_flight: false,
            rate: RateSnapshot::empty(now),
        }
    }

    /// Sequence space the record covers.
    pub fn len(&self) -> u32 {
        self.end.since(self.start)
    }

    /// Payload bytes (without the FIN).
    pub fn data_len(&self) -> u32 {
        self.len() - u32::from(self.fin)
    }
}

/// The records, in sequence order, and the RFC 6675 `pipe` counters over them.
#[derive(Debug, Clone)]
pub(super) struct SentQueue {
    segs: VecDeque<SentSegment>,
    max_segments: usize,
    /// Bytes of records marked SACKed.
    pub sacked: u32,
    /// Bytes of records marked lost and not SACKed.
    pub lost: u32,
    /// Bytes of lost records retransmitted since (and not SACKed).
    pub retrans: u32,
    /// Records marked SACKed.
    pub sacked_segments: u32,
    /// Bytes ever marked lost (a retransmission lost again counts again): BBR's loss signal.
    pub lost_total: u64,
}

impl SentQueue {
    /// An empty queue holding at most `max_segments` records.
    pub fn new(max_segments: usize) -> Self {
        SentQueue {
            segs: VecDeque::new(),
            max_segments: max_segments.max(1),
            sacked: 0,
            lost: 0,
            retrans: 0,
            sacked_segments: 0,
            lost_total: 0,
        }
    }

    /// True when another record fits.
    pub fn has_room(&self) -> bool {
        self.segs.len() < self.max_segments
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.segs.len()
    }

    /// The record at `i`.
    pub fn get(&self, i: usize) -> Option<&SentSegment> {
        self.segs.get(i)
    }

    /// A fresh segment `[start, end)` went out at `now` with the sampler's `rate` snapshot.
    pub fn push(
        &mut self,
        start: SeqNumber,
        end: SeqNumber,
        fin: bool,
        now: Instant,
        rate: RateSnapshot,
    ) {
        let mut seg = SentSegment::new(start, end, fin, now);
        seg.rate = rate;
        self.segs.push_back(seg);
    }

    fn uncount(&mut self, seg: &SentSegment, bytes: u32) {
        if seg.sacked {
            self.sacked = self.sacked.saturating_sub(bytes);
        } else if seg.lost {
            self.lost = self.lost.saturating_sub(bytes);
            if seg.retrans_in_flight {
                self.retrans = self.retrans.saturating_sub(bytes);
            }
        }
    }

    /// The cumulative ACK reached `una`: drops covered records (trimming a partly covered one);
    /// `delivered` sees each fully acknowledged record that was not SACKed before.
    ///
    /// A record neither SACKed nor lost (every record of a loss-free exchange) is seen
    /// where it lies and popped: no copy of its 64 bytes, and no counter to touch.
    #[inline(always)]
    pub fn acknowledge(&mut self, una: SeqNumber, mut delivered: impl FnMut(&SentSegment)) {
        while let Some(seg) = self.segs.front() {
            if seg.end > una {
                if seg.start < una {
                    self.trim_front(una);
                }
                break;
            }
            if seg.sacked || seg.lost {
                let seg = *seg;
                self.uncount(&seg, seg.len());
                if seg.sacked {
                    self.sacked_segments = self.sacked_segments.saturating_sub(1);
                } else {
                    delivered(&seg);
                }
            } else {
                // `uncount` has nothing to do for it.
                delivered(seg);
            }
            self.segs.pop_front();
        }
    }

    /// The one record there is, when `una` covers it and it is neither SACKed nor lost (the
    /// ACK of every segment of a request/response exchange): all that
    /// [`Self::acknowledge`] would deliver. The caller sees it and then drops it with
    /// [`Self::drop_sole`], which together do what `acknowledge` does, without its loop
    /// (the loop keeps its caller's state in registers across records; for one record,
    /// setting that up cost more than the record).
    #[inline(always)]
    pub fn sole_covered(&self, una: SeqNumber) -> Option<&SentSegment> {
        if self.segs.len() != 1 {
            return None;
        }
        self.segs
            .front()
            .filter(|seg| seg.end <= una && !seg.sacked && !seg.lost)
    }

    /// Drops the record [`Self::sole_covered`] returned (a clean record: no counter counts
    /// it).
    #[inline(always)]
    pub fn drop_sole(&mut self) {
        debug_assert_eq!(self.segs.len(), 1);
        self.segs.clear();
    }

    /// The cumulative ACK `una` falls inside the front record: it keeps its unacknowledged
    /// part (out of line: only a partial ACK, after a cut retransmission, does this).
    #[cold]
    #[inline(never)]
    fn trim_front(&mut self, una: SeqNumber) {
        let Some(&seg) = self.segs.front() else {
            return;
        };
        let cut = una.since(seg.start);
        self.uncount(&seg, cut);
        if let Some(front) = self.segs.front_mut() {
            front.start = una;
        }
    }

    /// Marks SACKed the records overlapping the newly SACKed `[new_start, new_end)` that
    /// `covers(start, end)` says are now held entirely; `delivered` sees each.
    pub fn mark_sacked(
        &mut self,
        new_start: SeqNumber,
        new_end: SeqNumber,
        covers: impl Fn(SeqNumber, SeqNumber) -> bool,
        mut delivered: impl FnMut(&SentSegment),
    ) {
        let mut i = self.segs.partition_point(|s| s.end <= new_start);
        while let Some(&seg) = self.segs.get(i) {
            if seg.start >= new_end {
                break;
            }
            if !seg.sacked && covers(seg.start, seg.end) {
                self.uncount(&seg, seg.len());
                self.sacked = self.sacked.saturating_add(seg.len());
                self.sacked_segments += 1;
                let s = &mut self.segs[i];
                s.sacked = true;
                s.lost = false;
                s.retrans_in_flight = false;
                delivered(s);
            }
            i += 1;
        }
    }

    /// Index of the first record ending after `seq`.
    pub fn index_after(&self, seq: SeqNumber) -> usize {
        self.segs.partition_point(|s| s.end <= seq)
    }

    /// Lost records exist that were not retransmitted since.
    pub fn has_lost_to_send(&self) -> bool {
        self.lost > self.retrans
    }

    /// Clears every loss mark (F-RTO found the timeout spurious, RFC 5682 §3.1).
    pub fn unmark_lost(&mut self) {
        for s in &mut self.segs {
            s.lost = false;
            s.retrans_in_flight = false;
        }
        self.lost = 0;
        self.retrans = 0;
    }

    /// Marks record `i` lost (again, if its retransmission was lost too).
    pub fn mark_lost(&mut self, i: usize) {
        let Some(&seg) = self.segs.get(i) else { return };
        if seg.sacked {
            return;
        }
        if !seg.lost {
            self.lost = self.lost.saturating_add(seg.len());
        } else if seg.retrans_in_flight {
            self.retrans = self.retrans.saturating_sub(seg.len());
        } else {
            return;
        }
        self.lost_total = self.lost_total.saturating_add(u64::from(seg.len()));
        let s = &mut self.segs[i];
        s.lost = true;
        s.retrans_in_flight = false;
    }

    /// Marks every record not SACKed lost (RFC 8985 §6.3 / Linux tcp_enter_loss, on an RTO).
    pub fn mark_all_lost(&mut self) {
        for i in 0..self.segs.len() {
            self.mark_lost(i);
        }
    }

    /// Index of the first record marked lost and not retransmitted since, at or after `from`.
    pub fn next_lost(&self, from: usize) -> Option<usize> {
        (from..self.segs.len()).find(|&i| {
            let s = &self.segs[i];
            s.lost && !s.retrans_in_flight
        })
    }

    /// Index of the last record not SACKed (the tail loss probe's retransmission).
    pub fn last_unsacked(&self) -> Option<usize> {
        (0..self.segs.len()).rev().find(|&i| !self.segs[i].sacked)
    }

    /// Cuts record `i` so that it covers at most `max` data bytes (after the MSS shrank).
    pub fn split(&mut self, i: usize, max: u32) {
        let Some(&seg) = self.segs.get(i) else { return };
        if seg.data_len() <= max || max == 0 {
            return;
        }
        let cut = seg.start + max;
        let mut tail = seg;
        tail.start = cut;
        self.segs[i].end = cut;
        self.segs[i].fin = false;
        self.segs.insert(i + 1, tail);
    }

    /// Record `i` was (re)transmitted at `now` with the sampler's `rate` snapshot.
    pub fn retransmitted(&mut self, i: usize, now: Instant, rate: RateSnapshot) {
        let Some(&seg) = self.segs.get(i) else { return };
        if seg.lost && !seg.retrans_in_flight && !seg.sacked {
            self.retrans = self.retrans.saturating_add(seg.len());
        }
        let s = &mut self.segs[i];
        s.sent_at = now;
        s.retransmitted = true;
        s.rate = rate;
        if s.lost && !s.sacked {
            s.retrans_in_flight = true;
        }
    }

    /// Forgets every SACK mark (RFC 2018 §8: the receiver may renege; Linux does this on RTO).
    pub fn clear_sacked(&mut self) {
        for s in &mut self.segs {
            s.sacked = false;
        }
        self.sacked = 0;
        self.sacked_segments = 0;
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.segs.clear();
        self.sacked = 0;
        self.lost = 0;
        self.retrans = 0;
        self.sacked_segments = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> SeqNumber {
        SeqNumber(n)
    }

    fn queue() -> SentQueue {
        let mut q = SentQueue::new(100);
        for i in 0..5u32 {
            q.push(
                s(100 * i),
                s(100 * (i + 1)),
                false,
                Instant::from_millis(u64::from(i)),
                RateSnapshot::empty(Instant::ZERO),
            );
        }
        q
    }

    #[test]
    fn sack_loss_retransmit_and_ack_keep_the_counters() {
        let mut q = queue();
        let mut seen = Vec::new();
        // A block covering 150..400 marks only the whole records 200..300 and 300..400.
        let covers = |a: SeqNumber, b: SeqNumber| a >= s(150) && b <= s(400);
        q.mark_sacked(s(150), s(400), covers, |g| seen.push(g.start.0));
        assert_eq!(seen, vec![200, 300]);
        assert_eq!((q.sacked, q.sacked_segments), (200, 2));
        q.mark_lost(0);
        q.mark_lost(1);
        q.mark_lost(2); // SACKed: not lost
        assert_eq!(q.lost, 200);
        assert_eq!(q.next_lost(0), Some(0));
        q.retransmitted(
            0,
            Instant::from_millis(50),
            RateSnapshot::empty(Instant::ZERO),
        );
        assert_eq!(q.retrans, 100);
        assert_eq!(q.next_lost(0), Some(1));
        // The retransmission was lost too.
        q.mark_lost(0);
        assert_eq!((q.lost, q.retrans), (200, 0));
        q.retransmitted(
            0,
            Instant::from_millis(60),
            RateSnapshot::empty(Instant::ZERO),
        );
        let mut acked = Vec::new();
        q.acknowledge(s(350), |g| acked.push(g.start.0));
        assert_eq!(
            acked,
            vec![0, 100],
            "SACKed records are not delivered twice"
        );
        assert_eq!(q.len(), 2, "300..400 is trimmed to 350..400");
        assert_eq!(q.get(0).map(|g| g.start), Some(s(350)));
        assert_eq!(
            (q.sacked, q.lost, q.retrans, q.sacked_segments),
            (50, 0, 0, 1)
        );
        assert_eq!(q.last_unsacked(), Some(1));
    }

    /// The record walk `acknowledge` had before its borrowing path: each record copied,
    /// `uncount` asked of every one. The differential test below holds the two together.
    fn acknowledge_reference(
        q: &mut SentQueue,
        una: SeqNumber,
        mut delivered: impl FnMut(&SentSegment),
    ) {
        while let Some(&seg) = q.segs.front() {
            if seg.end <= una {
                q.uncount(&seg, seg.len());
                if seg.sacked {
                    q.sacked_segments = q.sacked_segments.saturating_sub(1);
                } else {
                    delivered(&seg);
                }
                q.segs.pop_front();
            } else {
                if seg.start < una {
                    let cut = una.since(seg.start);
                    q.uncount(&seg, cut);
                    if let Some(front) = q.segs.front_mut() {
                        front.start = una;
                    }
                }
                break;
            }
        }
    }

    /// Marks record `i` of `q` by `how` (two bits of a test's mask): 0 clean, 1 SACKed
    /// (the block reaching `sack_end`), 2 lost, 3 lost and retransmitted.
    fn mark(q: &mut SentQueue, i: u32, how: u32, sack_end: SeqNumber) {
        match how & 3 {
            1 => q.mark_sacked(s(100 * i), sack_end, |_, _| true, |_| {}),
            2 => q.mark_lost(i as usize),
            3 => {
                q.mark_lost(i as usize);
                q.retransmitted(
                    i as usize,
                    Instant::from_millis(9),
                    RateSnapshot::empty(Instant::ZERO),
                );
            }
            _ => {}
        }
    }

    fn state(q: &SentQueue) -> (Vec<SentSegment>, [u64; 5]) {
        let counters = [
            u64::from(q.sacked),
            u64::from(q.lost),
            u64::from(q.retrans),
            u64::from(q.sacked_segments),
            q.lost_total,
        ];
        (q.segs.iter().copied().collect(), counters)
    }

    #[test]
    fn acknowledge_matches_the_copying_walk() {
        // Every mix of clean, SACKed, lost and lost-and-retransmitted records (mask bits
        // per record), acknowledged at every point from before the first record to past
        // the last, in and between records: the same records delivered, the same queue
        // and counters left.
        for marks in 0..(1u32 << 10) {
            for una in (0..=520u32).step_by(10) {
                let mut q = queue();
                for i in 0..5 {
                    mark(&mut q, i, marks >> (2 * i), s(100 * (i + 1)));
                }
                let mut reference = q.clone();
                let (mut got, mut want) = (Vec::new(), Vec::new());
                q.acknowledge(s(una), |g| got.push(*g));
                acknowledge_reference(&mut reference, s(una), |g| want.push(*g));
                assert_eq!(got, want, "delivered, marks {marks:#b}, una {una}");
                assert_eq!(state(&q), state(&reference), "marks {marks:#b}, una {una}");
            }
        }
    }

    #[test]
    fn sole_covered_matches_acknowledge() {
        // Queues of one record (clean, SACKed, lost, lost and retransmitted, carrying a FIN)
        // and of two, acknowledged at every point around them: where `sole_covered` finds a
        // record, it and `drop_sole` deliver and leave what `acknowledge` does; where it
        // finds none, the queue is one `acknowledge` must walk (or leave alone).
        for records in 1..=2u32 {
            for marks in 0..(1u32 << (2 * records)) {
                for una in (0..=260u32).step_by(10) {
                    let mut q = SentQueue::new(100);
                    for i in 0..records {
                        q.push(
                            s(100 * i),
                            s(100 * (i + 1) + u32::from(i + 1 == records)),
                            i + 1 == records,
                            Instant::from_millis(u64::from(i)),
                            RateSnapshot::empty(Instant::ZERO),
                        );
                        mark(&mut q, i, marks >> (2 * i), s(100 * (i + 2)));
                    }
                    let mut reference = q.clone();
                    let mut want = Vec::new();
                    reference.acknowledge(s(una), |g| want.push(*g));
                    let got = q.sole_covered(s(una)).copied();
                    match got {
                        Some(g) => {
                            q.drop_sole();
                            assert_eq!(vec![g], want, "marks {marks:#b}, una {una}");
                            assert_eq!(state(&q), state(&reference), "marks {marks:#b}, una {una}");
                        }
                        None => assert!(
                            records > 1 || marks != 0 || una < 101,
                            "a clean sole record acknowledged, marks {marks:#b}, una {una}"
                        ),
                    }
                }
            }
        }
    }

    #[test]
    fn split_cuts_to_the_new_mss() {
        let mut q = SentQueue::new(100);
        q.push(
            s(0),
            s(1001),
            true,
            Instant::ZERO,
            RateSnapshot::empty(Instant::ZERO),
        );
        q.mark_all_lost();
        q.split(0, 400);
        q.split(1, 400);
        let parts: Vec<_> = (0..q.len())
            .filter_map(|i| q.get(i))
            .map(|g| (g.start.0, g.end.0, g.fin))
            .collect();
        assert_eq!(
            parts,
            vec![(0, 400, false), (400, 800, false), (800, 1001, true)]
        );
        assert_eq!(q.lost, 1001);
    }
}
