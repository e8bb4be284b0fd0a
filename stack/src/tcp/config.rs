//! Per-connection knobs, with Linux-like defaults.

use core::time::Duration;

/// Which congestion-control algorithm a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CongestionAlgorithm {
    /// RFC 5681 slow start and congestion avoidance (halve on loss, one MSS per RTT).
    NewReno,
    /// RFC 9438 CUBIC with RFC 9406 HyStart++ slow start (Linux's default).
    #[default]
    Cubic,
    /// BBR v1 (Linux `tcp_bbr`): paced at a model of the path's bandwidth and RTT, not
    /// reduced by random loss. Needs SACK: without it the connection uses CUBIC.
    Bbr,
}

impl CongestionAlgorithm {
    /// The algorithm Linux's `TCP_CONGESTION` names `name` ("cubic", "reno" or "newreno",
    /// "bbr"); `None` for any other name (the socket call returns ENOENT, as Linux).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "cubic" => Some(CongestionAlgorithm::Cubic),
            "reno" | "newreno" => Some(CongestionAlgorithm::NewReno),
            "bbr" => Some(CongestionAlgorithm::Bbr),
            _ => None,
        }
    }

    /// The name `getsockopt(TCP_CONGESTION)` reports (Linux's: "reno" for NewReno).
    pub fn name(self) -> &'static str {
        match self {
            CongestionAlgorithm::NewReno => "reno",
            CongestionAlgorithm::Cubic => "cubic",
            CongestionAlgorithm::Bbr => "bbr",
        }
    }
}

/// How a connection detects and repairs loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LossRecovery {
    /// With a SACK peer: RACK-TLP (RFC 8985) on an RFC 6675 scoreboard, PRR (RFC 6937) and
    /// F-RTO (RFC 5682). Without SACK: as `NewReno`.
    #[default]
    RackTlp,
    /// Three duplicate ACKs and RFC 6582 NewReno, go-back-N after a timeout; peer SACK blocks
    /// are ignored.
    NewReno,
}

/// Keepalive settings (RFC 1122 §4.2.3.6); Linux `tcp_keepalive_*` defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepaliveConfig {
    /// Idle time before the first probe (Linux: 7200 s).
    pub idle: Duration,
    /// Time between unanswered probes (Linux: 75 s).
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped (Linux: 9).
    pub count: u32,
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        KeepaliveConfig {
            idle: Duration::from_secs(7200),
            interval: Duration::from_secs(75),
            count: 9,
        }
    }
}

/// All knobs of one TCP connection. `Default` mirrors Linux defaults where Linux has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpConfig {
    /// MSS we advertise and the largest we send: path MTU minus 40 (1460 for Ethernet).
    pub mss: u16,
    /// Smallest send MSS we accept from a peer or an ICMP message (Linux `tcp_min_snd_mss`: 48).
    pub min_mss: u16,
    /// Send buffer (ring) size in bytes a connection starts with (Linux `tcp_wmem[1]`);
    /// with [`autotune`](Self::autotune) it grows with cwnd up to `send_buffer_max`. The
    /// ring's storage follows what is queued, not this size.
    pub send_buffer: usize,
    /// Receive buffer (ring) size in bytes a connection starts with (Linux `tcp_rmem[1]`);
    /// with [`autotune`](Self::autotune) it grows with the rate the application reads at
    /// up to `recv_buffer_max`.
    pub recv_buffer: usize,
    /// Buffer autotuning (Linux `tcp_moderate_rcvbuf` and `tcp_sndbuf_expand`): the receive
    /// buffer, and so the advertised window, grows to about twice what the application
    /// read in the last round trip; the send buffer to twice cwnd. On by default; a socket
    /// with `SO_RCVBUF`/`SO_SNDBUF` set has that direction pinned (its maximum is its size).
    pub autotune: bool,
    /// The most the receive buffer grows to (Linux `tcp_rmem[2]`: 6 MiB). The window scale
    /// is chosen for it (RFC 7323 §2.3), not for the initial `recv_buffer`.
    pub recv_buffer_max: usize,
    /// The most the send buffer grows to (Linux `tcp_wmem[2]`: 4 MiB).
    pub send_buffer_max: usize,
    /// RFC 3168 ECN: offer and accept it on the handshake, send data ECN-capable, answer
    /// congestion marks. Off by default (Linux `tcp_ecn` 2 accepts but does not offer).
    pub ecn: bool,
    /// Offer and accept RFC 7323 window scaling.
    pub window_scaling: bool,
    /// Offer and accept RFC 7323 timestamps.
    pub timestamps: bool,
    /// Offer and accept SACK-permitted (RFC 2018); we generate SACK blocks.
    pub sack: bool,
    /// RFC 6298 lower bound on the RTO (Linux: 200 ms).
    pub rto_min: Duration,
    /// Apply `rto_min` to the variance term, RTO = SRTT + max(4 RTTVAR, rto_min), as
    /// Linux does (`tcp_set_rto`; on by default), instead of to the sum, RTO = max(SRTT +
    /// 4 RTTVAR, rto_min), as RFC 6298 §2.4 writes it. With RTTs that are mostly a busy
    /// peer's queueing (thousands of connections behind one thread) the RFC's RTO
    /// settles a few ms above SRTT and fires spuriously.
    pub rto_min_on_variance: bool,
    /// RFC 6298 upper bound on the RTO (Linux: 120 s).
    pub rto_max: Duration,
    /// RFC 6298 initial RTO (1 s).
    pub rto_initial: Duration,
    /// SYN retransmissions before giving up (Linux `tcp_syn_retries`: 6).
    pub syn_retries: u32,
    /// SYN-ACK retransmissions before giving up (Linux `tcp_synack_retries`: 5).
    pub synack_retries: u32,
    /// Data retransmissions before giving up with ETIMEDOUT (Linux `tcp_retries2`: 15).
    pub data_retries: u32,
    /// Delayed-ACK timeout (Linux: 40 ms minimum; RFC 1122 allows up to 500 ms).
    pub delayed_ack: Duration,
    /// Segments acknowledged at once after start and after loss (Linux quick-ack: up to 16).
    pub quickack_segments: u32,
    /// Disable Nagle's algorithm (`TCP_NODELAY`).
    pub nodelay: bool,
    /// TIME-WAIT duration, 2*MSL (Linux: 60 s).
    pub time_wait: Duration,
    /// FIN-WAIT-2 timeout for connections the user closed (Linux `tcp_fin_timeout`: 60 s).
    pub fin_wait2_timeout: Duration,
    /// Keepalive, off by default (`SO_KEEPALIVE`).
    pub keepalive: Option<KeepaliveConfig>,
    /// `TCP_USER_TIMEOUT` (RFC 5482): drop when sent data stays unacknowledged this long.
    pub user_timeout: Option<Duration>,
    /// RFC 5961 §7: challenge ACKs allowed per second, per connection.
    pub challenge_ack_limit: u32,
    /// Out-of-order data we keep, in bytes (also bounded by the receive buffer).
    pub ooo_max_bytes: usize,
    /// Out-of-order ranges we track at most (8 bytes each, allocated whole on a
    /// connection's first out-of-order segment; an insert looks at each once). 256:
    /// with 32, 10 ms +- 2 ms of jitter at 200 Mbit/s scrambled more isolated
    /// segments than fit, the queue dropped thousands and a kernel sender
    /// retransmitted them (80 Mbit/s against the kernel receiver's 230; 230 now).
    pub ooo_max_ranges: usize,
    /// RFC 6928 initial window, in segments (Linux: 10).
    pub initial_window: u32,
    /// RFC 5681 §4.1: restart from the initial window after an idle period longer than the RTO.
    pub slow_start_after_idle: bool,
    /// Congestion-control algorithm.
    pub congestion: CongestionAlgorithm,
    /// Pace data at 2 × cwnd / SRTT in slow start and 1.2 × after (Linux's
    /// `tcp_update_pacing_rate` with the `fq` qdisc). Off by default; BBR always paces at
    /// its own rate.
    pub pacing: bool,
    /// Loss detection and recovery.
    pub loss_recovery: LossRecovery,
    /// Added to the engine's milliseconds for our TSvals (RFC 7323 §5.4, Linux `ts_off`):
    /// the engine sets it per connection from [`super::TimestampOffsets`]; 0 by default.
    pub ts_offset: u32,
    /// Header prediction (Van Jacobson's, Linux `tcp_rcv_established`'s fast path): an
    /// in-order segment of an established connection that acknowledges new data or carries
    /// the next text, while neither end repairs loss, takes a short path with the same
    /// effects as the full RFC 9293 §3.10.7 processing. On by default; off runs every
    /// segment through the full checks (the differential tests compare the two).
    pub header_prediction: bool,
    /// Output prediction (the sending half of header prediction, Linux `tcp_write_xmit`'s
    /// common case): the next new data of an established connection with nothing unusual
    /// going on takes a short path with the same effects as the general output path. On
    /// by default; off sends every segment the general way (the differential tests
    /// compare the two).
    pub transmit_prediction: bool,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mss: 1460,
            min_mss: 48,
            send_buffer: 256 * 1024,
            recv_buffer: 256 * 1024,
            autotune: true,
            recv_buffer_max: 6 << 20,
            send_buffer_max: 4 << 20,
            ecn: false,
            window_scaling: true,
            timestamps: true,
            sack: true,
            rto_min: Duration::from_millis(200),
            rto_min_on_variance: true,
            rto_max: Duration::from_secs(120),
            rto_initial: Duration::from_secs(1),
            syn_retries: 6,
            synack_retries: 5,
            data_retries: 15,
            delayed_ack: Duration::from_millis(40),
            quickack_segments: 16,
            nodelay: false,
            time_wait: Duration::from_secs(60),
            fin_wait2_timeout: Duration::from_secs(60),
            keepalive: None,
            user_timeout: None,
            challenge_ack_limit: 10,
            ooo_max_bytes: 256 * 1024,
            ooo_max_ranges: 256,
            initial_window: 10,
            slow_start_after_idle: true,
            congestion: CongestionAlgorithm::Cubic,
            pacing: false,
            loss_recovery: LossRecovery::RackTlp,
            ts_offset: 0,
            header_prediction: true,
            transmit_prediction: true,
        }
    }
}

impl TcpConfig {
    /// The largest receive buffer a connection may have: `recv_buffer_max` with
    /// autotuning (never below `recv_buffer`), else `recv_buffer`.
    pub fn recv_buffer_limit(&self) -> usize {
        if self.autotune {
            self.recv_buffer_max.max(self.recv_buffer)
        } else {
            self.recv_buffer
        }
    }

    /// The largest send buffer a connection may have: `send_buffer_max` with autotuning
    /// (never below `send_buffer`), else `send_buffer`.
    pub fn send_buffer_limit(&self) -> usize {
        if self.autotune {
            self.send_buffer_max.max(self.send_buffer)
        } else {
            self.send_buffer
        }
    }

    /// RFC 7323 §2.3: the smallest shift that lets the largest receive buffer be advertised
    /// (Linux `tcp_select_initial_window` with `tcp_rmem[2]`): the scale is fixed at the
    /// handshake, so it is chosen for what autotuning may grow the buffer to.
    pub fn recv_window_shift(&self) -> u8 {
        let limit = self.recv_buffer_limit();
        let mut shift = 0u8;
        while shift < 14 && (limit >> shift) > 65535 {
            shift += 1;
        }
        shift
    }
}

/// The configurations of an engine's connections, shared: connections whose
/// [`TcpConfig`] is the same (as nearly all are: the engine's defaults, clamped to
/// the interface) hold one `Arc` of it instead of a copy each. That keeps about 250
/// bytes per connection out of memory and one segment's reads of its knobs on lines
/// every connection uses. The timestamp offset, which differs per address pair, is
/// kept by the connection itself and is 0 in the shared copy.
#[derive(Debug, Default)]
pub struct SharedConfigs {
    /// The configurations handed out last, newest first (a few: servers and clients
    /// with their own socket options).
    recent: Vec<std::sync::Arc<TcpConfig>>,
}

impl SharedConfigs {
    /// Configurations remembered.
    const KEEP: usize = 4;

    /// The shared copy of `cfg` (with `ts_offset` 0): a remembered one when equal.
    pub fn share(&mut self, cfg: &TcpConfig) -> std::sync::Arc<TcpConfig> {
        let cfg = TcpConfig {
            ts_offset: 0,
            ..*cfg
        };
        if let Some(i) = self.recent.iter().position(|c| **c == cfg) {
            let shared = self.recent.remove(i);
            self.recent.insert(0, std::sync::Arc::clone(&shared));
            return shared;
        }
        let shared = std::sync::Arc::new(cfg);
        self.recent.truncate(Self::KEEP - 1);
        self.recent.insert(0, std::sync::Arc::clone(&shared));
        shared
    }
}

#[cfg(test)]
mod shared_tests {
    use super::*;
    use crate::FourTuple;
    use crate::tcp::Tcb;
    use crate::time::Instant;
    use core::net::Ipv4Addr;
    use std::sync::Arc;

    fn tuple(port: u16) -> FourTuple {
        FourTuple {
            local_addr: Ipv4Addr::new(198, 18, 0, 1),
            local_port: port,
            remote_addr: Ipv4Addr::new(198, 18, 0, 2),
            remote_port: 80,
        }
    }

    #[test]
    fn equal_configurations_share_one_copy_whatever_their_timestamp_offset() {
        let mut configs = SharedConfigs::default();
        let a = configs.share(&TcpConfig {
            ts_offset: 7,
            ..TcpConfig::default()
        });
        let b = configs.share(&TcpConfig {
            ts_offset: 99,
            ..TcpConfig::default()
        });
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.ts_offset, 0);
        let other = configs.share(&TcpConfig {
            nodelay: true,
            ..TcpConfig::default()
        });
        assert!(!Arc::ptr_eq(&a, &other));
        // Still remembered after another configuration came.
        assert!(Arc::ptr_eq(&a, &configs.share(&TcpConfig::default())));
    }

    #[test]
    fn a_connection_that_changes_its_options_leaves_the_shared_copy_alone() {
        let mut configs = SharedConfigs::default();
        let cfg = configs.share(&TcpConfig::default());
        let now = Instant::from_micros(0);
        let mut first = Tcb::connect_shared(tuple(1000), 1, now, Arc::clone(&cfg), 5);
        let second = Tcb::connect_shared(tuple(1001), 2, now, Arc::clone(&cfg), 6);
        assert!(Arc::ptr_eq(&first.cfg, &second.cfg));
        assert_eq!((first.ts_offset, second.ts_offset), (5, 6));
        first.set_nodelay(!cfg.nodelay);
        assert_eq!(first.cfg.nodelay, !cfg.nodelay);
        assert_eq!(second.cfg.nodelay, cfg.nodelay);
        assert!(Arc::ptr_eq(
            &second.cfg,
            &configs.share(&TcpConfig::default())
        ));
    }
}
