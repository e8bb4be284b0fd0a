//! Sockets: the socket table and the per-protocol socket state.

pub mod set;
pub mod udp;

pub use set::{SocketHandle, SocketSet};
pub use udp::{UdpSocket, UdpStats};
