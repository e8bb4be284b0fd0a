//! The 4-tuple that names a TCP connection or a connected UDP socket.

use core::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, SocketAddrV4};

/// A TCP/UDP connection's 4-tuple, seen from this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FourTuple {
    /// Our address.
    pub local_addr: Ipv4Addr,
    /// Our port.
    pub local_port: u16,
    /// The peer's address.
    pub remote_addr: Ipv4Addr,
    /// The peer's port.
    pub remote_port: u16,
}

impl FourTuple {
    /// A tuple from our and the peer's socket addresses.
    pub const fn new(local: SocketAddrV4, remote: SocketAddrV4) -> Self {
        FourTuple {
            local_addr: *local.ip(),
            local_port: local.port(),
            remote_addr: *remote.ip(),
            remote_port: remote.port(),
        }
    }

    /// Our socket address.
    pub const fn local(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.local_addr, self.local_port)
    }

    /// The peer's socket address.
    pub const fn remote(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.remote_addr, self.remote_port)
    }

    /// The tuple packed into 96 bits: (local addr, remote addr) and (local port, remote port).
    const fn packed(&self) -> (u64, u32) {
        let addrs = ((self.local_addr.to_bits() as u64) << 32) | self.remote_addr.to_bits() as u64;
        let ports = ((self.local_port as u32) << 16) | self.remote_port as u32;
        (addrs, ports)
    }
}

impl Hash for FourTuple {
    /// Two fixed-width writes instead of the derived per-field, length-prefixed ones.
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (addrs, ports) = self.packed();
        state.write_u64(addrs);
        state.write_u32(ports);
    }
}
