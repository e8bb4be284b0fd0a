//! Deadlines of one connection: retransmission (RFC 6298), delayed ACK (RFC 1122 §4.2.3.2),
//! persist (RFC 9293 §3.8.6.1), keepalive (RFC 1122 §4.2.3.6), user timeout (RFC 5482),
//! TIME-WAIT (RFC 9293 §3.10.7.4) and the FIN-WAIT-2 timeout.
//!
//! The connection only reports its earliest deadline; the engine keeps it in its timer wheel.

use super::State;
use super::error::TcpError;
use super::tcb::{Probe, Tcb};
use crate::time::Instant;

/// A deadline as microseconds, "none" as the largest value: a minimum over these
/// compares without branches (a chain of `Option` matches costs about twice as many
/// instructions, an iterator over an array twice that). A deadline at
/// [`Instant::MAX`] counts as none, in [`Tcb::poll_at`] as in [`Tcb::poll_at_all`].
#[inline(always)]
fn micros(d: Option<Instant>) -> u64 {
    d.map_or(u64::MAX, Instant::total_micros)
}

impl Tcb {
    /// The keepalive deadline, when keepalive is on and the connection is idle.
    fn keepalive_deadline(&self) -> Option<Instant> {
        let ka = self.cfg.keepalive?;
        if !matches!(
            self.state,
            State::Established | State::CloseWait | State::FinWait2
        ) {
            return None;
        }
        // RFC 1122 §4.2.3.6: probe only an idle connection (nothing unacknowledged or queued).
        if self.snd_una != self.snd_max || self.unsent() > 0 {
            return None;
        }
        Some(
            self.last_recv
                + ka.idle
                + ka.interval
                    .checked_mul(self.keepalive_probes)
                    .unwrap_or(core::time::Duration::MAX),
        )
    }

    fn user_timeout_deadline(&self) -> Option<Instant> {
        let timeout = self.cfg.user_timeout?;
        if !self.is_established() || self.state == State::TimeWait {
            return None;
        }
        self.progress_since.map(|t| t + timeout)
    }

    /// The earliest instant `handle_timeout` has work to do, if any.
    ///
    /// Asked after every input, output and timer of every connection. Most of the
    /// time only the retransmission, tail-loss-probe (armed with data in flight) and
    /// delayed-ACK timers can be armed: when none of the others can be (no RACK,
    /// persist, close or pacing deadline, no keepalive or user timeout configured)
    /// the minimum of those three is the answer; otherwise
    /// `poll_at_all` takes every deadline. The "others" test is
    /// one OR of flags, cheaper than taking their minimum (the 64-byte echo, four
    /// calls an echo: ~150 instructions fewer per echo at 100 connections, ~80 at 1).
    #[inline]
    pub fn poll_at(&self) -> Option<Instant> {
        let others = self.rack_deadline.is_some()
            | self.persist_deadline.is_some()
            | self.close_deadline.is_some()
            | self.pacing_release().is_some()
            | self.cfg.keepalive.is_some()
            | self.cfg.user_timeout.is_some();
        let due = if others {
            self.poll_at_all()
        } else {
            let due = micros(self.rto_deadline)
                .min(micros(self.tlp_deadline))
                .min(micros(self.delack_deadline));
            (due != u64::MAX).then(|| Instant::from_micros(due))
        };
        debug_assert_eq!(due, self.poll_at_all(), "poll_at's shortcut");
        due
    }

    /// [`poll_at`](Self::poll_at) over every deadline.
    #[inline(never)]
    fn poll_at_all(&self) -> Option<Instant> {
        // Straight-line minimum over the deadlines as microseconds (see `micros`).
        let due = micros(self.rto_deadline)
            .min(micros(self.rack_deadline))
            .min(micros(self.tlp_deadline))
            .min(micros(self.delack_deadline))
            .min(micros(self.pacing_release()))
            .min(micros(self.persist_deadline))
            .min(micros(self.close_deadline))
            .min(micros(self.keepalive_deadline()))
            .min(micros(self.user_timeout_deadline()));
        (due != u64::MAX).then(|| Instant::from_micros(due))
    }

    /// Runs every timer due at `now`. Output, if any, comes from `poll_transmit`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.run_timers(now);
    }

    fn run_timers(&mut self, now: Instant) {
        if let Some(s) = &mut self.sender {
            if s.pacing_release.is_some_and(|d| d <= now) {
                // The pacer lets data out again: `poll_transmit` sends it.
                s.pacing_release = None;
            }
        }
        if self.close_deadline.is_some_and(|d| d <= now) {
            self.close_deadline = None;
            if matches!(self.state, State::TimeWait | State::FinWait2) {
                self.enter_closed(None);
                return;
            }
        }
        if self.user_timeout_deadline().is_some_and(|d| d <= now) {
            // RFC 5482 / Linux TCP_USER_TIMEOUT: data unacknowledged for too long.
            self.fail_timeout();
            return;
        }
        if self.rto_deadline.is_some_and(|d| d <= now) {
            self.rto_deadline = None;
            self.on_retransmission_timeout(now);
            if self.state == State::Closed {
                return;
            }
        }
        if self.rack_deadline.is_some_and(|d| d <= now) {
            // RFC 8985 §6.2: the reordering window of a segment ran out.
            self.rack_deadline = None;
            if self.rack_mode() && self.is_established() {
                self.rack_detect(now);
            }
        }
        if self.tlp_deadline.is_some_and(|d| d <= now) {
            self.tlp_deadline = None;
            self.on_probe_timeout(now);
        }
        if self.delack_deadline.is_some_and(|d| d <= now) {
            self.delack_deadline = None;
            self.delack_fired = true;
            self.ack_now = true;
        }
        if self.persist_deadline.is_some_and(|d| d <= now) {
            self.persist_deadline = None;
            self.on_persist_timeout();
            if self.state == State::Closed {
                return;
            }
        }
        if self.keepalive_deadline().is_some_and(|d| d <= now) {
            let count = self.cfg.keepalive.map_or(0, |k| k.count);
            if self.keepalive_probes >= count {
                // RFC 1122 §4.2.3.6: the peer stopped answering.
                self.fail_timeout();
                return;
            }
            self.keepalive_probes += 1;
            self.probe = Some(Probe::Keepalive);
        }
    }

    /// Gives up with ETIMEDOUT, or with the ICMP soft error seen meanwhile (RFC 1122 §4.2.3.9).
    fn fail_timeout(&mut self) {
        let err = self.soft_error.unwrap_or(TcpError::TimedOut);
        self.enter_closed(Some(err));
    }

    /// RFC 6298 §5.4-§5.7 on expiry of the retransmission timer.
    fn on_retransmission_timeout(&mut self, now: Instant) {
        self.stats.rto_expirations += 1;
        match self.state {
            State::SynSent | State::SynReceived => {
                let limit = if self.state == State::SynSent {
                    self.cfg.syn_retries
                } else {
                    self.cfg.synack_retries
                };
                if self.backoff >= limit {
                    self.fail_timeout();
                    return;
                }
                self.backoff += 1;
                self.syn_pending = true;
                self.rtt_sample = None;
            }
            State::Closed | State::Listen | State::TimeWait => {}
            _ => {
                if self.snd_una == self.snd_max {
                    return;
                }
                if self.backoff >= self.cfg.data_retries {
                    self.fail_timeout();
                    return;
                }
                // RFC 6298 §5.5: back off the timer.
                self.backoff += 1;
                // Linux: after loss, the receiver side ACKs quickly too.
                self.quickack = self.quickack.max(self.cfg.quickack_segments.min(2));
                if self.rack_mode() {
                    self.rto_with_sack(now);
                    return;
                }
                let flight = self.snd_max.since(self.snd_una);
                // RFC 5681 §3.1: ssthresh = max(FlightSize/2, 2*SMSS), cwnd = 1 SMSS.
                self.cc.on_rto(now, flight, self.snd_mss);
                // RFC 6582 §4: after a timeout, recover = highest sequence sent.
                self.recover = self.snd_max;
                self.in_recovery = false;
                self.dup_acks = 0;
                // Go back N: resend from SND.UNA as the window reopens (Karn: no RTT sample).
                self.snd_nxt = self.snd_una;
                self.rtt_sample = None;
                self.retransmit_head = false;
            }
        }
    }

    /// RFC 9293 §3.8.6.1: probe a zero window, backing off like the RTO, forever while the
    /// peer answers; give up after `data_retries` unanswered probes (as Linux).
    fn on_persist_timeout(&mut self) {
        // Nothing in flight is SND.NXT = SND.UNA (as `maybe_arm_persist` arms it): after an
        // RTO's go-back-N, SND.MAX stays beyond.
        if !self.is_established() || self.unsent() == 0 || self.snd_una != self.snd_nxt {
            return;
        }
        if self.persist_unanswered >= self.cfg.data_retries {
            self.fail_timeout();
            return;
        }
        self.persist_unanswered += 1;
        self.persist_backoff += 1;
        let flight = self.snd_nxt.since(self.snd_una);
        let usable = self.snd_wnd.min(self.cc.window()).saturating_sub(flight);
        if usable > 0 {
            // A small window that sender SWS avoidance held back: send what fits
            // (RFC 1122 §4.2.3.4 override timeout).
            self.force_send = true;
        } else {
            self.probe = Some(Probe::Window);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FourTuple;
    use crate::tcp::config::{KeepaliveConfig, TcpConfig};
    use core::net::Ipv4Addr;
    use core::time::Duration;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn deadline() -> impl Strategy<Value = Option<Instant>> {
        prop_oneof![
            Just(None),
            Just(Some(Instant::MAX)),
            Just(Some(Instant::ZERO)),
            (0u64..1_000_000).prop_map(|t| Some(Instant::from_micros(t))),
        ]
    }

    /// A deadline mostly not armed (as the rare ones are), so that cases take
    /// `poll_at`'s shortcut about a quarter of the time.
    fn rare_deadline() -> impl Strategy<Value = Option<Instant>> {
        prop_oneof![8 => Just(None), 2 => deadline()]
    }

    proptest! {
        /// `poll_at`'s shortcut (retransmission and delayed ACK only) answers as the
        /// minimum over every deadline, whichever are armed, configured or at
        /// `Instant::MAX` (none, for both).
        #[test]
        fn poll_at_is_the_minimum_over_every_deadline(
            rto in deadline(),
            delack in deadline(),
            rack in rare_deadline(),
            tlp in deadline(),
            persist in rare_deadline(),
            close in rare_deadline(),
            pacing in prop::option::of(rare_deadline()),
            keepalive in prop::bool::weighted(0.1),
            user_timeout in prop::bool::weighted(0.1),
            progress_since in deadline(),
            state in prop_oneof![
                Just(State::SynSent),
                Just(State::Established),
                Just(State::FinWait2),
                Just(State::TimeWait),
            ],
        ) {
            let tuple = FourTuple {
                local_addr: Ipv4Addr::new(198, 18, 0, 1),
                local_port: 1000,
                remote_addr: Ipv4Addr::new(198, 18, 0, 2),
                remote_port: 2000,
            };
            let cfg = TcpConfig {
                keepalive: keepalive.then(KeepaliveConfig::default),
                user_timeout: user_timeout.then_some(Duration::from_secs(3)),
                ..TcpConfig::default()
            };
            let mut tcb = Tcb::connect(tuple, 1, Instant::ZERO, &TcpConfig::default());
            tcb.cfg = Arc::new(cfg);
            tcb.state = state;
            tcb.rto_deadline = rto;
            tcb.delack_deadline = delack;
            tcb.rack_deadline = rack;
            tcb.tlp_deadline = tlp;
            tcb.persist_deadline = persist;
            tcb.close_deadline = close;
            tcb.progress_since = progress_since;
            if let Some(release) = pacing {
                tcb.sender_model(Instant::ZERO).pacing_release = release;
            }
            let expected = [
                rto,
                delack,
                rack,
                tlp,
                persist,
                close,
                pacing.flatten(),
                tcb.keepalive_deadline(),
                tcb.user_timeout_deadline(),
            ]
            .into_iter()
            .flatten()
            .filter(|&d| d != Instant::MAX)
            .min();
            prop_assert_eq!(tcb.poll_at_all(), expected);
            prop_assert_eq!(tcb.poll_at(), expected);
        }
    }
}
