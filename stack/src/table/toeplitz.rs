//! The Toeplitz hash NICs use for receive-side scaling (RSS), and the port choice
//! that makes an active open's replies arrive on the opener's own RX queue.
//!
//! The algorithm and the default key are Microsoft's "Receive-Side Scaling" spec
//! ("Verifying the RSS Hash Calculation"), which Linux drivers use too
//! (`netdev_rss_key_fill` falls back to random, but most drivers and DPDK ship this
//! key). For IPv4/TCP the input is source address, destination address, source
//! port, destination port, all in network byte order; the NIC picks the queue as
//! `indirection[hash % table_size]` (Linux `ethtool_rxfh_indir_default` fills the
//! table with `i % queues`).

use core::net::{Ipv4Addr, SocketAddrV4};

use crate::{Errno, FourTuple};

/// The well-known 40-byte RSS key (Microsoft RSS spec; DPDK / many Linux drivers).
pub const DEFAULT_RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// Size of the default indirection table (common to many drivers).
pub const DEFAULT_INDIRECTION_SIZE: usize = 128;

/// Bytes of IPv4 + TCP/UDP hash input: two addresses and two ports.
const IPV4_L4_INPUT: usize = 12;

/// The 12-byte IPv4 TCP/UDP hash input: source address, destination address,
/// source port, destination port, network byte order.
pub fn ipv4_l4_input(src: SocketAddrV4, dst: SocketAddrV4) -> [u8; 12] {
    let [s0, s1, s2, s3] = src.ip().octets();
    let [d0, d1, d2, d3] = dst.ip().octets();
    let [sp0, sp1] = src.port().to_be_bytes();
    let [dp0, dp1] = dst.port().to_be_bytes();
    [s0, s1, s2, s3, d0, d1, d2, d3, sp0, sp1, dp0, dp1]
}

/// The Toeplitz hash of `input` under `key`: for every set bit `i` of the input
/// (most significant bit first), XOR in the 32 key bits starting at bit `i`.
/// Key bits past the end of `key` count as zero, so a short key cannot panic.
pub fn toeplitz_hash(key: &[u8], input: &[u8]) -> u32 {
    let key_byte = |i: usize| u64::from(key.get(i).copied().unwrap_or(0));
    // The top 32 bits of `window` are the key bits aligned with the current input bit.
    let mut window: u64 = (0..8).fold(0, |w, i| (w << 8) | key_byte(i));
    let mut result = 0u32;
    for (i, &byte) in input.iter().enumerate() {
        for bit in (0..8).rev() {
            if (byte >> bit) & 1 == 1 {
                result ^= (window >> 32) as u32;
            }
            window <<= 1;
        }
        window |= key_byte(i + 8);
    }
    result
}

/// A NIC's RSS configuration: key and indirection table, with per-byte tables
/// precomputed for IPv4 + TCP/UDP input (the hash is linear in the input bits, so
/// it is the XOR of one table entry per input byte).
#[derive(Clone)]
pub struct Rss {
    indirection: Vec<u16>,
    per_byte: Vec<[u32; 256]>,
}

impl core::fmt::Debug for Rss {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Rss")
            .field("indirection", &self.indirection)
            .finish_non_exhaustive()
    }
}

impl Rss {
    /// RSS with `key` and an indirection table of queue numbers. EINVAL if the
    /// table is empty or the key is shorter than the 16 bytes IPv4/TCP needs.
    pub fn new(key: &[u8], indirection: Vec<u16>) -> Result<Self, Errno> {
        if indirection.is_empty() || key.len() < IPV4_L4_INPUT + 4 {
            return Err(Errno::EINVAL);
        }
        let per_byte = (0..IPV4_L4_INPUT)
            .map(|pos| {
                let mut table = [0u32; 256];
                let mut input = [0u8; IPV4_L4_INPUT];
                for (value, entry) in (0u8..=255).zip(table.iter_mut()) {
                    if let Some(b) = input.get_mut(pos) {
                        *b = value;
                    }
                    *entry = toeplitz_hash(key, &input);
                }
                table
            })
            .collect();
        Ok(Rss {
            indirection,
            per_byte,
        })
    }

    /// The default key and a 128-entry table spreading over `queues` queues
    /// (`i % queues`, Linux `ethtool_rxfh_indir_default`). EINVAL for 0 queues.
    pub fn with_queues(queues: u16) -> Result<Self, Errno> {
        if queues == 0 {
            return Err(Errno::EINVAL);
        }
        let table = (0..DEFAULT_INDIRECTION_SIZE)
            .map(|i| (i % usize::from(queues)) as u16)
            .collect();
        Rss::new(&DEFAULT_RSS_KEY, table)
    }

    /// The indirection table.
    pub fn indirection(&self) -> &[u16] {
        &self.indirection
    }

    fn byte_hash(&self, pos: usize, value: u8) -> u32 {
        self.per_byte
            .get(pos)
            .and_then(|t| t.get(usize::from(value)))
            .copied()
            .unwrap_or(0)
    }

    fn hash_bytes(&self, input: [u8; IPV4_L4_INPUT]) -> u32 {
        input
            .iter()
            .enumerate()
            .fold(0, |h, (pos, &b)| h ^ self.byte_hash(pos, b))
    }

    /// The Toeplitz hash the NIC computes for an IPv4 TCP/UDP packet from `src` to `dst`.
    pub fn hash_ipv4_l4(&self, src: SocketAddrV4, dst: SocketAddrV4) -> u32 {
        self.hash_bytes(ipv4_l4_input(src, dst))
    }

    /// The Toeplitz hash over the addresses only (IPv4 without ports: fragments,
    /// ICMP). The key window for the first 8 input bytes is the same as with ports,
    /// so the same tables serve.
    pub fn hash_ipv4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u32 {
        src.octets()
            .iter()
            .chain(dst.octets().iter())
            .enumerate()
            .fold(0, |h, (pos, &b)| h ^ self.byte_hash(pos, b))
    }

    /// The RX queue the NIC picks for an IPv4 TCP/UDP packet from `src` to `dst`;
    /// the engine compares it with its own queue to spot misdelivered segments.
    pub fn queue_of(&self, src: SocketAddrV4, dst: SocketAddrV4) -> u16 {
        self.queue_of_hash(self.hash_ipv4_l4(src, dst))
    }

    /// The queue the indirection table gives for `hash`.
    pub fn queue_of_hash(&self, hash: u32) -> u16 {
        let len = self.indirection.len();
        let index = if len == 0 { 0 } else { hash as usize % len };
        self.indirection.get(index).copied().unwrap_or(0)
    }

    /// The RX queue our NIC puts the peer's packets of `tuple` on (source = remote).
    pub fn reply_queue(&self, tuple: &FourTuple) -> u16 {
        self.queue_of_hash(self.hash_ipv4_l4(tuple.remote(), tuple.local()))
    }

    /// The first of `candidates` (local ports) for which replies from `remote` to
    /// `local_addr:port` land on `queue`. Each candidate costs two table lookups.
    pub fn port_for_queue(
        &self,
        local_addr: Ipv4Addr,
        remote: SocketAddrV4,
        queue: u16,
        candidates: impl IntoIterator<Item = u16>,
    ) -> Option<u16> {
        let base = self.hash_ipv4_l4(remote, SocketAddrV4::new(local_addr, 0));
        candidates.into_iter().find(|&port| {
            let [hi, lo] = port.to_be_bytes();
            let hash = base ^ self.byte_hash(10, hi) ^ self.byte_hash(11, lo);
            self.queue_of_hash(hash) == queue
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(a: [u8; 4], port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(a), port)
    }

    /// Microsoft RSS spec, "Verifying the RSS Hash Calculation", IPv4 table:
    /// (destination, source, hash over addresses only, hash with TCP ports).
    const MS_IPV4_VECTORS: [(SocketAddrV4, SocketAddrV4, u32, u32); 5] = [
        (
            SocketAddrV4::new(Ipv4Addr::new(161, 142, 100, 80), 1766),
            SocketAddrV4::new(Ipv4Addr::new(66, 9, 149, 187), 2794),
            0x323e_8fc2,
            0x51cc_c178,
        ),
        (
            SocketAddrV4::new(Ipv4Addr::new(65, 69, 140, 83), 4739),
            SocketAddrV4::new(Ipv4Addr::new(199, 92, 111, 2), 14230),
            0xd718_262a,
            0xc626_b0ea,
        ),
        (
            SocketAddrV4::new(Ipv4Addr::new(12, 22, 207, 184), 38024),
            SocketAddrV4::new(Ipv4Addr::new(24, 19, 198, 95), 12898),
            0xd2d0_a5de,
            0x5c2b_394a,
        ),
        (
            SocketAddrV4::new(Ipv4Addr::new(209, 142, 163, 6), 2217),
            SocketAddrV4::new(Ipv4Addr::new(38, 27, 205, 30), 48228),
            0x8298_9176,
            0xafc7_327f,
        ),
        (
            SocketAddrV4::new(Ipv4Addr::new(202, 188, 127, 2), 1303),
            SocketAddrV4::new(Ipv4Addr::new(153, 39, 163, 191), 44251),
            0x5d18_09c5,
            0x10e8_28a2,
        ),
    ];

    #[test]
    fn microsoft_rss_ipv4_vectors_bitwise() {
        for (dst, src, ip_only, with_tcp) in MS_IPV4_VECTORS {
            let input = ipv4_l4_input(src, dst);
            assert_eq!(
                toeplitz_hash(&DEFAULT_RSS_KEY, &input[..8]),
                ip_only,
                "{src} -> {dst}"
            );
            assert_eq!(
                toeplitz_hash(&DEFAULT_RSS_KEY, &input),
                with_tcp,
                "{src} -> {dst}"
            );
        }
    }

    #[test]
    fn microsoft_rss_ipv4_tcp_vectors_table_driven() {
        let rss = Rss::with_queues(4).unwrap();
        for (dst, src, ip_only, with_tcp) in MS_IPV4_VECTORS {
            assert_eq!(rss.hash_ipv4_l4(src, dst), with_tcp, "{src} -> {dst}");
            assert_eq!(
                rss.hash_ipv4(*src.ip(), *dst.ip()),
                ip_only,
                "{src} -> {dst}"
            );
            assert_eq!(rss.queue_of(src, dst), rss.queue_of_hash(with_tcp));
        }
    }

    #[test]
    fn first_vector_by_hand_example() {
        // The example the brief quotes: 66.9.149.187:2794 -> 161.142.100.80:1766.
        let rss = Rss::with_queues(1).unwrap();
        assert_eq!(
            rss.hash_ipv4_l4(sa([66, 9, 149, 187], 2794), sa([161, 142, 100, 80], 1766)),
            0x51cc_c178
        );
    }

    #[test]
    fn short_key_and_empty_input_do_not_panic() {
        assert_eq!(toeplitz_hash(&[], &[0xff; 12]), 0);
        assert_eq!(toeplitz_hash(&DEFAULT_RSS_KEY, &[]), 0);
        // A key of exactly 4 bytes hashes the first bit with the whole key.
        assert_eq!(
            toeplitz_hash(&[0xde, 0xad, 0xbe, 0xef], &[0x80]),
            0xdead_beef
        );
        assert_eq!(Rss::new(&[0; 15], vec![0]).err(), Some(Errno::EINVAL));
        assert_eq!(
            Rss::new(&DEFAULT_RSS_KEY, vec![]).err(),
            Some(Errno::EINVAL)
        );
        assert_eq!(Rss::with_queues(0).err(), Some(Errno::EINVAL));
    }

    #[test]
    fn default_indirection_is_i_mod_queues_ethtool_rxfh_indir_default() {
        let rss = Rss::with_queues(3).unwrap();
        assert_eq!(rss.indirection().len(), 128);
        for (i, q) in rss.indirection().iter().enumerate() {
            assert_eq!(usize::from(*q), i % 3);
        }
        assert_eq!(rss.queue_of_hash(128 + 4), 1);
    }

    #[test]
    fn port_for_queue_finds_ports_whose_replies_land_on_the_queue() {
        let local = Ipv4Addr::new(198, 18, 0, 1);
        let remote = sa([198, 19, 0, 2], 80);
        for queues in [2u16, 4, 8] {
            let rss = Rss::with_queues(queues).unwrap();
            for queue in 0..queues {
                let mut start = 32768u16;
                for _ in 0..20 {
                    let port = rss
                        .port_for_queue(local, remote, queue, start..=60999)
                        .unwrap();
                    // Check against the bitwise hash of the real reply packet.
                    let reply = ipv4_l4_input(remote, SocketAddrV4::new(local, port));
                    let hash = toeplitz_hash(&DEFAULT_RSS_KEY, &reply);
                    assert_eq!(rss.queue_of_hash(hash), queue);
                    let tuple = FourTuple::new(SocketAddrV4::new(local, port), remote);
                    assert_eq!(rss.reply_queue(&tuple), queue);
                    // Every skipped port hashes elsewhere.
                    for skipped in start..port {
                        let t = FourTuple::new(SocketAddrV4::new(local, skipped), remote);
                        assert_ne!(rss.reply_queue(&t), queue);
                    }
                    start = port + 1;
                }
            }
        }
        let rss = Rss::new(&DEFAULT_RSS_KEY, vec![0]).unwrap();
        assert_eq!(rss.port_for_queue(local, remote, 1, 32768..=60999), None);
    }
}
