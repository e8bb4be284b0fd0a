//! The reference: the smallest sensible AF_XDP loop written directly on
//! `xsk-rs` 0.11 (batches of 64, need-wakeup, copy or zero-copy chosen by
//! the kernel), with the same ring and UMEM sizes as the default `XdpPort`.

use std::{
    io::Write,
    os::fd::{AsRawFd, RawFd},
    sync::atomic::{AtomicBool, Ordering},
    time::Instant,
};

use xsk_rs::{
    CompQueue, FillQueue, FrameDesc, RxQueue, TxQueue, Umem,
    config::{BindFlags, LibxdpFlags, SocketConfig, UmemConfig},
};

use super::{Credit, LoopResult, RECEIVE_GRACE};
use crate::{BURST, DatapathError, socket::xdp_statistics};

const FRAME_COUNT: u32 = 4096;
const RING_SIZE: u32 = 2048;

/// Everything one `xsk-rs` socket consists of.
type XskParts = (Umem, Vec<FrameDesc>, TxQueue, RxQueue, FillQueue, CompQueue);

fn setup(ifname: &str, queue: u32) -> Result<XskParts, DatapathError> {
    let err = |what: &'static str| {
        move |e: &dyn std::fmt::Display| DatapathError::Syscall {
            what,
            source: std::io::Error::other(e.to_string()),
        }
    };
    let umem_config = UmemConfig::builder()
        .frame_size(4096.try_into().map_err(|e| err("xsk-rs frame size")(&e))?)
        .fill_queue_size(
            RING_SIZE
                .try_into()
                .map_err(|e| err("xsk-rs ring size")(&e))?,
        )
        .comp_queue_size(
            RING_SIZE
                .try_into()
                .map_err(|e| err("xsk-rs ring size")(&e))?,
        )
        .build()
        .map_err(|e| err("xsk-rs UMEM config")(&e))?;
    let count = FRAME_COUNT
        .try_into()
        .map_err(|_| DatapathError::BadPoolConfig("zero frames".into()))?;
    let (umem, descs) = Umem::new(umem_config, count, false).map_err(|e| err("xsk-rs UMEM")(&e))?;
    let socket_config = SocketConfig::builder()
        .rx_queue_size(
            RING_SIZE
                .try_into()
                .map_err(|e| err("xsk-rs ring size")(&e))?,
        )
        .tx_queue_size(
            RING_SIZE
                .try_into()
                .map_err(|e| err("xsk-rs ring size")(&e))?,
        )
        .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
        .bind_flags(BindFlags::XDP_USE_NEED_WAKEUP)
        .build();
    let interface = ifname
        .parse()
        .map_err(|e| err("xsk-rs interface name")(&e))?;
    // The kernel frees a queue's previous UMEM in deferred work: retry
    // (bounded) while a just-closed socket still holds the queue.
    let mut attempt = 0;
    let (tx, rx, rings) = loop {
        // Safety: each benchmark binds one socket per (interface, queue) and
        // drops it before the next binds; descriptors stay within this UMEM.
        match unsafe { xsk_rs::Socket::new(socket_config, &umem, &interface, queue) } {
            Ok(parts) => break parts,
            Err(_) if attempt < 100 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(err("xsk-rs socket")(&e)),
        }
    };
    let (fill, completion) =
        rings.ok_or_else(|| err("xsk-rs socket")(&"no fill/completion rings"))?;
    Ok((umem, descs, tx, rx, fill, completion))
}

/// Sends with `xsk-rs` from one (interface, queue).
#[derive(Debug)]
pub struct XskRsSender {
    umem: Umem,
    free: Vec<FrameDesc>,
    completed: Vec<FrameDesc>,
    tx: TxQueue,
    completion: CompQueue,
    _rx: RxQueue,
    _fill: FillQueue,
}

impl XskRsSender {
    /// Binds an `xsk-rs` socket (in the calling thread's namespace).
    pub fn open(ifname: &str, queue: u32) -> Result<Self, DatapathError> {
        let (umem, free, tx, rx, fill, completion) = setup(ifname, queue)?;
        let completed = vec![FrameDesc::default(); RING_SIZE as usize];
        Ok(Self {
            umem,
            free,
            completed,
            tx,
            completion,
            _rx: rx,
            _fill: fill,
        })
    }

    /// Sends `count` copies of `template` (written into each frame), bounded by `deadline`.
    pub fn run(
        &mut self,
        template: &[u8],
        count: u64,
        credit: &Credit,
        deadline: Instant,
    ) -> LoopResult {
        let started = Instant::now();
        let mut sent = 0u64;
        let (mut batches, mut syscalls) = (0u64, 0u64);
        let mut stalled = None;
        while sent < count && Instant::now() < deadline {
            // Safety: completed descriptors belong to this UMEM and are ours again.
            let done = unsafe { self.completion.consume(&mut self.completed) };
            self.free.extend_from_slice(&self.completed[..done]);
            let allowance = credit.allowance(&mut stalled);
            if allowance == 0 {
                std::thread::yield_now();
            }
            let batch = BURST
                .min(self.free.len())
                .min((count - sent) as usize)
                .min(allowance.try_into().unwrap_or(usize::MAX));
            if batch > 0 {
                let start = self.free.len() - batch;
                for desc in &mut self.free[start..] {
                    // Safety: the frame is off every ring (free list), so nobody else touches it.
                    let mut data = unsafe { self.umem.data_mut(desc) };
                    let mut cursor = data.cursor();
                    cursor.set_pos(0);
                    let _ = cursor.write_all(template);
                }
                // Safety: these descriptors belong to this UMEM and are not on any ring.
                let produced = unsafe { self.tx.produce(&self.free[start..]) };
                self.free.truncate(self.free.len() - produced);
                sent += produced as u64;
                credit.sent(produced as u64);
                batches += u64::from(produced > 0);
            }
            if self.tx.needs_wakeup() {
                let _ = self.tx.wakeup();
                syscalls += 1;
            }
        }
        // Let the kernel finish what is on the ring (bounded).
        while Instant::now() < deadline && self.free.len() < FRAME_COUNT as usize {
            // Safety: as above.
            let done = unsafe { self.completion.consume(&mut self.completed) };
            self.free.extend_from_slice(&self.completed[..done]);
            if done == 0 {
                let _ = self.tx.wakeup();
                std::thread::yield_now();
            }
        }
        LoopResult {
            frames: sent,
            started,
            last_frame: Instant::now(),
            batches,
            syscalls,
            kernel: xdp_statistics(self.tx.fd().as_raw_fd()).ok(),
        }
    }
}

/// Receives with `xsk-rs` on one (interface, queue).
#[derive(Debug)]
pub struct XskRsReceiver {
    received: Vec<FrameDesc>,
    rx: RxQueue,
    fill: FillQueue,
    _umem: Umem,
    _tx: TxQueue,
    _completion: CompQueue,
}

impl XskRsReceiver {
    /// Binds an `xsk-rs` socket and fills its fill ring.
    pub fn open(ifname: &str, queue: u32) -> Result<Self, DatapathError> {
        let (umem, descs, tx, rx, mut fill, completion) = setup(ifname, queue)?;
        // Safety: fresh descriptors of this UMEM, on no ring yet.
        unsafe { fill.produce(&descs[..RING_SIZE as usize]) };
        let received = vec![FrameDesc::default(); BURST];
        Ok(Self {
            received,
            rx,
            fill,
            _umem: umem,
            _tx: tx,
            _completion: completion,
        })
    }

    /// The socket descriptor, for the XSKMAP.
    pub fn fd(&self) -> RawFd {
        self.rx.fd().as_raw_fd()
    }

    /// Receives until `expected` frames, `deadline`, or `RECEIVE_GRACE` after `senders_done`.
    pub fn run(
        &mut self,
        expected: u64,
        credit: &Credit,
        senders_done: &AtomicBool,
        deadline: Instant,
    ) -> LoopResult {
        let started = Instant::now();
        let mut last_frame = started;
        let mut frames = 0u64;
        let mut idle_since: Option<Instant> = None;
        let (mut batches, mut syscalls) = (0u64, 0u64);
        while frames < expected && Instant::now() < deadline {
            // Safety: descriptors returned by the RX ring belong to this UMEM.
            let n = unsafe { self.rx.consume(&mut self.received) };
            if n > 0 {
                frames += n as u64;
                credit.received(n as u64);
                batches += 1;
                last_frame = Instant::now();
                idle_since = None;
                // Safety: the frames were just consumed from RX: ours to refill.
                unsafe { self.fill.produce(&self.received[..n]) };
                continue;
            }
            if self.fill.needs_wakeup() {
                let _ = self.fill.wakeup(self.rx.fd_mut(), 0);
                syscalls += 1;
            }
            if senders_done.load(Ordering::Relaxed) {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() > RECEIVE_GRACE {
                    break;
                }
            }
            std::thread::yield_now();
        }
        LoopResult {
            frames,
            started,
            last_frame,
            batches,
            syscalls,
            kernel: xdp_statistics(self.fd()).ok(),
        }
    }
}
