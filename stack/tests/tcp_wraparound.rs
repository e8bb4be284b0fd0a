//! Sequence-number wraparound (RFC 9293 §3.4): a transfer that crosses 2^32 under loss, and
//! one of more than 4 GiB, so the sequence space wraps more than once.

mod tcp_support;

use core::time::Duration;
use surge_stack::tcp::{State, TcpConfig, TcpError};
use tcp_support::pair::{CLIENT_ISS, LinkConfig, Pair};

/// A pseudo-random table with a prime period: byte `i` of the stream is `TABLE[i % PERIOD]`.
const PERIOD: usize = 65_521;

fn table() -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..PERIOD)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// Sends `total` bytes client -> server, verifying every received byte against the table.
fn pattern_transfer(p: &mut Pair, total: u64, max_steps: u64) {
    let t = table();
    let mut sent = 0u64;
    let mut received = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    let mut shut = false;
    for _ in 0..max_steps {
        // Fill the send buffer with the next bytes of the pattern.
        loop {
            if sent == total {
                break;
            }
            let off = (sent % PERIOD as u64) as usize;
            let n = ((total - sent) as usize).min(PERIOD - off);
            match p.client.send(&t[off..off + n]) {
                Ok(k) => sent += k as u64,
                Err(TcpError::WouldBlock) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        if sent == total && !shut {
            p.client.shutdown_write();
            shut = true;
        }
        let server = p.server();
        loop {
            match server.recv(&mut buf) {
                Ok(0) => {
                    assert_eq!(received, total, "EOF before all data");
                    return;
                }
                Ok(n) => {
                    let mut i = 0;
                    while i < n {
                        let off = (received % PERIOD as u64) as usize;
                        let k = (n - i).min(PERIOD - off);
                        assert!(
                            buf[i..i + k] == t[off..off + k],
                            "stream corrupted at byte {received}"
                        );
                        received += k as u64;
                        i += k;
                    }
                }
                Err(TcpError::WouldBlock) => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
        assert!(p.step(), "idle at {:?}", p.now);
    }
    panic!("transfer incomplete: {received} of {total} bytes");
}

#[test]
fn rfc9293_3_4_transfer_crosses_2_pow_32_under_loss() {
    let link = LinkConfig {
        loss: 0.03,
        reorder: 0.05,
        duplicate: 0.01,
        ..LinkConfig::default()
    };
    let mut p = Pair::new(&TcpConfig::default(), &TcpConfig::default(), link, 3);
    p.handshake();
    let total = 1_000_000u64;
    assert!(
        u64::from(CLIENT_ISS) + total > 1 << 32,
        "the stream must cross 2^32"
    );
    pattern_transfer(&mut p, total, 5_000_000);
    assert!(p.client.stats().retransmits > 0);
    assert_eq!(p.server().stats().bytes_in, total);
}

#[test]
fn more_than_4_gib_wraps_sequence_space() {
    // Large segments and buffers keep the wall time short; virtual time does the rest.
    let cfg = TcpConfig {
        mss: 60_000,
        send_buffer: 4 << 20,
        recv_buffer: 4 << 20,
        ooo_max_bytes: 4 << 20,
        ..TcpConfig::default()
    };
    let link = LinkConfig {
        delay: Duration::from_millis(5),
        ..LinkConfig::default()
    };
    let mut p = Pair::new(&cfg, &cfg, link, 5);
    p.handshake();
    let total = (4u64 << 30) + 12_345;
    pattern_transfer(&mut p, total, 50_000_000);
    assert_eq!(p.server().stats().bytes_in, total);
    p.drive_until(100_000, Duration::from_secs(100_000), |p| {
        p.client.state() == State::FinWait2
            && p.server
                .as_ref()
                .is_some_and(|s| s.state() == State::CloseWait)
    });
    assert_eq!(p.client.stats().bytes_acked, total);
}
