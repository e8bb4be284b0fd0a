//! Buffer autotuning: the receive buffer (and with it the advertised window) grows with the
//! rate the application reads at, the send buffer with the congestion window, each from the
//! configured initial size up to its maximum ([`TcpConfig::autotune`]).
//!
//! The receive side is Linux's dynamic right-sizing (`tcp_rcv_space_adjust`, after Fisher's
//! DRS): once per receiver round trip, the bytes the application read in that round trip
//! are compared with the most it read in any earlier one; when it read more, the buffer
//! becomes about twice that plus sixteen segments, and more when the rate is still climbing,
//! so the sender is never limited by the window while the application keeps up. A slow
//! reader never grows it. The window only grows: the advertised right edge never moves
//! left (RFC 9293 §3.8.6.2.2), and the capacity never shrinks.
//!
//! The send side is `tcp_sndbuf_expand`: room for twice the congestion window (what is in
//! flight plus as much again queued behind it), so the application keeps the pipe full.
//!
//! Only the logical capacity grows: the ring's storage still follows what is queued
//! (`buffer.rs`), so a connection whose reader keeps up holds little, and an idle one
//! nothing. `SO_RCVBUF`/`SO_SNDBUF` pin a direction (Linux `SOCK_RCVBUF_LOCK`).
//!
//! [`TcpConfig::autotune`]: super::TcpConfig::autotune

use super::seq::SeqNumber;
use super::tcb::Tcb;
use crate::time::Instant;
use crate::wire::TcpRepr;

/// Linux `TCP_INIT_CWND`: the first measurement expects ten segments per round trip.
const INITIAL_SPACE_SEGMENTS: u32 = 10;
/// Segments of slack on top of twice the measured rate (Linux: `16 * advmss`).
const SLACK_SEGMENTS: u64 = 16;
/// A TSecr older than this, in milliseconds (60 s), gives no receiver RTT sample (a
/// stale or bogus echo).
const MAX_RCV_RTT_SAMPLE_MS: u32 = 60_000;

impl Tcb {
    /// Linux `tcp_rcv_rtt_measure_ts`: the receiver's RTT from the TSecr of in-order data
    /// at least one MSS long, once per echoed value (the first segment that echoes it is the
    /// one sent soonest after our ACK arrived), smoothed with gain 1/8.
    pub(super) fn measure_rcv_rtt(&mut self, now: Instant, seg: &TcpRepr, len: usize) {
        if !self.ts_enabled || (len as u64) < u64::from(self.rcv_mss) {
            return;
        }
        let Some((_, ecr)) = seg.options.timestamp else {
            return;
        };
        if ecr == 0 || ecr == self.rcv_rtt_last_tsecr {
            return;
        }
        self.rcv_rtt_last_tsecr = ecr;
        let elapsed_ms = self.ts_now(now).wrapping_sub(ecr);
        // A TSecr from the future wraps to a huge value and is ignored with the stale ones.
        let elapsed_ms = elapsed_ms.max(1);
        if elapsed_ms > MAX_RCV_RTT_SAMPLE_MS {
            return;
        }
        // At most 60 s: 6e7 µs fits.
        let sample = elapsed_ms * 1000;
        self.rcv_rtt = if self.rcv_rtt == 0 {
            sample.saturating_mul(8)
        } else {
            // rtt8 = 7/8 rtt8 + sample, i.e. rtt = 7/8 rtt + 1/8 sample.
            (self.rcv_rtt - (self.rcv_rtt >> 3)).saturating_add(sample)
        };
    }

    /// The receiver's round-trip estimate in nanoseconds: from timestamps, else the
    /// connection's own RTT estimate (the handshake's at least). Linux measures one window's
    /// arrival instead when timestamps are off; the handshake RTT is close enough to pace
    /// the measurement. (Integers: this is asked for every in-order segment.)
    #[inline(always)]
    fn receiver_rtt_nanos(&self) -> Option<u64> {
        if self.rcv_rtt != 0 {
            return Some(u64::from(self.rcv_rtt >> 3) * 1000);
        }
        self.rtt.srtt_nanos().filter(|&d| d != 0)
    }

    /// The sequence number up to which the application has read (Linux `copied_seq`).
    fn copied_seq(&self) -> SeqNumber {
        self.rcv_nxt - self.recv_buf.len() as u32
    }

    /// Linux `tcp_rcv_space_adjust` (DRS), run as in-order data arrives: once per receiver
    /// round trip, grow the receive buffer to twice what the application read in that
    /// round trip, plus slack, when that is more than it ever read in one before.
    ///
    /// The test for "still within the round trip" (nearly every segment) is inlined into
    /// the input path, and so is the measurement's common case (see
    /// [`Self::rcv_space_measure`]); only the buffer's growth is out of line.
    #[inline(always)]
    pub(super) fn rcv_space_adjust(&mut self, now: Instant) {
        if self.rcvq_space == 0 {
            self.rcv_space_init(now);
            return;
        }
        let Some(rtt_nanos) = self.receiver_rtt_nanos() else {
            return;
        };
        // `now - rcvq_time < rtt`, in nanoseconds (saturating: a span too long for a u64
        // of nanoseconds exceeds every RTT).
        if now.micros_since(self.rcvq_time).saturating_mul(1000) < rtt_nanos {
            return;
        }
        self.rcv_space_measure(now);
    }

    /// Linux `tcp_init_buffer_space`: the first in-order data starts the measurement,
    /// expecting ten segments in the first round trip.
    #[cold]
    #[inline(never)]
    fn rcv_space_init(&mut self, now: Instant) {
        let window = u32::try_from(self.recv_buf.capacity()).unwrap_or(u32::MAX);
        let segments = INITIAL_SPACE_SEGMENTS.saturating_mul(u32::from(self.cfg.mss));
        self.rcvq_space = window.min(segments).max(1);
        self.rcvq_seq = self.copied_seq();
        self.rcvq_time = now;
    }

    /// [`Self::rcv_space_adjust`] once a receiver round trip passed since the last
    /// measurement (`rcvq_space` is set): the round trip starts again, and the buffer
    /// grows when the application read more in it than in any before. Inlined: the new
    /// round trip is two stores and the test, less than the call that made them (a
    /// request/response exchange measures about every other segment); the growth, rare
    /// once the rate settles, stays out of line.
    #[inline(always)]
    fn rcv_space_measure(&mut self, now: Instant) {
        let copied_seq = self.copied_seq();
        let copied = copied_seq.since(self.rcvq_seq);
        if copied > self.rcvq_space {
            self.rcv_space_grow(copied);
        }
        self.rcvq_seq = copied_seq;
        self.rcvq_time = now;
    }

    /// [`Self::rcv_space_measure`] when the application read `copied` bytes in the last
    /// round trip, more than in any before: the receive buffer grows to hold twice that
    /// and more (up to the limit), and `copied` is the new most.
    #[cold]
    #[inline(never)]
    fn rcv_space_grow(&mut self, copied: u32) {
        let limit = self.cfg.recv_buffer_limit();
        if limit > self.recv_buf.capacity() {
            let space = u64::from(self.rcvq_space);
            let copied64 = u64::from(copied);
            let advmss = u64::from(self.cfg.mss);
            // rcvwin = 2 * copied + 16 * advmss, plus twice the growth over the last
            // measurement in proportion, so a rate still doubling gets ahead of it.
            let mut window = 2 * copied64 + SLACK_SEGMENTS * advmss;
            let grow = window.saturating_mul(copied64 - space) / space.max(1);
            window = window.saturating_add(grow.saturating_mul(2));
            let size = usize::try_from(window).unwrap_or(usize::MAX).min(limit);
            if size > self.recv_buf.capacity() {
                self.recv_buf.grow_capacity(size);
                if self.cfg.ooo_max_bytes >= self.cfg.recv_buffer {
                    // The out-of-order bound was the whole buffer: it stays so.
                    self.ooo.raise_max_bytes(size);
                }
            }
        }
        self.rcvq_space = copied;
    }

    /// Linux `tcp_sndbuf_expand`, on each ACK of new data: room for twice the congestion
    /// window (at least the initial window), within the send buffer's maximum.
    ///
    /// The capacity never shrinks and the limit never rises on a connection (pinning lowers
    /// it to the capacity), so once the buffer was sized for a window at this MSS, any
    /// window no larger changes nothing: that test (every ACK of a request/response
    /// exchange, whose window stays put) skips the configuration and the arithmetic.
    pub(super) fn expand_send_buffer(&mut self) {
        let cwnd = self.cc.window();
        let (sized_cwnd, sized_mss) = self.send_buf_sized_for;
        if cwnd <= sized_cwnd && self.snd_mss == sized_mss {
            return;
        }
        self.expand_send_buffer_for(cwnd);
    }

    /// [`Self::expand_send_buffer`] for a window the buffer was not sized for yet.
    #[inline(never)]
    fn expand_send_buffer_for(&mut self, cwnd: u32) {
        let limit = self.cfg.send_buffer_limit();
        if limit > self.send_buf.capacity() {
            let mss = self.snd_mss.max(1);
            let initial = self.cfg.initial_window.max(1).saturating_mul(mss);
            let target = u64::from(cwnd.max(initial)) * 2;
            let size = usize::try_from(target).unwrap_or(usize::MAX).min(limit);
            if size > self.send_buf.capacity() {
                self.send_buf.grow_capacity(size);
            }
        }
        self.send_buf_sized_for = (cwnd, self.snd_mss);
    }

    /// `setsockopt(SO_RCVBUF)` on a connection: autotuning stops for the receive side
    /// (Linux `SOCK_RCVBUF_LOCK`) and the buffer becomes `bytes`. A buffer is never made
    /// smaller than it is (the window it advertised must stay receivable), where Linux
    /// lowers `sk_rcvbuf` and lets the window close as data is read.
    pub fn pin_recv_buffer(&mut self, bytes: usize) {
        self.recv_buf.grow_capacity(bytes);
        let max = self.recv_buf.capacity();
        let cfg = self.cfg_mut();
        cfg.recv_buffer_max = max;
        cfg.recv_buffer = cfg.recv_buffer.min(max);
    }

    /// `setsockopt(SO_SNDBUF)` on a connection: autotuning stops for the send side (Linux
    /// `SOCK_SNDBUF_LOCK`) and the buffer becomes `bytes`, never smaller than it is.
    pub fn pin_send_buffer(&mut self, bytes: usize) {
        self.send_buf.grow_capacity(bytes);
        let max = self.send_buf.capacity();
        let cfg = self.cfg_mut();
        cfg.send_buffer_max = max;
        cfg.send_buffer = cfg.send_buffer.min(max);
    }
}

#[cfg(test)]
mod tests {
    use super::super::TcpConfig;
    use super::*;
    use crate::FourTuple;
    use core::net::Ipv4Addr;

    /// `tcp_sndbuf_expand` as written before the sized-for test: what every ACK must give.
    fn expanded_capacity(tcb: &Tcb, capacity: usize) -> usize {
        let limit = tcb.cfg.send_buffer_limit();
        if limit <= capacity {
            return capacity;
        }
        let mss = tcb.snd_mss.max(1);
        let initial = tcb.cfg.initial_window.max(1).saturating_mul(mss);
        let target = u64::from(tcb.cc.window().max(initial)) * 2;
        let size = usize::try_from(target).unwrap_or(usize::MAX).min(limit);
        capacity.max(size)
    }

    /// The send buffer follows the window exactly as recomputing it on every ACK would:
    /// through growth, a window that falls and grows back, an MSS that rises and a pin.
    #[test]
    fn send_buffer_sized_for_test_matches_recomputing_on_every_ack() {
        let cfg = TcpConfig {
            send_buffer: 16 * 1024,
            send_buffer_max: 1 << 20,
            autotune: true,
            ..TcpConfig::default()
        };
        let tuple = FourTuple {
            local_addr: Ipv4Addr::new(10, 0, 0, 1),
            local_port: 1000,
            remote_addr: Ipv4Addr::new(10, 0, 0, 2),
            remote_port: 2000,
        };
        let mut tcb = Tcb::connect(tuple, 1, Instant::ZERO, &cfg);
        let steps: [(u32, u32); 12] = [
            (14_480, 1448),
            (20_000, 1448),
            (20_000, 1448),
            (8_000, 1448),
            (19_000, 1448),
            (40_000, 1448),
            (40_000, 536),
            (40_000, 9000),
            (90_000, 9000),
            (600_000, 9000),
            (700_000, 9000),
            (1_000, 9000),
        ];
        let mut grew = 0;
        for (i, &(cwnd, mss)) in steps.iter().enumerate() {
            if i == 10 {
                tcb.pin_send_buffer(300_000);
            }
            tcb.cc.set_window(cwnd);
            tcb.snd_mss = mss;
            let before = tcb.send_buf.capacity();
            let want = expanded_capacity(&tcb, before);
            tcb.expand_send_buffer();
            assert_eq!(
                tcb.send_buf.capacity(),
                want,
                "step {i}: cwnd {cwnd}, mss {mss}"
            );
            grew += usize::from(want > before);
        }
        // The scenario exercises growth, not only the early return.
        assert!(grew >= 4, "grew {grew} times");
    }
}
