//! The kernel baseline: an AF_PACKET sender (`sendmmsg`, 64 frames a call)
//! and receiver (`recvmmsg`, 64 a call; several receivers share the load with
//! `PACKET_FANOUT_HASH`).

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::atomic::{AtomicBool, Ordering},
    time::Instant,
};

use super::{Credit, LoopResult, RECEIVE_GRACE};
use crate::{BURST, DatapathError, Interface};

const ETH_P_ALL: u16 = 0x0003;
const ETH_P_IP: u16 = 0x0800;
const PACKET_FANOUT: libc::c_int = 18;
const PACKET_FANOUT_HASH: u32 = 0;
const SLOT: usize = 2048;

fn packet_socket(ifname: &str, protocol: u16) -> Result<OwnedFd, DatapathError> {
    let interface = Interface::lookup(ifname)?;
    // Safety: plain socket creation; checked below.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(protocol.to_be()),
        )
    };
    if fd < 0 {
        return Err(DatapathError::Syscall {
            what: "creating an AF_PACKET socket",
            source: io::Error::last_os_error(),
        });
    }
    // Safety: a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // Safety: all-zero is a valid `sockaddr_ll`.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol.to_be();
    addr.sll_ifindex = interface.index as i32;
    // Safety: `addr` is a valid `sockaddr_ll` of the size passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(DatapathError::Syscall {
            what: "binding an AF_PACKET socket",
            source: io::Error::last_os_error(),
        });
    }
    Ok(fd)
}

/// Sends raw frames through the kernel.
#[derive(Debug)]
pub struct PacketSender {
    fd: OwnedFd,
}

impl PacketSender {
    /// Opens a raw socket on `ifname` (calling thread's namespace).
    pub fn open(ifname: &str) -> Result<Self, DatapathError> {
        Ok(Self {
            fd: packet_socket(ifname, ETH_P_IP)?,
        })
    }

    /// Sends `count` copies of `template`, 64 per `sendmmsg`, bounded by `deadline`.
    pub fn run(
        &mut self,
        template: &[u8],
        count: u64,
        credit: &Credit,
        deadline: Instant,
    ) -> LoopResult {
        let started = Instant::now();
        let mut iov = libc::iovec {
            iov_base: template.as_ptr() as *mut libc::c_void,
            iov_len: template.len(),
        };
        // Safety: all-zero is a valid `mmsghdr`.
        let mut messages: Vec<libc::mmsghdr> =
            (0..BURST).map(|_| unsafe { std::mem::zeroed() }).collect();
        for message in &mut messages {
            message.msg_hdr.msg_iov = &raw mut iov;
            message.msg_hdr.msg_iovlen = 1;
        }
        let mut sent = 0u64;
        let (mut batches, mut syscalls) = (0u64, 0u64);
        let mut stalled = None;
        while sent < count && Instant::now() < deadline {
            let allowance = credit.allowance(&mut stalled);
            if allowance == 0 {
                std::thread::yield_now();
                continue;
            }
            let batch = BURST
                .min((count - sent) as usize)
                .min(allowance.try_into().unwrap_or(usize::MAX));
            syscalls += 1;
            // Safety: `messages` holds `batch` valid headers pointing at `iov`,
            // which points at `template`; all outlive the call.
            let n = unsafe {
                libc::sendmmsg(self.fd.as_raw_fd(), messages.as_mut_ptr(), batch as u32, 0)
            };
            if n > 0 {
                sent += n as u64;
                credit.sent(n as u64);
                batches += 1;
            } else {
                std::thread::yield_now();
            }
        }
        LoopResult {
            frames: sent,
            started,
            last_frame: Instant::now(),
            batches,
            syscalls,
            kernel: None,
        }
    }
}

/// Receives raw frames through the kernel, counting those that match.
#[derive(Debug)]
pub struct PacketReceiver {
    fd: OwnedFd,
    buffers: Vec<u8>,
}

impl PacketReceiver {
    /// Opens a raw socket on `ifname`; receivers with the same `fanout_group`
    /// split the traffic by flow hash.
    pub fn open(ifname: &str, fanout_group: Option<u16>) -> Result<Self, DatapathError> {
        let fd = packet_socket(ifname, ETH_P_ALL)?;
        if let Some(group) = fanout_group {
            let value: u32 = u32::from(group) | (PACKET_FANOUT_HASH << 16);
            // Safety: `value` is a live `u32` of the size passed.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    PACKET_FANOUT,
                    (&raw const value).cast(),
                    4,
                )
            };
            if rc < 0 {
                return Err(DatapathError::Syscall {
                    what: "joining a PACKET_FANOUT group",
                    source: io::Error::last_os_error(),
                });
            }
        }
        let size: libc::c_int = 64 << 20;
        // Safety: `size` is a live `c_int`; a failure only leaves the default buffer.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const size).cast(),
                4,
            );
        }
        Ok(Self {
            fd,
            buffers: vec![0; BURST * SLOT],
        })
    }

    /// Counts frames for which `matches` is true until `expected`, `deadline`,
    /// or `RECEIVE_GRACE` after `senders_done`.
    pub fn run(
        &mut self,
        expected: u64,
        matches: impl Fn(&[u8]) -> bool,
        credit: &Credit,
        senders_done: &AtomicBool,
        deadline: Instant,
    ) -> LoopResult {
        let started = Instant::now();
        let mut last_frame = started;
        let mut frames = 0u64;
        let mut idle_since: Option<Instant> = None;
        let base = self.buffers.as_mut_ptr();
        let mut iovs: Vec<libc::iovec> = (0..BURST)
            .map(|i| libc::iovec {
                // Safety: slot `i` lies inside `buffers` (BURST * SLOT bytes).
                iov_base: unsafe { base.add(i * SLOT) }.cast(),
                iov_len: SLOT,
            })
            .collect();
        // Safety: all-zero is a valid `mmsghdr`.
        let mut messages: Vec<libc::mmsghdr> =
            (0..BURST).map(|_| unsafe { std::mem::zeroed() }).collect();
        for (message, iov) in messages.iter_mut().zip(iovs.iter_mut()) {
            message.msg_hdr.msg_iov = iov;
            message.msg_hdr.msg_iovlen = 1;
        }
        let (mut batches, mut syscalls) = (0u64, 0u64);
        while frames < expected && Instant::now() < deadline {
            syscalls += 1;
            // Safety: `messages` holds BURST headers, each pointing at its own
            // SLOT-byte slice of `buffers`; all outlive the call.
            let n = unsafe {
                libc::recvmmsg(
                    self.fd.as_raw_fd(),
                    messages.as_mut_ptr(),
                    BURST as u32,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n > 0 {
                batches += 1;
                let before = frames;
                for (i, message) in messages.iter().take(n as usize).enumerate() {
                    let len = (message.msg_len as usize).min(SLOT);
                    if let Some(frame) = self.buffers.get(i * SLOT..i * SLOT + len) {
                        if matches(frame) {
                            frames += 1;
                        }
                    }
                }
                credit.received(frames - before);
                last_frame = Instant::now();
                idle_since = None;
                continue;
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
            kernel: None,
        }
    }
}
