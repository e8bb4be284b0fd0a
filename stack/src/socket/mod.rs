//! Sockets: the socket table and the per-protocol socket state.

pub mod readiness;
pub mod set;
pub mod tcp;
pub mod udp;

pub use readiness::{Readiness, ReadyMark};
pub use set::{SocketHandle, SocketSet};
pub use tcp::{ListenState, SharedAcceptQueue, TcpSock, TcpSocketOptions, TcpSocketState};
pub use udp::{UdpSock, UdpStats};
