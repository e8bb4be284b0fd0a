//! IPv4 reassembly (RFC 791 §3.2, RFC 815), sans-IO and bounded.
//!
//! RFC 1122 §3.3.2: a host MUST reassemble. [`Reassembly::insert`] takes one
//! fragment (its IPv4 header bytes and payload) and says whether it is held,
//! completes its datagram (the whole IPv4 datagram is returned, header from the
//! first fragment), or was dropped, and why:
//!
//! - memory is charged by what a datagram's buffer really takes, against a
//!   limit per source address and one in total (Linux's `ipfrag_high_thresh`),
//!   and the number of datagrams in progress is bounded: past a limit the new
//!   fragment is refused ([`FragmentDrop::NoMemory`]), nothing held is evicted;
//! - a datagram not complete within the timeout (RFC 791's timer, Linux's 30 s)
//!   is discarded by [`Reassembly::poll`];
//! - fragments that overlap drop the whole datagram (RFC 5722's rule for IPv6,
//!   what Linux does for IPv4 since 2018): overlaps exist only to confuse
//!   filters and stacks that resolve them differently;
//! - a first fragment too short for its transport header is refused (RFC 1858
//!   §3.2, the "tiny fragment" attack on filters).
//!
//! Time is passed in; the table is keyed by what the peer chooses, so it hashes
//! with the engine's secret key (STYLE.md habit 6).

use core::net::Ipv4Addr;
use core::time::Duration;
use std::collections::HashMap;

use crate::table::{HashKey, KeyedState};
use crate::time::Instant;
use crate::wire::Ipv4Packet;

/// Limits of a [`Reassembly`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// How long a datagram may wait for its missing fragments (RFC 791's
    /// reassembly timer; Linux `ipfrag_time`, 30 s).
    pub timeout: Duration,
    /// Bytes of buffers held for one source address.
    pub per_source_bytes: usize,
    /// Bytes of buffers held in total (Linux `ipfrag_high_thresh`, 4 MiB).
    pub total_bytes: usize,
    /// Datagrams in progress at once.
    pub max_datagrams: usize,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            timeout: Duration::from_secs(30),
            per_source_bytes: 256 * 1024,
            total_bytes: 4 * 1024 * 1024,
            max_datagrams: 1024,
        }
    }
}

/// Which datagram a fragment belongs to (RFC 791: source, destination,
/// protocol and identification).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Identification.
    pub ident: u16,
    /// Protocol.
    pub protocol: u8,
}

/// One received fragment.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    /// Its datagram.
    pub key: FragmentKey,
    /// Where its payload starts in the datagram's payload, in bytes.
    pub offset: usize,
    /// More fragments follow (MF).
    pub more: bool,
    /// Its IPv4 header bytes, options included.
    pub header: &'a [u8],
    /// Its payload.
    pub payload: &'a [u8],
}

/// Why fragments were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentDrop {
    /// It overlaps another fragment of its datagram: the datagram is dropped.
    Overlap,
    /// A first fragment too short for its transport header (RFC 1858 §3.2).
    Tiny,
    /// Lengths that cannot be: past 65,535 bytes, a non-last fragment not a
    /// multiple of 8 bytes, or two different ends.
    BadLength,
    /// Reassembly memory (per source or in total) or datagram slots are full.
    NoMemory,
}

/// What [`Reassembly::insert`] did with a fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum Reassembled {
    /// Held until its datagram completes.
    Held,
    /// Its datagram is complete: the whole IPv4 datagram (header of the first
    /// fragment, MF and offset cleared, total length and checksum set).
    Complete(Vec<u8>),
    /// Dropped: `fragments` frames in all (this one and, when the whole
    /// datagram goes, those it held).
    Dropped {
        /// Why.
        reason: FragmentDrop,
        /// Frames dropped, this one included.
        fragments: u32,
    },
}

/// A datagram being reassembled.
#[derive(Debug)]
struct Datagram {
    started: Instant,
    /// The first fragment's header, once it arrived.
    header: Vec<u8>,
    /// The payload so far; holes are zero until filled.
    data: Vec<u8>,
    /// Received byte ranges, sorted, disjoint, adjacent ones merged (RFC 815's
    /// hole list, kept as its complement).
    ranges: Vec<(usize, usize)>,
    /// The payload's length, once the last fragment arrived.
    total: Option<usize>,
    /// Fragments held.
    fragments: u32,
    /// Bytes charged against the limits.
    charged: usize,
}

/// Largest payload of an IPv4 datagram with a minimal header.
const MAX_PAYLOAD: usize = 65_535 - 20;
/// Fixed cost charged per held fragment besides its bytes (its bookkeeping),
/// so many tiny fragments cannot hold memory for free.
const FRAGMENT_COST: usize = 64;

/// The reassembly table of one engine.
#[derive(Debug)]
pub struct Reassembly {
    config: ReassemblyConfig,
    datagrams: HashMap<FragmentKey, Datagram, KeyedState>,
    per_source: HashMap<Ipv4Addr, usize, KeyedState>,
    charged: usize,
    /// No datagram expires before this (it may be early: a datagram that
    /// completed leaves it; `poll` then finds nothing and moves it on).
    deadline: Option<Instant>,
}

impl Reassembly {
    /// An empty table with `config`, hashing with `key`.
    pub fn new(config: ReassemblyConfig, key: HashKey) -> Self {
        Reassembly {
            config,
            datagrams: HashMap::with_hasher(key.state()),
            per_source: HashMap::with_hasher(key.state()),
            charged: 0,
            deadline: None,
        }
    }

    /// Datagrams in progress.
    pub fn len(&self) -> usize {
        self.datagrams.len()
    }

    /// No datagram in progress.
    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// Bytes charged now (all sources).
    pub fn charged(&self) -> usize {
        self.charged
    }

    /// Takes one fragment.
    pub fn insert(&mut self, now: Instant, frag: &Fragment<'_>) -> Reassembled {
        let (start, end) = (frag.offset, frag.offset + frag.payload.len());
        // RFC 791: every fragment but the last carries a multiple of 8 bytes.
        if end > MAX_PAYLOAD
            || (frag.more && (frag.payload.is_empty() || frag.payload.len() % 8 != 0))
        {
            return self.drop_with(frag.key, FragmentDrop::BadLength);
        }
        // RFC 5722 (applied to IPv4): an overlap drops the whole datagram.
        let overlaps = self
            .datagrams
            .get(&frag.key)
            .is_some_and(|d| d.ranges.iter().any(|&(s, e)| start < e && s < end));
        if overlaps {
            return self.drop_with(frag.key, FragmentDrop::Overlap);
        }
        // RFC 1858 §3.2: the first fragment must hold the whole transport header
        // (and a TCP fragment at offset 8 could rewrite the flags).
        let tiny =
            (start == 0 && frag.more && frag.payload.len() < min_transport(frag.key.protocol))
                || (start == 8 && frag.key.protocol == 6);
        if tiny {
            return self.drop_with(frag.key, FragmentDrop::Tiny);
        }
        if !self.datagrams.contains_key(&frag.key) {
            if self.datagrams.len() >= self.config.max_datagrams {
                return dropped(FragmentDrop::NoMemory, 1);
            }
            let expires = now + self.config.timeout;
            self.deadline = Some(self.deadline.map_or(expires, |d| d.min(expires)));
            self.datagrams.insert(
                frag.key,
                Datagram {
                    started: now,
                    header: Vec::new(),
                    data: Vec::new(),
                    ranges: Vec::new(),
                    total: None,
                    fragments: 0,
                    charged: 0,
                },
            );
        }
        let Some(d) = self.datagrams.get(&frag.key) else {
            return dropped(FragmentDrop::NoMemory, 1);
        };
        let bad_end = match (d.total, frag.more) {
            (Some(total), false) => total != end,
            (Some(total), true) => end > total,
            (None, false) => d.ranges.last().is_some_and(|&(_, e)| e > end),
            (None, true) => false,
        };
        if bad_end {
            return self.drop_with(frag.key, FragmentDrop::BadLength);
        }
        // Charge what the buffer grows by, and the fragment's bookkeeping.
        let header_cost = if start == 0 { frag.header.len() } else { 0 };
        let cost = end.saturating_sub(d.data.len()) + header_cost + FRAGMENT_COST;
        let source = self.per_source.get(&frag.key.src).copied().unwrap_or(0);
        if source + cost > self.config.per_source_bytes
            || self.charged + cost > self.config.total_bytes
        {
            if d.fragments == 0 {
                self.datagrams.remove(&frag.key);
            }
            return dropped(FragmentDrop::NoMemory, 1);
        }
        self.charged += cost;
        *self.per_source.entry(frag.key.src).or_insert(0) += cost;
        let Some(d) = self.datagrams.get_mut(&frag.key) else {
            return dropped(FragmentDrop::NoMemory, 1);
        };
        d.charged += cost;
        d.fragments += 1;
        if d.data.len() < end {
            d.data.resize(end, 0);
        }
        d.data[start..end].copy_from_slice(frag.payload);
        if start == 0 {
            d.header = frag.header.to_vec();
        }
        if !frag.more {
            d.total = Some(end);
        }
        insert_range(&mut d.ranges, start, end);
        let complete = d.total.is_some_and(|t| d.ranges == [(0, t)]) && !d.header.is_empty();
        if !complete {
            return Reassembled::Held;
        }
        let Some(d) = self.remove(&frag.key) else {
            return Reassembled::Held;
        };
        Reassembled::Complete(build(&d))
    }

    /// When [`Reassembly::poll`] next may have work (the oldest datagram's
    /// deadline, or earlier).
    pub fn poll_at(&self) -> Option<Instant> {
        self.deadline
    }

    /// Discards the datagrams whose time ran out; returns how many fragments
    /// they held.
    pub fn poll(&mut self, now: Instant) -> u32 {
        if self.deadline.is_none_or(|d| d > now) {
            return 0;
        }
        let timeout = self.config.timeout;
        let expired: Vec<FragmentKey> = self
            .datagrams
            .iter()
            .filter(|(_, d)| now.saturating_duration_since(d.started) >= timeout)
            .map(|(k, _)| *k)
            .collect();
        let fragments = expired
            .iter()
            .filter_map(|k| self.remove(k))
            .map(|d| d.fragments)
            .sum();
        self.deadline = self.datagrams.values().map(|d| d.started + timeout).min();
        fragments
    }

    /// Drops `key`'s datagram (if any) with this fragment.
    fn drop_with(&mut self, key: FragmentKey, reason: FragmentDrop) -> Reassembled {
        let held = self.remove(&key).map_or(0, |d| d.fragments);
        dropped(reason, held + 1)
    }

    /// Removes a datagram and gives its memory back.
    fn remove(&mut self, key: &FragmentKey) -> Option<Datagram> {
        let d = self.datagrams.remove(key)?;
        self.charged -= d.charged;
        if let Some(source) = self.per_source.get_mut(&key.src) {
            *source -= d.charged;
            if *source == 0 {
                self.per_source.remove(&key.src);
            }
        }
        Some(d)
    }
}

fn dropped(reason: FragmentDrop, fragments: u32) -> Reassembled {
    Reassembled::Dropped { reason, fragments }
}

/// The least a first fragment must carry: the transport's fixed header.
fn min_transport(protocol: u8) -> usize {
    match protocol {
        6 => 20,
        17 | 1 => 8,
        _ => 1,
    }
}

/// Adds `start..end` (disjoint from every range) and merges neighbours.
fn insert_range(ranges: &mut Vec<(usize, usize)>, start: usize, end: usize) {
    let at = ranges.partition_point(|&(s, _)| s < start);
    ranges.insert(at, (start, end));
    if at + 1 < ranges.len() && ranges[at].1 == ranges[at + 1].0 {
        ranges[at].1 = ranges[at + 1].1;
        ranges.remove(at + 1);
    }
    if at > 0 && ranges[at - 1].1 == ranges[at].0 {
        ranges[at - 1].1 = ranges[at].1;
        ranges.remove(at);
    }
}

/// The whole datagram: the first fragment's header, fixed, then the payload.
fn build(d: &Datagram) -> Vec<u8> {
    let mut out = Vec::with_capacity(d.header.len() + d.data.len());
    out.extend_from_slice(&d.header);
    out.extend_from_slice(&d.data);
    let total = u16::try_from(out.len()).unwrap_or(u16::MAX);
    let mut ip = Ipv4Packet::new_unchecked(&mut out[..]);
    let dont_frag = ip.dont_frag();
    ip.set_total_len(total);
    ip.set_flags_frag_offset(dont_frag, false, 0);
    ip.fill_checksum();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

    fn key(ident: u16) -> FragmentKey {
        FragmentKey {
            src: SRC,
            dst: DST,
            ident,
            protocol: 17,
        }
    }

    fn header(ident: u16) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x20, 0, 64, 17, 0, 0];
        h[4..6].copy_from_slice(&ident.to_be_bytes());
        h.extend(SRC.octets());
        h.extend(DST.octets());
        h
    }

    fn table() -> Reassembly {
        Reassembly::new(ReassemblyConfig::default(), HashKey::new(1, 2))
    }

    fn put(
        r: &mut Reassembly,
        now: u64,
        ident: u16,
        offset: usize,
        more: bool,
        payload: &[u8],
    ) -> Reassembled {
        let h = header(ident);
        r.insert(
            Instant::from_micros(now),
            &Fragment {
                key: key(ident),
                offset,
                more,
                header: &h,
                payload,
            },
        )
    }

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    fn assert_datagram(got: Reassembled, data: &[u8]) {
        let Reassembled::Complete(bytes) = got else {
            panic!("expected a complete datagram, got {got:?}");
        };
        let ip = Ipv4Packet::new_checked(&bytes[..]).expect("a valid header");
        assert!(ip.verify_checksum());
        assert_eq!(usize::from(ip.total_len()), 20 + data.len());
        assert!(!ip.more_frags());
        assert_eq!(ip.frag_offset(), 0);
        assert_eq!(&bytes[20..], data);
    }

    #[test]
    fn rfc791_in_order_and_reversed_fragments_make_the_datagram() {
        let data = payload(40);
        let mut r = table();
        assert_eq!(put(&mut r, 0, 1, 0, true, &data[..24]), Reassembled::Held);
        assert_datagram(put(&mut r, 1, 1, 24, false, &data[24..]), &data);
        assert_eq!(put(&mut r, 2, 2, 24, false, &data[24..]), Reassembled::Held);
        assert_datagram(put(&mut r, 3, 2, 0, true, &data[..24]), &data);
        assert!(r.is_empty());
        assert_eq!(r.charged(), 0);
    }

    #[test]
    fn rfc5722_overlap_drops_the_whole_datagram() {
        let data = payload(40);
        let mut r = table();
        assert_eq!(put(&mut r, 0, 1, 0, true, &data[..24]), Reassembled::Held);
        assert_eq!(
            put(&mut r, 1, 1, 16, false, &data[16..]),
            Reassembled::Dropped {
                reason: FragmentDrop::Overlap,
                fragments: 2
            }
        );
        assert!(r.is_empty());
        assert_eq!(r.charged(), 0);
        // The rest of that datagram starts a new one, which never completes.
        assert_eq!(put(&mut r, 2, 1, 24, false, &data[24..]), Reassembled::Held);
    }

    #[test]
    fn rfc1858_tiny_first_fragment_is_refused() {
        let mut r = table();
        let tcp_key = FragmentKey {
            protocol: 6,
            ..key(9)
        };
        let h = header(9);
        let frag = |offset, payload: &'static [u8]| Fragment {
            key: tcp_key,
            offset,
            more: true,
            header: &h,
            payload,
        };
        assert_eq!(
            r.insert(Instant::ZERO, &frag(0, &[0; 8])),
            Reassembled::Dropped {
                reason: FragmentDrop::Tiny,
                fragments: 1
            }
        );
        assert_eq!(
            r.insert(Instant::ZERO, &frag(8, &[0; 16])),
            Reassembled::Dropped {
                reason: FragmentDrop::Tiny,
                fragments: 1
            }
        );
        assert_eq!(
            r.insert(Instant::ZERO, &frag(0, &[0; 24])),
            Reassembled::Held
        );
    }

    #[test]
    fn bad_lengths_are_refused() {
        let mut r = table();
        let bad = |fragments| Reassembled::Dropped {
            reason: FragmentDrop::BadLength,
            fragments,
        };
        assert_eq!(put(&mut r, 0, 1, 0, true, &payload(12)), bad(1));
        assert_eq!(put(&mut r, 0, 1, 65_528, false, &payload(16)), bad(1));
        assert_eq!(put(&mut r, 0, 2, 32, false, &payload(8)), Reassembled::Held);
        assert_eq!(put(&mut r, 0, 2, 48, false, &payload(8)), bad(2));
        assert_eq!(put(&mut r, 0, 3, 32, false, &payload(8)), Reassembled::Held);
        assert_eq!(put(&mut r, 0, 3, 40, true, &payload(8)), bad(2));
        assert!(r.is_empty());
    }

    #[test]
    fn incomplete_datagrams_time_out() {
        let mut r = table();
        assert_eq!(put(&mut r, 0, 1, 0, true, &payload(24)), Reassembled::Held);
        assert_eq!(put(&mut r, 10, 1, 32, true, &payload(8)), Reassembled::Held);
        let deadline = r.poll_at().expect("a deadline");
        assert_eq!(deadline, Instant::from_micros(30_000_000));
        assert_eq!(r.poll(Instant::from_micros(29_999_999)), 0);
        assert_eq!(r.poll(deadline), 2);
        assert!(r.is_empty());
        assert_eq!(r.charged(), 0);
        assert_eq!(r.poll_at(), None);
    }

    #[test]
    fn memory_is_bounded_per_source_and_in_total() {
        let config = ReassemblyConfig {
            per_source_bytes: 1000,
            total_bytes: 1600,
            max_datagrams: 4,
            ..ReassemblyConfig::default()
        };
        let mut r = Reassembly::new(config, HashKey::new(3, 4));
        let no_memory = Reassembled::Dropped {
            reason: FragmentDrop::NoMemory,
            fragments: 1,
        };
        // A last fragment far out grows the buffer: charged by its extent.
        assert_eq!(
            put(&mut r, 0, 1, 800, false, &payload(8)),
            Reassembled::Held
        );
        assert_eq!(put(&mut r, 0, 2, 400, false, &payload(8)), no_memory);
        assert!(r.charged() <= 1000);
        let other = FragmentKey {
            src: Ipv4Addr::new(198, 18, 0, 3),
            ..key(1)
        };
        let h = header(1);
        let big = payload(600);
        let frag = Fragment {
            key: other,
            offset: 0,
            more: true,
            header: &h,
            payload: &big,
        };
        assert_eq!(r.insert(Instant::ZERO, &frag), Reassembled::Held);
        // 808 + 64 and 600 + 20 + 64 are held (1556 bytes); a third source's
        // 684 more would pass the total of 1600.
        let third = FragmentKey {
            src: Ipv4Addr::new(198, 18, 0, 4),
            ..key(1)
        };
        assert_eq!(
            r.insert(Instant::ZERO, &Fragment { key: third, ..frag }),
            no_memory
        );
        assert_eq!(r.charged(), 1556);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn datagram_slots_are_bounded() {
        let config = ReassemblyConfig {
            max_datagrams: 2,
            ..ReassemblyConfig::default()
        };
        let mut r = Reassembly::new(config, HashKey::new(5, 6));
        assert_eq!(put(&mut r, 0, 1, 0, true, &payload(8)), Reassembled::Held);
        assert_eq!(put(&mut r, 0, 2, 0, true, &payload(8)), Reassembled::Held);
        assert_eq!(
            put(&mut r, 0, 3, 0, true, &payload(8)),
            Reassembled::Dropped {
                reason: FragmentDrop::NoMemory,
                fragments: 1
            }
        );
    }

    proptest! {
        /// Any order of any 8-byte-aligned cut gives back the datagram; the
        /// table is empty afterwards and nothing stays charged.
        #[test]
        fn any_order_of_any_cut_reassembles(
            len in 1usize..3000,
            cuts in proptest::collection::vec(1usize..400, 1..12),
            order in proptest::collection::vec(any::<u32>(), 12),
        ) {
            let data = payload(len);
            let mut pieces = Vec::new();
            let mut at = 0;
            for c in cuts {
                let end = (at + c * 8).min(len);
                if end >= len { break; }
                pieces.push((at, end));
                at = end;
            }
            pieces.push((at, len));
            let mut sorted: Vec<(u32, (usize, usize))> =
                pieces.iter().enumerate().map(|(i, p)| (order[i % order.len()].wrapping_add(i as u32), *p)).collect();
            sorted.sort();
            let mut r = table();
            let n = sorted.len();
            for (i, (_, (s, e))) in sorted.into_iter().enumerate() {
                let got = put(&mut r, i as u64, 7, s, e != len, &data[s..e]);
                if i + 1 < n {
                    prop_assert_eq!(got, Reassembled::Held);
                } else {
                    assert_datagram(got, &data);
                }
            }
            prop_assert!(r.is_empty());
            prop_assert_eq!(r.charged(), 0);
        }

        /// Arbitrary fragments never panic, and memory stays within its limits.
        #[test]
        fn arbitrary_fragments_stay_bounded(
            frags in proptest::collection::vec((0u16..4, 0usize..9000, any::<bool>(), 0usize..1500), 1..200),
        ) {
            let config = ReassemblyConfig {
                per_source_bytes: 20_000,
                total_bytes: 30_000,
                max_datagrams: 8,
                ..ReassemblyConfig::default()
            };
            let mut r = Reassembly::new(config, HashKey::new(7, 8));
            let data = payload(1500);
            for (i, (ident, offset, more, len)) in frags.into_iter().enumerate() {
                let _ = put(&mut r, i as u64 * 1000, ident, offset & !7, more, &data[..len]);
                prop_assert!(r.charged() <= 20_000);
                prop_assert!(r.len() <= 8);
            }
            r.poll(Instant::from_micros(u64::MAX / 2));
            prop_assert!(r.is_empty());
            prop_assert_eq!(r.charged(), 0);
        }
    }
}
