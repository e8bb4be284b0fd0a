//! RFC 7323 §5.4 timestamp offsets: every TSval of a connection carries the offset the
//! engine gave it (`TcpConfig::ts_offset`), from the first SYN or SYN-ACK on — also on a
//! passive open that goes through a request record and becomes a `Tcb` — so the
//! peer's PAWS and RTT measurement see one clock.

use core::net::{Ipv4Addr, SocketAddrV4};

use surge_stack::FourTuple;
use surge_stack::table::SocketId;
use surge_stack::tcp::{RequestSock, Tcb, TcpConfig};
use surge_stack::time::Instant;
use surge_stack::wire::{TcpFlags, TcpRepr};

const OFFSET: u32 = 0xfff0_0000;

fn tuple() -> FourTuple {
    FourTuple::new(
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80),
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 40000),
    )
}

fn tsval(repr: &TcpRepr) -> u32 {
    repr.options.timestamp.expect("timestamp option").0
}

#[test]
fn active_open_tsvals_carry_the_offset() {
    let cfg = TcpConfig {
        ts_offset: OFFSET,
        ..TcpConfig::default()
    };
    let now = Instant::from_micros(5_000_000);
    let mut tcb = Tcb::connect(tuple(), 1, now, &cfg);
    let mut buf = [0u8; 64];
    let syn = tcb.poll_transmit(now, &mut buf).expect("SYN").repr;
    assert!(syn.flags.contains(TcpFlags::SYN));
    assert_eq!(tsval(&syn), 5_000u32.wrapping_add(OFFSET));
}

#[test]
fn passive_open_keeps_the_requests_offset_into_the_connection() {
    let cfg = TcpConfig {
        ts_offset: OFFSET,
        ..TcpConfig::default()
    };
    let mut syn = TcpRepr {
        src_port: 40000,
        dst_port: 80,
        seq_number: 1000,
        flags: TcpFlags::SYN,
        window_len: 65535,
        ..TcpRepr::default()
    };
    syn.options.timestamp = Some((777, 0));
    syn.options.mss = Some(1460);
    let t0 = Instant::from_micros(2_000_000);
    let req = RequestSock::new(tuple(), SocketId(1), &syn, 5000, t0, &cfg);
    let synack = req.synack(t0, &cfg);
    assert_eq!(tsval(&synack), 2_000u32.wrapping_add(OFFSET));
    // The handshake completes 10 ms later; the listener's config (no offset) is what
    // the engine passes then: the connection keeps the request's offset.
    let t1 = Instant::from_micros(2_010_000);
    let mut tcb = Tcb::from_request(&req, t1, &TcpConfig::default());
    let mut ack = TcpRepr {
        src_port: 40000,
        dst_port: 80,
        seq_number: 1001,
        ack_number: 5001,
        flags: TcpFlags::ACK,
        window_len: 65535,
        ..TcpRepr::default()
    };
    ack.options.timestamp = Some((778, tsval(&synack)));
    tcb.handle_segment(t1, &ack, &[]);
    assert_eq!(tcb.send(b"hello"), Ok(5));
    let mut buf = [0u8; 64];
    let data = tcb.poll_transmit(t1, &mut buf).expect("data").repr;
    assert_eq!(tsval(&data), 2_010u32.wrapping_add(OFFSET));
}
