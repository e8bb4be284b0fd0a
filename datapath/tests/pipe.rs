//! PipeDevice: delivery, impairments (seeded, deterministic) and no leaks.

use surge_datapath::{Burst, Device, Impairments, PipeConfig, PipeDevice};

/// Sends `count` frames of `len` bytes from `from`, each tagged with its index in bytes 0..4.
fn send(from: &mut PipeDevice, count: u32, len: usize) {
    let mut tx = Burst::new();
    for i in 0..count {
        let mut frame = from.alloc_tx().expect("free frame");
        let buf = from.frame_mut(&frame);
        buf[..len].fill(0xa5);
        buf[..4].copy_from_slice(&i.to_be_bytes());
        assert!(frame.set_len(len));
        tx.push(frame).expect("burst has room");
        if tx.remaining() == 0 {
            from.tx_burst(&mut tx);
            assert!(tx.is_empty());
        }
    }
    from.tx_burst(&mut tx);
    assert!(tx.is_empty());
}

/// Receives everything due at `now`, returning (tag, bytes) per frame, releasing each frame.
fn receive(to: &mut PipeDevice, now: u64) -> Vec<(u32, Vec<u8>)> {
    to.set_now(now);
    let mut rx = Burst::new();
    let mut got = Vec::new();
    for _ in 0..1000 {
        if to.rx_burst(&mut rx) == 0 {
            break;
        }
        for frame in rx.iter() {
            let bytes = to.frame(frame).to_vec();
            let tag = u32::from_be_bytes(bytes[..4].try_into().unwrap());
            got.push((tag, bytes));
        }
        to.release(&mut rx);
    }
    got
}

fn pipe(impairments: Impairments, seed: u64) -> (PipeDevice, PipeDevice) {
    PipeDevice::pair(&PipeConfig {
        impairments,
        seed,
        ..PipeConfig::default()
    })
    .unwrap()
}

#[test]
fn clean_link_delivers_everything_in_order_both_ways_without_leaks() {
    let (mut a, mut b) = pipe(Impairments::default(), 1);
    send(&mut a, 200, 60);
    send(&mut b, 50, 1514);
    let at_b = receive(&mut b, 0);
    let at_a = receive(&mut a, 0);
    assert_eq!(
        at_b.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        (0..200).collect::<Vec<_>>()
    );
    assert_eq!(at_a.len(), 50);
    assert!(at_a.iter().all(|(_, bytes)| bytes.len() == 1514));
    for dev in [&a, &b] {
        let acc = dev.accounting();
        assert!(acc.balanced(), "{acc:?}");
        assert_eq!(acc.held, 0);
        assert_eq!(acc.free, acc.total);
    }
    assert_eq!(a.stats().tx_packets, 200);
    assert_eq!(b.stats().rx_packets, 200);
    assert_eq!(b.stats().rx_bytes, 200 * 60);
}

#[test]
fn loss_is_seeded_and_deterministic() {
    let run = |seed| {
        let (mut a, mut b) = pipe(
            Impairments {
                loss: 0.3,
                ..Default::default()
            },
            seed,
        );
        send(&mut a, 400, 60);
        let tags: Vec<u32> = receive(&mut b, 0).into_iter().map(|(t, _)| t).collect();
        (tags, a.stats().link_drops)
    };
    let (first, drops) = run(7);
    let (again, _) = run(7);
    let (other, _) = run(8);
    assert_eq!(first, again, "same seed, same survivors");
    assert_ne!(first, other, "another seed, other survivors");
    assert_eq!(first.len() as u64 + drops, 400);
    assert!(
        (200..360).contains(&first.len()),
        "about 70% survive: {}",
        first.len()
    );
    assert!(
        first.windows(2).all(|w| w[0] < w[1]),
        "loss alone keeps order"
    );
}

#[test]
fn duplication_delivers_each_frame_twice() {
    let (mut a, mut b) = pipe(
        Impairments {
            duplicate: 1.0,
            ..Default::default()
        },
        3,
    );
    send(&mut a, 100, 60);
    let tags: Vec<u32> = receive(&mut b, 0).into_iter().map(|(t, _)| t).collect();
    assert_eq!(tags.len(), 200);
    for i in 0..100 {
        assert_eq!(tags.iter().filter(|&&t| t == i).count(), 2);
    }
}

#[test]
fn reordering_changes_order_but_loses_nothing() {
    let imp = Impairments {
        reorder: 0.2,
        reorder_delay_us: 50,
        delay_us: 10,
        ..Default::default()
    };
    let (mut a, mut b) = pipe(imp, 11);
    // One frame per virtual microsecond, so a held-back frame is overtaken.
    for t in 0..200u64 {
        a.set_now(t);
        send_tagged(&mut a, t as u32);
    }
    let tags: Vec<u32> = receive(&mut b, 1_000).into_iter().map(|(t, _)| t).collect();
    let mut sorted = tags.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..200).collect::<Vec<_>>());
    assert_ne!(tags, sorted, "some frames were overtaken");
}

/// Frames arrive earliest due first, ties in send order, whether their due times rise (the
/// link's FIFO) or fall back behind frames already queued (its heap).
#[test]
fn frames_arrive_by_due_time_then_send_order() {
    let imp = Impairments {
        delay_us: 10,
        ..Default::default()
    };
    let (mut a, mut b) = pipe(imp, 3);
    for (now, tag) in [
        (100, 0),
        (50, 1),
        (100, 2),
        (70, 3),
        (100, 4),
        (200, 5),
        (50, 6),
    ] {
        a.set_now(now);
        send_tagged(&mut a, tag);
    }
    assert_eq!(b.poll_at(), Some(60));
    assert_eq!(b.in_flight(), 7);
    let tags = |got: Vec<(u32, Vec<u8>)>| got.into_iter().map(|(t, _)| t).collect::<Vec<_>>();
    assert_eq!(tags(receive(&mut b, 60)), [1, 6]);
    assert_eq!(b.poll_at(), Some(80));
    assert_eq!(tags(receive(&mut b, 110)), [3, 0, 2, 4]);
    assert_eq!(tags(receive(&mut b, 1_000)), [5]);
    assert_eq!(b.in_flight(), 0);
}

fn send_tagged(from: &mut PipeDevice, tag: u32) {
    let mut tx = Burst::new();
    let mut frame = from.alloc_tx().unwrap();
    from.frame_mut(&frame)[..4].copy_from_slice(&tag.to_be_bytes());
    assert!(frame.set_len(60));
    tx.push(frame).unwrap();
    from.tx_burst(&mut tx);
}

#[test]
fn corruption_flips_exactly_one_bit() {
    let (mut a, mut b) = pipe(
        Impairments {
            corrupt: 1.0,
            ..Default::default()
        },
        5,
    );
    send(&mut a, 50, 100);
    let got = receive(&mut b, 0);
    assert_eq!(got.len(), 50);
    for (i, (_, bytes)) in got.iter().enumerate() {
        let mut expected = vec![0xa5; 100];
        expected[..4].copy_from_slice(&(i as u32).to_be_bytes());
        let flipped: u32 = bytes
            .iter()
            .zip(&expected)
            .map(|(x, y)| (x ^ y).count_ones())
            .sum();
        assert_eq!(flipped, 1, "frame {i}");
    }
}

#[test]
fn delay_holds_frames_until_virtual_time_reaches_them() {
    let (mut a, mut b) = pipe(
        Impairments {
            delay_us: 500,
            ..Default::default()
        },
        0,
    );
    a.set_now(1_000);
    send(&mut a, 3, 60);
    assert_eq!(b.poll_at(), Some(1_500));
    assert!(receive(&mut b, 1_499).is_empty());
    assert_eq!(b.in_flight(), 3);
    assert_eq!(receive(&mut b, 1_500).len(), 3);
    assert_eq!(b.poll_at(), None);
}

#[test]
fn runts_and_a_full_link_are_counted_not_leaked() {
    let config = PipeConfig {
        link_capacity: 4,
        ..PipeConfig::default()
    };
    let (mut a, mut b) = PipeDevice::pair(&config).unwrap();
    let mut tx = Burst::new();
    let mut runt = a.alloc_tx().unwrap();
    assert!(runt.set_len(10));
    tx.push(runt).unwrap();
    a.tx_burst(&mut tx);
    assert_eq!(a.stats().tx_bad_length, 1);
    send(&mut a, 10, 60);
    assert_eq!(a.stats().link_drops, 6);
    assert_eq!(receive(&mut b, 0).len(), 4);
    assert!(a.accounting().balanced() && a.accounting().held == 0);
    assert!(b.accounting().balanced() && b.accounting().held == 0);
}

#[test]
fn bad_probabilities_are_setup_errors() {
    let config = PipeConfig {
        impairments: Impairments {
            loss: 1.5,
            ..Default::default()
        },
        ..PipeConfig::default()
    };
    assert!(PipeDevice::pair(&config).is_err());
}

#[test]
fn oversized_frames_are_refused_by_set_len() {
    let (mut a, _b) = pipe(Impairments::default(), 0);
    let mut frame = a.alloc_tx().unwrap();
    assert!(!frame.set_len(a.caps().max_frame_len as usize + 1));
    a.release_one(frame);
    assert_eq!(a.accounting().held, 0);
}

/// RFC 1071 over `data`.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes a 14 + 20 + 8 + `payload_len` byte UDP frame whose checksum field holds
/// only the pseudo-header sum; returns its length and the pseudo-header.
fn write_partial_udp(buf: &mut [u8], payload_len: usize) -> (usize, [u8; 12]) {
    let udp_len = (8 + payload_len) as u16;
    let mut pseudo = [0u8; 12];
    pseudo[..4].copy_from_slice(&[198, 18, 0, 1]);
    pseudo[4..8].copy_from_slice(&[198, 18, 0, 2]);
    pseudo[9] = 17;
    pseudo[10..12].copy_from_slice(&udp_len.to_be_bytes());
    buf[..34].fill(0x11);
    buf[34..36].copy_from_slice(&4000u16.to_be_bytes());
    buf[36..38].copy_from_slice(&5000u16.to_be_bytes());
    buf[38..40].copy_from_slice(&udp_len.to_be_bytes());
    buf[40..42].copy_from_slice(&(!internet_checksum(&pseudo)).to_be_bytes());
    for (i, b) in buf[42..42 + payload_len].iter_mut().enumerate() {
        *b = (i * 13 + 1) as u8;
    }
    (42 + payload_len, pseudo)
}

#[test]
fn a_pipe_with_offload_completes_requested_checksums_on_send() {
    let config = PipeConfig {
        tx_checksum_offload: true,
        ..PipeConfig::default()
    };
    let (mut a, mut b) = PipeDevice::pair(&config).unwrap();
    assert!(a.caps().tx_checksum_offload);
    assert_eq!(
        a.tx_checksum_offload(),
        surge_datapath::TxChecksumOffload::Software
    );
    let mut tx = Burst::new();
    let mut pseudos = Vec::new();
    for payload_len in [0usize, 1, 18, 1000] {
        let mut frame = a.alloc_tx().unwrap();
        let (len, pseudo) = write_partial_udp(a.frame_mut(&frame), payload_len);
        assert!(frame.set_len(len));
        assert!(a.request_tx_checksum(&mut frame, 34, 6));
        assert!(frame.tx_checksum_requested());
        pseudos.push(pseudo);
        tx.push(frame).unwrap();
    }
    assert_eq!(a.tx_burst(&mut tx), 4);
    assert_eq!(a.stats().tx_checksum_offloaded, 4);
    let got = receive(&mut b, 0);
    assert_eq!(got.len(), 4);
    for ((_, bytes), pseudo) in got.iter().zip(&pseudos) {
        let mut whole = pseudo.to_vec();
        whole.extend_from_slice(&bytes[34..]);
        let verify = internet_checksum(&whole);
        assert!(
            verify == 0 || verify == 0xffff,
            "receiver's check fails: {verify:#x}"
        );
        assert_ne!(&bytes[40..42], &[0, 0], "UDP checksum present");
    }
    assert!(a.accounting().balanced() && a.accounting().held == 0);
}

#[test]
fn a_pipe_without_offload_refuses_requests_and_sends_bytes_as_written() {
    let (mut a, mut b) = pipe(Impairments::default(), 3);
    assert!(!a.caps().tx_checksum_offload);
    let mut frame = a.alloc_tx().unwrap();
    let (len, _) = write_partial_udp(a.frame_mut(&frame), 10);
    assert!(frame.set_len(len));
    let written = a.frame(&frame).to_vec();
    assert!(!a.request_tx_checksum(&mut frame, 34, 6));
    assert!(!frame.tx_checksum_requested());
    let mut tx = Burst::new();
    tx.push(frame).unwrap();
    a.tx_burst(&mut tx);
    assert_eq!(a.stats().tx_checksum_offloaded, 0);
    let got = receive(&mut b, 0);
    assert_eq!(got[0].1, written, "nothing completed the checksum");
}

#[test]
fn a_request_that_no_longer_fits_is_dropped_and_counted() {
    let config = PipeConfig {
        tx_checksum_offload: true,
        ..PipeConfig::default()
    };
    let (mut a, mut b) = PipeDevice::pair(&config).unwrap();
    let mut frame = a.alloc_tx().unwrap();
    let (len, _) = write_partial_udp(a.frame_mut(&frame), 10);
    assert!(frame.set_len(len));
    assert!(
        !a.request_tx_checksum(&mut frame, 34, u16::MAX),
        "does not fit"
    );
    assert!(a.request_tx_checksum(&mut frame, 34, 6));
    // Shortened after the request: the checksum field is gone.
    assert!(frame.set_len(40));
    let mut tx = Burst::new();
    tx.push(frame).unwrap();
    assert_eq!(a.tx_burst(&mut tx), 0);
    assert_eq!(a.stats().tx_bad_checksum_request, 1);
    assert!(receive(&mut b, 0).is_empty());
    assert!(a.accounting().balanced() && a.accounting().held == 0);
}
