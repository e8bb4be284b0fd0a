//! Typed setup errors of the device layer.

use std::io;

/// Why a port, pool or pipe could not be set up.
///
/// Run-time problems (a runt frame, a full ring, a bad descriptor) are never
/// errors: they are counted in [`crate::DeviceStats`] and the frame goes back
/// to its pool.
#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    /// The named interface does not exist (in the current network namespace).
    #[error("interface {0:?} does not exist in this network namespace")]
    NoSuchInterface(String),
    /// The interface name is not a valid Linux interface name.
    #[error("{0:?} is not a valid interface name")]
    BadInterfaceName(String),
    /// More queues (or a higher queue id) were asked for than the interface has.
    #[error("interface {ifname} has {available} RX queue(s); queue {requested} does not exist")]
    TooManyQueues {
        /// The interface.
        ifname: String,
        /// The queue id asked for (or the queue count asked for, minus one).
        requested: u32,
        /// The number of RX queues the interface has.
        available: u32,
    },
    /// The interface MTU does not fit in one UMEM frame and multi-buffer
    /// descriptors (`XDP_USE_SG`) cannot carry it: turned off, refused by the
    /// kernel or driver, or the MTU is beyond a large frame.
    #[error(
        "interface {ifname} has MTU {mtu}, but one UMEM frame holds at most {max_frame} bytes \
         (an MTU of at most {max_mtu}) and multi-buffer (XDP_USE_SG) frames are not available: \
         {reason}; lower the MTU or raise the frame size"
    )]
    MtuTooLarge {
        /// The interface.
        ifname: String,
        /// Its MTU.
        mtu: u32,
        /// The largest Ethernet frame one UMEM frame holds.
        max_frame: u32,
        /// The largest MTU that fits.
        max_mtu: u32,
        /// Why multi-buffer frames could not be used.
        reason: String,
    },
    /// The pool configuration is invalid (frame size, count or headroom).
    #[error("invalid frame pool configuration: {0}")]
    BadPoolConfig(String),
    /// The pipe configuration is invalid (a probability outside 0..=1, a zero capacity).
    #[error("invalid pipe configuration: {0}")]
    BadPipeConfig(String),
    /// The kernel refused to register the UMEM (for example the frame size).
    #[error(
        "the kernel refused the UMEM (frame size {frame_size}, {frame_count} frames): {source}"
    )]
    UmemRefused {
        /// Frame size asked for.
        frame_size: u32,
        /// Frame count asked for.
        frame_count: u32,
        /// The kernel's answer.
        source: io::Error,
    },
    /// The interface (or its driver) refused every AF_XDP bind mode we tried.
    #[error("interface {ifname} queue {queue}: AF_XDP bind failed (no XDP support?): {source}")]
    BindRefused {
        /// The interface.
        ifname: String,
        /// The queue.
        queue: u32,
        /// The kernel's answer to the last mode tried.
        source: io::Error,
    },
    /// A system call during setup failed.
    #[error("{what}: {source}")]
    Syscall {
        /// Which step failed.
        what: &'static str,
        /// The kernel's answer.
        source: io::Error,
    },
}
