//! Half-open connections as small request records (Linux's `request_sock`), and the
//! SYN queue that holds them.
//!
//! A SYN that a listener admits costs a [`RequestSock`] of about 64 bytes (4-tuple,
//! ISS/IRS, the peer's MSS, window scale, SACK-permitted and timestamp, the retransmission
//! count and deadline) instead of a `Tcb` with its congestion state and a socket slot. The
//! record answers what arrives in SYN-RECEIVED as the `Tcb` did (RFC 9293 §3.10.7.4 with
//! RFC 5961 and RFC 7323 PAWS; checked against it by a differential test), retransmits the
//! SYN-ACK with exponential backoff up to `synack_retries`, and when the handshake's ACK
//! arrives the engine builds the connection with [`Tcb::from_request`] and hands it that
//! ACK.
//!
//! [`SynQueue`] keeps one engine's records in a growable [`ConnTable`] with per-listener
//! counts (Linux `inet_csk_reqsk_queue_is_full`) and a heap of retransmission deadlines,
//! so a timer tick looks only at what is due.

use std::collections::{BinaryHeap, HashMap};

use core::cmp::Reverse;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use super::State;
use super::config::TcpConfig;
use super::rtt::RttEstimator;
use super::seq::SeqNumber;
use super::tcb::Tcb;
use crate::table::{ConnTable, ConnTableConfig, HashKey, KeyedState, Listener, SocketId};
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpOptions, TcpRepr};
use crate::{Errno, FourTuple};

/// RFC 7323 §5.5: a ts_recent older than 24 days is invalid.
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

/// `a < b` in timestamp space (RFC 7323 §5.3, modulo 2^32).
fn ts_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// What to do with a segment that found a request record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestAction {
    /// Nothing to send.
    Drop,
    /// The peer retransmitted its SYN: send the SYN-ACK again.
    SynAck(TcpRepr),
    /// Send this ACK (out of window, PAWS, or an RFC 5961 challenge).
    Ack(TcpRepr),
    /// RFC 9293 §3.10.7.4: an unacceptable ACK in SYN-RECEIVED: send `<SEQ=SEG.ACK><CTL=RST>`.
    Reset(TcpRepr),
    /// RFC 9293 §3.10.7.4 second check: a RST at RCV.NXT: forget the request (passive
    /// open: back to LISTEN, nothing reported).
    Aborted,
    /// The handshake completed: build the connection with [`Tcb::from_request`] and give
    /// it this same segment.
    Complete,
}

/// What a request's retransmission timer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestTimeout {
    /// Not due yet.
    NotYet,
    /// Send the SYN-ACK again (the deadline moved on).
    Retransmit(TcpRepr),
    /// `synack_retries` spent: forget the request.
    Expired,
}

/// A half-open connection (SYN received, SYN-ACK sent), Linux's `request_sock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSock {
    tuple: FourTuple,
    listener: SocketId,
    iss: SeqNumber,
    irs: SeqNumber,
    peer_mss: Option<u16>,
    peer_window: u16,
    peer_wscale: Option<u8>,
    sack_ok: bool,
    /// The SYN asked for ECN (ECE and CWR, RFC 3168 §6.1.1).
    ecn_setup: bool,
    /// The receive window offered so far (RCV.ADV - RCV.NXT), bytes.
    rcv_wnd: u32,
    /// The peer's timestamp (RFC 7323 ts_recent), when it sent one.
    ts_recent: Option<u32>,
    ts_recent_age: Instant,
    /// When the RTT sample started (the first SYN-ACK, or the last one re-sent for a SYN).
    sample_start: Option<Instant>,
    /// Next SYN-ACK retransmission.
    deadline: Instant,
    retransmits: u8,
    challenge_count: u8,
    challenge_window_start: Instant,
    /// Added to the engine's milliseconds for our TSvals (`TcpConfig::ts_offset` when
    /// the SYN came); the connection keeps it.
    ts_offset: u32,
}

impl RequestSock {
    /// The record for `syn` (SYN without ACK or RST, checked by [`super::listen_action`])
    /// on `tuple` for `listener`, with our `iss`, its SYN-ACK about to be sent at `now`.
    pub fn new(
        tuple: FourTuple,
        listener: SocketId,
        syn: &TcpRepr,
        iss: u32,
        now: Instant,
        cfg: &TcpConfig,
    ) -> RequestSock {
        RequestSock {
            tuple,
            listener,
            iss: SeqNumber(iss),
            irs: SeqNumber(syn.seq_number),
            peer_mss: syn.options.mss,
            peer_window: syn.window_len,
            peer_wscale: syn.options.window_scale,
            sack_ok: syn.options.sack_permitted,
            ecn_setup: syn.flags.contains(TcpFlags::ECE | TcpFlags::CWR),
            rcv_wnd: u32::from(Self::syn_window(cfg)),
            ts_recent: syn.options.timestamp.map(|(tsval, _)| tsval),
            ts_recent_age: now,
            sample_start: Some(now),
            deadline: now + rto(cfg, 0),
            retransmits: 0,
            challenge_count: 0,
            challenge_window_start: now,
            ts_offset: cfg.ts_offset,
        }
    }

    /// Our timestamp clock, as [`Tcb`]'s (RFC 7323 §5.4: the engine's milliseconds plus
    /// the connection's offset).
    fn ts_clock(&self, now: Instant) -> u32 {
        // Truncation intended: the TS clock wraps modulo 2^32.
        (now.total_millis() as u32).wrapping_add(self.ts_offset)
    }

    /// The same request with no RTT sample (a connection rebuilt from a SYN cookie: when
    /// the SYN-ACK left is unknown).
    pub fn without_rtt_sample(mut self) -> RequestSock {
        self.sample_start = None;
        self
    }

    /// The 4-tuple (ours local).
    pub fn tuple(&self) -> FourTuple {
        self.tuple
    }

    /// The listener that admitted it.
    pub fn listener(&self) -> SocketId {
        self.listener
    }

    /// Our ISS.
    pub fn iss(&self) -> u32 {
        self.iss.0
    }

    /// The peer's ISN.
    pub fn irs(&self) -> u32 {
        self.irs.0
    }

    /// SYN-ACKs re-sent so far.
    pub fn retransmits(&self) -> u32 {
        u32::from(self.retransmits)
    }

    /// When the SYN-ACK is next due.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    fn rcv_nxt(&self) -> SeqNumber {
        self.irs + 1u32
    }

    /// The window our SYN-ACK offers (RFC 7323 §2.2: never scaled on a SYN).
    fn syn_window(cfg: &TcpConfig) -> u16 {
        u16::try_from(cfg.recv_buffer.clamp(1, 65535)).unwrap_or(u16::MAX)
    }

    fn ts_enabled(&self, cfg: &TcpConfig) -> bool {
        cfg.timestamps && self.ts_recent.is_some()
    }

    /// The SYN as far as the record keeps it, for [`Tcb::accept_syn`].
    pub fn syn(&self) -> TcpRepr {
        TcpRepr {
            src_port: self.tuple.remote_port,
            dst_port: self.tuple.local_port,
            seq_number: self.irs.0,
            flags: if self.ecn_setup {
                TcpFlags::SYN | TcpFlags::ECE | TcpFlags::CWR
            } else {
                TcpFlags::SYN
            },
            window_len: self.peer_window,
            options: TcpOptions {
                mss: self.peer_mss,
                window_scale: self.peer_wscale,
                sack_permitted: self.sack_ok,
                timestamp: self.ts_recent.map(|ts| (ts, 0)),
                ..TcpOptions::default()
            },
            ..TcpRepr::default()
        }
    }

    /// RFC 9293 §3.5: our SYN-ACK, answering only the options the peer offered (RFC 7323
    /// §1.3, RFC 2018 §2), exactly as the `Tcb` sends it.
    pub fn synack(&self, now: Instant, cfg: &TcpConfig) -> TcpRepr {
        let mut options = TcpOptions {
            mss: Some(cfg.mss),
            ..TcpOptions::default()
        };
        if cfg.window_scaling && self.peer_wscale.is_some() {
            options.window_scale = Some(cfg.recv_window_shift());
        }
        options.sack_permitted = cfg.sack && self.sack_ok;
        if self.ts_enabled(cfg) {
            options.timestamp = Some((self.ts_clock(now), self.ts_recent.unwrap_or(0)));
        }
        TcpRepr {
            src_port: self.tuple.local_port,
            dst_port: self.tuple.remote_port,
            seq_number: self.iss.0,
            ack_number: self.rcv_nxt().0,
            // RFC 3168 §6.1.1: an ECN-setup SYN-ACK carries ECE only.
            flags: if cfg.ecn && self.ecn_setup {
                TcpFlags::SYN | TcpFlags::ACK | TcpFlags::ECE
            } else {
                TcpFlags::SYN | TcpFlags::ACK
            },
            window_len: Self::syn_window(cfg),
            urgent_pointer: 0,
            options,
        }
    }

    /// The receive window shift the connection will use (RFC 7323 §2.2).
    fn rcv_wscale(&self, cfg: &TcpConfig) -> u8 {
        if cfg.window_scaling && self.peer_wscale.is_some() {
            cfg.recv_window_shift()
        } else {
            0
        }
    }

    /// The window field of an ACK, as the `Tcb` advertises it (RFC 7323 §2.3 scaled,
    /// RFC 1122 §4.2.3.3 receiver SWS avoidance, the right edge never moving left), and
    /// the right edge it promises.
    fn advertise_window(&mut self, cfg: &TcpConfig) -> u16 {
        let shift = self.rcv_wscale(cfg);
        let buffer = cfg.recv_buffer.max(1);
        let avail = u32::try_from(buffer.min(65535usize << shift)).unwrap_or(u32::MAX);
        // RFC 9293 §3.7.1: the MSS we expect, as the `Tcb` derives it from the SYN.
        let base = self
            .peer_mss
            .unwrap_or(super::DEFAULT_MSS)
            .max(cfg.min_mss)
            .min(cfg.mss)
            .max(cfg.min_mss);
        let overhead = if self.ts_enabled(cfg) { 12 } else { 0 };
        let rcv_mss = u32::from(base).saturating_sub(overhead).max(1);
        let half = u32::try_from(buffer / 2).unwrap_or(u32::MAX);
        let sws = half.min(rcv_mss).max(1);
        let wnd = if avail >= self.rcv_wnd.saturating_add(sws) {
            avail
        } else {
            self.rcv_wnd
        };
        let field = super::output::scaled_window_field(wnd, shift);
        let promised = u32::try_from(field << shift).unwrap_or(u32::MAX);
        self.rcv_wnd = self.rcv_wnd.max(promised);
        u16::try_from(field).unwrap_or(u16::MAX)
    }

    /// An ACK `<SEQ=ISS+1><ACK=RCV.NXT>` as the `Tcb` sends one in SYN-RECEIVED.
    fn ack(&mut self, now: Instant, cfg: &TcpConfig) -> TcpRepr {
        let mut options = TcpOptions::default();
        if self.ts_enabled(cfg) {
            options.timestamp = Some((self.ts_clock(now), self.ts_recent.unwrap_or(0)));
        }
        let window_len = self.advertise_window(cfg);
        TcpRepr {
            src_port: self.tuple.local_port,
            dst_port: self.tuple.remote_port,
            seq_number: (self.iss + 1u32).0,
            ack_number: self.rcv_nxt().0,
            flags: TcpFlags::ACK,
            window_len,
            urgent_pointer: 0,
            options,
        }
    }

    /// RFC 5961 §7: a challenge ACK, unless this second's allowance is spent.
    fn challenge(&mut self, now: Instant, cfg: &TcpConfig) -> RequestAction {
        if now - self.challenge_window_start >= Duration::from_secs(1) {
            self.challenge_window_start = now;
            self.challenge_count = 0;
        }
        if u32::from(self.challenge_count) < cfg.challenge_ack_limit {
            self.challenge_count = self.challenge_count.saturating_add(1);
            RequestAction::Ack(self.ack(now, cfg))
        } else {
            RequestAction::Drop
        }
    }

    /// RFC 9293 §3.10.7.4 in SYN-RECEIVED (with RFC 5961 and RFC 7323 §5.3): the answer
    /// to `seg` carrying `payload_len` bytes at `now`.
    pub fn handle_segment(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        payload_len: usize,
        cfg: &TcpConfig,
    ) -> RequestAction {
        let f = seg.flags;
        let (rst, syn, fin, has_ack) = (
            f.contains(TcpFlags::RST),
            f.contains(TcpFlags::SYN),
            f.contains(TcpFlags::FIN),
            f.contains(TcpFlags::ACK),
        );
        let seq = SeqNumber(seg.seq_number);
        let ack = SeqNumber(seg.ack_number);
        let snd_max = self.iss + 1u32;
        if syn && !rst && seq == self.irs {
            if !has_ack {
                // The peer's SYN again: our SYN-ACK was lost; resend it (Linux
                // `tcp_check_req`), restarting the timer at the current backoff.
                self.deadline = now + rto(cfg, self.retransmits());
                self.sample_start = (self.retransmits == 0).then_some(now);
                return RequestAction::SynAck(self.synack(now, cfg));
            }
            if ack == snd_max {
                // A SYN-ACK for our SYN-ACK (simultaneous open): the handshake is done.
                return RequestAction::Complete;
            }
        }
        // RFC 7323 §5.3 R1: PAWS, before the sequence-number check.
        let ts_enabled = self.ts_enabled(cfg);
        if ts_enabled && !rst {
            if let (Some((tsval, _)), Some(recent)) = (seg.options.timestamp, self.ts_recent) {
                if ts_before(tsval, recent) && now - self.ts_recent_age < PAWS_IDLE {
                    return RequestAction::Ack(self.ack(now, cfg));
                }
            }
        }
        // First: sequence number acceptability against the window of our SYN-ACK.
        let rcv_nxt = self.rcv_nxt();
        let right = rcv_nxt + self.rcv_wnd;
        let seg_len = payload_len + usize::from(syn) + usize::from(fin);
        let acceptable = if seg_len == 0 {
            seq.in_range(rcv_nxt, right)
        } else {
            seq.in_range(rcv_nxt, right) || (seq + (seg_len - 1)).in_range(rcv_nxt, right)
        };
        if !acceptable {
            return if rst {
                RequestAction::Drop
            } else {
                RequestAction::Ack(self.ack(now, cfg))
            };
        }
        // Second: RST (RFC 5961 §3.2).
        if rst {
            if seq == rcv_nxt {
                return RequestAction::Aborted;
            }
            return self.challenge(now, cfg);
        }
        // RFC 7323 §4.3: remember the timestamp to echo.
        if ts_enabled {
            if let (Some((tsval, _)), Some(recent)) = (seg.options.timestamp, self.ts_recent) {
                if !ts_before(tsval, recent) && seq <= rcv_nxt {
                    self.ts_recent = Some(tsval);
                    self.ts_recent_age = now;
                }
            }
        }
        // Fourth: SYN -> challenge ACK (RFC 5961 §4.2).
        if syn {
            return self.challenge(now, cfg);
        }
        // Fifth: ACK.
        if !has_ack {
            return RequestAction::Drop;
        }
        if ack != snd_max {
            // RFC 9293 §3.10.7.4: SYN-RECEIVED, unacceptable ACK -> <SEQ=SEG.ACK><CTL=RST>.
            return match super::reply_to_unknown(seg, payload_len) {
                Some(rst) => RequestAction::Reset(rst),
                None => RequestAction::Drop,
            };
        }
        RequestAction::Complete
    }

    /// RFC 6298 §5 for the SYN-ACK: at the deadline, send it again with the timeout
    /// doubled, until `synack_retries` are spent.
    pub fn handle_timeout(&mut self, now: Instant, cfg: &TcpConfig) -> RequestTimeout {
        if now < self.deadline {
            return RequestTimeout::NotYet;
        }
        if self.retransmits() >= cfg.synack_retries {
            return RequestTimeout::Expired;
        }
        self.retransmits = self.retransmits.saturating_add(1);
        self.sample_start = None;
        self.deadline = now + rto(cfg, self.retransmits());
        RequestTimeout::Retransmit(self.synack(now, cfg))
    }
}

/// The SYN-ACK retransmission timeout after `backoff` retransmissions (as the `Tcb`'s).
fn rto(cfg: &TcpConfig, backoff: u32) -> Duration {
    RttEstimator::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max).backed_off(backoff)
}

impl Tcb {
    /// The connection a completed request becomes: in SYN-RECEIVED with its SYN-ACK
    /// already sent (as the request sent it), ready for the handshake's ACK, which the
    /// engine passes to [`Tcb::handle_segment`] next. The RTT sample of the SYN-ACK is
    /// kept when it was not retransmitted (Karn).
    pub fn from_request(req: &RequestSock, now: Instant, cfg: &TcpConfig) -> Tcb {
        Tcb::from_request_shared(req, now, std::sync::Arc::new(*cfg))
    }

    /// [`Tcb::from_request`] with a configuration shared with other connections
    /// ([`super::SharedConfigs`]); the timestamp offset is the request's.
    pub fn from_request_shared(
        req: &RequestSock,
        now: Instant,
        cfg: std::sync::Arc<TcpConfig>,
    ) -> Tcb {
        let mut tcb =
            Tcb::accept_syn_shared(req.tuple, &req.syn(), req.iss.0, now, cfg, req.ts_offset);
        if let Some(age) = req.ts_recent.map(|_| req.ts_recent_age) {
            tcb.ts_recent = req.ts_recent.unwrap_or(0);
            tcb.ts_recent_age = age;
        }
        tcb.rcv_adv = tcb.rcv_adv.max_seq(tcb.rcv_nxt + req.rcv_wnd);
        tcb.last_ack_sent = tcb.rcv_nxt;
        tcb.syn_pending = false;
        tcb.snd_nxt = tcb.iss + 1u32;
        tcb.snd_max = tcb.snd_nxt;
        tcb.backoff = req.retransmits();
        tcb.rtt_sample = req.sample_start.map(|t| (tcb.iss + 1u32, t));
        tcb.rto_deadline = Some(req.deadline);
        tcb.challenge_window_start = req.challenge_window_start;
        tcb.challenge_count = u32::from(req.challenge_count);
        debug_assert_eq!(tcb.state, State::SynReceived);
        tcb
    }
}

/// Counters of one [`SynQueue`], plain integers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SynQueueCounters {
    /// Requests admitted.
    pub admitted: u64,
    /// SYNs refused because the listener's SYN queue was full (Linux
    /// `ListenOverflows`/`TCPReqQFullDrop`; the engine answers with a cookie if it may).
    pub overflow: u64,
    /// SYNs refused at the table's memory or entry limit (ENOBUFS).
    pub refused: u64,
    /// Handshakes completed.
    pub completed: u64,
    /// SYN-ACKs re-sent by timer.
    pub synack_retransmits: u64,
    /// SYN-ACKs re-sent for a retransmitted SYN.
    pub syn_retransmits_seen: u64,
    /// Requests ended by the peer's RST.
    pub aborted: u64,
    /// Requests that ran out of SYN-ACK retransmissions.
    pub expired: u64,
}

/// Why a SYN was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmitError {
    /// The listener's SYN queue is full (backlog overflow): use a cookie or drop.
    QueueFull,
    /// A request for this 4-tuple exists (a retransmitted SYN goes to `handle_segment`).
    Duplicate,
    /// The table's memory limit: ENOBUFS.
    NoBuffers(Errno),
}

/// A retransmission deadline and the 4-tuple it belongs to (as plain integers, ordered).
type TimerEntry = Reverse<(Instant, u32, u16, u32, u16)>;

/// One engine's half-open connections.
#[derive(Debug, Clone)]
pub struct SynQueue {
    requests: ConnTable<RequestSock>,
    pending: HashMap<SocketId, u32, KeyedState>,
    timers: BinaryHeap<TimerEntry>,
    /// Traffic and refusals.
    pub counters: SynQueueCounters,
}

fn timer_key(deadline: Instant, t: &FourTuple) -> TimerEntry {
    Reverse((
        deadline,
        t.local_addr.to_bits(),
        t.local_port,
        t.remote_addr.to_bits(),
        t.remote_port,
    ))
}

impl SynQueue {
    /// A queue bounded by `config` (entries and bytes), hashing with `key`.
    pub fn new(config: ConnTableConfig, key: HashKey) -> Result<Self, Errno> {
        Ok(SynQueue {
            requests: ConnTable::with_config(config, key)?,
            pending: HashMap::with_hasher(key.state()),
            timers: BinaryHeap::new(),
            counters: SynQueueCounters::default(),
        })
    }

    /// Requests held, all listeners.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Requests held for `listener`.
    pub fn pending(&self, listener: SocketId) -> usize {
        self.pending.get(&listener).map_or(0, |&n| n as usize)
    }

    /// Bytes of memory: the table, the per-listener counts and the timer heap.
    pub fn memory_bytes(&self) -> usize {
        self.requests.memory_bytes()
            + self.pending.capacity() * core::mem::size_of::<(SocketId, u32, u64)>()
            + self.timers.capacity() * core::mem::size_of::<TimerEntry>()
    }

    /// The request for `tuple`.
    pub fn get(&self, tuple: &FourTuple) -> Option<&RequestSock> {
        self.requests.get(tuple)
    }

    /// Admits `syn` for `listener`, whose SYN queue holds at most `syn_backlog` (+1, as
    /// Linux `inet_csk_reqsk_queue_is_full`), and returns the SYN-ACK to send, unless the
    /// queue is full (RFC 4987 §3.6: answer with a cookie then) or a limit is reached.
    #[allow(clippy::too_many_arguments)]
    pub fn admit(
        &mut self,
        listener: SocketId,
        syn_backlog: u32,
        tuple: FourTuple,
        syn: &TcpRepr,
        iss: u32,
        now: Instant,
        cfg: &TcpConfig,
    ) -> Result<TcpRepr, AdmitError> {
        if self.pending(listener) as u64 > u64::from(syn_backlog) {
            self.counters.overflow += 1;
            return Err(AdmitError::QueueFull);
        }
        let req = RequestSock::new(tuple, listener, syn, iss, now, cfg);
        let synack = req.synack(now, cfg);
        let deadline = req.deadline;
        if let Err(e) = self.requests.insert(tuple, req) {
            if e.errno == Errno::EADDRINUSE {
                return Err(AdmitError::Duplicate);
            }
            self.counters.refused += 1;
            return Err(AdmitError::NoBuffers(e.errno));
        }
        if self.timers.try_reserve(1).is_err() {
            self.requests.remove(&tuple);
            self.counters.refused += 1;
            return Err(AdmitError::NoBuffers(Errno::ENOBUFS));
        }
        self.timers.push(timer_key(deadline, &tuple));
        *self.pending.entry(listener).or_insert(0) += 1;
        self.counters.admitted += 1;
        Ok(synack)
    }

    /// Admits `syn` for `listener` (see [`SynQueue::admit`]), with its backlog.
    pub fn admit_for(
        &mut self,
        listener: &Listener,
        tuple: FourTuple,
        syn: &TcpRepr,
        iss: u32,
        now: Instant,
        cfg: &TcpConfig,
    ) -> Result<TcpRepr, AdmitError> {
        self.admit(listener.id, listener.syn_backlog, tuple, syn, iss, now, cfg)
    }

    fn forget(&mut self, tuple: &FourTuple) -> Option<RequestSock> {
        let req = self.requests.remove(tuple)?;
        if let Some(n) = self.pending.get_mut(&req.listener) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.pending.remove(&req.listener);
            }
        }
        Some(req)
    }

    /// Answers a segment for `tuple` (`None`: no request). A completed handshake hands
    /// back the record (removed) for [`Tcb::from_request`]; an aborted one is removed.
    pub fn handle_segment(
        &mut self,
        tuple: &FourTuple,
        now: Instant,
        seg: &TcpRepr,
        payload_len: usize,
        cfg: &TcpConfig,
    ) -> Option<(RequestAction, Option<RequestSock>)> {
        let req = self.requests.get_mut(tuple)?;
        let before = req.deadline;
        let action = req.handle_segment(now, seg, payload_len, cfg);
        let after = req.deadline;
        match action {
            RequestAction::Complete => {
                self.counters.completed += 1;
                return Some((action, self.forget(tuple)));
            }
            RequestAction::Aborted => {
                self.counters.aborted += 1;
                self.forget(tuple);
            }
            RequestAction::SynAck(_) => {
                self.counters.syn_retransmits_seen += 1;
                if after != before {
                    self.timers.push(timer_key(after, tuple));
                }
            }
            _ => {}
        }
        Some((action, None))
    }

    /// Runs the retransmission timers due at `now`, at most `budget` of them, with each
    /// listener's configuration from `cfg_of`; `out` gets each SYN-ACK to send. Returns how many timer entries were looked at.
    pub fn handle_timeouts(
        &mut self,
        now: Instant,
        budget: usize,
        cfg_of: impl Fn(SocketId) -> TcpConfig,
        mut out: impl FnMut(&FourTuple, TcpRepr),
    ) -> usize {
        let mut looked = 0;
        while looked < budget {
            let Some(&Reverse((deadline, la, lp, ra, rp))) = self.timers.peek() else {
                break;
            };
            if deadline > now {
                break;
            }
            self.timers.pop();
            looked += 1;
            let tuple = FourTuple::new(
                SocketAddrV4::new(Ipv4Addr::from_bits(la), lp),
                SocketAddrV4::new(Ipv4Addr::from_bits(ra), rp),
            );
            let Some(req) = self.requests.get_mut(&tuple) else {
                continue;
            };
            if req.deadline != deadline {
                continue; // rescheduled: a later entry stands for it
            }
            let cfg = cfg_of(req.listener);
            match req.handle_timeout(now, &cfg) {
                RequestTimeout::NotYet => {}
                RequestTimeout::Retransmit(synack) => {
                    let next = req.deadline;
                    self.timers.push(timer_key(next, &tuple));
                    self.counters.synack_retransmits += 1;
                    out(&tuple, synack);
                }
                RequestTimeout::Expired => {
                    self.counters.expired += 1;
                    self.forget(&tuple);
                }
            }
        }
        looked
    }

    /// The earliest retransmission deadline queued.
    pub fn poll_at(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((d, ..))| *d)
    }
}
