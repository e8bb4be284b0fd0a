//! The surge backend's counters by name for `surge load --json` and `surge serve`'s report:
//! every engine counter, drops by reason, and the connections' own counters summed, with
//! the retransmissions summed from `TCP_INFO` under Linux's name `tcp_RetransSegs` so a
//! report reads the same key for either stack.

use std::collections::BTreeMap;

use surge_datapath::DeviceStats;
use surge_stack::engine::{EngineStats, TcpEngineStats};
use surge_stack::tcp::{TcpInfo, TcpStats};

/// The connections' own counters, summed over the connections a worker had.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionTotals {
    /// Segments retransmitted (`tcpi_total_retrans` summed; Linux's `RetransSegs`).
    pub retransmits: u64,
    /// Retransmission timeouts that fired.
    pub rto_expirations: u64,
    /// Entries into fast recovery.
    pub fast_retransmits: u64,
    /// Tail loss probes sent (RFC 8985 §7).
    pub tlp_probes: u64,
    /// Segments marked lost.
    pub lost_segments: u64,
    /// Timeouts found spurious by F-RTO and undone.
    pub spurious_rtos: u64,
    /// Out-of-order segments the receiver dropped because its queue was full.
    pub ooo_dropped: u64,
    /// Out-of-order ranges the receiver forgot (reneged SACKed data) to make room for
    /// data nearer `RCV.NXT`.
    pub ooo_pruned: u64,
}

impl ConnectionTotals {
    /// Adds one connection's `TCP_INFO` and counters.
    pub fn add_connection(&mut self, info: &TcpInfo, stats: &TcpStats) {
        self.retransmits += u64::from(info.total_retrans);
        self.rto_expirations += stats.rto_expirations;
        self.fast_retransmits += stats.fast_retransmits;
        self.tlp_probes += stats.tlp_probes;
        self.lost_segments += stats.lost_segments;
        self.spurious_rtos += stats.spurious_rtos;
        self.ooo_dropped += stats.ooo_dropped;
        self.ooo_pruned += stats.ooo_pruned;
    }

    /// Adds another sum.
    pub fn add(&mut self, other: &ConnectionTotals) {
        self.retransmits += other.retransmits;
        self.rto_expirations += other.rto_expirations;
        self.fast_retransmits += other.fast_retransmits;
        self.tlp_probes += other.tlp_probes;
        self.lost_segments += other.lost_segments;
        self.spurious_rtos += other.spurious_rtos;
        self.ooo_dropped += other.ooo_dropped;
        self.ooo_pruned += other.ooo_pruned;
    }
}

/// One worker's counters, as it last published them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCounters {
    /// The engine's counters.
    pub engine: EngineStats,
    /// The engine's TCP-layer counters.
    pub tcp: TcpEngineStats,
    /// The worker's connections, closed and open.
    pub connections: ConnectionTotals,
    /// The AF_XDP port's counters, with the kernel's `XDP_STATISTICS` (frames the kernel
    /// dropped because the RX ring was full or the fill ring empty).
    pub device: DeviceStats,
}

impl WorkerCounters {
    /// Adds another worker's counters.
    pub fn add(&mut self, other: &WorkerCounters) {
        self.engine.add(&other.engine);
        self.tcp.add(&other.tcp);
        self.connections.add(&other.connections);
        let (d, o) = (&mut self.device, &other.device);
        d.fill_ring_empty += o.fill_ring_empty;
        d.tx_ring_full += o.tx_ring_full;
        d.pool_empty += o.pool_empty;
        d.wakeups += o.wakeups;
        d.busy_polls += o.busy_polls;
        if let Some(ok) = o.kernel {
            let k = d.kernel.get_or_insert_with(Default::default);
            k.rx_dropped += ok.rx_dropped;
            k.rx_ring_full += ok.rx_ring_full;
            k.fill_ring_empty += ok.fill_ring_empty;
            k.rx_invalid_descs += ok.rx_invalid_descs;
            k.tx_invalid_descs += ok.tx_invalid_descs;
        }
    }

    /// Every counter by name; drops as `drop_<reason>`, only the reasons that happened.
    pub fn named(&self) -> BTreeMap<String, u64> {
        let (e, t, c) = (&self.engine, &self.tcp, &self.connections);
        let mut out: BTreeMap<String, u64> = [
            ("rx_frames", e.rx_frames),
            ("rx_bytes", e.rx_bytes),
            ("tx_frames", e.tx_frames),
            ("tx_bytes", e.tx_bytes),
            ("tx_no_frame", e.tx_no_frame),
            ("arp_replies", e.arp_replies),
            ("arp_requests", e.arp_requests),
            ("arp_conflicts", e.arp_conflicts),
            ("arp_defences", e.arp_defences),
            ("arp_observed", e.arp_observed),
            ("icmp_echo_replies", e.icmp_echo_replies),
            ("icmp_errors_sent", e.icmp_errors_sent),
            ("tcp_rst_sent", e.tcp_rst_sent),
            ("no_route", e.no_route),
            ("forwarded_out", e.forwarded_out),
            ("forwarded_in", e.forwarded_in),
            ("forward_dropped", e.forward_dropped),
            ("sockets_refused", e.sockets_refused),
            ("drops_total", e.total_drops()),
            ("active_opens", t.active_opens),
            ("passive_opens", t.passive_opens),
            ("accepted", t.accepted),
            ("closed", t.closed),
            ("listen_overflows", t.listen_overflows),
            ("table_full", t.table_full),
            ("syn_cookies_sent", t.syn_cookies_sent),
            ("syn_cookies_accepted", t.syn_cookies_accepted),
            ("syn_cookies_rejected", t.syn_cookies_rejected),
            ("time_wait_records", t.time_wait_records),
            ("time_wait_overflow", t.time_wait_overflow),
            ("tx_blocked", t.tx_blocked),
            ("time_wait_reused", t.time_wait_reused),
            ("connects_refused", t.connects_refused),
            ("payload_moves", t.payload_moves),
            ("acks_held", t.acks_held),
            ("acks_merged", t.acks_merged),
            ("timers_early", t.timers_early),
            ("tcp_RetransSegs", c.retransmits),
            ("conn_rto_expirations", c.rto_expirations),
            ("conn_fast_retransmits", c.fast_retransmits),
            ("conn_tlp_probes", c.tlp_probes),
            ("conn_lost_segments", c.lost_segments),
            ("conn_spurious_rtos", c.spurious_rtos),
            ("conn_ooo_dropped", c.ooo_dropped),
            ("conn_ooo_pruned", c.ooo_pruned),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (name, n) in e.drops_by_name() {
            out.insert(format!("drop_{name}"), n);
        }
        let d = &self.device;
        for (name, n) in [
            ("port_fill_ring_refills", d.fill_ring_empty),
            ("port_tx_ring_full", d.tx_ring_full),
            ("port_pool_empty", d.pool_empty),
            ("port_wakeups", d.wakeups),
            ("port_busy_polls", d.busy_polls),
        ] {
            out.insert(name.to_string(), n);
        }
        if let Some(k) = d.kernel {
            for (name, n) in [
                ("xdp_rx_dropped", k.rx_dropped),
                ("xdp_rx_ring_full", k.rx_ring_full),
                ("xdp_fill_ring_empty", k.fill_ring_empty),
                ("xdp_rx_invalid_descs", k.rx_invalid_descs),
                ("xdp_tx_invalid_descs", k.tx_invalid_descs),
            ] {
                out.insert(name.to_string(), n);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_stack::engine::DropReason;

    #[test]
    fn names_every_counter_and_sums_workers() {
        let mut one = WorkerCounters::default();
        one.engine.rx_frames = 10;
        one.engine.drop(DropReason::BadChecksum);
        one.tcp.active_opens = 2;
        one.connections.retransmits = 5;
        one.device.busy_polls = 6;
        let mut two = one;
        two.engine.drop(DropReason::TcpRejected);
        two.connections.tlp_probes = 1;
        two.connections.ooo_pruned = 3;
        let mut sum = WorkerCounters::default();
        sum.add(&one);
        sum.add(&two);
        let named = sum.named();
        assert_eq!(named["rx_frames"], 20);
        assert_eq!(named["active_opens"], 4);
        assert_eq!(named["tcp_RetransSegs"], 10);
        assert_eq!(named["conn_tlp_probes"], 1);
        assert_eq!(named["conn_ooo_pruned"], 3);
        assert_eq!(named["drop_bad_checksum"], 2);
        assert_eq!(named["drop_tcp_rejected"], 1);
        assert_eq!(named["drops_total"], 3);
        assert!(
            !named.contains_key("drop_truncated"),
            "only reasons that happened"
        );
        // One key per field of EngineStats (18 + the total) and TcpEngineStats (18), 8
        // connection totals, the 2 drop reasons that happened and 5 port counters; no
        // kernel statistics were read.
        assert_eq!(named.len(), 19 + 18 + 8 + 2 + 5);
        assert_eq!(named["port_busy_polls"], 12);
        assert!(!named.contains_key("xdp_rx_ring_full"));
        one.device.kernel = Some(surge_datapath::KernelXdpStats {
            rx_ring_full: 7,
            ..Default::default()
        });
        let mut sum = WorkerCounters::default();
        sum.add(&one);
        sum.add(&one);
        assert_eq!(sum.named()["xdp_rx_ring_full"], 14);
    }
}
