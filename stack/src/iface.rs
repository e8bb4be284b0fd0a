//! Interface configuration: our MAC, IPv4 addresses with prefixes, gateway and MTU,
//! and the one routing decision a host stack makes (on-link or via the gateway).

use core::fmt;
use core::net::Ipv4Addr;
use core::str::FromStr;

use crate::wire::EthernetAddress;

/// An IPv4 address with its prefix length, e.g. `198.18.0.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    prefix_len: u8,
}

/// Why an interface configuration or a route was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IfaceError {
    /// A prefix length above 32.
    #[error("prefix length {0} is above 32")]
    BadPrefix(u8),
    /// Text that is not `a.b.c.d/len`.
    #[error("'{0}' is not an IPv4 address with prefix (a.b.c.d/len)")]
    BadCidr(String),
    /// An MTU outside 68..=65535 (RFC 791 minimum) or above what the device carries.
    #[error("MTU {0} is outside 68..=9216")]
    BadMtu(u32),
    /// No address configured.
    #[error("the interface has no IPv4 address")]
    NoAddress,
    /// The destination is not on a connected network and there is no gateway.
    #[error("network unreachable: {0} is not on-link and no gateway is set")]
    NetworkUnreachable(Ipv4Addr),
    /// The gateway itself is not on a connected network.
    #[error("gateway {0} is not on any connected network")]
    GatewayNotOnLink(Ipv4Addr),
}

impl Ipv4Cidr {
    /// A CIDR from an address and a prefix length (0..=32).
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Result<Self, IfaceError> {
        if prefix_len > 32 {
            return Err(IfaceError::BadPrefix(prefix_len));
        }
        Ok(Ipv4Cidr { addr, prefix_len })
    }

    /// The address.
    pub const fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length.
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The netmask as a 32-bit integer.
    pub fn mask(&self) -> u32 {
        if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix_len))
        }
    }

    /// The directed broadcast address of the network.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// True when `ip` is on this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) ^ u32::from(self.addr)) & self.mask() == 0
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = IfaceError;
    fn from_str(s: &str) -> Result<Self, IfaceError> {
        let bad = || IfaceError::BadCidr(s.to_owned());
        let (addr, len) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let len: u8 = len.parse().map_err(|_| bad())?;
        Ipv4Cidr::new(addr, len)
    }
}

/// Largest MTU surge accepts (jumbo frames on veth and most NICs).
pub const MAX_MTU: u32 = 9216;

/// What the stack knows about the interface it runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// Our MAC address.
    pub mac: EthernetAddress,
    /// Our IPv4 addresses; the first is the primary (source for routed traffic).
    pub addrs: Vec<Ipv4Cidr>,
    /// Default gateway, if any.
    pub gateway: Option<Ipv4Addr>,
    /// IP MTU.
    pub mtu: u32,
}

/// Where to send a packet for a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The address whose MAC the frame goes to (the destination or the gateway).
    pub next_hop: Ipv4Addr,
    /// Our source address for this destination.
    pub source: Ipv4Addr,
}

impl InterfaceConfig {
    /// A configuration with one address; checks the MTU and the gateway.
    pub fn new(
        mac: EthernetAddress,
        addr: Ipv4Cidr,
        gateway: Option<Ipv4Addr>,
        mtu: u32,
    ) -> Result<Self, IfaceError> {
        let config = InterfaceConfig {
            mac,
            addrs: vec![addr],
            gateway,
            mtu,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the invariants: an address, a sane MTU, a gateway on-link.
    pub fn validate(&self) -> Result<(), IfaceError> {
        if self.addrs.is_empty() {
            return Err(IfaceError::NoAddress);
        }
        if !(68..=MAX_MTU).contains(&self.mtu) {
            return Err(IfaceError::BadMtu(self.mtu));
        }
        if let Some(gw) = self.gateway {
            if !self.addrs.iter().any(|c| c.contains(gw)) {
                return Err(IfaceError::GatewayNotOnLink(gw));
            }
        }
        Ok(())
    }

    /// The primary address.
    pub fn primary_addr(&self) -> Ipv4Addr {
        self.addrs
            .first()
            .map_or(Ipv4Addr::UNSPECIFIED, Ipv4Cidr::addr)
    }

    /// True when `ip` is one of our addresses.
    pub fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.addrs.iter().any(|c| c.addr() == ip)
    }

    /// True when `ip` is a broadcast we accept (limited or a directed one of ours).
    pub fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        ip == Ipv4Addr::BROADCAST
            || self
                .addrs
                .iter()
                .any(|c| c.prefix_len() < 31 && c.broadcast() == ip)
    }

    /// The route to `dst`: on-link when a connected network holds it, else via the gateway.
    pub fn route(&self, dst: Ipv4Addr) -> Result<Route, IfaceError> {
        if let Some(c) = self.addrs.iter().find(|c| c.contains(dst)) {
            return Ok(Route {
                next_hop: dst,
                source: c.addr(),
            });
        }
        let gw = self.gateway.ok_or(IfaceError::NetworkUnreachable(dst))?;
        let c = self
            .addrs
            .iter()
            .find(|c| c.contains(gw))
            .ok_or(IfaceError::GatewayNotOnLink(gw))?;
        Ok(Route {
            next_hop: gw,
            source: c.addr(),
        })
    }

    /// The largest TCP MSS for this MTU (IPv4 and TCP headers without options).
    pub fn mss(&self) -> u16 {
        u16::try_from(self.mtu.saturating_sub(40)).unwrap_or(u16::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("test address")
    }

    fn config(gw: Option<&str>) -> InterfaceConfig {
        let cidr: Ipv4Cidr = "198.18.1.1/24".parse().expect("cidr");
        InterfaceConfig::new(EthernetAddress([2, 0, 0, 0, 0, 1]), cidr, gw.map(ip), 1500)
            .expect("valid config")
    }

    #[test]
    fn cidr_parses_and_contains() {
        let c: Ipv4Cidr = "198.18.1.1/24".parse().expect("cidr");
        assert!(c.contains(ip("198.18.1.200")));
        assert!(!c.contains(ip("198.18.2.1")));
        assert_eq!(c.broadcast(), ip("198.18.1.255"));
        assert_eq!(c.to_string(), "198.18.1.1/24");
        let all: Ipv4Cidr = "0.0.0.0/0".parse().expect("cidr");
        assert!(all.contains(ip("198.19.255.255")));
        assert!(matches!(
            "198.18.1.1/33".parse::<Ipv4Cidr>(),
            Err(IfaceError::BadPrefix(33))
        ));
        assert!(matches!(
            "198.18.1.1".parse::<Ipv4Cidr>(),
            Err(IfaceError::BadCidr(_))
        ));
        assert!(matches!(
            "x/24".parse::<Ipv4Cidr>(),
            Err(IfaceError::BadCidr(_))
        ));
    }

    #[test]
    fn on_link_destinations_route_directly() {
        let c = config(Some("198.18.1.254"));
        let r = c.route(ip("198.18.1.7")).expect("route");
        assert_eq!(
            r,
            Route {
                next_hop: ip("198.18.1.7"),
                source: ip("198.18.1.1")
            }
        );
    }

    #[test]
    fn off_link_destinations_go_via_the_gateway_or_are_unreachable() {
        let c = config(Some("198.18.1.254"));
        assert_eq!(
            c.route(ip("198.18.2.1")).expect("route").next_hop,
            ip("198.18.1.254")
        );
        let c = config(None);
        assert_eq!(
            c.route(ip("198.18.2.1")),
            Err(IfaceError::NetworkUnreachable(ip("198.18.2.1")))
        );
    }

    #[test]
    fn bad_configurations_are_refused() {
        let cidr: Ipv4Cidr = "198.18.1.1/24".parse().expect("cidr");
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        assert_eq!(
            InterfaceConfig::new(mac, cidr, None, 40),
            Err(IfaceError::BadMtu(40))
        );
        assert_eq!(
            InterfaceConfig::new(mac, cidr, Some(ip("198.18.9.1")), 1500),
            Err(IfaceError::GatewayNotOnLink(ip("198.18.9.1")))
        );
    }

    #[test]
    fn local_and_broadcast_addresses() {
        let c = config(None);
        assert!(c.is_local(ip("198.18.1.1")));
        assert!(!c.is_local(ip("198.18.1.2")));
        assert!(c.is_broadcast(ip("198.18.1.255")));
        assert!(c.is_broadcast(Ipv4Addr::BROADCAST));
        assert!(!c.is_broadcast(ip("198.18.1.254")));
        assert_eq!(c.mss(), 1460);
    }
}
