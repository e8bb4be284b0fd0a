//! The engine as a whole (stateful): an engine over an in-memory pipe with a
//! TCP listener, a UDP socket and an active open, fed a fuzzer-chosen sequence
//! of frames, socket calls and clock steps. Nothing may panic, every frame of
//! the pool stays accounted for, and reassembly memory stays within its limit.
//!
//! Input layout: byte 0 picks checksum verification (even: verify, odd: trust,
//! so the fuzzer reaches past the checksums); then records of
//! `[op, dt, len_hi, len_lo, bytes...]` (op taken modulo 10). Op 0 injects
//! `bytes` as a whole frame; 1 behind an Ethernet header to the engine (ARP
//! when bit 4 of the op byte is set, else IPv4); 2, 3, 4 behind Ethernet and an
//! IPv4 header from the peer (TCP, UDP, ICMP; 5 the same as a fragment whose
//! flags/offset are the first two bytes); 6 accepts, reads and echoes on every
//! connection; 7 closes the oldest one; 8 sends a UDP datagram; 9 a big clock
//! step. `dt` advances the clock by `dt` milliseconds before each record.
//!
//! Run for hours: `cd fuzz && cargo +nightly fuzz run engine corpus/engine -- -max_total_time=14400`.
#![no_main]

use core::net::{Ipv4Addr, SocketAddrV4};

use libfuzzer_sys::fuzz_target;
use surge_datapath::{Burst, Device, PipeConfig, PipeDevice, PoolConfig};
use surge_stack::engine::{Engine, EngineConfig};
use surge_stack::iface::{InterfaceConfig, Ipv4Cidr};
use surge_stack::socket::SocketHandle;
use surge_stack::table::BindOptions;
use surge_stack::time::Instant;
use surge_stack::wire::{ChecksumMode, EthernetAddress, Ipv4Packet};

const US: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const MAC_US: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_PEER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

fn engine(checksums: ChecksumMode) -> Option<(Engine<PipeDevice>, PipeDevice)> {
    let pipe = PipeConfig {
        pool: PoolConfig {
            frame_size: 2048,
            frame_count: 128,
            headroom: 0,
            huge_pages: false,
        },
        ..PipeConfig::default()
    };
    let (ours, peer) = PipeDevice::pair(&pipe).ok()?;
    let cidr = Ipv4Cidr::new(US, 24).ok()?;
    let iface = InterfaceConfig::new(EthernetAddress(MAC_US), cidr, None, 1500).ok()?;
    let mut config = EngineConfig::new(iface);
    config.gratuitous_arp = false;
    config.rx_checksum = checksums;
    config.static_neighbors.push((PEER, EthernetAddress(MAC_PEER)));
    config.reassembly.total_bytes = 64 * 1024;
    config.reassembly.per_source_bytes = 32 * 1024;
    Some((Engine::new(ours, config).ok()?, peer))
}

/// Ethernet header from the peer to us.
fn ethernet(frame: &mut Vec<u8>, ethertype: u16) {
    frame.extend_from_slice(&MAC_US);
    frame.extend_from_slice(&MAC_PEER);
    frame.extend_from_slice(&ethertype.to_be_bytes());
}

/// Ethernet and an IPv4 header (checksum filled) from the peer, then `body`.
fn ipv4(protocol: u8, flags_offset: u16, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(34 + body.len());
    ethernet(&mut frame, 0x0800);
    let total = (20 + body.len()).min(usize::from(u16::MAX)) as u16;
    frame.extend_from_slice(&[0x45, 0]);
    frame.extend_from_slice(&total.to_be_bytes());
    frame.extend_from_slice(&[0x12, 0x34]);
    frame.extend_from_slice(&flags_offset.to_be_bytes());
    frame.extend_from_slice(&[64, protocol, 0, 0]);
    frame.extend_from_slice(&PEER.octets());
    frame.extend_from_slice(&US.octets());
    Ipv4Packet::new_unchecked(&mut frame[14..34]).fill_checksum();
    frame.extend_from_slice(body);
    frame
}

/// Puts `bytes` on the wire towards the engine.
fn inject(peer: &mut PipeDevice, bytes: &[u8]) {
    let Some(mut frame) = peer.alloc_tx() else {
        return;
    };
    let len = bytes.len().min(2048);
    peer.frame_mut(&frame)[..len].copy_from_slice(&bytes[..len]);
    if !frame.set_len(len) {
        peer.release_one(frame);
        return;
    }
    let mut tx = Burst::new();
    if let Err(frame) = tx.push(frame) {
        peer.release_one(frame);
        return;
    }
    peer.tx_burst(&mut tx);
    peer.release(&mut tx);
}

/// Takes whatever the engine sent (frames go back to the pool).
fn drain(peer: &mut PipeDevice) {
    let mut rx = Burst::new();
    for _ in 0..64 {
        if peer.rx_burst(&mut rx) == 0 {
            break;
        }
        peer.release(&mut rx);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let checksums = if mode & 1 == 0 { ChecksumMode::Verify } else { ChecksumMode::Trust };
    let Some((mut engine, mut peer)) = engine(checksums) else {
        return;
    };
    let privileged = BindOptions {
        privileged: true,
        ..BindOptions::default()
    };
    let mut conns: Vec<SocketHandle> = Vec::new();
    let listener = engine.tcp_socket().ok();
    if let Some(l) = listener {
        let _ = engine.bind(l, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80), privileged);
        let _ = engine.listen(l, 8);
    }
    let udp = engine.udp_socket().ok();
    if let Some(u) = udp {
        let _ = engine.bind(u, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 53), privileged);
    }
    if let Ok(active) = engine.tcp_socket() {
        if engine.connect(active, SocketAddrV4::new(PEER, 9000)).is_ok() {
            conns.push(active);
        }
    }
    let mut now_us: u64 = 1_000;
    let mut buf = [0u8; 4096];
    let mut steps = 0;
    while rest.len() >= 4 && steps < 256 {
        steps += 1;
        let (op, dt) = (rest[0], rest[1]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]])).min(rest.len() - 4);
        let bytes = &rest[4..4 + len];
        rest = &rest[4 + len..];
        now_us += u64::from(dt) * 1_000;
        match op % 10 {
            0 => inject(&mut peer, bytes),
            1 => {
                // ARP when bit 4 of the op is set, else IPv4.
                let mut frame = Vec::new();
                ethernet(&mut frame, if op & 0x10 != 0 { 0x0806 } else { 0x0800 });
                frame.extend_from_slice(bytes);
                inject(&mut peer, &frame);
            }
            2 => inject(&mut peer, &ipv4(6, 0x4000, bytes)),
            3 => inject(&mut peer, &ipv4(17, 0, bytes)),
            4 => inject(&mut peer, &ipv4(1, 0, bytes)),
            5 if bytes.len() >= 2 => {
                let flags = u16::from_be_bytes([bytes[0], bytes[1]]) & 0x3fff;
                inject(&mut peer, &ipv4(bytes.get(2).map_or(6, |p| p % 3 * 5 + 1), flags, &bytes[2..]));
            }
            6 => {
                if let Some(l) = listener {
                    while let Ok((c, _)) = engine.accept(l) {
                        conns.push(c);
                    }
                }
                for &c in &conns {
                    if let Ok(n) = engine.recv(c, &mut buf) {
                        let _ = engine.send(c, &buf[..n]);
                    }
                }
            }
            7 if !conns.is_empty() => {
                let c = conns.remove(0);
                let _ = engine.close(c);
            }
            8 => {
                if let Some(u) = udp {
                    let _ = engine.send_to(u, bytes, Some(SocketAddrV4::new(PEER, 5353)));
                }
            }
            9 => now_us += u64::from(dt) * 1_000_000,
            _ => {}
        }
        engine.device_mut().set_now(now_us);
        peer.set_now(now_us);
        engine.poll(Instant::from_micros(now_us));
        drain(&mut peer);
    }
    for c in conns {
        let _ = engine.close(c);
    }
    // Time passes: every timer (retransmission, TIME-WAIT, reassembly) runs out.
    for _ in 0..8 {
        now_us += 30_000_000;
        engine.device_mut().set_now(now_us);
        peer.set_now(now_us);
        engine.poll(Instant::from_micros(now_us));
        drain(&mut peer);
    }
    assert!(engine.device().accounting().balanced(), "frames leaked");
});
