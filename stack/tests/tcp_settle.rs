//! `Tcb::settle_quiet_established`, the engine's settling after input, against its
//! definition: an ESTABLISHED connection that `may_transmit` nothing gives its drained
//! rings back and reports `poll_at`; any other connection is left alone (`None`).
//! Checked after every delivered segment and timer of request/response exchanges over
//! lossy, reordering links, through the handshake and the close, at both ends.

mod tcp_support;

use std::time::Duration;
use surge_stack::tcp::{State, Tcb, TcpConfig};
use tcp_support::pair::{LinkConfig, Pair};

/// Tallies of the two answers, so that a test can tell both were checked.
#[derive(Default)]
struct Seen {
    quiet: u32,
    owing: u32,
}

/// Asks `tcb` to settle and compares the answer with `may_transmit` and `poll_at`.
fn check(tcb: &mut Tcb, seen: &mut Seen) {
    let quiet = tcb.state() == State::Established && !tcb.may_transmit();
    let due = tcb.poll_at();
    let held = tcb.buffer_bytes();
    let got = tcb.settle_quiet_established();
    assert_eq!(got, quiet.then_some(due), "state {:?}", tcb.state());
    if quiet {
        seen.quiet += 1;
    } else {
        seen.owing += 1;
        assert_eq!(
            tcb.buffer_bytes(),
            held,
            "nothing released when output is owed"
        );
    }
    // Releasing storage changes no deadline.
    assert_eq!(tcb.poll_at(), due);
}

fn check_both(p: &mut Pair, seen: &mut Seen) {
    check(&mut p.client, seen);
    if let Some(s) = &mut p.server {
        check(s, seen);
    }
}

/// `rounds` exchanges of `size` bytes each way, then a close from both ends, checking
/// after every input and every timer.
fn exchange(cfg: &TcpConfig, link: LinkConfig, seed: u64, rounds: u32, size: usize) -> Seen {
    let mut p = Pair::new(cfg, cfg, link, seed);
    let mut seen = Seen::default();
    let request = vec![0x5a; size];
    let mut buf = vec![0; 64 * 1024];
    let (mut asked, mut answered) = (0u32, 0u32);
    let (mut pending_request, mut pending_answer) = (0usize, 0usize);
    for _ in 0..200_000 {
        p.flush();
        let delivered = p.deliver();
        if !delivered && !p.step() {
            break;
        }
        // Input (or timers) ran, output not yet polled: the point the engine settles at.
        check_both(&mut p, &mut seen);
        if p.client.is_established() && pending_request == 0 && asked == answered {
            if asked == rounds {
                p.client.close();
            } else {
                asked += 1;
                pending_request = size;
            }
        }
        if pending_request > 0 {
            let n = p.client.send(&request[..pending_request]).unwrap_or(0);
            pending_request -= n;
        }
        if let Some(s) = &mut p.server {
            if let Ok(n) = s.recv(&mut buf) {
                pending_answer += n;
            }
            if pending_answer > 0 {
                let n = s.send(&request[..pending_answer.min(size)]).unwrap_or(0);
                pending_answer -= n;
            }
            if s.state() == State::CloseWait {
                s.close();
            }
        }
        let mut got = 0;
        while let Ok(n) = p.client.recv(&mut buf) {
            if n == 0 {
                break;
            }
            got += n;
        }
        if got > 0 && asked > answered {
            answered += 1;
        }
    }
    assert_eq!(answered, rounds, "every request was answered");
    seen
}

#[test]
fn settles_as_may_transmit_and_poll_at_say_over_a_clean_link() {
    let link = LinkConfig {
        delay: Duration::from_millis(1),
        ..LinkConfig::default()
    };
    let seen = exchange(&TcpConfig::default(), link, 1, 50, 64);
    assert!(
        seen.quiet > 0 && seen.owing > 0,
        "both answers checked: {} quiet, {} owing",
        seen.quiet,
        seen.owing
    );
}

#[test]
fn settles_as_may_transmit_and_poll_at_say_over_lossy_links() {
    for seed in 0..8 {
        let link = LinkConfig {
            delay: Duration::from_millis(5),
            loss: 0.08,
            reorder: 0.2,
            reorder_delay: Duration::from_millis(4),
            duplicate: 0.05,
            ..LinkConfig::default()
        };
        let seen = exchange(&TcpConfig::default(), link, seed, 40, 3000);
        assert!(
            seen.quiet > 0 && seen.owing > 0,
            "seed {seed}: both answers checked: {} quiet, {} owing",
            seen.quiet,
            seen.owing
        );
    }
}
