//! The half-open request record answers exactly as a `Tcb` in SYN-RECEIVED did (RFC
//! 9293 §3.10.7.4, RFC 5961, RFC 7323 PAWS, SYN-ACK retransmission), the connection it
//! becomes continues as the `Tcb` would have, and the SYN queue enforces the backlog.

mod tcp_support;

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use proptest::prelude::*;
use surge_stack::FourTuple;
use surge_stack::table::{ConnTableConfig, HashKey, Listener, SocketId};
use surge_stack::tcp::{
    AdmitError, RequestAction, RequestSock, RequestTimeout, State, SynQueue, Tcb, TcpConfig,
};
use surge_stack::time::Instant;
use surge_stack::wire::{TcpFlags, TcpRepr};
use tcp_support::{plain, server_tuple};

const ISS: u32 = 1000;
const IRS: u32 = 5000;

fn ms(t: u64) -> Instant {
    Instant::from_millis(t)
}

fn syn(ts: bool) -> TcpRepr {
    let mut s = TcpRepr {
        src_port: 40000,
        dst_port: 80,
        seq_number: IRS,
        flags: TcpFlags::SYN,
        window_len: 64240,
        ..TcpRepr::default()
    };
    s.options.mss = Some(1460);
    if ts {
        s.options.window_scale = Some(7);
        s.options.sack_permitted = true;
        s.options.timestamp = Some((700, 0));
    }
    s
}

fn full() -> TcpConfig {
    TcpConfig::default()
}

fn drain(tcb: &mut Tcb, now: Instant) -> Vec<TcpRepr> {
    let mut buf = vec![0u8; 70_000];
    let mut out = Vec::new();
    while let Some(t) = tcb.poll_transmit(now, &mut buf) {
        out.push(t.repr);
    }
    out
}

fn seg(flags: TcpFlags, seq: u32, ack: u32, ts: Option<u32>) -> TcpRepr {
    let mut r = TcpRepr {
        src_port: 40000,
        dst_port: 80,
        seq_number: seq,
        ack_number: ack,
        flags,
        window_len: 502,
        ..TcpRepr::default()
    };
    r.options.timestamp = ts.map(|v| (v, 0));
    r
}

#[test]
fn a_request_is_small_and_its_synack_is_the_tcbs() {
    let size = core::mem::size_of::<RequestSock>();
    assert!(size <= 96, "RequestSock is {size} bytes");
    for (cfg, ts) in [(plain(), false), (full(), true), (full(), false)] {
        let s = syn(ts);
        let mut tcb = Tcb::accept_syn(server_tuple(), &s, ISS, ms(0), &cfg);
        let expected = drain(&mut tcb, ms(0));
        let req = RequestSock::new(server_tuple(), SocketId(1), &s, ISS, ms(0), &cfg);
        assert_eq!(vec![req.synack(ms(0), &cfg)], expected);
        assert_eq!(Some(req.deadline()), tcb.poll_at());
    }
}

#[test]
fn rfc9293_retransmitted_syn_gets_the_synack_again_and_timer_backs_off() {
    let cfg = plain();
    let mut req = RequestSock::new(server_tuple(), SocketId(1), &syn(false), ISS, ms(0), &cfg);
    match req.handle_segment(ms(500), &syn(false), 0, &cfg) {
        RequestAction::SynAck(r) => {
            assert_eq!((r.seq_number, r.ack_number), (ISS, IRS + 1));
            assert_eq!(r.flags, TcpFlags::SYN | TcpFlags::ACK);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        req.deadline(),
        ms(1500),
        "timer restarted at the same backoff"
    );
    assert_eq!(req.handle_timeout(ms(1499), &cfg), RequestTimeout::NotYet);
    let mut at = 1500;
    for n in 1..=cfg.synack_retries {
        assert!(matches!(
            req.handle_timeout(ms(at), &cfg),
            RequestTimeout::Retransmit(_)
        ));
        assert_eq!(req.retransmits(), n);
        at += 1000 << n;
        assert_eq!(req.deadline(), ms(at));
    }
    assert_eq!(req.handle_timeout(ms(at), &cfg), RequestTimeout::Expired);
}

#[test]
fn rfc9293_rst_in_syn_received_aborts_only_at_rcv_nxt() {
    let cfg = plain();
    let mut req = RequestSock::new(server_tuple(), SocketId(1), &syn(false), ISS, ms(0), &cfg);
    assert!(matches!(
        req.handle_segment(ms(10), &seg(TcpFlags::RST, IRS + 100, 0, None), 0, &cfg),
        RequestAction::Ack(_)
    ));
    assert_eq!(
        req.handle_segment(ms(10), &seg(TcpFlags::RST, IRS + 100_000, 0, None), 0, &cfg),
        RequestAction::Drop
    );
    assert_eq!(
        req.handle_segment(ms(10), &seg(TcpFlags::RST, IRS + 1, 0, None), 0, &cfg),
        RequestAction::Aborted
    );
}

#[test]
fn rfc9293_unacceptable_ack_in_syn_received_gets_rst_and_right_ack_completes() {
    let cfg = plain();
    let mut req = RequestSock::new(server_tuple(), SocketId(1), &syn(false), ISS, ms(0), &cfg);
    match req.handle_segment(ms(10), &seg(TcpFlags::ACK, IRS + 1, ISS + 7, None), 0, &cfg) {
        RequestAction::Reset(rst) => {
            assert_eq!(rst.seq_number, ISS + 7);
            assert_eq!(rst.flags, TcpFlags::RST);
        }
        other => panic!("{other:?}"),
    }
    let ack = seg(TcpFlags::ACK, IRS + 1, ISS + 1, None);
    assert_eq!(
        req.handle_segment(ms(20), &ack, 0, &cfg),
        RequestAction::Complete
    );
    let mut tcb = Tcb::from_request(&req, ms(20), &cfg);
    tcb.handle_segment(ms(20), &ack, &[]);
    assert_eq!(tcb.state(), State::Established);
    assert!(drain(&mut tcb, ms(20)).is_empty());
    assert_eq!(tcb.send(b"hello"), Ok(5));
    let out = drain(&mut tcb, ms(21));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].seq_number, ISS + 1);
}

fn listener(backlog: u32) -> Listener {
    Listener {
        id: SocketId(7),
        local: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80),
        accept_backlog: backlog,
        syn_backlog: backlog,
        reuse_port: false,
        owner: 0,
    }
}

fn tuple(port: u16) -> FourTuple {
    FourTuple::new(
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80),
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), port),
    )
}

#[test]
fn backlog_overflow_refuses_and_counts_and_completion_makes_room() {
    let cfg = plain();
    let l = listener(4);
    let mut q = SynQueue::new(ConnTableConfig::entries(1 << 20), HashKey::new(1, 2)).unwrap();
    // Linux `inet_csk_reqsk_queue_is_full`: pending > backlog, so backlog + 1 fit.
    for port in 1..=5 {
        let mut s = syn(false);
        s.src_port = port;
        q.admit_for(&l, tuple(port), &s, ISS, ms(0), &cfg).unwrap();
    }
    assert_eq!(q.pending(l.id), 5);
    let mut s = syn(false);
    s.src_port = 6;
    assert_eq!(
        q.admit_for(&l, tuple(6), &s, ISS, ms(0), &cfg),
        Err(AdmitError::QueueFull)
    );
    assert_eq!(q.counters.overflow, 1);
    // A retransmitted SYN of an admitted request is no new admission.
    let mut s1 = syn(false);
    s1.src_port = 1;
    assert_eq!(
        q.admit_for(&l, tuple(1), &s1, ISS, ms(0), &cfg),
        Err(AdmitError::QueueFull)
    );
    // The handshake of port 1 completes: the record comes back and the slot frees up.
    let mut ack = seg(TcpFlags::ACK, IRS + 1, ISS + 1, None);
    ack.src_port = 1;
    let (action, req) = q.handle_segment(&tuple(1), ms(10), &ack, 0, &cfg).unwrap();
    assert_eq!(action, RequestAction::Complete);
    assert_eq!(req.unwrap().tuple(), tuple(1));
    assert_eq!(q.pending(l.id), 4);
    q.admit_for(&l, tuple(6), &s, ISS, ms(10), &cfg).unwrap();
    // Timers: everyone's SYN-ACK is due at 1 s, then 3 s, ... until they expire.
    let mut sent = 0;
    assert_eq!(q.poll_at(), Some(ms(1000)));
    q.handle_timeouts(ms(1000), 100, |_| plain(), |_, _| sent += 1);
    assert_eq!(sent, 4, "the four admitted at 0 ms");
    let mut t = 1000;
    while !q.is_empty() {
        t += 1000;
        q.handle_timeouts(ms(t), 100, |_| plain(), |_, _| sent += 1);
        assert!(t < 200_000);
    }
    assert_eq!(q.counters.expired, 5);
    assert_eq!(q.pending(l.id), 0);
    assert_eq!(sent, 5 * cfg.synack_retries as usize);
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
    /// Under any segments and timeouts the record says what the `Tcb` in SYN-RECEIVED
    /// did, and once complete, `Tcb::from_request` continues exactly as the `Tcb`.
    #[test]
    fn record_answers_as_the_tcb_did(
        options: bool,
        steps in proptest::collection::vec((
            0u8..8,
            prop_oneof![Just(-1i64), Just(0), Just(1), Just(64_000), Just(1 << 31)],
            prop_oneof![Just(-1i64), Just(0), Just(1), Just(1000)],
            prop_oneof![Just(0usize), Just(10)],
            prop_oneof![Just(None), Just(Some(-1i64)), Just(Some(0)), Just(Some(5))],
            0u64..1500,
        ), 1..25),
    ) {
        let cfg = if options { full() } else { plain() };
        let s = syn(options);
        let mut tcb = Tcb::accept_syn(server_tuple(), &s, ISS, ms(0), &cfg);
        drain(&mut tcb, ms(0));
        let mut req = RequestSock::new(server_tuple(), SocketId(1), &s, ISS, ms(0), &cfg);
        let mut now = ms(0);
        let payload = [0x5au8; 10];
        for (f, dseq, dack, len, dts, dt) in steps {
            now += Duration::from_millis(dt);
            if tcb.poll_at().is_some_and(|d| d <= now) {
                tcb.handle_timeout(now);
                let expect = drain(&mut tcb, now);
                match req.handle_timeout(now, &cfg) {
                    RequestTimeout::Retransmit(r) => prop_assert_eq!(expect, vec![r]),
                    RequestTimeout::Expired => {
                        prop_assert_eq!(tcb.state(), State::Closed);
                        return Ok(());
                    }
                    RequestTimeout::NotYet => prop_assert!(false, "record timer not due"),
                }
            }
            prop_assert_eq!(tcb.poll_at(), Some(req.deadline()));
            let ts = dts.map(|d| (700 + d + now.total_millis() as i64 / 100) as u32);
            let seg = seg(
                flags_of(f),
                (i64::from(IRS) + 1 + dseq) as u32,
                (i64::from(ISS) + 1 + dack) as u32,
                ts.filter(|_| options),
            );
            let action = req.handle_segment(now, &seg, len, &cfg);
            tcb.handle_segment(now, &seg, &payload[..len]);
            let out = drain(&mut tcb, now);
            match action {
                RequestAction::Drop => prop_assert!(out.is_empty(), "{:?}: {:?}", seg, out),
                RequestAction::SynAck(r) | RequestAction::Ack(r) | RequestAction::Reset(r) => {
                    prop_assert_eq!(out, vec![r], "after {:?}", seg);
                }
                RequestAction::Aborted => {
                    prop_assert!(out.is_empty());
                    prop_assert_eq!(tcb.state(), State::Closed);
                    return Ok(());
                }
                RequestAction::Complete => {
                    prop_assert!(tcb.is_established(), "{:?} -> {:?}", seg, tcb.state());
                    let mut child = Tcb::from_request(&req, now, &cfg);
                    child.handle_segment(now, &seg, &payload[..len]);
                    prop_assert_eq!(drain(&mut child, now), out);
                    prop_assert_eq!(child.state(), tcb.state());
                    prop_assert_eq!(child.poll_at(), tcb.poll_at());
                    prop_assert_eq!(child.send_mss(), tcb.send_mss());
                    prop_assert_eq!(child.recv_queue_len(), tcb.recv_queue_len());
                    let later = now + Duration::from_millis(50);
                    prop_assert_eq!(child.send(b"abc"), tcb.send(b"abc"));
                    prop_assert_eq!(drain(&mut child, later), drain(&mut tcb, later));
                    return Ok(());
                }
            }
            prop_assert_eq!(tcb.state(), State::SynReceived);
        }
    }
}
