//! Names, MACs and addresses of a lab's hosts, derived from the lab name alone.
//!
//! Everything here is a pure function of (lab name, topology), so a second process can
//! re-open a lab (`Lab::attach`) and find the same names. Addresses come from 198.18.0.0/15
//! (RFC 2544 benchmarking range) only.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::{LabError, Topology};

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
const MAX_IFNAME_LEN: usize = 15;

/// One host of a lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostId {
    /// Host A (the client side).
    A,
    /// Host B (the server side).
    B,
    /// The router between A and B (routed labs only).
    Router,
}

impl HostId {
    /// The letter that ends the host's namespace name: `a`, `b` or `r`.
    pub fn suffix(self) -> char {
        match self {
            Self::A => 'a',
            Self::B => 'b',
            Self::Router => 'r',
        }
    }
}

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::A => "A",
            Self::B => "B",
            Self::Router => "R",
        })
    }
}

impl FromStr for HostId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "A" | "a" => Ok(Self::A),
            "B" | "b" => Ok(Self::B),
            "R" | "r" | "router" => Ok(Self::Router),
            other => Err(format!("unknown host {other:?} (expected A, B or R)")),
        }
    }
}

/// One end of a lab link, as seen from the host that owns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// The host's network namespace (`surge-<lab>-a|b|r`).
    pub netns: String,
    /// The host's veth on this link.
    pub ifname: String,
    /// The host's IPv4 address on this link.
    pub addr: Ipv4Addr,
    /// Prefix length of `addr`.
    pub prefix_len: u8,
    /// The veth's MAC address (locally administered, unique per lab).
    pub mac: [u8; 6],
    /// Default gateway, if the host routes through the router.
    pub gateway: Option<Ipv4Addr>,
    /// The address on the other end of this host's link.
    pub peer_addr: Ipv4Addr,
    /// The MAC on the other end of this host's link.
    pub peer_mac: [u8; 6],
}

/// All hosts of one lab.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub(crate) a: Host,
    pub(crate) b: Host,
    /// The router's interface towards A.
    pub(crate) router_a: Option<Host>,
    /// The router's interface towards B.
    pub(crate) router_b: Option<Host>,
}

impl Layout {
    /// The veth pairs to create: (end that is created, its peer).
    pub(crate) fn veth_pairs(&self) -> Vec<(&Host, &Host)> {
        match (&self.router_a, &self.router_b) {
            (Some(ra), Some(rb)) => vec![(&self.a, ra), (rb, &self.b)],
            _ => vec![(&self.a, &self.b)],
        }
    }

    /// Every veth end of the lab.
    pub(crate) fn ends(&self) -> Vec<&Host> {
        let mut ends = vec![&self.a, &self.b];
        ends.extend(self.router_a.iter());
        ends.extend(self.router_b.iter());
        ends
    }
}

/// The namespace of `host` in lab `lab`.
pub fn netns_name(lab: &str, host: HostId) -> String {
    format!("surge-{lab}-{}", host.suffix())
}

/// Every namespace a lab of this name may own, A, B and R.
pub(crate) fn all_netns_names(lab: &str) -> [String; 3] {
    [HostId::A, HostId::B, HostId::Router].map(|h| netns_name(lab, h))
}

/// FNV-1a, 64 bit: stable across Rust releases, unlike `DefaultHasher`.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A short tag for interface names: the lab name if short, else a prefix plus a hash.
fn interface_tag(lab: &str) -> String {
    if lab.len() <= 10 {
        return lab.to_string();
    }
    let head = lab.get(..5).unwrap_or(lab).trim_end_matches('-');
    format!("{head}{:05x}", fnv1a(&[lab.as_bytes()]) & 0xf_ffff)
}

/// Interface name for one role (`a`, `b`, `ra`, `rb`).
pub(crate) fn ifname(lab: &str, role: &str) -> String {
    let name = format!("{}-{role}", interface_tag(lab));
    debug_assert!(name.len() <= MAX_IFNAME_LEN);
    name
}

/// A locally administered unicast MAC derived from the lab name and the role.
pub(crate) fn mac(lab: &str, role: &str) -> [u8; 6] {
    let hash = fnv1a(&[lab.as_bytes(), role.as_bytes()]).to_be_bytes();
    // IEEE 802: bit 1 of the first octet = locally administered, bit 0 = 0 for unicast.
    [
        (hash[0] & 0xfc) | 0x02,
        hash[1],
        hash[2],
        hash[3],
        hash[4],
        hash[5],
    ]
}

/// The layout of lab `lab`; `lab` must already be a valid name.
pub(crate) fn layout(lab: &str, topology: Topology) -> Result<Layout, LabError> {
    crate::spec::validate_name(lab)?;
    let host = |id: HostId, role: &str, addr: [u8; 4], gateway: Option<Ipv4Addr>| Host {
        netns: netns_name(lab, id),
        ifname: ifname(lab, role),
        addr: Ipv4Addr::from(addr),
        prefix_len: 24,
        mac: mac(lab, role),
        gateway,
        peer_addr: Ipv4Addr::UNSPECIFIED,
        peer_mac: [0; 6],
    };
    let link = |mut left: Host, mut right: Host| {
        left.peer_addr = right.addr;
        left.peer_mac = right.mac;
        right.peer_addr = left.addr;
        right.peer_mac = left.mac;
        (left, right)
    };
    Ok(match topology {
        Topology::Pair => {
            let (a, b) = link(
                host(HostId::A, "a", [198, 18, 0, 1], None),
                host(HostId::B, "b", [198, 18, 0, 2], None),
            );
            Layout {
                a,
                b,
                router_a: None,
                router_b: None,
            }
        }
        Topology::Routed => {
            let gw_a = Ipv4Addr::new(198, 18, 1, 254);
            let gw_b = Ipv4Addr::new(198, 18, 2, 254);
            let (a, router_a) = link(
                host(HostId::A, "a", [198, 18, 1, 1], Some(gw_a)),
                host(HostId::Router, "ra", gw_a.octets(), None),
            );
            let (router_b, b) = link(
                host(HostId::Router, "rb", gw_b.octets(), None),
                host(HostId::B, "b", [198, 18, 2, 1], Some(gw_b)),
            );
            Layout {
                a,
                b,
                router_a: Some(router_a),
                router_b: Some(router_b),
            }
        }
    })
}

/// Formats a MAC as `02:ab:...`.
pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_differ_between_labs() {
        let long = "a-very-long-lab-name-of-32-chars";
        assert_eq!(long.len(), 32);
        for lab in ["surge", "x", long, "a-very-long-lab-name-of-32-charz"] {
            let l = layout(lab, Topology::Routed).expect("layout");
            for end in l.ends() {
                assert!(end.ifname.len() <= MAX_IFNAME_LEN, "{}", end.ifname);
                assert_eq!(end.mac[0] & 0x03, 0x02, "not local unicast");
            }
        }
        let one = layout(long, Topology::Pair).expect("layout");
        let two = layout("a-very-long-lab-name-of-32-charz", Topology::Pair).expect("layout");
        assert_ne!(one.a.ifname, two.a.ifname);
        assert_ne!(one.a.mac, two.a.mac);
        assert_ne!(one.a.mac, one.b.mac);
    }

    #[test]
    fn routed_addresses_and_peers() {
        let l = layout("t", Topology::Routed).expect("layout");
        let ra = l.router_a.as_ref().expect("router");
        assert_eq!(l.a.addr, Ipv4Addr::new(198, 18, 1, 1));
        assert_eq!(l.a.gateway, Some(Ipv4Addr::new(198, 18, 1, 254)));
        assert_eq!(l.a.peer_addr, ra.addr);
        assert_eq!(l.a.peer_mac, ra.mac);
        assert_eq!(l.b.addr, Ipv4Addr::new(198, 18, 2, 1));
        assert_eq!(l.b.netns, "surge-t-b");
        let p = layout("t", Topology::Pair).expect("layout");
        assert_eq!(p.a.peer_addr, Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!(p.b.peer_mac, p.a.mac);
    }
}
