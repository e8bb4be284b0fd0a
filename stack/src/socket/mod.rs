//! Sockets: the socket table and the per-protocol socket state.

pub mod set;
pub mod tcp;
pub mod udp;

pub use set::{SocketHandle, SocketSet};
pub use tcp::{ListenState, TcpSock, TcpSocketOptions, TcpSocketState};
pub use udp::{UdpSock, UdpStats};
