//! The PipeDevice moves frames without allocating once warmed up: a counting
//! global allocator (this test binary only) watches the steady state.

#[global_allocator]
static ALLOCATOR: surge_datapath::alloc_count::CountingAllocator =
    surge_datapath::alloc_count::CountingAllocator;

use surge_datapath::{Burst, Device, Impairments, PipeConfig, PipeDevice};

fn exchange(
    a: &mut PipeDevice,
    b: &mut PipeDevice,
    tx: &mut Burst,
    rx: &mut Burst,
    now: u64,
) -> usize {
    a.set_now(now);
    b.set_now(now);
    for _ in 0..32 {
        let Some(mut frame) = a.alloc_tx() else { break };
        if let Some(buf) = a.frame_mut(&frame).get_mut(..60) {
            buf.fill(0x5a);
        }
        assert!(frame.set_len(60));
        if let Err(frame) = tx.push(frame) {
            a.release_one(frame);
        }
    }
    a.tx_burst(tx);
    let n = b.rx_burst(rx);
    b.release(rx);
    n
}

#[test]
fn steady_state_moves_frames_without_allocating() {
    let impairments = Impairments {
        loss: 0.05,
        duplicate: 0.05,
        reorder: 0.05,
        corrupt: 0.05,
        delay_us: 20,
        jitter_us: 10,
        reorder_delay_us: 30,
    };
    let (mut a, mut b) = PipeDevice::pair(&PipeConfig {
        impairments,
        seed: 42,
        ..PipeConfig::default()
    })
    .unwrap();
    let (mut tx, mut rx) = (Burst::new(), Burst::new());
    // Warm up: every queue reaches its working size.
    for t in 0..1_000u64 {
        exchange(&mut a, &mut b, &mut tx, &mut rx, t * 10);
    }
    let (delivered, allocations) = surge_datapath::alloc_count::count_allocations(|| {
        (1_000..11_000u64)
            .map(|t| exchange(&mut a, &mut b, &mut tx, &mut rx, t * 10))
            .sum::<usize>()
    });
    assert!(delivered > 100_000, "frames moved: {delivered}");
    assert_eq!(allocations, 0, "allocations in the steady state");
    assert!(a.accounting().balanced() && b.accounting().balanced());
}
