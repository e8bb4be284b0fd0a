//! The last destination's route, neighbour and frame headers, remembered for the
//! packets that follow (issue 17: "neighbour and route work per segment").
//!
//! An established connection sends its segments to one destination: routing it,
//! asking whether it is a broadcast, resolving its next hop and writing the same
//! Ethernet and IPv4 header fields for every segment is the same work each time.
//! [`TxPath`] keeps the answer of the last send that resolved to a fresh
//! neighbour, with its headers prepared ([`PlainHeaderTemplate`]), and answers the
//! next send to the same destination while it is still what the full path would
//! say:
//!
//! - the neighbour cache has not changed since ([`NeighborCache::generation`]:
//!   an answer learnt or changed, an expiry pass), and
//! - the neighbour entry is still fresh (`now` before its reachable time ends).
//!   Past it the full path runs again and the entry is revalidated as before
//!   (`KnownRefresh`: the frame goes out and an ARP request with it).
//!
//! The route depends on the interface configuration only, which is fixed for an
//! engine's life; whoever changes it must [`clear`](TxPath::clear) this.
//!
//! [`NeighborCache::generation`]: crate::neighbor::NeighborCache::generation

use core::net::Ipv4Addr;

use crate::time::Instant;
use crate::wire::ipv4::PlainHeaderTemplate;
use crate::wire::{EtherType, EthernetAddress, EthernetRepr, IpProtocol, WireError};

/// Ethernet header length (untagged), as `engine::output` writes it (the same value:
/// kept here so this module does not import the output path that imports it).
const ETH_LEN: usize = crate::wire::ethernet::field::HEADER_LEN;
/// IPv4 header length without options.
const IPV4_LEN: usize = crate::wire::ipv4::field::HEADER_LEN;

/// The remembered path of the last destination (none at first).
#[derive(Debug, Default)]
pub(crate) struct TxPath {
    entry: Option<PathEntry>,
}

/// One destination's path: what it is for, until when, and its headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PathEntry {
    /// The destination address.
    dst: Ipv4Addr,
    /// The source the sender asked for (`send_ipv4`'s `source`).
    asked_source: Option<Ipv4Addr>,
    /// The transport protocol.
    protocol: IpProtocol,
    /// The neighbour cache's generation when the answer was taken.
    neighbor_generation: u64,
    /// When the neighbour entry stops being fresh.
    fresh_until: Instant,
    /// The source address chosen (the route's, or the asked one when it is ours).
    source: Ipv4Addr,
    /// The Ethernet header.
    ethernet: [u8; ETH_LEN],
    /// The IPv4 header less its per-packet fields.
    ipv4: PlainHeaderTemplate,
}

/// What [`TxPath::remember`] needs about a send that went the full path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resolved {
    /// The destination address.
    pub(crate) dst: Ipv4Addr,
    /// The source the sender asked for.
    pub(crate) asked_source: Option<Ipv4Addr>,
    /// The transport protocol.
    pub(crate) protocol: IpProtocol,
    /// The source address chosen.
    pub(crate) source: Ipv4Addr,
    /// Our MAC.
    pub(crate) src_mac: EthernetAddress,
    /// The next hop's MAC.
    pub(crate) dst_mac: EthernetAddress,
    /// Hop limit.
    pub(crate) ttl: u8,
    /// The neighbour cache's generation after it answered.
    pub(crate) neighbor_generation: u64,
    /// When the neighbour's answer stops being fresh.
    pub(crate) fresh_until: Instant,
}

impl TxPath {
    /// The remembered path for a send to `dst` (asking for `asked_source`) of
    /// `protocol` at `now`, when it is still what the full path would give.
    #[inline]
    pub(crate) fn lookup(
        &self,
        dst: Ipv4Addr,
        asked_source: Option<Ipv4Addr>,
        protocol: IpProtocol,
        neighbor_generation: u64,
        now: Instant,
    ) -> Option<&PathEntry> {
        self.entry.as_ref().filter(|e| {
            e.dst == dst
                && e.neighbor_generation == neighbor_generation
                && now < e.fresh_until
                && e.asked_source == asked_source
                && e.protocol == protocol
        })
    }

    /// Remembers the path a send just resolved (replacing the one held).
    pub(crate) fn remember(&mut self, r: &Resolved) {
        let mut ethernet = [0; ETH_LEN];
        EthernetRepr::emit_untagged(&mut ethernet, r.dst_mac, r.src_mac, EtherType::Ipv4);
        self.entry = Some(PathEntry {
            dst: r.dst,
            asked_source: r.asked_source,
            protocol: r.protocol,
            neighbor_generation: r.neighbor_generation,
            fresh_until: r.fresh_until,
            source: r.source,
            ethernet,
            ipv4: PlainHeaderTemplate::new(r.source, r.dst, r.protocol, r.ttl),
        });
    }

    /// Forgets the path (the interface configuration changed).
    #[allow(dead_code)] // The configuration is fixed today; the hook is for whoever changes that.
    pub(crate) fn clear(&mut self) {
        self.entry = None;
    }
}

impl PathEntry {
    /// Our source address on this path.
    #[inline]
    pub(crate) fn source(&self) -> Ipv4Addr {
        self.source
    }

    /// Writes the Ethernet and IPv4 headers of a packet with `payload_len`
    /// transport bytes and `dscp_ecn` into the start of `buf`.
    #[inline]
    pub(crate) fn write_headers(
        &self,
        buf: &mut [u8],
        payload_len: usize,
        dscp_ecn: u8,
    ) -> Result<(), WireError> {
        let (eth, rest) = buf
            .split_first_chunk_mut::<ETH_LEN>()
            .ok_or(WireError::Truncated)?;
        *eth = self.ethernet;
        let ip = rest
            .first_chunk_mut::<IPV4_LEN>()
            .ok_or(WireError::Truncated)?;
        self.ipv4.emit(ip, payload_len, dscp_ecn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neighbor::{NeighborCache, NeighborConfig, Resolution};
    use crate::wire::ipv4::{PlainHeader, emit_plain_header};

    const US: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const OUR_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const PEER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// What `send_ipv4` does on the full path: resolve, then remember a fresh answer.
    fn resolve_and_remember(path: &mut TxPath, cache: &mut NeighborCache, now: Instant) {
        let resolution = cache.resolve(PEER, now);
        let Resolution::Known(mac) = resolution else {
            return;
        };
        let Some((fresh_mac, fresh_until)) = cache.fresh_answer(PEER) else {
            return;
        };
        assert_eq!(fresh_mac, mac);
        path.remember(&Resolved {
            dst: PEER,
            asked_source: Some(US),
            protocol: IpProtocol::Tcp,
            source: US,
            src_mac: OUR_MAC,
            dst_mac: mac,
            ttl: 64,
            neighbor_generation: cache.generation(),
            fresh_until,
        });
    }

    fn hit(path: &TxPath, cache: &NeighborCache, now: Instant) -> bool {
        path.lookup(PEER, Some(US), IpProtocol::Tcp, cache.generation(), now)
            .is_some()
    }

    #[test]
    fn the_path_is_used_only_for_the_same_send_while_the_neighbour_is_unchanged() {
        let config = NeighborConfig::default();
        let mut cache = NeighborCache::new(config);
        let mut path = TxPath::default();
        assert!(!hit(&path, &cache, t(0)), "nothing remembered");
        cache.learn(PEER, PEER_MAC, t(0));
        resolve_and_remember(&mut path, &mut cache, t(1));
        assert!(hit(&path, &cache, t(2)));
        // Another destination, source or protocol goes the full path.
        let g = cache.generation();
        assert!(
            path.lookup(US, Some(US), IpProtocol::Tcp, g, t(2))
                .is_none()
        );
        assert!(path.lookup(PEER, None, IpProtocol::Tcp, g, t(2)).is_none());
        assert!(
            path.lookup(PEER, Some(US), IpProtocol::Udp, g, t(2))
                .is_none()
        );

        // The neighbour changes (an ARP answer, even with the same MAC): bypassed.
        cache.learn(PEER, EthernetAddress([2, 0, 0, 0, 0, 9]), t(3));
        assert!(!hit(&path, &cache, t(4)));
        resolve_and_remember(&mut path, &mut cache, t(4));
        assert!(hit(&path, &cache, t(5)));
        // An expiry pass of the cache: bypassed.
        let _ = cache.poll(t(6));
        assert!(!hit(&path, &cache, t(7)));
        resolve_and_remember(&mut path, &mut cache, t(7));
        assert!(hit(&path, &cache, t(8)));

        // Stale: bypassed, and the full path revalidates the entry as before.
        let stale = t(3) + config.reachable_time + core::time::Duration::from_millis(1);
        assert!(hit(
            &path,
            &cache,
            t(3) + config.reachable_time - core::time::Duration::from_millis(1)
        ));
        assert!(!hit(&path, &cache, stale));
        assert!(matches!(
            cache.resolve(PEER, stale),
            Resolution::KnownRefresh(_)
        ));
        resolve_and_remember(&mut path, &mut cache, stale);
        assert!(
            !hit(&path, &cache, stale),
            "a stale answer is not remembered"
        );

        // A route change clears it.
        cache.learn(PEER, PEER_MAC, stale);
        resolve_and_remember(&mut path, &mut cache, stale);
        assert!(hit(&path, &cache, stale));
        path.clear();
        assert!(!hit(&path, &cache, stale));
    }

    #[test]
    fn the_headers_are_those_of_the_full_path() {
        let mut path = TxPath::default();
        path.remember(&Resolved {
            dst: PEER,
            asked_source: None,
            protocol: IpProtocol::Udp,
            source: US,
            src_mac: OUR_MAC,
            dst_mac: PEER_MAC,
            ttl: 17,
            neighbor_generation: 0,
            fresh_until: Instant::MAX,
        });
        let entry = path
            .lookup(PEER, None, IpProtocol::Udp, 0, t(0))
            .expect("remembered");
        for (payload_len, dscp_ecn) in [(0, 0), (8, 2), (1472, 1), (9000, 3)] {
            let mut expected = [0xa5u8; ETH_LEN + IPV4_LEN + 2];
            let (eth, rest) = expected.split_first_chunk_mut::<ETH_LEN>().expect("room");
            EthernetRepr::emit_untagged(eth, PEER_MAC, OUR_MAC, EtherType::Ipv4);
            let ip = PlainHeader {
                src_addr: US,
                dst_addr: PEER,
                protocol: IpProtocol::Udp,
                payload_len,
                ttl: 17,
                dscp_ecn,
            };
            emit_plain_header(rest.first_chunk_mut().expect("room"), &ip).expect("fits");
            let mut got = [0xa5u8; ETH_LEN + IPV4_LEN + 2];
            entry
                .write_headers(&mut got, payload_len, dscp_ecn)
                .expect("fits");
            assert_eq!(got, expected);
        }
        let mut short = [0u8; ETH_LEN + IPV4_LEN - 1];
        assert_eq!(
            entry.write_headers(&mut short, 0, 0),
            Err(WireError::Truncated)
        );
    }
}
