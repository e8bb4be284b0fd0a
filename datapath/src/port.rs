//! `XdpPort`: one AF_XDP socket on one (interface, queue), as a [`Device`].

use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use crate::{
    BURST, Burst, DatapathError, Device, DeviceCaps, DeviceStats, ETHERNET_HEADER_LEN, Frame,
    FrameAccounting, FramePool, Interface, KernelXdpStats, LARGE_FRAME_SLACK, PoolConfig,
    TxChecksumOff, TxChecksumOffload, XdpFeatures,
    chain::{
        ChainChecksum, ChainDrop, ChainStep, RxChain, XDP_PKT_CONTD, XDP_USE_SG, parts_needed,
        write_tx_chain,
    },
    ring::XdpDesc,
    socket::{Rings, XdpSocket},
    tx_checksum::{XDP_TX_METADATA, request_fits},
};

/// Fill-ring refills and completion reaping happen in batches of at least this many.
const REFILL_BATCH: u32 = 32;

/// Large frames of a multi-buffer port: a received burst and a burst being
/// built for sending, twice over (large frames go back as soon as they are
/// joined into the stack or copied into the TX ring).
const LARGE_FRAMES: u32 = 4 * BURST as u32;

/// How to bind: chosen automatically, or forced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindMode {
    /// Zero-copy if the driver supports it, copy mode otherwise.
    #[default]
    Auto,
    /// Zero-copy only (fails on drivers without it, such as veth).
    ZeroCopy,
    /// Copy mode only.
    Copy,
}

/// Busy-poll settings (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL`, `SO_BUSY_POLL_BUDGET`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyPoll {
    /// `SO_BUSY_POLL` in microseconds.
    pub usecs: u32,
    /// `SO_BUSY_POLL_BUDGET` in packets.
    pub budget: u32,
}

/// Everything needed to open a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// Interface name (looked up in the calling thread's network namespace).
    pub ifname: String,
    /// RX queue to bind to.
    pub queue: u32,
    /// The frame pool (UMEM) of this port.
    pub pool: PoolConfig,
    /// Entries per ring (fill, completion, RX, TX); a power of two.
    pub ring_size: u32,
    /// Copy / zero-copy selection.
    pub bind_mode: BindMode,
    /// `XDP_USE_NEED_WAKEUP` (on by default): syscalls only when the kernel asks.
    pub need_wakeup: bool,
    /// Busy polling, where the kernel supports it (off by default).
    pub busy_poll: Option<BusyPoll>,
    /// Use TX checksum offload through AF_XDP TX metadata when the kernel
    /// and the bind mode support it (on by default; see
    /// [`XdpPort::tx_checksum_offload`] for what was found).
    pub tx_checksum_offload: bool,
    /// Accept an interface MTU above one UMEM frame by binding with
    /// multi-buffer descriptors (`XDP_USE_SG`, Linux 6.6+; on by default).
    /// Off, or refused by the kernel or driver, such an MTU is
    /// [`DatapathError::MtuTooLarge`].
    pub multi_buffer: bool,
}

impl PortConfig {
    /// Defaults for `ifname` queue `queue`: 32,768 frames of 4 KiB (128 MiB), rings of
    /// 16,384. A server of 10,000 connections gets a request from nearly every one at
    /// once, and every frame between the kernel and the engine (in the fill ring or
    /// waiting in the RX ring) is one of the fill ring's: with 2048-entry rings the
    /// kernel found the fill ring empty and dropped a fifth of them (`xdp_rx_dropped`);
    /// with 8192 (half of 16,384 frames) it still dropped 37k frames in 5 s of rr at
    /// 10,000 connections, each a retransmission of at least 200 ms for the client;
    /// with 16,384 2k. The retransmissions cost more than the memory.
    pub fn new(ifname: &str, queue: u32) -> Self {
        Self {
            ifname: ifname.to_owned(),
            queue,
            pool: PoolConfig::default(),
            ring_size: 16384,
            bind_mode: BindMode::Auto,
            need_wakeup: true,
            busy_poll: None,
            tx_checksum_offload: true,
            multi_buffer: true,
        }
    }
}

/// Most `sendto` kicks per `tx_burst` (each sends at least 32 frames in copy mode).
const MAX_TX_KICKS: u32 = 64;

/// One port configuration per RX queue of `ifname`: all of its queues
/// (`queues: None`, read as `ethtool -l` does) or the first `queues`, which
/// must exist. Looked up in the calling thread's network namespace.
pub fn queue_configs(ifname: &str, queues: Option<u32>) -> Result<Vec<PortConfig>, DatapathError> {
    let interface = Interface::lookup(ifname)?;
    let available = interface.rx_queues()?;
    let wanted = queues.unwrap_or(available);
    if wanted == 0 || wanted > available {
        return Err(DatapathError::TooManyQueues {
            ifname: ifname.to_owned(),
            requested: wanted.saturating_sub(1),
            available,
        });
    }
    Ok((0..wanted)
        .map(|queue| PortConfig::new(ifname, queue))
        .collect())
}

/// One AF_XDP socket bound to one (interface, queue), with its own UMEM pool.
///
/// Receiving needs an XDP program that redirects this queue into an XSKMAP
/// slot holding [`XdpPort::fd`] (see `surge-bpf`).
#[derive(Debug)]
pub struct XdpPort {
    // Field order is drop order: rings, then the socket, then the UMEM.
    rings: Rings,
    socket: XdpSocket,
    pool: FramePool,
    interface: Interface,
    caps: DeviceCaps,
    tx_checksum: TxChecksumOffload,
    zero_copy: bool,
    need_wakeup: bool,
    busy_poll: bool,
    fill_outstanding: u32,
    held: u32,
    tx_outstanding: u32,
    /// A packet arriving as several descriptors, being joined.
    rx_chain: RxChain,
    /// Large frames handed to the stack.
    large_held: u32,
    stats: DeviceStats,
}

impl XdpPort {
    /// Opens a port: checks the interface, queue and MTU, creates the UMEM,
    /// binds (zero-copy with fallback to copy, per [`BindMode`]) and fills
    /// the fill ring.
    pub fn open(config: &PortConfig) -> Result<Self, DatapathError> {
        let interface = Interface::lookup(&config.ifname)?;
        interface.check_queue(config.queue)?;
        let mtu = interface.mtu()?;
        let max_frame = config.pool.max_frame_len();
        let too_large = |reason: String| DatapathError::MtuTooLarge {
            ifname: config.ifname.clone(),
            mtu,
            max_frame,
            max_mtu: max_frame.saturating_sub(ETHERNET_HEADER_LEN as u32),
            reason,
        };
        // A frame longer than one UMEM frame travels as a descriptor chain
        // (XDP_USE_SG) and is joined into, or cut from, a large frame.
        let large_len = mtu.saturating_add((ETHERNET_HEADER_LEN + LARGE_FRAME_SLACK) as u32);
        let multi_buffer = mtu as usize + ETHERNET_HEADER_LEN > max_frame as usize;
        if multi_buffer && !config.multi_buffer {
            return Err(too_large(
                "multi-buffer is turned off in the port configuration".into(),
            ));
        }
        if multi_buffer && large_len > u32::from(u16::MAX) {
            return Err(too_large(format!(
                "a frame of {large_len} bytes is beyond the 64 KiB a large frame holds"
            )));
        }
        if !config.ring_size.is_power_of_two() || config.ring_size < 64 {
            return Err(DatapathError::BadPoolConfig(format!(
                "ring size {} is not a power of two of at least 64",
                config.ring_size
            )));
        }
        let mut pool = FramePool::new(config.pool)?;
        if multi_buffer {
            pool.enable_large_frames(LARGE_FRAMES, large_len)?;
        }
        let sg = if multi_buffer { XDP_USE_SG } else { 0 };

        let wakeup = if config.need_wakeup {
            libc::XDP_USE_NEED_WAKEUP
        } else {
            0
        };
        // Skip a zero-copy attempt the driver says cannot work (when it says).
        let features = interface.xdp_features().ok().flatten();
        let zero_copy_possible = features.is_none_or(|f| f.zero_copy);
        let attempts: &[u16] = match config.bind_mode {
            BindMode::Auto if zero_copy_possible => &[libc::XDP_ZEROCOPY, libc::XDP_COPY],
            BindMode::Auto => &[libc::XDP_COPY],
            BindMode::ZeroCopy => &[libc::XDP_ZEROCOPY],
            BindMode::Copy => &[libc::XDP_COPY],
        };
        let mut last_error = None;
        let mut bound = None;
        for &mode in attempts {
            // A failed bind leaves the socket in an unknown state: start each
            // attempt from a fresh socket.
            let (socket, rings, metadata) =
                XdpSocket::new(&pool, config.ring_size, config.tx_checksum_offload).map_err(
                    |(what, source)| {
                        if what == "registering the UMEM" {
                            DatapathError::UmemRefused {
                                frame_size: config.pool.frame_size,
                                frame_count: config.pool.frame_count,
                                source,
                            }
                        } else {
                            DatapathError::Syscall { what, source }
                        }
                    },
                )?;
            match bind_when_free(&socket, interface.index, config.queue, mode | wakeup | sg) {
                Ok(()) => {
                    bound = Some((socket, rings, metadata));
                    break;
                }
                Err(err) => {
                    tracing::debug!(ifname = %config.ifname, queue = config.queue, mode, %err, "AF_XDP bind attempt failed");
                    last_error = Some(err);
                }
            }
        }
        let Some((socket, rings, metadata)) = bound else {
            if multi_buffer && bind_works_without_sg(&pool, config, interface.index, wakeup) {
                let err = last_error
                    .as_ref()
                    .map_or_else(|| "no bind mode tried".to_owned(), ToString::to_string);
                return Err(too_large(format!(
                    "the kernel or driver refused a bind with XDP_USE_SG ({err}) and accepted one \
                     without (Linux 6.6+ has it in copy mode; zero-copy needs driver support)"
                )));
            }
            return Err(DatapathError::BindRefused {
                ifname: config.ifname.clone(),
                queue: config.queue,
                source: last_error.unwrap_or_else(|| std::io::Error::other("no bind mode tried")),
            });
        };
        let busy_poll = config
            .busy_poll
            .is_some_and(|b| socket.set_busy_poll(b.usecs, b.budget));
        let zero_copy = socket.zero_copy();
        // Copy mode sends at most the budget per `sendto` (32 by default): ask for the
        // ring's size so one kick drains a full burst (tx_burst kicks again if not).
        let tx_budget = !zero_copy && socket.set_tx_budget(config.ring_size);
        let tx_checksum =
            tx_checksum_mode(config.tx_checksum_offload, metadata, zero_copy, features);
        tracing::info!(
            ifname = %config.ifname,
            queue = config.queue,
            zero_copy,
            busy_poll,
            tx_budget,
            tx_checksum = ?tx_checksum,
            multi_buffer,
            "AF_XDP port open"
        );
        let caps = DeviceCaps {
            mtu,
            max_frame_len: if multi_buffer { large_len } else { max_frame },
            tx_checksum_offload: tx_checksum.is_on(),
            queue_id: config.queue,
        };
        let mut port = Self {
            rings,
            socket,
            pool,
            interface,
            caps,
            tx_checksum,
            zero_copy,
            need_wakeup: config.need_wakeup,
            busy_poll,
            fill_outstanding: 0,
            held: 0,
            tx_outstanding: 0,
            rx_chain: RxChain::default(),
            large_held: 0,
            stats: DeviceStats::default(),
        };
        port.refill();
        Ok(port)
    }

    /// The socket descriptor, to register in the XDP program's XSKMAP.
    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Blocks until a frame waits on the RX ring or `timeout` passes (`ppoll` on the
    /// socket); true when one waits. For a loop with nothing to do: the kernel wakes it
    /// when it posts a frame, instead of a fixed sleep that a frame must wait out.
    /// Frames other engines forward (or anything else that is not this socket's RX
    /// ring) do not end the wait.
    pub fn wait_readable(&self, timeout: Duration) -> Result<bool, DatapathError> {
        self.socket
            .wait_readable(timeout)
            .map_err(|source| DatapathError::Syscall {
                what: "ppoll on the AF_XDP socket",
                source,
            })
    }

    /// The interface this port is bound to.
    pub fn interface(&self) -> &Interface {
        &self.interface
    }

    /// Whether the socket runs in zero-copy mode (false: copy mode).
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Whether this port completes transport checksums on transmit, how, or
    /// why not (the stack leaves checksums partial only when it does).
    pub fn tx_checksum_offload(&self) -> TxChecksumOffload {
        self.tx_checksum
    }

    /// Whether busy polling was requested and accepted by the kernel.
    pub fn busy_poll(&self) -> bool {
        self.busy_poll
    }

    /// After the first frames: busy polling runs the NAPI instance the kernel delivers
    /// from, and a queue without one (veth's XDP receive queues have none) leaves it
    /// inert. Said once, at warning level, so a user who asked for it knows.
    #[cold]
    fn check_busy_poll(&self) {
        let napi_id = self.socket.napi_id();
        if napi_id == 0 {
            tracing::warn!(
                ifname = %self.interface.name,
                queue = self.caps.queue_id,
                "busy polling has no effect here: the kernel gives this queue's frames no \
                 NAPI id (SO_INCOMING_NAPI_ID is 0; veth's XDP receive queues have none), \
                 so recvfrom cannot run its NAPI"
            );
        } else {
            tracing::info!(ifname = %self.interface.name, queue = self.caps.queue_id, napi_id, "busy polling");
        }
    }

    /// The NAPI instance the kernel delivers this socket's frames from
    /// (`SO_INCOMING_NAPI_ID`): 0 before the first frame, and also when the
    /// driver's queue has none, in which case busy polling has nothing to run.
    pub fn napi_id(&self) -> u32 {
        self.socket.napi_id()
    }

    /// Whether the port takes packets longer than one UMEM frame as chained
    /// descriptors (bound with `XDP_USE_SG` because the MTU needs it).
    pub fn multi_buffer(&self) -> bool {
        self.pool.large_size() > 0
    }

    /// Whether the pool got hugepages.
    pub fn huge_pages(&self) -> bool {
        self.pool.huge_pages()
    }

    /// The kernel's `XDP_STATISTICS` for this socket.
    pub fn kernel_stats(&self) -> Result<KernelXdpStats, DatapathError> {
        self.socket
            .statistics()
            .map_err(|source| DatapathError::Syscall {
                what: "reading XDP_STATISTICS",
                source,
            })
    }

    /// Moves free frames to the fill ring, in one batch.
    fn refill(&mut self) {
        let fill_size = self.rings.fill.size();
        let free_slots = self.rings.fill.free(REFILL_BATCH);
        // Leave half of the pool for sending.
        let budget = (self.pool.size() / 2).saturating_sub(self.fill_outstanding);
        let n = free_slots.min(self.pool.free_count()).min(budget);
        if n < REFILL_BATCH.min(fill_size) && self.fill_outstanding > 0 {
            return;
        }
        if self.fill_outstanding == 0 && self.stats.rx_packets > 0 {
            self.stats.fill_ring_empty += 1;
        }
        let mut written = 0;
        while written < n {
            let Some(addr) = self.pool.alloc_addr() else {
                break;
            };
            self.rings.fill.write(written, addr);
            written += 1;
        }
        self.rings.fill.submit(written);
        self.fill_outstanding += written;
    }

    /// Takes one descriptor of a multi-buffer packet; returns the packet once
    /// its last part is in. Drops are counted by reason.
    fn join_rx_part(&mut self, desc: XdpDesc) -> Option<Frame> {
        match self.rx_chain.push(&mut self.pool, desc) {
            ChainStep::Pending => None,
            ChainStep::Complete(frame) => {
                self.stats.rx_bytes += frame.len() as u64;
                self.stats.rx_multi_buffer += 1;
                Some(frame)
            }
            ChainStep::Dropped(reason) => {
                let counter = match reason {
                    ChainDrop::NoLargeFrame => &mut self.stats.rx_chain_no_large_frame,
                    ChainDrop::TooLong => &mut self.stats.rx_chain_too_long,
                    ChainDrop::BadPart => {
                        self.stats.bad_descriptors += 1;
                        &mut self.stats.rx_chain_bad_part
                    }
                    ChainDrop::Runt => &mut self.stats.rx_runts,
                };
                *counter += 1;
                None
            }
        }
    }

    /// Copies the large frame `frame` into a chain of UMEM frames at TX ring
    /// slot `at` (with `room` slots free there) and returns the large frame
    /// to the pool; the handle itself is dropped by the caller.
    fn send_large(&mut self, frame: &Frame, at: u32, room: u32) -> LargeSend {
        let part_len = self.pool.config().max_frame_len() as usize;
        let parts = parts_needed(frame.len(), part_len) as u32;
        if frame.len() < ETHERNET_HEADER_LEN || frame.len() > self.pool.large_frame_len() as usize {
            self.stats.tx_bad_length += 1;
            self.drop_large(frame);
            return LargeSend::Dropped;
        }
        if parts > room {
            return LargeSend::NoRoom;
        }
        let request = match (
            frame.tx_checksum_requested(),
            self.pool.tx_checksum_request(frame),
        ) {
            (false, _) => None,
            (true, Some((start, offset))) if request_fits(start, offset, frame.len()) => {
                Some((start, offset))
            }
            (true, _) => {
                // As for a single frame: a request the kernel would refuse
                // would stall the ring.
                self.stats.tx_bad_checksum_request += 1;
                self.drop_large(frame);
                return LargeSend::Dropped;
            }
        };
        if self.pool.free_count() < parts {
            self.reap_completions();
        }
        let tx_ring = &mut self.rings.tx;
        let Some((written, checksum)) =
            write_tx_chain(&mut self.pool, frame, request, |i, desc| {
                tx_ring.write(at + i, desc);
            })
        else {
            // Every UMEM frame is in a ring or with the stack: try again later.
            self.stats.pool_empty += 1;
            return LargeSend::NoRoom;
        };
        self.stats.tx_bytes += frame.len() as u64;
        if written > 1 {
            self.stats.tx_multi_buffer += 1;
        }
        if checksum == ChainChecksum::Offloaded {
            self.stats.tx_checksum_offloaded += 1;
        }
        self.drop_large(frame);
        LargeSend::Written(written)
    }

    /// Returns a large frame the TX burst is about to drop the handle of.
    fn drop_large(&mut self, frame: &Frame) {
        if self.pool.free_large(frame) {
            self.large_held -= 1.min(self.large_held);
        }
    }

    /// Returns completed TX frames to the pool.
    fn reap_completions(&mut self) {
        let n = self
            .rings
            .completion
            .available(self.tx_outstanding.min(self.rings.tx.size()));
        for i in 0..n {
            let addr = self.rings.completion.read(i);
            if !self.pool.free_addr(addr) {
                self.stats.bad_descriptors += 1;
            }
        }
        self.rings.completion.release(n);
        self.tx_outstanding -= n.min(self.tx_outstanding);
    }
}

/// What became of a large frame at `tx_burst`.
enum LargeSend {
    /// Copied into this many chained descriptors.
    Written(u32),
    /// Dropped and counted (a bad length).
    Dropped,
    /// No room in the TX ring or no free UMEM frames: it stays in the burst.
    NoRoom,
}

/// What the port can promise about TX checksum requests (see
/// [`crate::tx_checksum`] for the kernel paths behind each answer).
fn tx_checksum_mode(
    wanted: bool,
    metadata: bool,
    zero_copy: bool,
    features: Option<XdpFeatures>,
) -> TxChecksumOffload {
    match (wanted, metadata, zero_copy) {
        (false, ..) => TxChecksumOffload::Off(TxChecksumOff::NotRequested),
        (true, false, _) => TxChecksumOffload::Off(TxChecksumOff::KernelLacksTxMetadata),
        // Copy mode: `xsk_build_skb` honours the request on every driver.
        (true, true, false) => TxChecksumOffload::CopyMode,
        // Zero-copy: only a driver that says so reads the request.
        (true, true, true) if features.is_some_and(|f| f.tx_checksum) => TxChecksumOffload::Driver,
        (true, true, true) => TxChecksumOffload::Off(TxChecksumOff::DriverLacksTxChecksum),
    }
}

/// After every bind with `XDP_USE_SG` failed: whether a copy-mode bind without
/// it works on a fresh socket, i.e. multi-buffer is what the kernel or driver
/// refused rather than AF_XDP on this queue at all.
fn bind_works_without_sg(pool: &FramePool, config: &PortConfig, ifindex: u32, wakeup: u16) -> bool {
    XdpSocket::new(pool, config.ring_size, false).is_ok_and(|(socket, _rings, _)| {
        bind_when_free(&socket, ifindex, config.queue, libc::XDP_COPY | wakeup).is_ok()
    })
}

/// Binds, waiting (bounded) while the queue is still held by a socket that was
/// just closed: the kernel releases a queue's UMEM in deferred work, so an
/// immediate re-bind can see `EBUSY` for a few milliseconds.
fn bind_when_free(socket: &XdpSocket, ifindex: u32, queue: u32, flags: u16) -> std::io::Result<()> {
    const ATTEMPTS: u32 = 100;
    const PAUSE: std::time::Duration = std::time::Duration::from_millis(10);
    let mut attempt = 0;
    loop {
        match socket.bind(ifindex, queue, flags) {
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) && attempt < ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(PAUSE);
            }
            result => return result,
        }
    }
}

impl Device for XdpPort {
    fn caps(&self) -> DeviceCaps {
        self.caps
    }

    #[inline]
    fn rx_burst(&mut self, out: &mut Burst) -> usize {
        let want = out.remaining().min(BURST) as u32;
        let n = self.rings.rx.available(want);
        let large_before = self.large_held;
        let mut delivered = 0;
        for i in 0..n {
            let desc = self.rings.rx.read(i);
            if desc.options & XDP_PKT_CONTD != 0 || self.rx_chain.in_progress() {
                // Part of a multi-buffer packet: joined into a large frame (a copy).
                if let Some(frame) = self.join_rx_part(desc) {
                    match out.push(frame) {
                        Ok(()) => self.large_held += 1,
                        Err(frame) => {
                            // Cannot happen (n <= remaining); never leak if it does.
                            let _ = self.pool.free(frame);
                        }
                    }
                }
                continue;
            }
            let XdpDesc { addr, len, .. } = desc;
            match self.pool.frame_from_desc(addr, len) {
                Some(frame) if frame.len() >= ETHERNET_HEADER_LEN => {
                    self.stats.rx_bytes += u64::from(len);
                    match out.push(frame) {
                        Ok(()) => delivered += 1,
                        Err(frame) => {
                            // Cannot happen (n <= remaining); never leak if it does.
                            let _ = self.pool.free(frame);
                        }
                    }
                }
                Some(frame) => {
                    self.stats.rx_runts += 1;
                    let _ = self.pool.free(frame);
                }
                None => {
                    self.stats.bad_descriptors += 1;
                    self.pool.free_addr(addr);
                }
            }
        }
        self.rings.rx.release(n);
        self.fill_outstanding -= n.min(self.fill_outstanding);
        self.held += delivered;
        let delivered = delivered + (self.large_held - large_before);
        if delivered > 0 {
            if self.busy_poll && self.stats.rx_packets == 0 {
                self.check_busy_poll();
            }
            self.stats.rx_packets += u64::from(delivered);
            self.stats.rx_batches += 1;
        }
        self.refill();
        if n == 0 {
            if self.busy_poll {
                // Busy polling: the `recvfrom` runs the queue's NAPI on this core, where
                // the kernel gives the queue a NAPI id (`check_busy_poll`).
                self.socket.wakeup_rx();
                self.stats.busy_polls += 1;
            } else if self.need_wakeup && self.rings.fill.needs_wakeup() {
                self.socket.wakeup_rx();
                self.stats.wakeups += 1;
            }
        }
        delivered as usize
    }

    #[inline]
    fn frame(&self, frame: &Frame) -> &[u8] {
        self.pool.bytes(frame)
    }

    #[inline]
    fn frame_mut(&mut self, frame: &Frame) -> &mut [u8] {
        self.pool.bytes_mut(frame)
    }

    #[inline]
    fn alloc_tx(&mut self) -> Option<Frame> {
        if self.pool.free_count() == 0 {
            self.reap_completions();
        }
        match self.pool.alloc() {
            Some(frame) => {
                self.held += 1;
                Some(frame)
            }
            None => {
                self.stats.pool_empty += 1;
                None
            }
        }
    }

    #[inline]
    fn alloc_tx_for(&mut self, len: usize) -> Option<Frame> {
        if len <= self.pool.config().max_frame_len() as usize || self.pool.large_size() == 0 {
            return self.alloc_tx();
        }
        match self.pool.alloc_large() {
            Some(frame) => {
                self.large_held += 1;
                Some(frame)
            }
            None => {
                self.stats.pool_empty += 1;
                None
            }
        }
    }

    #[inline]
    fn release(&mut self, frames: &mut Burst) {
        for frame in frames.drain() {
            self.release_one(frame);
        }
        self.refill();
    }

    #[inline]
    fn release_one(&mut self, frame: Frame) {
        let large = frame.is_large();
        if let Err(foreign) = self.pool.free(frame) {
            // Not ours: we cannot return it to its pool; count and forget.
            self.stats.tx_bad_length += 1;
            drop(foreign);
            return;
        }
        if large {
            self.large_held -= 1.min(self.large_held);
        } else {
            self.held -= 1.min(self.held);
        }
    }

    #[inline]
    fn tx_burst(&mut self, tx: &mut Burst) -> usize {
        if self.tx_outstanding > 0 {
            self.reap_completions();
        }
        let free = self.rings.tx.free(tx.len() as u32);
        let mut written = 0u32;
        // UMEM frames the stack held that went into the ring (large frames are
        // copied into fresh ones and go back at once).
        let mut held_sent = 0u32;
        let mut packets = 0u32;
        let mut consumed = 0;
        for frame in tx.as_slice() {
            if written == free {
                break;
            }
            if frame.is_large() && self.pool.owns(frame) {
                match self.send_large(frame, written, free - written) {
                    LargeSend::Written(parts) => {
                        written += parts;
                        packets += 1;
                    }
                    LargeSend::Dropped => {}
                    LargeSend::NoRoom => break,
                }
                consumed += 1;
                continue;
            }
            consumed += 1;
            if !self.pool.owns(frame) {
                self.stats.tx_bad_length += 1;
                continue;
            }
            let mut options = 0;
            if frame.tx_checksum_requested() {
                // Re-checked against the final length: a request the kernel
                // refuses (EINVAL) would stay at the head of the ring forever.
                match self.pool.tx_checksum_request(frame) {
                    Some((start, offset)) if request_fits(start, offset, frame.len()) => {
                        options = XDP_TX_METADATA;
                        self.stats.tx_checksum_offloaded += 1;
                    }
                    _ => {
                        self.stats.tx_bad_checksum_request += 1;
                        self.pool.free_addr(u64::from(frame.addr()));
                        self.held -= 1.min(self.held);
                        continue;
                    }
                }
            }
            if frame.len() < ETHERNET_HEADER_LEN {
                self.stats.tx_bad_length += 1;
                self.pool.free_addr(u64::from(frame.addr()));
                self.held -= 1.min(self.held);
                continue;
            }
            self.rings.tx.write(
                written,
                XdpDesc {
                    addr: u64::from(frame.addr()),
                    len: frame.len() as u32,
                    options,
                },
            );
            self.stats.tx_bytes += frame.len() as u64;
            written += 1;
            held_sent += 1;
            packets += 1;
        }
        tx.consume_front(consumed);
        if written > 0 {
            self.rings.tx.submit(written);
            self.tx_outstanding += written;
            self.held -= held_sent.min(self.held);
            self.stats.tx_packets += u64::from(packets);
            self.stats.tx_batches += 1;
        }
        if !tx.is_empty() {
            self.stats.tx_ring_full += 1;
        }
        // In copy mode one `sendto` sends a bounded batch (32 frames on kernels without
        // XDP_MAX_TX_SKB_BUDGET): kick again while the kernel makes progress, so a burst
        // of replies leaves now instead of filling the ring and starving the fill ring of
        // frames (the kernel then drops what arrives). Bounded by the ring's size.
        let mut kicks = 0;
        while self.tx_outstanding > 0
            && (!self.need_wakeup || self.rings.tx.needs_wakeup())
            && kicks < MAX_TX_KICKS
        {
            let before = self.rings.tx.outstanding();
            if before == 0 {
                break;
            }
            self.socket.wakeup_tx();
            self.stats.wakeups += 1;
            kicks += 1;
            if self.zero_copy || self.rings.tx.outstanding() >= before {
                // Zero copy sends from the driver's NAPI: one kick is the contract.
                break;
            }
        }
        written as usize
    }

    #[inline]
    fn request_tx_checksum(
        &mut self,
        frame: &mut Frame,
        csum_start: u16,
        csum_offset: u16,
    ) -> bool {
        self.caps.tx_checksum_offload && self.pool.write_tx_checksum(frame, csum_start, csum_offset)
    }

    fn stats(&self) -> DeviceStats {
        DeviceStats {
            kernel: self.socket.statistics().ok(),
            ..self.stats
        }
    }

    fn accounting(&self) -> FrameAccounting {
        FrameAccounting {
            total: self.pool.size(),
            free: self.pool.free_count(),
            fill_ring: self.fill_outstanding,
            held: self.held,
            tx_ring: self.tx_outstanding,
            large_total: self.pool.large_size(),
            large_free: self.pool.large_free_count(),
            large_held: self.large_held + u32::from(self.rx_chain.holds_frame()),
        }
    }
}
