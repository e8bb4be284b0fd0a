//! Two connections over the in-memory link: closing sequences, resets, flow control and
//! keepalive end to end (RFC 9293 §3.6, §3.8.6, §3.10.5; RFC 1122 §4.2.3.6).

mod tcp_support;

use core::time::Duration;
use surge_stack::tcp::{KeepaliveConfig, State, TcpConfig, TcpError};
use tcp_support::pair::{LinkConfig, Pair, drain_into};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn pair(cfg: &TcpConfig) -> Pair {
    let mut p = Pair::new(cfg, cfg, LinkConfig::default(), 42);
    p.handshake();
    p
}

#[test]
fn rfc9293_3_6_simultaneous_close_both_reach_time_wait_then_closed() {
    let mut p = pair(&TcpConfig::default());
    p.client.close();
    p.server().close();
    p.drive_until(1000, secs(10), |p| {
        p.client.state() == State::TimeWait
            && p.server
                .as_ref()
                .is_some_and(|s| s.state() == State::TimeWait)
    });
    p.run_idle(1000);
    assert_eq!(p.client.state(), State::Closed);
    assert_eq!(p.server().state(), State::Closed);
}

#[test]
fn rfc9293_3_6_orderly_close_only_active_side_lingers() {
    let mut p = pair(&TcpConfig::default());
    p.client.close();
    p.drive_until(1000, secs(10), |p| {
        p.server
            .as_ref()
            .is_some_and(|s| s.state() == State::CloseWait)
    });
    p.server().close();
    p.drive_until(1000, secs(10), |p| {
        p.server
            .as_ref()
            .is_some_and(|s| s.state() == State::Closed)
    });
    assert_eq!(p.client.state(), State::TimeWait);
}

#[test]
fn rfc9293_3_10_4_half_close_server_keeps_sending() {
    let mut p = pair(&TcpConfig::default());
    p.client.shutdown_write();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut eof = false;
    for _ in 0..100_000 {
        if sent < data.len() {
            sent += p.server().send(&data[sent..]).unwrap_or(0);
            if sent == data.len() {
                p.server().close();
            }
        }
        let (_, e) = drain_into(&mut p.client, &mut buf, |b| got.extend_from_slice(b));
        eof |= e;
        if eof {
            break;
        }
        assert!(p.step());
    }
    assert!(eof);
    assert_eq!(got, data);
    // The server's FIN came last; once the client's ACK arrives the server is CLOSED.
    p.drive_until(100, secs(1), |p| {
        p.server
            .as_ref()
            .is_some_and(|s| s.state() == State::Closed)
    });
    assert_eq!(p.client.state(), State::TimeWait);
}

#[test]
fn rfc9293_3_10_5_abort_resets_the_peer() {
    let mut p = pair(&TcpConfig::default());
    p.client.abort();
    p.drive_until(100, secs(1), |p| {
        p.server
            .as_ref()
            .is_some_and(|s| s.state() == State::Closed)
    });
    assert_eq!(p.server().error(), Some(TcpError::ConnectionReset));
    let mut b = [0u8; 4];
    assert_eq!(p.server().recv(&mut b), Err(TcpError::ConnectionReset));
}

#[test]
fn rfc2525_2_17_close_with_unread_data_resets_the_peer() {
    let mut p = pair(&TcpConfig::default());
    p.client.send(b"request nobody reads").unwrap();
    p.drive_until(100, secs(1), |p| {
        p.server.as_ref().is_some_and(|s| s.recv_queue_len() > 0)
    });
    p.server().close();
    p.drive_until(100, secs(1), |p| p.client.state() == State::Closed);
    assert_eq!(p.client.error(), Some(TcpError::ConnectionReset));
}

#[test]
fn rfc9293_3_8_6_1_slow_reader_zero_window_then_resume() {
    let cfg = TcpConfig {
        recv_buffer: 16 * 1024,
        ..TcpConfig::default()
    };
    let mut p = pair(&cfg);
    let data = vec![7u8; 100_000];
    let mut sent = 0;
    // The server does not read for 30 s of virtual time: its window closes, we probe.
    let until = p.now + secs(30);
    while p.now < until {
        if sent < data.len() {
            sent += p.client.send(&data[sent..]).unwrap_or(0);
        }
        assert!(p.step());
    }
    assert!(p.client.stats().window_probes > 0);
    // The window closes with the buffer full to within one window-scale unit (128 bytes at
    // the shift chosen for the 6 MiB autotuning maximum: the field rounds down).
    let queued = p.server().recv_queue_len();
    assert!(
        (16 * 1024 - 127..=16 * 1024).contains(&queued),
        "queued {queued}"
    );
    assert_eq!(p.client.state(), State::Established);
    let mut got = 0usize;
    let mut buf = vec![0u8; 8192];
    for _ in 0..100_000 {
        if sent < data.len() {
            sent += p.client.send(&data[sent..]).unwrap_or(0);
        }
        got += drain_into(p.server(), &mut buf, |_| {}).0;
        if got == data.len() {
            break;
        }
        assert!(p.step());
    }
    assert_eq!(got, data.len());
}

#[test]
fn rfc1122_4_2_3_6_keepalive_keeps_idle_connection_up_and_detects_dead_peer() {
    let ka = KeepaliveConfig {
        idle: secs(60),
        interval: secs(5),
        count: 3,
    };
    let cfg = TcpConfig {
        keepalive: Some(ka),
        ..TcpConfig::default()
    };
    let mut p = pair(&cfg);
    let until = p.now + secs(3600);
    while p.now < until {
        assert!(p.step());
    }
    assert_eq!(p.client.state(), State::Established);
    assert!(p.client.stats().keepalive_probes >= 50);
    // The server vanishes: nothing comes back any more.
    p.server = None;
    p.s2c.clear();
    p.drive_until(10_000, secs(100_000), |p| p.client.state() == State::Closed);
    assert_eq!(p.client.error(), Some(TcpError::TimedOut));
}

#[test]
fn request_response_with_delayed_ack_and_nagle_completes_promptly() {
    let mut p = pair(&TcpConfig::default());
    let mut buf = [0u8; 1024];
    for round in 0..50u32 {
        p.client
            .send(format!("GET /{round}\r\n").as_bytes())
            .unwrap();
        p.drive_until(1000, secs(3600), |p| {
            p.server.as_ref().is_some_and(|s| s.recv_queue_len() > 0)
        });
        let n = p.server().recv(&mut buf).unwrap();
        assert!(n > 0);
        p.server().send(b"200 OK\r\n").unwrap();
        p.drive_until(1000, secs(3600), |p| p.client.recv_queue_len() > 0);
        assert_eq!(p.client.recv(&mut buf).unwrap(), 8);
    }
    // 50 round trips of 20 ms each, plus the handshake: no 40 ms delayed-ACK stalls per round.
    assert!(
        p.now < tcp_support::script::ms(50 * 20 + 100),
        "took {:?}",
        p.now
    );
    assert_eq!(p.client.stats().retransmits, 0);
    let srtt = p.client.stats().srtt;
    assert!(
        srtt >= Duration::from_millis(19) && srtt <= Duration::from_millis(25),
        "srtt {srtt:?}"
    );
}

#[test]
fn rfc5961_spoofed_resets_with_guessed_sequence_do_not_kill_connection() {
    use surge_stack::wire::{TcpFlags, TcpRepr};
    let mut p = pair(&TcpConfig::default());
    let t = p.client.tuple();
    // An off-path attacker spraying RSTs across the window (CVE-2004-0230 style).
    for i in 0..2000u32 {
        let rst = TcpRepr {
            src_port: t.remote_port,
            dst_port: t.local_port,
            seq_number: tcp_support::pair::SERVER_ISS.wrapping_add(2 + i * 37),
            flags: TcpFlags::RST,
            ..TcpRepr::default()
        };
        let now = p.now;
        p.client.handle_segment(now, &rst, &[]);
    }
    assert_eq!(p.client.state(), State::Established);
    assert!(p.client.stats().challenge_acks <= 10);
    p.client.send(b"still alive").unwrap();
    p.drive_until(1000, secs(10), |p| {
        p.server.as_ref().is_some_and(|s| s.recv_queue_len() == 11)
    });
}
