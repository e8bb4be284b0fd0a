//! The TCP input path: a connection (active or passive open) fed a fuzzer-chosen
//! sequence of segments, user calls and clock steps. Nothing may panic, and the
//! connection's buffers stay bounded by its configuration.
//!
//! Input layout: byte 0 picks the opening (bit 0: active or passive; bit 1: the passive
//! open's SYN offers SACK, so SACK blocks reach the scoreboard and RACK-TLP); then records of
//! `[op, dt, len_hi, len_lo, bytes...]`. Op 0..=3 feeds `bytes` as a raw TCP
//! segment (parsed with checksums trusted, as after RX offload); 4 sends; 5 reads;
//! 6 closes; 7 aborts; 8 fires timers; 9 shuts down writing.
#![no_main]

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use surge_stack::tcp::{Tcb, TcpConfig};
use surge_stack::FourTuple;
use surge_stack::time::Instant;
use surge_stack::wire::{ChecksumMode, TcpFlags, TcpOptions, TcpPacket, TcpRepr};

const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn config() -> TcpConfig {
    TcpConfig { send_buffer: 8192, recv_buffer: 8192, ooo_max_bytes: 16384, ..TcpConfig::default() }
}

fuzz_target!(|data: &[u8]| {
    let Some((&opening, mut rest)) = data.split_first() else { return };
    let tuple = FourTuple::new(SocketAddrV4::new(LOCAL, 40000), SocketAddrV4::new(REMOTE, 80));
    let cfg = config();
    let mut now = Instant::from_millis(1);
    let mut tcb = if opening & 1 == 0 {
        Tcb::connect(tuple, 1_000_000, now, &cfg)
    } else {
        let syn = TcpRepr {
            src_port: 80,
            dst_port: 40000,
            seq_number: u32::from(opening) << 24,
            flags: TcpFlags::SYN,
            window_len: 65535,
            options: TcpOptions { sack_permitted: opening & 2 != 0, ..TcpOptions::default() },
            ..TcpRepr::default()
        };
        Tcb::accept_syn(tuple, &syn, 2_000_000, now, &cfg)
    };
    let mut out = vec![0u8; 65536];
    let mut buf = vec![0u8; 4096];
    let mut steps = 0;
    while rest.len() >= 4 && steps < 256 {
        steps += 1;
        let (op, dt) = (rest[0], rest[1]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]])).min(rest.len() - 4);
        let bytes = &rest[4..4 + len];
        rest = &rest[4 + len..];
        now += Duration::from_millis(u64::from(dt) * 8);
        match op % 10 {
            0..=3 => {
                if let Ok(packet) = TcpPacket::new_checked(bytes) {
                    if let Ok(seg) = TcpRepr::parse(&packet, REMOTE, LOCAL, ChecksumMode::Trust) {
                        tcb.handle_segment(now, &seg, packet.payload());
                    }
                }
            }
            4 => {
                let _ = tcb.send(bytes);
            }
            5 => {
                let _ = tcb.recv(&mut buf);
            }
            6 => tcb.close(),
            7 => tcb.abort(),
            8 => tcb.handle_timeout(now),
            _ => tcb.shutdown_write(),
        }
        // Drain what it wants to send; a bounded number of segments per step.
        for _ in 0..64 {
            match tcb.poll_transmit(now, &mut out) {
                Some(t) => assert!(t.payload_len <= out.len()),
                None => break,
            }
        }
        assert!(tcb.send_queue_len() <= cfg.send_buffer_limit());
        assert!(tcb.recv_queue_len() <= cfg.recv_buffer_limit());
    }
});
