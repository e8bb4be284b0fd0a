//! The AF_XDP socket: UMEM registration, ring setup and mapping, bind,
//! wakeups and `XDP_STATISTICS` — the raw `linux/if_xdp.h` calls.

use std::{
    io,
    mem::size_of,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    time::Duration,
};

use crate::{
    FramePool, KernelXdpStats,
    mmap::Mmap,
    ring::{ConsumerRing, ProducerRing, RingMem, XdpDesc},
    tx_checksum::{TX_METADATA_LEN, XDP_UMEM_TX_METADATA_LEN},
};

/// `SO_PREFER_BUSY_POLL` (Linux 5.11), not in every libc.
const SO_PREFER_BUSY_POLL: libc::c_int = 69;
/// `SO_BUSY_POLL_BUDGET` (Linux 5.11), not in every libc.
const SO_BUSY_POLL_BUDGET: libc::c_int = 70;
/// `SOL_XDP` (not in every libc release).
const SOL_XDP: libc::c_int = 283;
/// `XDP_MAX_TX_SKB_BUDGET` (Linux 6.17, `include/uapi/linux/if_xdp.h`).
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;

/// The four rings of one socket.
#[derive(Debug)]
pub(crate) struct Rings {
    pub fill: ProducerRing<u64>,
    pub completion: ConsumerRing<u64>,
    pub rx: ConsumerRing<XdpDesc>,
    pub tx: ProducerRing<XdpDesc>,
}

/// An AF_XDP socket file descriptor.
#[derive(Debug)]
pub(crate) struct XdpSocket {
    fd: OwnedFd,
}

impl XdpSocket {
    /// Creates the socket, registers `pool` as its UMEM and maps its four
    /// rings of `ring_size` entries each. Not bound yet.
    ///
    /// With `tx_metadata`, the UMEM is first registered with
    /// [`TX_METADATA_LEN`] bytes of TX metadata (`XDP_UMEM_TX_METADATA_LEN`,
    /// Linux 6.11+); a kernel that refuses it gets a plain registration. The
    /// returned flag says whether the metadata was accepted.
    pub(crate) fn new(
        pool: &FramePool,
        ring_size: u32,
        tx_metadata: bool,
    ) -> Result<(Self, Rings, bool), (&'static str, io::Error)> {
        // Safety: plain socket creation; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(("creating an AF_XDP socket", io::Error::last_os_error()));
        }
        let socket = Self {
            // Safety: a fresh descriptor we own.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        };

        let (addr, len) = pool.memory();
        let config = pool.config();
        let plain = libc::xdp_umem_reg {
            addr: addr as u64,
            len: len as u64,
            chunk_size: config.frame_size,
            headroom: config.headroom,
            flags: 0,
            tx_metadata_len: 0,
        };
        let with_metadata = libc::xdp_umem_reg {
            flags: XDP_UMEM_TX_METADATA_LEN,
            tx_metadata_len: TX_METADATA_LEN,
            ..plain
        };
        // A refused registration leaves the socket without a UMEM, so the
        // plain one can follow on the same socket. Kernels before 6.11 refuse
        // the flag with EINVAL (6.8-6.10 would honour the length without it,
        // but so would nothing tell them apart from older kernels that ignore
        // it: detect, do not assume).
        let metadata = tx_metadata
            && match socket.set_option(libc::SOL_XDP, libc::XDP_UMEM_REG, &with_metadata) {
                Ok(()) => true,
                Err(err) => {
                    tracing::debug!(%err, "UMEM with TX metadata refused; registering without");
                    false
                }
            };
        if !metadata {
            socket
                .set_option(libc::SOL_XDP, libc::XDP_UMEM_REG, &plain)
                .map_err(|e| ("registering the UMEM", e))?;
        }
        for option in [
            libc::XDP_UMEM_FILL_RING,
            libc::XDP_UMEM_COMPLETION_RING,
            libc::XDP_RX_RING,
            libc::XDP_TX_RING,
        ] {
            socket
                .set_option(libc::SOL_XDP, option, &ring_size)
                .map_err(|e| ("sizing the rings", e))?;
        }

        // Safety: all-zero is a valid `xdp_mmap_offsets`.
        let mut offsets: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut optlen = size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // Safety: `offsets` is a writable buffer of `optlen` bytes.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                (&raw mut offsets).cast(),
                &mut optlen,
            )
        };
        if rc < 0 {
            return Err(("reading the ring offsets", io::Error::last_os_error()));
        }

        let fill = map_ring::<u64>(
            fd,
            &offsets.fr,
            ring_size,
            libc::XDP_UMEM_PGOFF_FILL_RING as libc::off_t,
        )?;
        let completion = map_ring::<u64>(
            fd,
            &offsets.cr,
            ring_size,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING as libc::off_t,
        )?;
        let rx = map_ring::<XdpDesc>(fd, &offsets.rx, ring_size, libc::XDP_PGOFF_RX_RING)?;
        let tx = map_ring::<XdpDesc>(fd, &offsets.tx, ring_size, libc::XDP_PGOFF_TX_RING)?;
        let rings = Rings {
            fill: ProducerRing::new(fill),
            completion: ConsumerRing::new(completion),
            rx: ConsumerRing::new(rx),
            tx: ProducerRing::new(tx),
        };
        Ok((socket, rings, metadata))
    }

    /// Binds to `(ifindex, queue)` with the given `XDP_*` bind flags.
    pub(crate) fn bind(&self, ifindex: u32, queue: u32, flags: u16) -> io::Result<()> {
        let addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // Safety: `addr` is a valid `sockaddr_xdp` of the length passed.
        let rc = unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Whether the bound socket runs in zero-copy mode (`XDP_OPTIONS`).
    pub(crate) fn zero_copy(&self) -> bool {
        // Safety: all-zero is a valid `xdp_options`.
        let mut options: libc::xdp_options = unsafe { std::mem::zeroed() };
        let mut optlen = size_of::<libc::xdp_options>() as libc::socklen_t;
        // Safety: `options` is a writable buffer of `optlen` bytes.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_OPTIONS,
                (&raw mut options).cast(),
                &mut optlen,
            )
        };
        rc == 0 && options.flags & libc::XDP_OPTIONS_ZEROCOPY != 0
    }

    /// Turns on busy polling; `false` if the kernel refused any of the options.
    pub(crate) fn set_busy_poll(&self, usecs: u32, budget: u32) -> bool {
        let usecs = usecs as libc::c_int;
        let budget = budget as libc::c_int;
        self.set_option(libc::SOL_SOCKET, SO_PREFER_BUSY_POLL, &1 as &libc::c_int)
            .is_ok()
            && self
                .set_option(libc::SOL_SOCKET, libc::SO_BUSY_POLL, &usecs)
                .is_ok()
            && self
                .set_option(libc::SOL_SOCKET, SO_BUSY_POLL_BUDGET, &budget)
                .is_ok()
    }

    /// The NAPI instance the kernel last delivered to this socket from
    /// (`SO_INCOMING_NAPI_ID`; 0 before the first frame, or when the driver's
    /// receive queue has no NAPI id, in which case busy polling cannot run it).
    pub(crate) fn napi_id(&self) -> u32 {
        let mut id: libc::c_uint = 0;
        let mut len = size_of::<libc::c_uint>() as libc::socklen_t;
        // Safety: `id` and `len` are live and `len` is `id`'s size.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_INCOMING_NAPI_ID,
                (&raw mut id).cast(),
                &raw mut len,
            )
        };
        if rc < 0 { 0 } else { id }
    }

    /// Raises how many TX descriptors one `sendto` sends in copy mode
    /// (`XDP_MAX_TX_SKB_BUDGET`, Linux 6.17 and later; the kernel's default is 32,
    /// at most the TX ring's size). Returns whether the kernel took it.
    pub(crate) fn set_tx_budget(&self, budget: u32) -> bool {
        self.set_option(SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget)
            .is_ok()
    }

    /// Kicks the kernel to send what is on the TX ring (`sendto`, non-blocking).
    #[inline]
    pub(crate) fn wakeup_tx(&self) {
        // Safety: a zero-length send with no buffer and no address; only the
        // side effect (transmit) is wanted. EAGAIN/EBUSY/ENOBUFS/ENETDOWN are
        // normal here (the kernel is busy or the link is down) and ignored.
        unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            );
        }
    }

    /// Waits until the RX ring holds a descriptor or `timeout` passes (`ppoll` for
    /// `POLLIN`: the kernel wakes the caller when it posts a frame); true when readable.
    /// A signal ends the wait early (false).
    pub(crate) fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            // Below 10^9: fits any `c_long`.
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // Safety: `pfd` is one valid `pollfd` and `ts` a valid `timespec`, both live for
        // the call; a null signal mask keeps the thread's own.
        let rc = unsafe { libc::ppoll(&raw mut pfd, 1, &raw const ts, std::ptr::null()) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(err)
            };
        }
        Ok(rc > 0 && pfd.revents & libc::POLLIN != 0)
    }

    /// Kicks the kernel to receive into the fill ring (`recvfrom`, non-blocking).
    #[inline]
    pub(crate) fn wakeup_rx(&self) {
        // Safety: a zero-length receive with no buffer; only the side effect is wanted.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
    }

    /// The kernel's `XDP_STATISTICS`.
    pub(crate) fn statistics(&self) -> io::Result<KernelXdpStats> {
        xdp_statistics(self.fd.as_raw_fd())
    }

    fn set_option<T>(&self, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
        // Safety: `value` points to a live `T` of the size passed.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (value as *const T).cast(),
                size_of::<T>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

impl AsRawFd for XdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The kernel's `XDP_STATISTICS` of AF_XDP socket `fd`.
pub(crate) fn xdp_statistics(fd: RawFd) -> io::Result<KernelXdpStats> {
    // Safety: all-zero is a valid `xdp_statistics`.
    let mut s: libc::xdp_statistics = unsafe { std::mem::zeroed() };
    let mut optlen = size_of::<libc::xdp_statistics>() as libc::socklen_t;
    // Safety: `s` is a writable buffer of `optlen` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_STATISTICS,
            (&raw mut s).cast(),
            &mut optlen,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(KernelXdpStats {
        rx_dropped: s.rx_dropped,
        rx_invalid_descs: s.rx_invalid_descs,
        tx_invalid_descs: s.tx_invalid_descs,
        rx_ring_full: s.rx_ring_full,
        fill_ring_empty: s.rx_fill_ring_empty_descs,
        tx_ring_empty: s.tx_ring_empty_descs,
    })
}

fn map_ring<T>(
    fd: RawFd,
    offsets: &libc::xdp_ring_offset,
    size: u32,
    page_offset: libc::off_t,
) -> Result<RingMem<T>, (&'static str, io::Error)> {
    let len = offsets.desc as usize + size as usize * size_of::<T>();
    let map = Mmap::ring(fd, len, page_offset).map_err(|e| ("mapping a ring", e))?;
    // Safety: the kernel laid the ring out at these offsets inside a mapping
    // of `desc + size * size_of::<T>()` bytes; `size` was accepted by the
    // kernel, which requires a power of two.
    Ok(unsafe {
        RingMem::new(
            map,
            offsets.producer as usize,
            offsets.consumer as usize,
            offsets.flags as usize,
            offsets.desc as usize,
            size,
        )
    })
}
