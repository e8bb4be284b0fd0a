//! The transmission control block (RFC 9293 §3.3.1) and its user calls (RFC 9293 §3.10.1-§3.10.6).

use super::State;
use super::bbr::Bbr;
use super::buffer::RingBuffer;
use super::config::{CongestionAlgorithm, LossRecovery, TcpConfig};
use super::congestion::{AckSample, BbrInfo, CongestionControl, NewReno};
use super::cubic::Cubic;
use super::error::TcpError;
use super::ooo::OutOfOrderQueue;
use super::pacing::Pacer;
use super::rack::Rack;
use super::rate::RateSampler;
use super::rtt::RttEstimator;
use super::sack::SackScoreboard;
use super::sent::SentQueue;
use super::seq::SeqNumber;
use super::stats::{TcpCounters, TcpStats};
use crate::FourTuple;
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpRepr};
use std::sync::Arc;

/// Why a probe segment (`SEG.SEQ = SND.UNA - 1`, no data) is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Probe {
    /// RFC 9293 §3.8.6.1 zero-window probe.
    Window,
    /// RFC 1122 §4.2.3.6 keepalive.
    Keepalive,
}

/// Which probe the tail-loss-probe timer asked for (RFC 8985 §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TailProbe {
    /// One new segment, if the windows allow.
    NewData,
    /// The last segment not SACKed, again.
    Retransmit,
}

/// F-RTO progress after a retransmission timeout (RFC 5682 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Frto {
    /// The first unacknowledged segment was retransmitted; waiting for the first ACK.
    Retransmitted,
    /// The first ACK advanced the window: up to two new segments go out; the next ACK decides.
    NewDataSent {
        /// New segments still allowed out beyond cwnd.
        allowance: u32,
    },
}

/// What a sending connection measures and paces with (`rate.rs`, `pacing.rs`).
#[derive(Debug, Clone)]
pub(super) struct SenderModel {
    /// Delivery-rate sampling for the congestion controller (with SACK only).
    pub rate: RateSampler,
    /// Pacing, and the time it holds data back until, if it does.
    pub pacer: Pacer,
    pub pacing_release: Option<Instant>,
}

/// Intervals of the sender's SACK scoreboard (bounded against hostile SACK streams): as
/// many as a surge receiver keeps out-of-order ranges (`TcpConfig::ooo_max_ranges`), or
/// the scoreboard overflows against it (66.7 Mbit/s instead of 86.5 on the goodput
/// harness's clean 100 Mbit/s link with 128 and 64).
pub(super) const SACK_SCOREBOARD_RANGES: usize = 256;

/// One TCP connection: the RFC's transmission control block plus its buffers and timers.
#[derive(Debug)]
pub struct Tcb {
    pub(super) cfg: Arc<TcpConfig>,
    pub(super) tuple: FourTuple,
    pub(super) state: State,
    pub(super) passive: bool,
    pub(super) error: Option<TcpError>,
    pub(super) soft_error: Option<TcpError>,

    // Send sequence space (RFC 9293 §3.3.1).
    pub(super) iss: SeqNumber,
    pub(super) snd_una: SeqNumber,
    pub(super) snd_nxt: SeqNumber,
    /// Highest sequence number sent plus one (snd_nxt goes back on RTO).
    pub(super) snd_max: SeqNumber,
    pub(super) snd_wnd: u32,
    pub(super) max_snd_wnd: u32,
    pub(super) snd_wl1: SeqNumber,
    pub(super) snd_wl2: SeqNumber,
    /// Sequence number of the first byte in `send_buf`.
    pub(super) snd_buf_start: SeqNumber,
    pub(super) send_buf: RingBuffer,
    /// The user shut down writing: a FIN follows the queued data.
    pub(super) fin_queued: bool,

    // Receive sequence space.
    pub(super) irs: SeqNumber,
    pub(super) rcv_nxt: SeqNumber,
    /// Right edge of the window we advertised (never moves left).
    pub(super) rcv_adv: SeqNumber,
    pub(super) last_ack_sent: SeqNumber,
    pub(super) recv_buf: RingBuffer,
    pub(super) ooo: OutOfOrderQueue,
    pub(super) fin_received: bool,
    pub(super) ooo_fin: Option<SeqNumber>,
    /// `close()` was called: the user reads no more.
    pub(super) user_closed: bool,

    // Options (RFC 7323, RFC 2018, RFC 9293 §3.7.1).
    pub(super) wscale_ok: bool,
    pub(super) snd_wscale: u8,
    pub(super) rcv_wscale: u8,
    pub(super) ts_enabled: bool,
    pub(super) ts_recent: u32,
    pub(super) ts_recent_age: Instant,
    /// Added to the engine's milliseconds for our TSvals (RFC 7323 §5.4, Linux `ts_off`).
    pub(super) ts_offset: u32,
    pub(super) sack_ok: bool,
    /// The configuration's loss recovery is RACK-TLP (`cfg.loss_recovery`), copied at
    /// construction: [`Tcb::rack_mode`] asks on every ACK and every transmit, and the copy
    /// spares it a load through the `Arc` (nothing changes a connection's loss recovery
    /// after construction: `cfg_mut` is for other settings).
    pub(super) rack_tlp: bool,
    pub(super) peer_mss: u16,
    pub(super) pmtu_mss: u16,
    pub(super) snd_mss: u32,
    pub(super) rcv_mss: u32,

    // Timers and retransmission.
    pub(super) rtt: RttEstimator,
    pub(super) rtt_sample: Option<(SeqNumber, Instant)>,
    pub(super) rto_deadline: Option<Instant>,
    pub(super) backoff: u32,
    pub(super) syn_pending: bool,
    pub(super) delack_deadline: Option<Instant>,
    /// `cfg.delayed_ack` in microseconds, converted once (the delayed-ACK timer is armed on
    /// every other in-order segment; `delayed_ack` never changes after construction).
    pub(super) delayed_ack_micros: u64,
    pub(super) delack_fired: bool,
    pub(super) persist_deadline: Option<Instant>,
    pub(super) persist_backoff: u32,
    pub(super) persist_unanswered: u32,
    pub(super) force_send: bool,
    pub(super) keepalive_probes: u32,
    pub(super) close_deadline: Option<Instant>,
    pub(super) last_recv: Instant,
    pub(super) last_send: Instant,
    pub(super) progress_since: Option<Instant>,

    // Pending output.
    pub(super) ack_now: bool,
    pub(super) probe: Option<Probe>,
    pub(super) retransmit_head: bool,
    /// Boxed: rare, and 76 bytes the `Tcb` would carry on its lines for every segment.
    pub(super) pending_rst: Option<Box<TcpRepr>>,
    pub(super) unacked_bytes: u32,
    pub(super) quickack: u32,

    // Congestion control and loss recovery.
    pub(super) cc: Controller,
    /// `cc` is model-based (BBR): only such an algorithm paces, keeps the window in
    /// recovery or reads rate samples, so for CUBIC and NewReno those hooks (virtual
    /// calls on every ACK and segment) are not asked ([`model_based`]).
    pub(super) cc_model: bool,
    pub(super) dup_acks: u32,
    pub(super) recover: SeqNumber,
    pub(super) in_recovery: bool,

    // SACK-based loss recovery (RFC 6675, RFC 8985, RFC 6937, RFC 5682).
    /// Segments in flight, with SACK and loss marks (used when `rack_mode`).
    pub(super) sent: SentQueue,
    /// What the peer's SACK blocks reported (RFC 2018).
    pub(super) sack_board: SackScoreboard,
    pub(super) rack: Rack,
    /// RFC 8985 §6.2 reordering timer.
    pub(super) rack_deadline: Option<Instant>,
    /// RFC 8985 §7.2 probe timeout.
    pub(super) tlp_deadline: Option<Instant>,
    pub(super) tlp_pending: Option<TailProbe>,
    /// RFC 8985 §7.3 TLP.end_seq, and whether the probe was a retransmission.
    pub(super) tlp_end: Option<(SeqNumber, bool)>,
    /// After an RTO until SND.UNA passes `recover` (Linux's Loss state).
    pub(super) in_loss: bool,
    pub(super) frto: Option<Frto>,
    /// No lost segment below this is waiting for its retransmission.
    pub(super) lost_hint: SeqNumber,
    /// Retransmissions since the last congestion event not yet reported duplicate by a
    /// D-SACK (RFC 3708, Linux `undo_retrans`); `None` when no undo is possible.
    pub(super) undo_retrans: Option<u32>,
    /// Delivery-rate estimate (for `TcpInfo`): bytes delivered (acknowledged or SACKed) in
    /// total, the start of the current sample, the last closed sample (bytes and
    /// microseconds: divided only when `TcpInfo` is read, not on every ACK that closes
    /// one; `(0, 0)` before the first), and app-limited flags.
    pub(super) delivered: u64,
    pub(super) rate_sample_start: (Instant, u64),
    pub(super) rate_sample: (u64, u64),
    pub(super) rate_app_limited: bool,
    pub(super) app_limited_now: bool,
    /// Congestion-window validation (Linux `tcp_cwnd_validate`, RFC 9438 §5.8): the
    /// congestion window limited the sender in the current window of data, the most
    /// bytes in flight seen in it, and where that window ends. CUBIC and NewReno grow
    /// cwnd only while it is used ([`Tcb::cwnd_may_grow`]).
    pub(super) cwnd_limited: bool,
    /// The congestion window and MSS the send buffer was last sized for by autotuning
    /// (`autotune.rs`): a window no larger at the same MSS needs no look (no MSS: none yet).
    pub(super) send_buf_sized_for: (u32, u32),
    pub(super) max_flight: u32,
    pub(super) cwnd_usage_seq: SeqNumber,
    /// Receive-buffer autotuning (Linux `rcvq_space`, see `autotune.rs`): bytes the
    /// application read in the last measured round trip (0 until the first measurement),
    /// the copied sequence number and time the current measurement started at.
    pub(super) rcvq_space: u32,
    pub(super) rcvq_seq: SeqNumber,
    pub(super) rcvq_time: Instant,
    /// The receiver's RTT estimate from timestamps, microseconds times 8 (Linux
    /// `rcv_rtt_est.rtt_us`); 0 until measured.
    pub(super) rcv_rtt: u32,
    /// The TSecr the last receiver RTT sample came from (one sample per echoed value).
    pub(super) rcv_rtt_last_tsecr: u32,
    /// RFC 3168: ECN was negotiated; a CE mark awaits the peer's CWR (we echo ECE); our
    /// reduction awaits its CWR; no further reduction until SND.UNA passes `ecn_high_seq`.
    pub(super) ecn_ok: bool,
    pub(super) ece_pending: bool,
    pub(super) cwr_pending: bool,
    pub(super) ecn_high_seq: SeqNumber,
    /// Delivery-rate sampling and pacing, allocated when the connection first sends data
    /// with SACK recovery or gets a pacing rate (an idle connection never pays for it).
    pub(super) sender: Option<Box<SenderModel>>,
    /// RFC 6937 PRR: RecoverFS, prr_delivered, prr_out.
    pub(super) prr_recover_fs: u32,
    pub(super) prr_delivered: u32,
    pub(super) prr_out: u32,

    // RFC 5961 §7 per-connection challenge-ACK limit.
    pub(super) challenge_window_start: Instant,
    pub(super) challenge_count: u32,

    pub(super) stats: TcpCounters,
}

impl Tcb {
    fn new(
        tuple: FourTuple,
        iss: u32,
        now: Instant,
        cfg: Arc<TcpConfig>,
        ts_offset: u32,
        state: State,
    ) -> Tcb {
        let iss = SeqNumber(iss);
        let mss = u32::from(cfg.mss.max(cfg.min_mss).max(1));
        let iw = cfg.initial_window.max(1).saturating_mul(mss);
        let cc = congestion_control(cfg.congestion, iw, mss, now, iss.0);
        // Records for what may be in flight: the send buffer in segments of the smallest MSS.
        let max_segments =
            (cfg.send_buffer_limit() / usize::from(cfg.min_mss.max(1))).clamp(64, 1 << 16);
        Tcb {
            tuple,
            state,
            passive: false,
            error: None,
            soft_error: None,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNumber(0),
            snd_wl2: iss,
            snd_buf_start: iss + 1u32,
            send_buf: RingBuffer::new(cfg.send_buffer),
            fin_queued: false,
            irs: SeqNumber(0),
            rcv_nxt: SeqNumber(0),
            rcv_adv: SeqNumber(0),
            last_ack_sent: SeqNumber(0),
            recv_buf: RingBuffer::new(cfg.recv_buffer),
            ooo: OutOfOrderQueue::new(cfg.ooo_max_ranges, cfg.ooo_max_bytes),
            fin_received: false,
            ooo_fin: None,
            user_closed: false,
            wscale_ok: false,
            snd_wscale: 0,
            rcv_wscale: if cfg.window_scaling {
                cfg.recv_window_shift()
            } else {
                0
            },
            ts_enabled: false,
            ts_recent: 0,
            ts_recent_age: now,
            ts_offset,
            sack_ok: false,
            rack_tlp: cfg.loss_recovery == LossRecovery::RackTlp,
            peer_mss: 536,
            pmtu_mss: cfg.mss,
            snd_mss: mss,
            rcv_mss: mss,
            rtt: RttEstimator::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max),
            rtt_sample: None,
            rto_deadline: None,
            backoff: 0,
            syn_pending: true,
            delack_deadline: None,
            send_buf_sized_for: (0, u32::MAX),
            delayed_ack_micros: crate::time::duration_micros(cfg.delayed_ack),
            delack_fired: false,
            persist_deadline: None,
            persist_backoff: 0,
            persist_unanswered: 0,
            force_send: false,
            keepalive_probes: 0,
            close_deadline: None,
            last_recv: now,
            last_send: now,
            progress_since: None,
            ack_now: false,
            probe: None,
            retransmit_head: false,
            pending_rst: None,
            unacked_bytes: 0,
            quickack: cfg.quickack_segments,
            cc,
            cc_model: model_based(cfg.congestion),
            dup_acks: 0,
            recover: iss,
            in_recovery: false,
            sent: SentQueue::new(max_segments),
            sack_board: SackScoreboard::new(SACK_SCOREBOARD_RANGES),
            rack: Rack::new(iss),
            rack_deadline: None,
            tlp_deadline: None,
            tlp_pending: None,
            tlp_end: None,
            in_loss: false,
            frto: None,
            lost_hint: iss,
            undo_retrans: None,
            delivered: 0,
            rate_sample_start: (now, 0),
            rate_sample: (0, 0),
            rate_app_limited: false,
            app_limited_now: false,
            cwnd_limited: false,
            max_flight: 0,
            cwnd_usage_seq: iss,
            rcvq_space: 0,
            rcvq_seq: SeqNumber(0),
            rcvq_time: now,
            rcv_rtt: 0,
            rcv_rtt_last_tsecr: 0,
            ecn_ok: false,
            ece_pending: false,
            cwr_pending: false,
            ecn_high_seq: iss,
            sender: None,
            prr_recover_fs: 0,
            prr_delivered: 0,
            prr_out: 0,
            challenge_window_start: now,
            challenge_count: 0,
            stats: TcpCounters::default(),
            cfg,
        }
    }

    /// Active open (RFC 9293 §3.10.1): a connection in SYN-SENT whose SYN `poll_transmit` returns next.
    pub fn connect(tuple: FourTuple, iss: u32, now: Instant, cfg: &TcpConfig) -> Tcb {
        Tcb::new(
            tuple,
            iss,
            now,
            Arc::new(*cfg),
            cfg.ts_offset,
            State::SynSent,
        )
    }

    /// [`Tcb::connect`] with a configuration shared with other connections
    /// ([`super::SharedConfigs`]) and this connection's timestamp offset.
    pub fn connect_shared(
        tuple: FourTuple,
        iss: u32,
        now: Instant,
        cfg: Arc<TcpConfig>,
        ts_offset: u32,
    ) -> Tcb {
        Tcb::new(tuple, iss, now, cfg, ts_offset, State::SynSent)
    }

    /// Passive open from a listener (RFC 9293 §3.10.7.2): a connection in SYN-RECEIVED whose
    /// SYN-ACK `poll_transmit` returns next. `syn` must carry SYN without ACK or RST
    /// (the engine checks this with [`super::listen_action`]).
    pub fn accept_syn(
        tuple: FourTuple,
        syn: &TcpRepr,
        iss: u32,
        now: Instant,
        cfg: &TcpConfig,
    ) -> Tcb {
        Tcb::accept_syn_shared(tuple, syn, iss, now, Arc::new(*cfg), cfg.ts_offset)
    }

    /// [`Tcb::accept_syn`] with a shared configuration and this connection's
    /// timestamp offset.
    pub fn accept_syn_shared(
        tuple: FourTuple,
        syn: &TcpRepr,
        iss: u32,
        now: Instant,
        cfg: Arc<TcpConfig>,
        ts_offset: u32,
    ) -> Tcb {
        let mut tcb = Tcb::new(tuple, iss, now, cfg, ts_offset, State::SynReceived);
        tcb.passive = true;
        tcb.irs = SeqNumber(syn.seq_number);
        tcb.rcv_nxt = tcb.irs + 1u32;
        tcb.rcv_adv = tcb.rcv_nxt;
        tcb.negotiate(now, syn);
        // RFC 7323 §2.2: the window field of a SYN is never scaled.
        tcb.snd_wnd = u32::from(syn.window_len);
        tcb.max_snd_wnd = tcb.snd_wnd;
        tcb.snd_wl1 = tcb.irs;
        tcb.snd_wl2 = tcb.iss;
        tcb
    }

    /// The configuration, made this connection's own before a change (the shared
    /// copy stays as it is for the others).
    pub(super) fn cfg_mut(&mut self) -> &mut TcpConfig {
        Arc::make_mut(&mut self.cfg)
    }

    /// The sender model, made at `now` on first use.
    pub(super) fn sender_model(&mut self, now: Instant) -> &mut SenderModel {
        self.sender.get_or_insert_with(|| {
            Box::new(SenderModel {
                rate: RateSampler::new(now),
                pacer: Pacer::new(),
                pacing_release: None,
            })
        })
    }

    /// When the pacer releases held-back data, if it holds any.
    pub(super) fn pacing_release(&self) -> Option<Instant> {
        self.sender.as_ref().and_then(|s| s.pacing_release)
    }

    /// The connection's 4-tuple.
    pub fn tuple(&self) -> FourTuple {
        self.tuple
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The error that closed the connection, if any.
    pub fn error(&self) -> Option<TcpError> {
        self.error
    }

    /// Counters and estimates.
    pub fn stats(&self) -> TcpStats {
        self.stats.snapshot(
            self.rtt.srtt().unwrap_or_default(),
            self.rtt.rttvar(),
            self.rtt.rto(),
            self.cc.window(),
            self.cc.ssthresh(),
            self.snd_mss,
        )
    }

    /// The configuration this connection runs with.
    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    /// Payload bytes per segment we currently send (effective send MSS, RFC 9293 §3.7.1).
    pub fn send_mss(&self) -> u32 {
        self.snd_mss
    }

    /// CLOSED with nothing left to send: the engine may drop the connection.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && self.pending_rst.is_none()
    }

    /// True once the handshake completed (ESTABLISHED or later).
    pub fn is_established(&self) -> bool {
        !matches!(
            self.state,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }

    /// `recv` would return data, EOF or an error instead of `WouldBlock`.
    #[inline]
    pub fn is_readable(&self) -> bool {
        !self.recv_buf.is_empty() || self.fin_received || self.error.is_some()
    }

    /// `send` would accept bytes (or report an error) instead of `WouldBlock`.
    #[inline]
    pub fn is_writable(&self) -> bool {
        self.error.is_some()
            || (matches!(self.state, State::Established | State::CloseWait)
                && !self.fin_queued
                && self.send_buf.free() > 0)
    }

    /// Bytes queued for sending, unsent or unacknowledged.
    pub fn send_queue_len(&self) -> usize {
        self.send_buf.len()
    }

    /// Bytes ready for `recv`.
    pub fn recv_queue_len(&self) -> usize {
        self.recv_buf.len()
    }

    /// `setsockopt(TCP_CONGESTION)`: switches the congestion-control algorithm, keeping the
    /// current window (Linux `tcp_reinit_congestion_control`). BBR on a connection whose
    /// peer did not offer SACK runs CUBIC (BBR needs SACK's delivery accounting).
    pub fn set_congestion(&mut self, algorithm: CongestionAlgorithm) {
        if algorithm == self.cfg.congestion {
            return;
        }
        // The connection's latest event stands for "now" (the call carries no clock).
        let now = self.last_send.max(self.last_recv);
        self.cfg_mut().congestion = algorithm;
        let window = if self.is_established() {
            self.cc.window()
        } else {
            self.cfg.initial_window.max(1).saturating_mul(self.snd_mss)
        };
        let effective = self.effective_congestion();
        self.cc = congestion_control(effective, window, self.snd_mss, now, self.iss.0);
        self.cc_model = model_based(effective);
        if let Some(s) = &mut self.sender {
            s.pacer.set_rate(None);
            s.pacing_release = None;
        }
    }

    /// The algorithm in use: the configured one, but CUBIC for BBR once the handshake
    /// showed the peer has no SACK.
    pub fn congestion(&self) -> CongestionAlgorithm {
        self.effective_congestion()
    }

    pub(super) fn effective_congestion(&self) -> CongestionAlgorithm {
        match self.cfg.congestion {
            CongestionAlgorithm::Bbr if self.is_established() && !self.rack_mode() => {
                CongestionAlgorithm::Cubic
            }
            CongestionAlgorithm::Bbr
                if !self.cfg.sack || self.cfg.loss_recovery != LossRecovery::RackTlp =>
            {
                CongestionAlgorithm::Cubic
            }
            other => other,
        }
    }

    /// `TCP_NODELAY`: disables Nagle's algorithm (RFC 1122 §4.2.3.4) when true.
    pub fn set_nodelay(&mut self, nodelay: bool) {
        self.cfg_mut().nodelay = nodelay;
    }

    /// `SO_KEEPALIVE` and its intervals (RFC 1122 §4.2.3.6); `None` turns keepalive off.
    pub fn set_keepalive(&mut self, keepalive: Option<super::KeepaliveConfig>) {
        self.cfg_mut().keepalive = keepalive;
        self.keepalive_probes = 0;
    }

    /// `TCP_USER_TIMEOUT` (RFC 5482); `None` turns it off.
    pub fn set_user_timeout(&mut self, timeout: Option<core::time::Duration>) {
        self.cfg_mut().user_timeout = timeout;
    }

    /// Queues bytes for sending (RFC 9293 §3.10.2); returns how many were taken.
    #[inline]
    pub fn send(&mut self, data: &[u8]) -> Result<usize, TcpError> {
        match self.state {
            State::Established | State::CloseWait if !self.fin_queued => {}
            State::SynSent | State::SynReceived if !self.fin_queued => {
                return Err(TcpError::WouldBlock);
            }
            State::Closed | State::Listen => {
                return Err(self.error.unwrap_or(TcpError::NotConnected));
            }
            _ => return Err(TcpError::BrokenPipe),
        }
        if data.is_empty() {
            return Ok(0);
        }
        let n = self.send_buf.push(data);
        if n == 0 {
            Err(TcpError::WouldBlock)
        } else {
            Ok(n)
        }
    }

    /// Reads received bytes (RFC 9293 §3.10.3); `Ok(0)` is end of stream.
    #[inline]
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TcpError> {
        if !self.recv_buf.is_empty() {
            if buf.is_empty() {
                return Ok(0);
            }
            let n = self.recv_buf.pop(buf);
            self.after_read();
            return Ok(n);
        }
        if self.fin_received {
            return Ok(0);
        }
        if let Some(e) = self.error {
            return Err(e);
        }
        match self.state {
            State::Closed | State::Listen => Err(TcpError::NotConnected),
            _ => Err(TcpError::WouldBlock),
        }
    }

    /// Window update after the user read (RFC 1122 §4.2.3.3: only when it opens by a useful amount).
    // Inlined into its one caller, `recv`.
    #[inline]
    fn after_read(&mut self) {
        if !self.is_established() || self.fin_received {
            return;
        }
        let avail = self.receive_space();
        let cur = self.rcv_adv.since(self.rcv_nxt);
        if avail >= cur.saturating_add(self.sws_threshold()) && avail >= cur.saturating_mul(2) {
            self.ack_now = true;
        }
    }

    /// Bytes we could advertise now (free receive buffer, limited by the scaled 16-bit field).
    pub(super) fn receive_space(&self) -> u32 {
        let max_wnd = 65535usize << self.rcv_wscale;
        u32::try_from(self.recv_buf.free().min(max_wnd)).unwrap_or(u32::MAX)
    }

    /// RFC 1122 §4.2.3.3: move the right edge only by min(RCV.BUFF / 2, Eff.snd.MSS) or more.
    pub(super) fn sws_threshold(&self) -> u32 {
        let half = u32::try_from(self.recv_buf.capacity() / 2).unwrap_or(u32::MAX);
        half.min(self.rcv_mss).max(1)
    }

    /// Half-close (`shutdown(SHUT_WR)`, RFC 9293 §3.10.4): a FIN follows the queued data.
    pub fn shutdown_write(&mut self) {
        match self.state {
            State::Established => {
                self.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.state = State::LastAck;
            }
            // RFC 9293 §3.10.4: queue the FIN until the connection is established.
            State::SynSent | State::SynReceived => self.fin_queued = true,
            State::Listen => self.state = State::Closed,
            _ => {}
        }
    }

    /// `close()` (RFC 9293 §3.10.4): FIN after queued data; RST instead when unread data
    /// remains (RFC 2525 §2.17, as Linux and BSD do).
    pub fn close(&mut self) {
        self.user_closed = true;
        match self.state {
            State::Closed | State::TimeWait | State::Closing | State::LastAck => {}
            State::Listen | State::SynSent => self.enter_closed(None),
            // Like Linux tcp_close: only unread in-order data counts.
            _ if !self.recv_buf.is_empty() => self.abort(),
            _ => {
                self.shutdown_write();
                if self.state == State::FinWait2 {
                    self.close_deadline = Some(self.last_recv + self.cfg.fin_wait2_timeout);
                }
            }
        }
    }

    /// Abort (RFC 9293 §3.10.5, `SO_LINGER` with zero timeout): RST if synchronized, then CLOSED.
    pub fn abort(&mut self) {
        if matches!(
            self.state,
            State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
        ) {
            self.pending_rst = Some(Box::new(TcpRepr {
                src_port: self.tuple.local_port,
                dst_port: self.tuple.remote_port,
                seq_number: self.snd_nxt.0,
                ack_number: self.rcv_nxt.0,
                flags: TcpFlags::RST | TcpFlags::ACK,
                ..TcpRepr::default()
            }));
        }
        self.user_closed = true;
        self.enter_closed(None);
    }

    /// Closes with `error` (or quietly) and cancels every timer and pending output but a RST.
    pub(super) fn enter_closed(&mut self, error: Option<TcpError>) {
        self.state = State::Closed;
        if error.is_some() {
            self.error = error;
        }
        self.rto_deadline = None;
        self.delack_deadline = None;
        self.persist_deadline = None;
        self.close_deadline = None;
        self.progress_since = None;
        self.ack_now = false;
        self.syn_pending = false;
        self.probe = None;
        self.retransmit_head = false;
        self.ooo.clear();
        self.ooo_fin = None;
        self.rack_deadline = None;
        self.tlp_deadline = None;
        self.tlp_pending = None;
        self.sent.clear();
        self.sack_board.clear();
    }

    /// Enters TIME-WAIT for 2*MSL (RFC 9293 §3.10.7.4 eighth).
    pub(super) fn enter_time_wait(&mut self, now: Instant) {
        self.state = State::TimeWait;
        self.rto_deadline = None;
        self.persist_deadline = None;
        self.delack_deadline = None;
        self.progress_since = None;
        self.retransmit_head = false;
        self.probe = None;
        self.rack_deadline = None;
        self.tlp_deadline = None;
        self.tlp_pending = None;
        self.close_deadline = Some(now + self.cfg.time_wait);
    }

    /// SACK-based recovery with RACK-TLP is in use: the peer sent SACK-permitted and the
    /// configuration asks for it (otherwise RFC 6582 NewReno with duplicate ACKs).
    #[inline(always)]
    pub(super) fn rack_mode(&self) -> bool {
        debug_assert_eq!(
            self.rack_tlp,
            self.cfg.loss_recovery == LossRecovery::RackTlp
        );
        self.sack_ok && self.rack_tlp
    }

    /// [`CongestionControl::controls_recovery`], asked of a model-based algorithm only.
    pub(super) fn cc_controls_recovery(&self) -> bool {
        self.cc_model && self.cc.controls_recovery()
    }

    /// [`CongestionControl::uses_rate_samples`], asked of a model-based algorithm only.
    pub(super) fn cc_uses_rate_samples(&self) -> bool {
        self.cc_model && self.cc.uses_rate_samples()
    }

    /// Sequence number of our FIN (valid once `fin_queued`).
    pub(super) fn fin_seq(&self) -> SeqNumber {
        self.snd_buf_start + self.send_buf.len()
    }

    /// Our FIN was sent and acknowledged.
    pub(super) fn fin_acked(&self) -> bool {
        self.fin_queued && self.snd_una == self.fin_seq() + 1u32
    }

    /// Bytes queued but not sent yet.
    pub(super) fn unsent(&self) -> usize {
        let offset = self.snd_nxt.since(self.snd_buf_start) as usize;
        self.send_buf.len().saturating_sub(offset)
    }

    /// A RST answering `seg` (RFC 9293 §3.10.7.1 form), from this connection's ports.
    pub(super) fn queue_reset_for(&mut self, seg: &TcpRepr, payload_len: usize) {
        if let Some(rst) = super::reply_to_unknown(seg, payload_len) {
            self.pending_rst = Some(Box::new(rst));
        }
    }

    /// RFC 5961 §7: send a challenge ACK unless this connection exceeded its per-second budget.
    pub(super) fn challenge_ack(&mut self, now: Instant) {
        if now - self.challenge_window_start >= core::time::Duration::from_secs(1) {
            self.challenge_window_start = now;
            self.challenge_count = 0;
        }
        if self.challenge_count < self.cfg.challenge_ack_limit {
            self.challenge_count += 1;
            self.stats.challenge_acks += 1;
            self.ack_now = true;
        } else {
            self.stats.challenge_acks_suppressed += 1;
        }
    }
}

/// Whether `algorithm` is model-based: it may set a pacing rate, keep the window during
/// recovery and read delivery-rate samples. The others answer no to those hooks
/// ([`CongestionControl::pacing_rate`], [`CongestionControl::controls_recovery`],
/// [`CongestionControl::uses_rate_samples`]); `only_model_based_algorithms_pace` holds
/// them to it.
pub(super) fn model_based(algorithm: CongestionAlgorithm) -> bool {
    algorithm == CongestionAlgorithm::Bbr
}

/// A congestion controller for `algorithm` starting at `window` bytes.
fn congestion_control(
    algorithm: CongestionAlgorithm,
    window: u32,
    mss: u32,
    now: Instant,
    seed: u32,
) -> Controller {
    match algorithm {
        CongestionAlgorithm::NewReno => Controller::NewReno(Box::new(NewReno::new(window))),
        CongestionAlgorithm::Cubic => Controller::Cubic(Box::new(Cubic::new(window))),
        CongestionAlgorithm::Bbr => Controller::Bbr(Box::new(Bbr::new(window, mss, now, seed))),
    }
}

/// The connection's congestion controller: one of the built-in algorithms, called through a
/// `match` rather than a `Box<dyn CongestionControl>`. The ACK path asks it for the window
/// several times per segment; through a vtable each ask was an indirect call the compiler
/// could neither inline nor move (`cwnd_may_grow` asked before testing `cwnd_limited`), and
/// it spilled the caller's registers around it. Each algorithm stays boxed: the field is
/// as small as the fat pointer was (the socket slot is prefetched whole).
#[derive(Debug)]
pub(super) enum Controller {
    /// RFC 5681 + RFC 6582.
    NewReno(Box<NewReno>),
    /// RFC 9438, the default.
    Cubic(Box<Cubic>),
    /// BBR v1 (model-based).
    Bbr(Box<Bbr>),
}

/// Runs `$body` with `$c` bound to the algorithm inside `$cc`.
macro_rules! dispatch {
    ($cc:expr, $c:ident => $body:expr) => {
        match $cc {
            Controller::NewReno($c) => $body,
            Controller::Cubic($c) => $body,
            Controller::Bbr($c) => $body,
        }
    };
}

/// [`CongestionControl`]'s methods, each dispatched to the algorithm (see there for what
/// they mean).
impl Controller {
    #[inline]
    pub(super) fn window(&self) -> u32 {
        dispatch!(self, c => c.window())
    }

    #[inline]
    pub(super) fn ssthresh(&self) -> u32 {
        dispatch!(self, c => c.ssthresh())
    }

    #[inline]
    pub(super) fn set_window(&mut self, cwnd: u32) {
        dispatch!(self, c => c.set_window(cwnd))
    }

    #[inline]
    pub(super) fn on_ack(&mut self, ack: &AckSample) {
        dispatch!(self, c => c.on_ack(ack))
    }

    pub(super) fn on_congestion_event(&mut self, now: Instant, flight: u32, mss: u32) {
        dispatch!(self, c => c.on_congestion_event(now, flight, mss))
    }

    pub(super) fn on_rto(&mut self, now: Instant, flight: u32, mss: u32) {
        dispatch!(self, c => c.on_rto(now, flight, mss))
    }

    pub(super) fn on_spurious(&mut self) {
        dispatch!(self, c => c.on_spurious())
    }

    pub(super) fn on_idle_restart(&mut self, restart_window: u32) {
        dispatch!(self, c => c.on_idle_restart(restart_window))
    }

    pub(super) fn on_mss_change(&mut self, mss: u32) {
        dispatch!(self, c => c.on_mss_change(mss))
    }

    #[inline]
    pub(super) fn pacing_rate(&self) -> Option<u64> {
        dispatch!(self, c => c.pacing_rate())
    }

    #[inline]
    pub(super) fn controls_recovery(&self) -> bool {
        dispatch!(self, c => c.controls_recovery())
    }

    #[inline]
    pub(super) fn uses_rate_samples(&self) -> bool {
        dispatch!(self, c => c.uses_rate_samples())
    }

    #[inline]
    pub(super) fn wants_app_limited(&self) -> bool {
        dispatch!(self, c => c.wants_app_limited())
    }

    pub(super) fn bbr_info(&self) -> Option<BbrInfo> {
        dispatch!(self, c => c.bbr_info())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_model_based_algorithms_pace() {
        for algorithm in [
            CongestionAlgorithm::NewReno,
            CongestionAlgorithm::Cubic,
            CongestionAlgorithm::Bbr,
        ] {
            let cc = congestion_control(algorithm, 14_480, 1448, Instant::ZERO, 1);
            let model = model_based(algorithm);
            assert_eq!(cc.controls_recovery(), model, "{algorithm:?}");
            assert_eq!(cc.uses_rate_samples(), model, "{algorithm:?}");
            if !model {
                assert_eq!(cc.pacing_rate(), None, "{algorithm:?}");
            }
        }
    }

    /// The same steps on a [`Controller`] and on the bare algorithm it holds, compared
    /// after each: every method reaches that algorithm's own.
    fn drive_both(mut cc: Controller, mut bare: Box<dyn CongestionControl>) {
        let mss = 1448;
        let ack = |i: u32, acked: u32| {
            AckSample::basic(
                Instant::from_micros(u64::from(i) * 1000),
                acked,
                mss,
                SeqNumber(i * mss),
                SeqNumber((i + 10) * mss),
                Some(core::time::Duration::from_micros(800 + u64::from(i))),
                core::time::Duration::from_millis(1),
            )
        };
        let same = |cc: &Controller, bare: &dyn CongestionControl, step: &str| {
            assert_eq!(cc.window(), bare.window(), "{step}");
            assert_eq!(cc.ssthresh(), bare.ssthresh(), "{step}");
            assert_eq!(cc.pacing_rate(), bare.pacing_rate(), "{step}");
            assert_eq!(cc.wants_app_limited(), bare.wants_app_limited(), "{step}");
            assert_eq!(cc.bbr_info(), bare.bbr_info(), "{step}");
        };
        for i in 0..20 {
            cc.on_ack(&ack(i, mss));
            bare.on_ack(&ack(i, mss));
            same(&cc, &*bare, "on_ack");
        }
        let now = Instant::from_micros(30_000);
        cc.on_congestion_event(now, 20 * mss, mss);
        bare.on_congestion_event(now, 20 * mss, mss);
        same(&cc, &*bare, "on_congestion_event");
        cc.on_spurious();
        bare.on_spurious();
        same(&cc, &*bare, "on_spurious");
        cc.on_rto(now, 8 * mss, mss);
        bare.on_rto(now, 8 * mss, mss);
        same(&cc, &*bare, "on_rto");
        cc.set_window(12 * mss);
        bare.set_window(12 * mss);
        same(&cc, &*bare, "set_window");
        cc.on_idle_restart(4 * mss);
        bare.on_idle_restart(4 * mss);
        same(&cc, &*bare, "on_idle_restart");
        cc.on_mss_change(9000);
        bare.on_mss_change(9000);
        same(&cc, &*bare, "on_mss_change");
        assert_eq!(cc.controls_recovery(), bare.controls_recovery());
        assert_eq!(cc.uses_rate_samples(), bare.uses_rate_samples());
    }

    #[test]
    fn controller_dispatches_to_its_algorithm() {
        let (window, mss, now, seed) = (14_480, 1448, Instant::ZERO, 7);
        drive_both(
            congestion_control(CongestionAlgorithm::NewReno, window, mss, now, seed),
            Box::new(NewReno::new(window)),
        );
        drive_both(
            congestion_control(CongestionAlgorithm::Cubic, window, mss, now, seed),
            Box::new(Cubic::new(window)),
        );
        drive_both(
            congestion_control(CongestionAlgorithm::Bbr, window, mss, now, seed),
            Box::new(Bbr::new(window, mss, now, seed)),
        );
    }
}
