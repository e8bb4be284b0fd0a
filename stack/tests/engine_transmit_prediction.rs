//! Output prediction through the engine, frame by frame: two engines over the in-memory
//! pipe run the same seeded echo exchange twice, once with
//! [`TcpConfig::transmit_prediction`] on and once off, and every frame either engine
//! sends must be the same bytes both times (Ethernet, IP with its ECN field, TCP header
//! and checksum, payload). The predicted segment's usual header (timestamps alone) is
//! written straight into the frame by its own writer (`wire::tcp::TimestampHeader`),
//! the others through `TcpRepr::emit`; the general path, with prediction off, always
//! goes through `TcpRepr::emit`. The Tcb-level differential tests
//! (`tcp_transmit_prediction.rs`) compare headers as `TcpRepr`s; this one compares
//! what reaches the wire.

mod support;

use core::net::SocketAddrV4;
use core::time::Duration;

use support::{IP_A, IP_B, MAC_A, MAC_B, any, config_with_mtu};
use surge_datapath::{
    Burst, Device, DeviceCaps, DeviceStats, Frame, FrameAccounting, Impairments, PipeConfig,
    PipeDevice,
};
use surge_stack::Errno;
use surge_stack::engine::Engine;
use surge_stack::table::BindOptions;
use surge_stack::tcp::TcpConfig;
use surge_stack::time::Instant;

/// The pipe, keeping a copy of every frame it sends.
struct Recording {
    inner: PipeDevice,
    sent: Vec<Vec<u8>>,
}

impl Device for Recording {
    fn caps(&self) -> DeviceCaps {
        self.inner.caps()
    }
    fn rx_burst(&mut self, rx: &mut Burst) -> usize {
        self.inner.rx_burst(rx)
    }
    fn frame(&self, frame: &Frame) -> &[u8] {
        self.inner.frame(frame)
    }
    fn frame_mut(&mut self, frame: &Frame) -> &mut [u8] {
        self.inner.frame_mut(frame)
    }
    fn alloc_tx(&mut self) -> Option<Frame> {
        self.inner.alloc_tx()
    }
    fn alloc_tx_for(&mut self, len: usize) -> Option<Frame> {
        self.inner.alloc_tx_for(len)
    }
    fn request_tx_checksum(&mut self, frame: &mut Frame, start: u16, offset: u16) -> bool {
        self.inner.request_tx_checksum(frame, start, offset)
    }
    fn release(&mut self, frames: &mut Burst) {
        self.inner.release(frames)
    }
    fn release_one(&mut self, frame: Frame) {
        self.inner.release_one(frame)
    }
    fn tx_burst(&mut self, tx: &mut Burst) -> usize {
        let frames: Vec<Vec<u8>> = tx.iter().map(|f| self.inner.frame(f).to_vec()).collect();
        // The frames sent leave the front of the burst; the rest stay for the next call.
        let n = self.inner.tx_burst(tx);
        self.sent.extend(frames.into_iter().take(n));
        n
    }
    fn stats(&self) -> DeviceStats {
        self.inner.stats()
    }
    fn accounting(&self) -> FrameAccounting {
        self.inner.accounting()
    }
}

/// What one run sent: every frame of A, every frame of B, and how many segments
/// were predicted on both ends.
struct Run {
    a: Vec<Vec<u8>>,
    b: Vec<Vec<u8>>,
    predicted: u64,
}

/// An echo exchange from A to B's listener: `rounds` requests of growing size (one byte
/// to a few segments), each echoed back whole before the next.
fn run(tcp: TcpConfig, impairments: Impairments, seed: u64, prediction: bool) -> Run {
    let pipe = PipeConfig {
        impairments,
        seed,
        ..PipeConfig::default()
    };
    let (da, db) = PipeDevice::pair(&pipe).expect("pipe");
    let tcp = TcpConfig {
        transmit_prediction: prediction,
        ..tcp
    };
    let mut ca = config_with_mtu(MAC_A, IP_A, 1, pipe.mtu);
    ca.tcp = tcp;
    let mut cb = config_with_mtu(MAC_B, IP_B, 2, pipe.mtu);
    cb.tcp = tcp;
    let wrap = |inner| Recording {
        inner,
        sent: Vec::new(),
    };
    let mut a = Engine::new(wrap(da), ca).expect("engine a");
    let mut b = Engine::new(wrap(db), cb).expect("engine b");
    let mut now = Instant::ZERO;
    let mut step = |a: &mut Engine<Recording>, b: &mut Engine<Recording>| {
        now += Duration::from_micros(100);
        a.device_mut().inner.set_now(now.total_micros());
        b.device_mut().inner.set_now(now.total_micros());
        a.poll(now);
        b.poll(now);
    };

    let l = b.tcp_socket().expect("socket");
    b.bind(l, any(7300), BindOptions::default()).expect("bind");
    b.listen(l, 4).expect("listen");
    let c = a.tcp_socket().expect("socket");
    assert_eq!(
        a.connect(c, SocketAddrV4::new(IP_B, 7300)),
        Err(Errno::EINPROGRESS)
    );
    let mut s = None;
    for _ in 0..100_000 {
        s = s.or_else(|| b.accept(l).ok().map(|(h, _)| h));
        if s.is_some() && a.readiness(c).is_ok_and(|r| r.writable) {
            break;
        }
        step(&mut a, &mut b);
    }
    let s = s.expect("accepted");

    let mut buf = vec![0u8; 8192];
    for round in 0..60usize {
        let len = 1 + (round * 97) % 4000;
        let request: Vec<u8> = (0..len).map(|i| (i * 7 + round) as u8).collect();
        let (mut sent, mut echoed, mut back) = (0, 0, Vec::new());
        let mut at_b = Vec::new();
        let mut steps = 0;
        while back.len() < len {
            steps += 1;
            assert!(steps < 200_000, "round {round} stalled");
            if sent < len {
                sent += a.send(c, &request[sent..]).unwrap_or(0);
            }
            if let Ok(k) = b.recv(s, &mut buf) {
                at_b.extend_from_slice(&buf[..k]);
            }
            if echoed < at_b.len() {
                echoed += b.send(s, &at_b[echoed..]).unwrap_or(0);
            }
            if let Ok(k) = a.recv(c, &mut buf) {
                back.extend_from_slice(&buf[..k]);
            }
            step(&mut a, &mut b);
        }
        assert_eq!(back, request, "round {round}");
    }
    let predicted = a.tcp_socket_stats(c).expect("stats").predicted_transmits
        + b.tcp_socket_stats(s).expect("stats").predicted_transmits;
    Run {
        a: core::mem::take(&mut a.device_mut().sent),
        b: core::mem::take(&mut b.device_mut().sent),
        predicted,
    }
}

/// Both runs sent the same frames, byte for byte; the one with prediction on predicted.
fn agree(tcp: TcpConfig, impairments: Impairments, seed: u64) {
    let on = run(tcp, impairments, seed, true);
    let off = run(tcp, impairments, seed, false);
    assert!(on.predicted > 0, "nothing predicted");
    assert_eq!(off.predicted, 0);
    for (name, on, off) in [("A", &on.a, &off.a), ("B", &on.b, &off.b)] {
        assert_eq!(on.len(), off.len(), "{name}: frames sent");
        for (i, (x, y)) in on.iter().zip(off).enumerate() {
            assert_eq!(x, y, "{name}: frame {i}");
        }
    }
}

fn clean() -> Impairments {
    Impairments::default()
}

/// Loss and reordering: retransmissions, and new data sent while out-of-order data is
/// held (SACK blocks in the predicted segment's header, the general writer's case).
fn lossy() -> Impairments {
    Impairments {
        loss: 0.03,
        reorder: 0.05,
        reorder_delay_us: 300,
        delay_us: 200,
        ..Impairments::default()
    }
}

#[test]
fn timestamps_and_sack_agree() {
    agree(TcpConfig::default(), clean(), 1);
    for seed in 1..4 {
        agree(TcpConfig::default(), lossy(), seed);
    }
}

#[test]
fn ecn_agrees() {
    let ecn = TcpConfig {
        ecn: true,
        ..TcpConfig::default()
    };
    agree(ecn, clean(), 1);
    agree(ecn, lossy(), 5);
}

#[test]
fn every_other_header_agrees() {
    let d = TcpConfig::default();
    for tcp in [
        TcpConfig {
            timestamps: false,
            ..d
        },
        TcpConfig { sack: false, ..d },
        TcpConfig {
            timestamps: false,
            sack: false,
            ..d
        },
    ] {
        agree(tcp, clean(), 1);
        agree(tcp, lossy(), 7);
    }
}
