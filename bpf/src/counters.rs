//! The per-CPU verdict counters of the steering program, summed.

/// One counter slot; mirrors `enum steer_counter` in `src/bpf/steer.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    /// ARP for one of our addresses, redirected.
    RedirectArp = 0,
    /// TCP to one of our ports, redirected.
    RedirectTcp = 1,
    /// UDP to one of our ports, redirected.
    RedirectUdp = 2,
    /// ICMP to one of our addresses, redirected.
    RedirectIcmp = 3,
    /// Neither ARP nor IPv4, passed.
    PassOtherEthertype = 4,
    /// IPv4 to an address that is not ours, passed.
    PassOtherAddr = 5,
    /// TCP/UDP to a port we do not own, passed.
    PassPortNotOwned = 6,
    /// Truncated or malformed, passed.
    PassMalformed = 7,
    /// Ours, but no socket registered on the receiving queue, passed.
    PassNoSocket = 8,
    /// An IPv4 fragment, passed (the kernel reassembles).
    PassFragment = 9,
    /// ARP for another address, passed.
    PassArpOther = 10,
    /// An IP protocol we do not own (or ICMP when not enabled), passed.
    PassProtoNotOwned = 11,
    /// ARP for an address shared with the kernel, left to the kernel.
    PassArpShared = 12,
    /// To an address only surge has: a fragment, another protocol or a
    /// malformed header, redirected (surge reassembles or counts the drop).
    RedirectOther = 13,
    /// ARP passed to the kernel and copied to the `arp_seen` ring, for surge's
    /// neighbour cache (see [`crate::ArpSeen`]).
    ArpCopied = 14,
    /// ARP passed to the kernel whose copy was lost: the `arp_seen` ring was full.
    ArpCopyLost = 15,
}

impl Counter {
    /// Every counter, in slot order.
    pub const ALL: [Counter; 16] = [
        Counter::RedirectArp,
        Counter::RedirectTcp,
        Counter::RedirectUdp,
        Counter::RedirectIcmp,
        Counter::PassOtherEthertype,
        Counter::PassOtherAddr,
        Counter::PassPortNotOwned,
        Counter::PassMalformed,
        Counter::PassNoSocket,
        Counter::PassFragment,
        Counter::PassArpOther,
        Counter::PassProtoNotOwned,
        Counter::PassArpShared,
        Counter::RedirectOther,
        Counter::ArpCopied,
        Counter::ArpCopyLost,
    ];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Counter::RedirectArp => "redirect_arp",
            Counter::RedirectTcp => "redirect_tcp",
            Counter::RedirectUdp => "redirect_udp",
            Counter::RedirectIcmp => "redirect_icmp",
            Counter::PassOtherEthertype => "pass_other_ethertype",
            Counter::PassOtherAddr => "pass_other_addr",
            Counter::PassPortNotOwned => "pass_port_not_owned",
            Counter::PassMalformed => "pass_malformed",
            Counter::PassNoSocket => "pass_no_socket",
            Counter::PassFragment => "pass_fragment",
            Counter::PassArpOther => "pass_arp_other",
            Counter::PassProtoNotOwned => "pass_proto_not_owned",
            Counter::PassArpShared => "pass_arp_shared",
            Counter::RedirectOther => "redirect_other",
            Counter::ArpCopied => "arp_copied",
            Counter::ArpCopyLost => "arp_copy_lost",
        }
    }
}

/// All counters, summed over CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SteerCounters {
    values: [u64; Counter::ALL.len()],
}

impl SteerCounters {
    pub(crate) fn set(&mut self, counter: Counter, value: u64) {
        self.values[counter as usize] = value;
    }

    /// The value of one counter.
    pub fn get(&self, counter: Counter) -> u64 {
        self.values[counter as usize]
    }

    /// Frames redirected to AF_XDP sockets.
    pub fn redirected(&self) -> u64 {
        Counter::ALL
            .iter()
            .filter(|c| c.name().starts_with("redirect"))
            .map(|&c| self.get(c))
            .sum()
    }

    /// Frames passed to the kernel.
    pub fn passed(&self) -> u64 {
        Counter::ALL
            .iter()
            .filter(|c| c.name().starts_with("pass"))
            .map(|&c| self.get(c))
            .sum()
    }
}
