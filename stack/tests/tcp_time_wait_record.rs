//! The compact TIME-WAIT record answers exactly as the `Tcb` did in TIME-WAIT
//! (RFC 9293 §3.10.7.4, RFC 6191, RFC 7323 PAWS, RFC 5961), and its table expires
//! records in order without scanning.

mod tcp_support;

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use proptest::prelude::*;
use surge_stack::FourTuple;
use surge_stack::table::{ConnTableConfig, HashKey};
use surge_stack::tcp::{State, TcpConfig, TimeWait, TimeWaitAck, TimeWaitAction, TimeWaitTable};
use surge_stack::time::Instant;
use surge_stack::wire::{TcpFlags, TcpRepr};
use tcp_support::plain;
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, ms, seg};

const D: u32 = LOCAL_ISS + 1;
const P: u32 = PEER_ISS + 1;

fn ts_cfg() -> TcpConfig {
    TcpConfig {
        timestamps: true,
        ..plain()
    }
}

/// A connection closed actively and now in TIME-WAIT at t = 300 ms (peer TSval 750
/// when timestamps are on).
fn time_wait(cfg: &TcpConfig) -> Script {
    let ts = cfg.timestamps;
    let synack = seg("S.").seq(PEER_ISS).ack(D).mss(1460);
    let mut s = Script::established_with(cfg, if ts { synack.ts(700, 0) } else { synack });
    s.call(200, |t| t.close());
    s.expect(200, seg("F.").seq(D).ack(P));
    let fin = seg("F.").seq(P).ack(D + 1);
    s.inject(300, if ts { fin.ts(750, 200) } else { fin });
    s.expect(300, seg(".").seq(D + 1).ack(P + 1));
    assert_eq!(s.tcb.state(), State::TimeWait);
    s
}

fn record(s: &Script) -> TimeWait {
    TimeWait::from_tcb(&s.tcb, s.now).expect("in TIME-WAIT")
}

fn repr(flags: TcpFlags, seq: u32, ack: u32, ts: Option<u32>) -> TcpRepr {
    let mut r = TcpRepr {
        src_port: 80,
        dst_port: 40000,
        seq_number: seq,
        ack_number: ack,
        flags,
        window_len: 1000,
        ..TcpRepr::default()
    };
    r.options.timestamp = ts.map(|v| (v, 0));
    r
}

const TW: Duration = Duration::from_secs(60);

#[test]
fn a_record_is_small_and_only_exists_for_time_wait() {
    let size = core::mem::size_of::<TimeWait>();
    assert!(size <= 96, "TimeWait is {size} bytes");
    let s = Script::established(&plain());
    assert!(TimeWait::from_tcb(&s.tcb, s.now).is_none());
    let s = time_wait(&plain());
    let r = record(&s);
    assert_eq!((r.snd_nxt(), r.rcv_nxt()), (D + 1, P + 1));
    assert_eq!(r.expiry(), ms(300) + TW);
}

#[test]
fn rfc9293_3_10_7_4_retransmitted_fin_is_acked_and_restarts_2msl() {
    let s = time_wait(&plain());
    let mut r = record(&s);
    let fin = repr(TcpFlags::FIN | TcpFlags::ACK, P, D + 1, None);
    match r.handle_segment(ms(10_000), &fin, 0, TW) {
        TimeWaitAction::Ack(ack, TimeWaitAck::RetransmittedFin) => {
            assert_eq!((ack.seq_number, ack.ack_number), (D + 1, P + 1));
            assert_eq!(ack.flags, TcpFlags::ACK);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.expiry(), ms(10_000) + TW);
}

#[test]
fn rfc6191_syn_with_newer_timestamp_reopens_and_older_one_is_acked() {
    let s = time_wait(&ts_cfg());
    let mut r = record(&s);
    // Older timestamp, sequence number beyond: PAWS says no (RFC 6191 §2 uses the TS).
    let old = repr(TcpFlags::SYN, P + 100, 0, Some(749));
    assert!(!r.accepts_syn(&old));
    match r.handle_segment(ms(400), &old, 0, TW) {
        TimeWaitAction::Ack(_, TimeWaitAck::Paws) => {}
        other => panic!("{other:?}"),
    }
    // Newer timestamp, even with a lower sequence number: reopen above our old snd_nxt.
    let new = repr(TcpFlags::SYN, 1, 0, Some(751));
    assert_eq!(
        r.handle_segment(ms(500), &new, 0, TW),
        TimeWaitAction::Reopen {
            iss: D + 1 + 65535 + 2
        }
    );
}

#[test]
fn rfc6191_without_timestamps_the_sequence_number_decides() {
    let s = time_wait(&plain());
    let mut r = record(&s);
    assert!(r.accepts_syn(&repr(TcpFlags::SYN, P + 10, 0, None)));
    assert!(!r.accepts_syn(&repr(TcpFlags::SYN, P - 10, 0, None)));
    // Not reopening: answered with an ACK (RFC 5961 §4.2 / out of window).
    match r.handle_segment(ms(400), &repr(TcpFlags::SYN, P - 10, 0, None), 0, TW) {
        TimeWaitAction::Ack(ack, _) => assert_eq!(ack.ack_number, P + 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rfc7323_paws_rejects_old_timestamps_with_an_ack_echoing_ts_recent() {
    let s = time_wait(&ts_cfg());
    let mut r = record(&s);
    let old = repr(TcpFlags::ACK, P + 1, D + 1, Some(600));
    match r.handle_segment(ms(1_000), &old, 0, TW) {
        TimeWaitAction::Ack(ack, TimeWaitAck::Paws) => {
            assert_eq!(ack.options.timestamp, Some((1_000, 750)));
        }
        other => panic!("{other:?}"),
    }
    // A current one passes PAWS; a plain ACK in TIME-WAIT needs no answer.
    let fresh = repr(TcpFlags::ACK, P + 1, D + 1, Some(760));
    assert_eq!(
        r.handle_segment(ms(1_000), &fresh, 0, TW),
        TimeWaitAction::Drop
    );
}

#[test]
fn rfc9293_rst_at_rcv_nxt_ends_time_wait_elsewhere_challenge_ack() {
    let s = time_wait(&plain());
    let mut r = record(&s);
    match r.handle_segment(ms(400), &repr(TcpFlags::RST, P + 5, 0, None), 0, TW) {
        TimeWaitAction::Ack(_, TimeWaitAck::Challenge) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        r.handle_segment(ms(400), &repr(TcpFlags::RST, P + 1_000_000, 0, None), 0, TW),
        TimeWaitAction::Drop,
        "RST outside the window: silently dropped"
    );
    assert_eq!(
        r.handle_segment(ms(400), &repr(TcpFlags::RST, P + 1, 0, None), 0, TW),
        TimeWaitAction::Closed
    );
}

/// A segment from a small domain around the record's sequence numbers.
fn arbitrary_segment() -> impl Strategy<Value = (u8, i64, i64, usize, Option<i64>, u64)> {
    (
        0u8..8,
        prop_oneof![
            Just(-2i64),
            Just(-1),
            Just(0),
            Just(1),
            Just(100),
            Just(70_000),
            Just(1 << 31)
        ],
        prop_oneof![Just(-100_000i64), Just(-1), Just(0), Just(1)],
        prop_oneof![Just(0usize), Just(10)],
        prop_oneof![
            Just(None),
            Just(Some(-1i64)),
            Just(Some(0)),
            Just(Some(1)),
            Just(Some(1000))
        ],
        0u64..2_000,
    )
}

fn flags_of(n: u8) -> TcpFlags {
    [
        TcpFlags::ACK,
        TcpFlags::FIN | TcpFlags::ACK,
        TcpFlags::RST,
        TcpFlags::RST | TcpFlags::ACK,
        TcpFlags::SYN,
        TcpFlags::SYN | TcpFlags::ACK,
        TcpFlags::NONE,
        TcpFlags::PSH | TcpFlags::ACK,
    ][usize::from(n)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// The record's answer to any sequence of segments equals the full `Tcb`'s in
    /// TIME-WAIT: same segments out, same expiry, same end.
    #[test]
    fn record_answers_as_the_tcb_did(
        timestamps: bool,
        segs in proptest::collection::vec(arbitrary_segment(), 1..30),
    ) {
        let cfg = if timestamps { ts_cfg() } else { plain() };
        let mut s = time_wait(&cfg);
        let mut r = record(&s);
        let mut now = s.now;
        let mut buf = vec![0u8; 2000];
        let payload = [0x5au8; 10];
        for (f, dseq, dack, len, dts, dt) in segs {
            now += Duration::from_millis(dt);
            if now >= r.expiry() {
                break;
            }
            let ts = dts.map(|d| (i64::from(750u32) + d + now.total_millis() as i64 / 1000) as u32);
            let seg = repr(
                flags_of(f),
                (i64::from(r.rcv_nxt()) + dseq) as u32,
                (i64::from(r.snd_nxt()) + dack) as u32,
                ts.filter(|_| timestamps),
            );
            prop_assert_eq!(r.accepts_syn(&seg), s.tcb.time_wait_accepts_syn(&seg));
            if r.accepts_syn(&seg) {
                continue; // the engine hands it to the listener either way
            }
            let fin_seq = seg.seq_number.wrapping_add(len as u32);
            if seg.flags.contains(TcpFlags::FIN) && (fin_seq.wrapping_sub(r.rcv_nxt()) as i32) >= 0 {
                continue; // a second FIN: the record answers as Linux (see time_wait.rs)
            }
            s.tcb.handle_segment(now, &seg, &payload[..len]);
            let mut tcb_out = Vec::new();
            while let Some(t) = s.tcb.poll_transmit(now, &mut buf) {
                tcb_out.push(t.repr);
            }
            let action = r.handle_segment(now, &seg, len, cfg.time_wait);
            let record_out: Vec<TcpRepr> = match action {
                TimeWaitAction::Ack(ack, _) => vec![ack],
                _ => Vec::new(),
            };
            prop_assert_eq!(tcb_out.len(), record_out.len(), "after {:?}: {:?}", seg, action);
            for (a, b) in tcb_out.iter().zip(&record_out) {
                prop_assert_eq!(a, b);
            }
            if action == TimeWaitAction::Closed {
                prop_assert_eq!(s.tcb.state(), State::Closed);
                break;
            }
            prop_assert_eq!(s.tcb.state(), State::TimeWait);
            prop_assert_eq!(s.tcb.poll_at(), Some(r.expiry()));
        }
    }
}

#[test]
fn table_expires_in_order_only_what_is_due_and_requeues_a_restart() {
    let s = time_wait(&plain());
    let template = record(&s);
    let mut table =
        TimeWaitTable::new(ConnTableConfig::entries(10), HashKey::new(1, 2), TW).unwrap();
    table.insert(template).unwrap();
    assert_eq!(table.len(), 1);
    assert_eq!(table.poll_at(), Some(ms(300) + TW));
    // A duplicate insert is refused and counted.
    assert!(table.insert(template).is_err());
    assert_eq!(table.counters.refused, 1);
    // A retransmitted FIN at 10 s restarts it: the first deadline passes without expiry.
    let t = template.tuple();
    let fin = repr(TcpFlags::FIN | TcpFlags::ACK, P, D + 1, None);
    assert!(matches!(
        table.handle_segment(&t, ms(10_000), &fin, 0),
        Some(TimeWaitAction::Ack(_, TimeWaitAck::RetransmittedFin))
    ));
    let mut gone = Vec::new();
    assert_eq!(table.expire(ms(60_300), 100, |t| gone.push(t)), 1);
    assert!(
        gone.is_empty(),
        "restarted: not expired at the old deadline"
    );
    assert_eq!(table.len(), 1);
    assert_eq!(table.poll_at(), Some(ms(70_000)));
    assert_eq!(table.expire(ms(69_999), 100, |t| gone.push(t)), 0);
    assert_eq!(table.expire(ms(70_000), 100, |t| gone.push(t)), 1);
    assert_eq!(gone, vec![t]);
    assert!(table.is_empty());
    assert_eq!(table.counters.expired, 1);
    // No record: no answer (the engine treats the tuple as unknown).
    assert!(table.handle_segment(&t, ms(70_001), &fin, 0).is_none());
}

#[test]
fn table_of_many_records_expires_within_a_budget_per_call() {
    // Many TIME-WAIT connections, each from its own script with its own tuple.
    let mut table =
        TimeWaitTable::new(ConnTableConfig::entries(100_000), HashKey::new(3, 4), TW).unwrap();
    for port in 1..=3000u16 {
        let tcb = time_wait_on_port(port);
        table
            .insert(TimeWait::from_tcb(&tcb, ms(300)).unwrap())
            .unwrap();
    }
    assert_eq!(table.len(), 3000);
    let mut expired = 0;
    assert_eq!(table.expire(ms(60_299), 500, |_| expired += 1), 0);
    let mut calls = 0;
    while !table.is_empty() {
        let looked = table.expire(ms(60_300), 500, |_| expired += 1);
        assert!(looked <= 500);
        calls += 1;
        assert!(calls <= 6);
    }
    assert_eq!(expired, 3000);
    assert_eq!(table.poll_at(), None);
}

/// A `Tcb` in TIME-WAIT since 300 ms, closed like [`time_wait`]'s, with remote port `port`.
fn time_wait_on_port(port: u16) -> surge_stack::tcp::Tcb {
    let cfg = plain();
    let tuple = FourTuple::new(
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 40000),
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), port),
    );
    let mut tcb = surge_stack::tcp::Tcb::connect(tuple, LOCAL_ISS, Instant::ZERO, &cfg);
    let mut buf = vec![0u8; 2000];
    let mut drain = |tcb: &mut surge_stack::tcp::Tcb, now: Instant| {
        while tcb.poll_transmit(now, &mut buf).is_some() {}
    };
    drain(&mut tcb, ms(0));
    let mut synack = repr(TcpFlags::SYN | TcpFlags::ACK, PEER_ISS, D, None);
    synack.src_port = port;
    synack.dst_port = 40000;
    synack.options.mss = Some(1460);
    tcb.handle_segment(ms(100), &synack, &[]);
    drain(&mut tcb, ms(100));
    tcb.close();
    drain(&mut tcb, ms(200));
    let mut fin = repr(TcpFlags::FIN | TcpFlags::ACK, P, D + 1, None);
    fin.src_port = port;
    fin.dst_port = 40000;
    tcb.handle_segment(ms(300), &fin, &[]);
    drain(&mut tcb, ms(300));
    assert_eq!(tcb.state(), State::TimeWait);
    tcb
}
