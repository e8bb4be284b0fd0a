//! Ephemeral ports: the configured range, one core's disjoint slice of it, and the
//! RFC 6056 selection that picks a port inside the slice.
//!
//! Each engine owns one [`EphemeralPorts`]. Core `i` of `n` owns slice `i` of the
//! range, so ports chosen on different cores never collide and a packet for an
//! ephemeral port can be routed to its owner with [`EphemeralRange::core_of_port`].

use core::net::{Ipv4Addr, SocketAddrV4};

use super::HashKey;
use crate::Errno;

/// An inclusive range of ephemeral ports (Linux `net.ipv4.ip_local_port_range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EphemeralRange {
    low: u16,
    high: u16,
}

impl EphemeralRange {
    /// Linux's default `ip_local_port_range`: 32768–60999.
    pub const LINUX_DEFAULT: EphemeralRange = EphemeralRange {
        low: 32768,
        high: 60999,
    };

    /// The range `low..=high`; EINVAL if it is empty or includes port 0 (Linux
    /// `ipv4_local_port_range` rejects `high < low`).
    pub const fn new(low: u16, high: u16) -> Result<Self, Errno> {
        if low == 0 || high < low {
            return Err(Errno::EINVAL);
        }
        Ok(EphemeralRange { low, high })
    }

    /// The first port.
    pub const fn low(self) -> u16 {
        self.low
    }

    /// The last port (inclusive).
    pub const fn high(self) -> u16 {
        self.high
    }

    /// The number of ports in the range (at least 1).
    pub const fn len(self) -> u32 {
        self.high as u32 - self.low as u32 + 1
    }

    /// Always false: a range holds at least one port.
    pub const fn is_empty(self) -> bool {
        false
    }

    /// Whether `port` is inside the range.
    pub const fn contains(self, port: u16) -> bool {
        self.low <= port && port <= self.high
    }

    /// Core `core`'s slice of `cores` disjoint slices; the first `len % cores`
    /// slices get one port more. EINVAL if `core >= cores` or a slice would be empty.
    pub const fn slice(self, core: usize, cores: usize) -> Result<EphemeralRange, Errno> {
        let len = self.len() as usize;
        if cores == 0 || core >= cores || len < cores {
            return Err(Errno::EINVAL);
        }
        let base = len / cores;
        let extra = len % cores;
        let start = core * base + if core < extra { core } else { extra };
        let size = base + if core < extra { 1 } else { 0 };
        // start + size <= len <= 65535, so the casts cannot truncate.
        Ok(EphemeralRange {
            low: self.low + start as u16,
            high: self.low + (start + size - 1) as u16,
        })
    }

    /// Which of `cores` slices `port` falls in, if it is inside the range at all.
    pub const fn core_of_port(self, port: u16, cores: usize) -> Option<usize> {
        let len = self.len() as usize;
        if !self.contains(port) || cores == 0 || len < cores {
            return None;
        }
        let offset = (port - self.low) as usize;
        let base = len / cores;
        let extra = len % cores;
        let big = extra * (base + 1);
        if offset < big {
            Some(offset / (base + 1))
        } else {
            Some(extra + (offset - big) / base)
        }
    }
}

/// Why a port is wanted: Linux gives `connect()` the ports with the parity of the
/// range's low port first (even, by default) and `bind(0)` the others first, so
/// binds leave the connect half alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortPurpose {
    /// `bind` to port 0, or `listen` on an unbound socket (`inet_csk_find_open_port`).
    Bind,
    /// The implicit bind of an active open (`__inet_hash_connect`).
    Connect,
}

/// Size of the RFC 6056 Algorithm 4 perturbation table (a power of two).
const PERTURB_SIZE: usize = 256;

/// One core's ephemeral ports: its slice and the RFC 6056 state.
#[derive(Debug, Clone)]
pub struct EphemeralPorts {
    range: EphemeralRange,
    slice: EphemeralRange,
    core: usize,
    cores: usize,
    key: HashKey,
    perturb: [u16; PERTURB_SIZE],
    /// How many candidate ports all searches have probed (a cost counter).
    pub probes: u64,
    /// How many searches found no suitable port.
    pub exhausted: u64,
}

impl EphemeralPorts {
    /// Core `core` of `cores`, drawing from `range`, with the caller's secret `key`.
    pub fn new(
        range: EphemeralRange,
        core: usize,
        cores: usize,
        key: HashKey,
    ) -> Result<Self, Errno> {
        let slice = range.slice(core, cores)?;
        Ok(EphemeralPorts {
            range,
            slice,
            core,
            cores,
            key,
            perturb: [0; PERTURB_SIZE],
            probes: 0,
            exhausted: 0,
        })
    }

    /// The whole configured range (all cores).
    pub const fn range(&self) -> EphemeralRange {
        self.range
    }

    /// This core's slice.
    pub const fn slice(&self) -> EphemeralRange {
        self.slice
    }

    /// This core's index.
    pub const fn core(&self) -> usize {
        self.core
    }

    /// The number of cores sharing the range.
    pub const fn cores(&self) -> usize {
        self.cores
    }

    /// Pick a port of this core's slice for which `suitable` says yes.
    ///
    /// RFC 6056 §3.3.4 (Algorithm 4, double-hash): the search starts at
    /// `F(local, remote, secret) + table[G(local, remote, secret)]` and the table
    /// entry moves on after each use, so connections to one peer walk the slice
    /// instead of rescanning it, and an observer cannot predict the next port for
    /// another peer. Every port of the slice is tried at most once (bounded loop);
    /// ports of the preferred parity for `purpose` come first, as in Linux.
    pub fn search(
        &mut self,
        purpose: PortPurpose,
        local: Ipv4Addr,
        remote: Option<SocketAddrV4>,
        mut suitable: impl FnMut(u16) -> bool,
    ) -> Option<u16> {
        let remote = remote.unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        // RFC 6056 §3.3.4: F() should be a keyed cryptographic hash (a PRF).
        let hash = self.key.sip_hash_one((
            local.to_bits(),
            remote.ip().to_bits(),
            remote.port(),
            purpose as u8,
        ));
        let offset = hash as u32;
        let index = (hash >> 32) as usize % PERTURB_SIZE;
        let len = self.slice.len();
        let perturb = self.perturb.get(index).copied().unwrap_or(0);
        let start = (offset.wrapping_add(perturb as u32)) % len;
        // Parity is relative to the whole range's low port, as Linux's: connect()
        // takes offsets of low's parity first, bind(0) the other parity first.
        let preferred_odd_offset = matches!(purpose, PortPurpose::Bind);
        let range_low = u32::from(self.range.low);
        let mut tried: u32 = 0;
        for pass in 0..2 {
            let want_odd_offset = preferred_odd_offset ^ (pass == 1);
            for step in 0..len {
                let port = self.slice.low as u32 + (start + step) % len;
                if ((port - range_low) & 1 == 1) != want_odd_offset {
                    continue;
                }
                tried += 1;
                // `port` is inside the slice, so it fits in a u16.
                let port = port as u16;
                if suitable(port) {
                    self.probes += u64::from(tried);
                    if let Some(entry) = self.perturb.get_mut(index) {
                        // RFC 6056 §3.3.4: table[index]++ per probe.
                        *entry = entry.wrapping_add(tried as u16);
                    }
                    return Some(port);
                }
            }
        }
        self.probes += u64::from(tried);
        self.exhausted += 1;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    #[test]
    fn range_rejects_empty_and_port_zero_like_ip_local_port_range() {
        assert_eq!(EphemeralRange::new(0, 10), Err(Errno::EINVAL));
        assert_eq!(EphemeralRange::new(11, 10), Err(Errno::EINVAL));
        assert_eq!(EphemeralRange::new(10, 10).map(EphemeralRange::len), Ok(1));
        assert_eq!(EphemeralRange::LINUX_DEFAULT.len(), 28232);
    }

    #[test]
    fn slices_are_disjoint_cover_the_range_and_map_back() {
        for cores in 1..=7usize {
            let range = EphemeralRange::new(1000, 1099).unwrap();
            let mut seen = HashSet::new();
            for core in 0..cores {
                let slice = range.slice(core, cores).unwrap();
                let size = slice.len() as usize;
                assert!(size == 100 / cores || size == 100 / cores + 1);
                for port in slice.low()..=slice.high() {
                    assert!(seen.insert(port), "port {port} in two slices");
                    assert_eq!(range.core_of_port(port, cores), Some(core));
                }
            }
            assert_eq!(seen.len(), 100);
            assert_eq!(range.core_of_port(999, cores), None);
            assert_eq!(range.core_of_port(1100, cores), None);
        }
        let range = EphemeralRange::new(1000, 1002).unwrap();
        assert_eq!(range.slice(0, 4), Err(Errno::EINVAL));
        assert_eq!(range.slice(3, 3), Err(Errno::EINVAL));
        assert_eq!(range.slice(0, 0), Err(Errno::EINVAL));
    }

    #[test]
    fn search_visits_every_port_once_then_fails_and_counts() {
        let range = EphemeralRange::new(40000, 40009).unwrap();
        let mut ports = EphemeralPorts::new(range, 0, 1, HashKey::new(5, 6)).unwrap();
        let mut visited = Vec::new();
        let got = ports.search(PortPurpose::Connect, LOCAL, None, |p| {
            visited.push(p);
            false
        });
        assert_eq!(got, None);
        assert_eq!(ports.exhausted, 1);
        assert_eq!(ports.probes, 10);
        let set: HashSet<u16> = visited.iter().copied().collect();
        assert_eq!(set.len(), 10);
        assert!(set.iter().all(|p| range.contains(*p)));
        // Linux __inet_hash_connect: even ports first for connect.
        assert!(visited[..5].iter().all(|p| p % 2 == 0), "{visited:?}");
        let mut visited = Vec::new();
        ports.search(PortPurpose::Bind, LOCAL, None, |p| {
            visited.push(p);
            false
        });
        // Linux inet_csk_find_open_port: odd ports first for bind(0).
        assert!(visited[..5].iter().all(|p| p % 2 == 1), "{visited:?}");
    }

    #[test]
    fn parity_is_relative_to_range_low_like_linux() {
        // Range 40001..=40004: connect prefers 40001/40003 (low's parity), bind 40002/40004.
        let range = EphemeralRange::new(40001, 40004).unwrap();
        let mut ports = EphemeralPorts::new(range, 0, 1, HashKey::new(1, 1)).unwrap();
        let c = ports
            .search(PortPurpose::Connect, LOCAL, None, |_| true)
            .unwrap();
        let b = ports
            .search(PortPurpose::Bind, LOCAL, None, |_| true)
            .unwrap();
        assert_eq!((c % 2, b % 2), (1, 0), "connect {c}, bind {b}");
    }

    #[test]
    fn search_start_depends_on_key_and_moves_on_rfc6056_algorithm4() {
        let remote = Some(SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 9), 80));
        let firsts: HashSet<u16> = (0..16u64)
            .filter_map(|k| {
                let mut ports =
                    EphemeralPorts::new(EphemeralRange::LINUX_DEFAULT, 0, 1, HashKey::new(k, 0))
                        .unwrap();
                ports.search(PortPurpose::Connect, LOCAL, remote, |_| true)
            })
            .collect();
        assert!(
            firsts.len() > 8,
            "start offset must depend on the secret: {firsts:?}"
        );
        // With the same key, the second search for the same peer does not return
        // the same port first (table[index] moved on).
        let mut ports =
            EphemeralPorts::new(EphemeralRange::LINUX_DEFAULT, 0, 1, HashKey::new(9, 9)).unwrap();
        let a = ports.search(PortPurpose::Connect, LOCAL, remote, |_| true);
        let b = ports.search(PortPurpose::Connect, LOCAL, remote, |_| true);
        assert!(a.is_some() && b.is_some());
        assert_ne!(a, b);
    }

    #[test]
    fn search_stays_in_the_cores_slice() {
        let range = EphemeralRange::LINUX_DEFAULT;
        for core in 0..4 {
            let mut ports =
                EphemeralPorts::new(range, core, 4, HashKey::new(1, core as u64)).unwrap();
            for i in 0..100u16 {
                let remote = Some(SocketAddrV4::new(Ipv4Addr::new(198, 19, 1, 1), i));
                let port = ports
                    .search(PortPurpose::Connect, LOCAL, remote, |_| true)
                    .unwrap();
                assert!(ports.slice().contains(port));
                assert_eq!(range.core_of_port(port, 4), Some(core));
            }
        }
    }
}
