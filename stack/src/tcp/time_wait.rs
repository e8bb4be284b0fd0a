//! TIME-WAIT: a compact record instead of the whole `Tcb` (Linux's `tcp_timewait_sock`),
//! its answers to arriving segments, and a table of records that expire in order.
//!
//! When a connection reaches TIME-WAIT (RFC 9293 §3.10.7.4 eighth) the engine keeps
//! only a [`TimeWait`]: the 4-tuple, the two sequence numbers, the window and
//! timestamp state, and the expiry. No buffers, no timers, no congestion state: about
//! 80 bytes against the `Tcb`'s kilobyte. [`TimeWait::handle_segment`] answers what
//! arrives for it exactly as the `Tcb` did in TIME-WAIT:
//! - RFC 6191: a SYN with a newer timestamp (or, without timestamps, a higher sequence
//!   number) reopens the 4-tuple ([`TimeWaitAction::Reopen`]);
//! - RFC 7323 §5.3: PAWS drops segments with an old timestamp and ACKs;
//! - RFC 9293 §3.10.7.4: an unacceptable segment, or a retransmitted FIN, is ACKed and
//!   (for a FIN) restarts the 2 MSL timeout; a RST at RCV.NXT ends TIME-WAIT, one
//!   elsewhere in the window draws a challenge ACK (RFC 5961 §3.2).
//!
//! [`TimeWaitTable`] holds the records of one engine in a growable [`ConnTable`] and
//! a FIFO of expiry deadlines: TIME-WAIT has one length, so records expire in the order
//! they came (a restarted record is queued again at its new deadline, and its stale
//! entry skipped), and [`TimeWaitTable::expire`] pops only what is due.

use std::collections::VecDeque;

use super::State;
use super::seq::SeqNumber;
use super::tcb::Tcb;
use crate::table::{ConnInsertError, ConnTable, ConnTableConfig, HashKey};
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpOptions, TcpRepr};
use crate::{Errno, FourTuple};
use core::time::Duration;

/// RFC 7323 §5.5: a ts_recent older than 24 days is invalid.
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

/// `a < b` in timestamp space (RFC 7323 §5.3, modulo 2^32).
fn ts_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl Tcb {
    /// Linux `tcp_tw_reuse`: an active open may take over this TIME-WAIT 4-tuple when
    /// timestamps were in use and the last one from the peer is at least a second old, so
    /// PAWS on the peer rejects old duplicates.
    pub fn can_reuse_time_wait(&self, now: Instant) -> bool {
        self.state == State::TimeWait
            && self.ts_enabled
            && now - self.ts_recent_age >= Duration::from_secs(1)
    }

    /// An ISN for a connection that reuses this 4-tuple: beyond anything this incarnation
    /// sent, plus a maximal window (as Linux `tcp_twsk_unique`).
    pub fn time_wait_reuse_iss(&self) -> u32 {
        (self.snd_nxt + 65535u32 + 2u32).0
    }

    /// A new SYN reopened this connection's 4-tuple (RFC 6191): TIME-WAIT ends at once,
    /// quietly (no error, nothing sent), as Linux's `inet_twsk_deschedule_put` does.
    pub fn end_time_wait(&mut self) {
        if self.state == State::TimeWait {
            self.enter_closed(None);
        }
    }

    /// RFC 6191 §2 (and RFC 9293 Appendix B): may a new SYN reopen this TIME-WAIT
    /// connection? Yes when its timestamp is newer than the last one seen, or, without
    /// timestamps, when its sequence number is beyond the old receive sequence.
    pub fn time_wait_accepts_syn(&self, syn: &TcpRepr) -> bool {
        self.state == State::TimeWait
            && syn_reopens(self.ts_enabled, self.ts_recent, self.rcv_nxt, syn)
    }
}

/// RFC 6191 §2: the SYN acceptance rule, shared by the `Tcb` and the record.
fn syn_reopens(ts_enabled: bool, ts_recent: u32, rcv_nxt: SeqNumber, syn: &TcpRepr) -> bool {
    if !syn.flags.contains(TcpFlags::SYN) || syn.flags.intersects(TcpFlags::ACK | TcpFlags::RST) {
        return false;
    }
    match (ts_enabled, syn.options.timestamp) {
        (true, Some((tsval, _))) => (tsval.wrapping_sub(ts_recent) as i32) > 0,
        _ => SeqNumber(syn.seq_number) > rcv_nxt,
    }
}

/// Why a TIME-WAIT record answers with an ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeWaitAck {
    /// RFC 7323 §5.3 R1: the timestamp is older than ts_recent.
    Paws,
    /// RFC 9293 §3.10.7.4 first check: not acceptable (not a FIN).
    OutOfWindow,
    /// RFC 9293 §3.10.7.4: the peer's FIN again (our last ACK was lost); 2 MSL restarted.
    RetransmittedFin,
    /// RFC 5961 §3.2 / §4.2 / §5.2: RST not at RCV.NXT, SYN not reopening, ACK out of range.
    Challenge,
}

/// What to do with a segment that found a TIME-WAIT record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeWaitAction {
    /// Nothing to send.
    Drop,
    /// Send this ACK (`<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>`).
    Ack(TcpRepr, TimeWaitAck),
    /// RFC 9293 §3.10.7.4 second check: a RST at RCV.NXT ends TIME-WAIT; drop the record.
    Closed,
    /// RFC 6191: the SYN opens a new connection on this 4-tuple; drop the record and let
    /// the listener accept it with this ISS (above anything the old one sent, as Linux
    /// `tcp_timewait_state_process`).
    Reopen {
        /// The ISS for the new connection.
        iss: u32,
    },
}

/// A connection in TIME-WAIT: what RFC 9293, RFC 6191 and RFC 7323 need, nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWait {
    tuple: FourTuple,
    /// Our next sequence number (SND.MAX: after our FIN).
    snd_nxt: SeqNumber,
    /// The peer's next sequence number (after its FIN).
    rcv_nxt: SeqNumber,
    /// The receive window last advertised (bytes), for the acceptability test.
    rcv_wnd: u32,
    /// The largest window the peer offered (RFC 5961 §5.2's MAX.SND.WND).
    max_snd_wnd: u32,
    /// The window field our ACKs carry (already scaled).
    window_field: u16,
    ts_enabled: bool,
    /// RFC 7323: the last timestamp taken from the peer, and when.
    ts_recent: u32,
    ts_recent_age: Instant,
    /// Our timestamp clock as an offset from `now` in milliseconds.
    ts_offset: u32,
    expiry: Instant,
    /// RFC 5961 §7: challenge ACKs sent in the current one-second window, and its limit.
    challenge_window_start: Instant,
    challenge_count: u32,
    challenge_limit: u32,
}

impl TimeWait {
    /// The record for `tcb`, which must be in TIME-WAIT (`None` otherwise). Expires at
    /// the `Tcb`'s own 2 MSL deadline (`now` plus its `time_wait` when it has none).
    pub fn from_tcb(tcb: &Tcb, now: Instant) -> Option<TimeWait> {
        if tcb.state != State::TimeWait {
            return None;
        }
        let rcv_wnd = tcb.rcv_adv.since(tcb.rcv_nxt);
        let field = (u64::from(rcv_wnd) >> tcb.rcv_wscale).min(65535);
        Some(TimeWait {
            tuple: tcb.tuple,
            snd_nxt: tcb.snd_max,
            rcv_nxt: tcb.rcv_nxt,
            rcv_wnd,
            max_snd_wnd: tcb.max_snd_wnd,
            window_field: u16::try_from(field).unwrap_or(u16::MAX),
            ts_enabled: tcb.ts_enabled,
            ts_recent: tcb.ts_recent,
            ts_recent_age: tcb.ts_recent_age,
            // Truncation intended: the TS clock wraps modulo 2^32.
            ts_offset: tcb.ts_now(now).wrapping_sub(now.total_millis() as u32),
            expiry: tcb.close_deadline.unwrap_or(now + tcb.cfg.time_wait),
            challenge_window_start: tcb.challenge_window_start,
            challenge_count: tcb.challenge_count,
            challenge_limit: tcb.cfg.challenge_ack_limit,
        })
    }

    /// The 4-tuple.
    pub fn tuple(&self) -> FourTuple {
        self.tuple
    }

    /// When TIME-WAIT ends.
    pub fn expiry(&self) -> Instant {
        self.expiry
    }

    /// Our next sequence number.
    pub fn snd_nxt(&self) -> u32 {
        self.snd_nxt.0
    }

    /// The peer's next sequence number.
    pub fn rcv_nxt(&self) -> u32 {
        self.rcv_nxt.0
    }

    /// Linux `tcp_tw_reuse`: an active open may take over this 4-tuple when timestamps
    /// were in use and the peer's last one is at least a second old (PAWS on the peer
    /// then rejects old duplicates). Its ISS: [`TimeWait::reuse_iss`].
    pub fn can_reuse(&self, now: Instant) -> bool {
        self.ts_enabled && now - self.ts_recent_age >= Duration::from_secs(1)
    }

    /// An ISS for a connection taking over this 4-tuple: beyond anything sent, plus a
    /// maximal window (Linux `tcp_twsk_unique`).
    pub fn reuse_iss(&self) -> u32 {
        (self.snd_nxt + 65535u32 + 2u32).0
    }

    /// RFC 6191 §2: would `syn` reopen this 4-tuple?
    pub fn accepts_syn(&self, syn: &TcpRepr) -> bool {
        syn_reopens(self.ts_enabled, self.ts_recent, self.rcv_nxt, syn)
    }

    /// The ACK this record sends: `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>`, with timestamps
    /// when they were in use.
    pub fn ack(&self, now: Instant) -> TcpRepr {
        let mut options = TcpOptions::default();
        if self.ts_enabled {
            // Truncation intended: the TS clock wraps modulo 2^32.
            let tsval = (now.total_millis() as u32).wrapping_add(self.ts_offset);
            options.timestamp = Some((tsval, self.ts_recent));
        }
        TcpRepr {
            src_port: self.tuple.local_port,
            dst_port: self.tuple.remote_port,
            seq_number: self.snd_nxt.0,
            ack_number: self.rcv_nxt.0,
            flags: TcpFlags::ACK,
            window_len: self.window_field,
            urgent_pointer: 0,
            options,
        }
    }

    /// RFC 5961 §7: a challenge ACK, unless this second's allowance is spent.
    fn challenge(&mut self, now: Instant) -> TimeWaitAction {
        if now - self.challenge_window_start >= Duration::from_secs(1) {
            self.challenge_window_start = now;
            self.challenge_count = 0;
        }
        if self.challenge_count < self.challenge_limit {
            self.challenge_count += 1;
            TimeWaitAction::Ack(self.ack(now), TimeWaitAck::Challenge)
        } else {
            TimeWaitAction::Drop
        }
    }

    /// RFC 9293 §3.10.7.4 in TIME-WAIT (with RFC 6191, RFC 7323 §5.3 and RFC 5961):
    /// the answer to `seg` (carrying `payload_len` bytes of text) at `now`. A FIN that
    /// is ACKed moves the expiry to `now + time_wait`.
    pub fn handle_segment(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        payload_len: usize,
        time_wait: Duration,
    ) -> TimeWaitAction {
        let f = seg.flags;
        let (rst, syn, fin, has_ack) = (
            f.contains(TcpFlags::RST),
            f.contains(TcpFlags::SYN),
            f.contains(TcpFlags::FIN),
            f.contains(TcpFlags::ACK),
        );
        // RFC 6191 §2: a SYN newer than the old connection reopens the 4-tuple.
        if self.accepts_syn(seg) {
            return TimeWaitAction::Reopen {
                iss: self.reuse_iss(),
            };
        }
        let seq = SeqNumber(seg.seq_number);
        // RFC 7323 §5.3 R1: PAWS, before the sequence-number check.
        if self.ts_enabled && !rst {
            if let Some((tsval, _)) = seg.options.timestamp {
                if ts_before(tsval, self.ts_recent) && now - self.ts_recent_age < PAWS_IDLE {
                    return TimeWaitAction::Ack(self.ack(now), TimeWaitAck::Paws);
                }
            }
        }
        // First: sequence number acceptability (RFC 9293 §3.10.7.4 table).
        let seg_len = payload_len + usize::from(syn) + usize::from(fin);
        let right = self.rcv_nxt + self.rcv_wnd;
        let acceptable = match (seg_len, self.rcv_wnd) {
            (0, 0) => seq == self.rcv_nxt,
            (0, _) => seq.in_range(self.rcv_nxt, right),
            (_, 0) => false,
            _ => {
                seq.in_range(self.rcv_nxt, right)
                    || (seq + (seg_len - 1)).in_range(self.rcv_nxt, right)
            }
        };
        if !acceptable {
            if rst {
                return TimeWaitAction::Drop;
            }
            if fin {
                // RFC 9293 §3.10.7.4: the peer did not get our last ACK; ACK its FIN
                // again and restart the 2 MSL timeout.
                self.expiry = now + time_wait;
                return TimeWaitAction::Ack(self.ack(now), TimeWaitAck::RetransmittedFin);
            }
            return TimeWaitAction::Ack(self.ack(now), TimeWaitAck::OutOfWindow);
        }
        // Second: RST (RFC 5961 §3.2).
        if rst {
            if seq == self.rcv_nxt {
                return TimeWaitAction::Closed;
            }
            return self.challenge(now);
        }
        // RFC 7323 §4.3: remember the timestamp to echo (SEG.SEQ <= Last.ACK.sent).
        if self.ts_enabled {
            if let Some((tsval, _)) = seg.options.timestamp {
                if !ts_before(tsval, self.ts_recent) && seq <= self.rcv_nxt {
                    self.ts_recent = tsval;
                    self.ts_recent_age = now;
                }
            }
        }
        // Fourth: a SYN that does not reopen -> challenge ACK (RFC 5961 §4.2).
        if syn {
            return self.challenge(now);
        }
        // Fifth: no ACK bit -> drop.
        if !has_ack {
            return TimeWaitAction::Drop;
        }
        // RFC 5961 §5.2: acceptable ACKs lie in [SND.UNA - MAX.SND.WND, SND.NXT]
        // (everything is acknowledged in TIME-WAIT: SND.UNA = SND.NXT).
        let ack = SeqNumber(seg.ack_number);
        if ack > self.snd_nxt || ack < self.snd_nxt - self.max_snd_wnd.max(1) {
            return self.challenge(now);
        }
        // Seventh: text is ignored in TIME-WAIT. Eighth: a FIN restarts 2 MSL. A FIN at
        // or beyond RCV.NXT (a second FIN: a peer bug or a forgery) is ACKed without
        // moving RCV.NXT, as Linux `tcp_timewait_state_process` does (the `Tcb` moved
        // RCV.NXT over it).
        if fin {
            self.expiry = now + time_wait;
            return TimeWaitAction::Ack(self.ack(now), TimeWaitAck::RetransmittedFin);
        }
        TimeWaitAction::Drop
    }
}

/// Counters of one [`TimeWaitTable`], plain integers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWaitCounters {
    /// Records inserted.
    pub inserted: u64,
    /// Records that reached their expiry.
    pub expired: u64,
    /// Records ended by a RST at RCV.NXT.
    pub reset: u64,
    /// Records ended by a SYN that reopened the 4-tuple (RFC 6191).
    pub reopened: u64,
    /// Records taken over by an active open (`tcp_tw_reuse`).
    pub reused: u64,
    /// Segments PAWS rejected.
    pub paws_rejected: u64,
    /// ACKs sent (every reason).
    pub acks: u64,
    /// Inserts refused at a limit (ENOBUFS): the connection closes without TIME-WAIT,
    /// as Linux does when `tcp_max_tw_buckets` is reached.
    pub refused: u64,
}

/// Entries of the expiry FIFO in one chunk (chunks never move; a drained one is kept
/// for reuse, so a steady rate of closes allocates nothing).
const EXPIRY_CHUNK: usize = 1024;

/// A FIFO of (deadline, 4-tuple) in fixed chunks: no large copy as it grows.
#[derive(Debug, Clone, Default)]
struct ExpiryQueue {
    chunks: VecDeque<Vec<(Instant, FourTuple)>>,
    /// Index of the next entry in the front chunk.
    front: usize,
    spare: Option<Vec<(Instant, FourTuple)>>,
}

impl ExpiryQueue {
    fn push(&mut self, deadline: Instant, tuple: FourTuple) -> Result<(), Errno> {
        if self.chunks.back().is_none_or(|c| c.len() == EXPIRY_CHUNK) {
            let chunk = match self.spare.take() {
                Some(chunk) => chunk,
                None => {
                    let mut chunk = Vec::new();
                    chunk
                        .try_reserve_exact(EXPIRY_CHUNK)
                        .map_err(|_| Errno::ENOBUFS)?;
                    chunk
                }
            };
            self.chunks.try_reserve(1).map_err(|_| Errno::ENOBUFS)?;
            self.chunks.push_back(chunk);
        }
        if let Some(back) = self.chunks.back_mut() {
            back.push((deadline, tuple));
        }
        Ok(())
    }

    fn peek(&self) -> Option<(Instant, FourTuple)> {
        self.chunks.front().and_then(|c| c.get(self.front)).copied()
    }

    fn pop(&mut self) {
        let Some(front) = self.chunks.front() else {
            return;
        };
        self.front += 1;
        if self.front == front.len() && (front.len() == EXPIRY_CHUNK || self.chunks.len() > 1) {
            if let Some(mut chunk) = self.chunks.pop_front() {
                chunk.clear();
                self.spare = Some(chunk);
            }
            self.front = 0;
        }
    }

    fn memory_bytes(&self) -> usize {
        let entry = core::mem::size_of::<(Instant, FourTuple)>();
        let chunks = self.chunks.len() + usize::from(self.spare.is_some());
        chunks * EXPIRY_CHUNK * entry
            + self.chunks.capacity() * core::mem::size_of::<Vec<(Instant, FourTuple)>>()
    }
}

/// The TIME-WAIT records of one engine, by 4-tuple, expiring in order.
#[derive(Debug, Clone)]
pub struct TimeWaitTable {
    records: ConnTable<TimeWait>,
    expiry: ExpiryQueue,
    time_wait: Duration,
    /// Traffic and refusals.
    pub counters: TimeWaitCounters,
}

impl TimeWaitTable {
    /// A table bounded by `config`, hashing with `key`; records last `time_wait` (2 MSL)
    /// and a retransmitted FIN restarts that.
    pub fn new(config: ConnTableConfig, key: HashKey, time_wait: Duration) -> Result<Self, Errno> {
        Ok(TimeWaitTable {
            records: ConnTable::with_config(config, key)?,
            expiry: ExpiryQueue::default(),
            time_wait,
            counters: TimeWaitCounters::default(),
        })
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes of table memory (records, buckets and the expiry FIFO).
    pub fn memory_bytes(&self) -> usize {
        self.records.memory_bytes() + self.expiry.memory_bytes()
    }

    /// Whether `tuple` is in TIME-WAIT here.
    pub fn contains(&self, tuple: &FourTuple) -> bool {
        self.records.contains(tuple)
    }

    /// The record for `tuple`.
    pub fn get(&self, tuple: &FourTuple) -> Option<&TimeWait> {
        self.records.get(tuple)
    }

    /// Adds a record. At a limit it is ENOBUFS and counted (the connection then simply
    /// closes, as Linux does past `tcp_max_tw_buckets`); a present 4-tuple is EADDRINUSE.
    pub fn insert(&mut self, record: TimeWait) -> Result<(), ConnInsertError<TimeWait>> {
        let (tuple, expiry) = (record.tuple, record.expiry);
        if let Err(e) = self.records.insert(tuple, record) {
            self.counters.refused += 1;
            return Err(e);
        }
        if let Err(errno) = self.expiry.push(expiry, tuple) {
            let value = self.records.remove(&tuple).unwrap_or(record);
            self.counters.refused += 1;
            return Err(ConnInsertError { errno, value });
        }
        self.counters.inserted += 1;
        Ok(())
    }

    /// Answers a segment for `tuple`; `None` when no record holds it. A reset or a
    /// reopening SYN removes the record; a restarted expiry is queued again.
    pub fn handle_segment(
        &mut self,
        tuple: &FourTuple,
        now: Instant,
        seg: &TcpRepr,
        payload_len: usize,
    ) -> Option<TimeWaitAction> {
        let record = self.records.get_mut(tuple)?;
        let before = record.expiry;
        let action = record.handle_segment(now, seg, payload_len, self.time_wait);
        let after = record.expiry;
        match action {
            TimeWaitAction::Closed => {
                self.records.remove(tuple);
                self.counters.reset += 1;
            }
            TimeWaitAction::Reopen { .. } => {
                self.records.remove(tuple);
                self.counters.reopened += 1;
            }
            TimeWaitAction::Ack(_, reason) => {
                self.counters.acks += 1;
                if reason == TimeWaitAck::Paws {
                    self.counters.paws_rejected += 1;
                }
                // A failed push only makes the record live until its old deadline.
                if after != before && self.expiry.push(after, *tuple).is_err() {
                    if let Some(r) = self.records.get_mut(tuple) {
                        r.expiry = before;
                    }
                }
            }
            TimeWaitAction::Drop => {}
        }
        Some(action)
    }

    /// Linux `tcp_tw_reuse` for an active open on `tuple`: removes and returns the record
    /// when it may be taken over ([`TimeWait::can_reuse`]).
    pub fn take_for_reuse(&mut self, tuple: &FourTuple, now: Instant) -> Option<TimeWait> {
        if !self.records.get(tuple)?.can_reuse(now) {
            return None;
        }
        self.counters.reused += 1;
        self.records.remove(tuple)
    }

    /// Removes the records due at `now`, at most `budget` of them (the rest wait for the
    /// next call), calling `gone` with each 4-tuple (to release its port). Returns how many
    /// queue entries were looked at; the cost follows what expired, not the table's size.
    pub fn expire(
        &mut self,
        now: Instant,
        budget: usize,
        mut gone: impl FnMut(FourTuple),
    ) -> usize {
        let mut looked = 0;
        while looked < budget {
            let Some((deadline, tuple)) = self.expiry.peek() else {
                break;
            };
            if deadline > now {
                break;
            }
            self.expiry.pop();
            looked += 1;
            // A record restarted later (or gone, or replaced) has its own entry.
            if self.records.get(&tuple).is_some_and(|r| r.expiry <= now) {
                self.records.remove(&tuple);
                self.counters.expired += 1;
                gone(tuple);
            }
        }
        looked
    }

    /// The earliest deadline queued (`None` when nothing waits).
    pub fn poll_at(&self) -> Option<Instant> {
        self.expiry.peek().map(|(deadline, _)| deadline)
    }
}
