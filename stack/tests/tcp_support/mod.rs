//! Test support for the TCP tests: a packetdrill-style [`Script`] against one connection,
//! and a quinn-style [`Pair`] of two connections over an impaired in-memory link.
#![allow(dead_code)]

pub mod lockstep;
pub mod pair;
pub mod script;

use std::net::{Ipv4Addr, SocketAddrV4};
use surge_stack::FourTuple;
use surge_stack::tcp::{CongestionAlgorithm, TcpConfig};

/// Client side address (RFC 2544 benchmarking range).
pub const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 40000);
/// Server side address.
pub const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80);

/// The client's view of the 4-tuple.
pub fn client_tuple() -> FourTuple {
    FourTuple::new(CLIENT, SERVER)
}

/// The server's view of the 4-tuple.
pub fn server_tuple() -> FourTuple {
    FourTuple::new(SERVER, CLIENT)
}

/// A configuration with every option off, so scripts read like RFC 9293 examples (and RFC
/// 5681's window arithmetic: NewReno congestion control).
pub fn plain() -> TcpConfig {
    TcpConfig {
        timestamps: false,
        sack: false,
        window_scaling: false,
        // Windows stay what each script configured.
        autotune: false,
        congestion: CongestionAlgorithm::NewReno,
        // The RFC 6298 scripts check the RFC's RTO arithmetic.
        rto_min_on_variance: false,
        ..TcpConfig::default()
    }
}
