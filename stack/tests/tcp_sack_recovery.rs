//! SACK-based loss recovery against a scripted SACK peer: the scoreboard (RFC 2018, RFC 2883),
//! RACK-TLP (RFC 8985), RFC 6675 recovery with PRR (RFC 6937) and F-RTO (RFC 5682).

mod tcp_support;

use surge_stack::tcp::{LossRecovery, TcpConfig};
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, Seg, seg};

const MSS: u32 = 1460;
const D: u32 = LOCAL_ISS + 1;

/// SACK on, timestamps and window scaling off (RTT from the timed segment, raw windows).
fn cfg() -> TcpConfig {
    TcpConfig {
        timestamps: false,
        window_scaling: false,
        ..TcpConfig::default()
    }
}

/// Established at 100 ms with a SACK-permitted peer (SRTT 100 ms, RTO 300 ms).
fn established(cfg: &TcpConfig) -> Script {
    Script::established_with(
        cfg,
        seg("S.")
            .seq(PEER_ISS)
            .ack(LOCAL_ISS + 1)
            .win(65535)
            .mss(1460)
            .sack_perm(true),
    )
}

fn ack(n: u32) -> Seg {
    seg(".").seq(PEER_ISS + 1).ack(n)
}

/// Segment `i`'s `[start, end)`.
fn block(i: u32) -> (u32, u32) {
    (D + i * MSS, D + (i + 1) * MSS)
}

/// Ten segments out at 200 ms; the first acknowledged at 300 ms.
fn ten_sent(cfg: &TcpConfig) -> Script {
    let mut s = established(cfg);
    s.send(200, &[7u8; 10 * 1460]);
    for i in 0..10 {
        s.expect(200, seg(".").seq(D + i * MSS).len(1460));
    }
    s.inject(300, ack(D + MSS));
    s.expect_none();
    s
}

#[test]
fn rfc6675_linux_dup_acks_with_sack_and_growing_window_trigger_recovery() {
    let mut s = ten_sent(&cfg());
    // Segment 1 is lost. Linux's duplicates carry SACK blocks and a window that grows on
    // each: RFC 5681's strict test never counts them; SACK-based recovery must.
    let (l, _) = block(2);
    for (k, t) in [301u64, 302].into_iter().enumerate() {
        let r = block(2 + k as u32).1;
        s.inject(t, ack(D + MSS).win(60_000 + 100 * k as u16).sack(&[(l, r)]));
        s.expect_none();
    }
    // The third SACKed segment: RACK's reordering window drops to zero (RFC 8985 §6.2 step 4,
    // DupThresh), segment 1 is lost and is retransmitted at once.
    s.inject(303, ack(D + MSS).win(60_200).sack(&[(l, block(4).1)]));
    s.expect(303, seg(".").seq(D + MSS).len(1460));
    s.expect_none();
    let st = s.tcb.stats();
    assert_eq!(st.dup_acks, 3, "each newly SACKing ACK is a duplicate");
    assert_eq!(st.fast_retransmits, 1);
    assert_eq!(st.lost_segments, 1);
    assert_eq!(st.retransmits, 1);
    // The repair arrives: everything acknowledged, recovery over, no timeout on the way.
    s.inject(400, ack(D + 10 * MSS));
    s.expect_none_until(2000);
    let st = s.tcb.stats();
    assert_eq!(st.rto_expirations, 0);
    assert_eq!(st.retransmits, 1);
    assert!(
        st.cwnd >= st.ssthresh,
        "cwnd back at ssthresh after recovery: {st:?}"
    );
}

#[test]
fn rfc6675_several_holes_are_repaired_in_one_round_trip() {
    let mut s = ten_sent(&cfg());
    // Segments 1, 3 and 5 lost; 2, 4, 6..9 arrive.
    let sacks = [
        vec![block(2)],
        vec![block(4), block(2)],
        vec![(block(6).0, block(6).1), block(4), block(2)],
        vec![(block(6).0, block(7).1), block(4), block(2)],
        vec![(block(6).0, block(8).1), block(4), block(2)],
    ];
    for (k, b) in sacks.iter().enumerate() {
        s.inject(301 + k as u64, ack(D + MSS).sack(b));
    }
    let mut resent = Vec::new();
    while s.pending() > 0 {
        let (r, p) = s.expect_next();
        assert_eq!(p.len(), 1460);
        resent.push((r.seq_number - D) / MSS);
    }
    assert_eq!(
        resent,
        vec![1, 3, 5],
        "each hole once, in order, nothing SACKed"
    );
    assert_eq!(s.tcb.stats().fast_retransmits, 1, "one recovery episode");
}

#[test]
fn rfc8985_6_reordering_within_the_window_is_not_retransmitted() {
    let mut s = ten_sent(&cfg());
    // Segment 2 overtakes segment 1; segment 1 comes 5 ms later (reo_wnd = min_RTT / 4).
    s.inject(301, ack(D + MSS).sack(&[block(2)]));
    s.expect_none();
    s.inject(306, ack(D + 3 * MSS));
    s.inject(320, ack(D + 10 * MSS));
    s.expect_none_until(1000);
    let st = s.tcb.stats();
    assert_eq!(st.retransmits, 0, "{st:?}");
    assert_eq!(st.fast_retransmits, 0);
}

#[test]
fn rfc8985_6_2_reordering_timer_marks_the_loss_without_more_acks() {
    let mut s = ten_sent(&cfg());
    // Only one SACKed segment and then silence: the reordering timer (RTT + min_RTT / 4
    // after segment 1 was sent) declares the loss long before the RTO.
    s.inject(301, ack(D + MSS).sack(&[block(2)]));
    s.expect_none();
    let (r, _) = s.expect_next();
    assert_eq!(r.seq_number, D + MSS);
    let at = s.now_ms();
    assert!((320..=330).contains(&at), "retransmitted at {at} ms");
    assert_eq!(s.tcb.stats().rto_expirations, 0);
}

#[test]
fn rfc8985_7_tail_loss_probe_then_rack_repairs_the_tail() {
    let mut s = established(&cfg());
    s.send(200, &[1u8; 1460]);
    s.expect(200, seg(".").seq(D).len(1460));
    s.inject(300, ack(D + MSS));
    // Three segments; all but the first are lost at the tail: no SACK ever arrives for them.
    s.send(300, &[2u8; 3 * 1460]);
    for i in 1..4 {
        s.expect(300, seg(".").seq(D + i * MSS).len(1460));
    }
    s.inject(400, ack(D + 2 * MSS));
    // PTO = 2 * SRTT (+ 2 ms slack, as Linux) after the last ACK: the last segment is probed.
    s.expect(602, seg(".").seq(D + 3 * MSS).len(1460));
    assert_eq!(s.tcb.stats().tlp_probes, 1);
    // The probe's SACK (one RTT later: a retransmission delivered faster than the minimum
    // RTT would be the original's, RFC 8985 §6.2 step 2) shows segment 2 missing: RACK marks
    // it and it goes out.
    s.inject(710, ack(D + 2 * MSS).sack(&[block(3)]));
    s.expect(710, seg(".").seq(D + 2 * MSS).len(1460));
    s.inject(810, ack(D + 4 * MSS));
    s.expect_none_until(3000);
    let st = s.tcb.stats();
    assert_eq!(
        st.rto_expirations, 0,
        "the probe avoided the timeout: {st:?}"
    );
    assert_eq!(st.retransmits, 2);
}

#[test]
fn rfc8985_7_tail_loss_probe_sends_new_data_when_it_can() {
    let mut s = established(&TcpConfig {
        initial_window: 2,
        ..cfg()
    });
    s.send(200, &[3u8; 3 * 1460]);
    s.expect(200, seg(".").seq(D).len(1460));
    s.expect(200, seg(".").seq(D + MSS).len(1460));
    s.expect_none();
    // No ACK at all: after PTO = 2 * SRTT + 2 ms the probe is the third (new) segment,
    // beyond cwnd.
    s.expect(402, seg(".").seq(D + 2 * MSS).len(1460));
    assert_eq!(s.tcb.stats().retransmits, 0);
    assert_eq!(s.tcb.stats().tlp_probes, 1);
}

#[test]
fn rfc5682_frto_detects_a_spurious_timeout_and_undoes_it() {
    let mut s = established(&cfg());
    s.send(200, &[5u8; 20 * 1460]);
    for i in 0..10 {
        s.expect(200, seg(".").seq(D + i * MSS).len(1460));
    }
    // A long delay spike: the probe goes out, then the RTO fires.
    let (probe, _) = s.expect_next();
    assert_eq!(probe.seq_number, D + 10 * MSS, "TLP sends new data first");
    let (rto, _) = s.expect_next();
    assert_eq!(rto.seq_number, D, "RTO retransmits the first segment");
    assert_eq!(s.tcb.stats().rto_expirations, 1);
    let t = s.now_ms();
    // The originals were only delayed: their ACKs arrive. F-RTO sends new data...
    s.inject(t + 5, ack(D + 2 * MSS));
    let (a, _) = s.expect_next();
    assert_eq!(
        a.seq_number,
        D + 11 * MSS,
        "F-RTO step 2b: new data, not retransmissions"
    );
    // ...and the next ACK acknowledges data never retransmitted: spurious (step 3b).
    s.inject(t + 6, ack(D + 5 * MSS));
    let st = s.tcb.stats();
    assert_eq!(st.spurious_rtos, 1, "{st:?}");
    assert!(st.cwnd >= 10 * MSS, "window restored: {st:?}");
    // Nothing below the ACK point is retransmitted again.
    while s.pending() > 0 {
        let (r, _) = s.expect_next();
        assert!(
            r.seq_number >= D + 11 * MSS,
            "retransmitted {r:?} after the undo"
        );
    }
}

#[test]
fn rfc5682_frto_real_loss_continues_recovery() {
    let mut s = established(&cfg());
    s.send(200, &[5u8; 20 * 1460]);
    for i in 0..10 {
        s.expect(200, seg(".").seq(D + i * MSS).len(1460));
    }
    let _probe = s.expect_next();
    let _rto = s.expect_next();
    let t = s.now_ms();
    // Only the retransmission got through; the rest of the window is lost.
    s.inject(t + 100, ack(D + MSS));
    for i in 11..13 {
        s.expect(t + 100, seg(".").seq(D + i * MSS).len(1460));
    }
    s.expect_none();
    // A duplicate ACK: the loss was real; retransmissions continue from segment 1.
    s.inject(t + 101, ack(D + MSS).sack(&[(D + 11 * MSS, D + 12 * MSS)]));
    assert_eq!(s.tcb.stats().spurious_rtos, 0);
    let (r, _) = s.expect_next();
    assert_eq!(r.seq_number, D + MSS);
}

#[test]
fn rfc2018_hostile_sack_blocks_are_rejected_and_trigger_nothing() {
    let mut s = ten_sent(&cfg());
    let mut x = 0x1234_5678u32;
    for k in 0..5000u32 {
        // xorshift: tiny, reversed, out-of-window, wrapped and duplicated blocks.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let l = D + MSS + x % (12 * MSS);
        let blocks = match k % 5 {
            0 => vec![(l, l + 1), (l + 3, l + 4), (l + 7, l + 8), (l + 11, l + 12)],
            1 => vec![(l + 100, l)],
            2 => vec![(l, l.wrapping_add(0x8000_0000))],
            3 => vec![(x, x.wrapping_add(7)); 4],
            _ => vec![(D + 20 * MSS, D + 30 * MSS)],
        };
        s.inject(301, ack(D + MSS).sack(&blocks));
    }
    let st = s.tcb.stats();
    assert!(st.sack_blocks_rejected > 4000, "{st:?}");
    // No block named a whole segment: nothing counts as delivered, nothing as lost.
    assert_eq!(st.retransmits, 0, "{st:?}");
    assert_eq!(st.lost_segments, 0);
    // An honest ACK still completes the transfer.
    s.inject(400, ack(D + 10 * MSS));
    s.expect_none_until(2000);
    assert_eq!(s.tcb.send_queue_len(), 0);
}

#[test]
fn newreno_per_socket_ignores_sack_and_waits_for_strict_duplicates() {
    let mut s = ten_sent(&TcpConfig {
        loss_recovery: LossRecovery::NewReno,
        ..cfg()
    });
    // The same Linux-style duplicates as above: with NewReno they are not duplicates
    // (RFC 5681 §2: the window changed), so only the RTO repairs the loss.
    for (k, t) in [301u64, 302, 303].into_iter().enumerate() {
        let r = block(2 + k as u32).1;
        s.inject(
            t,
            ack(D + MSS)
                .win(60_000 + 100 * k as u16)
                .sack(&[(block(2).0, r)]),
        );
    }
    s.expect_none();
    let (r, _) = s.expect_next();
    assert_eq!(r.seq_number, D + MSS);
    assert_eq!(s.tcb.stats().rto_expirations, 1);
    assert_eq!(s.tcb.stats().tlp_probes, 0);
}

#[test]
fn rfc3708_dsack_of_every_retransmission_undoes_the_recovery() {
    let mut s = ten_sent(&cfg());
    let before = s.tcb.stats().cwnd;
    // Segment 1 is only delayed: three SACKs make RACK retransmit it.
    for (k, t) in [301u64, 302, 303].into_iter().enumerate() {
        s.inject(t, ack(D + MSS).sack(&[(block(2).0, block(2 + k as u32).1)]));
    }
    s.expect(303, seg(".").seq(D + MSS).len(1460));
    assert!(s.tcb.stats().cwnd < before, "reduced on the loss");
    // The original arrives (everything acknowledged), then the retransmission as a duplicate.
    s.inject(304, ack(D + 10 * MSS));
    s.inject(403, ack(D + 10 * MSS).sack(&[block(1)]));
    let st = s.tcb.stats();
    assert_eq!(st.dsacks, 1);
    assert_eq!(st.spurious_recoveries, 1, "{st:?}");
    assert!(st.cwnd >= before, "window restored: {st:?}");
}

#[test]
fn rfc3708_dsack_undoes_a_spurious_timeout() {
    let mut s = established(&cfg());
    s.send(200, &[5u8; 10 * 1460]);
    for i in 0..10 {
        s.expect(200, seg(".").seq(D + i * MSS).len(1460));
    }
    // The receiver holds its ACK (a slow reader): the tail probe resends the last segment,
    // then the RTO the first...
    let (probe, _) = s.expect_next();
    assert_eq!(probe.seq_number, D + 9 * MSS);
    let (rto, _) = s.expect_next();
    assert_eq!(rto.seq_number, D);
    assert_eq!(s.tcb.stats().rto_expirations, 1);
    assert_eq!(s.tcb.stats().cwnd, MSS);
    // ...which the receiver reports as a duplicate, acknowledging everything.
    let t = s.now_ms();
    s.inject(t + 100, ack(D + 10 * MSS).sack(&[block(0)]));
    let st = s.tcb.stats();
    assert_eq!(st.spurious_rtos, 1, "{st:?}");
    assert!(st.cwnd >= 10 * MSS, "window restored: {st:?}");
}
