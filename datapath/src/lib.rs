//! surge's device layer: frames in and out of a NIC queue with no copy in
//! userspace and no syscall unless the kernel asks for one.
//!
//! - [`Device`]: the batched, token-style seam the engine drives (bursts of
//!   up to [`BURST`] [`Frame`] handles; the stack never sees a pointer).
//! - [`XdpPort`]: one AF_XDP socket on one (interface, queue), with its own
//!   [`FramePool`] (the UMEM). Copy or zero-copy chosen automatically,
//!   `XDP_USE_NEED_WAKEUP`, optional busy polling, the kernel's
//!   `XDP_STATISTICS`. An interface MTU above one UMEM frame (jumbo frames)
//!   binds with multi-buffer descriptors (`XDP_USE_SG`, Linux 6.6+): a
//!   packet that arrives as a descriptor chain is joined into one of the
//!   pool's large frames, and a large frame from [`Device::alloc_tx_for`]
//!   leaves as a chain; where the kernel or driver refuses it (or
//!   [`PortConfig::multi_buffer`] is off) the MTU is refused with
//!   [`DatapathError::MtuTooLarge`]. TX checksum offload through AF_XDP TX
//!   metadata (Linux 6.11+ UMEM registration): in copy mode on any driver, in
//!   zero-copy only where the driver advertises it; detected per port
//!   ([`XdpPort::tx_checksum_offload`], [`TxChecksumOffload`]), used per frame
//!   ([`Device::request_tx_checksum`]), counted
//!   ([`DeviceStats::tx_checksum_offloaded`]); a large frame's request goes
//!   in front of its chain's first descriptor (or is completed in software
//!   when the checksum field is not in the first part).
//! - [`queue_configs`]: one port per RX queue of an interface (the count read
//!   as `ethtool -l` does, or checked when given).
//! - [`PipeDevice`]: an in-memory pair with seeded impairments in virtual time.
//!
//! # The loop
//!
//! The engine owns one device per core and runs to completion:
//! receive a burst, handle every frame (reply in place or release it), flush
//! the TX burst (every iteration, even when empty: that is where completions
//! are recycled and the kernel is kicked if it asked).
//!
//! ```
//! use surge_datapath::{Burst, Device, PipeConfig, PipeDevice};
//!
//! let (mut a, mut b) = PipeDevice::pair(&PipeConfig::default()).unwrap();
//!
//! // Side A sends one 60-byte frame, written in place.
//! let mut tx = Burst::new();
//! let frame = a.alloc_tx().unwrap();
//! a.frame_mut(&frame)[..60].fill(0xab);
//! let mut frame = frame;
//! assert!(frame.set_len(60));
//! tx.push(frame).unwrap();
//! a.tx_burst(&mut tx);
//!
//! // Side B's run-to-completion loop (bounded here).
//! let (mut rx, mut replies) = (Burst::new(), Burst::new());
//! for _ in 0..4 {
//!     b.rx_burst(&mut rx);
//!     while let Some(frame) = rx.pop() {
//!         if b.frame(&frame)[0] == 0xab {
//!             // Turn the received frame into a reply, in place.
//!             b.frame_mut(&frame)[0] = 0xcd;
//!             if let Err(frame) = replies.push(frame) {
//!                 b.release_one(frame);
//!             }
//!         } else {
//!             b.release_one(frame);
//!         }
//!     }
//!     b.tx_burst(&mut replies);
//! }
//! a.rx_burst(&mut rx);
//! assert_eq!(a.frame(rx.as_slice().first().unwrap())[0], 0xcd);
//! a.release(&mut rx);
//! assert!(a.accounting().balanced() && b.accounting().balanced());
//! ```
#![allow(unsafe_code)] // the device layer is one of the two crates allowed `unsafe` (DESIGN.md)

pub mod alloc_count;
#[cfg(feature = "baseline")]
pub mod baseline;
pub mod byte_ring;
mod chain;
mod device;
mod error;
mod frame;
mod interface;
mod large;
mod mmap;
mod netdev;
mod pipe;
mod pool;
mod port;
pub mod prefetch;
mod ring;
mod socket;
mod stats;
mod tx_checksum;

pub use device::{
    BURST, Device, DeviceCaps, ETHERNET_HEADER_LEN, FrameAccounting, LARGE_FRAME_SLACK,
};
pub use error::DatapathError;
pub use frame::{Burst, Frame};
pub use interface::Interface;
pub use netdev::XdpFeatures;
pub use pipe::{Impairments, PipeConfig, PipeDevice};
pub use pool::{FramePool, PoolConfig, XDP_PACKET_HEADROOM};
pub use port::{BindMode, BusyPoll, PortConfig, XdpPort, queue_configs};
pub use stats::{DeviceStats, KernelXdpStats};
pub use tx_checksum::{
    TX_METADATA_LEN, TxChecksumOff, TxChecksumOffload, complete_partial_checksum,
};
